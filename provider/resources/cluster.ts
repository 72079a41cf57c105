/**
 * Dynamic provider of Cluster: a cluster image run onto hosts over SSH. Thin over the core:
 * Clusterfile loading (core/clusterfile), the session (core/session: image facts, the planner's
 * input and its plan, as the CLI gets them) and the executor (core/apply).
 *
 * - check normalises the inputs into a ClusterSpec (so an equivalent program has equal inputs)
 *   and, in a preview, computes `plan`: the steps the update would run, shown by
 *   `pulumi preview --diff` (a real update stores no `plan` input, so none goes stale).
 * - diff is the planner over the applied state kept in the outputs: changes exactly when the
 *   plan is non-empty (or a previous run left steps pending); replaces only on a new cluster
 *   name or data root.
 * - create/update run the plan; when a step fails, the state after the last finished step goes
 *   back as partial state (PartialStateError), so the next `pulumi up` resumes there and
 *   `pulumi destroy` knows every host that was touched.
 */
import type { ClusterSpec, Env } from "../core/clusterfile/types";
import type { AppliedState, ImageFacts, Plan, Step } from "../core/plan/types";
import type { Desired } from "../core/session";
import type { OciLayout as OciLayoutT } from "../core/image/layout";
import {
  type CheckFailure,
  PartialStateError,
  compact,
  containsUnknown,
  errorMessage,
  redacted,
  isUnknown,
  reveal,
  sameValue,
  secret,
  UNKNOWN,
} from "./common";
import { given, inputTypeFailures, isPlainObject, SSH_INPUT_TYPES, type InputTypes } from "./input-types";

export interface ClusterInputs {
  name?: string;
  /** Set by the SDK: the resource name, the cluster name when neither `name` nor the Clusterfile gives one. */
  defaultName?: string;
  image: string;
  imageDigest?: string;
  masters?: string[];
  workers?: string[];
  /** Host IP -> identity (from the Infra): a changed one means the host was made anew. */
  hostIds?: Record<string, string>;
  ssh?: { user?: string; password?: string; privateKey?: string; passphrase?: string; port?: number };
  clusterfile?: string | Record<string, unknown>;
  env?: Record<string, string>;
  dataRoot?: string;
  plan?: string[];
  providerVersion?: string;
}

export interface StepOut {
  id: string;
  kind: string;
  hosts: string[];
  reason: string;
}

export interface ClusterOutputs extends ClusterInputs {
  clusterName: string;
  applied: AppliedState;
  steps: StepOut[];
  pending: StepOut[];
  kubeconfig?: string;
  joinSecrets?: Record<string, string>;
}

// ---- core modules, loaded on use ----

type ClusterfileLoad = typeof import("../core/clusterfile/load");
type ClusterfileNormalize = typeof import("../core/clusterfile/normalize");
type SecretModule = typeof import("../core/clusterfile/secret");

type SessionModule = typeof import("../core/session");
type RecordModule = typeof import("../core/exec/record");

type ApplyModule = typeof import("../core/apply");
type DeleteAllModule = typeof import("../core/lifecycle/delete-all");

function store(): OciLayoutT {
  const { OciLayout } = require("../core/image/layout") as typeof import("../core/image/layout");
  const { dataPaths } = require("../core/paths") as typeof import("../core/paths");
  return new OciLayout(dataPaths.store());
}

// ---- inputs -> ClusterSpec (pure apart from the Clusterfile parser) ----

/**
 * Clusterfile text from the inputs: the YAML as given (line numbers in errors stay right), or
 * the documents of an object input, or a minimal Cluster document. When the typed inputs list
 * hosts (masters/workers), the Cluster document's hosts are replaced by them, keeping per-host
 * settings (labels, taints, ssh, env) of IPs the Clusterfile already lists.
 */
export function clusterfileText(
  i: Pick<ClusterInputs, "clusterfile" | "name" | "defaultName" | "image" | "masters" | "workers">,
): string {
  const yaml = require("js-yaml") as typeof import("js-yaml");
  const cf = i.clusterfile;
  const overrideHosts = Boolean(i.masters || i.workers);
  const name = i.name ?? i.defaultName ?? "default";
  let docs: Array<Record<string, unknown>>;
  if (typeof cf === "string") {
    try {
      docs = (yaml.loadAll(cf) as unknown[]).filter(
        (d): d is Record<string, unknown> => d !== null && typeof d === "object",
      );
    } catch {
      return cf; // the Clusterfile loader reports the syntax error with its line
    }
    const c = docs.find((d) => d.kind === "Cluster");
    const hasImage = Boolean((c?.spec as { image?: unknown } | undefined)?.image);
    // Unchanged text keeps the line numbers of errors right.
    if (!overrideHosts && (hasImage || !i.image || !c)) return cf;
  } else if (cf && Array.isArray((cf as { documents?: unknown }).documents))
    docs = structuredClone((cf as { documents: Array<Record<string, unknown>> }).documents);
  else if (cf && typeof cf === "object" && "kind" in cf) docs = [structuredClone(cf)];
  else
    docs = [
      {
        apiVersion: "sealer.io/v2",
        kind: "Cluster",
        metadata: { name },
        spec: { image: i.image, ...(cf ?? {}) },
      },
    ];
  let cluster = docs.find((d) => d.kind === "Cluster");
  if (!cluster) {
    cluster = {
      apiVersion: "sealer.io/v2",
      kind: "Cluster",
      metadata: { name },
      spec: { image: i.image },
    };
    docs.unshift(cluster);
  }
  if (
    cluster.spec !== undefined &&
    (cluster.spec === null || typeof cluster.spec !== "object" || Array.isArray(cluster.spec))
  ) {
    const { UserError } = require("../core/errors") as typeof import("../core/errors");
    throw new UserError(
      `clusterfile: the Cluster document's spec must be a mapping (image, hosts, ssh, ...), not ${given(cluster.spec, false)}`,
    );
  }
  const cspec = (cluster.spec ??= {}) as Record<string, unknown>;
  // The image input stands in for a Clusterfile without one (the typed input wins anyway).
  if (!cspec.image && i.image) cspec.image = i.image;
  if (overrideHosts) {
    const spec = cspec;
    type RawHost = { ips?: string[]; roles?: string[] } & Record<string, unknown>;
    const known = (spec.hosts ?? []) as RawHost[];
    const entryFor = (ip: string, role: string): RawHost => {
      const k = known.find((h) => h.ips?.includes(ip));
      const roles = [...new Set([...(k?.roles ?? []).filter((r) => r !== "master" && r !== "node"), role])];
      return { ...(k ?? {}), ips: [ip], roles };
    };
    const masters = i.masters ?? known.filter((h) => h.roles?.includes("master")).flatMap((h) => h.ips ?? []);
    const workers =
      i.workers ?? known.filter((h) => !h.roles?.includes("master")).flatMap((h) => h.ips ?? []);
    spec.hosts = [
      ...masters.map((ip) => entryFor(ip, "master")),
      ...workers.map((ip) => entryFor(ip, "node")),
    ];
  }
  return docs.map((d) => yaml.dump(d, { noRefs: true, sortKeys: true })).join("---\n");
}

/**
 * The normalised spec the inputs mean: the Clusterfile (hosts from masters/workers when given),
 * then the typed inputs on top (name, image, ssh, env, dataRoot). Throws UserError listing every
 * problem.
 */
export function specOf(i: ClusterInputs): { spec: ClusterSpec; warnings: string[] } {
  const { loadClusterfile } = require("../core/clusterfile/load") as ClusterfileLoad;
  const { normalizeCluster } = require("../core/clusterfile/normalize") as ClusterfileNormalize;
  const { Secret } = require("../core/clusterfile/secret") as SecretModule;
  const { spec, warnings } = loadClusterfile(clusterfileText(i), { file: "clusterfile" });
  const ssh = { ...spec.ssh };
  if (i.ssh?.user) ssh.user = i.ssh.user;
  if (i.ssh?.port) ssh.port = i.ssh.port;
  if (i.ssh?.password) ssh.passwd = new Secret(i.ssh.password);
  if (i.ssh?.privateKey) {
    ssh.pkData = new Secret(i.ssh.privateKey);
    delete ssh.pk;
  }
  if (i.ssh?.passphrase) ssh.pkPasswd = new Secret(i.ssh.passphrase);
  const env: Env = { ...spec.env };
  for (const [k, v] of Object.entries(i.env ?? {})) env[k] = [v];
  const out = normalizeCluster({
    ...spec,
    name: i.name ?? spec.name,
    image: i.image ?? spec.image,
    ssh,
    env,
    dataRoot: i.dataRoot ?? spec.dataRoot,
  });
  return { spec: out, warnings };
}

export function masterIps(spec: ClusterSpec): string[] {
  return spec.hosts.filter((h) => h.roles.includes("master")).map((h) => h.ips[0]!);
}

function stepOut(s: Step): StepOut {
  return { id: s.id, kind: s.kind, hosts: s.hosts, reason: s.reason };
}

/**
 * One line per step, as the preview shows it, then the plan digest (the one `sealer plan` prints
 * for the same cluster and state, which `sealer apply --plan-digest` checks). No steps, no lines.
 */
export function planLines(p: Plan, prefix = ""): string[] {
  const lines = p.steps.map((s) => `${prefix}${s.id} [${s.hosts.join(",")}]: ${s.reason}`);
  if (p.replace) lines.unshift(`replace: ${p.replace}`);
  if (lines.length > 0 && !prefix) {
    const { planDigest } = require("../core/plan/digest") as typeof import("../core/plan/digest");
    lines.push(`${PLAN_DIGEST_PREFIX}${planDigest(p)}`);
  }
  return lines;
}

/** The last line of a non-empty `plan`. */
export const PLAN_DIGEST_PREFIX = "plan digest: ";

function withoutSecrets(a: AppliedState): AppliedState {
  const { secrets: _s, ...rest } = a;
  return rest;
}

function specHasSecrets(spec: ClusterSpec): boolean {
  const r = spec.registry.localRegistry?.password ?? spec.registry.externalRegistry?.password;
  return Boolean(
    spec.ssh.passwd ||
    spec.ssh.pkData ||
    spec.ssh.pkPasswd ||
    r ||
    spec.hosts.some((h) => h.ssh.passwd || h.ssh.pkData),
  );
}

function outputsOf(
  i: ClusterInputs,
  spec: ClusterSpec,
  applied: AppliedState,
  ran: Step[],
  pending: Step[],
): Record<string, unknown> {
  const sec = applied.secrets ?? {};
  return compact({
    ...i,
    ssh: secret(i.ssh),
    // A Clusterfile may carry passwords: then the whole text is secret in the outputs.
    clusterfile: specHasSecrets(spec) ? secret(i.clusterfile) : i.clusterfile,
    plan: planLines({ cluster: spec.name, steps: pending, warnings: [] }),
    clusterName: spec.name,
    applied: withoutSecrets(applied),
    steps: ran.map(stepOut),
    pending: pending.map(stepOut),
    kubeconfig: secret(sec.kubeconfig),
    joinSecrets: secret(
      sec.token || sec.certificateKey || sec.caCertHash
        ? (compact({
            token: sec.token,
            certificateKey: sec.certificateKey,
            caCertHash: sec.caCertHash,
          }) as Record<string, string>)
        : undefined,
    ),
  });
}

// ---- planning ----

/** The image facts exactly as applyCluster computes them (the core session reads them), so preview = apply. */
function factsOf(
  spec: ClusterSpec,
  expectDigest: string | undefined,
  opts: { previewById?: boolean } = {},
): Promise<ImageFacts> {
  return session().planningImage(store(), spec.image, spec, {
    ...(expectDigest ? { expectDigest } : {}),
    ...(opts.previewById ? { previewById: true } : {}),
  });
}

/** The planner's input assembled by the core session: recorded platforms, no host contacted. */
function desiredOf(spec: ClusterSpec, image: ImageFacts, applied: AppliedState): Promise<Desired> {
  return session().assembleDesired({ spec, image, applied });
}

/** The install/update plan of `spec` against `applied`, as the core session plans it. */
async function planOf(spec: ClusterSpec, image: ImageFacts, applied: AppliedState): Promise<Plan> {
  return session().planInstall(await desiredOf(spec, image, applied), applied);
}

function session(): SessionModule {
  return require("../core/session") as SessionModule;
}

function recorder(): RecordModule {
  return require("../core/exec/record") as RecordModule;
}

export function emptyApplied(cluster: string): AppliedState {
  return { version: 1, cluster, hosts: {}, steps: {} };
}

/** The applied state the CLI and earlier runs on this machine recorded for the cluster, if any. */
async function localApplied(name: string): Promise<AppliedState | undefined> {
  const path = require("node:path") as typeof import("node:path");
  const { dataPaths } = require("../core/paths") as typeof import("../core/paths");
  const { readJsonIfExists } = require("../core/fsutil") as typeof import("../core/fsutil");
  const s = await readJsonIfExists<AppliedState>(path.join(dataPaths.clusters(), name, "state.json")).catch(
    () => undefined,
  );
  return s && s.version === 1 && s.cluster === name ? s : undefined;
}

/**
 * SSH dial tuning for the provider host process: SEALER_SSH_DIAL_ATTEMPTS and
 * SEALER_SSH_DIAL_TIMEOUT_MS (tests shorten them so a dead host fails fast).
 */
function sshTuning(): { ssh?: { dialAttempts?: number; dialTimeoutMs?: number } } {
  const attempts = Number(process.env.SEALER_SSH_DIAL_ATTEMPTS);
  const timeout = Number(process.env.SEALER_SSH_DIAL_TIMEOUT_MS);
  const ssh = compact({
    dialAttempts: attempts > 0 ? attempts : undefined,
    dialTimeoutMs: timeout > 0 ? timeout : undefined,
  });
  return Object.keys(ssh).length > 0 ? { ssh } : {};
}

// ---- the provider ----

function toFailures(err: unknown): CheckFailure[] {
  const problems = (err as { problems?: string[] }).problems ?? [errorMessage(err)];
  return problems.map((reason) => ({ property: "clusterfile", reason: redacted(reason) }));
}

/** Inputs whose values a failure never repeats. */
const SECRETS = new Set(["ssh", "env"]);

const INPUT_TYPES: InputTypes = {
  name: ["string", "the cluster name"],
  defaultName: ["string", "set by the SDK"],
  imageDigest: ["string", "sha256:<64 hex>"],
  masters: ["stringList", '["10.0.0.2"]'],
  workers: ["stringList", '["10.0.0.3"]'],
  hostIds: ["stringMap", '{ "10.0.0.2": "i-abc" }'],
  ...SSH_INPUT_TYPES,
  env: ["stringMap", '{ PodCIDR: "10.244.0.0/16" }'],
  dataRoot: ["string", "an absolute path on the nodes"],
};

function validate(i: ClusterInputs): CheckFailure[] {
  const f = inputTypeFailures(i as unknown as Record<string, unknown>, INPUT_TYPES, SECRETS);
  const cf = i.clusterfile;
  if (
    cf !== undefined &&
    !isUnknown(cf) &&
    typeof cf !== "string" &&
    (cf === null || typeof cf !== "object" || Array.isArray(cf))
  )
    f.push({
      property: "clusterfile",
      reason: `clusterfile must be YAML text or an object, not ${given(cf, false)}`,
    });
  if (f.length > 0) return f;
  if (!isUnknown(i.image) && (typeof i.image !== "string" || i.image === ""))
    f.push({ property: "image", reason: "image is required: a reference or a ClusterImage" });
  for (const k of ["masters", "workers"] as const) {
    const v = i[k];
    if (v !== undefined && !isUnknown(v) && (!Array.isArray(v) || v.some((x) => typeof x !== "string")))
      f.push({ property: k, reason: `${k} must be a list of IP addresses` });
  }
  if (i.masters && Array.isArray(i.masters) && i.masters.length === 0)
    f.push({ property: "masters", reason: "masters must list at least one IP (master0 first)" });
  return f;
}

export const provider = {
  /**
   * `mode.preview` is the program's dry-run flag (the SDK's provider shim passes it). Only a
   * preview gets `plan`: the inputs a real update checks are the ones the engine stores, and
   * the next preview displays its `plan` against them. At a resource's pre-step event, before
   * Update has run, the engine's new state has no outputs yet, so the diff display
   * (getResourcePropertiesDetails in pkg/backend/display) prints the old stored inputs against
   * the new checked inputs; with no detailed diff from this host, that is every changed input.
   * A `plan` stored by an update would therefore come back as removed lines: steps that ran.
   * Left out of stored inputs, the next preview shows its `plan` as added lines only. Without a
   * mode (older serialized providers, direct calls) check keeps computing it.
   */
  async check(
    oldsRaw: Record<string, unknown>,
    newsRaw: Record<string, unknown>,
    mode: { preview?: boolean } = {},
  ) {
    const news = reveal(newsRaw) as unknown as ClusterInputs;
    const olds = reveal(oldsRaw) as unknown as ClusterInputs;
    const inputs: Record<string, unknown> = compact({ ...newsRaw, plan: undefined });
    const failures = validate(news);
    if (failures.length > 0) return { inputs, failures };
    const withPlan = mode.preview !== false;
    // During preview, hosts or the image may come from resources not created yet.
    if (containsUnknown({ ...news, plan: undefined, providerVersion: undefined })) {
      if (withPlan) inputs.plan = UNKNOWN;
      return { inputs };
    }
    // A cluster keeps the name it was created with when neither the program nor the Clusterfile
    // names it: the resource name, or "default" for a resource created before the SDK sent it.
    const stuck = olds && typeof olds.name === "string" && olds.name !== "" ? olds.name : undefined;
    const named = { ...news, defaultName: stuck ?? news.defaultName };
    let spec: ClusterSpec;
    try {
      spec = specOf(named).spec;
    } catch (err) {
      return { inputs, failures: toFailures(err) };
    }
    // Normal form: the name in use, env sorted, empty lists dropped.
    inputs.name = spec.name;
    if (news.env)
      inputs.env = Object.fromEntries(Object.entries(news.env).sort(([a], [b]) => a.localeCompare(b)));
    if (withPlan) inputs.plan = await previewPlan(spec, news, olds).catch(() => UNKNOWN);
    return { inputs };
  },

  async diff(_id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const olds = reveal(oldsRaw) as unknown as ClusterOutputs;
    const news = reveal(newsRaw) as unknown as ClusterInputs;
    if (containsUnknown({ ...news, plan: undefined })) {
      // Unknown name/dataRoot could mean a replacement; everything else at most an update.
      const replaces = ["name", "dataRoot"].filter((k) =>
        isUnknown((news as unknown as Record<string, unknown>)[k]),
      );
      return { changes: true, replaces, deleteBeforeReplace: replaces.length > 0 };
    }
    const { spec } = specOf(news);
    const replaces: string[] = [];
    if (olds.clusterName && spec.name !== olds.clusterName) replaces.push("name");
    if ((olds.applied?.dataRoot ?? specDataRootOf(olds)) !== spec.dataRoot) replaces.push("dataRoot");
    if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };
    const p = await planOf(
      spec,
      await factsOf(spec, news.imageDigest, { previewById: true }),
      forgetRecreated(
        olds.applied ? appliedIn(olds) : emptyApplied(spec.name),
        olds.hostIds,
        news.hostIds,
        masterIps(spec)[0],
      ),
    );
    // The planner knows more identity fields than name and data root (kubeadm networking...).
    if (p.replace) return { changes: true, replaces: ["clusterfile"], deleteBeforeReplace: true };
    const codeChanged = !sameValue(olds.providerVersion, news.providerVersion);
    return {
      changes: p.steps.length > 0 || (olds.pending?.length ?? 0) > 0 || codeChanged,
      replaces: [],
      deleteBeforeReplace: false,
    };
  },

  async create(inputsRaw: Record<string, unknown>) {
    const i = reveal(inputsRaw) as unknown as ClusterInputs;
    const { spec } = specOf(i);
    const id = spec.name;
    // A cluster this machine already applied (sealer CLI, an earlier stack) is adopted from its
    // recorded state, as the preview assumed: an app image onto it runs only the app's steps.
    return { id, outs: await run(id, i, spec, (await localApplied(spec.name)) ?? emptyApplied(spec.name)) };
  },

  /**
   * refresh: probe the hosts (core/drift) and return outputs whose applied state no longer
   * records the steps whose effect is gone, so the next `up` re-runs exactly those (its `plan`
   * shows them, reason "drift: …"). The state recorded on this machine is updated the same way
   * (previews plan against it). Unreachable hosts are not drift: nothing is forgotten for them.
   */
  async read(id: string, props: Record<string, unknown>) {
    const p = reveal(props) as unknown as ClusterOutputs;
    if (!p.applied || !p.clusterName || Object.keys(appliedIn(p).steps).length === 0) return { id, props };
    const { spec } = specOf(p);
    const drift = require("../core/drift") as typeof import("../core/drift");
    const report = await drift.checkDrift({ spec, applied: withOldSecrets(p), ...sshTuning() });
    if (report.steps.length === 0) return { id, props };
    const notes = drift.driftNotes(report);
    const applied = drift.forgetSteps(withoutSecrets(appliedIn(p)), report.steps, notes);
    const local = await localApplied(spec.name);
    if (local) {
      const { saveState } = require("../core/state") as typeof import("../core/state");
      await saveState(drift.forgetSteps(local, report.steps, notes));
    }
    let plan = p.plan;
    try {
      const image = await factsOf(spec, p.imageDigest);
      plan = planLines(await planOf(spec, image, applied));
    } catch {
      // Without the image in the store the next preview computes the plan.
    }
    return { id, props: { ...props, applied, ...(plan ? { plan } : {}) } };
  },

  async update(id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const olds = reveal(oldsRaw) as unknown as ClusterOutputs;
    const i = reveal(newsRaw) as unknown as ClusterInputs;
    const { spec } = specOf(i);
    const applied = forgetRecreated(withOldSecrets(olds), olds.hostIds, i.hostIds, masterIps(spec)[0]);
    return { outs: await run(id, i, spec, applied) };
  },

  async delete(_id: string, propsRaw: Record<string, unknown>) {
    const p = reveal(propsRaw) as unknown as ClusterOutputs;
    const { spec } = specOf(p);
    // The same destroy as `sealer delete -a`: hooks, clean-host, blob GC, data root.
    const { destroyCluster } = require("../core/lifecycle/delete-all") as DeleteAllModule;
    const { clusterDir } = require("../core/state") as typeof import("../core/state");
    const res = await destroyCluster({
      spec,
      applied: withOldSecrets(p),
      stateDir: clusterDir(spec.name),
      ...sshTuning(),
    });
    // Never forget a host that still has our files: the resource stays until every host is clean.
    // A host no step ever finished on (a create that failed before reaching it) holds nothing
    // recorded: that it cannot be reached does not keep the resource.
    const recorded = appliedIn(p).hosts;
    const stuck = res.skipped.filter((s) => recorded[s.host] !== undefined);
    const { log } = require("../core/log") as typeof import("../core/log");
    for (const s of res.skipped.filter((x) => recorded[x.host] === undefined))
      log
        .forHost(s.host)
        .warn(
          `not reachable (${s.error}); no step was recorded on it, so the destroy goes on without it (if a run ever reached it, remove ${spec.dataRoot} there by hand)`,
        );
    if (stuck.length > 0) {
      throw new Error(
        `cluster ${spec.name}: could not clean ${stuck.map((s) => `${s.host} (${s.error})`).join("; ")}; make the hosts reachable and run the destroy again, or remove them from the state with \`pulumi state delete\` if they are gone for good`,
      );
    }
  },
};

function specDataRootOf(olds: ClusterOutputs): string | undefined {
  if (!olds.clusterName) return undefined;
  try {
    return specOf(olds).spec.dataRoot;
  } catch {
    return undefined;
  }
}

/**
 * The applied state kept in the outputs. A state edited by hand (`pulumi stack export`/`import`)
 * may lack its maps: missing ones are empty, a value of another type is refused by name.
 */
function appliedIn(o: ClusterOutputs): AppliedState {
  const name = o.clusterName ?? o.name ?? "default";
  const a = o.applied as unknown;
  if (a === undefined || a === null) return emptyApplied(name);
  const bad = !isPlainObject(a)
    ? "applied"
    : ["hosts", "steps"].find((k) => a[k] !== undefined && !isPlainObject(a[k]));
  if (bad) {
    const { UserError } = require("../core/errors") as typeof import("../core/errors");
    throw new UserError(
      `cluster ${name}: the stored state's ${bad === "applied" ? bad : `applied.${bad}`} is not a mapping (was the stack state edited?); restore it with \`pulumi stack import\` from a good export, or drop the resource with \`pulumi state delete\``,
    );
  }
  const st = a as AppliedState;
  return { ...emptyApplied(name), ...st, hosts: st.hosts ?? {}, steps: st.steps ?? {} };
}

/**
 * `applied` without what it records on hosts made anew since (their identity in `hostIds` changed,
 * e.g. a replaced Infra gave the same addresses to new machines): nothing recorded there holds.
 * Those hosts' steps are forgotten, so the plan installs them as new hosts, each step's reason
 * saying why; a new master0 is a new cluster (nothing recorded holds).
 */
export function forgetRecreated(
  applied: AppliedState,
  oldIds: Record<string, string> | undefined,
  newIds: Record<string, string> | undefined,
  master0: string | undefined,
): AppliedState {
  const made = Object.keys(newIds ?? {}).filter(
    (ip) => oldIds?.[ip] !== undefined && oldIds[ip] !== newIds![ip] && applied.hosts[ip] !== undefined,
  );
  if (made.length === 0) return applied;
  const why = (ip: string) => `host ${ip} was made anew (identity ${oldIds![ip]} -> ${newIds![ip]})`;
  if (master0 && made.includes(master0)) {
    // A new master0 is a new cluster: every host is installed from the start.
    const fresh = emptyApplied(applied.cluster);
    return applied.dataRoot ? { ...fresh, dataRoot: applied.dataRoot } : fresh;
  }
  const { forgetSteps } = require("../core/drift/compare") as typeof import("../core/drift/compare");
  const ids = Object.entries(applied.steps)
    .filter(([, r]) => r.hosts.some((h) => made.includes(h)))
    .map(([id]) => id);
  const notes = Object.fromEntries(
    ids.map((id) => [id, why(applied.steps[id]!.hosts.find((h) => made.includes(h))!)]),
  );
  const next = forgetSteps(applied, ids, notes);
  for (const ip of made) delete next.hosts[ip];
  return next;
}

/** The applied state of the outputs, with the join material put back (kept secret in outputs). */
function withOldSecrets(o: ClusterOutputs): AppliedState {
  const base = appliedIn(o);
  const js = o.joinSecrets ?? {};
  const secrets = compact({
    token: js.token,
    certificateKey: js.certificateKey,
    caCertHash: js.caCertHash,
    kubeconfig: o.kubeconfig,
  });
  return Object.keys(secrets).length > 0 ? { ...base, secrets } : base;
}

/** The old inputs fully applied: what the state is when nothing is recorded on this machine. */
async function appliedFromInputs(olds: ClusterInputs): Promise<{ spec: ClusterSpec; applied: AppliedState }> {
  const { spec: oldSpec } = specOf(olds);
  const none = emptyApplied(oldSpec.name);
  const oldDesired = await desiredOf(oldSpec, await factsOf(oldSpec, olds.imageDigest), none);
  const applied = recorder().recordAll(none, session().planInstall(oldDesired, none), oldDesired);
  return { spec: oldSpec, applied };
}

/**
 * The plan for the preview. Applied state, best first: recorded on this machine (CLI state /
 * earlier runs), else the old inputs fully applied, else nothing applied yet (create).
 *
 * A change the cluster cannot take in place (a new name or data root, or an identity field the
 * planner refuses) is a replacement: the old cluster is destroyed first (deleteBeforeReplace),
 * then the new one installed from nothing. The preview shows both, step by step: the destroy
 * plan of the old cluster (what the delete will run) and the full install plan of the new.
 */
async function previewPlan(spec: ClusterSpec, news: ClusterInputs, olds: ClusterInputs): Promise<string[]> {
  const image = await factsOf(spec, news.imageDigest, { previewById: true });
  const hasOlds = Boolean(olds && olds.image && !containsUnknown(olds));
  const old = hasOlds ? specOf(olds).spec : undefined;
  // The old inputs replayed (store reads, a full plan) at most once, and only when needed.
  let replayed: Promise<AppliedState> | undefined;
  const fromOlds = () => (replayed ??= appliedFromInputs(olds).then((r) => r.applied));
  const recorded = (await localApplied(spec.name)) ?? (hasOlds ? await fromOlds() : undefined);
  const applied = recorded && forgetRecreated(recorded, olds?.hostIds, news.hostIds, masterIps(spec)[0]);
  const renamed =
    old && old.name !== spec.name
      ? `cluster name ${old.name} -> ${spec.name}`
      : old && old.dataRoot !== spec.dataRoot
        ? `data root ${old.dataRoot} -> ${spec.dataRoot}`
        : undefined;
  const p = renamed ? undefined : await planOf(spec, image, applied ?? emptyApplied(spec.name));
  if (p && !p.replace) return planLines(p);
  // Replacement: the old cluster as recorded (else as its inputs describe it) is destroyed.
  const oldSpec = old ?? spec;
  // Same name: the state just read is the old cluster's.
  const oldApplied =
    oldSpec.name === spec.name ? applied : ((await localApplied(oldSpec.name)) ?? (await fromOlds()));
  const oldPlugins = await factsOf(oldSpec, olds?.imageDigest)
    .then((f) => f.plugins)
    .catch(() => undefined);
  const destroy = session().planDestroy(
    { ...oldSpec, dataRoot: oldApplied?.dataRoot ?? oldSpec.dataRoot },
    oldApplied ?? emptyApplied(oldSpec.name),
    oldPlugins,
  );
  const install = await planOf(spec, image, emptyApplied(spec.name));
  return [
    `replace: ${renamed ?? p?.replace}: delete cluster ${oldSpec.name} (${destroy.steps.length} steps), then install ${spec.name} (${install.steps.length} steps)`,
    ...planLines(destroy, `delete ${oldSpec.name}: `),
    ...planLines(install),
  ];
}

const PROGRESS_LOG_INTERVAL_MS = 10_000;

/** A failed step, from its fields, with what to do in Pulumi terms; anything else as it says. */
function failureText(err: unknown, finished: number): string {
  const { StepError } = require("../core/errors") as typeof import("../core/errors");
  if (!(err instanceof StepError)) return errorMessage(err);
  return redacted(
    `${err.summary}\n${finished} step(s) finished and are recorded; fix the cause and run \`pulumi up\` again: it runs only the remaining steps.`,
  );
}

async function run(
  id: string,
  i: ClusterInputs,
  spec: ClusterSpec,
  applied: AppliedState,
): Promise<Record<string, unknown>> {
  const exec = require("../core/apply") as ApplyModule;
  let last = applied;
  const image = await factsOf(spec, i.imageDigest);
  const planned = await planOf(spec, image, applied);
  // Transfers show in the engine's log as throttled info lines (no terminal here).
  const { logProgress } = require("../core/progress") as typeof import("../core/progress");
  const stopProgress = logProgress(PROGRESS_LOG_INTERVAL_MS);
  try {
    const res = await exec.applyCluster({
      spec,
      imageRef: spec.image,
      applied,
      onState: (s) => {
        last = s;
      },
      ...sshTuning(),
    });
    return outputsOf(i, spec, res.state, res.ran, []);
  } catch (err) {
    const st = (err as { state?: AppliedState }).state ?? last;
    // What is left is what the planner plans from the recorded state: exactly what the next up runs.
    const pending = (await planOf(spec, image, st)).steps;
    const left = new Set(pending.map((s) => s.id));
    const ran = (err as { ran?: Step[] }).ran ?? planned.steps.filter((s) => !left.has(s.id));
    // Nothing ran and nothing was recorded: the resource is as it was (for a create, it does not
    // exist), which the engine's plain error means. Partial state would make a failed create a
    // resource that destroy then has to clean up from hosts it never touched.
    if (ran.length === 0 && sameValue(withoutSecrets(st), withoutSecrets(applied)))
      throw new Error(failureText(err, 0));
    throw new PartialStateError(id, outputsOf(i, spec, st, ran, pending), [failureText(err, ran.length)], {
      cause: err,
    });
  } finally {
    stopProgress();
  }
}
