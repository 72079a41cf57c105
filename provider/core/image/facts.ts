/**
 * ImageFacts for the planner: everything it needs about an image, read from the local store.
 */
import type { ImageFacts } from "../plan/types";
import type { OciLayout } from "./layout";
import { listLayerPaths } from "./materialize";
import { readExtension, resolveManifest } from "./store";
import { Annotations, SealerLabels } from "./types";

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
  const ext = readExtension(r.manifest);
  const labels = r.config.config?.Labels ?? {};
  const layers = [];
  for (const l of r.manifest.layers) {
    const ann = l.annotations?.[Annotations.layerPaths];
    const paths = ann ? (JSON.parse(ann) as string[]) : await listLayerPaths(layout, l.digest);
    layers.push({ digest: l.digest, size: l.size, paths });
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
  };
}
