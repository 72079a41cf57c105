/**
 * Seeded generation of hostile and mutated Kubefiles and Clusterfiles for the fuzz test: real
 * shaped seeds, random mutations of them, and one input per class of failure found before
 * (NUL bytes, huge paths, ARG chains, glob stars, alias bombs, deep nesting, huge files, ...).
 * Pure and deterministic for a seed; nothing is committed.
 */

import { pick, rng } from "./random";

export interface FuzzInput {
  id: string;
  kind: "kubefile" | "clusterfile";
  /** The file's content; `bytes` for sizes that should not sit in a string twice. */
  text?: string;
  /** Write this many bytes of `fill` instead of `text` (a huge file). */
  huge?: { bytes: number; head: string; fill: string };
  /** Pass the path of a directory, or of a missing file, instead of a file. */
  special?: "directory" | "missing";
  note: string;
}

/** The image every Clusterfile seed runs; the fuzz test builds it first from BASE_KUBEFILE. */
export const BASE_IMAGE = "fuzz/base:1";
export const BASE_KUBEFILE = `FROM scratch
COPY app.yaml manifests/
APP web local://app.yaml
LAUNCH ["web"]
`;

/** Files the build context holds (relative path -> content). */
export const CONTEXT_FILES: Record<string, string> = {
  "app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
  "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
  "charts/web/values.yaml": "replicas: 1\n",
  "scripts/init.sh": "#!/bin/sh\necho init\n",
  "scripts/extra.sh": "#!/bin/sh\necho extra\n",
  "imgs/amd64/tool": "amd64\n",
  "imgs/arm64/tool": "arm64\n",
};

const KUBEFILE_SEEDS = [
  `# syntax=sealer
ARG VERSION=1.0
FROM scratch
ENV DOMAIN=example.com REPLICAS=2
LABEL team=infra version=$VERSION
COPY app.yaml manifests/
COPY scripts/*.sh scripts/
APP web local://app.yaml
APP Chart local://charts/web
APPENV web KEY=value OTHER="a b"
APPCMDS web ["kubectl apply -f app.yaml"]
LAUNCH ["web", "Chart"]
`,
  `FROM scratch
ARG NAME=demo
COPY ["app.yaml", "etc/\${NAME}.yaml"]
COPY imgs/\${ARCH}/tool bin/
CNI calico local://app.yaml
CSI openebs local://charts/web
KUBEVERSION >=v1.22.0 <1.30.0
CMDS ["kubectl apply -f etc/\${NAME}.yaml", "echo $DOMAIN"]
`,
  `FROM scratch
MAINTAINER ops <ops@example.com>
COPY . payload/
ENV A=1 \\
    B=2
LABEL "quoted key"=x
CMD kubectl apply -f manifests/
CMD echo done
`,
];

const CLUSTERFILE_SEEDS = [
  `apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: fuzz
spec:
  image: ${BASE_IMAGE}
  env: [PodCIDR=100.64.0.0/10, "CertSANs=a.example.com;10.0.0.9"]
  ssh: { user: root, passwd: pw-1, port: "22" }
  hosts:
    - ips: [ 10.20.0.2, 10.20.0.3 ]
      roles: [ master ]
      labels: { disk: ssd }
    - ips: [ 10.20.0.10 ]
      roles: [ node, db ]
      taints: [ "dedicated=db:NoSchedule" ]
      env: [ DataDir=/data ]
  registry:
    localRegistry: { domain: sea.hub, port: 5000 }
---
kind: Plugin
metadata: { name: modules }
spec: { type: SHELL, action: pre-init-host|post-install, scope: master|db, data: "modprobe br_netfilter" }
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata: { name: HOSTNAME }
spec:
  data: |
    10.20.0.2 master-a
    10.20.0.10 worker-a
---
kind: Config
metadata: { name: web-config }
spec: { path: application/apps/web/app.yaml, strategy: merge, process: value|toJson, data: "tier: web" }
---
kind: ClusterConfiguration
networking:
  podSubnet: 100.64.0.0/10
anchors: &base { a: 1, b: [1, 2] }
merged:
  <<: *base
  c: 3
`,
  `apiVersion: sealer.aliyun.com/v1alpha1
kind: Cluster
metadata:
  name: legacy
spec:
  image: ${BASE_IMAGE}
  provider: BAREMETAL
  ssh: { passwd: "******", user: root }
  network: { podCIDR: 100.64.0.0/10, svcCIDR: 10.96.0.0/22 }
  certSANS: [ aliyun-inc.com, 10.0.0.2 ]
  masters:
    count: 3
    ipList: [ 172.16.0.2 ]
  nodes:
    ipList: [ 172.16.0.5, 172.16.0.6 ]
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: SHELL
spec:
  action: PostInstall
  on: node-role.kubernetes.io/master=
  data: kubectl get nodes
`,
  `apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: small }
spec:
  image: ${BASE_IMAGE}
  hosts:
    - { ips: [ "fd00::2" ], roles: [ master ] }
---
apiVersion: sealer.io/v2
kind: Application
spec:
  launchApps: [ web ]
  configs:
    - name: web
      env: [ A=1 ]
`,
];

const HOSTILE_TOKENS = [
  "\0",
  "\u0000x",
  "\r",
  "\t",
  "\uFEFF",
  "\uD800",
  "💥",
  "${",
  "${A:-${B:-x}}",
  "$",
  "\\",
  '"',
  "'",
  "[",
  "]",
  "{",
  "}",
  "*",
  "&a",
  "*a",
  "<<: *a",
  "!!binary",
  "!!js/function",
  "!custom",
  "---",
  "...",
  "~",
  "null",
  "-1",
  "1e999",
  "0x1F",
  "99999999999999999999",
  "../../etc/passwd",
  "/etc/shadow",
  "local://../../x",
  "https://",
  "http://example.invalid/x",
  "[a-",
  "**/*",
  "x".repeat(300),
  "a/".repeat(3000),
  "#",
  ":",
  "- ",
  "? ",
  "|",
  ">-",
  "%YAML 1.1",
  "constructor",
  "__proto__",
  "toString",
];

/** One to four random edits of `text`. */
function mutate(r: () => number, text: string): string {
  let lines = text.split("\n");
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * lines.length);
    const line = lines[i] ?? "";
    switch (Math.floor(r() * 9)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, line);
        break;
      case 2: {
        const j = Math.floor(r() * lines.length);
        [lines[i], lines[j]] = [lines[j] ?? "", line];
        break;
      }
      case 3: {
        const at = Math.floor(r() * (line.length + 1));
        lines[i] = line.slice(0, at) + pick(r, HOSTILE_TOKENS) + line.slice(at);
        break;
      }
      case 4: {
        const words = line.split(" ");
        words[Math.floor(r() * words.length)] = pick(r, HOSTILE_TOKENS);
        lines[i] = words.join(" ");
        break;
      }
      case 5:
        lines = lines.slice(0, Math.max(1, i));
        break;
      case 6:
        lines[i] = (r() < 0.5 ? "  " : "") + line.trimStart();
        break;
      case 7: {
        const at = Math.floor(r() * (line.length + 1));
        lines[i] = line.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x3000)) + line.slice(at + 1);
        break;
      }
      default:
        lines[i] = line.toUpperCase();
    }
  }
  return lines.join(r() < 0.1 ? "\r\n" : "\n");
}

/** One input per known class of crash or hang, and their neighbours. */
function hostile(): FuzzInput[] {
  const k = (id: string, note: string, text: string): FuzzInput => ({ id, kind: "kubefile", text, note });
  const c = (id: string, note: string, text: string): FuzzInput => ({ id, kind: "clusterfile", text, note });
  const cluster = (image = BASE_IMAGE) =>
    `apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: h}\nspec:\n  image: ${image}\n  hosts: [{ips: [10.30.0.2], roles: [master]}]\n`;
  const argChain = Array.from({ length: 40 }, (_, i) => `ARG A${i + 1}=\${A${i}}\${A${i}}`).join("\n");
  const bomb = ["a: &a [x,x,x,x,x,x,x,x,x,x]"]
    .concat(
      "bcdefgh".split("").map((l, i) => `${l}: &${l} [${Array(10).fill(`*${"abcdefgh"[i]}`).join(",")}]`),
    )
    .join("\n");
  return [
    k("h-nul-run", "NUL byte in a RUN line", "FROM scratch\nRUN echo a\0b\n"),
    k("h-nul-copy-dest", "NUL byte in a COPY destination", "FROM scratch\nCOPY app.yaml etc/a\0b\n"),
    k("h-nul-app", "NUL byte in an APP source", "FROM scratch\nAPP web local://app\0.yaml\n"),
    k("h-long-path", "a 3 MB COPY destination", `FROM scratch\nCOPY app.yaml ${"d".repeat(3_000_000)}\n`),
    k(
      "h-long-dest-200k",
      "a 200 KB COPY destination",
      `FROM scratch\nCOPY app.yaml ${"d/".repeat(100_000)}\n`,
    ),
    k("h-long-name", "a 300-character file name", `FROM scratch\nCOPY app.yaml etc/${"n".repeat(300)}\n`),
    k(
      "h-arg-chain",
      "chained ARGs doubling 40 times",
      `FROM scratch\nARG A0=xxxxxxxxxx\n${argChain}\nRUN echo $A40\n`,
    ),
    k(
      "h-arg-chain-copy",
      "chained ARGs in a COPY",
      `FROM scratch\nARG A0=xxxxxxxxxx\n${argChain}\nCOPY app.yaml $A40\n`,
    ),
    k(
      "h-arg-fanout",
      "a 650 KB ARG copied into 50000 ENVs",
      `FROM scratch\nARG A0=xxxxxxxxxx\n${argChain.split("\n").slice(0, 16).join("\n")}\n${Array.from({ length: 50_000 }, (_, i) => `ENV B${i}=$A16`).join("\n")}\n`,
    ),
    k("h-glob-stars", "COPY glob of 5000 *", `FROM scratch\nCOPY ${"*".repeat(5000)}x .\n`),
    k(
      "h-glob-stars-200",
      "COPY glob of 200 * (a valid name length)",
      `FROM scratch\nCOPY ${"*".repeat(200)}x .\n`,
    ),
    k("h-glob-segments", "a glob in 100 path segments", `FROM scratch\nCOPY ${"*/".repeat(100)}x .\n`),
    k("h-app-stars", "APP source of 250 *", `FROM scratch\nAPP web local://${"*".repeat(250)}.yaml\n`),
    k("h-continuations", "100k continued lines", `FROM scratch\nRUN a \\\n${"b \\\n".repeat(100_000)}c\n`),
    k("h-long-instruction", "one 600 KB instruction", `FROM scratch\nLABEL a="${"v".repeat(600_000)}"\n`),
    k(
      "h-nested-default",
      "5000 nested ${A:-",
      `FROM scratch\nARG A\nCOPY app.yaml ${"${A:-".repeat(5000)}x${"}".repeat(5000)}\n`,
    ),
    k("h-many-vars", "100k variable references", `FROM scratch\nARG A=xx\nENV B=${"$A".repeat(100_000)}\n`),
    k(
      "h-binary",
      "binary garbage",
      String.fromCharCode(...Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    ),
    k("h-empty", "an empty Kubefile", ""),
    k("h-comments", "only comments", "# a\n# b\n"),
    k("h-bom-crlf", "BOM and CRLF", "\uFEFFFROM scratch\r\nCOPY app.yaml .\r\n"),
    k(
      "h-proto",
      "variables named like Object members",
      "FROM scratch\nARG __proto__=x\nCOPY app.yaml $constructor$toString\n",
    ),
    k("h-launch-dup", "LAUNCH of undeclared apps", 'FROM scratch\nLAUNCH ["a", "a", "b"]\n'),
    {
      id: "h-huge-kubefile",
      kind: "kubefile",
      huge: { bytes: 50 * 1024 * 1024, head: "FROM scratch\n", fill: "LABEL a=b\n" },
      note: "a 50 MB Kubefile",
    },
    { id: "h-kubefile-dir", kind: "kubefile", special: "directory", note: "-f names a directory" },
    { id: "h-kubefile-missing", kind: "kubefile", special: "missing", note: "-f names a missing file" },
    c(
      "h-alias-bomb",
      "YAML alias bomb in a kubeadm document",
      `${cluster()}---\nkind: ClusterConfiguration\n${bomb}\n`,
    ),
    c(
      "h-deep-flow",
      "20000 nested flow sequences",
      `${cluster()}---\nkind: ClusterConfiguration\nx: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`,
    ),
    c(
      "h-deep-150",
      "150 nested flow mappings",
      `${cluster()}---\nkind: InitConfiguration\nx: ${"{a: ".repeat(150)}1${"}".repeat(150)}\n`,
    ),
    c(
      "h-unquoted-stars",
      "an unquoted ****** password",
      cluster().replace("spec:\n", "spec:\n  ssh: {passwd: ******}\n"),
    ),
    c("h-bad-image", "a bad spec.image", cluster("UPPER/Case::tag")),
    c("h-bad-image-long", "a 1 MB spec.image", cluster("a".repeat(1_000_000))),
    c("h-image-nul", "NUL in spec.image", cluster("fuzz/base:1\0")),
    c("h-missing-image", "an image not in the store", cluster("fuzz/absent:1")),
    c("h-dup-keys", "duplicate keys", `${cluster()}  image: other:1\n`),
    c(
      "h-complex-key",
      "a mapping as a mapping key",
      cluster().replace("spec:\n", "spec:\n  { image: x }: 1\n"),
    ),
    c("h-tabs", "tab indentation", cluster().replace("  image", "\timage")),
    c("h-not-mapping", "a list at the top", "- a\n- b\n"),
    c("h-scalar", "a scalar document", "just text\n"),
    c("h-only-separators", "only ---", "---\n---\n"),
    c("h-empty-cf", "an empty Clusterfile", ""),
    c(
      "h-js-tag",
      "a !!js/function tag",
      `${cluster()}---\nkind: Config\nmetadata: {name: x}\nspec: {path: etc/a, data: !!js/function "function(){}"}\n`,
    ),
    c(
      "h-binary-tag",
      "a !!binary value",
      `${cluster()}---\nkind: Config\nmetadata: {name: x}\nspec: {path: etc/a, data: !!binary aGVsbG8=}\n`,
    ),
    c(
      "h-huge-int",
      "a huge port",
      cluster().replace("spec:\n", "spec:\n  ssh: {port: 99999999999999999999999}\n"),
    ),
    c(
      "h-proto-keys",
      "__proto__ keys",
      cluster().replace("spec:\n", "spec:\n  __proto__: {polluted: true}\n  constructor: 1\n"),
    ),
    c(
      "h-many-docs",
      "2000 Config documents",
      cluster() +
        Array.from(
          { length: 2000 },
          (_, i) => `---\nkind: Config\nmetadata: {name: c${i}}\nspec: {path: etc/c${i}, data: x}\n`,
        ).join(""),
    ),
    c(
      "h-many-hosts",
      "2000 hosts",
      `apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: many}\nspec:\n  image: ${BASE_IMAGE}\n  hosts:\n    - {ips: [10.40.0.1], roles: [master]}\n${Array.from({ length: 2000 }, (_, i) => `    - {ips: [10.41.${i >> 8}.${i & 255}], roles: [node]}`).join("\n")}\n`,
    ),
    c(
      "h-long-scalar",
      "a 3 MB scalar",
      `${cluster()}---\nkind: Config\nmetadata: {name: x}\nspec: {path: etc/a, data: "${"v".repeat(3_000_000)}"}\n`,
    ),
    c(
      "h-encrypted-bad",
      "encrypted with a plain password",
      cluster().replace("spec:\n", "spec:\n  ssh: {encrypted: true, passwd: plain}\n"),
    ),
    c(
      "h-on-bad",
      "a bad on: selector",
      `${cluster()}---\nkind: Plugin\nmetadata: {name: SHELL}\nspec: {action: PostInstall, on: "10.0.0.300,,=x=", data: ls}\n`,
    ),
    c(
      "h-runtime-bad",
      "an unknown container runtime",
      cluster().replace("spec:\n", "spec:\n  containerRuntime: {type: podman}\n"),
    ),
    {
      id: "h-huge-clusterfile",
      kind: "clusterfile",
      huge: { bytes: 50 * 1024 * 1024, head: cluster() + "# ", fill: "padding padding padding\n# " },
      note: "a 50 MB Clusterfile",
    },
    { id: "h-clusterfile-dir", kind: "clusterfile", special: "directory", note: "-f names a directory" },
    { id: "h-clusterfile-missing", kind: "clusterfile", special: "missing", note: "-f names a missing file" },
  ];
}

/** `count` mutated inputs from the seeds, plus every hostile class. */
export function fuzzInputs(seed: number, count: number): FuzzInput[] {
  const r = rng(seed);
  const out = hostile();
  for (let i = 0; i < count; i++) {
    const kube = r() < 0.5;
    const seedText = pick(r, kube ? KUBEFILE_SEEDS : CLUSTERFILE_SEEDS);
    out.push({
      id: `m-${i}`,
      kind: kube ? "kubefile" : "clusterfile",
      text: r() < 0.05 ? seedText : mutate(r, seedText),
      note: "mutated seed",
    });
  }
  return out;
}
