#!/usr/bin/env node
// SANDBOX STAND-IN (tests and demo only; NOT Kubernetes): a tiny fake API server that the
// stand-in kubeadm starts on master0. It keeps the node list, bootstrap tokens, the certificate
// key, labels/taints and the objects `kubectl apply` sent, in one JSON file, so the stand-in
// tools can answer like the real ones (join refuses a wrong token, `kubectl get nodes` lists
// the joined nodes). Plain HTTP with a bearer token: it only has to be plausible, not secure.
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`bad argument ${a}`);
    return [m[1], m[2]];
  }),
);
const stateFile = args.state;
const [host, port] = (args.listen || "127.0.0.1:6443").split(":");

function load() {
  return JSON.parse(fs.readFileSync(stateFile, "utf8"));
}
function save(s) {
  const tmp = `${stateFile}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2));
  fs.renameSync(tmp, stateFile);
}
function send(res, code, body) {
  res.writeHead(code, { "Content-Type": typeof body === "string" ? "text/plain" : "application/json" });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const t = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(t ? JSON.parse(t) : {});
      } catch (e) {
        reject(e);
      }
    });
    req.on("error", reject);
  });
}
function age(since) {
  const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  return s < 120 ? `${s}s` : `${Math.floor(s / 60)}m`;
}
function table(nodes, wide) {
  const rows = [["NAME", "STATUS", "ROLES", "AGE", "VERSION", ...(wide ? ["INTERNAL-IP"] : [])]];
  for (const n of nodes) {
    const roles = Object.keys(n.labels).filter((k) => k.startsWith("node-role.kubernetes.io/")).map((k) => k.slice(24)).join(",") || "<none>";
    rows.push([n.name, (n.notReady ? "NotReady" : "Ready") + (n.unschedulable ? ",SchedulingDisabled" : ""), roles, age(n.joinedAt), n.version, ...(wide ? [n.ip] : [])]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join("   ").trimEnd()).join("\n") + "\n";
}

async function handle(req, res) {
  const url = new URL(req.url, "http://x");
  const s = load();
  const authed = req.headers.authorization === `Bearer ${s.adminToken}`;
  const parts = url.pathname.split("/").filter(Boolean);
  if (url.pathname === "/healthz") return send(res, 200, "ok");
  if (req.method === "GET" && url.pathname === "/ca-hash") return send(res, 200, { caCertHash: s.caCertHash });
  if (req.method === "POST" && url.pathname === "/join") {
    const b = await readBody(req);
    if (!s.tokens.includes(b.token)) return send(res, 403, { error: `invalid bootstrap token ${String(b.token).split(".")[0]}` });
    if (b.caCertHash !== s.caCertHash) return send(res, 403, { error: `cluster CA found in cluster-info configmap is invalid: none of the public keys "${s.caCertHash}" are pinned` });
    if (b.controlPlane && b.certificateKey !== s.certificateKey) return send(res, 403, { error: "error downloading certs: error decoding certificate key: the certificate key is invalid or expired" });
    if (s.nodes.some((n) => n.name === b.name)) return send(res, 409, { error: `a Node with name ${b.name} and status Ready already exists in the cluster` });
    s.seq += 1;
    const labels = { "kubernetes.io/hostname": b.name, ...(b.controlPlane ? { "node-role.kubernetes.io/control-plane": "" } : {}) };
    s.nodes.push({ name: b.name, ip: b.ip, seq: s.seq, joinedAt: Date.now(), controlPlane: !!b.controlPlane, version: s.version, labels, taints: b.controlPlane ? ["node-role.kubernetes.io/control-plane:NoSchedule"] : [] });
    save(s);
    // Sandbox simplification: every node gets the one API token (kubelet.conf), so `kubeadm upgrade node` works on workers.
    return send(res, 200, { adminToken: s.adminToken, seq: s.seq });
  }
  // kubeadm's "kubeadm-certs" Secret, reduced to what a joining etcd member needs; the
  // certificate key guards it as it encrypts the real one.
  if (req.method === "GET" && parts[0] === "kubeadm-certs") {
    if (req.headers["x-certificate-key"] !== s.certificateKey)
      return send(res, 403, { error: "error downloading certs: the certificate key is invalid or expired" });
    const etcd = s.etcd || {};
    const item = { "etcd-endpoint": etcd.endpoint, "etcd-ca.crt": etcd.caCert, "etcd-ca.key": etcd.caKey }[parts[1]];
    return item ? send(res, 200, item) : send(res, 404, { error: `secrets "kubeadm-certs" has no ${parts[1]}` });
  }
  if (!authed) return send(res, 401, { error: "Unauthorized" });
  if (req.method === "GET" && url.pathname === "/nodes") {
    if (url.searchParams.get("o") === "json") return send(res, 200, { items: s.nodes });
    return send(res, 200, table(s.nodes, url.searchParams.get("o") === "wide"));
  }
  if (req.method === "GET" && url.pathname === "/pods") {
    // kube-system holds the static etcd pod of each control-plane node (the real etcd runs
    // there); it is reported ready unless a test marked its node notReady in the state file.
    const pods = url.searchParams.get("ns") !== "kube-system" ? [] : s.nodes.filter((n) => n.controlPlane).map((n) => ({
      metadata: { name: `etcd-${n.name}`, namespace: "kube-system" },
      spec: { nodeName: n.name },
      status: { containerStatuses: [{ name: "etcd", ready: !n.notReady }] },
    }));
    return send(res, 200, { items: pods });
  }
  if (req.method === "POST" && url.pathname === "/tokens") {
    const b = await readBody(req);
    s.tokens.push(b.token);
    save(s);
    return send(res, 200, { ok: true });
  }
  if (req.method === "POST" && url.pathname === "/certificate-key") {
    const b = await readBody(req);
    s.certificateKey = b.certificateKey;
    save(s);
    return send(res, 200, { ok: true });
  }
  if (req.method === "POST" && url.pathname === "/apply") {
    const b = await readBody(req);
    s.seq += 1;
    s.objects.push({ seq: s.seq, source: b.source, sha256: b.sha256, at: Date.now() });
    save(s);
    return send(res, 200, { ok: true });
  }
  if (url.pathname === "/version") {
    if (req.method === "POST") {
      s.version = (await readBody(req)).version;
      save(s);
    }
    return send(res, 200, { version: s.version });
  }
  if (req.method === "GET" && url.pathname === "/objects") return send(res, 200, { items: s.objects });
  if (parts[0] === "nodes" && parts[1]) {
    const node = s.nodes.find((n) => n.name === parts[1]);
    if (!node) return send(res, 404, { error: `nodes ${parts[1]} not found` });
    if (req.method === "DELETE") {
      s.nodes = s.nodes.filter((n) => n !== node);
      save(s);
      return send(res, 200, { ok: true });
    }
    const b = await readBody(req);
    switch (parts[2]) {
      case "labels":
        for (const [k, v] of Object.entries(b.set || {})) node.labels[k] = v;
        for (const k of b.remove || []) delete node.labels[k];
        break;
      case "taints":
        for (const t of b.add || []) if (!node.taints.includes(t)) node.taints.push(t);
        for (const t of b.remove || []) {
          const key = (x) => x.split(":")[0].split("=")[0];
          const eff = t.includes(":") ? t.split(":").pop() : undefined;
          node.taints = node.taints.filter((x) => !(key(x) === key(t) && (eff === undefined || x.split(":").pop() === eff)));
        }
        break;
      case "schedulable":
        node.unschedulable = !b.schedulable;
        break;
      case "version":
        node.version = b.version;
        break;
      default:
        return send(res, 404, { error: "unknown operation" });
    }
    save(s);
    return send(res, 200, { ok: true });
  }
  return send(res, 404, { error: `the server could not find the requested resource (${req.method} ${url.pathname})` });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => send(res, 500, { error: String(err && err.message) }));
});
server.listen(Number(port), host, () => {
  fs.writeFileSync(args.pidfile || path.join(path.dirname(stateFile), "apiserver.pid"), String(process.pid));
});
