/**
 * Module boundaries are lint errors: the repository's own eslint configuration is run on real
 * files of each layer with one forbidden import added, and must reject it; the files as they are
 * must pass. (lintText lints the text as if it were that file, so nothing is written.)
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../../provider/core/package-info";

const root = packageRoot(__dirname);

type LintMessage = { ruleId: string | null; message: string; severity: number };

async function lint(file: string, extraImport = ""): Promise<LintMessage[]> {
  const { ESLint } = require("eslint") as typeof import("eslint");
  const eslint = new ESLint({ cwd: root });
  const text = extraImport + fs.readFileSync(path.join(root, file), "utf8");
  const [res] = await eslint.lintText(text, { filePath: path.join(root, file) });
  return (res?.messages ?? []).filter((m) => m.severity === 2);
}

function restricted(msgs: LintMessage[]): LintMessage[] {
  return msgs.filter((m) => m.ruleId === "no-restricted-imports");
}

describe("module boundaries (eslint no-restricted-imports)", function () {
  this.timeout(180_000);

  const cases: Array<{ file: string; add: string; why: RegExp }> = [
    {
      file: "provider/core/plan/planner.ts",
      add: 'import { provider as _p } from "../../resources/cluster";\n',
      why: /provider\/shared/,
    },
    { file: "provider/core/plan/planner.ts", add: 'import * as _fs from "node:fs";\n', why: /pure/ },
    { file: "provider/core/plan/planner.ts", add: 'import { SshPool as _S } from "../ssh";\n', why: /pure/ },
    {
      file: "provider/core/plan/planner.ts",
      add: 'import { runStep as _r } from "../exec/steps";\n',
      why: /pure/,
    },
    { file: "provider/core/apply.ts", add: 'import * as _pulumi from "@pulumi/pulumi";\n', why: /no Pulumi/ },
    {
      file: "provider/core/apply.ts",
      add: 'import { printJson as _pj } from "../cli/output";\n',
      why: /terminal/,
    },
    { file: "provider/core/apply.ts", add: 'import * as _bar from "cli-progress";\n', why: /terminal/ },
    {
      file: "provider/cli/commands/plan.ts",
      add: 'import { provider as _p } from "../../resources/cluster";\n',
      why: /provider\/shared/,
    },
    {
      file: "provider/resources/cluster.ts",
      add: 'import { planText as _t } from "../cli/commands/plan";\n',
      why: /does not import the CLI/,
    },
    {
      file: "provider/core/kubefile/parser.ts",
      add: 'import { parseReference as _pr } from "../image/store";\n',
      why: /kubefile is below image/,
    },
  ];

  for (const c of cases)
    it(`${c.file} + ${c.add.trim()} is refused`, async () => {
      const msgs = restricted(await lint(c.file, c.add));
      assert.equal(msgs.length, 1, JSON.stringify(msgs));
      assert.match(msgs[0]!.message, c.why);
    });

  it("the files of each layer as they are pass (the two arrows that were broken are fixed)", async () => {
    for (const f of [
      "provider/core/plan/planner.ts",
      "provider/core/kubefile/parser.ts",
      "provider/cli/commands/pulumi.ts",
      "provider/resources/cluster.ts",
      "provider/core/apply.ts",
    ])
      assert.deepEqual(restricted(await lint(f)), [], f);
  });
});
