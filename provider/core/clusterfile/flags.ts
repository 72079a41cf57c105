import { throwIfProblems } from "../errors";
import { buildClusterV2 } from "./build";
import { expandRange } from "./ip";
import { normalizeCluster } from "./normalize";
import type { RawClusterV2Spec } from "./schema";
import type { ClusterSpec } from "./types";

/** The `sealer run IMAGE -m … -n …` flags (the same model as a Clusterfile). */
export interface ClusterFlags {
  image?: string;
  /** Comma list; each item an IP or a range "10.0.0.2-10.0.0.5" (or "10.0.0.2-5"). */
  masters?: string;
  nodes?: string;
  user?: string;
  password?: string;
  pk?: string;
  pkPasswd?: string;
  port?: string;
  env?: string[];
  clusterName?: string;
}

export const DEFAULT_CLUSTER_NAME = "my-cluster";

/** Expands "-m 10.0.0.2,10.0.0.5-10.0.0.7" into IPs; problems name the flag and the item. */
export function parseIpList(text: string | undefined, flag: string, problems: string[]): string[] {
  const out: string[] = [];
  for (const item of (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const r = expandRange(item);
    if (typeof r === "string") problems.push(`${flag}: ${r}`);
    else out.push(...r);
  }
  return out;
}

export function clusterFromFlags(flags: ClusterFlags): ClusterSpec {
  const problems: string[] = [];
  const masters = parseIpList(flags.masters, "--masters", problems);
  const nodes = parseIpList(flags.nodes, "--nodes", problems);
  const hosts: NonNullable<RawClusterV2Spec["hosts"]> = [];
  if (masters.length) hosts.push({ ips: masters, roles: ["master"] });
  if (nodes.length) hosts.push({ ips: nodes, roles: ["node"] });
  const hostFlag = (i: number) => (hosts[i]?.roles?.[0] === "master" ? "--masters" : "--nodes");
  const input = buildClusterV2(
    {
      name: flags.clusterName ?? DEFAULT_CLUSTER_NAME,
      spec: {
        image: flags.image,
        env: flags.env,
        hosts,
        ssh: {
          user: flags.user,
          passwd: flags.password,
          pk: flags.pk,
          pkPasswd: flags.pkPasswd,
          port: flags.port,
        },
      },
    },
    (path, msg) => {
      const [a, b, c, d] = path;
      if (a === "metadata") problems.push(`--cluster-name: ${msg}`);
      else if (b === "image") problems.push(`IMAGE: ${msg}`);
      // The flag is named by its place, never by its text: env values may be secrets.
      else if (b === "env")
        problems.push(`--env${typeof c === "number" ? ` (the ${ordinal(c + 1)})` : ""}: ${msg}`);
      else if (b === "ssh") problems.push(`--${c === "port" ? "port" : String(c)}: ${msg}`);
      else if (b === "hosts" && typeof c === "number")
        problems.push(`${hostFlag(c)}${d === "ips" ? "" : ""}: ${msg}`);
      else if (b === "hosts")
        problems.push(
          `--masters: ${msg.replace("at least one host needs roles: [master]", "give at least one master IP with -m")}`,
        );
      else problems.push(`${path.join(".")}: ${msg}`);
    },
    { allowRanges: true },
  );
  throwIfProblems(`invalid flags (${problems.length} problem${problems.length === 1 ? "" : "s"})`, problems);
  return normalizeCluster(input);
}

/** 1 -> "1st", 2 -> "2nd", 11 -> "11th": which of several repeated flags. */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}
