//! `ovn-attach-many`: `ovn-attach` for many containers in one run. The
//! logical switch ports first (one northbound transaction each, with
//! "MAC IP" as address and port security), then every veth on the
//! integration bridge with ONE `ports::attach_many` call: the veths made
//! concurrently with their addresses and routes, one OVSDB transaction, and
//! one wait until this host's ovn-controller has installed them all, so when
//! the script ends, traffic flows. The MTU is the bridge's inner MTU (`ports::inner_mtu`) unless given.
//!
//! Every argument is checked before the first change, and a failure later
//! rolls the whole run back (the logical ports too).

use ovs_run_sdk::net::{Cidr, ContainerName, IfName, IpAddr, Mtu};
use ovs_run_sdk::ports::{AttachRequest, PortRequest};
use ovs_run_sdk::{info, ovn, ports, Arg, Args, Error, PortOptions, Target};

const USAGE: &str = "\
Usage: ovn-attach-many SWITCH [--mtu=N] [--bridge=BRIDGE] [--interface=NAME]
                       PORT=CONTAINER[,CIDR[,GATEWAY]]...

Creates each logical switch port PORT on OVN logical switch SWITCH and
connects its CONTAINER to it, like ovn-attach once per member but in one
batch: all or none. CONTAINER is a Docker container, or netns:NAME for a
named network namespace. Each member's MAC is derived from its PORT.

  lsp1=web1,10.60.0.2/24,10.60.0.1   address and default route
  lsp2=netns:blue,10.60.0.3/24       a named netns, address only
  lsp3=web3                          no address (port security: MAC only)

Options (also accepted as --option VALUE):
  --mtu=N            MTU of the veths [default: BRIDGE's inner MTU, the MTU of
                     the link holding ovn-encap-ip minus 58: 1442 on 1500]
  --bridge=BRIDGE    integration bridge [default: br-int]
  --interface=NAME   interface inside each target [default: eth1 in a
                     container, eth0 in a netns]";

/// One member of the command line.
struct Member {
    port: String,
    target: Target,
    iface: IfName,
    address: Option<Cidr>,
    gateway: Option<IpAddr>,
}

fn member(arg: &str, args: &Args, iface: Option<&IfName>) -> Result<Member, Error> {
    let Some((port, rest)) = arg.split_once('=') else {
        return Err(args.usage_error(format!("{arg}: expected PORT=CONTAINER[,CIDR[,GATEWAY]]")));
    };
    let mut parts = rest.splitn(3, ',');
    let who = parts.next().unwrap_or_default();
    let (target, default_iface) = match who.strip_prefix("netns:") {
        Some(ns) => (Target::netns(ns), "eth0"),
        None => (Target::container(Arg { name: "CONTAINER", value: who }.parse::<ContainerName>()?), "eth1"),
    };
    let iface = match iface {
        Some(i) => i.clone(),
        None => default_iface.parse()?,
    };
    let address: Option<Cidr> = parts.next().map(|a| Arg { name: "CIDR", value: a }.parse()).transpose()?;
    let gateway: Option<IpAddr> =
        parts.next().map(|g| Arg { name: "GATEWAY", value: g }.parse()).transpose()?;
    if let (Some(a), Some(g)) = (address, gateway) {
        if a.is_ipv4() != g.is_ipv4() {
            return Err(Error::invalid(format!("{arg}: {g} and {a} are of different address families")));
        }
    }
    Ok(Member { port: port.to_string(), target, iface, address, gateway })
}

fn main(args: Args) -> Result<(), Error> {
    let [switch, first @ ..] = args.positional() else {
        return Err(args.usage_error("missing arguments SWITCH PORT=CONTAINER..."));
    };
    if first.is_empty() {
        return Err(args.usage_error("missing argument PORT=CONTAINER"));
    }
    let switch = switch.to_string();
    let mtu: Option<Mtu> = args.opt("mtu")?;
    let bridge: IfName = args.opt_or("bridge", "br-int")?;
    let iface: Option<IfName> = args.opt("interface")?;
    let members = first.iter().map(|a| member(a, &args, iface.as_ref())).collect::<Result<Vec<_>, _>>()?;

    let mut requests = Vec::with_capacity(members.len());
    let mtu = ports::mtu_for(&bridge, mtu)?;
    for m in &members {
        let mac = ovn::port_mac(&m.port);
        let entry = match m.address {
            Some(a) => ovn::mac_ip(mac, a.addr),
            None => mac.to_string(),
        };
        ovn::add_switch_port(&switch, &m.port, std::slice::from_ref(&entry), std::slice::from_ref(&entry))?;
        let options = PortOptions::new().mtu(mtu).mac(mac).iface_id(m.port.clone());
        let port = PortRequest::new(m.target.clone(), m.iface.as_str(), options);
        // The address and default route are set as the veth is made.
        requests.push(AttachRequest::new(port).address(m.address).gateway(m.gateway));
    }
    info!("{} logical ports on switch {switch}", members.len());
    let added = ports::attach_many(&bridge, &requests)?;
    info!("{} ports on {bridge}, configured, bound and installed by ovn-controller", added.len());
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE, options: ["mtu", "bridge", "interface"]);
