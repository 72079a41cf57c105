import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { redact } from "../../provider/core/log";
import { dataPaths } from "../../provider/core/paths";
import {
  loadCredentials,
  loadSettings,
  removeCredentials,
  saveCredentials,
  saveSettings,
  settingsPath,
} from "../../provider/core/registry/credentials";
import { setEnv } from "../harness/env";

describe("registry credentials and settings files", () => {
  let home: string;
  let dockerDir: string;
  let restoreEnv: () => void;
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-cred-"));
    dockerDir = path.join(home, "docker");
    restoreEnv = setEnv({ DOCKER_CONFIG: dockerDir });
  });
  afterEach(() => {
    restoreEnv();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("stores docker-style auths (mode 0600), docker.io under docker's legacy key", async () => {
    await saveCredentials("docker.io", { username: "u1", password: "pw-docker-hub" }, home);
    await saveCredentials("https://reg.example.com:5000/", { username: "u2", password: "pw-two" }, home);
    const file = JSON.parse(fs.readFileSync(dataPaths.auth(home), "utf8"));
    assert.deepEqual(file, {
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("u1:pw-docker-hub").toString("base64") },
        "reg.example.com:5000": { auth: Buffer.from("u2:pw-two").toString("base64") },
      },
    });
    assert.equal(fs.statSync(dataPaths.auth(home)).mode & 0o777, 0o600);
    assert.deepEqual(await loadCredentials("index.docker.io", home), {
      username: "u1",
      password: "pw-docker-hub",
    });
    // Passwords are registered as secrets: they never reach a log line.
    assert.equal(redact("login with pw-docker-hub"), "login with ***");
    assert.equal(await removeCredentials("docker.io", home), true);
    assert.equal(await removeCredentials("docker.io", home), false);
    assert.equal(await loadCredentials("docker.io", home), undefined);
  });

  it("falls back to ~/.docker/config.json; ours wins when both have the registry", async () => {
    fs.mkdirSync(dockerDir, { recursive: true });
    fs.writeFileSync(
      path.join(dockerDir, "config.json"),
      JSON.stringify({
        auths: {
          "http://r.example.com": { auth: Buffer.from("d:from-docker").toString("base64") },
          "other.example.com": { username: "x", password: "plain-fields" },
        },
        credsStore: "desktop",
      }),
    );
    assert.deepEqual(await loadCredentials("r.example.com", home), {
      username: "d",
      password: "from-docker",
    });
    assert.deepEqual(await loadCredentials("other.example.com", home), {
      username: "x",
      password: "plain-fields",
    });
    await saveCredentials("r.example.com", { username: "s", password: "from-sealer" }, home);
    assert.deepEqual(await loadCredentials("r.example.com", home), {
      username: "s",
      password: "from-sealer",
    });
  });

  it("keeps per-registry CA and insecure settings, merged", async () => {
    await saveSettings(
      "127.0.0.1:5000",
      { ca: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n" },
      home,
    );
    await saveSettings("127.0.0.1:5000", { insecure: true }, home);
    assert.deepEqual(await loadSettings("127.0.0.1:5000", home), {
      ca: "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
      insecure: true,
    });
    assert.deepEqual(await loadSettings("other:1", home), {});
    assert.equal(path.dirname(settingsPath(home)), path.dirname(dataPaths.auth(home)));
  });
});
