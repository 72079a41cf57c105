import { parseIpList } from "./flags";
import { checkLabelKey } from "./syntax";
import type { HookPhase } from "./types";

/** Phases at which sealer resolves a label selector in `on` (it lists the running cluster's nodes). */
export const LABEL_ON_PHASES: readonly HookPhase[] = ["post-install", "post-scaleup", "pre-clean-host"];

/**
 * The `on` field of a legacy Plugin (sealer v0.5-v0.8), which picks the hosts a plugin runs on:
 * - a label selector when it holds "=" (`node-role.kubernetes.io/master=`, `a=b,c!=d`), matched
 *   against the Kubernetes nodes' labels;
 * - `master`, `node` (hosts of that role) or `master0` (the first master);
 * - otherwise a comma-separated list of IPs and `a-b` ranges.
 */
export type OnSelector =
  | { kind: "role"; role: "master" | "node" }
  | { kind: "master0" }
  | { kind: "labels"; requirements: Array<{ key: string; value: string; equal: boolean }> }
  | { kind: "ips"; ips: string[] };

/** The selector, or a message saying what is wrong with it. */
export function parseOn(text: string): OnSelector | string {
  const on = text.trim();
  if (on.includes("=")) {
    const requirements: Array<{ key: string; value: string; equal: boolean }> = [];
    for (const part of on.split(",").map((s) => s.trim())) {
      const m = /^([^=!\s]+)\s*(!=|==|=)\s*(\S*)$/.exec(part);
      if (!m) return `"${part}" is not a label requirement (write key=value or key!=value, joined with ",")`;
      const key = m[1] as string;
      const err = checkLabelKey(key);
      if (err) return err;
      requirements.push({ key, value: m[3] as string, equal: m[2] !== "!=" });
    }
    return { kind: "labels", requirements };
  }
  if (on === "master" || on === "node") return { kind: "role", role: on };
  if (on === "master0") return { kind: "master0" };
  const problems: string[] = [];
  const ips = parseIpList(on, "on", problems);
  if (problems.length)
    return `${problems.join("; ")} (on takes master, node, master0, IPs and ranges joined with ",", or a label selector key=value)`;
  return { kind: "ips", ips };
}

/**
 * The labels a host carries as a Kubernetes node: the ones kubeadm and the kubelet set (role
 * labels, OS) and the ones the Clusterfile gives it.
 */
export function nodeLabels(role: "master" | "node", labels: Record<string, string>): Record<string, string> {
  return {
    "kubernetes.io/os": "linux",
    ...(role === "master"
      ? { "node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": "" }
      : {}),
    ...labels,
  };
}

/** Whether a node with `labels` matches every requirement (a missing key matches only "!="). */
export function matchesLabels(
  requirements: Array<{ key: string; value: string; equal: boolean }>,
  labels: Record<string, string>,
): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    return r.equal ? has && labels[r.key] === r.value : !has || labels[r.key] !== r.value;
  });
}
