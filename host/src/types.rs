//! Validated network values: every string that crosses into ovs-run (from a
//! script, the CLI or a config file) is parsed into one of these exactly once,
//! and a parse error names the offending value. The values scripts share with
//! the host (interface names, CIDRs, MACs, VLAN ids, MTUs, container names)
//! are defined once, in the `ovs-run-types` crate the Rust guest SDK uses too;
//! this module adds what only the host knows (namespaces, targets, routes).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CapError;

pub use ovs_run_types::{
    parse_ip, shorten, Cidr, ContainerRef, IfName, InvalidValue, MacAddr, Mtu, VlanId, IFNAME_MAX,
};

/// A named network namespace (`ip netns add NAME`), found under /run/netns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetnsName(String);

impl NetnsName {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s != "."
            && s != ".."
            && !s.contains('/')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(CapError::invalid(format!("network namespace name '{}' is not valid", shorten(s))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NetnsName {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<NetnsName> for String {
    fn from(n: NetnsName) -> String {
        n.0
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `external_ids` keys ovs-run puts on the OVS ports it makes, beside
/// ovs-docker's `container_id` and `container_iface`.
pub mod external_ids {
    /// A port of a Docker network (`ovs-run docker-plugin`): the network's id.
    pub const DOCKER_NETWORK_ID: &str = "docker_network_id";
    /// ... and the endpoint's: such ports are Docker's to remove, not `gc`'s.
    pub const DOCKER_ENDPOINT_ID: &str = "docker_endpoint_id";
}

/// Where an operation happens, as the script asked for it (before lookup).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum TargetRef {
    Host,
    Container(ContainerRef),
    Netns(NetnsName),
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRef::Host => f.write_str("host"),
            TargetRef::Container(c) => write!(f, "container {c}"),
            TargetRef::Netns(n) => write!(f, "netns {n}"),
        }
    }
}

/// A Docker container as looked up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Full 64-hex-digit id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Pid of the init process; 0 when not running.
    pub pid: u32,
    pub running: bool,
    pub labels: Vec<(String, String)>,
}

/// Where an operation happens, resolved: containers carry their id and pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Target {
    Host,
    Netns {
        name: NetnsName,
    },
    Container {
        /// What the script called it (kept for ovs-docker compatible external ids).
        given: ContainerRef,
        id: String,
        name: String,
        pid: u32,
        /// The container's labels, for the policy (not part of its identity).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<(String, String)>,
    },
}

impl Target {
    /// A stable key naming the namespace (for models and caches).
    pub fn key(&self) -> String {
        match self {
            Target::Host => "host".into(),
            Target::Netns { name } => format!("netns:{name}"),
            Target::Container { id, .. } => format!("container:{id}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host => f.write_str("host"),
            Target::Netns { name } => write!(f, "netns {name}"),
            Target::Container { name, id, .. } => {
                write!(f, "container {name} ({})", &id[..id.len().min(12)])
            }
        }
    }
}

/// The datapath a bridge uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Datapath {
    System,
    Netdev,
}

impl Datapath {
    pub fn as_ovsdb(self) -> &'static str {
        match self {
            Datapath::System => "system",
            Datapath::Netdev => "netdev",
        }
    }

    /// The kernel datapath when the openvswitch module is loaded, else userspace.
    pub fn host_default() -> Self {
        if std::path::Path::new("/sys/module/openvswitch").exists() {
            Datapath::System
        } else {
            Datapath::Netdev
        }
    }
}

impl FromStr for Datapath {
    type Err = CapError;
    fn from_str(s: &str) -> Result<Self, CapError> {
        match s {
            "system" => Ok(Datapath::System),
            "netdev" => Ok(Datapath::Netdev),
            _ => Err(CapError::invalid(format!("datapath '{}' is not 'system' or 'netdev'", shorten(s)))),
        }
    }
}

impl fmt::Display for Datapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ovsdb())
    }
}

/// A link offload a script can turn on and off (`ethtool -K` by another name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offload {
    /// TX checksum offload (`ethtool -K DEV tx on|off`).
    TxChecksum,
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Offload::TxChecksum => "tx-checksum",
        })
    }
}

/// Whether a bridge's `datapath_type` (as OVSDB holds it) is ovs-vswitchd's
/// userspace datapath: "netdev", or "dummy" (its test double).
pub fn is_userspace_datapath(datapath_type: &str) -> bool {
    matches!(datapath_type, "netdev" | "dummy")
}

/// A route: no destination means the default route of the destination's family.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteSpec {
    pub destination: Option<Cidr>,
    pub via: Option<IpAddr>,
    pub device: Option<IfName>,
}

impl RouteSpec {
    pub fn validate(&self) -> Result<(), CapError> {
        if self.via.is_none() && self.device.is_none() {
            return Err(CapError::invalid("a route needs a gateway ('via'), a device, or both"));
        }
        if let (Some(d), Some(v)) = (&self.destination, &self.via) {
            if d.is_ipv4() != v.is_ipv4() {
                return Err(CapError::invalid(format!("route to {d} via {v} mixes IPv4 and IPv6")));
            }
        }
        Ok(())
    }

    /// True for IPv4 routes (a default route takes its family from the gateway).
    pub fn is_ipv4(&self) -> bool {
        match (&self.destination, &self.via) {
            (Some(d), _) => d.is_ipv4(),
            (None, Some(v)) => v.is_ipv4(),
            (None, None) => true,
        }
    }

    /// Whether an existing route `self` is the route `want` asks for: same
    /// destination, and the next hop and device match where `want` names them.
    pub fn satisfies(&self, want: &RouteSpec) -> bool {
        self.normalized_destination() == want.normalized_destination()
            && (want.via.is_none() || self.via == want.via)
            && (want.device.is_none() || self.device == want.device)
    }

    /// The destination as stored by the kernel (network address, default as 0/0).
    pub fn normalized_destination(&self) -> Cidr {
        match self.destination {
            Some(d) => d.network(),
            None if self.is_ipv4() => Cidr { addr: IpAddr::V4(0.into()), prefix: 0 },
            None => Cidr { addr: IpAddr::V6(0u128.into()), prefix: 0 },
        }
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.destination {
            Some(d) if d.prefix != 0 => write!(f, "{}", d.network())?,
            _ => f.write_str("default")?,
        }
        if let Some(v) = &self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.device {
            write!(f, " dev {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_and_datapath_names_are_checked() {
        assert!(NetnsName::parse("blue").is_ok());
        assert!(NetnsName::parse("a/b").is_err() && NetnsName::parse("..").is_err());
        assert!("bogus".parse::<Datapath>().unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn route_families_must_agree() {
        let r = RouteSpec {
            destination: Some(Cidr::parse("10.0.0.0/8").unwrap()),
            via: Some("fd00::1".parse().unwrap()),
            device: None,
        };
        assert!(r.validate().unwrap_err().to_string().contains("mixes IPv4 and IPv6"));
    }
}
