/**
 * The Cluster's `plan` input under Pulumi's own dynamic provider host (no nodes needed: only
 * Check runs). What the engine does with it:
 * - the checked inputs of the update run of `pulumi up` are what it stores as the resource's
 *   inputs (pkg/resource/deploy/step_generator.go sets the new state's Inputs from Check);
 * - `pulumi preview --diff` renders an update at its pre-step event, before Update runs, when the
 *   new state has no outputs: getResourcePropertiesDetails (pkg/backend/display/object_diff.go)
 *   then prints the stored inputs against the newly checked inputs (removedPlanLines).
 * So a `plan` stored by an update comes back as removed lines in the next preview. The SDK's
 * provider shim tells check whether the program run is a preview; only previews get `plan`.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster } from "../../sdk";
import { buildImage } from "../../provider/core/image/builder";
import { setLogSink } from "../../provider/core/log";
import { type Host, type Props, plain, removedPlanLines, sdkInputs, startHost } from "./harness";

const CL_URN = "urn:pulumi:host::sealer-host-test::pulumi-nodejs:dynamic/sealer:Cluster::p";

describe("host: the Cluster's plan input is a preview's, never stored by an update", function () {
  this.timeout(120_000);
  let tmp: string;
  let host: Host;
  let restore: ReturnType<typeof setLogSink>;

  before(async () => {
    restore = setLogSink({ write: () => undefined });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-plan-input-"));
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "web"), { recursive: true });
    fs.writeFileSync(
      path.join(ctx, "web/cm.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
    );
    fs.writeFileSync(path.join(ctx, "Kubefile"), 'FROM scratch\nAPP web local://web\nLAUNCH ["web"]\n');
    await buildImage({ context: ctx, tag: "plan-input/app:1", home: path.join(tmp, "home") });
    host = await startHost({ SEALER_HOME: path.join(tmp, "home") });
    await host.configure();
  });

  after(async () => {
    await host?.stop();
    setLogSink(restore);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const inputs = async (workers: string[], preview: boolean): Promise<Props> =>
    plain(
      await sdkInputs(
        () =>
          new Cluster("p", {
            name: "planc",
            image: "plan-input/app:1",
            masters: ["10.0.0.2"],
            workers,
            ssh: { password: "pw" },
          }),
        { preview },
      ),
    );

  it("preview: plan listed; update: no plan stored; next preview: only the new steps, none removed", async () => {
    // pulumi preview of a new cluster: the full install.
    const preview = await host.check(CL_URN, {}, await inputs(["10.0.0.3"], true));
    assert.deepEqual(preview.failures, []);
    const install = preview.inputs.plan as string[];
    assert.ok(
      install.some((l) => l.startsWith("init-master ")),
      install.join("\n"),
    );

    // pulumi up, update run: the checked inputs (what the engine stores) have no plan.
    const up = await host.check(CL_URN, {}, await inputs(["10.0.0.3"], false));
    assert.deepEqual(up.failures, []);
    assert.ok(!("plan" in up.inputs), `stored inputs hold a plan: ${JSON.stringify(up.inputs.plan)}`);
    const stored = up.inputs;

    // The next preview adds a worker: the display shows its steps as added and nothing removed.
    const next = await host.check(CL_URN, stored, await inputs(["10.0.0.3", "10.0.0.4"], true));
    assert.deepEqual(next.failures, []);
    const lines = (next.inputs.plan as string[]).filter((l) => !l.startsWith("plan digest: "));
    assert.ok(
      lines.some((l) => l.startsWith("join-worker:10.0.0.4 ")),
      lines.join("\n"),
    );
    assert.ok(
      lines.every((l) => l.includes("[10.0.0.4]") || l.startsWith("save-clusterfile ")),
      `only the new worker's steps (and the Clusterfile save):\n${lines.join("\n")}`,
    );
    assert.deepEqual(removedPlanLines(stored, next.inputs), []);

    // Everything else the two runs store is the same: the mode rides in `__provider`, an internal
    // key the engine's display and input diff skip.
    const { plan: _p, __provider: previewProvider, ...previewRest } = preview.inputs;
    const { __provider: upProvider, ...upRest } = up.inputs;
    assert.deepEqual(upRest, previewRest);
    assert.notEqual(previewProvider, upProvider);
  });
});
