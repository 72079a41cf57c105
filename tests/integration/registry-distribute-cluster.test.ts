/**
 * Registry distribution through the cluster's own registry, asked for with `spec.distribution:
 * registry` (sandbox base on local nodes): the first install goes over SSH (the registry starts
 * after distribution), a worker added later fetches its layers from master0's registry (TLS with
 * the cluster CA) instead, and ends with the same blob store and layers.json as a worker that
 * got them over SSH.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { OciLayout } from "../../provider/core/image/layout";
import { execInNode, type LocalNode } from "../../provider/core/infra/local";
import { setLogSink } from "../../provider/core/log";
import { dataPaths } from "../../provider/core/paths";
import { useNodes } from "../harness/nodes";
import { tempDir } from "../harness/registry";
import { SANDBOX_BASE, applyQuick, buildSandboxBase } from "../harness/sandbox";
import { clusterYaml } from "../harness/clusterfile";

async function blobState(n: LocalNode): Promise<string> {
  const r = await execInNode(
    n,
    // The layers in the node's store (blobs when fetched, extracted trees when streamed over SSH:
    // the form differs, the set must not), layers.json, and every rootfs file with its content.
    [
      "cd /var/lib/sealer",
      "{ ls blobs/sha256 2>/dev/null; ls layers 2>/dev/null | sed -n 's/[.]list$//p'; } | LC_ALL=C sort -u",
      "cat rdc/layers.json",
      "cd rdc/rootfs && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum",
    ].join(" && "),
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe("registry distribution via the cluster's registry (integration, sandbox base, local nodes)", function () {
  this.timeout(300_000);
  const nodes = useNodes(3);
  let home: string;
  let store: OciLayout;
  let stateDir: string;
  let lines: string[];

  const spec = (workers: LocalNode[]): ClusterSpec => {
    const [m0] = nodes.list as LocalNode[];
    return loadClusterfile(
      clusterYaml({
        name: "rdc",
        image: SANDBOX_BASE,
        pk: m0!.keyPath,
        masters: [m0!.ip],
        nodes: workers.map((n) => n.ip),
        spec: [
          "  registry:",
          "    localRegistry: { domain: sea.hub, port: 5000, username: reg-admin, password: reg-pass-81x }",
          "  distribution: registry",
        ],
      }),
      { file: "Clusterfile" },
    ).spec;
  };
  const apply = (s: ClusterSpec) =>
    applyQuick({ spec: s, store, stateDir, knownHostsFile: nodes.knownHostsFile });

  before(async function () {
    this.timeout(300_000);
    home = tempDir("rdc-home");
    stateDir = path.join(home, "clusters", "rdc");
    store = new OciLayout(dataPaths.store(home));
    await buildSandboxBase(home);
  });
  let restore: ReturnType<typeof setLogSink> | undefined;
  beforeEach(() => {
    lines = [];
    restore = setLogSink({ write: (l) => lines.push(l) });
  });
  afterEach(() => restore && setLogSink(restore));

  it("first install over SSH; a worker added later fetches from master0's registry and matches an SSH-served worker", async () => {
    const [m0, w1, w2] = nodes.list as [LocalNode, LocalNode, LocalNode];
    const first = await apply(spec([w1]));
    assert.ok(first.ran.some((s) => s.kind === "registry"));
    assert.ok(first.stats.perHost[w1.ip]!.sentBytes > 0, "the first install sends over SSH");
    assert.ok(!lines.some((l) => / fetching \d+ layer blob/.test(l)));
    assert.match(
      lines.join("\n"),
      /WARN spec\.distribution registry: the cluster's registry on .* does not run yet/,
    );

    lines = [];
    const second = await apply(spec([w1, w2]));
    assert.ok(second.ran.some((s) => s.kind === "distribute" && s.hosts.includes(w2.ip)));
    assert.deepEqual(second.stats.perHost[w2.ip], { sentBlobs: 0, sentBytes: 0 }, "nothing over SSH");
    const log = lines.join("\n");
    assert.match(
      log,
      new RegExp(`image pushed to the cluster's registry on ${m0.ip.replace(/\./g, "\\.")}:5000`),
    );
    assert.match(
      log,
      new RegExp(
        `\\[${w2.ip.replace(/\./g, "\\.")}\\] fetching \\d+ layer blob\\(s\\) .* from the cluster's registry`,
      ),
    );
    assert.ok(!log.includes("reg-pass-81x"), "no registry password in the log");
    assert.equal(await blobState(w2), await blobState(w1));
  });
});
