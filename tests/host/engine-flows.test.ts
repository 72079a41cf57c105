/**
 * Engine flows beyond create/update, under Pulumi's own dynamic provider host (driven as the
 * engine drives it, tests/host/harness.ts): refresh of local Infra whose nodes are gone, a
 * stable diff of an unchanged local Infra, a Cluster create that fails before touching any host
 * (a plain error: no resource), the destroy of a cluster whose only host was never reached,
 * the cluster name an unnamed Cluster gets (and keeps), and inputs or stored state of the wrong
 * shape (Check failures and named errors, never JavaScript error text).
 * Expected outcomes follow Pulumi's provider protocol (proto/pulumi/provider.proto): Read returns
 * a blank id for a resource that no longer exists; a Create error without partial state means
 * nothing was created; Check reports malformed inputs as failures.
 * Needs root (network namespaces for local nodes).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Cluster, Infra } from "../../sdk";
import { buildImage } from "../../provider/core/image/builder";
import { deleteLocalNodes, listLocalNodes, stopSshd, type LocalNode } from "../../provider/core/infra/local";
import { jsErrorText } from "../harness/js-error-text";
import { createNodeGroup, uniquePrefix } from "../harness/nodes";
import {
  HostError,
  type Host,
  type Props,
  plain,
  repoRoot,
  sdkInputs,
  startTestHost,
  showHostLogIfFailed,
} from "./harness";

const INFRA_URN = "urn:pulumi:host::sealer-flows::pulumi-nodejs:dynamic/sealer:Infra::inf";
const CL_URN = "urn:pulumi:host::sealer-flows::pulumi-nodejs:dynamic/sealer:Cluster::mycl";

function noJsText(text: string): void {
  assert.deepEqual(jsErrorText(text), [], `JavaScript error text in: ${text}`);
}

describe("host: engine flows (refresh, failed create, destroy, names, malformed input and state)", function () {
  this.timeout(600_000);
  let tmp: string;
  let home: string;
  let host: Host;
  let nodes: Awaited<ReturnType<typeof createNodeGroup>> | undefined;
  let down: LocalNode;
  const infraPrefix = uniquePrefix("ef");
  const prevHome = process.env.SEALER_HOME;

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the engine-flow host test needs root (local nodes)");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-host-flows-"));
    home = path.join(tmp, "home");
    process.env.SEALER_HOME = home;
    await buildImage({
      context: path.join(repoRoot(), "examples/sandbox-base"),
      tag: "sandbox-base:v1.28.2",
      home,
    });
    // A host of our own that does not answer: its sshd is stopped (no address outside this machine).
    nodes = await createNodeGroup(1, { prefix: uniquePrefix("efd") });
    down = await stopSshd(nodes.list[0]!);
    host = await startTestHost(home, 2000);
  });

  afterEach(function () {
    showHostLogIfFailed(this.currentTest, host);
  });

  after(async () => {
    await host?.stop();
    await deleteLocalNodes(infraPrefix, home).catch(() => undefined);
    await nodes?.destroy();
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const infraInputs = async (): Promise<Props> =>
    plain(
      await sdkInputs(
        () => new Infra("inf", { provider: "local", name: infraPrefix, masters: { count: 1 } }),
      ),
    );

  it("local Infra: the unchanged program diffs to nothing; refresh after its nodes are gone drops it; nodes made again have new identities", async () => {
    const { inputs, failures } = await host.check(INFRA_URN, {}, await infraInputs());
    assert.deepEqual(failures, []);
    const made = await host.create(INFRA_URN, inputs);
    const again = await host.check(INFRA_URN, inputs, await infraInputs());
    const d = await host.diff(INFRA_URN, made.id, plain(made.properties), again.inputs, inputs);
    assert.equal(d.changes, "none", "an unchanged program must not show an update");
    assert.equal(plain(made.properties).sshUser, "root");
    // Refresh while the node exists keeps the resource.
    const kept = await host.read(INFRA_URN, made.id, plain(made.properties), inputs);
    assert.equal(kept.id, made.id);
    await deleteLocalNodes(infraPrefix, home);
    assert.deepEqual(await listLocalNodes(infraPrefix, home), []);
    const gone = await host.read(INFRA_URN, made.id, plain(made.properties), inputs);
    assert.equal(gone.id, "", "Read of a resource that no longer exists returns a blank id");
    // Made again under the same name and address: a new identity, which a Cluster fed from this
    // Infra (hostIds) takes as a host to install anew.
    const remade = await host.create(INFRA_URN, inputs);
    const idOf = (p: Props) => (plain(p).masterHosts as Array<{ privateIp: string; identity: string }>)[0]!;
    assert.equal(idOf(remade.properties).privateIp, idOf(made.properties).privateIp);
    assert.match(idOf(made.properties).identity, new RegExp(`^${infraPrefix}-1@[0-9a-f]{16}$`));
    assert.notEqual(idOf(remade.properties).identity, idOf(made.properties).identity);
  });

  const clusterInputs = async (
    args: Partial<ConstructorParameters<typeof Cluster>[1]> = {},
  ): Promise<Props> =>
    plain(
      await sdkInputs(
        () =>
          new Cluster("mycl", {
            image: "sandbox-base:v1.28.2",
            masters: [down.ip],
            ssh: { privateKey: fs.readFileSync(down.keyPath, "utf8") },
            ...args,
          }),
      ),
    );

  it("an unnamed Cluster is named after its resource, and keeps the name an older state gave it", async () => {
    const fresh = await host.check(CL_URN, {}, await clusterInputs());
    assert.deepEqual(fresh.failures, []);
    assert.equal(fresh.inputs.name, "mycl");
    // A state made before the SDK sent the resource name holds "default": no replacement now.
    const old: Props = { ...fresh.inputs, name: "default" };
    delete old.defaultName;
    const kept = await host.check(CL_URN, old, await clusterInputs());
    assert.equal(kept.inputs.name, "default");
    // An explicit name still wins.
    const named = await host.check(CL_URN, old, await clusterInputs({ name: "other" }));
    assert.equal(named.inputs.name, "other");
  });

  it("a create that fails before any step is a plain error (nothing was created)", async () => {
    const { inputs } = await host.check(CL_URN, {}, await clusterInputs());
    const err = await host.create(CL_URN, inputs).then(
      () => assert.fail("create must fail: the master does not answer"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof HostError, String(err));
    assert.equal(err.initFailed, undefined, "no partial state: the resource was not created");
    assert.match(err.message, new RegExp(down.ip.replace(/\./g, "\\.")));
    noJsText(err.message);
  });

  it("destroy goes on past a host that no step was ever recorded on", async () => {
    const { inputs } = await host.check(CL_URN, {}, await clusterInputs());
    const outs = {
      ...inputs,
      clusterName: "mycl",
      applied: { version: 1, cluster: "mycl", hosts: {}, steps: {} },
      steps: [],
      pending: [],
    };
    await host.delete(CL_URN, "mycl", outs, inputs);
    assert.match(host.stderr(), /no step was recorded on it, so the destroy goes on without it/);
  });

  it("inputs of the wrong type are Check failures naming the property, never JavaScript error text", async () => {
    // The engine sends the program's inputs with the serialized provider (`__provider`).
    const cl = await clusterInputs();
    const inf = await infraInputs();
    const cases: Array<{ urn: string; news: Props; property: string }> = [
      { urn: CL_URN, news: { ...cl, clusterfile: { kind: "Cluster", spec: "x" } }, property: "clusterfile" },
      { urn: CL_URN, news: { ...cl, env: "A=1" }, property: "env" },
      { urn: CL_URN, news: { ...cl, dataRoot: 5 }, property: "dataRoot" },
      { urn: CL_URN, news: { ...cl, ssh: "root" }, property: "ssh" },
      { urn: CL_URN, news: { ...cl, clusterfile: 7 }, property: "clusterfile" },
      { urn: INFRA_URN, news: { ...inf, name: 5 }, property: "name" },
      { urn: INFRA_URN, news: { ...inf, local: "x" }, property: "local" },
      {
        urn: INFRA_URN,
        news: Object.fromEntries(Object.entries(inf).filter(([k]) => k !== "provider")),
        property: "provider",
      },
    ];
    for (const c of cases) {
      const { failures } = await host.check(c.urn, {}, c.news);
      assert.ok(
        failures.some((f) => f.property === c.property),
        `${JSON.stringify(c.news)}: a failure on ${c.property}, got ${JSON.stringify(failures)}`,
      );
      for (const f of failures) noJsText(f.reason);
    }
  });

  it("stored state of the wrong shape: missing maps count as empty, others are named", async () => {
    const { inputs } = await host.check(CL_URN, {}, await clusterInputs());
    const base = { ...inputs, clusterName: "mycl", steps: [], pending: [] };
    // A hand-edited state without its maps plans as "nothing applied".
    const d = await host.diff(
      CL_URN,
      "mycl",
      { ...base, applied: { version: 1, cluster: "mycl" } },
      inputs,
      inputs,
    );
    assert.equal(d.changes, "some");
    const err = await host
      .diff(
        CL_URN,
        "mycl",
        { ...base, applied: { version: 1, cluster: "mycl", hosts: "x", steps: {} } },
        inputs,
        inputs,
      )
      .then(
        () => assert.fail("a malformed applied.hosts must be refused"),
        (e: unknown) => e as Error,
      );
    assert.match(err.message, /applied\.hosts is not a mapping/);
    noJsText(err.message);
  });
});
