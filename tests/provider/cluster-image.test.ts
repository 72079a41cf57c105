/**
 * The ClusterImage dynamic provider called directly, as the engine calls it (check, then diff
 * against the state's outputs, then create/update), with real builds into a temporary data
 * directory: a rebuilt base makes its app image change and an unchanged base does not; an unknown
 * base digest previews as a change; registry mirrors are checked and pulled through; a chart Helm
 * cannot render fails the build with one clean message unless allowIncomplete.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { setLogSink } from "../../provider/core/log";
import { OciLayout } from "../../provider/core/image/layout";
import { pushImage } from "../../provider/core/registry/push";
import { provider } from "../../provider/resources/cluster-image";
import { UNKNOWN } from "../../provider/resources/common";
import { makeTestImage, startRegistry, type TestRegistry, useWorkDir } from "../harness/registry";

type Props = Record<string, unknown>;

describe("provider: ClusterImage builds, base digests, mirrors and incomplete builds", function () {
  this.timeout(300_000);
  const work = useWorkDir("prov-img");
  const prevHome = process.env.SEALER_HOME;
  let restoreLog: ReturnType<typeof setLogSink> | undefined;

  before(() => {
    process.env.SEALER_HOME = work("home");
    restoreLog = setLogSink({ write: () => undefined });
  });
  after(() => {
    if (restoreLog) setLogSink(restoreLog);
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
  });

  /** A build context: the Kubefile plus files (relative path -> content). */
  function context(name: string, kubefile: string, files: Record<string, string>): string {
    const dir = work(name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    fs.writeFileSync(path.join(dir, "Kubefile"), kubefile);
    return dir;
  }

  async function checked(news: Props): Promise<Props> {
    const r = await provider.check({}, news);
    assert.deepEqual(r.failures ?? [], []);
    return r.inputs;
  }

  async function changes(outs: Props, news: Props): Promise<boolean> {
    return (await provider.diff("id", outs, news)).changes;
  }

  describe("an app image FROM a base image", () => {
    let baseCtx: string;
    let baseNews: Props;
    let appNews: Props;
    let baseOuts: Props;
    let appOuts: Props;

    before(async () => {
      baseCtx = context("base", "FROM scratch\nCOPY base.txt etc/\n", { "base.txt": "one\n" });
      const appCtx = context("app", "FROM prov-base:1\nCOPY app.txt etc/\n", { "app.txt": "app\n" });
      baseNews = { context: baseCtx, tag: "prov-base:1", buildMode: "lite" };
      appNews = { context: appCtx, tag: "prov-app:1", buildMode: "lite" };
      baseOuts = (await provider.create(await checked(baseNews))).outs;
      appOuts = (await provider.create(await checked(appNews))).outs;
    });

    it("an unchanged base: neither image changes", async () => {
      assert.equal(await changes(baseOuts, await checked(baseNews)), false);
      assert.equal(await changes(appOuts, await checked(appNews)), false);
    });

    it("the base's digest given by the program hashes like the store's", async () => {
      const viaInput = await checked({ ...appNews, baseDigest: baseOuts.digest });
      assert.equal(viaInput.contentHash, appOuts.contentHash);
      assert.equal(await changes(appOuts, viaInput), false);
    });

    it("a base changed in the same preview: the app previews as a change; after up it is stable", async () => {
      fs.writeFileSync(path.join(baseCtx, "base.txt"), "two\n");
      // Preview: the base's check builds it under its preview name; the app's check reads that.
      const basePreview = await checked(baseNews);
      assert.equal(await changes(baseOuts, basePreview), true);
      assert.notEqual(basePreview.digest, baseOuts.digest);
      const appPreview = await checked(appNews);
      assert.notEqual(appPreview.contentHash, appOuts.contentHash);
      assert.equal(await changes(appOuts, appPreview), true);
      // The same through the program's baseDigest (the base's previewed digest).
      const appViaInput = await checked({ ...appNews, baseDigest: basePreview.digest });
      assert.equal(appViaInput.contentHash, appPreview.contentHash);

      // Up: the base is rebuilt first (the app depends on it), then the app's check and update.
      baseOuts = (await provider.update("prov-base:1", baseOuts, await checked(baseNews))).outs;
      assert.equal(baseOuts.digest, basePreview.digest, "the preview built what up builds");
      const appUp = await checked(appNews);
      assert.equal(appUp.contentHash, appPreview.contentHash);
      assert.equal(await changes(appOuts, appUp), true);
      const oldAppDigest = appOuts.digest;
      appOuts = (await provider.update("prov-app:1", appOuts, appUp)).outs;
      assert.notEqual(appOuts.digest, oldAppDigest);
      const baseLayers = baseOuts.layers as string[];
      assert.deepEqual((appOuts.layers as string[]).slice(0, baseLayers.length), baseLayers);

      assert.equal(await changes(baseOuts, await checked(baseNews)), false);
      assert.equal(await changes(appOuts, await checked(appNews)), false);
    });

    it("an unknown base digest (its ClusterImage is being replaced) previews as a change, never a failure", async () => {
      const r = await provider.check({}, { ...appNews, baseDigest: UNKNOWN });
      assert.deepEqual(r.failures ?? [], []);
      assert.equal(r.inputs.contentHash, UNKNOWN);
      assert.equal(await changes(appOuts, r.inputs), true);
    });

    it("a baseDigest that is not a digest is refused naming the input", async () => {
      const r = await provider.check({}, { ...appNews, baseDigest: "prov-base:1" });
      assert.deepEqual(
        (r.failures ?? []).map((f) => f.property),
        ["baseDigest"],
      );
      assert.match(r.failures![0]!.reason, /sha256:<64 hex>.*"prov-base:1"/);
    });
  });

  describe("registry mirrors", () => {
    let reg: TestRegistry | undefined;
    let seeded: string;

    before(async () => {
      reg = await startRegistry();
      const seed = new OciLayout(work("seed"));
      seeded = (await makeTestImage(seed, `${reg.host}/hub/team/web:1`, { layers: [512] })).digest;
      await pushImage(`${reg.host}/hub/team/web:1`, { store: seed, home: work("seed-home") });
    });
    after(async () => {
      await reg?.stop();
    });

    it("a base only in a registry: the build pulls it, and the next check computes the same hash", async () => {
      const seed = new OciLayout(work("seed"));
      const baseDigest = (await makeTestImage(seed, `${reg!.host}/remote/base:1`, { layers: [128] })).digest;
      await pushImage(`${reg!.host}/remote/base:1`, { store: seed, home: work("seed-home") });
      const ctx = context("on-remote", `FROM ${reg!.host}/remote/base:1\nCOPY app.txt etc/\n`, {
        "app.txt": "on a remote base\n",
      });
      const news = { context: ctx, tag: "prov-on-remote:1", buildMode: "lite" };
      const outs = (await provider.create(await checked(news))).outs;
      const store = new OciLayout(work("home", "store"));
      assert.equal((await store.resolve(`${reg!.host}/remote/base:1`))?.digest, baseDigest);
      const again = await checked(news);
      assert.equal(again.contentHash, outs.contentHash);
      assert.equal(await changes(outs, again), false);
      assert.equal((await checked({ ...news, baseDigest })).contentHash, outs.contentHash);
    });

    it("check reports every invalid mirror at once, each naming its source registry", async () => {
      const r = await provider.check(
        {},
        {
          context: work("base"),
          tag: "prov-mirrors:1",
          registryMirrors: {
            "docker.io": "https://mirror.example.com",
            "quay.io": "no-host-here",
            "ghcr.io": "127.0.0.1:5000/ok",
          },
        },
      );
      const failures = r.failures ?? [];
      assert.deepEqual(
        failures.map((f) => f.property),
        ["registryMirrors", "registryMirrors"],
      );
      assert.match(failures[0]!.reason, /^registryMirrors\["docker\.io"\]: .*no scheme/);
      assert.match(failures[1]!.reason, /^registryMirrors\["quay\.io"\]: .*"no-host-here" is not one/);
      const notMap = await provider.check({}, { context: work("base"), tag: "x:1", registryMirrors: ["a"] });
      assert.deepEqual(
        (notMap.failures ?? []).map((f) => f.property),
        ["registryMirrors"],
      );
    });

    it("a mirror not known yet (another resource's output) is no failure and no preview build", async () => {
      const r = await provider.check(
        {},
        { context: work("base"), tag: "prov-unknown-mirror:1", registryMirrors: { "quay.io": UNKNOWN } },
      );
      assert.deepEqual(r.failures ?? [], []);
      assert.match(r.inputs.contentHash as string, /^sha256:/);
      assert.equal(r.inputs.digest, undefined);
    });

    it("a Kubefile that cannot be read (a directory) is a check failure naming it, without the system's error text", async () => {
      const dir = context("kubefile-dir", "FROM scratch\n", {});
      fs.mkdirSync(path.join(dir, "Kubefile.d"));
      const r = await provider.check({}, { context: dir, tag: "x:1", kubefile: "Kubefile.d" });
      assert.deepEqual(
        (r.failures ?? []).map((f) => f.property),
        ["kubefile"],
      );
      assert.match(r.failures![0]!.reason, /Kubefile .*Kubefile\.d cannot be read \(EISDIR\)/);
      assert.doesNotMatch(r.failures![0]!.reason, /illegal operation/);
    });

    it("pulls through the mirror; cachedImages keeps the original reference with the digest", async () => {
      const ctx = context("mirrored", "FROM scratch\nCOPY manifests manifests\n", {
        "manifests/web.yaml": [
          "apiVersion: v1",
          "kind: Pod",
          "metadata: { name: web }",
          "spec:",
          "  containers:",
          "    - name: web",
          "      image: quay.io/team/web:1",
          "",
        ].join("\n"),
      });
      const news = {
        context: ctx,
        tag: "prov-mirrored:1",
        registryMirrors: { "quay.io": `${reg!.host}/hub` },
      };
      const outs = (await provider.create(await checked(news))).outs;
      assert.deepEqual(outs.containerImages, ["quay.io/team/web:1"]);
      assert.deepEqual(outs.cachedImages, [
        { image: "quay.io/team/web:1", digest: seeded, platform: "linux/amd64" },
      ]);
      assert.equal(outs.incompleteImages, undefined);
      // Mirrors are where images come from, not what the image is: a change does not rebuild.
      const moved = await checked({ ...news, registryMirrors: { "quay.io": "127.0.0.1:1/elsewhere" } });
      assert.equal(await changes(outs, moved), false);
    });
  });

  describe("a registry mirror that needs a login", () => {
    let reg: TestRegistry | undefined;
    const password = "mirror-s3cret";
    let ctx: string;

    before(async () => {
      reg = await startRegistry({ htpasswd: { mirroruser: password } });
      const seed = new OciLayout(work("seed-auth"));
      await makeTestImage(seed, `${reg.host}/hub/team/api:1`, { layers: [256] });
      await pushImage(`${reg.host}/hub/team/api:1`, {
        store: seed,
        home: work("seed-home"),
        credentials: { username: "mirroruser", password },
      });
      ctx = context("mirrored-auth", "FROM scratch\nCOPY manifests manifests\n", {
        "manifests/api.yaml":
          "apiVersion: v1\nkind: Pod\nmetadata: { name: api }\nspec:\n  containers:\n    - name: api\n      image: quay.io/team/api:1\n",
      });
    });
    after(async () => {
      await reg?.stop();
    });

    it("without a stored login the build fails naming the image and its mirror; with `sealer login`'s it pulls", async () => {
      const news = {
        context: ctx,
        tag: "prov-mirrored-auth:1",
        registryMirrors: { "quay.io": `${reg!.host}/hub` },
        buildOnPreview: false,
      };
      const err = await provider.create(await checked(news)).then(
        () => assert.fail("the pull should be refused"),
        (e: unknown) => e as Error,
      );
      assert.match(err.message, /quay\.io\/team\/api:1/);
      assert.ok(err.message.includes(`${reg!.host}/hub/team/api:1`), err.message);
      assert.match(err.message, /add a registryMirrors entry/);
      assert.doesNotMatch(err.message, /\n\s+at |TypeError|Cannot read properties/);

      const { saveCredentials } =
        require("../../provider/core/registry/credentials") as typeof import("../../provider/core/registry/credentials");
      await saveCredentials(reg!.host, { username: "mirroruser", password }, work("home"));
      const outs = (await provider.create(await checked(news))).outs;
      assert.deepEqual(outs.containerImages, ["quay.io/team/api:1"]);
      // The login stays in the credential store: no input or output carries it.
      assert.ok(!JSON.stringify(outs).includes(password));
    });
  });

  describe("a chart Helm cannot render", () => {
    let ctx: string;
    before(() => {
      ctx = context("bad-chart", "FROM scratch\nCOPY charts charts\n", {
        "charts/bad/Chart.yaml": "apiVersion: v2\nname: bad\nversion: 0.1.0\n",
        "charts/bad/templates/pod.yaml": [
          "apiVersion: v1",
          "kind: Pod",
          "metadata: { name: bad }",
          "spec:",
          "  containers:",
          "    - name: bad",
          '      image: {{ required "image.repository is required" .Values.image.repository }}',
          "",
        ].join("\n"),
        "charts/bad/values.yaml": "image: {}\n",
      });
    });

    it("fails a full build with one message naming the chart, no stack trace, and no image stored", async () => {
      const news = { context: ctx, tag: "prov-bad:1" };
      // The preview builds it too: the same failure, as a check failure on the context.
      const previewed = await provider.check({}, news);
      assert.deepEqual(
        (previewed.failures ?? []).map((f) => f.property),
        ["context"],
      );
      assert.match(previewed.failures![0]!.reason, /Helm chart charts\/bad: helm template failed/);
      assert.doesNotMatch(previewed.failures![0]!.reason, /\n\s+at |--allow-incomplete/);
      const err = await provider.create(await checked({ ...news, buildOnPreview: false })).then(
        () => assert.fail("the build should fail"),
        (e: unknown) => e as Error,
      );
      assert.match(err.message, /^building docker\.io\/library\/prov-bad:1|^building prov-bad:1/);
      assert.match(err.message, /Kubefile/);
      assert.match(
        err.message,
        /Helm chart charts\/bad: helm template failed: .*image\.repository is required/,
      );
      assert.match(err.message, /set allowIncomplete: true/);
      assert.doesNotMatch(err.message, /--allow-incomplete/);
      assert.doesNotMatch(err.message, /\n\s+at |TypeError|ENOENT|Cannot read properties/);
      assert.equal(await new OciLayout(work("home", "store")).resolve("prov-bad:1"), undefined);
    });

    it("with allowIncomplete builds and lists the chart in incompleteImages", async () => {
      const news = await checked({ context: ctx, tag: "prov-bad:1", allowIncomplete: true });
      const outs = (await provider.create(news)).outs;
      const incomplete = outs.incompleteImages as string[];
      assert.equal(incomplete.length, 1);
      assert.match(
        incomplete[0]!,
        /^Helm chart charts\/bad: helm template failed: .*image\.repository is required/,
      );
      assert.deepEqual(outs.cachedImages, []);
      // Allowing holes is a different build: turning it off again is a change (whose build fails).
      const strict = await checked({ context: ctx, tag: "prov-bad:1", buildOnPreview: false });
      assert.equal(await changes(outs, strict), true);
    });
  });
});
