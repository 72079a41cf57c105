/**
 * `sealer upgrade IMAGE` / `sealer rollback` (C6): apply the cluster with another image. The
 * planner turns a changed Kubernetes version into the kubeadm flow — master0 drained,
 * `kubeadm upgrade apply vX`, kubelet restarted, uncordoned; the other masters one at a time
 * with `kubeadm upgrade node`; workers in bounded batches — stopping at the first failure with
 * the rest of the cluster untouched and still serving. `upgrade` hooks run during an upgrade;
 * a rollback runs the same flow back to the image recorded before the last upgrade
 * (AppliedState.previousImage), with the `rollback` hooks instead of the `upgrade` ones.
 */
import type { ApplyResult } from "../apply";
import type { ClusterSpec } from "../clusterfile";
import { UserError, wrap } from "../errors";
import { runStep } from "../exec/steps";
import { imageFacts } from "../image/facts";
import { OciLayout } from "../image/layout";
import { dataPaths } from "../paths";
import { effectivePlugins } from "../plan/plugins";
import { phaseHookSteps, type RanStep } from "./delete-all";
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

export async function rollbackCluster(
  o: ClusterRef & LifecycleOptions & { dryRun?: boolean },
): Promise<ApplyResult & { hooks: RanStep[] }> {
  const r = await resolveCluster(o);
  requireCreated(r);
  const prev = r.applied.previousImage;
  if (!prev)
    throw new UserError(
      `sealer rollback: cluster ${r.spec.name} has no previous image recorded (it was never upgraded from this machine); nothing to roll back to`,
    );
  // The upgrade flow runs back to the previous image; `upgrade` hooks are for upgrades only.
  const planSpec: ClusterSpec = {
    ...r.spec,
    image: prev.reference,
    plugins: r.spec.plugins
      .map((p) => ({
        ...p,
        actions: p.actions.filter((a) => a !== "upgrade" || p.actions.includes("rollback")),
      }))
      .filter((p) => p.actions.length > 0),
  };
  let res: ApplyResult;
  try {
    res = await applyWith(r, planSpec, o);
  } catch (err) {
    if (err instanceof UserError && /local store/.test(err.message))
      throw wrap(`sealer rollback to ${prev.reference} (${prev.manifestDigest})`, err);
    throw err;
  }
  const spec = { ...r.spec, image: prev.reference };
  const hooks: RanStep[] = [];
  if (!o.dryRun) {
    await recordSpec(spec, o.home);
    // The image's plugins/ may define rollback hooks too (the apply above just read its facts).
    const layout = o.store ?? new OciLayout(dataPaths.store(o.home));
    const imagePlugins = (await imageFacts(layout, prev.reference).catch(() => undefined))?.plugins;
    const plugins = effectivePlugins(spec.plugins, imagePlugins);
    if (plugins.some((p) => p.actions.includes("rollback"))) {
      await withSession(spec, res.state, r.stateDir, o, async (ctx) => {
        const all = [...ctx.masters, ...ctx.workers];
        const hs = phaseHookSteps(
          spec,
          "rollback",
          all,
          (ip) => ctx.roles(ip),
          `rolled back to ${prev.reference}`,
          imagePlugins,
        ).map((s) => {
          // Cluster-wide phase: an empty scope runs once, on master0 (like the planner's upgrade hooks).
          const p = plugins.find((x) => x.name === s.plugin);
          return p && p.scope.length === 0 ? { ...s, hosts: [ctx.master0] } : s;
        });
        for (const s of hs) {
          await runStep(ctx, s);
          hooks.push({ kind: s.kind, hosts: s.hosts, reason: s.reason });
        }
      });
    }
  }
  return { ...res, hooks };
}
