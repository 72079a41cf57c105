/**
 * `sealer infra create|scale|delete|describe`: machines on Alibaba Cloud from a v1-style
 * Clusterfile (masters/nodes counts, provider ALI_CLOUD), without Pulumi. What was created is kept
 * in <data dir>/clusters/<name>/infra.json, written atomically after every step, so a re-run skips
 * what is done and `delete` removes exactly what we created.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { UserError } from "../../core/errors";
import { acquireLock, readJsonIfExists, writeJsonAtomic } from "../../core/fsutil";
import { MAX_CLUSTERFILE_BYTES, readUserFile } from "../../core/limits";
import { dataPaths } from "../../core/paths";
import {
  AlicloudApiError,
  applyInfra,
  destroyInfra,
  InfraApplyError,
  type AlicloudInfraSpec,
  type InfraState,
} from "../../core/infra/alicloud";
import { infraSpecFromClusterfile, type InfraOverrides } from "../../core/infra/alicloud/clusterfile";
import { printJson, printTable } from "../output";

/** What infra.json holds: the state plus what `delete --name` needs without the Clusterfile. */
export interface InfraFile {
  provider: "alicloud";
  cluster: string;
  region: string;
  endpoint?: { ecs?: string; vpc?: string };
  state: InfraState;
}

export function infraFilePath(cluster: string, home?: string): string {
  return path.join(dataPaths.clusters(home), cluster, "infra.json");
}

interface Opts {
  file?: string;
  name?: string;
  region?: string;
  endpoint?: string;
  imageId?: string;
  sshCidr?: string;
  masters?: string;
  nodes?: string;
  json?: boolean;
  waitSsh?: boolean;
  rollbackOnFailure?: boolean;
}

function loadSpec(o: Opts, extra: InfraOverrides = {}): AlicloudInfraSpec {
  if (!o.file) throw new UserError("give -f Clusterfile");
  const text = readUserFile(o.file, "Clusterfile", MAX_CLUSTERFILE_BYTES, "check the path given with -f");
  const over: InfraOverrides = { ...extra };
  if (o.region) over.region = o.region;
  if (o.endpoint) over.endpoint = o.endpoint;
  if (o.imageId) over.imageId = o.imageId;
  if (o.sshCidr) over.sshCidr = o.sshCidr;
  return infraSpecFromClusterfile(text, o.file, over);
}

/**
 * The cluster `delete` and `describe` act on: --name, or the Clusterfile's name (the image and
 * region a create would need are irrelevant there, so they need not be in the file).
 */
function clusterName(o: Opts): string {
  if (o.name) return o.name;
  if (!o.file) throw new UserError("give -f Clusterfile or --name CLUSTER");
  return loadSpec({ ...o, imageId: o.imageId ?? "unused", region: o.region ?? "unused" }).cluster;
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`${flag}: "${v}" is not a whole number ≥ 0`);
  return n;
}

/** Turns provisioner failures into a one-line CLI error; the partial state is already saved. */
function userFacing(err: unknown, file: string): never {
  if (err instanceof InfraApplyError) {
    const cause = err.cause;
    const kept = err.state.instances.length + (err.state.pending ?? []).length;
    const tail =
      kept > 0 || err.state.vpcId
        ? `\n(what exists is recorded in ${file}; run the same command again to continue, or \`sealer infra delete\` to remove it)`
        : "";
    if (cause instanceof UserError || cause instanceof AlicloudApiError)
      throw new UserError(err.message + tail, { exitCode: 1 });
  }
  throw err;
}

async function apply(spec: AlicloudInfraSpec, o: Opts): Promise<void> {
  const file = infraFilePath(spec.cluster);
  const release = await acquireLock(file + ".lock", `infra of ${spec.cluster}`);
  try {
    const prev = await readJsonIfExists<InfraFile>(file);
    const save = async (state: InfraState) => {
      const out: InfraFile = { provider: "alicloud", cluster: spec.cluster, region: spec.region, state };
      if (spec.endpoint) out.endpoint = spec.endpoint;
      await writeJsonAtomic(file, out, 0o600);
    };
    let state: InfraState;
    try {
      state = await applyInfra(spec, prev?.state, {
        onState: save,
        waitForSsh: o.waitSsh === true,
        rollbackOnFailure: o.rollbackOnFailure === true,
      });
    } catch (err) {
      userFacing(err, file);
    }
    await save(state);
    show(spec.cluster, state, o.json === true);
  } finally {
    await release();
  }
}

function show(cluster: string, state: InfraState, json: boolean): void {
  if (json) return printJson({ cluster, ...state });
  printTable(
    ["ROLE", "INSTANCE", "PRIVATE IP", "PUBLIC IP", "TYPE"],
    state.instances.map((i) => [i.role, i.id, i.privateIp, i.publicIp ?? "", i.instanceType ?? ""]),
  );
}

export function register(program: Command): void {
  const infra = program
    .command("infra")
    .description(
      "Create, scale and delete Alibaba Cloud machines for a cluster (v1 Clusterfile masters/nodes counts)",
    );
  const common = (c: Command) =>
    c
      .option(
        "-f, --file <Clusterfile>",
        "Clusterfile with spec.masters/spec.nodes counts (provider ALI_CLOUD)",
      )
      .option(
        "--region <id>",
        "region, e.g. cn-hangzhou (else spec.alicloud.region or ALIBABA_CLOUD_REGION_ID)",
      )
      .option(
        "--endpoint <url>",
        "API endpoint for ECS and VPC (tests: the local fake; plain http only on loopback)",
      )
      .option("--image-id <id>", "ECS image for the instances")
      .option("--ssh-cidr <cidr>", "who may reach 22 and 6443 on a security group we create")
      .option("--json", "print the result as JSON");

  common(
    infra
      .command("create")
      .description("Create the network and instances (or continue an interrupted create)"),
  )
    .option("--wait-ssh", "wait until port 22 answers on every instance")
    .option(
      "--rollback-on-failure",
      "if a first create fails, delete what it made instead of keeping it for a re-run",
    )
    .action(async (o: Opts) => apply(loadSpec(o), o));

  common(
    infra
      .command("scale")
      .description("Change the number of masters/nodes (removes the newest non-master0 first)"),
  )
    .option("--masters <n>", "number of masters")
    .option("--nodes <n>", "number of nodes")
    .option("--wait-ssh", "wait until port 22 answers on new instances")
    .action(async (o: Opts) => {
      const over: InfraOverrides = {};
      const m = count(o.masters, "--masters");
      const n = count(o.nodes, "--nodes");
      if (m !== undefined) over.masters = m;
      if (n !== undefined) over.nodes = n;
      const spec = loadSpec(o, over);
      if (!fs.existsSync(infraFilePath(spec.cluster)))
        throw new UserError(`no infra recorded for ${spec.cluster}: run sealer infra create first`);
      await apply(spec, o);
    });

  infra
    .command("delete")
    .description("Delete what sealer infra created for a cluster, in reverse order")
    .option("-f, --file <Clusterfile>", "Clusterfile (for the cluster name and region)")
    .option(
      "--name <cluster>",
      "cluster name (instead of -f; region and endpoint come from the recorded state)",
    )
    .option("--region <id>", "override the region")
    .option("--endpoint <url>", "override the API endpoint")
    .action(async (o: Opts) => {
      const name = clusterName(o);
      const file = infraFilePath(name);
      const release = await acquireLock(file + ".lock", `infra of ${name}`);
      try {
        const rec = await readJsonIfExists<InfraFile>(file);
        if (!rec) throw new UserError(`no infra recorded for ${name} (${file}): nothing to delete`);
        const spec: AlicloudInfraSpec = {
          cluster: name,
          region: o.region ?? rec.region,
          imageId: "",
          masters: { count: 0 },
          nodes: { count: 0 },
        };
        const endpoint = o.endpoint ? { ecs: o.endpoint, vpc: o.endpoint } : rec.endpoint;
        if (endpoint) spec.endpoint = endpoint;
        try {
          await destroyInfra(spec, rec.state, {
            onState: async (state) => writeJsonAtomic(file, { ...rec, state }, 0o600),
          });
        } catch (err) {
          userFacing(err, file);
        }
        await fs.promises.rm(file, { force: true });
        process.stderr.write(`deleted infra of ${name}\n`);
      } finally {
        await release();
      }
    });

  infra
    .command("describe")
    .description("Show the recorded machines of a cluster")
    .option("-f, --file <Clusterfile>", "Clusterfile (for the cluster name)")
    .option("--name <cluster>", "cluster name")
    .option("--json", "print as JSON")
    .action(async (o: Opts) => {
      const name = clusterName(o);
      const rec = await readJsonIfExists<InfraFile>(infraFilePath(name));
      if (!rec) throw new UserError(`no infra recorded for ${name}`);
      show(name, rec.state, o.json === true);
    });
}
