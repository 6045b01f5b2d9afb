//! The inner MTU of a bridge's overlay: the largest frame a port on the
//! bridge may send so that, encapsulated, it still fits the underlay.
//! Computed here only, for scripts (`ports.inner-mtu`) and the Docker driver
//! alike.
//!
//! Why: the userspace datapath drops a packet that no longer fits the
//! underlay once encapsulated, silently (ovs-vswitchd logs only "Message too
//! long"), so a container left at 1500 on a VXLAN overlay pings fine and
//! stalls on its first full-sized TCP segment.
//!
//! Where the numbers come from, per overlay of the bridge:
//! - each tunnel port (GRE, VXLAN, Geneve): the MTU of the link the host's
//!   route to its remote goes through, minus the encapsulation's overhead;
//! - OVN's integration bridge (`Open_vSwitch external_ids:ovn-bridge`,
//!   default br-int, on a chassis with `ovn-encap-ip`): the MTU of the link
//!   holding the encap address, minus OVN's overhead (Geneve with OVN's
//!   metadata option: 58);
//!
//! and the bridge's inner MTU is the smallest of them (None: no overlay).
//! An IPv6 underlay adds 20 bytes to each overhead (its header is 40 bytes, not 20).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::{Backend, LinkInfo};
use crate::error::CapResult;
use crate::tunnel::TunnelKind;
use crate::types::{IfName, RouteSpec, Target};

/// OVN's Geneve: the 50 bytes of any Geneve tunnel plus the 8-byte option
/// (class 0x0102) that carries the logical ingress and egress ports.
pub const OVN_GENEVE_OVERHEAD: u32 = 58;

/// How frames leave the bridge for another host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// A tunnel port of the bridge.
    Tunnel(TunnelKind),
    /// ovn-controller's tunnels of the integration bridge, by `ovn-encap-type`.
    Ovn(OvnEncap),
}

/// `Open_vSwitch external_ids:ovn-encap-type` entries ovs-run knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OvnEncap {
    Geneve,
    Vxlan,
}

impl Encap {
    /// Bytes the encapsulation adds to an Ethernet frame, over an IPv4 or IPv6 underlay.
    pub fn overhead(self, ipv6: bool) -> u32 {
        let v4 = match self {
            Encap::Tunnel(k) => k.overhead(),
            Encap::Ovn(OvnEncap::Geneve) => OVN_GENEVE_OVERHEAD,
            Encap::Ovn(OvnEncap::Vxlan) => TunnelKind::Vxlan.overhead(),
        };
        if ipv6 {
            v4 + 20
        } else {
            v4
        }
    }
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encap::Tunnel(k) => write!(f, "{k}"),
            Encap::Ovn(OvnEncap::Geneve) => f.write_str("OVN geneve"),
            Encap::Ovn(OvnEncap::Vxlan) => f.write_str("OVN vxlan"),
        }
    }
}

/// This host as an OVN chassis: what ovn-controller reads from the
/// `Open_vSwitch` row's external_ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvnChassis {
    /// `ovn-bridge`, default br-int.
    pub bridge: String,
    /// `ovn-encap-type` (comma-separated), those ovs-run knows.
    pub encaps: Vec<OvnEncap>,
    /// `ovn-encap-ip` (comma-separated).
    pub encap_ips: Vec<IpAddr>,
}

impl OvnChassis {
    /// The chassis settings in `external_ids`; None when this host is no
    /// OVN chassis (no `ovn-encap-ip`). Entries that do not parse (an
    /// encap type OVS has and ovs-run does not: stt) are left out.
    pub fn from_external_ids(ids: &BTreeMap<String, String>) -> Option<Self> {
        let list = |k: &str| -> Vec<String> {
            ids.get(k)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let encap_ips: Vec<IpAddr> = list("ovn-encap-ip").iter().filter_map(|s| s.parse().ok()).collect();
        if encap_ips.is_empty() {
            return None;
        }
        let mut encaps: Vec<OvnEncap> = list("ovn-encap-type")
            .iter()
            .filter_map(|t| match t.as_str() {
                "geneve" => Some(OvnEncap::Geneve),
                "vxlan" => Some(OvnEncap::Vxlan),
                _ => None,
            })
            .collect();
        if encaps.is_empty() {
            // ovn-controller's own default.
            encaps.push(OvnEncap::Geneve);
        }
        let bridge =
            ids.get("ovn-bridge").filter(|b| !b.is_empty()).cloned().unwrap_or_else(|| "br-int".into());
        Some(Self { bridge, encaps, encap_ips })
    }
}

/// One way out of the bridge and what it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    /// What it is, for messages: "vxlan tunnel vxl-c0a83202 to 192.168.50.2".
    pub what: String,
    pub encap: Encap,
    /// The link the encapsulated packets leave by, and its MTU.
    pub device: String,
    pub device_mtu: u32,
    pub ipv6: bool,
}

impl Underlay {
    /// Its inner MTU (0 when the link is smaller than the overhead).
    pub fn inner(&self) -> u32 {
        self.device_mtu.saturating_sub(self.encap.overhead(self.ipv6))
    }
}

/// A bridge's inner MTU and which underlay set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerMtu {
    pub mtu: u32,
    /// "vxlan tunnel vxl-c0a83202 to 192.168.50.2 over br-phy (MTU 1500) minus 50".
    pub reason: String,
}

/// The smallest inner MTU over `underlays`; None when there are none.
pub fn smallest(underlays: &[Underlay]) -> Option<InnerMtu> {
    let u = underlays.iter().min_by_key(|u| u.inner())?;
    Some(InnerMtu {
        mtu: u.inner(),
        reason: format!(
            "{} over {} (MTU {}) minus {}",
            u.what,
            u.device,
            u.device_mtu,
            u.encap.overhead(u.ipv6)
        ),
    })
}

/// The link (name) the host's main table sends `remote` through: longest prefix.
fn route_device(routes: &[RouteSpec], remote: IpAddr) -> Option<&IfName> {
    routes
        .iter()
        .filter(|r| r.normalized_destination().contains(remote))
        .max_by_key(|r| r.normalized_destination().prefix)?
        .device
        .as_ref()
}

/// `bridge`'s inner MTU on `backend` (the real system, or the dry run's
/// model of it); None when the bridge has no overlay. A tunnel whose remote
/// has no route is left out (it carries nothing anyway); said at -v.
pub async fn inner_mtu(backend: &dyn Backend, bridge: &IfName) -> CapResult<Option<InnerMtu>> {
    let tunnels = backend.list_tunnels(bridge).await?;
    let chassis = OvnChassis::from_external_ids(&backend.ovs_external_ids().await?)
        .filter(|c| c.bridge == bridge.as_str());
    if tunnels.is_empty() && chassis.is_none() {
        return Ok(None);
    }
    let links = backend.list_links(&Target::Host, None).await?;
    let mtu_of = |name: &str| links.iter().find(|l| l.name == name).map(|l: &LinkInfo| l.mtu);
    let mut underlays = Vec::new();
    if !tunnels.is_empty() {
        let routes = backend.list_routes(&Target::Host).await?;
        for t in &tunnels {
            let s = &t.spec;
            let what = format!("{} tunnel {} to {}", s.kind, s.name, s.remote_ip);
            let Some(dev) = route_device(&routes, s.remote_ip) else {
                crate::verbose!(1, "inner MTU of {bridge}: {what} left out: no route to {}", s.remote_ip);
                continue;
            };
            let Some(device_mtu) = mtu_of(dev.as_str()) else {
                crate::verbose!(1, "inner MTU of {bridge}: {what} left out: no link {dev}");
                continue;
            };
            underlays.push(Underlay {
                what,
                encap: Encap::Tunnel(s.kind),
                device: dev.to_string(),
                device_mtu,
                ipv6: s.remote_ip.is_ipv6(),
            });
        }
    }
    if let Some(c) = chassis {
        for ip in &c.encap_ips {
            let Some(link) = links.iter().find(|l| l.addresses.iter().any(|a| a.addr == *ip)) else {
                crate::verbose!(1, "inner MTU of {bridge}: no link holds ovn-encap-ip {ip}");
                continue;
            };
            for e in &c.encaps {
                underlays.push(Underlay {
                    what: format!("{} from ovn-encap-ip {ip}", Encap::Ovn(*e)),
                    encap: Encap::Ovn(*e),
                    device: link.name.clone(),
                    device_mtu: link.mtu,
                    ipv6: ip.is_ipv6(),
                });
            }
        }
    }
    Ok(smallest(&underlays))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(encap: Encap, mtu: u32, ipv6: bool) -> Underlay {
        Underlay { what: format!("{encap}"), encap, device: "br-phy".into(), device_mtu: mtu, ipv6 }
    }

    #[test]
    fn overheads_as_the_issue_gives_them() {
        assert_eq!(u(Encap::Tunnel(TunnelKind::Vxlan), 1500, false).inner(), 1450);
        assert_eq!(u(Encap::Tunnel(TunnelKind::Geneve), 1500, false).inner(), 1450);
        assert_eq!(u(Encap::Tunnel(TunnelKind::Gre), 1500, false).inner(), 1462);
        assert_eq!(u(Encap::Ovn(OvnEncap::Geneve), 1500, false).inner(), 1442);
        assert_eq!(u(Encap::Tunnel(TunnelKind::Vxlan), 1500, true).inner(), 1430);
        assert_eq!(u(Encap::Tunnel(TunnelKind::Gre), 20, false).inner(), 0);
    }

    #[test]
    fn the_smallest_wins_and_says_why() {
        assert_eq!(smallest(&[]), None);
        let m = smallest(&[
            u(Encap::Tunnel(TunnelKind::Gre), 1500, false),
            u(Encap::Tunnel(TunnelKind::Vxlan), 9000, false),
            u(Encap::Ovn(OvnEncap::Geneve), 1500, false),
        ])
        .unwrap();
        assert_eq!(m.mtu, 1442);
        assert_eq!(m.reason, "OVN geneve over br-phy (MTU 1500) minus 58");
    }

    #[test]
    fn chassis_from_external_ids() {
        let ids = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(OvnChassis::from_external_ids(&ids(&[("ovn-encap-type", "geneve")])), None);
        let c = OvnChassis::from_external_ids(&ids(&[("ovn-encap-ip", "192.168.50.1")])).unwrap();
        assert_eq!(c.bridge, "br-int");
        assert_eq!(c.encaps, vec![OvnEncap::Geneve]);
        let c = OvnChassis::from_external_ids(&ids(&[
            ("ovn-encap-ip", "192.168.50.1, fd00::1"),
            ("ovn-encap-type", "geneve,vxlan,stt"),
            ("ovn-bridge", "br-ovn"),
        ]))
        .unwrap();
        assert_eq!(c.bridge, "br-ovn");
        assert_eq!(c.encaps, vec![OvnEncap::Geneve, OvnEncap::Vxlan]);
        assert_eq!(c.encap_ips.len(), 2);
    }

    #[test]
    fn routes_by_longest_prefix() {
        let r = |dest: Option<&str>, dev: &str| RouteSpec {
            destination: dest.map(|d| d.parse().unwrap()),
            via: None,
            device: Some(IfName::parse(dev).unwrap()),
        };
        let routes = [r(None, "eth9"), r(Some("192.168.50.0/24"), "br-phy")];
        assert_eq!(route_device(&routes, "192.168.50.2".parse().unwrap()).unwrap().as_str(), "br-phy");
        assert_eq!(route_device(&routes, "8.8.8.8".parse().unwrap()).unwrap().as_str(), "eth9");
        assert!(route_device(&routes, "fd00::1".parse().unwrap()).is_none());
    }
}
