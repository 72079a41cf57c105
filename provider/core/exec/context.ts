/**
 * What every step handler gets: the desired cluster, the image, the SSH pool, the applied state
 * being built, and helpers that run shell on a node with the cluster's env, the image's bin/ on
 * PATH and the step named in every log line and error.
 */
import { clusterEnv, envStrings, masters as mastersOf, mergedEnv, sshOf } from "../clusterfile";
import type { ClusterSpec, DistributionMode, Env, SshSettings } from "../clusterfile";
import { settleLimit } from "../common/limit";
import { UserError } from "../errors";
import type { OciLayout } from "../image/layout";
import { log, registerSecret, type Logger } from "../log";
import type { HostBytes } from "../progress";
import { hostViews, type HostView } from "../plan/host-view";
import type { AppliedState, ImageFacts } from "../plan/types";
import type { JoinMaterial } from "../kube/commands";
import { envPrefix, shellQuote, type ExecResult, type SshPool, type SshTarget } from "../ssh";
import { sshHostIo, type HostIo } from "./host-io";
import { DEFAULT_VIP, kubeadmConfig, type KubeadmConfig } from "../kube/kubeadm-config";

export interface ExecStats {
  sentBlobs: number;
  sentBytes: number;
  /** Files written by .tmpl rendering / Config documents, per host. */
  rendered: Record<string, string[]>;
  /** Blobs and bytes that left this machine for each host. */
  perHost: Record<string, HostBytes>;
  /** How long each step took (step id -> ms), failed steps included. */
  durations: Record<string, number>;
  /** Registry distribution: bytes pushed to the registry the nodes fetch from (part of sentBytes). */
  pushedBytes: number;
}

export function emptyStats(): ExecStats {
  return { sentBlobs: 0, sentBytes: 0, rendered: {}, perHost: {}, durations: {}, pushedBytes: 0 };
}

export interface ExecContextOptions {
  spec: ClusterSpec;
  image: ImageFacts;
  layout: OciLayout;
  pool: SshPool;
  state: AppliedState;
  /** Local cluster state dir (<clusters>/<name>): PKI, saved Clusterfile. */
  stateDir: string;
  /** Probed platforms by IP (the planner's Desired.hostPlatforms). */
  hostPlatforms?: Record<string, string>;
  /** Hosts handled at once inside one step (default 8). */
  concurrency?: number;
  /** Per-command timeout for a node command (default 10 min). */
  commandTimeoutMs?: number;
  /** Relay distribution: layer blobs go once to `via` (default master0), which forwards them to the other hosts. */
  relay?: { via?: string; fanout?: number };
  /** How layer blobs travel (--distribute); overrides spec.distribution. */
  distribution?: DistributionMode;
  /** How handlers reach hosts (default: over `pool`); unit tests pass a recording fake. */
  io?: HostIo;
}

export class ExecContext {
  readonly spec: ClusterSpec;
  readonly image: ImageFacts;
  readonly layout: OciLayout;
  readonly pool: SshPool;
  readonly io: HostIo;
  state: AppliedState;
  readonly stateDir: string;
  readonly cluster: string;
  readonly dataRoot: string;
  readonly clusterDir: string;
  readonly rootfs: string;
  readonly masters: string[];
  readonly workers: string[];
  readonly master0: string;
  readonly concurrency: number;
  readonly commandTimeoutMs: number;
  readonly relay?: { via?: string; fanout?: number };
  readonly distribution?: DistributionMode;
  readonly stats: ExecStats = emptyStats();
  /** Join material made or fetched during this apply (tokens expire: never reuse an old one). */
  join?: Required<JoinMaterial>;
  /** The planner's host views, resolved once: env, SSH settings and roles are read from them. */
  readonly hosts: ReadonlyMap<string, HostView>;
  /** What a host outside the Clusterfile (a recorded one being cleaned) gets: the cluster's settings. */
  private readonly outside: { ssh: SshSettings; env: Env; roles: string[] };
  private kubeadmCfg?: Promise<KubeadmConfig>;
  private names = new Map<string, Promise<string>>();

  constructor(o: ExecContextOptions) {
    this.spec = o.spec;
    this.image = o.image;
    this.layout = o.layout;
    this.pool = o.pool;
    this.io = o.io ?? sshHostIo(o.pool, (ip) => this.target(ip));
    this.state = o.state;
    this.stateDir = o.stateDir;
    this.cluster = o.spec.name;
    this.dataRoot = o.spec.dataRoot;
    this.clusterDir = `${this.dataRoot}/${this.cluster}`;
    this.rootfs = `${this.clusterDir}/rootfs`;
    this.hosts = hostViews(
      { spec: o.spec, image: o.image, applied: o.state, hostPlatforms: o.hostPlatforms ?? {} },
      mastersOf(o.spec),
    );
    this.masters = [...this.hosts.values()].filter((v) => v.role === "master").map((v) => v.ip);
    this.workers = [...this.hosts.values()].filter((v) => v.role === "node").map((v) => v.ip);
    this.outside = {
      ssh: sshOf(o.spec, undefined),
      env: mergedEnv(o.spec, undefined, o.image.env),
      roles: [],
    };
    const m0 = this.masters[0];
    if (!m0)
      throw new UserError(`cluster ${this.cluster} has no master: add a host with role master to spec.hosts`);
    this.master0 = m0;
    this.concurrency = o.concurrency ?? 8;
    this.commandTimeoutMs = o.commandTimeoutMs ?? 10 * 60_000;
    if (o.relay) this.relay = o.relay;
    if (o.distribution) this.distribution = o.distribution;
  }

  /** A host's resolved view (the cluster's settings for a host only the state still knows). */
  private view(ip: string): { ssh: SshSettings; env: Env; roles: string[] } {
    return this.hosts.get(ip) ?? this.outside;
  }

  /** SSH target of a host: its ssh settings merged over the cluster's; sudo for non-root users. */
  target(ip: string): SshTarget {
    const s = this.view(ip).ssh;
    const t: SshTarget = { host: ip, port: s.port, user: s.user };
    if (s.passwd) t.password = s.passwd.reveal();
    if (s.pkData) t.privateKey = s.pkData.reveal();
    else if (s.pk) t.privateKeyPath = s.pk;
    if (s.pkPasswd) t.passphrase = s.pkPasswd.reveal();
    if (s.user !== "root") {
      t.sudo = true;
      if (s.passwd) t.sudoPassword = s.passwd.reveal();
    }
    return t;
  }

  log(ip: string): Logger {
    return log.forHost(ip);
  }

  /** Env for commands and templates on a host: image ENV < cluster env < host env, plus the registry's address. */
  env(ip: string): Record<string, string> {
    const reg = this.registryAddress();
    const env: Record<string, string> = {
      RegistryDomain: reg.domain,
      RegistryPort: String(reg.port),
      RegistryURL: `${reg.domain}:${reg.port}`,
      ...envStrings(this.view(ip).env),
    };
    env.HostIP = env.HostIP ?? ip;
    return env;
  }

  registryAddress(): {
    domain: string;
    port: number;
    username?: string;
    password?: string;
    external: boolean;
  } {
    const r = this.spec.registry;
    if (r.externalRegistry) {
      const e = r.externalRegistry;
      return {
        domain: e.domain,
        port: e.port,
        external: true,
        ...(e.username ? { username: e.username } : {}),
        ...(e.password ? { password: e.password.reveal() } : {}),
      };
    }
    const l = r.localRegistry;
    return {
      domain: l?.domain ?? "sea.hub",
      port: l?.port ?? 5000,
      external: false,
      ...(l?.username ? { username: l.username } : {}),
      ...(l?.password ? { password: l.password.reveal() } : {}),
    };
  }

  /** Hosts that run the local registry: every master when HA, else master0; none for an external one. */
  registryHosts(): string[] {
    const l = this.spec.registry.localRegistry;
    if (this.spec.registry.externalRegistry) return [];
    return l?.ha === false ? [this.master0] : [...this.masters];
  }

  /** Workers reach an HA local registry (one on every master) through the VIP, like the API server. */
  registryBehindVip(): boolean {
    return !this.spec.registry.externalRegistry && this.spec.registry.localRegistry?.ha !== false;
  }

  /**
   * The address host `ip` maps the registry domain to in /etc/hosts: a registry host uses its
   * own registry; a worker uses the VIP when the registry is HA, else the registry host.
   * One rule for the registry-client step and for drift detection.
   */
  registryTargetFor(ip: string): string {
    const regHosts = this.registryHosts();
    if (regHosts.includes(ip)) return ip;
    if (!this.isMaster(ip) && this.registryBehindVip()) return this.vip();
    return regHosts[0] ?? this.master0;
  }

  /** The worker VIP: a cluster-wide value, read from the cluster's env as sealer does (never a host's). */
  vip(): string {
    return clusterEnv(this.spec, this.image.env).IPvsVIPv4 || DEFAULT_VIP;
  }

  roles(ip: string): string[] {
    return this.view(ip).roles;
  }

  isMaster(ip: string): boolean {
    return this.masters.includes(ip);
  }

  /**
   * Runs shell on a node as root (sudo for other users), cwd = the cluster rootfs when it exists,
   * the image's bin/ first on PATH, the host's env exported (their names in SEALER_ENV_KEYS, so
   * the sandbox journal records them). Non-zero exit throws CommandError naming host + step.
   */
  async sh(
    ip: string,
    step: string,
    command: string,
    opts: {
      allowFail?: boolean;
      stdin?: string | Buffer;
      env?: Record<string, string>;
      timeoutMs?: number;
      quiet?: boolean;
    } = {},
  ): Promise<ExecResult> {
    const env = { ...this.env(ip), ...(opts.env ?? {}) };
    for (const [k, v] of Object.entries(env)) if (/pass|secret|token/i.test(k)) registerSecret(v);
    const keys = Object.keys(env).filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
    const picked: Record<string, string> = {};
    for (const k of keys) picked[k] = env[k]!;
    const prelude =
      envPrefix(picked) +
      `export SEALER_ENV_KEYS=${shellQuote(keys.sort().join(" "))}; ` +
      `export PATH=${shellQuote(this.rootfs + "/bin")}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; ` +
      `if [ -d ${shellQuote(this.rootfs)} ]; then cd ${shellQuote(this.rootfs)}; fi; `;
    return this.io.run(ip, step, prelude + command, {
      timeoutMs: opts.timeoutMs ?? this.commandTimeoutMs,
      ...(opts.allowFail ? { allowFail: true } : {}),
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
      ...(opts.quiet ? { quiet: true } : {}),
    });
  }

  /** Writes a file on a node (atomic), creating its directory: one command (upload makes the directory). */
  async put(ip: string, step: string, file: string, content: string | Buffer, mode = 0o644): Promise<void> {
    await this.io.put(ip, step, file, Buffer.isBuffer(content) ? content : Buffer.from(content), mode);
  }

  /** Reads a file from a node; undefined when it does not exist. */
  read(ip: string, step: string, file: string): Promise<string | undefined> {
    return this.io.read(ip, step, file);
  }

  /** Kubernetes node name of a host: the recorded one, else UseIPasNodeName => IP, else its hostname. */
  nodeName(ip: string): Promise<string> {
    const recorded = this.state.hosts[ip]?.nodeName;
    if (recorded) return Promise.resolve(recorded);
    let p = this.names.get(ip);
    if (!p) {
      p = (async () => {
        if (/^true$/i.test(this.env(ip).UseIPasNodeName ?? "")) return ip;
        const out = (await this.io.run(ip, "node name", "hostname", { quiet: true })).stdout
          .trim()
          .toLowerCase();
        return /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(out) ? out : ip;
      })();
      this.names.set(ip, p);
    }
    return p;
  }

  /** The merged kubeadm config; the image's etc/kubeadm.yml is read (rendered) from master0. */
  kubeadm(step: string): Promise<KubeadmConfig> {
    if (!this.kubeadmCfg) {
      this.kubeadmCfg = (async () => {
        const imageConfig = await this.read(this.master0, step, `${this.rootfs}/etc/kubeadm.yml`);
        const k = this.spec.kubeadm;
        const docs: unknown[] = [];
        const add = (kind: string, d: Record<string, unknown> | undefined) => d && docs.push({ ...d, kind });
        add("InitConfiguration", k.init);
        add("ClusterConfiguration", k.cluster);
        add("JoinConfiguration", k.join);
        add("KubeletConfiguration", k.kubelet);
        add("KubeProxyConfiguration", k.kubeProxy);
        const reg = this.registryAddress();
        return kubeadmConfig({
          ...(imageConfig !== undefined ? { imageConfig } : {}),
          clusterDocs: docs,
          master0: this.master0,
          masters: this.masters,
          registry: `${reg.domain}:${reg.port}`,
          ...(this.image.kubeVersion ? { kubeVersion: this.image.kubeVersion } : {}),
          env: { ...this.env(this.master0), IPvsVIPv4: this.vip() },
        });
      })();
      this.kubeadmCfg.catch(() => (this.kubeadmCfg = undefined));
    }
    return this.kubeadmCfg;
  }

  /** Runs fn for each host with bounded concurrency; all run, then the failures are thrown (in host order). */
  async eachHost(
    hosts: string[],
    fn: (ip: string) => Promise<void>,
    limit = this.concurrency,
  ): Promise<void> {
    const errors = (await settleLimit(hosts, limit, fn)).flatMap((r) =>
      r.status === "rejected" ? [r.reason] : [],
    );
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      const msg = errors.map((e) => (e instanceof Error ? e.message : String(e))).join("\n");
      const first = errors[0];
      throw first instanceof UserError
        ? new UserError(msg, { cause: first })
        : new Error(msg, { cause: first });
    }
  }

  secret(value: string | undefined): string | undefined {
    registerSecret(value);
    return value;
  }
}
