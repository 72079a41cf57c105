import * as assert from "node:assert/strict";
import { distributeNode } from "../../../../provider/core/plan/phases/distribute";
import { emptyApplied } from "../../../../provider/core/plan/types";
import {
  baseImage,
  changeLayer,
  digest,
  LAYER,
  M,
  multiPlatform,
  W,
} from "../../../fixtures/clusterfile/plan-world";
import { changed, desired, fresh, on, partNames } from "./ctx";

describe("plan phase: distribute", () => {
  const img = baseImage();

  it("sends the host's layers in order, keyed by them, the Config documents and every env key (no template map)", () => {
    const n = distributeNode(fresh(), W[0]!, ["pre"]);
    assert.equal(n.step.kind, "distribute");
    assert.deepEqual(
      n.step.layers,
      img.layers.map((l) => l.digest),
    );
    assert.equal(n.step.platform, "linux/amd64");
    assert.deepEqual(n.deps, ["pre"]);
    assert.deepEqual(partNames(n), ["layers", "configs", "env:ImageOnly"]);
    assert.equal(n.newReason, `new cluster: host ${W[0]} as node`);
    assert.equal(n.note, undefined, "a single-platform image: the default platform is no guess worth saying");
  });

  it("a rebuilt layer: the reason names it and its paths", () => {
    const d0 = desired({}, img);
    const d1 = desired({}, changeLayer(img, LAYER.appWeb));
    const n = distributeNode(changed(d0, d1), W[0]!, []);
    assert.equal(
      n.parts[0]!.desc,
      `layer sha256:${digest(`layer-${LAYER.appWeb}-v2`).slice(7, 19)}… changed application/apps/web/`,
    );
  });

  it("layers only dropped: says so", () => {
    const d0 = desired({}, img);
    const d1 = desired({}, { ...img, layers: img.layers.slice(0, -1) });
    assert.equal(distributeNode(changed(d0, d1), W[0]!, []).parts[0]!.desc, "layers removed from the image");
  });

  it("a multi-platform image and a host not probed: planned with the default platform, and the note says so", () => {
    const multi = multiPlatform(img);
    const d = { ...desired({}, multi), hostPlatforms: { [M[0]!]: "linux/arm64" } };
    const ctx = on(d, emptyApplied("demo"));
    assert.equal(distributeNode(ctx, M[0]!, []).note, undefined);
    assert.equal(distributeNode(ctx, M[0]!, []).step.platform, "linux/arm64");
    assert.equal(
      distributeNode(ctx, W[0]!, []).note,
      `platform of ${W[0]} not probed yet: planned with the image's default linux/amd64`,
    );
  });
});
