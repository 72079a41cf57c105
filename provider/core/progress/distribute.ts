/**
 * Distribution's per-host callback (DistributeProgress) as progress events: one task per blob
 * on its way to a host, ended when the next blob starts or the host has all of them.
 */
import type { DistributeProgress } from "../exec/distribute";
import { progressTask, type ProgressTask } from "./events";

export function distributeProgress(): (p: DistributeProgress) => void {
  const current = new Map<string, { digest: string; task: ProgressTask }>();
  const finish = (host: string) => {
    current.get(host)?.task.end();
    current.delete(host);
  };
  return (p) => {
    if (p.phase !== "send") {
      if (p.phase !== "list") finish(p.host);
      return;
    }
    if (!p.digest) return;
    let c = current.get(p.host);
    if (c?.digest !== p.digest) {
      finish(p.host);
      const label = `${p.digest.slice(7, 19)}${p.via ? ` via ${p.via}` : ""}`;
      c = { digest: p.digest, task: progressTask("distribute", label, p.total, p.host) };
      current.set(p.host, c);
    }
    if (p.bytes !== undefined) c.task.update(p.bytes, p.total);
  };
}
