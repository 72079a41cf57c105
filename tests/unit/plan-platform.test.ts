/**
 * K4, run side: per-host platform. The `uname -m` -> OCI platform mapping, and the planner with
 * hostPlatforms: each host gets its platform's layers, a change to one platform's variant
 * re-distributes only to its hosts, recorded platforms make a preview equal to the apply, an
 * unprobed host is planned with the image default (and says so), a platform the image lacks is
 * one UserError naming every such host.
 */
import * as assert from "node:assert/strict";
import { UserError } from "../../provider/core/errors";
import { hostsWithoutPlatform } from "../../provider/core/exec/host-platform";
import { platformOfMachine } from "../../provider/core/image/facts";
import { plan, type Desired } from "../../provider/core/plan/planner";
import { recordAll } from "../../provider/core/exec/record";
import { emptyApplied, type ImageFacts, type LayerFacts, type Step } from "../../provider/core/plan/types";
import {
  baseImage,
  clusterfile,
  digest,
  LAYER,
  M,
  multiPlatform,
  spec,
  W,
} from "../fixtures/clusterfile/plan-world";

describe("platform of a host from uname -m", () => {
  const table: Array<[string, string | undefined]> = [
    ["x86_64", "linux/amd64"],
    ["x86_64\n", "linux/amd64"],
    ["aarch64", "linux/arm64"],
    ["arm64", "linux/arm64"],
    ["armv7l", "linux/arm/v7"],
    ["armv8l", "linux/arm/v7"],
    ["armv6l", "linux/arm/v6"],
    ["i686", "linux/386"],
    ["ppc64le", "linux/ppc64le"],
    ["s390x", "linux/s390x"],
    ["riscv64", "linux/riscv64"],
    ["mips64el", "linux/mips64le"],
    ["loongarch64", "linux/loong64"],
    ["sparc64", undefined],
    ["", undefined],
  ];
  for (const [machine, want] of table)
    it(`${JSON.stringify(machine)} -> ${want ?? "unknown"}`, () =>
      assert.equal(platformOfMachine(machine), want));

  it("only hosts without a recorded platform are probed", () => {
    const a = emptyApplied("demo");
    a.hosts["10.0.0.2"] = { roles: ["master"], layers: [], platform: "linux/amd64" };
    a.hosts["10.0.0.3"] = { roles: ["master"], layers: [] };
    assert.deepEqual(hostsWithoutPlatform(["10.0.0.2", "10.0.0.3", "10.0.0.4"], a), ["10.0.0.3", "10.0.0.4"]);
  });
});

/** A two-platform image: arm64 differs from amd64 in the host binaries layer (bin/crictl...). */
function twoPlatformImage(armTag = "arm-v1"): ImageFacts {
  const amd = baseImage();
  const armLayers: LayerFacts[] = amd.layers.map((l, i) =>
    i === LAYER.hostBin ? { ...l, digest: digest(`layer-${i}-${armTag}`) } : l,
  );
  return multiPlatform(amd, armLayers, armTag);
}

const ARM = W[1]!;
const dist = (steps: Step[]) =>
  steps
    .filter((s): s is Extract<Step, { kind: "distribute" }> => s.kind === "distribute")
    .map((s) => s.hosts[0]!)
    .sort();
/** The steps of one host (ids end in ":<ip>"); cluster-wide steps (save-clusterfile) are not. */
const hostSteps = (steps: Step[], ip: string) => steps.filter((s) => s.id.endsWith(`:${ip}`));

describe("planner: per-host platform (mixed-architecture cluster)", () => {
  const cluster = spec(clusterfile());
  const all = [...M, ...W];
  const probed: Record<string, string> = Object.fromEntries(
    all.map((ip) => [ip, ip === ARM ? "linux/arm64" : "linux/amd64"]),
  );
  const d: Desired = { cluster, image: twoPlatformImage(), hostPlatforms: probed };
  const first = plan(d, emptyApplied("demo"));
  const applied = recordAll(emptyApplied("demo"), first, d);

  it("each host's distribute step carries the layers of its platform", () => {
    for (const s of first.steps) {
      if (s.kind !== "distribute") continue;
      const p = s.hosts[0] === ARM ? "linux/arm64" : "linux/amd64";
      assert.equal(s.platform, p, s.id);
      assert.deepEqual(
        s.layers,
        d.image.variants![p]!.layers.map((l) => l.digest),
        s.id,
      );
    }
    assert.equal(applied.hosts[ARM]?.platform, "linux/arm64");
    assert.equal(applied.hosts[W[0]!]?.platform, "linux/amd64");
    assert.equal(applied.hosts[ARM]?.layers[LAYER.hostBin], digest(`layer-${LAYER.hostBin}-arm-v1`));
  });

  it("with the platforms recorded, a plan without probing (preview) is empty, as the apply is", () => {
    assert.deepEqual(plan({ cluster, image: d.image }, applied).steps, []);
    assert.deepEqual(plan(d, applied).steps, []);
  });

  it("a change to the arm64 variant only re-distributes to the arm64 host, and re-runs only its host steps", () => {
    const d2: Desired = { cluster, image: twoPlatformImage("arm-v2") };
    const p = plan(d2, applied);
    assert.deepEqual(dist(p.steps), [ARM]);
    const s = p.steps.find((x) => x.id === `distribute:${ARM}`)!;
    assert.match(s.reason, /^layer sha256:[0-9a-f]{12}… changed bin\/crictl, bin\/conntrack$/);
    for (const ip of all.filter((x) => x !== ARM))
      assert.deepEqual(
        hostSteps(p.steps, ip).map((x) => x.id),
        [],
        `nothing per host on ${ip}`,
      );
    assert.ok(
      p.steps.some((x) => x.id === `init-host:${ARM}`),
      "init-host reads bin/ on the arm64 host",
    );
  });

  it("a change to the amd64 variant leaves the arm64 host alone", () => {
    const img = twoPlatformImage();
    const amdLayers = img.layers.map((l, i) =>
      i === LAYER.hostBin ? { ...l, digest: digest(`layer-${i}-amd-v2`) } : l,
    );
    const changed: ImageFacts = {
      ...img,
      manifestDigest: digest("index-amd-v2"),
      layers: amdLayers,
      variants: { ...img.variants!, "linux/amd64": { manifestDigest: digest("amd-v2"), layers: amdLayers } },
    };
    const p = plan({ cluster, image: changed }, applied);
    assert.deepEqual(dist(p.steps), all.filter((x) => x !== ARM).sort());
    assert.deepEqual(hostSteps(p.steps, ARM), []);
  });

  it("a new host not probed yet is planned with the image default and the reason says so", () => {
    const bigger = spec(clusterfile({ workers: [...W, "10.0.0.12"] }));
    const p = plan({ cluster: bigger, image: d.image }, applied);
    const s = p.steps.find((x) => x.id === "distribute:10.0.0.12");
    assert.equal(
      s?.reason,
      "host 10.0.0.12 added as node (platform of 10.0.0.12 not probed yet: planned with the image's default linux/amd64)",
    );
    // Probed as arm64 (what apply does): the same steps, the arm64 layers, no note.
    const probedPlan = plan(
      { cluster: bigger, image: d.image, hostPlatforms: { "10.0.0.12": "linux/arm64" } },
      applied,
    );
    assert.deepEqual(
      probedPlan.steps.map((x) => x.id),
      p.steps.map((x) => x.id),
    );
    const ps = probedPlan.steps.find((x) => x.id === "distribute:10.0.0.12");
    assert.equal(ps?.reason, "host 10.0.0.12 added as node");
    assert.equal(ps?.kind === "distribute" ? ps.platform : "", "linux/arm64");
  });

  it("a host whose platform changed (re-installed machine) is re-distributed, and the reason says so", () => {
    const p = plan({ cluster, image: d.image, hostPlatforms: { [W[0]!]: "linux/arm64" } }, applied);
    assert.deepEqual(dist(p.steps), [W[0]!]);
    assert.match(
      p.steps.find((x) => x.id === `distribute:${W[0]}`)!.reason,
      new RegExp(
        `^platform of ${W[0]!.replace(/\./g, "\\.")} changed linux/amd64 -> linux/arm64; layer sha256:`,
      ),
    );
  });

  it("a host of a platform the image lacks is one UserError naming every such host and what to do", () => {
    const single = baseImage(); // linux/amd64 only
    const hp = { [W[0]!]: "linux/arm64", [ARM]: "linux/arm/v7" };
    assert.throws(
      () => plan({ cluster, image: single, hostPlatforms: hp }, emptyApplied("demo")),
      (err: unknown) => {
        assert.ok(err instanceof UserError);
        assert.equal(
          err.message,
          `image registry.example.com/team/saas:1.0 is built for linux/amd64 only, but host ${W[0]} is linux/arm64, host ${ARM} is linux/arm/v7: ` +
            "build it for every platform of the cluster (sealer build --platform linux/amd64,linux/arm64,linux/arm/v7 ...), or pull such a build",
        );
        return true;
      },
    );
    // A recorded platform counts too (the preview refuses what the apply would).
    const rec = emptyApplied("demo");
    rec.hosts[M[0]!] = { roles: ["master"], layers: [], platform: "linux/arm64" };
    assert.throws(() => plan({ cluster, image: single }, rec), /host 10\.0\.0\.2 is linux\/arm64/);
  });
});
