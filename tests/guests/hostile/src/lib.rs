//! `hostile`: misbehaving script for the host's sandbox tests. The first
//! argument picks the misbehaviour; each one prints what it saw on stdout.

use std::hint::black_box;

use ovs_run_sdk::net::{Cidr, IfName, IpAddr};
use ovs_run_sdk::{bridges, links, log, ports, routes, Args, Error, PortOptions, Route, Target};

const USAGE: &str = "\
Usage: hostile MODE [N] [KIND]

Modes:
  loop        spin forever without calling the host
  membomb     allocate and write 1 MiB chunks until allocation fails
  readfile    read /etc/passwd (Ok only if that worked)
  env         print env-count=N (the number of environment variables)
  socket      connect to 127.0.0.1:9 (Ok only if that worked)
  trap        panic
  recurse     recurse without bound
  calls N [KIND]  make N host calls; KIND is log (default) or list-bridges
  netns-attach BRIDGE NETNS CIDR GATEWAY
              attach NETNS's eth0 to BRIDGE with address CIDR and a default
              route via GATEWAY (for tests without Docker)
  attach-all BRIDGE IFNAME CONTAINER...
              attach every CONTAINER's IFNAME to BRIDGE in one run, each with an
              address in 10.70.0.0/16 and a default route (crash tests)
  slow-attach BRIDGE PAUSE_MS CONTAINER...
              attach each CONTAINER's eth0 step by step, pausing PAUSE_MS after
              each change and printing `paused` (fault-injection tests stop
              daemons in the pauses)
  hugename    add a port whose interface name is 10 MiB long
  bigtrunks BRIDGE N
              add a host port with an N-entry trunks list (argument bounds)
  biglabels N list containers by N labels, each pair 1 KiB long (argument bounds)
  slow-bridge BRIDGE PAUSE_MS
              create BRIDGE, print `paused`, then sleep PAUSE_MS (a run that
              is in the middle of something when the daemon is stopped)
  host-route CIDR GATEWAY
              add a route to CIDR via GATEWAY in the host's namespace
              (for policy tests: a tenant must be refused)";

const MIB: usize = 1 << 20;

fn main(args: Args) -> Result<(), Error> {
    let mode = args.positional().first().ok_or_else(|| args.usage_error("missing argument MODE"))?;
    match mode.as_str() {
        "loop" => spin(),
        "membomb" => membomb(),
        "readfile" => match std::fs::read("/etc/passwd") {
            Ok(content) => {
                println!("readfile: read {} bytes", content.len());
                Ok(())
            }
            Err(e) => {
                println!("readfile: {e}");
                Err(Error::msg(format!("readfile: {e}")))
            }
        },
        "env" => {
            println!("env-count={}", std::env::vars().count());
            Ok(())
        }
        "socket" => match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => {
                println!("socket: connected");
                Ok(())
            }
            Err(e) => {
                println!("socket: {e}");
                Err(Error::msg(format!("socket: {e}")))
            }
        },
        "trap" => panic!("boom from script"),
        "recurse" => {
            let depth = recurse(black_box(0));
            Err(Error::msg(format!("recurse returned at depth {depth}")))
        }
        "calls" => calls(&args),
        "netns-attach" => netns_attach(&args),
        "attach-all" => attach_all(&args),
        "slow-attach" => slow_attach(&args),
        "hugename" => {
            let name = "x".repeat(10 * MIB);
            // Raw strings, unchecked by the SDK: the host must cope.
            let e = ports::add("br0", &Target::host(), &name, &PortOptions::new());
            Err(Error::msg(format!("hugename: {}", e.err().map(|e| e.to_string()).unwrap_or_default())))
        }
        "host-route" => host_route(&args),
        "bigtrunks" => {
            let [_, bridge, n] = args.exact(["MODE", "BRIDGE", "N"])?;
            let n: usize = n.parse()?;
            // Raw options, unchecked by the SDK: the host must bound them.
            let options = PortOptions { trunks: vec![100; n], ..PortOptions::new() };
            let e = ports::add(bridge.as_str(), &Target::host(), "eth0", &options);
            Err(Error::msg(format!("bigtrunks: {}", e.err().map(|e| e.to_string()).unwrap_or_default())))
        }
        "biglabels" => {
            let [_, n] = args.exact(["MODE", "N"])?;
            let n: usize = n.parse()?;
            let key = "k".repeat(1024);
            let labels: Vec<(&str, &str)> = (0..n).map(|_| (key.as_str(), "v")).collect();
            let e = ovs_run_sdk::containers::list_by_label(&labels);
            Err(Error::msg(format!("biglabels: {}", e.err().map(|e| e.to_string()).unwrap_or_default())))
        }
        "slow-bridge" => {
            let [_, bridge, pause] = args.exact(["MODE", "BRIDGE", "PAUSE_MS"])?;
            let pause: u64 = pause.parse()?;
            bridges::create(bridge.as_str(), bridges::Datapath::HostDefault, false)?;
            println!("paused");
            std::thread::sleep(std::time::Duration::from_millis(pause));
            println!("slow-bridge: done");
            Ok(())
        }
        other => Err(args.usage_error(format!("unknown mode '{other}'"))),
    }
}

fn spin() -> Result<(), Error> {
    let mut n: u64 = 0;
    loop {
        // black_box keeps the loop from being optimised into anything cheaper.
        n = black_box(n.wrapping_add(1));
    }
}

fn membomb() -> Result<(), Error> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk: Vec<u8> = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() || chunks.try_reserve(1).is_err() {
            // A trap, not an error return: the host must see a script that
            // ran into its memory cap, whether its limiter traps or refuses.
            panic!("membomb: allocation failed after {} MiB", chunks.len());
        }
        // Writing every page makes the memory real, not just reserved.
        chunk.resize(MIB, chunks.len() as u8 | 1);
        chunks.push(black_box(chunk));
    }
}

/// Not a tail call: the addition after the call keeps every frame alive.
#[allow(unconditional_recursion)] // the point of the `recurse` mode
fn recurse(depth: u64) -> u64 {
    recurse(black_box(depth + 1)) + black_box(depth)
}

fn calls(args: &Args) -> Result<(), Error> {
    let [_, n, kind] = match args.positional() {
        [mode, n] => [mode.as_str(), n.as_str(), "log"],
        [mode, n, kind] => [mode.as_str(), n.as_str(), kind.as_str()],
        _ => return Err(args.usage_error("calls needs N")),
    };
    let n: u64 = n.parse().map_err(|e| Error::invalid(format!("N: '{n}': {e}")))?;
    for i in 0..n {
        match kind {
            "log" => log::debug(format!("call {i}")),
            "list-bridges" => {
                black_box(bridges::list()?);
            }
            other => return Err(args.usage_error(format!("unknown call kind '{other}'"))),
        }
    }
    println!("calls={n}");
    Ok(())
}

/// attach's steps against a named netns, which `attach` (containers only) cannot reach.
fn netns_attach(args: &Args) -> Result<(), Error> {
    let [_, bridge, netns, cidr, gateway] = args.exact(["MODE", "BRIDGE", "NETNS", "CIDR", "GATEWAY"])?;
    let bridge: IfName = bridge.parse()?;
    let cidr: Cidr = cidr.parse()?;
    let gateway: IpAddr = gateway.parse()?;
    let target = Target::netns(netns.as_str());
    let port = ports::add(&bridge, &target, "eth0", &PortOptions::new())?;
    links::set_address(&target, "eth0", &cidr)?;
    routes::add(&target, &Route::default_route().via(gateway).dev("eth0"))?;
    println!("netns-attach: {target} eth0 {cidr} via {gateway}, port {}", port.name);
    Ok(())
}

fn attach_all(args: &Args) -> Result<(), Error> {
    let pos = args.positional();
    if pos.len() < 4 {
        return Err(args.usage_error("attach-all needs BRIDGE IFNAME CONTAINER..."));
    }
    let bridge: IfName = pos[1].parse()?;
    let ifname: IfName = pos[2].parse()?;
    let gateway: IpAddr = "10.70.255.254".parse().map_err(|_| Error::msg("bad gateway"))?;
    for (i, c) in pos[3..].iter().enumerate() {
        let target = Target::container(c.as_str());
        ports::add(&bridge, &target, &ifname, &PortOptions::new())?;
        let cidr: Cidr = format!("10.70.{}.{}/16", i / 250, i % 250 + 2).parse().map_err(Error::msg)?;
        links::set_address(&target, &ifname, &cidr)?;
        routes::add(&target, &Route::default_route().via(gateway).dev(&ifname))?;
        println!("attached {c}");
    }
    Ok(())
}

fn slow_attach(args: &Args) -> Result<(), Error> {
    let pos = args.positional();
    if pos.len() < 4 {
        return Err(args.usage_error("slow-attach needs BRIDGE PAUSE_MS CONTAINER..."));
    }
    let bridge: IfName = pos[1].parse()?;
    let pause: u64 = pos[2].parse().map_err(|e| Error::invalid(format!("PAUSE_MS: '{}': {e}", pos[2])))?;
    let nap = || {
        println!("paused");
        std::thread::sleep(std::time::Duration::from_millis(pause));
    };
    let gateway: IpAddr = "10.71.0.1".parse().map_err(|_| Error::msg("bad gateway"))?;
    for (i, c) in pos[3..].iter().enumerate() {
        let target = Target::container(c.as_str());
        ports::add(&bridge, &target, "eth0", &PortOptions::new())?;
        nap();
        let cidr: Cidr = format!("10.71.0.{}/24", i + 2).parse().map_err(Error::msg)?;
        links::set_address(&target, "eth0", &cidr)?;
        nap();
        routes::add(&target, &Route::default_route().via(gateway).dev("eth0"))?;
        nap();
    }
    Ok(())
}

fn host_route(args: &Args) -> Result<(), Error> {
    let [_, cidr, gateway] = args.exact(["MODE", "CIDR", "GATEWAY"])?;
    let cidr: Cidr = cidr.parse()?;
    let gateway: IpAddr = gateway.parse()?;
    let added = routes::add(&Target::host(), &Route::to(cidr).via(gateway))?;
    println!("host-route: {cidr} via {gateway} added={added}");
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE);
