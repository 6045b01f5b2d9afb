//! `ovn-network`: the OVN logical network as commands: logical switches
//! (with a subnet for dynamic addresses and an MTU), logical routers, router
//! ports joining a router to a switch, their removal, and a listing. Each
//! command is one change in the northbound database (one transaction), so a
//! failed one leaves nothing behind.

use ovs_run_sdk::net::{Cidr, Mac, Mtu};
use ovs_run_sdk::ovn::{self, SwitchOptions};
use ovs_run_sdk::{info, Args, Error};

const USAGE: &str = "\
Usage: ovn-network switch NAME [--subnet=CIDR] [--mtu=N]
       ovn-network router NAME
       ovn-network join ROUTER SWITCH --mac=MAC --network=CIDR [--port=NAME]
       ovn-network delete-switch NAME | delete-router NAME | leave ROUTER PORT
       ovn-network list

switch   creates logical switch NAME; --subnet lets ovn-northd assign
         \"dynamic\" addresses from CIDR, --mtu sets its other_config:mtu
router   creates logical router NAME
join     joins ROUTER to SWITCH: router port --port (default ROUTER-SWITCH)
         with MAC and the router's address on the switch (--network, e.g.
         10.0.1.1/24), and its switch port
leave    removes a router port (and its switch port)
list     prints switches with their ports, and routers with theirs";

fn main(args: Args) -> Result<(), Error> {
    let pos = args.positional();
    let cmd = pos.first().map(String::as_str).unwrap_or_default();
    let arg = |i: usize, what: &str| {
        pos.get(i).cloned().ok_or_else(|| args.usage_error(format!("{cmd}: {what} is missing")))
    };
    let want = |n: usize| {
        if pos.len() > n {
            Err(args.usage_error(format!("{cmd}: unexpected argument '{}'", pos[n])))
        } else {
            Ok(())
        }
    };
    match cmd {
        "switch" => {
            let name = arg(1, "NAME")?;
            want(2)?;
            let subnet: Option<Cidr> = args.opt("subnet")?;
            let mtu: Option<Mtu> = args.opt("mtu")?;
            let mut o = SwitchOptions::new().mtu(mtu);
            if let Some(s) = subnet {
                o = o.subnet(s.to_string());
            }
            ovn::create_switch(&name, &o)?;
            info!("created logical switch {name}");
        }
        "router" => {
            let name = arg(1, "NAME")?;
            want(2)?;
            ovn::create_router(&name)?;
            info!("created logical router {name}");
        }
        "join" => {
            let (router, switch) = (arg(1, "ROUTER")?, arg(2, "SWITCH")?);
            want(3)?;
            let mac: Mac = args.opt("mac")?.ok_or_else(|| args.usage_error("join: --mac is missing"))?;
            let network: Cidr =
                args.opt("network")?.ok_or_else(|| args.usage_error("join: --network is missing"))?;
            let port = args.get("port").map(str::to_string).unwrap_or_else(|| format!("{router}-{switch}"));
            ovn::add_router_port(&router, &switch, &port, mac, &[network.to_string()])?;
            info!("joined router {router} to switch {switch} through {port} ({mac} {network})");
        }
        "delete-switch" => {
            let name = arg(1, "NAME")?;
            want(2)?;
            let gone = ovn::delete_switch(&name)?;
            info!(
                "{}",
                if gone {
                    format!("deleted logical switch {name}")
                } else {
                    format!("no logical switch {name}")
                }
            );
        }
        "delete-router" => {
            let name = arg(1, "NAME")?;
            want(2)?;
            let gone = ovn::delete_router(&name)?;
            info!(
                "{}",
                if gone {
                    format!("deleted logical router {name}")
                } else {
                    format!("no logical router {name}")
                }
            );
        }
        "leave" => {
            let (router, port) = (arg(1, "ROUTER")?, arg(2, "PORT")?);
            want(3)?;
            ovn::del_router_port(&router, &port)?;
        }
        "list" => {
            want(1)?;
            for s in ovn::list_switches()? {
                println!(
                    "switch {} subnet={} mtu={}",
                    s.name,
                    s.subnet.unwrap_or_default(),
                    s.mtu.map(|m| m.to_string()).unwrap_or_default()
                );
                for p in s.ports {
                    println!(
                        "  port {} type={} addresses={:?} port-security={:?} up={}",
                        p.name, p.port_type, p.addresses, p.port_security, p.up
                    );
                }
            }
            for r in ovn::list_routers()? {
                println!("router {}", r.name);
                for p in r.ports {
                    println!("  port {} mac={} networks={:?}", p.name, p.mac, p.networks);
                }
            }
        }
        "" => return Err(args.usage_error("a command is missing")),
        other => return Err(args.usage_error(format!("unknown command '{other}'"))),
    }
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE, options: ["subnet", "mtu", "mac", "network", "port"]);
