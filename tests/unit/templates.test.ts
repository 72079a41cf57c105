import * as assert from "node:assert/strict";
import * as yaml from "js-yaml";
import {
  applyConfig,
  configTarget,
  mergeDocuments,
  renderTemplate,
  renderedPath,
  templateKeys,
} from "../../provider/core/exec/templates";
import { UserError } from "../../provider/core/errors";

describe("templates: .tmpl rendering (Go template subset)", () => {
  const env = { PodCIDR: "10.0.0.0/16", Empty: "", Name: "web", Flag: "true", "my-key": "dash" };
  const cases: Array<[string, string, string]> = [
    ["plain key", "cidr: {{ .PodCIDR }}", "cidr: 10.0.0.0/16"],
    ["tight braces", "{{.Name}}", "web"],
    ["missing key renders empty", "x={{ .Nope }}", "x="],
    ["or picks first non-empty", '{{or .RegistryURL "sea.hub:5000"}}', "sea.hub:5000"],
    ["or keeps a set value", '{{or .Name "x"}}', "web"],
    ["or skips empty", "{{ or .Empty .Name }}", "web"],
    ["default sprig order", '{{ default "d" .Empty }}', "d"],
    ["default with value", '{{ default "d" .Name }}', "web"],
    ["pipeline default", '{{ .Nope | default "x" | upper }}', "X"],
    ["quote", "{{ .Name | quote }}", '"web"'],
    ["b64enc", "{{ .Name | b64enc }}", "d2Vi"],
    ["parenthesised", '{{ upper (default "q" .Nope) }}', "Q"],
    ["if true", "{{ if .Name }}yes{{ end }}", "yes"],
    ["if false else", "{{ if .Empty }}yes{{ else }}no{{ end }}", "no"],
    ["else if", '{{ if .Empty }}a{{ else if eq .Name "web" }}b{{ else }}c{{ end }}', "b"],
    ["not", "{{ if not .Empty }}n{{ end }}", "n"],
    ["trim markers", "a  {{- .Name -}}  \n b", "awebb"],
    ["comment", "a{{/* note */}}b", "ab"],
    ["text untouched", "no actions: { } $x", "no actions: { } $x"],
    // Go text/template built-ins (sealer renders .tmpl files with Go's text/template).
    ["index a key with a dash", '{{ index . "my-key" }}', "dash"],
    ["printf verbs", '{{ printf "%s:%d %q %v%%" .Name 5 .Flag true }}', 'web:5 "true" true%'],
    ["print", '{{ print .Name "-" .Flag }}', "web-true"],
    ["len of a value", "{{ len .PodCIDR }}", "11"],
    ["lt/ge compare numbers", "{{ if lt 2 10 }}a{{ end }}{{ if ge 3 3 }}b{{ end }}", "ab"],
    ["gt/le compare strings", '{{ if gt .Name "abc" }}a{{ end }}{{ if le .Name "web" }}b{{ end }}', "ab"],
  ];
  for (const [name, tmpl, want] of cases) it(name, () => assert.equal(renderTemplate(tmpl, env), want));

  const errors: Array<[string, string, RegExp]> = [
    ["unclosed action", "a\n{{ .X", /^f\.tmpl:2: unclosed "\{\{"/],
    ["end without if", "{{ end }}", /^f\.tmpl:1: "\{\{end\}\}" without a matching "\{\{if\}\}"/],
    ["if without end", "{{ if .X }}a", /^f\.tmpl:1: "\{\{if\}\}" without "\{\{end\}\}"/],
    ["range unsupported", "\n\n{{ range .X }}{{ end }}", /^f\.tmpl:3: "\{\{range\}\}" is not supported/],
    ["unknown function", "{{ frobnicate .X }}", /^f\.tmpl:1: unknown function "frobnicate"/],
    ["printf verb", '{{ printf "%x" .Name }}', /^f\.tmpl:1: printf verb "%x" is not supported/],
    ["index not on .", '{{ index .Name "a" }}', /^f\.tmpl:1: index takes \. and a key/],
    // Go's template parser refuses "\q" too (an unknown escape in a quoted string).
    [
      "bad escape",
      'a\n{{ index . "\\q" }}',
      /^f\.tmpl:2: in ".*": "\\q" is not a valid string: use only the escapes/,
    ],
  ];
  for (const [name, tmpl, re] of errors)
    it(`error: ${name}`, () => {
      assert.throws(
        () => renderTemplate(tmpl, env, "f.tmpl"),
        (e: unknown) => e instanceof UserError && re.test(e.message),
      );
    });

  it("lists the keys a template reads", () => {
    assert.deepEqual(
      templateKeys(
        'a {{ .B }} {{or .RegistryURL "x"}} {{ default "y" .A | quote }} {{ .B }} {{ index . "my-key" }}',
        "f.tmpl",
      ),
      ["A", "B", "RegistryURL", "my-key"],
    );
    assert.throws(
      () => templateKeys('x\ny\n{{ index . "\\q" }}', "etc/x.yaml.tmpl"),
      (e: unknown) =>
        e instanceof UserError &&
        /^etc\/x\.yaml\.tmpl:3: in "\{\{ index \. "\\q" \}\}": "\\q" is not a valid string/.test(e.message),
    );
  });
  it("renderedPath drops .tmpl", () => assert.equal(renderedPath("etc/kubeadm.yml.tmpl"), "etc/kubeadm.yml"));
});

describe("templates: Config documents", () => {
  it("overwrite replaces the file", () => {
    assert.equal(
      applyConfig({ path: "etc/a.yaml", data: "x: 1\n", strategy: "overwrite" }, "y: 2\n"),
      "x: 1\n",
    );
  });
  it("merge deep-merges YAML maps and replaces lists", () => {
    const out = applyConfig(
      { path: "etc/a.yaml", data: "a: { b: 2 }\nl: [3]\n", strategy: "merge" },
      "a: { b: 1, c: 1 }\nl: [1, 2]\nk: v\n",
    );
    assert.deepEqual(yaml.load(out), { a: { b: 2, c: 1 }, l: [3], k: "v" });
  });
  it("merge keeps JSON files JSON", () => {
    const out = applyConfig({ path: "etc/d.json", data: '{"b": 2}', strategy: "merge" }, '{"a": 1}');
    assert.deepEqual(JSON.parse(out), { a: 1, b: 2 });
  });
  it("merge on a missing file writes the data", () => {
    assert.equal(applyConfig({ path: "x", data: "a: 1\n", strategy: "merge" }, undefined), "a: 1\n");
  });
  it("merge is idempotent", () => {
    const doc = { path: "x", data: "a: { b: 2 }\n", strategy: "merge" as const };
    const once = applyConfig(doc, "a: { c: 1 }\n");
    assert.equal(applyConfig(doc, once), once);
  });
  it("multi-document merge by position", () => {
    assert.equal(mergeDocuments("a: 1\n---\nb: 1\n", "---\nb: 2\n").includes("b: 2"), true);
  });
  it("value|toJson|toBase64|toSecret writes the Secret's data", () => {
    const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata: {}\n";
    const out = applyConfig(
      {
        path: "manifests/s.yaml",
        data: "config:\n  user: root\n  port: 3306\n",
        process: "value|toJson|toBase64|toSecret",
      },
      secret,
    );
    const doc = yaml.load(out) as { data: Record<string, string> };
    assert.deepEqual(JSON.parse(Buffer.from(doc.data.config!, "base64").toString()), {
      user: "root",
      port: 3306,
    });
  });
  it("toSecret without toBase64 still stores base64 (Secret data must be)", () => {
    const out = applyConfig(
      { path: "s.yaml", data: "k: plain\n", process: ["value", "toSecret"] },
      "kind: Secret\nmetadata: { name: s }\n",
    );
    assert.equal(
      (yaml.load(out) as { data: Record<string, string> }).data.k,
      Buffer.from("plain").toString("base64"),
    );
  });
  it("value|toJson writes the value's JSON", () => {
    assert.equal(
      applyConfig({ path: "c.json", data: "cfg:\n  a: 1\n", process: "value|toJson" }, undefined),
      '{"a":1}\n',
    );
  });
  it("appName puts the file under the app", () => {
    assert.equal(
      configTarget({ path: "values.yaml", data: "", appName: "web" }),
      "application/apps/web/values.yaml",
    );
    assert.throws(() => configTarget({ path: "../../etc/passwd", data: "" }), /must stay inside the image/);
  });
  it("errors name the Config", () => {
    assert.throws(
      () => applyConfig({ name: "c1", path: "x", data: "a: 1", process: "toXml" }, undefined),
      /^UserError: Config c1: unknown process "toXml" \(use value, toJson, toBase64, toSecret joined by "\|"\)$/,
    );
    assert.throws(
      () => applyConfig({ name: "c2", path: "s.yaml", data: "a: 1", process: "toSecret" }, undefined),
      /Config c2: toSecret needs an existing Secret manifest at s\.yaml/,
    );
    assert.throws(
      () => applyConfig({ name: "c3", path: "s.yaml", data: "- a", process: "value" }, undefined),
      /Config c3: process "value" needs data to be a map/,
    );
  });
});
