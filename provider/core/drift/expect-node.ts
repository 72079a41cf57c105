/** The drift expectation for a host's registered node, shared by the kinds that join one. */
import type { ProbeInput } from "../exec/steps/kind";
import type { NodeExpectation } from "./compare";

/**
 * The node the recorded `joinId` registered, with the steps that re-register it: the join itself
 * and what acts on the registered node after it (labels, post-init-host hooks). master0's node
 * (init-master) has none: re-running kubeadm init is not safe.
 */
export function expectNode(p: ProbeInput, joinId: string, rerunnable: boolean): { node?: NodeExpectation } {
  const name = p.applied.hosts[p.ip]?.nodeName;
  if (!p.recorded(joinId) || !name) return {};
  const downstream = Object.keys(p.applied.steps)
    .filter(
      (id) =>
        id.endsWith(`:${p.ip}`) && (id === `node-labels:${p.ip}` || id.startsWith("hook:post-init-host:")),
    )
    .sort();
  return { node: { name, joinSteps: rerunnable ? [joinId, ...downstream] : [] } };
}
