/**
 * Dynamic provider of ClusterImage: a Kubefile build into the local store, optionally pushed.
 * Thin over the core builder (image/builder), facts (image/facts) and push (registry/push).
 *
 * check hashes the build inputs (every context file's path, exec bit and content, the Kubefile,
 * ARGs, labels, platforms, build mode) into `contentHash`, so diff is a string comparison and the
 * image is rebuilt exactly when something it is built from changed.
 *
 * Build on preview (default on, as @pulumi/docker-build does): check also builds the image
 * (reproducible, so its digest is what `up` will produce; the build cache makes repeats cheap)
 * under a preview name, localhost/sealer-preview/<repository>:<hash>, and adds `reference`,
 * `digest` and `layers` to the checked inputs. The engine previews an update of a dynamic
 * resource with its checked inputs as outputs, so a Cluster using this image sees the new digest
 * during `pulumi preview` and can list the exact steps a one-layer change causes. Preview names
 * are removed when the resource is created, updated or deleted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import type { ImageFacts } from "../core/plan/types";
import type { OciLayout as OciLayoutT } from "../core/image/layout";
import {
  type CheckFailure,
  PartialStateError,
  changedKeys,
  compact,
  containsUnknown,
  errorMessage,
  isUnknown,
  reveal,
  secret,
  UNKNOWN,
} from "./common";
import {
  given,
  short,
  inputTypeFailures,
  isJsError,
  isPlainObject,
  problemText,
  type InputTypes,
} from "./input-types";

export interface ClusterImageInputs {
  context: string;
  tag: string;
  kubefile?: string;
  buildArgs?: Record<string, string>;
  labels?: Record<string, string>;
  platforms?: string[];
  buildMode?: "full" | "lite";
  noCache?: boolean;
  push?: boolean;
  registryAuth?: { username: string; password: string };
  /** Source registry host -> mirror host[:port][/prefix] for pulling container images. */
  registryMirrors?: Record<string, string>;
  allowIncomplete?: boolean;
  /** Digest of the FROM image as another resource knows it (e.g. the base ClusterImage's digest). */
  baseDigest?: string;
  contentHash?: string;
  buildOnPreview?: boolean;
  providerVersion?: string;
}

export interface ClusterImageOutputs extends ClusterImageInputs {
  reference: string;
  digest: string;
  layers: string[];
  metadata: ImageMetadataOut;
  containerImages: string[];
  cachedImages: CachedImageOut[];
  /** Only with allowIncomplete: what could not be cached, and why. */
  incompleteImages?: string[];
  pushed: boolean;
}

export interface CachedImageOut {
  /** The original reference (a mirror changes only where the bytes came from). */
  image: string;
  digest?: string;
  platform?: string;
  app?: string;
}

export interface ImageMetadataOut {
  imageType: ImageFacts["imageType"];
  kubeVersion?: string;
  containerRuntime?: string;
  apps: Array<{ name: string; type: string }>;
  launch: ImageFacts["launch"];
  env: Record<string, string>;
  platforms: string[];
}

/** Inputs whose change means a new build (contentHash covers the context, Kubefile and args). */
const BUILD_KEYS = ["tag", "contentHash"] as const;

// ---- core modules, loaded on use (the provider host loads this file only when a method runs) ----

type BuilderModule = typeof import("../core/image/builder");
type FactsModule = typeof import("../core/image/facts");
type PushModule = typeof import("../core/registry/push");

function store(): OciLayoutT {
  const { OciLayout } = require("../core/image/layout") as typeof import("../core/image/layout");
  const { dataPaths } = require("../core/paths") as typeof import("../core/paths");
  return new OciLayout(dataPaths.store());
}

// ---- pure helpers ----

export function kubefilePath(i: Pick<ClusterImageInputs, "context" | "kubefile">): string {
  return path.resolve(i.context, i.kubefile ?? "Kubefile");
}

/**
 * sha256 over everything a build reads: the context tree (sorted relative paths, file type, exec
 * bit, content; symlink targets), the Kubefile text, and the build settings that shape the image.
 * File contents are hashed through the build cache's stat-keyed record, so a preview re-reads only
 * files that changed since the last check or build.
 */
export async function hashBuildInputs(
  i: ClusterImageInputs,
  bases: Array<[string, string]> = [],
): Promise<string> {
  const { BuildCache } = require("../core/image/build-cache") as typeof import("../core/image/build-cache");
  const { dataPaths } = require("../core/paths") as typeof import("../core/paths");
  const cache = new BuildCache(dataPaths.buildCache(), store());
  const h = createHash("sha256");
  const add = (...parts: string[]): void => {
    for (const p of parts) h.update(p).update("\0");
  };
  add("sealer-context-v1");
  const root = path.resolve(i.context);
  const walk = async (rel: string): Promise<void> => {
    const dir = path.join(root, rel);
    const names = fs.readdirSync(dir).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) add("L", r, fs.readlinkSync(full));
      else if (st.isDirectory()) {
        add("D", r);
        await walk(r);
      } else if (st.isFile()) {
        add("F", r, st.mode & 0o111 ? "x" : "-", await cache.hashFile(full));
      }
    }
  };
  await walk("");
  await cache.save();
  add("K", fs.readFileSync(kubefilePath(i), "utf8"));
  add("A", JSON.stringify(sortedEntries(i.buildArgs)));
  add("B", JSON.stringify(sortedEntries(i.labels)));
  add("P", JSON.stringify(i.platforms ?? []));
  add("M", i.buildMode ?? "full");
  // Only when set, so images hashed before these inputs existed keep their hash.
  if (i.allowIncomplete) add("I");
  for (const [name, digest] of bases) add("FROM", name, digest);
  return "sha256:" + h.digest("hex");
}

/**
 * [name, manifest digest] of every FROM image but scratch, as a build now would read it:
 * `baseDigest` when the program passes one (a base ClusterImage's output), else the local store's
 * (a base's preview build first, as the preview build reads it). A base not in the store yet is
 * "absent" until a build pulls it. Throws the Kubefile's problems (file:line).
 */
export async function baseDigests(i: ClusterImageInputs): Promise<Array<[string, string]>> {
  const { parseKubefile } = require("../core/kubefile") as typeof import("../core/kubefile");
  const { findImage } = require("../core/image/store") as typeof import("../core/image/store");
  const { UserError } = require("../core/errors") as typeof import("../core/errors");
  const file = kubefilePath(i);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UserError(`Kubefile ${file} cannot be read (${code}); give a readable Kubefile file`);
  }
  const kf = parseKubefile(text, { file, buildArgs: i.buildArgs ?? {} });
  const froms = kf.instructions.flatMap((ins) =>
    ins.kind === "FROM" && ins.image !== "scratch" ? [ins.image] : [],
  );
  if (froms.length === 0) return [];
  const layout = store();
  await layout.init();
  const out: Array<[string, string]> = [];
  for (const name of froms) {
    if (i.baseDigest) {
      out.push([name, i.baseDigest]);
      continue;
    }
    // A name no reference parser accepts is the build's to report (file:line), not check's.
    const local = (await previewOf(layout, name).catch(() => undefined)) ?? name;
    const found = await findImage(layout, local).catch(() => undefined);
    out.push([name, found?.descriptor.digest ?? "absent"]);
  }
  return out;
}

/** The content hash of `i` with its bases as the store (or the program) has them now. */
async function contentHashOf(i: ClusterImageInputs): Promise<string> {
  return hashBuildInputs(i, await baseDigests(i));
}

function sortedEntries(m: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Drops empty maps/lists and false flags so equivalent programs normalise to the same inputs. */
export function normaliseInputs(news: ClusterImageInputs): ClusterImageInputs {
  const emptyMap = (m?: Record<string, string>) =>
    m && Object.keys(m).length > 0 ? Object.fromEntries(sortedEntries(m)) : undefined;
  return compact({
    context: news.context,
    tag: news.tag,
    kubefile: news.kubefile,
    buildArgs: emptyMap(news.buildArgs),
    labels: emptyMap(news.labels),
    platforms: news.platforms && news.platforms.length > 0 ? news.platforms : undefined,
    buildMode: news.buildMode && news.buildMode !== "full" ? news.buildMode : undefined,
    noCache: news.noCache || undefined,
    push: news.push || undefined,
    registryMirrors: isUnknown(news.registryMirrors) ? news.registryMirrors : emptyMap(news.registryMirrors),
    allowIncomplete: news.allowIncomplete || undefined,
    baseDigest: news.baseDigest || undefined,
    buildOnPreview: news.buildOnPreview === false ? false : undefined,
    registryAuth: news.registryAuth,
    providerVersion: news.providerVersion,
  }) as ClusterImageInputs;
}

/**
 * Every problem of `news` as check failures: first the type of every input (each wrongly typed
 * input is one failure naming it, the type it takes and what was given), then what a well-typed
 * value must be (a context directory, a Kubefile, a parsable tag, ...). Never throws: a check that
 * fails unexpectedly is a failure on its property.
 */
export function validateInputs(news: ClusterImageInputs): CheckFailure[] {
  const typeFailures = inputTypeFailures(
    news as unknown as Record<string, unknown>,
    INPUT_TYPES,
    SECRET_INPUTS,
  );
  // Wrongly typed inputs count as unknown below: their one failure is the type failure.
  const bad = new Set(typeFailures.map((f) => f.property));
  const typed = Object.fromEntries(
    Object.entries(news).map(([k, v]) => [k, bad.has(k) ? UNKNOWN : v]),
  ) as unknown as ClusterImageInputs;
  return [...typeFailures, ...valueFailures(typed)];
}

/**
 * What each well-typed (or unknown) input must be. An unexpected exception here is caught by
 * check, which reports it on the property being checked, in words.
 */
function valueFailures(news: ClusterImageInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string) => failures.push({ property, reason });
  if (!isUnknown(news.context)) {
    if (typeof news.context !== "string" || news.context === "")
      fail("context", "context is required: the build context directory");
    else if (!isDirectory(news.context))
      fail(
        "context",
        `context ${news.context} is not a directory; give the directory holding the Kubefile and the files it copies`,
      );
    else if (!isUnknown(news.kubefile) && !fs.existsSync(kubefilePath(news)))
      fail(
        "kubefile",
        `Kubefile ${kubefilePath(news)} not found; set kubefile or put a Kubefile in the context`,
      );
  }
  if (!isUnknown(news.tag)) {
    if (typeof news.tag !== "string" || news.tag === "") fail("tag", "tag is required, e.g. my-app:1.0");
    else {
      try {
        const { parseReference } =
          require("../core/common/reference") as typeof import("../core/common/reference");
        parseReference(news.tag);
      } catch (err) {
        fail("tag", problemText(err, WHO));
      }
    }
  }
  if (
    news.buildMode !== undefined &&
    !isUnknown(news.buildMode) &&
    news.buildMode !== "full" &&
    news.buildMode !== "lite"
  )
    fail("buildMode", `buildMode must be "full" or "lite", not ${JSON.stringify(news.buildMode)}`);
  if (!isUnknown(news.registryAuth)) failures.push(...registryAuthFailures(news.registryAuth));
  failures.push(...mirrorFailures(news.registryMirrors));
  if (
    typeof news.baseDigest === "string" &&
    news.baseDigest !== "" &&
    !isUnknown(news.baseDigest) &&
    !/^sha256:[0-9a-f]{64}$/.test(news.baseDigest)
  )
    fail(
      "baseDigest",
      `baseDigest must be a manifest digest sha256:<64 hex> (e.g. the base ClusterImage's digest), not ${JSON.stringify(news.baseDigest)}`,
    );
  return failures;
}

/** A directory here (not one that cannot be read: EACCES, a file in the path). */
function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

// ---- input types (check) ----

const REGISTRY_AUTH = "{ username: string, password: string }";
/** The provider's name in failure texts. */
const WHO = "ClusterImage";

/**
 * The type of every input and an example or purpose for the failure text. Keyed by every key of
 * ClusterImageInputs, so an input added there without a type here does not compile.
 */
const TOP_TYPES: { [K in keyof Required<ClusterImageInputs>]: InputTypes[string] } = {
  context: ["string", "the build context directory"],
  tag: ["string", "an image name such as my-app:1.0"],
  kubefile: ["string", "the Kubefile path"],
  buildArgs: ["stringMap", '{ VERSION: "1.0" }'],
  labels: ["stringMap", '{ team: "web" }'],
  platforms: ["stringList", '["linux/amd64", "linux/arm64"]'],
  buildMode: ["string", '"full" or "lite"'],
  noCache: ["boolean", ""],
  push: ["boolean", ""],
  registryAuth: ["mapping", REGISTRY_AUTH],
  registryMirrors: ["stringMap", '{ "docker.io": "127.0.0.1:5000/hub" }'],
  allowIncomplete: ["boolean", ""],
  baseDigest: ["string", "a manifest digest sha256:<64 hex>"],
  contentHash: ["string", "computed by the provider; leave it unset"],
  buildOnPreview: ["boolean", ""],
  providerVersion: ["string", "set by the SDK"],
};

const INPUT_TYPES: InputTypes = {
  ...TOP_TYPES,
  "registryAuth.username": ["string", ""],
  "registryAuth.password": ["string", ""],
};

/** Inputs whose values a failure never repeats. */
const SECRET_INPUTS = new Set(["registryAuth"]);

/** registryAuth's fields are both required (their types are checked with the other inputs). */
function registryAuthFailures(auth: unknown): CheckFailure[] {
  if (!isPlainObject(auth)) return [];
  const missing = (["username", "password"] as const).filter(
    (k) => auth[k] === undefined || auth[k] === null,
  );
  return missing.length
    ? [
        {
          property: "registryAuth",
          reason: missing.map((k) => `registryAuth.${k} is required: an object ${REGISTRY_AUTH}`).join("; "),
        },
      ]
    : [];
}

// ---- stored state (diff, update, read, delete) ----

type StateField = "tag" | "reference" | "digest";
/** The stored fields diff, update and delete read. */
const STATE_FIELDS: readonly StateField[] = ["tag", "reference", "digest"];

/**
 * The stored state `propsRaw` revealed, after checking the fields this method reads: each absent
 * or a string (a parsable image reference for tag and reference). Old state without them is fine;
 * a field of another type (a hand-edited or corrupted state) is a UserError naming it and saying
 * how to get out, instead of a JavaScript error deep inside.
 */
function storedState(
  id: string,
  propsRaw: Record<string, unknown>,
  fields: readonly StateField[],
): Partial<ClusterImageOutputs> {
  const p = reveal(isPlainObject(propsRaw) ? propsRaw : {});
  const problems: string[] = [];
  for (const f of fields) {
    const v = p[f];
    if (v === undefined || v === null || v === "") continue;
    if (typeof v !== "string") problems.push(`${f} is ${given(v, f !== "digest")}, not a string`);
    else if (f !== "digest") {
      try {
        const { parseReference } =
          require("../core/common/reference") as typeof import("../core/common/reference");
        parseReference(v);
      } catch {
        problems.push(`${f} ${JSON.stringify(short(v))} is not an image reference`);
      }
    }
  }
  if (problems.length > 0) {
    const { UserError } = require("../core/errors") as typeof import("../core/errors");
    // read() takes the digest from the local store again: a refresh repairs a malformed digest.
    const onlyDigest = problems.every((x) => x.startsWith("digest "));
    throw new UserError(
      `the stored state of ClusterImage ${String(id)} is malformed: ${problems.join("; ")}. ` +
        (onlyDigest
          ? "Run `pulumi refresh` to read the digest from the local store again, or remove "
          : "The provider cannot tell which image of the local store it owns. Remove ") +
        "the resource from " +
        "the state with `pulumi state delete <urn>` (`pulumi stack --show-urns` lists the URNs), " +
        "then run `pulumi up` to build it again; an image it left in the local store can be " +
        "removed with `sealer rmi <image>`.",
      { problems },
    );
  }
  return p as Partial<ClusterImageOutputs>;
}

/** Every invalid registryMirrors entry, checked as `sealer build --registry-mirror` checks them. */
function mirrorFailures(mirrors: unknown): CheckFailure[] {
  if (mirrors === undefined || isUnknown(mirrors)) return [];
  if (typeof mirrors !== "object" || mirrors === null || Array.isArray(mirrors))
    return [
      {
        property: "registryMirrors",
        reason:
          'registryMirrors must map source registries to mirrors, e.g. { "docker.io": "127.0.0.1:5000/hub" }',
      },
    ];
  const { mirrorMapProblems } =
    require("../core/registry/mirrors") as typeof import("../core/registry/mirrors");
  const known = Object.fromEntries(Object.entries(mirrors).filter(([, v]) => !isUnknown(v)));
  return mirrorMapProblems(known, (src) => `registryMirrors["${src}"]`).map((reason) => ({
    property: "registryMirrors",
    reason,
  }));
}

export function metadataOf(f: ImageFacts): ImageMetadataOut {
  return compact({
    imageType: f.imageType,
    kubeVersion: f.kubeVersion,
    containerRuntime: f.containerRuntime,
    apps: f.apps.map((a) => ({ name: a.name, type: a.type })),
    launch: f.launch,
    env: f.env,
    platforms: f.platforms,
  }) as ImageMetadataOut;
}

/**
 * The container images cached in the image (every platform's manifest; the original reference,
 * the cached manifest's digest, platform and app) and what an allowIncomplete build left out.
 */
async function cachedImagesOf(
  layout: OciLayoutT,
  reference: string,
): Promise<{ cached: CachedImageOut[]; incomplete: string[] }> {
  const { MediaTypes } = require("../core/image/types") as typeof import("../core/image/types");
  const { formatPlatform, readContainerImages, readIncompleteImages } =
    require("../core/image/store") as typeof import("../core/image/store");
  const top = await layout.resolve(reference);
  const cached = new Map<string, CachedImageOut>();
  const incomplete = new Set<string>();
  const key = (c: CachedImageOut) => `${c.image}\0${c.platform ?? ""}`;
  if (!top) return { cached: [], incomplete: [] };
  const fromManifest = async (digest: string): Promise<void> => {
    const m = await layout.readJson<{ annotations?: Record<string, string> }>(digest);
    for (const ci of readContainerImages(m)) {
      const c = compact({
        image: ci.image,
        digest: ci.digest,
        platform: ci.platform ? formatPlatform(ci.platform) : undefined,
        app: ci.appName,
      }) as CachedImageOut;
      cached.set(key(c), c);
    }
    for (const p of readIncompleteImages(m)) incomplete.add(p);
  };
  if (top.mediaType === MediaTypes.index || top.mediaType === MediaTypes.dockerManifestList) {
    const idx = await layout.readJson<{ manifests: Array<{ digest: string }> }>(top.digest);
    for (const m of idx.manifests) await fromManifest(m.digest);
  } else await fromManifest(top.digest);
  return {
    cached: [...cached.values()].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)),
    incomplete: [...incomplete],
  };
}

// ---- the provider ----

async function build(
  inputs: ClusterImageInputs,
): Promise<Omit<ClusterImageOutputs, keyof ClusterImageInputs>> {
  const layout = store();
  await layout.init();
  const { buildImage } = require("../core/image/builder") as BuilderModule;
  const { imageFacts } = require("../core/image/facts") as FactsModule;
  const { normalizeReference } =
    require("../core/common/reference") as typeof import("../core/common/reference");
  const res = await buildImage({
    kubefile: kubefilePath(inputs),
    context: path.resolve(inputs.context),
    tag: inputs.tag,
    buildArgs: inputs.buildArgs,
    labels: inputs.labels,
    platforms: inputs.platforms,
    noCache: inputs.noCache,
    buildMode: inputs.buildMode,
    registryMirrors: mirrorFlags(inputs.registryMirrors),
    allowIncomplete: inputs.allowIncomplete,
  });
  const reference = normalizeReference(res.reference);
  const facts = await imageFacts(layout, reference);
  const { cached, incomplete } = await cachedImagesOf(layout, reference);
  return compact({
    reference,
    digest: res.digest,
    layers: facts.layers.map((l) => l.digest),
    metadata: metadataOf(facts),
    containerImages: [...new Set(cached.map((c) => c.image))].sort(),
    cachedImages: cached,
    incompleteImages: inputs.allowIncomplete ? incomplete : undefined,
    pushed: false,
  });
}

/** The builder takes mirrors as `--registry-mirror` values; $SEALER_HOME/mirrors.yaml still applies under them. */
function mirrorFlags(m: Record<string, string> | undefined): string[] {
  return Object.entries(m ?? {}).map(([src, mirror]) => `${src}=${mirror}`);
}

export const PREVIEW_REPO = "localhost/sealer-preview";

/** localhost/sealer-preview/<repository of tag>:<16 hex of the content hash>. */
export function previewTag(tag: string, contentHash: string): string {
  const { parseReference } = require("../core/common/reference") as typeof import("../core/common/reference");
  const r = parseReference(tag);
  return `${PREVIEW_REPO}/${r.domain.replace(/[^a-z0-9]+/g, "-")}/${r.path}:${contentHash.replace(/^sha256:/, "").slice(0, 16)}`;
}

/** Builds (or finds, when this content was built before) the image under its preview name. */
async function previewBuild(
  inputs: ClusterImageInputs,
  contentHash: string,
): Promise<{ reference: string; digest: string; layers: string[] }> {
  const { normalizeReference } =
    require("../core/common/reference") as typeof import("../core/common/reference");
  const name = previewTag(inputs.tag, contentHash);
  const layout = store();
  await layout.init();
  let desc = await layout.resolve(name);
  if (!desc) {
    const { buildImage } = require("../core/image/builder") as BuilderModule;
    await buildImage({
      kubefile: kubefilePath(inputs),
      context: path.resolve(inputs.context),
      tag: name,
      buildArgs: inputs.buildArgs,
      labels: inputs.labels,
      platforms: inputs.platforms,
      buildMode: inputs.buildMode,
      registryMirrors: mirrorFlags(inputs.registryMirrors),
      allowIncomplete: inputs.allowIncomplete,
      resolveBase: (from) => previewOf(layout, from),
    });
    desc = await layout.resolve(name);
  }
  const { imageFacts } = require("../core/image/facts") as FactsModule;
  const facts = await imageFacts(layout, name);
  return {
    reference: normalizeReference(inputs.tag),
    digest: desc!.digest,
    layers: facts.layers.map((l) => l.digest),
  };
}

/**
 * The preview build of `image`'s repository, when this preview (or an earlier one not applied yet)
 * built it: a ClusterImage FROM another created in the same program must build on that, offline —
 * the base's real tag appears only at `up`. Preview names exist between a preview and the next
 * create/update of their image; with several, the latest build (manifest written last) wins.
 */
async function previewOf(layout: OciLayoutT, image: string): Promise<string | undefined> {
  const prefix = previewTag(image, "0").replace(/:[^:]*$/, ":");
  const mine = (await layout.listRefs()).filter((r) => r.ref.startsWith(prefix));
  // One stat per name, not one per comparison.
  const written = mine.map((r) => ({
    ref: r.ref,
    at: fs.statSync(layout.blobPath(r.descriptor.digest), { throwIfNoEntry: false })?.mtimeMs ?? 0,
  }));
  return written.sort((a, b) => b.at - a.at)[0]?.ref;
}

/** Removes the preview names of this image's repository (the blobs stay for the build cache). */
async function dropPreviewRefs(tag: string): Promise<void> {
  const layout = store();
  const prefix = previewTag(tag, "0").replace(/:[^:]*$/, ":");
  for (const { ref } of await layout.listRefs()) if (ref.startsWith(prefix)) await layout.removeRef(ref);
}

async function push(inputs: ClusterImageInputs, reference: string): Promise<void> {
  const { pushImage } = require("../core/registry/push") as PushModule;
  const layout = store();
  await pushImage(reference, {
    store: layout,
    ...(inputs.registryAuth ? { credentials: inputs.registryAuth } : {}),
  });
}

function outputsOf(
  inputs: ClusterImageInputs,
  built: Omit<ClusterImageOutputs, keyof ClusterImageInputs>,
): Record<string, unknown> {
  return compact({ ...inputs, registryAuth: secret(inputs.registryAuth), ...built });
}

/** The core's hints name `sealer build` flags; a Pulumi user sets the resource's inputs instead. */
const FLAG_HINTS: Array<[string, string]> = [
  ["build with --allow-incomplete", "set allowIncomplete: true"],
  ["configure a --registry-mirror", "add a registryMirrors entry"],
];

/**
 * A failed build as the user sees it: the engine shows only the message (create/update), or check
 * reports it as a failure of `context`; either way it names the image and its Kubefile.
 */
function buildFailure(inputs: ClusterImageInputs, err: unknown): Error {
  const msg = FLAG_HINTS.reduce((m, [flag, input]) => m.replaceAll(flag, input), errorMessage(err));
  const { UserError } = require("../core/errors") as typeof import("../core/errors");
  return new UserError(`building ${inputs.tag} from ${kubefilePath(inputs)}: ${msg}`);
}

/** Build, then push when asked. A push failure after a good build keeps the build in state. */
async function buildAndPush(
  id: string | undefined,
  inputsIn: ClusterImageInputs,
): Promise<{ id: string; outs: Record<string, unknown> }> {
  let built: Awaited<ReturnType<typeof build>>;
  let inputs = inputsIn;
  try {
    built = await build(inputs);
    // A base the build had to pull is in the store now: record the hash the next check computes.
    inputs = { ...inputs, contentHash: await contentHashOf(inputs) };
  } catch (err) {
    throw buildFailure(inputs, err);
  }
  const rid = id ?? built.reference;
  if (inputs.push) {
    try {
      await push(inputs, built.reference);
      built.pushed = true;
    } catch (err) {
      throw new PartialStateError(
        rid,
        outputsOf(inputs, built),
        [`built ${built.reference}@${built.digest} but the push failed: ${errorMessage(err)}`],
        { cause: err },
      );
    }
  }
  return { id: rid, outs: outputsOf(inputs, built) };
}

export const provider = {
  async check(_olds: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    // Keep secret inputs in their envelope if the engine sent them so.
    const withSecrets = (inputs: Record<string, unknown>): Record<string, unknown> => {
      if (newsRaw?.registryAuth !== undefined && newsRaw.registryAuth !== null)
        inputs.registryAuth = newsRaw.registryAuth;
      return inputs;
    };
    // The property an unexpected exception is reported on: the one being checked when it came.
    let checking = "context";
    let inputs: Record<string, unknown> = {};
    try {
      // An input set to null is an input not set.
      const news = Object.fromEntries(
        Object.entries(reveal(isPlainObject(newsRaw) ? newsRaw : {})).filter(([, v]) => v !== null),
      ) as unknown as ClusterImageInputs;
      inputs = { ...news } as unknown as Record<string, unknown>;
      const failures = validateInputs(news);
      if (failures.length > 0) return { inputs: withSecrets(inputs), failures };
      inputs = normaliseInputs(news) as unknown as Record<string, unknown>;
      // Unknown context/Kubefile/args during preview: the hash is unknown too (shown as computed).
      // An unknown base digest (its ClusterImage changes in this update) means "may change".
      const hashable = [
        news.context,
        news.kubefile,
        news.buildArgs,
        news.labels,
        news.platforms,
        news.buildMode,
        news.allowIncomplete,
        news.baseDigest,
      ];
      checking = "kubefile";
      if (containsUnknown(hashable)) inputs.contentHash = UNKNOWN;
      else {
        try {
          inputs.contentHash = await contentHashOf(news);
        } catch (err) {
          return {
            inputs: withSecrets(inputs),
            failures: [{ property: "kubefile", reason: problemText(err, WHO) }],
          };
        }
      }
      checking = "context";
      // A mirror not known yet (another resource's output) cannot be pulled from: no preview build.
      const canBuild = !containsUnknown([inputs.contentHash, news.tag, news.registryMirrors]);
      if (news.buildOnPreview !== false && canBuild) {
        // What would fail at `up` fails the preview, with the same message and no stack.
        try {
          Object.assign(inputs, await previewBuild(news, inputs.contentHash as string));
        } catch (err) {
          const shown = isJsError(err) ? new Error(problemText(err, WHO)) : err;
          return {
            inputs: withSecrets(inputs),
            failures: [{ property: "context", reason: buildFailure(news, shown).message }],
          };
        }
      }
      return { inputs: withSecrets(inputs) };
    } catch (err) {
      return {
        inputs: withSecrets(inputs),
        failures: [
          { property: checking, reason: `${checking} could not be checked: ${problemText(err, WHO)}` },
        ],
      };
    }
  },

  async diff(id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    const olds = storedState(id, oldsRaw, STATE_FIELDS) as Record<string, unknown>;
    const news = reveal(newsRaw);
    const changed = changedKeys(olds, news, [...BUILD_KEYS, "buildMode", "platforms", "providerVersion"]);
    const pushNow = news.push === true && olds.pushed !== true;
    // Mirrors change where images come from, not the image; but a new mirror may fill the holes.
    const refill =
      Array.isArray(olds.incompleteImages) &&
      olds.incompleteImages.length > 0 &&
      changedKeys(olds, news, ["registryMirrors"]).length > 0;
    const unknown = containsUnknown([news.tag, news.contentHash]);
    let storeLost = false;
    if (changed.length === 0 && !unknown && typeof olds.reference === "string") {
      // The local store is part of this resource: an image removed behind our back is rebuilt.
      const desc = await store()
        .resolve(olds.reference)
        .catch(() => undefined);
      storeLost = desc?.digest !== olds.digest;
    }
    return {
      changes: changed.length > 0 || pushNow || refill || unknown || storeLost,
      replaces: [] as string[],
      deleteBeforeReplace: false,
    };
  },

  async create(inputsRaw: Record<string, unknown>) {
    const inputs = reveal(inputsRaw) as unknown as ClusterImageInputs;
    const res = await buildAndPush(undefined, inputs);
    await dropPreviewRefs(inputs.tag);
    return res;
  },

  async read(id: string, props: Record<string, unknown>) {
    const p = storedState(id, props, ["reference"]);
    const desc = p.reference ? await store().resolve(p.reference) : undefined;
    return { id, props: { ...props, digest: desc?.digest ?? "" } };
  },

  async update(id: string, oldsRaw: Record<string, unknown>, newsRaw: Record<string, unknown>) {
    // Before building: a state this update could not clean up after is reported, not half-done.
    const olds = storedState(id, oldsRaw, STATE_FIELDS);
    const news = reveal(newsRaw) as unknown as ClusterImageInputs;
    const { outs } = await buildAndPush(id, news);
    await dropPreviewRefs(news.tag);
    if (olds.tag && olds.tag !== news.tag) await dropPreviewRefs(olds.tag);
    // A new tag: the old name no longer belongs to this resource.
    if (olds.reference && olds.reference !== outs.reference)
      await removeOurRef(olds.reference, olds.digest ?? "");
    return { outs };
  },

  async delete(id: string, propsRaw: Record<string, unknown>) {
    const p = storedState(id, propsRaw, STATE_FIELDS);
    if (p.reference && p.digest) await removeOurRef(p.reference, p.digest);
    if (p.tag) await dropPreviewRefs(p.tag);
  },
};

/** Removes the tag from the local store only if it still names the image this resource built. */
async function removeOurRef(reference: string, digest: string): Promise<void> {
  const layout = store();
  const desc = await layout.resolve(reference);
  if (desc && desc.digest === digest) await layout.removeRef(reference);
}
