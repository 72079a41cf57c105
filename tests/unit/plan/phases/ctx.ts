/** Planning contexts for the phase tests, over the plan-world fixtures. */
import { PlanContext, type Desired, type PlanOptions } from "../../../../provider/core/plan/context";
import type { StepNode } from "../../../../provider/core/plan/nodes";
import { emptyApplied, type AppliedState, type ImageFacts } from "../../../../provider/core/plan/types";
import { baseImage, clusterfile, installed, spec } from "../../../fixtures/clusterfile/plan-world";

export type CfOptions = Parameters<typeof clusterfile>[0];

export function desired(o: CfOptions = {}, image: ImageFacts = baseImage()): Desired {
  return { cluster: spec(clusterfile(o)), image };
}

/** A context for a new cluster. */
export function fresh(o: CfOptions = {}, image?: ImageFacts, opts?: PlanOptions): PlanContext {
  const d = desired(o, image);
  return new PlanContext(d, emptyApplied(d.cluster.name), opts);
}

/** A context for `after` on the cluster `before` installed. */
export function changed(before: Desired, after: Desired, opts?: PlanOptions): PlanContext {
  return new PlanContext(after, installed(before), opts);
}

export function on(d: Desired, applied: AppliedState, opts?: PlanOptions): PlanContext {
  return new PlanContext(d, applied, opts);
}

export const ids = (nodes: StepNode[]): string[] => nodes.map((n) => n.step.id);
export const byId = (nodes: StepNode[], id: string): StepNode => {
  const n = nodes.find((x) => x.step.id === id);
  if (!n) throw new Error(`no node ${id} among ${ids(nodes).join(", ")}`);
  return n;
};
export const partNames = (n: StepNode): string[] => n.parts.map((p) => p.name);
