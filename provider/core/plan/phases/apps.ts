/**
 * The launch on master0: each app's launch commands (launch-app), or one list of commands
 * (launch-cmds), resolved as sealer does. Apps no longer launched leave a warning: nothing
 * uninstalls what they installed.
 */
import type { ClusterSpec, Env } from "../../clusterfile/types";
import { shellQuote } from "../../common/shell-quote";
import { UserError } from "../../errors";
import type { PlanContext } from "../context";
import { classifyPath, classTouchesApp, type LayerClass } from "../impact";
import { hash, type Part } from "../keys";
import { NodeList, type StepNode } from "../nodes";
import type { ImageFacts } from "../types";

/** Launch resolution: Application cmds > Cluster cmd > apps (appNames > launchApps > LAUNCH) > CMDS > legacy CMD. */
export interface Launch {
  cmds?: { cmds: string[]; source: string };
  apps: Array<{ name: string; cmds: string[]; env: Env }>;
}

/** An app's default launch commands by its type (kube: apply its yaml, helm: upgrade --install, shell: its .sh). */
function defaultCmds(app: ImageFacts["apps"][number]): string[] {
  const dir = `application/apps/${app.name}`;
  // File and app names are data from the image: quote them so `a$(x).yaml` stays one file name.
  const file = (f: string) => shellQuote(`${dir}/${f}`);
  switch (app.type) {
    case "kube":
      return app.files.filter((f) => /\.ya?ml$/.test(f)).map((f) => `kubectl apply -f ${file(f)}`);
    case "helm":
      // upgrade --install: re-launching a changed app must work on a cluster where it runs.
      return [`helm upgrade --install ${shellQuote(app.name)} ${shellQuote(dir)}`];
    case "shell":
      return app.files.filter((f) => f.endsWith(".sh")).map((f) => `bash ${file(f)}`);
    case "other":
      return [];
  }
}

export function resolveLaunch(spec: ClusterSpec, image: ImageFacts): Launch {
  const app = spec.application;
  if (app && app.cmds.length) return { cmds: { cmds: app.cmds, source: "Application cmds" }, apps: [] };
  if (spec.cmd.length) return { cmds: { cmds: spec.cmd, source: "Clusterfile cmd" }, apps: [] };
  const names = spec.appNames.length
    ? spec.appNames
    : app?.launchApps.length
      ? app.launchApps
      : (image.launch.appNames ?? []);
  if (names.length) {
    const problems: string[] = [];
    // Say which field named the app, so the user knows where to fix it.
    const field = spec.appNames.length
      ? "spec.appNames"
      : app?.launchApps.length
        ? "Application spec.launchApps"
        : "the image's LAUNCH";
    const apps = names.map((name) => {
      const facts = image.apps.find((a) => a.name === name);
      if (!facts)
        problems.push(
          `${field}: app "${name}" is not in image ${image.reference} (its apps: ${image.apps.map((a) => a.name).join(", ") || "none"})`,
        );
      const cfg = app?.configs.find((c) => c.name === name);
      let cmds = cfg?.launchCmds ?? facts?.cmds ?? [];
      if (cmds.length === 0 && facts) cmds = defaultCmds(facts);
      const env: Env = {};
      for (const [k, v] of Object.entries(facts?.env ?? {})) env[k] = [v];
      Object.assign(env, cfg?.env ?? {});
      return { name, cmds, env };
    });
    if (problems.length)
      throw new UserError(`cannot plan the launch:\n${problems.map((p) => ` - ${p}`).join("\n")}`, {
        problems,
      });
    return { apps };
  }
  if (image.launch.cmds?.length) return { cmds: { cmds: image.launch.cmds, source: "image CMDS" }, apps: [] };
  if (image.launch.legacyCmds?.length)
    return { cmds: { cmds: image.launch.legacyCmds, source: "image CMD" }, apps: [] };
  return { apps: [] };
}

export interface LaunchPhase {
  nodes: StepNode[];
  /** The last launch step, "" when nothing is launched. */
  last: string;
  warnings: string[];
}

/** `after`: what the launch waits for (post-install hooks, labels, upgrades, removals). */
export function launchSteps(ctx: PlanContext, after: string[]): LaunchPhase {
  const out = new NodeList();
  const { spec, image } = ctx;
  const launch = resolveLaunch(spec, image);
  let last = "";
  for (const app of launch.apps) {
    const text = app.cmds.join("\n");
    const usesDir = (dir: string) => text.includes(`${dir}/`);
    const match = (c: LayerClass) =>
      classTouchesApp(c, app.name) ||
      (c === "manifests" && usesDir("manifests")) ||
      (c === "charts" && usesDir("charts"));
    const parts: Part[] = [
      { name: "cmds", hash: hash([app.cmds, app.env]), desc: `launch of app ${app.name} changed` },
      ctx.layerPart(`layers:app:${app.name}`, match, `application/apps/${app.name}/`),
      {
        name: "configs",
        hash: hash(spec.configs.filter((c) => c.appName === app.name || classifyPath(c.path).some(match))),
        desc: `Config documents for app ${app.name} changed`,
      },
      ...ctx.envParts(ctx.master0, "launch", match, true, text, `launch-app:${app.name}`),
    ];
    last = out.add({
      step: {
        id: `launch-app:${app.name}`,
        kind: "launch-app",
        hosts: [ctx.master0],
        app: app.name,
        cmds: app.cmds,
      },
      parts,
      deps: [...after, last],
      newReason: `launch app ${app.name} (${ctx.clusterNew})`,
    });
  }
  if (launch.cmds) {
    const { cmds, source } = launch.cmds;
    const text = cmds.join("\n");
    const match = (c: LayerClass) =>
      c === "manifests" ||
      c === "charts" ||
      (c.startsWith("app:") && (c === "app:*" || text.includes(`application/apps/${c.slice(4)}`)));
    const parts: Part[] = [
      { name: "cmds", hash: hash(cmds), desc: `launch commands changed (${source})` },
      ctx.layerPart("layers:launch-cmds", match, "manifests/, charts/"),
      {
        name: "configs",
        hash: hash(spec.configs.filter((c) => classifyPath(c.path).some(match))),
        desc: "Config documents for the launch changed",
      },
      ...ctx.envParts(ctx.master0, "launch", match, true, text, "launch-cmds"),
    ];
    last = out.add({
      step: { id: "launch-cmds", kind: "launch-cmds", hosts: [ctx.master0], cmds },
      parts,
      deps: [...after, last],
      newReason: `run ${source} (${ctx.clusterNew})`,
    });
  }
  const warnings: string[] = [];
  for (const [id, rec] of Object.entries(ctx.applied.steps))
    if (id.startsWith("launch-app:") && !launch.apps.some((a) => `launch-app:${a.name}` === id))
      warnings.push(
        `app ${id.slice(11)} is no longer launched: what it installed stays in the cluster (no uninstall step; remove it with kubectl/helm on ${rec.hosts[0] ?? "master0"})`,
      );
  return { nodes: out.nodes, last, warnings };
}
