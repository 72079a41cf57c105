/** SSH layer: connection pool, exec, streamed atomic uploads, host-key pinning, sudo. */
export { SshPool, CommandError, HostKeyMismatchError, ConnectionLostError } from "./pool";
export type { SshTarget, SshPoolOptions, ExecOptions, ExecResult } from "./pool";
export { shellQuote, envPrefix, wrapCommand, tailLines } from "./shell";
export { forgetHostKey, readKnownHosts, hostPattern } from "./known-hosts";
