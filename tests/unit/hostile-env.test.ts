/**
 * The worker VIP (env IPvsVIPv4) goes into `ip addr` and `ipvsadm` commands run as root on every
 * worker: a value that is not one IPv4 address is refused wherever it is written (a Clusterfile,
 * `-e`, a Kubefile's ENV) and for an image built elsewhere, naming where it came from; the
 * commands quote it as well.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clusterFromFlags, loadClusterfile } from "../../provider/core/clusterfile";
import { UserError } from "../../provider/core/errors";
import { parseKubefile } from "../../provider/core/kubefile/parser";
import { plan } from "../../provider/core/plan/planner";
import { emptyApplied } from "../../provider/core/plan/types";
import { baseImage, clusterfile, spec } from "../fixtures/clusterfile/plan-world";

const HOSTILE = "10.1.1.1;touch${IFS}/tmp/PWNED;#";
const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, String(e));
    return e.problems;
  }
  assert.fail("accepted");
};

describe("hostile env: the worker VIP", () => {
  it("a Clusterfile's spec.env or a host's env holding a command is refused, naming the path and line", () => {
    const text = clusterfile({
      extraSpec: `  env: [ "IPvsVIPv4=${HOSTILE}" ]\n`,
      workerExtra: `      env: [ "IPvsVIPv4=$(id)" ]\n`,
    });
    const problems = problemsOf(() => loadClusterfile(text, { file: "Clusterfile" }));
    assert.deepEqual(
      problems.map((p) => p.replace(/: IPvsVIPv4 must be .*/, "")),
      [`Clusterfile:8 spec.env[0]: IPvsVIPv4`, `Clusterfile:14 spec.hosts[1].env[0]: IPvsVIPv4`],
    );
    assert.match(problems[0]!, /IPvsVIPv4 must be one IPv4 address .* e\.g\. IPvsVIPv4=10\.103\.97\.2$/);
    // Two addresses, an IPv6 one, an empty one: not one IPv4 address either.
    for (const v of ["10.0.0.1;10.0.0.2", "fd00::2", ""])
      assert.equal(
        problemsOf(() => loadClusterfile(clusterfile({ extraSpec: `  env: [ "IPvsVIPv4=${v}" ]\n` }))).length,
        1,
        v,
      );
    // A plain address is fine.
    assert.doesNotThrow(() =>
      loadClusterfile(clusterfile({ extraSpec: `  env: [ IPvsVIPv4=10.103.97.9 ]\n` })),
    );
  });

  it("-e on the command line is refused naming the flag", () => {
    const problems = problemsOf(() =>
      clusterFromFlags({ image: "app:1", masters: "10.0.0.2", env: ["IPvsVIPv4=$(id)"] }),
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^--env \(the 1st\): IPvsVIPv4: IPvsVIPv4 must be one IPv4 address/);
  });

  it("a Kubefile's ENV is refused naming the Kubefile and line", () => {
    const problems = problemsOf(() =>
      parseKubefile(`FROM scratch\nENV A=1\nENV IPvsVIPv4="$(id)"\n`, { file: "Kubefile" }),
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^Kubefile:3.*ENV IPvsVIPv4="\$\(id\)": IPvsVIPv4 must be one IPv4 address/);
  });

  it("an image built elsewhere with such an ENV is refused at plan time, unless the Clusterfile overrides it", () => {
    const image = baseImage({ env: { IPvsVIPv4: HOSTILE } });
    const cluster = spec(clusterfile());
    assert.throws(
      () => plan({ cluster, image }, emptyApplied(cluster.name)),
      (e: unknown) =>
        e instanceof UserError &&
        e.message.startsWith(
          `image ${image.reference}: ENV IPvsVIPv4=${JSON.stringify(HOSTILE)}: IPvsVIPv4 must be`,
        ) &&
        e.message.includes("spec.env"),
    );
    const overridden = spec(clusterfile({ extraSpec: `  env: [ IPvsVIPv4=10.103.97.9 ]\n` }));
    assert.doesNotThrow(() => plan({ cluster: overridden, image }, emptyApplied(overridden.name)));
  });

  it("the worker's VIP commands quote their words: the shell passes each as one argument", async () => {
    // What worker-vip runs, rendered for a valid VIP, executed with stub ip/ipvsadm that record argv.
    const { workerVipCommands } = await import("../../provider/core/exec/steps/worker-vip");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sealer-vip-"));
    try {
      for (const tool of ["ip", "ipvsadm"])
        fs.writeFileSync(
          path.join(dir, tool),
          `#!/bin/sh\nprintf '%s|' ${tool} "$@" >> ${dir}/argv; echo >> ${dir}/argv\n`,
          {
            mode: 0o755,
          },
        );
      const cmd = workerVipCommands(
        "10.103.97.2",
        ["10.0.0.2"],
        [{ port: 6443, healthPath: "/healthz" }],
      ).ipvsadm;
      const r = spawnSync("sh", ["-c", cmd], {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` },
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      const argv = fs.readFileSync(path.join(dir, "argv"), "utf8");
      assert.ok(argv.includes("ip|addr|replace|10.103.97.2/32|dev|sealer-vip|"), argv);
      assert.ok(argv.includes("ipvsadm|-a|-t|10.103.97.2:6443|-r|10.0.0.2:6443|-m|"), argv);
      // Were a value ever to get past the checks, it stays one word and runs nothing.
      const evil = workerVipCommands(
        `10.1.1.1$(touch ${dir}/PWNED)`,
        ["10.0.0.2"],
        [{ port: 6443, healthPath: "/healthz" }],
      );
      for (const c of [evil.ipvsadm, evil.seautil])
        spawnSync("sh", ["-c", c], { env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ""}` } });
      assert.ok(!fs.existsSync(path.join(dir, "PWNED")));
      assert.ok(
        fs
          .readFileSync(path.join(dir, "argv"), "utf8")
          .includes(`ip|addr|replace|10.1.1.1$(touch ${dir}/PWNED)/32|`),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
