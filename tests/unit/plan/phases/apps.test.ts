import * as assert from "node:assert/strict";
import { UserError } from "../../../../provider/core/errors";
import { launchSteps, resolveLaunch } from "../../../../provider/core/plan/phases/apps";
import { baseImage, M } from "../../../fixtures/clusterfile/plan-world";
import { byId, changed, desired, fresh, ids } from "./ctx";

describe("plan phase: launch", () => {
  const img = baseImage({
    apps: [
      { name: "web", type: "kube", files: ["deploy.yaml", "svc.yml", "README.md"] },
      { name: "db", type: "helm", files: ["Chart.yaml"] },
      { name: "job", type: "shell", files: ["run.sh", "lib.txt"] },
      { name: "own", type: "kube", files: ["a.yaml"], cmds: ["kubectl apply -k application/apps/own"] },
    ],
  });

  it("default launch commands by app type; an app's own CMDS win", () => {
    const { apps } = resolveLaunch(
      desired({ extraSpec: "  appNames: [ web, db, job, own ]\n" }).cluster,
      img,
    );
    assert.deepEqual(
      apps.map((a) => a.cmds),
      [
        [
          "kubectl apply -f application/apps/web/deploy.yaml",
          "kubectl apply -f application/apps/web/svc.yml",
        ],
        ["helm upgrade --install db application/apps/db"],
        ["bash application/apps/job/run.sh"],
        ["kubectl apply -k application/apps/own"],
      ],
    );
  });

  it("precedence: Clusterfile cmd over appNames over the image's LAUNCH over its CMDS", () => {
    const cmd = resolveLaunch(
      desired({ extraSpec: "  cmd: [ echo hi ]\n  appNames: [ web ]\n" }).cluster,
      img,
    );
    assert.deepEqual(cmd, { cmds: { cmds: ["echo hi"], source: "Clusterfile cmd" }, apps: [] });
    const fromImage = resolveLaunch(desired().cluster, img);
    assert.deepEqual(
      fromImage.apps.map((a) => a.name),
      ["web", "db"],
      "the image's LAUNCH",
    );
    const cmds = resolveLaunch(desired().cluster, { ...img, launch: { cmds: ["x"] } });
    assert.deepEqual(cmds.cmds, { cmds: ["x"], source: "image CMDS" });
  });

  it("an app the image lacks: a UserError naming the field and the image's apps", () => {
    assert.throws(
      () => resolveLaunch(desired({ extraSpec: "  appNames: [ nope ]\n" }).cluster, img),
      (e: unknown) =>
        e instanceof UserError &&
        /spec\.appNames: app "nope" is not in image registry\.example\.com\/team\/saas:1\.0 \(its apps: web, db, job, own\)/.test(
          e.message,
        ),
    );
  });

  it("apps launch one after the other on master0, after what they wait for", () => {
    const r = launchSteps(fresh(), ["hook:post-install:smoke"]);
    assert.deepEqual(ids(r.nodes), ["launch-app:web", "launch-app:db"]);
    const db = byId(r.nodes, "launch-app:db");
    assert.deepEqual(db.step.hosts, [M[0]]);
    assert.deepEqual(db.deps, ["hook:post-install:smoke", "launch-app:web"]);
    assert.equal(r.last, "launch-app:db");
    assert.deepEqual(r.warnings, []);
  });

  it("an app no longer launched: no step, a warning saying its resources stay", () => {
    const ctx = changed(desired(), desired({ extraSpec: "  appNames: [ web ]\n" }));
    const r = launchSteps(ctx, []);
    assert.deepEqual(ids(r.nodes), ["launch-app:web"]);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /^app db is no longer launched: what it installed stays in the cluster/);
  });

  it("launch commands read the layers their text names", () => {
    const ctx = fresh({ extraSpec: "  cmd: [ kubectl apply -f manifests/a.yaml ]\n" });
    const n = byId(launchSteps(ctx, []).nodes, "launch-cmds");
    assert.deepEqual(n.step.kind === "launch-cmds" && n.step.cmds, ["kubectl apply -f manifests/a.yaml"]);
    assert.deepEqual(n.parts.map((p) => p.name).slice(0, 3), ["cmds", "layers:launch-cmds", "configs"]);
  });
});
