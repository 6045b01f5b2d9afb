//! The dry-run planner: an in-memory model of bridges, ports, namespaces,
//! links, addresses and routes. Every change is checked against the model the
//! way the real system would check it (a port on a missing bridge fails, a
//! duplicate port fails) and nothing outside the process is touched. The
//! changes that succeed, in order, are the plan.
//!
//! With a `reader` (the real system) the model starts as a copy of what is
//! there, read lazily; without one it starts empty, containers come from
//! `--assume-container`, and links in namespaces it has not seen are assumed
//! to exist.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::{
    port_external_ids, Applied, Backend, BatchError, BridgeInfo, LinkInfo, Op, PingStats, PortInfo,
    TransferStats,
};
use crate::error::{CapError, CapResult};
use crate::types::{Cidr, ContainerInfo, ContainerRef, IfName, RouteSpec, Target, VlanId};

#[derive(Clone, Debug)]
struct BridgeModel {
    datapath: String,
    ports: BTreeMap<String, PortInfo>,
    /// The ports of `ports` that are tunnels, with their settings.
    tunnels: BTreeMap<String, crate::tunnel::TunnelSpec>,
}

#[derive(Clone, Debug)]
struct NsModel {
    /// False when we never saw the real namespace: unknown links are assumed.
    known: bool,
    links: BTreeMap<String, LinkInfo>,
    routes: Vec<RouteSpec>,
}

#[derive(Clone, Default)]
struct Model {
    bridges: Option<BTreeMap<String, BridgeModel>>,
    namespaces: HashMap<String, NsModel>,
    /// Host end of a veth the model made -> (namespace key, inner name).
    veth_peers: HashMap<String, (String, String)>,
    /// The OVN northbound database, read on first use (see super::ovn::model).
    ovn: Option<super::ovn::Topology>,
}

pub struct DryRunBackend {
    model: Mutex<Model>,
    reader: Option<Arc<dyn Backend>>,
    assumed: Vec<ContainerInfo>,
    /// Where the OVN model is read from when `reader` is not there (OVSDB
    /// down does not mean the northbound database is).
    ovn_reader: Option<Arc<dyn Backend>>,
}

/// Parse `NAME[,label=value...]` from `--assume-container`.
pub fn parse_assumed_container(spec: &str) -> CapResult<ContainerInfo> {
    let mut parts = spec.split(',');
    let name = ContainerRef::parse(parts.next().unwrap_or_default())?;
    let mut labels = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CapError::invalid(format!("--assume-container label '{p}' is not KEY=VALUE")))?;
        labels.push((k.to_string(), v.to_string()));
    }
    // A made-up but stable id, so plans (and port names) are reproducible.
    let id = hex::encode(Sha256::digest(format!("assumed-container/{name}").as_bytes()));
    Ok(ContainerInfo { id, name: name.to_string(), pid: 1, running: true, labels })
}

fn new_link(name: &str, mtu: u32, up: bool) -> LinkInfo {
    LinkInfo { name: name.to_string(), mtu, mac: None, up, addresses: vec![], arp: true }
}

impl DryRunBackend {
    pub fn new(reader: Option<Arc<dyn Backend>>, assumed: Vec<ContainerInfo>) -> Self {
        Self { model: Mutex::new(Model::default()), reader, assumed, ovn_reader: None }
    }

    /// Read the OVN model from `reader` (the real system), whatever `reader` is.
    pub fn with_ovn_reader(mut self, reader: Arc<dyn Backend>) -> Self {
        self.ovn_reader = Some(reader);
        self
    }

    /// A port of the model, or the error a real OVSDB lookup would give.
    async fn port<'a>(
        &self,
        m: &'a mut Model,
        bridge: &IfName,
        port: &IfName,
    ) -> CapResult<&'a mut PortInfo> {
        self.bridges(m)
            .await?
            .get_mut(bridge.as_str())
            .and_then(|b| b.ports.get_mut(port.as_str()))
            .ok_or_else(|| CapError::not_found(format!("port {port} not found on bridge {bridge}")))
    }

    async fn bridges<'a>(&self, m: &'a mut Model) -> CapResult<&'a mut BTreeMap<String, BridgeModel>> {
        if m.bridges.is_none() {
            let mut bridges = BTreeMap::new();
            if let Some(r) = &self.reader {
                for b in r.list_bridges().await? {
                    let name = IfName::parse(&b.name)?;
                    let ports = r.list_ports(&name).await?.into_iter().map(|p| (p.name.clone(), p)).collect();
                    let tunnels = r
                        .list_tunnels(&name)
                        .await?
                        .into_iter()
                        .map(|t| (t.spec.name.to_string(), t.spec))
                        .collect();
                    bridges.insert(b.name, BridgeModel { datapath: b.datapath_type, ports, tunnels });
                }
            }
            m.bridges = Some(bridges);
        }
        Ok(m.bridges.as_mut().expect("just set"))
    }

    /// The OVN model: the real northbound database's topology when the
    /// reader reaches it, else empty (as for bridges without OVSDB).
    async fn ovn<'a>(&self, m: &'a mut Model) -> CapResult<&'a mut super::ovn::Topology> {
        if m.ovn.is_none() {
            let t = match self.ovn_reader.as_ref().or(self.reader.as_ref()) {
                Some(r) => r.ovn_topology().await.unwrap_or_default(),
                None => Default::default(),
            };
            m.ovn = Some(t);
        }
        Ok(m.ovn.as_mut().expect("just set"))
    }

    async fn ns<'a>(&self, m: &'a mut Model, target: &Target) -> CapResult<&'a mut NsModel> {
        let key = target.key();
        if !m.namespaces.contains_key(&key) {
            let assumed =
                matches!(target, Target::Container { id, .. } if self.assumed.iter().any(|c| &c.id == id));
            let ns = match &self.reader {
                Some(r) if !assumed => NsModel {
                    known: true,
                    links: r
                        .list_links(target, None)
                        .await?
                        .into_iter()
                        .map(|l| (l.name.clone(), l))
                        .collect(),
                    routes: r.list_routes(target).await?,
                },
                // A `--net=none` container has only its loopback, and the
                // interfaces of the ports OVSDB records for it (an assumed
                // container that is attached for real).
                _ if matches!(target, Target::Container { .. }) => {
                    let mut links: BTreeMap<String, LinkInfo> =
                        [("lo".to_string(), new_link("lo", 65536, true))].into();
                    if let Target::Container { id, name, .. } = target {
                        for p in self.bridges(m).await?.values().flat_map(|b| b.ports.values()) {
                            let Some(cp) = super::container_port::ContainerPort::of(p.clone()) else {
                                continue;
                            };
                            if cp.may_belong_to(id, name) {
                                links.insert(cp.iface.to_string(), new_link(cp.iface.as_str(), 1500, true));
                            }
                        }
                    }
                    NsModel { known: true, links, routes: vec![] }
                }
                _ => NsModel { known: false, links: BTreeMap::new(), routes: vec![] },
            };
            m.namespaces.insert(key.clone(), ns);
        }
        Ok(m.namespaces.get_mut(&key).expect("just inserted"))
    }

    async fn link<'a>(
        &self,
        m: &'a mut Model,
        target: &Target,
        name: &IfName,
    ) -> CapResult<&'a mut LinkInfo> {
        let ns = self.ns(m, target).await?;
        if !ns.known && !ns.links.contains_key(name.as_str()) {
            ns.links.insert(name.to_string(), new_link(name.as_str(), 1500, false));
        }
        ns.links
            .get_mut(name.as_str())
            .ok_or_else(|| CapError::not_found(format!("link {name} not found in {target}")))
    }

    /// `op`, then what it implies (an add-port's addresses and route), as
    /// the system makes them: the op's own undo covers them all. On a model
    /// the caller throws away when this fails.
    async fn apply_with_implied(&self, m: &mut Model, op: &Op) -> CapResult<Applied> {
        let applied = self.apply_locked(m, op).await?;
        for implied in op.implied() {
            self.apply_locked(m, &implied).await.map_err(|e| e.context(op.action()))?;
        }
        Ok(applied)
    }

    async fn apply_locked(&self, m: &mut Model, op: &Op) -> CapResult<Applied> {
        match op {
            Op::CreateBridge { name, datapath, may_exist } => {
                let bridges = self.bridges(m).await?;
                if bridges.contains_key(name.as_str()) {
                    return if *may_exist {
                        Ok(Applied::unchanged())
                    } else {
                        Err(CapError::exists(format!("bridge {name} already exists")))
                    };
                }
                if bridges.values().any(|b| b.ports.contains_key(name.as_str())) {
                    return Err(CapError::exists(format!("a port named {name} already exists")));
                }
                let internal = PortInfo {
                    name: name.to_string(),
                    bridge: name.to_string(),
                    tag: None,
                    trunks: vec![],
                    external_ids: BTreeMap::new(),
                    ofport: Some(65534),
                    error: None,
                };
                let ports = [(name.to_string(), internal)].into();
                let tunnels = BTreeMap::new();
                bridges
                    .insert(name.to_string(), BridgeModel { datapath: datapath.to_string(), ports, tunnels });
                let host = self.ns(m, &Target::Host).await?;
                host.links.insert(name.to_string(), new_link(name.as_str(), 1500, false));
                Ok(Applied::changed(vec![Op::DeleteBridge { name: name.clone(), if_exists: true }]))
            }
            Op::DeleteBridge { name, if_exists } => {
                let bridges = self.bridges(m).await?;
                let Some(b) = bridges.remove(name.as_str()) else {
                    return if *if_exists {
                        Ok(Applied::unchanged())
                    } else {
                        Err(CapError::not_found(format!("bridge {name} does not exist")))
                    };
                };
                // Only the bridge's internal port goes with it: veths stay, as
                // they do when ovs-vsctl del-br removes a bridge.
                let _ = b;
                self.ns(m, &Target::Host).await?.links.remove(name.as_str());
                Ok(Applied::irreversible())
            }
            Op::AddPort { bridge, port, target, ifname, mtu, mac, vlan, trunks, iface_id, .. } => {
                // In the system's order: an existing port, then (for a veth)
                // an existing host end, and only then the bridge.
                let bridges = self.bridges(m).await?;
                if let Some(b) = bridges.values().find(|b| b.ports.contains_key(port.as_str())) {
                    let on = b.ports[port.as_str()].bridge.clone();
                    return Err(super::system::already_attached(target, ifname, port, &on));
                }
                if *target != Target::Host
                    && self.ns(m, &Target::Host).await?.links.contains_key(port.as_str())
                {
                    return Err(CapError::exists(format!("link {port} already exists in host")));
                }
                if !self.bridges(m).await?.contains_key(bridge.as_str()) {
                    return Err(CapError::not_found(format!("bridge {bridge} does not exist")));
                }
                let mut external_ids = port_external_ids(target, ifname);
                if let Some(id) = iface_id {
                    external_ids.insert(super::ovn::ext::IFACE_ID.into(), id.to_string());
                }
                let info = modelled_port(bridge, port, vlan, trunks, external_ids);
                if *target == Target::Host {
                    self.link(m, target, ifname).await?;
                } else {
                    let ns = self.ns(m, target).await?;
                    if ns.links.contains_key(ifname.as_str()) {
                        return Err(CapError::exists(format!(
                            "interface {ifname} already exists in {target}"
                        )));
                    }
                    let mtu = mtu.map(|m| m.get()).unwrap_or(1500);
                    let mut inner = new_link(ifname.as_str(), mtu, true);
                    inner.mac = *mac;
                    ns.links.insert(ifname.to_string(), inner);
                    let host = self.ns(m, &Target::Host).await?;
                    host.links.insert(port.to_string(), new_link(port.as_str(), mtu, true));
                    m.veth_peers.insert(port.to_string(), (target.key(), ifname.to_string()));
                }
                let bridges = self.bridges(m).await?;
                bridges
                    .get_mut(bridge.as_str())
                    .expect("checked")
                    .ports
                    .insert(port.to_string(), info.clone());
                let mut a =
                    Applied::changed(vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }]);
                a.port = Some(info);
                Ok(a)
            }
            Op::AddVethPort { bridge, port, peer, mtu, mac, vlan, trunks, external_ids, .. } => {
                let bridges = self.bridges(m).await?;
                if let Some(b) = bridges.values().find(|b| b.ports.contains_key(port.as_str())) {
                    let on = &b.ports[port.as_str()].bridge;
                    return Err(CapError::exists(format!("port {port} already exists on bridge {on}")));
                }
                let Some(b) = bridges.get_mut(bridge.as_str()) else {
                    return Err(CapError::not_found(format!("bridge {bridge} does not exist")));
                };
                let info = modelled_port(bridge, port, vlan, trunks, external_ids.clone());
                b.ports.insert(port.to_string(), info.clone());
                let mtu = mtu.map(|m| m.get()).unwrap_or(1500);
                let host = self.ns(m, &Target::Host).await?;
                let mut inner = new_link(peer.as_str(), mtu, true);
                inner.mac = *mac;
                host.links.insert(peer.to_string(), inner);
                host.links.insert(port.to_string(), new_link(port.as_str(), mtu, true));
                m.veth_peers.insert(port.to_string(), (Target::Host.key(), peer.to_string()));
                let mut a =
                    Applied::changed(vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }]);
                a.port = Some(info);
                Ok(a)
            }
            Op::DelPort { bridge, port } => {
                let bridges = self.bridges(m).await?;
                if let Some(b) = bridges.get_mut(bridge.as_str()) {
                    b.tunnels.remove(port.as_str());
                }
                let Some(info) = bridges.get_mut(bridge.as_str()).and_then(|b| b.ports.remove(port.as_str()))
                else {
                    // As the system: a veth of ovs-run's naming left without
                    // its OVS row (its bridge deleted, or a run killed between
                    // the two) is removed, with its peer.
                    let host = self.ns(m, &Target::Host).await?;
                    if !super::system::is_generated_port_name(port)
                        || host.links.remove(port.as_str()).is_none()
                    {
                        return Ok(Applied::unchanged());
                    }
                    if let Some((key, inner)) = m.veth_peers.remove(port.as_str()) {
                        if let Some(ns) = m.namespaces.get_mut(&key) {
                            ns.links.remove(&inner);
                            ns.routes
                                .retain(|r| r.device.as_ref().map(|d| d.as_str()) != Some(inner.as_str()));
                        }
                    }
                    return Ok(Applied::irreversible());
                };
                m.veth_peers.remove(port.as_str());
                let host = self.ns(m, &Target::Host).await?;
                if let Some(inner) = info.container_iface() {
                    host.links.remove(port.as_str());
                    // The peer goes with it, and so do its routes.
                    let ids = &info.external_ids;
                    let key = match (ids.get(super::ext::CONTAINER_FULL_ID), ids.get(super::ext::NETNS)) {
                        (Some(id), _) => Some(format!("container:{id}")),
                        (None, Some(n)) => Some(format!("netns:{n}")),
                        _ => None,
                    };
                    if let Some(ns) = key.and_then(|k| m.namespaces.get_mut(&k)) {
                        ns.links.remove(inner);
                        ns.routes.retain(|r| r.device.as_ref().map(|d| d.as_str()) != Some(inner));
                    }
                }
                Ok(Applied::irreversible())
            }
            Op::SetVlan { bridge, port, vlan } => {
                let p = self.port(m, bridge, port).await?;
                let old = p.tag;
                let new = vlan.map(|v| v.get());
                if old == new {
                    return Ok(Applied::unchanged());
                }
                p.tag = new;
                let old = old.map(crate::types::VlanId::new).transpose()?;
                Ok(Applied::changed(vec![Op::SetVlan {
                    bridge: bridge.clone(),
                    port: port.clone(),
                    vlan: old,
                }]))
            }
            Op::SetExternalIds { bridge, port, ids } => {
                let p = self.port(m, bridge, port).await?;
                let old: BTreeMap<String, Option<String>> =
                    ids.keys().map(|k| (k.clone(), p.external_ids.get(k).cloned())).collect();
                if &old == ids {
                    return Ok(Applied::unchanged());
                }
                for (k, v) in ids {
                    match v {
                        Some(v) => p.external_ids.insert(k.clone(), v.clone()),
                        None => p.external_ids.remove(k),
                    };
                }
                Ok(Applied::changed(vec![Op::SetExternalIds {
                    bridge: bridge.clone(),
                    port: port.clone(),
                    ids: old,
                }]))
            }
            Op::AddAddress { target, ifname, cidr } => {
                let l = self.link(m, target, ifname).await?;
                if l.addresses.contains(cidr) {
                    return Ok(Applied::unchanged());
                }
                l.addresses.push(*cidr);
                Ok(Applied::changed(vec![Op::DelAddress {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    cidr: *cidr,
                }]))
            }
            Op::DelAddress { target, ifname, cidr } => {
                let l = self.link(m, target, ifname).await?;
                let before = l.addresses.len();
                l.addresses.retain(|a| a != cidr);
                if l.addresses.len() == before {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::AddAddress {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    cidr: *cidr,
                }]))
            }
            Op::SetMtu { target, ifname, mtu } => {
                let l = self.link(m, target, ifname).await?;
                if l.mtu == mtu.get() {
                    return Ok(Applied::unchanged());
                }
                let old = crate::types::Mtu::new(l.mtu)?;
                l.mtu = mtu.get();
                Ok(Applied::changed(vec![Op::SetMtu {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    mtu: old,
                }]))
            }
            Op::SetMac { target, ifname, mac } => {
                let l = self.link(m, target, ifname).await?;
                if l.mac == Some(*mac) {
                    return Ok(Applied::unchanged());
                }
                let undo = l
                    .mac
                    .map(|old| Op::SetMac { target: target.clone(), ifname: ifname.clone(), mac: old })
                    .into_iter()
                    .collect();
                l.mac = Some(*mac);
                Ok(Applied::changed(undo))
            }
            Op::SetLinkState { target, ifname, up } => {
                let l = self.link(m, target, ifname).await?;
                let undo = Op::SetLinkState { target: target.clone(), ifname: ifname.clone(), up: !up };
                Ok(set_flag(&mut l.up, *up, undo))
            }
            // The model does not know a link's offloads: the plan shows the
            // change, and its undo is the opposite.
            Op::SetOffload { target, ifname, offload, on } => {
                self.link(m, target, ifname).await?;
                Ok(Applied::changed(vec![Op::SetOffload {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    offload: *offload,
                    on: !on,
                }]))
            }
            Op::SetArp { target, ifname, on } => {
                let l = self.link(m, target, ifname).await?;
                let undo = Op::SetArp { target: target.clone(), ifname: ifname.clone(), on: !on };
                Ok(set_flag(&mut l.arp, *on, undo))
            }
            Op::AddRoute { target, route } => {
                if let Some(dev) = &route.device {
                    self.link(m, target, dev).await?;
                }
                let ns = self.ns(m, target).await?;
                check_gateway(ns, target, route)?;
                let dest = route.normalized_destination();
                if let Some(existing) = ns.routes.iter().find(|r| r.normalized_destination() == dest) {
                    return if existing.satisfies(route) {
                        Ok(Applied::unchanged())
                    } else {
                        Err(CapError::exists(format!("{target} already has a route to {existing}")))
                    };
                }
                ns.routes.push(route.clone());
                Ok(Applied::changed(vec![Op::DelRoute { target: target.clone(), route: route.clone() }]))
            }
            Op::DelRoute { target, route } => {
                let ns = self.ns(m, target).await?;
                let before = ns.routes.len();
                ns.routes.retain(|r| !r.satisfies(route));
                if ns.routes.len() == before {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::AddRoute { target: target.clone(), route: route.clone() }]))
            }
            Op::AddTunnel { bridge, tunnel } => {
                // In the system's order: the bridge, then a port of that name anywhere.
                let bridges = self.bridges(m).await?;
                if !bridges.contains_key(bridge.as_str()) {
                    return Err(CapError::not_found(format!("bridge {bridge} does not exist")));
                }
                let name = &tunnel.name;
                if bridges.values().any(|b| b.ports.contains_key(name.as_str())) {
                    return Err(CapError::exists(format!("port {name} already exists")));
                }
                let created_by = [(super::ext::CREATED_BY.to_string(), "ovs-run".to_string())];
                let info = modelled_port(bridge, name, &None, &[], created_by.into());
                let b = bridges.get_mut(bridge.as_str()).expect("checked");
                b.ports.insert(name.to_string(), info.clone());
                b.tunnels.insert(name.to_string(), tunnel.clone());
                let mut a =
                    Applied::changed(vec![Op::DelTunnel { bridge: bridge.clone(), name: name.clone() }]);
                a.port = Some(info);
                Ok(a)
            }
            Op::DelTunnel { bridge, name } => {
                let bridges = self.bridges(m).await?;
                let Some(b) =
                    bridges.get_mut(bridge.as_str()).filter(|b| b.ports.contains_key(name.as_str()))
                else {
                    return Ok(Applied::unchanged());
                };
                let Some(tunnel) = b.tunnels.remove(name.as_str()) else {
                    return Err(CapError::invalid(format!(
                        "port {name} on bridge {bridge} is not a tunnel ovs-run manages; remove it with del-port"
                    )));
                };
                b.ports.remove(name.as_str());
                Ok(Applied::changed(vec![Op::AddTunnel { bridge: bridge.clone(), tunnel }]))
            }
            Op::Ovn { change } => {
                let t = self.ovn(m).await?;
                super::ovn::model::apply(t, change)
            }
            // Undo steps of the real system; the model's own undos never
            // need them, but a rollback may replay any undo.
            Op::Restore { value } => match value {
                super::restore::Restore::Mtu { target, ifname, mtu } => {
                    self.link(m, target, ifname).await?.mtu = *mtu;
                    Ok(Applied::changed(vec![]))
                }
                super::restore::Restore::Vlan { bridge, port, tag } => {
                    let bridges = self.bridges(m).await?;
                    if let Some(p) =
                        bridges.get_mut(bridge.as_str()).and_then(|b| b.ports.get_mut(port.as_str()))
                    {
                        p.tag = *tag;
                    }
                    Ok(Applied::changed(vec![]))
                }
                super::restore::Restore::BridgeHwaddr { bridge, hwaddr } => {
                    let mac = hwaddr.as_deref().and_then(|h| crate::types::MacAddr::parse(h).ok());
                    if let Some(l) = self.ns(m, &Target::Host).await?.links.get_mut(bridge.as_str()) {
                        l.mac = mac;
                    }
                    Ok(Applied::changed(vec![]))
                }
                super::restore::Restore::Route { target, route } => {
                    let ns = self.ns(m, target).await?;
                    if !ns.routes.contains(&route.route) {
                        ns.routes.push(route.route.clone());
                    }
                    Ok(Applied::changed(vec![]))
                }
            },
        }
    }
}

/// The kernel refuses a gateway that no link's subnet reaches.
fn check_gateway(ns: &NsModel, target: &Target, route: &RouteSpec) -> CapResult<()> {
    let Some(via) = route.via else { return Ok(()) };
    if !ns.known {
        return Ok(());
    }
    let links: Vec<&LinkInfo> = match &route.device {
        Some(d) => ns.links.get(d.as_str()).into_iter().collect(),
        None => ns.links.values().collect(),
    };
    if links.iter().any(|l| l.addresses.iter().any(|a: &Cidr| a.contains(via))) {
        Ok(())
    } else {
        Err(CapError::invalid(format!(
            "gateway {via} is not in any subnet of {}in {target}",
            route.device.as_ref().map(|d| format!("{d} ")).unwrap_or_default()
        )))
    }
}

#[async_trait]
impl Backend for DryRunBackend {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    async fn apply(&self, op: &Op) -> CapResult<Applied> {
        let mut m = self.model.lock().await;
        if op.implied().is_empty() {
            return self.apply_locked(&mut m, op).await;
        }
        let mut trial = m.clone();
        let applied = self.apply_with_implied(&mut trial, op).await?;
        *m = trial;
        Ok(applied)
    }

    /// All or none, like the system: the batch is tried on a copy of the
    /// model, which replaces the model only when every op succeeded.
    async fn apply_many(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let mut m = self.model.lock().await;
        let mut trial = m.clone();
        let mut applied = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match self.apply_with_implied(&mut trial, op).await {
                Ok(a) => applied.push(a),
                Err(error) => return Err(BatchError { index, error }),
            }
        }
        *m = trial;
        Ok(applied)
    }

    async fn ovn_topology(&self) -> CapResult<super::ovn::Topology> {
        let mut m = self.model.lock().await;
        Ok(self.ovn(&mut m).await?.clone())
    }

    /// Read from the real system (the dry run changes no external_ids).
    async fn ovs_external_ids(&self) -> CapResult<BTreeMap<String, String>> {
        match &self.reader {
            Some(r) => r.ovs_external_ids().await,
            None => Ok(BTreeMap::new()),
        }
    }

    async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        let mut m = self.model.lock().await;
        Ok(self
            .bridges(&mut m)
            .await?
            .iter()
            .map(|(name, b)| BridgeInfo {
                name: name.clone(),
                datapath_type: b.datapath.clone(),
                // As the WIT contract says: the bridge's own internal port included.
                ports: {
                    let mut ports: Vec<String> = std::iter::once(name.clone())
                        .chain(b.ports.keys().filter(|p| *p != name).cloned())
                        .collect();
                    ports.sort();
                    ports
                },
            })
            .collect())
    }

    async fn list_ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        let mut m = self.model.lock().await;
        let b = self
            .bridges(&mut m)
            .await?
            .get(bridge.as_str())
            .ok_or_else(|| CapError::not_found(format!("bridge {bridge} does not exist")))?;
        Ok(b.ports.values().filter(|p| p.name != bridge.as_str()).cloned().collect())
    }

    async fn list_links(&self, target: &Target, ifname: Option<&IfName>) -> CapResult<Vec<LinkInfo>> {
        let mut m = self.model.lock().await;
        if let Some(n) = ifname {
            return Ok(vec![self.link(&mut m, target, n).await?.clone()]);
        }
        Ok(self.ns(&mut m, target).await?.links.values().cloned().collect())
    }

    async fn list_routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>> {
        let mut m = self.model.lock().await;
        Ok(self.ns(&mut m, target).await?.routes.clone())
    }

    async fn lookup_container(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        // As the Docker backend resolves: a hex string starting an id is that id, before any name.
        let s = name.as_str();
        let hex = s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let by_id = self.assumed.iter().find(|c| hex && c.id.starts_with(s));
        if let Some(c) = by_id.or_else(|| self.assumed.iter().find(|c| c.name == s)) {
            return Ok(c.clone());
        }
        match &self.reader {
            Some(r) => r.lookup_container(name).await,
            None => Err(CapError::not_found(format!(
                "container {name} not found (in a dry-run without Docker, declare it: --assume-container {name})"
            ))),
        }
    }

    async fn list_containers(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>> {
        let mut found: Vec<ContainerInfo> =
            self.assumed.iter().filter(|c| labels.iter().all(|l| c.labels.contains(l))).cloned().collect();
        if let Some(r) = &self.reader {
            found.extend(r.list_containers(labels).await?);
        }
        Ok(found)
    }

    async fn list_tunnels(&self, bridge: &IfName) -> CapResult<Vec<crate::tunnel::TunnelInfo>> {
        let mut m = self.model.lock().await;
        let b = self
            .bridges(&mut m)
            .await?
            .get(bridge.as_str())
            .ok_or_else(|| CapError::not_found(format!("bridge {bridge} does not exist")))?;
        Ok(b.tunnels
            .values()
            .map(|spec| crate::tunnel::TunnelInfo {
                spec: spec.clone(),
                bridge: bridge.to_string(),
                ofport: b.ports.get(spec.name.as_str()).and_then(|p| p.ofport),
                error: None,
            })
            .collect())
    }

    /// Nothing is sent in a dry-run: every echo is assumed answered.
    async fn ping(
        &self,
        _target: &Target,
        _addr: IpAddr,
        count: u32,
        _timeout: Duration,
    ) -> CapResult<PingStats> {
        Ok(PingStats { sent: count, received: count, ..Default::default() })
    }

    /// Changes nothing: in a dry run the bytes "arrive", as pings are answered.
    async fn tcp_check(
        &self,
        _client: &Target,
        _server: &Target,
        _addr: IpAddr,
        bytes: u64,
        _timeout: Duration,
    ) -> CapResult<TransferStats> {
        Ok(TransferStats { sent: bytes, received: bytes, ..Default::default() })
    }
}

/// A port as the model holds it once added: attached (ofport 1), no error.
fn modelled_port(
    bridge: &IfName,
    port: &IfName,
    vlan: &Option<VlanId>,
    trunks: &[VlanId],
    external_ids: BTreeMap<String, String>,
) -> PortInfo {
    PortInfo {
        name: port.to_string(),
        bridge: bridge.to_string(),
        tag: vlan.map(|v| v.get()),
        trunks: trunks.iter().map(|v| v.get()).collect(),
        external_ids,
        ofport: Some(1),
        error: None,
    }
}

/// A link's on/off setting in the model: unchanged when it already is `to`,
/// else set, undone by `undo`.
fn set_flag(flag: &mut bool, to: bool, undo: Op) -> Applied {
    if *flag == to {
        return Applied::unchanged();
    }
    *flag = to;
    Applied::changed(vec![undo])
}
