#!/bin/bash
# `make bench`: ovs-run against `ovs-docker` and a hand-batched shell script,
# side by side in the same run (tests/bench/bench.py does the timing,
# checking and reporting; this script provides the world it runs in).
#
#   make bench                     N=100
#   make bench N=1000              or BENCH_NS="10 100 1000" for several
#   BENCH_ROUNDS=3                 rounds per N (the median counts)
#   BENCH_CONTENDERS="hand-batched attach-many"   a subset
#   BENCH_SLOW_MAX=100             above this N, skip the per-container loops
#                                  (ovs-docker, attach.wasm, submit): at N=1000 they take minutes
#   BENCH_OUT=DIR                  where bench.json and bench.svg go (docs)
#   BENCH_NICE=0                   run at normal priority (default -10)
#
# Everything runs in a network namespace of its own (so this ovs-vswitchd's
# userspace datapath cannot meet another one's), against a private
# ovsdb-server + ovs-vswitchd (`ovs-run sandbox up`) and a private dockerd
# unless one already answers (tests/support/dockerd.sh). N busybox
# containers with --net=none are started once and shared by the contenders;
# everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "make bench needs root (veth, netns, Open vSwitch)" >&2; exit 1; }
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovs-docker dockerd ip nsenter unshare python3; do
    command -v $t >/dev/null || { echo "missing $t: run 'make deps'" >&2; exit 1; }
done

# A network namespace of our own, and a raised priority (BENCH_NICE, default
# -10; 0 to leave it) so that other work on the machine disturbs the
# figures less. Every contender, and the daemons, run with the same priority.
if [ -z "${OVSRUN_BENCH_NETNS:-}" ]; then
    exec nice -n "${BENCH_NICE:--10}" unshare --net env OVSRUN_BENCH_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

source tests/support/dockerd.sh
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
NS=${BENCH_NS:-${N:-100}}
ROUNDS=${BENCH_ROUNDS:-1}
CONTENDERS=${BENCH_CONTENDERS:-floor ovs-docker hand-batched attach.wasm submit attach-many}
OUT=${BENCH_OUT:-docs}
MAX=$(tr ' ' '\n' <<<"$NS" | sort -n | tail -1)

WORK=$(mktemp -d /var/tmp/ovs-run-bench.XXXXXX)
PREFIX=ovsrun-bench-$$-
cleanup() {
    local status=$?
    set +e
    if [ $status != 0 ] && ! kill -0 "$(cat "$WORK/ovs/vswitchd.pid" 2>/dev/null)" 2>/dev/null; then
        echo "ovs-vswitchd of the benchmark is gone; the end of its log:" >&2
        tail -5 "$WORK/ovs/vswitchd.log" >&2
    fi
    local ids
    ids=$(docker ps -aq --filter "name=^$PREFIX" 2>/dev/null)
    [ -n "$ids" ] && xargs -n 50 -P 4 docker rm -f <<<"$ids" >/dev/null 2>&1
    "$BIN" sandbox down --dir "$WORK/ovs" >/dev/null 2>&1
    docker_down
    rm -rf "$WORK"
}
trap cleanup EXIT
# Interrupted (Ctrl-C, kill): exit through the cleanup too.
trap 'exit 130' INT TERM

# OVS_RUNDIR before `sandbox up`: ovs-vswitchd then keeps its per-bridge
# sockets in the sandbox too.
export OVS_RUNDIR=$WORK/ovs
# --no-netns: this script runs in a network namespace of its own already
# (unshare above), where ovs-docker and the shell baselines work too.
eval "$("$BIN" sandbox up --no-netns --dir "$WORK/ovs")"
docker_up "$WORK/docker"
echo "OVS: $OVS_RUNDIR  docker: $DOCKER_HOST"

echo "starting $MAX containers (--net=none) ..."
t0=$(date +%s)
seq -f "$PREFIX%04g" 1 "$MAX" |
    xargs -P 4 -I{} docker run -d --net=none --name {} "$IMAGE" /bin/sleep 86400 >/dev/null
echo "started in $(($(date +%s) - t0)) s"

mkdir -p "$WORK/cache"
chmod 700 "$WORK/cache"
python3 tests/bench/bench.py --bin "$BIN" --scripts scripts --noop tests/guests/noop.wasm \
    --cache-dir "$WORK/cache" --ns "$NS" --rounds "$ROUNDS" --contenders "$CONTENDERS" \
    --slow-max "${BENCH_SLOW_MAX:-0}" \
    --out "$OUT" $(seq -f "$PREFIX%04g" 1 "$MAX")
