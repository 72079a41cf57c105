#!/bin/sh
# SANDBOX STAND-IN for the image's registry start script (tests and demo only). The contract
# (same for a real base image): environment
#   REGISTRY_LISTEN     ip:port to serve on            REGISTRY_DATA_DIR  the image's registry/ dir
#   REGISTRY_CERT/KEY   TLS certificate and key        REGISTRY_HTPASSWD  htpasswd file or empty
#   REGISTRY_STATE_DIR  where config, pid and log go
# A real image runs the registry container from images/; here Debian's docker-registry (the
# CNCF distribution registry) is started directly when it is installed, else the call is only
# recorded. Re-running restarts it with the new config.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal init-registry.sh "$@"
: "${REGISTRY_LISTEN:?}" "${REGISTRY_DATA_DIR:?}" "${REGISTRY_STATE_DIR:?}" "${REGISTRY_CERT:?}" "${REGISTRY_KEY:?}"
mkdir -p "$REGISTRY_STATE_DIR" "$REGISTRY_DATA_DIR"
cfg=$REGISTRY_STATE_DIR/config.yml
{
  echo "version: 0.1"
  echo "log: { level: warn }"
  echo "storage: { filesystem: { rootdirectory: $REGISTRY_DATA_DIR }, delete: { enabled: true } }"
  echo "http: { addr: $REGISTRY_LISTEN, tls: { certificate: $REGISTRY_CERT, key: $REGISTRY_KEY } }"
  [ -z "${REGISTRY_HTPASSWD:-}" ] || echo "auth: { htpasswd: { realm: sealer-registry, path: $REGISTRY_HTPASSWD } }"
} >"$cfg"
pidfile=$REGISTRY_STATE_DIR/registry.pid
if [ -f "$pidfile" ]; then
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
fi
if ! command -v docker-registry >/dev/null 2>&1; then
  echo "sandbox: docker-registry is not installed; registry not started (config in $cfg)"
  exit 0
fi
setsid nohup docker-registry serve "$cfg" >"$REGISTRY_STATE_DIR/registry.log" 2>&1 </dev/null &
echo $! >"$pidfile"
i=0
until curl -sk --max-time 1 -o /dev/null "https://$REGISTRY_LISTEN/v2/"; do
  i=$((i + 1))
  [ $i -lt 100 ] || die "registry did not start on $REGISTRY_LISTEN (see $REGISTRY_STATE_DIR/registry.log)"
  sleep 0.1
done
echo "registry serving $REGISTRY_DATA_DIR on https://$REGISTRY_LISTEN"
