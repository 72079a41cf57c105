#!/bin/bash
# Installs kubelet/kubeadm/kubectl and the kubelet unit (cwd = rootfs).
set -euo pipefail
install -m 0755 bin/kubeadm bin/kubectl bin/kubelet bin/crictl /usr/bin/
[ ! -f bin/conntrack ] || install -m 0755 bin/conntrack /usr/bin/
install -m 0644 etc/kubelet.service /etc/systemd/system/kubelet.service
mkdir -p /etc/systemd/system/kubelet.service.d
install -m 0644 etc/10-kubeadm.conf /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
modprobe br_netfilter || true
printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.ip_forward = 1\n' > /etc/sysctl.d/k8s.conf
sysctl --system >/dev/null
swapoff -a
systemctl daemon-reload
systemctl enable kubelet
