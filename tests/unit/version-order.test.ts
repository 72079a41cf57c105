/**
 * Kubernetes versions are ordered as semver orders them: a release candidate comes before its
 * release, so moving from 1.29.0 to 1.29.0-rc.1 is a rollback, not an upgrade.
 */
import * as assert from "node:assert/strict";
import { plan, type Desired } from "../../provider/core/plan/planner";
import { compareVersions } from "../../provider/core/plan/phases/upgrade";
import { baseImage, clusterfile, installed, spec } from "../fixtures/clusterfile/plan-world";

describe("Kubernetes version order", () => {
  const sign = (a: string, b: string) => Math.sign(compareVersions(a, b));

  it("a prerelease sorts before its release and after the previous patch", () => {
    assert.equal(sign("v1.29.0-rc.1", "v1.29.0"), -1);
    assert.equal(sign("v1.29.0", "v1.29.0-rc.1"), 1);
    assert.equal(sign("v1.29.0-rc.1", "v1.28.9"), 1);
    assert.equal(sign("v1.29.0-rc.1", "v1.29.0-rc.2"), -1);
    assert.equal(sign("v1.29.0-alpha.3", "v1.29.0-beta.0"), -1);
  });

  it("numbers compare as numbers, with or without the v, and a missing part counts as 0", () => {
    assert.equal(sign("v1.28.10", "v1.28.9"), 1);
    assert.equal(sign("1.28.2", "v1.28.2"), 0);
    assert.equal(sign("v1.28", "v1.28.0"), 0);
    assert.equal(sign("v1.28.2+k3s1", "v1.28.2"), 0);
  });

  it("a version with no number sorts before any real one", () => {
    assert.equal(sign("", "v1.28.2"), -1);
    assert.equal(sign("v1.28.2", ""), 1);
    assert.equal(sign("", ""), 0);
  });

  it("the planner calls 1.29.0 -> 1.29.0-rc.1 a rollback and the way back an upgrade", () => {
    const cluster = spec(clusterfile());
    const release: Desired = { cluster, image: { ...baseImage(), kubeVersion: "v1.29.0" } };
    const rc: Desired = { cluster, image: { ...baseImage(), kubeVersion: "v1.29.0-rc.1" } };
    const reason = (from: Desired, to: Desired) =>
      plan(to, installed(from)).steps.find((s) => s.kind === "upgrade-master")?.reason;
    assert.equal(reason(release, rc), "kube version v1.29.0 -> v1.29.0-rc.1 (older: a rollback)");
    assert.equal(reason(rc, release), "kube version v1.29.0-rc.1 -> v1.29.0");
  });
});
