/** The drift check of a host's registered node, shared by the kinds that register one. */
import type { ProbeInput } from "../exec/steps/kind";
import { drift, type CheckResult } from "./check";
import type { ExpectedHost, NodeExpectation, NodeList } from "./compare";

/**
 * The node the recorded `joinId` registered, with the steps that re-register it: the join itself
 * and what acts on the registered node after it (labels, post-init-host hooks). master0's node
 * (init-master) has none: re-running kubeadm init is not safe.
 */
export function expectNode(
  p: ProbeInput,
  by: NodeExpectation["by"],
  joinId: string,
): { node?: NodeExpectation } {
  const name = p.applied.hosts[p.ip]?.nodeName;
  if (!p.recorded(joinId) || !name) return {};
  const rerunnable = by !== "init-master";
  const downstream = p.hostSteps.filter(
    (id) => id === `node-labels:${p.ip}` || id.startsWith("hook:post-init-host:"),
  );
  return { node: { name, by, joinSteps: rerunnable ? [joinId, ...downstream] : [] } };
}

/** The node a kind registered is in the cluster's node list (checked by that kind only). */
export function compareNode(by: NodeExpectation["by"], e: ExpectedHost, nodes: NodeList): CheckResult[] {
  const want = e.node;
  if (!want || want.by !== by) return [];
  if (!nodes.ok)
    return [
      nodes.unreachable
        ? { check: "node", status: "unreachable", detail: nodes.error }
        : { check: "node", status: "unknown", detail: nodes.error },
    ];
  if (nodes.nodes.some((x) => x.name === want.name)) return [{ check: "node", status: "ok" }];
  return [
    drift(
      "node",
      `node ${want.name} registered`,
      `not in the node list (from ${nodes.from})`,
      want.joinSteps,
      want.joinSteps.length
        ? undefined
        : `master0's node ${want.name} is gone from the API server: check its kubelet; re-running kubeadm init is not safe`,
    ),
  ];
}
