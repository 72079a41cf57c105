import * as os from "node:os";
import * as path from "node:path";

/**
 * The data directory: image store, registry credentials, known hosts, cluster state.
 * `$SEALER_HOME` when set; otherwise `$XDG_DATA_HOME/sealer`, else `~/.local/share/sealer`.
 */
export function sealerHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEALER_HOME) return path.resolve(env.SEALER_HOME);
  if (env.XDG_DATA_HOME) return path.join(env.XDG_DATA_HOME, "sealer");
  return path.join(os.homedir(), ".local", "share", "sealer");
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
