/**
 * Kubefiles sealer accepts that we used to refuse, and the limits that keep hostile Kubefiles
 * from crashing or hanging the build: each refusal names the file and line and says what to do.
 */
import * as assert from "node:assert/strict";
import { UserError } from "../../provider/core/errors";
import { parseKubefile } from "../../provider/core/kubefile";
import { encodeHeader } from "../../provider/core/image/tar";
import { globMatch } from "../../provider/core/kubefile/context";

function problems(text: string): string[] {
  try {
    parseKubefile(text, { file: "Kubefile" });
  } catch (err) {
    assert.ok(err instanceof UserError, String(err));
    return err.problems;
  }
  return assert.fail("expected a refusal");
}

describe("Kubefile: what sealer accepts", () => {
  it("takes an APP name with capitals as written (sealer's README: APP businessApp local://install.sh)", () => {
    const kf = parseKubefile('FROM scratch\nAPP businessApp local://install.sh\nLAUNCH ["businessApp"]\n', {
      file: "Kubefile",
    });
    assert.deepEqual(
      kf.instructions.map((i) => (i.kind === "APP" ? i.name : i.kind === "LAUNCH" ? i.apps : i.kind)),
      ["FROM", "businessApp", ["businessApp"]],
    );
  });

  it("accepts a second APP/CNI of the same name: the last one wins, as in sealer", () => {
    const kf = parseKubefile("FROM scratch\nAPP web local://a.yaml\nCNI web local://b.yaml\n", {
      file: "Kubefile",
    });
    assert.deepEqual(
      kf.instructions.flatMap((i) =>
        i.kind === "APP" || i.kind === "CNI" ? [`${i.kind} ${i.sources[0]}`] : [],
      ),
      ["APP a.yaml", "CNI b.yaml"],
    );
  });
});

describe("Kubefile: limits, located", () => {
  it("a NUL byte names its line", () => {
    assert.deepEqual(problems("FROM scratch\nCOPY a \\\n  b\0c\n"), [
      "Kubefile:3: contains a NUL byte; a Kubefile is text: remove it (is this a binary file?)",
    ]);
  });

  it("a Kubefile over 1 MiB is refused before parsing", () => {
    assert.deepEqual(problems(`FROM scratch\n${"LABEL a=b\n".repeat(110_000)}`), [
      "Kubefile: is 1.05 MiB; a Kubefile may be at most 1 MiB (keep large content in files that COPY or APP take from the build context)",
    ]);
  });

  it("chained ARGs stop at 1 MiB, at the line that crosses it", () => {
    const chain = Array.from({ length: 30 }, (_, i) => `ARG A${i + 1}=\${A${i}}\${A${i}}`).join("\n");
    const ps = problems(`FROM scratch\nARG A0=xxxxxxxxxx\n${chain}\nCOPY a $A30\n`);
    assert.match(
      ps[0] as string,
      /^Kubefile:19: ARG: substituting ARG\/ENV values expands to more than 1048576 characters; /,
    );
  });

  it("many instructions each under the cap stop at 16 MiB in total", () => {
    const chain = Array.from({ length: 16 }, (_, i) => `ARG A${i + 1}=\${A${i}}\${A${i}}`).join("\n");
    const envs = Array.from({ length: 50 }, (_, i) => `ENV B${i}=$A16`).join("\n");
    const ps = problems(`FROM scratch\nARG A0=xxxxxxxxxx\n${chain}\n${envs}\n`);
    assert.deepEqual(ps, [
      "Kubefile:42: the Kubefile grows past 16777216 characters once ARG/ENV values are substituted (stopped here); check for ARGs that repeat each other; keep large content in files in the build context",
    ]);
  });

  it("paths longer than Linux allows are refused with their length", () => {
    assert.deepEqual(problems(`FROM scratch\nCOPY a ${"n".repeat(256)}\n`), [
      `Kubefile:2: COPY destination "${"n".repeat(40)}… (256 characters)" has a name of 256 characters; a name in a path may have at most 255; shorten the path (each name at most 255 characters, the whole path at most 4096)`,
    ]);
    assert.match(
      problems(`FROM scratch\nCOPY a ${"d/".repeat(3000)}\n`)[0] as string,
      /is 6000 characters long; a path may have at most 4096/,
    );
  });

  it("an instruction over 256 KiB is refused", () => {
    assert.match(
      problems(`FROM scratch\nLABEL a="${"v".repeat(300_000)}"\n`)[0] as string,
      /^Kubefile:2: the instruction is 300010 characters long; at most 262144/,
    );
  });

  it("variables named like Object members are just undefined variables", () => {
    assert.deepEqual(problems("FROM scratch\nCOPY a $constructor\n"), [
      "Kubefile:2: COPY: variable constructor is not defined; declare it with ARG (or ENV) before this line, or write \\$ for a literal $",
    ]);
  });
});

describe("COPY globs: a matcher without backtracking", () => {
  it("matches like filepath.Match on one segment", () => {
    const cases: Array<[string, string, boolean]> = [
      ["*.yaml", "a.yaml", true],
      ["*.yaml", "a.yml", false],
      ["a?c", "abc", true],
      ["[a-c]x", "bx", true],
      ["[!a-c]x", "bx", false],
      ["[^a-c]x", "dx", true],
      ["*a*b", "xxaxxb", true],
      ["*a*b", "xxaxxbc", false],
      ["[", "[", true],
      ["", "", true],
      ["*", "", true],
    ];
    for (const [p, s, want] of cases) assert.equal(globMatch(p, s), want, `${p} ~ ${s}`);
  });

  it("answers at once for 5000 stars against a long name (a regex backtracks for ever)", () => {
    assert.equal(globMatch(`${"*".repeat(5000)}b`, "a".repeat(255)), false);
    assert.equal(globMatch(`${"*a".repeat(2000)}`, "a".repeat(1999)), false);
  });
});

describe("tar headers: paths past PATH_MAX", () => {
  it("are refused with their length instead of a layer no reader accepts", () => {
    assert.throws(() => encodeHeader({ path: "d/".repeat(3000), type: "file", mode: 0o644, size: 0 }), {
      name: "UserError",
      message:
        /^path "d\/d\/.*" is 6000 characters long; a path in an image may have at most 4096 \(Linux PATH_MAX\)$/,
    });
    assert.equal(
      encodeHeader({ path: "d/".repeat(1000), type: "file", mode: 0o644, size: 0 }).length % 512,
      0,
    );
  });
});
