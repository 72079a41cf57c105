/**
 * The image's plugins/ in ImageFacts, from images built here: Plugin documents parsed with the
 * Clusterfile schema, whiteouts applied, other files digested; the planner then re-runs only the
 * hook steps of the plugin whose file changed.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { imageFacts } from "../../provider/core/image/facts";
import { buildImage } from "../../provider/core/image/builder";
import { OciLayout } from "../../provider/core/image/layout";
import { setLogSink } from "../../provider/core/log";
import { plan } from "../../provider/core/plan/planner";
import { recordAll } from "../../provider/core/exec/record";
import { emptyApplied } from "../../provider/core/plan/types";
import { clusterfile, M, spec, W } from "../fixtures/clusterfile/plan-world";

const plugin = (name: string, action: string, data: string, scope = "") =>
  `apiVersion: sealer.io/v2
kind: Plugin
metadata:
  name: ${name}
spec:
  type: SHELL
  action: ${action}
${scope ? `  scope: ${scope}\n` : ""}  data: ${JSON.stringify(data)}
`;

describe("image facts: the image's plugins/", function () {
  this.timeout(60_000);
  let tmp: string;
  let layout: OciLayout;
  let restore: ReturnType<typeof setLogSink> | undefined;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plugin-facts-"));
    layout = new OciLayout(path.join(tmp, "home", "store"));
    restore = setLogSink({ write: () => undefined });
  });
  after(() => {
    if (restore) setLogSink(restore);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const build = async (tag: string, files: Record<string, string>, kubefile: string) => {
    const dir = path.join(tmp, tag.replace(/[:/]/g, "-"));
    for (const [rel, content] of Object.entries({ ...files, Kubefile: kubefile })) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), content);
    }
    await buildImage({ context: dir, tag, buildMode: "lite", home: path.join(tmp, "home") });
    return imageFacts(layout, tag);
  };
  const files = (check: string) => ({
    "plugins/check.yaml": plugin("check", "post-install", check, "master"),
    "plugins/smoke.yml": `# two documents, one not a Plugin\n---\n${plugin("smoke", "pre-init-host|post-install", "echo smoke")}---\napiVersion: v1\nkind: ConfigMap\n`,
    "plugins/old.yaml": plugin("old", "post-install", "echo gone"),
    "plugins/lib/helper.sh": "echo helper\n",
    "bin/tool": "tool\n",
  });
  const KUBEFILE = "FROM scratch\nCOPY bin bin\nCOPY plugins plugins\nRUN rm plugins/old.yaml\n";

  it("reads plugins/*.yaml|yml as Plugin documents, applies whiteouts, digests the other files", async () => {
    const f = await build("test/plugins:1", files("kubectl get cs"), KUBEFILE);
    assert.deepEqual(f.plugins?.docs, [
      {
        name: "check",
        type: "SHELL",
        actions: ["post-install"],
        scope: ["master"],
        data: "kubectl get cs",
        file: "plugins/check.yaml",
      },
      {
        name: "smoke",
        type: "SHELL",
        actions: ["pre-init-host", "post-install"],
        scope: [],
        data: "echo smoke",
        file: "plugins/smoke.yml",
      },
    ]);
    assert.match(f.plugins?.filesHash ?? "", /^[0-9a-f]{64}$/);
  });

  it("a change to one plugin file re-plans that plugin's hook steps only", async () => {
    const cluster = spec(clusterfile());
    const a = await build("test/plugins:1", files("kubectl get cs"), KUBEFILE);
    const b = await build("test/plugins:2", files("kubectl get cs -o wide"), KUBEFILE);
    assert.equal(a.plugins?.filesHash, b.plugins?.filesHash);
    const d0 = { cluster, image: a };
    const applied = recordAll(emptyApplied("demo"), plan(d0, emptyApplied("demo")), d0);
    const hooks = plan({ cluster, image: b }, applied).steps.filter((s) => s.kind === "hook");
    assert.deepEqual(
      hooks.map((s) => [s.id, s.hosts, s.reason]),
      [["hook:post-install:check", M, "plugin check changed"]],
    );
    // The helper script changed: every hook may call it. (The Clusterfile's smoke replaces the image's.)
    const c = await build(
      "test/plugins:3",
      { ...files("kubectl get cs"), "plugins/lib/helper.sh": "echo helper v2\n" },
      KUBEFILE,
    );
    const all = plan({ cluster, image: c }, applied).steps.filter((s) => s.kind === "hook");
    assert.deepEqual(
      all.map((s) => s.id).sort(),
      [
        "hook:post-install:check",
        "hook:post-install:smoke",
        ...[...M, ...W].map((h) => `hook:pre-init-host:sysctl:${h}`),
      ].sort(),
    );
  });

  it("an invalid plugin file is a UserError naming the image, file, line and field", async () => {
    await assert.rejects(
      build(
        "test/plugins:bad",
        {
          "plugins/bad.yaml":
            "apiVersion: sealer.io/v2\nkind: Plugin\nmetadata: { name: bad }\nspec:\n  type: SHELL\n  data: echo\n",
        },
        "FROM scratch\nCOPY plugins plugins\n",
      ),
      (err: Error) => {
        assert.equal(
          err.message,
          'image docker.io/test/plugins:bad: plugins/ is invalid (1 problem); fix the files and rebuild the image:\n - image docker.io/test/plugins:bad plugins/bad.yaml:4 spec.action: required for SHELL plugins: one or more of pre-install, post-install, pre-init-host, post-init-host, pre-clean-host, post-clean-host, pre-uninstall, post-uninstall, pre-scaleup, post-scaleup, upgrade-host, upgrade, rollback joined with "|"',
        );
        return true;
      },
    );
  });
});
