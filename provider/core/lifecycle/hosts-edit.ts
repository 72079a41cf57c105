/**
 * Pure edits of a cluster's host list for `sealer join` / `sealer delete -m/-n`: the
 * result is a new ClusterSpec that applyCluster plans against the recorded state (join for
 * added hosts, clean + reset + delete node for removed ones). Every problem is collected and
 * reported at once; on a problem nothing is changed.
 */
import {
  canonicalIp,
  masters as mastersOf,
  normalizeCluster,
  workers as workersOf,
  type ClusterSpec,
  type HostSpec,
} from "../clusterfile";
import { throwIfProblems } from "../errors";

export interface HostEdit {
  masters: string[];
  nodes: string[];
}

function canon(ips: string[], flag: string, problems: string[]): string[] {
  const out: string[] = [];
  for (const ip of ips) {
    let c: string | undefined;
    try {
      c = canonicalIp(ip.trim());
    } catch {
      c = undefined;
    }
    if (!c) problems.push(`${flag} ${ip}: not an IP address`);
    else if (out.includes(c)) problems.push(`${flag} ${ip}: given twice`);
    else out.push(c);
  }
  return out;
}

/** The edit's IPs in canonical form, with the problems of the flags (bad, repeated or no IPs). */
function canonEdit(edit: HostEdit, ifEmpty: string): { m: string[]; n: string[]; problems: string[] } {
  const problems: string[] = [];
  const m = canon(edit.masters, "-m", problems);
  const n = canon(edit.nodes, "-n", problems);
  if (edit.masters.length + edit.nodes.length === 0) problems.push(ifEmpty);
  return { m, n, problems };
}

/** The spec with `add` appended (masters after the existing masters, so master0 stays). */
export function addHosts(spec: ClusterSpec, add: HostEdit): ClusterSpec {
  const { m, n, problems } = canonEdit(add, "nothing to join: give -m IPs and/or -n IPs");
  const existing = new Map(
    spec.hosts.flatMap((h) =>
      h.ips.map((ip) => [ip, h.roles.includes("master") ? "master" : "node"] as const),
    ),
  );
  for (const ip of [...m, ...n]) {
    const role = existing.get(ip);
    if (role)
      problems.push(
        `${ip} is already in cluster ${spec.name} as ${role}: nothing to join (to change its role, delete it first)`,
      );
  }
  for (const ip of m) if (n.includes(ip)) problems.push(`${ip} is given as master (-m) and as node (-n)`);
  throwIfProblems(`cannot join hosts to cluster ${spec.name}`, problems);
  const host = (ip: string, role: string): HostSpec => ({
    ips: [ip],
    roles: [role],
    ssh: {},
    env: {},
    labels: {},
    taints: [],
  });
  const hosts = [
    ...spec.hosts.filter((h) => h.roles.includes("master")),
    ...m.map((ip) => host(ip, "master")),
    ...spec.hosts.filter((h) => !h.roles.includes("master")),
    ...n.map((ip) => host(ip, "node")),
  ];
  return normalizeCluster({ ...spec, hosts });
}

/**
 * The spec without `remove`. Refuses unknown IPs, a master given as node (or the reverse), and
 * removing every master: a cluster needs one to keep its etcd and API server.
 */
export function removeHosts(spec: ClusterSpec, remove: HostEdit): ClusterSpec {
  const { m, n, problems } = canonEdit(
    remove,
    "nothing to delete: give -m IPs and/or -n IPs (or -a to delete the whole cluster)",
  );
  const ms = mastersOf(spec);
  const ws = workersOf(spec);
  for (const ip of m) {
    if (ws.includes(ip))
      problems.push(`-m ${ip}: ${ip} is a node (worker) of cluster ${spec.name}, not a master: use -n ${ip}`);
    else if (!ms.includes(ip))
      problems.push(`-m ${ip}: no such host in cluster ${spec.name} (masters: ${ms.join(", ") || "none"})`);
  }
  for (const ip of n) {
    if (ms.includes(ip))
      problems.push(`-n ${ip}: ${ip} is a master of cluster ${spec.name}, not a node: use -m ${ip}`);
    else if (!ws.includes(ip))
      problems.push(`-n ${ip}: no such host in cluster ${spec.name} (nodes: ${ws.join(", ") || "none"})`);
  }
  const leftMasters = ms.filter((ip) => !m.includes(ip));
  if (ms.length > 0 && leftMasters.length === 0 && m.length > 0)
    problems.push(
      `removing ${m.join(", ")} would leave cluster ${spec.name} without a master (etcd and the API server run there); keep at least one master, or delete the whole cluster with sealer delete -a`,
    );
  throwIfProblems(`cannot delete hosts from cluster ${spec.name}`, problems);
  const gone = new Set([...m, ...n]);
  return normalizeCluster({ ...spec, hosts: spec.hosts.filter((h) => !h.ips.some((ip) => gone.has(ip))) });
}

/** Hosts of a role in the spec ("master" / "node"), or all when role is empty; other role names match hosts that carry them. */
export function hostsByRole(spec: ClusterSpec, role?: string): string[] {
  if (!role) return [...mastersOf(spec), ...workersOf(spec)];
  const problems: string[] = [];
  const roles = role
    .split(/[,|]/)
    .map((r) => r.trim())
    .filter(Boolean);
  const out: string[] = [];
  for (const r of roles) {
    const want = r === "worker" ? "node" : r;
    const ips = spec.hosts.filter((h) => h.roles.includes(want)).flatMap((h) => h.ips);
    if (ips.length === 0)
      problems.push(
        `-r ${r}: no host of cluster ${spec.name} has role ${r} (roles: ${[...new Set(spec.hosts.flatMap((h) => h.roles))].sort().join(", ")})`,
      );
    for (const ip of ips) if (!out.includes(ip)) out.push(ip);
  }
  throwIfProblems("cannot pick hosts", problems);
  return out;
}
