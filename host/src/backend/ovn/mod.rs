//! OVN through its northbound database: logical switches, their ports and
//! logical routers, as typed changes ([`OvnChange`], carried by
//! [`super::Op::Ovn`]) that the real system ([`nb`]: one `OVN_Northbound`
//! transaction per change, with `wait` preconditions) and the dry-run model
//! ([`model`]) both apply. ovn-northd and every chassis's ovn-controller do
//! the rest; ovs-run never talks to the southbound database.
//!
//! The connection is opened on first use only: a script that does not use
//! the `ovn` capability never needs a northbound database.

pub mod model;
pub mod nb;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ovsdb::OvsdbUri;
use crate::error::{CapError, CapResult};
use crate::types::{Cidr, MacAddr, Mtu};

/// Interface external_ids keys that bind an OVS port to OVN.
pub mod ext {
    /// The logical switch port this interface is (ovn-controller binds it).
    pub const IFACE_ID: &str = "iface-id";
    /// Set to "true" by ovn-controller once the port's flows are installed.
    pub const OVN_INSTALLED: &str = "ovn-installed";
}

/// The database ovn-nbctl uses when given no `--db`: `$OVN_NB_DB`, else
/// `unix:/var/run/ovn/ovnnb_db.sock`.
pub fn default_nb_uri() -> CapResult<OvsdbUri> {
    match std::env::var("OVN_NB_DB") {
        Ok(s) if !s.is_empty() => s.parse().map_err(|e| CapError::invalid(format!("$OVN_NB_DB: {e}"))),
        _ => Ok(OvsdbUri::Unix(PathBuf::from("/var/run/ovn/ovnnb_db.sock"))),
    }
}

/// A logical switch, router or port name: 1-64 bytes of letters, digits and
/// `-_.`, so it reads the same in a policy, an audit line and ovn-nbctl's
/// output (OVN itself takes any string).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OvnName(String);

impl OvnName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> CapResult<Self> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(CapError::invalid(format!(
                "OVN name '{}' must be 1-{} bytes long",
                crate::types::shorten(s),
                Self::MAX_LEN
            )));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
            return Err(CapError::invalid(format!(
                "OVN name '{}' contains {c:?}: only letters, digits, '-', '_' and '.' are allowed",
                crate::types::shorten(&s.escape_debug().to_string())
            )));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OvnName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).map_err(|e| e.message)
    }
}

impl From<OvnName> for String {
    fn from(n: OvnName) -> String {
        n.0
    }
}

impl fmt::Display for OvnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check one entry of a logical switch port's `addresses` (`port_security`
/// when `security`): "MAC [IP...]", or for addresses also "dynamic",
/// "MAC dynamic", "unknown" or "router". Returned normalised (lower-case MAC,
/// single spaces), as ovn-northd parses it.
pub fn parse_lsp_address(s: &str, security: bool) -> CapResult<String> {
    let what = if security { "port security entry" } else { "address" };
    let words: Vec<&str> = s.split_whitespace().collect();
    if !security && words.len() == 1 && matches!(words[0], "dynamic" | "unknown" | "router") {
        return Ok(words[0].to_string());
    }
    let Some((mac, ips)) = words.split_first() else {
        return Err(CapError::invalid(format!("{what} is empty (want \"MAC [IP...]\")")));
    };
    let mac = MacAddr::parse(mac).map_err(|e| CapError::invalid(format!("{what} '{s}': {e}")))?;
    let mut out = vec![mac.to_string()];
    for ip in ips {
        if !security && *ip == "dynamic" && ips.len() == 1 {
            out.push(ip.to_string());
            continue;
        }
        // A bare address, or (port security) a network the port may use.
        let ok = crate::types::parse_ip(ip).is_ok() || (security && Cidr::parse(ip).is_ok());
        if !ok {
            return Err(CapError::invalid(format!("{what} '{s}': '{ip}' is not an IP address")));
        }
        out.push(ip.to_string());
    }
    Ok(out.join(" "))
}

/// A logical switch port as asked for (and as read back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPortSpec {
    pub name: OvnName,
    /// Entries as [`parse_lsp_address`] accepts.
    pub addresses: Vec<String>,
    pub port_security: Vec<String>,
}

/// A change to the northbound database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum OvnChange {
    /// `subnet`: other_config:subnet, from which ovn-northd hands out
    /// "dynamic" addresses; `mtu`: other_config:mtu (for DHCP's option).
    CreateSwitch {
        name: OvnName,
        subnet: Option<Cidr>,
        mtu: Option<Mtu>,
    },
    /// The switch and its ports.
    DeleteSwitch {
        name: OvnName,
    },
    AddSwitchPort {
        switch: OvnName,
        port: SwitchPortSpec,
    },
    DelSwitchPort {
        switch: OvnName,
        name: OvnName,
    },
    CreateRouter {
        name: OvnName,
    },
    /// Only a router without ports (remove them first: each joins a switch).
    DeleteRouter {
        name: OvnName,
    },
    /// A router port `name` with `mac` and `networks` on `router`, and a
    /// switch port on `switch` (type router, named by [`peer_switch_port`]) joining them.
    AddRouterPort {
        router: OvnName,
        switch: OvnName,
        name: OvnName,
        mac: MacAddr,
        networks: Vec<Cidr>,
    },
    /// The router port and its switch port.
    DelRouterPort {
        router: OvnName,
        name: OvnName,
    },
}

impl OvnChange {
    /// The capability name (WIT function of the `ovn` interface, Cedar action).
    pub fn action(&self) -> &'static str {
        match self {
            OvnChange::CreateSwitch { .. } => "create-switch",
            OvnChange::DeleteSwitch { .. } => "delete-switch",
            OvnChange::AddSwitchPort { .. } => "add-switch-port",
            OvnChange::DelSwitchPort { .. } => "del-switch-port",
            OvnChange::CreateRouter { .. } => "create-router",
            OvnChange::DeleteRouter { .. } => "delete-router",
            OvnChange::AddRouterPort { .. } => "add-router-port",
            OvnChange::DelRouterPort { .. } => "del-router-port",
        }
    }

    /// The logical switch the change is about, if any (policy context).
    pub fn switch(&self) -> Option<&OvnName> {
        match self {
            OvnChange::CreateSwitch { name, .. } | OvnChange::DeleteSwitch { name } => Some(name),
            OvnChange::AddSwitchPort { switch, .. }
            | OvnChange::DelSwitchPort { switch, .. }
            | OvnChange::AddRouterPort { switch, .. } => Some(switch),
            _ => None,
        }
    }

    /// The logical router the change is about, if any (policy context).
    pub fn router(&self) -> Option<&OvnName> {
        match self {
            OvnChange::CreateRouter { name } | OvnChange::DeleteRouter { name } => Some(name),
            OvnChange::AddRouterPort { router, .. } | OvnChange::DelRouterPort { router, .. } => Some(router),
            _ => None,
        }
    }

    /// The port the change is about, if any (policy context).
    pub fn port(&self) -> Option<&OvnName> {
        match self {
            OvnChange::AddSwitchPort { port, .. } => Some(&port.name),
            OvnChange::DelSwitchPort { name, .. }
            | OvnChange::AddRouterPort { name, .. }
            | OvnChange::DelRouterPort { name, .. } => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for OvnChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OvnChange::CreateSwitch { name, subnet, mtu } => {
                write!(f, "create OVN logical switch {name}")?;
                if let Some(s) = subnet {
                    write!(f, ", subnet {s}")?;
                }
                if let Some(m) = mtu {
                    write!(f, ", mtu {m}")?;
                }
                Ok(())
            }
            OvnChange::DeleteSwitch { name } => write!(f, "delete OVN logical switch {name} and its ports"),
            OvnChange::AddSwitchPort { switch, port } => {
                write!(f, "add logical port {} to OVN switch {switch}", port.name)?;
                if !port.addresses.is_empty() {
                    write!(f, ", addresses {:?}", port.addresses)?;
                }
                if !port.port_security.is_empty() {
                    write!(f, ", port security {:?}", port.port_security)?;
                }
                Ok(())
            }
            OvnChange::DelSwitchPort { switch, name } => {
                write!(f, "remove logical port {name} from OVN switch {switch}")
            }
            OvnChange::CreateRouter { name } => write!(f, "create OVN logical router {name}"),
            OvnChange::DeleteRouter { name } => write!(f, "delete OVN logical router {name}"),
            OvnChange::AddRouterPort { router, switch, name, mac, networks } => {
                let n: Vec<String> = networks.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "join OVN router {router} to switch {switch} through port {name} ({mac} {})",
                    n.join(" ")
                )
            }
            OvnChange::DelRouterPort { router, name } => {
                write!(f, "remove port {name} of OVN router {router} (and its switch port)")
            }
        }
    }
}

/// The switch port that joins router port `router_port` to its switch.
/// Not the router port's own name: OVN's southbound Port_Binding names are
/// one namespace for router and switch ports, and a clash leaves the router
/// port unbound (it never answers ARP).
pub fn peer_switch_port(router_port: &str) -> String {
    format!("stor-{router_port}")
}

/// A logical switch as read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchInfo {
    pub name: String,
    pub subnet: Option<String>,
    pub mtu: Option<u32>,
    pub ports: Vec<SwitchPortInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPortInfo {
    pub name: String,
    /// "" (a VIF, what a container is bound to) or "router".
    pub port_type: String,
    pub addresses: Vec<String>,
    pub port_security: Vec<String>,
    /// What ovn-northd assigned to a "dynamic" address.
    pub dynamic_addresses: Option<String>,
    /// Set by ovn-northd: a chassis has bound the port.
    pub up: bool,
    /// For a router port's peer: the router port.
    pub router_port: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInfo {
    pub name: String,
    pub ports: Vec<RouterPortInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterPortInfo {
    pub name: String,
    pub mac: String,
    pub networks: Vec<String>,
}

/// Everything ovs-run reads from the northbound database, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub switches: Vec<SwitchInfo>,
    pub routers: Vec<RouterInfo>,
}

impl Topology {
    pub fn switch(&self, name: &str) -> Option<&SwitchInfo> {
        self.switches.iter().find(|s| s.name == name)
    }

    pub fn router(&self, name: &str) -> Option<&RouterInfo> {
        self.routers.iter().find(|r| r.name == name)
    }

    /// The switch that has port `name`, with the port.
    pub fn switch_port(&self, name: &str) -> Option<(&SwitchInfo, &SwitchPortInfo)> {
        self.switches.iter().find_map(|s| s.ports.iter().find(|p| p.name == name).map(|p| (s, p)))
    }
}

/// The changes that put back switch port `p` of `switch` as it was read
/// (None: a port ovs-run cannot recreate as it was, e.g. a localnet port).
pub fn recreate_switch_port(switch: &str, p: &SwitchPortInfo) -> Option<OvnChange> {
    if !p.port_type.is_empty() {
        return None;
    }
    Some(OvnChange::AddSwitchPort {
        switch: OvnName::parse(switch).ok()?,
        port: SwitchPortSpec {
            name: OvnName::parse(&p.name).ok()?,
            addresses: p.addresses.clone(),
            port_security: p.port_security.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_checked() {
        assert!(OvnName::parse("ls-blue_1.a").is_ok());
        for bad in ["", "a b", "a\"b", "ä", &"x".repeat(65)] {
            let e = OvnName::parse(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidArgument, "{bad}");
        }
        assert_eq!(
            parse_lsp_address("0A:00:00:00:00:01  10.0.0.5", false).unwrap(),
            "0a:00:00:00:00:01 10.0.0.5"
        );
        assert_eq!(parse_lsp_address("dynamic", false).unwrap(), "dynamic");
        assert_eq!(
            parse_lsp_address("0a:00:00:00:00:01 dynamic", false).unwrap(),
            "0a:00:00:00:00:01 dynamic"
        );
        assert!(parse_lsp_address("dynamic", true).is_err());
        assert!(parse_lsp_address("0a:00:00:00:00:01 10.0.0.0/24", true).is_ok());
        let e = parse_lsp_address("0a:00:00:00:00:01 10.0.0.300", false).unwrap_err();
        assert!(e.message.contains("10.0.0.300"), "{e}");
        assert!(parse_lsp_address("zz 10.0.0.1", false).unwrap_err().message.contains("zz"));
    }

    #[test]
    fn changes_round_trip_through_the_journal_format() {
        let c = OvnChange::AddRouterPort {
            router: OvnName::parse("lr0").unwrap(),
            switch: OvnName::parse("ls0").unwrap(),
            name: OvnName::parse("lr0-ls0").unwrap(),
            mac: MacAddr::parse("0a:00:00:00:01:01").unwrap(),
            networks: vec![Cidr::parse("10.0.0.1/24").unwrap()],
        };
        let back: OvnChange = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!((c.action(), c.switch().unwrap().as_str()), ("add-router-port", "ls0"));
        let bad = serde_json::json!({"change": "delete-switch", "name": "a b"});
        assert!(serde_json::from_value::<OvnChange>(bad).is_err());
    }
}
