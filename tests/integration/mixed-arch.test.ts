/**
 * K4, run side: a mixed-architecture cluster. A two-platform sandbox image (linux/amd64 +
 * linux/arm64; `COPY arch/${ARCH}/platform.txt` so the platforms' layers differ) runs onto one
 * master and two workers (real sshd nodes in network namespaces, a sudo user).
 *
 * TEST AFFORDANCE (honest): this machine has one architecture, so one worker is made to REPORT the
 * other one: a `uname` wrapper in that node's /usr/local/bin (the node's own copy-on-write /usr
 * overlay; the other nodes and this machine are untouched) prints the other machine name for
 * `uname -m` and runs /bin/uname otherwise. Everything on that node still runs natively; what is
 * tested is that apply probes each host, gives it the layers of its platform, records the platform,
 * and re-distributes only to the hosts whose platform variant changed.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { planCluster } from "../../provider/cli/commands/plan";
import { applyCluster, type ApplyResult } from "../../provider/core/apply";
import { loadClusterfile, type ClusterSpec } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { buildImage } from "../../provider/core/image/builder";
import { platformOfMachine } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { type LocalNode } from "../../provider/core/infra/local";
import { dataPaths } from "../../provider/core/paths";
import type { Step } from "../../provider/core/plan/types";
import { useNodes } from "../harness/nodes";
import { tempDir } from "../harness/registry";
import { applyQuick, buildSandboxBase, nodeSh } from "../harness/sandbox";
import { clusterYaml } from "../harness/clusterfile";

const REAL = platformOfMachine(execFileSync("uname", ["-m"], { encoding: "utf8" })) ?? "linux/amd64";
const OTHER = REAL === "linux/amd64" ? "linux/arm64" : "linux/amd64";
const OTHER_MACHINE = OTHER === "linux/arm64" ? "aarch64" : "x86_64";
const arch = (p: string) => p.split("/")[1]!;

const distributed = (steps: Step[]) =>
  steps
    .filter((s) => s.kind === "distribute")
    .flatMap((s) => s.hosts)
    .sort();

describe("integration: mixed-architecture cluster (per-host platform at run)", function () {
  this.timeout(180_000);
  const nodes = useNodes(3, { sudoUser: { name: "deploy", nopasswd: true } });
  let home: string;
  let appCtx: string;
  let store: OciLayout;
  let stateDir: string;

  const spec = (image = "mixarch-app:1"): ClusterSpec => {
    const [m0, w1, w2] = nodes.list;
    const text = clusterYaml({
      name: "mixarch",
      image,
      user: "deploy",
      pk: m0!.keyPath,
      masters: [m0!.ip],
      nodes: [w1!.ip, w2!.ip],
    });
    return loadClusterfile(text, { file: "mixarch.yaml" }).spec;
  };
  const apply = (
    s: ClusterSpec,
    extra: Partial<Parameters<typeof applyCluster>[0]> = {},
  ): Promise<ApplyResult> =>
    applyQuick({ spec: s, store, stateDir, knownHostsFile: nodes.knownHostsFile, ...extra });
  const buildApp = () =>
    buildImage({
      context: appCtx,
      tag: "mixarch-app:1",
      home,
      buildMode: "lite",
      platforms: [REAL, OTHER],
    });
  const platformFile = (n: LocalNode) => nodeSh(n, "cat /var/lib/sealer/mixarch/rootfs/platform.txt");

  before(async function () {
    this.timeout(180_000);
    home = tempDir("mixarch-home");
    // The layout `sealer plan --home` reads: state under <home>/clusters/<name>.
    stateDir = path.join(home, "clusters", "mixarch");
    store = new OciLayout(dataPaths.store(home));
    await buildSandboxBase(home, [REAL, OTHER]);
    appCtx = tempDir("mixarch-app");
    for (const p of [REAL, OTHER]) {
      fs.mkdirSync(path.join(appCtx, "arch", arch(p)), { recursive: true });
      fs.writeFileSync(path.join(appCtx, "arch", arch(p), "platform.txt"), `${arch(p)} v1\n`);
    }
    fs.writeFileSync(
      path.join(appCtx, "Kubefile"),
      "FROM sandbox-base:v1.28.2\nCOPY arch/${ARCH}/platform.txt platform.txt\n",
    );
    await buildApp();
    // The affordance described at the top: the third node reports the other architecture.
    const w2 = nodes.list[2]!;
    await nodeSh(
      w2,
      [
        "cat > /usr/local/bin/uname <<'EOF'",
        "#!/bin/sh",
        "# test affordance (tests/integration/mixed-arch.test.ts): report another architecture",
        `if [ "$1" = "-m" ]; then echo ${OTHER_MACHINE}; exit 0; fi`,
        'exec /bin/uname "$@"',
        "EOF",
        "chmod 755 /usr/local/bin/uname",
      ].join("\n"),
    );
    assert.equal((await nodeSh(w2, "uname -m")).trim(), OTHER_MACHINE);
    assert.equal(platformOfMachine(await nodeSh(nodes.list[0]!, "uname -m")), REAL, "other nodes unchanged");
  });
  after(async () => {
    for (const d of [home, appCtx]) if (d) await fs.promises.rm(d, { recursive: true, force: true });
  });

  it("each host gets the rootfs of its own platform; the platforms are recorded", async () => {
    const [m0, w1, w2] = nodes.list as [LocalNode, LocalNode, LocalNode];
    const res = await apply(spec());
    assert.deepEqual(distributed(res.ran), [m0.ip, w1.ip, w2.ip].sort());
    assert.equal(await platformFile(m0), `${arch(REAL)} v1\n`);
    assert.equal(await platformFile(w1), `${arch(REAL)} v1\n`);
    assert.equal(await platformFile(w2), `${arch(OTHER)} v1\n`);
    assert.deepEqual(
      [m0, w1, w2].map((n) => res.state.hosts[n.ip]?.platform),
      [REAL, REAL, OTHER],
    );
    // The other platform's layers are the ones its manifest lists (the last one differs).
    const d2 = res.ran.find((s) => s.id === `distribute:${w2.ip}`);
    const d0 = res.ran.find((s) => s.id === `distribute:${m0.ip}`);
    assert.ok(d2?.kind === "distribute" && d0?.kind === "distribute");
    assert.deepEqual(
      d2.layers,
      res.image.variants?.[OTHER]?.layers.map((l) => l.digest),
    );
    assert.deepEqual(
      d0.layers,
      res.image.variants?.[REAL]?.layers.map((l) => l.digest),
    );
    assert.notEqual(d2.layers.at(-1), d0.layers.at(-1));
    // The base's COPY layers are shared; its RUN layer is per platform (the build host's containerd
    // and etcd go into its own platform only).
    assert.deepEqual(d2.layers.slice(0, 3), d0.layers.slice(0, 3), "the base's COPY layers are shared");
    assert.notEqual(d2.layers[3], d0.layers[3], "the base's RUN layer is per platform");
    // So containerd runs where the image carries it, and the other platform gets its configuration only.
    assert.match(await nodeSh(m0, "cat /var/lib/sealer-sandbox/containerd.installed"), /running/);
    assert.match(await nodeSh(w2, "cat /var/lib/sealer-sandbox/containerd.installed"), /^configured only/);
  });

  it("a second apply runs zero steps (no probe: the platforms are recorded)", async () => {
    const res = await apply(spec());
    assert.deepEqual(
      res.plan.steps.map((s) => s.id),
      [],
    );
  });

  it(`changing only the ${arch(OTHER)} variant re-distributes to that host only; sealer plan shows the same plan`, async () => {
    const [m0, w1, w2] = nodes.list as [LocalNode, LocalNode, LocalNode];
    fs.writeFileSync(path.join(appCtx, "arch", arch(OTHER), "platform.txt"), `${arch(OTHER)} v2\n`);
    await buildApp();
    const preview = await planCluster(spec(), { home });
    const dry = await apply(spec(), { dryRun: true });
    assert.deepEqual(distributed(dry.plan.steps), [w2.ip]);
    assert.deepEqual(
      preview.steps.map((s) => `${s.id}: ${s.reason}`),
      dry.plan.steps.map((s) => `${s.id}: ${s.reason}`),
      "sealer plan = apply's plan",
    );
    assert.ok(
      !dry.plan.steps.some(
        (s) =>
          s.hosts.length === 1 &&
          (s.hosts[0] === m0.ip || s.hosts[0] === w1.ip) &&
          s.id.endsWith(`:${s.hosts[0]}`),
      ),
      `no per-host step on the ${arch(REAL)} hosts: ${dry.plan.steps.map((s) => s.id).join(", ")}`,
    );
    const res = await apply(spec());
    assert.deepEqual(distributed(res.ran), [w2.ip]);
    assert.equal(res.stats.sentBlobs, 1, "one new blob: the changed platform layer");
    assert.equal(await platformFile(w2), `${arch(OTHER)} v2\n`);
    assert.equal(await platformFile(m0), `${arch(REAL)} v1\n`);
    assert.equal(await platformFile(w1), `${arch(REAL)} v1\n`);
  });

  it("an image built for one platform only is refused for the other host, before any step", async () => {
    const w2 = nodes.list[2]!;
    await buildImage({ context: appCtx, tag: "mixarch-one:1", home, buildMode: "lite", platforms: [REAL] });
    await assert.rejects(apply(spec("mixarch-one:1")), (err: unknown) => {
      assert.ok(err instanceof UserError, String(err));
      assert.match(
        err.message,
        new RegExp(
          `^image docker\\.io/library/mixarch-one:1 is built for ${REAL} only, but host ${w2.ip.replace(/\./g, "\\.")} is ${OTHER}: build it for every platform of the cluster \\(sealer build --platform ${REAL},${OTHER} \\.\\.\\.\\)`,
        ),
      );
      return true;
    });
  });
});
