#!/bin/sh
# SANDBOX BASE (tests and demo only): installs and starts the REAL containerd (Debian's,
# copied into bin/ at build time) the way the real script does, minus systemd: the binaries go
# to /usr/local/bin, /etc/containerd/config.toml is written, and containerd is (re)started as a
# plain daemon on its default socket /run/containerd/containerd.sock, so `ctr` in a login shell
# reaches it with no flags. Re-running restarts it with the current configuration (the
# registry-client step does that after it writes registry credentials).
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal containerd.sh "$@"
mkdir -p /etc/containerd/certs.d "$SANDBOX_STATE"
umask 077
cat >/etc/containerd/config.toml <<CFG
# written by the sandbox base's scripts/containerd.sh
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
CFG
# Registry credentials for the CRI plugin, as sealer's registry-client step splices them in.
auth=/etc/containerd/sealer-registry-auth.toml
if [ -f "$auth" ]; then
  { echo "# BEGIN sealer registry auth"; cat "$auth"; echo "# END sealer registry auth"; } >>/etc/containerd/config.toml
fi
chmod 600 /etc/containerd/config.toml
umask 022
if [ ! -x "$rootfs/bin/containerd" ]; then
  # A platform variant built on a host of another architecture (see Kubefile).
  echo "configured only: this image variant carries no containerd binary" >"$SANDBOX_STATE/containerd.installed"
  echo "containerd: this image variant has no containerd binary (built on a host of another architecture); wrote /etc/containerd/config.toml only"
  exit 0
fi
pidfile=$SANDBOX_STATE/containerd.pid
logfile=/var/log/sealer-sandbox/containerd.log
stop_pidfile "$pidfile" 20
# Copies renamed into place: never rewrite a binary a running shim may be executing.
for b in containerd containerd-shim-runc-v2 ctr runc; do
  if ! cmp -s "$rootfs/bin/$b" "/usr/local/bin/$b"; then
    cp "$rootfs/bin/$b" "/usr/local/bin/.$b.new"
    chmod 755 "/usr/local/bin/.$b.new"
    mv -f "/usr/local/bin/.$b.new" "/usr/local/bin/$b"
  fi
done
start_daemon "$pidfile" "$logfile" /usr/local/bin/containerd --config /etc/containerd/config.toml
wait_until 30 "containerd (socket /run/containerd/containerd.sock)" "$logfile" /usr/local/bin/ctr --connect-timeout 1s version
echo "containerd $(/usr/local/bin/containerd --version | awk '{ print $3 }') running (pid $(cat "$pidfile"))" >"$SANDBOX_STATE/containerd.installed"
echo "containerd: $(cat "$SANDBOX_STATE/containerd.installed"), socket /run/containerd/containerd.sock"
