/**
 * Registry distribution: the cluster image goes once from this machine to a registry the
 * nodes reach (blobs already there are skipped), then every node fetches the layers it lacks
 * over HTTP(S) with curl, in parallel. A fetched blob is appended to
 * `<dataRoot>/blobs/sha256/<hex>.partial` and sha256-verified while it arrives (a cut one resumed
 * with a Range request), then extracted into the staging rootfs from the verified blob: a
 * registry, or whoever sits between it and the node on plain HTTP, could answer with other
 * bytes, and tar would follow a lower layer's symlink out of the rootfs before the digest
 * caught them. SSH carries only commands. The node state is the same in every mode,
 * and a host whose fetch failed is served over SSH from where its bytes stopped.
 *
 * Which registry:
 *  - `spec.registry.externalRegistry`: the nodes reach it by definition; the credentials are the
 *    Clusterfile's (else `sealer login`'s), the CA / insecure setting `sealer login`'s;
 *  - the cluster's own registry on master0, when asked for (`--distribute registry`,
 *    `spec.distribution: registry`) and only once it runs (its step is recorded): on a first
 *    install the registry step comes after distribution, so that install goes over SSH and later
 *    distributions (new hosts, upgrades) use the registry. Its CA is the cluster CA in the local
 *    state dir, its credentials `spec.registry.localRegistry`'s.
 * Without a choice: registry mode when an external registry is configured, else SSH.
 * Credentials reach a node only inside the script on the SSH channel's stdin (a curl config in
 * a here-document: no process argument list, no file) and are redacted from every log.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors";
import { formatBytes, log, registerSecret } from "../log";
import { parseReference } from "../common/reference";
import { RegistryClient, type ClientOptions } from "../registry/client";
import { loadSettings } from "../registry/credentials";
import { pushImage } from "../registry/push";
import { externalRegistryHost } from "../lifecycle/external-registry";
import { shellQuote } from "../ssh";
import type { DistributionMode } from "../clusterfile";
import type { ExecContext } from "./context";
import type { LayerFetch } from "./distribute";

/** A registry the nodes can fetch from, and how this machine pushes to it. */
export interface RegistrySource {
  /** "host:port" this machine pushes to. */
  host: string;
  client: ClientOptions;
  /** PEM the nodes trust for it (the cluster CA; an external registry's `sealer login --ca-file`). */
  caPem?: string;
  /** For messages: which registry and where it was configured. */
  what: string;
}

export interface ModeChoice {
  mode: DistributionMode;
  source?: RegistrySource;
  /** Why this mode (in the debug log). */
  why: string;
}

const choices = new WeakMap<ExecContext, Promise<ModeChoice>>();

/**
 * The mode for this apply (decided once: every per-host distribute step of one apply uses the
 * same): the explicit choice (flag, else Clusterfile), else registry when one is usable, else SSH.
 */
export function chooseDistribution(ctx: ExecContext): Promise<ModeChoice> {
  let p = choices.get(ctx);
  if (!p) choices.set(ctx, (p = decide(ctx)));
  return p;
}

async function decide(ctx: ExecContext): Promise<ModeChoice> {
  // --distribute, else --relay, else the Clusterfile.
  const explicit = ctx.distribution ?? (ctx.relay ? "relay" : undefined) ?? ctx.spec.distribution;
  const from = ctx.distribution ? "--distribute" : ctx.relay ? "--relay" : "spec.distribution";
  if (explicit === "ssh" || explicit === "relay") return { mode: explicit, why: `${from} ${explicit}` };
  const reg = ctx.registryAddress();
  if (reg.external) {
    const host = externalRegistryHost(reg.domain, reg.port);
    const credentials =
      reg.username && reg.password ? { username: reg.username, password: reg.password } : undefined;
    const settings = await loadSettings(host);
    return {
      mode: "registry",
      source: {
        host,
        client: credentials ? { credentials } : {},
        ...(settings.ca ? { caPem: settings.ca } : {}),
        what: `the external registry ${host} (spec.registry.externalRegistry)`,
      },
      why: explicit ? `${from} registry` : "an external registry is configured",
    };
  }
  // The cluster's own registry only on request: its first use uploads the whole image to master0
  // (more than SSH sends for a small change on a few hosts), and it keeps the copy in master0's
  // rootfs, which an upgrade rebuilds.
  if (explicit !== "registry")
    return {
      mode: "ssh",
      why: "no external registry; the cluster's registry only with --distribute registry",
    };
  const running = ctx.state.steps[`registry:${ctx.master0}`] !== undefined;
  if (!running) {
    log.warn(
      `${from} registry: the cluster's registry on ${ctx.master0} does not run yet (it starts after distribution on a first install); distributing over SSH this time`,
    );
    return { mode: "ssh", why: "no registry the nodes reach runs yet" };
  }
  const caFile = path.join(ctx.stateDir, "pki", "ca.crt");
  let caPem: string;
  try {
    caPem = await fs.promises.readFile(caFile, "utf8");
  } catch {
    log.warn(`the cluster CA ${caFile} is missing on this machine; distributing over SSH`);
    return { mode: "ssh", why: "the cluster CA is not on this machine" };
  }
  const host = `${ctx.master0}:${reg.port}`;
  return {
    mode: "registry",
    source: {
      host,
      client: {
        settings: { ca: caPem },
        credentials: reg.username && reg.password ? { username: reg.username, password: reg.password } : null,
      },
      caPem,
      what: `the cluster's registry on ${host}`,
    },
    why: `${from} registry`,
  };
}

/** Repository and tag the cluster image is pushed under: its own name, without its registry. */
function target(ctx: ExecContext): { repo: string; tag: string } {
  const ref = parseReference(ctx.image.reference);
  return { repo: ref.path, tag: ref.tag ?? "latest" };
}

const CURL_HEADER = /^[A-Za-z]+ [A-Za-z0-9+/=._~-]+$/;

/** The fetch script of one blob (LayerFetch.script) for a registry at `baseUrl`. */
export function fetchLayerScript(o: {
  baseUrl: string;
  repo: string;
  digest: string;
  offset: number;
  sink: string;
  authorization?: string;
  caPem?: string;
}): string {
  if (o.authorization !== undefined && !CURL_HEADER.test(o.authorization))
    throw new UserError("the registry's authorization header has characters a curl config cannot hold");
  const lines: string[] = [];
  if (o.caPem) {
    lines.push(
      `ca=$(mktemp) || exit 95`,
      `trap 'rm -f "$ca"' EXIT`,
      `cat > "$ca" <<'SEALER_CA'`,
      o.caPem.trim(),
      "SEALER_CA",
    );
  }
  // -C resumes with a Range request and fails if the server ignores it (no duplicated bytes).
  const curl = [
    "curl -fsS -L --proto =http,https",
    o.offset > 0 ? `-C ${o.offset}` : "",
    o.caPem ? `--cacert "$ca"` : "",
    o.authorization ? "-K -" : "",
    shellQuote(`${o.baseUrl}/v2/${o.repo}/blobs/${o.digest}`),
  ]
    .filter(Boolean)
    .join(" ");
  const auth = o.authorization
    ? [` <<'SEALER_CURL'`, `header = "Authorization: ${o.authorization}"`, "SEALER_CURL"]
    : [""];
  lines.push(`${curl}${auth[0]} | sh -c ${shellQuote(o.sink)}`, ...auth.slice(1));
  return lines.join("\n") + "\n";
}

/** One push per apply and registry, shared by the per-host distribute steps (never the same blob twice at once). */
const pushes = new WeakMap<ExecContext, Map<string, Promise<Pushed>>>();

interface Pushed {
  client?: RegistryClient;
  error?: string;
  /** Bytes the push sent; handed to the first step that asks, so they are counted once. */
  takeBytes: () => number;
}

function pushOnce(ctx: ExecContext, source: RegistrySource, repo: string, tag: string): Promise<Pushed> {
  let byHost = pushes.get(ctx);
  if (!byHost) pushes.set(ctx, (byHost = new Map()));
  let p = byHost.get(source.host);
  if (!p) {
    p = (async (): Promise<Pushed> => {
      let client: RegistryClient | undefined;
      try {
        client = await RegistryClient.open(source.host, source.client);
        const pushed = await pushImage(`${source.host}/${repo}:${tag}`, {
          ...source.client,
          client,
          store: ctx.layout,
          source: ctx.image.reference,
        });
        log.info(
          `distribute: image pushed to ${source.what} as ${repo}:${tag}: ${pushed.blobsUploaded} blob(s) sent (${formatBytes(pushed.bytesUploaded)}), ${pushed.blobsSkipped} already there`,
        );
        let bytes = pushed.bytesUploaded;
        const c = client;
        // Idle keep-alive sockets do not hold the process; the client lives as long as this apply.
        return {
          client: c,
          takeBytes: () => {
            const b = bytes;
            bytes = 0;
            return b;
          },
        };
      } catch (err) {
        client?.close();
        const msg = err instanceof Error ? err.message : String(err);
        log.warn(`distribute: could not push the image to ${source.what} (${msg}); distributing over SSH`);
        return { error: msg, takeBytes: () => 0 };
      }
    })();
    byHost.set(source.host, p);
  }
  return p;
}

/**
 * Pushes the image once to `source` (shared by the per-host distribute steps of one apply) and
 * returns how the nodes fetch its layers, with the bytes this step's share of the push sent.
 * A push that fails (registry unreachable from here) or a registry that grants no pull access
 * returns no fetch: every host goes over SSH, with a warning naming the registry.
 */
export async function fetchFromRegistry(
  ctx: ExecContext,
  source: RegistrySource,
): Promise<{ pushedBytes: number; fetch?: LayerFetch }> {
  const { repo, tag } = target(ctx);
  const pushed = await pushOnce(ctx, source, repo, tag);
  const pushedBytes = pushed.takeBytes();
  // pushOnce has warned about a failed push already.
  if (!pushed.client) return { pushedBytes };
  let access: { base: string; authorization?: string };
  try {
    // Per step: a bearer token is renewed by the client when it is about to expire.
    access = await pushed.client.pullAccess(repo);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    log.warn(`distribute: could not get pull access to ${source.what} (${msg}); distributing over SSH`);
    return { pushedBytes };
  }
  if (access.authorization) registerSecret(access.authorization);
  return {
    pushedBytes,
    fetch: {
      what: source.what,
      script: (digest, offset, sink) =>
        fetchLayerScript({
          baseUrl: access.base,
          repo,
          digest,
          offset,
          sink,
          ...(access.authorization ? { authorization: access.authorization } : {}),
          ...(source.caPem ? { caPem: source.caPem } : {}),
        }),
    },
  };
}
