/** What makes a fresh node: its host key and the script its namespace holder runs (overlays, /run, cgroups, users). */
import * as fs from "node:fs";
import * as path from "node:path";
import { shellQuote } from "../../ssh/shell";
import { sh } from "./host-cmd";
import type { CreateLocalNodesOptions } from "./types";

export const OVERLAY_DIRS = ["etc", "usr", "var", "opt", "root", "home"];
/** The host key's path inside a node (in the node's copy-on-write /etc). */
export const NODE_HOST_KEY = "/etc/ssh/sealer_node_host_ed25519_key";

export async function generateHostKey(stateDir: string): Promise<void> {
  const hk = path.join(stateDir, "ssh_host_ed25519_key");
  await fs.promises.rm(hk, { force: true });
  await fs.promises.rm(hk + ".pub", { force: true });
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hk], "generating a host key");
}

/** The script the holder runs inside the new mount namespace; ends in `exec sleep infinity`. */
export function nodeSetupScript(stateDir: string, name: string, opts: CreateLocalNodesOptions): string {
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
