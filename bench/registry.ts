/**
 * Registry benchmark: push and pull of the same ≥ 500 MiB image (random data in a few layers)
 * with this project and with `skopeo copy`, each against its own fresh docker-registry on
 * loopback (so neither benefits from blobs the other uploaded), plus the re-push of the
 * unchanged image. Prints times, throughput and ours/skopeo ratios (< 1 means we are faster).
 *
 *   npm run build && node dist/bench/registry.js          # BENCH_REGISTRY_MIB=512 by default
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { OciLayout } from "../provider/core/image/layout";
import { setLogLevel } from "../provider/core/log";
import { pullImage } from "../provider/core/registry/pull";
import { pushImage } from "../provider/core/registry/push";
import { makeTestImage, startRegistry, tempDir } from "../tests/harness/registry";
import { time } from "./helpers";

function skopeo(args: string[]): void {
  execFileSync("skopeo", args, { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 26 });
}

async function main(): Promise<void> {
  setLogLevel("warn");
  const mib = Number(process.env.BENCH_REGISTRY_MIB ?? 512);
  const layers = 4;
  const work = tempDir("bench-registry");
  process.env.DOCKER_CONFIG = path.join(work, "docker-config");
  const home = path.join(work, "home");
  const regOurs = await startRegistry();
  const regSkopeo = await startRegistry();
  try {
    const store = new OciLayout(path.join(work, "store"));
    console.log(`generating a ${mib} MiB image (${layers} layers of random data)…`);
    const per = Math.floor((mib * 1024 * 1024) / layers);
    await makeTestImage(store, "bench/img:1", {
      layers: Array.from({ length: layers }, () => per),
      gzipLevel: 0,
    });
    const total = fs
      .readdirSync(path.join(store.root, "blobs/sha256"))
      .reduce((n, f) => n + fs.statSync(path.join(store.root, "blobs/sha256", f)).size, 0);
    const oursRef = `${regOurs.host}/bench/img:1`;
    const skopeoRef = `${regSkopeo.host}/bench/img:1`;
    const src = `oci:${store.root}:docker.io/bench/img:1`;
    // Warm the page cache so the first contender does not pay for it alone.
    execFileSync("sh", ["-c", `cat ${store.root}/blobs/sha256/* > /dev/null`]);

    const pushOurs = await time(() => pushImage(oursRef, { store, source: "bench/img:1", home }));
    const pushSkopeo = await time(() =>
      skopeo(["copy", "--quiet", "--dest-tls-verify=false", src, `docker://${skopeoRef}`]),
    );
    const pulledOurs = new OciLayout(path.join(work, "pull-ours"));
    const pullOurs = await time(() => pullImage(oursRef, { store: pulledOurs, home }));
    const pullSkopeo = await time(() =>
      skopeo([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        `docker://${skopeoRef}`,
        `oci:${path.join(work, "pull-skopeo")}:x`,
      ]),
    );
    const repushOurs = await time(() => pushImage(oursRef, { store, source: "bench/img:1", home }));
    const repushSkopeo = await time(() =>
      skopeo(["copy", "--quiet", "--dest-tls-verify=false", src, `docker://${skopeoRef}`]),
    );

    const mibps = (ms: number) => (total / 1024 / 1024 / (ms / 1000)).toFixed(0);
    const row = (name: string, a: number, b: number, extra = "") =>
      console.log(
        `${name.padEnd(22)} ours ${(a / 1000).toFixed(2).padStart(7)} s (${mibps(a).padStart(5)} MiB/s)   skopeo ${(b / 1000).toFixed(2).padStart(7)} s (${mibps(b).padStart(5)} MiB/s)   ours/skopeo ${(a / b).toFixed(2)}${extra}`,
      );
    console.log(
      `image: ${(total / 1024 / 1024).toFixed(0)} MiB in ${layers} layers + config; docker-registry ${regOurs.host} / ${regSkopeo.host}`,
    );
    row(
      "push (cold)",
      pushOurs.ms,
      pushSkopeo.ms,
      `   [${pushOurs.value.blobsUploaded} blobs, ${(pushOurs.value.bytesUploaded / 1048576).toFixed(0)} MiB sent]`,
    );
    row(
      "pull (cold)",
      pullOurs.ms,
      pullSkopeo.ms,
      `   [${pullOurs.value.blobsDownloaded} blobs verified into the store]`,
    );
    row(
      "re-push (unchanged)",
      repushOurs.ms,
      repushSkopeo.ms,
      `   [ours sent ${repushOurs.value.bytesUploaded} blob bytes]`,
    );
  } finally {
    await regOurs.stop();
    await regSkopeo.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
