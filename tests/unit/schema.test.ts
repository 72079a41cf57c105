/**
 * schema.json, the SDK types and the Clusterfile zod schemas describe the same resources.
 * descriptors.ts is the one source: schema.json must equal what it generates; the SDK Args
 * interfaces must have exactly its inputs (checked at compile time through `satisfies`, and at
 * run time against the table); the SDK output properties must be its outputs; the Cluster ssh
 * object must map onto the Clusterfile's ssh fields.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { objectTypes, resources, secretOutputNames } from "../../provider/shared/descriptors";
import { buildSchema, schemaText } from "../../provider/shared/schema";
import { clusterV2SpecSchema, sshSchema } from "../../provider/core/clusterfile/schema";
import type { Cluster, ClusterArgs, ClusterImage, ClusterImageArgs, Infra, InfraArgs } from "../../sdk";
import type { AlicloudInfra, CachedImage, LocalInfra, NodeGroup, RegistryAuth, Ssh } from "../../sdk";
import type { ClusterImageInputs, ClusterImageOutputs } from "../../provider/resources/cluster-image";
import { packageRoot } from "../../provider/core/package-info";

const repoRoot = (): string => packageRoot(__dirname);

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
type Keys<T> = Record<keyof T, true>;
type Req<T> = Record<RequiredKeys<T>, true>;
/** Output properties a class declares beyond CustomResource's own. */
type OutputKeys<C> = Record<
  Exclude<
    { [K in keyof C]: C[K] extends pulumi.Output<unknown> ? K : never }[keyof C],
    keyof pulumi.CustomResource
  >,
  true
>;

// Compile-time lists: `satisfies` fails the build when an interface gains or loses a key.
const sdk = {
  ClusterImage: {
    args: {
      context: true,
      tag: true,
      kubefile: true,
      buildArgs: true,
      labels: true,
      platforms: true,
      buildMode: true,
      noCache: true,
      push: true,
      registryAuth: true,
      registryMirrors: true,
      allowIncomplete: true,
      baseDigest: true,
      buildOnPreview: true,
    } satisfies Keys<ClusterImageArgs>,
    required: { context: true, tag: true } satisfies Req<ClusterImageArgs>,
    outputs: {
      reference: true,
      digest: true,
      layers: true,
      metadata: true,
      containerImages: true,
      cachedImages: true,
      incompleteImages: true,
      pushed: true,
      contentHash: true,
      tag: true,
    } satisfies OutputKeys<ClusterImage>,
    sdkOnly: [] as string[],
  },
  Infra: {
    args: {
      provider: true,
      name: true,
      masters: true,
      nodes: true,
      local: true,
      alicloud: true,
      ssh: true,
      tags: true,
    } satisfies Keys<InfraArgs>,
    required: { provider: true, masters: true } satisfies Req<InfraArgs>,
    outputs: {
      masterHosts: true,
      workerHosts: true,
      sshUser: true,
      sshPrivateKey: true,
      sshPassword: true,
      state: true,
      masterIps: true,
      workerIps: true,
      sshLogin: true,
      hostIds: true,
    } satisfies OutputKeys<Infra>,
    // Getters derived from outputs (feed Cluster), not properties.
    sdkOnly: ["masterIps", "workerIps", "sshLogin", "hostIds"],
  },
  Cluster: {
    args: {
      name: true,
      image: true,
      imageDigest: true,
      masters: true,
      workers: true,
      hostIds: true,
      infra: true,
      ssh: true,
      clusterfile: true,
      env: true,
      dataRoot: true,
    } satisfies Keys<ClusterArgs>,
    required: { image: true } satisfies Req<ClusterArgs>,
    outputs: {
      clusterName: true,
      applied: true,
      steps: true,
      pending: true,
      kubeconfig: true,
      joinSecrets: true,
      plan: true,
    } satisfies OutputKeys<Cluster>,
    sdkOnly: ["infra"],
  },
};

const objectSdk = {
  Ssh: { user: true, password: true, privateKey: true, passphrase: true, port: true } satisfies Keys<Ssh>,
  RegistryAuth: { username: true, password: true } satisfies Keys<RegistryAuth>,
  NodeGroup: {
    count: true,
    instanceType: true,
    cpu: true,
    memoryGiB: true,
    systemDiskGiB: true,
    dataDisksGiB: true,
  } satisfies Keys<NodeGroup>,
  LocalInfra: { subnet: true, sudoUser: true } satisfies Keys<LocalInfra>,
  CachedImage: { image: true, digest: true, platform: true, app: true } satisfies Keys<CachedImage>,
  AlicloudInfra: {
    region: true,
    zone: true,
    vpcId: true,
    vswitchId: true,
    securityGroupId: true,
    cidr: true,
    sshCidr: true,
    eip: true,
    imageId: true,
    keyPairName: true,
    accessKeyId: true,
    accessKeySecret: true,
    ecsEndpoint: true,
    vpcEndpoint: true,
    batchSize: true,
    rateLimitPerMinute: true,
    waitForSsh: true,
  } satisfies Keys<AlicloudInfra>,
};

// The ClusterImage provider's own interfaces (what check, create and update use): the SDK's args
// plus what check computes; the SDK's outputs minus the echoed inputs it declares.
const { contentHash: _hash, tag: _tag, ...providerImageOutputs } = sdk.ClusterImage.outputs;
const providerClusterImage = {
  inputs: {
    ...sdk.ClusterImage.args,
    contentHash: true,
    providerVersion: true,
  } satisfies Keys<ClusterImageInputs>,
  outputs: providerImageOutputs satisfies Keys<Omit<ClusterImageOutputs, keyof ClusterImageInputs>>,
};

/** Inputs the provider computes in check or the SDK sets itself (never in the Args). */
const COMPUTED: Record<string, string[]> = {
  ClusterImage: ["contentHash", "providerVersion"],
  Infra: ["providerVersion"],
  Cluster: ["plan", "providerVersion", "defaultName"],
};

describe("schema.json and the SDK agree with the resource descriptions", () => {
  it("the committed schema.json is the generated one (run `sealer pulumi schema > schema.json` after changing descriptors.ts)", () => {
    const root = repoRoot();
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
    assert.equal(fs.readFileSync(path.join(root, "schema.json"), "utf8"), schemaText(pkg.version));
  });

  it("has the three resources with sealer:index tokens, descriptions everywhere, and resolvable type refs", () => {
    const s = buildSchema("0.0.0") as {
      name: string;
      resources: Record<string, Record<string, unknown>>;
      types: Record<string, unknown>;
    };
    assert.equal(s.name, "sealer");
    assert.deepEqual(Object.keys(s.resources), [
      "sealer:index:Cluster",
      "sealer:index:ClusterImage",
      "sealer:index:Infra",
    ]);
    const text = JSON.stringify(s);
    for (const m of text.matchAll(/"#\/types\/([^"]+)"/g)) assert.ok(s.types[m[1]!], `dangling ref ${m[1]}`);
    const walk = (props: Record<string, { description?: string }>, where: string) => {
      for (const [k, p] of Object.entries(props))
        assert.ok(p.description, `${where}.${k} has no description`);
    };
    for (const [tok, r] of Object.entries(s.resources)) {
      walk(r.inputProperties as Record<string, { description?: string }>, `${tok} input`);
      walk(r.properties as Record<string, { description?: string }>, `${tok} output`);
    }
  });

  for (const [name, d] of Object.entries(resources) as Array<
    [keyof typeof sdk, (typeof resources)[keyof typeof resources]]
  >) {
    it(`${name}: SDK Args keys = schema inputs (minus computed), required the same`, () => {
      const want = Object.keys(d.inputs)
        .filter((k) => !COMPUTED[name]!.includes(k))
        .sort();
      const have = Object.keys(sdk[name].args)
        .filter((k) => !sdk[name].sdkOnly.includes(k))
        .sort();
      assert.deepEqual(have, want);
      const req = Object.keys(d.inputs)
        .filter((k) => d.inputs[k]!.required)
        .sort();
      assert.deepEqual(Object.keys(sdk[name].required).sort(), req);
    });

    it(`${name}: no output shares a name with an input (inputs are echoed into the outputs)`, () => {
      assert.deepEqual(
        Object.keys(d.outputs).filter((k) => k in d.inputs),
        [],
      );
    });

    it(`${name}: SDK output properties are schema properties (inputs echoed + outputs)`, () => {
      const props = new Set([...Object.keys(d.inputs), ...Object.keys(d.outputs)]);
      for (const k of Object.keys(sdk[name].outputs))
        if (!sdk[name].sdkOnly.includes(k)) assert.ok(props.has(k), `${name}.${k} is not in the schema`);
      for (const k of Object.keys(d.outputs))
        assert.ok(k in sdk[name].outputs, `${name} SDK class lacks output ${k}`);
    });
  }

  it("ClusterImage: the provider's input and output interfaces have exactly the schema's properties", () => {
    const d = resources.ClusterImage;
    assert.deepEqual(Object.keys(providerClusterImage.inputs).sort(), Object.keys(d.inputs).sort());
    assert.deepEqual(Object.keys(providerClusterImage.outputs).sort(), Object.keys(d.outputs).sort());
    // Mirror logins come from the credential store: no mirror input is secret.
    assert.equal(d.inputs.registryMirrors?.secret, undefined);
  });

  it("object types: SDK interfaces have exactly the schema's properties", () => {
    for (const [name, keys] of Object.entries(objectSdk)) {
      assert.deepEqual(Object.keys(keys).sort(), Object.keys(objectTypes[name]!.properties).sort(), name);
    }
  });

  it("secret outputs: credentials, keys, kubeconfig, join material, and inputs holding them", () => {
    assert.deepEqual(secretOutputNames(resources.ClusterImage), ["registryAuth"]);
    assert.deepEqual(secretOutputNames(resources.Infra), ["alicloud", "ssh", "sshPassword", "sshPrivateKey"]);
    assert.deepEqual(secretOutputNames(resources.Cluster), ["joinSecrets", "kubeconfig", "ssh"]);
    const s = buildSchema("0.0.0") as {
      types: Record<string, { properties: Record<string, { secret?: boolean }> }>;
    };
    const secretProps = (t: string) =>
      Object.entries(s.types[`sealer:index:${t}`]!.properties)
        .filter(([, p]) => p.secret)
        .map(([k]) => k);
    assert.deepEqual(secretProps("Ssh"), ["passphrase", "password", "privateKey"]);
    assert.deepEqual(secretProps("RegistryAuth"), ["password"]);
  });

  it("Cluster ssh maps onto the Clusterfile's ssh fields; dataRoot and env are Clusterfile fields", () => {
    // Pulumi name -> Clusterfile (zod) name; `pk` (a key file path) and `encrypted` (sealer's
    // encrypted-password marker) are Clusterfile-only.
    const map: Record<string, string> = {
      user: "user",
      password: "passwd",
      privateKey: "pkData",
      passphrase: "pkPasswd",
      port: "port",
    };
    assert.deepEqual(Object.keys(map).sort(), Object.keys(objectTypes.Ssh!.properties).sort());
    assert.deepEqual([...Object.values(map), "pk", "encrypted"].sort(), Object.keys(sshSchema.shape).sort());
    const spec = Object.keys(clusterV2SpecSchema.shape);
    for (const k of ["dataRoot", "env", "image", "ssh"]) {
      assert.ok(spec.includes(k), `Clusterfile spec has no ${k}`);
      assert.ok(k in resources.Cluster.inputs, `Cluster has no input ${k}`);
    }
  });
});
