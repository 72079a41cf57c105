#!/bin/bash
# Starts the cluster registry (environment contract: see examples/sandbox-base/scripts/init-registry.sh):
# REGISTRY_LISTEN REGISTRY_DATA_DIR REGISTRY_STATE_DIR REGISTRY_CERT REGISTRY_KEY REGISTRY_HTPASSWD
set -euo pipefail
ctr -n k8s.io images import images/registry.tar >/dev/null
mkdir -p "$REGISTRY_STATE_DIR"
cfg=$REGISTRY_STATE_DIR/config.yml
{
  echo "version: 0.1"
  echo "storage: { filesystem: { rootdirectory: /var/lib/registry }, delete: { enabled: true } }"
  echo "http: { addr: :${REGISTRY_LISTEN##*:}, tls: { certificate: /certs/registry.crt, key: /certs/registry.key } }"
  [ -z "${REGISTRY_HTPASSWD:-}" ] || echo "auth: { htpasswd: { realm: sealer-registry, path: /auth/htpasswd } }"
} > "$cfg"
ctr -n k8s.io task kill -s SIGKILL sealer-registry 2>/dev/null || true
ctr -n k8s.io container rm sealer-registry 2>/dev/null || true
ctr -n k8s.io run -d --net-host \
  --mount type=bind,src="$REGISTRY_DATA_DIR",dst=/var/lib/registry,options=rbind:ro \
  --mount type=bind,src="$(dirname "$REGISTRY_CERT")",dst=/certs,options=rbind:ro \
  --mount type=bind,src="$cfg",dst=/etc/docker/registry/config.yml,options=rbind:ro \
  ${REGISTRY_HTPASSWD:+--mount type=bind,src="$REGISTRY_HTPASSWD",dst=/auth/htpasswd,options=rbind:ro} \
  docker.io/library/registry:2 sealer-registry
