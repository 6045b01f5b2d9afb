//! `detach`: removes the port that connects a container's interface to a
//! bridge, like `ovs-docker del-port`, but idempotent: when there is nothing
//! to remove (already detached, or the bridge is gone) it succeeds.
//!
//! It deliberately does not look the container up: the container may be gone
//! already, and the host finds its ports by their external ids.

use ovs_run_sdk::net::{ContainerName, IfName};
use ovs_run_sdk::{info, ports, warn, Args, Error, Target};

const USAGE: &str = "\
Usage: detach BRIDGE INTERFACE CONTAINER

Removes the port that connects INTERFACE of CONTAINER to BRIDGE (and its
veth pair). Succeeds when there is nothing to remove; CONTAINER need not
exist any more.";

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, container] = args.exact(["BRIDGE", "INTERFACE", "CONTAINER"])?;
    let bridge: IfName = bridge.parse()?;
    let iface: IfName = iface.parse()?;
    let container: ContainerName = container.parse()?;

    let target = Target::container(&container);
    match ports::del(&bridge, &target, &iface) {
        Ok(true) => info!("removed the port for {iface} in {target} from {bridge}"),
        Ok(false) => info!("no port for {iface} in {target} on {bridge}; nothing to remove"),
        // del-port tolerates a missing container, so not-found is the bridge:
        // with no bridge there is no port either, which is what was asked.
        Err(e) if e.is_not_found() => warn!("{e}; nothing to remove"),
        Err(e) => return Err(e),
    }
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);
