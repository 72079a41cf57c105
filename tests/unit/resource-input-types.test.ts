/**
 * Wrongly typed inputs and malformed stored state reach the ClusterImage provider as the engine
 * sends them (property maps from the dynamic provider host): check answers with failures
 * ({property, reason}: the property, the type it takes, what was given) and never throws; diff,
 * update, read and delete with malformed state throw one UserError naming the stored field and
 * what to do. No message carries JavaScript error text (a TypeError's words, a stack frame).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { setLogSink } from "../../provider/core/log";
import { resources, type PropType } from "../../provider/shared/descriptors";
import { provider } from "../../provider/resources/cluster-image";
import { SECRET_SIG, SIG_KEY, UNKNOWN } from "../../provider/resources/common";
import { jsErrorText } from "../harness/js-error-text";

type Props = Record<string, unknown>;
interface Failure {
  property: string;
  reason: string;
}

function assertNoJsText(text: string): void {
  const found = jsErrorText(text);
  assert.deepEqual(found.map(String), [], `JavaScript error text in: ${text.slice(0, 500)}`);
}

describe("ClusterImage: wrongly typed inputs and malformed state", function () {
  this.timeout(120_000);
  let dir = "";
  let ctx = "";
  const prevHome = process.env.SEALER_HOME;
  let restoreLog: ReturnType<typeof setLogSink> | undefined;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "input-types-"));
    process.env.SEALER_HOME = path.join(dir, "home");
    restoreLog = setLogSink({ write: () => undefined });
    ctx = path.join(dir, "ctx");
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, "Kubefile"), "FROM scratch\nARG A\nCOPY a.txt etc/\n");
    fs.writeFileSync(path.join(ctx, "a.txt"), "a\n");
  });
  after(() => {
    if (restoreLog) setLogSink(restoreLog);
    if (prevHome === undefined) delete process.env.SEALER_HOME;
    else process.env.SEALER_HOME = prevHome;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Valid inputs that check accepts without building (buildOnPreview: false). */
  const valid = (): Props => ({ context: ctx, tag: "types-app:1", buildMode: "lite", buildOnPreview: false });

  /** check's failures; check must not throw, and no failure may hold JS error text. */
  async function failuresOf(news: Props): Promise<Failure[]> {
    let r: { failures?: Failure[] };
    try {
      r = await provider.check({}, news);
    } catch (err) {
      assert.fail(`check threw instead of returning failures: ${(err as Error)?.stack ?? String(err)}`);
    }
    const failures = r.failures ?? [];
    for (const f of failures) {
      assert.equal(typeof f.property, "string");
      assert.equal(typeof f.reason, "string");
      assertNoJsText(f.reason);
    }
    return failures;
  }

  /** The one failure on `property`, whose reason mentions every word in `words`. */
  async function expectFailure(
    news: Props,
    property: string,
    words: Array<string | RegExp>,
  ): Promise<Failure> {
    const failures = await failuresOf(news);
    const mine = failures.filter((f) => f.property === property);
    assert.equal(mine.length, 1, `one failure on ${property}, got ${JSON.stringify(failures)}`);
    for (const w of words) {
      if (typeof w === "string")
        assert.ok(mine[0]!.reason.includes(w), `${JSON.stringify(w)} in ${mine[0]!.reason}`);
      else assert.match(mine[0]!.reason, w);
    }
    return mine[0]!;
  }

  describe("check: the audit's cases", () => {
    it('{"kubefile": 5}: a failure on kubefile naming the number', async () => {
      await expectFailure({ ...valid(), kubefile: 5 }, "kubefile", ["kubefile", "string", "number", "5"]);
    });

    it('{"kubefile": 5} alone: no throw, the kubefile failure and the required ones', async () => {
      const failures = await failuresOf({ kubefile: 5 });
      assert.deepEqual(failures.map((f) => f.property).sort(), ["context", "kubefile", "tag"]);
    });

    it('{"platforms": "linux/amd64"}: a failure on platforms asking for a list', async () => {
      await expectFailure({ ...valid(), platforms: "linux/amd64" }, "platforms", [
        "platforms",
        "list",
        '"linux/amd64"',
      ]);
    });

    it('{"platforms": [5]}: a failure naming platforms[0]', async () => {
      await expectFailure({ ...valid(), platforms: [5] }, "platforms", ["platforms[0]", "string", "number"]);
    });

    it("with the default preview build, wrong types fail check before any build", async () => {
      const news = { ...valid(), buildOnPreview: undefined, platforms: "linux/amd64" };
      delete news.buildOnPreview;
      await expectFailure(news, "platforms", ["platforms", "list"]);
    });
  });

  /** A value of the wrong type for each kind of input, and the word its reason must use. */
  function wrongFor(t: PropType): Array<[unknown, string, string]> {
    switch (t.kind) {
      case "string":
        return [
          [5, "string", "number"],
          [true, "string", "boolean"],
          [["x"], "string", "list"],
          [{ a: "b" }, "string", "object"],
        ];
      case "boolean":
        return [
          ["true", "boolean", "string"],
          [1, "boolean", "number"],
          [[true], "boolean", "list"],
        ];
      case "array":
        return [
          ["x", "list", "string"],
          [{ a: "b" }, "list", "object"],
          [7, "list", "number"],
        ];
      case "map":
        return [
          ["x", "map", "string"],
          [["a", "b"], "map", "list"],
          [3, "map", "number"],
        ];
      case "ref":
        return [
          ["user:pass", "object", "string"],
          [["u", "p"], "object", "list"],
          [4, "object", "number"],
        ];
      default:
        throw new Error(`no wrong values for ${t.kind}`);
    }
  }

  describe("check: every ClusterImage input of a wrong type is a failure on that input", () => {
    for (const [name, desc] of Object.entries(resources.ClusterImage.inputs)) {
      for (const [value, expected, given] of wrongFor(desc.type)) {
        it(`${name}: ${JSON.stringify(value)}`, async () => {
          await expectFailure({ ...valid(), [name]: value }, name, [name, expected, given]);
        });
      }
    }
  });

  describe("check: members of lists, maps and registryAuth", () => {
    for (const name of ["buildArgs", "labels", "registryMirrors"]) {
      it(`${name} with a number value names the key`, async () => {
        await expectFailure({ ...valid(), [name]: { "docker.io": 5 } }, name, [
          `${name}["docker.io"]`,
          "string",
          "number",
        ]);
      });
      it(`${name} with a nested object value`, async () => {
        await expectFailure({ ...valid(), [name]: { k: { x: 1 } } }, name, [
          `${name}["k"]`,
          "string",
          "object",
        ]);
      });
    }

    it("platforms with a null and an object member: both named", async () => {
      const f = await expectFailure(
        { ...valid(), platforms: ["linux/amd64", null, { os: "linux" }] },
        "platforms",
        ["platforms[1]", "platforms[2]"],
      );
      assert.ok(!f.reason.includes("platforms[0]"));
    });

    it("registryAuth.username a number: named, and the value not shown", async () => {
      await expectFailure({ ...valid(), registryAuth: { username: 5, password: "pw" } }, "registryAuth", [
        "registryAuth.username",
        "string",
        "number",
      ]);
    });

    it("registryAuth.password a number: named, and the secret not echoed", async () => {
      const f = await expectFailure(
        { ...valid(), registryAuth: { username: "u", password: 918273 } },
        "registryAuth",
        ["registryAuth.password", "string", "number"],
      );
      assert.ok(!f.reason.includes("918273"), f.reason);
    });

    it("registryAuth without a password: required", async () => {
      await expectFailure({ ...valid(), registryAuth: { username: "u" } }, "registryAuth", [
        "registryAuth.password",
        "required",
      ]);
    });

    it("registryAuth in a secret envelope with a wrong member: still a failure", async () => {
      const auth = { [SIG_KEY]: SECRET_SIG, value: { username: ["u"], password: "p" } };
      await expectFailure({ ...valid(), registryAuth: auth }, "registryAuth", [
        "registryAuth.username",
        "list",
      ]);
    });

    it("several wrong inputs: one failure each", async () => {
      const failures = await failuresOf({ ...valid(), kubefile: 5, push: "yes", labels: [1], noCache: 0 });
      assert.deepEqual(failures.map((f) => f.property).sort(), ["kubefile", "labels", "noCache", "push"]);
    });
  });

  describe("check: what stays accepted", () => {
    it("valid inputs: no failures", async () => {
      assert.deepEqual(await failuresOf(valid()), []);
    });

    it("unknowns anywhere a value may be unknown at preview", async () => {
      const news: Props = {
        ...valid(),
        kubefile: UNKNOWN,
        buildArgs: { A: UNKNOWN },
        labels: UNKNOWN,
        platforms: ["linux/amd64", UNKNOWN],
        noCache: UNKNOWN,
        push: UNKNOWN,
        registryAuth: { username: UNKNOWN, password: UNKNOWN },
        registryMirrors: { "docker.io": UNKNOWN },
        allowIncomplete: UNKNOWN,
        baseDigest: UNKNOWN,
        buildOnPreview: false,
      };
      assert.deepEqual(await failuresOf(news), []);
      assert.deepEqual(
        await failuresOf({ ...valid(), context: UNKNOWN, tag: UNKNOWN, platforms: UNKNOWN }),
        [],
      );
      assert.deepEqual(await failuresOf({ ...valid(), registryAuth: UNKNOWN, buildArgs: UNKNOWN }), []);
    });

    it("null optional inputs count as not set", async () => {
      const news = {
        ...valid(),
        kubefile: null,
        platforms: null,
        labels: null,
        registryAuth: null,
        push: null,
      };
      assert.deepEqual(await failuresOf(news), []);
    });

    it("right types: maps, lists, booleans and registryAuth", async () => {
      const news = {
        ...valid(),
        kubefile: "Kubefile",
        buildArgs: { A: "1" },
        labels: { team: "x" },
        platforms: ["linux/amd64"],
        noCache: true,
        push: false,
        registryAuth: { username: "u", password: "p" },
        registryMirrors: { "docker.io": "127.0.0.1:5000/hub" },
        allowIncomplete: false,
      };
      assert.deepEqual(await failuresOf(news), []);
    });
  });

  describe("malformed stored state", () => {
    const digest = "sha256:" + "ab".repeat(32);
    const good = (): Props => ({
      context: "/nonexistent",
      tag: "types-state:1",
      reference: "docker.io/library/types-state:1",
      digest,
      layers: [],
      pushed: false,
      contentHash: "sha256:" + "cd".repeat(32),
    });

    /** The call rejects with a UserError naming `field` and what to do, free of JS error text. */
    async function expectStateError(call: () => Promise<unknown>, field: string): Promise<void> {
      let err: unknown;
      try {
        await call();
      } catch (e) {
        err = e;
      }
      assert.ok(err !== undefined, "expected an error");
      assert.ok(err instanceof UserError, `a UserError, got ${(err as Error)?.stack ?? String(err)}`);
      assertNoJsText(err.message);
      assert.ok(err.message.includes(field), `names ${field}: ${err.message}`);
      assert.match(err.message, /pulumi state delete/);
    }

    const malformed: Array<[string, unknown]> = [
      ["tag", 5],
      ["tag", { name: "x" }],
      ["tag", "Not A Reference!"],
      ["reference", 7],
      ["reference", ["docker.io/library/x:1"]],
      ["digest", 42],
    ];

    for (const [field, value] of malformed) {
      const label = `${field}: ${JSON.stringify(value)}`;
      it(`delete with ${label}`, async () => {
        await expectStateError(() => provider.delete("id-1", { ...good(), [field]: value }), field);
      });
      it(`update with ${label}`, async () => {
        const news = { context: "/nonexistent", tag: "types-state:2" };
        await expectStateError(() => provider.update("id-1", { ...good(), [field]: value }, news), field);
      });
      it(`diff with ${label}`, async () => {
        await expectStateError(() => provider.diff("id-1", { ...good(), [field]: value }, good()), field);
      });
      if (field === "reference")
        it(`read with ${label}`, async () => {
          await expectStateError(() => provider.read("id-1", { ...good(), [field]: value }), field);
        });
    }

    it("a malformed digest: delete says a refresh repairs it, and read (refresh) does", async () => {
      let message = "";
      await provider.delete("id-1", { ...good(), digest: 42 }).catch((e: Error) => (message = e.message));
      assert.match(message, /digest is a number, not a string/);
      assert.match(message, /pulumi refresh/);
      const r = await provider.read("id-1", { ...good(), digest: 42 });
      assert.equal(typeof r.props.digest, "string");
    });

    it("old state missing optional fields still deletes, diffs and reads", async () => {
      await provider.delete("id-1", {});
      await provider.delete("id-1", { tag: "types-state:1" });
      await provider.delete("id-1", { reference: "docker.io/library/types-state:1" });
      await provider.delete("id-1", good());
      const d = await provider.diff("id-1", { tag: "types-state:1" }, good());
      assert.equal(d.changes, true);
      const r = await provider.read("id-1", { tag: "types-state:1" });
      assert.equal(r.id, "id-1");
    });
  });
});
