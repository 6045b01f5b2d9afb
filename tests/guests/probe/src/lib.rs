//! `probe`: calls every capability once with fixed, recognisable values and
//! prints each result, so a host test can check that the host received
//! exactly these typed values. Failures are printed and do not stop it.
//!
//! `probe fail-at-end` returns an error after all calls (for rollback
//! tests); `probe strict` returns an error when any call failed.

use std::fmt::Debug;

use ovs_run_sdk::bridges::Datapath;
use ovs_run_sdk::net::{Cidr, IpAddr, Mac, Mtu, VlanId};
use ovs_run_sdk::{
    bridges, containers, diagnostics, links, log, ports, routes, Args, Error, PortOptions, Route, Target,
};

const USAGE: &str = "\
Usage: probe [fail-at-end|strict]

Calls every ovs-run capability once with fixed values and prints what came
back: `probe <call> ok <value>` or `probe <call> err <error>`.";

const BRIDGE: &str = "br-probe";
const NETNS: &str = "ns-probe";
const IFACE: &str = "eth1";
const CONTAINER: &str = "c-probe";

/// Counts calls and failures while printing each result.
struct Probe {
    calls: u32,
    failed: Vec<&'static str>,
}

impl Probe {
    fn report<T: Debug>(&mut self, call: &'static str, result: Result<T, Error>) {
        self.calls += 1;
        match result {
            Ok(value) => println!("probe {call} ok {value:?}"),
            Err(e) => {
                println!("probe {call} err {e}");
                self.failed.push(call);
            }
        }
    }
}

/// Parses a literal that is known to be valid.
fn lit<T: std::str::FromStr<Err = ovs_run_sdk::net::InvalidValue>>(s: &str) -> T {
    s.parse().unwrap_or_else(|e| panic!("probe literal {s}: {e}"))
}

fn main(args: Args) -> Result<(), Error> {
    let mode = match args.positional() {
        [] => "",
        [mode] if mode == "fail-at-end" || mode == "strict" => mode.as_str(),
        _ => return Err(args.usage_error("expected no argument, fail-at-end or strict")),
    };
    let ns = Target::netns(NETNS);
    let gateway: IpAddr = "10.9.0.1".parse().expect("literal");
    let v4: Cidr = lit("10.9.0.2/24");
    let v6: Cidr = lit("fd00:9::2/64");
    let mtu = Mtu::new(1400)?;
    let mut p = Probe { calls: 0, failed: Vec::new() };

    log::info("probe: start");
    p.report("create-bridge", bridges::create(BRIDGE, Datapath::Netdev, false));
    let options =
        PortOptions::new().mtu(mtu).mac(lit::<Mac>("02:00:00:00:00:01")).vlan(VlanId::new(42)?).trunks([]);
    p.report("add-port", ports::add(BRIDGE, &ns, IFACE, &options));
    p.report("set-address", links::set_address(&ns, IFACE, &v4));
    p.report("set-address", links::set_address(&ns, IFACE, &v6));
    p.report("set-mtu", links::set_mtu(&ns, IFACE, mtu));
    p.report("set-mac", links::set_mac(&ns, IFACE, lit("02:00:00:00:00:02")));
    p.report("set-link-up", links::set_up(&ns, IFACE));
    p.report("set-offload", links::set_offload(&ns, IFACE, links::Offload::TxChecksum, true));
    let default = Route::default_route().via(gateway).dev(IFACE);
    let subnet = Route::to(lit("10.20.0.0/16")).via(gateway);
    p.report("set-route", routes::add(&ns, &default));
    p.report("set-route", routes::add(&ns, &subnet));
    p.report("set-vlan", ports::set_vlan(BRIDGE, &ns, IFACE, Some(VlanId::new(43)?)));
    p.report("list-bridges", bridges::list());
    p.report("list-ports", ports::list(BRIDGE));
    p.report("list-links", links::list(&ns, Some(IFACE)));
    p.report("list-routes", routes::list(&ns));
    p.report("lookup", containers::lookup(CONTAINER));
    p.report("list-by-label", containers::list_by_label(&[("ovs-run.probe", "1")]));
    p.report("ping", diagnostics::ping(&ns, gateway, 1, 1000));
    // Teardown, newest first, so that every remaining capability is called too.
    p.report("del-route", routes::del(&ns, &subnet));
    p.report("del-address", links::del_address(&ns, IFACE, &v6));
    p.report("set-link-down", links::set_down(&ns, IFACE));
    p.report("del-port", ports::del(BRIDGE, &ns, IFACE));
    p.report("del-ports", ports::del_all(BRIDGE, CONTAINER));
    p.report("delete-bridge", bridges::delete(BRIDGE, true));

    println!("probe summary calls={} failed={}", p.calls, p.failed.len());
    match mode {
        "fail-at-end" => Err(Error::msg("probe failed on purpose")),
        "strict" if !p.failed.is_empty() => {
            Err(Error::msg(format!("probe: {} call(s) failed: {}", p.failed.len(), p.failed.join(", "))))
        }
        _ => Ok(()),
    }
}

ovs_run_sdk::script!(main, usage: USAGE);
