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
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovs-docker dockerd ip nsenter unshare \
         ovn-northd ovn-controller ovn-nbctl ovn-sbctl ethtool ping sha256sum; do
    command -v $t >/dev/null || { echo "missing $t: run 'make deps'" >&2; exit 1; }
done

# Build the tests (this may fetch crates) before leaving the host's network,
# then run everything in a network namespace of its own: the private
# ovs-vswitchd instances' userspace datapath must never meet another one
# (the host's, another checkout's tests), which would break both.
if [ -z "${OVSRUN_TEST_NETNS:-}" ]; then
    cargo test --release --no-run -p ovs-run
    exec unshare --net env OVSRUN_TEST_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

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

# --no-fail-fast: every suite runs and reports, not only those before the first failure.
cargo test --release --no-fail-fast -p ovs-run -- --test-threads=2
