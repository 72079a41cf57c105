import * as assert from "node:assert/strict";
import { UserError } from "../../provider/core/errors";
import { plan, type Desired } from "../../provider/core/plan/planner";
import { recordAll, recordStep } from "../../provider/core/exec/record";
import { emptyApplied, type AppliedState, type ImageFacts, type Plan } from "../../provider/core/plan/types";
import {
  baseImage,
  changeLayer,
  clusterfile,
  ids,
  installed,
  LAYER,
  M,
  spec,
  W,
} from "../fixtures/clusterfile/plan-world";
import { pick, rng } from "../harness/random";

/** Structural invariants every plan must satisfy. */
function checkInvariants(p: Plan): void {
  const pos = new Map<string, number>();
  p.steps.forEach((s, i) => {
    assert.ok(!pos.has(s.id), `duplicate step id ${s.id}`);
    pos.set(s.id, i);
  });
  for (const s of p.steps) {
    assert.ok(s.hosts.length > 0, `${s.id} has no hosts`);
    assert.ok(s.reason.length > 0, `${s.id} has no reason`);
    for (const a of s.after) {
      assert.ok(pos.has(a), `${s.id} waits for ${a}, which is not in the plan`);
      assert.ok(
        (pos.get(a) as number) < (pos.get(s.id) as number),
        `${s.id} is listed before ${a} it waits for`,
      );
    }
  }
  const joins = p.steps.filter((s) => s.kind === "join-master");
  for (let i = 1; i < joins.length; i++)
    assert.ok(
      joins[i]?.after.includes(joins[i - 1]?.id as string),
      `masters join one at a time: ${joins[i]?.id}`,
    );
  const workerJoins = p.steps.filter((s) => s.kind === "join-worker");
  for (const w of workerJoins)
    assert.ok(!w.after.some((a) => a.startsWith("join-worker:")), `workers join in parallel: ${w.id}`);
  const del = p.steps.find((s) => s.kind === "delete-node");
  for (const c of p.steps.filter((s) => s.kind === "clean-host"))
    assert.ok(del?.after.includes(c.id), `${c.id} before kubectl delete node`);
}

function replan(d: Desired, applied: AppliedState): { p: Plan; after: AppliedState } {
  const p = plan(d, applied);
  checkInvariants(p);
  const after = recordAll(applied, p, d);
  const again = plan(d, after);
  assert.deepEqual(
    again.steps.map((s) => `${s.id}: ${s.reason}`),
    [],
    "planning again after a full apply gives zero steps",
  );
  return { p, after };
}

describe("planner: full install", () => {
  const img = baseImage();
  const d: Desired = { cluster: spec(clusterfile()), image: img };
  const p = plan(d, emptyApplied("demo"));

  it("is a valid ordered graph", () => checkInvariants(p));

  it("inits master0, joins masters one at a time, workers in parallel behind the last master", () => {
    const init = p.steps.find((s) => s.kind === "init-master");
    assert.deepEqual(init?.hosts, [M[0]]);
    assert.deepEqual(
      p.steps.filter((s) => s.kind === "join-master").map((s) => s.hosts[0]),
      [M[1]],
    );
    const jw = p.steps.filter((s) => s.kind === "join-worker");
    assert.deepEqual(
      jw.map((s) => s.hosts[0]),
      W,
    );
    for (const s of jw)
      assert.ok(s.after.includes(`join-master:${M[1]}`) && s.after.includes(`worker-vip:${s.hosts[0]}`));
  });

  it("every kind a full install needs is there, once per host where per host", () => {
    const count = (k: string) => p.steps.filter((s) => s.kind === k).length;
    assert.deepEqual(
      Object.fromEntries(
        [
          "distribute",
          "init-host",
          "container-runtime",
          "registry",
          "registry-client",
          "kubeadm-config",
          "init-master",
          "join-master",
          "join-worker",
          "worker-vip",
          "node-labels",
          "launch-app",
          "save-clusterfile",
          "hook",
        ].map((k) => [k, count(k)]),
      ),
      {
        distribute: 4,
        "init-host": 4,
        "container-runtime": 4,
        registry: 2,
        "registry-client": 4,
        "kubeadm-config": 1,
        "init-master": 1,
        "join-master": 1,
        "join-worker": 2,
        "worker-vip": 2,
        "node-labels": 4,
        "launch-app": 2,
        "save-clusterfile": 1,
        hook: 5,
      },
    );
    assert.equal(p.steps[p.steps.length - 1]?.kind, "save-clusterfile");
  });

  it("hooks: pre-init-host on each host before its init, post-install once on master0 after the labels", () => {
    for (const h of [...M, ...W])
      assert.ok(
        p.steps.find((s) => s.id === `init-host:${h}`)?.after.includes(`hook:pre-init-host:sysctl:${h}`),
      );
    const post = p.steps.find((s) => s.id === "hook:post-install:smoke");
    assert.deepEqual(post?.hosts, [M[0]]);
    for (const h of [...M, ...W]) assert.ok(post?.after.includes(`node-labels:${h}`));
  });

  it("launches apps in LAUNCH order with their default commands", () => {
    const apps = p.steps.filter((s) => s.kind === "launch-app");
    assert.deepEqual(
      apps.map((s) => (s.kind === "launch-app" ? [s.app, s.cmds] : [])),
      [
        [
          "web",
          [
            "kubectl apply -f application/apps/web/deploy.yaml",
            "kubectl apply -f application/apps/web/svc.yaml",
          ],
        ],
        ["db", ["helm upgrade --install db application/apps/db"]],
      ],
    );
    assert.ok(apps[1]?.after.includes("launch-app:web"));
  });

  it("reasons say why: new cluster, master0", () => {
    assert.equal(
      p.steps.find((s) => s.id === `distribute:${M[0]}`)?.reason,
      `new cluster: host ${M[0]} as master0`,
    );
    assert.equal(
      p.steps.find((s) => s.id === `join-worker:${W[0]}`)?.reason,
      `new cluster: host ${W[0]} as node`,
    );
  });

  it("plans zero steps the second time", () => replan(d, emptyApplied("demo")));

  it("is deterministic", () => assert.deepEqual(plan(d, emptyApplied("demo")), p));

  it("a failed apply resumes with exactly the unfinished steps", () => {
    for (const k of [1, 5, 17, 23, p.steps.length - 1]) {
      let s = emptyApplied("demo");
      for (const step of p.steps.slice(0, k)) s = recordStep(s, step, d);
      assert.deepEqual(
        ids(plan(d, s)),
        p.steps
          .slice(k)
          .map((x) => x.id)
          .sort(),
        `after ${k} steps`,
      );
    }
  });

  it("recordStep is pure", () => {
    const s0 = emptyApplied("demo");
    const before = JSON.stringify(s0);
    recordStep(s0, p.steps[0] as Plan["steps"][number], d);
    assert.equal(JSON.stringify(s0), before);
  });
});

describe("planner: membership changes", () => {
  const img = baseImage();
  const d0: Desired = { cluster: spec(clusterfile()), image: img };

  it("a worker becoming a master is cleaned, deleted, then joined as master", () => {
    const h = W[1] as string;
    const d1: Desired = {
      cluster: spec(clusterfile({ masters: [...M, h], workers: [W[0] as string] })),
      image: img,
    };
    const { p } = replan(d1, installed(d0));
    const at = (id: string) => p.steps.findIndex((s) => s.id === id);
    assert.ok(at(`clean-host:${h}`) >= 0 && at("delete-node") > at(`clean-host:${h}`));
    assert.ok(at(`distribute:${h}`) > at("delete-node"), "re-distributed after the removal");
    assert.ok(at(`join-master:${h}`) > at("delete-node"));
    assert.ok(!p.steps.some((s) => s.id === `join-worker:${h}`));
    assert.match(p.steps[at(`join-master:${h}`)]?.reason ?? "", /changes role node -> master/);
  });

  it("replacing every master is refused with a reason", () => {
    const p = plan({ cluster: spec(clusterfile({ masters: ["10.0.0.50"] })), image: img }, installed(d0));
    assert.match(p.replace ?? "", /every master of the running cluster would be removed/);
    assert.deepEqual(p.steps, []);
  });

  it("IPv6 hosts are removed cleanly (ids with colons)", () => {
    const c = (ws: string[]) => spec(clusterfile({ masters: ["fd00::2"], workers: ws }));
    const a = installed({ cluster: c(["fd00::9", "fd00::a"]), image: img });
    const { after } = replan({ cluster: c(["fd00::9"]), image: img }, a);
    assert.deepEqual(Object.keys(after.hosts).sort(), ["fd00::2", "fd00::9"]);
    assert.ok(!Object.keys(after.steps).some((id) => id.endsWith(":fd00::a")));
  });

  it("a removed host that comes back is installed again from scratch", () => {
    const a1 = installed(d0);
    const { after: a2 } = replan(
      { cluster: spec(clusterfile({ workers: [W[0] as string] })), image: img },
      a1,
    );
    const { p } = replan(d0, a2);
    assert.ok(p.steps.some((s) => s.id === `join-worker:${W[1]}`));
    const dist = p.steps.find((s) => s.id === `distribute:${W[1]}`);
    assert.equal(dist?.reason, `host ${W[1]} added as node`);
    assert.deepEqual(
      dist?.kind === "distribute" && dist.layers,
      img.layers.map((l) => l.digest),
    );
  });

  it("count-only (v1 cloud) specs plan nothing until Infra has created hosts", () => {
    const text =
      "apiVersion: sealer.aliyun.com/v1alpha1\nkind: Cluster\nmetadata: { name: cloudy }\nspec:\n  image: app:1\n  provider: ALI_CLOUD\n  masters: { count: 1 }\n";
    const p = plan({ cluster: spec(text), image: img }, emptyApplied("cloudy"));
    assert.deepEqual(p.steps, []);
    assert.match(p.warnings[0] ?? "", /create them with Infra first/);
  });

  it("an app in appNames that the image lacks is a user error", () => {
    assert.throws(
      () =>
        plan(
          { cluster: spec(clusterfile({ extraSpec: "  appNames: [ web, nope ]\n" })), image: img },
          emptyApplied("demo"),
        ),
      (e: Error) =>
        e instanceof UserError &&
        /app "nope" is not in image registry.example.com\/team\/saas:1.0 \(its apps: web, db\)/.test(
          e.message,
        ),
    );
  });
});

// ---- property tests (seeded, no extra dependency)
function shuffle<T>(r: () => number, xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

interface Model {
  masters: string[];
  workers: Array<{ ip: string; labels: Record<string, string>; taints: string[]; env: string[] }>;
  env: string[];
  aliases: boolean;
}

function randomModel(r: () => number): Model {
  const pool = shuffle(
    r,
    Array.from({ length: 60 }, (_, i) => `10.1.${Math.floor(i / 20)}.${(i % 20) + 2}`),
  );
  const nm = 1 + Math.floor(r() * 4);
  const nw = Math.floor(r() * 10);
  return {
    masters: pool.slice(0, nm),
    workers: pool.slice(nm, nm + nw).map((ip) => ({
      ip,
      labels: (r() < 0.3 ? { tier: pick(r, ["a", "b"]) } : {}) as Record<string, string>,
      taints: r() < 0.2 ? ["dedicated=x:NoSchedule"] : [],
      env: r() < 0.2 ? [`Disk=${pick(r, ["/dev/vdb", "/dev/vdc"])}`] : [],
    })),
    env: shuffle(r, ["A=1", "B=2", `C=${pick(r, ["x", "y"])}`]).slice(0, 1 + Math.floor(r() * 3)),
    aliases: r() < 0.3,
  };
}

/** Renders a model as a Clusterfile; `r` shuffles what carries no meaning (worker and env order, host grouping). */
function render(m: Model, r?: () => number): string {
  const sh = <T>(xs: T[]) => (r ? shuffle(r, xs) : xs);
  const entries: string[] = [];
  // Masters keep their relative order (master0 first) but may be split across entries.
  let i = 0;
  while (i < m.masters.length) {
    const n = r ? 1 + Math.floor(r() * (m.masters.length - i)) : m.masters.length;
    entries.push(`    - ips: [ ${m.masters.slice(i, i + n).join(", ")} ]\n      roles: [ master ]\n`);
    i += n;
  }
  const workerEntries = m.workers.map((w) => {
    let e = `    - ips: [ ${w.ip} ]\n      roles: [ node ]\n`;
    const labels = sh(Object.entries(w.labels));
    if (labels.length) e += `      labels: { ${labels.map(([k, v]) => `${k}: ${v}`).join(", ")} }\n`;
    if (w.taints.length)
      e += `      taints: [ ${sh(w.taints)
        .map((t) => JSON.stringify(t))
        .join(", ")} ]\n`;
    if (w.env.length) e += `      env: [ ${sh(w.env).join(", ")} ]\n`;
    return e;
  });
  // Workers may come before, between or after master entries, without changing master order.
  const all = [...entries];
  for (const w of sh(workerEntries)) all.splice(r ? Math.floor(r() * (all.length + 1)) : all.length, 0, w);
  return `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: prop }
spec:
  image: app:1
  env: [ ${sh(m.env).join(", ")} ]
${m.aliases ? "  hostAliases: [ { ip: 10.9.0.1, hostnames: [ a.local ] } ]\n" : ""}  hosts:
${all.join("")}`;
}

function mutate(r: () => number, m: Model, img: ImageFacts): { m: Model; img: ImageFacts } {
  const next: Model = structuredClone(m);
  let image = img;
  const free = () => `10.2.${Math.floor(r() * 200)}.${2 + Math.floor(r() * 200)}`;
  const used = () => new Set([...next.masters, ...next.workers.map((w) => w.ip)]);
  switch (Math.floor(r() * 9)) {
    case 0: {
      const ip = free();
      if (!used().has(ip)) next.workers.push({ ip, labels: {}, taints: [], env: [] });
      break;
    }
    case 1:
      if (next.workers.length) next.workers.splice(Math.floor(r() * next.workers.length), 1);
      break;
    case 2: {
      const ip = free();
      if (!used().has(ip)) next.masters.push(ip);
      break;
    }
    case 3:
      if (next.masters.length > 1) next.masters.splice(1 + Math.floor(r() * (next.masters.length - 1)), 1);
      break;
    case 4:
      if (next.workers.length)
        (next.workers[Math.floor(r() * next.workers.length)] as Model["workers"][number]).labels = {
          tier: pick(r, ["a", "b", "c"]),
        };
      break;
    case 5:
      next.env = [`A=${Math.floor(r() * 3)}`, ...next.env.filter((e) => !e.startsWith("A="))];
      break;
    case 6:
      image = changeLayer(image, Math.floor(r() * image.layers.length), `m${Math.floor(r() * 1e6)}`);
      break;
    case 7:
      image = { ...image, kubeVersion: pick(r, ["v1.28.2", "v1.29.0", "v1.30.1"]) };
      break;
    default:
      next.aliases = !next.aliases;
  }
  return { m: next, img: image };
}

describe("planner: properties (seeded)", () => {
  const img0 = baseImage({
    templateEnvKeys: { "etc/kubeadm.yml.tmpl": ["A"], "application/apps/web/deploy.yaml.tmpl": ["B", "C"] },
  });

  it("plan(x, record(plan(x, applied))) is empty along random change sequences", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      let m = randomModel(r);
      let img = img0;
      let applied = emptyApplied("prop");
      for (let round = 0; round < 6; round++) {
        const d: Desired = { cluster: spec(render(m)), image: img };
        const p = plan(d, applied);
        assert.equal(p.replace, undefined, `seed ${seed} round ${round}: ${p.replace}`);
        checkInvariants(p);
        applied = recordAll(applied, p, d);
        const again = plan(d, applied);
        assert.deepEqual(
          again.steps.map((s) => `${s.id}: ${s.reason}`),
          [],
          `seed ${seed} round ${round}`,
        );
        ({ m, img } = mutate(r, m, img));
      }
    }
  });

  it("the plan does not depend on host or env order in the file", () => {
    for (let seed = 100; seed < 140; seed++) {
      const r = rng(seed);
      const m = randomModel(r);
      const d = (text: string): Desired => ({ cluster: spec(text), image: img0 });
      const canonical = plan(d(render(m)), emptyApplied("prop"));
      const applied = installed(d(render(m)));
      const changed = mutate(r, m, img0);
      const canonical2 = plan({ cluster: spec(render(changed.m)), image: changed.img }, applied);
      for (let k = 0; k < 3; k++) {
        assert.deepEqual(
          plan(d(render(m, r)), emptyApplied("prop")),
          canonical,
          `seed ${seed}: full install`,
        );
        assert.deepEqual(
          plan({ cluster: spec(render(changed.m, r)), image: changed.img }, applied),
          canonical2,
          `seed ${seed}: change`,
        );
      }
    }
  });

  it("changing one layer on any random cluster re-distributes (naming that layer) and re-runs the same steps on every host", () => {
    for (let seed = 200; seed < 215; seed++) {
      const r = rng(seed);
      const m = randomModel(r);
      const d: Desired = { cluster: spec(render(m)), image: img0 };
      const applied = installed(d);
      const p = plan({ ...d, image: changeLayer(img0, LAYER.appWeb) }, applied);
      assert.deepEqual(
        p.steps.filter((s) => s.kind !== "distribute").map((s) => s.id),
        ["launch-app:web", "save-clusterfile"],
      );
      const changed = changeLayer(img0, LAYER.appWeb).layers[LAYER.appWeb]!.digest.slice(7, 19);
      for (const s of p.steps)
        if (s.kind === "distribute")
          assert.match(s.reason, new RegExp(`^layer sha256:${changed}… changed application/apps/web/$`));
    }
  });
});
