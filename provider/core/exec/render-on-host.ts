/**
 * Rendering on a node: `.tmpl` files with each host's env and the Config documents applied, on the
 * node's rootfs copy, from the `.tmpl` source that stays next to its output, so it is repeatable;
 * a file is written only when its content changed, so a changed env value rewrites exactly the
 * files that use it.
 */
import { UserError } from "../errors";
import { shellQuote } from "../ssh";
import type { ExecContext } from "./context";
import { hashes } from "./footprint";
import { applyConfig, configTarget, renderTemplate, renderedPath } from "./templates";

/** Directories whose `.tmpl` files are rendered, plus apps (APPENV). */
const TEMPLATE_DIRS = ["etc", "charts", "manifests", "application", "scripts", "statics", "plugins"];

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
