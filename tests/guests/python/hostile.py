"""Test guest: a Python script that misbehaves.

  hostile raise BRIDGE   makes one change, then lets a KeyError escape main:
                         the user must see the exception's text (exit 1) and
                         the change must be rolled back.
  hostile escape         tries the filesystem, sockets and the environment
                         through CPython's own modules and prints what it got:
                         every attempt must fail inside the sandbox.
"""

import os
import socket

import ovs_run
from ovs_run import bridges

USAGE = "Usage: hostile raise BRIDGE | hostile escape"


def attempt(what, f):
    try:
        print(f"ESCAPED {what}: {f()!r}")
    except Exception as e:
        print(f"denied {what}: {type(e).__name__}")


def main(args):
    mode = args.positional[0] if args.positional else ""
    if mode == "raise":
        [_, bridge] = args.exact("MODE", "BRIDGE")
        bridges.create(bridge.parse(ovs_run.ifname))
        settings = {"mtu": 1500}
        print(settings["vlan"])  # KeyError
    elif mode == "escape":
        attempt("read /etc/hostname", lambda: open("/etc/hostname").read())
        attempt("list /", lambda: os.listdir("/"))
        attempt("write /tmp", lambda: open("/tmp/ovs-run-escape", "w").write("x"))
        attempt("tcp connect", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))
        attempt("udp socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 53)))
        attempt("resolve", lambda: socket.getaddrinfo("localhost", 80))
        # The environment is empty rather than an error.
        print(f"environment: {sorted(os.environ)}")
    else:
        raise ovs_run.Error.invalid(USAGE)


WitWorld = ovs_run.script(main, usage=USAGE)
