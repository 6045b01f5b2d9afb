//! `net-hook`: a Docker network script for the tests (`-o script=`). At
//! `join` it creates the bridge `--mark` names (so the test can see it ran,
//! and with which facts: the bridge's external view is ovs-vsctl's), then
//! fails with `--fail`'s message when given (so the rollback is visible);
//! at `leave` it deletes that bridge.

use ovs_run_sdk::bridges::{self, Datapath};
use ovs_run_sdk::{info, Args, Error};

const USAGE: &str = "\
Usage: net-hook join|leave --bridge=B --port=P --peer=I --endpoint=E --network=N [--address=CIDR]
       [--mac=MAC] [--vlan=V] [--mtu=M] [--mark=BRIDGE] [--fail=MESSAGE]

The test network script: join creates bridge MARK (netdev), leave deletes it.";

fn main(args: Args) -> Result<(), Error> {
    let [event] = args.exact(["EVENT"])?;
    let port = args.get("port").ok_or_else(|| args.usage_error("--port is required"))?;
    let mark = args.get("mark");
    match event.as_str() {
        "join" => {
            if let Some(m) = mark {
                bridges::create(m, Datapath::Netdev, false)?;
                info!("join of port {port}: made bridge {m}");
            }
            if let Some(msg) = args.get("fail") {
                return Err(Error::msg(format!("refused port {port}: {msg}")));
            }
        }
        "leave" => {
            if let Some(m) = mark {
                bridges::delete(m, true)?;
                info!("leave of port {port}: removed bridge {m}");
            }
        }
        other => return Err(args.usage_error(format!("unknown event {other}"))),
    }
    Ok(())
}

ovs_run_sdk::script!(
    main,
    usage: USAGE,
    options: ["bridge", "port", "peer", "endpoint", "network", "address", "mac", "vlan", "mtu", "mark", "fail"]
);
