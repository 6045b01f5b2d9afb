#!/bin/bash
# `make demo`: the main job end to end in a private sandbox. `ovs-run sandbox
# up --docker` starts its own ovsdb-server + ovs-vswitchd (userspace datapath)
# in a network namespace of its own, so no other Open vSwitch on this machine
# (the host's, a test run) can meet it, and its own dockerd with a busybox
# image built offline. A container with no network is attached by
# scripts/seed-demo.wasm (bridge, host address, attach with address and route,
# ping, 1 MiB over TCP); then the result is checked without ovs-run: ovs-vsctl,
# ip and ping through nsenter, ethtool, and a file fetched over HTTP from the
# container. Everything is torn down on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
[ "$(id -u)" = 0 ] || { echo "make demo needs root (veth, netns, Open vSwitch)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/ovs-run-demo.XXXXXX)
C=ovsrun-demo-$$
BR=br-demo$$
HTTP_PID=
cleanup() {
    [ -z "$HTTP_PID" ] || kill "$HTTP_PID" 2>/dev/null || true
    docker rm -f "$C" >/dev/null 2>&1 || true
    "$BIN" sandbox down --dir "$WORK/sandbox" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "private Open vSwitch and dockerd: ovs-run sandbox up --docker"
eval "$("$BIN" sandbox up --docker --dir "$WORK/sandbox")"
echo "network namespace $OVS_RUN_NETNS, OVS_RUNDIR=$OVS_RUNDIR, DOCKER_HOST=$DOCKER_HOST"
in_sandbox() { "$BIN" sandbox exec --dir "$WORK/sandbox" "$@"; }

step "a busybox container with no network"
docker run -d --net=none --name "$C" ovsrun-busybox:latest /bin/sleep 600 >/dev/null
echo "container $C started with --net=none"

step "ovs-run scripts/seed-demo.wasm --bridge=$BR --container=$C"
time "$BIN" -v --datapath netdev scripts/seed-demo.wasm --bridge="$BR" --container="$C"

step "what Open vSwitch says (ovs-vsctl show)"
ovs-vsctl show
step "what the container sees (nsenter ... ip addr / ip route / ethtool)"
PID=$(docker inspect -f '{{.State.Pid}}' "$C")
nsenter -t "$PID" -n ip addr show eth0
nsenter -t "$PID" -n ip route
# The userspace datapath forwards frames as they are: the container's end
# computes its own checksums (see README, "What attached means").
nsenter -t "$PID" -n ethtool -k eth0 | grep '^tx-checksumming'

step "ping from the container to the bridge, independently of ovs-run"
nsenter -t "$PID" -n ping -c 3 -i 0.2 10.10.0.1

step "TCP: 2 MiB over HTTP from the host side of the bridge to the container, independently of ovs-run"
head -c $((2 << 20)) /dev/urandom >"$WORK/blob"
# Not through the in_sandbox function: a function run in the background is a
# subshell, and $! would be that shell, not the server (which outlived the
# demo). `sandbox exec` execs in place, so $! is the server itself.
"$BIN" sandbox exec --dir "$WORK/sandbox" python3 -m http.server 8080 --bind 10.10.0.1 --directory "$WORK" \
    >/dev/null 2>&1 &
HTTP_PID=$!
for _ in $(seq 50); do nsenter -t "$PID" -n curl -s -o /dev/null http://10.10.0.1:8080/ && break; sleep 0.1; done
nsenter -t "$PID" -n curl -sS -m 20 -o "$WORK/got" -w 'fetched %{size_download} bytes in %{time_total} s\n' \
    http://10.10.0.1:8080/blob
cmp "$WORK/blob" "$WORK/got" && echo "the 2 MiB arrived intact"

step "detach again with scripts/detach.wasm"
"$BIN" scripts/detach.wasm "$BR" eth0 "$C"
ovs-vsctl list-ports "$BR"
echo "demo finished: everything it made is removed on exit"
