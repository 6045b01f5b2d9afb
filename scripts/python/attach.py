"""attach: connects a Docker container to an Open vSwitch bridge through a
veth pair, with exactly ovs-docker add-port's arguments plus --vlan.

The Python twin of scripts/attach (Rust): same arguments, same checks, same
calls in the same order. Every argument is checked before the first
capability call, so a typo never leaves a half-made port behind.
"""

import ovs_run
from ovs_run import Error, Target, bridges, containers, info, ports

USAGE = """\
Usage: attach BRIDGE INTERFACE CONTAINER [--ipaddress=CIDR] [--macaddress=MAC]
              [--gateway=IP] [--mtu=N] [--vlan=TAG]

Adds INTERFACE inside CONTAINER and connects it to BRIDGE through a veth
pair, like ovs-docker add-port. BRIDGE is created when missing.

Options (also accepted as --option VALUE):
  --ipaddress=CIDR   address for INTERFACE, e.g. 10.1.0.2/24 or fd00::2/64
  --macaddress=MAC   MAC address for INTERFACE, e.g. 02:42:ac:11:00:02
  --gateway=IP       add a default route via IP through INTERFACE
  --mtu=N            MTU of both veth ends, 68-65535 [default: on a bridge
                     with tunnels or OVN, its inner MTU (underlay minus 50
                     VXLAN/Geneve, 38 GRE, 58 OVN); else the kernel's]
  --vlan=TAG         access VLAN tag of the port, 1-4094"""


def main(args):
    bridge, iface, container = args.exact("BRIDGE", "INTERFACE", "CONTAINER")
    bridge = bridge.parse(ovs_run.ifname)
    iface = iface.parse(ovs_run.ifname)
    container = container.parse(ovs_run.container_name)
    address = args.opt("ipaddress", ovs_run.cidr)
    mac = args.opt("macaddress", ovs_run.mac)
    gateway = args.opt("gateway", ovs_run.ip)
    mtu = args.opt("mtu", ovs_run.mtu)
    vlan = args.opt("vlan", ovs_run.vlan)
    if address and gateway and address.is_ipv4 != (gateway.version == 4):
        raise Error.invalid(f"--gateway={gateway} and --ipaddress={address} are of different address families")

    # A read, done before the first change: a missing container leaves
    # nothing behind (not even a new bridge).
    found = containers.lookup(container)
    if not found.running:
        raise Error(f"container '{container}' is not running; start it first")

    if bridges.create(bridge, "host-default", may_exist=True):
        info(f"created bridge {bridge}")
    else:
        info(f"bridge {bridge} exists")

    mtu = ports.mtu_for(bridge, mtu)
    target = Target.container(container)
    # The address and default route are made with the veth (one call, one
    # OVS transaction); the inner end is left up, as ovs-docker leaves it.
    port = ports.attach(bridge, target, iface, mtu=mtu, mac=mac, vlan=vlan,
                        addresses=[address] if address else [], gateway=gateway)
    info(f"added port {port.name} on {bridge} for {iface} in {target}")
    if address:
        info(f"set address {address} on {iface} in {target}")
    if gateway:
        info(f"set default route via {gateway} dev {iface} in {target}")


WitWorld = ovs_run.script(main, usage=USAGE, options=["ipaddress", "macaddress", "gateway", "mtu", "vlan"])
