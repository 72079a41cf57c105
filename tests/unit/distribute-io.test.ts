/**
 * What distribute sends to which host, through HostIo with the recording fake (no root, no
 * nodes): the inventory first; then only the blobs a host lacks are streamed (a partial one from
 * its byte), the ones it has are extracted from its store, and the staging tree is swapped in;
 * a host whose rootfs already holds the layers gets nothing but the inventory.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { distributeLayers, type LayerFetch } from "../../provider/core/exec/distribute";
import type { HostRunOptions } from "../../provider/core/exec/host-io";
import { INVENTORY_MARK } from "../../provider/core/exec/node-layers";
import { OciLayout } from "../../provider/core/image/layout";
import { CommandError, type ExecResult, type SshTarget } from "../../provider/core/ssh";
import { craftLayer } from "../harness/crafted-layers";
import { FakeHosts, type FakeCall } from "../harness/fake-host";

const ROOT = "/var/lib/sealer";
const [EMPTY, PARTLY, DONE] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const target = (host: string): SshTarget => ({ host, port: 22, user: "root" });
const hexOf = (d: string) => d.slice("sha256:".length);
const stdinOf = (c: FakeCall | undefined) => (c?.op === "run" ? (c.stdin ?? "") : "");

/** What the node's inventory script prints for a store holding `blobs`. */
function inventory(
  blobs: Array<[digest: string, size: number, partial?: boolean]>,
  layers?: string[],
): string {
  const lines = blobs.map(([d, n, partial]) => `${n} ${hexOf(d)}${partial ? ".partial" : ""}`);
  lines.push(`rootfs=${layers ? "yes" : "no"}`, INVENTORY_MARK);
  return lines.join("\n") + "\n" + (layers ? JSON.stringify({ layers }) + "\n" : "");
}

describe("distribute through HostIo (recording fake)", () => {
  let dir: string;
  let layout: OciLayout;
  let layers: string[];
  let sizes: number[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-dist-io-"));
    layout = new OciLayout(dir);
    await layout.init();
    const made = [
      await craftLayer(layout, [
        { name: "etc/", type: "dir" },
        { name: "etc/gone", type: "file", data: "lower" },
      ]),
      await craftLayer(layout, [{ name: "etc/.wh.gone", type: "file" }]),
      await craftLayer(layout, [{ name: "data.bin", type: "file", data: "x".repeat(5000) }]),
    ];
    layers = made.map((l) => l.digest);
    sizes = made.map((l) => l.size);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const blobSha = (i: number, from = 0) =>
    crypto
      .createHash("sha256")
      .update(fs.readFileSync(layout.blobPath(layers[i]!)).subarray(from))
      .digest("hex");
  const streams = (io: FakeHosts, ip: string) =>
    io.on(ip).filter((c): c is Extract<FakeCall, { op: "stream" }> => c.op === "stream");

  const fakeHosts = () =>
    new FakeHosts()
      .answer({ host: EMPTY, match: /stat -c/, stdout: inventory([]) })
      .answer({
        host: PARTLY,
        match: /stat -c/,
        // Layers 1 and 2 are there (the rootfs was built from them), 100 bytes of layer 3 came before a cut.
        stdout: inventory(
          [
            [layers[0]!, sizes[0]!],
            [layers[1]!, sizes[1]!],
            [layers[2]!, 100, true],
          ],
          layers.slice(0, 2),
        ),
      })
      .answer({
        host: DONE,
        match: /stat -c/,
        stdout: inventory(
          layers.map((d, i) => [d, sizes[i]!]),
          layers,
        ),
      });

  it("streams only missing blobs (a partial from its byte), extracts the rest from the node's store", async () => {
    const io = fakeHosts();
    const res = await distributeLayers(io, [EMPTY, PARTLY, DONE].map(target), {
      layout,
      layers,
      dataRoot: ROOT,
      cluster: "c",
    });
    assert.deepEqual(io.hosts(), [EMPTY, PARTLY, DONE]);

    // A host that has the rootfs already: the inventory, nothing else.
    assert.equal(io.on(DONE).length, 1);
    assert.equal(io.on(DONE)[0]!.step, "distribute: list blobs");

    // The empty host: every blob, whole, in layer order, each received into a tree of its own
    // (written once: no blob kept), then linked into the staging tree in one command.
    const sent = streams(io, EMPTY);
    assert.deepEqual(
      sent.map((c) => [c.bytes, c.sha256]),
      layers.map((_, i) => [sizes[i], blobSha(i)]),
    );
    sent.forEach((c, i) => {
      assert.match(
        c.step,
        new RegExp(`^distribute: send and extract layer ${i + 1}/3 \\(blob ${i + 1}/3\\)`),
      );
      assert.ok(
        c.body.includes(` ${hexOf(layers[i]!)} ${sizes[i]} 1 0 ${ROOT}/layers/${hexOf(layers[i]!)}.partial `),
        "the receiver's size, gzip flag, no blob kept, and the layer's own tree",
      );
      assert.doesNotMatch(c.body, /rootfs\.new/, "the bytes never reach the staging tree directly");
    });
    const links = stdinOf(
      io
        .on(EMPTY)
        .filter((c) => c.op === "run")
        .pop(),
    );
    const linkAt = (i: number) =>
      links.indexOf(`cp -a -l --remove-destination ${ROOT}/layers/${hexOf(layers[i]!)}/.`);
    assert.ok(linkAt(0) > 0 && linkAt(0) < linkAt(1) && linkAt(1) < linkAt(2), "linked in layer order");
    // The whiteout of layer 2 goes after layer 1 and before layer 2.
    const gone = links.indexOf("rm -rf /var/lib/sealer/c/rootfs.new/etc/gone");
    assert.ok(gone > linkAt(0) && gone < linkAt(1), "the whiteout between layers 1 and 2");

    // The host with layers 1-2 and 100 bytes of layer 3: layer 3 resumes at byte 100 into the
    // store (bytes already on the node reach tar only once verified), then one command makes the
    // staging tree, extracts all three from the store and swaps it in.
    const partly = io.on(PARTLY);
    assert.deepEqual(
      partly.map((c) => c.op + " " + c.step.replace(/ sha256:.*/, "")),
      [
        "run distribute: list blobs",
        "stream distribute: send layer 1/1",
        "run distribute: extract layers 1-3/3 and swap the rootfs in",
      ],
    );
    const batch = stdinOf(partly[2]);
    assert.deepEqual(
      [...batch.matchAll(/(?:tar -xf|inflate <) (\/\S+)/g)].map((m) => m[1]),
      [0, 1, 2].map((i) => `${ROOT}/blobs/sha256/${hexOf(layers[i]!)}`),
    );
    assert.ok(
      batch.indexOf("rm -rf /var/lib/sealer/c/rootfs.new") < batch.indexOf("tar -xf"),
      "fresh tree first",
    );
    const resumed = streams(io, PARTLY);
    assert.equal(resumed.length, 1);
    assert.equal(resumed[0]!.bytes, sizes[2]! - 100);
    assert.equal(resumed[0]!.sha256, blobSha(2, 100));
    assert.match(resumed[0]!.body, /-eq 100 \]/);
    assert.doesNotMatch(resumed[0]!.body, /tar /, "the resumed bytes only go into the store");

    // Both rebuilt hosts: the staging tree is made first and swapped in last, with the layer list.
    for (const ip of [EMPTY, PARTLY]) {
      const runs = io.on(ip).filter((c) => c.op === "run");
      const first = runs[1]!;
      const last = runs[runs.length - 1]!;
      assert.ok(first.op === "run" && /mkdir -p \S*rootfs\.new/.test(first.stdin ?? ""), `${ip}: prologue`);
      assert.ok(
        last.op === "run" && (last.stdin ?? "").includes(JSON.stringify({ layers })),
        `${ip}: epilogue writes layers.json`,
      );
      assert.equal(io.on(ip).indexOf(last), io.on(ip).length - 1, `${ip}: nothing after the swap`);
    }

    assert.equal(res.sentBlobs, 4);
    assert.equal(res.sentBytes, sizes[0]! + sizes[1]! + sizes[2]! + sizes[2]! - 100);
    assert.deepEqual(res.perHost[DONE], { sentBlobs: 0, sentBytes: 0, materialisedFrom: null });
    assert.equal(res.perHost[PARTLY]!.sentBytes, sizes[2]! - 100);
  });

  it("a top layer dropped: the rootfs is rebuilt from the node's blobs in one command, nothing sent", async () => {
    const io = fakeHosts();
    const res = await distributeLayers(io, [target(DONE)], {
      layout,
      layers: layers.slice(0, 2),
      dataRoot: ROOT,
      cluster: "c",
    });
    assert.deepEqual(
      io.on(DONE).map((c) => c.step),
      ["distribute: list blobs", "distribute: extract layers 1-2/2 and swap the rootfs in"],
    );
    const script = stdinOf(io.on(DONE)[1]);
    assert.ok(
      script.indexOf("tar -xf") < script.indexOf("mv /var/lib/sealer/c/rootfs.new /var/lib/sealer/c/rootfs"),
    );
    assert.ok(script.includes(JSON.stringify({ layers: layers.slice(0, 2) })));
    assert.equal(res.sentBytes, 0);
  });

  it("a failure in a batch of extractions names the layer the node was at", async () => {
    const io = fakeHosts().answer({
      host: DONE,
      match: /^sh -s$/,
      code: 2,
      stderr: "tar: clash: Cannot open: File exists\n==sealer-extract-failed== 1",
    });
    await assert.rejects(
      distributeLayers(io, [target(DONE)], {
        layout,
        layers: layers.slice(0, 2),
        dataRoot: ROOT,
        cluster: "c",
      }),
      (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.step, `distribute: extract layer 2/2 ${layers[1]!.slice(0, 19)}`);
        assert.equal(err.tail, "tar: clash: Cannot open: File exists");
        return true;
      },
    );
    assert.match(stdinOf(io.on(DONE)[1]), /trap .* EXIT\n/);
  });

  /** Records when each command starts and ends; extractions take a moment, and `failStep` fails. */
  class TimedHosts extends FakeHosts {
    readonly events: string[] = [];
    constructor(private readonly failStep?: RegExp) {
      super();
    }
    override async run(
      ip: string,
      step: string,
      command: string,
      opts?: HostRunOptions,
    ): Promise<ExecResult> {
      const name = step.replace(/ sha256:.*/, "");
      this.events.push(`start ${name}`);
      try {
        if (/extract/.test(step)) await new Promise((r) => setTimeout(r, 30));
        if (this.failStep?.test(step)) throw new CommandError(ip, step, 2, "tar: disk full");
        return await super.run(ip, step, command, opts);
      } finally {
        this.events.push(`end ${name}`);
      }
    }
  }
  const fetch: LayerFetch = {
    what: "a test registry",
    script: (d, offset, sink) => `# ${d} ${offset}\n${sink}`,
  };

  it("a blob put on the node first is unpacked while the next one arrives, in layer order, swapped in last", async () => {
    const io = new TimedHosts();
    io.answer({ host: EMPTY, match: /stat -c/, stdout: inventory([]) });
    await distributeLayers(io, [target(EMPTY)], { layout, layers, dataRoot: ROOT, cluster: "c", fetch });
    const ev = io.events;
    const at = (e: string) => {
      assert.ok(ev.includes(e), `${e} in ${ev.join(", ")}`);
      return ev.indexOf(e);
    };
    // Layer 1 is extracted behind the fetch of layer 2, layer 2 behind layer 3's.
    assert.ok(
      at("start distribute: fetch layer 2/3") < at("end distribute: extract layer 1/3"),
      ev.join(", "),
    );
    assert.ok(
      at("start distribute: fetch layer 3/3") < at("end distribute: extract layer 2/3"),
      ev.join(", "),
    );
    // One extraction at a time, in order; the last layer and the swap after all of them.
    assert.ok(at("end distribute: extract layer 1/3") < at("start distribute: extract layer 2/3"));
    assert.ok(
      at("end distribute: extract layer 2/3") <
        at("start distribute: extract layer 3/3 and swap the rootfs in"),
    );
    assert.match(
      stdinOf(io.on(EMPTY).find((c) => c.step === "distribute: extract layer 1/3")),
      /mkdir -p \S*rootfs\.new/,
    );
    // The fetched bytes go into the store only: no fetch feeds tar.
    for (const c of io.on(EMPTY).filter((c) => c.step.startsWith("distribute: fetch")))
      assert.doesNotMatch(stdinOf(c), /tar /, c.step);
  });

  it("an extraction that fails behind a transfer fails the host with its layer named; no swap", async () => {
    const io = new TimedHosts(/extract layer 1\/3/);
    io.answer({ host: EMPTY, match: /stat -c/, stdout: inventory([]) });
    await assert.rejects(
      distributeLayers(io, [target(EMPTY)], {
        layout,
        layers,
        dataRoot: ROOT,
        cluster: "c",
        fetch,
        retries: 0,
      }),
      (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.match(err.step, /^distribute: extract layer 1\/3/);
        return true;
      },
    );
    assert.ok(
      !io.on(EMPTY).some((c) => c.op === "run" && (c.stdin ?? "").includes("layers.json")),
      "no swap",
    );
    // Every command that started has ended: nothing is left running on the host.
    assert.equal(
      io.events.filter((e) => e.startsWith("start")).length,
      io.events.filter((e) => e.startsWith("end")).length,
    );
  });

  it("a host whose receiver fails is reported with its step; no swap there, the other hosts finish", async () => {
    const io = fakeHosts().answer({
      host: EMPTY,
      match: new RegExp(hexOf(layers[1]!)),
      code: 94,
      stderr: "tar: Unexpected EOF in archive",
    });
    await assert.rejects(
      distributeLayers(io, [EMPTY, PARTLY, DONE].map(target), {
        layout,
        layers,
        dataRoot: ROOT,
        cluster: "c",
      }),
      (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.match(err.message, /10\.0\.0\.1/);
        assert.match(err.message, /send and extract layer 2\/3/);
        return true;
      },
    );
    assert.equal(streams(io, EMPTY).length, 2, "nothing after the failed layer");
    assert.ok(!io.on(EMPTY).some((c) => c.op === "run" && (c.stdin ?? "").includes("layers.json")));
    assert.ok(
      io.on(PARTLY).some((c) => c.op === "run" && (c.stdin ?? "").includes(JSON.stringify({ layers }))),
    );
  });
});
