/** launch-app, launch-cmds and save-clusterfile against the recording fake host. */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { runLaunchApp, runLaunchCmds, runSaveClusterfile } from "../../../provider/core/exec/steps/apps";
import { CommandError } from "../../../provider/core/ssh";
import { baseImage } from "../../fixtures/clusterfile/plan-world";
import { M0, disposeWorlds, step, world } from "./world";

describe("steps: apps and save-clusterfile (fake host)", () => {
  afterEach(disposeWorlds);

  it("launch-app runs the app's commands in order on master0 with the app's env", async () => {
    const image = baseImage();
    image.apps[0] = { ...image.apps[0]!, env: { Replicas: "3" } };
    const w = world({ image });
    await runLaunchApp(
      w.ctx,
      step("launch-app", [M0], { app: "web", cmds: ["kubectl apply -f a", "kubectl apply -f b"] }),
    );
    assert.deepEqual(w.io.hosts(), [M0]);
    assert.deepEqual(w.io.bodies(M0), ["kubectl apply -f a", "kubectl apply -f b"]);
    for (const c of w.io.on(M0)) {
      assert.ok(c.op === "run" && c.command.includes("export Replicas=3;"), "app env exported");
      assert.equal(c.step, "launch-app web");
    }
  });

  it("launch-cmds stops at the first failing command, naming master0 and the step", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /^helm install/, code: 2, stderr: "Error: chart not found" });
    await assert.rejects(
      runLaunchCmds(
        w.ctx,
        step("launch-cmds", [M0], { cmds: ["echo one", "helm install x ./x", "echo three"] }),
      ),
      (e: Error) =>
        e instanceof CommandError &&
        e.host === M0 &&
        e.step === "launch-cmds" &&
        /chart not found/.test(e.message),
    );
    assert.deepEqual(w.io.bodies(M0), ["echo one", "helm install x ./x"]);
  });

  it("save-clusterfile stores the Clusterfile without secrets on master0 and in the configmap, then locally", async () => {
    const w = world();
    const fp = await runSaveClusterfile(w.ctx, step("save-clusterfile", [M0]));
    const remote = `${w.ctx.clusterDir}/Clusterfile`;
    const [p] = w.io.on(M0).filter((c) => c.op === "put");
    assert.ok(p && p.op === "put" && p.file === remote && p.mode === 0o600);
    assert.match(p.content, /kind: Cluster/);
    assert.ok(!p.content.includes("ssh-pass-1"), "the SSH password stays out of the cluster's copy");
    assert.equal(
      w.io.bodies(M0)[0],
      `kubectl -n kube-system create configmap sealer-clusterfile --from-file=Clusterfile=${remote} --dry-run=client -o yaml | kubectl apply -f -`,
    );
    assert.ok(fs.existsSync(path.join(w.stateDir, "clusterfile.yaml")));
    assert.deepEqual(Object.keys(fp[M0]!.files!), [remote]);
  });

  it("a failed configmap update leaves the local record unwritten", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /configmap sealer-clusterfile/, code: 1, stderr: "connection refused" });
    await assert.rejects(runSaveClusterfile(w.ctx, step("save-clusterfile", [M0])), CommandError);
    assert.ok(!fs.existsSync(path.join(w.stateDir, "clusterfile.yaml")));
  });
});
