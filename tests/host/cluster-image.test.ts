/**
 * ClusterImage under Pulumi's own dynamic provider host, driven over gRPC as the engine does.
 * Real builds into a temporary SEALER_HOME; the provider comes from the SDK class's serialization.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { ClusterImage } from "../../sdk";
import { OciLayout } from "../../provider/core/image/layout";
import {
  type Host,
  type Props,
  UNKNOWN,
  isSecret,
  plain,
  sdkInputs,
  secretValue,
  startHost,
} from "./harness";

const URN = "urn:pulumi:host::sealer-host-test::pulumi-nodejs:dynamic/sealer:ClusterImage::img";

describe("host: ClusterImage under the dynamic provider host", function () {
  this.timeout(120_000);
  let tmp: string;
  let home: string;
  let ctx: string;
  let host: Host;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-host-img-"));
    home = path.join(tmp, "home");
    ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "apps/web"), { recursive: true });
    fs.mkdirSync(path.join(ctx, "apps/db"), { recursive: true });
    fs.writeFileSync(
      path.join(ctx, "apps/web/web.yaml"),
      "kind: ConfigMap\napiVersion: v1\nmetadata: { name: web }\ndata: { v: '1' }\n",
    );
    fs.writeFileSync(
      path.join(ctx, "apps/db/db.yaml"),
      "kind: ConfigMap\napiVersion: v1\nmetadata: { name: db }\ndata: { v: '1' }\n",
    );
    fs.writeFileSync(
      path.join(ctx, "Kubefile"),
      "FROM scratch\nCOPY apps/db application/apps/db/\nCOPY apps/web application/apps/web/\n",
    );
    host = await startHost({ SEALER_HOME: home });
    await host.configure();
  });

  after(async () => {
    await host?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function programInputs(extra: Record<string, unknown> = {}): Promise<Props> {
    // What the engine receives from the SDK; the engine strips secrets for this host (acceptSecrets=false).
    return plain(
      await sdkInputs(() => new ClusterImage("img", { context: ctx, tag: "host-test/app:1", ...extra })),
    );
  }

  let stored: Props; // checked inputs in state
  let outs: Props; // outputs in state
  let id: string;

  it("serializes a small provider and checks: computes contentHash", async () => {
    const news = await programInputs({ registryAuth: { username: "u", password: "s3cret" } });
    assert.equal(typeof news.__provider, "string");
    const size = (news.__provider as string).length;
    assert.ok(size < 16_000, `serialized provider is ${size} bytes`);
    assert.ok(!(news.__provider as string).includes("ssh2"), "ssh2 must not be serialized");
    const { inputs, failures } = await host.check(URN, {}, news);
    assert.deepEqual(failures, []);
    assert.match(inputs.contentHash as string, /^sha256:[0-9a-f]{64}$/);
    assert.equal(inputs.__provider, news.__provider);
    // Built on preview: the checked inputs already carry what `up` will produce.
    assert.match(inputs.digest as string, /^sha256:[0-9a-f]{64}$/);
    assert.equal(inputs.reference, "docker.io/host-test/app:1");
    const layout = new OciLayout(path.join(home, "store"));
    assert.ok(
      (await layout.listRefs()).some((r) =>
        r.ref.startsWith("localhost/sealer-preview/docker-io/host-test/app:"),
      ),
    );
    assert.equal(
      await layout.resolve("docker.io/host-test/app:1"),
      undefined,
      "a preview does not move the tag",
    );
    stored = inputs;
  });

  it("creates: outputs reference, digest, ordered layers; the credential comes back secret", async () => {
    const res = await host.create(URN, stored);
    id = res.id;
    outs = res.properties;
    assert.equal(outs.reference, "docker.io/host-test/app:1");
    assert.match(outs.digest as string, /^sha256:/);
    assert.equal((outs.layers as string[]).length, 2);
    assert.ok(isSecret(outs.registryAuth), "registryAuth must be a secret output");
    assert.deepEqual(plain(outs.registryAuth), { username: "u", password: "s3cret" });
    assert.equal(outs.pushed, false);
    assert.equal(outs.__provider, stored.__provider);
    assert.equal(outs.digest, stored.digest, "the build at create has the digest the preview announced");
    const refs = (await new OciLayout(path.join(home, "store")).listRefs()).map((r) => r.ref);
    assert.deepEqual(
      refs.filter((r) => r.startsWith("localhost/sealer-preview/")),
      [],
      "preview names are gone after create",
    );
  });

  it("same program: check gives the same inputs and diff says no changes", async () => {
    const { inputs } = await host.check(
      URN,
      stored,
      await programInputs({ registryAuth: { username: "u", password: "s3cret" } }),
    );
    assert.equal(inputs.contentHash, stored.contentHash);
    const d = await host.diff(URN, id, plain(outs), inputs, stored);
    assert.deepEqual(d, { changes: "none", replaces: [], deleteBeforeReplace: false });
  });

  it("preview with an unknown context: contentHash unknown, diff reports a possible change, no error", async () => {
    const news = { ...(await programInputs()), context: UNKNOWN };
    const { inputs, failures } = await host.check(URN, stored, news);
    assert.deepEqual(failures, []);
    assert.equal(inputs.contentHash, UNKNOWN);
    const d = await host.diff(URN, id, plain(outs), inputs, stored);
    assert.equal(d.changes, "some");
    assert.deepEqual(d.replaces, []);
  });

  it("one changed file: new contentHash, update rebuilds, only that layer's digest changes", async () => {
    fs.writeFileSync(
      path.join(ctx, "apps/web/web.yaml"),
      "kind: ConfigMap\napiVersion: v1\nmetadata: { name: web }\ndata: { v: '2' }\n",
    );
    const { inputs } = await host.check(
      URN,
      stored,
      await programInputs({ registryAuth: { username: "u", password: "s3cret" } }),
    );
    assert.notEqual(inputs.contentHash, stored.contentHash);
    const d = await host.diff(URN, id, plain(outs), inputs, stored);
    assert.deepEqual(d, { changes: "some", replaces: [], deleteBeforeReplace: false });
    const { properties } = await host.update(URN, id, plain(outs), inputs, stored);
    const [db0, web0] = outs.layers as string[];
    const [db1, web1] = properties.layers as string[];
    assert.equal(db1, db0, "the db layer is unchanged");
    assert.notEqual(web1, web0, "the web layer is rebuilt");
    assert.notEqual(properties.digest, outs.digest);
    stored = inputs;
    outs = properties;
  });

  it("a failed push after a good build returns partial state (id + properties + reasons)", async () => {
    // A loopback "registry" that denies everything: the push fails at once, the build is kept.
    const denier = http.createServer((_req, res) => {
      res.writeHead(403, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
        }),
      );
    });
    await new Promise<void>((r) => denier.listen(0, "127.0.0.1", r));
    const reg = `127.0.0.1:${(denier.address() as AddressInfo).port}`;
    after(() => denier.close());
    const news = await programInputs({ tag: `${reg}/host-test/app:1`, push: true });
    const { inputs } = await host.check(URN, {}, news);
    await assert.rejects(
      host.create(URN, inputs),
      (err: { initFailed?: { id: string; properties: Props; reasons: string[] } }) => {
        assert.ok(err.initFailed, "expected ErrorResourceInitFailed details");
        assert.equal(err.initFailed.id, `${reg}/host-test/app:1`);
        assert.match(err.initFailed.properties.digest as string, /^sha256:/);
        assert.equal(err.initFailed.properties.pushed, false);
        assert.match(err.initFailed.reasons[0]!, /push failed/);
        partial = err.initFailed;
        return true;
      },
    );
    // The next up: the push is still owed, so diff reports a change (and resumes with a push).
    const d = await host.diff(URN, partial.id, plain(partial.properties), inputs, inputs);
    assert.equal(d.changes, "some");
    await host.delete(URN, partial.id, plain(partial.properties));
  });
  let partial: { id: string; properties: Props };

  it("check reports bad inputs as failures, all at once", async () => {
    const news = { ...(await programInputs()), context: path.join(tmp, "missing"), tag: "UPPER/Case:1" };
    const { failures } = await host.check(URN, {}, news);
    assert.deepEqual(
      failures.map((f) => f.property),
      ["context", "tag"],
    );
  });

  it("a chart Helm cannot render: the preview's check and create fail with one message naming the chart and the Kubefile", async () => {
    const bad = path.join(tmp, "bad-chart");
    fs.mkdirSync(path.join(bad, "charts/bad/templates"), { recursive: true });
    fs.writeFileSync(path.join(bad, "Kubefile"), "FROM scratch\nCOPY charts charts\n");
    fs.writeFileSync(path.join(bad, "charts/bad/Chart.yaml"), "apiVersion: v2\nname: bad\nversion: 0.1.0\n");
    fs.writeFileSync(
      path.join(bad, "charts/bad/templates/pod.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata: { name: bad }\nspec:\n  containers:\n    - name: bad\n" +
        '      image: {{ required "image.repository is required" .Values.repository }}\n',
    );
    const news = await programInputs({ context: bad, tag: "host-test/bad:1" });
    const previewed = await host.check(URN, {}, news);
    assert.deepEqual(
      previewed.failures.map((f) => f.property),
      ["context"],
    );
    assert.match(previewed.failures[0]!.reason, /Helm chart charts\/bad: helm template failed/);
    const { inputs } = await host.check(URN, {}, { ...news, buildOnPreview: false });
    await assert.rejects(host.create(URN, inputs), (err: Error) => {
      assert.match(
        err.message,
        /^building host-test\/bad:1 from .*Kubefile: .*set allowIncomplete: true[^]*Helm chart charts\/bad: helm template failed: .*image\.repository is required/,
      );
      assert.doesNotMatch(err.message, /\n\s+at |TypeError|Cannot read properties/);
      return true;
    });
  });

  it("delete removes the tag from the store", async () => {
    await host.delete(URN, id, plain(outs));
    const layout = new OciLayout(path.join(home, "store"));
    assert.equal(await layout.resolve("docker.io/host-test/app:1"), undefined);
  });

  it("the secret input given as a pulumi secret arrives in the SDK props as a secret", async () => {
    const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
    const raw = await sdkInputs(
      () =>
        new ClusterImage("img", {
          context: ctx,
          tag: "x:1",
          registryAuth: pulumi.secret({ username: "u", password: "p" }),
        }),
    );
    assert.deepEqual(raw.registryAuth, secretValue({ username: "u", password: "p" }));
  });

  it("the secret input given as a plain value also arrives as a secret (the engine stores inputs in its state)", async () => {
    const raw = await sdkInputs(
      () =>
        new ClusterImage("img", { context: ctx, tag: "x:1", registryAuth: { username: "u", password: "p" } }),
    );
    assert.deepEqual(raw.registryAuth, secretValue({ username: "u", password: "p" }));
    assert.equal(raw.tag, "x:1", "other inputs stay plain");
  });
});
