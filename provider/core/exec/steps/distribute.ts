/**
 * distribute: missing layer blobs to the hosts and the rootfs materialised (distribute.ts,
 * helper D1's), then `.tmpl` files rendered with each host's env and the Config documents
 * applied (C10). Rendering happens on the node's rootfs copy, from the `.tmpl` source that
 * stays next to its output, so it is repeatable; a file is written only when its content
 * changed, so a changed env value rewrites exactly the files that use it.
 */
import { UserError } from "../../errors";
import type { Step } from "../../plan/types";
import { shellQuote } from "../../ssh";
import { collectBlobs } from "../blob-gc";
import type { ExecContext } from "../context";
import { hashes, parseTreeDigest, recordTreeCmd, type Footprint } from "../footprint";
import { nodePaths } from "../node-layers";
import { distributeLayers } from "../distribute";
import { chooseDistribution, fetchFromRegistry } from "../registry-distribute";
import { distributeProgress } from "../../progress/distribute";
import { applyConfig, configTarget, renderTemplate, renderedPath } from "../templates";

/** Directories whose `.tmpl` files are rendered (REFERENCE §3), plus apps (APPENV). */
const TEMPLATE_DIRS = ["etc", "charts", "manifests", "application", "scripts", "statics", "plugins"];

export async function runDistribute(
  ctx: ExecContext,
  step: Extract<Step, { kind: "distribute" }>,
): Promise<Footprint> {
  const targets = step.hosts.map((ip) => ctx.target(ip));
  // The mode changes only how the bytes move, never the plan. Registry mode (B5) fetches the
  // blobs first; the SSH path below then sends only what a failed host still lacks.
  const choice = await chooseDistribution(ctx);
  ctx.log(ctx.master0).debug(`distribute: ${choice.mode} (${choice.why})`);
  if (choice.source) {
    const pushedBytes = await fetchFromRegistry(ctx, step, choice.source);
    ctx.stats.sentBytes += pushedBytes;
    ctx.stats.pushedBytes += pushedBytes;
  }
  const via = choice.mode === "relay" ? (ctx.relay?.via ?? ctx.master0) : undefined;
  const res = await distributeLayers(ctx.io, targets, {
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
    layout: ctx.layout,
    layers: step.layers,
    dataRoot: ctx.dataRoot,
    cluster: ctx.cluster,
    fromLayer: step.fromLayer,
    concurrency: ctx.concurrency,
    onProgress: distributeProgress(),
  });
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

const SEP = "=#=sealer-file=#=";

/** Reads several files in one round trip: path -> content (undefined when missing). */
async function readMany(
  ctx: ExecContext,
  ip: string,
  step: string,
  files: string[],
): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  if (files.length === 0) return out;
  const script = files
    .map(
      (f) =>
        `printf '%s %s\\n' ${shellQuote(SEP)} ${shellQuote(f)}; if [ -f ${shellQuote(f)} ]; then base64 -w0 ${shellQuote(f)}; else printf MISSING; fi; echo`,
    )
    .join("; ");
  const r = await ctx.sh(ip, step, script, { quiet: true });
  const lines = r.stdout.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!l.startsWith(SEP + " ")) continue;
    const f = l.slice(SEP.length + 1);
    const body = lines[i + 1] ?? "";
    out.set(f, body === "MISSING" ? undefined : Buffer.from(body, "base64").toString("utf8"));
    i++;
  }
  return out;
}

/** Renders a host's templates and Config documents: the files rewritten, and every rendered file's sha256 by path. */
export async function renderOnHost(
  ctx: ExecContext,
  ip: string,
  step: string,
): Promise<{ written: string[]; files: Record<string, string> }> {
  const root = ctx.rootfs;
  const found = await ctx.sh(
    ip,
    step,
    `cd ${shellQuote(root)} && for d in ${TEMPLATE_DIRS.join(" ")}; do [ ! -d "$d" ] || find "$d" -type f -name '*.tmpl'; done | LC_ALL=C sort`,
    { quiet: true },
  );
  const tmpls = found.stdout.split("\n").filter(Boolean);
  const env = ctx.env(ip);
  // Per-app env (APPENV) overrides the cluster env for that app's files.
  const appEnv = (rel: string): Record<string, string> => {
    const m = /^application\/apps\/([^/]+)\//.exec(rel);
    const app = m ? ctx.image.apps.find((a) => a.name === m[1]) : undefined;
    return app?.env ? { ...env, ...app.env } : env;
  };
  const configs = ctx.spec.configs.map((c) => ({ doc: c, rel: configTarget({ ...c, process: c.process }) }));
  const wanted = [...tmpls.flatMap((t) => [t, renderedPath(t)]), ...configs.map((c) => c.rel)];
  const current = await readMany(
    ctx,
    ip,
    step,
    [...new Set(wanted)].map((f) => `${root}/${f}`),
  );
  const get = (rel: string) => current.get(`${root}/${rel}`);

  const next = new Map<string, string>();
  for (const t of tmpls) {
    const src = get(t);
    if (src === undefined) continue;
    next.set(renderedPath(t), renderTemplate(src, appEnv(t), t));
  }
  for (const { doc, rel } of configs) {
    const base = next.get(rel) ?? get(rel);
    try {
      next.set(rel, applyConfig({ ...doc, process: doc.process }, base));
    } catch (err) {
      if (err instanceof UserError)
        throw new UserError(`[${ip}] step "${step}": ${err.message}`, { cause: err });
      throw err;
    }
  }
  const written: string[] = [];
  for (const [rel, content] of next) {
    if (get(rel) === content) continue;
    await ctx.put(ip, step, `${root}/${rel}`, content, 0o644);
    written.push(rel);
  }
  if (written.length) ctx.log(ip).info(`rendered ${written.join(", ")}`);
  ctx.stats.rendered[ip] = [...(ctx.stats.rendered[ip] ?? []), ...written];
  return { written, files: hashes(Object.fromEntries([...next].map(([rel, c]) => [`${root}/${rel}`, c]))) };
}
