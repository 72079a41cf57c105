/**
 * Decisions made on errors read their class and fields, never their words: an error that
 * merely mentions the same words as another must take the other path.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadClusterfile } from "../../provider/core/clusterfile";
import { InvalidReferenceError, parseReference } from "../../provider/core/common/reference";
import { ImageNotInStoreError, UserError, causeOf, wrap } from "../../provider/core/errors";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { resolveManifest } from "../../provider/core/image/store";
import { rollbackFailure } from "../../provider/core/lifecycle/upgrade";
import { setLogSink } from "../../provider/core/log";

const PREV = { reference: "docker.io/library/app:1", manifestDigest: "sha256:" + "a".repeat(64) };

describe("errors: decisions by class and field, not by message text", () => {
  let restore: ReturnType<typeof setLogSink>;
  let tmp: string;
  before(() => {
    restore = setLogSink({ write: () => undefined });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-err-"));
  });
  after(() => {
    setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("rollback: only the previous image missing from the store gets the rollback context", async () => {
    // The store's own error for the previous image, as applyCluster wraps it with the Clusterfile place.
    const layout = new OciLayout(path.join(tmp, "store"));
    const missing = await resolveManifest(layout, PREV.reference).catch((e: unknown) => e);
    assert.ok(missing instanceof ImageNotInStoreError);
    const placed = wrap("Clusterfile:5 spec.image", missing);
    const out = rollbackFailure(placed, PREV) as Error;
    assert.match(
      out.message,
      /^sealer rollback to docker\.io\/library\/app:1 \(sha256:a{64}\): Clusterfile:5/,
    );
    assert.equal(causeOf(out, ImageNotInStoreError), missing);

    // Same words, other origin: a step's or a hook's text that mentions the local store.
    const other = new UserError(
      "layer sha256:1 is not in the local store /x; pull or rebuild the image first",
    );
    assert.equal(rollbackFailure(other, PREV), other);
    // Another image missing (not the rollback target) is not the rollback's to explain.
    const otherImage = new ImageNotInStoreError(
      "docker.io/library/base:2",
      "image base:2 not found in the local store",
    );
    assert.equal(rollbackFailure(otherImage, PREV), otherImage);
  });

  it("an invalid image reference is explained from the parser's reason, whatever its wording", () => {
    const err = (() => {
      try {
        parseReference("Bad/Name");
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof InvalidReferenceError);
    assert.equal(err.input, "Bad/Name");
    // An image text holding '": ' (where the old code cut the parser's message) keeps its reason whole.
    const text = `apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  image: 'Bad": x'\n  hosts:\n    - ips: [10.0.0.2]\n      roles: [master]\n`;
    const rejected = (() => {
      try {
        loadClusterfile(text);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(rejected instanceof UserError);
    const line = rejected.problems.find((p) => p.includes("spec.image"));
    assert.ok(line, rejected.problems.join("\n"));
    const why = (() => {
      try {
        parseReference('Bad": x');
      } catch (e) {
        return (e as InvalidReferenceError).why;
      }
    })();
    assert.ok(why);
    assert.ok(
      line.endsWith(
        `"Bad\": x" is not an image reference: ${why}; write e.g. registry.example.com/team/cluster:1.0`,
      ) || line.includes(`is not an image reference: ${why};`),
      line,
    );
  });

  it("a Kubefile error that names its place carries it as a field and is not named twice", async () => {
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nRUN exit 3\n");
    const home = path.join(tmp, "home");
    const run = await buildImage({ context: ctx, tag: "t:2", home }).catch((e: unknown) => e);
    assert.ok(run instanceof UserError);
    assert.ok(run.location?.endsWith("Kubefile:2"), String(run.location));
    assert.ok(run.message.startsWith(`${run.location}: RUN exit 3 exited with code 3`), run.message);
    assert.equal(run.message.split("Kubefile:2").length - 1, 1, run.message);
  });
});
