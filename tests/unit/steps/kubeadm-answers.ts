/** master0 answering kubeadm as a real control plane does, and reading the kubeadm documents a step wrote. */
import { strict as assert } from "node:assert";
import * as yaml from "js-yaml";
import { M0, type World } from "./world";

export const CA_HASH = `sha256:${"c".repeat(64)}`;
export const ADMIN = "/etc/kubernetes/admin.conf";

/** kubeadm init prints the join command with the CA hash and writes admin.conf; token create prints a join command. */
export function kubeadmAnswers(w: World): void {
  w.io.answer({
    host: M0,
    match: /^kubeadm init (?!phase)/,
    writes: { [ADMIN]: "apiVersion: v1\nkind: Config\n" },
    stdout: `Your Kubernetes control-plane has initialized successfully!\n  kubeadm join apiserver.cluster.local:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash ${CA_HASH}\n`,
  });
  w.io.answer({
    host: M0,
    match: /^kubeadm token create /,
    stdout: `kubeadm join apiserver.cluster.local:6443 --token x --discovery-token-ca-cert-hash ${CA_HASH}\n`,
  });
}

export const puts = (w: World, ip: string) => w.io.on(ip).flatMap((c) => (c.op === "put" ? [c] : []));

/** The kubeadm document of a kind, walked by key paths. */
export function doc(text: string, kind: string): (path: string) => unknown {
  const d = (yaml.loadAll(text) as Array<Record<string, unknown>>).find((x) => x.kind === kind);
  assert.ok(d, `no ${kind} in:\n${text}`);
  return (path) =>
    path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], d);
}
