//! Who may do what. The gate asks the policy before every capability call,
//! reads included; a refusal becomes the `denied` error and changes nothing.
//!
//! Two policies exist: [`AllowAll`] for the local root operator, and
//! [`cedar::CedarPolicy`], a tenant's view of an operator's Cedar policy set
//! (`--policy FILE --tenant NAME`, and every run of `ovs-run serve`).
//!
//! Reads: a read that names one thing (list-ports of a bridge, list-links of
//! a namespace, lookup-container) is allowed or denied as a whole. A read
//! that spans everybody's things (list-bridges, list-containers) is asked
//! item by item and returns only the items allowed: a tenant sees its own
//! bridges and containers, and learns nothing about the others' except that
//! they may exist.

pub mod cedar;

use std::fmt;
use std::net::IpAddr;

use serde_json::{json, Value};

use crate::backend::Op;
use crate::error::{CapError, CapResult};
use crate::types::{ContainerInfo, IfName, Target};

/// A capability call as the policy sees it: typed, with targets resolved
/// (a container carries its id, name and labels, so rules can name any).
#[derive(Debug)]
pub enum Request<'a> {
    Apply(&'a Op),
    /// Asked once per bridge: list-bridges returns only the bridges allowed.
    ListBridges {
        bridge: &'a str,
    },
    ListPorts {
        bridge: &'a IfName,
    },
    ListTunnels {
        bridge: &'a IfName,
    },
    ListLinks {
        target: &'a Target,
    },
    ListRoutes {
        target: &'a Target,
    },
    LookupContainer {
        container: &'a ContainerInfo,
    },
    /// Asked once per container: list-containers returns only those allowed.
    ListContainers {
        container: &'a ContainerInfo,
    },
    Ping {
        target: &'a Target,
        address: IpAddr,
    },
    /// Asked for each end: the client's and the server's namespace.
    TcpCheck {
        target: &'a Target,
        address: IpAddr,
    },
    /// A read of the OVN northbound database (list-switches, list-routers):
    /// asked once per switch or router named, like list-bridges.
    OvnRead {
        action: &'static str,
        switch: Option<&'a str>,
        router: Option<&'a str>,
    },
}

impl Request<'_> {
    /// The capability name, as in the WIT contract and the Cedar schema.
    pub fn action(&self) -> &'static str {
        match self {
            Request::Apply(op) => op.action(),
            Request::ListBridges { .. } => "list-bridges",
            Request::ListTunnels { .. } => "list-tunnels",
            Request::ListPorts { .. } => "list-ports",
            Request::ListLinks { .. } => "list-links",
            Request::ListRoutes { .. } => "list-routes",
            Request::LookupContainer { .. } => "lookup-container",
            Request::ListContainers { .. } => "list-containers",
            Request::Ping { .. } => "ping",
            Request::TcpCheck { .. } => "tcp-check",
            Request::OvnRead { action, .. } => action,
        }
    }

    /// What the call acts on (the Cedar resource).
    pub fn resource(&self) -> Resource<'_> {
        match self {
            Request::Apply(op) => match op {
                Op::CreateBridge { name, .. } | Op::DeleteBridge { name, .. } => {
                    Resource::Bridge(name.as_str())
                }
                Op::AddPort { bridge, port, .. }
                | Op::AddVethPort { bridge, port, .. }
                | Op::DelPort { bridge, port }
                | Op::SetVlan { bridge, port, .. }
                | Op::SetExternalIds { bridge, port, .. } => {
                    Resource::Port { name: port.as_str(), bridge: bridge.as_str() }
                }
                Op::AddAddress { target, .. }
                | Op::DelAddress { target, .. }
                | Op::SetMtu { target, .. }
                | Op::SetMac { target, .. }
                | Op::SetLinkState { target, .. }
                | Op::SetOffload { target, .. }
                | Op::SetArp { target, .. }
                | Op::AddRoute { target, .. }
                | Op::DelRoute { target, .. } => Resource::of_target(target),
                Op::AddTunnel { bridge, tunnel } => {
                    Resource::Port { name: tunnel.name.as_str(), bridge: bridge.as_str() }
                }
                Op::DelTunnel { bridge, name } => {
                    Resource::Port { name: name.as_str(), bridge: bridge.as_str() }
                }
                // Undo steps only; never authorized (they do not pass the gate).
                Op::Restore { value: crate::backend::restore::Restore::BridgeHwaddr { bridge, .. } } => {
                    Resource::Bridge(bridge.as_str())
                }
                Op::Restore { value: crate::backend::restore::Restore::Vlan { bridge, port, .. } } => {
                    Resource::Port { name: port.as_str(), bridge: bridge.as_str() }
                }
                Op::Restore {
                    value:
                        crate::backend::restore::Restore::Mtu { target, .. }
                        | crate::backend::restore::Restore::Route { target, .. },
                } => Resource::of_target(target),
                // The northbound database is the deployment's, seen from this host.
                Op::Ovn { .. } => Resource::Host,
            },
            Request::ListBridges { bridge } => Resource::Bridge(bridge),
            Request::ListPorts { bridge } => Resource::Bridge(bridge.as_str()),
            Request::ListTunnels { bridge } => Resource::Bridge(bridge.as_str()),
            Request::ListLinks { target }
            | Request::ListRoutes { target }
            | Request::Ping { target, .. }
            | Request::TcpCheck { target, .. } => Resource::of_target(target),
            Request::LookupContainer { container } | Request::ListContainers { container } => {
                Resource::Container { id: &container.id, name: &container.name, labels: &container.labels }
            }
            Request::OvnRead { .. } => Resource::Host,
        }
    }

    /// The call's arguments, for the audit log.
    pub fn arguments(&self) -> Value {
        match self {
            Request::Apply(op) => serde_json::to_value(op).unwrap_or(Value::Null),
            Request::ListBridges { bridge } => json!({ "bridge": bridge }),
            Request::ListPorts { bridge } => json!({ "bridge": bridge }),
            Request::ListTunnels { bridge } => json!({ "bridge": bridge }),
            Request::ListLinks { target } | Request::ListRoutes { target } => json!({ "target": target }),
            Request::LookupContainer { container } | Request::ListContainers { container } => {
                json!({ "container": container.name, "id": container.id })
            }
            Request::Ping { target, address } | Request::TcpCheck { target, address } => {
                json!({ "target": target, "address": address })
            }
            Request::OvnRead { switch, router, .. } => json!({ "switch": switch, "router": router }),
        }
    }
}

/// The thing a call acts on, shown in Cedar's entity syntax.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    Bridge(&'a str),
    Port { name: &'a str, bridge: &'a str },
    Host,
    Netns(&'a str),
    Container { id: &'a str, name: &'a str, labels: &'a [(String, String)] },
}

impl<'a> Resource<'a> {
    pub fn of_target(target: &'a Target) -> Self {
        match target {
            Target::Host => Resource::Host,
            Target::Netns { name } => Resource::Netns(name.as_str()),
            Target::Container { id, name, labels, .. } => Resource::Container { id, name, labels },
        }
    }
}

impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Bridge(b) => write!(f, "Bridge::{b:?}"),
            Resource::Port { name, bridge } => write!(f, "Port::{name:?} in Bridge::{bridge:?}"),
            Resource::Host => f.write_str("Host::\"host\""),
            Resource::Netns(n) => write!(f, "Netns::{n:?}"),
            Resource::Container { id, name, .. } => write!(f, "Container::{id:?} ({name})"),
        }
    }
}

/// A policy's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The policies that decided: the permits that applied when allowed, the
    /// forbids that fired when denied (empty: nothing permitted it).
    pub policies: Vec<String>,
    /// Why, in words: "forbidden by policy vlan-range", "no policy permits it".
    pub reason: String,
}

impl Decision {
    pub fn allow(policy: &str) -> Self {
        Self { allowed: true, policies: vec![policy.to_string()], reason: format!("allowed by {policy}") }
    }
    pub fn deny(policies: Vec<String>, reason: impl Into<String>) -> Self {
        Self { allowed: false, policies, reason: reason.into() }
    }
}

pub trait Policy: Send + Sync {
    fn decide(&self, request: &Request<'_>) -> Decision;

    /// Whether some request for `action` could ever be allowed. The load-time
    /// check refuses a script that imports an interface none of whose actions
    /// can be; answering true when unsure is safe (every call is still decided).
    fn may_ever(&self, _action: &str) -> bool {
        true
    }

    /// Ok to go ahead; `Err(CapError::denied(..))` naming action, resource and policy otherwise.
    fn authorize(&self, request: &Request<'_>) -> CapResult<()> {
        let d = self.decide(request);
        if d.allowed {
            Ok(())
        } else {
            Err(denied(request, &d))
        }
    }
}

/// The `denied` error for a refused request.
pub fn denied(request: &Request<'_>, d: &Decision) -> CapError {
    CapError::denied(format!("{} on {}: {}", request.action(), request.resource(), d.reason))
}

/// Everything is allowed: the local root operator's default.
pub struct AllowAll;

impl Policy for AllowAll {
    fn decide(&self, _request: &Request<'_>) -> Decision {
        Decision::allow("allow-all")
    }
}

/// The actions of each capability interface of `wit/ovs-run.wit` (`types`
/// and `log` have none: they are always granted).
pub const INTERFACE_ACTIONS: &[(&str, &[&str])] = &[
    ("bridges", &["create-bridge", "delete-bridge", "list-bridges"]),
    ("ports", &["add-port", "del-port", "set-vlan", "list-ports"]),
    (
        "links",
        &[
            "set-address",
            "del-address",
            "set-mtu",
            "set-mac",
            "set-link-up",
            "set-link-down",
            "set-offload",
            "set-arp",
            "list-links",
        ],
    ),
    ("routes", &["set-route", "del-route", "list-routes"]),
    ("containers", &["lookup-container", "list-containers"]),
    ("diagnostics", &["ping", "tcp-check"]),
    ("tunnels", &["add-tunnel", "remove-tunnel", "list-tunnels"]),
    (
        "ovn",
        &[
            "create-switch",
            "delete-switch",
            "list-switches",
            "add-switch-port",
            "del-switch-port",
            "create-router",
            "delete-router",
            "add-router-port",
            "del-router-port",
            "list-routers",
        ],
    ),
];

/// The imported capability interfaces (`ovs-run:net/routes@0.1.0`) of which
/// `policy` can never allow any action: a script importing one is refused
/// before it runs.
pub fn refused_interfaces(policy: &dyn Policy, imports: &[String]) -> Vec<String> {
    imports
        .iter()
        .filter(|import| {
            let Some(rest) = import.strip_prefix("ovs-run:net/") else { return false };
            let iface = rest.split('@').next().unwrap_or(rest);
            INTERFACE_ACTIONS
                .iter()
                .find(|(name, _)| *name == iface)
                .is_some_and(|(_, actions)| !actions.iter().any(|a| policy.may_ever(a)))
        })
        .cloned()
        .collect()
}
