/**
 * What one step kind is made of: the handler that runs it on the hosts, the pure rule that turns
 * its success into the applied state, and what a drift check expects of it afterwards. Each kind
 * lives in its own file next to this one; index.ts maps every StepKind to its definition.
 */
import type { Desired } from "../../plan/planner";
import type { AppliedHost, AppliedState, Role, Step, StepKind } from "../../plan/types";
import type { CheckResult } from "../../drift/check";
import type {
  ClusterLayout,
  Expectation,
  ExpectedHost,
  HostObservation,
  NodeList,
} from "../../drift/compare";
import type { ExecContext } from "../context";
import type { Footprint } from "../footprint";

export type StepOf<K extends StepKind> = Extract<Step, { kind: K }>;

/** Host facts a handler learnt on the host (the node name it joined with, labels it set). */
export type HostFacts = Partial<Pick<AppliedHost, "nodeName" | "labels" | "taints">>;

/** What a handler saw and left on the hosts; recordStep turns it into the applied state. */
export interface Observed {
  /** Host IP -> what the step left there (files, the rootfs list), for drift checks. */
  footprint?: Footprint;
  hosts?: Record<string, HostFacts>;
  /** Join material and the admin kubeconfig made or fetched by the step. */
  secrets?: NonNullable<AppliedState["secrets"]>;
}

/** The helpers every record rule shares (exec/record.ts makes them for one desired state). */
export interface RecordKit {
  desired: Desired;
  /** The host's record in the state being built, created when missing. */
  host(ip: string): AppliedHost;
  /** The host's role in the desired cluster. */
  roles(ip: string): Role[];
  /** Marks the host as installed with the desired Kubernetes inputs (kubeKey, version). */
  setKube(ip: string): void;
}

/**
 * A record rule changes `next` (a copy the caller owns) for a step that succeeded. "untracked":
 * the kind keeps no step record (its effect lives on the host records); otherwise the caller
 * stores the step's key and clears its drift note.
 */
export type RecordRule<K extends StepKind> = (
  next: AppliedState,
  step: StepOf<K>,
  kit: RecordKit,
) => void | "untracked";

/** What the drift check knows about one host when it asks a kind for its expectations. */
export interface ProbeInput {
  applied: AppliedState;
  layout: ClusterLayout;
  ip: string;
  master0: boolean;
  worker: boolean;
  /** Whether the state records step `id`. */
  recorded: (id: string) => boolean;
  /** The recorded per-host step ids of this host (ending in ":<ip>"), in order. */
  hostSteps: string[];
}

/**
 * What the drift check looks at for a kind: what a recorded step of it should still show on a
 * host beyond the files its footprint lists (those, and /etc/hosts blocks, are compared for every
 * kind alike), and how that is compared with what the host's probe found.
 */
export interface KindProbe {
  expect(p: ProbeInput): Expectation;
  /** The kind's own checks of one host (absent: its expectations are blocks or files only). */
  compare?(e: ExpectedHost, o: HostObservation, nodes: NodeList): CheckResult[];
}

export interface StepKindDef<K extends StepKind> {
  run(ctx: ExecContext, step: StepOf<K>): Promise<Observed>;
  record: RecordRule<K>;
  /** Absent: nothing to expect beyond the footprint's files. */
  probe?: KindProbe;
}

/** The record rule of kinds whose only record is the step's key (and footprint). */
export const keyOnly = (): void => undefined;
