/** One handler per step kind; the switch is exhaustive, so a new kind fails to compile until handled. */
import type { Step } from "../../plan/types";
import type { ExecContext } from "../context";
import type { Footprint } from "../footprint";
import { runLaunchApp, runLaunchCmds, runSaveClusterfile } from "./apps";
import { runDistribute } from "./distribute";
import { runContainerRuntime, runHook, runHostAliases, runInitHost } from "./host";
import {
  runInitMaster,
  runJoinMaster,
  runJoinWorker,
  runKubeadmConfig,
  runNodeLabels,
  runWorkerVip,
} from "./kube";
import { runCleanHost, runDeleteNode, runUpgradeMaster, runUpgradeWorker } from "./lifecycle";
import { runRegistry, runRegistryClient } from "./registry";

/** Runs a step; resolves to what it left on the hosts (recorded for drift checks), if anything. */
export async function runStep(ctx: ExecContext, step: Step): Promise<Footprint | void> {
  switch (step.kind) {
    case "distribute":
      return runDistribute(ctx, step);
    case "hook":
      return runHook(ctx, step);
    case "init-host":
      return runInitHost(ctx, step);
    case "container-runtime":
      return runContainerRuntime(ctx, step);
    case "host-aliases":
      return runHostAliases(ctx, step);
    case "registry":
      return runRegistry(ctx, step);
    case "registry-client":
      return runRegistryClient(ctx, step);
    case "kubeadm-config":
      return runKubeadmConfig(ctx, step);
    case "init-master":
      return runInitMaster(ctx, step);
    case "join-master":
      return runJoinMaster(ctx, step);
    case "join-worker":
      return runJoinWorker(ctx, step);
    case "worker-vip":
      return runWorkerVip(ctx, step);
    case "node-labels":
      return runNodeLabels(ctx, step);
    case "launch-app":
      return runLaunchApp(ctx, step);
    case "launch-cmds":
      return runLaunchCmds(ctx, step);
    case "upgrade-master":
      return runUpgradeMaster(ctx, step);
    case "upgrade-worker":
      return runUpgradeWorker(ctx, step);
    case "clean-host":
      return runCleanHost(ctx, step);
    case "delete-node":
      return runDeleteNode(ctx, step);
    case "save-clusterfile":
      return runSaveClusterfile(ctx, step);
    default: {
      const never: never = step;
      throw new Error(`unknown step kind ${(never as Step).kind}`);
    }
  }
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
