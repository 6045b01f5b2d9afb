//! Which container ports are dead, and removing them (`ovs-run gc`, and the
//! watcher on container die/destroy/start).
//!
//! A port is a *container port* when its Interface row carries ovs-docker's
//! `container_iface` and a container id (`container_id`, or ovs-run's
//! `container_full_id`); every other port is never looked at. A container
//! port is *live* when its container runs, ovs-vswitchd reports no error for
//! it, and its host-side veth leads into the container's current network
//! namespace (the peer index the host end names is, in that namespace, a link
//! whose own peer is the host end). Anything else is dead: the container is
//! gone or stopped, the veth vanished with an old namespace, or the veth
//! leads into a namespace the container no longer has (`docker restart`).
//!
//! Every port is judged before any is removed, and a question that gets no
//! answer (Docker or netlink unreachable) stops the collection: a port is
//! only removed when it is known to be dead. Removal is [`Op::DelPort`]
//! through the system backend, the path `detach` takes.
//!
//! A full `gc` (no bridge, no container named) also removes orphaned host
//! veths: ovs-run's deterministic port names (`ovr` + 10 hex digits + `_l`)
//! with no OVS port of that name on any bridge, which is what a detach
//! killed between removing the row and the veth leaves (see [`orphans`]).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::backend::system::{is_generated_port_name, SystemBackend};
use crate::backend::{veth_lock, Backend, Op};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{ContainerInfo, ContainerRef, IfName, Target};

pub use crate::backend::container_port::ContainerPort;

/// Why a container port is dead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum Reason {
    ContainerGone,
    ContainerStopped,
    /// ovs-vswitchd's error for the interface (or ofport -1).
    InterfaceError(String),
    /// The host end of the veth no longer exists.
    VethGone,
    /// The veth leads somewhere other than the container's current namespace.
    NotInContainer,
    /// A host veth of ovs-run's naming with no OVS port at all: what a
    /// detach cut short (port removed, veth not yet) leaves.
    Orphan,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ContainerGone => f.write_str("the container is gone"),
            Reason::ContainerStopped => f.write_str("the container is not running"),
            Reason::InterfaceError(e) => write!(f, "interface in error: {e}"),
            Reason::VethGone => f.write_str("its host veth is gone"),
            Reason::NotInContainer => {
                f.write_str("its veth does not lead into the container's current network namespace")
            }
            Reason::Orphan => f.write_str("a veth of ovs-run's naming that no OVS port uses"),
        }
    }
}

/// One dead port and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Removal {
    pub bridge: String,
    pub port: String,
    /// "container web (3f2a9c01b2d4) eth0".
    pub owner: String,
    #[serde(flatten)]
    pub reason: Reason,
    /// false in a dry run.
    pub removed: bool,
    /// Why removing it failed.
    pub error: Option<String>,
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            Reason::Orphan => format!("host veth {} ({})", self.port, self.reason),
            _ => format!("port {} from bridge {} ({}: {})", self.port, self.bridge, self.owner, self.reason),
        };
        match (&self.error, self.removed) {
            (Some(e), _) => write!(f, "failed to remove {what}: {e}"),
            (None, true) => write!(f, "removed {what}"),
            (None, false) => write!(f, "would remove {what}"),
        }
    }
}

/// Which ports a collection looks at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope<'a> {
    /// One bridge (which must exist), else all of them.
    pub bridge: Option<&'a IfName>,
    /// Only ports that may belong to this container (id, name).
    pub container: Option<(&'a str, &'a str)>,
}

/// Find the dead container ports in `scope` and remove them (unless
/// `dry_run`). Errors only when a port could not be judged; then nothing
/// was removed. A port that could not be removed is a [`Removal`] with an error.
pub async fn collect(sys: &SystemBackend, scope: Scope<'_>, dry_run: bool) -> CapResult<Vec<Removal>> {
    let bridges: Vec<IfName> = match scope.bridge {
        Some(b) => vec![b.clone()],
        None => sys.list_bridges().await?.into_iter().filter_map(|b| IfName::parse(&b.name).ok()).collect(),
    };
    let mut candidates = Vec::new();
    for bridge in &bridges {
        let ports = match sys.list_ports(bridge).await {
            Ok(p) => p,
            // Deleted since it was listed: nothing of it to collect.
            Err(e) if e.kind == ErrorKind::NotFound && scope.bridge.is_none() => continue,
            Err(e) => return Err(e),
        };
        candidates.extend(ports.into_iter().filter_map(ContainerPort::of).filter(
            |p| match scope.container {
                Some((id, name)) => p.may_belong_to(id, name),
                None => true,
            },
        ));
    }

    let mut judge = Judge { sys, containers: HashMap::new() };
    let mut dead = Vec::new();
    for p in candidates {
        if let Some(reason) = judge.judge(&p).await? {
            dead.push((p, reason));
        }
    }

    let mut out = Vec::new();
    for (p, reason) in dead {
        let mut r = Removal {
            bridge: p.bridge.to_string(),
            port: p.port.to_string(),
            owner: p.owner(),
            reason,
            removed: false,
            error: None,
        };
        if !dry_run {
            match sys.apply(&Op::DelPort { bridge: p.bridge.clone(), port: p.port.clone() }).await {
                Ok(_) => r.removed = true,
                Err(e) => r.error = Some(e.message),
            }
        }
        out.push(r);
    }
    if scope.bridge.is_none() && scope.container.is_none() {
        out.extend(orphans(sys, dry_run).await?);
    }
    Ok(out)
}

/// Host veths of ovs-run's naming ([`is_generated_port_name`]) that no
/// bridge has a port for, removed (unless `dry_run`). Looked for under the
/// veth lock held exclusively, so no attach is between making its veths
/// and adding their rows (see [`veth_lock`]). Only the host namespace of
/// this process and the OVSDB it was given are looked at.
async fn orphans(sys: &SystemBackend, dry_run: bool) -> CapResult<Vec<Removal>> {
    let _lock = veth_lock::exclusive().await?;
    let mut rows = HashSet::new();
    for b in sys.list_bridges().await? {
        let Ok(bridge) = IfName::parse(&b.name) else { continue };
        match sys.list_ports(&bridge).await {
            Ok(ports) => rows.extend(ports.into_iter().map(|p| p.name)),
            Err(e) if e.kind == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    let nl = sys.netlink().await?;
    let mut out = Vec::new();
    for link in nl.links(&Target::Host, None).await? {
        let Ok(name) = IfName::parse(&link.name) else { continue };
        if !is_generated_port_name(&name) || rows.contains(&link.name) {
            continue;
        }
        let mut r = Removal {
            bridge: String::new(),
            port: link.name.clone(),
            owner: "host".into(),
            reason: Reason::Orphan,
            removed: false,
            error: None,
        };
        if !dry_run {
            match nl.delete_link(&Target::Host, &name).await {
                Ok(_) => r.removed = true,
                Err(e) => r.error = Some(e.message),
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Judges ports, asking Docker once per container.
struct Judge<'a> {
    sys: &'a SystemBackend,
    containers: HashMap<String, Option<ContainerInfo>>,
}

impl Judge<'_> {
    async fn container(&mut self, key: &str) -> CapResult<Option<ContainerInfo>> {
        if let Some(c) = self.containers.get(key) {
            return Ok(c.clone());
        }
        let found = match ContainerRef::parse(key) {
            Ok(r) => match self.sys.lookup_container(&r).await {
                Ok(c) => Some(c),
                Err(e) if e.kind == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
            // Not something Docker could name: no container has it.
            Err(_) => None,
        };
        self.containers.insert(key.to_string(), found.clone());
        Ok(found)
    }

    /// None: live. Some(reason): dead.
    async fn judge(&mut self, p: &ContainerPort) -> CapResult<Option<Reason>> {
        let Some(c) = self.container(p.key()).await? else {
            return Ok(Some(Reason::ContainerGone));
        };
        if !c.running || c.pid == 0 {
            return Ok(Some(Reason::ContainerStopped));
        }
        if let Some(e) = &p.info.error {
            return Ok(Some(Reason::InterfaceError(e.clone())));
        }
        if p.info.ofport == Some(-1) {
            return Ok(Some(Reason::InterfaceError("ofport -1".into())));
        }
        let nl = self.sys.netlink().await?;
        let Some(host) = nl.link_ends(&Target::Host, &p.port).await? else {
            return Ok(Some(Reason::VethGone));
        };
        let Some(peer) = host.peer.filter(|_| host.peer_elsewhere) else {
            // Both ends still in the host namespace (ovs-docker moves the
            // peer in after adding the port), or not a veth: not ours to judge.
            return Ok(None);
        };
        let target = Target::Container {
            given: ContainerRef::parse(&c.id).map_err(|e| CapError::failed(e.0))?,
            id: c.id.clone(),
            name: c.name.clone(),
            pid: c.pid,
            labels: c.labels.clone(),
        };
        match nl.link_ends_by_index(&target, peer).await {
            Ok(Some(inner)) if inner.peer == Some(host.index) => Ok(None),
            Ok(_) => Ok(Some(Reason::NotInContainer)),
            // The container stopped while we looked.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Some(Reason::ContainerStopped)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PortInfo;

    fn port(ids: &[(&str, &str)]) -> PortInfo {
        PortInfo::fixture(ids)
    }

    const ID: &str = "3f2a9c01b2d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12";

    #[test]
    fn only_ports_with_container_metadata_are_container_ports() {
        assert!(ContainerPort::of(port(&[])).is_none(), "host port");
        assert!(ContainerPort::of(port(&[("container_iface", "eth0"), ("netns", "blue")])).is_none());
        assert!(ContainerPort::of(port(&[("container_id", "web")])).is_none(), "no interface");
        assert!(ContainerPort::of(port(&[("container_id", "web"), ("container_iface", "eth0")])).is_some());
        assert!(ContainerPort::of(port(&[("container_full_id", ID), ("container_iface", "eth0")])).is_some());
    }

    #[test]
    fn event_filter_prefers_the_full_id() {
        let ovs_docker =
            ContainerPort::of(port(&[("container_id", "web"), ("container_iface", "eth0")])).unwrap();
        assert!(ovs_docker.may_belong_to(ID, "web"));
        assert!(!ovs_docker.may_belong_to(ID, "db"));
        let by_id =
            ContainerPort::of(port(&[("container_id", &ID[..12]), ("container_iface", "eth0")])).unwrap();
        assert!(by_id.may_belong_to(ID, "web"));
        let ours = ContainerPort::of(port(&[
            ("container_id", "web"),
            ("container_full_id", ID),
            ("container_iface", "eth0"),
        ]))
        .unwrap();
        assert!(ours.may_belong_to(ID, "other-name"));
        // A later container called "web" is not the one this port was made for.
        assert!(!ours.may_belong_to(&ID.replace('3', "4"), "web"));
        assert_eq!(ours.owner(), "container web (3f2a9c01b2d4) eth0");
    }
}
