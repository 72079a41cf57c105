/**
 * An app-only image onto an existing cluster: the image holds just application/apps/dashboard
 * (no Kubernetes), so the cluster's update distributes that layer and launches the app on
 * master0; nothing is installed or joined.
 *
 *   pulumi config set clusterName my-cluster
 *   pulumi config set --path 'masters[0]' 10.0.0.2
 *   pulumi config set --path 'workers[0]' 10.0.0.3
 *   pulumi config set --secret sshKey "$(cat ~/.ssh/id_ed25519)"
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Cluster, ClusterImage } from "../../sdk";

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
}

const config = new pulumi.Config();

const dashboard = new ClusterImage("dashboard", {
  context: path.join(repoRoot(), "examples/app-on-existing/app"),
  tag: config.get("tag") ?? "dashboard-app:1.0",
});

const cluster = new Cluster("existing", {
  name: config.require("clusterName"),
  image: dashboard,
  masters: config.requireObject<string[]>("masters"),
  workers: config.getObject<string[]>("workers") ?? [],
  ssh: { user: config.get("sshUser") ?? "root", privateKey: config.requireSecret("sshKey") },
});

export const appImage = dashboard.reference;
export const ran = cluster.steps;
