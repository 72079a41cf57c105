/**
 * The first `pulumi preview` of examples/local on a fresh machine: the program runs under
 * setMocks, and every sealer resource it registers goes, in registration order, through the real
 * provider's check as the engine's preview does (the checked inputs become the previewed
 * outputs the next resource reads). The data directory is empty, so the app image — FROM the
 * base image created in the same run — must build on the base's preview build, offline; and the
 * cluster's preview plan must be the full install of that chain.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

const SEALER = "pulumi-nodejs:dynamic/sealer:";

type Props = Record<string, unknown>;

describe("provider: a first preview of examples/local on an empty data directory", function () {
  this.timeout(600_000);
  let tmp: string;
  const prevHome = process.env.SEALER_HOME;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-chain-"));
    process.env.SEALER_HOME = path.join(tmp, "home");
  });
  after(() => {
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("previews the chained images offline and plans the full install onto them", async () => {
    const image =
      require("../../provider/resources/cluster-image") as typeof import("../../provider/resources/cluster-image");
    const cluster =
      require("../../provider/resources/cluster") as typeof import("../../provider/resources/cluster");
    const checked: Array<{ type: string; name: string; inputs: Props; failures?: unknown[] }> = [];
    const errors: string[] = [];
    await pulumi.runtime.setMocks(
      {
        async newResource(args) {
          const inputs = args.inputs as Props;
          try {
            if (args.type === `${SEALER}ClusterImage`) {
              const r = await image.provider.check({}, inputs);
              checked.push({ type: args.type, name: args.name, inputs: r.inputs, failures: r.failures });
              return { id: "", state: r.inputs };
            }
            if (args.type === `${SEALER}Infra`)
              // Local nodes are not created by a preview; their addresses stand in for what `up` makes.
              return {
                id: "",
                state: {
                  ...inputs,
                  masterHosts: [{ id: "m", privateIp: "10.0.0.2", role: "master" }],
                  workerHosts: [{ id: "w", privateIp: "10.0.0.3", role: "node" }],
                  sshUser: "root",
                  sshPrivateKey: "KEY",
                },
              };
            if (args.type === `${SEALER}Cluster`) {
              const r = await cluster.provider.check({}, inputs);
              checked.push({ type: args.type, name: args.name, inputs: r.inputs, failures: r.failures });
              return { id: "", state: r.inputs };
            }
          } catch (err) {
            errors.push(`${args.name}: ${(err as Error).message}`);
            throw err;
          }
          return { id: "", state: inputs };
        },
        call: () => ({}),
      },
      "sealer-examples",
      "test",
      true,
    );
    pulumi.runtime.setAllConfig({ "sealer-examples:workers": "1" });
    // A fresh run of the program even when another test file already loaded it (require caches modules).
    delete require.cache[require.resolve("../../examples/local")];
    require("../../examples/local");
    for (let i = 0; i < 6000 && checked.length < 3 && errors.length === 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(errors, []);
    assert.deepEqual(
      checked.map((c) => [c.name, c.failures ?? []]),
      [
        ["sandbox-base", []],
        ["app", []],
        ["demo", []],
      ],
    );
    const [base, app, demo] = checked.map((c) => c.inputs) as [Props, Props, Props];
    assert.match(app.digest as string, /^sha256:[0-9a-f]{64}$/);
    const baseLayers = base.layers as string[];
    assert.deepEqual(
      (app.layers as string[]).slice(0, baseLayers.length),
      baseLayers,
      "app is FROM the base",
    );
    // Only the preview names exist: the real tags appear at `up`.
    const { OciLayout } =
      require("../../provider/core/image/layout") as typeof import("../../provider/core/image/layout");
    const refs = (await new OciLayout(path.join(tmp, "home", "store")).listRefs()).map((r) => r.ref);
    assert.ok(
      refs.every((r) => r.startsWith("localhost/sealer-preview/")),
      refs.join(", "),
    );
    const planned = (demo.plan as string[]).map((l) => l.slice(0, l.indexOf(" [")));
    for (const id of ["init-master", "join-worker:10.0.0.3", "launch-app:web", "launch-app:setup"])
      assert.ok(planned.includes(id), `${id} missing from\n${(demo.plan as string[]).join("\n")}`);
  });
});
