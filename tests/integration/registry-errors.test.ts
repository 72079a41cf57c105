/**
 * Registry failures name what failed: a real docker-registry behind a small TCP proxy that
 * resets connections, cuts responses short, or stops answering. Every error must be a
 * RegistryError naming the registry, the repository and the blob or manifest, flagged
 * temporary, with none of Node's socket words ("socket hang up", "aborted", "ECONNRESET").
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import { Manifest } from "../../provider/core/image/types";
import { pullImage } from "../../provider/core/registry/pull";
import { pushImage } from "../../provider/core/registry/push";
import { RegistryError } from "../../provider/core/registry/registry-error";
import { TestRegistry, freePort, makeTestImage, startRegistry, useWorkDir } from "../harness/registry";

type Mode = "reset" | "cut" | "hang";

interface Rule {
  mode: Mode;
  method: string;
  path: RegExp;
}

/**
 * A TCP proxy in front of the registry. A request whose first line matches a rule gets the
 * rule's fault: "reset" resets the connection before any answer, "cut" forwards the request
 * and resets after 1000 bytes of the answer, "hang" swallows the request and never answers.
 */
async function startTcpProxy(upstreamPort: number) {
  const rules: Rule[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    const up = net.connect(upstreamPort, "127.0.0.1");
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => client.destroy());
    let mode: Mode | undefined;
    let sent = 0;
    client.on("data", (chunk: Buffer) => {
      const line = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/.exec(chunk.toString("latin1", 0, 2048));
      if (line) {
        mode = rules.find((r) => r.method === line[1] && r.path.test(line[2] ?? ""))?.mode;
        sent = 0;
      }
      if (mode === "reset") {
        client.resetAndDestroy();
        up.destroy();
        return;
      }
      if (mode === "hang") return;
      up.write(chunk);
    });
    up.on("data", (chunk: Buffer) => {
      if (mode !== "cut") return void client.write(chunk);
      const keep = Math.max(0, 1000 - sent);
      sent += chunk.length;
      client.write(chunk.subarray(0, keep), () => {
        if (sent >= 1000) client.resetAndDestroy();
      });
    });
    client.on("end", () => up.end());
    up.on("end", () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    rules,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe("registry errors name the registry, repository and object (TCP faults)", function () {
  this.timeout(120_000);
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  const work = useWorkDir("regerr");
  const fast = () => ({ home: work("home"), retries: 1, minRetryMs: 10, timeoutMs: 1500 });
  let layer: string;

  before(async () => {
    reg = await startRegistry();
    proxy = await startTcpProxy(reg.port);
    const store = new OciLayout(work("src"));
    const d = await makeTestImage(store, "err/app:1", { layers: [200_000] });
    await pushImage(`${reg.host}/err/app:1`, { ...fast(), store, source: "err/app:1" });
    layer = (await store.readJson<Manifest>(d.digest)).layers[0]!.digest;
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  afterEach(() => {
    proxy.rules.length = 0;
  });

  async function expectRegistryError(p: Promise<unknown>, object: RegExp, detail: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof RegistryError, `not a RegistryError: ${String(err)}`);
      assert.equal(err.target.registry, proxy.host);
      assert.equal(err.target.repository, "err/app");
      assert.match(err.target.object ?? "", object);
      assert.equal(err.temporary, true);
      assert.match(
        err.message,
        new RegExp(`^${object.source} in ${proxy.host.replace(/\./g, "\\.")}/err/app: `),
      );
      assert.match(err.message, detail);
      assert.match(err.message, /\(this may be temporary: try again\)$/);
      assert.doesNotMatch(err.message, /socket hang up|ECONNRESET|: aborted|Error:/);
      return true;
    });
  }

  it("a reset before the manifest answer names the manifest", async () => {
    proxy.rules.push({ mode: "reset", method: "GET", path: /\/manifests\// });
    await expectRegistryError(
      pullImage(`${proxy.host}/err/app:1`, { ...fast(), store: new OciLayout(work("p1")) }),
      /manifest 1/,
      /closed the connection in the middle of the exchange/,
    );
  });

  it("a blob download cut short names the blob, and nothing is stored", async () => {
    proxy.rules.push({ mode: "cut", method: "GET", path: new RegExp(`/blobs/${layer}`) });
    const store = new OciLayout(work("p2"));
    await expectRegistryError(
      pullImage(`${proxy.host}/err/app:1`, { ...fast(), store, concurrency: 1 }),
      new RegExp(`blob ${layer}`),
      /closed the connection|cut short/,
    );
    assert.equal(await store.hasBlob(layer), false);
    assert.deepEqual(await store.listRefs(), []);
  });

  it("an upload that gets no answer names the blob being uploaded", async () => {
    const store = new OciLayout(work("s3"));
    const d = await makeTestImage(store, "err/app:2", { layers: [50_000] });
    proxy.rules.push({ mode: "hang", method: "PUT", path: /\/blobs\/uploads\// });
    await expectRegistryError(
      pushImage(`${proxy.host}/err/app:2`, { ...fast(), store, source: "err/app:2" }),
      /upload of blob sha256:[0-9a-f]{64}/,
      /no answer from .* for 1\.5s/,
    );
    assert.ok(d.digest);
  });

  it("a download into a full disk names the blob, the image, the file and what to do; no Node text", async () => {
    // A 64 KiB tmpfs holds the manifest and config but not the 200 kB layer: ENOSPC mid-write.
    const dir = work("full");
    fs.mkdirSync(dir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
    try {
      const store = new OciLayout(path.join(dir, "store"));
      await assert.rejects(
        pullImage(`${reg.host}/err/app:1`, { ...fast(), store, concurrency: 1 }),
        (err: unknown) => {
          assert.ok(err instanceof RegistryError, String(err));
          assert.equal(err.temporary, false, "a full disk is not fixed by trying again");
          const partial = path.join(dir, "store", "tmp", `pull-${layer.slice(7)}.partial`);
          assert.equal(
            err.message,
            `downloading blob ${layer} of ${reg.host}/err/app into ${partial}: the disk holding ${path.join(dir, "store")} is full; free space there (sealer prune removes unused blobs) or set SEALER_HOME to a larger disk, then try again`,
          );
          assert.doesNotMatch(err.message, /ENOSPC|no space left on device|Error:/);
          return true;
        },
      );
    } finally {
      execFileSync("umount", [dir]);
    }
  });

  it("a registry that is not there names what was asked for", async () => {
    const port = await freePort();
    await assert.rejects(
      pullImage(`127.0.0.1:${port}/err/app:1`, { ...fast(), store: new OciLayout(work("p4")) }),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError, String(err));
        assert.equal(err.temporary, true);
        assert.equal(
          err.message,
          `manifest 1 in 127.0.0.1:${port}/err/app: the connection was refused (is the registry running, and at this address?) (this may be temporary: try again)`,
        );
        return true;
      },
    );
  });
});
