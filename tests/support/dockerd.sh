#!/bin/bash
# Make a Docker engine available for tests and the demo, and the busybox test
# image `ovsrun-test:latest` (no registry is reachable, so it is built from the
# host's busybox-static). Prints the DOCKER_HOST to use.
#
#   source tests/support/dockerd.sh; docker_up DIR; ...; docker_down
# A reachable engine (DOCKER_HOST or the standard socket) is used as it is;
# otherwise a private dockerd is started under DIR and stopped by docker_down.
IMAGE=ovsrun-test:latest
_OVSRUN_PRIVATE_DOCKERD=""

docker_up() {
    local dir=$1
    if [ -z "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
        export DOCKER_HOST=unix:///var/run/docker.sock
    elif [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
        :
    else
        mkdir -p "$dir"
        export DOCKER_HOST=unix://$dir/docker.sock
        dockerd --host "$DOCKER_HOST" --data-root "$dir/data" --exec-root "$dir/exec" \
            --pidfile "$dir/docker.pid" --iptables=false --ip6tables=false --bridge=none \
            >"$dir/dockerd.log" 2>&1 &
        _OVSRUN_PRIVATE_DOCKERD=$dir
        for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
        if ! docker info >/dev/null 2>&1; then
            echo "dockerd did not start; its log:" >&2; tail -20 "$dir/dockerd.log" >&2; return 1
        fi
    fi
    if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        local root; root=$(mktemp -d)
        mkdir -p "$root/bin"
        cp /bin/busybox "$root/bin/"
        for a in sh ip ping sleep ifconfig route cat ls; do ln -s busybox "$root/bin/$a"; done
        tar -C "$root" -c . | docker import - "$IMAGE" >/dev/null
        rm -rf "$root"
    fi
}

docker_down() {
    [ -n "$_OVSRUN_PRIVATE_DOCKERD" ] || return 0
    local dir=$_OVSRUN_PRIVATE_DOCKERD pid shim
    pid=$(cat "$dir/docker.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        # dockerd stops its containers before it exits: seconds for a test's
        # few, minutes for the benchmark's 1000 (OVSRUN_DOCKERD_STOP_WAIT
        # seconds at most, default 180).
        for _ in $(seq $((${OVSRUN_DOCKERD_STOP_WAIT:-180} * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    # Whatever of it is still there goes by force, so that nothing outlives
    # the run: the containers' processes (children of their shims), the
    # shims, containerd and dockerd, all named by this directory.
    for shim in $(pgrep -f -- "-address $dir/exec/" 2>/dev/null); do pkill -9 -P "$shim" 2>/dev/null || true; done
    if pkill -9 -f -- "$dir/" 2>/dev/null; then sleep 0.5; fi
    # Every mount under it, deepest first (the containers' network namespace
    # files, overlay layers): left mounted, they keep the directory busy.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$dir"
}
