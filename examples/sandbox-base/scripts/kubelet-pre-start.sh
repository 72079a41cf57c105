#!/bin/sh
# SANDBOX STAND-IN (tests and demo only): the real script disables swap and loads br_netfilter.
set -eu
rootfs=$(cd "$(dirname "$0")/.." && pwd)
. "$rootfs/bin/sandbox-lib.sh"
journal kubelet-pre-start.sh "$@"
