//! `mesh`: a full mesh of tunnels from BRIDGE to every peer host, idempotent.
//!
//! Each tunnel's name is derived from its kind and peer (`vxl-c0a83202` for
//! VXLAN to 192.168.50.2), so a re-run with a changed peer list finds the
//! tunnels of an earlier run: it adds the missing ones, removes those of
//! peers no longer listed, and replaces one whose settings changed (a new
//! --vni). Tunnels of other kinds, and ports it did not name, are left alone.
//! Every tunnel is protected (split horizon), so the mesh does not loop.

use std::collections::BTreeMap;

use ovs_run_sdk::net::{IfName, IpAddr};
use ovs_run_sdk::tunnels::{self, TunnelKind, TunnelOptions};
use ovs_run_sdk::{bridges, info, Args, Error};

const USAGE: &str = "\
Usage: mesh BRIDGE --kind=vxlan|gre|geneve [--vni=N] [PEER_IP...]

Makes BRIDGE's tunnels of that kind exactly one to each PEER_IP (IPv4 or
IPv6 underlay addresses): adds the missing ones, removes those to peers not
listed (no PEER_IP: removes them all). BRIDGE is created when missing. The
tunnel ports are protected (split horizon): a full mesh does not loop.
On the userspace datapath the underlay address must sit on an OVS bridge's
internal port (br-phy); see the README, \"Across hosts\".

Options:
  --kind=KIND   gre, vxlan or geneve
  --vni=N       VXLAN/Geneve VNI (0-16777215) or GRE key";

/// What the names of `kind`'s tunnels start with.
fn prefix(kind: TunnelKind) -> &'static str {
    match kind {
        TunnelKind::Gre => "gre-",
        TunnelKind::Vxlan => "vxl-",
        TunnelKind::Geneve => "gnv-",
    }
}

/// The tunnel name for `kind` to `peer`: at most 12 bytes.
fn tunnel_name(kind: TunnelKind, peer: IpAddr) -> IfName {
    let id = match peer {
        IpAddr::V4(v4) => u32::from(v4),
        // FNV-1a over the 16 bytes: stable, and 32 bits keep the name short.
        IpAddr::V6(v6) => {
            v6.octets().iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
        }
    };
    format!("{}{id:08x}", prefix(kind)).parse().expect("a valid interface name")
}

fn main(args: Args) -> Result<(), Error> {
    let Some((bridge, peers)) = args.positional().split_first() else {
        return Err(args.usage_error("missing argument BRIDGE"));
    };
    let bridge: IfName = bridge.parse()?;
    let kind: TunnelKind =
        args.get("kind").ok_or_else(|| args.usage_error("--kind=vxlan|gre|geneve is required"))?.parse()?;
    let vni: Option<u32> = args.opt("vni")?;
    let mut wanted: BTreeMap<IfName, IpAddr> = BTreeMap::new();
    for p in peers {
        let ip: IpAddr =
            p.parse().map_err(|_| Error::invalid(format!("peer '{p}' is not an IPv4 or IPv6 address")))?;
        wanted.insert(tunnel_name(kind, ip), ip);
    }
    let options = TunnelOptions::new().key(vni);

    bridges::create(&bridge, bridges::Datapath::HostDefault, true)?;
    let existing = tunnels::list(&bridge)?;
    let ours: Vec<_> =
        existing.iter().filter(|t| t.kind == kind && t.name.starts_with(prefix(kind))).collect();
    // A tunnel is kept as it is when it goes to a listed peer with the asked settings.
    let same = |t: &tunnels::TunnelInfo, ip: IpAddr| {
        t.remote_ip == ip.to_string() && t.options.key == vni && !t.options.transit
    };

    let (mut added, mut removed, mut kept) = (0, 0, 0);
    for t in &ours {
        let want = t.name.parse::<IfName>().ok().and_then(|n| wanted.get(&n).copied());
        if want.is_some_and(|ip| same(t, ip)) {
            kept += 1;
            continue;
        }
        tunnels::remove(&bridge, &t.name)?;
        info!("removed {kind} tunnel {} to {}", t.name, t.remote_ip);
        removed += 1;
    }
    for (name, ip) in &wanted {
        if ours.iter().any(|t| t.name == name.as_str() && same(t, *ip)) {
            continue;
        }
        tunnels::add(&bridge, name, kind, *ip, &options)?;
        info!("added {kind} tunnel {name} to {ip}");
        added += 1;
    }
    // The summary is the result: shown without -v.
    println!("mesh on {bridge} ({kind}): {added} added, {removed} removed, {kept} unchanged");
    Ok(())
}

ovs_run_sdk::script!(main, usage: USAGE, options: ["kind", "vni"]);
