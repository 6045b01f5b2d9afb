"""detach: removes the port that connects a container's interface to a
bridge, like ovs-docker del-port, but idempotent: when there is nothing to
remove (already detached, or the bridge is gone) it succeeds.

The Python twin of scripts/detach (Rust). It deliberately does not look the
container up: the container may be gone already, and the host finds its
ports by their external ids.
"""

import ovs_run
from ovs_run import Error, Target, info, ports, warn

USAGE = """\
Usage: detach BRIDGE INTERFACE CONTAINER

Removes the port that connects INTERFACE of CONTAINER to BRIDGE (and its
veth pair). Succeeds when there is nothing to remove; CONTAINER need not
exist any more."""


def main(args):
    bridge, iface, container = args.exact("BRIDGE", "INTERFACE", "CONTAINER")
    bridge = bridge.parse(ovs_run.ifname)
    iface = iface.parse(ovs_run.ifname)
    container = container.parse(ovs_run.container_name)

    target = Target.container(container)
    try:
        if ports.delete(bridge, target, iface):
            info(f"removed the port for {iface} in {target} from {bridge}")
        else:
            info(f"no port for {iface} in {target} on {bridge}; nothing to remove")
    except Error as e:
        # del-port tolerates a missing container, so not-found is the bridge:
        # with no bridge there is no port either, which is what was asked.
        if not e.is_not_found:
            raise
        warn(f"{e}; nothing to remove")


WitWorld = ovs_run.script(main, usage=USAGE)
