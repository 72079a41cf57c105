/**
 * The Cluster document tests write for their local nodes, in the flow-style YAML a user writes
 * by hand: one host line per role group, further `spec` lines (registry, distribution) as given.
 */
export interface ClusterYaml {
  name: string;
  image: string;
  /** SSH private key file for every host. */
  pk: string;
  user?: string;
  masters: string[];
  /** Workers (role node); no host line when empty. */
  nodes?: string[];
  /** Host groups with other roles, after the masters and nodes. */
  more?: Array<{ ips: string[]; roles: string[] }>;
  /** Lines under `spec:` after the hosts, indented as they stand. */
  spec?: string[];
}

export function clusterYaml(o: ClusterYaml): string {
  const group = (ips: string[], roles: string[]) =>
    `    - { ips: [ ${ips.join(", ")} ], roles: [ ${roles.join(", ")} ] }`;
  return [
    "apiVersion: sealer.io/v2",
    "kind: Cluster",
    `metadata: { name: ${o.name} }`,
    "spec:",
    `  image: ${o.image}`,
    `  ssh: { user: ${o.user ?? "root"}, pk: ${o.pk} }`,
    "  hosts:",
    group(o.masters, ["master"]),
    ...(o.nodes?.length ? [group(o.nodes, ["node"])] : []),
    ...(o.more ?? []).map((g) => group(g.ips, g.roles)),
    ...(o.spec ?? []),
    "",
  ].join("\n");
}
