import * as assert from "node:assert/strict";
import { keyOf } from "../../../../provider/core/plan/keys";
import { saveClusterfileStep } from "../../../../provider/core/plan/phases/save-clusterfile";
import { emptyApplied } from "../../../../provider/core/plan/types";
import { baseImage, clusterfile, digest, M, spec } from "../../../fixtures/clusterfile/plan-world";
import { changed, desired, fresh, on } from "./ctx";

describe("plan phase: save-clusterfile", () => {
  const key = (o: Parameters<typeof fresh>[0], img = baseImage()) =>
    keyOf(saveClusterfileStep(fresh(o, img), []).parts);

  it("on master0, after what it is given, with the new-cluster wording", () => {
    const n = saveClusterfileStep(fresh(), ["launch-app:db"]);
    assert.deepEqual(n.step.hosts, [M[0]]);
    assert.deepEqual(n.deps, ["launch-app:db"]);
    assert.equal(
      n.newReason,
      "new cluster: save the Clusterfile on master0 and in kube-system/sealer-clusterfile",
    );
    assert.equal(saveClusterfileStep(changed(desired(), desired()), []).newReason, "not applied yet");
  });

  it("keyed by the spec without ssh credentials or the distribution mode, and by the image", () => {
    const base = key({});
    assert.equal(key({ extraSpec: "  distribution: relay\n" }), base);
    const otherPassword = spec(clusterfile().replace("ssh-pass-1", "ssh-pass-2"));
    const ctx = on({ cluster: otherPassword, image: baseImage() }, emptyApplied("demo"));
    assert.equal(keyOf(saveClusterfileStep(ctx, []).parts), base);
    assert.notEqual(key({ extraSpec: "  env: [ A=1 ]\n" }), base);
    assert.notEqual(key({}, baseImage({ manifestDigest: digest("other") })), base);
  });
});
