/**
 * The CLI's live progress bars, drawn only on a terminal: `sealer pull` runs under a
 * pseudo-terminal (util-linux `script`), against a real docker-registry behind a proxy that
 * paces the answer so the transfer spans several redraws. What the terminal received must hold
 * bar frames with bytes, rate and ETA; the same pull through a pipe must hold none.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { OciLayout } from "../../provider/core/image/layout";
import type { Manifest } from "../../provider/core/image/types";
import { pushImage } from "../../provider/core/registry/push";
import { shellQuote } from "../../provider/core/ssh";
import { TestRegistry, makeTestImage, repoRoot, startRegistry, tempDir } from "../harness/registry";

/** Forwards to the registry; answers go out in 64 KiB pieces with a pause after each. */
async function startPacedProxy(upstreamPort: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(upstreamPort, "127.0.0.1");
    for (const s of [client, up]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.on("close", () => up.destroy());
    up.on("close", () => client.destroy());
    client.pipe(up);
    up.on("data", (chunk: Buffer) => {
      up.pause();
      let at = 0;
      const next = () => {
        if (client.destroyed) return;
        if (at >= chunk.length) return void up.resume();
        client.write(chunk.subarray(at, at + 65536));
        at += 65536;
        setTimeout(next, 15);
      };
      next();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

// "pull 0123456789ab =====-------------------  19% 790.40 KiB/4.00 MiB 3.66 MiB/s ETA 1.0s"
const FRAME =
  /pull ([0-9a-f]{12}) [=-]+ +(\d+)% ([\d.]+ (?:bytes|KiB|MiB))\/([\d.]+ MiB) ([\d.]+ (?:bytes|KiB|MiB))\/s ETA [\d.]+(?:ms|s)/g;

describe("TTY progress bars: sealer pull under a pseudo-terminal", function () {
  this.timeout(180_000);
  let work: string;
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof startPacedProxy>>;
  let layer: string;

  before(async () => {
    work = tempDir("tty");
    reg = await startRegistry();
    const store = new OciLayout(path.join(work, "src"));
    const d = await makeTestImage(store, "tty/app:1", { layers: [4 << 20] });
    await pushImage(`${reg.host}/tty/app:1`, {
      store,
      source: "tty/app:1",
      home: path.join(work, "push-home"),
    });
    layer = (await store.readJson<Manifest>(d.digest)).layers[0]!.digest;
    proxy = await startPacedProxy(reg.port);
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs the pull in a child process (asynchronously: the pacing proxy lives in this one). */
  async function pull(home: string, tty: boolean): Promise<{ code: number; out: string }> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SEALER_HOME: home,
      DOCKER_CONFIG: path.join(home, "no-docker"),
    };
    delete env.CI;
    delete env.SEALER_PROGRESS;
    const argv = [
      process.execPath,
      path.join(repoRoot(), "bin/sealer.js"),
      "pull",
      `${proxy.host}/tty/app:1`,
    ];
    // script gives the command a pseudo-terminal and copies everything drawn on it to stdout.
    const [cmd, ...args] = tty ? ["script", "-qec", argv.map(shellQuote).join(" "), "/dev/null"] : argv;
    const child = spawn(cmd!, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
    return { code, out };
  }

  it("draws bar frames with bytes, percentage, rate and ETA while the layer downloads", async () => {
    const r = await pull(path.join(work, "home-tty"), true);
    assert.equal(r.code, 0, r.out.slice(-2000));
    const frames = [...r.out.matchAll(FRAME)];
    assert.ok(
      frames.length >= 2,
      `expected several bar frames, got ${frames.length}:\n${JSON.stringify(r.out.slice(0, 3000))}`,
    );
    for (const f of frames) assert.equal(f[1], layer.slice(7, 19), "the bar names the layer being pulled");
    const percents = frames.map((f) => Number(f[2]));
    assert.ok(
      percents.some((p) => p > 0 && p < 100),
      `a frame while the transfer is under way: ${percents.join(", ")}`,
    );
    assert.ok(
      percents.every((p, i) => i === 0 || p >= percents[i - 1]!),
      `the bar only moves forward: ${percents.join(", ")}`,
    );
    // Redrawn in place: cursor movement / line clearing, and the cursor hidden while drawing.
    assert.match(r.out, /\x1b\[\?25l/);
    assert.match(r.out, /\x1b\[(\d*[AG]|2?K)/);
  });

  it("through a pipe the same pull draws no bar and no control characters", async () => {
    const r = await pull(path.join(work, "home-pipe"), false);
    assert.equal(r.code, 0, r.out.slice(-2000));
    assert.equal([...r.out.matchAll(FRAME)].length, 0, r.out);
    assert.doesNotMatch(r.out, /\x1b\[/);
  });
});
