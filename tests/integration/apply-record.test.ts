/**
 * The cluster record (clusters/<name>/clusterfile.yaml and state.json) holds what was applied:
 * an apply that fails at SSH authentication, or that the apply lock refuses, leaves it byte for
 * byte as it was, so `sealer exec --cluster-name` still reaches the hosts afterwards. One real
 * sshd node (password login for root), the sandbox base image.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { applyCluster } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { sshHostIo } from "../../provider/core/exec/host-io";
import { acquireApplyLock } from "../../provider/core/exec/lock";
import { OciLayout } from "../../provider/core/image/layout";
import type { LocalNode } from "../../provider/core/infra/local";
import { execOnCluster } from "../../provider/core/lifecycle/exec";
import { dataPaths } from "../../provider/core/paths";
import { clusterDir } from "../../provider/core/state";
import { useNodes } from "../harness/nodes";
import { tempDir } from "../harness/registry";
import { buildSandboxBase, SANDBOX_BASE } from "../harness/sandbox";

const NAME = "rec";
const RIGHT = "Right-Pass-1";

describe("integration: a failed or refused apply leaves the cluster record as it was", function () {
  this.timeout(300_000);
  const nodes = useNodes(1, { rootPassword: RIGHT });
  let home: string;
  let store: OciLayout;
  let savedHome: string | undefined;

  const spec = (password: string, label: string, name = NAME): ClusterSpec => {
    const n = nodes.list[0] as LocalNode;
    const text = [
      "apiVersion: sealer.io/v2",
      "kind: Cluster",
      `metadata: { name: ${name} }`,
      "spec:",
      `  image: ${SANDBOX_BASE}`,
      `  ssh: { user: root, passwd: ${JSON.stringify(password)} }`,
      "  hosts:",
      `    - { ips: [ ${n.ip} ], roles: [ master ], labels: { tier: ${label} } }`,
      "",
    ].join("\n");
    return loadClusterfile(text, { file: `${name}.yaml` }).spec;
  };
  const apply = (s: ClusterSpec) =>
    applyCluster({
      spec: s,
      store,
      knownHostsFile: nodes.knownHostsFile,
      ssh: { dialAttempts: 1, dialTimeoutMs: 5000 },
    });
  /** Every file of the record with its bytes. */
  const record = (name = NAME): Record<string, string> => {
    const dir = clusterDir(name);
    if (!fs.existsSync(dir)) return {};
    return Object.fromEntries(
      fs
        .readdirSync(dir)
        .filter((f) => fs.statSync(path.join(dir, f)).isFile())
        .sort()
        .map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")]),
    );
  };
  const hostname = () =>
    execOnCluster({
      clusterName: NAME,
      command: "hostname >/dev/null && echo reachable",
      knownHostsFile: nodes.knownHostsFile,
      ssh: { dialAttempts: 1, dialTimeoutMs: 5000 },
    });

  before(async function () {
    home = tempDir("apply-record");
    savedHome = process.env.SEALER_HOME;
    process.env.SEALER_HOME = home;
    store = new OciLayout(dataPaths.store(home));
    await buildSandboxBase(home);
    await apply(spec(RIGHT, "a"));
  });
  after(async () => {
    if (savedHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = savedHome;
    await fs.promises.rm(home, { recursive: true, force: true });
  });

  it("a wrong SSH password with a label change fails at authentication and changes no record", async () => {
    const before = record();
    assert.ok(before["clusterfile.yaml"] && before["state.json"], "the first apply recorded the cluster");
    // The password is kept apart from the Clusterfile record.
    assert.ok(!before["clusterfile.yaml"].includes(RIGHT));
    assert.ok(before["secrets.json"]?.includes(RIGHT));
    await assert.rejects(apply(spec("Wrong-Pass-9", "b")), (e: Error) => {
      assert.match(e.message, /auth|password|permission/i);
      return true;
    });
    assert.deepEqual(record(), before);
    const out = await hostname();
    assert.deepEqual(
      out.map((r) => [r.code, r.stdout.trim()]),
      [[0, "reachable"]],
    );
  });

  it("an apply refused by the lock changes no record; the next apply records its change", async () => {
    const before = record();
    const n = nodes.list[0] as LocalNode;
    const pool = nodes.pool();
    const target = { host: n.ip, port: n.port, user: "root", password: RIGHT };
    const release = await acquireApplyLock(
      sshHostIo(pool, () => target),
      { ip: n.ip, sshUser: "root" },
      `/var/lib/sealer/${NAME}`,
      NAME,
    );
    try {
      await assert.rejects(apply(spec(RIGHT, "c")), /is locked/);
      assert.deepEqual(record(), before);
    } finally {
      await release();
      await pool.close();
    }
    await apply(spec(RIGHT, "c"));
    assert.match(record()["clusterfile.yaml"] ?? "", /tier: c/);
    assert.notEqual(record()["state.json"], before["state.json"]);
  });

  it("a first install that fails before any step records nothing", async () => {
    await assert.rejects(apply(spec("Wrong-Pass-9", "a", "rec-new")));
    assert.deepEqual(record("rec-new"), {});
  });
});
