#!/usr/bin/env node
// SANDBOX STAND-IN (tests and demo only): what IPVS + lvscare do for a worker, in user space.
// Listens on the VIP, forwards each connection to the next healthy real server (round robin);
// a real server is healthy when a TCP connect succeeds (checked every 2 s).
"use strict";
const net = require("node:net");
const fs = require("node:fs");
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split(/=(.*)/s).slice(0, 2)));
const [vip, vport] = args.vs.split(":");
const servers = args.rs.split(",").map((r) => ({ host: r.split(":")[0], port: Number(r.split(":")[1]), healthy: true }));
let next = 0;
function check() {
  for (const s of servers) {
    const c = net.connect({ host: s.host, port: s.port, timeout: 1000 });
    c.on("connect", () => ((s.healthy = true), c.destroy()));
    c.on("error", () => (s.healthy = false));
    c.on("timeout", () => ((s.healthy = false), c.destroy()));
  }
}
setInterval(check, 2000).unref();
check();
const server = net.createServer((client) => {
  const live = servers.filter((s) => s.healthy);
  if (live.length === 0) return client.destroy();
  const s = live[next++ % live.length];
  const up = net.connect({ host: s.host, port: s.port });
  client.pipe(up).pipe(client);
  up.on("error", () => client.destroy());
  client.on("error", () => up.destroy());
});
server.listen(Number(vport), vip, () => fs.writeFileSync(args.pidfile, String(process.pid)));
