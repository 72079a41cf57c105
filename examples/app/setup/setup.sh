#!/bin/sh
# The shell app: runs on master0 with cwd = the cluster rootfs and the cluster env exported.
set -eu
mkdir -p /var/lib/sealer-sandbox
echo "setup ran in $(pwd) version=1" >> /var/lib/sealer-sandbox/setup.log
echo "setup done"
