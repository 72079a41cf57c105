#!/bin/sh
# BUILD TIME (Kubefile RUN, cwd = the image rootfs, on the build host): copies the build host's
# real containerd, containerd-shim-runc-v2, ctr, runc, etcd and etcdctl into bin/. ARCH is the
# platform being built; only the build host's own architecture has binaries here.
set -eu
host=$(dpkg --print-architecture 2>/dev/null || uname -m | sed 's/^x86_64$/amd64/; s/^aarch64$/arm64/')
if [ "${ARCH:-$host}" != "$host" ]; then
  echo "sandbox-base: this $host build host has no $ARCH binaries: the linux/$ARCH variant carries no containerd, runc or etcd"
  exit 0
fi
missing=""
for b in containerd containerd-shim-runc-v2 ctr runc etcd etcdctl; do
  # The system's binary, never the image's own bin/ (also on a RUN's PATH, after the host's).
  f=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$b" || true)
  if [ -z "$f" ]; then
    missing="$missing $b"
    continue
  fi
  cp "$f" "bin/$b"
  chmod 755 "bin/$b"
done
if [ -n "$missing" ]; then
  echo "sandbox-base needs the build host's real$missing: install the Debian packages (apt-get install containerd runc etcd-server etcd-client) and build again" >&2
  exit 1
fi
echo "sandbox-base: copied the build host's containerd $(containerd --version | awk '{ print $3 }'), runc and etcd into bin/"
