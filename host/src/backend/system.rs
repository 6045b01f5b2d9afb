//! The real system: OVSDB for bridges and ports, netlink for links,
//! addresses and routes, Docker for containers, raw ICMP for ping. Each
//! connection is opened on first use, so a script that only pings never
//! needs ovsdb-server.
//!
//! A change that takes several steps (a veth, then its OVS port) undoes its
//! own earlier steps when a later one fails: every [`Op`] either happens
//! completely or leaves nothing behind.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{stream, StreamExt};
use tokio::sync::OnceCell;

use super::docker::Docker;
use super::netlink::Netlink;
use super::ovsdb::{OvsdbUri, PortSpec, Vswitch};
use super::{
    apply_each, port_external_ids, Applied, Backend, BatchError, BridgeInfo, LinkInfo, Op, PingStats,
    PortInfo,
};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{ContainerInfo, ContainerRef, IfName, Mtu, RouteSpec, Target, VlanId};
use crate::verbose;

/// Link changes a batch keeps in flight at once: enough to hide the
/// round trips, few enough to bound threads (a namespace's first socket is
/// opened from a thread of its own) and file descriptors.
const LINK_CONCURRENCY: usize = 32;

pub struct SystemConfig {
    pub ovsdb: OvsdbUri,
    pub docker: String,
    /// How long to wait for ovs-vswitchd to apply a change.
    pub apply_timeout: Duration,
}

pub struct SystemBackend {
    cfg: SystemConfig,
    ovs: OnceCell<Vswitch>,
    netlink: OnceCell<Netlink>,
    docker: Docker,
}

impl SystemBackend {
    pub fn new(cfg: SystemConfig) -> Self {
        let docker = Docker::new(&cfg.docker);
        Self { cfg, ovs: OnceCell::new(), netlink: OnceCell::new(), docker }
    }

    async fn ovs(&self) -> CapResult<&Vswitch> {
        self.ovs.get_or_try_init(|| Vswitch::connect(&self.cfg.ovsdb, self.cfg.apply_timeout)).await
    }

    async fn nl(&self) -> CapResult<&Netlink> {
        self.netlink.get_or_try_init(|| async { Netlink::new() }).await
    }

    async fn add_port(&self, op: &Op) -> CapResult<Applied> {
        let Op::AddPort { bridge, port, target, ifname, mtu, mac, vlan, trunks } = op else {
            unreachable!("add_port is called with AddPort")
        };
        let ovs = self.ovs().await?;
        if let Some(p) = ovs.port(port).await? {
            return Err(already_attached(target, ifname, port, &p.bridge));
        }
        let spec = PortSpec {
            name: port.clone(),
            iface_type: None,
            tag: *vlan,
            trunks: trunks.clone(),
            external_ids: port_external_ids(target, ifname),
        };
        let info = if *target == Target::Host {
            self.nl().await?.links(target, Some(ifname)).await?;
            ovs.add_port(bridge, &spec).await?
        } else {
            let nl = self.nl().await?;
            nl.create_veth(port, ifname, target, *mtu, *mac).await?;
            match ovs.add_port(bridge, &spec).await {
                Ok(info) => info,
                Err(e) => {
                    // Deleting the host end takes the peer with it.
                    if let Err(cleanup) = nl.delete_link(&Target::Host, port).await {
                        return Err(e.context(format!("(and removing veth {port} failed: {cleanup})")));
                    }
                    return Err(e);
                }
            }
        };
        let mut a = Applied::changed(vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }]);
        a.port = Some(info);
        Ok(a)
    }

    /// Many AddPort ops at once (see [`Backend::apply_many`]): the veth pairs
    /// made concurrently, ONE OVSDB transaction for all ports, ONE wait for
    /// ovs-vswitchd. All or none: on any failure the veths and ports already
    /// made are removed again before the error returns.
    async fn add_ports(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let fail = |index, error| BatchError { index, error };
        let ovs = self.ovs().await.map_err(|e| fail(0, e))?;
        let nl = self.nl().await.map_err(|e| fail(0, e))?;
        let mut reqs = Vec::with_capacity(ops.len());
        let mut seen = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let Op::AddPort { bridge, port, target, ifname, mtu, mac, vlan, trunks } = op else {
                unreachable!("add_ports is called with AddPort ops only")
            };
            if let Some(j) = seen.insert(port, i) {
                let msg =
                    format!("{ifname} in {target} is asked for twice (requests {} and {})", j + 1, i + 1);
                return Err(fail(i, CapError::invalid(msg)));
            }
            reqs.push((bridge, port, target, ifname, *mtu, *mac, *vlan, trunks));
        }

        let started = Instant::now();
        // Links first, in parallel: each is a netlink request in the host
        // plus one in the target, and they do not depend on each other.
        // By index: a closure taking a reference trips the Send check of async traits.
        let reqs = &reqs;
        let made: Vec<CapResult<()>> = stream::iter(0..reqs.len())
            .map(|i| async move {
                let (_, port, target, ifname, mtu, mac, ..) = reqs[i];
                if *target == Target::Host {
                    nl.links(target, Some(ifname)).await.map(drop)
                } else {
                    nl.create_veth(port, ifname, target, mtu, mac).await
                }
            })
            .buffered(LINK_CONCURRENCY)
            .collect()
            .await;
        let veths = |upto: Option<usize>| -> Vec<IfName> {
            reqs.iter()
                .zip(&made)
                .take(upto.unwrap_or(usize::MAX))
                .filter(|((_, _, target, ..), ok)| **target != Target::Host && ok.is_ok())
                .map(|((_, port, ..), _)| (*port).clone())
                .collect()
        };
        if let Some(i) = made.iter().position(Result::is_err) {
            let (_, port, target, ifname, ..) = &reqs[i];
            let mut error = made[i].clone().unwrap_err();
            // The host end exists: most likely this very interface is attached already.
            if error.kind == ErrorKind::AlreadyExists {
                if let Ok(Some(p)) = ovs.port(port).await {
                    error = already_attached(target, ifname, port, &p.bridge);
                }
            }
            return Err(fail(i, self.delete_veths(veths(None), error).await));
        }

        let links_done = Instant::now();
        let specs: Vec<(IfName, PortSpec)> = reqs
            .iter()
            .map(|(bridge, port, target, ifname, _, _, vlan, trunks)| {
                let spec = PortSpec {
                    name: (*port).clone(),
                    iface_type: None,
                    tag: *vlan,
                    trunks: (*trunks).clone(),
                    external_ids: port_external_ids(target, ifname),
                };
                ((*bridge).clone(), spec)
            })
            .collect();
        let added = ovs.add_ports(&specs).await;
        verbose!(
            2,
            "add-ports: {} links in {} ms, then one OVSDB transaction and ovs-vswitchd in {} ms",
            reqs.len(),
            (links_done - started).as_millis(),
            links_done.elapsed().as_millis()
        );
        match added {
            Ok(infos) => Ok(infos
                .into_iter()
                .zip(reqs.iter())
                .map(|(info, (bridge, port, ..))| {
                    let undo = Op::DelPort { bridge: (*bridge).clone(), port: (*port).clone() };
                    let mut a = Applied::changed(vec![undo]);
                    a.port = Some(info);
                    a
                })
                .collect()),
            Err((i, e)) => Err(fail(i, self.delete_veths(veths(None), e).await)),
        }
    }

    /// Delete host links (veth host ends, taking their peers along),
    /// concurrently; failures are added to `error`, which is returned.
    async fn delete_veths(&self, names: Vec<IfName>, mut error: CapError) -> CapError {
        let Ok(nl) = self.nl().await else { return error };
        if let Err(e) = nl.delete_links(&Target::Host, &names).await {
            error.message.push_str(&format!(" (and removing the veths again failed: {e})"));
        }
        error
    }

    /// Many DelPort ops at once: ONE OVSDB transaction, then the host veths
    /// deleted concurrently. A port that is not there is unchanged.
    async fn del_ports(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let fail = |index, error| BatchError { index, error };
        let pairs: Vec<(IfName, IfName)> = ops
            .iter()
            .map(|op| match op {
                Op::DelPort { bridge, port } => (bridge.clone(), port.clone()),
                _ => unreachable!("del_ports is called with DelPort ops only"),
            })
            .collect();
        let ovs = self.ovs().await.map_err(|e| fail(0, e))?;
        let started = Instant::now();
        let removed = ovs.del_ports(&pairs).await.map_err(|e| fail(0, e))?;
        let ports_done = Instant::now();
        let nl = self.nl().await.map_err(|e| fail(0, e))?;
        // A container's or netns's port is a veth of the port's name; a host
        // port's link is the user's and stays (as in `del_port`).
        let veths: Vec<IfName> = pairs
            .iter()
            .zip(&removed)
            .filter(|(_, r)| r.as_ref().is_some_and(|p| p.container_iface().is_some()))
            .map(|((_, port), _)| port.clone())
            .collect();
        nl.delete_links(&Target::Host, &veths).await.map_err(|e| fail(0, e))?;
        verbose!(
            2,
            "del-ports: one OVSDB transaction and ovs-vswitchd in {} ms, then {} veths deleted in {} ms",
            (ports_done - started).as_millis(),
            veths.len(),
            ports_done.elapsed().as_millis()
        );
        Ok(removed
            .into_iter()
            .map(|r| if r.is_some() { Applied::irreversible() } else { Applied::unchanged() })
            .collect())
    }

    async fn del_port(&self, bridge: &IfName, port: &IfName) -> CapResult<Applied> {
        let ovs = self.ovs().await?;
        let Some(info) = ovs.ports(bridge).await?.into_iter().find(|p| p.name == port.as_str()) else {
            return Ok(Applied::unchanged());
        };
        ovs.del_port(bridge, port).await?;
        if info.container_iface().is_some() {
            self.nl().await?.delete_link(&Target::Host, port).await?;
        }
        Ok(Applied::irreversible())
    }
}

/// The port name is derived from (target, ifname), so an existing port of
/// that name means this very interface is attached already.
pub(super) fn already_attached(target: &Target, ifname: &IfName, port: &IfName, bridge: &str) -> CapError {
    if *target == Target::Host {
        CapError::exists(format!("port {port} already exists on bridge {bridge}"))
    } else {
        CapError::exists(format!("{ifname} in {target} is already attached (port {port} on bridge {bridge})"))
    }
}

#[async_trait]
impl Backend for SystemBackend {
    fn name(&self) -> &'static str {
        "system"
    }

    async fn apply_many(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let all = |f: fn(&Op) -> bool| ops.len() > 1 && ops.iter().all(f);
        if all(|op| matches!(op, Op::AddPort { .. })) {
            self.add_ports(ops).await
        } else if all(|op| matches!(op, Op::DelPort { .. })) {
            self.del_ports(ops).await
        } else {
            apply_each(self, ops).await
        }
    }

    async fn apply(&self, op: &Op) -> CapResult<Applied> {
        match op {
            Op::CreateBridge { name, datapath, may_exist } => {
                if self.ovs().await?.create_bridge(name, *datapath, *may_exist).await? {
                    Ok(Applied::changed(vec![Op::DeleteBridge { name: name.clone(), if_exists: true }]))
                } else {
                    Ok(Applied::unchanged())
                }
            }
            Op::DeleteBridge { name, if_exists } => {
                if self.ovs().await?.delete_bridge(name, *if_exists).await? {
                    Ok(Applied::irreversible())
                } else {
                    Ok(Applied::unchanged())
                }
            }
            Op::AddPort { .. } => self.add_port(op).await,
            Op::DelPort { bridge, port } => self.del_port(bridge, port).await,
            Op::SetVlan { bridge, port, vlan } => {
                let old = self.ovs().await?.set_vlan(port, *vlan).await?;
                if old == vlan.map(|v| v.get()) {
                    return Ok(Applied::unchanged());
                }
                let old = old.map(VlanId::new).transpose()?;
                Ok(Applied::changed(vec![Op::SetVlan {
                    bridge: bridge.clone(),
                    port: port.clone(),
                    vlan: old,
                }]))
            }
            Op::AddAddress { target, ifname, cidr } => {
                if !self.nl().await?.add_address(target, ifname, *cidr).await? {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::DelAddress {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    cidr: *cidr,
                }]))
            }
            Op::DelAddress { target, ifname, cidr } => {
                if !self.nl().await?.del_address(target, ifname, *cidr).await? {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::AddAddress {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    cidr: *cidr,
                }]))
            }
            Op::SetMtu { target, ifname, mtu } => {
                let old = self.nl().await?.set_mtu(target, ifname, *mtu).await?;
                if old == mtu.get() {
                    return Ok(Applied::unchanged());
                }
                let old = Mtu::new(old)?;
                Ok(Applied::changed(vec![Op::SetMtu {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    mtu: old,
                }]))
            }
            Op::SetMac { target, ifname, mac } => {
                let old = self.nl().await?.set_mac(target, ifname, *mac).await?;
                if old == Some(*mac) {
                    return Ok(Applied::unchanged());
                }
                let undo = old
                    .map(|old| Op::SetMac { target: target.clone(), ifname: ifname.clone(), mac: old })
                    .into_iter()
                    .collect();
                Ok(Applied::changed(undo))
            }
            Op::SetLinkState { target, ifname, up } => {
                if !self.nl().await?.set_up(target, ifname, *up).await? {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::SetLinkState {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    up: !up,
                }]))
            }
            Op::AddRoute { target, route } => {
                let nl = self.nl().await?;
                let dest = route.normalized_destination();
                if let Some(existing) =
                    nl.routes(target).await?.into_iter().find(|r| r.normalized_destination() == dest)
                {
                    return if existing.satisfies(route) {
                        Ok(Applied::unchanged())
                    } else {
                        Err(CapError::exists(format!("{target} already has a route to {existing}")))
                    };
                }
                nl.add_route(target, route).await?;
                Ok(Applied::changed(vec![Op::DelRoute { target: target.clone(), route: route.clone() }]))
            }
            Op::DelRoute { target, route } => {
                if !self.nl().await?.del_route(target, route).await? {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::AddRoute { target: target.clone(), route: route.clone() }]))
            }
        }
    }

    async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        self.ovs().await?.bridges().await
    }

    async fn list_ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        self.ovs().await?.ports(bridge).await
    }

    async fn list_links(&self, target: &Target, ifname: Option<&IfName>) -> CapResult<Vec<LinkInfo>> {
        self.nl().await?.links(target, ifname).await
    }

    async fn list_routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>> {
        self.nl().await?.routes(target).await
    }

    async fn lookup_container(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        self.docker.lookup(name).await
    }

    async fn list_containers(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>> {
        self.docker.list(labels).await
    }

    async fn ping(
        &self,
        target: &Target,
        addr: IpAddr,
        count: u32,
        timeout: Duration,
    ) -> CapResult<PingStats> {
        super::ping::ping(target, addr, count, timeout).await
    }
}
