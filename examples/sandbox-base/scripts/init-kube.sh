#!/bin/sh
# SANDBOX STAND-IN (tests and demo only): the real script installs kubelet/kubeadm/kubectl into
# /usr/bin, writes the kubelet unit and sysctls. Here it records the call and writes the kubelet
# files under /etc (the executor puts the image's bin/ on PATH, so nothing goes to /usr).
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal init-kube.sh "$@"
mkdir -p /etc/systemd/system/kubelet.service.d /etc/sysctl.d
[ ! -f "$rootfs/etc/kubelet.service" ] || cp "$rootfs/etc/kubelet.service" /etc/systemd/system/kubelet.service
[ ! -f "$rootfs/etc/10-kubeadm.conf" ] || cp "$rootfs/etc/10-kubeadm.conf" /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n' >/etc/sysctl.d/k8s.conf
echo "kubelet files installed (sandbox)"
