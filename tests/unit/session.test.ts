/**
 * One session API behind both front doors: `sealer plan`, an apply's dry run and a Pulumi
 * preview assemble the planner's input in the core session, so for the same Clusterfile, image
 * and recorded state they plan the same steps (the same plan digest). A host with a recorded
 * platform keeps it; only hosts without one are probed or take --platform. The executor and the
 * destroy/rollback hooks read hosts from the planner's view.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { planCluster } from "../../provider/cli/commands/plan";
import { applyCluster } from "../../provider/core/apply";
import { findHost, hostEnv, hostSsh, loadClusterfile } from "../../provider/core/clusterfile";
import { recordAll } from "../../provider/core/exec/record";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { dataPaths } from "../../provider/core/paths";
import { PlanContext } from "../../provider/core/plan/context";
import { planDigest } from "../../provider/core/plan/digest";
import { hostFactsIn } from "../../provider/core/plan/phase-hooks";
import { emptyApplied, type AppliedState } from "../../provider/core/plan/types";
import { assembleDesired, planInstall, planningImage } from "../../provider/core/session";
import { saveState } from "../../provider/core/state";
import { PLAN_DIGEST_PREFIX, provider } from "../../provider/resources/cluster";
import { setEnv } from "../harness/env";
import { baseImage } from "../fixtures/clusterfile/plan-world";
import { world } from "./steps/world";

const IMAGE = "test/session-demo:1";
const MASTER = "10.0.0.2";
const WORKER = "10.0.0.3";
const PLATFORMS = ["linux/amd64", "linux/arm64"];

function clusterfileText(hosts: string): string {
  return `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: session-demo }
spec:
  image: ${IMAGE}
  env: [ WebReplicas=2 ]
  ssh: { passwd: session-pw }
  hosts:
${hosts}`;
}
const masterOnly = clusterfileText(`    - ips: [ ${MASTER} ]\n      roles: [ master ]\n`);
const withWorker = masterOnly + `    - ips: [ ${WORKER} ]\n      roles: [ node ]\n`;

describe("core session: one planner input for sealer plan, apply --dry-run and the Pulumi preview", function () {
  this.timeout(120_000);
  let tmp: string;
  let restoreEnv: (() => void) | undefined;
  let recorded: AppliedState;
  let platform: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-session-"));
    restoreEnv = setEnv({ SEALER_HOME: tmp });
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "bin"), { recursive: true });
    fs.mkdirSync(path.join(ctx, "web"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "bin", "kubeadm"), "#!/bin/sh\necho stand-in\n", { mode: 0o755 });
    fs.writeFileSync(path.join(ctx, "web", "scale.yaml.tmpl"), "replicas: {{ .WebReplicas }}\n");
    // ${ARCH} picks a file per platform, so the platforms' layers differ.
    for (const p of PLATFORMS) {
      const arch = p.split("/")[1]!;
      fs.mkdirSync(path.join(ctx, "arch", arch), { recursive: true });
      fs.writeFileSync(path.join(ctx, "arch", arch, "platform.txt"), `${arch}\n`);
    }
    fs.writeFileSync(
      path.join(ctx, "Kubefile"),
      'FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.28.2\nCOPY bin bin\nCOPY arch/${ARCH}/platform.txt platform.txt\nAPP web local://web\nLAUNCH ["web"]\n',
    );
    await buildImage({ context: ctx, tag: IMAGE, home: tmp, buildMode: "lite", platforms: PLATFORMS });
    // The master was applied and probed as the image's non-default platform; the worker is new
    // (no platform recorded): a path that ignored the record would re-distribute the master.
    const spec = loadClusterfile(masterOnly).spec;
    const image = await planningImage(new OciLayout(dataPaths.store(tmp)), IMAGE, spec);
    platform = image.platforms.find((p) => p !== image.platform) ?? "";
    const d = { cluster: spec, image, hostPlatforms: { [MASTER]: platform } };
    recorded = recordAll(emptyApplied(spec.name), planInstall(d, emptyApplied(spec.name)), d);
    await saveState(recorded);
  });
  after(() => {
    restoreEnv?.();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("the recorded state has the master's probed platform and none for the new worker", () => {
    assert.ok(PLATFORMS.includes(platform), platform);
    assert.equal(recorded.hosts[MASTER]?.platform, platform);
    assert.equal(recorded.hosts[WORKER], undefined);
  });

  it("sealer plan, apply --dry-run and the Pulumi preview plan the same steps (same digest)", async () => {
    const spec = loadClusterfile(withWorker, { file: "Clusterfile" }).spec;
    const cli = await planCluster(spec, { home: tmp });
    const dry = await applyCluster({ spec, dryRun: true });
    const checked = await provider.check({}, { image: IMAGE, clusterfile: withWorker }, { preview: true });
    const lines = checked.inputs.plan as string[];
    assert.ok(Array.isArray(lines), `the preview computed a plan: ${JSON.stringify(checked)}`);

    // The recorded master is not re-distributed; the new worker is joined with a guessed platform.
    const ids = cli.steps.map((s) => s.id);
    assert.ok(ids.includes(`join-worker:${WORKER}`), ids.join(" "));
    assert.ok(!ids.includes(`distribute:${MASTER}`), ids.join(" "));
    const dist = cli.steps.find((s) => s.id === `distribute:${WORKER}`);
    assert.match(dist?.reason ?? "", /not probed/, "the worker's platform is the image's default, a guess");

    assert.deepEqual(
      dry.plan.steps.map((s) => s.id),
      ids,
    );
    assert.equal(planDigest(dry.plan), planDigest(cli));
    assert.equal(lines.at(-1), `${PLAN_DIGEST_PREFIX}${planDigest(cli)}`);
    assert.deepEqual(
      lines.slice(0, -1),
      cli.steps.map((s) => `${s.id} [${s.hosts.join(",")}]: ${s.reason}`),
    );
  });

  it("--platform applies to hosts without a recorded platform only; probing asks only for those", async () => {
    const spec = loadClusterfile(withWorker).spec;
    const image = await planningImage(new OciLayout(dataPaths.store(tmp)), IMAGE, spec);
    const other = PLATFORMS.find((p) => p !== platform)!;
    const withFlag = await assembleDesired({ spec, image, applied: recorded, platform: other });
    assert.deepEqual(withFlag.hostPlatforms, { [WORKER]: other });

    const asked: string[][] = [];
    const probed = await assembleDesired({
      spec,
      image,
      applied: recorded,
      platform: other,
      probe: async (ips) => {
        asked.push(ips);
        return Object.fromEntries(ips.map((ip) => [ip, platform]));
      },
    });
    assert.deepEqual(asked, [[WORKER]], "the recorded master is not contacted");
    assert.deepEqual(probed.hostPlatforms, { [WORKER]: platform }, "a probed platform wins over --platform");

    const none = await assembleDesired({
      spec,
      image,
      applied: {
        ...recorded,
        hosts: { ...recorded.hosts, [WORKER]: { roles: ["node"], layers: [], platform } },
      },
      probe: async () => assert.fail("no host lacks a platform: nothing is probed"),
    });
    assert.deepEqual(none.hostPlatforms, {});
  });

  it("an image missing from the store names the Clusterfile line and what to do", async () => {
    const spec = loadClusterfile(withWorker.replace(IMAGE, "test/absent:1"), { file: "Clusterfile" }).spec;
    await assert.rejects(planCluster(spec, { home: tmp }), (err: Error) => {
      assert.match(err.message, /^Clusterfile:\d+ spec\.image/);
      assert.match(err.message, /test\/absent:1/);
      assert.match(err.message, /pull|build/);
      return true;
    });
  });
});

describe("one host view: the executor and the destroy/rollback hooks read hosts from it", () => {
  const M0 = "10.0.0.2";
  const W0 = "10.0.0.10";
  const GONE = "10.0.0.99";
  const text = `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: demo }
spec:
  image: registry.example.com/team/saas:1.0
  ssh: { passwd: pw, port: 22 }
  env: [ A=cluster, B=cluster ]
  hosts:
    - ips: [ ${M0} ]
      roles: [ master ]
      labels: { zone: a }
    - ips: [ ${W0} ]
      roles: [ node, db ]
      env: [ B=host ]
      labels: { disk: ssd }
      ssh: { user: admin, port: 2222 }
`;
  const state = (): AppliedState => {
    const a = emptyApplied("demo");
    a.hosts[GONE] = { roles: ["master"], layers: [], labels: { old: "yes" } };
    return a;
  };

  it("hostFactsIn gives each desired host its view's role, roles and labels; a removed host its recorded ones", () => {
    const spec = loadClusterfile(text).spec;
    const applied = state();
    const view = new PlanContext({ cluster: spec, image: baseImage() }, applied).hosts;
    const facts = hostFactsIn(spec, applied);
    for (const ip of [M0, W0]) {
      const v = view.get(ip)!;
      assert.deepEqual(facts(ip), { role: v.role, roles: v.roles, labels: v.labels }, ip);
    }
    assert.deepEqual(facts(W0), { role: "node", roles: ["db", "node"], labels: { disk: "ssd" } });
    assert.deepEqual(facts(GONE), { role: "master", roles: ["master"], labels: { old: "yes" } });
    assert.deepEqual(facts("10.0.0.200"), { role: "node", roles: [], labels: {} });
  });

  it("ExecContext renders env, SSH and roles from the view; a host outside the Clusterfile gets the cluster's", () => {
    const w = world({ clusterfile: text, state: state() });
    const spec = w.ctx.spec;
    const image = w.ctx.image;
    for (const ip of [M0, W0]) {
      const v = w.ctx.hosts.get(ip)!;
      assert.deepEqual(w.ctx.roles(ip), v.roles);
      const t = w.ctx.target(ip);
      assert.deepEqual([t.user, t.port, t.password], [v.ssh.user, v.ssh.port, v.ssh.passwd?.reveal()]);
    }
    for (const ip of [M0, W0, GONE]) {
      const env = w.ctx.env(ip);
      for (const [k, val] of Object.entries(hostEnv(spec, ip, image.env)))
        assert.equal(env[k], val, `${ip} ${k}`);
      assert.equal(w.ctx.target(ip).port, hostSsh(spec, ip).port);
      assert.deepEqual(w.ctx.roles(ip), findHost(spec, ip)?.roles ?? []);
    }
    assert.equal(w.ctx.env(W0).B, "host");
    assert.equal(w.ctx.env(GONE).B, "cluster");
    assert.deepEqual(
      [w.ctx.target(W0).user, w.ctx.target(W0).port, w.ctx.target(W0).sudo],
      ["admin", 2222, true],
    );
    assert.deepEqual([w.ctx.masters, w.ctx.workers], [[M0], [W0]]);
  });
});
