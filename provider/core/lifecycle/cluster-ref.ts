/**
 * Finding the cluster a lifecycle command acts on: `--cluster-name NAME` (the Clusterfile and
 * state recorded on this machine by run/apply/join...) or `-f Clusterfile` (its name picks the
 * state). After every change the merged Clusterfile is recorded again (secrets included, 0600),
 * so `sealer join --cluster-name x` knows the ssh settings the cluster was created with.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadClusterfile, type ClusterSpec } from "../clusterfile";
import { UserError } from "../errors";
import { log } from "../log";
import { dataPaths } from "../paths";
import { MAX_CLUSTERFILE_BYTES, readUserFile } from "../limits";
import { emptyApplied, type AppliedState } from "../plan/types";
import { clusterDir, listClusters, loadSavedClusterfile, loadState, saveClusterfile } from "../state";

export interface ClusterRef {
  clusterName?: string;
  clusterfile?: string;
  /** Data directory (default $SEALER_HOME). */
  home?: string;
}

export interface ResolvedCluster {
  spec: ClusterSpec;
  stateDir: string;
  /** The recorded state; emptyApplied when the cluster was never applied from this machine. */
  applied: AppliedState;
  /** Whether any state was recorded. */
  recorded: boolean;
}

/** Reads and validates a Clusterfile from disk; its warnings go to the log. */
export function readClusterfile(file: string): ClusterSpec {
  const text = readUserFile(file, "Clusterfile", MAX_CLUSTERFILE_BYTES, "check the path given with -f");
  const { spec, warnings } = loadClusterfile(text, { file });
  for (const w of warnings) log.warn(w);
  return spec;
}

/** The Clusterfile recorded for `name`: ours (secrets kept) else the one save-clusterfile wrote (no secrets). */
export async function recordedSpec(name: string, home?: string): Promise<ClusterSpec | undefined> {
  const ours = await loadSavedClusterfile(name, home);
  if (ours) return ours;
  const saved = path.join(clusterDir(name, home), "Clusterfile");
  if (fs.existsSync(saved)) return readClusterfile(saved);
  return undefined;
}

export async function resolveCluster(ref: ClusterRef): Promise<ResolvedCluster> {
  if (ref.clusterName && ref.clusterfile) {
    const spec = readClusterfile(ref.clusterfile);
    if (spec.name !== ref.clusterName)
      throw new UserError(
        `--cluster-name ${ref.clusterName} and -f ${ref.clusterfile} (metadata.name ${spec.name}) name different clusters: give one of them`,
      );
  }
  let spec: ClusterSpec | undefined;
  if (ref.clusterfile) spec = readClusterfile(ref.clusterfile);
  else if (ref.clusterName) {
    spec = await recordedSpec(ref.clusterName, ref.home);
    if (!spec) {
      const known = await listClusters(ref.home);
      // Its directory is there but not the Clusterfile it was applied with (removed by hand, or
      // an apply that stopped before its first step): say so, not "no such cluster".
      if (known.includes(ref.clusterName))
        throw new UserError(
          `cluster ${ref.clusterName} is recorded in ${clusterDir(ref.clusterName, ref.home)} without the Clusterfile it was applied with: give -f Clusterfile`,
        );
      throw new UserError(
        `no cluster named ${ref.clusterName} is recorded on this machine (${dataPaths.clusters(ref.home)}${known.length ? `; recorded: ${known.join(", ")}` : "; none recorded"}): give the name used with sealer run/apply, or -f Clusterfile`,
      );
    }
  } else {
    const known = await listClusters(ref.home);
    if (known.length === 1) spec = await recordedSpec(known[0]!, ref.home);
    if (!spec)
      throw new UserError(
        known.length > 1
          ? `several clusters are recorded (${known.join(", ")}): pick one with --cluster-name NAME or -f Clusterfile`
          : "no cluster is recorded on this machine: give --cluster-name NAME or -f Clusterfile",
      );
  }
  const applied = await loadState(spec.name, ref.home);
  return {
    spec,
    stateDir: clusterDir(spec.name, ref.home),
    applied: applied ?? emptyApplied(spec.name),
    recorded: applied !== undefined,
  };
}

/** Records the Clusterfile a lifecycle change applied (secrets included, 0600). */
export async function recordSpec(spec: ClusterSpec, home?: string): Promise<void> {
  await saveClusterfile(spec, home);
}
