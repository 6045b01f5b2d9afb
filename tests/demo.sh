#!/bin/bash
# `make demo`: the main job end to end in a private sandbox. Starts its own
# ovsdb-server + ovs-vswitchd (userspace datapath) and, when no Docker engine
# answers, its own dockerd; starts a busybox container with no network; runs
# scripts/seed-demo.wasm (bridge, host address, attach with address and
# route, ping); shows the result through ovs-vsctl and ip; tears it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/support/dockerd.sh
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
[ "$(id -u)" = 0 ] || { echo "make demo needs root (veth, netns, Open vSwitch)" >&2; exit 1; }
# A network namespace of its own: the demo's ovs-vswitchd must not meet
# another userspace datapath (the host's own OVS, a test run).
if [ -z "${OVSRUN_DEMO_NETNS:-}" ]; then
    exec unshare --net env OVSRUN_DEMO_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

WORK=$(mktemp -d /tmp/ovs-run-demo.XXXXXX)
C=ovsrun-demo-$$
BR=br-demo$$
cleanup() {
    docker rm -f "$C" >/dev/null 2>&1 || true
    "$BIN" sandbox down --dir "$WORK/ovs" >/dev/null 2>&1 || true
    docker_down
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "private Open vSwitch in $WORK/ovs"
eval "$("$BIN" sandbox up --dir "$WORK/ovs")"
echo "OVS_RUNDIR=$OVS_RUNDIR"

step "Docker engine and the busybox test image"
docker_up "$WORK/docker"
docker run -d --net=none --name "$C" "$IMAGE" /bin/sleep 600 >/dev/null
echo "container $C started with --net=none"

step "ovs-run scripts/seed-demo.wasm --bridge=$BR --container=$C"
time "$BIN" -v --datapath netdev scripts/seed-demo.wasm --bridge="$BR" --container="$C"

step "what Open vSwitch says (ovs-vsctl show)"
ovs-vsctl show
step "what the container sees (nsenter ... ip addr / ip route)"
PID=$(docker inspect -f '{{.State.Pid}}' "$C")
nsenter -t "$PID" -n ip addr show eth0
nsenter -t "$PID" -n ip route
step "ping from the container to the bridge, independently of ovs-run"
nsenter -t "$PID" -n ping -c 3 -i 0.2 10.10.0.1

step "detach again with scripts/detach.wasm"
"$BIN" scripts/detach.wasm "$BR" eth0 "$C"
ovs-vsctl list-ports "$BR"
echo "demo finished: everything it made is removed on exit"
