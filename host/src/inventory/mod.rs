//! The inventory behind `ovs-run ps` and `ovs-run show`: every container
//! port on the host, ovs-run's and ovs-docker's alike, with what each of the
//! three systems involved says about it:
//!
//! - OVSDB ([`ovsdb`]): bridge, port, VLAN, ofport, ovs-vswitchd's error,
//!   and the external ids that make it a container port (the same test as
//!   `gc`'s: [`ContainerPort::of`]);
//! - Docker: the container's name, full id, and whether it runs;
//! - netlink, in the container's own network namespace: the interface's
//!   addresses, MAC and MTU, and whether the host veth still leads there.
//!
//! and who manages the port: a binding (one whose selector takes the
//! container and whose arguments name the port's bridge and interface), a
//! Docker network (ovs-run's network driver marks its ports with
//! `docker_network_id`), or nobody ("by hand"). Everything is read only.
//!
//! A container or namespace that cannot be asked (stopped, gone, Docker
//! down) leaves its columns empty and says why in the row's state; only an
//! OVSDB that cannot be read fails the whole inventory.

mod ovsdb;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::backend::container_port::ContainerPort;
use crate::backend::ovsdb::OvsdbUri;
use crate::backend::system::SystemBackend;
use crate::backend::{ext, PortInfo};
use crate::error::{CapResult, ErrorKind};
use crate::lifecycle::bindings::{Binding, BindingStore};
use crate::types::{ContainerInfo, ContainerRef, IfName, Target};

/// The external id the Docker network driver gives the ports it makes.
pub use crate::types::external_ids::DOCKER_NETWORK_ID;

/// One container port.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub container: Container,
    /// The interface name inside the container.
    pub iface: String,
    pub bridge: String,
    pub port: String,
    /// Access VLAN (the port's tag).
    pub vlan: Option<u16>,
    pub trunks: Vec<u16>,
    /// Inside the container, read through netlink (empty when it cannot be reached).
    pub addresses: Vec<String>,
    pub mac: Option<String>,
    /// The container end's MTU, else what OVS reports for the host end.
    pub mtu: Option<u32>,
    pub state: State,
    pub managed_by: Manager,
    /// "ovs-run" for ports ovs-run made (ovs-docker marks nothing).
    pub created_by: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Container {
    /// As Docker names it now (None: Docker does not know it, or was not reachable).
    pub name: Option<String>,
    /// Full id: Docker's, else the one the port recorded.
    pub id: Option<String>,
    /// What whoever attached it called it (external id `container_id`).
    pub given: Option<String>,
    pub status: ContainerStatus,
}

impl Container {
    /// The name to show: Docker's, else what the port recorded.
    pub fn label(&self) -> &str {
        self.name.as_deref().or(self.given.as_deref()).or(self.id.as_deref()).unwrap_or("?")
    }

    pub fn short_id(&self) -> &str {
        self.id.as_deref().map_or("", |i| &i[..i.len().min(12)])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerStatus {
    Running,
    Stopped,
    /// Docker has no such container.
    Gone,
    /// Docker could not be asked.
    Unknown,
}

/// Where the host veth leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Veth {
    /// Into the container's current network namespace, whose end points back.
    Alive,
    /// The host end does not exist.
    Gone,
    /// Both ends are still in the host namespace (an attach in progress).
    InHost,
    /// Somewhere other than the container's current namespace (after `docker restart`).
    Elsewhere,
    /// Not checked: the container does not run, or its namespace could not be entered.
    Unknown,
}

/// What the three systems say about the port.
#[derive(Clone, Debug, Serialize)]
pub struct State {
    pub veth: Veth,
    pub ofport: Option<i32>,
    /// ovs-vswitchd's error for the interface.
    pub ovs_error: Option<String>,
    /// OVS's `link_state` of the host end.
    pub link_state: Option<String>,
    /// Why some columns are empty (e.g. the namespace could not be entered).
    pub note: Option<String>,
}

/// Who keeps the port there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Manager {
    Binding { binding: String, script: String },
    DockerNetwork { network: String },
    ByHand,
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::Binding { binding, script } => write!(f, "binding {binding} ({script})"),
            Manager::DockerNetwork { network } => {
                write!(f, "docker network {}", &network[..network.len().min(12)])
            }
            Manager::ByHand => f.write_str("by hand"),
        }
    }
}

impl Row {
    /// One word or two for the table: "ok", or the first thing wrong.
    pub fn health(&self) -> String {
        let s = &self.state;
        match self.container.status {
            ContainerStatus::Gone => return "container gone".into(),
            ContainerStatus::Stopped => return "container stopped".into(),
            _ => {}
        }
        if s.ovs_error.is_some() {
            return "ovs error".into();
        }
        match s.ofport {
            Some(-1) => return "ofport -1".into(),
            None => return "no ofport".into(),
            _ => {}
        }
        match s.veth {
            Veth::Gone => "veth gone".into(),
            Veth::InHost => "veth in host".into(),
            Veth::Elsewhere => "veth elsewhere".into(),
            Veth::Unknown => "unknown".into(),
            Veth::Alive if self.container.status == ContainerStatus::Running => "ok".into(),
            Veth::Alive => "unknown".into(),
        }
    }
}

/// Which ports to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub bridge: Option<String>,
    /// A container's name, id (or id prefix), or what a port recorded for it.
    pub container: Option<String>,
}

/// The rows, and what could not be asked (said once each, not per row).
#[derive(Debug, Default)]
pub struct Inventory {
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
}

/// Read the inventory. `state_dir` holds the bindings (None or missing: no bindings).
pub async fn gather(
    sys: &SystemBackend,
    ovsdb_uri: &OvsdbUri,
    state_dir: Option<&Path>,
    filter: &Filter,
) -> CapResult<Inventory> {
    let mut inv = Inventory::default();
    let ports = ovsdb::ports(ovsdb_uri).await?;
    let bindings = read_bindings(state_dir, &mut inv.warnings);
    let mut docker = DockerView { sys, seen: HashMap::new(), down: None };
    // The container asked for, as Docker knows it: a port recorded under an
    // old name still belongs to it by id.
    let wanted = match &filter.container {
        Some(c) => match ContainerRef::parse(c) {
            Ok(r) => docker.get(r.as_str()).await,
            Err(_) => None,
        },
        None => None,
    };
    for p in ports {
        if filter.bridge.as_deref().is_some_and(|b| b != p.info.bridge) {
            continue;
        }
        let (mtu_ovs, link_state) = (p.mtu, p.link_state.clone());
        let Some(cp) = ContainerPort::listed(p.info) else { continue };
        if let Some(want) = &filter.container {
            let hit = match &wanted {
                Some(c) => cp.may_belong_to(&c.id, &c.name),
                None => {
                    cp.given.as_deref() == Some(want.as_str())
                        || cp
                            .full_id
                            .as_deref()
                            .is_some_and(|f| want.len() >= 4 && f.starts_with(want.as_str()))
                }
            };
            if !hit {
                continue;
            }
        }
        let key = cp.full_id.clone().or(cp.given.clone()).unwrap_or_default();
        let known = docker.get(&key).await;
        let row = row(sys, cp, known, mtu_ovs, link_state, &bindings).await;
        inv.rows.push(row);
    }
    if let Some(e) = docker.down {
        inv.warnings.push(format!("container names and states unknown: {e}"));
    }
    inv.rows.sort_by(|a, b| {
        (a.container.label(), &a.iface, &a.bridge).cmp(&(b.container.label(), &b.iface, &b.bridge))
    });
    Ok(inv)
}

/// The operator's bindings; a state directory that does not exist has none
/// (and is not created: this is a read).
fn read_bindings(dir: Option<&Path>, warnings: &mut Vec<String>) -> Vec<Binding> {
    let Some(dir) = dir.filter(|d| d.exists()) else { return vec![] };
    match BindingStore::open(dir).and_then(|s| s.list()) {
        Ok((b, problems)) => {
            warnings.extend(problems.into_iter().map(|p| format!("unreadable binding: {p}")));
            b
        }
        Err(e) => {
            warnings.push(format!("bindings not read: {}", e.message));
            vec![]
        }
    }
}

/// Docker, asked once per container; after it failed once it is not asked again.
struct DockerView<'a> {
    sys: &'a SystemBackend,
    seen: HashMap<String, Option<ContainerInfo>>,
    down: Option<String>,
}

impl DockerView<'_> {
    /// None when Docker does not know `key` (or could not be asked: see `down`).
    async fn get(&mut self, key: &str) -> Option<ContainerInfo> {
        if let Some(c) = self.seen.get(key) {
            return c.clone();
        }
        if self.down.is_some() {
            return None;
        }
        let found = match ContainerRef::parse(key) {
            Ok(r) => match self.sys.docker().lookup(&r).await {
                Ok(c) => Some(c),
                Err(e) if e.kind == ErrorKind::NotFound => None,
                Err(e) => {
                    self.down = Some(e.message);
                    return None;
                }
            },
            Err(_) => None,
        };
        self.seen.insert(key.to_string(), found.clone());
        found
    }
}

/// Everything about one port.
async fn row(
    sys: &SystemBackend,
    cp: ContainerPort,
    known: Option<ContainerInfo>,
    mtu_ovs: Option<u32>,
    link_state: Option<String>,
    bindings: &[Binding],
) -> Row {
    let ids = &cp.info.external_ids;
    let status = match &known {
        Some(c) if c.running && c.pid != 0 => ContainerStatus::Running,
        Some(_) => ContainerStatus::Stopped,
        None if cp.full_id.is_some() || cp.given.is_some() => {
            // Gone, unless Docker could not be asked: the caller warns then.
            ContainerStatus::Gone
        }
        None => ContainerStatus::Unknown,
    };
    let mut state = State {
        veth: Veth::Unknown,
        ofport: cp.info.ofport,
        ovs_error: cp.info.error.clone(),
        link_state,
        note: None,
    };
    let (mut addresses, mut mac, mut mtu) = (vec![], None, None);
    match sys.netlink().await {
        Ok(nl) => {
            let (veth, inside) =
                look_inside(nl, &cp, known.as_ref().filter(|c| c.running && c.pid != 0)).await;
            state.veth = veth;
            match inside {
                Ok(Some(link)) => {
                    addresses = link.addresses.iter().map(ToString::to_string).collect();
                    mac = link.mac.map(|m| m.to_string());
                    mtu = Some(link.mtu);
                }
                Ok(None) => {}
                Err(e) => state.note = Some(e),
            }
        }
        Err(e) => state.note = Some(e.message),
    }
    let container = Container {
        name: known.as_ref().map(|c| c.name.clone()),
        id: known.as_ref().map(|c| c.id.clone()).or(cp.full_id.clone()),
        given: cp.given.clone(),
        status,
    };
    let managed_by = manager(&cp.info, &cp, known.as_ref(), bindings);
    Row {
        iface: cp.iface.to_string(),
        bridge: cp.bridge.to_string(),
        port: cp.port.to_string(),
        vlan: cp.info.tag,
        trunks: cp.info.trunks.clone(),
        addresses,
        mac,
        mtu: mtu.or(mtu_ovs),
        created_by: ids.get(ext::CREATED_BY).cloned(),
        container,
        state,
        managed_by,
    }
}

/// Where the host veth leads and, when into `running`'s namespace, the
/// container end's link (by the name the port recorded).
async fn look_inside(
    nl: &crate::backend::netlink::Netlink,
    cp: &ContainerPort,
    running: Option<&ContainerInfo>,
) -> (Veth, Result<Option<crate::backend::LinkInfo>, String>) {
    let host = match nl.link_ends(&Target::Host, &cp.port).await {
        Ok(Some(h)) => h,
        Ok(None) => return (Veth::Gone, Ok(None)),
        Err(e) => return (Veth::Unknown, Err(e.message)),
    };
    let Some(peer) = host.peer else { return (Veth::Unknown, Ok(None)) };
    if !host.peer_elsewhere {
        return (Veth::InHost, Ok(None));
    }
    let Some(c) = running else { return (Veth::Unknown, Ok(None)) };
    let Ok(given) = ContainerRef::parse(&c.id) else { return (Veth::Unknown, Ok(None)) };
    let target = Target::Container {
        given,
        id: c.id.clone(),
        name: c.name.clone(),
        pid: c.pid,
        labels: c.labels.clone(),
    };
    match nl.link_ends_by_index(&target, peer).await {
        Ok(Some(inner)) if inner.peer == Some(host.index) => {}
        Ok(_) => return (Veth::Elsewhere, Ok(None)),
        Err(e) if e.kind == ErrorKind::NotFound => return (Veth::Unknown, Ok(None)),
        Err(e) => return (Veth::Unknown, Err(e.message)),
    }
    let link = match nl.links(&target, Some(&cp.iface)).await {
        Ok(mut l) => l.pop(),
        // Renamed inside the container since: the veth is still fine.
        Err(e) if e.kind == ErrorKind::NotFound => None,
        Err(e) => return (Veth::Alive, Err(e.message)),
    };
    (Veth::Alive, Ok(link))
}

/// A Docker network's port, else the first binding that selects the
/// container and names both the port's bridge and interface, else by hand.
fn manager(
    info: &PortInfo,
    cp: &ContainerPort,
    known: Option<&ContainerInfo>,
    bindings: &[Binding],
) -> Manager {
    if let Some(n) = info.external_ids.get(DOCKER_NETWORK_ID).filter(|n| !n.is_empty()) {
        return Manager::DockerNetwork { network: n.clone() };
    }
    // A container Docker no longer knows is matched by what the port recorded.
    let fallback;
    let c = match known {
        Some(c) => c,
        None => {
            fallback = ContainerInfo {
                id: cp.full_id.clone().unwrap_or_default(),
                name: cp.given.clone().unwrap_or_default(),
                pid: 0,
                running: false,
                labels: vec![],
            };
            &fallback
        }
    };
    let names = |b: &Binding| {
        let args = b.args_for(c);
        args.iter().any(|a| a == cp.bridge.as_str()) && args.iter().any(|a| a == cp.iface.as_str())
    };
    match bindings.iter().find(|b| b.matches(c) && names(b)) {
        Some(b) => Manager::Binding { binding: b.id.clone(), script: b.script.file_name() },
        None => Manager::ByHand,
    }
}

/// The bridge given to `--bridge`, checked.
pub fn bridge_filter(s: &str) -> Result<String, String> {
    IfName::parse(s).map(|n| n.to_string()).map_err(|e| format!("--bridge: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::bindings::Selector;

    const ID: &str = "3f2a9c01b2d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12";

    fn port(ids: &[(&str, &str)]) -> ContainerPort {
        ContainerPort::of(PortInfo::fixture(ids)).unwrap()
    }

    fn web() -> ContainerInfo {
        ContainerInfo { id: ID.into(), name: "web".into(), pid: 1, running: true, labels: vec![] }
    }

    fn binding(args: &[&str]) -> Binding {
        let sel = Selector::Container(ContainerRef::parse("web").unwrap());
        Binding::new(sel, b"x", "/s/attach.wasm".into(), args.iter().map(|s| s.to_string()).collect(), None)
    }

    #[test]
    fn who_manages_a_port() {
        let cp = port(&[("container_id", "web"), ("container_iface", "eth0")]);
        let b = binding(&["br0", "eth0", "{container}"]);
        let other_iface = binding(&["br0", "eth1", "{container}"]);
        let m = manager(&cp.info, &cp, Some(&web()), &[other_iface.clone(), b.clone()]);
        assert_eq!(m, Manager::Binding { binding: b.id.clone(), script: "attach.wasm".into() });
        assert_eq!(manager(&cp.info, &cp, Some(&web()), &[other_iface]), Manager::ByHand);
        // A container Docker no longer knows: matched by the name the port recorded.
        assert!(matches!(manager(&cp.info, &cp, None, std::slice::from_ref(&b)), Manager::Binding { .. }));
        let net = port(&[("container_id", "web"), ("container_iface", "eth0"), (DOCKER_NETWORK_ID, "ab12")]);
        assert_eq!(
            manager(&net.info, &net, Some(&web()), &[b]),
            Manager::DockerNetwork { network: "ab12".into() }
        );
    }

    #[test]
    fn health_names_the_first_problem() {
        let mut r = Row {
            container: Container {
                name: Some("web".into()),
                id: Some(ID.into()),
                given: None,
                status: ContainerStatus::Running,
            },
            iface: "eth0".into(),
            bridge: "br0".into(),
            port: "p".into(),
            vlan: None,
            trunks: vec![],
            addresses: vec![],
            mac: None,
            mtu: None,
            state: State {
                veth: Veth::Alive,
                ofport: Some(2),
                ovs_error: None,
                link_state: None,
                note: None,
            },
            managed_by: Manager::ByHand,
            created_by: None,
        };
        assert_eq!(r.health(), "ok");
        r.state.veth = Veth::Elsewhere;
        assert_eq!(r.health(), "veth elsewhere");
        r.state.ovs_error = Some("could not open network device".into());
        assert_eq!(r.health(), "ovs error");
        r.container.status = ContainerStatus::Gone;
        assert_eq!(r.health(), "container gone");
        assert_eq!(r.container.short_id(), "3f2a9c01b2d4");
    }
}
