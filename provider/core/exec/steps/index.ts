/**
 * Every step kind's definition (steps/<kind>.ts), keyed by kind: the mapped type makes a kind the
 * plan can emit and nothing here defines a compile error.
 */
import type { Step, StepKind } from "../../plan/types";
import type { ExecContext } from "../context";
import { cleanHost } from "./clean-host";
import { containerRuntime } from "./container-runtime";
import { deleteNode } from "./delete-node";
import { distribute } from "./distribute";
import { hook } from "./hook";
import { hostAliases } from "./host-aliases";
import { initHost } from "./init-host";
import { initMaster } from "./init-master";
import { joinMaster } from "./join-master";
import { joinWorker } from "./join-worker";
import type { Observed, StepKindDef } from "./kind";
import { kubeadmConfig } from "./kubeadm-config";
import { launchApp } from "./launch-app";
import { launchCmds } from "./launch-cmds";
import { nodeLabels } from "./node-labels";
import { registry } from "./registry";
import { registryClient } from "./registry-client";
import { saveClusterfile } from "./save-clusterfile";
import { upgradeMaster } from "./upgrade-master";
import { upgradeWorker } from "./upgrade-worker";
import { workerVip } from "./worker-vip";

/** In the order a full install runs them (the drift check asks them in this order too). */
export const STEP_KINDS: { readonly [K in StepKind]: StepKindDef<K> } = {
  distribute,
  hook,
  "init-host": initHost,
  "container-runtime": containerRuntime,
  "host-aliases": hostAliases,
  registry,
  "registry-client": registryClient,
  "kubeadm-config": kubeadmConfig,
  "init-master": initMaster,
  "join-master": joinMaster,
  "join-worker": joinWorker,
  "worker-vip": workerVip,
  "node-labels": nodeLabels,
  "launch-app": launchApp,
  "launch-cmds": launchCmds,
  "upgrade-master": upgradeMaster,
  "upgrade-worker": upgradeWorker,
  "clean-host": cleanHost,
  "delete-node": deleteNode,
  "save-clusterfile": saveClusterfile,
};

/** Runs a step; resolves to what its handler observed (recorded by recordStep). */
export function runStep(ctx: ExecContext, step: Step): Promise<Observed> {
  return (STEP_KINDS[step.kind] as StepKindDef<StepKind>).run(ctx, step as never);
}

/**
 * Kinds that may start while an earlier, unfinished step of the plan touches the same host, when
 * the plan says they do not depend on it (declared `after` is the only order they need).
 * Everything else also waits for earlier steps on its hosts.
 */
export const PARALLEL_KINDS: ReadonlySet<Step["kind"]> = new Set([]);

/** Kinds that run strictly one at a time, in plan order (etcd membership changes must not overlap). */
export const SERIAL_KINDS: ReadonlySet<Step["kind"]> = new Set([
  "init-master",
  "join-master",
  "upgrade-master",
]);
