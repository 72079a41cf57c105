/**
 * Registry mirrors for pulling container images at build time: `SRC=MIRROR` pairs where MIRROR
 * is `host[:port][/prefix]`, so `SRC/repo:tag` is pulled from `MIRROR/repo:tag` (with the
 * prefix between host and repo). `docker.io` covers short names (`nginx` is
 * `docker.io/library/nginx`). The cached image keeps its original name: a mirror changes only
 * where the bytes come from.
 *
 * Mirrors come from `--registry-mirror` flags and from `<data dir>/mirrors.yaml`
 * (`mirrors: {docker.io: "127.0.0.1:5000/hub", quay.io: "mirror.example.com/quay"}`; JSON is
 * accepted too). A flag wins over the file for the same source registry.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { UserError } from "../errors";
import { MAX_CLUSTERFILE_BYTES, readUserFile } from "../limits";
import { formatReference, parseReference } from "../common/reference";
import { normalizeRegistryHost } from "./credentials";

/** Source registry host -> mirror `host[:port][/prefix]`. */
export type Mirrors = Record<string, string>;

export const MIRRORS_FILE = "mirrors.yaml";

const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;
const PREFIX_PART = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Validates one mapping; `where` names its origin for messages. */
function checkedPair(src: string, mirror: string, where: string): [string, string] {
  const usage = `${where}: expected SRC=MIRROR with MIRROR as host[:port][/prefix], e.g. docker.io=127.0.0.1:5000/hub`;
  const from = src.trim();
  const to = mirror.trim().replace(/\/+$/, "");
  if (!from || !to) throw new UserError(usage);
  if (/^[a-z]+:\/\//i.test(to)) throw new UserError(`${usage} (no scheme: "${to}")`);
  const [host, ...prefix] = to.split("/");
  // Like an image reference's domain: a dot, a port or "localhost" tells a host from a path.
  const looksLikeHost = /[.:]/.test(host ?? "") || host === "localhost";
  if (!HOST.test(host ?? "") || !looksLikeHost || prefix.some((p) => !PREFIX_PART.test(p)))
    throw new UserError(`${usage} ("${to}" is not one)`);
  if (!HOST.test(from)) throw new UserError(`${usage} ("${from}" is not a registry host)`);
  return [normalizeRegistryHost(from), to];
}

/** `--registry-mirror SRC=MIRROR` values. */
export function parseMirrorFlags(values: string[]): Mirrors {
  const out: Mirrors = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    const [src, mirror] = checkedPair(
      eq < 0 ? "" : v.slice(0, eq),
      eq < 0 ? "" : v.slice(eq + 1),
      `--registry-mirror "${v}"`,
    );
    out[src] = mirror;
  }
  return out;
}

/** `<home>/mirrors.yaml`, or no mirrors when the file does not exist. */
export function loadMirrorsFile(home: string): Mirrors {
  const file = path.join(home, MIRRORS_FILE);
  if (!fs.existsSync(file)) return {};
  const text = readUserFile(file, "mirrors file", MAX_CLUSTERFILE_BYTES, "fix it or remove it");
  const doc = YAML.parseDocument(text, { prettyErrors: false });
  const err = doc.errors[0];
  if (err)
    throw new UserError(
      `${file}:${err.linePos?.[0].line ?? 1}: not valid YAML (${err.message.split("\n")[0]})`,
    );
  const body = doc.toJS() as unknown;
  const mirrors = (body as { mirrors?: unknown } | null)?.mirrors;
  if (body === null || body === undefined) return {};
  if (!mirrors || typeof mirrors !== "object" || Array.isArray(mirrors))
    throw new UserError(
      `${file}: expected "mirrors:" mapping source registries to mirrors, e.g. mirrors: {docker.io: "127.0.0.1:5000/hub"}`,
    );
  const out: Mirrors = {};
  for (const [src, mirror] of Object.entries(mirrors as Record<string, unknown>)) {
    if (typeof mirror !== "string")
      throw new UserError(`${file}: mirrors.${src} must be a string host[:port][/prefix]`);
    const [s, m] = checkedPair(src, mirror, `${file}: mirrors.${src}`);
    out[s] = m;
  }
  return out;
}

/**
 * Every problem of a SRC -> MIRROR map given as data (not flags), each message starting with
 * `where(src)`; empty when all pairs are valid.
 */
export function mirrorMapProblems(map: Record<string, unknown>, where: (src: string) => string): string[] {
  const problems: string[] = [];
  for (const [src, mirror] of Object.entries(map)) {
    try {
      if (typeof mirror !== "string")
        throw new UserError(`${where(src)} must be a string host[:port][/prefix]`);
      checkedPair(src, mirror, where(src));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}

/** The file's mirrors overridden by the flags'. */
export function resolveMirrors(home: string, flags: string[] = []): Mirrors {
  return { ...loadMirrorsFile(home), ...parseMirrorFlags(flags) };
}

/** Where to pull a normalised `ref` from: its mirror's reference, or undefined without one. */
export function mirrorReference(ref: string, mirrors: Mirrors): string | undefined {
  const r = parseReference(ref);
  const mirror = mirrors[r.domain];
  if (!mirror) return undefined;
  const [host, ...prefix] = mirror.split("/");
  return formatReference({ ...r, domain: host!, path: [...prefix, r.path].join("/") });
}
