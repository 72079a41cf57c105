/**
 * The digest of a plan: what a reviewer approved, so `sealer apply --plan-digest` (and the Pulumi
 * Cluster's `plan` property) can insist that the plan run is that plan. It covers what the plan
 * would do — step ids, kinds, hosts, keys (the hash of every input a step reads), order, and the
 * layers a distribute sends — and not the reason wording, so the same work gets the same digest
 * whether or not a host's platform was probed yet. Pure.
 */
import { sha256Hex, stableStringify } from "../common/hash";
import type { Plan } from "./types";

export function planDigest(p: Plan): string {
  const steps = p.steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    hosts: s.hosts,
    key: s.key,
    after: s.after,
    ...(s.kind === "distribute" ? { layers: s.layers } : {}),
  }));
  return "sha256:" + sha256Hex(stableStringify({ cluster: p.cluster, replace: p.replace ?? null, steps }));
}
