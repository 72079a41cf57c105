/**
 * The one description of the three resources: property names, types, required, secret, and
 * documentation. schema.json is generated from it (schema.ts), the SDK classes take their output
 * names and secret lists from it, and tests/unit/schema.test.ts checks that the SDK Args
 * interfaces and the committed schema.json agree with it.
 */

export type PropType =
  | { kind: "string"; enum?: readonly string[] }
  | { kind: "integer" }
  | { kind: "number" }
  | { kind: "boolean" }
  | { kind: "any" }
  | { kind: "array"; items: PropType }
  | { kind: "map"; values: PropType }
  | { kind: "ref"; name: string }
  | { kind: "oneOf"; of: readonly PropType[] };

export interface PropDesc {
  type: PropType;
  description: string;
  required?: boolean;
  secret?: boolean;
  /** Changing it replaces the resource (delete + create). */
  replaceOnChange?: boolean;
}

export interface ObjectTypeDesc {
  description: string;
  properties: Record<string, PropDesc>;
}

export interface ResourceDesc {
  /** Schema token, e.g. sealer:index:Cluster. */
  token: string;
  /** Name of the dynamic resource type (shows as pulumi-nodejs:dynamic/sealer:<typeName>). */
  typeName: string;
  description: string;
  inputs: Record<string, PropDesc>;
  /** Outputs the provider computes (inputs are echoed as outputs too). */
  outputs: Record<string, PropDesc>;
}

export const str: PropType = { kind: "string" };
export const int: PropType = { kind: "integer" };
export const bool: PropType = { kind: "boolean" };
export const anyT: PropType = { kind: "any" };
export const arr = (items: PropType): PropType => ({ kind: "array", items });
export const mapOf = (values: PropType): PropType => ({ kind: "map", values });
export const ref = (name: string): PropType => ({ kind: "ref", name });
export const oneOf = (...of: PropType[]): PropType => ({ kind: "oneOf", of });
export const enumOf = (...values: string[]): PropType => ({ kind: "string", enum: values });

export const PACKAGE = "sealer";
export const DYNAMIC_MODULE = "sealer";

const providerVersion: PropDesc = {
  type: str,
  description:
    "Version of the provider code (package version + hash of the implementation). Set by the SDK; a change makes existing resources pass through the new code.",
};

export const objectTypes: Record<string, ObjectTypeDesc> = {
  Host: {
    description: "A host of the cluster.",
    properties: {
      id: { type: str, description: "Instance ID (cloud) or node name (local)." },
      privateIp: { type: str, description: "Address the cluster uses.", required: true },
      publicIp: { type: str, description: "Public address, when the host has one." },
      role: { type: enumOf("master", "node"), description: "master or node.", required: true },
      identity: {
        type: str,
        description:
          "What changes when the host is made anew: the instance ID (cloud), or the node name and its SSH host key's fingerprint (local). A Cluster fed from an Infra reinstalls a host whose identity changed.",
      },
    },
  },
  Ssh: {
    description: "How to log in to the hosts.",
    properties: {
      user: { type: str, description: "Login user (default root). A non-root user needs sudo." },
      password: { type: str, description: "Password (also used for sudo).", secret: true },
      privateKey: { type: str, description: "Private key text (PEM/OpenSSH).", secret: true },
      passphrase: { type: str, description: "Passphrase of the private key.", secret: true },
      port: { type: int, description: "SSH port (default 22)." },
    },
  },
  RegistryAuth: {
    description: "Credentials for pushing to a registry.",
    properties: {
      username: { type: str, description: "User name.", required: true },
      password: { type: str, description: "Password or token.", required: true, secret: true },
    },
  },
  NodeGroup: {
    description: "How many hosts of one role and what they look like.",
    properties: {
      count: { type: int, description: "Number of hosts.", required: true },
      instanceType: { type: str, description: "Cloud instance type (alicloud)." },
      cpu: {
        type: int,
        description: "vCPUs, when no instanceType is given (alicloud): the first type in stock that fits.",
      },
      memoryGiB: { type: int, description: "Memory in GiB, when no instanceType is given (alicloud)." },
      systemDiskGiB: { type: int, description: "System disk size (alicloud)." },
      dataDisksGiB: { type: arr(int), description: "Data disk sizes (alicloud)." },
    },
  },
  LocalInfra: {
    description: "Local nodes: network namespaces with their own sshd on this machine (root required).",
    properties: {
      subnet: {
        type: str,
        description: "/24 prefix for the nodes, e.g. 10.231.7 (default: derived from the name).",
      },
      sudoUser: { type: str, description: "Also create this non-root user with sudo on every node." },
    },
  },
  AlicloudInfra: {
    description: "Alibaba Cloud ECS settings.",
    properties: {
      region: { type: str, description: "Region, e.g. cn-hangzhou.", required: true },
      zone: { type: str, description: "Zone, e.g. cn-hangzhou-h." },
      vpcId: {
        type: str,
        description: "Existing VPC (for example from @pulumi/alicloud); created when absent.",
      },
      vswitchId: { type: str, description: "Existing VSwitch; created when absent." },
      securityGroupId: { type: str, description: "Existing security group; created when absent." },
      cidr: { type: str, description: "CIDR of a VPC created for the cluster (default 172.16.0.0/16)." },
      sshCidr: {
        type: str,
        description: "CIDR allowed to reach 22 and 6443 when the security group is created (required then).",
      },
      eip: { type: bool, description: "Attach an EIP to master0." },
      imageId: { type: str, description: "OS image ID of the instances.", required: true },
      keyPairName: {
        type: str,
        description: "ECS key pair to install on the instances (else the ssh password).",
      },
      accessKeyId: {
        type: str,
        description: "Access key ID (else ALIBABA_CLOUD_ACCESS_KEY_ID or ~/.aliyun/config.json).",
      },
      accessKeySecret: { type: str, description: "Access key secret.", secret: true },
      ecsEndpoint: { type: str, description: "ECS API endpoint override (tests)." },
      vpcEndpoint: { type: str, description: "VPC API endpoint override (tests)." },
      batchSize: { type: int, description: "Instances per RunInstances call (1..100, default 100)." },
      rateLimitPerMinute: { type: int, description: "API calls per minute at most." },
      waitForSsh: {
        type: bool,
        description: "Wait until SSH answers on every instance before finishing (default true).",
      },
    },
  },
  ImageMetadata: {
    description: "What the image is (from its sealer metadata).",
    properties: {
      imageType: {
        type: enumOf("kube-installer", "app-installer"),
        description: "kube-installer or app-installer.",
        required: true,
      },
      kubeVersion: { type: str, description: "Kubernetes version, when the image carries one." },
      containerRuntime: { type: str, description: "docker or containerd." },
      apps: { type: arr(ref("AppMetadata")), description: "Applications in the image.", required: true },
      launch: { type: anyT, description: "LAUNCH app names / CMDS / legacy CMD." },
      env: { type: mapOf(str), description: "ENV baked into the image." },
      platforms: { type: arr(str), description: "Platforms present.", required: true },
    },
  },
  CachedImage: {
    description: "A container image cached inside a cluster image (full build mode).",
    properties: {
      image: {
        type: str,
        description:
          "Original reference, as the manifests/charts name it (also when pulled through a mirror).",
        required: true,
      },
      digest: { type: str, description: "Digest of the cached manifest." },
      platform: { type: str, description: "Platform cached, e.g. linux/amd64." },
      app: { type: str, description: "App that needs it, when known." },
    },
  },
  AppMetadata: {
    description: "An application inside an image.",
    properties: {
      name: { type: str, description: "App name.", required: true },
      type: { type: str, description: "helm, kube, shell or other.", required: true },
    },
  },
  Step: {
    description: "A step of a cluster plan.",
    properties: {
      id: { type: str, description: "Stable step id, e.g. join-worker:10.0.0.5.", required: true },
      kind: { type: str, description: "Step kind.", required: true },
      hosts: { type: arr(str), description: "Target hosts.", required: true },
      reason: { type: str, description: "Why the step runs.", required: true },
    },
  },
};

export const resources: Record<"ClusterImage" | "Infra" | "Cluster", ResourceDesc> = {
  ClusterImage: {
    token: "sealer:index:ClusterImage",
    typeName: "ClusterImage",
    description:
      "A cluster image built from a Kubefile into the local store (and optionally pushed). Rebuilt exactly when the build inputs (context content, Kubefile, args, base image digest) change.",
    inputs: {
      context: { type: str, description: "Build context directory.", required: true },
      tag: { type: str, description: "Image name, e.g. my-registry:5000/team/app:1.0.", required: true },
      kubefile: { type: str, description: "Kubefile path (default <context>/Kubefile)." },
      buildArgs: { type: mapOf(str), description: "ARG values (--build-arg)." },
      labels: { type: mapOf(str), description: "Extra labels (--label)." },
      platforms: {
        type: arr(str),
        description: "Platforms, e.g. [linux/amd64, linux/arm64] (default: this machine's).",
      },
      buildMode: {
        type: enumOf("full", "lite"),
        description: "full caches container images into the image; lite does not.",
      },
      noCache: { type: bool, description: "Ignore the build cache." },
      push: { type: bool, description: "Push the image to its registry after building." },
      registryAuth: {
        type: ref("RegistryAuth"),
        description: "Credentials for the push (else the stored login).",
      },
      registryMirrors: {
        type: mapOf(str),
        description:
          "Source registry -> mirror host[:port][/prefix] for pulling container images in full mode (--registry-mirror; `docker.io` covers short names). No fallback to the source; $SEALER_HOME/mirrors.yaml applies for other registries; a mirror's login comes from `sealer login`. Not part of the content hash: a mirror changes where images come from, not the image (a change rebuilds only an incomplete image).",
      },
      allowIncomplete: {
        type: bool,
        description:
          "Full mode: build even when a chart cannot be rendered or a container image cannot be pulled, recording them in incompleteImages (--allow-incomplete). Default false: the build fails naming each.",
      },
      baseDigest: {
        type: str,
        description:
          "Manifest digest of the FROM image, when another ClusterImage of the program builds it (pass its digest): part of the content hash, so a changed base rebuilds this image; unknown during a preview means it may change. Default: the FROM image's digest in the local store.",
      },
      buildOnPreview: {
        type: bool,
        description:
          "Build during preview too (default true): the preview then knows the new digest, so a Cluster's preview lists the exact steps. The build goes to a preview name in the local store (localhost/sealer-preview/...), removed by the next create/update.",
      },
      contentHash: {
        type: str,
        description:
          "Computed in check: sha256 over the context files, the Kubefile, the build settings and the FROM image's digest. Do not set.",
      },
      providerVersion,
    },
    outputs: {
      reference: { type: str, description: "Normalised image reference.", required: true },
      digest: { type: str, description: "Manifest (or index) digest.", required: true },
      layers: { type: arr(str), description: "Layer digests, base first.", required: true },
      metadata: {
        type: ref("ImageMetadata"),
        description: "Image type, apps, launch, env, platforms.",
        required: true,
      },
      containerImages: {
        type: arr(str),
        description: "Container images cached in the image (original references).",
        required: true,
      },
      cachedImages: {
        type: arr(ref("CachedImage")),
        description: "Container images cached in the image, each with its digest and platform.",
        required: true,
      },
      incompleteImages: {
        type: arr(str),
        description:
          "With allowIncomplete: what could not be cached, and why (chart, file or image named). Empty when complete.",
      },
      pushed: { type: bool, description: "Whether the last build was pushed.", required: true },
    },
  },
  Infra: {
    typeName: "Infra",
    token: "sealer:index:Infra",
    description: "Hosts for a cluster: local network-namespace nodes, or Alibaba Cloud ECS instances.",
    inputs: {
      provider: {
        type: enumOf("local", "alicloud"),
        description: "local or alicloud.",
        required: true,
        replaceOnChange: true,
      },
      name: {
        type: str,
        description: "Name used for tags and node names (default: the resource name).",
        replaceOnChange: true,
      },
      masters: { type: ref("NodeGroup"), description: "Masters.", required: true },
      nodes: { type: ref("NodeGroup"), description: "Workers." },
      local: { type: ref("LocalInfra"), description: "Settings of the local provider." },
      alicloud: { type: ref("AlicloudInfra"), description: "Settings of the alicloud provider." },
      ssh: {
        type: ref("Ssh"),
        description: "Login for the created hosts (a key pair is generated when none is given).",
      },
      tags: { type: mapOf(str), description: "Tags on every cloud resource." },
      providerVersion,
    },
    outputs: {
      masterHosts: { type: arr(ref("Host")), description: "Master hosts, master0 first.", required: true },
      workerHosts: { type: arr(ref("Host")), description: "Worker hosts.", required: true },
      sshUser: { type: str, description: "Login user of the hosts.", required: true },
      sshPrivateKey: {
        type: str,
        description: "Private key for the hosts (when generated or given).",
        secret: true,
      },
      sshPassword: { type: str, description: "Password for the hosts (when set).", secret: true },
      state: { type: anyT, description: "Provider state (created IDs) used for scale and delete." },
    },
  },
  Cluster: {
    typeName: "Cluster",
    token: "sealer:index:Cluster",
    description:
      "A Kubernetes cluster run from a cluster image onto hosts over SSH. Updates run only the steps the change affects; the preview lists them in `plan`.",
    inputs: {
      name: {
        type: str,
        description:
          "Cluster name (default: the Clusterfile's, else the resource name). Changing it replaces the cluster.",
        replaceOnChange: true,
      },
      defaultName: {
        type: str,
        description:
          "Set by the SDK to the resource name: the cluster name when neither `name` nor the Clusterfile gives one. A cluster keeps the name it was created with.",
      },
      image: {
        type: str,
        description: "Image reference (for example ClusterImage.reference).",
        required: true,
      },
      imageDigest: {
        type: str,
        description:
          "Expected image digest (for example ClusterImage.digest): a rebuilt image with the same tag is a change.",
      },
      masters: {
        type: arr(str),
        description: "Master IPs, master0 first (override the Clusterfile's hosts).",
      },
      workers: { type: arr(str), description: "Worker IPs." },
      hostIds: {
        type: mapOf(str),
        description:
          "Host IP -> identity (Host.identity; set for you when `infra` is given). A host whose identity changed was made anew: nothing recorded on it holds, so its steps run again (all of them when it is master0).",
      },
      ssh: { type: ref("Ssh"), description: "Login for the hosts (overrides the Clusterfile's ssh)." },
      clusterfile: {
        type: oneOf(str, anyT),
        description:
          "Clusterfile as YAML text or as an object (Cluster document + Config/Plugin/kubeadm documents).",
      },
      env: { type: mapOf(str), description: "Cluster env (overrides the Clusterfile's env)." },
      dataRoot: {
        type: str,
        description: "Data root on the nodes (default /var/lib/sealer). Changing it replaces the cluster.",
        replaceOnChange: true,
      },
      plan: {
        type: arr(str),
        description:
          "Computed in check: the steps the next update will run (shown by previews), one line each, then `plan digest: sha256:…` (what `sealer plan` prints for the same state). A replacement lists the old cluster's destroy steps, then the new install. Do not set.",
      },
      providerVersion,
    },
    outputs: {
      clusterName: { type: str, description: "The cluster name in use.", required: true },
      applied: {
        type: anyT,
        description: "Applied state: image, hosts and the key of every step done.",
        required: true,
      },
      steps: { type: arr(ref("Step")), description: "Steps the last create/update ran.", required: true },
      pending: {
        type: arr(ref("Step")),
        description: "Steps still to run after a failed create/update (empty when done).",
        required: true,
      },
      kubeconfig: { type: str, description: "admin kubeconfig.", secret: true },
      joinSecrets: { type: anyT, description: "Join token, certificate key and CA hash.", secret: true },
    },
  },
};

/** Secret output names of a resource: its secret outputs plus its secret top-level inputs. */
export function secretOutputNames(r: ResourceDesc): string[] {
  const names = new Set<string>();
  for (const [k, p] of Object.entries(r.outputs)) if (p.secret) names.add(k);
  for (const [k, p] of Object.entries(r.inputs)) {
    if (p.secret) names.add(k);
    // An input object holding a secret member (ssh, registryAuth) is echoed as a whole: keep it secret.
    if (
      p.type.kind === "ref" &&
      Object.values(objectTypes[p.type.name]?.properties ?? {}).some((x) => x.secret)
    )
      names.add(k);
  }
  return [...names].sort();
}
