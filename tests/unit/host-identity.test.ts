/**
 * A host made anew under the same address (a replaced Infra, a reinstalled machine) holds none of
 * what the state records for it: the Cluster provider forgets those records when the host's
 * identity (Infra Host.identity, fed as Cluster.hostIds) changed, so the plan installs it again.
 */
import * as assert from "node:assert/strict";
import { plan } from "../../provider/core/plan/planner";
import { forgetRecreated } from "../../provider/resources/cluster";
import { baseImage, clusterfile, ids, installed, M, spec, W } from "../fixtures/clusterfile/plan-world";

describe("Cluster: hosts made anew (hostIds)", () => {
  const desired = { cluster: spec(clusterfile()), image: baseImage() };
  const applied = installed(desired);
  const ip = (xs: readonly string[], i: number) => xs[i]!;
  const idsOf = (ips: readonly string[], tag: string) =>
    Object.fromEntries(ips.map((h) => [h, `${h}@${tag}`]));
  const all = [...M, ...W];

  it("same identities: the state is kept as it is, nothing to do", () => {
    const same = forgetRecreated(applied, idsOf(all, "a"), idsOf(all, "a"), ip(M, 0));
    assert.equal(same, applied);
    assert.deepEqual(plan(desired, same).steps, []);
  });

  it("a worker made anew: only its steps run again, each saying why", () => {
    const w = ip(W, 0);
    const next = forgetRecreated(applied, idsOf(all, "a"), { ...idsOf(all, "a"), [w]: `${w}@b` }, ip(M, 0));
    assert.equal(next.hosts[w], undefined);
    const p = plan(desired, next);
    assert.ok(p.steps.length > 0);
    // Every step runs on that worker (the saved Clusterfile is rewritten on master0 as after any change).
    for (const s of p.steps.filter((x) => x.kind !== "save-clusterfile"))
      assert.deepEqual(s.hosts, [w], s.id);
    assert.ok(ids(p).includes(`join-worker:${w}`), ids(p).join(" "));
    assert.ok(ids(p).includes(`distribute:${w}`), ids(p).join(" "));
    const join = p.steps.find((s) => s.id === `join-worker:${w}`)!;
    assert.match(join.reason, /made anew/);
    // The other hosts keep their records.
    for (const h of all.filter((x) => x !== w)) assert.deepEqual(next.hosts[h], applied.hosts[h]);
  });

  it("master0 made anew: a new cluster, every host installed from the start", () => {
    const m0 = ip(M, 0);
    const next = forgetRecreated(applied, idsOf(all, "a"), { ...idsOf(all, "a"), [m0]: `${m0}@b` }, m0);
    assert.deepEqual(next.steps, {});
    assert.deepEqual(next.hosts, {});
    const p = plan(desired, next);
    for (const h of all) assert.ok(ids(p).includes(`distribute:${h}`), `distribute:${h}`);
    assert.ok(ids(p).includes("init-master"), ids(p).join(" "));
  });

  it("no old identity (a state from before hostIds), or a host not recorded yet: nothing is forgotten", () => {
    assert.equal(forgetRecreated(applied, undefined, idsOf(all, "b"), ip(M, 0)), applied);
    assert.equal(forgetRecreated(applied, {}, idsOf(all, "b"), ip(M, 0)), applied);
  });
});
