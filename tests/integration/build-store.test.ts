/**
 * Other tools read our store: skopeo (containers/image) inspects and copies (verifying every
 * blob digest), umoci unpacks (applying whiteouts) to the same tree our materialiser produces.
 * Also drives the CLI verbs in-process.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Command } from "commander";
import { setLogSink } from "../../provider/core/log";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { materializeLayers } from "../../provider/core/image/materialize";
import * as imagesCli from "../../provider/cli/commands/images";
import { packageRoot } from "../../provider/core/package-info";

const repoRoot = (): string => packageRoot(__dirname);
const FIXTURE = path.join(repoRoot(), "tests", "fixtures", "build", "basic");

/** path -> "d 755" | "f 644 <sha256>" | "l -> target", for every entry under dir. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      if (st.isDirectory()) {
        out[r] = `d ${(st.mode & 0o777).toString(8)}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `l -> ${fs.readlinkSync(path.join(dir, r))}`;
      else
        out[r] = `f ${(st.mode & 0o777).toString(8)} ${crypto
          .createHash("sha256")
          .update(fs.readFileSync(path.join(dir, r)))
          .digest("hex")}`;
    }
  };
  walk("");
  return out;
}

describe("integration: our store read by skopeo and umoci; CLI verbs", function () {
  this.timeout(120_000);
  let tmp: string;
  let home: string;
  let store: string;
  let restore: ReturnType<typeof setLogSink> | undefined;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "a2-int-"));
    home = path.join(tmp, "home");
    store = path.join(home, "store");
    restore = setLogSink({ write: () => undefined });
  });
  after(() => {
    if (restore) setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("skopeo inspects and copies (verifying digests) single- and multi-platform images", async () => {
    const single = await buildImage({ context: FIXTURE, tag: "test/app:1", home, buildMode: "lite" });
    const info = JSON.parse(
      execFileSync("skopeo", ["inspect", `oci:${store}:docker.io/test/app:1`], { encoding: "utf8" }),
    ) as {
      Digest: string;
      Layers: string[];
      Labels: Record<string, string>;
      Architecture: string;
      Created: string;
    };
    assert.equal(info.Digest, single.digest);
    assert.deepEqual(
      info.Layers,
      single.layers.map((l) => l.digest),
    );
    assert.equal(info.Labels["cluster.alpha.sealer.io/kube-cni-calico"], "true");
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Created, "1970-01-01T00:00:00Z");
    // copy reads every blob and checks it against its digest and size
    execFileSync("skopeo", [
      "copy",
      "--quiet",
      `oci:${store}:docker.io/test/app:1`,
      `dir:${path.join(tmp, "copy-single")}`,
    ]);
    assert.ok(fs.existsSync(path.join(tmp, "copy-single", "manifest.json")));

    const multi = await buildImage({
      context: FIXTURE,
      tag: "test/app:multi",
      home,
      buildMode: "lite",
      platforms: ["linux/amd64", "linux/arm64"],
    });
    const raw = JSON.parse(
      execFileSync("skopeo", ["inspect", "--raw", `oci:${store}:docker.io/test/app:multi`], {
        encoding: "utf8",
      }),
    ) as { manifests: Array<{ platform: { architecture: string } }> };
    assert.deepEqual(
      raw.manifests.map((m) => m.platform.architecture),
      ["amd64", "arm64"],
    );
    const arm = JSON.parse(
      execFileSync(
        "skopeo",
        ["--override-arch", "arm64", "inspect", `oci:${store}:docker.io/test/app:multi`],
        { encoding: "utf8" },
      ),
    ) as { Architecture: string; Digest: string };
    assert.equal(arm.Architecture, "arm64");
    assert.equal(arm.Digest, multi.digest); // skopeo reports the digest the reference names (the index)
    execFileSync("skopeo", [
      "copy",
      "--quiet",
      "--all",
      `oci:${store}:docker.io/test/app:multi`,
      `oci:${path.join(tmp, "copy-multi")}:x`,
    ]);
  });

  it("umoci unpacks to the same rootfs our materialiser builds, whiteouts included", async () => {
    const base = path.join(tmp, "wh");
    fs.mkdirSync(path.join(base, "files", "d"), { recursive: true });
    fs.writeFileSync(path.join(base, "files", "keep.txt"), "keep\n");
    fs.writeFileSync(path.join(base, "files", "gone.txt"), "gone\n");
    fs.writeFileSync(path.join(base, "files", "d", "old.txt"), "old\n");
    fs.writeFileSync(path.join(base, "files", "run.sh"), "#!/bin/sh\n", { mode: 0o700 });
    fs.writeFileSync(
      path.join(base, "Kubefile"),
      "FROM scratch\nCOPY files /\nRUN rm gone.txt && rm -rf d && mkdir d && echo new > d/new.txt && ln -s keep.txt link\n",
    );
    const r = await buildImage({ context: base, tag: "test/wh:1", home, buildMode: "lite" });
    const ours = path.join(tmp, "ours-rootfs");
    await materializeLayers(
      new OciLayout(store),
      r.layers.map((l) => l.digest),
      ours,
    );
    const bundle = path.join(tmp, "bundle");
    execFileSync("umoci", ["unpack", "--rootless", "--image", `${store}:docker.io/test/wh:1`, bundle], {
      stdio: "pipe",
    });
    assert.deepEqual(tree(path.join(bundle, "rootfs")), tree(ours));
    assert.deepEqual(Object.keys(tree(ours)), ["d", "d/new.txt", "keep.txt", "link", "run.sh"]);
    assert.equal(tree(ours)["run.sh"]!.slice(0, 5), "f 755");
    const stat = execFileSync("umoci", ["stat", "--json", "--image", `${store}:docker.io/test/wh:1`], {
      encoding: "utf8",
    });
    const history = (JSON.parse(stat) as { history: Array<{ created_by: string }> }).history.map(
      (h) => h.created_by,
    );
    assert.deepEqual(history, [
      "COPY files /",
      "RUN rm gone.txt && rm -rf d && mkdir d && echo new > d/new.txt && ln -s keep.txt link",
    ]);
  });

  it("CLI: images, inspect, tag, rmi, prune", async () => {
    const out: string[] = [];
    const origWrite = process.stdout.write.bind(process.stdout);
    const run = async (...args: string[]) => {
      const program = new Command("sealer").exitOverride();
      imagesCli.register(program);
      out.length = 0;
      process.stdout.write = ((s: string) => {
        out.push(s);
        return true;
      }) as typeof process.stdout.write;
      const prev = process.env.SEALER_HOME;
      process.env.SEALER_HOME = home;
      try {
        await program.parseAsync(["node", "sealer", ...args]);
      } finally {
        process.stdout.write = origWrite;
        if (prev === undefined) delete process.env.SEALER_HOME;
        else process.env.SEALER_HOME = prev;
      }
      return out.join("");
    };
    const built = await run(
      "build",
      "-t",
      "cli/app:1",
      "--build-mode",
      "lite",
      "--label",
      "x=y",
      "--json",
      FIXTURE,
    );
    const result = JSON.parse(built) as { digest: string; reference: string };
    assert.equal(result.reference, "docker.io/cli/app:1");
    const table = await run("images");
    assert.match(table, /^NAME\s+TAG\s+IMAGE ID\s+PLATFORMS\s+SIZE\s+CREATED\n/);
    assert.match(table, new RegExp(`\\ncli/app\\s+1\\s+${result.digest.slice(7, 19)}\\s+linux/amd64\\s+`));
    const inspected = JSON.parse(await run("inspect", "cli/app:1")) as {
      digest: string;
      labels: Record<string, string>;
      layers: unknown[];
      extension: { type: string };
    };
    assert.equal(inspected.digest, result.digest);
    assert.equal(inspected.labels.x, "y");
    assert.equal(inspected.layers.length, 7);
    assert.equal(inspected.extension.type, "kube-installer");
    assert.equal(await run("tag", "cli/app:1", "cli/app:2"), "docker.io/cli/app:2\n");
    assert.equal(
      await run("rmi", "cli/app:1", "cli/app:2"),
      "Untagged: docker.io/cli/app:1\nUntagged: docker.io/cli/app:2\n",
    );
    assert.match(
      await run("prune"),
      /^Deleted [1-9]\d* blobs?, freed .* \(\d+ bytes\); \d+ build cache entr(y|ies) dropped\n$/,
    );
    const list = JSON.parse(await run("images", "--json")) as Array<{ reference: string }>;
    assert.deepEqual(list.map((i) => i.reference).sort(), [
      "docker.io/test/app:1",
      "docker.io/test/app:multi",
      "docker.io/test/wh:1",
    ]);
    // what is left still verifies
    execFileSync("skopeo", [
      "copy",
      "--quiet",
      "--all",
      `oci:${store}:docker.io/test/app:multi`,
      `oci:${path.join(tmp, "copy-after-prune")}:x`,
    ]);
  });
});
