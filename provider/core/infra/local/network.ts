/** The host side of local nodes' networking: the namespaces and subnets in use, and the bridge's isolation. */
import { execFileP, sh } from "./host-cmd";
import { log } from "../../log";
import { listLocalNodes } from "./records";

/**
 * Nodes have no default route, so they reach only their subnet. These FORWARD rules make that
 * hold even if someone adds a route inside a node on a host with IP forwarding on (Docker hosts):
 * nothing is routed between the bridge and any other interface. Best effort: without iptables
 * the missing default route is the only fence, and we say so.
 */
export async function isolateBridge(bridge: string, prefix: string, action: "add" | "del"): Promise<void> {
  const rules = [
    ["-i", bridge, "!", "-o", bridge],
    ["-o", bridge, "!", "-i", bridge],
  ];
  for (const r of rules) {
    const spec = ["FORWARD", ...r, "-m", "comment", "--comment", `sealer-local-${prefix}`, "-j", "DROP"];
    try {
      if (action === "add") await execFileP("iptables", ["-I", ...spec]);
      else while (true) await execFileP("iptables", ["-D", ...spec]); // until no copy is left
    } catch (err) {
      if (action === "add")
        log.warn(
          `could not add the isolation rule for ${bridge} (${(err as { stderr?: string }).stderr?.trim() || String(err)}); the nodes still have no default route`,
        );
    }
  }
}

export async function netnsList(): Promise<string[]> {
  const out = await sh("ip", ["netns", "list"], "listing network namespaces");
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter(Boolean);
}

export async function usedSubnets(): Promise<string[]> {
  const out = await sh("ip", ["-4", "-o", "addr", "show"], "listing addresses");
  const routes = await sh("ip", ["-4", "route", "show"], "listing routes");
  const cidrs: string[] = [];
  for (const l of out.split("\n")) {
    const m = / inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(l);
    if (m) cidrs.push(m[1]!);
  }
  for (const l of routes.split("\n")) {
    const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(l);
    if (m) cidrs.push(m[1]!);
  }
  // Subnets recorded by other local-node groups (their bridges may be down).
  for (const n of await listLocalNodes()) cidrs.push(n.subnet);
  return cidrs;
}
