//! The real system: OVSDB for bridges and ports, netlink for links,
//! addresses and routes, Docker for containers, raw ICMP for ping. Each
//! connection is opened on first use, so a script that only pings never
//! needs ovsdb-server.
//!
//! A change that takes several steps (a veth, then its OVS port) undoes its
//! own earlier steps when a later one fails: every [`Op`] either happens
//! completely or leaves nothing behind.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, OnceCell};

use super::docker::Docker;
use super::netlink::Netlink;
use super::ovsdb::{OvsdbUri, PortSpec, Vswitch};
use super::{port_external_ids, Applied, Backend, BridgeInfo, LinkInfo, Op, PingStats, PortInfo};
use crate::error::{CapError, CapResult};
use crate::types::{ContainerInfo, ContainerRef, IfName, Mtu, RouteSpec, Target, VlanId};

pub struct SystemConfig {
    pub ovsdb: OvsdbUri,
    pub docker: String,
    /// How long to wait for ovs-vswitchd to apply a change.
    pub apply_timeout: Duration,
}

pub struct SystemBackend {
    cfg: SystemConfig,
    /// Reconnected when ovsdb-server went away: a restarted server costs the
    /// call that was in flight, not the rest of the run (nor its rollback).
    ovs: Mutex<Option<Vswitch>>,
    netlink: OnceCell<Netlink>,
    docker: Docker,
}

impl SystemBackend {
    pub fn new(cfg: SystemConfig) -> Self {
        let docker = Docker::new(&cfg.docker);
        Self { cfg, ovs: Mutex::new(None), netlink: OnceCell::new(), docker }
    }

    /// Docker, for what the [`Backend`] trait does not cover (events, start times).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Netlink, for what the [`Backend`] trait does not cover (veth ends).
    pub async fn netlink(&self) -> CapResult<&Netlink> {
        self.nl().await
    }

    async fn ovs(&self) -> CapResult<Vswitch> {
        let mut ovs = self.ovs.lock().await;
        match &*ovs {
            Some(v) if !v.is_closed() => Ok(v.clone()),
            _ => {
                let v = Vswitch::connect(&self.cfg.ovsdb, self.cfg.apply_timeout).await?;
                *ovs = Some(v.clone());
                Ok(v)
            }
        }
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
                    // A change committed but not applied in time (ovs-vswitchd
                    // down) leaves its row: take it out again too.
                    if e.kind != crate::error::ErrorKind::AlreadyExists {
                        let _ = ovs.del_port(bridge, port).await;
                    }
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

    async fn del_port(&self, bridge: &IfName, port: &IfName) -> CapResult<Applied> {
        let ovs = self.ovs().await?;
        // A bridge that is gone has no ports to remove (an undo must not fail on it).
        let ports = match ovs.ports(bridge).await {
            Err(e) if e.kind == crate::error::ErrorKind::NotFound => vec![],
            r => r?,
        };
        let Some(info) = ports.into_iter().find(|p| p.name == port.as_str()) else {
            // No OVS row, but a run that died between making the veth and
            // adding it leaves the veth: remove it when the name is one ours.
            if is_generated_port_name(port) && self.nl().await?.delete_link(&Target::Host, port).await? {
                return Ok(Applied::irreversible());
            }
            return Ok(Applied::unchanged());
        };
        ovs.del_port(bridge, port).await?;
        if info.container_iface().is_some() {
            self.nl().await?.delete_link(&Target::Host, port).await?;
        }
        Ok(Applied::irreversible())
    }
}

/// Whether `name` has the shape of [`super::host_port_name`]'s names, so a
/// cleanup never deletes a host interface ovs-run did not make.
fn is_generated_port_name(name: &IfName) -> bool {
    let n = name.as_str();
    n.len() == 15
        && n.starts_with("ovr")
        && n.ends_with("_l")
        && n[3..13].chars().all(|c| c.is_ascii_hexdigit())
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
