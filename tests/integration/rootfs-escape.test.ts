/**
 * The three-layer escape on a real node: the sandbox base plus layer 1 = symlink
 * `tree/evildir -> /opt/outside`, layer 2 = only the whiteout `tree/evildir/.wh.victim`, layer 3 =
 * only `tree/evildir/pwned.txt`. load and build refuse such an image, so it is put into the store
 * directly (as another tool, or an older sealer, would have). `sealer run` must fail naming the
 * layer and the path, and /opt/outside on the node must be as it was.
 */
import * as assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { OciLayout } from "../../provider/core/image/layout";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import { craftImage, symlinkEscapeLayers } from "../harness/crafted-layers";
import { useNodes } from "../harness/nodes";
import { repoRoot, tempDir } from "../harness/registry";
import { buildSandboxBase, SANDBOX_BASE } from "../harness/sandbox";

const execFileP = promisify(execFile);

describe("integration: an image whose layers reach outside the rootfs (1 node)", function () {
  this.timeout(240_000);
  const nodes = useNodes(1);
  let home: string;

  before(async function () {
    this.timeout(240_000);
    home = tempDir("escape-home");
    await buildSandboxBase(home);
    const store = new OciLayout(dataPaths.store(home));
    await craftImage(
      store,
      "evil/app:1",
      await symlinkEscapeLayers(store, "/opt/outside", "whiteout+file"),
      SANDBOX_BASE,
    );
  });

  it("sealer run fails naming the layer and the path; /opt/outside on the node is untouched", async () => {
    const n = nodes.list[0] as LocalNode;
    const setup = await execInNode(n, "mkdir -p /opt/outside && printf precious > /opt/outside/victim");
    assert.equal(setup.code, 0, setup.stderr);
    const r = await execFileP(
      process.execPath,
      [
        path.join(repoRoot(), "bin/sealer.js"),
        "run",
        "evil/app:1",
        "-m",
        n.ip,
        "--pk",
        n.keyPath,
        "--cluster-name",
        "esc",
      ],
      { cwd: repoRoot(), env: { ...process.env, SEALER_HOME: home }, maxBuffer: 16 << 20 },
    ).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code?: number; stderr?: string }) => ({ code: err.code ?? -1, stderr: err.stderr ?? "" }),
    );
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /layer \d+ of \d+ \(sha256:[0-9a-f]{64}\), entry "tree\/evildir\/\.wh\.victim" is a whiteout under "tree\/evildir"/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/);
    const after = await execInNode(n, "cd /opt/outside && ls -A && cat victim");
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, "victim\nprecious");
  });
});
