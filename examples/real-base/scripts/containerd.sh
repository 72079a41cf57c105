#!/bin/bash
# Installs containerd from cri/containerd.tar.gz (run by sealer on every host, cwd = rootfs).
set -euo pipefail
tar -xzf cri/containerd.tar.gz -C /
mkdir -p /etc/containerd/certs.d
containerd config default > /etc/containerd/config.toml
sed -i 's|config_path = ""|config_path = "/etc/containerd/certs.d"|; s|SystemdCgroup = false|SystemdCgroup = true|' /etc/containerd/config.toml
systemctl daemon-reload
systemctl enable --now containerd
