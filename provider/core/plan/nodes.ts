/**
 * Step nodes: what a planning phase produces. A node is a step without what the planner adds
 * once the whole graph is known (its key, the reason it is planned, `after`), plus the inputs
 * that decide those: its parts, its dependencies and the reason it runs when it never ran.
 */
import type { Part } from "./keys";
import type { Step, StepKind } from "./types";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A step of kind K as a phase decides it: id, hosts and the fields of its kind. */
type StepDraft<K extends StepKind = StepKind> = DistributiveOmit<
  Extract<Step, { kind: K }>,
  "reason" | "key" | "after" | "parts"
>;

/** A step node of kind K; StepNode alone is the union over every kind. */
export type StepNode<K extends StepKind = StepKind> = K extends StepKind ? NodeOf<K> : never;

interface NodeOf<K extends StepKind> {
  step: StepDraft<K>;
  parts: Part[];
  /** Ids of steps (planned or not) that come first; ids not in the graph are ignored. */
  deps: string[];
  /** Reason when the step never ran. */
  newReason: string;
  /** Planned regardless of its record (hosts re-added after a role change). */
  force?: string;
  /** Appended to the reason when the step is planned (e.g. a platform that was guessed). */
  note?: string;
  /** Upgrade steps compare with the host's recorded kubeKey, not a step record. */
  kubeHost?: string;
  kubeDesc?: string;
}

/** The nodes a phase adds, in the order it adds them (the order the plan keeps where deps allow). */
export class NodeList {
  readonly nodes: StepNode[] = [];

  /** Adds a node (empty dep ids dropped) and returns its id. */
  add(n: StepNode): string {
    this.nodes.push({ ...n, deps: n.deps.filter(Boolean) });
    return n.step.id;
  }
}
