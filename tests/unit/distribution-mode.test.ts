/**
 * `spec.distribution`: parsed and validated with its Clusterfile line, kept through dump, and
 * invisible to the planner (every mode plans the same steps with the same keys).
 */
import * as assert from "node:assert/strict";
import { dumpClusterfile, loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { plan } from "../../provider/core/plan/planner";
import { emptyApplied } from "../../provider/core/plan/types";
import { baseImage, clusterfile, spec } from "../fixtures/clusterfile/plan-world";

describe("clusterfile: spec.distribution", () => {
  it("accepts ssh, relay and registry, and keeps the value through dump", () => {
    for (const mode of ["ssh", "relay", "registry"] as const) {
      const s = spec(clusterfile({ extraSpec: `  distribution: ${mode}\n` }));
      assert.equal(s.distribution, mode);
      assert.equal(loadClusterfile(dumpClusterfile(s, { secrets: true })).spec.distribution, mode);
    }
    assert.equal(spec(clusterfile()).distribution, undefined);
  });

  it("refuses another value, naming the file, line and field", () => {
    assert.throws(
      () => loadClusterfile(clusterfile({ extraSpec: "  distribution: ftp\n" }), { file: "Clusterfile" }),
      (e: Error) =>
        e instanceof UserError &&
        /Clusterfile:8 spec\.distribution: .*"ssh"\|"relay"\|"registry"/.test(e.message) &&
        /registry/.test(e.message),
    );
  });

  it("the plan's steps and keys are the same in every mode", () => {
    const image = baseImage();
    const keys = (extra: string) =>
      plan({ cluster: spec(clusterfile({ extraSpec: extra })), image }, emptyApplied("demo")).steps.map(
        (s) => `${s.id}=${s.key}`,
      );
    const none = keys("");
    assert.ok(none.length > 10);
    for (const mode of ["ssh", "relay", "registry"])
      assert.deepEqual(keys(`  distribution: ${mode}\n`), none);
  });
});
