/**
 * Builds the Pulumi package schema (schema.json) from descriptors.ts. Pure.
 * `sealer pulumi schema` prints it; tests/unit/schema.test.ts checks the committed file equals it.
 */
import { objectTypes, PACKAGE, resources, type PropDesc, type PropType } from "./descriptors";

type Json = Record<string, unknown>;

function typeSpec(t: PropType): Json {
  switch (t.kind) {
    case "string":
      return t.enum ? { type: "string", enum: [...t.enum] } : { type: "string" };
    case "integer":
      return { type: "integer" };
    case "number":
      return { type: "number" };
    case "boolean":
      return { type: "boolean" };
    case "any":
      return { $ref: "pulumi.json#/Any" };
    case "array":
      return { type: "array", items: typeSpec(t.items) };
    case "map":
      return { type: "object", additionalProperties: typeSpec(t.values) };
    case "ref":
      return { $ref: `#/types/${PACKAGE}:index:${t.name}` };
    case "oneOf":
      return { oneOf: t.of.map(typeSpec) };
    default: {
      const never: never = t;
      throw new Error(`unknown property type ${JSON.stringify(never)}`);
    }
  }
}

function propSpec(p: PropDesc): Json {
  const out: Json = { ...typeSpec(p.type), description: p.description };
  if (p.secret) out.secret = true;
  if (p.replaceOnChange) out.replaceOnChanges = true;
  return out;
}

function props(ps: Record<string, PropDesc>): Json {
  const out: Json = {};
  for (const k of Object.keys(ps).sort()) out[k] = propSpec(ps[k]!);
  return out;
}

function requiredOf(ps: Record<string, PropDesc>): string[] {
  return Object.keys(ps)
    .filter((k) => ps[k]!.required)
    .sort();
}

export function buildSchema(version: string): Json {
  const types: Json = {};
  for (const name of Object.keys(objectTypes).sort()) {
    const t = objectTypes[name]!;
    types[`${PACKAGE}:index:${name}`] = {
      type: "object",
      description: t.description,
      properties: props(t.properties),
      required: requiredOf(t.properties),
    };
  }
  const res: Json = {};
  for (const r of Object.values(resources).sort((a, b) => a.token.localeCompare(b.token))) {
    // Outputs = computed outputs + every input echoed back (what the provider returns).
    const outputs = { ...r.inputs, ...r.outputs };
    res[r.token] = {
      description: r.description,
      inputProperties: props(r.inputs),
      requiredInputs: requiredOf(r.inputs),
      properties: props(outputs),
      required: requiredOf(r.outputs),
    };
  }
  return {
    name: PACKAGE,
    displayName: "sealer",
    version,
    description:
      "Cluster images for Kubernetes (sealer's model): build from a Kubefile, push to any OCI registry, run onto hosts over SSH, re-apply only what changed. Implemented as Pulumi dynamic resources.",
    keywords: ["pulumi", "kubernetes", "sealer", "cluster-image", "category/infrastructure"],
    license: "Apache-2.0",
    meta: { moduleFormat: "(.*)" },
    language: { nodejs: { packageName: "pulumi-sealer", dependencies: { "@pulumi/pulumi": "^3.270.0" } } },
    config: {},
    provider: {
      description: "The sealer resources are dynamic resources; this provider has no configuration.",
    },
    types,
    resources: res,
  };
}

export function schemaText(version: string): string {
  return JSON.stringify(buildSchema(version), null, 2) + "\n";
}
