/**
 * Secrets never reach a user through an error: the CLI's final message and the Pulumi resources'
 * errors go through the same redactor as log lines, and env problems never repeat a value.
 * The registry here is a local HTTP server that, like a badly behaved token service, echoes the
 * request's Authorization header in its error body.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { runSealerStdin } from "../harness/cli";
import { clusterFromFlags, loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { registerSecret } from "../../provider/core/log";
import { errorMessage, PartialStateError } from "../../provider/resources/common";
import { clusterfile } from "../fixtures/clusterfile/plan-world";

const PASSWORD = "L0gin-pw-7Hq2";

describe("hostile input: secrets in error messages", () => {
  let server: http.Server;
  let port: number;
  let home: string;
  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-secrets-"));
    server = http.createServer((req, res) => {
      if (req.url?.startsWith("/token")) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`token service failure for ${req.headers.authorization ?? "nobody"}`);
        return;
      }
      res.writeHead(401, {
        "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="test"`,
        "content-type": "application/json",
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("sealer login: a token service echoing the credentials does not show them", async function () {
    this.timeout(60_000);
    const res = await runSealerStdin(
      home,
      PASSWORD,
      "login",
      `127.0.0.1:${port}`,
      "-u",
      "admin",
      "--password-stdin",
      "--insecure",
    );
    const r = { code: res.code, out: res.stdout + res.stderr };
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /token service .* returned HTTP 500/);
    assert.ok(!r.out.includes(PASSWORD), r.out);
    assert.ok(!r.out.includes(Buffer.from(`admin:${PASSWORD}`).toString("base64")), r.out);
  });

  it("the Pulumi resources' error texts mask registered secrets", () => {
    registerSecret("Pul-secret-9Zk");
    assert.ok(
      !errorMessage(new Error("ssh login failed for root:Pul-secret-9Zk")).includes("Pul-secret-9Zk"),
    );
    const partial = new PartialStateError("id", {}, ["step failed: echo Pul-secret-9Zk"]);
    assert.ok(!partial.message.includes("Pul-secret-9Zk"), partial.message);
  });

  it("an env entry that is not KEY=VALUE is named by its place, its text not repeated", () => {
    const inFile = () => loadClusterfile(clusterfile({ extraSpec: "  env: [ TOKEN T0k-5ecret ]\n" }));
    const inFlag = () =>
      clusterFromFlags({ image: "app:1", masters: "10.0.0.2", env: ["A=1", "TOKEN T0k-5ecret"] });
    for (const f of [inFile, inFlag])
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.ok(!e.message.includes("T0k-5ecret"), e.message);
        assert.match(e.message, /(spec\.env\[0\]|--env \(the 2nd\)): is not KEY=VALUE/);
        return true;
      });
  });
});
