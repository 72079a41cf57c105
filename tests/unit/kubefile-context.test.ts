import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { checkContext, matchContextPaths, parseKubefile } from "../../provider/core/kubefile";
import { packageRoot } from "../../provider/core/package-info";

const repoRoot = (): string => packageRoot(__dirname);

async function problemsOf(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof UserError, `expected UserError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail("expected a UserError");
}

describe("Kubefile build-context checks", () => {
  const fixture = (name: string) => path.join(repoRoot(), "tests", "fixtures", "kubefile", name);
  const parseFixture = (name: string) =>
    parseKubefile(fs.readFileSync(path.join(fixture(name), "Kubefile"), "utf8"), { file: "Kubefile" });

  let tmp: string;
  let ctx: string;
  beforeEach(() => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "sealer-ctx-")));
    ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "dir"), { recursive: true });
    fs.mkdirSync(path.join(tmp, "outside"));
    fs.writeFileSync(path.join(tmp, "outside", "f"), "secret");
    fs.writeFileSync(path.join(ctx, "a.txt"), "a");
    fs.writeFileSync(path.join(ctx, "dir", "b"), "b");
    fs.symlinkSync("a.txt", path.join(ctx, "link-in"));
    fs.symlinkSync("../outside/f", path.join(ctx, "link-out"));
    fs.symlinkSync("nowhere", path.join(ctx, "broken"));
    fs.symlinkSync("../outside", path.join(ctx, "dirlink"));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("accepts the fixture contexts; ${ARCH} sources exist for the platforms asked for", async () => {
    for (const name of ["base", "app", "legacy"]) await checkContext(parseFixture(name), fixture(name));
    await checkContext(parseFixture("base"), fixture("base"), { arches: ["amd64", "arm64"] });
    assert.deepEqual(
      await problemsOf(checkContext(parseFixture("base"), fixture("base"), { arches: ["amd64", "s390x"] })),
      [
        `Kubefile:13: COPY source "bin/\${ARCH}/kubeadm" does not exist for platform s390x (bin/s390x/kubeadm) in the build context (${fixture("base")}); add it or build without that platform`,
      ],
    );
  });

  it("reports every escaping, absolute, missing or outward-linking source at once", async () => {
    const kf = parseKubefile(
      [
        "FROM scratch",
        "COPY a.txt link-in dir ./",
        "COPY /etc/passwd ../secret dir/../../x missing.txt link-out broken dirlink/f ./",
        "ADD https://example.com/x.tgz cri/",
        "COPY nomatch-*.yaml bin/${ARCH}/tool etc/",
        "APP web local://missing-app local://dir https://example.com/a.yaml",
      ].join("\n"),
      { file: "Kubefile" },
    );
    const err = checkContext(kf, ctx);
    const problems = await problemsOf(err);
    assert.deepEqual(problems, [
      `Kubefile:3: COPY source "/etc/passwd" is an absolute host path; copy the file into the build context and give its path relative to the context`,
      `Kubefile:3: COPY source "../secret" leaves the build context (${ctx}); move the file into the context and use a path inside it`,
      `Kubefile:3: COPY source "dir/../../x" leaves the build context (${ctx}); move the file into the context and use a path inside it`,
      `Kubefile:3: COPY source "missing.txt" does not exist in the build context (${ctx}); check the path (it is relative to the context directory)`,
      `Kubefile:3: COPY source "link-out" is a symlink that resolves outside the build context (to ${tmp}/outside/f); copy the target into the context instead of linking to it`,
      `Kubefile:3: COPY source "broken" is a symlink to a missing file; fix or remove the link`,
      `Kubefile:3: COPY source "dirlink/f" is a symlink that resolves outside the build context (to ${tmp}/outside/f); copy the target into the context instead of linking to it`,
      `Kubefile:5: COPY source "nomatch-*.yaml" does not exist in the build context (${ctx}); check the path (it is relative to the context directory)`,
      `Kubefile:5: COPY source "bin/\${ARCH}/tool" matches no platform directory in the build context (${ctx}); create it for each platform, e.g. bin/amd64/tool`,
      `Kubefile:6: APP web source "missing-app" does not exist in the build context (${ctx}); check the path (it is relative to the context directory)`,
    ]);
    await assert.rejects(checkContext(kf, ctx), (e: Error) =>
      e.message.startsWith(
        `Kubefile: the build context ${ctx} has 10 problems:\n - Kubefile:3: COPY source "/etc/passwd"`,
      ),
    );
  });

  it("a context that is not a directory", async () => {
    const kf = parseKubefile("FROM scratch", { file: "Kubefile" });
    assert.deepEqual(await problemsOf(checkContext(kf, path.join(ctx, "a.txt"))), [
      `build context ${path.join(ctx, "a.txt")} is not a directory; pass the directory that holds the files the Kubefile copies`,
    ]);
  });

  it("matchContextPaths: plain paths, globs per segment, character classes, sorted", async () => {
    fs.mkdirSync(path.join(ctx, "m", "x1"), { recursive: true });
    fs.mkdirSync(path.join(ctx, "m", "y2"), { recursive: true });
    for (const f of ["m/x1/a.yaml", "m/x1/b.yml", "m/y2/c.yaml", "m/x1/.hidden.yaml"])
      fs.writeFileSync(path.join(ctx, f), "");
    const table: Array<[string, string[]]> = [
      [".", ["."]],
      ["./a.txt", ["a.txt"]],
      ["m/*/*.yaml", ["m/x1/.hidden.yaml", "m/x1/a.yaml", "m/y2/c.yaml"]],
      ["m/x?/*.y*ml", ["m/x1/.hidden.yaml", "m/x1/a.yaml", "m/x1/b.yml"]],
      ["m/[xy]1/b.yml", ["m/x1/b.yml"]],
      ["m/[!x]2/*", ["m/y2/c.yaml"]],
      ["m/z*", []],
      ["nope/a", []],
    ];
    for (const [pattern, want] of table)
      assert.deepEqual(await matchContextPaths(ctx, pattern), want, pattern);
  });
});
