#!/usr/bin/env bash
# End-to-end demo (run as root, after `npm ci && npm run build`; `npm run demo` does both):
#   build the sandbox base image and an app image, create 3 local nodes (1 master + 2 workers),
#   `sealer run` the image onto them, then `sealer apply -f Clusterfile` (labels/taints added),
#   change one app file, rebuild (one layer changes), `sealer plan`, `sealer apply` (only that
#   blob is sent, only that app re-launched), show the stand-ins' journals, clean up.
# The sandbox base image's kubeadm/kubectl are STAND-INS that journal their calls (this machine
# cannot run Kubernetes); everything else is real: build, SSH, distribution, registry, files.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "demo: local nodes need root (network namespaces, overlay mounts); run: sudo npm run demo" >&2
  exit 1
fi
[ -f dist/provider/cli/main.js ] || npm run build
sealer() { node bin/sealer.js "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

own_home=false
if [ -z "${SEALER_HOME:-}" ]; then
  SEALER_HOME=$(mktemp -d /tmp/sealer-demo-XXXXXX)
  own_home=true
fi
export SEALER_HOME
started=$(date +%s)
name=demo$(printf '%04x' $(($$ % 65536)))
work=$(mktemp -d /tmp/sealer-demo-work-XXXXXX)
cleanup() {
  status=$?
  say "cleanup"
  sealer nodes delete --name "$name" || true
  rm -rf "$work"
  if $own_home; then rm -rf "$SEALER_HOME"; fi
  exit $status
}
trap cleanup EXIT INT TERM

say "build the sandbox base image (stand-in kubeadm/kubectl: tests and demo only)"
sealer build --build-mode lite -t sandbox-base:v1.28.2 examples/sandbox-base
say "build the app image on top of it"
cp -r examples/app "$work/app"
sealer build --build-mode lite -t sandbox-app:1 "$work/app"
sealer images

say "create 3 local nodes ($name-1..3): network namespaces with their own sshd, a sudo user 'deploy'"
sealer nodes create --count 3 --name "$name" --user deploy --sudo --json >"$work/nodes.json"
ips=($(node -e 'for (const n of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))) console.log(n.ip)' "$work/nodes.json"))
key=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].keyPath)' "$work/nodes.json")
m0=${ips[0]}
echo "master0 ${ips[0]}, workers ${ips[1]} ${ips[2]}"
on_m0() { ssh -q -i "$key" -o UserKnownHostsFile="$SEALER_HOME/known_hosts" -o StrictHostKeyChecking=yes "deploy@$m0" "$@"; }

say "sealer run: the whole install pipeline"
sealer run sandbox-app:1 -m "$m0" -n "${ips[1]},${ips[2]}" -u deploy --pk "$key" --cluster-name demo -e Greeting=hello
on_m0 'sudo /var/lib/sealer/demo/rootfs/bin/kubectl get nodes'

say "sealer apply -f Clusterfile: the same cluster, now with worker labels and taints"
cat >"$work/Clusterfile" <<CF
apiVersion: sealer.io/v2
kind: Cluster
metadata: { name: demo }
spec:
  image: sandbox-app:1
  env: [ "Greeting=hello" ]
  ssh: { user: deploy, pk: $key }
  hosts:
    - { ips: [ $m0 ], roles: [ master ] }
    - { ips: [ ${ips[1]}, ${ips[2]} ], roles: [ node ], labels: { disk: ssd }, taints: [ "dedicated=batch:NoSchedule" ] }
CF
sealer plan -f "$work/Clusterfile"
sealer apply -f "$work/Clusterfile"
say "a second apply: nothing to do"
sealer apply -f "$work/Clusterfile" --json

say "change one app file and rebuild: only that layer changes"
sed -i 's/replicas: 2/replicas: 3/' "$work/app/web/web.yaml"
sealer build --build-mode lite -t sandbox-app:1 "$work/app"
say "sealer plan: what the apply will run"
sealer plan -f "$work/Clusterfile"
say "sealer apply: sends one blob per host, re-launches only the web app"
sealer apply -f "$work/Clusterfile" --json

say "journals of the stand-in tools on each node"
for ip in "${ips[@]}"; do
  ssh -q -i "$key" -o UserKnownHostsFile="$SEALER_HOME/known_hosts" -o StrictHostKeyChecking=yes "deploy@$ip" cat /var/log/sealer-sandbox/journal.jsonl |
    node -e '
      const lines = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.ts >= Number(process.argv[2]));
      const count = {};
      for (const l of lines) { const k = `${l.tool} ${l.argv[0] ?? ""}`.trim(); count[k] = (count[k] ?? 0) + 1; }
      console.log(`${process.argv[1]}: ` + Object.entries(count).map(([k, v]) => `${k} x${v}`).join(", "));
    ' "$ip" "$started"
done
on_m0 'sudo /var/lib/sealer/demo/rootfs/bin/kubectl get nodes -o wide'
say "demo finished"
