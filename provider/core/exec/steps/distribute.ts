/**
 * distribute: missing layer blobs to the hosts and the rootfs materialised (exec/distribute.ts),
 * then each host's templates and Config documents rendered (exec/render-on-host.ts). Its drift
 * check: the layer blobs in the node's store, layers.json, and the rootfs as it was left.
 */
import { drift, list, shortDigest, type CheckResult } from "../../drift/check";
import type { ExpectedHost, HostObservation } from "../../drift/compare";
import { distributeProgress } from "../../progress/distribute";
import { collectBlobs } from "../blob-gc";
import type { ExecContext } from "../context";
import { distributeLayers, type LayerFetch } from "../distribute";
import { parseTreeDigest, recordTreeCmd, type Footprint } from "../footprint";
import { nodePaths } from "../node-layers";
import { chooseDistribution, fetchFromRegistry } from "../registry-distribute";
import { renderOnHost } from "../render-on-host";
import type { StepKindDef, StepOf } from "./kind";

/** How the layer bytes move (exec/distribute.ts, exec/registry-distribute.ts); tests give their own. */
export interface LayerMover {
  choose: typeof chooseDistribution;
  fetchFromRegistry: typeof fetchFromRegistry;
  send: typeof distributeLayers;
}

/** Per apply: settles when the distribute step holding master0 has sent its bytes (or failed). */
const master0Sent = new WeakMap<ExecContext, Promise<void>>();

async function run(ctx: ExecContext, step: StepOf<"distribute">, mover: LayerMover): Promise<Footprint> {
  const targets = step.hosts.map((ip) => ctx.target(ip));
  // master0's bring-up (runtime, registry, kubeadm init) is what the workers' joins wait for, and
  // the hosts share the operator's link and CPU: master0's bytes go first, so that bring-up runs
  // while the workers still receive. Only for direct sends (a relay or registry serves all at once).
  let sent = (): void => undefined;
  if (step.hosts.includes(ctx.master0)) master0Sent.set(ctx, new Promise<void>((r) => (sent = r)));
  try {
    return await distributeAndRender(ctx, step, mover, targets, sent);
  } finally {
    sent();
  }
}

async function distributeAndRender(
  ctx: ExecContext,
  step: StepOf<"distribute">,
  mover: LayerMover,
  targets: ReturnType<ExecContext["target"]>[],
  sent: () => void,
): Promise<Footprint> {
  // The mode changes only how the bytes move, never the plan. In registry mode the image is
  // pushed once and each node fetches the layers it lacks; a host the registry does not serve
  // gets them over SSH.
  const choice = await mover.choose(ctx);
  ctx.log(ctx.master0).debug(`distribute: ${choice.mode} (${choice.why})`);
  let fetch: LayerFetch | undefined;
  if (choice.source) {
    const r = await mover.fetchFromRegistry(ctx, choice.source);
    ctx.stats.sentBytes += r.pushedBytes;
    ctx.stats.pushedBytes += r.pushedBytes;
    fetch = r.fetch;
  }
  const via = choice.mode === "relay" ? (ctx.relay?.via ?? ctx.master0) : undefined;
  const after = choice.mode === "ssh" && !step.hosts.includes(ctx.master0) ? master0Sent.get(ctx) : undefined;
  const res = await mover.send(ctx.io, targets, {
    ...(after ? { sendAfter: after } : {}),
    ...(via
      ? {
          relay: {
            via,
            target: ctx.target(via),
            knownHostsFile: ctx.pool.knownHostsFile,
            ...(ctx.relay?.fanout ? { fanout: ctx.relay.fanout } : {}),
          },
        }
      : {}),
    ...(fetch ? { fetch } : {}),
    layout: ctx.layout,
    layers: step.layers,
    dataRoot: ctx.dataRoot,
    cluster: ctx.cluster,
    concurrency: ctx.concurrency,
    onProgress: distributeProgress(),
  });
  sent();
  ctx.stats.sentBlobs += res.sentBlobs;
  ctx.stats.sentBytes += res.sentBytes;
  for (const ip of step.hosts) {
    const h = res.perHost[ip];
    if (!h) continue;
    const acc = (ctx.stats.perHost[ip] ??= { sentBlobs: 0, sentBytes: 0 });
    acc.sentBlobs += h.sentBlobs;
    acc.sentBytes += h.sentBytes;
    ctx
      .log(ip)
      .info(
        `distribute: sent ${h.sentBlobs} blob(s), ${h.sentBytes} bytes; rootfs ${h.materialisedFrom === null ? "unchanged" : `re-materialised from layer ${h.materialisedFrom}`}`,
      );
  }
  const fp: Footprint = {};
  await ctx.eachHost(step.hosts, async (ip) => {
    const rendered = await renderOnHost(ctx, ip, "distribute");
    // Listed after rendering: the rendered files are part of what this step leaves.
    fp[ip] = { files: rendered.files, tree: await recordTree(ctx, ip, "distribute") };
    // Layers this host had and the new list dropped are garbage now (unless another cluster uses them).
    const had = ctx.state.hosts[ip]?.layers ?? [];
    if (had.some((d) => !step.layers.includes(d))) await collectBlobs(ctx, ip, "layers superseded");
  });
  return fp;
}

/** Records the rootfs file list on the host (beside the rootfs) and returns its digest. */
async function recordTree(
  ctx: ExecContext,
  ip: string,
  step: string,
): Promise<NonNullable<Footprint[string]["tree"]>> {
  const list = nodePaths(ctx.dataRoot, ctx.cluster).rootfsList;
  const r = await ctx.sh(ip, step, recordTreeCmd(ctx.rootfs, list), { quiet: true });
  const line = r.stdout.split("\n")[0] ?? "";
  const t = parseTreeDigest(line);
  // A find that fails lists nothing (still a digest): only broken coreutils leave the line malformed.
  if (!t)
    throw new Error(
      `[${ip}] step "${step}": listing the rootfs ${ctx.rootfs} printed ${JSON.stringify(line.trim())} instead of "<sha256> <count>": check that sha256sum, cut and wc work on ${ip}`,
    );
  return { dir: ctx.rootfs, list, ...t };
}

/** The node's layer store and layers.json as distribute recorded them; the rootfs's presence when no file list was recorded. */
function compareLayers(e: ExpectedHost, o: HostObservation): CheckResult[] {
  const layers = e.layers;
  if (!layers) return [];
  const dist = [`distribute:${e.host}`];
  const out: CheckResult[] = [];
  const missing = layers.filter((d) => o.blobs[d.slice("sha256:".length)] === undefined);
  out.push(
    missing.length
      ? drift(
          "blobs",
          `${layers.length} layer(s) in the node's store (blobs or extracted trees)`,
          `missing ${missing.map(shortDigest).join(", ")}`,
          dist,
        )
      : { check: "blobs", status: "ok" },
  );
  const same =
    o.layersJson !== null &&
    o.layersJson.length === layers.length &&
    o.layersJson.every((d, i) => d === layers[i]);
  out.push(
    same
      ? { check: "layers.json", status: "ok" }
      : drift(
          "layers.json",
          `layers ${layers.map(shortDigest).join(", ")}`,
          o.layersJson === null ? "missing or unreadable" : `layers ${list(o.layersJson.map(shortDigest))}`,
          dist,
        ),
  );
  if (!e.tree)
    out.push(
      o.rootfs
        ? { check: "rootfs", status: "ok" }
        : drift("rootfs", "materialised rootfs", "missing or empty", dist),
    );
  return out;
}

/**
 * The rootfs: every entry of the list distribute left (names and sizes) still there, and the
 * rendered files' content. Files added since are not drift. When the node lost its copy of the
 * list, the recorded digest decides (and nothing can be named).
 */
function compareTree(host: string, t: NonNullable<ExpectedHost["tree"]>, o: HostObservation): CheckResult {
  const expected = `${t.count} file(s) as distributed`;
  if (!o.tree) return drift("rootfs", expected, "not listed by the probe", t.steps);
  const missing = new Set(o.tree.loss.missing);
  const changed = new Set(o.tree.loss.changed);
  for (const f of t.files) {
    const rel = f.path.slice(t.dir.length + 1);
    const now = o.files?.[f.path];
    if (now === null || now === undefined) missing.add(rel);
    else if (now !== f.sha256 && !missing.has(rel)) changed.add(rel);
  }
  const unnamed = !o.tree.loss.listKept && o.tree.digest !== t.digest;
  if (!unnamed && missing.size === 0 && changed.size === 0) return { check: "rootfs", status: "ok" };
  const some = (xs: Iterable<string>) => {
    const a = [...xs];
    return a.slice(0, 5).join(", ") + (a.length > 5 ? ` and ${a.length - 5} more` : "");
  };
  const parts = [
    ...(missing.size ? [`missing ${some(missing)}`] : []),
    ...(changed.size ? [`changed ${some(changed)}`] : []),
    ...(unnamed
      ? [`file list differs (${o.tree.count} file(s) now; the node's copy of the list is gone)`]
      : []),
  ];
  const noteOf = (xs: Iterable<string>, what: string) => {
    const a = [...xs].map((x) => `${t.dir}/${x}`);
    return a.length ? [`${some(a)} ${what} on ${host}`] : [];
  };
  const note = [...noteOf(missing, "missing"), ...noteOf(changed, "changed")];
  return drift("rootfs", expected, parts.join("; "), t.steps, undefined, note.join("; ") || undefined);
}

/** distribute with its layer mover given (the default moves them over SSH or through a registry). */
export function distributeWith(mover: LayerMover): StepKindDef<"distribute"> {
  return {
    run: async (ctx, step) => ({ footprint: await run(ctx, step, mover) }),
    record(_next, step, kit) {
      for (const ip of step.hosts) {
        const h = kit.host(ip);
        h.layers = [...step.layers];
        h.roles = kit.roles(ip);
        const platform = kit.desired.hostPlatforms?.[ip] ?? step.platform;
        if (platform) h.platform = platform;
      }
    },
    probe: {
      expect: ({ applied, ip, recorded }) => {
        const layers = applied.hosts[ip]?.layers ?? [];
        return recorded(`distribute:${ip}`) && layers.length > 0 ? { layers } : {};
      },
      compare: (e, o) => [...compareLayers(e, o), ...(e.tree ? [compareTree(e.host, e.tree, o)] : [])],
    },
  };
}

export const distribute = distributeWith({
  choose: chooseDistribution,
  fetchFromRegistry,
  send: distributeLayers,
});
