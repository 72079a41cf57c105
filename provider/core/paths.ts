import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "./errors";
import { log } from "./log";

/**
 * The data directory: image store, registry credentials, known hosts, cluster state.
 * `$SEALER_HOME` when set; otherwise `$XDG_DATA_HOME/sealer`, else `~/.local/share/sealer`.
 */
export function sealerHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEALER_HOME) return path.resolve(env.SEALER_HOME);
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, "sealer");
  return path.join(os.homedir(), ".local", "share", "sealer");
}

/**
 * Creates the data directory mode 0700 (it holds credentials, cluster state and host keys) with
 * any missing parents, also 0700 as the XDG base directory rules ask. An existing data directory
 * that others may enter is narrowed to 0700, said in the log; its parents are never changed.
 */
export function ensureSealerHome(home = sealerHome()): string {
  let mode: number;
  try {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    mode = fs.statSync(home).mode & 0o777;
    if (mode !== 0o700) fs.chmodSync(home, 0o700);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new UserError(
      `cannot create or secure the sealer data directory ${home} (${code}): set SEALER_HOME to a directory you own`,
      { cause: err },
    );
  }
  if (mode !== 0o700) {
    log.warn(
      `${home}: permissions changed from ${mode.toString(8).padStart(4, "0")} to 0700 (the sealer data directory holds credentials)`,
    );
  }
  return home;
}

/** Where each kind of local data lives under the data directory. */
export const dataPaths = {
  store: (home = sealerHome()) => path.join(home, "store"), // OCI image layout
  buildCache: (home = sealerHome()) => path.join(home, "build-cache"),
  auth: (home = sealerHome()) => path.join(home, "auth.json"), // docker-style credentials, 0600
  knownHosts: (home = sealerHome()) => path.join(home, "known_hosts"),
  clusters: (home = sealerHome()) => path.join(home, "clusters"), // <name>/state.json, 0600
  tmp: (home = sealerHome()) => path.join(home, "tmp"),
};

/** Default data root on nodes (as in sealer). Everything the tool keeps on a node lives below it. */
export const DEFAULT_NODE_DATA_ROOT = "/var/lib/sealer";
