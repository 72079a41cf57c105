/**
 * Test registries on loopback: Debian's `docker-registry` (CNCF distribution 2.8) with plain
 * HTTP, TLS from a generated test CA, htpasswd basic auth, or bearer tokens from a small token
 * server written here; plus an HTTP proxy that injects faults (5xx, connection resets, truncated
 * or corrupted bodies) in front of any of them.
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { OciLayout } from "../../provider/core/image/layout";
import { Descriptor, MediaTypes, Platform } from "../../provider/core/image/types";
import { packageRoot } from "../../provider/core/package-info";
import { setEnv } from "./env";

export const repoRoot = (): string => packageRoot(__dirname);

export async function freePort(ip = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, ip, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sealer-${prefix}-`));
}

/**
 * Mocha hooks for the enclosing describe: a fresh temp dir, with DOCKER_CONFIG pointed inside it
 * so the machine's registry credentials never take part; both undone after. Returns a path
 * joiner under that dir (valid once the before hooks have run).
 */
export function useWorkDir(prefix: string): (...parts: string[]) => string {
  let dir = "";
  let restoreEnv: (() => void) | undefined;
  before(() => {
    dir = tempDir(prefix);
    restoreEnv = setEnv({ DOCKER_CONFIG: path.join(dir, "docker-config") });
  });
  after(() => {
    restoreEnv?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return (...parts) => path.join(dir, ...parts);
}

export interface TestCa {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });

/** A fresh RSA key and a self-signed certificate for `cn`, valid two days. */
function selfSignedCert(keyFile: string, certFile: string, cn: string): void {
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
  ]);
}

/**
 * A CA and a server certificate signed by it (openssl): for 127.0.0.1 / localhost, or for the
 * address `ip` alone when it is given.
 */
export function makeTestCa(dir: string, cn = "sealer test CA", ip?: string): TestCa {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  selfSignedCert(f("ca.key"), f("ca.crt"), cn);
  openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
    "-subj",
    `/CN=${ip ?? "127.0.0.1"}`,
  ]);
  fs.writeFileSync(
    f("ext.cnf"),
    `subjectAltName=${ip ? `IP:${ip}` : "IP:127.0.0.1,DNS:localhost"}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  openssl([
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("server.crt"),
    "-days",
    "2",
    "-extfile",
    f("ext.cnf"),
  ]);
  return { dir, caFile: f("ca.crt"), certFile: f("server.crt"), keyFile: f("server.key") };
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every token request: account, scopes, whether it was authenticated. */
  requests: Array<{ user?: string; scopes: string[] }>;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

/**
 * A token server as Docker Hub/Harbor run it: `GET /token?service=&scope=` with optional Basic
 * auth returns `{token, access_token, expires_in}`: an RS256 JWT whose `x5c` header carries a
 * certificate the registry trusts (`rootcertbundle`). Authenticated users get what they ask for;
 * anonymous callers get pull only when `anonymousPull` is set.
 */
export async function startTokenServer(
  dir: string,
  users: Record<string, string>,
  opts: { anonymousPull?: boolean; ttlSeconds?: number } = {},
): Promise<TokenServer> {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, "token.key");
  const cert = path.join(dir, "token.crt");
  selfSignedCert(key, cert, "sealer test token issuer");
  const der = new crypto.X509Certificate(fs.readFileSync(cert)).raw;
  const privateKey = crypto.createPrivateKey(fs.readFileSync(key));
  const service = "sealer-test-registry";
  const issuer = "sealer-test-issuer";
  const requests: TokenServer["requests"] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    if (u.pathname !== "/token") {
      res.writeHead(404).end();
      return;
    }
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith("Basic ")) {
      const [name, ...pw] = Buffer.from(authz.slice(6), "base64").toString().split(":");
      if (!name || users[name] !== pw.join(":")) {
        res
          .writeHead(401, { "Content-Type": "application/json" })
          .end(JSON.stringify({ details: "bad credentials" }));
        return;
      }
      user = name;
    }
    const scopes = u.searchParams.getAll("scope");
    requests.push({ ...(user ? { user } : {}), scopes });
    const access = scopes.flatMap((s) => {
      const i = s.lastIndexOf(":");
      const [type, ...name] = s.slice(0, i).split(":");
      let actions = s.slice(i + 1).split(",");
      if (!user) actions = opts.anonymousPull ? actions.filter((a) => a === "pull") : [];
      return actions.length ? [{ type, name: name.join(":"), actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "RS256", typ: "JWT", x5c: [der.toString("base64")] };
    const claims = {
      iss: issuer,
      sub: user ?? "",
      aud: u.searchParams.get("service") ?? service,
      exp: now + (opts.ttlSeconds ?? 300),
      nbf: now - 10,
      iat: now,
      jti: crypto.randomBytes(8).toString("hex"),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = crypto.sign("sha256", Buffer.from(signingInput), privateKey);
    const token = `${signingInput}.${b64url(sig)}`;
    res
      .writeHead(200, { "Content-Type": "application/json" })
      .end(JSON.stringify({ token, access_token: token, expires_in: opts.ttlSeconds ?? 300 }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile: cert,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface RegistryOptions {
  /** Storage root (default: a new temp dir). */
  rootDir?: string;
  /** Address to listen on (default 127.0.0.1). */
  ip?: string;
  tls?: TestCa;
  htpasswd?: Record<string, string>;
  token?: TokenServer;
  readOnly?: boolean;
}

export interface TestRegistry {
  /** "<ip>:<port>" (ip 127.0.0.1 unless RegistryOptions.ip) */
  host: string;
  port: number;
  rootDir: string;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `docker-registry serve` on 127.0.0.1:<free port> and waits until it answers. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  // The free port may be taken by another test between probing and binding: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRegistryOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startRegistryOnce(opts: RegistryOptions): Promise<TestRegistry> {
  const dir = tempDir("registry");
  const rootDir = opts.rootDir ?? path.join(dir, "data");
  fs.mkdirSync(rootDir, { recursive: true });
  const ip = opts.ip ?? "127.0.0.1";
  const port = await freePort(ip);
  const lines = [
    "version: 0.1",
    "log: { level: error, accesslog: { disabled: true } }",
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(rootDir)} }, delete: { enabled: true }${opts.readOnly ? ", maintenance: { readonly: { enabled: true } }" : ""} }`,
    "http:",
    `  addr: ${ip}:${port}`,
    `  secret: ${crypto.randomBytes(12).toString("hex")}`,
  ];
  if (opts.tls)
    lines.push(
      `  tls: { certificate: ${JSON.stringify(opts.tls.certFile)}, key: ${JSON.stringify(opts.tls.keyFile)} }`,
    );
  if (opts.htpasswd) {
    const file = path.join(dir, "htpasswd");
    fs.writeFileSync(
      file,
      Object.entries(opts.htpasswd)
        .map(([u, p]) => execFileSync("htpasswd", ["-Bbn", u, p]).toString().trim())
        .join("\n") + "\n",
    );
    lines.push(`auth: { htpasswd: { realm: sealer-test, path: ${JSON.stringify(file)} } }`);
  } else if (opts.token) {
    lines.push(
      `auth: { token: { realm: ${JSON.stringify(opts.token.realm)}, service: ${opts.token.service}, issuer: ${opts.token.issuer}, rootcertbundle: ${JSON.stringify(opts.token.certFile)} } }`,
    );
  }
  const cfg = path.join(dir, "config.yml");
  fs.writeFileSync(cfg, lines.join("\n") + "\n");
  const logFile = path.join(dir, "registry.log");
  const out = fs.openSync(logFile, "a");
  const proc = spawn("docker-registry", ["serve", cfg], { stdio: ["ignore", out, out] });
  fs.closeSync(out);
  let exited = false;
  proc.on("exit", () => (exited = true));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const logText = fs.readFileSync(logFile, "utf8").slice(-2000);
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry exited at start: ${logText}`);
    }
    if (await canConnect(ip, port)) {
      // Make sure it is our registry that answers, not a process that won the port.
      await new Promise((r) => setTimeout(r, 100));
      if (!exited) break;
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(
        `docker-registry did not listen on ${port}: ${fs.readFileSync(logFile, "utf8").slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `${ip}:${port}`,
    port,
    rootDir,
    dir,
    proc,
    stop: async () => {
      if (!exited) {
        const done = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 3000);
        await done;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function canConnect(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, ip);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export type FaultKind = "503" | "429" | "401" | "reset" | "truncate" | "corrupt";

export interface Fault {
  kind: FaultKind;
  method?: string;
  /** Matches the request path. */
  path: RegExp;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  /** Let this many matching requests through first. */
  skip?: number;
  /** Response headers for status faults (e.g. WWW-Authenticate for "401"). */
  headers?: Record<string, string>;
}

export interface FaultProxy {
  host: string;
  port: number;
  /** Every request seen: method, path, status sent (or the fault). */
  log: Array<{ method: string; path: string; outcome: string; range?: string }>;
  faults: Fault[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `upstreamPort`: forwards requests (keeping the Host
 * header, so the registry's Location URLs point back at the proxy) and injects the listed faults.
 */
export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  const logEntries: FaultProxy["log"] = [];
  const faults: Fault[] = [];
  const take = (method: string, p: string): Fault | undefined => {
    const f = faults.find((x) => (x.times ?? 1) > 0 && (!x.method || x.method === method) && x.path.test(p));
    if (!f) return undefined;
    if ((f.skip ?? 0) > 0) {
      f.skip = (f.skip ?? 0) - 1;
      return undefined;
    }
    f.times = (f.times ?? 1) - 1;
    return f;
  };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const method = req.method ?? "GET";
    const p = req.url ?? "/";
    const taken = take(method, p);
    const fault = taken?.kind;
    if (fault === "503" || fault === "429" || fault === "401") {
      logEntries.push({ method, path: p, outcome: fault });
      req.resume();
      res
        .writeHead(Number(fault), { "Content-Type": "application/json", ...(taken?.headers ?? {}) })
        .end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected" }] }));
      return;
    }
    if (fault === "reset") {
      logEntries.push({ method, path: p, outcome: "reset" });
      req.socket.destroy();
      return;
    }
    const up = http.request(
      { host: "127.0.0.1", port: upstreamPort, method, path: p, headers: req.headers },
      (ur) => {
        logEntries.push({
          method,
          path: p,
          outcome: fault ?? String(ur.statusCode),
          ...(req.headers.range ? { range: req.headers.range } : {}),
        });
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (fault === "truncate" || fault === "corrupt") {
          const total = Number(ur.headers["content-length"] ?? 0);
          let seen = 0;
          ur.on("data", (chunk: Buffer) => {
            if (fault === "truncate") {
              if (seen >= Math.floor(total / 2)) return;
              const keep = Math.max(0, Math.min(chunk.length, Math.floor(total / 2) - seen));
              seen += keep;
              const done = seen >= Math.floor(total / 2);
              // Half the body, then a clean FIN: the client sees a short response, not a reset
              // that could discard the bytes already sent.
              res.write(chunk.subarray(0, keep), () => {
                // A moment later, as a real network drop would: the client has read what came.
                if (done) setTimeout(() => res.socket?.end(), 150);
              });
              if (done) ur.destroy();
            } else {
              const c = Buffer.from(chunk);
              if (seen === 0 && c.length > 0) c[0] = (c[0] ?? 0) ^ 0xff;
              seen += c.length;
              res.write(c);
            }
          });
          ur.on("end", () => {
            if (fault !== "truncate") res.end();
          });
          return;
        }
        ur.pipe(res);
      },
    );
    up.on("error", () => res.socket?.destroy());
    req.pipe(up);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    log: logEntries,
    faults,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Runs skopeo with the arguments; returns stdout. */
export function skopeo(args: string[], opts: { timeout?: number } = {}): string {
  return execFileSync("skopeo", args, {
    stdio: ["ignore", "pipe", "pipe"],
    timeout: opts.timeout ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
}

// ---- small test images written straight into an OCI layout (no builder involved) ----

/** A POSIX tar (ustar) holding the given files; enough for test layers. */
export function tarOf(files: Record<string, Buffer | string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    const data = Buffer.from(content);
    const h = Buffer.alloc(512);
    h.write(name, 0, 100);
    h.write("0000644\0", 100);
    h.write("0000000\0", 108);
    h.write("0000000\0", 116);
    h.write(data.length.toString(8).padStart(11, "0") + "\0", 124);
    h.write("00000000000\0", 136);
    h.write("        ", 148);
    h.write("0", 156);
    h.write("ustar\0", 257);
    h.write("00", 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface TestImageOptions {
  /** Bytes of random content per layer (each layer is a gzip tar with one file). */
  layers?: number[];
  /** Explicit layer files (instead of random ones). */
  layerFiles?: Array<Record<string, Buffer | string>>;
  platform?: Platform;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  /** Docker schema 2 media types instead of OCI. */
  docker?: boolean;
  /** gzip level (0 = stored, fast for big random data). */
  gzipLevel?: number;
}

/** Writes a random image into `store` and tags it; returns the manifest descriptor. */
export async function makeTestImage(
  store: OciLayout,
  ref: string | undefined,
  o: TestImageOptions = {},
): Promise<Descriptor> {
  await store.init();
  const platform = o.platform ?? { os: "linux", architecture: "amd64" };
  const layerContents =
    o.layerFiles ?? (o.layers ?? [1024]).map((n, i) => ({ [`data-${i}.bin`]: crypto.randomBytes(n) }));
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const files of layerContents) {
    const tar = tarOf(files);
    diffIds.push("sha256:" + crypto.createHash("sha256").update(tar).digest("hex"));
    const gz = zlib.gzipSync(tar, { level: o.gzipLevel ?? 1 });
    layers.push(await store.putBlob(gz, o.docker ? MediaTypes.dockerLayerGzip : MediaTypes.layerGzip));
  }
  const config = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Labels: o.labels ?? {} },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: diffIds.map(() => ({ created_by: "test" })),
  };
  const cfg = await store.putJson(config, o.docker ? MediaTypes.dockerConfig : MediaTypes.config);
  const manifest = {
    schemaVersion: 2,
    mediaType: o.docker ? MediaTypes.dockerManifest : MediaTypes.manifest,
    config: cfg,
    layers,
    ...(o.annotations ? { annotations: o.annotations } : {}),
  };
  const d = await store.putJson(manifest, manifest.mediaType);
  if (ref) await store.setRef(ref, d);
  return { ...d, platform };
}

/** Writes one random image per platform and an OCI index over them. */
export async function makeTestIndex(
  store: OciLayout,
  ref: string,
  platforms: Platform[],
  o: TestImageOptions = {},
): Promise<Descriptor> {
  const children: Descriptor[] = [];
  for (const p of platforms) children.push(await makeTestImage(store, undefined, { ...o, platform: p }));
  const d = await store.putJson(
    { schemaVersion: 2, mediaType: MediaTypes.index, manifests: children },
    MediaTypes.index,
  );
  await store.setRef(ref, d);
  return d;
}
