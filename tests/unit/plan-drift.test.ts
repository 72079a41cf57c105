/** Planner + forgetSteps: a forgotten record is planned again, with "drift: …" as its reason, and nothing else is. */
import * as assert from "node:assert/strict";
import {
  buildReport,
  driftNotes,
  expectations,
  forgetSteps,
  type ClusterLayout,
  type HostObservation,
} from "../../provider/core/drift/compare";
import { withFootprint } from "../../provider/core/exec/footprint";
import { plan, type Desired } from "../../provider/core/plan/planner";
import { recordStep } from "../../provider/core/exec/record";
import { baseImage, clusterfile, installed, M, spec, W } from "../fixtures/clusterfile/plan-world";

describe("planner: steps forgotten after drift", () => {
  const d: Desired = { cluster: spec(clusterfile()), image: baseImage() };
  const applied = installed(d);

  const cases: Array<{ name: string; forget: string[]; notes: Record<string, string>; planned: string[] }> = [
    {
      name: "layers gone on a worker: only its distribute",
      forget: [`distribute:${W[0]}`],
      notes: { [`distribute:${W[0]}`]: `${W[0]} blobs: missing 0123456789ab` },
      planned: [`distribute:${W[0]}`],
    },
    {
      name: "registry hosts block gone: only that host's registry-client",
      forget: [`registry-client:${M[1]}`],
      notes: { [`registry-client:${M[1]}`]: `${M[1]} hosts:registry: block missing` },
      planned: [`registry-client:${M[1]}`],
    },
    {
      name: "a label removed by hand: only node-labels",
      forget: [`node-labels:${W[1]}`],
      notes: { [`node-labels:${W[1]}`]: `${W[1]} labels: disk absent` },
      planned: [`node-labels:${W[1]}`],
    },
    {
      name: "without a note the reason still says drift",
      forget: [`node-labels:${W[1]}`],
      notes: {},
      planned: [`node-labels:${W[1]}`],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const p = plan(d, forgetSteps(applied, c.forget, c.notes));
      assert.deepEqual(
        p.steps.map((s) => s.id),
        c.planned,
      );
      for (const s of p.steps)
        assert.equal(s.reason, `drift: ${c.notes[s.id] ?? "its effect is gone from the host"}`);
    });

  it("a worker gone from the node list: its join and its labels run again, joined before labelled", () => {
    const p = plan(d, forgetSteps(applied, [`join-worker:${W[0]}`, `node-labels:${W[0]}`], {}));
    const ids = p.steps.map((s) => s.id);
    assert.ok(ids.includes(`join-worker:${W[0]}`) && ids.includes(`node-labels:${W[0]}`), ids.join(" "));
    assert.ok(!ids.some((id) => id.endsWith(W[1]!) || id.startsWith("distribute:")), ids.join(" "));
    const labels = p.steps.find((s) => s.id === `node-labels:${W[0]}`)!;
    assert.ok(labels.after.includes(`join-worker:${W[0]}`));
  });

  it("running the step clears its drift note; a second plan is empty", () => {
    const forgotten = forgetSteps(applied, [`distribute:${W[0]}`], { [`distribute:${W[0]}`]: "x" });
    assert.deepEqual(forgotten.drift, { [`distribute:${W[0]}`]: "x" });
    const p = plan(d, forgotten);
    const after = recordStep(forgotten, p.steps[0]!, d);
    assert.equal(after.drift, undefined);
    assert.deepEqual(plan(d, after).steps, []);
  });

  it("forgetSteps is pure and ignores ids that are not recorded", () => {
    const before = JSON.stringify(applied);
    const out = forgetSteps(applied, ["distribute:10.9.9.9", `node-labels:${W[0]}`]);
    assert.equal(JSON.stringify(applied), before);
    assert.deepEqual(Object.keys(out.drift ?? {}), [`node-labels:${W[0]}`]);
    assert.equal(out.steps[`node-labels:${W[0]}`], undefined);
    assert.ok(out.steps[`distribute:${W[0]}`]);
  });

  it("a file two steps wrote goes missing: both run again in plan order, each with the path and host as reason; re-recording makes the plan empty", () => {
    const ip = W[0]!;
    const conf = "/etc/containerd/config.toml";
    // A pre-init-host hook writes the file; the runtime's script rewrites it later.
    const hook = `hook:pre-init-host:sysctl:${ip}`;
    assert.ok(applied.steps[hook]);
    let st = withFootprint(applied, hook, { [ip]: { files: { [conf]: "3".repeat(64) } } });
    st = withFootprint(st, `container-runtime:${ip}`, { [ip]: { files: { [conf]: "1".repeat(64) } } });
    st = withFootprint(st, `init-host:${ip}`, {
      [ip]: { files: { "/etc/sysctl.d/k8s.conf": "2".repeat(64) } },
    });
    const layout: ClusterLayout = {
      cluster: d.cluster.name,
      masters: [...M],
      workers: [...W],
      registryHosts: [],
      registryTargets: {},
      registryDomain: "sea.hub",
      localRegistry: false,
      hostAliases: [],
      vip: "10.103.97.2",
      apiserverDomain: "apiserver.cluster.local",
    };
    const e = expectations(st, layout).find((x) => x.host === ip)!;
    const seen: HostObservation = {
      host: ip,
      blobs: {},
      layersJson: null,
      rootfs: true,
      blocks: {},
      files: { [conf]: null, "/etc/sysctl.d/k8s.conf": "2".repeat(64) },
    };
    // Only the footprint: the layers, blocks and node are not what this test is about.
    const r = buildReport(d.cluster.name, [{ ...e, blocks: [] }], [seen], {
      ok: false,
      unreachable: false,
      error: "",
    });
    const writers = [`container-runtime:${ip}`, hook];
    assert.deepEqual(
      r.steps.filter((id) => !id.startsWith("distribute:")),
      writers,
    );
    const p = plan(d, forgetSteps(st, writers, driftNotes(r)));
    assert.deepEqual(
      p.steps.map((s) => s.id),
      [hook, `container-runtime:${ip}`],
    );
    for (const s of p.steps) assert.equal(s.reason, `drift: ${conf} missing on ${ip}`);
    let after = forgetSteps(st, writers, driftNotes(r));
    for (const s of p.steps) after = recordStep(after, s, d);
    assert.deepEqual(plan(d, after).steps, []);
    assert.equal(after.drift, undefined);
  });
});
