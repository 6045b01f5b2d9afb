#!/bin/bash
# Install what ovs-run's daemons, demo and tests need on Debian: Open vSwitch
# (with ovs-docker), Docker, busybox for the test image, ping and iproute2,
# and what scripts in other languages are built with: clang/lld/wasi-libc
# for C, npm for JavaScript, python3-venv for Python (guest-sdk/build-guest
# installs the pinned componentize-py and componentize-qjs on top).
set -euo pipefail
need=()
command -v ovsdb-server >/dev/null || need+=(openvswitch-switch)
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v ping >/dev/null || need+=(iputils-ping)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
# The independent views of offloads and of a TCP transfer (demo, tests).
command -v ethtool >/dev/null || need+=(ethtool)
command -v curl >/dev/null || need+=(curl)
# A compose file using the Docker network driver (tests/docker_plugin.rs).
command -v docker-compose >/dev/null || need+=(docker-compose)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v clang >/dev/null || need+=(clang)
command -v wasm-ld >/dev/null || need+=(lld)
[ -f /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need+=(libclang-rt-dev-wasm32)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# The registry tests: a real OCI registry (Distribution) and htpasswd for its basic auth.
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
# OVN (tests/ovn.rs): the tests run private NB/SB, ovn-northd and ovn-controller in namespaces.
command -v ovn-northd >/dev/null || need+=(ovn-central)
command -v ovn-controller >/dev/null || need+=(ovn-host)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
        exit 1
    fi
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The OVN packages start their own daemons on the host where systemd (or the init scripts) runs:
# stop and disable them, they would otherwise hold /var/run/ovn and bind port 6641/6642.
if [ "$(id -u)" = 0 ]; then
    for u in ovn-central ovn-host ovn-northd ovn-controller ovn-ovsdb-server-nb ovn-ovsdb-server-sb; do
        if [ -d /run/systemd/system ]; then
            systemctl disable --now "$u" >/dev/null 2>&1 || true
        elif [ -x /etc/init.d/$u ]; then
            /etc/init.d/$u stop >/dev/null 2>&1 || true
        fi
    done
fi
