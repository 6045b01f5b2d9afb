//! Undo-only changes: putting back a value exactly as the system had it.
//!
//! A script asks for values in the ranges the contract allows (an MTU of
//! 68-65535, a VLAN tag of 1-4094, a static route). What a change replaces
//! may lie outside them: `lo` has an MTU of 65536, OVS accepts tags 0 and
//! 4095, and a route may have been installed by DHCP or the boot scripts
//! (`proto dhcp`, `proto boot`) with a metric. The undo of a change must
//! put back that old value as it was, so it is recorded raw, in an op no
//! script can request: [`Restore`] values are only made by backends as
//! undo steps, never authorized by a policy, and never pass the gate.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{IfName, RouteSpec, Target};

/// A route as the kernel had it: what [`RouteSpec`] says, plus the
/// attributes a static re-add would lose.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteRecord {
    pub route: RouteSpec,
    /// rtm_protocol (2 kernel, 3 boot, 4 static, 16 dhcp, ...).
    pub protocol: u8,
    /// rtm_scope (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// RTA_PRIORITY, the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// RTA_PREFSRC, the preferred source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefsrc: Option<std::net::IpAddr>,
}

impl fmt::Display for RouteRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} proto {}", self.route, self.protocol)?;
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(s) = self.prefsrc {
            write!(f, " src {s}")?;
        }
        Ok(())
    }
}

/// A value put back as recorded (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "what")]
pub enum Restore {
    /// The link's MTU as the kernel reported it (any value).
    Mtu { target: Target, ifname: IfName, mtu: u32 },
    /// The port's tag as OVSDB had it (any value 0-4095, or none).
    Vlan { bridge: IfName, port: IfName, tag: Option<u16> },
    /// A route with its protocol, scope, metric and source.
    Route { target: Target, route: RouteRecord },
    /// A bridge's `other_config:hwaddr` as OVSDB had it (or none): the MAC
    /// of its internal port (see `links.set-mac` on a bridge).
    BridgeHwaddr { bridge: IfName, hwaddr: Option<String> },
}

impl Restore {
    /// The namespace it acts in, when it acts in one.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Restore::Mtu { target, .. } | Restore::Route { target, .. } => Some(target),
            Restore::Vlan { .. } | Restore::BridgeHwaddr { .. } => None,
        }
    }
}

impl fmt::Display for Restore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restore::Mtu { target, ifname, mtu } => write!(f, "restore mtu {mtu} on {ifname} in {target}"),
            Restore::Vlan { bridge, port, tag: Some(t) } => {
                write!(f, "restore vlan tag {t} on port {port} of bridge {bridge}")
            }
            Restore::Vlan { bridge, port, tag: None } => {
                write!(f, "restore no vlan tag on port {port} of bridge {bridge}")
            }
            Restore::Route { target, route } => write!(f, "restore route {route} in {target}"),
            Restore::BridgeHwaddr { bridge, hwaddr: Some(h) } => {
                write!(f, "restore other_config:hwaddr {h} of bridge {bridge}")
            }
            Restore::BridgeHwaddr { bridge, hwaddr: None } => {
                write!(f, "restore no other_config:hwaddr of bridge {bridge}")
            }
        }
    }
}
