//! `detach-many`: removes many containers' ports from a bridge in one run,
//! like `detach` once per container, with one `ports::del_many` call (the
//! bridge read once, one OVSDB transaction). Idempotent like `detach`.

use ovs_run_sdk::net::{ContainerName, IfName};
use ovs_run_sdk::ports::PortRef;
use ovs_run_sdk::{info, ports, Arg, Args, Error, Target};

const USAGE: &str = "\
Usage: detach-many BRIDGE INTERFACE CONTAINER...

Removes the ports that connect INTERFACE of each CONTAINER to BRIDGE (and
their veth pairs). Succeeds when there is nothing to remove; the containers
need not exist any more.";

fn main(args: Args) -> Result<(), Error> {
    let [bridge, iface, containers @ ..] = args.positional() else {
        return Err(args.usage_error("missing arguments BRIDGE INTERFACE CONTAINER..."));
    };
    if containers.is_empty() {
        return Err(args.usage_error("missing argument CONTAINER"));
    }
    let bridge: IfName = Arg { name: "BRIDGE", value: bridge }.parse()?;
    let iface: IfName = Arg { name: "INTERFACE", value: iface }.parse()?;
    let refs = containers
        .iter()
        .map(|c| {
            let c: ContainerName = Arg { name: "CONTAINER", value: c }.parse()?;
            Ok(PortRef::new(Target::container(&c), iface.as_str()))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // A missing bridge or container is not an error: there is nothing to remove.
    let removed = ports::del_many(&bridge, &refs)?;
    let n = removed.iter().filter(|r| **r).count();
    info!("removed {n} of {} ports from {bridge}", refs.len());
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);
