/**
 * Drift detection, the pure half: what the recorded state says each host should have
 * (expectations), the comparison with what a probe found (observations), and forgetSteps, which
 * turns a report into an applied state whose next plan re-runs exactly the drifted steps.
 *
 * Only effects of steps the state records are expected: a step that never ran has nothing to
 * drift from. Every drift names the recorded step ids whose effect is gone; steps that cannot be
 * re-run safely (init-master) are never named, the drift then says what to do by hand.
 */
import { hostsBlockMarkers } from "../runtime/hosts-file";
import type { TreeLoss } from "../exec/footprint";
import type { AppliedState } from "../plan/types";
import { drift, list, type CheckResult } from "./check";
import { STEP_KINDS } from "../exec/steps";
import type { KindProbe } from "../exec/steps/kind";

// ---- report ----

export type { CheckResult, CheckStatus } from "./check";

export interface HostReport {
  host: string;
  checks: CheckResult[];
}

export interface DriftReport {
  cluster: string;
  hosts: HostReport[];
  /** Union of the drifted checks' steps, sorted. */
  steps: string[];
  drifted: boolean;
  /** What was not checked and why. */
  notes: string[];
}

// ---- expectations (from the recorded state and the cluster layout) ----

export interface ClusterLayout {
  cluster: string;
  masters: string[];
  workers: string[];
  /** Hosts running the local registry (empty for an external registry). */
  registryHosts: string[];
  /** Per host, the address it maps the registry domain to (ExecContext.registryTargetFor). */
  registryTargets: Record<string, string>;
  registryDomain: string;
  /** false for an external registry: no registry hosts block is written by us. */
  localRegistry: boolean;
  hostAliases: Array<{ ip: string; names: string[] }>;
  /** The worker VIP (env IPvsVIPv4 or the default). */
  vip: string;
  apiserverDomain: string;
}

export interface ExpectedBlock {
  tag: string;
  lines: string[];
  steps: string[];
  manual?: string;
}

/** A file a recorded step left on the host (its footprint). */
export interface ExpectedFile {
  path: string;
  sha256: string;
  /** The steps that recorded it. */
  steps: string[];
}

export interface ExpectedHost {
  host: string;
  /** Files recorded steps left here, outside the rootfs. */
  files: ExpectedFile[];
  /** The rootfs's file list recorded by distribute, and the files distribute rendered in it. */
  tree?: { dir: string; digest: string; count: number; list: string; files: ExpectedFile[]; steps: string[] };
  /** Layers the state says are in the node's blob store and rootfs; undefined: distribute never recorded. */
  layers?: string[];
  blocks: ExpectedBlock[];
  /** The local registry was started here. */
  registry: boolean;
  /** master0: the saved Clusterfile on the node. */
  clusterfile: boolean;
  node?: NodeExpectation & {
    labels?: Record<string, string>;
    taints?: string[];
    labelSteps: string[];
  };
}

/** The node a recorded join registered, and the steps that re-register it. */
export interface NodeExpectation {
  name: string;
  /** The join kind that registered it (it compares the node list). */
  by: "init-master" | "join-master" | "join-worker";
  /** Steps that re-register the node (empty for master0: manual). */
  joinSteps: string[];
}

/**
 * What one step kind expects of a host (its `probe`, exec/steps/<kind>.ts), beyond the files its
 * footprint lists; expectations() merges every kind's into one ExpectedHost.
 */
export interface Expectation {
  layers?: string[];
  blocks?: ExpectedBlock[];
  registry?: boolean;
  clusterfile?: boolean;
  node?: NodeExpectation;
  nodeLabels?: { labelSteps: string[]; labels?: Record<string, string>; taints?: string[] };
}

/** The kinds that expect something of a host, in plan order. */
const kindProbes = (): KindProbe[] =>
  Object.values(STEP_KINDS).flatMap((k: { probe?: KindProbe }) => (k.probe ? [k.probe] : []));

/** What each host of the recorded state should show, limited to effects of recorded steps. */
export function expectations(applied: AppliedState, l: ClusterLayout): ExpectedHost[] {
  const recorded = (id: string) => applied.steps[id] !== undefined;
  const master0 = l.masters[0];
  const hosts = [...new Set([...l.masters, ...l.workers])].filter((ip) => applied.hosts[ip]);
  const index = stepIndex(applied, hosts);
  return hosts.map((ip) => {
    const input = {
      applied,
      layout: l,
      ip,
      master0: ip === master0,
      worker: !l.masters.includes(ip),
      recorded,
      hostSteps: index.ofHost.get(ip) ?? [],
    };
    const blocks: ExpectedBlock[] = [];
    let e: Expectation = {};
    for (const k of kindProbes()) {
      const x = k.expect(input);
      blocks.push(...(x.blocks ?? []));
      e = { ...e, ...x };
    }
    // Labels are checked on a node a recorded join registered.
    const node: ExpectedHost["node"] = e.node
      ? {
          ...e.node,
          labelSteps: e.nodeLabels?.labelSteps ?? [],
          ...(e.nodeLabels?.labels ? { labels: e.nodeLabels.labels } : {}),
          ...(e.nodeLabels?.taints ? { taints: e.nodeLabels.taints } : {}),
        }
      : undefined;
    const { files, tree } = footprintsOf(applied, ip, index.footprinted.get(ip) ?? []);
    return {
      host: ip,
      files,
      ...(tree ? { tree } : {}),
      ...(e.layers ? { layers: e.layers } : {}),
      blocks,
      registry: e.registry ?? false,
      clusterfile: e.clusterfile ?? false,
      ...(node ? { node } : {}),
    };
  });
}

/**
 * The recorded step ids in order, gathered once per check (a large cluster records thousands of
 * steps; scanning them for each host made the check quadratic): per host, the ids with a footprint
 * there, and the per-host ids (ending in ":<ip>").
 */
function stepIndex(
  applied: AppliedState,
  hosts: string[],
): { footprinted: Map<string, string[]>; ofHost: Map<string, string[]> } {
  const known = new Set(hosts);
  const footprinted = new Map<string, string[]>();
  const ofHost = new Map<string, string[]>();
  const add = (m: Map<string, string[]>, ip: string, id: string) => {
    const l = m.get(ip);
    if (l) l.push(id);
    else m.set(ip, [id]);
  };
  for (const id of Object.keys(applied.steps).sort()) {
    for (const ip of Object.keys(applied.steps[id]!.footprint ?? {})) add(footprinted, ip, id);
    // An IPv6 address holds colons itself: every colon may start the host part.
    for (let at = id.indexOf(":"); at >= 0; at = id.indexOf(":", at + 1))
      if (known.has(id.slice(at + 1))) add(ofHost, id.slice(at + 1), id);
  }
  return { footprinted, ofHost };
}

/** What the recorded steps' footprints say host `ip` holds (steps without one add nothing). */
function footprintsOf(
  applied: AppliedState,
  ip: string,
  ids: string[],
): Pick<ExpectedHost, "files" | "tree"> {
  const files = new Map<string, ExpectedFile>();
  let tree: ExpectedHost["tree"];
  for (const id of ids) {
    const fp = applied.steps[id]!.footprint?.[ip];
    if (!fp) continue;
    if (fp.tree) tree = { ...fp.tree, files: [], steps: [id] };
    for (const [path, sha256] of Object.entries(fp.files ?? {})) {
      const f = files.get(path);
      if (f && f.sha256 === sha256) f.steps.push(id);
      else files.set(path, { path, sha256, steps: [id] });
    }
  }
  const all = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  // Files inside the rootfs are part of its check (one finding for the rootfs, not one per file).
  const inTree = (f: ExpectedFile) => tree !== undefined && f.path.startsWith(tree.dir + "/");
  if (tree) tree.files = all.filter(inTree);
  return { files: all.filter((f) => !inTree(f)), ...(tree ? { tree } : {}) };
}

// ---- observations (what a probe found) ----

export interface HostObservation {
  host: string;
  /** undefined when reached; else why not. */
  unreachable?: string;
  /** hex -> size of the expected blobs found in the node's store. */
  blobs: Record<string, number>;
  /** The rootfs's layers.json list; null when missing or unreadable. */
  layersJson: string[] | null;
  /** The rootfs directory exists and is not empty. */
  rootfs: boolean;
  /** Expected files: path -> sha256 now, null when missing. */
  files?: Record<string, string | null>;
  /** The rootfs's file list now: digest, count, and the recorded entries it lost. */
  tree?: { digest: string; count: number; loss: TreeLoss };
  /** Our /etc/hosts blocks by tag: their body lines. */
  blocks: Record<string, string[]>;
  /** HTTP status of https://<host>:<port>/v2/ asked on the host ("000": nothing answered); undefined: not asked. */
  registryHttp?: string;
  clusterfile?: boolean;
}

export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** "key=value:Effect" / "key:Effect". */
  taints: string[];
}

/** The node list from master0 (`kubectl get nodes -o json`), or why it is not available. */
export type NodeList =
  { ok: true; nodes: NodeInfo[]; from: string } | { ok: false; unreachable: boolean; error: string };

/** Parses `kubectl get nodes -o json` (Kubernetes' shape, and the sandbox API server's flatter one). */
export function parseNodeList(text: string): NodeInfo[] {
  const doc = JSON.parse(text) as { items?: unknown };
  if (!doc || !Array.isArray(doc.items)) throw new Error("no items in the node list");
  return doc.items.map((raw) => {
    const it = raw as {
      name?: string;
      labels?: Record<string, string>;
      taints?: unknown[];
      metadata?: { name?: string; labels?: Record<string, string> };
      spec?: { taints?: Array<{ key: string; value?: string; effect: string }> };
    };
    const taints: string[] = [];
    for (const t of it.spec?.taints ?? []) taints.push(`${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`);
    for (const t of it.taints ?? []) if (typeof t === "string") taints.push(t);
    return {
      name: it.metadata?.name ?? it.name ?? "",
      labels: { ...(it.metadata?.labels ?? it.labels ?? {}) },
      taints,
    };
  });
}

/** Our blocks in an /etc/hosts text: tag -> body lines (whitespace collapsed). */
export function parseHostsBlocks(text: string, cluster: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const pre = `# BEGIN sealer:${cluster}:`;
  let tag: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith(pre)) {
      tag = line.slice(pre.length);
      out[tag] = [];
      continue;
    }
    if (tag !== undefined && line === hostsBlockMarkers(cluster, tag).end) {
      tag = undefined;
      continue;
    }
    if (tag !== undefined && line) out[tag]!.push(line.split(/\s+/).join(" "));
  }
  return out;
}

// ---- comparison ----

const sameSet = (a: string[], b: string[]) =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

/**
 * Compares one host. `nodes` is the cluster's node list (shared by every host). Each step kind
 * compares what it expects (its probe); the files of every footprint and the /etc/hosts blocks
 * are compared here, alike for every kind.
 */
export function compareHost(e: ExpectedHost, o: HostObservation, nodes: NodeList): CheckResult[] {
  if (o.unreachable !== undefined) return [{ check: "ssh", status: "unreachable", detail: o.unreachable }];
  const out: CheckResult[] = [{ check: "ssh", status: "ok" }];
  for (const k of kindProbes()) out.push(...(k.compare?.(e, o, nodes) ?? []));
  for (const f of e.files) out.push(compareFile(e.host, f, o.files?.[f.path]));
  for (const b of e.blocks) {
    const found = o.blocks[b.tag];
    const check = `hosts:${b.tag}`;
    if (found === undefined)
      out.push(drift(check, `/etc/hosts block: ${b.lines.join("; ")}`, "block missing", b.steps, b.manual));
    else if (!sameSet(found, b.lines))
      out.push(
        drift(check, `/etc/hosts block: ${b.lines.join("; ")}`, `block: ${list(found)}`, b.steps, b.manual),
      );
    else out.push({ check, status: "ok" });
  }
  return out;
}

const short = (hex: string) => hex.slice(0, 12);

function compareFile(host: string, f: ExpectedFile, now: string | null | undefined): CheckResult {
  const check = `file:${f.path}`;
  if (now === f.sha256) return { check, status: "ok" };
  const gone = now === null || now === undefined;
  return drift(
    check,
    `sha256 ${short(f.sha256)}`,
    gone ? "missing" : `sha256 ${short(now)}`,
    f.steps,
    undefined,
    `${f.path} ${gone ? "missing" : "changed"} on ${host}`,
  );
}

export function buildReport(
  cluster: string,
  expected: ExpectedHost[],
  observed: HostObservation[],
  nodes: NodeList,
  notes: string[] = [],
): DriftReport {
  const byHost = new Map(observed.map((o) => [o.host, o]));
  const hosts = expected.map((e) => {
    const o = byHost.get(e.host) ?? {
      host: e.host,
      unreachable: "not probed",
      blobs: {},
      layersJson: null,
      rootfs: false,
      blocks: {},
    };
    return { host: e.host, checks: compareHost(e, o, nodes) };
  });
  const steps = [
    ...new Set(hosts.flatMap((h) => h.checks.flatMap((c) => (c.status === "drifted" ? c.steps : [])))),
  ].sort();
  const drifted = hosts.some((h) => h.checks.some((c) => c.status === "drifted"));
  return { cluster, hosts, steps, drifted, notes };
}

/** One line per drifted check: step id -> "host check: expected …, found …" (the planner shows it as the reason). */
export function driftNotes(r: DriftReport): Record<string, string> {
  const notes: Record<string, string[]> = {};
  for (const h of r.hosts)
    for (const c of h.checks)
      if (c.status === "drifted")
        for (const s of c.steps) (notes[s] ??= []).push(c.note ?? `${h.host} ${c.check}: ${c.found}`);
  return Object.fromEntries(Object.entries(notes).map(([k, v]) => [k, [...new Set(v)].join("; ")]));
}

/**
 * The applied state without the records of `stepIds` (pure): the next plan runs them again,
 * with "drift: <note>" as the reason when a note is given. Unknown ids are ignored.
 */
export function forgetSteps(
  applied: AppliedState,
  stepIds: string[],
  notes: Record<string, string> = {},
): AppliedState {
  const next = structuredClone(applied);
  const drift = { ...(next.drift ?? {}) };
  for (const id of stepIds) {
    if (!next.steps[id]) continue;
    delete next.steps[id];
    drift[id] = notes[id] ?? "its effect is gone from the host";
  }
  if (Object.keys(drift).length) next.drift = drift;
  return next;
}
