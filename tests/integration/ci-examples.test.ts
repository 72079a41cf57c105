/**
 * The CI workflows in examples/ci run: the shell of every step/script item that calls sealer is
 * taken from the YAML as written and executed with bash (as the runners do), with `sealer` on
 * PATH, against a local node. Only the forge API calls (gh, curl to GitLab) are done by the test
 * instead: the plan the pull request step posted is what the apply job fetches back. So a
 * workflow whose sealer commands, flags or digest handling rot fails here.
 *
 * GitHub flow: the pull request plans a fresh install (exit 2 -> pending), the merge applies it
 * with the reviewed digest, a second apply with that now-stale digest is refused and changes
 * nothing, and a pull request without changes plans nothing (exit 0).
 * GitLab flow on the same cluster: a host label change is planned, posted and applied by digest.
 * Needs root (a network namespace for the node).
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { packageRoot } from "../../provider/core/package-info";
import { createNodeGroup, uniquePrefix } from "../harness/nodes";

const root = packageRoot(__dirname);

interface Block {
  name: string;
  script: string;
  /** A GitHub step's `if:` expression. */
  if?: string;
}

/** A step or script item the test runs itself instead of the forge (it talks to the forge API). */
const forgeCall = (script: string): boolean => /\bgh\b|\bcurl\b/.test(script);

function githubJobs(): Record<string, { env: Record<string, string>; blocks: Block[] }> {
  const wf = parse(fs.readFileSync(path.join(root, "examples/ci/github-actions.yml"), "utf8")) as {
    env: Record<string, string>;
    jobs: Record<string, { steps: Array<{ name?: string; run?: string; uses?: string; if?: string }> }>;
  };
  const out: Record<string, { env: Record<string, string>; blocks: Block[] }> = {};
  for (const [job, j] of Object.entries(wf.jobs))
    out[job] = {
      env: wf.env,
      blocks: j.steps.flatMap((s) =>
        s.run ? [{ name: s.name ?? s.run, script: s.run, ...(s.if ? { if: s.if } : {}) }] : [],
      ),
    };
  return out;
}

function gitlabJobs(): Record<string, { env: Record<string, string>; blocks: Block[] }> {
  const ci = parse(fs.readFileSync(path.join(root, "examples/ci/gitlab-ci.yml"), "utf8")) as Record<
    string,
    unknown
  > & { variables: Record<string, string> };
  const out: Record<string, { env: Record<string, string>; blocks: Block[] }> = {};
  for (const job of ["plan", "apply"]) {
    const j = ci[job] as { script: string[] };
    out[job] = { env: ci.variables, blocks: j.script.map((s, i) => ({ name: `${job}[${i}]`, script: s })) };
  }
  return out;
}

describe("examples/ci: the workflow commands run against a local node", function () {
  this.timeout(900_000);
  let tmp: string;
  let ws: string;
  let home: string;
  let bin: string;
  let nodes: Awaited<ReturnType<typeof createNodeGroup>>;
  let node: LocalNode;
  const prevHome = process.env.SEALER_HOME;

  before(async function () {
    if (process.getuid?.() !== 0)
      throw new Error("the CI examples test needs root (a network namespace for the node)");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-ci-"));
    home = path.join(tmp, "home");
    process.env.SEALER_HOME = home;
    bin = path.join(tmp, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, "sealer"),
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(root, "bin/sealer.js"))} "$@"\n`,
      { mode: 0o755 },
    );
    // The repository the workflows check out: the image context and the Clusterfile under cluster/.
    ws = path.join(tmp, "ws");
    fs.cpSync(path.join(root, "examples/sandbox-base"), path.join(ws, "cluster/image"), { recursive: true });
    nodes = await createNodeGroup(1, { prefix: uniquePrefix("ci") });
    node = nodes.list[0]!;
    writeClusterfile("");
  });

  after(async () => {
    await nodes?.destroy();
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function writeClusterfile(hostExtra: string): void {
    fs.writeFileSync(
      path.join(ws, "cluster/Clusterfile"),
      `apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: { name: ci-demo }\nspec:\n  image: my-saas:1\n  ssh: { user: root, pk: ${node.keyPath} }\n  hosts:\n    - ips: [ ${node.ip} ]\n      roles: [ master ]\n${hostExtra}`,
    );
  }

  /** Runs a job's blocks in order in the job's own checkout; returns the exit code of the first failing one (or 0). */
  function runJob(
    job: { env: Record<string, string>; blocks: Block[] },
    dir: string,
    forge: (b: Block, outputs: string) => void,
  ): { code: number; failed?: string; stderr: string; outputs: string } {
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(ws, "cluster"), path.join(dir, "cluster"), { recursive: true });
    const outputs = path.join(dir, ".github_output");
    fs.writeFileSync(outputs, "");
    let stderr = "";
    for (const b of job.blocks) {
      if (forgeCall(b.script)) {
        forge(b, fs.readFileSync(outputs, "utf8"));
        continue;
      }
      const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", b.script], {
        cwd: dir,
        encoding: "utf8",
        env: {
          ...process.env,
          ...job.env,
          PATH: `${bin}:${process.env.PATH}`,
          SEALER_HOME: home,
          GITHUB_OUTPUT: outputs,
          GITHUB_STEP_SUMMARY: path.join(dir, ".summary"),
        },
      });
      stderr += r.stderr;
      if (r.status !== 0)
        return { code: r.status ?? -1, failed: b.name, stderr, outputs: fs.readFileSync(outputs, "utf8") };
    }
    return { code: 0, stderr, outputs: fs.readFileSync(outputs, "utf8") };
  }

  const journal = async (): Promise<string> =>
    (await execInNode(node, "cat /var/log/sealer-sandbox/journal.jsonl 2>/dev/null || true")).stdout;

  it("GitHub Actions: plan on the pull request, apply on merge by digest; a stale digest is refused", async () => {
    const gh = githubJobs();
    assert.deepEqual(Object.keys(gh).sort(), ["apply", "plan"]);
    const pr = path.join(tmp, "gh-pr-1");
    let posted = "";
    /** The post step, as GitHub runs it: only when its `if:` holds. */
    const post = (dir: string) => (b: Block, outputs: string) => {
      assert.match(b.script, /gh pr comment .* --body-file plan\.md/);
      assert.equal(b.if, "steps.plan.outputs.pending == 'true'");
      if (/^pending=true$/m.test(outputs)) posted = fs.readFileSync(path.join(dir, "plan.md"), "utf8");
    };
    const plan = runJob(gh.plan!, pr, post(pr));
    assert.equal(plan.code, 0, `${plan.failed}: ${plan.stderr}`);
    assert.match(plan.outputs, /^pending=true$/m);
    assert.match(posted, /### Cluster `ci-demo`: \d+ steps/);
    assert.match(posted, /init-master/);
    const digest = /Plan digest: `(sha256:[0-9a-f]{64})`/.exec(posted)?.[1];
    assert.ok(digest, posted);

    const merge = path.join(tmp, "gh-merge-1");
    const apply = runJob(gh.apply!, merge, (b) => {
      assert.match(b.script, /gh pr view .* > plan\.md/);
      fs.mkdirSync(merge, { recursive: true });
      fs.writeFileSync(path.join(merge, "plan.md"), posted);
    });
    assert.equal(apply.code, 0, `${apply.failed}: ${apply.stderr}`);
    assert.match(await journal(), /"kubeadm","argv":\["init"/);
    const state = fs.readFileSync(path.join(home, "clusters/ci-demo/state.json"));

    // The same reviewed plan again: the cluster has moved on, so the digest no longer matches.
    const again = runJob(gh.apply!, path.join(tmp, "gh-merge-2"), () =>
      fs.writeFileSync(path.join(tmp, "gh-merge-2", "plan.md"), posted),
    );
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, new RegExp(`not the reviewed ${digest}.*Nothing was changed`));
    assert.deepEqual(fs.readFileSync(path.join(home, "clusters/ci-demo/state.json")), state);

    // A pull request that changes nothing: exit 0 from the plan, nothing posted.
    posted = "";
    const quiet = runJob(gh.plan!, path.join(tmp, "gh-pr-2"), post(path.join(tmp, "gh-pr-2")));
    assert.equal(quiet.code, 0, `${quiet.failed}: ${quiet.stderr}`);
    assert.match(quiet.outputs, /^pending=false$/m);
    assert.equal(posted, "", "nothing is posted when nothing would change");
  });

  it("GitLab CI: a label change is planned on the merge request, posted, and applied by digest", async () => {
    const gl = gitlabJobs();
    writeClusterfile("      labels: { disk: ssd }\n");
    const mr = path.join(tmp, "gl-mr");
    let note = "";
    const plan = runJob(gl.plan!, mr, (b) => {
      assert.match(b.script, /merge_requests\/\$CI_MERGE_REQUEST_IID\/notes/);
      if (fs.readFileSync(path.join(mr, "plan.exitcode"), "utf8").trim() === "2")
        note = fs.readFileSync(path.join(mr, "plan.md"), "utf8");
    });
    assert.equal(plan.code, 0, `${plan.failed}: ${plan.stderr}`);
    assert.match(note, /node-labels/);
    assert.doesNotMatch(note, /init-master|distribute/, "only what the label change touches");
    const main = path.join(tmp, "gl-main");
    const apply = runJob(gl.apply!, main, (b) => {
      assert.match(b.script, /notes/);
      fs.mkdirSync(main, { recursive: true });
      fs.writeFileSync(path.join(main, "plan.md"), note);
    });
    assert.equal(apply.code, 0, `${apply.failed}: ${apply.stderr}`);
    const state = JSON.parse(fs.readFileSync(path.join(home, "clusters/ci-demo/state.json"), "utf8")) as {
      hosts: Record<string, { labels?: Record<string, string> }>;
    };
    assert.equal(state.hosts[node.ip]?.labels?.disk, "ssd", JSON.stringify(state.hosts));
    assert.match(await journal(), /"kubectl","argv":\["label".*disk=ssd/);
    const after = runJob(gl.plan!, path.join(tmp, "gl-mr-2"), () => undefined);
    assert.equal(after.code, 0);
    assert.equal(fs.readFileSync(path.join(tmp, "gl-mr-2", "plan.exitcode"), "utf8").trim(), "0");
  });
});
