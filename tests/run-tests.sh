#!/bin/bash
# `make test`: every test, against real daemons this script starts.
# Tests that need root, Open vSwitch or dockerd fail loudly when those are
# missing; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/support/dockerd.sh

if [ "$(id -u)" != 0 ]; then
    echo "make test needs root (network namespaces, veth, Open vSwitch)" >&2
    exit 1
fi
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovs-docker dockerd ip nsenter; do
    command -v $t >/dev/null || { echo "missing $t: run 'make deps'" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/ovs-run-test.XXXXXX)
cleanup() { docker_down; rm -rf "$WORK"; }
trap cleanup EXIT
# Everything the tests put in the temp dir (caches, journals, OVS dirs) goes
# away with this run.
mkdir -p "$WORK/tmp"
export TMPDIR=$WORK/tmp
docker_up "$WORK/docker"
export OVS_RUN_TEST_IMAGE=$IMAGE
echo "docker: $DOCKER_HOST"

cargo test --release -p ovs-run -- --test-threads=2
