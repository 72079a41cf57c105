/**
 * Real Kubefiles, Clusterfiles and plugin files from sealer's repositories (tests/fixtures/real,
 * each file's origin in SOURCES). expectations.json says, for every file, what sealer does with
 * it, decided from sealer's code at the file's version: accepted, with the salient facts of the
 * plan (hosts and roles, apps and launch, hooks with their phases and hosts), or refused, with
 * the reason we must give and why sealer refuses too (or, for .so plugins, why we refuse on
 * purpose). The test reads every file as the CLI does and compares.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../../provider/core/package-info";
import { outcome, type CorpusKind } from "../fixtures/real/facts";
import { jsErrorText } from "../harness/js-error-text";

const ROOT = path.join(packageRoot(__dirname), "tests", "fixtures", "real");

interface Expectation {
  accept?: Record<string, unknown>;
  reject?: string;
  sealer?: string;
}

describe("real sealer files: accepted and planned as sealer does, or refused for the right reason", function () {
  const sources = fs
    .readFileSync(path.join(ROOT, "SOURCES"), "utf8")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split("\t") as [string, CorpusKind, string, string, string]);
  const expectations = JSON.parse(fs.readFileSync(path.join(ROOT, "expectations.json"), "utf8")) as Record<
    string,
    Expectation
  >;

  it("holds at least 150 files, each with its origin and an expectation", function () {
    assert.ok(sources.length >= 150, `${sources.length} files`);
    for (const [file, , repo, rev, where] of sources) {
      assert.ok(repo && rev && where, `${file}: origin incomplete in SOURCES`);
      assert.ok(fs.existsSync(path.join(ROOT, "files", file)), `${file} missing`);
      assert.ok(expectations[file], `${file}: no expectation`);
    }
  });

  it("gives every file the expected outcome", function () {
    const wrong: string[] = [];
    for (const [file, kind] of sources) {
      const want = expectations[file] as Expectation;
      const got = outcome(kind, fs.readFileSync(path.join(ROOT, "files", file), "utf8"));
      if ("crash" in got) {
        wrong.push(`${file}: crashed: ${got.crash}`);
        continue;
      }
      if (want.accept) {
        if (!("accept" in got)) wrong.push(`${file}: refused, but sealer accepts it:\n${got.message}`);
        else
          try {
            assert.deepStrictEqual(got.accept, want.accept);
          } catch {
            wrong.push(
              `${file}: planned differently:\n got ${JSON.stringify(got.accept)}\nwant ${JSON.stringify(want.accept)}`,
            );
          }
        continue;
      }
      if ("accept" in got) {
        wrong.push(`${file}: accepted, but it must be refused (${want.sealer})`);
        continue;
      }
      if (!got.message.includes(want.reject as string))
        wrong.push(`${file}: refused for another reason:\n got ${got.message}\nwant ${want.reject}`);
      // Every problem names the file and, when it comes from the text, a line.
      const problems = got.message.split("\n").slice(1);
      for (const p of problems.length ? problems : [got.message])
        if (!/(Kubefile|Clusterfile|plugins\.yaml)(:\d+)?[: ]/.test(p))
          wrong.push(`${file}: unlocated problem: ${p}`);
      for (const re of jsErrorText(got.message))
        wrong.push(`${file}: JavaScript error text (${re}) in: ${got.message}`);
    }
    assert.deepStrictEqual(wrong, []);
  });

  it("counts: most real files are accepted", function () {
    const n = Object.values(expectations).filter((e) => e.accept).length;
    assert.ok(n >= Object.keys(expectations).length / 2, `${n} accepted`);
  });
});
