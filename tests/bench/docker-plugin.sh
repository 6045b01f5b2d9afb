#!/bin/bash
# `make bench`, Docker section (issue 17): `docker run -d` of N containers
#   (a) on an ovs-run network (ovs-run docker-plugin, its own IPAM),
#   (b) on a network of Docker's built-in bridge driver (the floor),
#   (c) with --net=none followed by `ovs-docker add-port` (what users do today),
# timed in one run, each container started one after the other; then the
# ratios a/b (target <= 1.2) and c/a (target >= 3), and the plugin's own time
# per call (CreateEndpoint, Join, DeleteEndpoint) from its -v log.
#
#   BENCH_DOCKER_N=50   containers per contender
# Runs in a network namespace of its own, with a private OVS and dockerd
# (tests/support/dockerd.sh) unless one answers; everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "the Docker benchmark needs root" >&2; exit 1; }
if [ -z "${OVSRUN_BENCH_DOCKER_NETNS:-}" ]; then
    exec nice -n "${BENCH_NICE:--10}" unshare --net env OVSRUN_BENCH_DOCKER_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
source tests/support/dockerd.sh
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ovs-run
N=${BENCH_DOCKER_N:-50}
WORK=$(mktemp -d /var/tmp/ovs-run-bench-docker.XXXXXX)
NAME=ovsrun-bench-$$
PREFIX=$NAME-
PLUGIN_PID=""
cleanup() {
    set +e
    local ids
    ids=$(docker ps -aq --filter "name=^$PREFIX" 2>/dev/null)
    [ -n "$ids" ] && xargs -n 50 -P 4 docker rm -f <<<"$ids" >/dev/null 2>&1
    docker network rm "$NAME-a" "$NAME-b" >/dev/null 2>&1
    [ -n "$PLUGIN_PID" ] && kill "$PLUGIN_PID" 2>/dev/null && wait "$PLUGIN_PID" 2>/dev/null
    rm -f "/run/docker/plugins/$NAME.sock"
    "$BIN" sandbox down --dir "$WORK/ovs" >/dev/null 2>&1
    docker_down
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export OVS_RUNDIR=$WORK/ovs
eval "$("$BIN" sandbox up --no-netns --dir "$WORK/ovs")"
docker_up "$WORK/docker"
"$BIN" docker-plugin -v --name "$NAME" --state-dir "$WORK/state" --datapath netdev 2>"$WORK/plugin.log" &
PLUGIN_PID=$!
for _ in $(seq 200); do [ -S "/run/docker/plugins/$NAME.sock" ] && break; sleep 0.05; done
docker network create -d "$NAME" --ipam-driver "$NAME" --subnet 10.150.0.0/24 -o bridge=brbench-a "$NAME-a" >/dev/null
docker network create -d bridge --subnet 10.151.0.0/24 "$NAME-b" >/dev/null
ovs-vsctl add-br brbench-c -- set bridge brbench-c datapath_type=netdev

now_ms() { date +%s%3N; }
run_all() { # $1 label, then docker run options
    local label=$1; shift
    local t0; t0=$(now_ms)
    for i in $(seq 1 "$N"); do
        docker run -d --name "$PREFIX$label$i" "$@" "$IMAGE" /bin/sleep 86400 >/dev/null
    done
    echo $(($(now_ms) - t0))
}
# A warm-up container each, so no contender pays first-use costs.
docker rm -f "$(docker run -d --network "$NAME-a" "$IMAGE" /bin/sleep 0)" >/dev/null
docker rm -f "$(docker run -d --network "$NAME-b" "$IMAGE" /bin/sleep 0)" >/dev/null
: >"$WORK/plugin.log"

echo "Docker: docker run -d of $N containers, one after the other"
A=$(run_all a --network "$NAME-a")
B=$(run_all b --network "$NAME-b")
t0=$(now_ms)
for i in $(seq 1 "$N"); do
    docker run -d --name "${PREFIX}c$i" --net=none "$IMAGE" /bin/sleep 86400 >/dev/null
    ovs-docker add-port brbench-c eth0 "${PREFIX}c$i" --ipaddress="10.152.$((i / 250)).$((i % 250 + 2))/16" >/dev/null
done
C=$(($(now_ms) - t0))
ports=$(ovs-vsctl list-ports brbench-a | wc -l)
[ "$ports" = "$N" ] || { echo "expected $N ports on the ovs-run network's bridge, found $ports" >&2; exit 1; }
python3 - "$N" "$A" "$B" "$C" "$WORK/plugin.log" <<'PY'
import re, statistics, sys
n, a, b, c = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"  (a) ovs-run network          {a:7d} ms  {a / n:6.1f} ms/container")
print(f"  (b) Docker's bridge driver   {b:7d} ms  {b / n:6.1f} ms/container")
print(f"  (c) --net=none + ovs-docker  {c:7d} ms  {c / n:6.1f} ms/container")
print(f"  a/b = {a / b:.2f} (target <= 1.2)   c/a = {c / a:.2f} (target >= 3)")
calls = {}
for line in open(sys.argv[5]):
    m = re.search(r"docker-plugin: (\S+) ([0-9.]+) ms", line)
    if m:
        calls.setdefault(m.group(1), []).append(float(m.group(2)))
for k in ("NetworkDriver.CreateEndpoint", "NetworkDriver.Join", "IpamDriver.RequestAddress"):
    v = calls.get(k, [])
    if v:
        print(f"  plugin {k}: n={len(v)} median {statistics.median(v):.1f} ms, max {max(v):.1f} ms")
PY
: >"$WORK/plugin.log"
t0=$(now_ms)
for i in $(seq 1 "$N"); do docker rm -f "${PREFIX}a$i" >/dev/null; done
echo "  rm -f of the $N ovs-run network containers: $(($(now_ms) - t0)) ms"
python3 - "$WORK/plugin.log" <<'PY'
import re, statistics, sys
v = [float(m.group(1)) for l in open(sys.argv[1]) if (m := re.search(r"NetworkDriver.DeleteEndpoint ([0-9.]+) ms", l))]
if v:
    print(f"  plugin NetworkDriver.DeleteEndpoint: n={len(v)} median {statistics.median(v):.1f} ms, max {max(v):.1f} ms")
PY
