import { UserError } from "../errors";

/**
 * An image reference: `[domain[:port]/]path[:tag][@sha256:digest]`, normalised the way docker
 * does: no domain means docker.io, a single-component path on docker.io gets `library/`, no tag
 * and no digest means `latest`.
 */
export interface Reference {
  /** Registry host (with port), e.g. "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path, e.g. "library/nginx", "team/app". */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = "docker.io";
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** A string that is not an image reference; `why` says what is wrong with it. */
export class InvalidReferenceError extends UserError {
  override readonly name: string = "InvalidReferenceError";
  constructor(
    readonly input: string,
    readonly why: string,
  ) {
    super(`invalid image reference "${input}": ${why}`);
  }
}

export function parseReference(input: string): Reference {
  const raw = input.trim();
  const bad = (why: string) => new InvalidReferenceError(input, why);
  if (!raw) throw bad("it is empty");
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`"${digest}" is not a sha256 digest (sha256:<64 hex>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw bad(`tag "${tag}" may hold letters, digits, '_', '.', '-' (at most 128)`);
  }
  const parts = rest.split("/");
  let domain = DEFAULT_DOMAIN;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    domain = first;
    parts.shift();
  }
  if (domain === "index.docker.io") domain = DEFAULT_DOMAIN;
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p)))
    throw bad("repository names are lowercase letters, digits and separators ('.', '_', '-') between '/'");
  if (domain === DEFAULT_DOMAIN && parts.length === 1) parts.unshift("library");
  // The distribution spec's limit on a repository name (domain and path): registries refuse more.
  if (domain.length + 1 + parts.join("/").length > 255) throw bad("the name is longer than 255 characters");
  if (!tag && !digest) tag = "latest";
  return { domain, path: parts.join("/"), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Full form: "docker.io/library/nginx:latest", "127.0.0.1:5000/team/app:1@sha256:…". */
export function formatReference(ref: Reference): string {
  return `${ref.domain}/${ref.path}${ref.tag ? ":" + ref.tag : ""}${ref.digest ? "@" + ref.digest : ""}`;
}

/** Short form for display: drops "docker.io/library/" and "docker.io/". */
export function familiarReference(ref: Reference): string {
  const full = formatReference(ref);
  if (full.startsWith("docker.io/library/")) return full.slice("docker.io/library/".length);
  if (full.startsWith("docker.io/")) return full.slice("docker.io/".length);
  return full;
}

/** Normalises any input to the full form used as the store's ref name. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}
