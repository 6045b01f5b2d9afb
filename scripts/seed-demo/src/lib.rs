//! `seed-demo`: the classic "container on an OVS bridge" tutorial in one
//! script. It creates a bridge, gives the host an address on the bridge's
//! internal port, plugs a container in with an address in the same subnet and
//! a default route via the host, then pings the host from the container.
//!
//! The container's address is the subnet's second, or the next one that no
//! container on the bridge has (the usage text, shared word for word with
//! the Python, JavaScript and C twins, speaks of the first run).

use ovs_run_sdk::net::{Cidr, ContainerName, IfName, Mtu};
use ovs_run_sdk::{
    bridges, containers, diagnostics, info, links, ports, routes, Args, Context, Error, PortOptions, Route,
    Target,
};

const USAGE: &str = "\
Usage: seed-demo [--bridge=br-demo] [--container=demo] [--subnet=10.10.0.0/24]
                 [--interface=eth0] [--mtu=1500]

Creates BRIDGE when missing and puts the subnet's first address on its
internal port (host side), connects CONTAINER's INTERFACE to it with the
second address and a default route via the first, then pings the host from
the container (3 requests), sends 1 MiB over TCP from the container to the
host, and prints a report. Fails when a ping or the data does not get through.

Options (defaults shown above; IPv6 subnets work too):
  --bridge=NAME      bridge to use or create
  --container=NAME   running container to connect
  --subnet=CIDR      subnet for the host (.1) and the container (.2)
  --interface=NAME   interface name inside the container
  --mtu=N            MTU of the container's veth pair, 68-65535";

const PING_COUNT: u32 = 3;
const PING_TIMEOUT_MS: u32 = 1000;
/// A ping alone does not show that data moves (TCP checksums, MTU): 1 MiB does.
const TCP_BYTES: u64 = 1 << 20;
const TCP_TIMEOUT_MS: u32 = 10_000;

fn main(args: Args) -> Result<(), Error> {
    args.exact([])?;
    let bridge: IfName = args.opt_or("bridge", "br-demo")?;
    let container: ContainerName = args.opt_or("container", "demo")?;
    let subnet: Cidr = args.opt_or("subnet", "10.10.0.0/24")?;
    let iface: IfName = args.opt_or("interface", "eth0")?;
    let mtu: Mtu = args.opt_or("mtu", "1500")?;
    let host_addr = subnet.host(1).context("--subnet")?;
    // Checked before any change; the address actually used is the first
    // free one from here (see below).
    subnet.host(2).context("--subnet")?;

    // A read first: a missing container stops the demo before any change.
    let found = containers::lookup(&container)?;
    if !found.running {
        return Err(Error::msg(format!("container '{container}' is not running")));
    }

    let created = bridges::create(&bridge, bridges::Datapath::HostDefault, true)?;
    info!("bridge {bridge}: {}", if created { "created" } else { "exists" });

    // The bridge's internal port carries its name: the host's leg of the demo.
    let host = Target::host();
    links::set_address(&host, &bridge, &host_addr)?;
    links::set_up(&host, &bridge)?;
    info!("host: {host_addr} on {bridge}, up");

    // Run again for another container, the demo must not hand out an
    // address a container on the bridge already has.
    let container_addr = free_address(&bridge, &subnet)?;
    let target = Target::container(&container);
    let port = ports::add(&bridge, &target, &iface, &PortOptions::new().mtu(mtu))?;
    info!("{target}: {iface} on {bridge} through port {}", port.name);
    links::set_address(&target, &iface, &container_addr)?;
    let gateway = host_addr.addr;
    routes::add(&target, &Route::default_route().via(gateway).dev(&iface))?;
    info!("{target}: {container_addr} on {iface}, default via {gateway}");

    let stats = diagnostics::ping(&target, gateway, PING_COUNT, PING_TIMEOUT_MS)?;
    let tcp = diagnostics::tcp_check(&target, &host, gateway, TCP_BYTES, TCP_TIMEOUT_MS)?;
    println!("seed-demo report");
    println!("  bridge     {bridge} ({})", if created { "created" } else { "existed" });
    println!("  host       {host_addr} on {bridge}");
    println!("  container  {container} {iface} {container_addr} mtu {mtu}, port {}", port.name);
    println!("  route      default via {gateway} dev {iface}");
    println!("  ping       {container} -> {gateway}: {stats}");
    println!("  tcp        {container} -> {gateway}: {tcp}");
    if stats.received == 0 {
        return Err(Error::msg(format!(
            "no reply from {gateway} to {} ping(s) from container {container}",
            stats.sent
        )));
    }
    if tcp.received != tcp.sent {
        return Err(Error::msg(format!("TCP from container {container} to {gateway}: only {tcp}",)));
    }
    Ok(())
}

/// The first address of `subnet` from .2 on that no container on `bridge`
/// has: each container port's interface is read inside its container (one
/// that cannot be read, e.g. stopped, holds nothing).
fn free_address(bridge: &IfName, subnet: &Cidr) -> Result<Cidr, Error> {
    let mut used = Vec::new();
    for p in ports::list(bridge)? {
        let id = |k: &str| p.external_ids.iter().find(|e| e.key == k).map(|e| e.value.clone());
        let Some(owner) = id("container_full_id").or_else(|| id("container_id")) else { continue };
        if p.container_iface.is_empty() {
            continue;
        }
        if let Ok(links) = links::list(&Target::container(&owner), Some(&p.container_iface)) {
            used.extend(links.into_iter().flat_map(|l| l.addresses));
        }
    }
    let taken = |c: &Cidr| used.iter().filter_map(|u| u.parse::<Cidr>().ok()).any(|u| u.addr == c.addr);
    let mut n = 2;
    loop {
        let c = subnet.host(n).map_err(|_| {
            Error::msg(format!("no free address left in {} on bridge {bridge}", subnet.network()))
        })?;
        if !taken(&c) {
            return Ok(c);
        }
        n += 1;
    }
}

ovs_run_sdk::script!(
    main,
    usage: USAGE,
    options: ["bridge", "container", "subnet", "interface", "mtu"],
);
