/**
 * Registry auth and transport against real docker-registry instances: TLS with a test CA (and
 * the unknown-CA error), htpasswd basic auth, bearer tokens from a token server, credentials
 * files, and fault injection (5xx, resets, truncated and corrupted bodies) through a proxy.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import { Manifest } from "../../provider/core/image/types";
import { RegistryClient } from "../../provider/core/registry/client";
import {
  loadCredentials,
  removeCredentials,
  saveCredentials,
} from "../../provider/core/registry/credentials";
import { pullImage } from "../../provider/core/registry/pull";
import { pushImage } from "../../provider/core/registry/push";
import { dataPaths } from "../../provider/core/paths";
import {
  FaultProxy,
  TestCa,
  TestRegistry,
  TokenServer,
  makeTestCa,
  makeTestImage,
  skopeo,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  useWorkDir,
} from "../harness/registry";

describe("registry auth, TLS and faults (docker-registry)", function () {
  this.timeout(120_000);
  const work = useWorkDir("regauth");
  let store: OciLayout;
  const home = () => work("home");
  /** A login with the wrong password is refused with `refusal`; one with the right password passes. */
  const checkLogin = async (
    host: string,
    c: { user: string; wrong: string; right: string },
    refusal: RegExp,
  ): Promise<void> => {
    const bad = await RegistryClient.open(host, {
      home: home(),
      credentials: { username: c.user, password: c.wrong },
    });
    await assert.rejects(bad.verifyLogin(), refusal);
    bad.close();
    const good = await RegistryClient.open(host, {
      home: home(),
      credentials: { username: c.user, password: c.right },
    });
    await good.verifyLogin();
    good.close();
  };
  const base = () => ({ home: home(), minRetryMs: 20 });

  before(async () => {
    store = new OciLayout(work("store"));
    await makeTestImage(store, "t:1", { layers: [4000, 8000] });
  });
  describe("TLS with a test CA", () => {
    let ca: TestCa;
    let reg: TestRegistry;
    before(async () => {
      ca = makeTestCa(work("ca"));
      reg = await startRegistry({ tls: ca });
    });
    after(() => reg?.stop());

    it("refuses an unknown CA with a message that says what to do", async () => {
      await assert.rejects(
        pushImage(`${reg.host}/tls/app:1`, { ...base(), store, source: "t:1" }),
        (err: Error) => {
          assert.equal(
            err.message,
            `TLS: certificate signed by unknown authority for ${reg.host} (use sealer login --ca-file FILE ${reg.host}, or --insecure to skip verification for this registry only)`,
          );
          return true;
        },
      );
    });

    it("works with the registry's CA, and with --insecure for that registry", async () => {
      const caPem = fs.readFileSync(ca.caFile, "utf8");
      const r = await pushImage(`${reg.host}/tls/app:1`, {
        ...base(),
        store,
        source: "t:1",
        settings: { ca: caPem },
      });
      assert.equal(r.blobsUploaded, 3);
      const info = JSON.parse(
        skopeo([
          "inspect",
          "--cert-dir",
          work("ca-dir-for-skopeo"),
          "--tls-verify=false",
          `docker://${reg.host}/tls/app:1`,
        ]),
      ) as { Digest: string };
      assert.equal(info.Digest, r.digest);
      const pulled = new OciLayout(work("tls-pull"));
      const p = await pullImage(`${reg.host}/tls/app:1`, {
        ...base(),
        store: pulled,
        settings: { insecure: true },
      });
      assert.equal(p.digest, r.digest);
    });
  });

  describe("htpasswd basic auth", () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ htpasswd: { alice: "s3cret-pass" } });
    });
    after(() => reg?.stop());

    it("anonymous access names the login command", async () => {
      await assert.rejects(
        pushImage(`${reg.host}/team/app:1`, { ...base(), store, source: "t:1", credentials: null }),
        (err: Error) => {
          assert.equal(
            err.message,
            `authentication required for ${reg.host}/team/app — run sealer login ${reg.host}`,
          );
          return true;
        },
      );
    });

    it("login verifies credentials; stored credentials are used by push and pull", async () => {
      await checkLogin(
        reg.host,
        { user: "alice", wrong: "wrong-one", right: "s3cret-pass" },
        /login to .* failed: the registry rejected the credentials for "alice"/,
      );
      await saveCredentials(reg.host, { username: "alice", password: "s3cret-pass" }, home());
      assert.equal(fs.statSync(dataPaths.auth(home())).mode & 0o777, 0o600);
      const file = JSON.parse(fs.readFileSync(dataPaths.auth(home()), "utf8")) as {
        auths: Record<string, { auth: string }>;
      };
      assert.equal(file.auths[reg.host]?.auth, Buffer.from("alice:s3cret-pass").toString("base64"));
      const r = await pushImage(`${reg.host}/team/app:1`, { ...base(), store, source: "t:1" });
      assert.equal(r.blobsUploaded, 3);
      const pulled = new OciLayout(work("basic-pull"));
      assert.equal(
        (await pullImage(`${reg.host}/team/app:1`, { ...base(), store: pulled })).digest,
        r.digest,
      );
      assert.equal(await removeCredentials(reg.host, home()), true);
      assert.equal(await loadCredentials(reg.host, home()), undefined);
    });

    it("reads docker's config.json when we have no credentials", async () => {
      fs.mkdirSync(process.env.DOCKER_CONFIG!, { recursive: true });
      fs.writeFileSync(
        path.join(process.env.DOCKER_CONFIG!, "config.json"),
        JSON.stringify({
          auths: { [`http://${reg.host}`]: { auth: Buffer.from("alice:s3cret-pass").toString("base64") } },
        }),
      );
      try {
        const pulled = new OciLayout(work("docker-cfg-pull"));
        await pullImage(`${reg.host}/team/app:1`, { ...base(), store: pulled });
      } finally {
        fs.rmSync(path.join(process.env.DOCKER_CONFIG!, "config.json"));
      }
    });

    it("wrong stored credentials fail with the user named", async () => {
      await assert.rejects(
        pullImage(`${reg.host}/team/app:1`, {
          ...base(),
          store: new OciLayout(work("x")),
          credentials: { username: "alice", password: "nope-nope" },
        }),
        new RegExp(
          `authentication failed for ${reg.host}/team/app: the registry rejected the credentials for "alice" — run sealer login ${reg.host}`,
        ),
      );
    });
  });

  describe("bearer tokens", () => {
    let tokens: TokenServer;
    let reg: TestRegistry;
    before(async () => {
      tokens = await startTokenServer(work("token"), { bob: "token-pass-1" }, { anonymousPull: true });
      reg = await startRegistry({ token: tokens });
    });
    after(async () => {
      await reg?.stop();
      await tokens?.stop();
    });

    it("push with credentials, anonymous pull, tokens cached per scope", async () => {
      await assert.rejects(
        pushImage(`${reg.host}/team/tok:1`, { ...base(), store, source: "t:1", credentials: null }),
        /authentication required for .*team\/tok — run sealer login/,
      );
      tokens.requests.length = 0;
      const r = await pushImage(`${reg.host}/team/tok:1`, {
        ...base(),
        store,
        source: "t:1",
        credentials: { username: "bob", password: "token-pass-1" },
      });
      assert.equal(r.blobsUploaded, 3);
      // One token for the push scope serves every request of the push.
      assert.deepEqual(tokens.requests, [{ user: "bob", scopes: ["repository:team/tok:pull,push"] }]);
      const pulled = new OciLayout(work("tok-pull"));
      const p = await pullImage(`${reg.host}/team/tok:1`, { ...base(), store: pulled, credentials: null });
      assert.equal(p.digest, r.digest);
      await checkLogin(
        reg.host,
        { user: "bob", wrong: "bad-bad", right: "token-pass-1" },
        /authentication failed for .*: the token service .* rejected the credentials for "bob"/,
      );
    });
  });

  describe("bearer tokens that expire or are revoked", () => {
    let tokens: TokenServer;
    let reg: TestRegistry;
    let proxy: FaultProxy;
    before(async () => {
      tokens = await startTokenServer(work("token-short"), { bob: "token-pass-1" }, { ttlSeconds: 8 });
      reg = await startRegistry({ token: tokens });
      proxy = await startFaultProxy(reg.port);
    });
    after(async () => {
      await proxy?.stop();
      await reg?.stop();
      await tokens?.stop();
    });

    it("renews a token before it expires, and on a 401 within the same request", async () => {
      const client = await RegistryClient.open(proxy.host, {
        home: home(),
        credentials: { username: "bob", password: "token-pass-1" },
        minRetryMs: 20,
      });
      try {
        const r = await pushImage(`${proxy.host}/team/short:1`, { ...base(), store, source: "t:1", client });
        assert.equal(r.blobsUploaded, 3);
        let n = tokens.requests.length;
        // expires_in 8 s: reused right away, renewed once half its life has passed.
        await pushImage(`${proxy.host}/team/short:1`, { ...base(), store, source: "t:1", client });
        assert.equal(tokens.requests.length, n);
        await new Promise((res) => setTimeout(res, 4200));
        await pushImage(`${proxy.host}/team/short:1`, { ...base(), store, source: "t:1", client });
        assert.equal(tokens.requests.length, n + 1);
        // A token revoked early (401 with a Bearer challenge) is replaced and the request re-sent.
        n = tokens.requests.length;
        proxy.faults.push({
          kind: "401",
          method: "HEAD",
          path: /\/blobs\//,
          headers: {
            "WWW-Authenticate": `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:team/short:pull,push"`,
          },
        });
        const again = await pushImage(`${proxy.host}/team/short:1`, {
          ...base(),
          store,
          source: "t:1",
          client,
        });
        assert.equal(again.blobsSkipped, 3);
        assert.equal(proxy.faults[0]!.times, 0);
        assert.equal(tokens.requests.length, n + 1);
      } finally {
        client.close();
      }
    });
  });

  describe("faults injected by a proxy", () => {
    let reg: TestRegistry;
    let proxy: FaultProxy;
    before(async () => {
      reg = await startRegistry();
      proxy = await startFaultProxy(reg.port);
    });
    after(async () => {
      await proxy?.stop();
      await reg?.stop();
    });

    it("push recovers from 503, 429 and connection resets", async () => {
      proxy.faults.push(
        { kind: "503", method: "HEAD", path: /\/blobs\/sha256/ },
        { kind: "reset", method: "PUT", path: /\/blobs\/uploads\// },
        { kind: "429", method: "PUT", path: /\/manifests\// },
      );
      const r = await pushImage(`${proxy.host}/f/app:1`, { ...base(), store, source: "t:1" });
      assert.equal(r.blobsUploaded, 3);
      assert.deepEqual(
        proxy.faults.map((f) => f.times),
        [0, 0, 0],
      );
      assert.equal(
        JSON.parse(skopeo(["inspect", "--tls-verify=false", `docker://${reg.host}/f/app:1`])).Digest,
        r.digest,
      );
    });

    it("a chunked upload interrupted mid-way resumes its session instead of starting over", async () => {
      const big = new OciLayout(work("chunk-store"));
      const d = await makeTestImage(big, "big:1", { layers: [400_000], gzipLevel: 0 });
      proxy.faults.push({ kind: "reset", method: "PATCH", path: /\/blobs\/uploads\//, skip: 2 });
      proxy.log.length = 0;
      const r = await pushImage(`${proxy.host}/f/chunked:1`, {
        ...base(),
        store: big,
        source: "big:1",
        monolithicMax: 10_000,
        chunkSize: 64 * 1024,
      });
      assert.equal(r.uploadsResumed, 1);
      const posts = proxy.log.filter((e) => e.method === "POST");
      assert.equal(posts.length, 2); // layer + config: no second session for the layer
      assert.ok(
        proxy.log.some(
          (e) => e.method === "GET" && e.path.includes("/blobs/uploads/") && e.outcome === "204",
        ),
      );
      // Every byte was sent once, except the one chunk that was cut off.
      const layerSize = (await big.readJson<Manifest>(d.digest)).layers[0]!.size;
      assert.ok(r.bytesUploaded <= layerSize + 64 * 1024 + 1000, `${r.bytesUploaded} vs ${layerSize}`);
      skopeo([
        "copy",
        "--src-tls-verify=false",
        `docker://${reg.host}/f/chunked:1`,
        `oci:${work("chunk-copy")}:x`,
      ]);
      proxy.faults.length = 0;
    });

    it("pull recovers from a truncated body and a reset, re-downloading only the failed blob", async () => {
      const m = await store.readJson<Manifest>((await store.resolve("t:1"))!.digest);
      const big = m.layers[1]!.digest;
      proxy.faults.push(
        { kind: "truncate", method: "GET", path: new RegExp(`/blobs/${big}`) },
        { kind: "reset", method: "GET", path: new RegExp(`/blobs/${m.layers[0]!.digest}`) },
      );
      proxy.log.length = 0;
      const pulled = new OciLayout(work("fault-pull"));
      const r = await pullImage(`${proxy.host}/f/app:1`, { ...base(), store: pulled, concurrency: 1 });
      assert.equal(r.blobsDownloaded, 3);
      const gets = proxy.log.filter((e) => e.method === "GET" && e.path.includes("/blobs/"));
      // config once, each faulted layer twice.
      assert.equal(gets.length, 5);
      const bigGets = gets.filter((e) => e.path.includes(big));
      assert.equal(bigGets.length, 2);
      // The truncated download resumed where it stopped (HTTP Range, 206), not from zero.
      assert.equal(r.blobsResumed, 1);
      assert.match(bigGets[1]!.range ?? "", /^bytes=[1-9]\d*-$/);
      assert.equal(bigGets[1]!.outcome, "206");
      assert.deepEqual(fs.readdirSync(pulled.tmpDir()), []);
    });

    it("a corrupted body fails cleanly: nothing stored, no reference", async () => {
      const m = await store.readJson<Manifest>((await store.resolve("t:1"))!.digest);
      const layer = m.layers[0]!.digest;
      proxy.faults.push({ kind: "corrupt", method: "GET", path: new RegExp(`/blobs/${layer}`), times: 10 });
      const pulled = new OciLayout(work("corrupt-pull"));
      await assert.rejects(
        pullImage(`${proxy.host}/f/app:1`, { ...base(), store: pulled, concurrency: 1 }),
        /content verification failed: expected sha256:[0-9a-f]{64} .*nothing was stored/,
      );
      assert.equal(await pulled.hasBlob(layer), false);
      assert.deepEqual(await pulled.listRefs(), []);
      assert.deepEqual(fs.readdirSync(pulled.tmpDir()), []);
      proxy.faults.length = 0;
    });

    it("persistent 5xx fails after bounded retries with the status", async () => {
      proxy.faults.push({ kind: "503", method: "GET", path: /\/manifests\//, times: 100 });
      const t0 = Date.now();
      await assert.rejects(
        pullImage(`${proxy.host}/f/app:1`, {
          ...base(),
          store: new OciLayout(work("p5")),
          retries: 2,
        }),
        /manifest 1 in 127\.0\.0\.1:\d+\/f\/app: GET returned HTTP 503 \(UNAVAILABLE: injected\) \(this may be temporary: try again\)$/,
      );
      assert.ok(Date.now() - t0 < 10_000);
      proxy.faults.length = 0;
    });
  });
});
