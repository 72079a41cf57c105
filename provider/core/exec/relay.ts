/**
 * Relay distribution: for a slow operator uplink. The operator sends each missing layer blob
 * once to a relay host (default master0); the relay forwards it to the other hosts over the
 * cluster network, several at once (bounded fan-out). Guarantees are the direct path's: only
 * blobs a host lacks, sha256-verified on the receiving host, resumable (`.partial`), atomic rename,
 * per-host log lines, errors naming host and step.
 *
 * Security, with only what a plain Debian host has (sh, coreutils, openssh):
 * - an ephemeral ed25519 key pair is generated ON the relay (ssh-keygen) under
 *   <dataRoot>/relay/run-<cluster>-<id>/ (0700, key 0600): the private key never crosses the wire
 *   and is removed at the end (success or failure);
 * - its public key goes into each target login user's ~/.ssh/authorized_keys, through the
 *   operator's own SSH session, as `restrict,from="<relay addresses>",command="/bin/sh
 *   <dataRoot>/relay/receive.sh",expiry-time="<now+24h>"`: it can only run the fixed receiver
 *   (ping / size / recv of one blob, arguments checked), only from the relay, never a pty or a
 *   forwarding, and is removed at the end (success or failure; a killed operator leaves it only
 *   until the next run of the cluster or its expiry);
 * - the relay verifies the targets' host keys against a known_hosts file written from the
 *   operator's own pinned keys (StrictHostKeyChecking=yes; nothing is accepted blindly);
 * - the receiver runs as the login user, so it writes into <dataRoot>/relay/inbox (owned by that
 *   user, 0700); the operator then moves the verified blob into blobs/sha256 as root.
 * A host the relay cannot log in to (refused key, no route, no ssh client) is served directly by
 * the operator, with a warning. Why not a one-time HTTP server on the relay: a Debian base has no
 * server (python3 is not guaranteed), and sshd is there on every host already, with encryption and
 * host authentication for free.
 */
import * as crypto from "node:crypto";
import { limiter, mapLimit } from "../common/limit";
import { UserError } from "../errors";
import { log } from "../log";
import { CommandError, type SshTarget } from "../ssh";
import { hostPattern, type KnownHostEntry, readKnownHosts } from "../ssh/known-hosts";
import { shellQuote as q, tailLines } from "../ssh/shell";
import type { BlobSender, DirectParts, DistributeOptions } from "./distribute";
import type { HostIo } from "./host-io";
import {
  inventoryScript,
  nodePaths,
  parseInventory,
  SHA256_HASHER,
  type NodeBlobInventory,
} from "./node-layers";

export interface RelayOptions {
  /** Address of the relay host (one of the cluster's hosts, usually master0). */
  via: string;
  /** Its SSH target, when it is not among the hosts being distributed to. */
  target?: SshTarget;
  /** Forwards the relay runs at once (default 4, at most 6: sshd's MaxSessions is 10 per connection). */
  fanout?: number;
  /** The operator's known_hosts: the relay is given exactly these pinned keys of the targets. */
  knownHostsFile: string;
}

export const PROBE_OK = "sealer-relay-ok";
const FROM_MARK = "sealer-relay-from";
/** Data roots the authorized_keys `command="..."` can name without any quoting. */
const SAFE_ROOT = /^\/[A-Za-z0-9._/-]*$/;

export interface RelayPaths {
  dir: string;
  receiver: string;
  inbox: string;
  run: string;
  key: string;
  knownHosts: string;
  /** The relay's own blob store. */
  blobs: string;
}

export function relayPaths(dataRoot: string, cluster: string, runId: string): RelayPaths {
  const dir = `${dataRoot.replace(/\/+$/, "")}/relay`;
  const run = `${dir}/run-${cluster}-${runId}`;
  return {
    dir,
    receiver: `${dir}/receive.sh`,
    inbox: `${dir}/inbox`,
    run,
    key: `${run}/id_ed25519`,
    knownHosts: `${run}/known_hosts`,
    blobs: nodePaths(dataRoot, cluster).blobs,
  };
}

/** The comment that marks this cluster's relay keys in authorized_keys (`:<runId>` for one run). */
export function keyMarker(cluster: string, runId?: string): string {
  return `sealer-relay:${cluster}:${runId ?? ""}`;
}

/**
 * The fixed receiver the relay's key may run (as the login user). SSH_ORIGINAL_COMMAND is one of
 *   ping                      -> prints sealer-relay-ok
 *   size <hex>                -> "done" when the verified blob waits in the inbox, else the .partial's size (0 if none)
 *   recv <hex> <size> <offset>-> appends stdin to <hex>.partial (which must be <offset> bytes long), hashes while
 *                                receiving, checks size and sha256, renames to <hex>.
 * Exit codes as the direct receiver: 91 short, 92 digest mismatch (partial removed), 93 partial changed size
 * (removed); 2 a refused command.
 */
export function receiverScript(inbox: string): string {
  return `#!/bin/sh
# pulumi-sealer relay receiver: the only command the relay's ephemeral key may run.
set -eu
set -f
umask 077
refuse() { echo "sealer relay receiver: refused: $*" >&2; exit 2; }
set -- \${SSH_ORIGINAL_COMMAND:-}
cmd=\${1:-}
case $cmd in
ping) [ $# -eq 1 ] || refuse "ping takes no argument"; echo ${PROBE_OK}; exit 0 ;;
size) [ $# -eq 2 ] || refuse "size takes one argument" ;;
recv) [ $# -eq 4 ] || refuse "recv takes three arguments" ;;
*) refuse "unknown command" ;;
esac
hex=$2
case $hex in *[!0-9a-f]* | "") refuse "not a sha256 hex digest" ;; esac
[ \${#hex} -eq 64 ] || refuse "not a sha256 hex digest"
cd ${q(inbox)}
if [ "$cmd" = size ]; then
  if [ -f "$hex" ]; then echo done
  elif [ -f "$hex.partial" ]; then wc -c < "$hex.partial"
  else echo 0; fi
  exit 0
fi
size=$3 offset=$4
for n in "$size" "$offset"; do
  case $n in *[!0-9]* | "") refuse "sizes must be decimal numbers" ;; esac
  [ \${#n} -le 15 ] || refuse "size too large"
done
[ "$offset" -le "$size" ] || refuse "offset beyond size"
rm -f "$hex".fifo.* "$hex".sum.*
if [ "$offset" -eq 0 ]; then : > "$hex.partial"
elif [ ! -f "$hex.partial" ] || [ "$(wc -c < "$hex.partial")" -ne "$offset" ]; then
  echo "partial upload of sha256:$hex changed size under us" >&2; rm -f "$hex.partial"; exit 93
fi
sum=$hex.sum.$$
${SHA256_HASHER.join("\n")}
{ head -c "$offset" "$hex.partial"; tee -a "$hex.partial"; } | $hasher > "$sum"
got=$(wc -c < "$hex.partial")
if [ "$got" -ne "$size" ]; then rm -f "$sum"; echo "short transfer of sha256:$hex: $got of $size bytes" >&2; exit 91; fi
actual=$(cut -c1-64 "$sum"); rm -f "$sum"
if [ "$actual" != "$hex" ]; then rm -f "$hex.partial"; echo "digest mismatch for sha256:$hex (got sha256:$actual): the received bytes were removed" >&2; exit 92; fi
mv -f "$hex.partial" "$hex"
`;
}

/** Creates the run dir and the key pair on the relay; prints `pub=<public key>` and `addrs=<its addresses>`. */
export function relaySetupScript(p: RelayPaths, cluster: string, runId: string): string {
  return [
    `set -e`,
    `umask 077`,
    `for c in ssh ssh-keygen; do command -v $c >/dev/null 2>&1 || { echo "$c (openssh-client) is not installed on the relay" >&2; exit 3; }; done`,
    `mkdir -p ${q(p.dir)}`,
    // A run killed before its cleanup left its key here: it goes now (the apply lock makes this run the only one).
    `rm -rf ${q(p.dir)}/run-${cluster}-*`,
    `mkdir -m 700 ${q(p.run)}`,
    `ssh-keygen -q -t ed25519 -N '' -C ${q(keyMarker(cluster, runId))} -f ${q(p.key)}`,
    `echo "pub=$(cat ${q(p.key + ".pub")})"`,
    `echo "addrs=$(hostname -I 2>/dev/null || true)"`,
  ].join("\n");
}

export interface RelaySetup {
  publicKey: string;
  addresses: string[];
}

export function parseRelaySetup(stdout: string, via: string): RelaySetup {
  const pub = /^pub=(ssh-ed25519 [A-Za-z0-9+/]+=*)(?: .*)?$/m.exec(stdout)?.[1];
  if (!pub) throw new Error(`the relay printed no ed25519 public key`);
  const addrs = (/^addrs=(.*)$/m.exec(stdout)?.[1] ?? "")
    .split(/\s+/)
    .filter((a) => /^[0-9A-Fa-f:.]+$/.test(a) && a !== "127.0.0.1" && a !== "::1");
  return { publicKey: pub, addresses: [...new Set([via, ...addrs])] };
}

/** `restrict,from="...",command="..."` (expiry-time is appended on the target, from its own clock). */
export function authorizedKeyOptions(from: string[], receiver: string): string {
  for (const a of from) if (!/^[0-9A-Fa-f:.]+$/.test(a)) throw new Error(`not an address: ${a}`);
  if (!SAFE_ROOT.test(receiver)) throw new Error(`unsafe receiver path ${receiver}`);
  return `restrict,from="${from.join(",")}",command="/bin/sh ${receiver}"`;
}

/** Removes this cluster's relay keys (`runId` set: only that run's) from the login user's authorized_keys. */
function stripKeysShell(marker: string): string[] {
  return [
    `if [ -f "$ak" ] && grep -q -F -e ${q(" " + marker)} "$ak"; then`,
    `  n=$(grep -c -F -e ${q(" " + marker)} "$ak" || true)`,
    `  if [ -L "$ak" ]; then grep -v -F -e ${q(" " + marker)} "$ak" > "$ak.sealer-tmp" || true; cat "$ak.sealer-tmp" > "$ak"; rm -f "$ak.sealer-tmp"`,
    // Same owner and mode, then one rename: sshd never reads a half-written file.
    `  else cp -p "$ak" "$ak.sealer-tmp"; grep -v -F -e ${q(" " + marker)} "$ak" > "$ak.sealer-tmp" || true; mv -f "$ak.sealer-tmp" "$ak"; fi`,
    `  echo "removed=$n"`,
    `fi`,
  ];
}

function homeShell(user: string): string[] {
  return [
    `home=$(getent passwd ${q(user)} | cut -d: -f6)`,
    `[ -n "$home" ] && [ -d "$home" ] || { echo "the home directory of ${user} was not found" >&2; exit 4; }`,
    `ak="$home/.ssh/authorized_keys"`,
  ];
}

/**
 * On a target (as root, through the operator's session): the receiver, the inbox owned by the
 * login user, stale keys of this cluster gone, the relay's key appended with its restrictions.
 */
export function installScript(
  p: RelayPaths,
  user: string,
  cluster: string,
  runId: string,
  options: string,
  publicKey: string,
): string {
  return [
    `set -e`,
    `umask 022`,
    `mkdir -p ${q(p.dir)} ${q(p.inbox)}`,
    `chown 0:0 ${q(p.dir)}; chmod 755 ${q(p.dir)}`,
    `printf '%s' ${q(Buffer.from(receiverScript(p.inbox)).toString("base64"))} | base64 -d > ${q(p.receiver + ".tmp")}`,
    `chmod 644 ${q(p.receiver + ".tmp")}; mv -f ${q(p.receiver + ".tmp")} ${q(p.receiver)}`,
    `chown -R ${q(user)} ${q(p.inbox)}; chmod 700 ${q(p.inbox)}`,
    ...homeShell(user),
    `ug=$(id -g ${q(user)})`,
    `if [ ! -d "$home/.ssh" ]; then mkdir -m 700 "$home/.ssh"; chown ${q(user)}:"$ug" "$home/.ssh"; fi`,
    `if [ ! -e "$ak" ]; then : > "$ak"; chown ${q(user)}:"$ug" "$ak"; chmod 600 "$ak"; fi`,
    ...stripKeysShell(keyMarker(cluster)),
    `if [ -s "$ak" ] && [ -n "$(tail -c 1 "$ak")" ]; then echo >> "$ak"; fi`,
    `exp=$(date -d '+24 hours' +%Y%m%d%H%M)`,
    `printf '%s,expiry-time="%s" %s %s\\n' ${q(options)} "$exp" ${q(publicKey)} ${q(keyMarker(cluster, runId))} >> "$ak"`,
  ].join("\n");
}

/** On a target: this run's key out of authorized_keys. */
export function uninstallScript(user: string, cluster: string, runId: string): string {
  return [`set -e`, ...homeShell(user), ...stripKeysShell(keyMarker(cluster, runId))].join("\n");
}

/** known_hosts text for the relay: the operator's pinned keys of the targets; hosts with none are listed apart. */
export function relayKnownHosts(
  entries: KnownHostEntry[],
  targets: Array<Pick<SshTarget, "host" | "port">>,
): { text: string; unpinned: string[] } {
  const lines: string[] = [];
  const unpinned: string[] = [];
  for (const t of targets) {
    const pattern = hostPattern(t.host, t.port);
    const mine = entries.filter((e) => e.hosts.includes(pattern));
    if (mine.length === 0) unpinned.push(t.host);
    for (const e of mine) lines.push(`${pattern} ${e.keyType} ${e.keyBase64}`);
  }
  return { text: lines.length ? lines.join("\n") + "\n" : "", unpinned };
}

/** `s ARGS` in the relay's shell: ssh to the target with the run's key and pinned host keys only. */
function sshFunction(p: RelayPaths, t: Pick<SshTarget, "host" | "port" | "user">): string {
  const opts = [
    "-F none",
    `-i ${q(p.key)}`,
    "-o IdentitiesOnly=yes",
    "-o IdentityAgent=none",
    "-o BatchMode=yes",
    "-o StrictHostKeyChecking=yes",
    `-o UserKnownHostsFile=${q(p.knownHosts)}`,
    "-o GlobalKnownHostsFile=/dev/null",
    "-o CheckHostIP=no",
    "-o ConnectTimeout=10",
    "-o ServerAliveInterval=5",
    "-o ServerAliveCountMax=3",
    "-o LogLevel=ERROR",
    "-T",
    `-p ${t.port}`,
    `-l ${q(t.user)}`,
  ];
  return `s() { ssh ${opts.join(" ")} ${q(t.host)} "$@"; }`;
}

/** On the relay: can the run's key log in to the target and reach the receiver? */
export function probeScript(p: RelayPaths, t: Pick<SshTarget, "host" | "port" | "user">): string {
  return [sshFunction(p, t), `s ping < /dev/null`].join("\n");
}

/**
 * On the relay: asks the target's receiver how much of the blob it has, then streams the rest
 * from the relay's verified blob. Prints `sealer-relay-from <offset>`. ssh's own failures exit 255.
 */
export function forwardScript(
  p: RelayPaths,
  t: Pick<SshTarget, "host" | "port" | "user">,
  hex: string,
  size: number,
): string {
  return [
    `set -e`,
    sshFunction(p, t),
    `cd ${q(p.blobs)}`,
    `[ -f ${hex} ] || { echo "sha256:${hex} is not in the relay's store" >&2; exit 95; }`,
    `have=$(s size ${hex} < /dev/null) || exit $?`,
    `case $have in done) echo "${FROM_MARK} ${size}"; exit 0 ;; "" | *[!0-9]*) echo "unexpected answer from the receiver: $have" >&2; exit 94 ;; esac`,
    `[ "$have" -le ${size} ] || have=0`,
    `echo "${FROM_MARK} $have"`,
    `tail -c +$((have + 1)) ${hex} | s recv ${hex} ${size} "$have"`,
  ].join("\n");
}

/** On a target (as root): the verified blob from the inbox into blobs/sha256, renamed atomically. */
export function adoptScript(p: RelayPaths, hex: string): string {
  return [
    `set -e`,
    `cd ${q(p.inbox)}`,
    `[ -f ${hex} ] || { echo "relayed blob sha256:${hex} is not in ${p.inbox}" >&2; exit 1; }`,
    `mkdir -p ${q(p.blobs)}`,
    `chown 0:0 ${hex}; chmod 644 ${hex}`,
    `mv -f ${hex} ${q(p.blobs + "/" + hex + ".adopt")}`,
    `mv -f ${q(p.blobs + "/" + hex + ".adopt")} ${q(p.blobs + "/" + hex)}`,
  ].join("\n");
}

const msg = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Runs the distribution with the relay (called by distributeLayers when `opts.relay` is set).
 * Returns the per-host outcomes, and the blobs/bytes sent to the relay when it is not one of the
 * targets (when it is, they are counted on its own host entry).
 */
export async function distributeViaRelay(
  io: HostIo,
  targets: SshTarget[],
  opts: DistributeOptions,
  parts: DirectParts,
): Promise<{ settled: PromiseSettledResult<void>[]; relaySent: { blobs: number; bytes: number } }> {
  const relay = opts.relay!;
  const via = relay.via;
  const relayTarget = relay.target ?? targets.find((t) => t.host === via);
  if (!relayTarget)
    throw new UserError(
      `relay host ${via} is not one of the hosts being distributed to (${targets.map((t) => t.host).join(", ")}); pick one of them`,
    );
  const fanout = Math.min(6, Math.max(1, Math.floor(relay.fanout ?? 4)));
  const rlog = log.forHost(via);
  const relaySent = { blobs: 0, bytes: 0 };
  const others = targets.filter((t) => t.host !== via);
  const direct = async () => ({ settled: (await parts.runHosts(() => undefined)).settled, relaySent });
  if (others.length === 0) return direct();
  if (!SAFE_ROOT.test(opts.dataRoot)) {
    rlog.warn(
      `relay mode needs a data root of letters, digits and ./_- (got ${opts.dataRoot}); sending directly to every host`,
    );
    return direct();
  }
  const runId = crypto.randomBytes(6).toString("hex");
  const paths = relayPaths(opts.dataRoot, opts.cluster, runId);
  const relayed = new Set<string>();
  const installed: SshTarget[] = [];
  let relayDirMade = false;
  try {
    // 1. The key pair, made on the relay.
    let setup: RelaySetup;
    try {
      relayDirMade = true;
      setup = parseRelaySetup(
        (
          await io.run(via, "distribute: relay setup", relaySetupScript(paths, opts.cluster, runId), {
            quiet: true,
          })
        ).stdout,
        via,
      );
    } catch (err) {
      rlog.warn(`relay setup failed (${msg(err)}); sending directly to every host`);
      return await direct();
    }
    const options = authorizedKeyOptions(setup.addresses, paths.receiver);
    // 2. The key on each target, through the operator's own session (this also pins its host key).
    await mapLimit(others, opts.concurrency ?? 8, async (t) => {
      installed.push(t);
      try {
        await io.run(
          t.host,
          "distribute: relay key install",
          installScript(paths, t.user, opts.cluster, runId, options, setup.publicKey),
          { quiet: true },
        );
        relayed.add(t.host);
      } catch (err) {
        log.forHost(t.host).warn(`could not install the relay's key (${msg(err)}); sending directly`);
      }
    });
    // 3. The relay trusts exactly the host keys the operator pinned.
    const kh = relayKnownHosts(
      await readKnownHosts(relay.knownHostsFile),
      others.filter((t) => relayed.has(t.host)),
    );
    for (const h of kh.unpinned) {
      relayed.delete(h);
      log.forHost(h).warn(`no pinned host key for the relay to check; sending directly`);
    }
    if (relayed.size > 0) {
      await io.put(via, "distribute: relay known_hosts", paths.knownHosts, Buffer.from(kh.text), 0o600);
      // 4. Can the relay log in? (a refused key, a firewall, a host key the relay sees differently)
      await mapLimit(
        others.filter((t) => relayed.has(t.host)),
        fanout,
        async (t) => {
          const r = await io.run(via, `distribute: relay probe ${t.host}`, probeScript(paths, t), {
            quiet: true,
            allowFail: true,
          });
          if (r.code === 0 && r.stdout.includes(PROBE_OK)) return;
          relayed.delete(t.host);
          log
            .forHost(t.host)
            .warn(
              `relay ${via} cannot log in here (${tailLines((r.stderr || r.stdout).trim(), 3).replace(/\n/g, " ") || `exit ${r.code}`}); sending directly`,
            );
        },
      );
    }
    if (relayed.size > 0)
      rlog.info(
        `relaying to ${relayed.size} host(s) (${[...relayed].join(", ")}), ${fanout} at once; the operator sends each missing blob once, here`,
      );

    // 5. Distribute: the relay gets each missing blob once from the operator; the others from the relay.
    const feeder = new RelayFeeder(io, relayTarget, opts, parts, relaySent);
    const gate = limiter(fanout);
    const forwarder =
      (t: SshTarget): BlobSender =>
      async (d, size, partial, nth, stats) => {
        await feeder.ensure(d);
        if (!relayed.has(t.host)) return parts.sendDirect(t)(d, size, partial, nth, stats);
        const hlog = log.forHost(t.host);
        const hex = d.slice(7);
        const step = `distribute: relay layer ${nth} ${d.slice(0, 19)} via ${via}`;
        stats.via = via;
        stats.relayedBlobs ??= 0;
        stats.relayedBytes ??= 0;
        for (let fresh = 0; ; fresh++) {
          opts.onProgress?.({ host: t.host, phase: "send", digest: d, bytes: 0, total: size, via });
          const r = await gate(() =>
            io.run(via, step, forwardScript(paths, t, hex, size), { quiet: true, allowFail: true }),
          );
          const out = tailLines([r.stdout.trim(), r.stderr.trim()].filter(Boolean).join("\n"), 10);
          if (r.code === 0) {
            const from = Number(new RegExp(`^${FROM_MARK} (\\d+)$`, "m").exec(r.stdout)?.[1] ?? 0);
            stats.relayedBlobs++;
            stats.relayedBytes += size - from;
            hlog.info(
              `${d.slice(0, 19)} (${size - from} bytes${from ? `, resumed at ${from}` : ""}) from relay ${via}, sha256 verified here`,
            );
            break;
          }
          if (r.code === 255) {
            relayed.delete(t.host);
            hlog.warn(`relay ${via} lost its SSH login here (${out.replace(/\n/g, " ")}); sending directly`);
            return parts.sendDirect(t)(d, size, partial, nth, stats);
          }
          if ((r.code === 92 || r.code === 93) && fresh === 0) {
            hlog.warn(`${out.split("\n")[0]}; relay ${via} sends ${d.slice(0, 19)} again from the start`);
            continue;
          }
          throw new CommandError(t.host, step, r.code, out);
        }
        opts.onProgress?.({ host: t.host, phase: "send", digest: d, bytes: size, total: size, via });
        await io.run(t.host, step, adoptScript(paths, hex), { quiet: true });
      };
    const { settled, perHost } = await parts.runHosts((t) =>
      t.host === via ? (d) => feeder.ensure(d) : relayed.has(t.host) ? forwarder(t) : undefined,
    );
    // The relay's share of the uplink is its own (when it is a target).
    const own = perHost[via];
    if (own) {
      own.sentBlobs += relaySent.blobs;
      own.sentBytes += relaySent.bytes;
      relaySent.blobs = 0;
      relaySent.bytes = 0;
    }
    return { settled, relaySent };
  } finally {
    // The key leaves every target and the relay, whatever happened above.
    await Promise.all([
      ...installed.map((t) =>
        io
          .run(t.host, "distribute: relay key removal", uninstallScript(t.user, opts.cluster, runId), {
            quiet: true,
          })
          .catch((err: unknown) =>
            log
              .forHost(t.host)
              .warn(
                `could not remove the relay's key from ${t.user}'s authorized_keys (${msg(err)}): delete the line ending in "${keyMarker(opts.cluster, runId)}" (it expires within 24 h)`,
              ),
          ),
      ),
      relayDirMade
        ? io
            .run(via, "distribute: relay cleanup", `rm -rf ${q(paths.run)}`, { quiet: true })
            .catch((err: unknown) =>
              rlog.warn(`could not remove the relay's key directory ${paths.run} (${msg(err)}): delete it`),
            )
        : Promise.resolve(),
    ]);
  }
}

/** Puts each blob on the relay at most once per run, one after another (the operator's uplink is the limit). */
class RelayFeeder {
  private inv?: Promise<NodeBlobInventory>;
  private readonly done = new Map<string, Promise<void>>();
  private chain: Promise<void> = Promise.resolve();
  private sent = 0;

  constructor(
    private readonly io: HostIo,
    private readonly relay: SshTarget,
    private readonly opts: DistributeOptions,
    private readonly parts: DirectParts,
    private readonly counts: { blobs: number; bytes: number },
  ) {}

  ensure(d: string): Promise<void> {
    let p = this.done.get(d);
    if (p) return p;
    p = this.chain.then(() => this.feed(d));
    this.chain = p.catch(() => undefined);
    this.done.set(d, p);
    p.catch(() => {
      // A retry lists the relay again and resumes the partial.
      if (this.done.get(d) === p) this.done.delete(d);
      this.inv = undefined;
    });
    return p;
  }

  private async feed(d: string): Promise<void> {
    this.inv ??= this.io
      .run(
        this.relay.host,
        "distribute: relay list blobs",
        inventoryScript(this.opts.dataRoot, this.opts.cluster),
        {
          quiet: true,
        },
      )
      .then((r) => parseInventory(r.stdout));
    const inv = await this.inv;
    const hex = d.slice(7);
    if (inv.complete.has(hex)) return;
    const stats = { sentBlobs: 0, sentBytes: 0, materialisedFrom: null };
    this.sent++;
    await this.parts.sendDirect(this.relay)(
      d,
      this.parts.sizes.get(d)!,
      inv.partial.get(hex) ?? 0,
      `${this.sent} (to relay)`,
      stats,
    );
    inv.complete.set(hex, this.parts.sizes.get(d)!);
    inv.partial.delete(hex);
    this.counts.blobs += stats.sentBlobs;
    this.counts.bytes += stats.sentBytes;
  }
}
