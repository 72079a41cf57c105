/**
 * `sealer plan` end to end on this machine: a small image really built into a temp store,
 * the recorded state read from the state store, text and JSON output, exit code 2 on bad input.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildProgram } from "../../provider/cli/main";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { templateEnvKeysOf } from "../../provider/core/exec/template-keys";
import { imageFacts } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { buildImage } from "../../provider/core/image/builder";
import { dataPaths } from "../../provider/core/paths";
import { planDigest } from "../../provider/core/plan/digest";
import { plan } from "../../provider/core/plan/planner";
import { recordAll } from "../../provider/core/exec/record";
import {
  loadSavedClusterfile,
  loadState,
  saveClusterfile,
  saveState,
  statePath,
} from "../../provider/core/state";
import { packageRoot } from "../../provider/core/package-info";
import { captureStdout } from "../harness/cli";
import { setEnv } from "../harness/env";

const repoRoot = (): string => packageRoot(__dirname);

/** The CLI in a child process (exit codes are part of what is tested). */
function cli(args: string[], home: string): { status: number | null; stdout: string; stderr: string } {
  const main = require.resolve("../../provider/cli/main");
  const pre = main.endsWith(".ts") ? ["-r", "tsx/cjs"] : [];
  return spawnSync(
    process.execPath,
    [
      ...pre,
      "-e",
      `require(${JSON.stringify(main)}).main(["node", "sealer", ...process.argv.slice(1)])`,
      "--",
      ...args,
    ],
    { cwd: repoRoot(), env: { ...process.env, SEALER_HOME: home }, encoding: "utf8" },
  );
}

function run(args: string[]): Promise<string> {
  return captureStdout(() =>
    buildProgram()
      .exitOverride()
      .parseAsync(["node", "sealer", ...args]),
  );
}

describe("sealer plan (CLI) with a real image and the state store", function () {
  this.timeout(120_000);
  let tmp: string;
  let ctx: string;
  let clusterfilePath: string;
  let restoreEnv: (() => void) | undefined;

  const build = () => buildImage({ context: ctx, tag: "test/plan-demo:1", home: tmp, buildMode: "lite" });

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-plan-cli-"));
    restoreEnv = setEnv({ SEALER_HOME: tmp });
    ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "bin"), { recursive: true });
    fs.mkdirSync(path.join(ctx, "etc"), { recursive: true });
    fs.mkdirSync(path.join(ctx, "web"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "bin", "kubeadm"), "#!/bin/sh\necho stand-in\n", { mode: 0o755 });
    fs.writeFileSync(path.join(ctx, "etc", "kubeadm.yml"), "kind: ClusterConfiguration\n");
    fs.writeFileSync(path.join(ctx, "web", "deploy.yaml"), "kind: Deployment\nmetadata: { name: web }\n");
    fs.writeFileSync(path.join(ctx, "web", "scale.yaml.tmpl"), "replicas: {{ .WebReplicas }}\n");
    fs.writeFileSync(
      path.join(ctx, "Kubefile"),
      'FROM scratch\nLABEL cluster.alpha.sealer.io/cluster-runtime-version=v1.28.2\nCOPY bin bin\nCOPY etc etc\nAPP web local://web\nLAUNCH ["web"]\n',
    );
    await build();
    clusterfilePath = path.join(tmp, "Clusterfile");
    fs.writeFileSync(
      clusterfilePath,
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: { name: cli-demo }\nspec:\n  image: test/plan-demo:1\n  env: [ WebReplicas=2, Unused=1 ]\n  ssh: { passwd: cli-secret-pw }\n  hosts:\n    - ips: [ 10.0.0.2 ]\n      roles: [ master ]\n    - ips: [ 10.0.0.3, 10.0.0.4 ]\n      roles: [ node ]\n",
    );
  });
  after(() => {
    restoreEnv?.();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("plans a full install when no state is recorded (JSON)", async () => {
    const out = JSON.parse(await run(["plan", "-f", clusterfilePath, "--json"])) as {
      cluster: string;
      steps: Array<{ kind: string; hosts: string[]; reason: string }>;
    };
    assert.equal(out.cluster, "cli-demo");
    assert.deepEqual(out.steps[0], {
      id: "distribute:10.0.0.2",
      kind: "distribute",
      hosts: ["10.0.0.2"],
      reason: "new cluster: host 10.0.0.2 as master0",
      after: [],
    });
    assert.ok(out.steps.some((s) => s.kind === "init-master"));
    assert.deepEqual(
      out.steps.filter((s) => s.kind === "join-worker").map((s) => s.hosts[0]),
      ["10.0.0.3", "10.0.0.4"],
    );
    assert.equal(out.steps.filter((s) => s.kind === "launch-app").length, 1);
    assert.ok(!JSON.stringify(out).includes("cli-secret-pw"));
  });

  it("reads the recorded state: zero steps after a recorded apply, then only what a changed app needs", async () => {
    const { spec } = loadClusterfile(fs.readFileSync(clusterfilePath, "utf8"));
    const layout = new OciLayout(dataPaths.store(tmp));
    const facts = await imageFacts(layout, spec.image);
    facts.templateEnvKeys ??= await templateEnvKeysOf(layout, facts);
    const d = { cluster: spec, image: facts };
    const state = recordAll({ version: 1, cluster: spec.name, hosts: {}, steps: {} }, plan(d), d);
    await saveState(state);
    await saveClusterfile(spec);
    assert.equal(fs.statSync(statePath("cli-demo")).mode & 0o777, 0o600);
    assert.deepEqual(await loadState("cli-demo"), state);
    assert.equal((await loadSavedClusterfile("cli-demo"))?.ssh.passwd?.reveal(), "cli-secret-pw");

    assert.match(
      await run(["plan", "-f", clusterfilePath]),
      /^Cluster cli-demo: nothing to do \(0 steps\)\.\nPlan digest: sha256:[0-9a-f]{64}\n$/,
    );

    fs.writeFileSync(
      path.join(ctx, "web", "deploy.yaml"),
      "kind: Deployment\nmetadata: { name: web, labels: { v: '2' } }\n",
    );
    await build();
    const text = await run(["plan", "-f", clusterfilePath]);
    const lines = text.trim().split("\n");
    assert.equal(lines[0], "Cluster cli-demo: 5 steps");
    assert.match(lines.pop() ?? "", /^Plan digest: sha256:[0-9a-f]{64}$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.trim().split(/\s+/).slice(0, 3)),
      [
        ["1.", "distribute", "10.0.0.2"],
        ["2.", "distribute", "10.0.0.3"],
        ["3.", "distribute", "10.0.0.4"],
        ["4.", "launch-app", "10.0.0.2"],
        ["5.", "save-clusterfile", "10.0.0.2"],
      ],
    );
    assert.match(lines[4] ?? "", /layer sha256:[0-9a-f]{12}… changed application\/apps\/web\//);
    assert.match(
      await run(["plan", "-f", clusterfilePath, "--format", "markdown"]),
      /\n\*\*Changed layers:\*\* sha256:[0-9a-f]{12}… → application\/apps\/web\/\n/,
    );
  });

  it("an env change re-runs only what reads the key (template keys read from the image)", async () => {
    const text = fs.readFileSync(clusterfilePath, "utf8");
    const other = path.join(tmp, "Clusterfile.env");
    fs.writeFileSync(other, text.replace("Unused=1", "Unused=2"));
    const unused = JSON.parse(await run(["plan", "-f", other, "--json"])) as { steps: Array<{ id: string }> };
    assert.deepEqual(
      unused.steps.map((s) => s.id),
      [
        "distribute:10.0.0.2",
        "distribute:10.0.0.3",
        "distribute:10.0.0.4",
        "launch-app:web",
        "save-clusterfile",
      ],
      "the app layer changed in the previous test and is still unapplied",
    );
    // Record the current image so only env differences remain.
    const { spec } = loadClusterfile(text);
    const layout = new OciLayout(dataPaths.store(tmp));
    const facts = await imageFacts(layout, spec.image);
    facts.templateEnvKeys ??= await templateEnvKeysOf(layout, facts);
    assert.deepEqual(facts.templateEnvKeys, { "application/apps/web/scale.yaml.tmpl": ["WebReplicas"] });
    const d = { cluster: spec, image: facts };
    await saveState(recordAll((await loadState("cli-demo"))!, plan(d, (await loadState("cli-demo"))!), d));
    assert.deepEqual(
      JSON.parse(await run(["plan", "-f", other, "--json"])).steps.map((s: { id: string }) => s.id),
      ["save-clusterfile"],
    );
    fs.writeFileSync(other, text.replace("WebReplicas=2", "WebReplicas=5"));
    const web = JSON.parse(await run(["plan", "-f", other, "--json"])) as {
      steps: Array<{ id: string; reason: string }>;
    };
    assert.deepEqual(
      web.steps.map((s) => [s.id, s.reason]),
      [
        ["distribute:10.0.0.2", "env WebReplicas changed"],
        ["distribute:10.0.0.3", "env WebReplicas changed"],
        ["distribute:10.0.0.4", "env WebReplicas changed"],
        ["launch-app:web", "env WebReplicas changed"],
        ["save-clusterfile", "Clusterfile changed"],
      ],
    );
  });

  it("takes the flag form (IMAGE -m -n with ranges)", async () => {
    const out = JSON.parse(
      await run([
        "plan",
        "test/plan-demo:1",
        "-m",
        "10.0.0.2",
        "-n",
        "10.0.0.5-10.0.0.6",
        "--cluster-name",
        "flags-demo",
        "--json",
      ]),
    ) as { cluster: string; steps: Array<{ kind: string; hosts: string[] }> };
    assert.equal(out.cluster, "flags-demo");
    assert.deepEqual(
      out.steps.filter((s) => s.kind === "join-worker").map((s) => s.hosts[0]),
      ["10.0.0.5", "10.0.0.6"],
    );
  });

  it("exits 2 with every problem on an invalid Clusterfile", () => {
    const bad = path.join(tmp, "Bad");
    fs.writeFileSync(
      bad,
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: { name: bad }\nspec:\n  image: test/plan-demo:1\n  hosts:\n    - ips: [ 10.0.0.300 ]\n      roles: [ node ]\n",
    );
    const r = cli(["plan", "-f", bad], tmp);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      new RegExp(
        `${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:7 spec.hosts\\[0\\].ips\\[0\\]: "10.0.0.300" is not an IP address`,
      ),
    );
    assert.match(r.stderr, /spec.hosts: no master: at least one host needs roles: \[master\]/);
  });

  it("names a missing image and what to do", async () => {
    await assert.rejects(run(["plan", "nothere/img:9", "-m", "10.0.0.2"]), /image nothere\/img:9/);
  });

  /** A copy of the Clusterfile with one env value changed (a plan with steps: distribute + launch-app). */
  const changed = (name: string): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, fs.readFileSync(clusterfilePath, "utf8").replace("WebReplicas=2", "WebReplicas=7"));
    return f;
  };

  it("every format carries the same plan digest; it covers the work, not the wording", async () => {
    const f = changed("Clusterfile.digest");
    const json = JSON.parse(await run(["plan", "-f", f, "--json"])) as { digest: string; steps: unknown[] };
    assert.match(json.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(json.steps.length, 5);
    assert.ok((await run(["plan", "-f", f])).endsWith(`Plan digest: ${json.digest}\n`));
    assert.ok((await run(["plan", "-f", f, "--format", "markdown"])).includes(json.digest));
    assert.deepEqual(JSON.parse(await run(["plan", "-f", f, "--format", "json"])), json);
    const none = JSON.parse(await run(["plan", "-f", clusterfilePath, "--json"])) as { digest: string };
    assert.notEqual(none.digest, json.digest);
    const p = { cluster: "c", warnings: [], steps: [] };
    const step = {
      id: "init-master",
      kind: "init-master" as const,
      hosts: ["10.0.0.2"],
      key: "k1",
      after: [],
    };
    assert.equal(
      planDigest({ ...p, steps: [{ ...step, reason: "new cluster" }] }),
      planDigest({ ...p, steps: [{ ...step, reason: "new cluster (platform not probed)" }] }),
    );
    assert.notEqual(
      planDigest({ ...p, steps: [{ ...step, reason: "x" }] }),
      planDigest({ ...p, steps: [{ ...step, reason: "x", key: "k2" }] }),
    );
  });

  it("--format markdown: a review table grouped by reason and hosts, the changed inputs named, the apply command with the digest", async () => {
    const f = changed("Clusterfile.md");
    const out = await run(["plan", "-f", f, "--format", "markdown"]);
    const digest = (JSON.parse(await run(["plan", "-f", f, "--json"])) as { digest: string }).digest;
    assert.deepEqual(out.trim().split("\n"), [
      "### Cluster `cli-demo`: 5 steps",
      "",
      "| hosts | steps | why |",
      "|---|---|---|",
      "| 10.0.0.2 | distribute, launch-app web | env WebReplicas changed |",
      "| 10.0.0.3, 10.0.0.4 | distribute | env WebReplicas changed |",
      "| 10.0.0.2 | save-clusterfile | Clusterfile changed |",
      "",
      "**Changed inputs:** env WebReplicas changed; Clusterfile changed",
      "",
      `Plan digest: \`${digest}\` — apply exactly this plan with \`sealer apply -f ${f} --plan-digest ${digest}\``,
    ]);
    await assert.rejects(run(["plan", "-f", f, "--format", "yaml"]), /use one of text, json, markdown/);
  });

  it("--detailed-exitcode: 0 when nothing would change, 2 when steps are pending, 1 on error", () => {
    const none = cli(["plan", "-f", clusterfilePath, "--detailed-exitcode"], tmp);
    assert.equal(none.status, 0, none.stderr);
    const some = cli(
      ["plan", "-f", changed("Clusterfile.exit"), "--detailed-exitcode", "--format", "markdown"],
      tmp,
    );
    assert.equal(some.status, 2, some.stderr);
    assert.match(some.stdout, /5 steps/);
    const bad = cli(["plan", "-f", path.join(tmp, "no-such-Clusterfile"), "--detailed-exitcode"], tmp);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /cannot read Clusterfile .*no-such-Clusterfile/);
    assert.equal(
      cli(["plan", "-f", path.join(tmp, "no-such-Clusterfile")], tmp).status,
      2,
      "without the flag: 2 as before",
    );
  });

  it("apply --plan-digest: a digest other than the plan's is refused before any host is contacted; nothing changes", async () => {
    const state = await loadState("cli-demo");
    // Every host has a recorded platform: the apply contacts no host before it compares digests.
    assert.ok(
      Object.values(state!.hosts).every((h) => h.platform),
      JSON.stringify(state!.hosts),
    );
    const before = fs.readFileSync(statePath("cli-demo"));
    const savedCf = path.join(dataPaths.clusters(tmp), "cli-demo");
    const listing = () => fs.readdirSync(savedCf).map((n) => [n, fs.statSync(path.join(savedCf, n)).mtimeMs]);
    const filesBefore = listing();
    const f = changed("Clusterfile.apply");
    const reviewed = (JSON.parse(await run(["plan", "-f", clusterfilePath, "--json"])) as { digest: string })
      .digest;
    const now = (JSON.parse(await run(["plan", "-f", f, "--json"])) as { digest: string }).digest;
    await assert.rejects(
      run(["apply", "-f", f, "--plan-digest", reviewed]),
      (e: Error) =>
        e.message.includes(`the plan now has digest ${now}, not the reviewed ${reviewed}`) &&
        /Nothing was changed; run sealer plan again/.test(e.message),
    );
    assert.deepEqual(fs.readFileSync(statePath("cli-demo")), before);
    assert.deepEqual(listing(), filesBefore);
    await assert.rejects(run(["apply", "-f", f, "--plan-digest", "abc"]), /expected sha256:<64 hex digits>/);
    // The digest of an empty plan applies it: nothing to do, nothing contacted.
    const empty = (JSON.parse(await run(["plan", "-f", clusterfilePath, "--json"])) as { digest: string })
      .digest;
    assert.match(
      await run(["apply", "-f", clusterfilePath, "--plan-digest", empty]),
      /up to date, nothing ran/,
    );
  });

  it("--destroy shows what delete -a runs (every host, recorded ones too); --rollback plans the way back", async () => {
    const p = JSON.parse(await run(["plan", "--destroy", "-f", clusterfilePath, "--json"])) as {
      steps: Array<{ id: string; reason: string }>;
    };
    assert.deepEqual(
      p.steps.map((x) => x.id),
      ["clean-host:10.0.0.2", "clean-host:10.0.0.3", "clean-host:10.0.0.4"],
    );
    assert.match(p.steps[0]!.reason, /unreferenced layer blobs collected/);
    assert.deepEqual(
      (JSON.parse(await run(["plan", "--destroy", "--cluster-name", "cli-demo", "--json"])) as typeof p)
        .steps,
      p.steps,
    );
    // The state recorded above went from the first build to the second: a rollback has a target.
    const back = JSON.parse(await run(["plan", "--rollback", "--cluster-name", "cli-demo", "--json"])) as {
      cluster: string;
      digest: string;
    };
    assert.equal(back.cluster, "cli-demo");
    assert.match(back.digest, /^sha256:/);
    await assert.rejects(run(["plan", "--rollback", "--cluster-name", "nope"]), /no cluster named nope/);
    await assert.rejects(run(["plan", "--destroy", "x:1", "-m", "10.0.0.2"]), /acts on a recorded cluster/);
  });
});
