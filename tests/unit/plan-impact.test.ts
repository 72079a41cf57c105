/**
 * One test per row of the impact table (provider/core/plan/impact.ts): a change of one kind
 * on an installed cluster plans exactly the listed steps, and no others.
 */
import * as assert from "node:assert/strict";
import { plan, type Desired } from "../../provider/core/plan/planner";
import { recordAll } from "../../provider/core/exec/record";
import type { HookPhase } from "../../provider/core/clusterfile/types";
import { emptyApplied, type ImageFacts } from "../../provider/core/plan/types";
import {
  baseImage,
  changeLayer,
  clusterfile,
  digest,
  distributeAll,
  each,
  ids,
  installed,
  LAYER,
  M,
  spec,
  W,
} from "../fixtures/clusterfile/plan-world";

const ALL = [...M, ...W];
const D = distributeAll(ALL);
const SAVE = "save-clusterfile";

function check(before: Desired, after: Desired, expected: string[]): ReturnType<typeof plan> {
  const applied = installed(before);
  const p = plan(after, applied);
  assert.equal(p.replace, undefined, p.replace);
  assert.deepEqual(ids(p), [...expected].sort());
  return p;
}

describe("impact table: layer paths", () => {
  const cluster = spec(clusterfile());
  const img = baseImage();
  const rows: Array<[string, number, string[]]> = [
    [
      "bin/kube* -> upgrade flow",
      LAYER.kubeBin,
      [...D, ...each("upgrade-master", M), ...each("upgrade-worker", W), SAVE],
    ],
    ["bin/ other -> init-host", LAYER.hostBin, [...D, ...each("init-host", ALL), SAVE]],
    ["scripts/, etc/ -> init-host", LAYER.hostScripts, [...D, ...each("init-host", ALL), SAVE]],
    [
      "cri/, scripts/containerd.sh -> container-runtime",
      LAYER.runtime,
      [...D, ...each("container-runtime", ALL), SAVE],
    ],
    [
      "etc/kubeadm* -> kubeadm-config + upgrade masters with config",
      LAYER.kubeadm,
      [...D, "kubeadm-config", ...each("upgrade-master", M), SAVE],
    ],
    ["registry/ -> registry on the registry hosts", LAYER.registry, [...D, ...each("registry", M), SAVE]],
    ["manifests/ -> no app launch that does not use it", LAYER.manifests, [...D, SAVE]],
    ["charts/ -> no app launch that does not use it", LAYER.charts, [...D, SAVE]],
    ["application/apps/web/ -> launch-app:web only", LAYER.appWeb, [...D, "launch-app:web", SAVE]],
    ["application/apps/db/ -> launch-app:db only", LAYER.appDb, [...D, "launch-app:db", SAVE]],
    [
      "plugins/ -> hooks",
      LAYER.plugins,
      [...D, ...ALL.map((h) => `hook:pre-init-host:sysctl:${h}`), "hook:post-install:smoke", SAVE],
    ],
    ["other paths -> distribute only", LAYER.other, [...D, SAVE]],
    [
      "statics/ -> init-host + kubeadm",
      LAYER.statics,
      [...D, ...each("init-host", ALL), "kubeadm-config", ...each("upgrade-master", M), SAVE],
    ],
  ];
  for (const [name, layer, expected] of rows) {
    it(name, () => {
      const p = check({ cluster, image: img }, { cluster, image: changeLayer(img, layer) }, expected);
      const dist = p.steps.find((s) => s.kind === "distribute");
      assert.ok(dist && dist.kind === "distribute");
      assert.match(
        dist.reason,
        new RegExp(`^layer sha256:${digest(`layer-${layer}-v2`).slice(7, 19)}… changed `),
      );
    });
  }

  it("manifests/ -> launch-cmds when the launch commands use it", () => {
    const c = spec(clusterfile({ extraSpec: '  cmd: [ "kubectl apply -f manifests/app.yaml" ]\n' }));
    check({ cluster: c, image: img }, { cluster: c, image: changeLayer(img, LAYER.manifests) }, [
      ...D,
      "launch-cmds",
      SAVE,
    ]);
    check({ cluster: c, image: img }, { cluster: c, image: changeLayer(img, LAYER.charts) }, [
      ...D,
      "launch-cmds",
      SAVE,
    ]);
    check({ cluster: c, image: img }, { cluster: c, image: changeLayer(img, LAYER.appWeb) }, [...D, SAVE]);
  });

  it("reason of a re-launch names the layer and the path", () => {
    const p = plan({ cluster, image: changeLayer(img, LAYER.appWeb) }, installed({ cluster, image: img }));
    const step = p.steps.find((s) => s.id === "launch-app:web");
    assert.equal(
      step?.reason,
      `layer sha256:${digest("layer-8-v2").slice(7, 19)}… changed application/apps/web/`,
    );
  });
});

describe("impact table: Clusterfile fields", () => {
  const img = baseImage();
  const base = spec(clusterfile());
  const d0: Desired = { cluster: base, image: img };
  const withCluster = (text: string, image: ImageFacts = img): Desired => ({ cluster: spec(text), image });

  it("nothing changed -> zero steps", () => check(d0, d0, []));

  it("worker added -> its host steps and join only", () => {
    const h = "10.0.0.12";
    const p = check(d0, withCluster(clusterfile({ workers: [...W, h] })), [
      `distribute:${h}`,
      `hook:pre-init-host:sysctl:${h}`,
      `init-host:${h}`,
      `container-runtime:${h}`,
      `registry-client:${h}`,
      `worker-vip:${h}`,
      `join-worker:${h}`,
      `node-labels:${h}`,
      SAVE,
    ]);
    assert.equal(p.steps.find((s) => s.id === `join-worker:${h}`)?.reason, `host ${h} added as node`);
  });

  it("master added -> join-master, registry on it, registry clients, kubeadm-config, worker VIP re-point", () => {
    const h = "10.0.0.4";
    check(d0, withCluster(clusterfile({ masters: [...M, h] })), [
      `distribute:${h}`,
      `hook:pre-init-host:sysctl:${h}`,
      `init-host:${h}`,
      `container-runtime:${h}`,
      `registry:${h}`,
      ...each("registry-client", [...ALL, h]),
      "kubeadm-config",
      `join-master:${h}`,
      `node-labels:${h}`,
      ...each("worker-vip", W),
      SAVE,
    ]);
  });

  it("masters listed in another order -> kubeadm-config only (no VIP or registry churn)", () => {
    check(d0, withCluster(clusterfile({ masters: [M[1] as string, M[0] as string] })), [
      "kubeadm-config",
      SAVE,
    ]);
  });

  it("worker removed -> clean-host then delete-node", () => {
    const p = check(d0, withCluster(clusterfile({ workers: [W[0] as string] })), [
      `clean-host:${W[1]}`,
      "delete-node",
      SAVE,
    ]);
    const del = p.steps.find((s) => s.kind === "delete-node");
    assert.ok(del?.kind === "delete-node");
    assert.deepEqual(del.nodes, [W[1]]);
    assert.deepEqual(del.hosts, [M[0]], "runs from a remaining master");
    assert.ok(del.after.includes(`clean-host:${W[1]}`), "hosts are cleaned before kubectl delete node");
  });

  it("master removed -> clean, delete, worker VIP re-pointed after the delete", () => {
    const p = check(withCluster(clusterfile({ masters: [...M, "10.0.0.4"] })), d0, [
      "clean-host:10.0.0.4",
      "delete-node",
      ...each("registry-client", ALL),
      "kubeadm-config",
      ...each("worker-vip", W),
      SAVE,
    ]);
    for (const w of W)
      assert.ok(p.steps.find((s) => s.id === `worker-vip:${w}`)?.after.includes("delete-node"));
  });

  it("labels / taints -> node-labels of that host only", () => {
    check(d0, withCluster(clusterfile({ workerExtra: "      labels: { disk: ssd }\n" })), [
      ...each("node-labels", W),
      SAVE,
    ]);
    const one = clusterfile({ workers: [] }).replace(
      "---",
      `    - ips: [ ${W[0]} ]\n      roles: [ node ]\n      taints: [ "dedicated=db:NoSchedule" ]\n    - ips: [ ${W[1]} ]\n      roles: [ node ]\n---`,
    );
    check(d0, withCluster(one), [`node-labels:${W[0]}`, SAVE]);
  });

  it("hostAliases -> host-aliases on every host", () => {
    check(
      d0,
      withCluster(
        clusterfile({ extraSpec: "  hostAliases: [ { ip: 10.9.9.9, hostnames: [ nfs.local ] } ]\n" }),
      ),
      [...each("host-aliases", ALL), SAVE],
    );
  });

  it("ssh credentials -> no step", () => {
    check(d0, withCluster(clusterfile().replace("ssh-pass-1", "ssh-pass-2")), []);
  });

  it("registry settings -> registry, registry-client (and the kubeadm config that names the registry)", () => {
    check(
      d0,
      withCluster(
        clusterfile({
          extraSpec: "  registry: { localRegistry: { username: admin, password: reg-pw-1 } }\n",
        }),
      ),
      [...each("registry", M), ...each("registry-client", ALL), "kubeadm-config", SAVE],
    );
  });

  it("a registry password change is seen (through a fingerprint, not the value)", () => {
    const a = withCluster(
      clusterfile({ extraSpec: "  registry: { localRegistry: { username: admin, password: reg-pw-1 } }\n" }),
    );
    const b = withCluster(
      clusterfile({ extraSpec: "  registry: { localRegistry: { username: admin, password: reg-pw-2 } }\n" }),
    );
    const p = check(a, b, [...each("registry", M), ...each("registry-client", ALL), "kubeadm-config", SAVE]);
    assert.ok(!JSON.stringify(p).includes("reg-pw-2"));
  });

  it("Config document for an app -> distribute and that app's launch", () => {
    const doc =
      "---\napiVersion: sealer.io/v2\nkind: Config\nmetadata: { name: web-values }\nspec:\n  path: application/apps/web/values.yaml\n  data: 'replicas: 3'\n";
    check(d0, withCluster(clusterfile({ docs: doc })), [...D, "launch-app:web", SAVE]);
  });

  it("Plugin document -> that plugin's hook steps", () => {
    check(d0, withCluster(clusterfile().replace("ip_forward=1", "ip_forward=0")), [
      ...ALL.map((h) => `hook:pre-init-host:sysctl:${h}`),
      SAVE,
    ]);
  });

  it("kubeadm ClusterConfiguration -> kubeadm-config and upgrade of the masters with config", () => {
    const doc =
      "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-maxage: '30'\n";
    const p = check(d0, withCluster(clusterfile({ docs: doc })), [
      "kubeadm-config",
      ...each("upgrade-master", M),
      SAVE,
    ]);
    assert.match(p.steps.find((s) => s.kind === "upgrade-master")?.reason ?? "", /upgrade with config/);
  });

  it("kubeadm InitConfiguration -> kubeadm-config only", () => {
    const doc =
      "---\napiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n  criSocket: unix:///run/containerd/containerd.sock\n";
    const p = check(d0, withCluster(clusterfile({ docs: doc })), ["kubeadm-config", SAVE]);
    assert.equal(p.steps.find((s) => s.id === "kubeadm-config")?.reason, "kubeadm InitConfiguration changed");
    assert.deepEqual(p.warnings, [
      "kubeadm InitConfiguration changed: it applies to hosts joined from now on; hosts already in the cluster keep their configuration",
    ]);
  });

  it("cmd -> launch-cmds instead of the apps", () => {
    check(d0, withCluster(clusterfile({ extraSpec: '  cmd: [ "kubectl apply -f manifests/x.yaml" ]\n' })), [
      "launch-cmds",
      SAVE,
    ]);
  });

  it("appNames dropping an app -> no step for it, a warning", () => {
    const p = check(d0, withCluster(clusterfile({ extraSpec: "  appNames: [ web ]\n" })), [SAVE]);
    assert.deepEqual(p.warnings, [
      "app db is no longer launched: what it installed stays in the cluster (no uninstall step; remove it with kubectl/helm on 10.0.0.2)",
    ]);
  });

  it("image reference only (same digest) -> save-clusterfile only", () => {
    check(d0, withCluster(clusterfile().replace("team/saas:1.0", "team/saas:stable")), [SAVE]);
  });

  it("new kube version -> upgrade sequence: master0 first, masters one at a time, workers in batches", () => {
    const img2 = { ...changeLayer(img, LAYER.kubeBin), kubeVersion: "v1.29.1" };
    const p = check(d0, { cluster: base, image: img2 }, [
      ...D,
      "kubeadm-config",
      ...each("upgrade-master", M),
      ...each("upgrade-worker", W),
      SAVE,
    ]);
    const up = p.steps.filter((s) => s.kind === "upgrade-master" || s.kind === "upgrade-worker");
    assert.deepEqual(
      up.map((s) => s.id),
      [
        "upgrade-master:10.0.0.2",
        "upgrade-master:10.0.0.3",
        "upgrade-worker:10.0.0.10",
        "upgrade-worker:10.0.0.11",
      ],
    );
    const [m0, m1, w0, w1] = up;
    assert.ok(m0?.kind === "upgrade-master" && m0.first && m0.version === "v1.29.1");
    assert.ok(m1?.kind === "upgrade-master" && !m1.first && m1.after.includes(m0.id));
    assert.ok(w0?.after.includes(m1.id) && w1?.after.includes(w0.id), "batches of 1 for 2 workers");
    assert.equal(m0.reason, "kube version v1.28.2 -> v1.29.1");
    assert.ok(
      !p.steps.some((s) => s.kind === "init-master" || s.kind.startsWith("join")),
      "upgrade instead of init/join",
    );
  });

  it("an older kube version is planned the same way and called a rollback", () => {
    const p = check(d0, { cluster: base, image: { ...img, kubeVersion: "v1.27.9" } }, [
      "kubeadm-config",
      ...each("upgrade-master", M),
      ...each("upgrade-worker", W),
    ]);
    assert.equal(
      p.steps.find((s) => s.kind === "upgrade-master")?.reason,
      "kube version v1.28.2 -> v1.27.9 (older: a rollback)",
    );
  });

  it("worker upgrade batches are bounded", () => {
    const workers = Array.from({ length: 20 }, (_, i) => `10.0.1.${i + 1}`);
    const c = spec(clusterfile({ workers }));
    const applied = installed({ cluster: c, image: img });
    const p = plan({ cluster: c, image: { ...img, kubeVersion: "v1.29.1" } }, applied);
    const ups = p.steps.filter((s) => s.kind === "upgrade-worker");
    assert.equal(ups.length, 20);
    // 10% of 20 = 2 per batch: the third worker waits for the first two.
    assert.deepEqual(
      ups[2]?.after.filter((a) => a.startsWith("upgrade-worker")).sort(),
      [`upgrade-worker:${workers[0]}`, `upgrade-worker:${workers[1]}`].sort(),
    );
    assert.ok(ups[1]?.after.every((a) => !a.startsWith("upgrade-worker")));
  });

  const replaceRows: Array<[string, string, RegExp]> = [
    [
      "dataRoot",
      clusterfile({ extraSpec: "  dataRoot: /data/sealer\n" }),
      /^dataRoot \/var\/lib\/sealer -> \/data\/sealer: cannot be changed on a running cluster; it requires replacement/,
    ],
    [
      "container runtime",
      clusterfile({ extraSpec: "  containerRuntime: { type: docker }\n" }),
      /^container runtime containerd -> docker: /,
    ],
    ["PodCIDR", clusterfile({ extraSpec: '  env: [ "PodCIDR=10.244.0.0/16" ]\n' }), /^pod CIDR/],
    ["cluster name", clusterfile({ name: "other" }), /^cluster name demo -> other/],
  ];
  for (const [what, text, re] of replaceRows) {
    it(`${what} change on a running cluster -> replacement, no steps`, () => {
      const applied = installed({
        cluster: spec(
          clusterfile({ extraSpec: what === "PodCIDR" ? '  env: [ "PodCIDR=100.64.0.0/10" ]\n' : "" }),
        ),
        image: img,
      });
      const p = plan(withCluster(text), applied);
      assert.match(p.replace ?? "", re);
      assert.deepEqual(p.steps, []);
    });
  }
});

describe("impact table: env", () => {
  const map = {
    "etc/kubeadm.yml.tmpl": ["ApiTimeout"],
    "application/apps/web/deploy.yaml.tmpl": ["WebReplicas"],
    "scripts/init-kube.sh": ["KubeletRoot"],
  };
  const withEnv = (env: string, image: ImageFacts) => ({
    cluster: spec(clusterfile({ extraSpec: `  env: [ ${env} ]\n` })),
    image,
  });
  const base = "ApiTimeout=30, WebReplicas=2, KubeletRoot=/var/lib/kubelet, Foo=1";
  const mapped = baseImage({ templateEnvKeys: map });
  const unmapped = baseImage();

  it("a key used by an app template -> distribute (re-render) and that app only", () => {
    const p = check(withEnv(base, mapped), withEnv(base.replace("WebReplicas=2", "WebReplicas=3"), mapped), [
      ...D,
      "launch-app:web",
      SAVE,
    ]);
    assert.equal(p.steps.find((s) => s.id === "launch-app:web")?.reason, "env WebReplicas changed");
  });
  it("a key used by the kubeadm template -> kubeadm-config", () => {
    check(withEnv(base, mapped), withEnv(base.replace("ApiTimeout=30", "ApiTimeout=60"), mapped), [
      ...D,
      "kubeadm-config",
      SAVE,
    ]);
  });
  it("a key used by a host script -> init-host", () => {
    check(withEnv(base, mapped), withEnv(base.replace("/var/lib/kubelet", "/data/kubelet"), mapped), [
      ...D,
      ...each("init-host", ALL),
      SAVE,
    ]);
  });
  it("a key nothing reads -> only the saved Clusterfile", () => {
    check(withEnv(base, mapped), withEnv(base.replace("Foo=1", "Foo=2"), mapped), [SAVE]);
  });
  it("a recognised key (IPvsVIPv4) -> kubeadm-config, worker VIP, registry clients", () => {
    check(withEnv(base, mapped), withEnv(base + ", IPvsVIPv4=10.103.97.9", mapped), [
      "kubeadm-config",
      ...each("worker-vip", W),
      ...each("registry-client", ALL),
      SAVE,
    ]);
  });
  it("without a template env map -> every template-consuming step, and the reason says so", () => {
    const p = check(withEnv(base, unmapped), withEnv(base.replace("Foo=1", "Foo=2"), unmapped), [
      ...D,
      ...each("init-host", ALL),
      ...each("container-runtime", ALL),
      "kubeadm-config",
      "launch-app:web",
      "launch-app:db",
      SAVE,
    ]);
    assert.match(
      p.steps.find((s) => s.id === "kubeadm-config")?.reason ?? "",
      /^env Foo changed \(no template env map/,
    );
  });
  it("a host-level env change touches that host only", () => {
    const a = spec(clusterfile({ workerExtra: "" }));
    const text = clusterfile({ workers: [] }).replace(
      "---",
      `    - ips: [ ${W[0]} ]\n      roles: [ node ]\n      env: [ Disk=/dev/vdb ]\n    - ips: [ ${W[1]} ]\n      roles: [ node ]\n---`,
    );
    check({ cluster: a, image: unmapped }, { cluster: spec(text), image: unmapped }, [
      `distribute:${W[0]}`,
      `init-host:${W[0]}`,
      `container-runtime:${W[0]}`,
      SAVE,
    ]);
  });
});

describe("hook step reasons by phase", () => {
  const hookDocs = `---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: drain-check }
spec: { type: SHELL, action: upgrade-host, data: echo drain }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: after-up }
spec: { type: SHELL, action: upgrade, data: echo up }
---
apiVersion: sealer.io/v2
kind: Plugin
metadata: { name: grow }
spec: { type: SHELL, action: "pre-scaleup|post-scaleup", data: echo grow }
`;
  const cluster = spec(clusterfile({ docs: hookDocs }));
  const v128 = baseImage();
  const v129 = { ...changeLayer(v128, LAYER.kubeBin), kubeVersion: "v1.29.0" };
  const v130 = { ...changeLayer(v129, LAYER.kubeBin, "v3"), kubeVersion: "v1.30.0" };
  const reasons = (p: ReturnType<typeof plan>): Array<[string, string]> =>
    p.steps.filter((s) => s.kind === "hook").map((s) => [s.id, s.reason]);
  const upgradeHostRows = (to: string, what: string): Array<[string, string]> => [
    ...ALL.map((ip): [string, string] => [
      `hook:upgrade-host:drain-check:${ip}`,
      `${what} to ${to}: upgrade-host hook drain-check on ${ip}`,
    ]),
  ];
  const rows: Array<[string, Desired, Desired, Array<[string, string]>]> = [
    [
      "upgrade: upgrade-host per host and the cluster's upgrade hook name the upgrade",
      { cluster, image: v128 },
      { cluster, image: v129 },
      [
        ...upgradeHostRows("v1.29.0", "upgrade"),
        ["hook:upgrade:after-up", "upgrade to v1.29.0: upgrade hook after-up"],
      ],
    ],
    [
      "an older version: rollback wording",
      { cluster, image: v129 },
      { cluster, image: { ...v128, manifestDigest: digest("manifest-back") } },
      [
        ...upgradeHostRows("v1.28.2", "rollback"),
        ["hook:upgrade:after-up", "rollback to v1.28.2: upgrade hook after-up"],
      ],
    ],
    [
      "hosts added to an existing cluster: scale-up wording, no upgrade hooks",
      { cluster: spec(clusterfile({ docs: hookDocs, workers: [W[0]!] })), image: v128 },
      { cluster, image: v128 },
      [
        ["hook:pre-scaleup:grow", `hosts added (${W[1]}): pre-scaleup hook grow`],
        ["hook:post-scaleup:grow", `hosts added (${W[1]}): post-scaleup hook grow`],
      ],
    ],
  ];
  for (const [name, before, after, expected] of rows)
    it(name, () => {
      const got = reasons(plan(after, installed(before)));
      assert.deepEqual(
        got.filter(([id]) => !id.startsWith("hook:pre-init-host:") && !id.startsWith("hook:post-install:")),
        expected,
      );
    });

  it("a second upgrade runs the upgrade-host hooks again (keyed by the host's new Kubernetes inputs)", () => {
    const d1: Desired = { cluster, image: v129 };
    const p1 = plan(d1, installed({ cluster, image: v128 }));
    const after1 = recordAll(installed({ cluster, image: v128 }), p1, d1);
    assert.deepEqual(reasons(plan(d1, after1)), [], "nothing left after the first upgrade");
    assert.deepEqual(reasons(plan({ cluster, image: v130 }, after1)), [
      ...upgradeHostRows("v1.30.0", "upgrade"),
      ["hook:upgrade:after-up", "upgrade to v1.30.0: upgrade hook after-up"],
    ]);
  });
});

describe("impact table: the image's plugins/ described in the facts", () => {
  // The Clusterfile defines sysctl (pre-init-host) and smoke (post-install); the image ships
  // check (post-install, masters) and smoke (replaced by the Clusterfile's).
  const cluster = spec(clusterfile());
  type Plug = NonNullable<ImageFacts["plugins"]>["docs"][number];
  const plug = (name: string, action: HookPhase, data: string, scope: string[] = []): Plug => ({
    name,
    type: "SHELL",
    actions: [action],
    scope,
    data,
    file: `plugins/${name}.yaml`,
  });
  const withPlugins = (img: ImageFacts, docs: Plug[], filesHash = ""): ImageFacts => ({
    ...img,
    plugins: { docs, filesHash },
  });
  const v1 = withPlugins(baseImage(), [
    plug("check", "post-install", "kubectl get cs", ["master"]),
    plug("smoke", "post-install", "echo image-smoke"),
  ]);
  const plugins2 = (docs: Plug[], filesHash = "") =>
    withPlugins(changeLayer(v1, LAYER.plugins), docs, filesHash);

  it("an image plugin is a hook step like a Clusterfile one (the Clusterfile's wins on a name)", () => {
    const p = plan({ cluster, image: v1 }, emptyApplied("demo"));
    const hooks = p.steps.filter((s) => s.kind === "hook");
    assert.deepEqual(
      hooks.map((s) => [s.id, s.hosts]),
      [
        ...ALL.map((h) => [`hook:pre-init-host:sysctl:${h}`, [h]]),
        ["hook:post-install:check", M],
        ["hook:post-install:smoke", [M[0]]],
      ],
    );
  });
  const rows: Array<[string, ImageFacts, string[]]> = [
    [
      "one image plugin's yaml changed -> that plugin's hook steps only",
      plugins2([plug("check", "post-install", "kubectl get cs -o wide", ["master"]), v1.plugins!.docs[1]!]),
      [...D, "hook:post-install:check", SAVE],
    ],
    [
      "a plugin the Clusterfile replaces changed in the image -> nothing runs for it",
      plugins2([v1.plugins!.docs[0]!, plug("smoke", "post-install", "echo other")]),
      [...D, SAVE],
    ],
    [
      "a plugin added to the image -> its hook steps only",
      plugins2([...v1.plugins!.docs, plug("zz-new", "post-install", "echo new")]),
      [...D, "hook:post-install:zz-new", SAVE],
    ],
    [
      "another file under plugins/ (a script hooks may call) -> every hook step",
      plugins2(v1.plugins!.docs, "f".repeat(64)),
      [
        ...D,
        ...ALL.map((h) => `hook:pre-init-host:sysctl:${h}`),
        "hook:post-install:check",
        "hook:post-install:smoke",
        SAVE,
      ],
    ],
  ];
  for (const [name, img, expected] of rows)
    it(name, () => {
      const p = check({ cluster, image: v1 }, { cluster, image: img }, expected);
      const changed = p.steps.find((s) => s.id === "hook:post-install:check");
      if (name.startsWith("one image plugin")) assert.equal(changed?.reason, "plugin check changed");
    });
});
