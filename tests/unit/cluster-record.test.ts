/**
 * The cluster record on the operator machine: the Clusterfile kept without secrets, the secrets in
 * their own 0600 file and merged back on read, an old record with inline secrets migrated, and the
 * data directory created 0700.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { dumpClusterfile, loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { setLogSink } from "../../provider/core/log";
import { ensureSealerHome } from "../../provider/core/paths";
import { UserError } from "../../provider/core/errors";
import { clusterDir, loadSavedClusterfile, loadStateFrom, saveClusterfile } from "../../provider/core/state";
import { setEnv } from "../harness/env";

const SECRETS = ["Cluster-Pw-1", "Host-Pw-2", "Key-Pass-3", "Reg-Pw-4"];

function spec(): ClusterSpec {
  const text = [
    "apiVersion: sealer.io/v2",
    "kind: Cluster",
    "metadata: { name: rec }",
    "spec:",
    "  image: app:1",
    `  ssh: { user: root, passwd: ${SECRETS[0]} }`,
    "  hosts:",
    "    - { ips: [ 10.0.0.1 ], roles: [ master ] }",
    `    - { ips: [ 10.0.0.2 ], roles: [ node ], ssh: { passwd: ${SECRETS[1]} } }`,
    `    - { ips: [ 10.0.0.3 ], roles: [ node ], ssh: { pk: /root/.ssh/id_rsa, pkPasswd: ${SECRETS[2]} } }`,
    "  registry:",
    `    externalRegistry: { domain: reg.example.com, port: 5000, username: u, password: ${SECRETS[3]} }`,
    "",
  ].join("\n");
  return loadClusterfile(text, { file: "rec.yaml" }).spec;
}

/** Every secret of a spec as plain values, for comparing two specs. */
function revealed(s: ClusterSpec): unknown {
  return {
    ssh: s.ssh.passwd?.reveal(),
    hosts: s.hosts.map((h) => [h.ips[0], h.ssh.passwd?.reveal(), h.ssh.pkPasswd?.reveal()]),
    registry: s.registry.externalRegistry?.password?.reveal(),
  };
}

describe("cluster record: secrets apart from the Clusterfile", () => {
  let home: string;
  let restoreEnv: () => void;
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-record-"));
    restoreEnv = setEnv({ SEALER_HOME: home });
  });
  afterEach(() => {
    restoreEnv();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("keeps the Clusterfile free of secrets, the secrets in a 0600 file, and merges them back on read", async () => {
    const s = spec();
    await saveClusterfile(s);
    const dir = clusterDir("rec");
    const text = fs.readFileSync(path.join(dir, "clusterfile.yaml"), "utf8");
    for (const x of SECRETS) assert.ok(!text.includes(x), `${x} in clusterfile.yaml`);
    // Still a valid Clusterfile that someone can be given.
    assert.equal(loadClusterfile(text).spec.hosts.length, 3);
    const secretsFile = path.join(dir, "secrets.json");
    assert.equal(fs.statSync(secretsFile).mode & 0o777, 0o600);
    const stored = fs.readFileSync(secretsFile, "utf8");
    for (const x of SECRETS) assert.ok(stored.includes(x), `${x} missing from secrets.json`);
    const back = await loadSavedClusterfile("rec");
    assert.deepEqual(revealed(back as ClusterSpec), revealed(s));
    assert.equal(
      dumpClusterfile(back as ClusterSpec, { secrets: true }),
      dumpClusterfile(s, { secrets: true }),
    );
  });

  it("migrates a record with inline secrets on first read", async () => {
    const s = spec();
    const dir = clusterDir("rec");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "clusterfile.yaml"), dumpClusterfile(s, { secrets: true }), {
      mode: 0o600,
    });
    const back = await loadSavedClusterfile("rec");
    assert.deepEqual(revealed(back as ClusterSpec), revealed(s));
    const text = fs.readFileSync(path.join(dir, "clusterfile.yaml"), "utf8");
    for (const x of SECRETS) assert.ok(!text.includes(x), `${x} still inline after the migration`);
    assert.equal(fs.statSync(path.join(dir, "secrets.json")).mode & 0o777, 0o600);
    assert.deepEqual(revealed((await loadSavedClusterfile("rec")) as ClusterSpec), revealed(s));
  });

  it("a spec without secrets leaves no secrets file (and removes an old one)", async () => {
    await saveClusterfile(spec());
    const plain = loadClusterfile(
      "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: { name: rec }\nspec:\n  image: app:1\n  ssh: { pk: /k }\n  hosts: [ { ips: [ 10.0.0.1 ], roles: [ master ] } ]\n",
    ).spec;
    await saveClusterfile(plain);
    assert.ok(!fs.existsSync(path.join(clusterDir("rec"), "secrets.json")));
    assert.equal((await loadSavedClusterfile("rec"))?.ssh.passwd, undefined);
  });

  it("a broken state or secrets file is a user error naming it, in words and without Node's error text", async () => {
    await saveClusterfile(spec());
    const dir = clusterDir("rec");
    const secretsFile = path.join(dir, "secrets.json");
    fs.writeFileSync(secretsFile, "{ not json", { mode: 0o600 });
    const stateFile = path.join(dir, "state.json");
    fs.mkdirSync(stateFile);
    const cases: Array<[() => Promise<unknown>, string, RegExp]> = [
      [
        () => loadSavedClusterfile("rec"),
        secretsFile,
        /cannot read the recorded secrets \(it is not valid JSON\)/,
      ],
      [() => loadStateFrom(dir), stateFile, /cannot read the cluster state \(it is a directory\)/],
    ];
    for (const [load, file, why] of cases)
      await assert.rejects(load, (err: unknown) => {
        assert.ok(err instanceof UserError, String(err));
        assert.ok(err.message.startsWith(`${file}: `), err.message);
        assert.match(err.message, why);
        assert.doesNotMatch(err.message, /EISDIR|Unexpected|JSON at position|token/);
        return true;
      });
  });
});

describe("sealer data directory", () => {
  let base: string;
  const logs: string[] = [];
  let prevSink: ReturnType<typeof setLogSink>;
  beforeEach(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-home-"));
    fs.chmodSync(base, 0o755);
    logs.length = 0;
    prevSink = setLogSink({ write: (l) => logs.push(l) });
  });
  afterEach(() => {
    setLogSink(prevSink);
    fs.rmSync(base, { recursive: true, force: true });
  });
  const mode = (p: string) => fs.statSync(p).mode & 0o777;

  it("is created 0700 with its missing parents, whatever the umask; existing parents are left alone", () => {
    const old = process.umask(0o002);
    try {
      const home = ensureSealerHome(path.join(base, "share", "sealer"));
      assert.equal(mode(home), 0o700);
      assert.equal(mode(path.join(base, "share")), 0o700);
      assert.equal(mode(base), 0o755);
    } finally {
      process.umask(old);
    }
  });

  it("an existing data directory open to others is narrowed to 0700, and the log says so", () => {
    const home = path.join(base, "sealer");
    fs.mkdirSync(home, { mode: 0o755 });
    fs.chmodSync(home, 0o755);
    ensureSealerHome(home);
    assert.equal(mode(home), 0o700);
    assert.equal(mode(base), 0o755);
    assert.ok(logs.some((l) => l.includes("from 0755 to 0700")));
  });

  it("a data directory that cannot be created is a user error naming it", () => {
    const file = path.join(base, "file");
    fs.writeFileSync(file, "");
    assert.throws(
      () => ensureSealerHome(path.join(file, "sealer")),
      (e: Error) =>
        e.name === "UserError" &&
        e.message.includes(path.join(file, "sealer")) &&
        !/ENOTDIR:/.test(e.message),
    );
  });
});
