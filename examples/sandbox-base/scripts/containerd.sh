#!/bin/sh
# SANDBOX STAND-IN (tests and demo only): the real script installs containerd from cri/.
# Here nothing can run containers, so it records the call and writes the config files the
# real script would (containerd reads registry mirrors from /etc/containerd/certs.d).
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal containerd.sh "$@"
mkdir -p /etc/containerd/certs.d "$SANDBOX_STATE"
cat >/etc/containerd/config.toml <<CFG
# written by the sandbox containerd.sh stand-in (no containerd runs here)
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
CFG
echo "containerd (sandbox) configured" >"$SANDBOX_STATE/containerd.installed"
echo "containerd: sandbox stand-in configured /etc/containerd/config.toml"
