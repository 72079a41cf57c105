/**
 * Local nodes (I2): N "machines" on this host, each a network namespace with its own IP on a
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
import { execFile, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { poll } from "../../common/retry";
import { UserError } from "../../errors";
import { acquireLock, pidAlive, readJsonIfExists, writeJsonAtomic } from "../../fsutil";
import { log, registerSecret } from "../../log";
import { dataPaths, sealerHome } from "../../paths";
import { forgetHostKey } from "../../ssh/known-hosts";
import type { SshTarget } from "../../ssh";
import { shellQuote } from "../../ssh/shell";
import { pickSubnet, parseSubnet, subnetHost, validatePrefix } from "./net-plan";
import type { CreateLocalNodesOptions, LocalNode } from "./types";

export type { CreateLocalNodesOptions, LocalNode, SudoUserSpec } from "./types";
export { pickSubnet, parseSubnet, subnetHost, validatePrefix } from "./net-plan";

const execFileP = promisify(execFile);
const OVERLAY_DIRS = ["etc", "usr", "var", "opt", "root", "home"];
/** The host key's path inside a node (in the node's copy-on-write /etc). */
const NODE_HOST_KEY = "/etc/ssh/sealer_node_host_ed25519_key";
/** PATH for commands run inside a node without SSH (what a root login on a fresh Debian host has). */
const NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function localNodesDir(home = sealerHome()): string {
  return path.join(home, "local-nodes");
}

function globalLockFile(): string {
  return fs.existsSync("/run/lock")
    ? "/run/lock/sealer-local-nodes.lock"
    : path.join(os.tmpdir(), "sealer-local-nodes.lock");
}

export function requireRoot(what = "local nodes"): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    throw new UserError(
      `${what} need root (network namespaces, bridges and overlay mounts): run this command as root, e.g. with sudo`,
    );
}

async function sh(cmd: string, args: string[], what: string): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${what}: ${cmd} ${args.join(" ")} failed: ${(e.stderr || e.message).trim()}`, {
      cause: err,
    });
  }
}

function shortHash(s: string, n: number): string {
  return crypto.createHash("sha256").update(s).digest("hex").slice(0, n);
}

/** A recorded pid (absent when the node never got that far) that is still running. */
function pidRunning(pid: number | null | undefined): boolean {
  return !!pid && pidAlive(pid);
}

/** The SSH target for a node: root by default, or the node's sudo user with `asSudoUser`. */
export function nodeTarget(
  node: LocalNode,
  opts: { asSudoUser?: boolean; usePassword?: boolean } = {},
): SshTarget {
  if (opts.asSudoUser) {
    if (!node.sudoUser)
      throw new UserError(`local node ${node.name} has no sudo user; create the nodes with --user`);
    return {
      host: node.ip,
      port: node.port,
      user: node.sudoUser.name,
      sudo: true,
      ...(opts.usePassword ? {} : { privateKeyPath: node.keyPath }),
      ...(node.sudoUser.password !== undefined
        ? { password: node.sudoUser.password, sudoPassword: node.sudoUser.password }
        : {}),
    };
  }
  if (opts.usePassword)
    return { host: node.ip, port: node.port, user: "root", password: node.rootPassword ?? "" };
  return { host: node.ip, port: node.port, user: "root", privateKeyPath: node.keyPath };
}

/**
 * Nodes have no default route, so they reach only their subnet. These FORWARD rules make that
 * hold even if someone adds a route inside a node on a host with IP forwarding on (Docker hosts):
 * nothing is routed between the bridge and any other interface. Best effort: without iptables
 * the missing default route is the only fence, and we say so.
 */
async function isolateBridge(bridge: string, prefix: string, action: "add" | "del"): Promise<void> {
  const rules = [
    ["-i", bridge, "!", "-o", bridge],
    ["-o", bridge, "!", "-i", bridge],
  ];
  for (const r of rules) {
    const spec = ["FORWARD", ...r, "-m", "comment", "--comment", `sealer-local-${prefix}`, "-j", "DROP"];
    try {
      if (action === "add") await execFileP("iptables", ["-I", ...spec]);
      else while (true) await execFileP("iptables", ["-D", ...spec]); // until no copy is left
    } catch (err) {
      if (action === "add")
        log.warn(
          `could not add the isolation rule for ${bridge} (${(err as { stderr?: string }).stderr?.trim() || String(err)}); the nodes still have no default route`,
        );
    }
  }
}

async function netnsList(): Promise<string[]> {
  const out = await sh("ip", ["netns", "list"], "listing network namespaces");
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter(Boolean);
}

async function usedSubnets(): Promise<string[]> {
  const out = await sh("ip", ["-4", "-o", "addr", "show"], "listing addresses");
  const routes = await sh("ip", ["-4", "route", "show"], "listing routes");
  const cidrs: string[] = [];
  for (const l of out.split("\n")) {
    const m = / inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(l);
    if (m) cidrs.push(m[1]!);
  }
  for (const l of routes.split("\n")) {
    const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(l);
    if (m) cidrs.push(m[1]!);
  }
  // Subnets recorded by other local-node groups (their bridges may be down).
  for (const n of await listLocalNodes()) cidrs.push(n.subnet);
  return cidrs;
}

/** Every local node recorded under the data dir (optionally one prefix), sorted by name. */
export async function listLocalNodes(prefix?: string, home = sealerHome()): Promise<LocalNode[]> {
  const dir = localNodesDir(home);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: LocalNode[] = [];
  for (const name of names) {
    const n = await readJsonIfExists<LocalNode>(path.join(dir, name, "node.json"));
    if (n && (prefix === undefined || n.prefix === prefix)) out.push(n);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

export function nodeRunning(n: LocalNode): { holder: boolean; sshd: boolean } {
  return { holder: pidRunning(n.holderPid), sshd: pidRunning(n.sshdPid) };
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

async function generateHostKey(stateDir: string): Promise<void> {
  const hk = path.join(stateDir, "ssh_host_ed25519_key");
  await fs.promises.rm(hk, { force: true });
  await fs.promises.rm(hk + ".pub", { force: true });
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hk], "generating a host key");
}

/** The script the holder runs inside the new mount namespace; ends in `exec sleep infinity`. */
function nodeSetupScript(stateDir: string, name: string, opts: CreateLocalNodesOptions): string {
  const q = shellQuote;
  // The state dir may itself lie below a directory that gets overlaid (/root, /var) or below
  // /tmp, so it is opened once as fd 3 and reached through /proc/self/fd/3 from then on: that
  // always names the host's directory, whatever is mounted on top later.
  const S = "/proc/self/fd/3";
  const lines = ["set -e", "trap 'echo SEALER-NODE-FAILED' EXIT", `exec 3<${q(stateDir)}`];
  for (const d of OVERLAY_DIRS) {
    if (!fs.existsSync(`/${d}`)) continue;
    lines.push(
      `mount -t overlay overlay -o lowerdir=/${d},upperdir=${S}/upper/${d},workdir=${S}/work/${d} /${d}`,
    );
  }
  lines.push(`mount --no-canonicalize --bind ${S}/tmp /tmp`);
  // A machine's /run is its own (a tmpfs): daemons started on the node put their sockets and pid
  // files there (containerd's /run/containerd/containerd.sock), and nodes must not share them.
  lines.push("mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run", "mkdir -p /run/lock /run/sshd");
  lines.push(...cgroupMountLines());
  // containerd's overlayfs snapshotter cannot put an overlay upper dir on an overlay (the node's
  // /var), so its root is a plain directory of the node, as it is on a real disk.
  lines.push(
    "mkdir -p /var/lib/containerd",
    `mount --no-canonicalize --bind ${S}/containerd /var/lib/containerd`,
  );
  // A node is a fresh machine: root's shell startup files are the distribution's defaults, not
  // this host's. sshd runs every command through root's bash, which sources ~/.bashrc; a host
  // ~/.bashrc may run per-user toolchain hooks (e.g. `pyenv init`, whose rehash takes a lock in
  // /root/.pyenv and waits 60 s when a killed session left it behind) and put host-only tools first on PATH.
  lines.push(
    "for f in .bashrc .profile; do if [ -f /etc/skel/$f ]; then cp /etc/skel/$f /root/$f; else : > /root/$f; fi; done",
    "rm -f /root/.bash_profile /root/.bash_login",
  );
  lines.push(`install -m 600 ${S}/ssh_host_ed25519_key ${NODE_HOST_KEY}`);
  lines.push(
    `echo ${q(name)} > /etc/hostname`,
    `hostname ${q(name)}`,
    `printf '127.0.1.1 %s\\n' ${q(name)} >> /etc/hosts`,
  );
  const u = opts.sudoUser;
  if (u) {
    const home = `/home/${u.name}`;
    lines.push(`id ${q(u.name)} >/dev/null 2>&1 || useradd -m -d ${q(home)} -s /bin/sh ${q(u.name)}`);
    lines.push(
      `mkdir -p ${q(home + "/.ssh")} && cp /root/.ssh/authorized_keys ${q(home + "/.ssh/authorized_keys")}`,
    );
    lines.push(
      `chown -R ${q(u.name)}: ${q(home + "/.ssh")} && chmod 700 ${q(home + "/.ssh")} && chmod 600 ${q(home + "/.ssh/authorized_keys")}`,
    );
    lines.push(
      `mkdir -p /etc/sudoers.d && printf '%s\\n' ${q(`${u.name} ALL=(ALL:ALL) ${u.nopasswd === false ? "" : "NOPASSWD: "}ALL`)} > /etc/sudoers.d/sealer-${u.name} && chmod 0440 /etc/sudoers.d/sealer-${u.name}`,
    );
    if (u.password !== undefined) lines.push(`printf '%s\\n' ${q(`${u.name}:${u.password}`)} | chpasswd`);
  }
  if (opts.rootPassword !== undefined)
    lines.push(`printf '%s\\n' ${q(`root:${opts.rootPassword}`)} | chpasswd`);
  lines.push("exec 3<&-", "trap - EXIT", "echo SEALER-NODE-READY", "exec sleep infinity");
  return lines.join("\n");
}

/**
 * `ip netns exec` mounts a fresh /sys for the namespace, which hides this host's cgroup file
 * systems: runc then finds "no cgroup mount in mountinfo". The node mounts the same hierarchies
 * again (same controllers: the kernel hands back the existing ones). Best effort: a node without
 * them still works for everything but starting containers.
 */
function cgroupMountLines(): string[] {
  let mounts: string[][];
  try {
    mounts = fs
      .readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f.length >= 4 && f[1]!.startsWith("/sys/fs/cgroup"));
  } catch {
    return [];
  }
  const q = shellQuote;
  return mounts.map(([, dir, type, opts]) => {
    const o =
      type === "tmpfs"
        ? "mode=755"
        : opts!
            .split(",")
            .filter((x) => !/^(rw|ro|relatime|seclabel)$/.test(x))
            .join(",");
    const mount = `mount -t ${q(type!)}${o ? ` -o ${q(o)}` : ""} ${q(type!)} ${q(dir!)}`;
    return `{ mkdir -p ${q(dir!)} && ${mount}; } || echo "warning: could not mount ${type} on ${dir}: containers will not start on this node"`;
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  await poll(async () => ((await check()) ? true : undefined), what, {
    minMs: 20,
    maxMs: 250,
    maxTotalMs: timeoutMs,
  });
}

/** Resolves true when something at ip:port speaks SSH. */
export function sshAnswers(ip: string, port = 22, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port, timeout: timeoutMs });
    let buf = "";
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.startsWith("SSH-")) done(true);
    });
    s.on("timeout", () => done(false));
    s.on("error", () => done(false));
    s.on("close", () => done(buf.startsWith("SSH-")));
  });
}

/** nsenter's arguments that run `argv` inside the node's mount, UTS and network namespaces. */
export function nsenterArgs(node: LocalNode, argv: string[]): string[] {
  return ["--target", String(node.holderPid), "--mount", "--uts", "--net", "--", ...argv];
}

/** Starts (or restarts) the node's sshd inside its namespaces; waits until it answers. */
export async function startSshd(node: LocalNode, opts: { wait?: boolean } = {}): Promise<LocalNode> {
  requireRoot();
  if (pidRunning(node.sshdPid)) await stopSshd(node);
  if (!pidRunning(node.holderPid))
    throw new UserError(
      `local node ${node.name} is not running (its namespace holder pid ${node.holderPid} is gone); delete and create it again`,
    );
  const hk = NODE_HOST_KEY;
  const fd = fs.openSync(path.join(node.stateDir, "sshd.log"), "a");
  const args = nsenterArgs(node, [
    "/usr/sbin/sshd",
    "-D",
    "-e",
    "-h",
    hk,
    "-o",
    `ListenAddress=${node.ip}`,
    "-o",
    "PidFile=none",
    "-o",
    "PermitRootLogin=yes",
    "-o",
    "PasswordAuthentication=yes",
    "-o",
    "KbdInteractiveAuthentication=no",
    "-o",
    "UsePAM=yes",
    "-o",
    "MaxStartups=200",
    "-o",
    "MaxSessions=20",
    "-o",
    "UseDNS=no",
  ]);
  const child = spawn("nsenter", args, { detached: true, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  child.unref();
  const updated: LocalNode = { ...node, sshdPid: child.pid ?? null };
  await writeJsonAtomic(path.join(node.stateDir, "node.json"), updated, 0o600);
  if (opts.wait !== false)
    await waitFor(
      async () => {
        if (!pidRunning(child.pid)) {
          const text = await fs.promises
            .readFile(path.join(node.stateDir, "sshd.log"), "utf8")
            .catch(() => "");
          throw new Error(`sshd of node ${node.name} exited:\n${text.split("\n").slice(-10).join("\n")}`);
        }
        return sshAnswers(node.ip, node.port);
      },
      15_000,
      `sshd on ${node.name} (${node.ip})`,
    );
  return updated;
}

/** Stops the node's sshd (its existing sessions stay, as with a real `systemctl stop ssh`). */
export async function stopSshd(node: LocalNode): Promise<LocalNode> {
  await killAndWait([node.sshdPid]);
  const updated: LocalNode = { ...node, sshdPid: null };
  await writeJsonAtomic(path.join(node.stateDir, "node.json"), updated, 0o600);
  return updated;
}

/** Kills every process of the node (sshd, its sessions, anything started over SSH) but the holder. */
export async function killNodeProcesses(
  node: LocalNode,
  opts: { includeHolder?: boolean } = {},
): Promise<number[]> {
  const pids = (await netnsPids(node.netns)).filter((p) => opts.includeHolder || p !== node.holderPid);
  await killAndWait(pids);
  return pids;
}

/** A new host key for the node (simulates a reinstalled host); restart sshd to use it. */
export async function regenerateHostKey(node: LocalNode): Promise<LocalNode> {
  await generateHostKey(node.stateDir);
  const key = await fs.promises.readFile(path.join(node.stateDir, "ssh_host_ed25519_key"));
  const res = await execInNode(
    node,
    `umask 077; printf '%s' ${key.toString("base64")} | base64 -d > ${NODE_HOST_KEY}`,
  );
  if (res.code !== 0) throw new Error(`installing a new host key in ${node.name}: ${res.stderr.trim()}`);
  const hostKeyPub = (
    await fs.promises.readFile(path.join(node.stateDir, "ssh_host_ed25519_key.pub"), "utf8")
  ).trim();
  const updated = { ...node, hostKeyPub };
  await writeJsonAtomic(path.join(node.stateDir, "node.json"), updated, 0o600);
  return updated;
}

/** Runs a command inside the node (its mount and network namespaces) without SSH: for tests and inspection. */
export async function execInNode(
  node: LocalNode,
  command: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(
      "nsenter",
      nsenterArgs(node, ["sh", "-c", command]),
      // The node's environment, not this process's (whose PATH may name host-only tool shims).
      { maxBuffer: 64 << 20, env: { PATH: NODE_PATH, HOME: "/root", LANG: "C.UTF-8" } },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? String(err),
    };
  }
}

async function netnsPids(ns: string): Promise<number[]> {
  try {
    const { stdout } = await execFileP("ip", ["netns", "pids", ns]);
    return stdout
      .split("\n")
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

async function killAndWait(pids: Array<number | null | undefined>): Promise<void> {
  const live = pids.filter((p): p is number => pidRunning(p));
  for (const p of live) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await waitFor(
    async () => live.every((p) => !pidAlive(p) || isZombie(p)),
    10_000,
    `processes ${live.join(", ")} to exit`,
  );
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
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
