/**
 * Users' text files (Kubefile, Clusterfile, mirrors file) must be UTF-8: a stray byte is refused
 * with the file, line and column instead of turning into U+FFFD inside a label, a path or a
 * command. Which byte sequences are UTF-8 follows RFC 3629 (no overlong forms, no surrogates).
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { readUserFile } from "../../provider/core/limits";

describe("hostile input: text files that are not UTF-8", () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-utf8-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const read = (bytes: number[] | Buffer) => {
    const file = path.join(dir, "Kubefile");
    fs.writeFileSync(file, Buffer.from(bytes));
    return () => readUserFile(file, "Kubefile", 1 << 20, "fix it");
  };
  const refused = (bytes: number[], line: number, column: number, byte: string) =>
    assert.throws(read(bytes), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(
        e.message,
        `${path.join(dir, "Kubefile")}:${line}: byte 0x${byte} at column ${column} is not UTF-8 text; save the Kubefile as UTF-8`,
      );
      return true;
    });
  const text = (s: string) => [...Buffer.from(s, "utf8")];

  it("accepts UTF-8, multi-byte characters included", () => {
    assert.equal(
      read(Buffer.from('FROM scratch\nLABEL a="é 中 🚀"\n', "utf8"))(),
      'FROM scratch\nLABEL a="é 中 🚀"\n',
    );
  });

  it("refuses a stray byte, naming line and column", () => {
    refused([...text("FROM scratch\nLABEL a="), 0xff, 0xfe, 0x0a], 2, 9, "ff");
  });

  it("refuses overlong forms, surrogates, code points past U+10FFFF and a cut sequence", () => {
    refused([...text("A"), 0xc0, 0xaf], 1, 2, "c0"); // "/" written in two bytes
    refused([...text("ok\n"), 0xed, 0xa0, 0x80], 2, 1, "ed"); // U+D800
    refused([0xf4, 0x90, 0x80, 0x80], 1, 1, "f4"); // U+110000
    refused([...text("x\ny\nz"), 0xe4, 0xb8], 3, 2, "e4"); // 中 without its last byte
  });
});
