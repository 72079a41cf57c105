#!/bin/sh
# SANDBOX STAND-IN (tests and demo only): undoes scripts/init-kube.sh.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal clean-kube.sh "$@"
rm -rf /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d /etc/sysctl.d/k8s.conf
