/**
 * The layer check reads each layer with its own tar reader, but nodes unpack with GNU tar. On a
 * crafted archive the two can disagree, and then the check's proof is about another tree than
 * the one written (each case below wrote outside the rootfs before: found by an audit). A layer
 * GNU tar reads differently is refused; what real images hold (a leading "/", xattr PAX
 * keywords) still passes. Layers are written byte by byte here, as an attacker would.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { UserError } from "../../provider/core/errors";
import { OciLayout } from "../../provider/core/image/layout";
import { checkLayerStack } from "../../provider/core/image/layer-safety";
import { parseListing } from "../../provider/core/image/gnu-tar-listing";
import { MediaTypes } from "../../provider/core/image/types";

const END = Buffer.alloc(1024);

/** One raw ustar header; `size` is the data length unless `sizeField` overrides the text. */
function header(o: {
  name: string | Buffer;
  type: string;
  link?: string;
  size?: number;
  sizeField?: string;
}): Buffer {
  const h = Buffer.alloc(512);
  Buffer.from(o.name).copy(h, 0, 0, 100);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(o.sizeField ?? (o.size ?? 0).toString(8).padStart(11, "0") + "\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write(o.type, 156);
  if (o.link) h.write(o.link, 157);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
const file = (name: string | Buffer, data = "") =>
  Buffer.concat([header({ name, type: "0", size: data.length }), pad(Buffer.from(data))]);
const symlink = (name: string | Buffer, target: string) => header({ name, type: "2", link: target });
/** A PAX extended header ('x') whose records are given raw (so they can be malformed). */
const pax = (records: Buffer) =>
  Buffer.concat([header({ name: "PaxHeader", type: "x", size: records.length }), pad(records)]);
const record = (kv: Buffer) => {
  // "<len> key=value\n", the length counting itself.
  let n = kv.length + 3;
  while (`${n} `.length + kv.length + 1 !== n) n = `${n} `.length + kv.length + 1;
  return Buffer.concat([Buffer.from(`${n} `), kv, Buffer.from("\n")]);
};

describe("layer check: GNU tar must read a layer as the check does", () => {
  let dir: string;
  let layout: OciLayout;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-gnu-agree-"));
    layout = new OciLayout(path.join(dir, "store"));
    await layout.init();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const put = async (gz: Buffer) => (await layout.putBlob(gz, MediaTypes.layerGzip)).digest;
  const layer = (...parts: Buffer[]) => put(zlib.gzipSync(Buffer.concat([...parts, END])));

  const refused: Array<[string, () => Promise<string>, RegExp]> = [
    // GNU tar stops at the first end-of-archive blocks; a lenient reader goes on and sees "a" become a file.
    [
      "entries after the end-of-archive blocks",
      () => layer(symlink("a", "/outside"), END, file("a", "x")),
      /GNU tar lists 1 entries, the check 2/,
    ],
    [
      "a second gzip member holding another tar",
      () =>
        put(
          Buffer.concat([
            zlib.gzipSync(Buffer.concat([symlink("a", "/outside"), END])),
            zlib.gzipSync(Buffer.concat([file("a", "x"), END])),
          ]),
        ),
      /GNU tar lists 1 entries, the check 2/,
    ],
    ["a name that is not UTF-8", () => layer(symlink(Buffer.from([0xff]), "/outside")), /GNU tar names it/],
    [
      "a PAX path with a NUL",
      () => layer(pax(record(Buffer.from("path=x\0y"))), symlink("safe", "/outside")),
      /GNU tar names it "x"/,
    ],
    [
      "a PAX record with a wrong length",
      () => layer(pax(Buffer.from("16 path=safe/fX")), file("a/pwned", "x")),
      /refused by GNU tar \(.*out of range/,
    ],
    [
      "a typeflag GNU tar does not know (N)",
      () => layer(Buffer.concat([header({ name: "a/pwned", type: "N", size: 4 }), pad(Buffer.from("safe"))])),
      /GNU tar|unknown type/,
    ],
    [
      "a size field with a stray character",
      () =>
        layer(
          Buffer.concat([
            header({ name: "f", type: "0", sizeField: "0000001000x" }),
            header({ name: "a/pwned", type: "0" }),
          ]),
        ),
      /refused by GNU tar \(.*numeric/,
    ],
  ];
  for (const [name, make, why] of refused)
    it(`refuses ${name}`, async () => {
      const d = await make();
      await assert.rejects(checkLayerStack(layout, [d]), (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(e.message, /^layer 1 of 1 \(sha256:[0-9a-f]{64}\), entry ".*" .*(GNU tar|unknown type)/);
        assert.match(e.message, why);
        assert.doesNotMatch(e.message, /[\x00-\x08]/, "control characters are escaped");
        return true;
      });
    });

  it("accepts what real images hold: a leading '/', xattr PAX keywords, hard links and symlinks", async () => {
    const xattr = pax(
      record(Buffer.from("LIBARCHIVE.xattr.security.capability=AQAAAgAgAAAAAAAAAAAAAAAAAAA")),
    );
    const d = await layer(
      file("/etc/abs", "1"),
      xattr,
      file("usr/bin/ping", "p"),
      header({ name: "usr/bin/ping6", type: "1", link: "usr/bin/ping" }),
      symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
    );
    assert.equal((await checkLayerStack(layout, [d])).length, 1);
  });

  it("parses GNU tar's C-quoted listing as bytes", () => {
    const l = parseListing(
      [
        'lrwxrwxrwx 0/0               0 1970-01-01 00:00 "a\\377\\"b" -> "/x y"',
        'hrw-r--r-- 0/0               0 1970-01-01 00:00 "h" link to "a\\\\b"',
        'crw-r--r-- 0/0             1,3 1970-01-01 00:00 "dev/null"',
      ].join("\n"),
    );
    assert.deepEqual(l[0], {
      type: "l",
      name: Buffer.from([0x61, 0xff, 0x22, 0x62]),
      link: Buffer.from("/x y"),
    });
    assert.deepEqual(l[1], { type: "h", name: Buffer.from("h"), link: Buffer.from("a\\b") });
    assert.deepEqual(l[2], { type: "c", name: Buffer.from("dev/null") });
  });
});
