//! `ovn-attach`: puts a container (or a named netns) on an OVN logical
//! switch. It creates the logical switch port with the container's "MAC IP"
//! as its address and its port security (the port may send from nothing
//! else), then attaches the container's veth to the integration bridge with
//! `iface-id` set to that port: add-port returns once this host's
//! ovn-controller has installed the port, so when the script ends, traffic
//! flows. The MTU is the integration bridge's inner MTU (the MTU of the
//! link holding ovn-encap-ip minus 58 for OVN's Geneve: 1442 on a 1500
//! underlay, see `ports::inner_mtu`) unless given.
//!
//! Every argument is checked before the first change, and a failure later
//! (no ovn-controller: the bind times out) rolls the whole run back: the
//! logical port is removed from the northbound database again.

use ovs_run_sdk::net::{Cidr, ContainerName, IfName, IpAddr, Mac, Mtu};
use ovs_run_sdk::ports::{AttachRequest, PortRequest};
use ovs_run_sdk::{info, ovn, ports, Args, Error, PortOptions, Target};

const USAGE: &str = "\
Usage: ovn-attach SWITCH PORT CONTAINER [--ipaddress=CIDR] [--macaddress=MAC]
                  [--gateway=IP] [--mtu=N] [--bridge=BRIDGE] [--interface=NAME]

Creates logical switch port PORT on OVN logical switch SWITCH and connects
CONTAINER to it: a veth pair whose host end joins BRIDGE (br-int, the bridge
ovn-controller manages) with external_ids:iface-id=PORT. Returns once this
host's ovn-controller has installed the port. CONTAINER is a Docker
container, or netns:NAME for a named network namespace.

Options (also accepted as --option VALUE):
  --ipaddress=CIDR   address of the interface, e.g. 10.60.0.2/24; the port's
                     address and port security become \"MAC IP\"
  --macaddress=MAC   MAC of the interface [default: derived from PORT]
  --gateway=IP       default route via IP (a logical router's port on SWITCH)
  --mtu=N            MTU of the veth [default: BRIDGE's inner MTU, the MTU of the
                     link holding ovn-encap-ip minus 58 (OVN's Geneve): 1442 on 1500]
  --bridge=BRIDGE    integration bridge [default: br-int]
  --interface=NAME   interface inside the target [default: eth1 in a container, eth0 in a netns]";

fn main(args: Args) -> Result<(), Error> {
    let [switch, port, who] = args.exact(["SWITCH", "PORT", "CONTAINER"])?;
    let (switch, port) = (switch.as_str().to_string(), port.as_str().to_string());
    let (target, default_iface) = match who.as_str().strip_prefix("netns:") {
        Some(ns) => (Target::netns(ns), "eth0"),
        None => (Target::container(who.parse::<ContainerName>()?), "eth1"),
    };
    let address: Option<Cidr> = args.opt("ipaddress")?;
    let mac: Mac = match args.opt("macaddress")? {
        Some(m) => m,
        None => ovn::port_mac(&port),
    };
    let gateway: Option<IpAddr> = args.opt("gateway")?;
    if gateway.is_some() && address.is_none() {
        return Err(Error::invalid("--gateway needs --ipaddress (the route goes out of that interface)"));
    }
    let mtu: Option<Mtu> = args.opt("mtu")?;
    let bridge: IfName = args.opt_or("bridge", "br-int")?;
    let iface: IfName = args.opt_or("interface", default_iface)?;

    let entry = match address {
        Some(a) => format!("{mac} {}", a.addr),
        None => mac.to_string(),
    };
    ovn::add_switch_port(&switch, &port, std::slice::from_ref(&entry), std::slice::from_ref(&entry))?;
    info!("logical port {port} on switch {switch}: addresses and port security \"{entry}\"");

    // No --mtu: the integration bridge's inner MTU (the underlay's minus 58 for OVN's Geneve).
    let mtu = ports::mtu_for(&bridge, mtu)?;
    let options = PortOptions::new().mtu(mtu).mac(mac).iface_id(port.clone());
    // The address and default route are set as the veth is made.
    let request = PortRequest::new(target.clone(), iface.as_str(), options);
    let request = AttachRequest::new(request).address(address).gateway(gateway);
    let p = ports::attach_many(&bridge, &[request])?
        .pop()
        .ok_or_else(|| Error::msg(format!("attach-ports on {bridge} returned no port")))?;
    info!(
        "port {} on {bridge} for {iface} in {target}, bound to {port} and installed by ovn-controller",
        p.name
    );
    if let Some(address) = address {
        info!("set address {address} on {iface} in {target}");
    }
    if let Some(gateway) = gateway {
        info!("set default route via {gateway} dev {iface} in {target}");
    }
    Ok(())
}

ovs_run_sdk::script!(
    main,
    usage: USAGE,
    options: ["ipaddress", "macaddress", "gateway", "mtu", "bridge", "interface"],
);
