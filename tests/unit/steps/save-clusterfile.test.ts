/** save-clusterfile against the recording fake host: where the Clusterfile goes, its record and its drift check. */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { saveClusterfile } from "../../../provider/core/exec/steps/save-clusterfile";
import { CommandError } from "../../../provider/core/ssh";
import { M0, drifted, expected, knowing, recorded, step, world } from "./world";

describe("step save-clusterfile (fake host)", () => {
  it("stores the Clusterfile without secrets on master0 and in the configmap, then locally", async () => {
    const w = world();
    const seen = await saveClusterfile.run(w.ctx, step("save-clusterfile", [M0]));
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
    assert.deepEqual(Object.keys(seen.footprint![M0]!.files!), [remote]);
  });

  it("a failed configmap update leaves the local record unwritten", async () => {
    const w = world();
    w.io.answer({ host: M0, match: /configmap sealer-clusterfile/, code: 1, stderr: "connection refused" });
    await assert.rejects(saveClusterfile.run(w.ctx, step("save-clusterfile", [M0])), CommandError);
    assert.ok(!fs.existsSync(path.join(w.stateDir, "clusterfile.yaml")));
  });

  it("records the image (keeping the previous one for rollback) and the data root; drift sees a changed or removed copy", async () => {
    const w = world();
    const s = step("save-clusterfile", [M0], { id: "save-clusterfile" });
    const seen = await saveClusterfile.run(w.ctx, s);
    const before = {
      ...knowing(w, [M0]),
      image: { reference: "old:1", manifestDigest: "sha256:old" },
    };
    const after = recorded(w, s, seen, before);
    assert.deepEqual(after.image, {
      reference: w.ctx.image.reference,
      manifestDigest: w.ctx.image.manifestDigest,
      kubeVersion: w.ctx.image.kubeVersion,
    });
    assert.deepEqual(after.previousImage, { reference: "old:1", manifestDigest: "sha256:old" });
    assert.equal(after.dataRoot, w.ctx.dataRoot);
    const remote = `${w.ctx.clusterDir}/Clusterfile`;
    assert.deepEqual(after.steps["save-clusterfile"]!.footprint, seen.footprint);
    // With a footprint the file is checked by content, not presence.
    assert.equal(expected(w, after, M0).clusterfile, false);
    assert.deepEqual(drifted(w, after, M0), {});
    assert.deepEqual(drifted(w, after, M0, { files: { [remote]: "0".repeat(64) } }), {
      [`file:${remote}`]: ["save-clusterfile"],
    });
    assert.deepEqual(drifted(w, after, M0, { files: { [remote]: null } }), {
      [`file:${remote}`]: ["save-clusterfile"],
    });
    // A record from before footprints: only the file's presence is checked.
    const old = recorded(w, s, {}, knowing(w, [M0]));
    assert.equal(expected(w, old, M0).clusterfile, true);
    assert.deepEqual(drifted(w, old, M0, { clusterfile: false }), { clusterfile: ["save-clusterfile"] });
  });
});
