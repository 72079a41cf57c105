/**
 * External registry (C8, sealer issue 2224): when the Clusterfile names
 * `registry.externalRegistry`, no registry is started on the cluster; instead the container
 * images the cluster image caches under `registry/` (the distribution filesystem-storage tree the
 * builder wrote) are pushed to that registry with its credentials, and every node is told how to
 * pull from it: the registry's CA (from `sealer login`'s per-registry settings) in the
 * containerd/docker certs.d, and the credentials in kubelet's node-wide `config.json`
 * (`/var/lib/kubelet/config.json`, which kubelet hands to any CRI for image pulls).
 *
 * The push goes from this machine with our registry client: blobs the registry already has are
 * not sent again (HEAD first), so a re-push after an unchanged image moves no bytes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError, wrap } from "../errors";
import { sha256Hex } from "../fsutil";
import { formatBytes, log, registerSecret } from "../log";
import { materializeLayers } from "../image/materialize";
import { OciLayout, digestHex } from "../image/layout";
import { MediaTypes, type Descriptor } from "../image/types";
import type { LayerFacts } from "../plan/types";
import { RegistryClient, type ClientOptions } from "../registry/client";
import { loadCredentials, loadSettings, type Credentials } from "../registry/credentials";
import { pushImage } from "../registry/push";
import { isIndexMediaType } from "../registry/remote";
import type { ExecContext } from "../exec/context";
import {
  CONTAINERD_AUTH_FILE,
  CONTAINERD_CERTS_DIR,
  APPLY_CONTAINERD_AUTH_CMD,
  containerdAuthToml,
  containerdHostsCmd,
  type RegistryEndpoint,
} from "../runtime/registry";

const V2 = ["docker", "registry", "v2"];
/** kubelet reads registry credentials for every pull from `<root-dir>/config.json`. */
export const KUBELET_REGISTRY_CONFIG = "/var/lib/kubelet/config.json";

/** "domain:port" as clients name the registry; 443 is implied, as docker does. */
export function externalRegistryHost(domain: string, port: number): string {
  return port === 443 ? domain : `${domain}:${port}`;
}

export interface TreeImage {
  /** Repository path inside the registry, e.g. "team/web" or "library/nginx". */
  repo: string;
  /** Tag, or undefined for a manifest cached by digest only. */
  tag?: string;
  digest: string;
}

function readLink(file: string): string | undefined {
  try {
    const d = fs.readFileSync(file, "utf8").trim();
    return /^sha256:[0-9a-f]{64}$/.test(d) ? d : undefined;
  } catch {
    return undefined;
  }
}

function blobFile(root: string, digest: string): string {
  const hex = digestHex(digest);
  return path.join(root, ...V2, "blobs", "sha256", hex.slice(0, 2), hex, "data");
}

/**
 * The images in a filesystem-storage tree: every tag, plus manifests stored by digest that no tag
 * and no stored index reaches (an image cached as name@sha256:...). Sorted by repo, then tag.
 */
export function listRegistryTree(root: string): TreeImage[] {
  const reposDir = path.join(root, ...V2, "repositories");
  const repos: string[] = [];
  const walk = (dir: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (entries.some((e) => e.name === "_manifests")) repos.push(rel);
    for (const e of entries)
      if (e.isDirectory() && !e.name.startsWith("_"))
        walk(path.join(dir, e.name), rel ? `${rel}/${e.name}` : e.name);
  };
  walk(reposDir, "");
  const out: TreeImage[] = [];
  for (const repo of repos.sort()) {
    const m = path.join(reposDir, ...repo.split("/"), "_manifests");
    const tagsDir = path.join(m, "tags");
    const reached = new Set<string>();
    for (const tag of fs.existsSync(tagsDir) ? fs.readdirSync(tagsDir).sort() : []) {
      const d = readLink(path.join(tagsDir, tag, "current", "link"));
      if (!d) continue;
      out.push({ repo, tag, digest: d });
      for (const x of [d, ...childrenOf(root, d)]) reached.add(x);
    }
    const revDir = path.join(m, "revisions", "sha256");
    const revs = (fs.existsSync(revDir) ? fs.readdirSync(revDir).sort() : [])
      .map((hex) => readLink(path.join(revDir, hex, "link")))
      .filter((d): d is string => !!d && !reached.has(d));
    const children = new Set(revs.flatMap((d) => childrenOf(root, d)));
    for (const d of revs) if (!children.has(d)) out.push({ repo, digest: d });
  }
  return out;
}

function childrenOf(root: string, digest: string): string[] {
  const file = blobFile(root, digest);
  if (!fs.existsSync(file)) return [];
  const doc = JSON.parse(fs.readFileSync(file, "utf8")) as { mediaType?: string; manifests?: Descriptor[] };
  return isIndexMediaType(doc.mediaType) || Array.isArray(doc.manifests)
    ? (doc.manifests ?? []).map((c) => c.digest)
    : [];
}

/**
 * Extracts only `registry/` from the image's layers into `dest` (layers that do not touch it are
 * not read). Returns the tree's root, or undefined when the image caches no container images.
 */
export async function extractRegistryTree(
  layout: OciLayout,
  layers: LayerFacts[],
  dest: string,
): Promise<string | undefined> {
  const touches = layers.filter(
    (l) => l.paths.length === 0 || l.paths.some((p) => p === "registry" || p.startsWith("registry/")),
  );
  if (!touches.length) return undefined;
  await materializeLayers(
    layout,
    touches.map((l) => l.digest),
    dest,
    { filter: (rel) => rel === "registry" || rel.startsWith("registry/") },
  );
  const root = path.join(dest, "registry");
  return fs.existsSync(path.join(root, ...V2, "repositories")) ? root : undefined;
}

export interface TreePushResult {
  /** What was pushed, as "host/repo:tag" or "host/repo@digest". */
  images: string[];
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
}

/**
 * Pushes every image of a filesystem-storage tree to `host` under the same repository paths and
 * tags. The tree's blobs are hard-linked into a scratch OCI layout (`workDir`) so the registry
 * client's push (HEAD-before-upload, mounts, digest checks, retries) is used unchanged.
 */
export async function pushRegistryTree(
  treeRoot: string,
  host: string,
  workDir: string,
  client: ClientOptions,
): Promise<TreePushResult> {
  const images = listRegistryTree(treeRoot);
  const res: TreePushResult = { images: [], blobsUploaded: 0, bytesUploaded: 0, blobsSkipped: 0 };
  if (!images.length) return res;
  const store = new OciLayout(path.join(workDir, "oci"));
  await store.init();
  const blobsDir = path.join(treeRoot, ...V2, "blobs", "sha256");
  for (const pre of fs.readdirSync(blobsDir))
    for (const hex of fs.readdirSync(path.join(blobsDir, pre))) {
      const src = path.join(blobsDir, pre, hex, "data");
      if (!/^[0-9a-f]{64}$/.test(hex) || !fs.existsSync(src)) continue;
      const dst = store.blobPath(`sha256:${hex}`);
      await fs.promises.mkdir(path.dirname(dst), { recursive: true });
      await fs.promises.link(src, dst).catch(() => fs.promises.copyFile(src, dst));
    }
  const c = await RegistryClient.open(host, client);
  for (const [i, img] of images.entries()) {
    const bytes = await store.readBlob(img.digest).catch(() => {
      throw new UserError(
        `the image's registry/ tree is incomplete: manifest ${img.digest} of ${img.repo} is missing; rebuild the image`,
      );
    });
    const doc = JSON.parse(bytes.toString("utf8")) as {
      mediaType?: string;
      manifests?: unknown;
      config?: unknown;
    };
    // mediaType is optional in OCI manifests (umoci writes none): the registry that stored the
    // tree told them apart by their fields, as distribution does.
    const mediaType =
      doc.mediaType ??
      (Array.isArray(doc.manifests) ? MediaTypes.index : doc.config ? MediaTypes.manifest : undefined);
    if (!mediaType)
      throw new UserError(
        `manifest ${img.digest} of ${img.repo} in the image's registry/ tree is neither an image manifest nor an index; rebuild the image`,
      );
    const source = `sealer-push-${i}:${img.tag ?? "untagged"}`;
    await store.setRef(source, { mediaType, digest: img.digest, size: bytes.length });
    const target = img.tag ? `${host}/${img.repo}:${img.tag}` : `${host}/${img.repo}@${img.digest}`;
    const r = await pushImage(target, { ...client, store, source, client: c });
    res.images.push(target);
    res.blobsUploaded += r.blobsUploaded;
    res.bytesUploaded += r.bytesUploaded;
    res.blobsSkipped += r.blobsSkipped;
  }
  return res;
}

/** Pushes the cluster image's cached container images to the external registry (the `registry` step). */
export async function pushCachedImages(o: {
  layout: OciLayout;
  layers: LayerFacts[];
  domain: string;
  port: number;
  username?: string;
  password?: string;
  /** Scratch space on the store's file system (hard links). */
  scratchDir: string;
  home?: string;
}): Promise<TreePushResult & { host: string }> {
  const host = externalRegistryHost(o.domain, o.port);
  await fs.promises.mkdir(o.scratchDir, { recursive: true });
  const work = await fs.promises.mkdtemp(path.join(o.scratchDir, ".external-push-"));
  try {
    const tree = await extractRegistryTree(o.layout, o.layers, path.join(work, "rootfs"));
    if (!tree) {
      log.info(`registry: the image caches no container images; nothing to push to ${host}`);
      return { host, images: [], blobsUploaded: 0, bytesUploaded: 0, blobsSkipped: 0 };
    }
    registerSecret(o.password);
    const credentials: Credentials | undefined =
      o.username && o.password ? { username: o.username, password: o.password } : undefined;
    let res: TreePushResult;
    try {
      res = await pushRegistryTree(tree, host, work, {
        ...(o.home ? { home: o.home } : {}),
        ...(credentials ? { credentials } : {}),
      });
    } catch (err) {
      throw wrap(
        `pushing the image's cached container images to the external registry ${host} (spec.registry.externalRegistry${credentials ? `, user ${credentials.username}` : ", credentials from sealer login"})`,
        err,
      );
    }
    log.info(
      `registry: pushed ${res.images.length} cached image(s) to ${host}: ${res.blobsUploaded} blob(s) sent (${formatBytes(res.bytesUploaded)}), ${res.blobsSkipped} already there`,
    );
    return { host, ...res };
  } finally {
    await fs.promises.rm(work, { recursive: true, force: true });
  }
}

/** Docker-style config.json granting `auth` for `host` (kubelet and docker read this shape). */
export function registryAuthConfig(host: string, c: Credentials): string {
  const auth = Buffer.from(`${c.username}:${c.password}`).toString("base64");
  registerSecret(auth);
  return JSON.stringify({ auths: { [host]: { auth } } }, null, 2) + "\n";
}

/**
 * The `registry-client` step for an external registry: every host trusts its CA (when
 * `sealer login --ca-file` recorded one) or reaches it over plain HTTP (when marked insecure),
 * and gets the credentials (the Clusterfile's, else those of `sealer login`) in kubelet's
 * config.json. No hosts entry: the registry's domain is resolved the hosts' usual way.
 */
export async function configureExternalRegistryClients(ctx: ExecContext, hosts: string[]): Promise<void> {
  const reg = ctx.registryAddress();
  const host = externalRegistryHost(reg.domain, reg.port);
  const settings = await loadSettings(host);
  const creds: Credentials | undefined =
    reg.username && reg.password
      ? { username: reg.username, password: reg.password }
      : await loadCredentials(host);
  // Directory names as containerd and docker look them up: "domain" for 443, else "domain:port".
  const dirs = [`${CONTAINERD_CERTS_DIR}/${host}`, `/etc/docker/certs.d/${host}`];
  const endpoint: RegistryEndpoint = {
    host,
    ...(settings.ca ? { caFile: `${dirs[0]}/ca.crt` } : settings.insecure ? { insecure: true } : {}),
  };
  await ctx.eachHost(hosts, async (ip) => {
    if (settings.ca) {
      await ctx.put(ip, "registry-client", `${dirs[0]}/ca.crt`, settings.ca, 0o644);
      await ctx.put(ip, "registry-client", `${dirs[1]}/ca.crt`, settings.ca, 0o644);
    }
    // The cached images were pushed there under their own paths: it mirrors the public registries too.
    await ctx.sh(ip, "registry-client", containerdHostsCmd(endpoint));
    if (creds) await putRegistryCredentials(ctx, ip, host, creds);
  });
}

/**
 * Gives one node the pull credentials for `host` ("domain:port" as image names spell it):
 * kubelet's node-wide config.json, which kubelet hands to the CRI for every pull, and
 * containerd's CRI registry auth (restarting a running containerd when it changed), for pulls
 * without kubelet's credentials. Both 0600. Used for an external registry and for the cluster's
 * own registry started with htpasswd. The content goes over the SSH upload (never a command
 * line) and the encoded auth is registered as a secret.
 */
export async function putRegistryCredentials(
  ctx: ExecContext,
  ip: string,
  host: string,
  creds: Credentials,
): Promise<void> {
  registerSecret(creds.password);
  await ctx.put(ip, "registry-client", KUBELET_REGISTRY_CONFIG, registryAuthConfig(host, creds), 0o600);
  const auth = containerdAuthToml(host, creds);
  // Compared by hash: the file's content (a password) never comes back over the session.
  const have = await ctx.sh(ip, "registry-client", `sha256sum ${CONTAINERD_AUTH_FILE} 2>/dev/null || true`, {
    quiet: true,
  });
  if (have.stdout.startsWith(sha256Hex(auth) + " ")) return;
  await ctx.put(ip, "registry-client", CONTAINERD_AUTH_FILE, auth, 0o600);
  await ctx.sh(ip, "registry-client", APPLY_CONTAINERD_AUTH_CMD);
}
