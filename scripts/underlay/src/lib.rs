//! `underlay`: put a host's underlay address on an OVS bridge's internal
//! port, as tunnels on the userspace datapath need, then check the peers.
//!
//! On the userspace datapath ovs-vswitchd routes tunnel packets itself, and
//! only through an address that sits on one of its internal ports: with the
//! address on the plain NIC nothing is sent ("native tunnel routing
//! failed"). So the NIC becomes a port of a netdev bridge (br-phy), and its
//! addresses and routes move to br-phy's internal port, which takes the
//! NIC's MAC (peers' ARP caches stay right). ARP goes off on the NIC: the
//! kernel still sees every frame that arrives there and would answer ARP
//! for the moved address with the NIC's MAC too.
//!
//! Apply, verify, roll back: when a --check peer does not answer, the script
//! fails and the run's journal undoes every change, newest first. The order
//! of the changes is chosen so that this undo keeps the host reachable: the
//! address and routes come back on the NIC before anything is taken off
//! br-phy, and the bridge goes last.

use ovs_run_sdk::net::{Cidr, IfName, IpAddr};
use ovs_run_sdk::routes::{self, Route};
use ovs_run_sdk::{bridges, diagnostics, links, ports, Args, Error, PortOptions, Target};

const USAGE: &str = "\
Usage: underlay NIC [--bridge=br-phy] [--datapath=netdev|system] [--check=PEER_IP[,PEER_IP...]] [--check-timeout-ms=N]

Gets a host ready for OVS tunnels (mesh.wasm, OVN's Geneve). With the
userspace datapath (netdev, the default) tunnels need the underlay address on
an OVS internal port, not on the NIC. This script, in this order:
  1. creates BRIDGE (datapath netdev) and gives its internal port the NIC's
     MAC, so the peers' ARP caches stay valid;
  2. adds NIC to BRIDGE as a port;
  3. brings BRIDGE up with every address of NIC (IPv6 link-local ones stay);
  4. moves the routes through NIC (the default route included) to BRIDGE,
     and takes the addresses off NIC;
  5. turns ARP off on NIC (otherwise the kernel answers ARP for the moved
     address with NIC's MAC as well, and a peer that caches that MAC loses
     its tunnels);
  6. pings every --check peer from the host.
If a peer does not answer, the script fails and every change is rolled back,
newest first: ARP on, the address and routes back on NIC, then BRIDGE's
address off, NIC out of BRIDGE, BRIDGE gone (when this run made it). The
host is never left cut off by a change that did not work.

Run it again: when NIC is already on BRIDGE with its address moved, it says
so and changes nothing (the checks still run). With --datapath=system (the
kernel datapath) the address stays on NIC: the kernel routes the tunnels;
nothing is changed and the checks run. Try it first with `ovs-run --dry-run`.

Options:
  --bridge=NAME          the bridge to move the address to (default br-phy)
  --datapath=KIND        netdev (userspace, default) or system (kernel)
  --check=IP[,IP...]     peers (underlay addresses) that must answer a ping
                         afterwards; give several separated by commas
  --check-timeout-ms=N   how long to wait for each reply, 1-60000 (default 1000);
                         each peer gets 3 pings

Routes are moved as destination, gateway and device; a metric or protocol
(DHCP) they had is put back as it was by a rollback, not carried to BRIDGE.";

/// Pings per peer: the first may be lost while ARP resolves over the new path.
const CHECK_PINGS: u32 = 3;

/// Where the host's underlay address lives after the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Datapath {
    /// Userspace: the address moves to the bridge's internal port.
    Netdev,
    /// Kernel: the address stays on the NIC.
    System,
}

impl std::str::FromStr for Datapath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "netdev" => Ok(Datapath::Netdev),
            "system" => Ok(Datapath::System),
            _ => Err(format!("'{s}' is not a datapath: netdev or system")),
        }
    }
}

/// IPv6 link-local addresses and routes belong to their link: they are not moved.
fn is_link_local(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// `--check=IP[,IP...]`: every value an IP address, named when it is not.
fn parse_peers(list: Option<&str>) -> Result<Vec<IpAddr>, Error> {
    let Some(list) = list else { return Ok(vec![]) };
    list.split(',')
        .map(|p| {
            p.trim()
                .parse()
                .map_err(|_| Error::invalid(format!("--check: peer '{p}' is not an IPv4 or IPv6 address")))
        })
        .collect()
}

/// The routes through `nic` that must follow its addresses: all but the
/// kernel's own (the subnet of an address, link-local), which come with the
/// address on the bridge.
fn routes_through(nic: &IfName, addresses: &[Cidr]) -> Result<Vec<Route>, Error> {
    let mut out = Vec::new();
    for r in routes::list(&Target::host())? {
        if r.device.as_deref() != Some(nic.as_str()) {
            continue;
        }
        if let Some(dest) = &r.destination {
            let dest: Cidr = dest.parse()?;
            let connected = r.via.is_none() && addresses.iter().any(|a| a.network() == dest.network());
            if connected || is_link_local(&dest.addr) {
                continue;
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Ping every peer from the host; the error names those that did not answer.
fn check_peers(peers: &[IpAddr], timeout_ms: u32) -> Result<(), Error> {
    let host = Target::host();
    let mut down = Vec::new();
    for peer in peers {
        let stats = diagnostics::ping(&host, *peer, CHECK_PINGS, timeout_ms)?;
        if stats.received == 0 {
            down.push(peer.to_string());
        } else {
            println!("peer {peer} answers ({stats})");
        }
    }
    if down.is_empty() {
        return Ok(());
    }
    Err(Error::msg(format!(
        "peer{} {} did not answer {CHECK_PINGS} pings ({timeout_ms} ms each): the change is rolled back",
        if down.len() > 1 { "s" } else { "" },
        down.join(", ")
    )))
}

fn main(args: Args) -> Result<(), Error> {
    let [nic] = args.exact(["NIC"])?;
    let nic: IfName = nic.parse()?;
    let bridge: IfName = args.opt_or("bridge", "br-phy")?;
    let datapath: Datapath = args.opt_or("datapath", "netdev")?;
    let peers = parse_peers(args.get("check"))?;
    let timeout_ms: u32 = args.opt_or("check-timeout-ms", "1000")?;
    if !(1..=60_000).contains(&timeout_ms) {
        return Err(Error::invalid(format!("--check-timeout-ms: {timeout_ms} is out of range 1-60000")));
    }
    if nic == bridge {
        return Err(args.usage_error(format!("NIC and --bridge are both {nic}")));
    }

    let host = Target::host();
    let link = match links::list(&host, Some(nic.as_str())) {
        Ok(mut l) if !l.is_empty() => l.remove(0),
        Ok(_) => return Err(Error::msg(format!("NIC {nic} does not exist in the host's namespace"))),
        Err(e) if e.is_not_found() => {
            return Err(Error::msg(format!("NIC {nic} does not exist in the host's namespace")))
        }
        Err(e) => return Err(e),
    };
    let addresses: Vec<Cidr> = link
        .addresses
        .iter()
        .map(|a| a.parse::<Cidr>())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|a| !is_link_local(&a.addr))
        .collect();

    if datapath == Datapath::System {
        println!(
            "kernel datapath: the underlay address stays on {nic} (the kernel routes the tunnels); nothing to change"
        );
        return check_peers(&peers, timeout_ms);
    }

    // Where NIC is now: a port of BRIDGE, of another bridge, or of none.
    let all = bridges::list()?;
    let owner = all.iter().find(|b| b.name != nic.as_str() && b.ports.iter().any(|p| p == nic.as_str()));
    if let Some(other) = owner.filter(|b| b.name != bridge.as_str()) {
        return Err(Error::msg(format!(
            "NIC {nic} is a port of bridge {} already, not of {bridge}: remove it there first",
            other.name
        )));
    }
    let existing = all.iter().find(|b| b.name == bridge.as_str());
    if let Some(b) = existing {
        if b.datapath_type != "netdev" {
            return Err(Error::msg(format!(
                "bridge {bridge} exists with datapath '{}', not netdev: give another --bridge",
                b.datapath_type
            )));
        }
    }
    let on_bridge = owner.is_some();

    if addresses.is_empty() {
        if on_bridge {
            let moved = links::list(&host, Some(bridge.as_str()))?
                .into_iter()
                .flat_map(|l| l.addresses)
                .filter(|a| a.parse::<Cidr>().is_ok_and(|c| !is_link_local(&c.addr)))
                .collect::<Vec<_>>();
            if !moved.is_empty() {
                let arp = if links::set_arp(&host, &nic, false)? { " (ARP turned off on it)" } else { "" };
                println!(
                    "{nic} is on {bridge} already and {bridge} holds {}{arp}: nothing to do",
                    moved.join(", ")
                );
                return check_peers(&peers, timeout_ms);
            }
        }
        return Err(Error::msg(format!(
            "NIC {nic} has no address to move (IPv6 link-local ones stay): give the NIC that holds the underlay address"
        )));
    }
    let moving = routes_through(&nic, &addresses)?;

    // 1-2: the bridge, with the NIC's MAC, and the NIC as its port.
    bridges::create(&bridge, bridges::Datapath::Netdev, true)?;
    if let Ok(mac) = link.mac.parse::<ovs_run_sdk::net::Mac>() {
        links::set_mac(&host, &bridge, mac)?;
    }
    if !on_bridge {
        ports::add(&bridge, &host, &nic, &PortOptions::new())?;
    }
    // 3: the addresses on the bridge first, so the host is reachable throughout.
    links::set_up(&host, &bridge)?;
    for a in &addresses {
        links::set_address(&host, &bridge, a)?;
    }
    // 4: the routes off the NIC before its addresses: an undo then puts the
    // addresses back first and the routes (whose gateways need them) after.
    for r in &moving {
        routes::del(&host, r)?;
    }
    // Newest first: removing a primary IPv4 address also removes its secondaries.
    for a in addresses.iter().rev() {
        links::del_address(&host, &nic, a)?;
    }
    for r in &moving {
        routes::add(&host, &Route { device: Some(bridge.to_string()), ..r.clone() })?;
    }
    // 5: last, so a rollback turns it back on first.
    links::set_arp(&host, &nic, false)?;

    let shown: Vec<String> = addresses.iter().map(Cidr::to_string).collect();
    println!(
        "moved {} and {} route{} from {nic} to {bridge} (datapath netdev, MAC {}); ARP off on {nic}",
        shown.join(", "),
        moving.len(),
        if moving.len() == 1 { "" } else { "s" },
        link.mac
    );
    // 6: apply, verify, roll back.
    check_peers(&peers, timeout_ms)
}

ovs_run_sdk::script!(main, usage: USAGE, options: ["bridge", "datapath", "check", "check-timeout-ms"]);
