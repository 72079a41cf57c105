import { InvalidReferenceError, parseReference } from "../common/reference";
import { clip } from "../kubefile/lexer";
import { canonicalIp, ipFamily } from "./ip";
import type {
  RawApplicationSpec,
  RawClusterV1Spec,
  RawClusterV2Spec,
  RawConfigSpec,
  RawPluginSpec,
  RawSsh,
} from "./schema";
import { appNameError } from "../kubefile/app-name";
import { Secret, secretOf } from "./secret";
import { LABEL_ON_PHASES, parseOn } from "./plugin-on";
import { decryptSealerPasswd } from "./sealer-passwd";
import {
  checkAbsolutePath,
  checkClusterName,
  checkHostname,
  checkLabelKey,
  checkLabelValue,
  checkRelativePath,
  checkRole,
  parseEnvEntry,
  parsePort,
  parseTaint,
} from "./syntax";
import type { ClusterInput } from "./normalize";
import {
  HOOK_PHASES,
  type ApplicationDoc,
  type ConfigDoc,
  type ConfigProcess,
  type ConfigStrategy,
  type Env,
  type HookPhase,
  type InfraRequest,
  type PluginDoc,
  type PluginType,
  type SshSettings,
} from "./types";
import type { YamlPath } from "./yaml-lines";

/**
 * Semantic checks and construction of the model from schema-checked raw documents.
 * Every problem is reported through `report(path, message)` (path relative to the document)
 * and construction continues, so the user sees all problems at once.
 */
export type Report = (path: YamlPath, message: string) => void;

export function buildClusterV2(
  raw: { name: string | undefined; spec: RawClusterV2Spec },
  report: Report,
  opts: { infra?: InfraRequest; allowRanges?: boolean } = {},
): ClusterInput {
  const spec = raw.spec;
  const name = raw.name ?? "";
  if (!name)
    report(
      ["metadata", "name"],
      "required: the cluster name (it names the cluster's state and its directory on nodes)",
    );
  else {
    const e = checkClusterName(name);
    if (e) report(["metadata", "name"], e);
  }
  const image = spec.image ?? "";
  if (!image) report(["spec", "image"], "required: the cluster image to run (e.g. my-saas:1.0)");
  else {
    const e = checkImageReference(image);
    if (e) report(["spec", "image"], e);
  }

  const env = buildEnv(spec.env, ["spec", "env"], report);
  const ssh = buildSsh(spec.ssh, ["spec", "ssh"], report);

  const hosts: NonNullable<ClusterInput["hosts"]> = [];
  const firstSeen = new Map<string, string>();
  const families = new Map<number, string>();
  let masterCount = 0;
  (spec.hosts ?? []).forEach((h, hi) => {
    const at: YamlPath = ["spec", "hosts", hi];
    const ips: string[] = [];
    if (h.ips.length === 0) report([...at, "ips"], "at least one IP is required");
    h.ips.forEach((ipText, ii) => {
      const p: YamlPath = [...at, "ips", ii];
      const fam = ipFamily(ipText);
      if (!fam) {
        report(
          p,
          ipText.includes("-") && !opts.allowRanges
            ? `"${ipText}" is not an IP address (ranges are accepted on the command line only: list each IP)`
            : `"${ipText}" is not an IP address`,
        );
        return;
      }
      const ip = canonicalIp(ipText);
      const where = pathText(p);
      const prev = firstSeen.get(ip);
      if (prev) report(p, `${ip} is already listed at ${prev}: an IP may appear once`);
      else firstSeen.set(ip, where);
      if (!families.has(fam)) families.set(fam, ip);
      ips.push(ip);
    });
    const roles = h.roles ?? [];
    roles.forEach((r, ri) => {
      const e = checkRole(r);
      if (e) report([...at, "roles", ri], e);
    });
    const isMaster = roles.includes("master");
    const isNode = roles.includes("node");
    if (isMaster && isNode)
      report(
        [...at, "roles"],
        `a host is either "master" or "node", not both (control-plane nodes run workloads when untainted)`,
      );
    else if (!isMaster && !isNode)
      report(
        [...at, "roles"],
        roles.length === 0
          ? `required: "master" or "node"`
          : `must contain "master" or "node" (got ${roles.map((r) => JSON.stringify(r)).join(", ")})`,
      );
    // Count listed IPs, valid or not: an invalid master IP is one problem, not also "no master".
    if (isMaster) masterCount += h.ips.length;

    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(h.labels ?? {})) {
      const value = String(v);
      const e = checkLabelKey(k) ?? checkLabelValue(k, value);
      if (e) report([...at, "labels", k], e);
      labels[k] = value;
    }
    const taints: string[] = [];
    (h.taints ?? []).forEach((t, ti) => {
      const parsed = parseTaint(t);
      if (typeof parsed === "string") report([...at, "taints", ti], parsed);
      taints.push(t.trim());
    });
    hosts.push({
      ips,
      roles,
      ssh: buildSsh(h.ssh, [...at, "ssh"], report, true),
      env: buildEnv(h.env, [...at, "env"], report),
      labels,
      taints,
    });
  });
  if (families.size > 1)
    report(
      ["spec", "hosts"],
      `hosts mix IPv4 and IPv6 addresses (${families.get(4)}, ${families.get(6)}): use one family for every host`,
    );
  if (!opts.infra && masterCount === 0)
    report(["spec", "hosts"], `no master: at least one host needs roles: [master]`);

  let containerRuntime: ClusterInput["containerRuntime"];
  if (spec.containerRuntime) {
    const t = spec.containerRuntime.type;
    if (t !== "docker" && t !== "containerd")
      report(["spec", "containerRuntime", "type"], `"${t}" must be "docker" or "containerd"`);
    else containerRuntime = { type: t };
  }

  const hostAliases = (spec.hostAliases ?? []).map((a, ai) => {
    if (!ipFamily(a.ip)) report(["spec", "hostAliases", ai, "ip"], `"${a.ip}" is not an IP address`);
    if (a.hostnames.length === 0)
      report(["spec", "hostAliases", ai, "hostnames"], "at least one host name is required");
    a.hostnames.forEach((n, ni) => {
      const e = checkHostname(n);
      if (e) report(["spec", "hostAliases", ai, "hostnames", ni], e);
    });
    return { ip: a.ip, hostnames: a.hostnames };
  });

  const registry: ClusterInput["registry"] = {};
  if (spec.registry?.localRegistry && spec.registry.externalRegistry)
    report(["spec", "registry"], "set localRegistry or externalRegistry, not both");
  if (spec.registry?.externalRegistry) {
    const e = spec.registry.externalRegistry;
    const at: YamlPath = ["spec", "registry", "externalRegistry"];
    const dErr = checkHostname(e.domain);
    if (dErr && !ipFamily(e.domain)) report([...at, "domain"], dErr);
    registry.externalRegistry = {
      domain: e.domain,
      port: port(e.port, [...at, "port"], report) ?? 443,
      username: e.username ?? undefined,
      password: secretOf(str(e.password)),
    };
  } else if (spec.registry?.localRegistry) {
    const l = spec.registry.localRegistry;
    const at: YamlPath = ["spec", "registry", "localRegistry"];
    if (l.domain) {
      const dErr = checkHostname(l.domain);
      if (dErr) report([...at, "domain"], dErr);
    }
    if (l.password && !l.username) report([...at, "username"], "required when password is set");
    registry.localRegistry = {
      domain: l.domain ?? "",
      port: port(l.port, [...at, "port"], report) ?? 0,
      ha: l.ha ?? true,
      insecure: l.insecure ?? false,
      username: l.username ?? undefined,
      password: secretOf(str(l.password)),
      cert: l.cert?.subjectAltName
        ? {
            dnsNames: l.cert.subjectAltName.dnsNames ?? [],
            ips: (l.cert.subjectAltName.ips ?? []).map((ip) => (ipFamily(ip) ? canonicalIp(ip) : ip)),
          }
        : undefined,
    };
  }

  if (spec.dataRoot) {
    const e = checkAbsolutePath(spec.dataRoot);
    if (e) report(["spec", "dataRoot"], e);
  }

  return {
    name,
    image,
    env,
    cmd: spec.cmd ?? [],
    appNames: spec.appNames ?? [],
    ssh,
    hosts,
    containerRuntime,
    hostAliases,
    registry,
    dataRoot: spec.dataRoot ?? undefined,
    distribution: spec.distribution ?? undefined,
    infra: opts.infra,
  };
}

const V1_PROVIDERS = ["BAREMETAL", "ALI_CLOUD", "CONTAINER"];

/**
 * sealer.aliyun.com/v1alpha1 -> the v2 model. ipList masters/nodes become hosts; network
 * podCIDR/svcCIDR and certSANS become the env sealer v2 reads (PodCIDR, SvcCIDR, CertSANs);
 * count-only machines become an InfraRequest (spec.infra) for the Infra layer to satisfy.
 */
export function convertV1(
  raw: { name: string | undefined; spec: RawClusterV1Spec },
  report: Report,
  warn: (path: YamlPath, msg: string) => void,
): ClusterInput {
  const s = raw.spec;
  const provider = (s.provider ?? "BAREMETAL").toUpperCase();
  if (!V1_PROVIDERS.includes(provider))
    report(["spec", "provider"], `"${s.provider}" must be one of ${V1_PROVIDERS.join(", ")}`);
  const env = [...(s.env ?? [])];
  if (s.network?.podCIDR) env.push(`PodCIDR=${s.network.podCIDR}`);
  if (s.network?.svcCIDR) env.push(`SvcCIDR=${s.network.svcCIDR}`);
  if (s.certSANS?.length) env.push(`CertSANs=${s.certSANS.join(";")}`);
  for (const k of ["interface", "cniName", "withoutCNI"] as const)
    if (s.network?.[k] !== undefined && s.network?.[k] !== null)
      warn(
        ["spec", "network", k],
        `not used by this tool (set it in the image or a kubeadm/Config document); ignored`,
      );

  const hosts: RawClusterV2Spec["hosts"] = [];
  let infra: InfraRequest | undefined;
  const counts = { masters: 0, nodes: 0 };
  for (const role of ["masters", "nodes"] as const) {
    const m = s[role];
    if (!m) continue;
    if (m.ipList && m.ipList.length > 0) {
      if (m.count !== undefined && m.count !== null && Number(m.count) !== m.ipList.length)
        warn(
          ["spec", role, "count"],
          `${m.count} differs from the ${m.ipList.length} IPs in ipList; the IPs are used (as sealer does) and the count is ignored`,
        );
      hosts.push({ ips: m.ipList, roles: [role === "masters" ? "master" : "node"] });
    } else if (m.count !== undefined && m.count !== null) {
      const n = Number(m.count);
      if (!Number.isInteger(n) || n < 0)
        report(["spec", role, "count"], `${JSON.stringify(m.count)} must be a whole number`);
      else counts[role] = n;
    }
  }
  if (counts.masters > 0 || counts.nodes > 0) {
    if (provider === "BAREMETAL")
      report(
        ["spec", "provider"],
        `BAREMETAL needs masters.ipList/nodes.ipList; counts need a cloud provider (ALI_CLOUD)`,
      );
    if (hosts.length > 0) report(["spec"], `give either ipList or count for masters and nodes, not a mix`);
    if (counts.masters === 0) report(["spec", "masters", "count"], "at least one master is required");
    const req = (role: "masters" | "nodes") => {
      const m = s[role];
      const num = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : Number(v));
      const out: InfraRequest["masters"] = { count: counts[role] };
      const cpu = num(m?.cpu);
      const memory = num(m?.memory);
      const systemDisk = num(m?.systemDisk);
      if (cpu !== undefined) out.cpu = cpu;
      if (memory !== undefined) out.memory = memory;
      if (systemDisk !== undefined) out.systemDisk = systemDisk;
      if (m?.dataDisks) out.dataDisks = m.dataDisks.map(Number);
      return out;
    };
    infra = {
      provider: provider === "ALI_CLOUD" ? "alicloud" : provider.toLowerCase(),
      masters: req("masters"),
      nodes: req("nodes"),
    };
  }
  return buildClusterV2(
    {
      name: raw.name,
      spec: { image: s.image, env, cmd: s.cmd, ssh: s.ssh, hosts, containerRuntime: s.containerRuntime },
    },
    (path, msg) => {
      // Host paths of the converted doc point at the v1 lists.
      if (path.length === 2 && path[0] === "spec" && path[1] === "hosts" && msg.startsWith("no master"))
        report(["spec", "masters", "ipList"], "no master: list at least one IP in masters.ipList");
      else if (path[0] === "spec" && path[1] === "hosts" && typeof path[2] === "number") {
        const list = hosts[path[2]]?.roles?.[0] === "master" ? "masters" : "nodes";
        report(["spec", list, "ipList", ...(path[3] === "ips" ? path.slice(4) : [])], msg);
      } else report(path, msg);
    },
    { infra },
  );
}

function buildSsh(
  raw: RawSsh | null | undefined,
  at: YamlPath,
  report: Report,
  isHost = false,
): Partial<SshSettings> {
  const out: Partial<SshSettings> = {};
  if (!raw) return out;
  if (raw.user) out.user = raw.user;
  const p = port(raw.port, [...at, "port"], report);
  if (p !== undefined) out.port = p;
  if (raw.pk) out.pk = raw.pk;
  let plain = str(raw.passwd);
  if (raw.encrypted && plain) {
    plain = decryptSealerPasswd(plain);
    if (plain === undefined)
      report(
        [...at, "passwd"],
        "encrypted is true but this is not a password sealer encrypted (base64 of its AES-CBC form); write the plain password and remove encrypted",
      );
  }
  const passwd = secretOf(plain);
  if (passwd) out.passwd = passwd;
  const pkData = secretOf(raw.pkData ?? undefined);
  if (pkData) out.pkData = pkData;
  const pkPasswd = secretOf(str(raw.pkPasswd));
  if (pkPasswd) out.pkPasswd = pkPasswd;
  if (raw.pk && raw.pkData)
    report([...at, "pkData"], "set pk (a key file) or pkData (the key itself), not both");
  void isHost;
  return out;
}

/** Why `image` is not an image reference (said here, so the problem names spec.image and its line). */
function checkImageReference(image: string): string | undefined {
  try {
    parseReference(image);
    return undefined;
  } catch (err) {
    if (!(err instanceof InvalidReferenceError)) throw err;
    const why = clip(err.why, 200);
    return `"${clip(image, 80)}" is not an image reference: ${why}; write e.g. registry.example.com/team/cluster:1.0`;
  }
}

export function buildEnv(list: string[] | null | undefined, at: YamlPath, report: Report): Env {
  const env: Env = {};
  (list ?? []).forEach((entry, i) => {
    const parsed = parseEnvEntry(entry);
    if (typeof parsed === "string") return report([...at, i], parsed);
    (env[parsed.key] ??= []).push(...parsed.values);
  });
  return env;
}

function port(v: string | number | null | undefined, at: YamlPath, report: Report): number | undefined {
  const p = parsePort(v);
  if (typeof p === "string") {
    report(at, p);
    return undefined;
  }
  return p;
}

function str(v: string | number | boolean | null | undefined): string | undefined {
  return v === undefined || v === null ? undefined : String(v);
}

export function pathText(path: YamlPath): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  return s;
}

const STRATEGIES: ConfigStrategy[] = ["overwrite", "merge"];
const PROCESSES: ConfigProcess[] = ["value", "toJson", "toBase64", "toSecret"];

export function buildConfig(name: string | undefined, spec: RawConfigSpec, report: Report): ConfigDoc {
  if (!name) report(["metadata", "name"], "required: a name for this Config");
  const pErr = checkRelativePath(spec.path);
  if (pErr) report(["spec", "path"], pErr);
  const strategy = (spec.strategy ?? "overwrite") as ConfigStrategy;
  if (!STRATEGIES.includes(strategy))
    report(["spec", "strategy"], `"${spec.strategy}" must be "overwrite" or "merge"`);
  const process = (
    spec.process
      ? spec.process
          .split("|")
          .map((p) => p.trim())
          .filter(Boolean)
      : []
  ) as ConfigProcess[];
  for (const p of process)
    if (!PROCESSES.includes(p))
      report(["spec", "process"], `"${p}" must be one of ${PROCESSES.join(", ")} (several joined with "|")`);
  const out: ConfigDoc = { name: name ?? "", path: spec.path, data: spec.data ?? "", strategy, process };
  if (spec.appName) {
    const e = appNameError(spec.appName);
    if (e) report(["spec", "appName"], e);
    out.appName = spec.appName;
  }
  return out;
}

/** Legacy (v0.8) PascalCase actions and their current phase names. */
const LEGACY_ACTIONS: Record<string, HookPhase> = {
  // Before anything is installed or distributed, on every host (sealer v0.5-v0.8).
  Originally: "pre-install",
  PreInstall: "pre-install",
  PostInstall: "post-install",
  PreInit: "pre-init-host",
  PostInit: "post-init-host",
  PreClean: "pre-clean-host",
  PostClean: "post-clean-host",
  PreJoin: "pre-scaleup",
  PostJoin: "post-scaleup",
  // "before the apps are launched", i.e. after the cluster is up.
  PreGuest: "post-install",
  PreUnInstall: "pre-uninstall",
  PostUnInstall: "post-uninstall",
};
/**
 * The legacy action name of each phase above, for writing a legacy plugin back as one (its host
 * selection differs). The last name listed wins: PreInstall, and PreGuest for post-install (the
 * one action a CLUSTERCHECK plugin keeps).
 */
export const LEGACY_ACTION_OF: Partial<Record<HookPhase, string>> = Object.fromEntries(
  Object.entries(LEGACY_ACTIONS).map(([name, phase]) => [phase, name]),
);
const PLUGIN_TYPES: PluginType[] = ["SHELL", "HOSTNAME", "LABEL", "TAINT", "CLUSTERCHECK", "ETCD"];

/**
 * sealer keeps every Plugin document, several of the same name included (sealer <= 0.4 named
 * each plugin after its type, so a file could hold three "SHELL"s), and runs each; the plan
 * names hooks by plugin, so the second "SHELL" becomes "SHELL#2", the third "SHELL#3".
 */
export function distinctName(seen: Map<string, number>, name: string): string {
  const n = (seen.get(name) ?? 0) + 1;
  seen.set(name, n);
  return n === 1 ? name : `${name}#${n}`;
}

export function buildPlugin(
  name: string | undefined,
  spec: RawPluginSpec,
  report: Report,
  warn: Report = () => {},
): PluginDoc {
  if (!name) report(["metadata", "name"], "required: a name for this Plugin (plugins run in name order)");
  // sealer <= 0.4 had no spec.type: the plugin's name was its type (metadata.name: SHELL).
  const legacyType = !spec.type && name && PLUGIN_TYPES.includes(name.toUpperCase() as PluginType);
  const typeText = spec.type ?? (legacyType ? (name as string) : "");
  const type = typeText.toUpperCase() as PluginType;
  if (!typeText)
    report(
      ["spec", "type"],
      `required: one of ${PLUGIN_TYPES.join(", ")} (or name the plugin after its type)`,
    );
  else if (!PLUGIN_TYPES.includes(type))
    report(
      ["spec", "type"],
      `"${typeText}" is not a built-in plugin type (${PLUGIN_TYPES.join(", ")}); sealer's out-of-tree Go plugins (.so) are not supported: do the work in a SHELL plugin`,
    );
  const actions: HookPhase[] = [];
  const needsAction = type === "SHELL";
  const actionText = spec.action ?? "";
  if (!actionText && needsAction)
    report(
      ["spec", "action"],
      `required for SHELL plugins: one or more of ${HOOK_PHASES.join(", ")} joined with "|"`,
    );
  let legacy = Boolean(legacyType) || Boolean(spec.on?.trim());
  for (const a of actionText
    .split("|")
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (LEGACY_ACTIONS[a]) legacy = true;
    const phase = (HOOK_PHASES as readonly string[]).includes(a) ? (a as HookPhase) : LEGACY_ACTIONS[a];
    if (!phase) report(["spec", "action"], `"${a}" is not a hook phase; use ${HOOK_PHASES.join(", ")}`);
    else actions.push(phase);
  }
  if (type === "HOSTNAME") {
    // sealer renames hosts at PreInit and PreJoin whatever the action says: kubeadm registers a
    // node under the name it has when it joins, so the rename must come first.
    if (actions.some((a) => a !== "pre-init-host"))
      warn(["spec", "action"], "ignored: a HOSTNAME plugin renames each listed host before it is installed");
    actions.splice(0, actions.length, "pre-init-host");
  }
  let keepNoAction = false;
  if (type === "CLUSTERCHECK") {
    // sealer's CLUSTERCHECK waits only at PreGuest (before the apps) and does nothing at any
    // other phase: keep that one, so a check sealer skipped cannot fail an apply here. With no
    // action at all it runs at no phase: sealer runs a plugin only at the phases its action
    // lists (v0.8's PluginsProcessor.Run skips any other; v0.9 turns each listed action into a
    // hook and skips the empty one), so a saved Clusterfile with no action reads back the same.
    const given = actionText
      .split("|")
      .map((x) => x.trim())
      .filter(Boolean);
    const others = given.filter((a) => a !== "PreGuest" && a !== "post-install");
    if (others.length)
      warn(
        ["spec", "action"],
        `ignored: ${others.join(", ")}: a CLUSTERCHECK plugin waits for the cluster only before the apps are installed (PreGuest)`,
      );
    const checks = others.length < given.length;
    actions.splice(0, actions.length, ...(checks ? (["post-install"] as const) : []));
    // A check that runs at no phase selects no hosts: no legacy mark, so its saved form (which
    // has no action to carry one) reads back the same.
    if (!checks) legacy = false;
    // No action left: like sealer, the plugin runs at no phase; the default below must not add one.
    keepNoAction = true;
  }
  // LABEL/TAINT act once the hosts are known; sealer ran them before the guest apps.
  if (actions.length === 0 && !needsAction && !keepNoAction) actions.push("post-install");
  const scope = (spec.scope ?? "")
    .split("|")
    .map((x) => x.trim())
    .filter(Boolean);
  for (const r of scope) {
    const e = checkRole(r);
    if (e) report(["spec", "scope"], e);
  }
  const out: PluginDoc = { name: name ?? "", type, actions, scope, data: spec.data ?? "" };
  if (legacy) out.legacy = true;
  if (type === "ETCD") {
    // sealer's ETCD plugin saves its snapshot to the path in `on` (it always runs on master0).
    const at = spec.on?.trim();
    if (at && !at.startsWith("/"))
      report(
        ["spec", "on"],
        `"${at}" is not an absolute path: the on of an ETCD plugin is the file on master0 its etcd snapshot is saved to`,
      );
    else if (at) out.on = at;
    else
      warn(
        ["spec", "on"],
        "no snapshot path: the etcd snapshot is saved on master0 in the cluster's backups directory (set on to an absolute path to choose the file)",
      );
  } else if (spec.on?.trim()) {
    out.on = spec.on.trim();
    const sel = parseOn(out.on);
    if (typeof sel === "string") report(["spec", "on"], sel);
    else if (sel.kind === "labels" && type === "SHELL") {
      const never = actions.filter((a) => !LABEL_ON_PHASES.includes(a));
      if (never.length)
        warn(
          ["spec", "on"],
          `a label selector picks Kubernetes nodes, which exist only after install: at ${never.join(", ")} this plugin runs on no host (as in sealer); use roles or IPs in on, or the phases ${LABEL_ON_PHASES.join(", ")}`,
        );
    }
  }
  return out;
}

export function buildApplication(
  name: string | undefined,
  spec: RawApplicationSpec,
  report: Report,
): ApplicationDoc {
  return {
    name: name ?? "",
    cmds: spec.cmds ?? [],
    launchApps: spec.launchApps ?? [],
    configs: (spec.configs ?? []).map((c, ci) => {
      const at: YamlPath = ["spec", "configs", ci];
      const files = (c.files ?? []).map((f, fi) => {
        const e = checkRelativePath(f.path);
        if (e) report([...at, "files", fi, "path"], e);
        const strategy = (f.strategy ?? "overwrite") as ConfigStrategy;
        if (!STRATEGIES.includes(strategy))
          report([...at, "files", fi, "strategy"], `"${f.strategy}" must be "overwrite" or "merge"`);
        return { path: f.path, strategy, data: f.data ?? "" };
      });
      const out: ApplicationDoc["configs"][number] = {
        name: c.name,
        env: buildEnv(c.env, [...at, "env"], report),
        files,
      };
      if (c.launch?.cmds) out.launchCmds = c.launch.cmds;
      return out;
    }),
  };
}

export { Secret };
