#!/bin/bash
# The benchmark's strongest shell baseline: what an expert writes by hand to
# attach many containers at once, instead of looping over ovs-docker.
#
#   hand-batched.sh attach BRIDGE IFACE MTU CONTAINER=CIDR,GATEWAY...
#   hand-batched.sh detach BRIDGE IFACE CONTAINER...
#
# attach: one `docker inspect` for every pid, one `ip -batch` in the host that
# creates every veth pair with its inner end made directly inside the
# container's namespace under its final name, ONE ovs-vsctl transaction for
# all ports, then per container namespace (nsenter) `ethtool -K IFACE tx off`
# (the userspace datapath forwards frames as they are, so without it TCP
# does not get through) and one `ip -batch` for link up, address and
# default route.
# detach: one ovs-vsctl transaction removing every port, one `ip -batch`
# deleting every host end (which takes the inner end with it).
#
# Port names are the container id's first 12 hex digits + "_l", and ports
# carry ovs-docker's external_ids, so `ovs-docker del-port` understands them.
set -euo pipefail

usage() {
    sed -n '5,6p' "$0" | sed 's/^# *//' >&2
    exit 2
}

# "NAME ID PID" per container, in the order given.
inspect() {
    docker inspect -f '{{.Name}} {{.Id}} {{.State.Pid}}' "$@" | sed 's|^/||'
}

attach() {
    local bridge=$1 iface=$2 mtu=$3
    shift 3
    local names=() cidrs=() gws=()
    local spec
    for spec in "$@"; do
        names+=("${spec%%=*}")
        local rest=${spec#*=}
        cidrs+=("${rest%%,*}")
        gws+=("${rest#*,}")
    done
    local ids=() pids=()
    local name id pid
    while read -r name id pid; do
        ids+=("$id")
        pids+=("$pid")
    done < <(inspect "${names[@]}")

    local i vsctl=() host_batch=""
    for i in "${!names[@]}"; do
        local port=${ids[i]:0:12}_l
        host_batch+="link add $port mtu $mtu up type veth peer name $iface mtu $mtu netns ${pids[i]}"$'\n'
        vsctl+=(-- add-port "$bridge" "$port"
            -- set interface "$port" "external_ids:container_id=${names[i]}"
            "external_ids:container_iface=$iface")
    done
    ip -batch - <<<"$host_batch"
    ovs-vsctl --timeout=60 "${vsctl[@]}"
    for i in "${!names[@]}"; do
        nsenter -t "${pids[i]}" -n ethtool -K "$iface" tx off >/dev/null
        nsenter -t "${pids[i]}" -n ip -batch - <<EOF
link set $iface up
addr add ${cidrs[i]} dev $iface
route add default via ${gws[i]} dev $iface
EOF
    done
}

detach() {
    local bridge=$1 iface=$2
    shift 2
    local name id pid vsctl=() host_batch=""
    while read -r name id pid; do
        local port=${id:0:12}_l
        vsctl+=(-- --if-exists del-port "$bridge" "$port")
        host_batch+="link del $port"$'\n'
    done < <(inspect "$@")
    ovs-vsctl --timeout=60 "${vsctl[@]}"
    ip -batch - <<<"$host_batch"
    : "$iface" # the inner end goes with its host end
}

case "${1:-}" in
    attach) [ $# -ge 5 ] || usage; shift; attach "$@" ;;
    detach) [ $# -ge 4 ] || usage; shift; detach "$@" ;;
    *) usage ;;
esac
