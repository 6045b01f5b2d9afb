//! `modify`: changes an interface that `attach` (or `ovs-docker add-port`)
//! connected to a bridge, in place: its address, default gateway, MTU, MAC
//! and the port's VLAN, without detaching it.
//!
//! Only what is given changes, and what is already as asked is left alone,
//! so running it twice changes nothing the second time. It is all or
//! nothing without doing anything itself for it: every change goes through
//! the host's journal, and a script that fails has the whole run rolled back.
//! Every argument is checked, and the port found, before the first change.

use ovs_run_sdk::net::{Cidr, ContainerName, IfName, IpAddr, Mac, Mtu, VlanId};
use ovs_run_sdk::ports::PortInfo;
use ovs_run_sdk::{containers, info, links, ports, routes, Args, Error, Route, Target};

const USAGE: &str = "\
Usage: modify BRIDGE INTERFACE CONTAINER [--ipaddress=CIDR] [--macaddress=MAC]
              [--gateway=IP|none] [--mtu=N] [--vlan=TAG|none]

Changes INTERFACE of CONTAINER, connected to BRIDGE by attach or by
ovs-docker add-port, in place. Only what is given changes; what is already
as asked is left alone, so running it twice changes nothing. When a step
fails, every change of the run is rolled back.

Options (also accepted as --option VALUE; give at least one):
  --ipaddress=CIDR   the interface's address of that family: added, and the
                     interface's other addresses of that family removed
                     (IPv6 link-local ones stay)
  --macaddress=MAC   MAC address of INTERFACE
  --gateway=IP       default route via IP through INTERFACE, replacing one
                     through it; 'none' removes it
  --mtu=N            MTU of both veth ends, 68-65535
  --vlan=TAG         access VLAN tag of the port, 1-4094; 'none' removes it";

/// An option that takes a value or `none` (remove).
#[derive(Clone, Copy)]
enum Setting<T> {
    Set(T),
    Remove,
}

fn setting<T: std::str::FromStr>(args: &Args, key: &str) -> Result<Option<Setting<T>>, Error>
where
    T::Err: std::fmt::Display,
{
    match args.get(key) {
        None => Ok(None),
        Some("none") => Ok(Some(Setting::Remove)),
        Some(_) => Ok(args.opt::<T>(key)?.map(Setting::Set)),
    }
}

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, container] = args.exact(["BRIDGE", "INTERFACE", "CONTAINER"])?;
    let bridge: IfName = bridge.parse()?;
    let iface: IfName = iface.parse()?;
    let container: ContainerName = container.parse()?;
    let address: Option<Cidr> = args.opt("ipaddress")?;
    let mac: Option<Mac> = args.opt("macaddress")?;
    let gateway: Option<Setting<IpAddr>> = setting(&args, "gateway")?;
    let mtu: Option<Mtu> = args.opt("mtu")?;
    let vlan: Option<Setting<VlanId>> = setting(&args, "vlan")?;
    if address.is_none() && mac.is_none() && gateway.is_none() && mtu.is_none() && vlan.is_none() {
        return Err(
            args.usage_error("nothing to change: give --ipaddress, --macaddress, --gateway, --mtu or --vlan")
        );
    }
    if let (Some(address), Some(Setting::Set(gateway))) = (address, gateway) {
        if address.is_ipv4() != gateway.is_ipv4() {
            return Err(Error::invalid(format!(
                "--gateway={gateway} and --ipaddress={address} are of different address families"
            )));
        }
    }

    // Reads first: a missing container, port or interface changes nothing.
    let found = containers::lookup(&container)?;
    if !found.running {
        return Err(Error::msg(format!("container '{container}' is not running; start it first")));
    }
    let target = Target::container(&container);
    let port = find_port(&bridge, &iface, &container, &found)?;
    let link = links::list(&target, Some(&iface))?.pop().ok_or_else(|| {
        Error::msg(format!("{iface} is not in container {container} (port {} leads nowhere)", port.name))
    })?;
    let mut changed = Vec::new();

    if let Some(mtu) = mtu {
        // Both veth ends, as attach sets them: a smaller host end would drop
        // what the container sends.
        let host_end = links::list(&Target::host(), Some(&port.name))?.pop();
        if link.mtu != mtu.get() || host_end.is_some_and(|h| h.mtu != mtu.get()) {
            links::set_mtu(&target, &iface, mtu)?;
            links::set_mtu(&Target::host(), &port.name, mtu)?;
            changed.push(format!("mtu {mtu}"));
        }
    }
    if let Some(mac) = mac {
        if !link.mac.eq_ignore_ascii_case(&mac.to_string()) {
            links::set_mac(&target, &iface, mac)?;
            changed.push(format!("mac {mac}"));
        }
    }
    if let Some(vlan) = vlan {
        let want = match vlan {
            Setting::Set(v) => Some(v),
            Setting::Remove => None,
        };
        if port.tag != want.map(VlanId::get) {
            ports::set_vlan(&bridge, &target, &iface, want)?;
            changed.push(want.map_or("no vlan".into(), |v| format!("vlan {v}")));
        }
    }
    // The gateways through INTERFACE of the new address's family, before
    // the change: with a new address alone they stay, so they must be on
    // its network (checked before the address changes).
    let kept_gateways = match (address, gateway) {
        (Some(a), None) => {
            let gws = default_routes(&target, &iface, a.is_ipv4())?;
            if let Some(old) = gws.iter().find(|g| !a.contains(**g)) {
                return Err(Error::invalid(format!(
                    "the default route via {old} through {iface} is not in {}: give \
                     --gateway=IP (or --gateway=none) with --ipaddress={a}",
                    a.network()
                )));
            }
            gws
        }
        _ => vec![],
    };
    if let Some(address) = address {
        if replace_address(&target, &iface, &link.addresses, &address)? {
            changed.push(format!("address {address}"));
        }
        // Removing the link's last address of the family took its routes:
        // put the kept gateways back (no change when they stayed).
        for gw in &kept_gateways {
            routes::add(&target, &Route::default_route().via(*gw).dev(&iface))?;
        }
    }
    // The default routes through INTERFACE of the families in question
    // (true: IPv4): the gateway's, else (none) both.
    let families: Vec<bool> = match gateway {
        Some(Setting::Set(g)) => vec![g.is_ipv4()],
        Some(Setting::Remove) => match address {
            Some(a) => vec![a.is_ipv4()],
            None => vec![true, false],
        },
        None => vec![],
    };
    for v4 in families {
        let current = default_routes(&target, &iface, v4)?;
        match gateway {
            // Already there: nothing to do.
            Some(Setting::Set(gw)) if current.contains(&gw) => {}
            Some(Setting::Set(gw)) => {
                for old in &current {
                    routes::del(&target, &Route::default_route().via(*old).dev(&iface))?;
                }
                routes::add(&target, &Route::default_route().via(gw).dev(&iface))?;
                changed.push(format!("gateway {gw}"));
            }
            Some(Setting::Remove) => {
                for old in &current {
                    routes::del(&target, &Route::default_route().via(*old).dev(&iface))?;
                }
                if !current.is_empty() {
                    changed.push("no gateway".into());
                }
            }
            None => {}
        }
    }

    if changed.is_empty() {
        println!(
            "{iface} of {container} on {bridge} (port {}): already as asked, nothing changed",
            port.name
        );
    } else {
        println!("{iface} of {container} on {bridge} (port {}): {}", port.name, changed.join(", "));
    }
    Ok(())
}

/// The port connecting `iface` of the container to `bridge`, by the
/// external ids attach and ovs-docker both set: ovs-docker records the name
/// it was given, ovs-run the full id too.
fn find_port(
    bridge: &IfName,
    iface: &IfName,
    given: &ContainerName,
    found: &containers::ContainerInfo,
) -> Result<PortInfo, Error> {
    let ports = ports::list(bridge)?;
    ports
        .into_iter()
        .find(|p| p.container_iface == iface.as_str() && p.belongs_to(given.as_str(), found))
        .ok_or_else(|| {
            Error::msg(format!(
                "{iface} of container {given} is not attached to {bridge}: attach it first \
             (ovs-run attach {bridge} {iface} {given} ...)"
            ))
        })
}

/// Makes `address` the interface's only address of its family (IPv6
/// link-local ones aside); false when it already was. Old addresses on the
/// new one's network go first: the kernel takes an IPv4 link's secondary
/// addresses along with the primary, so the new one must not be their
/// secondary. Those on other networks go after it is added.
fn replace_address(
    target: &Target,
    iface: &IfName,
    current: &[String],
    address: &Cidr,
) -> Result<bool, Error> {
    let (same_net, others): (Vec<Cidr>, Vec<Cidr>) = current
        .iter()
        .filter_map(|c| c.parse::<Cidr>().ok())
        .filter(|c| c.is_ipv4() == address.is_ipv4() && c != address && !is_link_local(c))
        .partition(|c| c.network() == address.network());
    for old in &same_net {
        links::del_address(target, iface, old)?;
        info!("removed address {old} from {iface} in {target}");
    }
    let added = links::set_address(target, iface, address)?;
    for old in &others {
        links::del_address(target, iface, old)?;
        info!("removed address {old} from {iface} in {target}");
    }
    Ok(added || !same_net.is_empty() || !others.is_empty())
}

fn is_link_local(c: &Cidr) -> bool {
    match c.addr {
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// The gateways of the default routes of that family through `iface`.
fn default_routes(target: &Target, iface: &IfName, v4: bool) -> Result<Vec<IpAddr>, Error> {
    Ok(routes::list(target)?
        .into_iter()
        .filter(|r| r.destination.is_none() && r.device.as_deref() == Some(iface.as_str()))
        .filter_map(|r| r.via.and_then(|v| v.parse::<IpAddr>().ok()))
        .filter(|g| g.is_ipv4() == v4)
        .collect())
}

ovs_run_sdk::script!(
    main,
    usage: USAGE,
    options: ["ipaddress", "macaddress", "gateway", "mtu", "vlan"],
);
