import * as assert from "node:assert/strict";
import { parseTemplate, render } from "../../provider/core/registry/go-template";

function run(src: string, dot: unknown, extraDefines = ""): string {
  const p = parseTemplate(extraDefines + src);
  return render(p, dot, { defines: p.defines });
}

const V = {
  Values: {
    image: { repository: "nginx", tag: "1.25" },
    name: "web",
    replicas: 2,
    empty: "",
    list: ["a", "b"],
    map: { z: 1, a: 2 },
    nested: { deep: { x: "y" } },
    enabled: true,
    off: false,
  },
  Chart: { Name: "mychart", Version: "0.1.0", AppVersion: "2.0" },
  Release: { Name: "rel" },
};

describe("Go template subset renderer", () => {
  const cases: Array<[string, string, string]> = [
    ["field", "{{ .Values.image.repository }}:{{ .Values.image.tag }}", "nginx:1.25"],
    [
      "chart and release",
      "{{ .Chart.Name }}-{{ .Chart.Version }}-{{ .Chart.AppVersion }}-{{ .Release.Name }}",
      "mychart-0.1.0-2.0-rel",
    ],
    ["default when missing", '{{ .Values.nope | default "x" }}', "x"],
    ["default when empty", '{{ default "d" .Values.empty }}', "d"],
    ["default keeps value", "{{ .Values.image.tag | default .Chart.AppVersion }}", "1.25"],
    ["missing prints nothing", "[{{ .Values.missing.deeper }}]", "[]"],
    ["quote", "{{ .Values.name | quote }}", '"web"'],
    ["squote", "{{ squote .Values.name }}", "'web'"],
    ["printf", '{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}', "nginx:1.25"],
    ["printf %d %v", '{{ printf "%d/%v" .Values.replicas .Values.enabled }}', "2/true"],
    ["if true", "{{ if .Values.enabled }}on{{ else }}off{{ end }}", "on"],
    ["if false", "{{ if .Values.off }}on{{ else }}off{{ end }}", "off"],
    ["else if", '{{ if .Values.off }}a{{ else if eq .Values.name "web" }}b{{ else }}c{{ end }}', "b"],
    ["with", "{{ with .Values.nested.deep }}{{ .x }}{{ end }}", "y"],
    ["with else", "{{ with .Values.nope }}{{ . }}{{ else }}none{{ end }}", "none"],
    ["range list", "{{ range .Values.list }}<{{ . }}>{{ end }}", "<a><b>"],
    ["range index", "{{ range $i, $v := .Values.list }}{{ $i }}={{ $v }};{{ end }}", "0=a;1=b;"],
    ["range map sorted", "{{ range $k, $v := .Values.map }}{{ $k }}{{ $v }}{{ end }}", "a2z1"],
    ["range else", "{{ range .Values.nope }}x{{ else }}empty{{ end }}", "empty"],
    ["$ inside range", "{{ range .Values.list }}{{ $.Values.name }}{{ end }}", "webweb"],
    ["variables", '{{ $x := .Values.name }}{{ $x }}-{{ $x = "n" }}{{ $x }}', "web-n"],
    ["trim markers", "a  {{- .Values.name -}}  b", "awebb"],
    ["comment", "a{{/* hidden */}}b", "ab"],
    ["toYaml nindent", "x:{{ toYaml .Values.image | nindent 2 }}", "x:\n  repository: nginx\n  tag: '1.25'"],
    ["indent", '{{ indent 2 "a\\nb" }}', "  a\n  b"],
    ["parens", '{{ (printf "%s-%s" .Values.name "x") | upper }}', "WEB-X"],
    ["paren field", '{{ (dict "a" (dict "b" "c")).a.b }}', "c"],
    [
      "and/or/not",
      "{{ and .Values.enabled (not .Values.off) }} {{ or .Values.off .Values.name }}",
      "true web",
    ],
    ["trimSuffix/replace", '{{ "a-b-" | trimSuffix "-" | replace "-" "_" }}', "a_b"],
    [
      "hasKey/index",
      '{{ hasKey .Values "name" }} {{ index .Values.list 1 }} {{ index .Values "name" }}',
      "true b web",
    ],
    ["semverCompare", '{{ semverCompare ">=1.21-0" "v1.25.0" }}', "true"],
    ["len/list/join", '{{ len .Values.list }} {{ list 1 2 | join "," }}', "2 1,2"],
    ["ternary", '{{ ternary "y" "n" .Values.enabled }}', "y"],
    ["APIVersions.Has method", '{{ if .Capabilities.APIVersions.Has "apps/v1" }}yes{{ end }}', "yes"],
  ];
  for (const [name, src, want] of cases)
    it(name, () => {
      assert.equal(run(src, { ...V, Capabilities: { APIVersions: { Has: () => true } } }), want);
    });

  it("include of a define with a context, piped to nindent", () => {
    const defs =
      '{{- define "app.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}\n';
    assert.equal(run('image: {{ include "app.image" . | quote }}', V, defs), 'image: "nginx:1.25"');
    assert.equal(run('{{ template "app.image" . }}', V, defs), "nginx:1.25");
  });

  it("reports what it cannot render", () => {
    assert.throws(() => run("{{ lookupX 1 }}", V), /function "lookupX" is not supported by this renderer/);
    assert.throws(() => run("{{ if .Values.x }}", V), /has no end/);
    assert.throws(
      () => run('{{ required "image.tag is required" .Values.nope }}', V),
      /required value missing: image.tag is required/,
    );
    assert.throws(() => run('{{ include "nope" . }}', V), /no template "nope" is defined/);
    assert.throws(() => run("{{ hasOwnProperty 1 }}", V), /function "hasOwnProperty" is not supported/);
  });
});
