#!/bin/bash
# `make bench-multihost`: tunnels and OVN across three simulated hosts, times
# and ratios in one run against the targets of issue 18 (the measuring,
# checking and reporting are tests/bench/multihost.py's; this script gives it
# a network namespace of its own and a raised priority, as tests/bench.sh does).
#
#   BENCH_ROUNDS=5     samples per median (first packet, OVN bind -> TCP)
#   BENCH_OVN_N=50     containers put on OVN logical ports, each way
#   BENCH_NICE=0       run at normal priority (default -10)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "make bench-multihost needs root (netns, Open vSwitch, OVN)" >&2; exit 1; }
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovs-appctl ovn-northd ovn-controller ovn-nbctl ovn-sbctl \
         ip nsenter unshare ethtool ping python3; do
    command -v $t >/dev/null || { echo "missing $t: run 'make deps'" >&2; exit 1; }
done
if [ -z "${OVSRUN_BENCH_NETNS:-}" ]; then
    exec nice -n "${BENCH_NICE:--10}" unshare --net env OVSRUN_BENCH_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
for s in mesh ovn-attach; do
    [ -f scripts/$s.wasm ] || { echo "scripts/$s.wasm is missing: run 'make build'" >&2; exit 1; }
done
exec python3 tests/bench/multihost.py --bin "$BIN" --scripts "$PWD/scripts" \
    --rounds "${BENCH_ROUNDS:-5}" --n "${BENCH_OVN_N:-50}"
