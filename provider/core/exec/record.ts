/**
 * The applied state after a step succeeded: each kind's record rule (steps/<kind>.ts) applied to a
 * copy, then the step's key, named input hashes and footprint stored. Pure: the executor calls it
 * after every step and saves the result, so a failed apply resumes where it stopped; nothing else
 * writes AppliedState during an apply.
 */
import { masters as mastersOf } from "../clusterfile";
import { kubeKey, type Desired } from "../plan/planner";
import type { AppliedState, Plan, Role, Step } from "../plan/types";
import { withFootprint } from "./footprint";
import type { Observed, RecordKit } from "./steps/kind";
import { STEP_KINDS } from "./steps";

/** Per desired state (memoised on the object: recordAll records every host of a large plan). */
interface DesiredFacts {
  masters: Set<string>;
  kubeKeys: Partial<Record<Role, string>>;
}
const factsCache = new WeakMap<Desired, DesiredFacts>();

function factsOf(d: Desired): DesiredFacts {
  let f = factsCache.get(d);
  if (!f) {
    f = { masters: new Set(mastersOf(d.cluster)), kubeKeys: {} };
    factsCache.set(d, f);
  }
  return f;
}

function kitFor(next: AppliedState, desired: Desired): RecordKit {
  const facts = factsOf(desired);
  const roles = (ip: string): Role[] => (facts.masters.has(ip) ? ["master"] : ["node"]);
  const host = (ip: string) => (next.hosts[ip] ??= { roles: [], layers: [] });
  // The Kubernetes inputs of a role do not depend on the host or on what was applied before.
  const kubeKeyOf = (role: Role) => (facts.kubeKeys[role] ??= kubeKey(desired, role));
  return {
    desired,
    host,
    roles,
    setKube: (ip) => {
      const h = host(ip);
      h.kubeKey = kubeKeyOf(roles(ip)[0] ?? "node");
      h.kubeVersion = desired.image.kubeVersion ?? "";
    },
  };
}

/** recordStep on a state the caller owns (changed in place). */
function applyRecord(next: AppliedState, step: Step, desired: Desired, observed: Observed): void {
  next.cluster = desired.cluster.name;
  const kit = kitFor(next, desired);
  const def = STEP_KINDS[step.kind] as {
    record: (n: AppliedState, s: Step, k: RecordKit) => void | "untracked";
  };
  // A host a handler learnt about before any step recorded it gets the role the cluster gives it.
  for (const [ip, facts] of Object.entries(observed.hosts ?? {}))
    Object.assign((next.hosts[ip] ??= { roles: kit.roles(ip), layers: [] }), facts);
  if (observed.secrets) next.secrets = { ...(next.secrets ?? {}), ...observed.secrets };
  if (def.record(next, step, kit) === "untracked") return;
  if (next.drift?.[step.id] !== undefined) {
    delete next.drift[step.id];
    if (Object.keys(next.drift).length === 0) delete next.drift;
  }
  next.steps[step.id] = step.parts
    ? { key: step.key, hosts: [...step.hosts], parts: { ...step.parts } }
    : { key: step.key, hosts: [...step.hosts] };
}

/**
 * The applied state after `step` succeeded with what its handler observed (pure: returns a new
 * object; `applied` is not changed).
 */
export function recordStep(
  applied: AppliedState,
  step: Step,
  desired: Desired,
  observed: Observed = {},
): AppliedState {
  // A structural copy, not a deep one (the executor records after every step: a deep copy made
  // a whole install quadratic in the number of hosts). New maps; the host records the step
  // touches are copied before the rule changes them; every other record is shared and, like
  // all records, replaced rather than changed in place.
  const next: AppliedState = {
    ...applied,
    hosts: { ...applied.hosts },
    steps: { ...applied.steps },
    ...(applied.drift ? { drift: { ...applied.drift } } : {}),
  };
  for (const ip of new Set([...step.hosts, ...Object.keys(observed.hosts ?? {})])) {
    const h = next.hosts[ip];
    if (h) next.hosts[ip] = structuredClone(h);
  }
  applyRecord(next, step, desired, observed);
  return observed.footprint ? withFootprint(next, step.id, observed.footprint) : next;
}

/** Records every step of a plan in order (what a fully successful apply leaves behind). */
export function recordAll(applied: AppliedState, p: Plan, desired: Desired): AppliedState {
  const next: AppliedState = structuredClone(applied);
  for (const step of p.steps) applyRecord(next, step, desired, {});
  return next;
}
