//! Tunnel ports on the real system: the OVSDB change
//! ([`Vswitch::add_tunnel`]), then the remote's MAC seeded into
//! ovs-vswitchd's tunnel neighbour cache.
//!
//! Why seed: the userspace datapath learns a remote VTEP's MAC only by
//! snooping ARP, and drops the packet that makes it send its own ARP
//! request, so a new tunnel carries its first packet after about a second.
//! When the kernel already knows the next hop's MAC (its neighbour table,
//! for the link the route to the remote goes through: the underlay bridge's
//! internal port), `tnl/arp/set BRIDGE IP MAC` on ovs-vswitchd's control
//! socket puts it in the cache at once. When it does not, nothing is
//! seeded (said at -v) and OVS resolves it itself. Seeding is a cache
//! fill, not a change: it is neither journaled nor undone, and its failure
//! does not fail the tunnel.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::netlink::Netlink;
use super::ovsdb::{OvsdbUri, Vswitch};
use super::{ext, Applied, Op, PortInfo};
use crate::error::CapResult;
use crate::tunnel::TunnelSpec;
use crate::types::{IfName, Target};
use crate::verbose;

/// How long ovs-vswitchd gets to answer `tnl/arp/set`.
const UNIXCTL_TIMEOUT: Duration = Duration::from_secs(2);

/// [`Op::AddTunnel`] on the system; the undo is [`Op::DelTunnel`].
pub async fn add(
    ovs: &Vswitch,
    nl: Option<&Netlink>,
    ovsdb: &OvsdbUri,
    bridge: &IfName,
    spec: &TunnelSpec,
) -> CapResult<Applied> {
    let info = ovs.add_tunnel(bridge, spec).await?;
    if let Some(nl) = nl {
        let started = Instant::now();
        match seed(nl, ovsdb, spec.remote_ip).await {
            Ok(done) => verbose!(1, "tunnel {}: {done} in {:.1} ms", spec.name, ms(started)),
            Err(why) => verbose!(1, "tunnel {}: tunnel neighbour not seeded: {why}", spec.name),
        }
    }
    let mut a = Applied::changed(vec![Op::DelTunnel { bridge: bridge.clone(), name: spec.name.clone() }]);
    a.port = Some(PortInfo {
        name: spec.name.to_string(),
        bridge: bridge.to_string(),
        tag: None,
        trunks: vec![],
        external_ids: [(ext::CREATED_BY.to_string(), "ovs-run".to_string())].into(),
        ofport: info.ofport,
        error: info.error,
    });
    Ok(a)
}

/// [`Op::DelTunnel`] on the system; the undo adds the same tunnel back.
pub async fn remove(ovs: &Vswitch, bridge: &IfName, name: &IfName) -> CapResult<Applied> {
    Ok(match ovs.del_tunnel(bridge, name).await? {
        Some(t) => Applied::changed(vec![Op::AddTunnel { bridge: bridge.clone(), tunnel: t.spec }]),
        None => Applied::unchanged(),
    })
}

/// Seed ovs-vswitchd's tunnel neighbour entry for `remote` from the
/// kernel's neighbour table; what was done, or why nothing was.
pub async fn seed(nl: &Netlink, ovsdb: &OvsdbUri, remote: IpAddr) -> Result<String, String> {
    let (dev, next_hop) = route_to(nl, remote).await?;
    let mac = nl
        .neighbour(&Target::Host, &dev, next_hop)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the kernel has no MAC for {next_hop} on {dev} yet"))?;
    let ctl = super::unixctl::vswitchd_ctl(ovsdb)?;
    let (d, ip, m) = (dev.to_string(), next_hop.to_string(), mac.to_string());
    super::unixctl::call(&ctl, "tnl/arp/set", &[&d, &ip, &m], UNIXCTL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("seeded tnl/arp/set {d} {ip} {m}"))
}

/// The link and next hop the host's main table uses for `remote`
/// (longest prefix; the next hop is the gateway, or `remote` itself).
async fn route_to(nl: &Netlink, remote: IpAddr) -> Result<(IfName, IpAddr), String> {
    let routes = nl.routes(&Target::Host).await.map_err(|e| e.to_string())?;
    let best = routes
        .iter()
        .filter(|r| r.normalized_destination().contains(remote))
        .max_by_key(|r| r.normalized_destination().prefix)
        .ok_or_else(|| format!("no route to {remote}"))?;
    let dev = best.device.clone().ok_or_else(|| format!("the route to {remote} names no device"))?;
    Ok((dev, best.via.unwrap_or(remote)))
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
