//! `attach`: connects a Docker container to an Open vSwitch bridge through a
//! veth pair, with exactly `ovs-docker add-port`'s arguments plus `--vlan`.
//!
//! Every argument is checked before the first capability call, so a typo
//! never leaves a half-made port behind.

use ovs_run_sdk::containers::ContainerInfo;
use ovs_run_sdk::net::{Cidr, ContainerName, IfName, IpAddr, Mac, Mtu, VlanId};
use ovs_run_sdk::ports::AttachRequest;
use ovs_run_sdk::{bridges, containers, info, links, ports, Args, Error, PortOptions, PortRequest, Target};

const USAGE: &str = "\
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
  --vlan=TAG         access VLAN tag of the port, 1-4094";

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, container] = args.exact(["BRIDGE", "INTERFACE", "CONTAINER"])?;
    let bridge: IfName = bridge.parse()?;
    let iface: IfName = iface.parse()?;
    let container: ContainerName = container.parse()?;
    let address: Option<Cidr> = args.opt("ipaddress")?;
    let mac: Option<Mac> = args.opt("macaddress")?;
    let gateway: Option<IpAddr> = args.opt("gateway")?;
    let mtu: Option<Mtu> = args.opt("mtu")?;
    let vlan: Option<VlanId> = args.opt("vlan")?;
    if let (Some(address), Some(gateway)) = (address, gateway) {
        if address.is_ipv4() != gateway.is_ipv4() {
            return Err(Error::invalid(format!(
                "--gateway={gateway} and --ipaddress={address} are of different address families"
            )));
        }
    }

    // A read, done before the first change: a missing container leaves
    // nothing behind (not even a new bridge).
    let found = containers::lookup(&container)?;
    if !found.running {
        return Err(Error::msg(format!("container '{container}' is not running; start it first")));
    }

    // An interface that is there already: say which port holds it and how
    // to change it, rather than the kernel's "link already exists".
    if let Some(why) = already_there(&container, &found, &iface) {
        return Err(why);
    }

    let created = bridges::create(&bridge, bridges::Datapath::HostDefault, true)?;
    if created {
        info!("created bridge {bridge}");
    } else {
        info!("bridge {bridge} exists");
    }

    let target = Target::container(&container);
    // No --mtu: the bridge's inner MTU when it has an overlay (tunnels, OVN).
    let mtu = ports::mtu_for(&bridge, mtu)?;
    let options = PortOptions::new().mtu(mtu).mac(mac).vlan(vlan);
    // The address and default route are made with the veth (one call, one
    // OVS transaction); the inner end is left up, as ovs-docker leaves it.
    let request = AttachRequest::new(PortRequest::new(target.clone(), iface.as_str(), options))
        .address(address)
        .gateway(gateway);
    let port = ports::attach(&bridge, request)?;
    info!("added port {} on {bridge} for {iface} in {target}", port.name);
    if let Some(address) = address {
        info!("set address {address} on {iface} in {target}");
    }
    if let Some(gateway) = gateway {
        info!("set default route via {gateway} dev {iface} in {target}");
    }
    Ok(())
}

/// Why `iface` cannot be added to the container: it exists there already,
/// through a port on some bridge (made by attach or by ovs-docker), or as
/// another link. None when it does not exist (or cannot be read: add-port
/// then says what is wrong).
fn already_there(given: &ContainerName, found: &ContainerInfo, iface: &IfName) -> Option<Error> {
    let target = Target::container(given);
    links::list(&target, Some(iface)).ok()?.pop()?;
    // Which port: every bridge's, as far as this run may read them.
    let held = bridges::list().unwrap_or_default().into_iter().find_map(|b| {
        let ports = ports::list(&b.name).ok()?;
        let p = ports
            .into_iter()
            .find(|p| p.container_iface == iface.as_str() && p.belongs_to(given.as_str(), found))?;
        Some((b.name, p))
    });
    let Some((bridge, port)) = held else {
        return Some(Error::msg(format!(
            "{iface} already exists in container {given} and is not an OVS port: choose another INTERFACE"
        )));
    };
    let made_by_us = port.external_ids.iter().any(|e| e.key == "created_by" && e.value == "ovs-run");
    let (who, remove) = if made_by_us {
        ("attach", format!("ovs-run detach {bridge} {iface} {given}"))
    } else {
        ("ovs-docker", format!("ovs-docker del-port {bridge} {iface} {given}"))
    };
    Some(Error::msg(format!(
        "{iface} in container {given} is already attached: port {} on bridge {bridge}, made by {who}. \
         To change its address, gateway, MTU, MAC or VLAN in place: ovs-run modify {bridge} {iface} {given} \
         --ipaddress=... (see ovs-run modify --help); to attach it anew, remove it first: {remove}",
        port.name
    )))
}

ovs_run_sdk::script!(
    main,
    usage: USAGE,
    options: ["ipaddress", "macaddress", "gateway", "mtu", "vlan"],
);
