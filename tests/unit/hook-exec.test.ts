/**
 * The hook step finds a hook's plugin where the planner found it: the image's plugins/ (ImageFacts)
 * and the Clusterfile, whose Plugin of the same name wins.
 */
import * as assert from "node:assert/strict";
import type { ExecContext } from "../../provider/core/exec/context";
import { hook as hookKind } from "../../provider/core/exec/steps/hook";
import type { PluginDoc } from "../../provider/core/clusterfile/types";
import type { ImagePlugins, Step } from "../../provider/core/plan/types";

type Ran = { ip: string; label: string; cmd: string; stdin?: string; phase?: string };

function stub(clusterfile: PluginDoc[], image: ImagePlugins): { ctx: ExecContext; ran: Ran[] } {
  const ran: Ran[] = [];
  const ctx = {
    spec: { plugins: clusterfile },
    image: { plugins: image },
    eachHost: async (hosts: string[], fn: (ip: string) => Promise<void>) => {
      for (const h of hosts) await fn(h);
    },
    sh: async (
      ip: string,
      label: string,
      cmd: string,
      o: { stdin?: string; env?: Record<string, string> },
    ) => {
      // The scripts only: the footprint's own commands (marker, find) are not what these tests check.
      if (cmd !== "sh -s") return { code: 0, stdout: cmd === "mktemp" ? "/tmp/marker\n" : "", stderr: "" };
      ran.push({
        ip,
        label,
        cmd,
        ...(o.stdin ? { stdin: o.stdin } : {}),
        ...(o.env ? { phase: o.env.SEALER_HOOK_PHASE } : {}),
      });
      return { code: 0, stdout: "", stderr: "" };
    },
  } as unknown as ExecContext;
  return { ctx, ran };
}

const shell = (name: string, data: string): PluginDoc => ({
  name,
  type: "SHELL",
  actions: ["post-install"],
  scope: [],
  data,
});
const hook = (plugin: string, hosts: string[]): Extract<Step, { kind: "hook" }> => ({
  id: `hook:post-install:${plugin}`,
  kind: "hook",
  phase: "post-install",
  plugin,
  hosts,
  reason: "test",
  key: "k",
  after: [],
});

describe("hook step: plugins from the image and the Clusterfile", () => {
  const image: ImagePlugins = {
    docs: [
      { ...shell("from-image", "echo image"), file: "plugins/from-image.yaml" },
      { ...shell("both", "echo image-both"), file: "plugins/both.yaml" },
    ],
    filesHash: "",
  };
  it("runs an image plugin's script on each host, with the phase in the env", async () => {
    const { ctx, ran } = stub([], image);
    await hookKind.run(ctx, hook("from-image", ["10.0.0.2", "10.0.0.3"]));
    assert.deepEqual(ran, [
      {
        ip: "10.0.0.2",
        label: "hook post-install from-image",
        cmd: "sh -s",
        stdin: "echo image",
        phase: "post-install",
      },
      {
        ip: "10.0.0.3",
        label: "hook post-install from-image",
        cmd: "sh -s",
        stdin: "echo image",
        phase: "post-install",
      },
    ]);
  });
  it("runs the Clusterfile's Plugin when both define the name", async () => {
    const { ctx, ran } = stub([shell("both", "echo clusterfile-both")], image);
    await hookKind.run(ctx, hook("both", ["10.0.0.2"]));
    assert.deepEqual(
      ran.map((r) => r.stdin),
      ["echo clusterfile-both"],
    );
  });
  it("a plugin in neither is a UserError naming both places", async () => {
    const { ctx } = stub([], image);
    await assert.rejects(
      hookKind.run(ctx, hook("missing", ["10.0.0.2"])),
      /^UserError: step "hook post-install": plugin missing is neither in the Clusterfile nor in the image's plugins\/$/,
    );
  });
});
