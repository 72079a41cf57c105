#!/bin/sh
# SANDBOX STAND-IN (tests and demo only): undoes scripts/containerd.sh.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal uninstall-containerd.sh "$@"
rm -rf /etc/containerd "$SANDBOX_STATE/containerd.installed"
