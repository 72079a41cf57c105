/**
 * distribute's per-host part against the recording fake host: `.tmpl` rendering with each host's
 * env, written only when the output changed. (Moving the layer blobs is the SSH pool's streaming
 * and stays in the integration tier.)
 */
import { strict as assert } from "node:assert";
import { renderOnHost } from "../../../provider/core/exec/steps/distribute";
import { clusterfile } from "../../fixtures/clusterfile/plan-world";
import { W0, W1, disposeWorlds, world, type World } from "./world";

const SEP = "=#=sealer-file=#=";
const TMPL = "address: {{ .HostIP }}\nport: {{ .ApiPort }}\n";

/** The host's rootfs holds etc/kubeadm.yml.tmpl, and etc/kubeadm.yml as `rendered` (or none). */
function rootfsOn(w: World, ip: string, rendered: string | undefined): void {
  const root = w.ctx.rootfs;
  w.io.answer({ host: ip, match: /-name '\*\.tmpl'/, stdout: "etc/kubeadm.yml.tmpl\n" });
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  w.io.answer({
    host: ip,
    match: new RegExp(SEP),
    stdout:
      `${SEP} ${root}/etc/kubeadm.yml.tmpl\n${b64(TMPL)}\n` +
      `${SEP} ${root}/etc/kubeadm.yml\n${rendered === undefined ? "MISSING" : b64(rendered)}\n`,
  });
}

describe("steps: distribute rendering (fake host)", () => {
  afterEach(disposeWorlds);

  it("renders each host's templates with that host's env and writes only changed output", async () => {
    const w = world({ clusterfile: clusterfile({ extraSpec: "  env: [ ApiPort=6443 ]\n" }) });
    rootfsOn(w, W0, undefined);
    rootfsOn(w, W1, `address: ${W1}\nport: 6443\n`);
    const r0 = await renderOnHost(w.ctx, W0, "distribute");
    const r1 = await renderOnHost(w.ctx, W1, "distribute");
    const out = `${w.ctx.rootfs}/etc/kubeadm.yml`;
    const puts = (ip: string) => w.io.on(ip).filter((c) => c.op === "put");
    assert.deepEqual(
      puts(W0).map((p) => p.op === "put" && [p.file, p.content]),
      [[out, `address: ${W0}\nport: 6443\n`]],
    );
    assert.deepEqual(r0.written, ["etc/kubeadm.yml"]);
    assert.deepEqual(puts(W1), [], "unchanged output is not rewritten");
    assert.deepEqual(r1.written, []);
    assert.deepEqual(
      Object.keys(r1.files),
      [out],
      "an unchanged rendered file is still part of the footprint",
    );
    assert.deepEqual(w.ctx.stats.rendered[W0], ["etc/kubeadm.yml"]);
  });
});
