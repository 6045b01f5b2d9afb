//! `detach-all`: removes every port of a container on a bridge, like
//! `ovs-docker del-ports`; idempotent (no ports, or no bridge, is success).

use ovs_run_sdk::net::{ContainerName, IfName};
use ovs_run_sdk::{info, ports, warn, Args, Error};

const USAGE: &str = "\
Usage: detach-all BRIDGE CONTAINER

Removes every port that connects CONTAINER to BRIDGE (and their veth
pairs). Succeeds when there is nothing to remove; CONTAINER need not exist
any more.";

fn main(args: Args) -> Result<(), Error> {
    let [bridge, container] = args.exact(["BRIDGE", "CONTAINER"])?;
    let bridge: IfName = bridge.parse()?;
    let container: ContainerName = container.parse()?;

    match ports::del_all(&bridge, &container) {
        Ok(0) => info!("container {container} has no ports on {bridge}; nothing to remove"),
        Ok(n) => info!("removed {n} port(s) of container {container} from {bridge}"),
        // Not-found can only be the bridge (a gone container is tolerated):
        // no bridge, no ports, which is what was asked.
        Err(e) if e.is_not_found() => warn!("{e}; nothing to remove"),
        Err(e) => return Err(e),
    }
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);
