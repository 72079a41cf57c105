/**
 * `sealer upgrade IMAGE` / `sealer rollback`: apply the cluster with another image. The
 * planner turns a changed Kubernetes version into the kubeadm flow — master0 drained,
 * `kubeadm upgrade apply vX`, kubelet restarted, uncordoned; the other masters one at a time
 * with `kubeadm upgrade node`; workers in bounded batches — stopping at the first failure with
 * the rest of the cluster untouched and still serving. `upgrade` hooks run during an upgrade;
 * a rollback runs the same flow back to the image recorded before the last upgrade
 * (AppliedState.previousImage), with the `rollback` hooks instead of the `upgrade` ones.
 */
import type { ApplyResult } from "../apply";
import { causeOf, ImageNotInStoreError, UserError, wrap } from "../errors";
import { runStep } from "../exec/steps";
import { imageFacts, planningFacts } from "../image/facts";
import { OciLayout } from "../image/layout";
import { dataPaths } from "../paths";
import { assembleDesired, planRollback } from "../session";
import { rollbackHookSteps, rollbackSpec } from "../plan/rollback";
import type { Plan } from "../plan/types";
import type { RanStep } from "./ran-steps";
import { resolveCluster, recordSpec, type ClusterRef } from "./cluster-ref";
import { applyWith, requireCreated, withSession, type LifecycleOptions } from "./session";

export type UpgradeOptions = ClusterRef & LifecycleOptions & { image: string; dryRun?: boolean };

export async function upgradeCluster(o: UpgradeOptions): Promise<ApplyResult> {
  const r = await resolveCluster(o);
  requireCreated(r);
  const layout = o.store ?? new OciLayout(dataPaths.store(o.home));
  let facts;
  try {
    facts = await imageFacts(layout, o.image);
  } catch (err) {
    throw wrap(
      `sealer upgrade: image ${o.image} (build or pull it first; sealer images lists the local store)`,
      err,
    );
  }
  if (facts.imageType !== "kube-installer" || !facts.kubeVersion)
    throw new UserError(
      `sealer upgrade: image ${o.image} carries no Kubernetes version (label cluster.alpha.sealer.io/cluster-runtime-version): an app image is applied with sealer apply/run, not upgrade`,
    );
  const spec = { ...r.spec, image: o.image };
  const res = await applyWith(r, spec, o);
  if (!o.dryRun) await recordSpec(spec, o.home);
  return res;
}

async function rollbackTarget(o: ClusterRef) {
  const r = await resolveCluster(o);
  requireCreated(r);
  const prev = r.applied.previousImage;
  if (!prev)
    throw new UserError(
      `sealer rollback: cluster ${r.spec.name} has no previous image recorded (it was never upgraded from this machine); nothing to roll back to`,
    );
  return { r, prev };
}

/** What `sealer rollback` would run: `sealer plan --rollback`. */
export async function planRollbackOf(o: ClusterRef & LifecycleOptions): Promise<Plan> {
  const { r, prev } = await rollbackTarget(o);
  const layout = o.store ?? new OciLayout(dataPaths.store(o.home));
  let image;
  try {
    image = await planningFacts(layout, prev.reference);
  } catch (err) {
    if (err instanceof UserError) throw wrap(`sealer rollback to ${prev.reference}`, err);
    throw new UserError(
      `sealer rollback to ${prev.reference} (${prev.manifestDigest}): the image is not in the local store; sealer pull it first`,
      { cause: err },
    );
  }
  const desired = await assembleDesired({
    spec: rollbackSpec(r.spec, prev.reference),
    image,
    applied: r.applied,
  });
  return planRollback(desired, r.applied);
}

/**
 * What a failed rollback apply reports: the previous image missing from the local store gets
 * the rollback's context (which image, which digest); other failures (a step, a Clusterfile
 * problem, another image) already say where they are and pass unchanged.
 */
export function rollbackFailure(err: unknown, prev: { reference: string; manifestDigest: string }): unknown {
  if (causeOf(err, ImageNotInStoreError)?.reference === prev.reference)
    return wrap(`sealer rollback to ${prev.reference} (${prev.manifestDigest})`, err);
  return err;
}

export async function rollbackCluster(
  o: ClusterRef & LifecycleOptions & { dryRun?: boolean },
): Promise<ApplyResult & { hooks: RanStep[] }> {
  const { r, prev } = await rollbackTarget(o);
  // The flow of planRollback: the apply back to the previous image, then the rollback hooks.
  const planSpec = rollbackSpec(r.spec, prev.reference);
  let res: ApplyResult;
  try {
    res = await applyWith(r, planSpec, o);
  } catch (err) {
    throw rollbackFailure(err, prev);
  }
  const spec = { ...r.spec, image: prev.reference };
  const hooks: RanStep[] = [];
  if (!o.dryRun) {
    await recordSpec(spec, o.home);
    const hs = rollbackHookSteps(planSpec, res.state, res.image.plugins);
    if (hs.length > 0)
      await withSession(spec, res.state, r.stateDir, o, async (ctx) => {
        for (const s of hs) {
          const started = Date.now();
          await runStep(ctx, s);
          hooks.push({ kind: s.kind, hosts: s.hosts, reason: s.reason, durationMs: Date.now() - started });
        }
      });
  }
  return { ...res, hooks };
}
