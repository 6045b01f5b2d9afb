//! `attach-many`: connects many Docker containers to an Open vSwitch bridge in
//! one run, each with its address and default route: `attach` for a whole
//! fleet, and the fast way to do it.
//!
//! All ports are added with one `ports::attach_many` call (one OVSDB
//! transaction, veth pairs made concurrently with their addresses and routes,
//! one ovs-vswitchd reconfiguration) instead of one `ports::add` per
//! container. Every argument is checked before the first capability call,
//! and a failure rolls the whole run back.

use ovs_run_sdk::net::{Cidr, ContainerName, IfName, IpAddr, Mtu, VlanId};
use ovs_run_sdk::ports::{AttachRequest, PortRequest};
use ovs_run_sdk::{bridges, info, ports, Arg, Args, Error, PortOptions, Target};

const USAGE: &str = "\
Usage: attach-many BRIDGE INTERFACE [--mtu=N] [--vlan=TAG] CONTAINER[=CIDR[,GATEWAY]]...

Adds INTERFACE inside every CONTAINER and connects it to BRIDGE through a
veth pair, like attach (ovs-docker add-port) once per container, but in one
batch: all or none. BRIDGE is created when missing.

Each CONTAINER may carry its address and default gateway:
  web1=10.1.0.2/24,10.1.0.1   address 10.1.0.2/24, default route via 10.1.0.1
  web2=10.1.0.3/24            address only
  web3                        no address

Options (also accepted as --option VALUE), applied to every container:
  --mtu=N            MTU of the veth pairs, 68-65535 [default: on a bridge
                     with tunnels or OVN, its inner MTU (underlay minus 50
                     VXLAN/Geneve, 38 GRE, 58 OVN); else the kernel's]
  --vlan=TAG         access VLAN tag of the ports, 1-4094";

/// One container of the command line.
struct Member {
    container: ContainerName,
    address: Option<Cidr>,
    gateway: Option<IpAddr>,
}

fn member(arg: &str, args: &Args) -> Result<Member, Error> {
    let (name, rest) = arg.split_once('=').unwrap_or((arg, ""));
    let container: ContainerName = Arg { name: "CONTAINER", value: name }.parse()?;
    let (address, gateway) = rest.split_once(',').unwrap_or((rest, ""));
    let address: Option<Cidr> =
        (!address.is_empty()).then(|| Arg { name: "CIDR", value: address }.parse()).transpose()?;
    let gateway: Option<IpAddr> =
        (!gateway.is_empty()).then(|| Arg { name: "GATEWAY", value: gateway }.parse()).transpose()?;
    match (address, gateway) {
        (None, Some(_)) if !rest.is_empty() => {
            return Err(args.usage_error(format!("{arg}: a GATEWAY needs a CIDR before it")));
        }
        (Some(a), Some(g)) if a.is_ipv4() != g.is_ipv4() => {
            return Err(Error::invalid(format!("{arg}: {g} and {a} are of different address families")));
        }
        _ => {}
    }
    Ok(Member { container, address, gateway })
}

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, first @ ..] = args.positional() else {
        return Err(args.usage_error("missing arguments BRIDGE INTERFACE CONTAINER..."));
    };
    if first.is_empty() {
        return Err(args.usage_error("missing argument CONTAINER"));
    }
    let bridge: IfName = Arg { name: "BRIDGE", value: bridge }.parse()?;
    let iface: IfName = Arg { name: "INTERFACE", value: iface }.parse()?;
    let mtu: Option<Mtu> = args.opt("mtu")?;
    let vlan: Option<VlanId> = args.opt("vlan")?;
    let members = first.iter().map(|a| member(a, &args)).collect::<Result<Vec<_>, _>>()?;

    if bridges::create(&bridge, bridges::Datapath::HostDefault, true)? {
        info!("created bridge {bridge}");
    }
    // No --mtu: the bridge's inner MTU when it has an overlay (tunnels, OVN).
    let mtu = ports::mtu_for(&bridge, mtu)?;
    let options = PortOptions::new().mtu(mtu).vlan(vlan);
    // Each container's address and default route are set while its veth
    // is made (attach-ports): no calls of their own, no second visit of
    // each container's namespace.
    let requests: Vec<AttachRequest> = members
        .iter()
        .map(|m| {
            let port = PortRequest::new(Target::container(&m.container), iface.as_str(), options.clone());
            AttachRequest::new(port).address(m.address).gateway(m.gateway)
        })
        .collect();
    let added = ports::attach_many(&bridge, &requests)?;
    info!("attached {} containers to {bridge}", added.len());
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE, options: ["mtu", "vlan"]);
