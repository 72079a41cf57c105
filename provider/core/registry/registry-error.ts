import { TransientError, UserError } from "../errors";

/** What a registry request was about: the registry, and when known the repository and object. */
export interface RegistryTarget {
  registry: string;
  repository?: string;
  /** "blob sha256:…", "manifest 1.0", "upload of blob sha256:…". */
  object?: string;
}

/**
 * A failed registry operation, like go-containerregistry's transport errors: it names the
 * registry, the repository and the blob or manifest, and says whether trying again may help
 * (`temporary`: connection resets, timeouts, 429 and 5xx). Retry helpers retry temporary ones.
 * Final errors that already name registry and repository and say what to do (authentication,
 * TLS) keep their message; `target` still carries the object.
 */
export class RegistryError extends UserError {
  override readonly name: string = "RegistryError";
  readonly temporary: boolean;
  readonly status: number | undefined;
  readonly code: string | undefined;
  constructor(
    readonly target: RegistryTarget,
    readonly detail: string,
    opts: { temporary: boolean; status?: number; code?: string; cause?: unknown; message?: string },
  ) {
    super(
      opts.message ??
        `${describeTarget(target)}: ${detail}${opts.temporary ? " (this may be temporary: try again)" : ""}`,
      opts.cause === undefined ? {} : { cause: opts.cause },
    );
    this.temporary = opts.temporary;
    this.status = opts.status;
    this.code = opts.code;
  }
}

function describeTarget(t: RegistryTarget): string {
  const where = `${t.registry}${t.repository ? `/${t.repository}` : ""}`;
  return t.object ? `${t.object} in ${where}` : where;
}

/** Repository and object of a registry API URL (`/v2/<repo>/blobs/<digest>`, uploads, manifests). */
export function targetOfUrl(registry: string, url: string): RegistryTarget {
  let u: URL;
  try {
    u = new URL(url, "http://x");
  } catch {
    return { registry };
  }
  const m = /^\/v2\/(.+?)\/(blobs\/uploads|blobs|manifests|tags)(?:\/(.*))?$/.exec(u.pathname);
  if (!m) return { registry };
  const [, repository, kind, rest] = m;
  const digest = u.searchParams.get("digest");
  const object =
    kind === "blobs/uploads"
      ? digest
        ? `upload of blob ${digest}`
        : u.searchParams.get("mount")
          ? `mount of blob ${u.searchParams.get("mount")}`
          : "blob upload"
      : kind === "blobs"
        ? `blob ${rest}`
        : kind === "manifests"
          ? `manifest ${rest}`
          : "tag list";
  return { registry, ...(repository ? { repository } : {}), object };
}

/** Words for Node's socket error codes; none of them is shown raw. */
const NETWORK_WORDS: Record<string, string> = {
  ECONNRESET: "the registry closed the connection in the middle of the exchange",
  ECONNREFUSED: "the connection was refused (is the registry running, and at this address?)",
  ETIMEDOUT: "the registry stopped answering",
  EPIPE: "the connection broke while sending",
  ECONNABORTED: "the connection was aborted",
  EAI_AGAIN: "the registry's name could not be resolved right now",
  ENETUNREACH: "the network is unreachable",
  EHOSTUNREACH: "the registry host is unreachable",
  UND_ERR_SOCKET: "the connection failed",
};

/**
 * Which ECONNRESET Node raised: its http client gives both kinds the same code and tells them
 * apart only by message text ("aborted": the response body was cut short; "socket hang up": no
 * response at all), so this is the one place that reads Node's wording.
 */
function resetKind(code: string, message: string): string {
  if (code !== "ECONNRESET") return "";
  if (message === "aborted") return " (the response was cut short)";
  if (message === "socket hang up") return " (no response)";
  return "";
}

/**
 * Any failure of a registry request as a RegistryError naming `target`. Errors that already
 * are RegistryErrors keep their target; other UserErrors keep their words and are final;
 * TransientErrors and socket errors are temporary.
 */
export function toRegistryError(err: unknown, target: RegistryTarget): RegistryError {
  if (err instanceof RegistryError) return err;
  // Final errors that already say what to do (login, TLS, verification) keep their words.
  if (err instanceof UserError)
    return new RegistryError(target, err.message, { temporary: false, cause: err, message: err.message });
  const e = err as NodeJS.ErrnoException | undefined;
  const code = typeof e?.code === "string" ? e.code : undefined;
  // Our own errors (timeouts included) say what happened in words already.
  if (err instanceof TransientError)
    return new RegistryError(target, err.message, { temporary: true, ...(code ? { code } : {}), cause: err });
  const message = e instanceof Error ? e.message : String(err);
  if (code && NETWORK_WORDS[code])
    return new RegistryError(target, `${NETWORK_WORDS[code]}${resetKind(code, message)}`, {
      temporary: true,
      code,
      cause: err,
    });
  return new RegistryError(target, `the request failed (${code ?? message})`, {
    temporary: false,
    ...(code ? { code } : {}),
    cause: err,
  });
}
