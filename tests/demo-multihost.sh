#!/bin/bash
# `make demo-multihost`: containers on different hosts, on one machine.
# `ovs-run sandbox up --hosts 3 --ovn` starts three simulated hosts A, B, C
# (a network namespace each with its own Open vSwitch, joined by an
# underlay; OVN's central daemons on A, ovn-controller on every host). Then,
# running ovs-run "on" a host with `sandbox exec --host`:
#   1. a VXLAN full mesh (scripts/mesh.wasm on each host) carries ping and a
#      2 MiB HTTP transfer between a container on A and one on C;
#   2. an OVN logical switch (ovn-network.wasm) with a port on B and one on C
#      (ovn-attach.wasm) carries the same.
# Containers are network namespaces (no Docker needed). Every check is made
# without ovs-run (ovs-vsctl, ovn-nbctl/ovn-sbctl, ping, curl). Everything is
# removed on exit, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
[ "$(id -u)" = 0 ] || { echo "make demo-multihost needs root (netns, Open vSwitch, OVN)" >&2; exit 1; }
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovn-northd ovn-controller ovn-nbctl ovn-sbctl \
         ip nsenter ethtool ping curl python3; do
    command -v $t >/dev/null || { echo "missing $t: run 'make deps'" >&2; exit 1; }
done
for s in mesh ovn-network ovn-attach; do
    [ -f scripts/$s.wasm ] || { echo "scripts/$s.wasm is missing: run 'make build'" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "$BIN is missing: run 'make build'" >&2; exit 1; }

WORK=$(mktemp -d /tmp/ovs-run-demo-multihost.XXXXXX)
SB=$WORK/sandbox
# The "containers": network namespaces, named after this run.
CA=ovsrun-dmh$$-a CC=ovsrun-dmh$$-c OB=ovsrun-dmh$$-ob OC=ovsrun-dmh$$-oc
HTTP_PID=
cleanup() {
    [ -z "$HTTP_PID" ] || kill "$HTTP_PID" 2>/dev/null || true
    for n in $CA $CC $OB $OC; do ip netns del "$n" 2>/dev/null || true; done
    [ ! -d "$SB" ] || "$BIN" sandbox down --dir "$SB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local h=$1; shift; "$BIN" sandbox exec --dir "$SB" --host "$h" -- "$@"; }
underlay() { echo "172.31.0.$((10 + $(printf '%d' "'$1") - 65))"; }
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$n" "$@"; }

# A container on host $1: netns $2 with eth0 at $3, a port of $4 there
# (veth by hand, MTU 1450: VXLAN takes 50 of the underlay's 1500; TX
# checksum offload off, as the userspace datapath needs for TCP).
plug() {
    local h=$1 n=$2 cidr=$3 br=$4 port=ct-$2
    port=${port: -15}
    ip netns add "$n"
    on "$h" ip link add "$port" mtu 1450 type veth peer name eth0 mtu 1450 netns "$n"
    on "$h" ip link set "$port" up
    on "$h" ovs-vsctl add-port "$br" "$port"
    ip -n "$n" addr add "$cidr" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" link set lo up
    in_ns "$n" ethtool -K eth0 tx off >/dev/null
}

# 2 MiB over HTTP from the server netns $1 (address $2) to the client netns $3.
transfer() {
    local server=$1 ip=$2 client=$3
    head -c $((2 << 20)) /dev/urandom >"$WORK/blob"
    # nsenter itself, not the in_ns function: a function run in the background
    # is a subshell, and killing $! would leave the server running.
    nsenter --net="/run/netns/$server" python3 -m http.server 8080 --bind "$ip" --directory "$WORK" >/dev/null 2>&1 &
    HTTP_PID=$!
    for _ in $(seq 50); do in_ns "$client" curl -s -o /dev/null "http://$ip:8080/" && break; sleep 0.1; done
    in_ns "$client" curl -sS -m 20 -o "$WORK/got" -w "fetched %{size_download} bytes in %{time_total} s\n" \
        "http://$ip:8080/blob"
    cmp "$WORK/blob" "$WORK/got" && echo "the 2 MiB arrived intact"
    kill "$HTTP_PID"; wait "$HTTP_PID" 2>/dev/null || true; HTTP_PID=
}

step "three simulated hosts with OVN: ovs-run sandbox up --hosts 3 --ovn"
"$BIN" sandbox up --hosts 3 --ovn --dir "$SB"

step "the underlay: host A pings B and C (ovs-run sandbox exec --host A -- ping ...)"
for h in B C; do on A ping -c 1 -W 2 "$(underlay $h)" | grep 'bytes from'; done

step "a VXLAN full mesh on br-mesh: on each host, ovs-run scripts/mesh.wasm with the other two"
for h in A B C; do
    peers=$(for p in A B C; do [ $p = $h ] || underlay $p; done)
    printf 'host %s: ' $h
    on $h "$BIN" scripts/mesh.wasm br-mesh --kind=vxlan $peers
done
echo "host A's tunnels (ovs-vsctl):"
on A ovs-vsctl --columns=name,options find interface type=vxlan | grep -E '^(name|options)'

step "a container on A (10.70.0.1) and one on C (10.70.0.3), on br-mesh"
plug A $CA 10.70.0.1/24 br-mesh
plug C $CC 10.70.0.3/24 br-mesh
echo "containers: netns $CA on A, netns $CC on C"

step "VXLAN: ping from A's container to C's"
in_ns $CA ping -c 3 -i 0.2 -W 2 10.70.0.3 | grep -E 'bytes from|packet loss'

step "VXLAN: TCP, 2 MiB over HTTP from C's container to A's"
transfer $CC 10.70.0.3 $CA

step "OVN: the 3 chassis in the southbound database (ovn-sbctl)"
on A ovn-sbctl --bare --columns=name list chassis | grep . | sort | paste -sd' ' | sed 's/^/chassis: /'

step "OVN: logical switch blue (ovn-network.wasm), a port on B and one on C (ovn-attach.wasm)"
on A "$BIN" scripts/ovn-network.wasm switch blue
ip netns add $OB
ip netns add $OC
on B "$BIN" scripts/ovn-attach.wasm blue web-b netns:$OB --ipaddress=10.80.0.2/24
on C "$BIN" scripts/ovn-attach.wasm blue web-c netns:$OC --ipaddress=10.80.0.3/24
on A ovn-nbctl show blue
echo "where each port is bound (ovn-sbctl show):"
on A ovn-sbctl show | grep -E '^Chassis|Port_Binding'

step "OVN: ping from B's port to C's (Geneve, set up by ovn-controller)"
in_ns $OB ping -c 3 -i 0.2 -W 2 10.80.0.3 | grep -E 'bytes from|packet loss'

step "OVN: TCP, 2 MiB over HTTP from C's port to B's"
transfer $OC 10.80.0.3 $OB

step "ovs-run sandbox down: every host, the underlay and OVN go"
for n in $CA $CC $OB $OC; do ip netns del $n; done
"$BIN" sandbox down --dir "$SB"
if ip netns list | grep -q 'ovsrun-dmh'"$$" || pgrep -f "$SB" >/dev/null || [ -e "$SB" ]; then
    echo "something of the sandbox is left" >&2
    exit 1
fi
echo "no namespace, no daemon, no directory left"
echo "demo finished"
