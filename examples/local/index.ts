/**
 * Local nodes end to end: the sandbox base image and an app image built from this repository,
 * three local nodes (network namespaces with their own sshd; root required), and a cluster run
 * onto them. `pulumi preview --diff` after editing examples/app/web/* lists only that app's steps.
 *
 *   npm ci && npm run build && sudo pulumi up     (Pulumi.yaml at the repo root points here)
 *
 * The sandbox image's kubeadm/kubectl are stand-ins that journal their calls (tests and demo).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster, ClusterImage, Infra } from "../../sdk";

/** The repository root (works from examples/local and from dist/examples/local). */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
}

const config = new pulumi.Config();
const root = repoRoot();

// Lite builds, as the demo's: the sandbox has no registry to cache container images from (the
// app's manifests name images in the cluster's own registry, sea.hub:5000).
const base = new ClusterImage("sandbox-base", {
  context: path.join(root, "examples/sandbox-base"),
  tag: "sandbox-base:v1.28.2",
  buildMode: "lite",
});

// FROM sandbox-base:v1.28.2 + the web and setup apps.
const app = new ClusterImage(
  "app",
  {
    context: path.join(root, "examples/app"),
    tag: config.get("appTag") ?? "sandbox-app:1",
    buildMode: "lite",
  },
  { dependsOn: [base] },
);

const nodes = new Infra("nodes", {
  provider: "local",
  name: config.get("nodePrefix") ?? "pulumi-demo",
  masters: { count: 1 },
  nodes: { count: config.getNumber("workers") ?? 2 },
});

const cluster = new Cluster("demo", {
  name: "pulumi-demo",
  image: app,
  infra: nodes,
  env: { Greeting: config.get("greeting") ?? "hello" },
});

export const image = app.reference;
export const imageDigest = app.digest;
export const layers = app.layers;
export const masters = nodes.masterIps;
export const workers = nodes.workerIps;
/** What the last update ran, and what is left after a failure. */
export const steps = cluster.steps;
export const pending = cluster.pending;
export const kubeconfig = cluster.kubeconfig; // secret
