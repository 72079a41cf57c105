/**
 * Drives Pulumi's own dynamic provider host (@pulumi/pulumi/cmd/dynamic-provider) over gRPC the
 * way the engine does: Configure, then Check/Diff/Create/Update/Delete with the serialized
 * provider in `__provider`. The serialized provider and the inputs come from the SDK classes
 * themselves (registered under pulumi.runtime.setMocks, which hands us exactly the properties
 * the SDK would send to the engine, `__provider` included); `sdkInputs(..., { preview: true })`
 * registers them as a `pulumi preview` program run does (isDryRun), `false` as `pulumi up`'s update.
 *
 * Engine behaviour reproduced here (pkg/resource/deploy in pulumi/pulumi):
 * - Check(olds = old inputs, news = program inputs); the checked inputs are what is stored.
 * - Diff(olds = old outputs, news = checked inputs); Update(olds = old outputs, news = checked inputs).
 * - Delete(properties = old outputs).
 * - The dynamic host answers Configure with acceptSecrets=false, so secrets are sent as plain
 *   values; unknowns (preview) are the UNKNOWN sentinel string.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/* eslint-disable @typescript-eslint/no-explicit-any */
const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const provrpc = require("@pulumi/pulumi/proto/provider_grpc_pb") as any;
const provproto = require("@pulumi/pulumi/proto/provider_pb") as any;
const statusproto = require("@pulumi/pulumi/proto/status_pb") as any;
const structproto = require("google-protobuf/google/protobuf/struct_pb") as any;

export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function repoRoot(from: string = __dirname): string {
  let dir = from;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

export type Props = Record<string, unknown>;

export interface DiffAnswer {
  changes: "none" | "some" | "unknown";
  replaces: string[];
  deleteBeforeReplace: boolean;
}

/** The ErrorResourceInitFailed detail of a failed Create/Update (partial state). */
export interface InitFailed {
  message: string;
  id: string;
  properties: Props;
  reasons: string[];
}

export class HostError extends Error {
  constructor(
    message: string,
    readonly initFailed?: InitFailed,
  ) {
    super(message);
  }
}

export interface Host {
  port: number;
  pid: number;
  stderr: () => string;
  configure(): Promise<void>;
  check(
    urn: string,
    olds: Props,
    news: Props,
  ): Promise<{ inputs: Props; failures: Array<{ property: string; reason: string }> }>;
  diff(urn: string, id: string, olds: Props, news: Props, oldInputs?: Props): Promise<DiffAnswer>;
  create(urn: string, props: Props, preview?: boolean): Promise<{ id: string; properties: Props }>;
  update(
    urn: string,
    id: string,
    olds: Props,
    news: Props,
    oldInputs?: Props,
  ): Promise<{ properties: Props }>;
  delete(urn: string, id: string, props: Props, oldInputs?: Props): Promise<void>;
  /** `pulumi refresh`: Read with the stored outputs and inputs; a blank id means the resource is gone. */
  read(urn: string, id: string, props: Props, inputs?: Props): Promise<{ id: string; properties: Props }>;
  stop(): Promise<void>;
}

const toStruct = (o: Props) => structproto.Struct.fromJavaScript(o);

function unary<T>(client: any, method: string, req: any): Promise<T> {
  return new Promise((resolve, reject) => {
    client[method](req, (err: any, resp: T) => {
      if (!err) return resolve(resp);
      const bin = err.metadata?.get?.("grpc-status-details-bin")?.[0];
      if (bin) {
        const st = statusproto.Status.deserializeBinary(bin);
        for (const any of st.getDetailsList()) {
          if (any.getTypeName() === "pulumirpc.ErrorResourceInitFailed") {
            const d = provproto.ErrorResourceInitFailed.deserializeBinary(any.getValue_asU8());
            return reject(
              new HostError(err.details ?? err.message, {
                message: err.details ?? err.message,
                id: d.getId(),
                properties: d.getProperties()?.toJavaScript() ?? {},
                reasons: d.getReasonsList(),
              }),
            );
          }
        }
      }
      reject(new HostError(err.details ?? err.message));
    });
  });
}

/**
 * Starts the host as the engine does (`<node> cmd/dynamic-provider <engine-address>`; it prints
 * its port). The engine address is never dialled by the dynamic host's CRUD paths; we give a
 * closed loopback port. `env` adds variables (e.g. SEALER_HOME) to the host process.
 */
export async function startHost(env: NodeJS.ProcessEnv = {}): Promise<Host> {
  const root = repoRoot();
  const entry = path.join(root, "node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js");
  // Under tsx (quick test loop) the shim requires .ts implementation files: let the host load them.
  const args = __filename.endsWith(".ts")
    ? ["--require", "tsx/cjs", entry, "127.0.0.1:1"]
    : [entry, "127.0.0.1:1"];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`dynamic provider host printed no port in 30 s; stderr:\n${err}`)),
      30_000,
    );
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`dynamic provider host exited with ${code}; stderr:\n${err}`));
    });
  });
  const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const host: Host = {
    port,
    pid: child.pid!,
    stderr: () => err,
    async configure() {
      const req = new provproto.ConfigureRequest();
      req.setArgs(toStruct({}));
      req.setAcceptsecrets(true);
      req.setAcceptresources(true);
      const resp = await unary<any>(client, "configure", req);
      // The dynamic host declines secrets: the engine then strips them before every call.
      if (resp.getAcceptsecrets() !== false)
        throw new Error("dynamic provider host unexpectedly accepts secrets");
    },
    async check(urn, olds, news) {
      const req = new provproto.CheckRequest();
      req.setUrn(urn);
      req.setOlds(toStruct(olds));
      req.setNews(toStruct(news));
      const resp = await unary<any>(client, "check", req);
      return {
        inputs: resp.getInputs()?.toJavaScript() ?? {},
        failures: resp
          .getFailuresList()
          .map((f: any) => ({ property: f.getProperty(), reason: f.getReason() })),
      };
    },
    async diff(urn, id, olds, news, oldInputs) {
      const req = new provproto.DiffRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setOlds(toStruct(olds));
      req.setNews(toStruct(news));
      if (oldInputs) req.setOldInputs(toStruct(oldInputs));
      const resp = await unary<any>(client, "diff", req);
      const C = provproto.DiffResponse.DiffChanges;
      const ch = resp.getChanges();
      return {
        changes: ch === C.DIFF_NONE ? "none" : ch === C.DIFF_SOME ? "some" : "unknown",
        replaces: resp.getReplacesList(),
        deleteBeforeReplace: resp.getDeletebeforereplace(),
      };
    },
    async create(urn, props, preview = false) {
      const req = new provproto.CreateRequest();
      req.setUrn(urn);
      req.setProperties(toStruct(props));
      req.setPreview(preview);
      const resp = await unary<any>(client, "create", req);
      return { id: resp.getId(), properties: resp.getProperties()?.toJavaScript() ?? {} };
    },
    async update(urn, id, olds, news, oldInputs) {
      const req = new provproto.UpdateRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setOlds(toStruct(olds));
      req.setNews(toStruct(news));
      if (oldInputs) req.setOldInputs(toStruct(oldInputs));
      const resp = await unary<any>(client, "update", req);
      return { properties: resp.getProperties()?.toJavaScript() ?? {} };
    },
    async delete(urn, id, props, oldInputs) {
      const req = new provproto.DeleteRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setProperties(toStruct(props));
      if (oldInputs) req.setOldInputs(toStruct(oldInputs));
      await unary<any>(client, "delete", req);
    },
    async read(urn, id, props, inputs) {
      const req = new provproto.ReadRequest();
      req.setId(id);
      req.setUrn(urn);
      req.setProperties(toStruct(props));
      if (inputs) req.setInputs(toStruct(inputs));
      const resp = await unary<any>(client, "read", req);
      return { id: resp.getId(), properties: resp.getProperties()?.toJavaScript() ?? {} };
    },
    async stop() {
      client.close();
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
    },
  };
  return host;
}

/** Strips secret envelopes, as the engine does before calling a provider that declines secrets. */
export function plain(v: unknown): any {
  if (v !== null && typeof v === "object" && (v as Props)[SIG_KEY] === SECRET_SIG)
    return plain((v as Props).value);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

export function isSecret(v: unknown): boolean {
  return v !== null && typeof v === "object" && (v as Props)[SIG_KEY] === SECRET_SIG;
}

/** Old inputs the engine keeps: the checked inputs (with __provider). */
export type Inputs = Props;

/**
 * Properties the SDK class sends for a resource: registered under setMocks, so `__provider` is
 * the SDK's own serialization and unset outputs are absent. Resolved Output values only.
 * `preview` is the program's dry-run flag (default false: the update run of `pulumi up`).
 */
export async function sdkInputs(make: () => unknown, opts: { preview?: boolean } = {}): Promise<Props> {
  const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  let captured: Props | undefined;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        captured = args.inputs as Props;
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call() {
        return {};
      },
    },
    "sealer-host-test",
    "host",
    opts.preview ?? false,
  );
  make();
  for (let i = 0; i < 200 && !captured; i++) await new Promise((r) => setTimeout(r, 10));
  if (!captured) throw new Error("the SDK class registered no resource under mocks");
  return captured;
}

/** Wraps `v` as a secret the way the SDK marshals pulumi.secret(v) (the engine strips it for the dynamic host). */
export function secretValue(v: unknown): Props {
  return { [SIG_KEY]: SECRET_SIG, value: v };
}

/**
 * The `plan` lines `pulumi preview --diff` shows as removed. At a resource's pre-step event the
 * engine's new state has no outputs yet (Update has not run), so its display
 * (getResourcePropertiesDetails in pkg/backend/display/object_diff.go) diffs the OLD STORED
 * INPUTS against the NEW CHECKED INPUTS; the dynamic host sends no detailed diff to narrow it.
 */
export function removedPlanLines(storedInputs: Props, checkedInputs: Props): string[] {
  const old = Array.isArray(storedInputs.plan) ? (storedInputs.plan as string[]) : [];
  const now = new Set(Array.isArray(checkedInputs.plan) ? (checkedInputs.plan as string[]) : []);
  return old.filter((l) => !now.has(l));
}

/** The host as the host tests run it: on data dir `home`, an unreachable host failing fast; configured. */
export async function startTestHost(home: string, dialTimeoutMs: number): Promise<Host> {
  const host = await startHost({
    SEALER_HOME: home,
    SEALER_SSH_DIAL_ATTEMPTS: "1",
    SEALER_SSH_DIAL_TIMEOUT_MS: String(dialTimeoutMs),
  });
  await host.configure();
  return host;
}

/** The provider's own log (steps, hosts, errors) goes to the host's stderr: its tail, for a failed test. */
export function showHostLogIfFailed(test: { state?: string } | undefined, host: Host | undefined): void {
  if (test?.state === "failed" && host)
    process.stderr.write(`--- provider host log (tail) ---\n${host.stderr().slice(-6000)}\n---\n`);
}
