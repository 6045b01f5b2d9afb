// seed-demo: the classic "container on an OVS bridge" tutorial in one
// script, the JavaScript twin of scripts/seed-demo (Rust). It creates a
// bridge, gives the host an address on the bridge's internal port, plugs a
// container in with an address in the same subnet and a default route via
// the host, then pings the host from the container.

import {
  script, parse, OvsRunError, Target, bridges, containers, diagnostics, info, links, ports, print, routes,
} from "../../guest-sdk/js/ovs-run.js";

const USAGE = `Usage: seed-demo [--bridge=br-demo] [--container=demo] [--subnet=10.10.0.0/24]
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
  --mtu=N            MTU of the container's veth pair, 68-65535`;

const PING_COUNT = 3;
const PING_TIMEOUT_MS = 1000;
// A ping alone does not show that data moves (TCP checksums, MTU): 1 MiB does.
const TCP_BYTES = 1 << 20;
const TCP_TIMEOUT_MS = 10000;

function main(args) {
  args.exact();
  const bridge = args.optOr("bridge", "br-demo", parse.ifname);
  const container = args.optOr("container", "demo", parse.containerName);
  const subnet = args.optOr("subnet", "10.10.0.0/24", parse.cidr);
  const iface = args.optOr("interface", "eth0", parse.ifname);
  const mtu = args.optOr("mtu", "1500", parse.mtu);
  let hostAddr;
  try {
    // Checked before any change; the address actually used is the first
    // free one from .2 on (see freeAddress).
    [hostAddr] = [subnet.host(1), subnet.host(2)];
  } catch (e) {
    throw e instanceof OvsRunError ? e.context("--subnet") : e;
  }

  // A read first: a missing container stops the demo before any change.
  const found = containers.lookup(container);
  if (!found.running) throw new OvsRunError(`container '${container}' is not running`);

  const created = bridges.create(bridge, "host-default", true);
  info(`bridge ${bridge}: ${created ? "created" : "exists"}`);

  // The bridge's internal port carries its name: the host's leg of the demo.
  const host = Target.host();
  links.setAddress(host, bridge, hostAddr);
  links.setUp(host, bridge);
  info(`host: ${hostAddr} on ${bridge}, up`);

  // Run again for another container, the demo must not hand out an
  // address a container on the bridge already has.
  const containerAddr = freeAddress(bridge, subnet);
  const target = Target.container(container);
  const port = ports.add(bridge, target, iface, { mtu });
  info(`${target}: ${iface} on ${bridge} through port ${port.name}`);
  links.setAddress(target, iface, containerAddr);
  const gateway = hostAddr.addr;
  routes.add(target, { via: gateway, dev: iface });
  info(`${target}: ${containerAddr} on ${iface}, default via ${gateway}`);

  const stats = diagnostics.ping(target, gateway, PING_COUNT, PING_TIMEOUT_MS);
  const tcp = diagnostics.tcpCheck(target, host, gateway, TCP_BYTES, TCP_TIMEOUT_MS);
  print("seed-demo report");
  print(`  bridge     ${bridge} (${created ? "created" : "existed"})`);
  print(`  host       ${hostAddr} on ${bridge}`);
  print(`  container  ${container} ${iface} ${containerAddr} mtu ${mtu}, port ${port.name}`);
  print(`  route      default via ${gateway} dev ${iface}`);
  print(`  ping       ${container} -> ${gateway}: ${diagnostics.pingText(stats)}`);
  print(`  tcp        ${container} -> ${gateway}: ${diagnostics.transferText(tcp)}`);
  if (stats.received === 0) {
    throw new OvsRunError(`no reply from ${gateway} to ${stats.sent} ping(s) from container ${container}`);
  }
  if (tcp.received !== tcp.sent) {
    throw new OvsRunError(`TCP from container ${container} to ${gateway}: only ${diagnostics.transferText(tcp)}`);
  }
}

// The first address of `subnet` from .2 on that no container on `bridge`
// has: each container port's interface is read inside its container (one
// that cannot be read, e.g. stopped, holds nothing).
function freeAddress(bridge, subnet) {
  const used = new Set();
  for (const p of ports.list(bridge)) {
    const id = (k) => p.externalIds.find((e) => e.key === k)?.value;
    const owner = id("container_full_id") ?? id("container_id");
    if (!owner || !p.containerIface) continue;
    let found;
    try {
      found = links.list(Target.container(owner), p.containerIface);
    } catch (e) {
      if (e instanceof OvsRunError) continue;
      throw e;
    }
    for (const link of found) for (const a of link.addresses) used.add(String(parse.cidr(a).addr));
  }
  for (let n = 2; ; n++) {
    let c;
    try {
      c = subnet.host(n);
    } catch (e) {
      if (e instanceof OvsRunError) {
        throw new OvsRunError(`no free address left in ${subnet.network} on bridge ${bridge}`);
      }
      throw e;
    }
    if (!used.has(String(c.addr))) return c;
  }
}

export const run = script(main, { usage: USAGE, options: ["bridge", "container", "subnet", "interface", "mtu"] });
