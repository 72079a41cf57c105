/**
 * Push: local store -> registry. For every blob: HEAD first (present => nothing sent), else a
 * cross-repository mount when another repository on the same registry is known to hold it, else
 * a streamed upload (one PUT, or PATCH chunks for big blobs). Manifests go after their blobs,
 * index children before the index, so the registry never sees a dangling reference.
 */
import * as fs from "node:fs";
import { Readable, Transform } from "node:stream";
import { UserError } from "../errors";
import { formatBytes, log } from "../log";
import { progressTask } from "../progress";
import { OciLayout } from "../image/layout";
import { parseReference } from "../common/reference";
import { Descriptor, Index, Manifest } from "../image/types";
import { repositoryScope } from "./auth";
import { ClientOptions, RegistryClient, headerString, readBody } from "./client";
import { displayRef, isIndexMediaType, blobSources, transferImageBlobs } from "./remote";

export interface PushOptions extends ClientOptions {
  store: OciLayout;
  /** Local image to push (default: the same reference). */
  source?: string;
  /** Blobs up to this size go in one PUT; bigger ones in PATCH chunks (default 256 MiB). */
  monolithicMax?: number;
  /** PATCH chunk size (default 64 MiB). */
  chunkSize?: number;
  /** Parallel blob uploads (default 3). */
  concurrency?: number;
  client?: RegistryClient;
}

export interface PushResult {
  digest: string;
  mediaType: string;
  /** Blobs whose bytes were sent, and how many bytes. */
  blobsUploaded: number;
  bytesUploaded: number;
  /** Blobs the registry already had (HEAD 200). */
  blobsSkipped: number;
  /** Blobs mounted from another repository on the same registry. */
  blobsMounted: number;
  /** Chunked uploads that continued an interrupted session instead of starting over. */
  uploadsResumed: number;
  manifestsPut: number;
}

interface Stats {
  resumed: number;
  uploaded: number;
  bytes: number;
  skipped: number;
  mounted: number;
}

export async function pushImage(reference: string, opts: PushOptions): Promise<PushResult> {
  const ref = parseReference(reference);
  const store = opts.store;
  const source = opts.source ?? reference;
  const top = await store.resolve(source);
  if (!top)
    throw new UserError(
      `image ${source} is not in the local store; build, pull or tag it first (sealer images lists what is there)`,
    );
  const client = opts.client ?? (await RegistryClient.open(ref.domain, opts));
  const repo = ref.path;
  const stats: Stats = { uploaded: 0, bytes: 0, skipped: 0, mounted: 0, resumed: 0 };
  let manifestsPut = 0;
  const pushScope = repositoryScope(repo, ["pull", "push"]);
  const what = `${client.host}/${repo}`;

  const putManifest = async (d: Descriptor, tagOrDigest: string) => {
    const bytes = await store.readBlob(d.digest);
    const mediaType = (JSON.parse(bytes.toString("utf8")) as { mediaType?: string }).mediaType ?? d.mediaType;
    const res = await client.request("PUT", `/v2/${repo}/manifests/${tagOrDigest}`, {
      headers: { "Content-Type": mediaType },
      body: () => bytes,
      scopes: [pushScope],
      expect: [200, 201, 202],
      what,
    });
    res.body.resume();
    const got = headerString(res.headers["docker-content-digest"]);
    if (got && got !== d.digest)
      throw new UserError(`${what} stored the manifest as ${got}, expected ${d.digest}`);
    manifestsPut++;
  };

  const pushManifestBlobs = async (d: Descriptor) => {
    const m = await store.readJson<Manifest>(d.digest);
    const blobs = [m.config, ...m.layers];
    for (const b of blobs)
      if (!(await store.hasBlob(b.digest)))
        throw new UserError(
          `image ${source} is incomplete in the local store: blob ${b.digest} is missing (pull it again)`,
        );
    await transferImageBlobs(store, client.host, repo, m, opts.concurrency ?? 3, (b) =>
      pushBlob(client, store, repo, b, stats, opts),
    );
  };

  try {
    if (isIndexMediaType(top.mediaType)) {
      const idx = await store.readJson<Index>(top.digest);
      for (const child of idx.manifests) {
        if (!(await store.hasBlob(child.digest)))
          throw new UserError(
            `image ${source} is incomplete in the local store: the ${child.platform ? `${child.platform.os}/${child.platform.architecture}` : ""} manifest ${child.digest} is missing (it was pulled for one platform only; pull it without --platform)`,
          );
        await pushManifestBlobs(child);
        await putManifest(child, child.digest);
      }
    } else {
      await pushManifestBlobs(top);
    }
    await putManifest(top, ref.tag ?? ref.digest ?? "latest");
    log.debug(
      `pushed ${displayRef(ref)} to ${client.host}: ${stats.uploaded} blobs uploaded (${formatBytes(stats.bytes)}), ${stats.skipped} already present, ${stats.mounted} mounted`,
    );
    return {
      digest: top.digest,
      mediaType: top.mediaType,
      blobsUploaded: stats.uploaded,
      bytesUploaded: stats.bytes,
      blobsSkipped: stats.skipped,
      blobsMounted: stats.mounted,
      uploadsResumed: stats.resumed,
      manifestsPut,
    };
  } finally {
    if (!opts.client) client.close();
  }
}

async function pushBlob(
  client: RegistryClient,
  store: OciLayout,
  repo: string,
  d: Descriptor,
  stats: Stats,
  opts: PushOptions,
): Promise<void> {
  const what = `${client.host}/${repo}`;
  const pushScope = repositoryScope(repo, ["pull", "push"]);
  const head = await client.request("HEAD", `/v2/${repo}/blobs/${d.digest}`, {
    scopes: [pushScope],
    expect: [200, 404],
    what,
  });
  head.body.resume();
  if (head.status === 200) {
    stats.skipped++;
    return;
  }
  const monolithicMax = opts.monolithicMax ?? 256 * 1024 * 1024;
  const chunked = d.size > monolithicMax;
  // A chunked upload session survives a failed attempt: the retry asks the registry how far it
  // got (GET on the session: 204 + `Range: 0-N`) and continues from there. A monolithic PUT that
  // failed is started over in a new session.
  let session: { location: string; offset: number } | undefined;
  await client.retry(
    async () => {
      if (session) {
        const st = await client.request("GET", session.location, {
          scopes: [pushScope],
          expect: [204, 404],
          what,
          noRetry: true,
        });
        st.body.resume();
        const range = /^(?:bytes=)?0-(\d+)$/.exec(headerString(st.headers.range) ?? "");
        if (st.status === 204) {
          session.offset = range ? Number(range[1]) + 1 : 0;
          const loc = headerString(st.headers.location);
          if (loc) session.location = new URL(loc, session.location).toString();
          stats.resumed++;
        } else session = undefined;
      }
      if (!session) {
        let location: string | undefined;
        for (const from of await blobSources(store, client.host, repo, d.digest)) {
          const res = await client.request(
            "POST",
            `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`,
            { scopes: [pushScope, repositoryScope(from, ["pull"])], expect: [201, 202], what, noRetry: true },
          );
          res.body.resume();
          if (res.status === 201) {
            stats.mounted++;
            return;
          }
          location = headerString(res.headers.location);
          if (location) break;
        }
        if (!location) {
          const res = await client.request("POST", `/v2/${repo}/blobs/uploads/`, {
            scopes: [pushScope],
            expect: [202],
            what,
            noRetry: true,
          });
          res.body.resume();
          location = headerString(res.headers.location);
          if (!location)
            throw new UserError(`${what}: the registry started an upload without a Location header`);
        }
        session = { location: new URL(location, client.resolveUrl("/")).toString(), offset: 0 };
      }
      const s = session;
      const file = store.blobPath(d.digest);
      const bar = progressTask("push", d.digest.slice(7, 19), d.size);
      let sent = 0;
      const counted = (start: number, end?: number): Readable => {
        const meter = new Transform({
          transform(chunk: Buffer, _e, cb) {
            sent += chunk.length;
            bar.update(s.offset + sent);
            cb(null, chunk);
          },
        });
        return fs.createReadStream(file, { start, ...(end !== undefined ? { end } : {}) }).pipe(meter);
      };
      try {
        if (!chunked) {
          session = undefined;
          const res = await client.request("PUT", withDigest(s.location, d.digest), {
            headers: { "Content-Type": "application/octet-stream", "Content-Length": String(d.size) },
            body: () => counted(0),
            scopes: [pushScope],
            expect: [201],
            what,
            noRetry: true,
          });
          res.body.resume();
        } else {
          const chunk = opts.chunkSize ?? 64 * 1024 * 1024;
          while (s.offset < d.size) {
            const start = s.offset;
            const end = Math.min(d.size, start + chunk) - 1;
            const res = await client.request("PATCH", s.location, {
              headers: {
                "Content-Type": "application/octet-stream",
                "Content-Range": `${start}-${end}`,
                "Content-Length": String(end - start + 1),
              },
              body: () => counted(start, end),
              scopes: [pushScope],
              expect: [202],
              what,
              noRetry: true,
            });
            await readBody(res.body);
            const next = headerString(res.headers.location);
            if (next) s.location = new URL(next, s.location).toString();
            s.offset = end + 1;
          }
          const res = await client.request("PUT", withDigest(s.location, d.digest), {
            scopes: [pushScope],
            expect: [201],
            what,
            noRetry: true,
          });
          res.body.resume();
          session = undefined;
        }
      } finally {
        bar.end();
        stats.bytes += sent;
      }
      stats.uploaded++;
    },
    `upload ${d.digest.slice(0, 19)} (${formatBytes(d.size)}) to ${what}`,
    { repository: repo, object: `upload of blob ${d.digest}` },
  );
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set("digest", digest);
  return u.toString();
}
