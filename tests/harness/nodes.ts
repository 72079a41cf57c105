/**
 * Local nodes for integration tests: real sshd in network namespaces (see
 * provider/core/infra/local). Each group gets a unique prefix, its own SEALER_HOME-independent
 * known_hosts file and is always removed after the suite.
 *
 *   const nodes = useNodes(3, { sudoUser: { name: "deploy" } });   // inside describe()
 *   it("...", async () => { const pool = nodes.pool(); ... nodes.list[0].ip ... });
 *
 *   await withNodes(2, async (nodes, pool) => { ... });           // one-off, always torn down
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  createLocalNodes,
  deleteLocalNodes,
  nodeTarget,
  type CreateLocalNodesOptions,
  type LocalNode,
} from "../../provider/core/infra/local";
import { sealerHome } from "../../provider/core/paths";
import { SshPool, type SshPoolOptions, type SshTarget } from "../../provider/core/ssh";

export type NodeGroupOptions = Omit<CreateLocalNodesOptions, "count" | "prefix"> & {
  prefix?: string;
  pool?: Partial<SshPoolOptions>;
};

export interface NodeGroup {
  list: LocalNode[];
  /** A temp dir private to this group (known_hosts lives here). */
  dir: string;
  knownHostsFile: string;
  /** Root targets (key login). */
  targets(): SshTarget[];
  /** A pool for this group (closed in teardown). */
  pool(extra?: Partial<SshPoolOptions>): SshPool;
  /** Replaces a node entry after startSshd/stopSshd/regenerateHostKey returned a new one. */
  update(node: LocalNode): void;
}

/** A short prefix unique to this process and call: netns/bridge names must not collide across parallel runs. */
export function uniquePrefix(tag = "t"): string {
  return `${tag.slice(0, 3)}${process.pid.toString(36).slice(-4)}${crypto.randomBytes(2).toString("hex")}`.slice(
    0,
    12,
  );
}

export async function createNodeGroup(
  count: number,
  opts: NodeGroupOptions = {},
): Promise<NodeGroup & { destroy(): Promise<void> }> {
  const prefix = opts.prefix ?? uniquePrefix();
  // The data dir the nodes are recorded in, fixed now: a test may point SEALER_HOME elsewhere
  // before teardown, and deleting from another home would leak the bridge and the state dirs.
  const home = sealerHome();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `sealer-nodes-${prefix}-`));
  const { pool: poolOpts, prefix: _p, ...create } = opts;
  const pools: SshPool[] = [];
  const group = {
    list: [] as LocalNode[],
    dir,
    knownHostsFile: path.join(dir, "known_hosts"),
    targets: () => group.list.map((n) => nodeTarget(n)),
    pool: (extra: Partial<SshPoolOptions> = {}) => {
      const p = new SshPool({
        knownHostsFile: group.knownHostsFile,
        dialAttempts: 3,
        dialBackoffMs: 200,
        ...poolOpts,
        ...extra,
      });
      pools.push(p);
      return p;
    },
    update: (node: LocalNode) => {
      group.list = group.list.map((n) => (n.name === node.name ? node : n));
    },
    destroy: async () => {
      await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
      await deleteLocalNodes(prefix, home);
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
  try {
    group.list = await createLocalNodes({ ...create, count, prefix }, home);
  } catch (err) {
    await group.destroy().catch(() => undefined);
    throw err;
  }
  return group;
}

/** Mocha hooks: nodes created in before(), always deleted in after(). */
export function useNodes(count: number, opts: NodeGroupOptions = {}): NodeGroup {
  let g: (NodeGroup & { destroy(): Promise<void> }) | undefined;
  const proxy: NodeGroup = {
    get list() {
      return need().list;
    },
    get dir() {
      return need().dir;
    },
    get knownHostsFile() {
      return need().knownHostsFile;
    },
    targets: () => need().targets(),
    pool: (extra) => need().pool(extra),
    update: (n) => need().update(n),
  };
  function need() {
    if (!g) throw new Error("nodes are not created yet (use them inside it()/before())");
    return g;
  }
  before(async function () {
    this.timeout(120_000);
    g = await createNodeGroup(count, opts);
  });
  after(async function () {
    this.timeout(60_000);
    await g?.destroy();
  });
  return proxy;
}

/** Creates nodes, runs fn, always tears down. */
export async function withNodes<T>(
  count: number,
  fn: (group: NodeGroup, pool: SshPool) => Promise<T>,
  opts: NodeGroupOptions = {},
): Promise<T> {
  const g = await createNodeGroup(count, opts);
  try {
    return await fn(g, g.pool());
  } finally {
    await g.destroy();
  }
}
