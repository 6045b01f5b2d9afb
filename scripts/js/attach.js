// attach: connects a Docker container to an Open vSwitch bridge through a
// veth pair, with exactly ovs-docker add-port's arguments plus --vlan.
//
// The JavaScript twin of scripts/attach (Rust): same arguments, same checks,
// same calls in the same order. Every argument is checked before the first
// capability call, so a typo never leaves a half-made port behind.

import { script, parse, OvsRunError, Target, bridges, containers, info, ports } from "../../guest-sdk/js/ovs-run.js";

const USAGE = `Usage: attach BRIDGE INTERFACE CONTAINER [--ipaddress=CIDR] [--macaddress=MAC]
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
  --vlan=TAG         access VLAN tag of the port, 1-4094`;

function main(args) {
  const [bridgeArg, ifaceArg, containerArg] = args.exact("BRIDGE", "INTERFACE", "CONTAINER");
  const bridge = bridgeArg.parse(parse.ifname);
  const iface = ifaceArg.parse(parse.ifname);
  const container = containerArg.parse(parse.containerName);
  const address = args.opt("ipaddress", parse.cidr);
  const mac = args.opt("macaddress", parse.mac);
  const gateway = args.opt("gateway", parse.ip);
  const mtu = args.opt("mtu", parse.mtu);
  const vlan = args.opt("vlan", parse.vlan);
  if (address && gateway && address.isIpv4 !== gateway.isIpv4) {
    throw OvsRunError.invalid(`--gateway=${gateway} and --ipaddress=${address} are of different address families`);
  }

  // A read, done before the first change: a missing container leaves
  // nothing behind (not even a new bridge).
  const found = containers.lookup(container);
  if (!found.running) throw new OvsRunError(`container '${container}' is not running; start it first`);

  if (bridges.create(bridge, "host-default", true)) info(`created bridge ${bridge}`);
  else info(`bridge ${bridge} exists`);

  const portMtu = ports.mtuFor(bridge, mtu);
  const target = Target.container(container);
  // The address and default route are made with the veth (one call, one
  // OVS transaction); the inner end is left up, as ovs-docker leaves it.
  const port = ports.attach(bridge, target, iface,
    { mtu: portMtu, mac, vlan, addresses: address ? [address] : [], gateway });
  info(`added port ${port.name} on ${bridge} for ${iface} in ${target}`);
  if (address) info(`set address ${address} on ${iface} in ${target}`);
  if (gateway) info(`set default route via ${gateway} dev ${iface} in ${target}`);
}

export const run = script(main, { usage: USAGE, options: ["ipaddress", "macaddress", "gateway", "mtu", "vlan"] });
