/**
 * Fuzzes `sealer load` through the real CLI: seeded mutations of a real archive (truncations,
 * bit flips, appended bytes), hostile index.json and manifest JSON, hostile tar entries, and
 * hostile inputs (directories, symlinks, named pipes, devices, stdin). Every case must either
 * fail with a message that names the archive and no JavaScript error text, leaving the store
 * as it was and no staging behind, or succeed with every loaded image complete and verified.
 *
 * SEALER_FUZZ_SEED picks the seed (printed on failure, so a failing run can be replayed).
 */
import * as assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { saveImages } from "../../provider/core/image/archive";
import { OciLayout, digestOf } from "../../provider/core/image/layout";
import { Annotations, Descriptor, Index, Manifest, MediaTypes } from "../../provider/core/image/types";
import { mapLimit } from "../../provider/core/common/limit";
import {
  entriesOf,
  indexOf,
  makeImage,
  makeMultiPlatform,
  tarOf,
  TarEntryType,
  withIndexJson,
} from "../harness/archive-fixtures";
import { repoRoot } from "../harness/registry";
import { rng } from "../harness/random";

const SEED = Number(process.env.SEALER_FUZZ_SEED ?? 20261204);
const CASE_TIMEOUT_MS = 10_000;
/** Stop starting random cases after this long (once MIN_CASES ran); the fixed cases always run. */
const BUDGET_MS = 40_000;
const MIN_CASES = 100;
const WORKERS = 4;

/** A case: how to present the archive to `sealer load`. */
interface Case {
  name: string;
  /** A file (or other path) given to -i. */
  input?: string;
  /** Bytes written to a pipe on stdin (`-i -`). */
  stdin?: Buffer;
  /** Bytes written into a named pipe given to -i (undefined with fifo: nobody writes). */
  fifo?: { data?: Buffer };
  extraArgs?: string[];
}

type Entry = { name: string; type: string; body: Buffer; linkname?: string };

const JS_ERROR_TEXT = [
  /\n\s+at .+\(.*:\d+:\d+\)/, // a stack frame
  /\bat (async )?[\w.<>]+ \(/,
  /TypeError|ReferenceError|RangeError|SyntaxError|AssertionError/,
  /Cannot read propert/,
  /is not a function/,
  /is not iterable/,
  /\bE[A-Z]{3,}: /, // "ENOENT: no such file", "EISDIR: illegal operation"
  /\bundefined\b/,
  /\[object Object\]/,
  /Unexpected end of data|Invalid tar header/, // tar-stream's own words
];

describe("fuzz: sealer load on hostile archives (real CLI)", function () {
  this.timeout(120_000);
  let tmp: string;
  let template: string;
  let good: Buffer;
  let goodGz: Buffer;
  let entries: Entry[];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-fuzz-"));
    const src = new OciLayout(path.join(tmp, "src"));
    await src.init();
    await src.setRef("app:1", await makeImage(src, { "etc/hello": "hello\n", "bin/x": "x".repeat(3000) }));
    await src.setRef("127.0.0.1:5000/team/multi:2", await makeMultiPlatform(src));
    await saveImages(src, ["app:1", "127.0.0.1:5000/team/multi:2"], path.join(tmp, "good.tar"));
    good = fs.readFileSync(path.join(tmp, "good.tar"));
    goodGz = zlib.gzipSync(good);
    entries = await entriesOf(good);
    // Every worker starts from a store that already holds another image: it must stay as it is.
    template = path.join(tmp, "template");
    const keep = new OciLayout(path.join(template, "store"));
    await keep.init();
    await keep.setRef("keep:1", await makeImage(keep, { "etc/keep": "keep\n" }));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it(`ends every case cleanly: an error naming the archive, or a verified load (seed ${SEED})`, async () => {
    const rand = rng(SEED);
    const pick = (n: number) => Math.floor(rand() * n);
    const casesDir = path.join(tmp, "cases");
    fs.mkdirSync(casesDir);
    let n = 0;
    const file = (name: string, data: Buffer): Case => {
      const f = path.join(casesDir, `${String(n++).padStart(3, "0")}-${name.replace(/[^\w.-]+/g, "_")}`);
      fs.writeFileSync(f, data);
      return { name, input: f };
    };
    const retar = async (list: Entry[]) =>
      tarOf(
        list.map((e) => ({
          name: e.name,
          type: e.type as TarEntryType,
          body: e.body,
          ...(e.linkname ? { linkname: e.linkname } : {}),
        })),
      );
    const indexEntry = entries.find((e) => e.name === "index.json") as Entry;
    const index = indexOf(entries);
    const withIndex = (value: unknown, raw?: string) => withIndexJson(entries, value, raw);
    const appIdx = index.manifests.findIndex((d) => d.annotations?.[Annotations.refName]?.endsWith("app:1"));
    const appDesc = index.manifests[appIdx] as Descriptor;
    const appManifest = JSON.parse(
      (entries.find((e) => e.name === `blobs/sha256/${appDesc.digest.slice(7)}`) as Entry).body.toString(),
    ) as Manifest;
    /** The archive with app:1's manifest replaced by `m` (re-hashed, so only its content is hostile). */
    const withManifest = async (m: unknown) => {
      const body = Buffer.from(JSON.stringify(m));
      const digest = digestOf(body);
      const idx = structuredClone(index);
      idx.manifests[appIdx] = { ...appDesc, digest, size: body.length };
      return retar([
        ...entries.map((e) =>
          e.name === "index.json" ? { ...e, body: Buffer.from(JSON.stringify(idx)) } : e,
        ),
        { name: `blobs/sha256/${digest.slice(7)}`, type: "file", body },
      ]);
    };
    const cases: Case[] = [];
    const withEntry = async (extra: Entry) => retar([...entries, extra]);

    // Hostile index.json.
    const setApp = (f: (d: Record<string, unknown>) => void) => {
      const idx = structuredClone(index) as unknown as { manifests: Array<Record<string, unknown>> };
      f(idx.manifests[appIdx] as Record<string, unknown>);
      return idx;
    };
    const hostileIndexes: Array<[string, unknown, string?]> = [
      ["ref name is a number", setApp((d) => (d.annotations = { [Annotations.refName]: 42 }))],
      ["ref name is an object", setApp((d) => (d.annotations = { [Annotations.refName]: { a: 1 } }))],
      ["ref name is an array", setApp((d) => (d.annotations = { [Annotations.refName]: ["x"] }))],
      ["ref name is null", setApp((d) => (d.annotations = { [Annotations.refName]: null }))],
      ["ref name is empty", setApp((d) => (d.annotations = { [Annotations.refName]: "" }))],
      ["ref name is invalid", setApp((d) => (d.annotations = { [Annotations.refName]: "UPPER/../x::" }))],
      ["annotations is a string", setApp((d) => (d.annotations = "abc"))],
      ["annotations is an array", setApp((d) => (d.annotations = ["a", "b"]))],
      ["size is negative", setApp((d) => (d.size = -1))],
      ["size is fractional", setApp((d) => (d.size = 1.5))],
      ["size is huge", setApp((d) => (d.size = 1e300))],
      ["size is a string", setApp((d) => (d.size = "399"))],
      ["size is max safe integer", setApp((d) => (d.size = Number.MAX_SAFE_INTEGER))],
      ["digest is a number", setApp((d) => (d.digest = 7))],
      ["digest is sha512", setApp((d) => (d.digest = "sha512:" + "a".repeat(128)))],
      ["digest of a missing blob", setApp((d) => (d.digest = "sha256:" + "0".repeat(64)))],
      ["mediaType is a number", setApp((d) => (d.mediaType = 1))],
      ["mediaType is a layer", setApp((d) => (d.mediaType = MediaTypes.layerGzip))],
      ["mediaType says index", setApp((d) => (d.mediaType = MediaTypes.index))],
      ["platform is a string", setApp((d) => (d.platform = "linux/amd64"))],
      ["platform lacks arch", setApp((d) => (d.platform = { os: "linux" }))],
      ["manifests is an object", { schemaVersion: 2, manifests: { a: 1 } }],
      ["manifests is empty", { schemaVersion: 2, manifests: [] }],
      ["manifests holds null", { schemaVersion: 2, manifests: [null, 1, "x", []] }],
      ["index is an array", [1, 2, 3]],
      ["index is null", null],
      ["index is a string", "index"],
      ["index is not JSON", undefined, "{ not json"],
      ["index is empty", undefined, ""],
      ["index is deeply nested", undefined, "[".repeat(100_000) + "]".repeat(100_000)],
      [
        "index names one ref twice",
        {
          ...index,
          manifests: [appDesc, { ...index.manifests[1 - appIdx]!, annotations: appDesc.annotations }],
        },
      ],
    ];
    for (const [name, value, raw] of hostileIndexes)
      cases.push(file(`index: ${name}`, await withIndex(value, raw)));

    // Hostile manifests (validly addressed, hostile content).
    const hostileManifests: Array<[string, unknown]> = [
      ["layers is not a list", { ...appManifest, layers: "x" }],
      ["layers holds null", { ...appManifest, layers: [null] }],
      ["layer size is a string", { ...appManifest, layers: [{ ...appManifest.layers[0], size: "1" }] }],
      ["layer size is huge", { ...appManifest, layers: [{ ...appManifest.layers[0], size: 2 ** 53 - 1 }] }],
      ["layer size is wrong", { ...appManifest, layers: [{ ...appManifest.layers[0], size: 1 }] }],
      ["config is missing", { ...appManifest, config: undefined }],
      ["config is a string", { ...appManifest, config: "sha256:x" }],
      [
        "config digest is missing",
        { ...appManifest, config: { ...appManifest.config, digest: "sha256:" + "1".repeat(64) } },
      ],
      ["mediaType disagrees", { ...appManifest, mediaType: MediaTypes.index }],
      ["manifest is an array", [appManifest]],
      ["manifest is a number", 12],
      ["annotations hold objects", { ...appManifest, annotations: { a: { b: 1 } } }],
    ];
    for (const [name, m] of hostileManifests) cases.push(file(`manifest: ${name}`, await withManifest(m)));
    // A manifest blob bigger than a manifest may be (declared and real).
    cases.push(
      file("manifest: 5 MiB", await withManifest({ ...appManifest, pad: "x".repeat(5 * 1024 * 1024) })),
    );

    // Hostile entries.
    const entryCases: Array<[string, Entry]> = [
      [
        "symlink out",
        { name: "blobs/sha256/link", type: "symlink", body: Buffer.alloc(0), linkname: "/etc/passwd" },
      ],
      ["hard link", { name: "index2", type: "link", body: Buffer.alloc(0), linkname: "index.json" }],
      ["fifo entry", { name: "blobs/sha256/fifo", type: "fifo", body: Buffer.alloc(0) }],
      ["char device entry", { name: "dev-null", type: "character-device", body: Buffer.alloc(0) }],
      ["block device entry", { name: "sda", type: "block-device", body: Buffer.alloc(0) }],
      ["traversal", { name: "../../escape", type: "file", body: Buffer.from("x") }],
      ["absolute", { name: "/tmp/escape", type: "file", body: Buffer.from("x") }],
      ["sha512 blob", { name: "blobs/sha512/abc", type: "file", body: Buffer.from("x") }],
      ["second index.json", { ...indexEntry }],
      [
        "oci-layout 2.0",
        { name: "oci-layout", type: "file", body: Buffer.from('{"imageLayoutVersion":"2.0.0"}') },
      ],
      [
        "index.json over 4 MiB",
        { name: "index.json", type: "file", body: Buffer.alloc(5 * 1024 * 1024, 0x20) },
      ],
    ];
    for (const [name, e] of entryCases)
      cases.push(
        file(
          `entry: ${name}`,
          name === "second index.json" || name.startsWith("oci-layout") || name.startsWith("index.json")
            ? await retar([
                ...entries.filter(
                  (x) =>
                    !(name.startsWith("oci") && x.name === "oci-layout") &&
                    !(name.startsWith("index.json") && x.name === "index.json"),
                ),
                e,
              ])
            : await withEntry(e),
        ),
      );
    cases.push(
      file(
        "docker archive",
        await tarOf([
          { name: "manifest.json", body: "[]" },
          { name: "repositories", body: "{}" },
        ]),
      ),
    );
    cases.push(file("empty tar", await tarOf([])));
    cases.push(
      file(
        "corrupt blob",
        await retar(
          entries.map((e) =>
            e.name.startsWith("blobs/sha256/") && e.body.length > 100
              ? { ...e, body: Buffer.from(e.body).fill(7, 10, 11) }
              : e,
          ),
        ),
      ),
    );
    // A header that declares 8 GiB followed by a few bytes.
    cases.push(file("huge declared entry size", hugeSizeHeader(good, 8 * 1024 ** 3)));
    cases.push(file("huge declared entry size (base-256)", hugeSizeHeader(good, 2 ** 40, true)));

    // Other formats and devices-as-data.
    cases.push(
      file("zstd magic", Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), crypto.randomBytes(100)])),
    );
    cases.push(file("bzip2 magic", Buffer.concat([Buffer.from("BZh9"), crypto.randomBytes(100)])));
    cases.push(
      file(
        "xz magic",
        Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), crypto.randomBytes(100)]),
      ),
    );
    cases.push(file("gzip of zeros", zlib.gzipSync(Buffer.alloc(4 * 1024 * 1024))));
    cases.push(file("gzip of random", zlib.gzipSync(crypto.randomBytes(10_000))));
    cases.push(file("gzip header only", goodGz.subarray(0, 10)));
    cases.push(file("two gzip members", Buffer.concat([goodGz, goodGz])));
    cases.push(file("trailing zeros after tar", Buffer.concat([good, Buffer.alloc(2 * 1024 * 1024)])));
    cases.push(file("trailing zeros after gzip", Buffer.concat([goodGz, Buffer.alloc(6 * 1024 * 1024)])));
    cases.push(file("good tar", good));
    cases.push(file("good gzip", goodGz));

    // Inputs that are not plain files.
    const dir = path.join(casesDir, "a-directory");
    fs.mkdirSync(dir);
    const link = (name: string, target: string): Case => {
      const p = path.join(casesDir, name);
      fs.symlinkSync(target, p);
      return { name, input: p };
    };
    cases.push({ name: "a directory", input: dir });
    cases.push(link("symlink to the archive", path.join(tmp, "good.tar")));
    cases.push(link("symlink to a directory", dir));
    cases.push(link("dangling symlink", path.join(casesDir, "nowhere")));
    cases.push(link("symlink loop", path.join(casesDir, "symlink loop")));
    cases.push({ name: "missing file", input: path.join(casesDir, "missing") });
    for (const dev of ["/dev/zero", "/dev/null", "/dev/urandom", "/dev/full"])
      cases.push({ name: dev, input: dev });
    cases.push({ name: "stdin: good gzip", stdin: goodGz });
    cases.push({ name: "stdin: truncated", stdin: goodGz.subarray(0, goodGz.length >> 1) });
    cases.push({ name: "stdin: empty", stdin: Buffer.alloc(0) });
    cases.push({ name: "stdin: zeros", stdin: Buffer.alloc(100_000) });
    cases.push({ name: "fifo: good tar", fifo: { data: good } });
    cases.push({ name: "fifo: corrupt gzip", fifo: { data: flip(goodGz, goodGz.length - 6, 1) } });
    cases.push({ name: "fifo: no writer", fifo: {}, extraArgs: ["--fifo-wait", "1"] });

    // Random mutations until the budget or the minimum is reached.
    const mutate = (): Case => {
      const gz = rand() < 0.5;
      const base = gz ? goodGz : good;
      const kind = pick(4);
      if (kind === 0) {
        const at = 1 + pick(base.length - 1);
        return file(`random: ${gz ? "gzip" : "tar"} cut at ${at}`, base.subarray(0, at));
      }
      if (kind === 1) {
        const at = pick(base.length);
        const bit = 1 << pick(8);
        return file(`random: ${gz ? "gzip" : "tar"} bit ${bit} flipped at ${at}`, flip(base, at, bit));
      }
      if (kind === 2) {
        const extra = crypto
          .createHash("sha256")
          .update(String(rand()))
          .digest()
          .subarray(0, 1 + pick(32));
        return file(`random: ${gz ? "gzip" : "tar"} + ${extra.length} bytes`, Buffer.concat([base, extra]));
      }
      const at = pick(base.length);
      const len = 1 + pick(64);
      const junk = Buffer.alloc(len, pick(256));
      return file(
        `random: ${gz ? "gzip" : "tar"} ${len} bytes overwritten at ${at}`,
        Buffer.concat([base.subarray(0, at), junk, base.subarray(Math.min(base.length, at + len))]),
      );
    };
    const fixed = cases.length;
    while (cases.length < fixed + 40) cases.push(mutate());

    const deadline = Date.now() + BUDGET_MS;
    let ran = 0;
    const outcomes = (
      await mapLimit(cases, WORKERS, async (c) => {
        if (cases.indexOf(c) >= fixed && ran >= MIN_CASES && Date.now() > deadline) return undefined;
        ran++;
        return runCase(c, tmp, template);
      })
    ).filter((o): o is Outcome => o !== undefined);
    const tally = { tried: outcomes.length, clean: 0, crashed: 0, hung: 0, failedClean: 0, loaded: 0 };
    const bad: string[] = [];
    for (const o of outcomes) {
      if (o.verdict === "clean") tally.clean++;
      else if (o.verdict === "hung") tally.hung++;
      else tally.crashed++;
      if (o.verdict === "clean" && o.code === 0) tally.loaded++;
      else if (o.verdict === "clean") tally.failedClean++;
      if (o.verdict !== "clean") bad.push(`${o.name}: ${o.verdict}: ${o.why}\n${o.stderr}`);
    }
    console.log(`      fuzz seed ${SEED}: ${JSON.stringify(tally)}`);
    if (process.env.SEALER_FUZZ_VERBOSE)
      for (const o of outcomes)
        console.log(`${o.name} -> ${o.code}: ${o.stderr.trim().split("\n").slice(0, 3).join(" | ")}`);
    assert.ok(tally.tried >= MIN_CASES, `only ${tally.tried} cases ran`);
    assert.deepEqual(bad, [], `seed ${SEED}`);
    // The good inputs must have loaded, so the oracle is not "everything fails".
    for (const name of [
      "good tar",
      "good gzip",
      "stdin: good gzip",
      "fifo: good tar",
      "symlink to the archive",
    ])
      assert.equal(outcomes.find((o) => o.name === name)?.code, 0, name);
  });
});

function flip(buf: Buffer, at: number, bit: number): Buffer {
  const out = Buffer.from(buf);
  out[at] = (out[at] ?? 0) ^ bit;
  return out;
}

/** The tar's first file header with its size field set to `size` (octal or base-256), then 100 bytes. */
function hugeSizeHeader(tarBuf: Buffer, size: number, base256 = false): Buffer {
  let off = 0;
  while (off < tarBuf.length && tarBuf[off + 156] !== 0x30) off += 512;
  const h = Buffer.from(tarBuf.subarray(off, off + 512));
  if (base256) {
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h.writeUIntBE(size, 130, 6);
  } else h.write(size.toString(8).padStart(11, "0") + "\0", 124, 12, "latin1");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
  return Buffer.concat([h, crypto.randomBytes(100)]);
}

interface Outcome {
  name: string;
  verdict: "clean" | "crashed" | "hung";
  code: number | null;
  why: string;
  stderr: string;
}

/** Store files (not tmp) with sizes, and index.json's bytes: what "unchanged" compares. */
function snapshot(store: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (p === path.join(store, "tmp")) continue;
      const st = fs.lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${path.relative(store, p)} ${st.size}`);
    }
  };
  walk(store);
  return out.join("\n") + "\n" + fs.readFileSync(path.join(store, "index.json"), "utf8");
}

/** Every blob every reference reaches is present, of its size and hash. */
function verifyStore(store: string): string | undefined {
  const blob = (d: Descriptor) => path.join(store, "blobs", "sha256", d.digest.slice(7));
  const check = (d: Descriptor): string | undefined => {
    let b: Buffer;
    try {
      b = fs.readFileSync(blob(d));
    } catch {
      return `blob ${d.digest} is missing`;
    }
    if (b.length !== d.size || digestOf(b) !== d.digest) return `blob ${d.digest} does not verify`;
    if (d.mediaType === MediaTypes.index) {
      for (const m of (JSON.parse(b.toString()) as Index).manifests) {
        const p = check(m);
        if (p) return p;
      }
    } else if (d.mediaType === MediaTypes.manifest) {
      const m = JSON.parse(b.toString()) as Manifest;
      for (const x of [m.config, ...m.layers]) {
        const p = check(x);
        if (p) return p;
      }
    }
    return undefined;
  };
  const idx = JSON.parse(fs.readFileSync(path.join(store, "index.json"), "utf8")) as Index;
  for (const d of idx.manifests) {
    const p = check(d);
    if (p) return `${d.annotations?.[Annotations.refName]}: ${p}`;
  }
  return undefined;
}

async function runCase(c: Case, tmp: string, template: string): Promise<Outcome> {
  const home = fs.mkdtempSync(path.join(tmp, "home-"));
  execFileSync("cp", ["-a", path.join(template, "store"), path.join(home, "store")]);
  const store = path.join(home, "store");
  const before = snapshot(store);
  let input = c.input ?? "-";
  if (c.fifo) {
    input = path.join(home, "pipe");
    execFileSync("mkfifo", [input]);
  }
  const label = c.stdin ? "stdin" : input;
  const child = spawn(
    process.execPath,
    [
      "--max-old-space-size=1024",
      path.join(repoRoot(), "bin", "sealer.js"),
      "load",
      "-i",
      input,
      ...(c.extraArgs ?? []),
    ],
    { env: { ...process.env, SEALER_HOME: home }, stdio: [c.stdin ? "pipe" : "ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  if (c.stdin) {
    child.stdin?.on("error", () => undefined); // the loader may stop reading early
    child.stdin?.end(c.stdin);
  }
  let writer: fs.WriteStream | undefined;
  if (c.fifo?.data) {
    writer = fs.createWriteStream(input);
    writer.on("error", () => undefined);
    writer.end(c.fifo.data);
  }
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, CASE_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.on("close", (code, sig) => r([code, sig])),
  );
  clearTimeout(timer);
  writer?.destroy();
  const out = (verdict: Outcome["verdict"], why: string): Outcome => ({
    name: c.name,
    verdict,
    code,
    why,
    stderr,
  });
  try {
    if (hung) return out("hung", `no exit within ${CASE_TIMEOUT_MS / 1000}s`);
    if (signal) return out("crashed", `killed by ${signal}`);
    const leftovers = fs.existsSync(path.join(store, "tmp")) ? fs.readdirSync(path.join(store, "tmp")) : [];
    if (leftovers.length) return out("crashed", `left ${leftovers.join(", ")} in store/tmp`);
    const js = JS_ERROR_TEXT.find((re) => re.test(stderr));
    if (js) return out("crashed", `JavaScript error text on stderr (${js})`);
    if (code === 0) {
      const problem = verifyStore(store);
      if (problem) return out("crashed", `exit 0 but the store is wrong: ${problem}`);
      if (!/^Loaded image: /m.test(stdout)) return out("crashed", "exit 0 without loading anything");
      return out("clean", "loaded");
    }
    if (code !== 2) return out("crashed", `exit ${code} (a UserError exits 2)`);
    if (!stderr.startsWith("sealer: ") || !stderr.includes(label))
      return out("crashed", `the message does not name ${label}`);
    if (snapshot(store) !== before) return out("crashed", "the store changed");
    return out("clean", "refused");
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}
