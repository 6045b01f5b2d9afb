//! `set-vlan`: sets (or clears) the access VLAN of a container's port, like
//! `ovs-docker set-vlan`.

use ovs_run_sdk::net::{ContainerName, IfName, VlanId};
use ovs_run_sdk::{info, ports, Args, Error, Target};

const USAGE: &str = "\
Usage: set-vlan BRIDGE INTERFACE CONTAINER VLAN

Sets the access VLAN tag (1-4094) of the port that connects INTERFACE of
CONTAINER to BRIDGE. VLAN 'none' removes the tag.";

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, container, vlan] = args.exact(["BRIDGE", "INTERFACE", "CONTAINER", "VLAN"])?;
    let bridge: IfName = bridge.parse()?;
    let iface: IfName = iface.parse()?;
    let container: ContainerName = container.parse()?;
    let vlan: Option<VlanId> = match vlan.as_str() {
        "none" => None,
        _ => Some(vlan.parse()?),
    };

    let target = Target::container(&container);
    ports::set_vlan(&bridge, &target, &iface, vlan)?;
    match vlan {
        Some(tag) => info!("port for {iface} in {target} on {bridge} now has VLAN tag {tag}"),
        None => info!("port for {iface} in {target} on {bridge} now has no VLAN tag"),
    }
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);
