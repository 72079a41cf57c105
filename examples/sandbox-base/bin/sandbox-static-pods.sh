#!/bin/sh
# SANDBOX STAND-IN (tests and demo only) for the kubelet's static pods, limited to etcd: while
# /etc/kubernetes/manifests/etcd.yaml exists, the REAL etcd runs with the flags the manifest
# lists (restarted if it exits); when the manifest goes away, etcd is stopped. That is what
# `sealer restore` relies on with a real kubelet: park the manifest, swap the data dir, put it back.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox-lib.sh"
manifest=/etc/kubernetes/manifests/etcd.yaml
pidfile=$SANDBOX_STATE/etcd.pid
logfile=/var/log/sealer-sandbox/etcd.log
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
trap 'stop_pidfile "$pidfile" 20; exit 0' TERM INT
while :; do
  if [ -f "$manifest" ]; then
    if ! running; then
      # shellcheck disable=SC2046 # one flag per manifest line, none with spaces
      start_daemon "$pidfile" "$logfile" "$here/etcd" $(sed -n 's/^ *- \(--.*\)$/\1/p' "$manifest")
    fi
  elif [ -f "$pidfile" ]; then
    stop_pidfile "$pidfile" 20
  fi
  sleep 0.2
done
