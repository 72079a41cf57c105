/**
 * distribute: the layers of the host's platform to the host, the rootfs materialised from them,
 * templates and Config documents rendered. Keyed by the layer digests in order, the Config
 * documents and the env the templates read.
 */
import type { PlanContext } from "../context";
import { hash, short, type Part } from "../keys";
import type { StepNode } from "../nodes";

/** Reason of a changed layer list: the new layers (from the first that differs), or what else moved. */
function layersReason(ctx: PlanContext, ip: string): string {
  const view = ctx.hosts.get(ip);
  const layers = view?.layers ?? [];
  const digests = layers.map((l) => l.digest);
  const rec = ctx.applied.hosts[ip];
  const prev = rec?.layers ?? [];
  let from = 0;
  while (from < digests.length && from < prev.length && prev[from] === digests[from]) from++;
  if (ctx.roleChanged.has(ip)) from = 0;
  const changed = digests.map((dg, i) => ({ dg, i })).filter(({ dg, i }) => i >= from && !prev.includes(dg));
  const moved =
    view?.platformKnown && rec?.platform && rec.platform !== view.platform
      ? `platform of ${ip} changed ${rec.platform} -> ${view.platform}; `
      : "";
  if (changed.length === 0)
    return moved + (digests.length < prev.length ? "layers removed from the image" : "layer order changed");
  const shown = changed
    .slice(0, 3)
    .map(({ dg, i }) => `layer ${short(dg)} changed ${(layers[i]?.paths ?? []).join(", ") || "(no paths)"}`);
  return moved + shown.join("; ") + (changed.length > 3 ? `; and ${changed.length - 3} more layers` : "");
}

export function distributeNode(ctx: PlanContext, ip: string, deps: string[]): StepNode<"distribute"> {
  const view = ctx.hosts.get(ip);
  const platform = view?.platform ?? "";
  const layers = (view?.layers ?? []).map((l) => l.digest);
  const parts: Part[] = [
    { name: "layers", hash: hash(layers), desc: layersReason(ctx, ip) },
    ctx.shared(
      "configs",
      () => [ctx.spec.configs, ctx.spec.application?.configs.map((c) => c.files) ?? []],
      "Config documents changed",
    ),
    ...ctx.envParts(ip, "distribute", () => true, true),
  ];
  // Only a multi-platform image can give a host other layers than the guess (a single-platform
  // one fits the host or apply refuses it), so only then is the guess worth saying.
  const guessed = !view?.platformKnown && platform && Object.keys(ctx.image.variants ?? {}).length >= 2;
  return {
    step: {
      id: `distribute:${ip}`,
      kind: "distribute",
      hosts: [ip],
      layers,
      ...(platform ? { platform } : {}),
    },
    parts,
    deps,
    newReason: ctx.hostNew(ip),
    force: ctx.force(ip),
    ...(guessed
      ? { note: `platform of ${ip} not probed yet: planned with the image's default ${platform}` }
      : {}),
  };
}
