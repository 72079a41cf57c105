/**
 * The cluster's local registry: a CA made on the operator machine (openssl), a server
 * certificate for the registry domain and hosts, an htpasswd file when credentials are set,
 * and the shell that starts the registry (the image's scripts/init-registry.sh) and configures
 * its clients (hosts entry, CA for containerd and docker).
 *
 * The CA lives with the cluster state (`<stateDir>/pki`, mode 0600 keys) and a copy on master0,
 * so re-applies reuse it: clients keep trusting the registry.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { UserError } from "../errors";
import { writeFileAtomic } from "../fsutil";
import { shellQuote } from "../ssh/shell";

const execFileP = promisify(execFile);

export interface RegistryPki {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

async function openssl(args: string[], what: string): Promise<void> {
  try {
    await execFileP("openssl", args, { maxBuffer: 4 << 20 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT")
      throw new UserError(
        `${what}: openssl is not installed on this machine; install it (Debian: apt-get install openssl)`,
      );
    throw new Error(`${what}: openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/**
 * Makes (once) the cluster CA and (when the names change) the registry server certificate in
 * `dir`. Returns the PEM texts.
 */
export async function ensureRegistryPki(
  dir: string,
  opts: { cluster: string; dnsNames: string[]; ips: string[] },
): Promise<RegistryPki> {
  // Registry steps of several masters run at once: one generation per directory at a time, or
  // two openssl runs race on the same csr/tmp files.
  const prev = pkiChains.get(dir) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(() => ensureRegistryPkiNow(dir, opts));
  pkiChains.set(dir, next);
  try {
    return await next;
  } finally {
    if (pkiChains.get(dir) === next) pkiChains.delete(dir);
  }
}

const pkiChains = new Map<string, Promise<RegistryPki>>();

async function ensureRegistryPkiNow(
  dir: string,
  opts: { cluster: string; dnsNames: string[]; ips: string[] },
): Promise<RegistryPki> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => path.join(dir, f);
  if (!fs.existsSync(p("ca.crt")) || !fs.existsSync(p("ca.key"))) {
    await openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "36500",
        "-subj",
        `/CN=sealer ${opts.cluster} CA`,
        "-keyout",
        p("ca.key.tmp"),
        "-out",
        p("ca.crt.tmp"),
      ],
      "making the cluster CA",
    );
    await fs.promises.chmod(p("ca.key.tmp"), 0o600);
    await fs.promises.rename(p("ca.key.tmp"), p("ca.key"));
    await fs.promises.rename(p("ca.crt.tmp"), p("ca.crt"));
  }
  const sans = [...new Set(opts.dnsNames)]
    .sort()
    .map((d) => `DNS:${d}`)
    .concat([...new Set(opts.ips)].sort().map((i) => `IP:${i}`));
  const sanText = `subjectAltName=${sans.join(",")}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`;
  const prev = fs.existsSync(p("registry.ext")) ? await fs.promises.readFile(p("registry.ext"), "utf8") : "";
  if (prev !== sanText || !fs.existsSync(p("registry.crt")) || !fs.existsSync(p("registry.key"))) {
    await fs.promises.writeFile(p("registry.ext"), sanText, { mode: 0o600 });
    await openssl(
      [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        `/CN=${opts.dnsNames[0] ?? "registry"}`,
        "-keyout",
        p("registry.key.tmp"),
        "-out",
        p("registry.csr"),
      ],
      "making the registry key",
    );
    await openssl(
      [
        "x509",
        "-req",
        "-in",
        p("registry.csr"),
        "-CA",
        p("ca.crt"),
        "-CAkey",
        p("ca.key"),
        "-CAcreateserial",
        "-days",
        "36500",
        "-sha256",
        "-extfile",
        p("registry.ext"),
        "-out",
        p("registry.crt.tmp"),
      ],
      "signing the registry certificate",
    );
    await fs.promises.chmod(p("registry.key.tmp"), 0o600);
    await fs.promises.rename(p("registry.key.tmp"), p("registry.key"));
    await fs.promises.rename(p("registry.crt.tmp"), p("registry.crt"));
    await fs.promises.rm(p("registry.csr"), { force: true });
  }
  const read = (f: string) => fs.promises.readFile(p(f), "utf8");
  return {
    caCert: await read("ca.crt"),
    caKey: await read("ca.key"),
    cert: await read("registry.crt"),
    key: await read("registry.key"),
  };
}

/** Writes PKI files fetched from master0 into the local dir (another machine recovering the cluster). */
export async function restoreRegistryPki(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files))
    await writeFileAtomic(path.join(dir, name), text, name.endsWith(".key") ? 0o600 : 0o644);
}

/** One bcrypt htpasswd line, made with Debian's htpasswd (apache2-utils); the password goes on stdin. */
export async function htpasswdLine(user: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile("htpasswd", ["-niB", user], (err, stdout, stderr) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT")
          reject(
            new UserError(
              "registry credentials are set but htpasswd is not installed on this machine; install it (Debian: apt-get install apache2-utils)",
            ),
          );
        else reject(new Error(`htpasswd failed: ${stderr.trim() || err.message}`));
        return;
      }
      resolve(stdout.trim() + "\n");
    });
    child.stdin?.end(password + "\n");
  });
}

export interface RegistryLayout {
  /** <clusterDir>/registry: config, pid, log, certs. */
  stateDir: string;
  cert: string;
  key: string;
  htpasswd?: string;
}

export function registryLayout(clusterDir: string, withAuth: boolean): RegistryLayout {
  const stateDir = `${clusterDir}/registry`;
  return {
    stateDir,
    cert: `${stateDir}/tls/registry.crt`,
    key: `${stateDir}/tls/registry.key`,
    ...(withAuth ? { htpasswd: `${stateDir}/htpasswd` } : {}),
  };
}

/** Starts (or restarts) the registry on one host through the image's init script. */
export function startRegistryCmd(o: {
  rootfs: string;
  layout: RegistryLayout;
  listen: string;
  domain: string;
  port: number;
}): string {
  const env: Record<string, string> = {
    REGISTRY_LISTEN: o.listen,
    REGISTRY_DOMAIN: o.domain,
    REGISTRY_PORT: String(o.port),
    REGISTRY_DATA_DIR: `${o.rootfs}/registry`,
    REGISTRY_STATE_DIR: o.layout.stateDir,
    REGISTRY_CERT: o.layout.cert,
    REGISTRY_KEY: o.layout.key,
    REGISTRY_HTPASSWD: o.layout.htpasswd ?? "",
  };
  const exports = Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join(" ");
  const script = `${o.rootfs}/scripts/init-registry.sh`;
  return `if [ -f ${shellQuote(script)} ]; then cd ${shellQuote(o.rootfs)} && ${exports} sh scripts/init-registry.sh; else echo "image has no scripts/init-registry.sh: registry not started" >&2; exit 3; fi`;
}

/** Where containerd (1.5+) and `ctr --hosts-dir` look up per-registry hosts.toml files. */
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";

/**
 * Public registries whose image names resolve through the cluster's registry: the image's cached
 * container images keep their repository paths (docker.io/library/x:1 is sea.hub:5000/library/x:1),
 * so a workload naming the original image pulls it from the cluster with no registry reachable.
 */
export const MIRRORED_REGISTRIES = [
  "docker.io",
  "registry.k8s.io",
  "k8s.gcr.io",
  "gcr.io",
  "quay.io",
  "ghcr.io",
];

/** The upstream `server` of a registry's hosts.toml (docker.io's API lives on registry-1). */
function upstreamServer(registry: string): string {
  return registry === "docker.io" ? "https://registry-1.docker.io" : `https://${registry}`;
}

/** How containerd reaches the registry that serves the cluster's images. */
export interface RegistryEndpoint {
  /** "host[:port]" as image names spell it. */
  host: string;
  /** CA file on the node; absent with `insecure` or for a publicly trusted registry. */
  caFile?: string;
  /** Plain HTTP (`sealer login --insecure`). */
  insecure?: boolean;
}

function hostSection(e: RegistryEndpoint, capabilities: string[]): string[] {
  const url = `${e.insecure ? "http" : "https"}://${e.host}`;
  return [
    `[host."${url}"]`,
    `  capabilities = [${capabilities.map((c) => `"${c}"`).join(", ")}]`,
    ...(e.caFile ? [`  ca = "${e.caFile}"`] : []),
    ...(e.insecure ? [`  skip_verify = true`] : []),
  ];
}

/** hosts.toml of the registry itself: pulls, resolves and pushes go to it. */
export function registryHostsToml(e: RegistryEndpoint): string {
  const url = `${e.insecure ? "http" : "https"}://${e.host}`;
  return [`server = "${url}"`, ``, ...hostSection(e, ["pull", "resolve", "push"]), ``].join("\n");
}

/** hosts.toml that makes `registry` a mirror: pulls and resolves go to the cluster's registry. */
export function mirrorHostsToml(registry: string, e: RegistryEndpoint): string {
  return [`server = "${upstreamServer(registry)}"`, ``, ...hostSection(e, ["pull", "resolve"]), ``].join(
    "\n",
  );
}

/** The hosts.toml files of the registry and of every mirrored registry (path -> content; no secrets in them). */
export function containerdHostsFiles(e: RegistryEndpoint): Record<string, string> {
  return Object.fromEntries([
    [`${CONTAINERD_CERTS_DIR}/${e.host}/hosts.toml`, registryHostsToml(e)],
    ...MIRRORED_REGISTRIES.filter((r) => r !== e.host).map((r) => [
      `${CONTAINERD_CERTS_DIR}/${r}/hosts.toml`,
      mirrorHostsToml(r, e),
    ]),
  ]) as Record<string, string>;
}

/** Shell writing files (path -> content), creating their directories. */
function writeFilesCmd(files: Record<string, string>): string {
  return Object.entries(files)
    .map(
      ([f, text]) =>
        `mkdir -p ${shellQuote(path.posix.dirname(f))} && printf '%s' ${shellQuote(text)} > ${shellQuote(f)}`,
    )
    .join(" && ");
}

/** Shell writing the hosts.toml files of the registry and of every mirrored registry. */
export function containerdHostsCmd(e: RegistryEndpoint): string {
  return writeFilesCmd(containerdHostsFiles(e));
}

/** Directories `containerdHostsCmd` writes, for clean-host. */
export function containerdHostsDirs(host: string): string[] {
  return [host, ...MIRRORED_REGISTRIES.filter((r) => r !== host)].map((r) => `${CONTAINERD_CERTS_DIR}/${r}`);
}

/**
 * containerd 1.6's hosts.toml has no credentials: the CRI plugin takes them from
 * `registry.configs."<host>".auth` in /etc/containerd/config.toml, also when `config_path` is set
 * (it asks for the host of the endpoint it pulls from, so mirrored names get them too). An
 * `imports` file cannot carry them: containerd 1.6 replaces a plugin's whole section with the
 * imported one (config_path would be lost). So the tables live in this file (0600) and are
 * spliced as a marked block at the end of config.toml (made 0600); an install script that
 * rewrites config.toml appends this file again.
 */
export const CONTAINERD_AUTH_FILE = "/etc/containerd/sealer-registry-auth.toml";
const AUTH_BEGIN = "# BEGIN sealer registry auth";
const AUTH_END = "# END sealer registry auth";

export function containerdAuthToml(host: string, creds: { username: string; password: string }): string {
  // TOML basic strings take JSON's escapes.
  return [
    `[plugins."io.containerd.grpc.v1.cri".registry.configs.${JSON.stringify(host)}.auth]`,
    `  username = ${JSON.stringify(creds.username)}`,
    `  password = ${JSON.stringify(creds.password)}`,
    ``,
  ].join("\n");
}

/**
 * Puts CONTAINERD_AUTH_FILE into config.toml (replacing the previous block) and restarts a running
 * containerd, which reads its config only at start: through systemd when systemd runs it, else
 * through the image's install script (which restarts it).
 */
export const APPLY_CONTAINERD_AUTH_CMD = [
  `c=/etc/containerd/config.toml;`,
  `if [ -f "$c" ]; then`,
  `sed -i '/^${AUTH_BEGIN}$/,/^${AUTH_END}$/d' "$c" && chmod 600 "$c" &&`,
  `{ echo '${AUTH_BEGIN}'; cat ${CONTAINERD_AUTH_FILE}; echo '${AUTH_END}'; } >> "$c";`,
  `fi;`,
  `if [ -S /run/containerd/containerd.sock ]; then`,
  `if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet containerd 2>/dev/null; then systemctl restart containerd;`,
  `elif [ -f scripts/containerd.sh ]; then sh scripts/containerd.sh;`,
  `else echo "containerd runs but neither systemd nor scripts/containerd.sh can restart it: restart containerd so it reads the registry credentials in $c" >&2; exit 3; fi;`,
  `fi`,
].join(" ");

/** Client side on every host: CA for containerd and docker, hosts.toml for the registry and its mirrors (path -> content). */
export function registryClientFiles(o: {
  domain: string;
  port: number;
  caCert: string;
}): Record<string, string> {
  const hp = `${o.domain}:${o.port}`;
  const c = `${CONTAINERD_CERTS_DIR}/${hp}`;
  return {
    [`${c}/ca.crt`]: o.caCert,
    [`/etc/docker/certs.d/${hp}/ca.crt`]: o.caCert,
    ...containerdHostsFiles({ host: hp, caFile: `${c}/ca.crt` }),
  };
}

export function registryClientCmd(o: { domain: string; port: number; caCert: string }): string {
  return writeFilesCmd(registryClientFiles(o));
}
