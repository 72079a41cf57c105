/** A node's own sshd: the SSH target to reach it, starting and stopping it, and changing its host key. */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { UserError } from "../../errors";
import { writeJsonAtomic } from "../../fsutil";
import type { SshTarget } from "../../ssh";
import { pidRunning, requireRoot, waitFor } from "./host-cmd";
import { generateHostKey, NODE_HOST_KEY } from "./node-setup";
import { execInNode, killAndWait, nsenterArgs } from "./processes";
import type { LocalNode } from "./types";

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
