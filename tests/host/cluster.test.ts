/**
 * ClusterImage + Cluster under Pulumi's own dynamic provider host, on real local nodes (sshd in
 * network namespaces) with the sandbox base image. Driven over gRPC as the engine does, with the
 * providers and inputs serialized by the SDK classes.
 *
 * Scenario: create (1 master + 1 worker); same program -> no changes; one app file changed ->
 * the plan (and the update) has only that app's steps; a worker added -> only that host's steps
 * and its join; a host unreachable mid-update -> partial state, then the next update finishes
 * only what is left; a rename previews the old cluster's destroy and the new install; delete
 * runs what `sealer delete -a` runs (uninstall hooks, clean-host, blob GC, data root) and leaves
 * the nodes clean. Secret outputs arrive marked secret.
 * Needs root (network namespaces).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, ClusterImage } from "../../sdk";
import { buildImage } from "../../provider/core/image/builder";
import { execInNode, startSshd, stopSshd, type LocalNode } from "../../provider/core/infra/local";
import { createNodeGroup, uniquePrefix } from "../harness/nodes";
import {
  type Host,
  type InitFailed,
  type Props,
  isSecret,
  plain,
  removedPlanLines,
  repoRoot,
  sdkInputs,
  startTestHost,
  showHostLogIfFailed,
} from "./harness";

const IMG_URN = "urn:pulumi:host::sealer-host-test::pulumi-nodejs:dynamic/sealer:ClusterImage::app";
const CL_URN = "urn:pulumi:host::sealer-host-test::pulumi-nodejs:dynamic/sealer:Cluster::c";

/** The step lines of a `plan` (its last line is the plan digest). */
const stepLines = (plan: unknown): string[] =>
  (plan as string[]).filter((l) => !l.startsWith("plan digest: "));
/** "<id> [hosts]: reason" -> id */
const ids = (plan: unknown): string[] => stepLines(plan).map((l) => l.slice(0, l.indexOf(" [")));

/** Uninstall hooks that leave a mark outside the data root (what destroy must run, like delete -a). */
const HOOKS = ["pre-uninstall", "post-uninstall"]
  .map(
    (phase) =>
      `apiVersion: sealer.io/v2\nkind: Plugin\nmetadata: { name: mark-${phase} }\nspec:\n  type: SHELL\n  action: ${phase}\n  data: "mkdir -p /root/hook-marks && touch /root/hook-marks/${phase}"\n`,
  )
  .join("---\n");

/** stdout of a command on a node that must succeed. */
async function nodeText(n: LocalNode, cmd: string): Promise<string> {
  const r = await execInNode(n, cmd);
  assert.equal(r.code, 0, `${n.name}: ${cmd}: ${r.stderr}`);
  return r.stdout;
}

describe("host: Cluster on local nodes under the dynamic provider host", function () {
  this.timeout(600_000);
  const isRoot = process.getuid?.() === 0;
  let tmp: string;
  let home: string;
  let ctx: string;
  let host: Host;
  let nodes: Awaited<ReturnType<typeof createNodeGroup>>;
  let master: LocalNode;
  let w1: LocalNode;
  let w2: LocalNode;
  let key: string;
  const prevHome = process.env.SEALER_HOME;

  before(async function () {
    if (!isRoot) throw new Error("the Cluster host test needs root (network namespaces for local nodes)");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-host-cl-"));
    home = path.join(tmp, "home");
    // The test process (nodes, builder) and the host process share one data dir.
    process.env.SEALER_HOME = home;
    await buildImage({
      context: path.join(repoRoot(), "examples/sandbox-base"),
      tag: "sandbox-base:v1.28.2",
      home,
    });
    ctx = path.join(tmp, "ctx");
    for (const app of ["web", "db"]) {
      fs.mkdirSync(path.join(ctx, app), { recursive: true });
      fs.writeFileSync(
        path.join(ctx, app, `${app}.yaml`),
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${app}\ndata:\n  v: "1"\n`,
      );
    }
    fs.writeFileSync(
      path.join(ctx, "Kubefile"),
      'FROM sandbox-base:v1.28.2\nAPP web local://web\nAPP db local://db\nLAUNCH ["web","db"]\n',
    );
    nodes = await createNodeGroup(3, { prefix: uniquePrefix("hc") });
    [master, w1, w2] = nodes.list as [LocalNode, LocalNode, LocalNode];
    key = fs.readFileSync(master.keyPath, "utf8");
    host = await startTestHost(home, 3000);
  });

  afterEach(function () {
    showHostLogIfFailed(this.currentTest, host);
  });

  after(async () => {
    await host?.stop();
    await nodes?.destroy();
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  // ---- engine-side state of the two resources ----
  let img: { id: string; inputs: Props; outs: Props };
  let cl: { id: string; inputs: Props; outs: Props };

  async function imageInputs(): Promise<Props> {
    return plain(await sdkInputs(() => new ClusterImage("app", { context: ctx, tag: "host-test/app:1" })));
  }

  /** Runs the image through check/diff/(create|update) as `pulumi up` would. */
  async function upImage(): Promise<void> {
    const { inputs } = await host.check(IMG_URN, img?.inputs ?? {}, await imageInputs());
    if (!img) {
      const r = await host.create(IMG_URN, inputs);
      img = { id: r.id, inputs, outs: r.properties };
      return;
    }
    const d = await host.diff(IMG_URN, img.id, plain(img.outs), inputs, img.inputs);
    if (d.changes === "some")
      img = {
        id: img.id,
        inputs,
        outs: (await host.update(IMG_URN, img.id, plain(img.outs), inputs, img.inputs)).properties,
      };
  }

  /**
   * `pulumi preview` of the image: check (which builds under the preview name) and diff. The
   * engine previews an update of a dynamic resource with the checked inputs as its outputs.
   */
  async function previewImage(): Promise<Props> {
    const { inputs } = await host.check(IMG_URN, img.inputs, await imageInputs());
    const d = await host.diff(IMG_URN, img.id, plain(img.outs), inputs, img.inputs);
    return d.changes === "some" ? inputs : img.outs;
  }

  /** The Cluster's inputs from the SDK; `preview` as a `pulumi preview` run registers them. */
  async function clusterInputs(
    workers: LocalNode[],
    image: Props = img.outs,
    name?: string,
    preview = false,
  ): Promise<Props> {
    return plain(
      await sdkInputs(
        () =>
          new Cluster("c", {
            name: "hostc",
            image: image.reference as string,
            imageDigest: image.digest as string,
            masters: [master.ip],
            workers: workers.map((w) => w.ip),
            ssh: { privateKey: key },
            env: { GREETING: "hello" },
            clusterfile: HOOKS,
            ...(name ? { name } : {}),
          }),
        { preview },
      ),
    );
  }
  const previewInputs = (workers: LocalNode[], image: Props = img.outs, name?: string) =>
    clusterInputs(workers, image, name, true);

  it("creates the image and the cluster; the preview plan is the full install; secrets come back secret", async () => {
    await upImage();
    const preview = await host.check(CL_URN, {}, await previewInputs([w1]));
    assert.deepEqual(preview.failures, []);
    const planned = ids(preview.inputs.plan);
    assert.ok(planned.includes("init-master"), planned.join("\n"));
    assert.ok(planned.includes(`join-worker:${w1.ip}`));
    assert.ok(planned.includes("launch-app:web") && planned.includes("launch-app:db"));
    // pulumi up: the update run's checked inputs are what the engine stores; they hold no plan.
    const { inputs, failures } = await host.check(CL_URN, {}, await clusterInputs([w1]));
    assert.deepEqual(failures, []);
    assert.equal(inputs.plan, undefined, "an update's stored inputs carry no plan");
    const r = await host.create(CL_URN, inputs);
    cl = { id: r.id, inputs, outs: r.properties };
    assert.equal(r.id, "hostc");
    assert.deepEqual(
      (r.properties.steps as Array<{ id: string }>).map((s) => s.id).sort(),
      [...planned].sort(),
      "what ran is what the preview showed (independent steps may finish in any order)",
    );
    assert.deepEqual(r.properties.pending, []);
    assert.ok(isSecret(r.properties.kubeconfig), "kubeconfig must be secret");
    assert.ok(isSecret(r.properties.joinSecrets), "join material must be secret");
    assert.ok(isSecret(r.properties.ssh), "the ssh key must be secret");
    // The stand-in kubeadm ran init on the master and join on the worker.
    const journal = await execInNode(w1, "cat /var/log/sealer-sandbox/journal.jsonl");
    assert.match(journal.stdout, /"kubeadm","argv":\["join"/);
  });

  it("same program: check plans nothing and diff says no changes", async () => {
    await upImage();
    const { inputs } = await host.check(CL_URN, cl.inputs, await previewInputs([w1]));
    assert.deepEqual(inputs.plan, []);
    const d = await host.diff(CL_URN, cl.id, plain(cl.outs), inputs, cl.inputs);
    assert.deepEqual(d, { changes: "none", replaces: [], deleteBeforeReplace: false });
  });

  it("one app file changed: the preview lists only that app's steps, and up runs exactly those", async () => {
    fs.writeFileSync(
      path.join(ctx, "web/web.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: "2"\n',
    );
    // pulumi preview: the image is built under its preview name; the cluster plans against it.
    const previewed = await previewImage();
    assert.notEqual(previewed.digest, img.outs.digest, "the preview knows the new digest");
    const preview = await host.check(CL_URN, cl.inputs, await previewInputs([w1], previewed));
    assert.deepEqual(
      removedPlanLines(cl.inputs, preview.inputs),
      [],
      "the preview shows no stale plan lines",
    );
    const previewDiff = await host.diff(CL_URN, cl.id, plain(cl.outs), preview.inputs, cl.inputs);
    assert.deepEqual(previewDiff, { changes: "some", replaces: [], deleteBeforeReplace: false });
    // What `pulumi preview --diff` shows for this change (docs/pulumi.md is written from it).
    process.stderr.write(
      `preview --diff material:\n` +
        JSON.stringify(
          {
            contentHash: [img.inputs.contentHash, previewed.contentHash],
            digest: [img.outs.digest, previewed.digest],
            layers: [img.outs.layers, previewed.layers],
            plan: preview.inputs.plan,
          },
          null,
          1,
        ) +
        "\n",
    );
    // pulumi up: the image is rebuilt (same digest as previewed), then the cluster.
    await upImage();
    assert.equal(img.outs.digest, previewed.digest, "the build at up has the digest the preview announced");
    const { inputs } = await host.check(CL_URN, cl.inputs, await clusterInputs([w1]));
    assert.equal(inputs.plan, undefined, "an update's stored inputs carry no plan");
    const planned = ids(preview.inputs.plan);
    assert.ok(planned.includes("launch-app:web"), planned.join("\n"));
    assert.ok(!planned.includes("launch-app:db"), "db is unchanged");
    for (const id of planned)
      assert.match(id, /^(distribute|launch-app:web|save-clusterfile)/, `unexpected step ${id}`);
    const d = await host.diff(CL_URN, cl.id, plain(cl.outs), inputs, cl.inputs);
    assert.deepEqual(d, { changes: "some", replaces: [], deleteBeforeReplace: false });
    const u = await host.update(CL_URN, cl.id, plain(cl.outs), inputs, cl.inputs);
    assert.deepEqual(
      (u.properties.steps as Array<{ id: string }>).map((s) => s.id).sort(),
      [...planned].sort(),
    );
    cl = { id: cl.id, inputs, outs: u.properties };
    // Right after the update, the same program: nothing planned, and what a preview displays for
    // `plan` (the old outputs against the checked inputs) is the same empty list: no stale lines.
    const same = await host.check(CL_URN, cl.inputs, await previewInputs([w1]));
    assert.deepEqual(same.inputs.plan, []);
    assert.deepEqual(u.properties.plan, [], "the outputs' plan is what is left to do, not what ran");
    assert.deepEqual(await host.diff(CL_URN, cl.id, plain(cl.outs), same.inputs, cl.inputs), {
      changes: "none",
      replaces: [],
      deleteBeforeReplace: false,
    });
    // The superseded app layer is collected: each node keeps exactly the layers it uses (as blobs
    // or as extracted trees with their listings).
    for (const n of [master, w1]) {
      const used = JSON.parse(await nodeText(n, "cat /var/lib/sealer/hostc/layers.json")) as {
        layers: string[];
      };
      const kept = (
        await nodeText(
          n,
          "{ ls /var/lib/sealer/blobs/sha256; ls /var/lib/sealer/layers; } 2>/dev/null | sed 's/[.]list$//' | sort -u",
        )
      )
        .split("\n")
        .filter(Boolean)
        .sort();
      assert.deepEqual(kept, used.layers.map((d) => d.slice("sha256:".length)).sort(), n.name);
    }
  });

  it("a worker added: only that host's steps and its join; the preview shows no lines of the last update", async () => {
    const { inputs } = await host.check(CL_URN, cl.inputs, await previewInputs([w1, w2]));
    // The stored inputs are the last update's: the web app's steps ran then and must not show as removed.
    assert.deepEqual(removedPlanLines(cl.inputs, inputs), []);
    process.stderr.write(
      `plan after adding a worker:\n${(inputs.plan as string[]).map((l) => `  ${l}`).join("\n")}\n`,
    );
    const planned = ids(inputs.plan);
    assert.ok(planned.includes(`join-worker:${w2.ip}`), planned.join("\n"));
    assert.ok(
      !planned.some(
        (id) => id === "init-master" || id.startsWith("join-master") || id === `join-worker:${w1.ip}`,
      ),
    );
    assert.ok(!planned.some((id) => id.startsWith("launch-app")), "apps are not re-launched");
    for (const line of stepLines(inputs.plan)) {
      const hosts = line.slice(line.indexOf("[") + 1, line.indexOf("]")).split(",");
      if (!line.startsWith("save-clusterfile") && !line.startsWith("node-labels"))
        assert.deepEqual(hosts, [w2.ip], line);
    }
    const up = (await host.check(CL_URN, cl.inputs, await clusterInputs([w1, w2]))).inputs;
    const u = await host.update(CL_URN, cl.id, plain(cl.outs), up, cl.inputs);
    cl = { id: cl.id, inputs: up, outs: u.properties };
    const journal = await execInNode(w2, "cat /var/log/sealer-sandbox/journal.jsonl");
    assert.match(journal.stdout, /"kubeadm","argv":\["join"/);
  });

  it("a host unreachable mid-update: partial state with what ran; the next update finishes only the rest", async () => {
    fs.writeFileSync(
      path.join(ctx, "db/db.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: db\ndata:\n  v: "2"\n',
    );
    await upImage();
    const planned = ids((await host.check(CL_URN, cl.inputs, await previewInputs([w1, w2]))).inputs.plan);
    const { inputs } = await host.check(CL_URN, cl.inputs, await clusterInputs([w1, w2]));
    nodes.update(await stopSshd(w2));
    let failed: InitFailed | undefined;
    try {
      await host.update(CL_URN, cl.id, plain(cl.outs), inputs, cl.inputs);
    } catch (err) {
      failed = (err as { initFailed?: InitFailed }).initFailed;
      assert.ok(failed, `expected partial state, got ${String(err)}`);
    }
    assert.ok(failed, "the update must fail while a worker is unreachable");
    assert.equal(failed.id, "hostc");
    assert.match(failed.reasons[0]!, new RegExp(w2.ip.replace(/\./g, "\\.")));
    const pending = (failed.properties.pending as Array<{ id: string }>).map((s) => s.id);
    assert.ok(pending.length > 0 && pending.length < planned.length + 1, `pending: ${pending.join(", ")}`);
    // The engine keeps the partial outputs; the host is back; the next `up` resumes.
    cl = { id: cl.id, inputs, outs: failed.properties };
    nodes.update(await startSshd(w2, { wait: true }));
    const again = await host.check(CL_URN, cl.inputs, await clusterInputs([w1, w2]));
    const d = await host.diff(CL_URN, cl.id, plain(cl.outs), again.inputs, cl.inputs);
    assert.equal(d.changes, "some");
    const u = await host.update(CL_URN, cl.id, plain(cl.outs), again.inputs, cl.inputs);
    assert.deepEqual(
      (u.properties.steps as Array<{ id: string }>).map((s) => s.id).sort(),
      [...pending].sort(),
      "only the unfinished steps run",
    );
    assert.deepEqual(u.properties.pending, []);
    cl = { id: cl.id, inputs: again.inputs, outs: u.properties };
  });

  it("a renamed cluster previews the whole replacement: the old cluster's destroy, then the full install", async () => {
    const { inputs } = await host.check(CL_URN, cl.inputs, await previewInputs([w1, w2], img.outs, "hostd"));
    const plan = inputs.plan as string[];
    assert.match(
      plan[0]!,
      /^replace: cluster name hostc -> hostd: delete cluster hostc \(5 steps\), then install hostd/,
    );
    const planned = ids(plan.slice(1));
    assert.deepEqual(
      planned.filter((id) => id.startsWith("delete hostc: ")),
      [
        "delete hostc: hook:pre-uninstall:mark-pre-uninstall",
        ...[master, w1, w2].map((n) => `delete hostc: clean-host:${n.ip}`),
        "delete hostc: hook:post-uninstall:mark-post-uninstall",
      ],
    );
    for (const id of [
      "init-master",
      `join-worker:${w1.ip}`,
      `join-worker:${w2.ip}`,
      "launch-app:web",
      "launch-app:db",
    ])
      assert.ok(planned.includes(id), `${id} missing:\n${plan.join("\n")}`);
    const d = await host.diff(CL_URN, cl.id, plain(cl.outs), inputs, cl.inputs);
    assert.deepEqual(d, { changes: "some", replaces: ["name"], deleteBeforeReplace: true });
  });

  it("destroy is sealer delete -a: uninstall hooks on every node, clean-host, blobs collected, the data root gone", async () => {
    await host.delete(CL_URN, cl.id, plain(cl.outs), cl.inputs);
    const left: string[] = [];
    for (const n of [master, w1, w2]) {
      const r = await execInNode(
        n,
        "{ find /var/lib/sealer; find /etc/kubernetes -mindepth 1; } 2>/dev/null | head -5; true",
      );
      if (r.stdout.trim()) left.push(`${n.name} (${n.ip}): ${r.stdout.trim().split("\n").join(", ")}`);
      assert.equal(
        await nodeText(n, "ls /root/hook-marks"),
        "post-uninstall\npre-uninstall\n",
        `${n.name}: both uninstall hooks ran`,
      );
    }
    assert.deepEqual(left, [], "files the cluster wrote (blobs included) are left on the nodes");
    await host.delete(IMG_URN, img.id, plain(img.outs));
  });
});
