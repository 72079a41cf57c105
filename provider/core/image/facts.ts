/**
 * ImageFacts for the planner: everything it needs about an image, read from the local store.
 */
import { normalizeReference } from "../common/reference";
import { templateEnvKeysOf } from "../exec/template-keys";
import type { ImageFacts, LayerFacts } from "../plan/types";
import type { OciLayout } from "./layout";
import { listLayerSummary } from "./materialize";
import { imagePluginFacts } from "./plugin-facts";
import { readExtension, readLayerAnnotations, resolveManifest } from "./store";
import { SealerLabels, type Descriptor } from "./types";

function envList(env: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

/**
 * Facts of `ref` for `platform` (default: this machine's, else the image's first).
 * `manifestDigest` is the platform manifest's digest when `platform` is given, else the digest
 * the reference points at (the index for multi-platform images). Layer paths come from our
 * annotation, or from listing the tar for images built by others.
 */
export async function imageFacts(layout: OciLayout, ref: string, platform?: string): Promise<ImageFacts> {
  const r = await resolveManifest(layout, ref, platform);
  const ext = readExtension(r.manifest, r.reference);
  const labels = r.config.config?.Labels ?? {};
  const layers = await layerFacts(layout, r.manifest.layers, r.reference);
  // Every platform's layers, so each host of a mixed-architecture cluster gets its own.
  let variants: ImageFacts["variants"];
  if (r.indexDigest && r.platforms.length > 1) {
    variants = {};
    for (const p of r.platforms) {
      if (p === r.platform) {
        variants[p] = { manifestDigest: r.manifestDigest, layers };
        continue;
      }
      const o = await resolveManifest(layout, ref, p);
      variants[p] = {
        manifestDigest: o.manifestDigest,
        layers: await layerFacts(layout, o.manifest.layers, o.reference),
      };
    }
  }
  const cri = labels[SealerLabels.containerRuntimeType];
  const kubeVersion = labels[SealerLabels.clusterRuntimeVersion];
  const hasKubeadm = layers.some((l) => l.paths.some((p) => p === "bin/kubeadm" || p === "bin/"));
  const launch: ImageFacts["launch"] = {};
  if (ext?.launch.app_names?.length) launch.appNames = ext.launch.app_names;
  if (ext?.launch.cmds?.length) launch.cmds = ext.launch.cmds;
  if (ext?.legacyCmds?.length) launch.legacyCmds = ext.legacyCmds;
  return {
    reference: r.reference,
    manifestDigest: platform ? r.manifestDigest : (r.indexDigest ?? r.manifestDigest),
    layers,
    imageType: ext?.type ?? (hasKubeadm ? "kube-installer" : "app-installer"),
    ...(kubeVersion ? { kubeVersion } : {}),
    ...(cri === "docker" || cri === "containerd" ? { containerRuntime: cri } : {}),
    apps: (ext?.applications ?? []).map((a) => ({
      name: a.name,
      type: a.type,
      files: a.files,
      ...(a.cmds?.length ? { cmds: a.cmds } : {}),
      ...(a.env && Object.keys(a.env).length ? { env: a.env } : {}),
    })),
    launch,
    env: { ...envList(r.config.config?.Env), ...(ext?.env ?? {}) },
    platforms: r.platforms,
    platform: r.platform,
    ...(variants ? { variants } : {}),
    plugins: await imagePluginFacts(layout, layers, r.reference),
  };
}

async function layerFacts(layout: OciLayout, descs: Descriptor[], reference: string): Promise<LayerFacts[]> {
  const layers: LayerFacts[] = [];
  for (const l of descs) {
    const { paths, groups } = readLayerAnnotations(l, reference);
    if (!paths) {
      layers.push({ digest: l.digest, size: l.size, ...(await listLayerSummary(layout, l.digest)) });
      continue;
    }
    // Layers we built before per-path digests existed carry paths only: their steps key on the layer.
    layers.push({ digest: l.digest, size: l.size, paths, ...(groups ? { groups } : {}) });
  }
  return layers;
}

/**
 * The image facts every planner caller uses — apply, `sealer plan`, Pulumi previews and ups — so
 * the plan shown is the plan run: imageFacts plus which env keys each template/app script reads
 * (so an env change re-runs only its readers).
 */
export async function planningFacts(layout: OciLayout, ref: string): Promise<ImageFacts> {
  const facts = await imageFacts(layout, ref);
  facts.templateEnvKeys ??= await templateEnvKeysOf(layout, facts);
  return facts;
}

/**
 * planningFacts of the image whose manifest is `digest`, named `ref`: a Pulumi preview plans the
 * image its ClusterImage built under a preview name only, under the name the apply will use.
 * Undefined when the store has no such image.
 */
export async function planningFactsByDigest(
  layout: OciLayout,
  digest: string,
  ref: string,
): Promise<ImageFacts | undefined> {
  const f = await planningFacts(layout, digest).catch(() => undefined);
  return f && { ...f, reference: normalizeReference(ref) };
}

/**
 * Image facts for a cluster whose image may be gone from the store: the commands that then need
 * only what is already on the nodes (checks, cleaning, exec) get empty facts named `reference`.
 */
export async function factsOrEmpty(layout: OciLayout, ref: string, reference = ref): Promise<ImageFacts> {
  try {
    return await imageFacts(layout, ref);
  } catch {
    return {
      reference,
      manifestDigest: "",
      layers: [],
      imageType: "kube-installer",
      apps: [],
      launch: {},
      env: {},
      platforms: [],
    };
  }
}

/**
 * The platform of a host from its `uname -m` (x86_64 -> linux/amd64, aarch64 -> linux/arm64,
 * armv7l -> linux/arm/v7, ...), named as OCI indexes name platforms; undefined when unknown.
 */
export function platformOfMachine(machine: string): string | undefined {
  const m = machine.trim();
  switch (m) {
    case "x86_64":
    case "amd64":
      return "linux/amd64";
    case "aarch64":
    case "arm64":
      return "linux/arm64";
    case "armv8l": // a 32-bit userland on an ARMv8 kernel
    case "armv7l":
    case "armv7":
      return "linux/arm/v7";
    case "armv6l":
      return "linux/arm/v6";
    case "armv5tel":
    case "armv5l":
      return "linux/arm/v5";
    case "i386":
    case "i486":
    case "i586":
    case "i686":
      return "linux/386";
    case "ppc64le":
      return "linux/ppc64le";
    case "s390x":
      return "linux/s390x";
    case "riscv64":
      return "linux/riscv64";
    case "mips64":
      return "linux/mips64";
    case "mips64el":
      return "linux/mips64le";
    case "loongarch64":
      return "linux/loong64";
    default:
      return undefined;
  }
}
