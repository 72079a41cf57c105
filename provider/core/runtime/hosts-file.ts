/**
 * /etc/hosts entries the tool owns, kept in marked blocks so they can be replaced and removed
 * exactly (clean-host removes every block of the cluster):
 *   # BEGIN sealer:<cluster>:<tag>
 *   10.0.0.2 sea.hub
 *   # END sealer:<cluster>:<tag>
 * Pure: returns shell text. /etc/hosts is rewritten in place (`cat tmp > /etc/hosts`), never
 * renamed, because it is often a bind mount.
 */
import { shellQuote } from "../ssh/shell";

export function hostsBlockMarkers(cluster: string, tag: string): { begin: string; end: string } {
  return { begin: `# BEGIN sealer:${cluster}:${tag}`, end: `# END sealer:${cluster}:${tag}` };
}

/** Shell that replaces (or, with no entries, removes) one block. */
export function setHostsBlockCmd(
  cluster: string,
  tag: string,
  entries: Array<{ ip: string; names: string[] }>,
  file = "/etc/hosts",
): string {
  const { begin, end } = hostsBlockMarkers(cluster, tag);
  const body = entries.map((e) => `${e.ip} ${e.names.join(" ")}`);
  const block = entries.length ? [begin, ...body, end].join("\n") + "\n" : "";
  const f = shellQuote(file);
  return [
    `t=$(mktemp)`,
    `awk -v b=${shellQuote(begin)} -v e=${shellQuote(end)} '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' ${f} > "$t"`,
    block ? `printf '%s' ${shellQuote(block)} >> "$t"` : `:`,
    `cat "$t" > ${f}`,
    `rm -f "$t"`,
  ].join(" && ");
}

/** Shell that removes every block of the cluster. */
export function removeClusterHostsBlocksCmd(cluster: string, file = "/etc/hosts"): string {
  const f = shellQuote(file);
  const pre = shellQuote(`# BEGIN sealer:${cluster}:`);
  const post = shellQuote(`# END sealer:${cluster}:`);
  return `[ ! -f ${f} ] || { t=$(mktemp) && awk -v b=${pre} -v e=${post} 'index($0, b) == 1 { skip = 1; next } index($0, e) == 1 { skip = 0; next } !skip' ${f} > "$t" && cat "$t" > ${f} && rm -f "$t"; }`;
}
