/**
 * `sealer backup` / `sealer restore -f SNAPSHOT`: an etcd snapshot taken on a master with
 * the cluster's own certificates (kubeadm's pki/etcd files), fetched to the data dir under
 * clusters/<name>/backups/ with a sha256 checksum file (sha256sum format); a restore checks the
 * checksum before anything on the cluster is touched, then on every etcd member (as
 * `etcdctl member list` names them) stops etcd (its static pod manifest moved aside, waiting
 * until it is down), restores the snapshot into a fresh data dir with the member's name and
 * peer URL, swaps it in (the old data kept beside it), starts etcd again and waits until it answers.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors";
import type { ExecContext } from "../exec/context";
import { writeFileAtomic } from "../fsutil";
import { log } from "../log";
import { shellQuote } from "../ssh";
import { resolveCluster, type ClusterRef } from "./cluster-ref";
import { withSession, type LifecycleOptions } from "./session";

export const ETCD_PKI = {
  cacert: "/etc/kubernetes/pki/etcd/ca.crt",
  cert: "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
  key: "/etc/kubernetes/pki/etcd/healthcheck-client.key",
};
const ETCD_DATA = "/var/lib/etcd";
const ETCD_MANIFEST = "/etc/kubernetes/manifests/etcd.yaml";

export function etcdctlBase(): string {
  return `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${ETCD_PKI.cacert} --cert=${ETCD_PKI.cert} --key=${ETCD_PKI.key}`;
}

/**
 * Saves an etcd snapshot to `remote` on the node (its directory made first; etcdctl's progress on
 * stderr), then prints its sha256sum line and "SIZE <bytes>" for `parseSnapshotSaved`.
 */
export function snapshotSaveCmd(remote: string): string {
  const q = shellQuote(remote);
  return `mkdir -p ${shellQuote(path.posix.dirname(remote))} && ${etcdctlBase()} snapshot save ${q} >&2 && sha256sum ${q} && stat -c 'SIZE %s' ${q}`;
}

/** The checksum and size `snapshotSaveCmd` printed, or undefined when either is missing. */
export function parseSnapshotSaved(stdout: string): { sha256: string; size: number } | undefined {
  const sha256 = parseChecksumFile(stdout);
  const size = Number(/^SIZE (\d+)$/m.exec(stdout)?.[1] ?? NaN);
  return sha256 && Number.isFinite(size) ? { sha256, size } : undefined;
}

/** "<hex>  <file name>\n", as sha256sum writes it (so `sha256sum -c` checks a backup too). */
export function checksumLine(hex: string, fileName: string): string {
  return `${hex}  ${fileName}\n`;
}

export function parseChecksumFile(text: string): string | undefined {
  const m = /^([0-9a-f]{64})\s/.exec(text.trim() + " ");
  return m?.[1];
}

/** A file-system-safe timestamp name: etcd-snapshot-20260102T030405Z.db */
export function snapshotName(now: Date): string {
  return `etcd-snapshot-${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}.db`;
}

export function backupsDir(stateDir: string): string {
  return path.join(stateDir, "backups");
}

function pickMaster(ctx: ExecContext, master: string | undefined): string {
  if (!master) return ctx.master0;
  if (!ctx.masters.includes(master))
    throw new UserError(
      `--master ${master}: not a master of cluster ${ctx.cluster} (masters: ${ctx.masters.join(", ")})`,
    );
  return master;
}

/** Fails naming what is missing when `ip` lacks etcdctl or kubeadm's etcd client certificates. */
export async function checkEtcdTools(ctx: ExecContext, ip: string, step: string): Promise<void> {
  const files = [ETCD_PKI.cacert, ETCD_PKI.cert, ETCD_PKI.key];
  const r = await ctx.sh(
    ip,
    step,
    `command -v etcdctl >/dev/null || echo NO-ETCDCTL; for f in ${files.join(" ")}; do [ -f "$f" ] || echo "MISSING $f"; done`,
    { quiet: true },
  );
  const problems: string[] = [];
  if (r.stdout.includes("NO-ETCDCTL"))
    problems.push(
      `etcdctl is not on master ${ip} (looked in the image's bin/ and the PATH): ship it in the cluster image's bin/ or install it on the masters`,
    );
  for (const m of r.stdout.matchAll(/^MISSING (.+)$/gm))
    problems.push(
      `${m[1]} is missing on master ${ip}: the cluster's etcd certificates are where kubeadm puts them; was this master initialised by kubeadm?`,
    );
  if (problems.length) throw new UserError(`[${ip}] step "${step}": ${problems.join("; ")}`, { problems });
}

/** Bytes per round trip when fetching a file from a node: bounds memory whatever the snapshot size. */
const FETCH_CHUNK = 8 << 20;

/**
 * Copies a node file of `size` bytes to `dest` (0600, atomically) in FETCH_CHUNK pieces, each
 * sent base64-encoded over the session; returns the sha256 of what arrived.
 */
async function fetchNodeFile(
  ctx: ExecContext,
  ip: string,
  step: string,
  remote: string,
  size: number,
  dest: string,
  chunk = FETCH_CHUNK,
): Promise<string> {
  const tmp = `${dest}.part-${process.pid}`;
  const fh = await fs.promises.open(tmp, "w", 0o600);
  const h = crypto.createHash("sha256");
  try {
    let got = 0;
    for (let i = 0; i * chunk < size; i++) {
      const r = await ctx.sh(
        ip,
        step,
        `dd if=${shellQuote(remote)} bs=${chunk} skip=${i} count=1 iflag=fullblock status=none | base64 -w0`,
        { quiet: true },
      );
      const buf = Buffer.from(r.stdout.trim(), "base64");
      h.update(buf);
      await fh.write(buf);
      got += buf.length;
    }
    if (got !== size)
      throw new Error(
        `[${ip}] step "${step}": ${remote} is ${size} bytes on the node but ${got} arrived; run sealer backup again`,
      );
    await fh.close();
    await fs.promises.rename(tmp, dest);
    return h.digest("hex");
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

/** sha256 of a local file, streamed. */
async function sha256OfFile(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export interface BackupResult {
  host: string;
  file: string;
  checksumFile: string;
  sha256: string;
  size: number;
}

export async function backupEtcd(
  o: ClusterRef &
    LifecycleOptions & {
      master?: string;
      now?: Date;
      /** Bytes per fetch round trip (default 8 MiB). */ chunkBytes?: number;
    },
): Promise<BackupResult> {
  const r = await resolveCluster(o);
  if (!r.applied.steps["init-master"])
    throw new UserError(`cluster ${r.spec.name} has not been created yet: nothing to back up`);
  return withSession(r.spec, r.applied, r.stateDir, o, async (ctx) => {
    const ip = pickMaster(ctx, o.master);
    const step = "backup";
    await checkEtcdTools(ctx, ip, step);
    const name = snapshotName(o.now ?? new Date());
    const remote = `${ctx.clusterDir}/backups/${name}`;
    const q = shellQuote(remote);
    const saved = await ctx.sh(ip, step, snapshotSaveCmd(remote), { quiet: true });
    const facts = parseSnapshotSaved(saved.stdout);
    if (!facts)
      throw new Error(`[${ip}] step "${step}": sha256sum/stat printed no checksum or size for ${remote}`);
    const { sha256: remoteHex, size } = facts;
    const dir = backupsDir(r.stateDir);
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, name);
    const hex = await fetchNodeFile(ctx, ip, step, remote, size, file, o.chunkBytes);
    await ctx.sh(ip, step, `rm -f ${q}`, { quiet: true });
    if (hex !== remoteHex) {
      await fs.promises.rm(file, { force: true });
      throw new Error(
        `[${ip}] step "${step}": the snapshot changed in transit (node sha256 ${remoteHex}, received ${hex}); run sealer backup again`,
      );
    }
    await writeFileAtomic(`${file}.sha256`, checksumLine(hex, name), 0o600);
    log.forHost(ip).info(`backup: etcd snapshot ${file} (${size} bytes, sha256 ${hex})`);
    return { host: ip, file, checksumFile: `${file}.sha256`, sha256: hex, size };
  });
}

/** The snapshot file for `restore -f`: a path, or a name in the cluster's backups dir. Checked before anything else. */
export async function verifiedSnapshot(
  stateDir: string,
  given: string,
): Promise<{ file: string; sha256: string }> {
  const dir = backupsDir(stateDir);
  const candidates =
    path.isAbsolute(given) || given.includes("/")
      ? [path.resolve(given)]
      : [path.resolve(given), path.join(dir, given)];
  const file = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  if (!file) {
    let known: string[] = [];
    try {
      known = (await fs.promises.readdir(dir)).filter((f) => f.endsWith(".db")).sort();
    } catch {
      known = [];
    }
    throw new UserError(
      `sealer restore: snapshot ${given} not found${known.length ? ` (backups of this cluster in ${dir}: ${known.join(", ")})` : ` (no backups in ${dir}; take one with sealer backup)`}`,
    );
  }
  let sumText: string;
  try {
    sumText = await fs.promises.readFile(`${file}.sha256`, "utf8");
  } catch {
    throw new UserError(
      `sealer restore: ${file}.sha256 is missing: without the checksum written by sealer backup the snapshot cannot be verified; nothing was changed`,
    );
  }
  const want = parseChecksumFile(sumText);
  if (!want)
    throw new UserError(`sealer restore: ${file}.sha256 holds no sha256 checksum; nothing was changed`);
  const got = await sha256OfFile(file);
  if (got !== want)
    throw new UserError(
      `sealer restore: ${file} does not match its checksum (expected sha256 ${want}, file has ${got}): the snapshot is damaged; nothing was changed`,
    );
  return { file, sha256: got };
}

/** Seconds to wait for etcd to stop after its manifest is parked, and to answer again after the restore. */
const ETCD_STOP_WAIT_S = 60;
const ETCD_START_WAIT_S = 120;

/**
 * The shell that restores a snapshot on one etcd member (kubeadm stacked etcd): the kubelet
 * stops etcd when its static pod manifest is parked, so the data dir is swapped only once etcd
 * has really stopped (see `listening`), and the restore counts as done only when etcd
 * answers again over TLS. On a failure before the swap the manifest goes back untouched.
 */
export function restoreCmd(o: {
  snapshot: string;
  name: string;
  ip: string;
  initialCluster: string;
  stamp: string;
}): string {
  const fresh = `${ETCD_DATA}.restore-${o.stamp}`;
  const old = `${ETCD_DATA}.before-restore-${o.stamp}`;
  const parked = `${ETCD_MANIFEST}.sealer-restore`;
  // etcd closes its client port first and goes on writing its WAL and database for a while (a
  // leadership transfer, the last sync): the data dir is swapped only once the peer port is closed
  // too and no process holds those files open (fuser compares device and inode, so it is right
  // inside a node's own mount namespace; without fuser the ports alone decide).
  const files = `${ETCD_DATA}/member/wal/*.wal ${ETCD_DATA}/member/snap/db`;
  const listening = `{ ss -Hltn '( sport = :2379 or sport = :2380 )' 2>/dev/null | grep -q . || { command -v fuser >/dev/null 2>&1 && for f in ${files}; do [ -e "$f" ] && fuser -s "$f" 2>/dev/null && break; false; done; }; }`;
  return [
    `set -e`,
    `managed=false`,
    `if [ -f ${ETCD_MANIFEST} ]; then managed=true; mv ${ETCD_MANIFEST} ${parked}; fi`,
    `unpark() { if [ -f ${parked} ]; then mv ${parked} ${ETCD_MANIFEST}; fi; }`,
    // Whatever fails below, the manifest goes back: a member left stopped would hold every other
    // member's health check hostage (no quorum) until their own waits ran out.
    `trap unpark EXIT`,
    `i=0`,
    `while ${listening}; do`,
    `  i=$((i + 1))`,
    `  if [ $i -ge ${ETCD_STOP_WAIT_S * 5} ]; then unpark; echo "etcd still runs (listens on :2379/:2380 or holds its data files) ${ETCD_STOP_WAIT_S}s after its manifest ${ETCD_MANIFEST} was moved aside (is the kubelet running?); nothing was restored" >&2; exit 3; fi`,
    `  sleep 0.2`,
    `done`,
    `rm -rf ${shellQuote(fresh)}`,
    `if ! ETCDCTL_API=3 etcdctl snapshot restore ${shellQuote(o.snapshot)} --data-dir ${shellQuote(fresh)} --name ${shellQuote(o.name)} --initial-cluster ${shellQuote(o.initialCluster)} --initial-advertise-peer-urls ${shellQuote(`https://${o.ip}:2380`)}; then rm -rf ${shellQuote(fresh)}; unpark; echo "etcdctl snapshot restore failed; etcd keeps its data" >&2; exit 3; fi`,
    `if [ -d ${ETCD_DATA} ]; then mv ${ETCD_DATA} ${shellQuote(old)}; fi`,
    `mv ${shellQuote(fresh)} ${ETCD_DATA}`,
    `unpark`,
    `rm -f ${shellQuote(o.snapshot)}`,
    `if $managed; then`,
    // A deadline in seconds, not a count of tries: each try may itself wait up to 2 s.
    `  end=$(($(date +%s) + ${ETCD_START_WAIT_S}))`,
    `  until ${etcdctlBase()} endpoint health --command-timeout=2s >/dev/null 2>&1; do`,
    `    if [ "$(date +%s)" -ge "$end" ]; then echo "etcd did not answer on https://127.0.0.1:2379 within ${ETCD_START_WAIT_S}s after the restore; the data from before it is in ${old}; see the etcd logs" >&2; exit 3; fi`,
    `    sleep 0.5`,
    `  done`,
    `fi`,
  ].join("\n");
}

export interface EtcdMember {
  name: string;
  /** The master whose address the member's peer URL names. */
  ip: string;
  peerUrl: string;
}

/**
 * `etcdctl member list` lines ("id, started, name, peerURLs, clientURLs, isLearner") as members
 * on the given masters, in their order; a member on no master (external etcd) is left out.
 */
export function parseMemberList(text: string, masters: string[]): EtcdMember[] {
  const out: EtcdMember[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(",").map((x) => x.trim());
    if (f.length < 5 || !f[2] || !f[3]) continue;
    const peerUrl = f[3].split(/\s+/)[0]!;
    let host = "";
    try {
      host = new URL(peerUrl).hostname.replace(/^\[|\]$/g, "");
    } catch {
      continue;
    }
    const ip = masters.find((m) => m === host);
    if (ip) out.push({ name: f[2], ip, peerUrl });
  }
  // In the masters' order (etcd lists members by id).
  return out.sort((a, b) => masters.indexOf(a.ip) - masters.indexOf(b.ip));
}

/**
 * The etcd members to restore: as the running cluster lists them (asked on each master until one
 * answers), else every master under its node name (etcd down everywhere: kubeadm's stacked layout).
 */
async function etcdMembers(ctx: ExecContext, step: string): Promise<EtcdMember[]> {
  for (const ip of ctx.masters) {
    const r = await ctx.sh(ip, step, `${etcdctlBase()} member list --command-timeout=5s`, {
      allowFail: true,
      quiet: true,
    });
    const members = r.code === 0 ? parseMemberList(r.stdout, ctx.masters) : [];
    if (members.length) return members;
  }
  log.warn(
    `restore: no master's etcd answered member list; restoring every master as a member of a stacked etcd`,
  );
  const names = await Promise.all(ctx.masters.map((ip) => ctx.nodeName(ip)));
  return ctx.masters.map((ip, i) => ({ name: names[i]!, ip, peerUrl: `https://${ip}:2380` }));
}

export async function restoreEtcd(
  o: ClusterRef & LifecycleOptions & { snapshot: string; now?: Date },
): Promise<{ hosts: string[]; file: string; sha256: string }> {
  const r = await resolveCluster(o);
  if (!r.applied.steps["init-master"])
    throw new UserError(`cluster ${r.spec.name} has not been created yet: nothing to restore into`);
  const snap = await verifiedSnapshot(r.stateDir, o.snapshot);
  return withSession(r.spec, r.applied, r.stateDir, o, async (ctx) => {
    const step = "restore";
    for (const ip of ctx.masters) await checkEtcdTools(ctx, ip, step);
    const members = await etcdMembers(ctx, step);
    const hosts = members.map((m) => m.ip);
    const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    const stamp = (o.now ?? new Date()).toISOString().replace(/[-:.]/g, "");
    const remote = `${ctx.clusterDir}/backups/restore-${stamp}.db`;
    // Every member gets the same snapshot first; then they are restored (etcd needs all of them).
    await ctx.eachHost(hosts, async (ip) => {
      await ctx.io.put(ip, step, remote, { localFile: snap.file }, 0o600);
      const sum = await ctx.sh(ip, step, `sha256sum ${shellQuote(remote)}`, { quiet: true });
      if (parseChecksumFile(sum.stdout) !== snap.sha256)
        throw new Error(`[${ip}] step "${step}": the snapshot arrived damaged; nothing was restored`);
    });
    await ctx.eachHost(hosts, async (ip) => {
      const m = members.find((x) => x.ip === ip)!;
      await ctx.sh(ip, step, restoreCmd({ snapshot: remote, name: m.name, ip, initialCluster, stamp }));
    });
    return { hosts, file: snap.file, sha256: snap.sha256 };
  });
}
