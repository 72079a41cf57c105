/**
 * The planner's output over a wide set of scenarios, compared in FULL (ids, kinds, hosts, keys,
 * parts, after, reasons, per-kind fields, warnings, replace) with a recorded snapshot. Step keys
 * are what a running cluster remembers: a key that changes re-runs that step on every existing
 * cluster, so a restructuring of the planner must leave this snapshot untouched.
 *
 * Re-record only for an intended change in what the planner plans:
 *   PLAN_GOLDEN_RECORD=1 npx mocha --no-config dist/tests/unit/plan-golden.test.js
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { planDestroy } from "../../provider/core/plan/destroy";
import { recordAll } from "../../provider/core/exec/record";
import { plan, type Desired, type PlanOptions } from "../../provider/core/plan/planner";
import { planRollback, rollbackSpec } from "../../provider/core/plan/rollback";
import { emptyApplied, type AppliedState, type ImageFacts, type Plan } from "../../provider/core/plan/types";
import {
  baseImage,
  changeLayer,
  clusterfile,
  digest,
  installed,
  LAYER,
  M,
  multiPlatform,
  plugin,
  spec,
  W,
} from "../fixtures/clusterfile/plan-world";

const SNAPSHOT = path.join(__dirname, "..", "..", "..", "tests", "fixtures", "plan", "golden.json");

/** Hooks at every phase, with every way of picking hosts (scope, legacy `on` forms, HOSTNAME's IPs). */
const V2 = "sealer.io/v2";
const LEGACY = "sealer.aliyun.com/v1alpha1";
const HOOKS = [
  plugin(V2, "pre-i", "type: SHELL, action: pre-install, data: echo pre-install"),
  plugin(
    V2,
    "masters-only",
    'type: SHELL, action: "post-install|post-init-host", scope: master, data: echo m',
  ),
  plugin(V2, "grow", 'type: SHELL, action: "pre-scaleup|post-scaleup", data: echo grow'),
  plugin(V2, "drain-check", "type: SHELL, action: upgrade-host, data: echo drain"),
  plugin(V2, "after-up", "type: SHELL, action: upgrade, data: echo up $PodCIDR"),
  plugin(V2, "bye", 'type: SHELL, action: "pre-clean-host|post-clean-host", data: echo bye'),
  plugin(V2, "uninstall", 'type: SHELL, action: "pre-uninstall|post-uninstall", scope: node, data: echo un'),
  plugin(V2, "back", "type: SHELL, action: rollback, data: echo back"),
  plugin(V2, "names", `type: HOSTNAME, action: pre-init-host, data: "${W[0]} worker-a\\n"`),
  plugin(LEGACY, "legacy-master0", "type: SHELL, action: PostInstall, on: master0, data: echo legacy"),
  plugin(LEGACY, "legacy-labels", 'type: SHELL, action: PostInstall, on: "disk=ssd", data: echo ssd'),
  plugin(LEGACY, "legacy-ips", `type: SHELL, action: PreInit, on: "${M[1]},${W[1]}", data: echo ips`),
].join("");

const WORKER_EXTRA = `      labels: { disk: ssd }
      taints: [ "dedicated=db:NoSchedule" ]
      env: [ HostOnly=w ]
`;

const v1 = baseImage({
  templateEnvKeys: { "etc/kubeadm.yml.tmpl": ["PodCIDR"], "scripts/init-kube.sh": ["Mode"] },
});
const v129: ImageFacts = { ...changeLayer(v1, LAYER.kubeBin), kubeVersion: "v1.29.0" };
const withHooks = (o: Parameters<typeof clusterfile>[0] = {}) =>
  spec(clusterfile({ docs: HOOKS, workerExtra: WORKER_EXTRA, ...o }));

/** A two-platform image whose arm64 variant differs in the host binaries layer. */
function twoPlatform(tag = "arm-v1"): ImageFacts {
  const arm = v1.layers.map((l, i) =>
    i === LAYER.hostBin ? { ...l, digest: digest(`layer-${i}-${tag}`) } : l,
  );
  return multiPlatform(v1, arm, tag);
}

interface Scenario {
  name: string;
  before?: Desired;
  /** Applied state to plan against (default: installed(before), or empty). */
  applied?: () => AppliedState;
  after: Desired;
  opts?: PlanOptions;
  flow?: "plan" | "destroy" | "rollback";
}

const base: Desired = { cluster: withHooks(), image: v1 };
const env = (extra: string) =>
  spec(clusterfile({ docs: HOOKS, workerExtra: WORKER_EXTRA, extraSpec: extra }));

const scenarios: Scenario[] = [
  { name: "fresh install", after: base },
  {
    name: "fresh install, one master",
    after: { cluster: withHooks({ masters: [M[0]!], workers: [] }), image: v1 },
  },
  { name: "nothing changed", before: base, after: base },
  { name: "scale up a worker", before: { ...base, cluster: withHooks({ workers: [W[0]!] }) }, after: base },
  { name: "scale up a master", before: { ...base, cluster: withHooks({ masters: [M[0]!] }) }, after: base },
  { name: "scale in a worker", before: base, after: { ...base, cluster: withHooks({ workers: [W[0]!] }) } },
  { name: "scale in a master", before: base, after: { ...base, cluster: withHooks({ masters: [M[0]!] }) } },
  {
    name: "role change worker -> master",
    before: base,
    after: { ...base, cluster: withHooks({ masters: [...M, W[1]!], workers: [W[0]!] }) },
  },
  {
    name: "every master replaced",
    before: base,
    after: { ...base, cluster: withHooks({ masters: ["10.0.0.50"] }) },
  },
  { name: "upgrade", before: base, after: { ...base, image: v129 }, opts: { workerUpgradeBatch: 1 } },
  { name: "upgrade, default batch", before: base, after: { ...base, image: v129 } },
  {
    name: "downgrade",
    before: { ...base, image: v129 },
    after: { ...base, image: { ...v1, manifestDigest: digest("back") } },
  },
  ...(
    [
      ["hostScripts", LAYER.hostScripts],
      ["hostBin", LAYER.hostBin],
      ["runtime", LAYER.runtime],
      ["kubeadm", LAYER.kubeadm],
      ["registry", LAYER.registry],
      ["manifests", LAYER.manifests],
      ["charts", LAYER.charts],
      ["appWeb", LAYER.appWeb],
      ["plugins", LAYER.plugins],
      ["other", LAYER.other],
    ] as const
  ).map(([n, i]) => ({
    name: `layer ${n} changed`,
    before: base,
    after: { ...base, image: changeLayer(v1, i) },
  })),
  {
    name: "appNames and cmd",
    before: base,
    after: { ...base, cluster: env("  appNames: [ web ]\n") },
  },
  {
    name: "Clusterfile cmd",
    before: base,
    after: { ...base, cluster: env("  cmd: [ kubectl apply -f manifests/a.yaml ]\n") },
  },
  {
    name: "image CMDS",
    before: base,
    after: { ...base, image: { ...v1, launch: { cmds: ["helm install x charts/x"] } } },
  },
  {
    name: "labels and taints",
    before: base,
    after: {
      ...base,
      cluster: spec(clusterfile({ docs: HOOKS, workerExtra: WORKER_EXTRA.replace("ssd", "hdd") })),
    },
  },
  {
    name: "env: cluster, host and template keys",
    before: base,
    after: { ...base, cluster: env("  env: [ PodCIDR=10.99.0.0/16, Mode=x, IPvsVIPv4=10.103.97.9 ]\n") },
  },
  {
    name: "env without a template map",
    before: { ...base, image: baseImage() },
    after: { cluster: env("  env: [ A=1 ]\n"), image: baseImage() },
  },
  {
    name: "hostAliases",
    before: base,
    after: { ...base, cluster: env("  hostAliases: [ { ip: 10.1.1.1, hostnames: [ a.example ] } ]\n") },
  },
  {
    name: "registry: external",
    after: {
      ...base,
      cluster: env("  registry:\n    externalRegistry: { domain: reg.example.com, port: 5000 }\n"),
    },
  },
  {
    name: "registry: local, not HA",
    before: base,
    after: {
      ...base,
      cluster: env("  registry:\n    localRegistry: { domain: sea.hub, port: 5000, ha: false }\n"),
    },
  },
  {
    name: "Config document",
    before: base,
    after: {
      ...base,
      cluster: spec(
        clusterfile({
          docs:
            HOOKS +
            `---
apiVersion: sealer.io/v2
kind: Config
metadata: { name: web-cfg }
spec: { path: application/apps/web/deploy.yaml, appName: web, data: "a: 1" }
`,
          workerExtra: WORKER_EXTRA,
        }),
      ),
    },
  },
  { name: "renamed cluster", before: base, after: { ...base, cluster: withHooks({ name: "other" }) } },
  {
    name: "image plugins",
    before: base,
    after: {
      ...base,
      image: {
        ...v1,
        plugins: {
          docs: [
            {
              name: "img-check",
              type: "SHELL",
              actions: ["post-install"],
              scope: ["master"],
              data: "x",
              file: "plugins/a.yaml",
            },
          ],
          filesHash: "e".repeat(64),
        },
      },
    },
  },
  {
    name: "two platforms, probed",
    after: {
      ...base,
      image: twoPlatform(),
      hostPlatforms: { [M[0]!]: "linux/amd64", [W[1]!]: "linux/arm64" },
    },
  },
  {
    name: "two platforms, arm variant changed",
    before: { ...base, image: twoPlatform(), hostPlatforms: { [W[1]!]: "linux/arm64" } },
    after: { ...base, image: twoPlatform("arm-v2") },
  },
  {
    name: "drift note",
    applied: () => {
      const a = installed(base);
      delete a.steps[`join-worker:${W[0]}`];
      a.drift = { [`join-worker:${W[0]}`]: "node gone" };
      return a;
    },
    after: base,
  },
  { name: "destroy", before: base, after: base, flow: "destroy" },
  {
    name: "rollback",
    applied: () =>
      recordAll(installed(base), plan({ ...base, image: v129 }, installed(base)), { ...base, image: v129 }),
    after: {
      cluster: rollbackSpec(base.cluster, v1.reference),
      image: { ...v1, manifestDigest: digest("prev") },
    },
    flow: "rollback",
  },
];

function run(s: Scenario): Plan | { error: string } {
  const applied = s.applied
    ? s.applied()
    : s.before
      ? installed(s.before)
      : emptyApplied(s.after.cluster.name);
  try {
    if (s.flow === "destroy") return planDestroy(s.after.cluster, applied, s.after.image.plugins);
    if (s.flow === "rollback") return planRollback(s.after, applied);
    return plan(s.after, applied, s.opts);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe("planner golden: the full plan of every scenario is the recorded one", () => {
  const got: Record<string, unknown> = {};
  for (const s of scenarios) got[s.name] = JSON.parse(JSON.stringify(run(s)));
  if (process.env.PLAN_GOLDEN_RECORD === "1") {
    fs.mkdirSync(path.dirname(SNAPSHOT), { recursive: true });
    fs.writeFileSync(SNAPSHOT, `${JSON.stringify(got, null, 1)}\n`);
  }
  const want = JSON.parse(fs.readFileSync(SNAPSHOT, "utf8")) as Record<string, unknown>;
  it("covers the same scenarios", () => assert.deepEqual(Object.keys(got), Object.keys(want)));
  for (const s of scenarios) it(s.name, () => assert.deepEqual(got[s.name], want[s.name]));
});
