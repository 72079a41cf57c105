import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../../provider/core/errors";
import { Instruction, Kubefile, checkAppNames, parseKubefile } from "../../provider/core/kubefile";
import { packageRoot } from "../../provider/core/package-info";

const F = "Kubefile";
const at = (line: number) => ({ file: F, line });

function parse(text: string, buildArgs?: Record<string, string>): Kubefile {
  return parseKubefile(text, { file: F, ...(buildArgs ? { buildArgs } : {}) });
}

/** The problems of the UserError `fn` throws (and checks the one-message-lists-all format). */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof UserError, `expected UserError, got ${String(err)}`);
    const n = err.problems.length;
    assert.equal(
      err.message,
      `${F} has ${n} problem${n === 1 ? "" : "s"}:\n${err.problems.map((p) => ` - ${p}`).join("\n")}`,
    );
    return err.problems;
  }
  assert.fail("expected a UserError");
}

describe("Kubefile parser: instructions", () => {
  const cases: Array<{
    name: string;
    text: string;
    buildArgs?: Record<string, string>;
    want: Instruction[];
    args?: Record<string, string>;
    env?: Record<string, string>;
  }> = [
    {
      name: "FROM image",
      text: "FROM kubernetes:v1.25.6",
      want: [{ kind: "FROM", loc: at(1), image: "kubernetes:v1.25.6" }],
    },
    {
      name: "FROM scratch, keywords case-insensitive",
      text: "from Scratch",
      want: [{ kind: "FROM", loc: at(1), image: "scratch" }],
    },
    {
      name: "FROM expands ARGs declared before it; --build-arg overrides the default",
      text: "ARG BASE=registry.local:5000/kube\nARG TAG=v1\nFROM ${BASE}:$TAG",
      buildArgs: { TAG: "v2" },
      want: [
        { kind: "ARG", loc: at(1), name: "BASE", value: "registry.local:5000/kube" },
        { kind: "ARG", loc: at(2), name: "TAG", value: "v1" },
        { kind: "FROM", loc: at(3), image: "registry.local:5000/kube:v2" },
      ],
      args: { BASE: "registry.local:5000/kube", TAG: "v2" },
    },
    {
      name: "COPY with quotes, escapes and several sources",
      text: `FROM scratch\nCOPY a "b c" 'd $X' e\\ f dir/`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "COPY", loc: at(2), sources: ["a", "b c", "d $X", "e f"], dest: "dir/" },
      ],
    },
    {
      name: "COPY JSON form",
      text: `FROM scratch\nCOPY ["my file", "etc/"]`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "COPY", loc: at(2), sources: ["my file"], dest: "etc/" },
      ],
    },
    {
      name: "COPY keeps ${ARCH} (and normalises $ARCH) for the builder; other variables expand",
      text: "ARG DIR=bin\nFROM scratch\nCOPY ${DIR}/${ARCH}/kubeadm $DIR/$ARCH/kubectl ${DIR}/",
      want: [
        { kind: "ARG", loc: at(1), name: "DIR", value: "bin" },
        { kind: "FROM", loc: at(2), image: "scratch" },
        { kind: "COPY", loc: at(3), sources: ["bin/${ARCH}/kubeadm", "bin/${ARCH}/kubectl"], dest: "bin/" },
      ],
    },
    {
      name: "COPY with \\$ escape and ${VAR:-default}",
      text: "FROM scratch\nCOPY \\$literal ${MISSING:-fallback} pre${MISSING:+alt} .",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "COPY", loc: at(2), sources: ["$literal", "fallback", "pre"], dest: "." },
      ],
    },
    {
      name: "ADD with an https URL",
      text: "FROM scratch\nADD https://example.com/containerd.tar.gz cri/",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "ADD", loc: at(2), sources: ["https://example.com/containerd.tar.gz"], dest: "cri/" },
      ],
    },
    {
      name: "RUN shell form: ARG and ENV substituted, shell variables, single quotes and \\$ left to the shell",
      text: `ARG V=1.0\nFROM scratch\nENV E=x\nRUN echo $V "\${E}" '$V' \\$V $HOME $(pwd) $1`,
      want: [
        { kind: "ARG", loc: at(1), name: "V", value: "1.0" },
        { kind: "FROM", loc: at(2), image: "scratch" },
        { kind: "ENV", loc: at(3), env: { E: "x" } },
        { kind: "RUN", loc: at(4), command: `echo 1.0 "x" '$V' \\$V $HOME $(pwd) $1` },
      ],
      env: { E: "x" },
    },
    {
      name: "RUN exec form is quoted into one shell command",
      text: `FROM scratch\nRUN ["bash", "-c", "echo it's > out.txt", "plain"]`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "RUN", loc: at(2), command: `bash -c 'echo it'\\''s > out.txt' plain` },
      ],
    },
    {
      name: "RUN starting with [ that is not JSON is shell form",
      text: "FROM scratch\nRUN [ -f etc/a ] && echo ok",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "RUN", loc: at(2), command: "[ -f etc/a ] && echo ok" },
      ],
    },
    {
      name: "CMD substitutes ARG but leaves ENV for run time; exec form joined",
      text: `ARG NS=demo\nFROM scratch\nENV E=x\nCMD kubectl -n $NS apply -f $E\nCMD ["kubectl", "get", "pods -A"]`,
      want: [
        { kind: "ARG", loc: at(1), name: "NS", value: "demo" },
        { kind: "FROM", loc: at(2), image: "scratch" },
        { kind: "ENV", loc: at(3), env: { E: "x" } },
        { kind: "CMD", loc: at(4), command: "kubectl -n demo apply -f $E" },
        { kind: "CMD", loc: at(5), command: "kubectl get 'pods -A'" },
      ],
    },
    {
      name: "CMDS JSON array",
      text: `FROM scratch\nCMDS ["kubectl apply -f manifests/", "bash scripts/post.sh"]`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "CMDS", loc: at(2), cmds: ["kubectl apply -f manifests/", "bash scripts/post.sh"] },
      ],
    },
    {
      name: "CMDS shell form is one command",
      text: "FROM scratch\nCMDS kubectl apply -f manifests/",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "CMDS", loc: at(2), cmds: ["kubectl apply -f manifests/"] },
      ],
    },
    {
      name: "APP with local:// and https:// sources",
      text: "FROM scratch\nAPP nginx local://apps/nginx.yaml local://apps/svc.yaml https://example.com/dash.yaml",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        {
          kind: "APP",
          loc: at(2),
          name: "nginx",
          sources: ["apps/nginx.yaml", "apps/svc.yaml", "https://example.com/dash.yaml"],
        },
      ],
    },
    {
      name: "CNI and CSI",
      text: "FROM scratch\nCNI calico local://cni/calico.yaml\nCSI openebs local://csi",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "CNI", loc: at(2), name: "calico", sources: ["cni/calico.yaml"] },
        { kind: "CSI", loc: at(3), name: "openebs", sources: ["csi"] },
      ],
    },
    {
      name: "APPCMDS JSON and shell form, ARG substituted",
      text: `ARG NS=web\nFROM scratch\nAPP nginx local://nginx\nAPPCMDS nginx ["kubectl apply -n $NS -f nginx/"]\nAPPCMDS nginx kubectl get pods`,
      want: [
        { kind: "ARG", loc: at(1), name: "NS", value: "web" },
        { kind: "FROM", loc: at(2), image: "scratch" },
        { kind: "APP", loc: at(3), name: "nginx", sources: ["nginx"] },
        { kind: "APPCMDS", loc: at(4), name: "nginx", cmds: ["kubectl apply -n web -f nginx/"] },
        { kind: "APPCMDS", loc: at(5), name: "nginx", cmds: ["kubectl get pods"] },
      ],
    },
    {
      name: "APPENV with quoted values",
      text: `FROM scratch\nAPP nginx local://nginx\nAPPENV nginx Namespace=web Greeting="hello world" Raw='$x'`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "APP", loc: at(2), name: "nginx", sources: ["nginx"] },
        {
          kind: "APPENV",
          loc: at(3),
          name: "nginx",
          env: { Namespace: "web", Greeting: "hello world", Raw: "$x" },
        },
      ],
    },
    {
      name: "LAUNCH JSON and bare names",
      text: `FROM scratch\nAPP a local://a\nAPP b local://b\nLAUNCH ["a", "b"]`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "APP", loc: at(2), name: "a", sources: ["a"] },
        { kind: "APP", loc: at(3), name: "b", sources: ["b"] },
        { kind: "LAUNCH", loc: at(4), apps: ["a", "b"] },
      ],
    },
    {
      name: "LAUNCH bare names",
      text: `FROM scratch\nAPP a local://a\nLAUNCH a`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "APP", loc: at(2), name: "a", sources: ["a"] },
        { kind: "LAUNCH", loc: at(3), apps: ["a"] },
      ],
    },
    {
      name: "KUBEVERSION keeps the whole range",
      text: "FROM scratch\nKUBEVERSION >=v1.22.0 <1.26.0",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "KUBEVERSION", loc: at(2), range: ">=v1.22.0 <1.26.0" },
      ],
    },
    {
      name: "ARG: several per line, without value, redeclared; build args override",
      text: `ARG A=1 B="two words"\nFROM scratch\nARG C\nARG A\nARG D=$B`,
      buildArgs: { C: "from-cli" },
      want: [
        { kind: "ARG", loc: at(1), name: "A", value: "1" },
        { kind: "ARG", loc: at(1), name: "B", value: "two words" },
        { kind: "FROM", loc: at(2), image: "scratch" },
        { kind: "ARG", loc: at(3), name: "C" },
        { kind: "ARG", loc: at(4), name: "A" },
        { kind: "ARG", loc: at(5), name: "D", value: "two words" },
      ],
      args: { A: "1", B: "two words", C: "from-cli", D: "two words" },
    },
    {
      name: "ENV k=v pairs, legacy `ENV k v`, later ENV sees earlier ones",
      text: `FROM scratch\nENV a=1 b="x y"\nENV c $a and  more\nENV a=2 d=\${a}`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "ENV", loc: at(2), env: { a: "1", b: "x y" } },
        { kind: "ENV", loc: at(3), env: { c: "1 and  more" } },
        // Docker semantics: values on one line see the ENV state before that line.
        { kind: "ENV", loc: at(4), env: { a: "2", d: "1" } },
      ],
      env: { a: "2", b: "x y", c: "1 and  more", d: "1" },
    },
    {
      name: "LABEL pairs, quoted keys, legacy form",
      text: `FROM scratch\nLABEL "cluster.alpha.sealer.io/cluster-runtime-type"=kubernetes version='1.0'\nLABEL description a cluster image`,
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        {
          kind: "LABEL",
          loc: at(2),
          labels: { "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes", version: "1.0" },
        },
        { kind: "LABEL", loc: at(3), labels: { description: "a cluster image" } },
      ],
    },
    {
      name: "MAINTAINER",
      text: "FROM scratch\nMAINTAINER Jane Doe <jane@example.com>",
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "MAINTAINER", loc: at(2), value: "Jane Doe <jane@example.com>" },
      ],
    },
    {
      // As sealer's own docs write them (docs/api/kubefile.md, docs/design/global-config.md); its
      // parser keeps a COPY's first two words. A quoted "#" word is a file name.
      name: "COPY with a trailing # comment, as in sealer's docs",
      text: 'FROM scratch\nCOPY wordpress-chart . # copy files to ClusterImage\nCOPY dashboard.yaml.tmpl manifests/ # only `manifests etc charts` dirs\nCOPY a "#b" c\nCOPY a b #c d',
      want: [
        { kind: "FROM", loc: at(1), image: "scratch" },
        { kind: "COPY", loc: at(2), sources: ["wordpress-chart"], dest: "." },
        { kind: "COPY", loc: at(3), sources: ["dashboard.yaml.tmpl"], dest: "manifests/" },
        { kind: "COPY", loc: at(4), sources: ["a", "#b"], dest: "c" },
        { kind: "COPY", loc: at(5), sources: ["a"], dest: "b" },
      ],
    },
    {
      name: "comments, directives, blank lines, CRLF, continuations (with comments inside) keep the first line",
      text: "# syntax=docker/dockerfile:1\r\n# escape=\\\r\n\r\nFROM scratch\r\n  # indented comment\r\nRUN echo a \\\r\n  # comment inside a continuation\r\n\r\n  && echo b\r\nCOPY a \\\n   b",
      want: [
        { kind: "FROM", loc: at(4), image: "scratch" },
        { kind: "RUN", loc: at(6), command: "echo a   && echo b" },
        { kind: "COPY", loc: at(10), sources: ["a"], dest: "b" },
      ],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const kf = parse(c.text, c.buildArgs);
      assert.deepEqual(kf.instructions, c.want);
      if (c.args) assert.deepEqual(kf.args, c.args);
      if (c.env) assert.deepEqual(kf.env, c.env);
      assert.equal(kf.file, F);
    });
});

describe("Kubefile parser: errors (exact messages, all at once)", () => {
  const KINDS =
    "FROM, COPY, ADD, RUN, CMD, CMDS, APP, APPCMDS, APPENV, LAUNCH, CNI, CSI, KUBEVERSION, ARG, ENV, LABEL, MAINTAINER";
  const cases: Array<{ name: string; text: string; buildArgs?: Record<string, string>; problems: string[] }> =
    [
      {
        name: "unknown instruction, near a known one",
        text: "FROM scratch\ncoppy a b",
        problems: [`${F}:2: unknown instruction "coppy"; did you mean COPY?`],
      },
      {
        name: "unknown instruction, nothing near",
        text: "FROM scratch\nFROBNICATE x",
        problems: [`${F}:2: unknown instruction "FROBNICATE"; Kubefile instructions are ${KINDS}`],
      },
      {
        name: "Dockerfile-only instruction",
        text: "FROM scratch\nENTRYPOINT kubectl",
        problems: [
          `${F}:2: ENTRYPOINT is a Dockerfile instruction that Kubefiles do not have; use CMDS for raw launch commands or LAUNCH for apps`,
        ],
      },
      {
        name: "empty Kubefile",
        text: "# only a comment\n\n",
        problems: [
          `${F}:1: the Kubefile has no instructions; start it with FROM <base image> or FROM scratch`,
        ],
      },
      {
        name: "no FROM",
        text: "ARG A=1",
        problems: [`${F}:1: the Kubefile has no FROM; start it with FROM <base image> or FROM scratch`],
      },
      {
        name: "first instruction not FROM",
        text: "ARG A=1\nCOPY a b\nFROM scratch",
        problems: [
          `${F}:2: the first instruction must be FROM (only ARG may come before it), found COPY; start the Kubefile with FROM <base image> or FROM scratch`,
        ],
      },
      {
        name: "second FROM",
        text: "FROM scratch\nFROM kubernetes:v1",
        problems: [
          `${F}:2: a second FROM (the first is at line 1); a Kubefile has one FROM, remove this one`,
        ],
      },
      {
        name: "multi-stage FROM",
        text: "FROM kubernetes:v1 AS base",
        problems: [
          `${F}:1: multi-stage builds (FROM ... AS name) are not supported; remove "AS ...": a Kubefile has one FROM`,
        ],
      },
      {
        name: "FROM --platform",
        text: "FROM --platform=linux/arm64 kube",
        problems: [
          `${F}:1: FROM flags such as --platform are not supported; select platforms with sealer build --platform`,
        ],
      },
      {
        name: "FROM invalid reference",
        text: "FROM Kubernetes:v1",
        problems: [
          `${F}:1: invalid image reference "Kubernetes:v1": repository names are lowercase letters, digits and separators ('.', '_', '-') between '/'; write FROM <image>[:tag] or FROM scratch`,
        ],
      },
      {
        name: "LAUNCH not last",
        text: "FROM scratch\nAPP a local://a\nLAUNCH a\nLABEL x=y",
        problems: [
          `${F}:3: LAUNCH must be the last instruction, but LABEL follows at line 4; move LAUNCH to the end of the Kubefile`,
        ],
      },
      {
        name: "LAUNCH twice",
        text: "FROM scratch\nAPP a local://a\nLAUNCH a\nLAUNCH a",
        problems: [`${F}:4: LAUNCH appears again (first at line 3); keep a single LAUNCH`],
      },
      {
        name: "CMDS not last and twice",
        text: `FROM scratch\nCMDS ["a"]\nRUN x\nCMDS ["b"]`,
        problems: [
          `${F}:2: CMDS must be the last instruction, but RUN follows at line 3; move CMDS to the end of the Kubefile`,
          `${F}:4: CMDS appears again (first at line 2); keep a single CMDS`,
        ],
      },
      {
        name: "LAUNCH with CMDS",
        text: `FROM scratch\nAPP a local://a\nCMDS ["x"]\nLAUNCH ["a"]`,
        problems: [
          `${F}:4: LAUNCH (line 4) and CMDS (line 3) cannot both be used; keep LAUNCH to start apps, or CMDS for raw commands`,
        ],
      },
      {
        name: "LAUNCH with CMD",
        text: `FROM scratch\nAPP a local://a\nCMD echo 1\nCMD echo 2\nLAUNCH ["a"]`,
        problems: [
          `${F}:5: LAUNCH cannot be combined with CMD (line 3, 4); replace the CMD lines with APPs, or drop LAUNCH`,
        ],
      },
      {
        name: "CMDS with CMD",
        text: `FROM scratch\nCMD echo 1\nCMDS ["x"]`,
        problems: [`${F}:3: CMDS cannot be combined with CMD (line 2); move those commands into CMDS`],
      },
      {
        name: "malformed JSON arrays",
        text: `FROM scratch\nAPP a local://a\nCMDS ['kubectl apply']\nAPPCMDS a ["x"\nLAUNCH [1, 2]\nCOPY ["a", 3]`,
        problems: [
          `${F}:3: CMDS: malformed JSON array (JSON strings use double quotes, not '); write CMDS ["<command>", ...]`,
          `${F}:3: CMDS must be the last instruction, but APPCMDS follows at line 4; move CMDS to the end of the Kubefile`,
          `${F}:4: APPCMDS: malformed JSON array (it must end with ]); write APPCMDS <app> ["<command>", ...]`,
          `${F}:5: LAUNCH: malformed JSON array: expected an array of strings; write LAUNCH ["<app>", ...]`,
          `${F}:5: LAUNCH must be the last instruction, but COPY follows at line 6; move LAUNCH to the end of the Kubefile`,
          `${F}:5: LAUNCH (line 5) and CMDS (line 3) cannot both be used; keep LAUNCH to start apps, or CMDS for raw commands`,
          `${F}:6: COPY: malformed JSON array: expected an array of strings; write COPY ["<src>", "<dest>"] or COPY <src> <dest>`,
        ],
      },
      {
        name: "APP source schemes",
        text: "FROM scratch\nAPP web apps/web.yaml http://example.com/a.yaml local://",
        problems: [
          `${F}:2: APP source "apps/web.yaml" must start with local:// (a path in the build context) or https://; write local://apps/web.yaml`,
          `${F}:2: APP source "http://example.com/a.yaml" must start with local:// (a path in the build context) or https://; serve it over https:// or put it in the build context`,
          `${F}:2: APP source "local://" names no path; write local://<path in the build context>`,
        ],
      },
      {
        // A second APP/CNI of the same name is not a problem: as in sealer, the last one wins.
        name: "app names: bad, listed twice",
        text: 'FROM scratch\nAPP ../up local://a\nAPP web local://a\nCNI web local://b\nLAUNCH ["web", "web"]',
        problems: [
          `${F}:2: APP: app name "../up" is not valid; use at most 255 letters, digits, '.', '_' and '-', starting with a letter or digit (it becomes the directory application/apps/<name>/)`,
          `${F}:5: LAUNCH lists app web twice; list each app once`,
        ],
      },
      {
        name: "FROM scratch: APPCMDS/APPENV/LAUNCH must name apps declared earlier",
        text: `FROM scratch\nAPPENV nginx a=1\nAPP nginx local://n\nAPPCMDS ngnix ["x"]\nLAUNCH ["nginx", "other"]`,
        problems: [
          `${F}:2: APPENV names app nginx, which is declared later (line 3); move the APPENV after its APP`,
          `${F}:4: APPCMDS names app ngnix, which no APP, CNI or CSI declares; did you mean nginx?`,
          `${F}:5: LAUNCH names app other, which no APP, CNI or CSI declares; known apps: nginx`,
        ],
      },
      {
        name: "--build-arg for an undeclared ARG",
        text: "ARG A\nFROM scratch",
        buildArgs: { A: "1", TYPO: "2", ZZ: "3" },
        problems: [
          `${F}: --build-arg TYPO is not declared by an ARG instruction; add "ARG TYPO" to the Kubefile or drop the --build-arg`,
          `${F}: --build-arg ZZ is not declared by an ARG instruction; add "ARG ZZ" to the Kubefile or drop the --build-arg`,
        ],
      },
      {
        name: "undefined variable and bad reference",
        text: "FROM scratch\nCOPY $NOPE ${1x} dest\nLABEL a=${unclosed",
        problems: [
          `${F}:2: COPY: variable NOPE is not defined; declare it with ARG (or ENV) before this line, or write \\$ for a literal $`,
          `${F}:2: COPY: bad variable reference "\${1x}"; write \${NAME}, \${NAME:-default} or \${NAME:+alternative}`,
          `${F}:3: LABEL: unterminated \${ (missing }); write \${NAME}, \${NAME:-default} or \${NAME:+alternative}`,
        ],
      },
      {
        name: "problems inside a continued instruction name that physical line; ordering names the first line",
        text: `FROM scratch\nCOPY a \\\n  b \\\n  "unterminated \\\n  dest\nAPP web local://a \\\n  ftp://x`,
        problems: [
          `${F}:4: COPY: unterminated double quote; close the quote on the same instruction (continue lines with \\)`,
          `${F}:7: APP source "ftp://x" must start with local:// (a path in the build context) or https://; serve it over https:// or put it in the build context`,
        ],
      },
      {
        name: "an ordering problem of a continued instruction names its first line",
        text: `FROM scratch\nAPP a local://a\nLAUNCH [ \\\n  "a" \\\n  ]\nCOPY x y`,
        problems: [
          `${F}:3: LAUNCH must be the last instruction, but COPY follows at line 6; move LAUNCH to the end of the Kubefile`,
        ],
      },
      {
        name: "ARG ARCH is reserved",
        text: "ARG ARCH=amd64\nFROM scratch",
        problems: [
          `${F}:1: ARG ARCH is reserved: the builder sets \${ARCH} per platform; remove this ARG and choose platforms with sealer build --platform`,
        ],
      },
      {
        name: "bad ARG name",
        text: "FROM scratch\nARG 1x=2",
        problems: [
          `${F}:2: ARG name "1x" is not valid; use letters, digits and _ (not starting with a digit)`,
        ],
      },
      {
        name: "COPY flags, URLs, escaping destination, plain-http ADD",
        text: "FROM scratch\nCOPY --chown=1:1 a b\nCOPY https://example.com/a b\nCOPY a ../../etc\nADD http://example.com/a b",
        problems: [
          `${F}:2: COPY flags such as --chown are not supported; remove the flag: files in a cluster image are owned by root (0:0) with normalised modes`,
          `${F}:3: COPY source "https://example.com/a" is a URL; COPY copies from the build context; download it into the context first, or use ADD for an https:// URL`,
          `${F}:4: COPY destination "../../etc" leaves the image root; use a path inside the image (no leading ..)`,
          `${F}:5: ADD source "http://example.com/a" uses plain http; use an https:// URL`,
        ],
      },
      {
        name: "ENV and LABEL keys and forms",
        text: "FROM scratch\nENV a=1 b\nENV 9x=1\nLABEL -bad=1\nAPPENV web k=v notpair",
        problems: [
          `${F}:2: ENV expects key=value, got "b"; write ENV b=<value> (quote values with spaces)`,
          `${F}:3: ENV key "9x" is not valid; use letters, digits and _ (not starting with a digit)`,
          `${F}:4: LABEL key "-bad" is not valid; use letters, digits, '.', '_', '-' and '/'`,
          `${F}:5: APPENV expects key=value, got "notpair"; write APPENV <app> notpair=<value> (quote values with spaces)`,
        ],
      },
      {
        name: "KUBEVERSION without a version",
        text: "FROM scratch\nKUBEVERSION latest",
        problems: [
          `${F}:2: KUBEVERSION "latest" is not a version range; write e.g. KUBEVERSION >=v1.22.0 <1.26.0`,
        ],
      },
      {
        name: "empty RUN exec array",
        text: "FROM scratch\nRUN []",
        problems: [
          `${F}:2: RUN has an empty command array; write RUN <command> or RUN ["executable", "arg"]`,
        ],
      },
      {
        name: "several problems at once, in line order",
        text: 'COPY a b\nFROM scratch\nRUNN x\nLAUNCH ["x"]\nCMD y',
        problems: [
          `${F}:1: the first instruction must be FROM (only ARG may come before it), found COPY; start the Kubefile with FROM <base image> or FROM scratch`,
          `${F}:3: unknown instruction "RUNN"; did you mean RUN?`,
          `${F}:4: LAUNCH must be the last instruction, but CMD follows at line 5; move LAUNCH to the end of the Kubefile`,
          `${F}:4: LAUNCH cannot be combined with CMD (line 5); replace the CMD lines with APPs, or drop LAUNCH`,
        ],
      },
    ];
  for (const c of cases)
    it(c.name, () =>
      assert.deepEqual(
        problemsOf(() => parse(c.text, c.buildArgs)),
        c.problems,
      ),
    );

  // One instruction per Kubefile (after FROM scratch), so only the argument problem shows.
  const missing: Array<[string, string]> = [
    ["FROM", `${F}:1: FROM needs an image; write FROM <image> or FROM scratch`],
    ["COPY", `${F}:2: COPY needs a source and a destination; write COPY <src>... <dest>`],
    ["ADD", `${F}:2: ADD needs a source and a destination; write ADD <src>... <dest>`],
    ["RUN", `${F}:2: RUN needs a command; write RUN <command> or RUN ["executable", "arg"]`],
    ["CMD", `${F}:2: CMD needs a command; write CMD <command>`],
    ["CMDS", `${F}:2: CMDS needs commands; write CMDS ["<command>", ...]`],
    ["APP", `${F}:2: APP needs a name and sources; write APP <name> local://<path>... or https://<url>`],
    ["APPCMDS", `${F}:2: APPCMDS needs an app name and commands; write APPCMDS <app> ["<command>", ...]`],
    ["APPENV", `${F}:2: APPENV needs an app name and key=value pairs; write APPENV <app> key=value...`],
    ["LAUNCH", `${F}:2: LAUNCH needs app names; write LAUNCH ["<app>", ...]`],
    ["CNI", `${F}:2: CNI needs a name and sources; write CNI <name> local://<path>...`],
    ["CSI", `${F}:2: CSI needs a name and sources; write CSI <name> local://<path>...`],
    ["KUBEVERSION", `${F}:2: KUBEVERSION needs a version range; write KUBEVERSION >=v1.22.0 <1.26.0`],
    ["ARG", `${F}:2: ARG needs a name; write ARG <name>[=<default>]`],
    ["ENV", `${F}:2: ENV needs key=value pairs; write ENV key=value...`],
    ["LABEL", `${F}:2: LABEL needs key=value pairs; write LABEL key=value...`],
    ["MAINTAINER", `${F}:2: MAINTAINER needs a value; write MAINTAINER <name> <email>`],
  ];
  for (const [kind, problem] of missing)
    it(`missing arguments: ${kind}`, () =>
      assert.deepEqual(
        problemsOf(() => parse(kind === "FROM" ? "FROM   " : `FROM scratch\n${kind}   \\\n`)),
        [problem],
      ));

  const partial: Array<[string, string]> = [
    ["COPY onlyone", `${F}:2: COPY needs at least one source and a destination; write COPY <src>... <dest>`],
    [
      "APP web",
      `${F}:2: APP web needs at least one source; write APP <name> local://<path>... or https://<url>`,
    ],
    ["APPCMDS web", `${F}:2: APPCMDS web needs commands; write APPCMDS <app> ["<command>", ...]`],
    ["APPENV web", `${F}:2: APPENV web needs at least one key=value; write APPENV <app> key=value...`],
    [
      "CMDS []",
      `${F}:2: CMDS: the command array holds no command or an empty one; write CMDS ["<command>", ...]`,
    ],
    [
      `CMDS ["a", " "]`,
      `${F}:2: CMDS: the command array holds no command or an empty one; write CMDS ["<command>", ...]`,
    ],
    ["LAUNCH []", `${F}:2: LAUNCH needs at least one app name; write LAUNCH ["<app>", ...]`],
    ["ENV lonely", `${F}:2: ENV lonely has no value; write ENV lonely=<value>`],
  ];
  for (const [line, problem] of partial)
    it(`partial arguments: ${line}`, () =>
      assert.deepEqual(
        problemsOf(() => parse(`FROM scratch\n${line}`)),
        [problem],
      ));

  it("checkAppNames: inherited apps count; the rest are reported with the base image named", () => {
    const kf = parse(
      `FROM base:1\nAPP extra local://e\nAPPENV nginx a=1\nAPPCMDS extra ["x"]\nLAUNCH ["nginx", "extra", "calico", "gone"]`,
    );
    assert.doesNotThrow(() => checkAppNames(kf, ["nginx", "calico", "gone"]));
    assert.deepEqual(
      problemsOf(() => checkAppNames(kf, ["nginx", "calico"])),
      [
        `${F}:5: LAUNCH names app gone, which no APP, CNI or CSI declares and the base image does not have; known apps: calico, extra, nginx`,
      ],
    );
  });

  it("a non-scratch FROM leaves app names to checkAppNames", () => {
    const kf = parse(`FROM base:1\nLAUNCH ["from-base"]`);
    assert.deepEqual(kf.instructions[1], { kind: "LAUNCH", loc: at(2), apps: ["from-base"] });
  });
});

const repoRoot = (): string => packageRoot(__dirname);

describe("Kubefile fixtures (realistic images)", () => {
  const dir = (name: string) => path.join(repoRoot(), "tests", "fixtures", "kubefile", name);
  const read = (name: string) =>
    parseKubefile(fs.readFileSync(path.join(dir(name), "Kubefile"), "utf8"), { file: `${name}/Kubefile` });

  it("base image: ARG/LABEL continuation/ENV/KUBEVERSION/COPY ${ARCH}/glob/RUN", () => {
    const kf = read("base");
    const loc = (line: number) => ({ file: "base/Kubefile", line });
    assert.deepEqual(kf.instructions, [
      { kind: "ARG", loc: loc(3), name: "KUBE_VERSION", value: "v1.25.6" },
      { kind: "FROM", loc: loc(4), image: "scratch" },
      { kind: "MAINTAINER", loc: loc(5), value: `"Platform Team" <platform@example.com>` },
      {
        kind: "LABEL",
        loc: loc(6),
        labels: {
          "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes",
          "cluster.alpha.sealer.io/cluster-runtime-version": "v1.25.6",
          "cluster.alpha.sealer.io/container-runtime-type": "containerd",
        },
      },
      { kind: "ENV", loc: loc(9), env: { KubeVersion: "v1.25.6", RegistryURL: "sea.hub:5000" } },
      { kind: "KUBEVERSION", loc: loc(10), range: ">=v1.25.0 <1.27.0" },
      { kind: "COPY", loc: loc(13), sources: ["bin/${ARCH}/kubeadm"], dest: "bin/" },
      { kind: "COPY", loc: loc(14), sources: ["etc"], dest: "etc" },
      { kind: "COPY", loc: loc(15), sources: ["scripts/*.sh"], dest: "scripts/" },
      { kind: "COPY", loc: loc(16), sources: ["manifests"], dest: "manifests" },
      {
        kind: "RUN",
        loc: loc(17),
        command: `chmod +x bin/kubeadm scripts/*.sh &&     echo "v1.25.6" > etc/kube-version`,
      },
    ]);
    assert.deepEqual(kf.args, { KUBE_VERSION: "v1.25.6" });
    const v2 = parseKubefile(fs.readFileSync(path.join(dir("base"), "Kubefile"), "utf8"), {
      file: "Kubefile",
      buildArgs: { KUBE_VERSION: "v1.26.1" },
    });
    assert.deepEqual(v2.env, { KubeVersion: "v1.26.1", RegistryURL: "sea.hub:5000" });
  });

  it("app image: APP/APPENV/APPCMDS/LAUNCH", () => {
    const kf = read("app");
    const loc = (line: number) => ({ file: "app/Kubefile", line });
    assert.deepEqual(kf.instructions, [
      { kind: "FROM", loc: loc(2), image: "docker.io/sealerio/kubernetes:v1.25.6" },
      { kind: "ARG", loc: loc(3), name: "NS", value: "demo" },
      { kind: "APP", loc: loc(5), name: "init", sources: ["apps/init/init.sh"] },
      {
        kind: "APP",
        loc: loc(6),
        name: "nginx",
        sources: ["apps/nginx/deployment.yaml", "apps/nginx/service.yaml"],
      },
      { kind: "APP", loc: loc(7), name: "dashboard", sources: ["apps/dashboard"] },
      {
        kind: "APPENV",
        loc: loc(8),
        name: "nginx",
        env: { Namespace: "demo", Replicas: "2", Greeting: "hello world" },
      },
      {
        kind: "APPCMDS",
        loc: loc(9),
        name: "nginx",
        cmds: [
          "kubectl apply -n demo -f application/apps/nginx/",
          "kubectl rollout status -n demo deploy/nginx",
        ],
      },
      {
        kind: "APPCMDS",
        loc: loc(10),
        name: "dashboard",
        cmds: ["helm install dashboard application/apps/dashboard -n demo"],
      },
      { kind: "LAUNCH", loc: loc(11), apps: ["init", "nginx", "dashboard"] },
    ]);
    assert.doesNotThrow(() => checkAppNames(kf, []));
  });

  it("legacy image: lowercase cmd, CMD exec form, CMD with a pipe", () => {
    const kf = read("legacy");
    const loc = (line: number) => ({ file: "legacy/Kubefile", line });
    assert.deepEqual(kf.instructions, [
      { kind: "FROM", loc: loc(2), image: "kubernetes:v1.19.8" },
      { kind: "COPY", loc: loc(3), sources: ["manifests"], dest: "." },
      { kind: "CMD", loc: loc(4), command: "kubectl apply -f manifests/ns.yaml" },
      { kind: "CMD", loc: loc(5), command: "kubectl apply -f manifests/cm.yaml" },
      { kind: "CMD", loc: loc(6), command: "kubectl get pods -A | grep -v Running || true" },
    ]);
  });
});
