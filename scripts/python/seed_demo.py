"""seed-demo: the classic "container on an OVS bridge" tutorial in one
script, the Python twin of scripts/seed-demo (Rust). It creates a bridge,
gives the host an address on the bridge's internal port, plugs a container
in with an address in the same subnet and a default route via the host,
then pings the host from the container and sends it 1 MiB over TCP.

The container's address is the subnet's second, or the next one that no
container on the bridge has (the usage text speaks of the first run).
"""

import ovs_run
from ovs_run import Error, Target, bridges, containers, diagnostics, info, links, ports, routes

USAGE = """\
Usage: seed-demo [--bridge=br-demo] [--container=demo] [--subnet=10.10.0.0/24]
                 [--interface=eth0] [--mtu=1500]

Creates BRIDGE when missing and puts the subnet's first address on its
internal port (host side), connects CONTAINER's INTERFACE to it with the
second address and a default route via the first, then pings the host from
the container (3 requests), sends 1 MiB over TCP from the container to the
host, and prints a report. Fails when a ping or the data does not get through.

Options (defaults shown above; IPv6 subnets work too):
  --bridge=NAME      bridge to use or create
  --container=NAME   running container to connect
  --subnet=CIDR      subnet for the host (.1) and the container (.2)
  --interface=NAME   interface name inside the container
  --mtu=N            MTU of the container's veth pair, 68-65535"""

PING_COUNT = 3
PING_TIMEOUT_MS = 1000
# A ping alone does not show that data moves (TCP checksums, MTU): 1 MiB does.
TCP_BYTES = 1 << 20
TCP_TIMEOUT_MS = 10000


def main(args):
    args.exact()
    bridge = args.opt_or("bridge", "br-demo", ovs_run.ifname)
    container = args.opt_or("container", "demo", ovs_run.container_name)
    subnet = args.opt_or("subnet", "10.10.0.0/24", ovs_run.cidr)
    iface = args.opt_or("interface", "eth0", ovs_run.ifname)
    mtu = args.opt_or("mtu", "1500", ovs_run.mtu)
    try:
        # Checked before any change; the address actually used is the first
        # free one from .2 on (see below).
        host_addr, _ = subnet.host(1), subnet.host(2)
    except Error as e:
        raise e.context("--subnet") from None

    # A read first: a missing container stops the demo before any change.
    found = containers.lookup(container)
    if not found.running:
        raise Error(f"container '{container}' is not running")

    created = bridges.create(bridge, "host-default", may_exist=True)
    info(f"bridge {bridge}: {'created' if created else 'exists'}")

    # The bridge's internal port carries its name: the host's leg of the demo.
    host = Target.host()
    links.set_address(host, bridge, host_addr)
    links.set_up(host, bridge)
    info(f"host: {host_addr} on {bridge}, up")

    # Run again for another container, the demo must not hand out an
    # address a container on the bridge already has.
    container_addr = free_address(bridge, subnet)
    target = Target.container(container)
    port = ports.add(bridge, target, iface, mtu=mtu)
    info(f"{target}: {iface} on {bridge} through port {port.name}")
    links.set_address(target, iface, container_addr)
    gateway = host_addr.addr
    routes.add(target, via=gateway, dev=iface)
    info(f"{target}: {container_addr} on {iface}, default via {gateway}")

    stats = diagnostics.ping(target, gateway, PING_COUNT, PING_TIMEOUT_MS)
    tcp = diagnostics.tcp_check(target, host, gateway, TCP_BYTES, TCP_TIMEOUT_MS)
    print("seed-demo report")
    print(f"  bridge     {bridge} ({'created' if created else 'existed'})")
    print(f"  host       {host_addr} on {bridge}")
    print(f"  container  {container} {iface} {container_addr} mtu {mtu}, port {port.name}")
    print(f"  route      default via {gateway} dev {iface}")
    print(f"  ping       {container} -> {gateway}: {diagnostics.ping_text(stats)}")
    print(f"  tcp        {container} -> {gateway}: {diagnostics.transfer_text(tcp)}")
    if stats.received == 0:
        raise Error(f"no reply from {gateway} to {stats.sent} ping(s) from container {container}")
    if tcp.received != tcp.sent:
        raise Error(f"TCP from container {container} to {gateway}: only {diagnostics.transfer_text(tcp)}")


def free_address(bridge, subnet):
    """The first address of ``subnet`` from .2 on that no container on ``bridge``
    has: each container port's interface is read inside its container (one that
    cannot be read, e.g. stopped, holds nothing)."""
    used = set()
    for p in ports.list(bridge):
        ids = {e.key: e.value for e in p.external_ids}
        owner = ids.get("container_full_id") or ids.get("container_id")
        if not owner or not p.container_iface:
            continue
        try:
            found = links.list(Target.container(owner), p.container_iface)
        except Error:
            continue
        used.update(ovs_run.cidr(a).addr for link in found for a in link.addresses)
    n = 2
    while True:
        try:
            c = subnet.host(n)
        except Error:
            raise Error(f"no free address left in {subnet.network} on bridge {bridge}") from None
        if c.addr not in used:
            return c
        n += 1


WitWorld = ovs_run.script(main, usage=USAGE, options=["bridge", "container", "subnet", "interface", "mtu"])
