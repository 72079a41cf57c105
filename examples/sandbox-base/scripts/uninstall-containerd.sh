#!/bin/sh
# SANDBOX BASE (tests and demo only): undoes scripts/containerd.sh. Containers are killed and
# deleted through containerd first (their shims then exit), then containerd is stopped and its
# binaries, configuration, root and state are removed.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal uninstall-containerd.sh "$@"
pidfile=$SANDBOX_STATE/containerd.pid
if [ -f "$pidfile" ] && [ -x /usr/local/bin/ctr ] && /usr/local/bin/ctr --connect-timeout 2s version >/dev/null 2>&1; then
  c=/usr/local/bin/ctr
  for ns in $($c namespaces ls -q); do
    for t in $($c -n "$ns" tasks ls -q); do $c -n "$ns" tasks kill -a -s SIGKILL "$t" 2>/dev/null || true; done
    for t in $($c -n "$ns" tasks ls -q); do
      i=0
      until $c -n "$ns" tasks rm -f "$t" >/dev/null 2>&1 || [ $i -ge 50 ]; do i=$((i + 1)); sleep 0.1; done
    done
    for x in $($c -n "$ns" containers ls -q); do $c -n "$ns" containers rm "$x" >/dev/null 2>&1 || true; done
  done
fi
stop_pidfile "$pidfile" 20
# Mounts containerd left (snapshots of containers that did not go away), deepest first.
awk '$2 ~ "^/(run|var/lib)/containerd/" { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
# /var/lib/containerd may be a mount point itself: empty it, keep it.
if [ -d /var/lib/containerd ]; then find /var/lib/containerd -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
rm -rf /run/containerd /etc/containerd "$SANDBOX_STATE/containerd.installed" \
  /usr/local/bin/containerd /usr/local/bin/containerd-shim-runc-v2 /usr/local/bin/ctr /usr/local/bin/runc
echo "containerd stopped and removed"
