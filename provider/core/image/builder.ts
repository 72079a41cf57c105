/**
 * The image builder: Kubefile + context -> an OCI image (one manifest per platform, an index
 * when several) in the local store.
 *
 * - One gzip tar layer per COPY/ADD/APP/CNI/CSI/RUN, written by our deterministic tar writer,
 *   so the same Kubefile, context and args give the same digests anywhere, any time.
 * - Build cache (build-cache.ts): key = sha256(parent key, instruction text, digest of what the
 *   instruction reads). Keys chain, so a changed layer changes the keys of all later ones;
 *   deterministic layers mean their digests only change if their content does.
 * - Atomic: blobs go into the store as they are made; the reference is set last, so a failed
 *   build leaves index.json as it was. Temp dirs (RUN rootfs, downloads) are removed.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";
import { pipeline } from "node:stream/promises";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { mapLimit } from "../common/limit";
import { isUntrustedCertificate, UserError, userErrorAt, wrap } from "../errors";
import { log } from "../log";
import { progressTask } from "../progress";
import { dataPaths, sealerHome } from "../paths";
import { stableStringify } from "../fsutil";
import { cleanStaleTemp, ownedTempPath, removeOnSignal } from "../temp-owner";
import { checkAppNames, checkContext, isUrlSource, parseKubefile } from "../kubefile";
import { MAX_KUBEFILE_BYTES, readUserFile } from "../limits";
import { ARCH_PLACEHOLDER, ARCH_VAR, Instruction, Kubefile } from "../kubefile/types";
import type { LayerFacts } from "../plan/types";
import { cacheContainerImages } from "../registry/image-cache";
import { resolveMirrors } from "../registry/mirrors";
import { BuildCache, cacheKey, CachedLayer, entriesDigest } from "./build-cache";
import { OciLayout } from "./layout";
import { packageVersion } from "../package-info";
import {
  collectCopyEntries,
  LayerEntry,
  normalizeDest,
  OPAQUE_WHITEOUT,
  refuseWhiteoutNames,
  walkTree,
  withAncestors,
  writeLayer,
  WrittenLayer,
} from "./layer";
import { writtenLayerGroups } from "./layer-groups";
import { checkLayerStack } from "./layer-safety";
import { materializeLayers } from "./materialize";
import { detectAppType, finalizeExtension, inheritExtension, instructionText, makesLayer } from "./metadata";
import { normalizeReference } from "../common/reference";
import { diffSnapshots, snapshot } from "./rootfs-diff";
import {
  findImage,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  readContainerImages,
  readExtension,
  resolveManifest,
  takeLease,
} from "./store";
import {
  Annotations,
  ContainerImage,
  Descriptor,
  HistoryEntry,
  ImageConfig,
  ImageExtension,
  Index,
  Manifest,
  MediaTypes,
  Platform,
  SealerLabels,
} from "./types";

/** Every history entry and the config carry this fixed time: builds are reproducible. */
export const FIXED_CREATED = "1970-01-01T00:00:00Z";

export interface BuildOptions {
  /** Build context directory. */
  context: string;
  /** Kubefile path (default: <context>/Kubefile). */
  kubefile?: string;
  /** Name:tag to store the image under. */
  tag: string;
  buildArgs?: Record<string, string>;
  /** Extra labels (--label), applied after the Kubefile's. */
  labels?: Record<string, string>;
  /** Do not read the build cache (it is still written). */
  noCache?: boolean;
  /** "linux/amd64" etc.; default this machine's platform. Several -> an OCI index. */
  platforms?: string[];
  /** full (default): cache container images into registry/; lite: do not. */
  buildMode?: "full" | "lite";
  imageListFiles?: string[];
  ignoredImageListFiles?: string[];
  /** `SRC=MIRROR` pairs: pull SRC's container images from MIRROR (host[:port][/prefix]). */
  registryMirrors?: string[];
  /** Full mode: build even when container images are missing, recording them in the manifest. */
  allowIncomplete?: boolean;
  /** Extra CA certificates (PEM file) trusted for https:// APP sources. */
  caFile?: string;
  /** Data directory (default $SEALER_HOME / ~/.local/share/sealer). */
  home?: string;
  /**
   * Another store name to read a FROM image from (a preview build of a base that is not tagged
   * yet); undefined: the image's own name. The base's digest, not its name, shapes the result.
   */
  resolveBase?: (image: string) => Promise<string | undefined>;
}

export interface PlatformBuild {
  platform: string;
  manifestDigest: string;
  configDigest: string;
  layers: LayerFacts[];
}

export interface BuildResult {
  /** Normalised reference the image is stored under. */
  reference: string;
  /** Digest the reference points at (the manifest, or the index for several platforms). */
  digest: string;
  mediaType: string;
  platforms: PlatformBuild[];
  /** Layers of the first platform, oldest first. */
  layers: LayerFacts[];
  /** Layers made by running their instruction (all platforms). */
  builtLayers: number;
  /** Layers taken from the build cache (all platforms). */
  cachedLayers: number;
  extension: ImageExtension;
  containerImages: ContainerImage[];
}

function archOf(platform: Platform): string {
  return platform.architecture;
}

function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  if (h === "localhost") return true;
  if (net.isIPv4(h)) return h.startsWith("127.");
  return h === "::1";
}

/** GETs a URL into a file (following up to 5 redirects), trusting `ca` in addition to the system CAs. */
function fetchToFile(url: URL, file: string, ca: Buffer | undefined, redirects = 5): Promise<void> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http;
    const req = mod.get(
      url,
      {
        ...(ca && url.protocol === "https:" ? { ca: [...tls.rootCertificates, ca.toString("utf8")] } : {}),
        timeout: 60_000,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
          res.resume();
          const next = new URL(res.headers.location, url);
          if (next.protocol !== "https:" && url.protocol === "https:")
            return reject(new Error(`redirect from https to ${next.protocol} refused`));
          fetchToFile(next, file, ca, redirects - 1).then(resolve, reject);
          return;
        }
        if (status !== 200) {
          res.resume();
          return reject(new Error(`HTTP ${status}`));
        }
        pipeline(res, fs.createWriteStream(file)).then(resolve, reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer for 60 s")));
    req.on("error", reject);
  });
}

/** Downloads an APP URL source into `dir`: https, or http to a loopback address only. */
async function download(url: string, dir: string, where: string, caFile?: string): Promise<string> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw userErrorAt(where, `"${url}" is not a valid URL`);
  }
  if (u.protocol !== "https:" && !(u.protocol === "http:" && isLoopbackHost(u.hostname)))
    throw userErrorAt(
      where,
      `APP source ${url} must be an https:// URL (plain http is allowed for loopback addresses only)`,
    );
  const name = decodeURIComponent(u.pathname.split("/").filter(Boolean).pop() ?? "") || "index";
  if (name.includes("/") || name === "." || name === "..")
    throw userErrorAt(where, `cannot derive a file name from ${url}`);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = await fs.promises.readFile(caFile);
    } catch {
      throw new UserError(`cannot read the CA file ${caFile} (--ca-file)`);
    }
  }
  await fs.promises.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  try {
    await fetchToFile(u, file, ca);
  } catch (err) {
    const msg = (err as Error).message;
    const hint = isUntrustedCertificate(err) ? " (pass the issuing CA with --ca-file)" : "";
    throw userErrorAt(where, `downloading ${url} failed: ${msg}${hint}`, { cause: err });
  }
  return file;
}

interface LayerState {
  descriptor: Descriptor;
  diffID: string;
}

/** Where RUN looks for commands when the build host has no PATH of its own. */
const DEFAULT_HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The PATH a RUN sees: the build host's own directories first, then rootfs/bin last. The base
 * image's bin/ is on PATH so a RUN can call the image's own tools the host lacks (stand-in
 * kubeadm, seautil...); last, so an image can never shadow the host's sh, cp, tar, rm... that run
 * as the building user (root in CI). Only absolute host entries are kept: an empty or relative
 * entry would resolve against the cwd, which is the image's rootfs.
 */
export function runPath(rootfs: string, hostPath = process.env.PATH): string {
  const host = (hostPath ?? "").split(":").filter((d) => path.isAbsolute(d));
  return [...(host.length ? host : DEFAULT_HOST_PATH.split(":")), path.join(rootfs, "bin")].join(":");
}

/**
 * Whether an image ENV variable is withheld from RUN. RUN executes on the build host, but the
 * image's Env (inherited from a base image someone else built, or the Kubefile's own ENV) is
 * meant for cluster nodes: variables that make the dynamic loader, the shell or a common
 * interpreter load or run code at startup would let an image run code in every RUN on the
 * build host. PATH is set by runPath. The host's own values of these (process.env) stay.
 */
export function isUnsafeRunEnv(name: string): boolean {
  return (
    /^(LD_|DYLD_|BASH_FUNC_)/.test(name) ||
    [
      "PATH",
      "BASH_ENV",
      "ENV",
      "SHELLOPTS",
      "BASHOPTS",
      "CDPATH",
      "IFS",
      "PS4",
      "GCONV_PATH",
      "GLIBC_TUNABLES",
      "NODE_OPTIONS",
      "PYTHONPATH",
      "PYTHONHOME",
      "PYTHONSTARTUP",
      "PERL5LIB",
      "PERL5OPT",
      "PERLLIB",
      "RUBYLIB",
      "RUBYOPT",
    ].includes(name)
  );
}

/**
 * Runs a RUN command with the build host's /bin/sh (never a sh from the image): cwd = rootfs,
 * PATH from runPath, ARG/ENV (ENV without isUnsafeRunEnv names) and ARCH in the environment.
 */
async function runCommand(
  command: string,
  rootfs: string,
  env: Record<string, string>,
  where: string,
): Promise<void> {
  const child = spawn("/bin/sh", ["-c", command], {
    cwd: rootfs,
    env: { ...process.env, ...env, PATH: runPath(rootfs) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail: string[] = [];
  const onData = (buf: Buffer) => {
    for (const line of buf.toString("utf8").split("\n")) {
      if (!line) continue;
      log.info(`  | ${line}`);
      tail.push(line);
      if (tail.length > 20) tail.shift();
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", (err: NodeJS.ErrnoException) =>
      reject(
        userErrorAt(
          where,
          `RUN could not start the build host's /bin/sh (${err.code ?? "unknown error"}); RUN needs a POSIX shell there`,
          { cause: err },
        ),
      ),
    );
    child.on("close", (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  });
  if (code !== 0)
    throw userErrorAt(
      where,
      `RUN ${command} exited with code ${code}${tail.length ? `; last output:\n${tail.join("\n")}` : ""}`,
    );
}

class PlatformBuilder {
  layers: LayerState[] = [];
  history: HistoryEntry[] = [];
  labels: Record<string, string> = {};
  env: Record<string, string> = {};
  args: Record<string, string> = {};
  author?: string;
  ext: ImageExtension;
  containerImages: ContainerImage[] = [];
  /** Full mode with allowIncomplete: what could not be cached, and why. */
  incompleteImages: string[] = [];
  parentKey: string;
  built = 0;
  cached = 0;
  /** Whether bin/kubeadm exists in the rootfs as built so far. */
  hasKubeadm = false;
  private rootfs?: string;
  private applied = 0;
  private warnedWithheld = false;
  private readonly appNamesSoFar = new Set<string>();

  constructor(
    readonly platform: Platform,
    readonly kf: Kubefile,
    readonly opts: BuildOptions,
    readonly layout: OciLayout,
    readonly cache: BuildCache,
    readonly tmpRoot: string,
    readonly lease: { touch(d: string): Promise<void> },
    readonly stepLabel: (i: number, text: string, cached: boolean) => void,
  ) {
    this.ext = inheritExtension(undefined);
    this.parentKey = cacheKey("base", formatPlatform(platform), "scratch");
  }

  private where(ins: Instruction): string {
    return `${ins.loc.file}:${ins.loc.line}`;
  }

  async from(named: string, where: string): Promise<void> {
    if (named === "scratch") return;
    const image = (await this.opts.resolveBase?.(named)) ?? named;
    const plat = formatPlatform(this.platform);
    if (!(await findImage(this.layout, image))) {
      let pull: typeof import("../registry/pull") | undefined;
      try {
        pull = require("../registry/pull") as typeof import("../registry/pull");
      } catch {
        pull = undefined;
      }
      if (!pull) throw new UserError(`${where}: image ${image} not found locally; run sealer pull ${image}`);
      log.info(`pulling base image ${image} (${plat})`);
      try {
        await pull.pullImage(image, {
          store: this.layout,
          platform: plat,
          ...(this.opts.home ? { home: this.opts.home } : {}),
        });
      } catch (err) {
        throw wrap(`${where}: pulling base image ${image}`, err);
      }
    }
    const parent = await resolveManifest(this.layout, image, plat).catch((err: unknown) => {
      throw wrap(`${where}: FROM ${image}`, err);
    });
    for (const [i, l] of parent.manifest.layers.entries()) {
      const diffID = parent.config.rootfs.diff_ids[i];
      if (!diffID)
        throw new UserError(
          `${where}: base image ${image} is malformed: layer ${i} has no diff_id in its config`,
        );
      await this.lease.touch(l.digest);
      this.layers.push({ descriptor: l, diffID });
    }
    // Before any of them is unpacked here: a base whose layers could reach outside the rootfs is refused.
    await checkLayerStack(
      this.layout,
      parent.manifest.layers.map((l) => l.digest),
      { what: `${where}: base image ${image}` },
    );
    this.history = [...(parent.config.history ?? [])];
    this.labels = { ...(parent.config.config?.Labels ?? {}) };
    for (const e of parent.config.config?.Env ?? []) {
      const i = e.indexOf("=");
      if (i > 0) this.env[e.slice(0, i)] = e.slice(i + 1);
    }
    if (parent.config.author) this.author = parent.config.author;
    const pext = readExtension(parent.manifest, parent.reference);
    this.ext = inheritExtension(pext);
    for (const a of this.ext.applications) this.appNamesSoFar.add(a.name);
    this.containerImages = readContainerImages(parent.manifest);
    this.hasKubeadm =
      pext?.type === "kube-installer" ||
      parent.manifest.layers.some((l) =>
        (l.annotations?.[Annotations.layerPaths] ?? "").includes('"bin/kubeadm"'),
      );
    this.parentKey = cacheKey("base", plat, parent.manifestDigest);
  }

  /** Brings the temp rootfs up to date with all layers so far and returns it. */
  async rootfsDir(): Promise<string> {
    if (!this.rootfs) {
      this.rootfs = path.join(this.tmpRoot, `rootfs-${archOf(this.platform)}`);
      await fs.promises.mkdir(this.rootfs, { recursive: true });
    }
    const todo = this.layers.slice(this.applied).map((l) => l.descriptor.digest);
    if (todo.length) await materializeLayers(this.layout, todo, this.rootfs);
    this.applied = this.layers.length;
    return this.rootfs;
  }

  private pushLayer(layer: CachedLayer, text: string): void {
    this.layers.push({
      descriptor: {
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.size,
        annotations: {
          [Annotations.layerPaths]: JSON.stringify(layer.paths),
          ...(layer.groups ? { [Annotations.layerGroups]: JSON.stringify(layer.groups) } : {}),
          [Annotations.layerInstruction]: text,
        },
      },
      diffID: layer.diffID,
    });
    this.history.push({ created: FIXED_CREATED, created_by: text });
  }

  private trackKubeadm(layer: CachedLayer): void {
    if (layer.kubeadm === "added") this.hasKubeadm = true;
    if (layer.kubeadm === "removed") this.hasKubeadm = false;
  }

  /** Step i's layer from the cache (found under `key`): leased, tracked and added like a built one. */
  private async reuseLayer(i: number, text: string, key: string, hit: CachedLayer): Promise<void> {
    this.stepLabel(i, text, true);
    await this.lease.touch(hit.digest);
    this.trackKubeadm(hit);
    this.pushLayer(hit, text);
    this.parentKey = key;
    this.cached++;
  }

  /** A freshly written layer for `text`: cached under `key`, tracked and added. */
  private async addBuiltLayer(
    text: string,
    key: string,
    written: WrittenLayer,
    entries: LayerEntry[],
  ): Promise<void> {
    const layer: CachedLayer = {
      digest: written.digest,
      size: written.size,
      mediaType: written.mediaType,
      diffID: written.diffID,
      paths: written.paths,
      groups: writtenLayerGroups(entries, written),
      ...kubeadmChange(entries),
    };
    await this.cache.put(this.parentKey, key, layer);
    this.trackKubeadm(layer);
    this.pushLayer(layer, text);
    this.parentKey = key;
    this.built++;
  }

  /**
   * A layer from a list of entries whose content comes from files. With the cache: if some
   * layer was ever built on this parent key, hash the sources first (stat-cached) and look the
   * key up; otherwise build straight away, hashing while writing, and record the key after.
   */
  private async fileLayer(i: number, text: string, entries: LayerEntry[], label: string): Promise<void> {
    const hashOf = async (e: LayerEntry) => this.cache.hashFile(e.source as string);
    if (!this.opts.noCache && (await this.cache.hasChildren(this.parentKey))) {
      const bytes = entries.reduce((n, e) => n + (e.type === "file" ? e.size : 0), 0);
      const bar = progressTask("build", `hashing ${label}`, bytes);
      let done = 0;
      // Hash with a few files in flight (overlaps file I/O), then digest in entry order.
      const hashes = new Map<string, string>();
      const files = entries.filter((e) => e.type === "file" && e.source);
      await mapLimit(files, 8, async (e) => {
        hashes.set(e.path, await hashOf(e));
        done += e.size;
        bar.update(done);
      });
      const tree = await entriesDigest(entries, async (e) => hashes.get(e.path) ?? (await hashOf(e)));
      bar.end();
      const key = cacheKey(this.parentKey, text, tree);
      const hit = await this.cache.get(key);
      if (hit) {
        await this.reuseLayer(i, text, key, hit);
        return;
      }
    }
    this.stepLabel(i, text, false);
    const written = await writeLayer(this.layout, entries, { label: `compressing ${label}` });
    for (const e of entries) {
      const sha = written.fileHashes.get(e.path);
      if (sha && e.source) await this.cache.recordHash(e.source, sha);
    }
    const tree = await entriesDigest(
      entries,
      async (e) => written.fileHashes.get(e.path) ?? (await hashOf(e)),
    );
    await this.addBuiltLayer(text, cacheKey(this.parentKey, text, tree), written, entries);
  }

  private sources(list: string[]): string[] {
    const arch = archOf(this.platform);
    return list.map((s) => s.split(ARCH_PLACEHOLDER).join(arch));
  }

  async copy(i: number, ins: Extract<Instruction, { kind: "COPY" | "ADD" }>): Promise<void> {
    const sources = this.sources(ins.sources);
    const text = `${ins.kind} ${[...sources, ins.dest].join(" ")}`;
    const remote = sources.filter(isUrlSource);
    if (remote.length)
      throw userErrorAt(
        this.where(ins),
        `${ins.kind} from a URL (${remote[0]}) is not supported; download it with RUN or use APP <name> ${remote[0]}`,
      );
    const entries = await collectCopyEntries(this.opts.context, sources, ins.dest, this.where(ins));
    await this.fileLayer(i, text, entries, normalizeDest(ins.dest) || "/");
  }

  async app(i: number, ins: Extract<Instruction, { kind: "APP" | "CNI" | "CSI" }>): Promise<void> {
    const sources = this.sources(ins.sources);
    const text = instructionText({ ...ins, sources });
    const appDir = `application/apps/${ins.name}`;
    const map = new Map<string, LayerEntry>();
    const downloads = path.join(this.tmpRoot, `download-${crypto.randomBytes(4).toString("hex")}`);
    for (const src of sources) {
      if (isUrlSource(src)) {
        const file = await download(src, downloads, this.where(ins), this.opts.caFile);
        await walkTree(file, `${appDir}/${path.basename(file)}`, map);
        continue;
      }
      const abs = path.resolve(this.opts.context, src);
      const st = await fs.promises.stat(abs).catch(() => undefined);
      if (!st)
        throw userErrorAt(
          this.where(ins),
          `${ins.kind} ${ins.name} source "${src}" does not exist in the build context ${this.opts.context}`,
        );
      await walkTree(abs, st.isDirectory() ? appDir : `${appDir}/${path.basename(abs)}`, map);
    }
    refuseWhiteoutNames([...map.keys()], this.where(ins));
    map.set(`${appDir}/`, { path: `${appDir}/`, type: "dir", mode: 0o755, size: 0 });
    // Re-declaring an app (here or in a base image) replaces its directory, not merges into it.
    if (this.appNamesSoFar.has(ins.name))
      map.set(`${appDir}/${OPAQUE_WHITEOUT}`, {
        path: `${appDir}/${OPAQUE_WHITEOUT}`,
        type: "file",
        mode: 0o644,
        size: 0,
        data: Buffer.alloc(0),
      });
    this.appNamesSoFar.add(ins.name);
    const entries = withAncestors([...map.values()]);
    await this.fileLayer(i, text, entries, `app ${ins.name}`);
    await fs.promises.rm(downloads, { recursive: true, force: true });
    const files = entries
      .filter(
        (e) =>
          e.type !== "dir" &&
          e.path.startsWith(appDir + "/") &&
          !path.posix.basename(e.path).startsWith(".wh."),
      )
      .map((e) => e.path.slice(appDir.length + 1));
    const app = { name: ins.name, type: detectAppType(files), files };
    const at = this.ext.applications.findIndex((a) => a.name === ins.name);
    if (at >= 0) this.ext.applications[at] = app;
    else this.ext.applications.push(app);
    if (ins.kind === "CNI") this.labels[`${SealerLabels.cniPrefix}${ins.name}`] = "true";
    if (ins.kind === "CSI") this.labels[`${SealerLabels.csiPrefix}${ins.name}`] = "true";
  }

  async run(i: number, ins: Extract<Instruction, { kind: "RUN" }>): Promise<void> {
    const text = `RUN ${ins.command}`;
    // ${ARCH} is this platform's architecture in RUN too (as in COPY sources), so a RUN can fetch
    // or refuse per platform.
    // The image's ENV minus what would change how programs start on the build host (see
    // isUnsafeRunEnv); the environment also keys the cache, so it is filtered first.
    const env: Record<string, string> = { ...this.args };
    const withheld: string[] = [];
    for (const [k, v] of Object.entries(this.env)) {
      if (isUnsafeRunEnv(k)) withheld.push(k);
      else env[k] = v;
    }
    env[ARCH_VAR] = archOf(this.platform);
    if (withheld.length && !this.warnedWithheld) {
      this.warnedWithheld = true;
      log.warn(
        `${this.where(ins)}: RUN does not get the image's ENV ${withheld.sort().join(", ")} on the build host (they would change how its programs start); they stay in the image`,
      );
    }
    const key = cacheKey(this.parentKey, text, stableStringify(env));
    const hit = this.opts.noCache ? undefined : await this.cache.get(key);
    if (hit) {
      await this.reuseLayer(i, text, key, hit);
      return;
    }
    this.stepLabel(i, text, false);
    const rootfs = await this.rootfsDir();
    const before = await snapshot(rootfs);
    await runCommand(ins.command, rootfs, env, this.where(ins));
    const after = await snapshot(rootfs);
    const entries = diffSnapshots(before, after, rootfs);
    const written = await writeLayer(this.layout, entries, { label: "compressing RUN layer" });
    await this.addBuiltLayer(text, key, written, entries);
    this.applied = this.layers.length; // the rootfs already holds this layer's changes
  }

  /** Full build mode: the container-image cache hook, its output as a final registry/ layer. */
  async cacheImages(stepNo: number): Promise<void> {
    const rootfs = path.join(this.tmpRoot, `scan-${archOf(this.platform)}`);
    // Image discovery reads manifests, charts and apps: materialise only those.
    const wanted = ["manifests", "charts", "application"];
    await materializeLayers(
      this.layout,
      this.layers.map((l) => l.descriptor.digest),
      rootfs,
      { filter: (rel) => wanted.includes(rel.split("/")[0] as string) },
    );
    const outDir = path.join(this.tmpRoot, `registry-${archOf(this.platform)}`);
    await fs.promises.mkdir(outDir, { recursive: true });
    const res = await cacheContainerImages({
      rootfs,
      outDir,
      platform: this.platform,
      ...(this.opts.imageListFiles ? { imageListFiles: this.opts.imageListFiles } : {}),
      ...(this.opts.ignoredImageListFiles ? { ignoredImageListFiles: this.opts.ignoredImageListFiles } : {}),
      baseImages: this.containerImages,
      cacheDir: path.join(dataPaths.buildCache(this.opts.home ?? sealerHome()), "container-images"),
      client: { home: this.opts.home ?? sealerHome() },
      mirrors: resolveMirrors(this.opts.home ?? sealerHome(), this.opts.registryMirrors),
      allowIncomplete: this.opts.allowIncomplete === true,
      kubeVersion: this.labels[SealerLabels.clusterRuntimeVersion] ?? "",
    });
    this.incompleteImages = res.incomplete;
    const seen = new Set(this.containerImages.map((c) => c.image));
    for (const c of res.images) if (!seen.has(c.image)) this.containerImages.push(c);
    if (!res.wrote) return;
    const map = new Map<string, LayerEntry>();
    await walkTree(outDir, "registry", map);
    await this.fileLayer(
      stepNo,
      "CACHE container images -> registry/",
      withAncestors([...map.values()]),
      "registry/",
    );
  }
}

/** Whether entries add or delete bin/kubeadm (last one wins, as in extraction order). */
export function kubeadmChange(entries: LayerEntry[]): { kubeadm?: "added" | "removed" } {
  let change: "added" | "removed" | undefined;
  for (const e of entries) {
    if (e.path === "bin/kubeadm" && e.type !== "dir") change = "added";
    else if (
      e.path === "bin/.wh.kubeadm" ||
      e.path === `bin/${OPAQUE_WHITEOUT}` ||
      e.path === ".wh.bin" ||
      e.path === "bin/kubeadm/" ||
      e.path === "bin"
    )
      change = change === "added" && e.path === `bin/${OPAQUE_WHITEOUT}` ? "added" : "removed";
  }
  return change ? { kubeadm: change } : {};
}

/** Parses "k=v" items (flags) into a map; a missing "=" is an error naming the flag. */
export function parseKeyValues(items: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  const problems: string[] = [];
  for (const it of items ?? []) {
    const i = it.indexOf("=");
    if (i <= 0) problems.push(`${flag} "${it}" must be KEY=VALUE`);
    else out[it.slice(0, i)] = it.slice(i + 1);
  }
  if (problems.length)
    throw new UserError(
      problems.length === 1 ? (problems[0] as string) : `bad ${flag} values:\n - ${problems.join("\n - ")}`,
      { problems },
    );
  return out;
}

/** Builds an image into the local store (see the file comment). */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const home = opts.home ?? sealerHome();
  const context = path.resolve(opts.context);
  const kubefilePath = path.resolve(opts.kubefile ?? path.join(context, "Kubefile"));
  const reference = normalizeReference(opts.tag);
  const text = readUserFile(
    kubefilePath,
    "Kubefile",
    MAX_KUBEFILE_BYTES,
    "pass it with -f or put a Kubefile in the context directory",
  );
  const platforms = (opts.platforms?.length ? opts.platforms : [hostPlatform()]).map(parsePlatform);
  const seenPlatforms = new Set<string>();
  for (const p of platforms) {
    const s = formatPlatform(p);
    if (seenPlatforms.has(s)) throw new UserError(`--platform lists ${s} twice`);
    seenPlatforms.add(s);
  }
  const displayFile = path.relative(process.cwd(), kubefilePath) || kubefilePath;
  const kf = parseKubefile(text, {
    file: displayFile,
    ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
  });
  await checkContext(kf, context, { arches: platforms.map(archOf) });
  const from = kf.instructions[0];
  if (!from || from.kind !== "FROM")
    throw new UserError(`${displayFile}:1: a Kubefile starts with FROM <image> or FROM scratch`);

  const layout = new OciLayout(dataPaths.store(home));
  await layout.init();
  const cache = new BuildCache(dataPaths.buildCache(home), layout);
  // Leftovers of builds and loads that were killed go first: nothing else would remove them.
  await cleanStaleTemp(dataPaths.tmp(home));
  await cleanStaleTemp(layout.tmpDir());
  const tmpRoot = ownedTempPath(dataPaths.tmp(home), "build");
  const releaseTmp = removeOnSignal(tmpRoot);
  await fs.promises.mkdir(tmpRoot, { recursive: true });
  const lease = await takeLease(layout);
  const version = packageVersion();
  const results: Array<{
    platform: Platform;
    manifest: Descriptor;
    configDigest: string;
    layers: LayerFacts[];
    ext: ImageExtension;
    images: ContainerImage[];
  }> = [];
  let built = 0;
  let cached = 0;
  try {
    const steps = kf.instructions.length + (opts.buildMode === "lite" ? 0 : 1);
    for (const platform of platforms) {
      const prefix = platforms.length > 1 ? `[${formatPlatform(platform)}] ` : "";
      const stepLabel = (i: number, t: string, hit: boolean) =>
        log.info(`${prefix}STEP ${i}/${steps}: ${t}${hit ? " (cached)" : ""}`);
      const b = new PlatformBuilder(
        platform,
        kf,
        { ...opts, context, home },
        layout,
        cache,
        tmpRoot,
        lease,
        stepLabel,
      );
      for (const [n, ins] of kf.instructions.entries()) {
        const i = n + 1;
        if (ins.kind === "FROM") {
          if (n !== 0)
            throw new UserError(
              `${ins.loc.file}:${ins.loc.line}: only one FROM is supported (multi-stage builds are not)`,
            );
          stepLabel(i, `FROM ${ins.image}`, false);
          await b.from(ins.image, `${ins.loc.file}:${ins.loc.line}`);
          checkAppNames(
            kf,
            b.ext.applications.map((a) => a.name),
          );
          continue;
        }
        if (makesLayer(ins)) {
          try {
            switch (ins.kind) {
              case "COPY":
              case "ADD":
                await b.copy(i, ins);
                break;
              case "APP":
              case "CNI":
              case "CSI":
                await b.app(i, ins);
                break;
              case "RUN":
                await b.run(i, ins);
                break;
            }
          } catch (err) {
            // Errors that already name their Kubefile place keep it; anything else gets this instruction's.
            if (err instanceof UserError && err.location?.startsWith(`${ins.loc.file}:`)) throw err;
            throw wrap(`${ins.loc.file}:${ins.loc.line}: ${instructionText(ins)}`, err);
          }
          continue;
        }
        stepLabel(i, instructionText(ins), false);
        applyMetadata(b, ins, kf);
        b.history.push({ created: FIXED_CREATED, created_by: instructionText(ins), empty_layer: true });
      }
      if (opts.buildMode !== "lite") await b.cacheImages(steps);
      Object.assign(b.labels, opts.labels ?? {});
      b.ext.type = b.hasKubeadm || b.ext.type === "kube-installer" ? "kube-installer" : "app-installer";
      const ext = finalizeExtension(b.ext, version);
      const config: ImageConfig = {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        created: FIXED_CREATED,
        ...(b.author ? { author: b.author } : {}),
        config: {
          ...(Object.keys(b.labels).length ? { Labels: sortedRecord(b.labels) } : {}),
          ...(Object.keys(b.env).length
            ? {
                Env: Object.keys(b.env)
                  .sort()
                  .map((k) => `${k}=${b.env[k]}`),
              }
            : {}),
        },
        rootfs: { type: "layers", diff_ids: b.layers.map((l) => l.diffID) },
        history: b.history,
      };
      const configDesc = await layout.putJson(config, MediaTypes.config);
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.manifest,
        config: configDesc,
        layers: b.layers.map((l) => l.descriptor),
        annotations: {
          [Annotations.sealerContainerImages]: JSON.stringify(b.containerImages),
          [Annotations.sealerExtension]: JSON.stringify(ext),
          ...(b.incompleteImages.length
            ? { [Annotations.incompleteImages]: JSON.stringify(b.incompleteImages) }
            : {}),
        },
      };
      const manifestDesc = await layout.putJson(manifest, MediaTypes.manifest);
      built += b.built;
      cached += b.cached;
      results.push({
        platform,
        manifest: { ...manifestDesc, platform },
        configDigest: configDesc.digest,
        layers: b.layers.map((l) => ({
          digest: l.descriptor.digest,
          size: l.descriptor.size,
          paths: JSON.parse(l.descriptor.annotations?.[Annotations.layerPaths] ?? "[]") as string[],
        })),
        ext,
        images: b.containerImages,
      });
    }
    let top: Descriptor;
    const first = results[0] as (typeof results)[number];
    if (results.length === 1)
      top = { mediaType: MediaTypes.manifest, digest: first.manifest.digest, size: first.manifest.size };
    else {
      const index: Index = {
        schemaVersion: 2,
        mediaType: MediaTypes.index,
        manifests: results.map((r) => r.manifest),
      };
      top = await layout.putJson(index, MediaTypes.index);
    }
    await layout.setRef(reference, {
      ...top,
      annotations: { [Annotations.created]: new Date().toISOString() },
    });
    await cache.save();
    log.info(
      `built ${reference} ${top.digest} (${built} layer${built === 1 ? "" : "s"} built, ${cached} cached)`,
    );
    return {
      reference,
      digest: top.digest,
      mediaType: top.mediaType,
      platforms: results.map((r) => ({
        platform: formatPlatform(r.platform),
        manifestDigest: r.manifest.digest,
        configDigest: r.configDigest,
        layers: r.layers,
      })),
      layers: first.layers,
      builtLayers: built,
      cachedLayers: cached,
      extension: first.ext,
      containerImages: first.images,
    };
  } finally {
    await lease.release();
    await fs.promises.rm(tmpRoot, { recursive: true, force: true });
    releaseTmp();
  }
}

function sortedRecord(m: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k] as string;
  return out;
}

/** Instructions that only change metadata. */
function applyMetadata(b: PlatformBuilder, ins: Instruction, kf: Kubefile): void {
  const app = (name: string) => {
    const a = b.ext.applications.find((x) => x.name === name);
    if (!a)
      throw new UserError(
        `${ins.loc.file}:${ins.loc.line}: ${ins.kind} names app ${name}, which is not declared; declare it with APP first`,
      );
    return a;
  };
  switch (ins.kind) {
    case "ARG":
      b.args[ins.name] = kf.args[ins.name] ?? ins.value ?? "";
      return;
    case "ENV":
      Object.assign(b.env, ins.env);
      b.ext.env = { ...(b.ext.env ?? {}), ...ins.env };
      return;
    case "LABEL":
      Object.assign(b.labels, ins.labels);
      return;
    case "MAINTAINER":
      b.author = ins.value;
      return;
    case "KUBEVERSION":
      b.labels[SealerLabels.supportedKubeVersion] = ins.range;
      return;
    case "CMD":
      b.ext.legacyCmds = [...(b.ext.legacyCmds ?? []), ins.command];
      return;
    case "CMDS":
      b.ext.launch = { ...b.ext.launch, cmds: ins.cmds };
      return;
    case "LAUNCH":
      b.ext.launch = { ...b.ext.launch, app_names: ins.apps };
      return;
    case "APPCMDS":
      app(ins.name).cmds = ins.cmds;
      return;
    case "APPENV": {
      const a = app(ins.name);
      a.env = { ...(a.env ?? {}), ...ins.env };
      return;
    }
    default:
      // FROM and the instructions that make a layer are the build loop's, not metadata.
      return;
  }
}
