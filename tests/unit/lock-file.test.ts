/** acquireLock waits by the retry policy: a live holder makes it give up naming the holder; a dead one's lock is taken over. */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { acquireLock } from "../../provider/core/fsutil";

describe("lock file", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-lock-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a lock held by a live process is refused after the timeout, naming the process and the file", async () => {
    const file = path.join(dir, "a.lock");
    fs.writeFileSync(file, String(process.pid));
    await assert.rejects(acquireLock(file, "the store", 300), {
      message: `the store is locked by process ${process.pid} (${file}); wait for it or remove the file if that process is gone`,
    });
    assert.equal(fs.readFileSync(file, "utf8"), String(process.pid), "the holder's lock is left alone");
  });

  it("a lock left by a dead process is taken over, and release removes it", async () => {
    const file = path.join(dir, "b.lock");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    fs.writeFileSync(file, dead.stdout);
    const release = await acquireLock(file, "the store", 60_000);
    assert.equal(fs.readFileSync(file, "utf8"), String(process.pid));
    await release();
    assert.equal(fs.existsSync(file), false);
  });
});
