/**
 * Local nodes: N "machines" on this host, each a network namespace with its own IP on a
 * bridge, its own mount namespace with copy-on-write overlays of /etc /usr /var /opt /root /home
 * (lower = the host directory, upper/work in the node's state dir), a private /tmp, /run (tmpfs)
 * and /var/lib/containerd, the host's cgroup hierarchies, and its own sshd with its own host key.
 * Used by the `sealer nodes` CLI, the Infra `local` provider and the integration tests.
 *
 * Layout per node: <sealerHome>/local-nodes/<name>/{node.json, id_ed25519(.pub), ssh_host_ed25519_key,
 * upper/<dir>, work/<dir>, tmp/, containerd/, holder.log, sshd.log}.
 *
 * A "holder" process (`sleep infinity` inside the node's namespaces) owns the mount namespace, so
 * sshd can be stopped and started again (tests: late start, changed host key, killed sshd).
 * Traffic: nodes have no default route; they reach only the bridge subnet (this host's bridge
 * address and each other).
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../errors";
import { acquireLock, writeJsonAtomic } from "../../fsutil";
import { log, registerSecret } from "../../log";
import { dataPaths, sealerHome } from "../../paths";
import { forgetHostKey } from "../../ssh/known-hosts";
import { execFileP, pidRunning, requireRoot, sh, waitFor } from "./host-cmd";
import { pickSubnet, parseSubnet, subnetHost, validatePrefix } from "./net-plan";
import { isolateBridge, netnsList, usedSubnets } from "./network";
import { generateHostKey, nodeSetupScript, OVERLAY_DIRS } from "./node-setup";
import { killAndWait, netnsPids } from "./processes";
import { listLocalNodes, localNodesDir } from "./records";
import { startSshd } from "./sshd";
import type { CreateLocalNodesOptions, LocalNode } from "./types";

export type { CreateLocalNodesOptions, LocalNode, SudoUserSpec } from "./types";
export { pickSubnet, parseSubnet, subnetHost, validatePrefix } from "./net-plan";
export { requireRoot } from "./host-cmd";
export { execInNode, killNodeProcesses, nsenterArgs } from "./processes";
export { listLocalNodes, localNodesDir, nodeRunning } from "./records";
export { nodeTarget, regenerateHostKey, sshAnswers, startSshd, stopSshd } from "./sshd";

function globalLockFile(): string {
  return fs.existsSync("/run/lock")
    ? "/run/lock/sealer-local-nodes.lock"
    : path.join(os.tmpdir(), "sealer-local-nodes.lock");
}

function shortHash(s: string, n: number): string {
  return crypto.createHash("sha256").update(s).digest("hex").slice(0, n);
}

/**
 * Creates `count` nodes named `<prefix>-1..N`. On failure everything created so far is removed.
 * Requires root.
 */
export async function createLocalNodes(
  opts: CreateLocalNodesOptions,
  home = sealerHome(),
): Promise<LocalNode[]> {
  requireRoot();
  const problems = validatePrefix(opts.prefix);
  if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 200)
    problems.push(`--count must be between 1 and 200 (got ${opts.count})`);
  if (opts.subnet !== undefined && !parseSubnet(opts.subnet))
    problems.push(`--subnet must look like 10.1.2.0/24 (got ${opts.subnet})`);
  if (opts.sudoUser && !/^[a-z_][a-z0-9_-]{0,30}$/.test(opts.sudoUser.name))
    problems.push(`--user must be a valid user name (got ${opts.sudoUser.name})`);
  if (problems.length)
    throw new UserError(`Invalid local node options:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
      problems,
    });
  registerSecret(opts.sudoUser?.password);
  registerSecret(opts.rootPassword);

  const release = await acquireLock(globalLockFile(), "local node allocation");
  let nodes: LocalNode[] = [];
  // Only what this call created is cleaned up on failure: existing nodes of the prefix are never touched.
  let started = false;
  try {
    const existing = await listLocalNodes(opts.prefix, home);
    const strayNs = (await netnsList()).filter((n) => new RegExp(`^${opts.prefix}-\\d+$`).test(n));
    if (existing.length || strayNs.length)
      throw new UserError(
        `local nodes with prefix "${opts.prefix}" already exist (${[...new Set([...existing.map((n) => n.name), ...strayNs])].join(", ")}); delete them first with \`sealer nodes delete --name ${opts.prefix}\` or pick another --name`,
      );
    const subnet = opts.subnet ?? pickSubnet(opts.prefix, await usedSubnets());
    const sn = parseSubnet(subnet)!;
    if (opts.count > 250) throw new UserError(`subnet ${subnet} has room for 250 nodes`);
    const bridge = `sb-${shortHash(opts.prefix, 8)}`;
    started = true;
    const base = path.join(localNodesDir(home), `.${opts.prefix}`);
    await fs.promises.mkdir(base, { recursive: true });
    log.info(
      `creating ${opts.count} local node(s) ${opts.prefix}-1..${opts.count} on ${subnet} (bridge ${bridge})`,
    );
    await sh("ip", ["link", "add", bridge, "type", "bridge"], "creating the bridge");
    await fs.promises.writeFile(path.join(base, "bridge"), bridge);
    await sh("ip", ["addr", "add", `${subnetHost(sn, 1)}/24`, "dev", bridge], "addressing the bridge");
    await sh("ip", ["link", "set", bridge, "up"], "bringing the bridge up");
    await isolateBridge(bridge, opts.prefix, "add");
    // One client key for the group, as a Clusterfile has one key for all its hosts.
    const groupKey = path.join(base, "id_ed25519");
    await fs.promises.rm(groupKey, { force: true });
    await fs.promises.rm(groupKey + ".pub", { force: true });
    await sh(
      "ssh-keygen",
      ["-q", "-t", "ed25519", "-N", "", "-C", `sealer-local-${opts.prefix}`, "-f", groupKey],
      "generating the client key",
    );
    for (let i = 1; i <= opts.count; i++) {
      const node = await createNode(opts, i, subnetHost(sn, i + 1), subnet, bridge, groupKey, home);
      nodes.push(node);
    }
    if (opts.startSshd !== false) {
      nodes = await Promise.all(nodes.map((n) => startSshd(n)));
    }
    await fs.promises.rm(base, { recursive: true, force: true });
    return nodes;
  } catch (err) {
    if (!started) throw err;
    log.warn(
      `creating local nodes ${opts.prefix}-*: ${err instanceof Error ? err.message : String(err)}; removing what was created`,
    );
    await deleteLocalNodes(opts.prefix, home).catch((e: unknown) =>
      log.warn(`cleanup of ${opts.prefix}: ${e instanceof Error ? e.message : String(e)}`),
    );
    throw err;
  } finally {
    await release();
  }
}

async function createNode(
  opts: CreateLocalNodesOptions,
  index: number,
  ip: string,
  subnet: string,
  bridge: string,
  groupKey: string,
  home: string,
): Promise<LocalNode> {
  const name = `${opts.prefix}-${index}`;
  const stateDir = path.join(localNodesDir(home), name);
  await fs.promises.rm(stateDir, { recursive: true, force: true });
  for (const d of OVERLAY_DIRS) {
    await fs.promises.mkdir(path.join(stateDir, "upper", d), { recursive: true });
    await fs.promises.mkdir(path.join(stateDir, "work", d), { recursive: true });
  }
  await fs.promises.mkdir(path.join(stateDir, "containerd"), { recursive: true, mode: 0o711 });
  await fs.promises.mkdir(path.join(stateDir, "tmp"), { recursive: true, mode: 0o1777 });
  await fs.promises.chmod(path.join(stateDir, "tmp"), 0o1777);
  const keyPath = path.join(stateDir, "id_ed25519");
  await fs.promises.copyFile(groupKey, keyPath);
  await fs.promises.chmod(keyPath, 0o600);
  await fs.promises.copyFile(groupKey + ".pub", keyPath + ".pub");
  const pub = await fs.promises.readFile(keyPath + ".pub", "utf8");
  // root's authorized_keys goes straight into the node's upper layer of /root.
  const sshDir = path.join(stateDir, "upper", "root", ".ssh");
  await fs.promises.mkdir(sshDir, { recursive: true, mode: 0o700 });
  await fs.promises.writeFile(path.join(sshDir, "authorized_keys"), pub, { mode: 0o600 });
  await generateHostKey(stateDir);
  const hostKeyPub = (
    await fs.promises.readFile(path.join(stateDir, "ssh_host_ed25519_key.pub"), "utf8")
  ).trim();

  const veth = `sv${shortHash(opts.prefix, 6)}${index}`;
  await sh("ip", ["netns", "add", name], `creating netns ${name}`);
  await sh(
    "ip",
    ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name],
    `creating the veth of ${name}`,
  );
  await sh("ip", ["link", "set", veth, "master", bridge, "up"], `attaching ${veth} to ${bridge}`);
  await sh("ip", ["-n", name, "addr", "add", `${ip}/24`, "dev", "eth0"], `addressing ${name}`);
  await sh("ip", ["-n", name, "link", "set", "eth0", "up"], `bringing up eth0 in ${name}`);
  await sh("ip", ["-n", name, "link", "set", "lo", "up"], `bringing up lo in ${name}`);

  const setup = nodeSetupScript(stateDir, name, opts);
  const holderLog = path.join(stateDir, "holder.log");
  const fd = fs.openSync(holderLog, "a");
  const child = spawn(
    "ip",
    ["netns", "exec", name, "unshare", "--mount", "--uts", "--propagation", "private", "sh", "-c", setup],
    { detached: true, stdio: ["ignore", fd, fd] },
  );
  fs.closeSync(fd);
  child.unref();
  const holderPid = child.pid!;
  await waitFor(
    async () => {
      const text = await fs.promises.readFile(holderLog, "utf8").catch(() => "");
      if (text.includes("SEALER-NODE-FAILED"))
        throw new Error(`setting up node ${name} failed:\n${text.trim()}`);
      if (!pidRunning(holderPid))
        throw new Error(`the setup process of node ${name} exited:\n${text.trim()}`);
      return text.includes("SEALER-NODE-READY");
    },
    30_000,
    `node ${name} setup`,
  );
  const node: LocalNode = {
    name,
    prefix: opts.prefix,
    ip,
    port: 22,
    keyPath,
    hostKeyPub,
    sshdPid: null,
    holderPid,
    netns: name,
    bridge,
    subnet,
    stateDir,
    ...(opts.sudoUser ? { sudoUser: { nopasswd: true, ...opts.sudoUser } } : {}),
    ...(opts.rootPassword !== undefined ? { rootPassword: opts.rootPassword } : {}),
  };
  await writeJsonAtomic(path.join(stateDir, "node.json"), node, 0o600);
  return node;
}

/**
 * Removes every node with this prefix: kills all processes in each netns (sshd, sessions,
 * servers started over SSH, the holder; the mount namespace and its overlays go with them),
 * deletes the netns (the veth goes with it), the bridge when no node uses it any more, and the
 * state dirs. Also cleans up after a create that crashed halfway. Returns the names removed.
 */
export async function deleteLocalNodes(prefix: string, home = sealerHome()): Promise<string[]> {
  requireRoot();
  const problems = validatePrefix(prefix);
  if (problems.length)
    throw new UserError(`Invalid local node name prefix:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
      problems,
    });
  const nodes = await listLocalNodes(prefix, home);
  const re = new RegExp(`^${prefix}-\\d+$`);
  const names = new Set([...nodes.map((n) => n.netns), ...(await netnsList()).filter((n) => re.test(n))]);
  const bridges = new Set(nodes.map((n) => n.bridge));
  const partial = path.join(localNodesDir(home), `.${prefix}`);
  const partialBridge = await fs.promises.readFile(path.join(partial, "bridge"), "utf8").catch(() => "");
  if (partialBridge) bridges.add(partialBridge.trim());
  for (const ns of names) {
    const node = nodes.find((n) => n.netns === ns);
    await killAndWait([...(await netnsPids(ns)), node?.sshdPid, node?.holderPid]);
    await execFileP("ip", ["netns", "del", ns]).catch((err: unknown) =>
      log.debug(`ip netns del ${ns}: ${String(err)}`),
    );
  }
  const others = (await listLocalNodes(undefined, home)).filter((n) => n.prefix !== prefix);
  for (const br of bridges) {
    if (others.some((n) => n.bridge === br)) continue;
    await execFileP("ip", ["link", "del", br]).catch(() => undefined);
    await isolateBridge(br, prefix, "del");
  }
  for (const n of names)
    await fs.promises.rm(path.join(localNodesDir(home), n), { recursive: true, force: true });
  // These hosts are gone for good: their pinned keys would only make a re-created node look like an attack.
  for (const n of nodes) await forgetHostKey(dataPaths.knownHosts(home), n.ip, n.port).catch(() => 0);
  await fs.promises.rm(partial, { recursive: true, force: true });
  return [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}
