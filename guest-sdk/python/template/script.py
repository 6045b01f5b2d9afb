"""my-script: one line on what it does.

Copy this file to scripts/python/NAME.py and build it with
`make guests` (or `guest-sdk/build-guest python scripts/python/NAME.py`).
"""

import ovs_run
from ovs_run import Error, Target, bridges, info, ports

USAGE = """\
Usage: my-script BRIDGE CONTAINER [--mtu=N]

Connects CONTAINER's eth1 to BRIDGE (created when missing)."""


def main(args):
    # Check every argument first: a bad value fails before any change.
    bridge, container = args.exact("BRIDGE", "CONTAINER")
    bridge = bridge.parse(ovs_run.ifname)
    container = container.parse(ovs_run.container_name)
    mtu = args.opt("mtu", ovs_run.mtu)

    bridges.create(bridge, "host-default", may_exist=True)
    port = ports.add(bridge, Target.container(container), "eth1", mtu=mtu)
    info(f"{container} is on {bridge} through port {port.name}")
    if port.error:
        raise Error(f"ovs-vswitchd could not attach {port.name}: {port.error}")


WitWorld = ovs_run.script(main, usage=USAGE, options=["mtu"])
