/**
 * Planner benchmark: plan a cluster of 10, 100 and 1000 hosts (3 masters, the rest workers)
 * with a 30-layer image. Measures a full-install plan, recording it (recordAll), a no-change
 * re-plan, and a re-plan after one app layer changed; prints medians and the growth from 10 to
 * 100 to 1000 hosts (linear growth = 10x per step).
 *
 * Peer on the same kind of work: Ansible deciding that there is nothing to do on N hosts
 * (`ansible-playbook --check`, one no-op task per host, local connection, no network), i.e. the
 * cost a configuration tool pays per host before doing anything. Ansible runs for 10 and 100
 * hosts by default; set BENCH_PLAN_ANSIBLE_1000=1 to include 1000 (minutes).
 *
 *   npm run build && node dist/bench/plan.js
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clusterFromFlags } from "../provider/core/clusterfile";
import { plan, type Desired } from "../provider/core/plan/planner";
import { recordAll } from "../provider/core/exec/record";
import { emptyApplied, type ImageFacts } from "../provider/core/plan/types";

const CLASSES = [
  ["bin/kubeadm", "bin/kubelet", "bin/kubectl"],
  ["bin/crictl"],
  ["scripts/init-kube.sh", "etc/kubelet.service"],
  ["cri/", "scripts/containerd.sh"],
  ["etc/kubeadm.yml.tmpl"],
  ["registry/"],
  ["manifests/"],
  ["charts/"],
  ["plugins/"],
  ["statics/"],
];

function image(tag = "v1"): ImageFacts {
  const layers = Array.from({ length: 30 }, (_, i) => ({
    digest: `sha256:${(i.toString(16).padStart(4, "0") + (i === 25 ? tag : "v1")).padEnd(64, "0")}`,
    size: 1 << 20,
    // 10 system layers, then 20 app layers (one app each).
    paths: i < CLASSES.length ? (CLASSES[i] as string[]) : [`application/apps/app${i}/`],
  }));
  return {
    reference: "registry.example.com/bench/big:1",
    manifestDigest: `sha256:${("m" + tag).padEnd(64, "0")}`,
    imageType: "kube-installer",
    kubeVersion: "v1.28.2",
    containerRuntime: "containerd",
    layers,
    apps: Array.from({ length: 20 }, (_, j) => ({
      name: `app${j + 10}`,
      type: "kube" as const,
      files: ["a.yaml", "b.yaml"],
    })),
    launch: { appNames: Array.from({ length: 20 }, (_, j) => `app${j + 10}`) },
    env: { ImageEnv: "1" },
    platforms: ["linux/amd64"],
  };
}

function ipOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 0}`.replace(/\.0$/, ".250");
}

function cluster(n: number) {
  const ips = Array.from({ length: n }, (_, i) => `10.20.${Math.floor(i / 250)}.${(i % 250) + 2}`);
  void ipOf;
  return clusterFromFlags({
    image: "registry.example.com/bench/big:1",
    masters: ips.slice(0, 3).join(","),
    nodes: ips.slice(3).join(","),
    password: "bench-pw",
    env: ["PodCIDR=100.64.0.0/10", "A=1"],
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function time<T>(runs: number, f: () => T): { ms: number; value: T } {
  let value = f(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    value = f();
    ts.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: median(ts), value };
}

function ansibleCheck(n: number): number | undefined {
  const which = spawnSync("ansible-playbook", ["--version"], { encoding: "utf8" });
  if (which.status !== 0) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-plan-ansible-"));
  try {
    const hosts = Array.from(
      { length: n },
      (_, i) =>
        `h${i} ansible_connection=local ansible_python_interpreter=${process.env.BENCH_PYTHON ?? "/usr/bin/python3"}`,
    );
    fs.writeFileSync(path.join(dir, "inventory"), `[all]\n${hosts.join("\n")}\n`);
    fs.writeFileSync(
      path.join(dir, "play.yml"),
      "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: nothing to change\n      ansible.builtin.assert: { that: [ true ], quiet: true }\n",
    );
    const t = process.hrtime.bigint();
    const r = spawnSync(
      "ansible-playbook",
      ["-i", path.join(dir, "inventory"), "--check", "-f", "5", path.join(dir, "play.yml")],
      {
        encoding: "utf8",
        env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: "False", ANSIBLE_STDOUT_CALLBACK: "null" },
        timeout: 900_000,
      },
    );
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) {
      console.log(`  ansible failed (${r.status}): ${(r.stderr || r.stdout).slice(0, 300)}`);
      return undefined;
    }
    return ms;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const sizes = [10, 100, 1000];
const rows: Array<Record<string, number>> = [];
console.log("planner: 30-layer image, 3 masters + (N-3) workers; median of runs, milliseconds");
for (const n of sizes) {
  const runs = n >= 1000 ? 5 : 15;
  const d: Desired = { cluster: cluster(n), image: image() };
  const full = time(runs, () => plan(d, emptyApplied(d.cluster.name)));
  const rec = time(runs, () => recordAll(emptyApplied(d.cluster.name), full.value, d));
  const noop = time(runs, () => plan(d, rec.value));
  if (noop.value.steps.length !== 0)
    throw new Error(`no-change re-plan planned ${noop.value.steps.length} steps`);
  const d2: Desired = { cluster: d.cluster, image: image("v2") };
  const change = time(runs, () => plan(d2, rec.value));
  const json = JSON.stringify(full.value).length;
  rows.push({
    n,
    full: full.ms,
    record: rec.ms,
    noop: noop.ms,
    change: change.ms,
    steps: full.value.steps.length,
    changeSteps: change.value.steps.length,
  });
  console.log(
    `  N=${String(n).padStart(4)}: full install plan ${full.ms.toFixed(1)} ms (${full.value.steps.length} steps, ${(json / 1024).toFixed(0)} KiB JSON), recordAll ${rec.ms.toFixed(1)} ms, no-change re-plan ${noop.ms.toFixed(1)} ms (0 steps), one app layer changed ${change.ms.toFixed(1)} ms (${change.value.steps.length} steps)`,
  );
}
console.log("growth (linear would be 10.0x per step):");
for (let i = 1; i < rows.length; i++) {
  const a = rows[i - 1] as Record<string, number>;
  const b = rows[i] as Record<string, number>;
  const g = (k: string) => ((b[k] as number) / (a[k] as number)).toFixed(1) + "x";
  console.log(
    `  ${a.n} -> ${b.n} hosts: full ${g("full")}, recordAll ${g("record")}, no-change ${g("noop")}, one-layer change ${g("change")}`,
  );
}

console.log("peer: ansible-playbook --check, one no-op task per host (local connection):");
for (const n of process.env.BENCH_PLAN_ANSIBLE_1000 ? sizes : sizes.slice(0, 2)) {
  const ms = ansibleCheck(n);
  const ours = rows.find((r) => r.n === n)?.noop;
  if (ms === undefined) console.log(`  N=${n}: ansible-playbook not available or failed`);
  else
    console.log(
      `  N=${String(n).padStart(4)}: ansible ${ms.toFixed(0)} ms; our no-change re-plan ${ours?.toFixed(1)} ms; ratio ansible/ours ${(ms / (ours ?? 1)).toFixed(0)}x`,
    );
}
