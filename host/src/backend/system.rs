//! The real system: OVSDB for bridges and ports, netlink for links,
//! addresses and routes, Docker for containers, raw ICMP for ping. Each
//! connection is opened on first use, so a script that only pings never
//! needs ovsdb-server.
//!
//! A change that takes several steps (a veth, then its OVS port) undoes its
//! own earlier steps when a later one fails: every [`Op`] either happens
//! completely or leaves nothing behind.
//!
//! A container's port is made veth first, complete (host end up and
//! promiscuous, peer up inside the container), and only then added to OVS.
//! ovs-vswitchd reconfigures the whole switch for every link change in its
//! namespace, at a cost that grows with the number of ports (about 7 ms at
//! 100 ports, more at 1000, userspace datapath). Link changes made while it
//! applies the port's transaction (a peer coming up, OVS itself turning
//! promiscuous mode on) each cost another full reconfiguration, and the
//! caller waits for those it overlaps. Made before, they reach it together.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{stream, StreamExt};
use tokio::sync::{Mutex, OnceCell};

use super::docker::Docker;
use super::netlink::{Netlink, PeerSetup};
use super::ovn::{nb::OvnNb, OvnName, Topology};
use super::ovsdb::{OvsdbUri, PortSpec, Vswitch};
use super::restore::{Restore, RouteRecord};
use super::{
    apply_each, port_external_ids, Applied, Backend, BatchError, BridgeInfo, LinkInfo, Op, PingStats,
    PortInfo, TransferStats,
};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{
    Cidr, ContainerInfo, ContainerRef, IfName, MacAddr, Mtu, Offload, RouteSpec, Target, VlanId,
};
use crate::verbose;

/// Link changes a batch keeps in flight at once: enough to hide the
/// round trips, few enough to bound threads (a namespace's first socket is
/// opened from a thread of its own) and file descriptors.
const LINK_CONCURRENCY: usize = 32;

#[derive(Clone, Debug)]
pub struct SystemConfig {
    pub ovsdb: OvsdbUri,
    pub docker: String,
    /// How long to wait for ovs-vswitchd to apply a change.
    pub apply_timeout: Duration,
    /// The OVN northbound database (`--ovn-nb`; None: ovn-nbctl's default,
    /// `$OVN_NB_DB` or its socket), connected on first use only.
    pub ovn_nb: Option<OvsdbUri>,
}

impl SystemConfig {
    /// The northbound database this configuration reaches: `--ovn-nb`, else
    /// the default as this process sees it now (for a journal's header: a
    /// recovering process must reach the same one, whatever its environment).
    pub fn ovn_nb_resolved(&self) -> Option<OvsdbUri> {
        self.ovn_nb.clone().or_else(|| super::ovn::default_nb_uri().ok())
    }
}

pub struct SystemBackend {
    cfg: SystemConfig,
    /// Reconnected when ovsdb-server went away: a restarted server costs the
    /// call that was in flight, not the rest of the run (nor its rollback).
    ovs: Mutex<Option<Vswitch>>,
    netlink: OnceCell<Netlink>,
    docker: Docker,
    /// The OVN northbound database's connection, reconnected like `ovs`.
    ovn: Mutex<Option<OvnNb>>,
    /// How long add-port with an iface-id waits for ovn-controller.
    ovn_bind_timeout: Duration,
}

/// Default of `--ovn-bind-timeout`: ovn-controller takes 70-160 ms here.
pub const DEFAULT_OVN_BIND_TIMEOUT: Duration = Duration::from_secs(10);

impl SystemBackend {
    pub fn new(cfg: SystemConfig) -> Self {
        let docker = Docker::new(&cfg.docker);
        Self {
            cfg,
            ovs: Mutex::new(None),
            netlink: OnceCell::new(),
            docker,
            ovn: Mutex::new(None),
            ovn_bind_timeout: DEFAULT_OVN_BIND_TIMEOUT,
        }
    }

    /// How long add-port with an iface-id waits for ovn-controller (`--ovn-bind-timeout`).
    pub fn with_ovn_bind_timeout(mut self, limit: Duration) -> Self {
        self.ovn_bind_timeout = limit;
        self
    }

    async fn ovn(&self) -> CapResult<OvnNb> {
        let mut ovn = self.ovn.lock().await;
        match &*ovn {
            Some(c) if !c.is_closed() => Ok(c.clone()),
            _ => {
                let uri = match &self.cfg.ovn_nb {
                    Some(u) => u.clone(),
                    None => super::ovn::default_nb_uri()?,
                };
                let c = OvnNb::connect(&uri).await?;
                *ovn = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Bound to OVN: wait until ovn-controller installed the port's flows,
    /// so "attached" means traffic flows. When it does not in time, the
    /// port and its veth are removed again (the add-port did not happen).
    async fn wait_bound(&self, bridge: &IfName, port: &IfName, iface_id: &OvnName) -> CapResult<()> {
        let ovs = self.ovs().await?;
        match ovs.wait_ovn_installed(port, iface_id.as_str(), self.ovn_bind_timeout).await {
            Ok(took) => {
                verbose!(2, "port {port}: ovn-installed {} ms after it was added", took.as_millis());
                Ok(())
            }
            Err(mut e) => {
                if let Err(d) = self.del_port(bridge, port).await {
                    e.message.push_str(&format!(" (and removing port {port} again failed: {d})"));
                }
                Err(e)
            }
        }
    }

    /// Wait until ovn-controller marked `port` (external_ids:iface-id
    /// `iface_id`) ovn-installed, within `--ovn-bind-timeout`: the Docker
    /// driver's Join of a mode=ovn endpoint. How long it took.
    pub async fn wait_ovn_installed(&self, port: &IfName, iface_id: &OvnName) -> CapResult<Duration> {
        self.ovs().await?.wait_ovn_installed(port, iface_id.as_str(), self.ovn_bind_timeout).await
    }

    /// Start opening the OVSDB connection and the host's netlink socket in
    /// the background, so that they are ready when the script, still being
    /// loaded, first needs them. A failure here is not reported: the first
    /// real use tries again and reports it.
    pub fn prewarm(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let nl = async {
                if let Ok(nl) = me.nl().await {
                    nl.prewarm().await;
                }
            };
            let _ = tokio::join!(me.ovs(), nl);
        });
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
        let r = PortReq::of(op);
        let PortReq { bridge, port, target, ifname, .. } = r;
        let ovs = self.ovs().await?;
        let spec = port_spec(port, target, ifname, r.vlan, r.trunks, r.iface_id);
        let info = if *target == Target::Host {
            if let Some(p) = ovs.port(port).await? {
                return Err(already_attached(target, ifname, port, &p.bridge));
            }
            self.nl().await?.links(target, Some(ifname)).await?;
            ovs.add_port(bridge, &spec).await?
        } else {
            let nl = self.nl().await?;
            // `gc` must not take the veth for an orphan before its row exists.
            let _veths = super::veth_lock::shared().await?;
            // No lookup first: the host end's name comes from (target,
            // ifname), so it exists exactly when this interface is attached,
            // and the kernel says so (EEXIST). The veth is complete, peer up,
            // before the port is added: see the module doc.
            if let Err(e) = nl.create_veth(port, ifname, target, r.setup).await {
                return Err(self.why_exists(e, target, ifname, port).await);
            }
            match ovs.add_port(bridge, &spec).await {
                Ok(info) => info,
                Err(e) => {
                    let mut error = self.why_exists(e.clone(), target, ifname, port).await;
                    // A change committed but not applied in time (ovs-vswitchd
                    // down) leaves its row: take it out again too.
                    if e.kind != ErrorKind::AlreadyExists {
                        let pair = [(bridge.clone(), port.clone())];
                        if let Err(e) = self.del_rows(&pair).await {
                            error.message.push_str(&format!(" (and removing port {port} failed: {e})"));
                        }
                    }
                    // Deleting the host end takes the peer with it.
                    if let Err(e) = nl.delete_link(&Target::Host, port).await {
                        error = error.context(format!("(and removing veth {port} failed: {e})"));
                    }
                    return Err(error);
                }
            }
        };
        if let Some(id) = r.iface_id {
            self.wait_bound(bridge, port, id).await?;
        }
        let mut a = Applied::changed(vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }]);
        a.port = Some(info);
        Ok(a)
    }

    /// A veth pair whose both ends stay in the host namespace, its `port`
    /// on `bridge` (see [`Op::AddVethPort`]): all or nothing, like
    /// [`Self::add_port`].
    async fn add_veth_port(&self, op: &Op) -> CapResult<Applied> {
        let Op::AddVethPort { bridge, port, peer, mtu, mac, vlan, trunks, sw_checksum, external_ids } = op
        else {
            unreachable!("add_veth_port is called with AddVethPort")
        };
        let ovs = self.ovs().await?;
        let nl = self.nl().await?;
        let _veths = super::veth_lock::shared().await?;
        let setup = PeerSetup { mtu: *mtu, mac: *mac, sw_checksum: *sw_checksum, addressing: None };
        nl.create_veth(port, peer, &Target::Host, setup).await?;
        let spec = PortSpec {
            name: port.clone(),
            iface_type: None,
            tag: *vlan,
            trunks: trunks.clone(),
            external_ids: external_ids.clone(),
        };
        let info = match ovs.add_port(bridge, &spec).await {
            Ok(info) => info,
            Err(e) => {
                let mut error = e.clone();
                if e.kind != ErrorKind::AlreadyExists {
                    if let Err(d) = self.del_rows(&[(bridge.clone(), port.clone())]).await {
                        error.message.push_str(&format!(" (and removing port {port} failed: {d})"));
                    }
                }
                if let Err(d) = nl.delete_link(&Target::Host, port).await {
                    error = error.context(format!("(and removing veth {port} failed: {d})"));
                }
                return Err(error);
            }
        };
        let mut a = Applied::changed(vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }]);
        a.port = Some(info);
        Ok(a)
    }

    /// An already-exists error about `port` says which bridge has it, when
    /// one does: then this very interface is attached already.
    async fn why_exists(&self, error: CapError, target: &Target, ifname: &IfName, port: &IfName) -> CapError {
        if error.kind != ErrorKind::AlreadyExists {
            return error;
        }
        match self.ovs().await {
            Ok(ovs) => match ovs.port(port).await {
                Ok(Some(p)) => already_attached(target, ifname, port, &p.bridge),
                _ => error,
            },
            Err(_) => error,
        }
    }

    /// Many AddPort ops at once (see [`Backend::apply_many`]): the veth pairs
    /// made concurrently and complete, then ONE OVSDB transaction for all
    /// ports and ONE wait for ovs-vswitchd. All or none: on any failure the
    /// veths and ports already made are removed again before the error
    /// returns.
    async fn add_ports(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let fail = |index, error| BatchError { index, error };
        let ovs = self.ovs().await.map_err(|e| fail(0, e))?;
        let nl = self.nl().await.map_err(|e| fail(0, e))?;
        // No port twice: the ports capability refuses such a batch, naming
        // both requests, before anything is resolved.
        let reqs: Vec<PortReq> = ops.iter().map(PortReq::of).collect();
        let reqs = &reqs;
        let veth = |r: &PortReq| *r.target != Target::Host;
        // `gc` must not take the veths for orphans before their rows exist.
        let _veths = match reqs.iter().any(veth) {
            true => Some(super::veth_lock::shared().await.map_err(|e| fail(0, e))?),
            false => None,
        };

        // The veths first, complete with their peers up, in parallel (they
        // do not depend on each other); then ONE transaction for all ports,
        // so that ovs-vswitchd sees the links settled (see the module doc).
        let started = Instant::now();
        let total = reqs.len();
        let finished = std::sync::atomic::AtomicUsize::new(0);
        let finished = &finished;
        let made: Vec<CapResult<()>> = stream::iter(0..reqs.len())
            .map(|i| async move {
                let r = &reqs[i];
                if veth(r) {
                    nl.create_veth(r.port, r.ifname, r.target, r.setup).await
                } else {
                    nl.links(r.target, Some(r.ifname)).await.map(drop)
                }
            })
            .buffered(LINK_CONCURRENCY)
            .inspect(|_| {
                let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                crate::progress::step("veth pairs made", n, total);
            })
            .collect()
            .await;
        let made_veths: Vec<IfName> = reqs
            .iter()
            .zip(&made)
            .filter(|(r, ok)| veth(r) && ok.is_ok())
            .map(|(r, _)| r.port.clone())
            .collect();
        if let Some(i) = made.iter().position(Result::is_err) {
            let r = &reqs[i];
            let error = made[i].clone().unwrap_err();
            let error = self.why_exists(error, r.target, r.ifname, r.port).await;
            return Err(fail(i, self.delete_veths(made_veths, error).await));
        }

        let links_done = Instant::now();
        let specs: Vec<(IfName, PortSpec)> = reqs
            .iter()
            .map(|r| (r.bridge.clone(), port_spec(r.port, r.target, r.ifname, r.vlan, r.trunks, r.iface_id)))
            .collect();
        let applying = format!("{total} ports added in one OVSDB transaction and applied by ovs-vswitchd");
        crate::progress::step(&applying, 0, total);
        let added = ovs.add_ports(&specs).await;
        crate::progress::step(&applying, total, total);
        verbose!(
            2,
            "add-ports: {} links in {} ms, then one OVSDB transaction and ovs-vswitchd in {} ms",
            reqs.len(),
            (links_done - started).as_millis(),
            links_done.elapsed().as_millis()
        );
        let added = match added {
            Ok(infos) => self.wait_batch_bound(reqs).await.map(|()| infos),
            Err(e) => Err(e),
        };
        let (index, mut error) = match added {
            Ok(infos) => {
                return Ok(infos
                    .into_iter()
                    .zip(reqs.iter())
                    .map(|(info, r)| {
                        let mut a = Applied::changed(vec![Op::DelPort {
                            bridge: r.bridge.clone(),
                            port: r.port.clone(),
                        }]);
                        a.port = Some(info);
                        a
                    })
                    .collect());
            }
            Err((i, e)) => {
                // Committed but not applied in time (ovs-vswitchd down), or
                // not installed by ovn-controller: the rows are there, take
                // them out again too.
                let mut left = None;
                if e.kind != ErrorKind::AlreadyExists {
                    let pairs: Vec<(IfName, IfName)> =
                        reqs.iter().map(|r| (r.bridge.clone(), r.port.clone())).collect();
                    left = self.del_rows(&pairs).await.err();
                }
                let mut error = self.why_exists(e, reqs[i].target, reqs[i].ifname, reqs[i].port).await;
                if let Some(e) = left {
                    error.message.push_str(&format!(" (and removing the batch's ports again failed: {e})"));
                }
                (i, error)
            }
        };
        error = self.delete_veths(made_veths, error).await;
        Err(fail(index, error))
    }

    /// The OVN-bound ports of a batch just added: wait until ovn-controller
    /// installed every one (it works on them together, so the waits run
    /// concurrently). The first that is not installed in time fails the
    /// batch, as a failed transaction does: (its index, the error).
    async fn wait_batch_bound(&self, reqs: &[PortReq<'_>]) -> Result<(), (usize, CapError)> {
        let ovs = self.ovs().await.map_err(|e| (0, e))?;
        let started = Instant::now();
        let waits = reqs.iter().enumerate().filter_map(|(i, r)| {
            let id = r.iface_id?;
            let ovs = &ovs;
            Some(async move {
                ovs.wait_ovn_installed(r.port, id.as_str(), self.ovn_bind_timeout).await.map_err(|e| (i, e))
            })
        });
        let results = futures::future::join_all(waits).await;
        if results.is_empty() {
            return Ok(());
        }
        verbose!(
            2,
            "add-ports: {} ports ovn-installed in {} ms",
            results.len(),
            started.elapsed().as_millis()
        );
        results.into_iter().find_map(Result::err).map_or(Ok(()), Err)
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

    /// Remove the rows of ports this call just added, after its OVSDB
    /// request failed. The failure may have been the connection itself
    /// (ovsdb-server restarted after the commit): the connection is taken
    /// afresh, never the handle that just failed.
    /// A server that is being restarted is waited for, up to the apply
    /// timeout.
    async fn del_rows(&self, pairs: &[(IfName, IfName)]) -> CapResult<()> {
        let deadline = Instant::now() + self.cfg.apply_timeout;
        loop {
            match self.ovs().await {
                Ok(ovs) => return ovs.del_ports(pairs).await.map(drop),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => return Err(e),
            }
        }
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

impl SystemBackend {
    /// The routes of `target` that were there `before` a change to `ifname`
    /// and are gone now, as undo steps: routes through the link, or using
    /// the removed address as their source. The kernel's own connected
    /// routes come back with the address or link and are left to it. A
    /// route list that cannot be read now gives no steps (the change is
    /// done; its undo is then the plain inverse, as before).
    async fn lost_routes(
        &self,
        target: &Target,
        before: Vec<RouteRecord>,
        ifname: &IfName,
        addr: Option<&Cidr>,
    ) -> Vec<Op> {
        let Ok(nl) = self.nl().await else { return vec![] };
        let Ok(after) = nl.route_records(target).await else { return vec![] };
        before
            .into_iter()
            .filter(|r| r.protocol != KERNEL_PROTO && !after.contains(r))
            .filter(|r| {
                r.route.device.as_ref() == Some(ifname) || addr.is_some_and(|a| r.prefsrc == Some(a.addr))
            })
            .map(|r| Op::Restore { value: Restore::Route { target: target.clone(), route: r } })
            .collect()
    }

    /// set-mac on a bridge's internal port: ovs-vswitchd owns that MAC and
    /// puts back one set on the link, so it goes to OVSDB (Bridge
    /// other_config:hwaddr) and ovs-vswitchd sets it. None: `ifname` is not
    /// a bridge (or OVSDB is not there), an ordinary link.
    async fn set_bridge_mac(&self, ifname: &IfName, mac: MacAddr) -> CapResult<Option<Applied>> {
        let Ok(ovs) = self.ovs().await else { return Ok(None) };
        if ovs.bridge_datapath(ifname).await?.is_none() {
            return Ok(None);
        }
        let links = self.nl().await?.links(&Target::Host, Some(ifname)).await?;
        if links.first().and_then(|l| l.mac) == Some(mac) {
            return Ok(Some(Applied::unchanged()));
        }
        let old = ovs.set_bridge_hwaddr(ifname, Some(&mac.to_string())).await?;
        let undo = Op::Restore { value: Restore::BridgeHwaddr { bridge: ifname.clone(), hwaddr: old } };
        Ok(Some(Applied::changed(vec![undo])))
    }

    async fn restore(&self, value: &Restore) -> CapResult<Applied> {
        let changed = match value {
            Restore::Mtu { target, ifname, mtu } => {
                self.nl().await?.set_mtu_raw(target, ifname, *mtu).await? != *mtu
            }
            Restore::Vlan { port, tag, .. } => self.ovs().await?.set_tag(port, *tag).await? != *tag,
            Restore::Route { target, route } => self.nl().await?.restore_route(target, route).await?,
            // A bridge deleted since has nothing to restore.
            Restore::BridgeHwaddr { bridge, hwaddr } => {
                let ovs = self.ovs().await?;
                ovs.bridge_datapath(bridge).await?.is_some()
                    && ovs.set_bridge_hwaddr(bridge, hwaddr.as_deref()).await? != *hwaddr
            }
        };
        Ok(if changed { Applied::changed(vec![]) } else { Applied::unchanged() })
    }
}

/// rtm_protocol of the routes the kernel makes itself for an address.
const KERNEL_PROTO: u8 = 2;

/// An AddPort op's fields, borrowed.
#[derive(Clone, Copy)]
struct PortReq<'a> {
    bridge: &'a IfName,
    port: &'a IfName,
    target: &'a Target,
    ifname: &'a IfName,
    vlan: Option<VlanId>,
    trunks: &'a [VlanId],
    iface_id: Option<&'a OvnName>,
    /// What the veth's inner end gets.
    setup: PeerSetup<'a>,
}

impl<'a> PortReq<'a> {
    fn of(op: &'a Op) -> Self {
        let Op::AddPort { bridge, port, target, ifname, vlan, trunks, iface_id, .. } = op else {
            unreachable!("called with AddPort ops only")
        };
        let (vlan, iface_id, setup) = (*vlan, iface_id.as_ref(), peer_setup(op));
        PortReq { bridge, port, target, ifname, vlan, trunks, iface_id, setup }
    }
}

/// An AddPort op's settings of the veth's inner end.
fn peer_setup(op: &Op) -> PeerSetup<'_> {
    let Op::AddPort { mtu, mac, sw_checksum, addressing, .. } = op else { return PeerSetup::default() };
    PeerSetup { mtu: *mtu, mac: *mac, sw_checksum: *sw_checksum, addressing: Some(addressing) }
}

/// The OVS side of a port for `target`'s `ifname`: ovs-docker's external_ids
/// (and ours) on the Interface row, and OVN's iface-id when it is bound.
fn port_spec(
    port: &IfName,
    target: &Target,
    ifname: &IfName,
    vlan: Option<VlanId>,
    trunks: &[VlanId],
    iface_id: Option<&OvnName>,
) -> PortSpec {
    let mut external_ids = port_external_ids(target, ifname);
    if let Some(id) = iface_id {
        external_ids.insert(super::ovn::ext::IFACE_ID.into(), id.to_string());
    }
    PortSpec { name: port.clone(), iface_type: None, tag: vlan, trunks: trunks.to_vec(), external_ids }
}

/// Whether `name` has the shape of [`super::host_port_name`]'s names, so a
/// cleanup never deletes a host interface ovs-run did not make.
pub fn is_generated_port_name(name: &IfName) -> bool {
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

    async fn apply_many(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        let all = |f: fn(&Op) -> bool| ops.len() > 1 && ops.iter().all(f);
        // Ports bound to OVN too: ovn-controller installs the batch's ports
        // together, and add_ports waits for all of them at once.
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
            Op::AddVethPort { .. } => self.add_veth_port(op).await,
            Op::DelPort { bridge, port } => self.del_port(bridge, port).await,
            Op::SetVlan { bridge, port, vlan } => {
                let old = self.ovs().await?.set_vlan(port, *vlan).await?;
                if old == vlan.map(|v| v.get()) {
                    return Ok(Applied::unchanged());
                }
                // Changed: the undo records the old tag as OVS had it, which
                // may be one a script could not ask for (0, 4095).
                let undo = match old.map(VlanId::new).transpose() {
                    Ok(old) => Op::SetVlan { bridge: bridge.clone(), port: port.clone(), vlan: old },
                    Err(_) => Op::Restore {
                        value: Restore::Vlan { bridge: bridge.clone(), port: port.clone(), tag: old },
                    },
                };
                Ok(Applied::changed(vec![undo]))
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
                let nl = self.nl().await?;
                let before = nl.route_records(target).await?;
                if !nl.del_address(target, ifname, *cidr).await? {
                    return Ok(Applied::unchanged());
                }
                // The kernel takes routes along with an address (the last
                // one of a link takes every route through it): the undo
                // puts them back after the address.
                let mut undo =
                    vec![Op::AddAddress { target: target.clone(), ifname: ifname.clone(), cidr: *cidr }];
                undo.extend(self.lost_routes(target, before, ifname, Some(cidr)).await);
                Ok(Applied::changed(undo))
            }
            Op::SetMtu { target, ifname, mtu } => {
                let old = self.nl().await?.set_mtu(target, ifname, *mtu).await?;
                if old == mtu.get() {
                    return Ok(Applied::unchanged());
                }
                // Changed: the undo records the old MTU as the kernel had it,
                // which may be one a script could not ask for (lo's 65536).
                let undo = match Mtu::new(old) {
                    Ok(old) => Op::SetMtu { target: target.clone(), ifname: ifname.clone(), mtu: old },
                    Err(_) => Op::Restore {
                        value: Restore::Mtu { target: target.clone(), ifname: ifname.clone(), mtu: old },
                    },
                };
                Ok(Applied::changed(vec![undo]))
            }
            Op::SetMac { target, ifname, mac } => {
                if *target == Target::Host {
                    if let Some(applied) = self.set_bridge_mac(ifname, *mac).await? {
                        return Ok(applied);
                    }
                }
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
                let nl = self.nl().await?;
                // Down takes every route through the link with it; up brings
                // back only the kernel's own (connected) routes.
                let before = if *up { vec![] } else { nl.route_records(target).await? };
                if !nl.set_up(target, ifname, *up).await? {
                    return Ok(Applied::unchanged());
                }
                let mut undo =
                    vec![Op::SetLinkState { target: target.clone(), ifname: ifname.clone(), up: !up }];
                if !up {
                    undo.extend(self.lost_routes(target, before, ifname, None).await);
                }
                Ok(Applied::changed(undo))
            }
            Op::SetOffload { target, ifname, offload: Offload::TxChecksum, on } => {
                let was_on = self.nl().await?.set_tx_checksum(target, ifname, *on).await?;
                if was_on == *on {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::SetOffload {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    offload: Offload::TxChecksum,
                    on: was_on,
                }]))
            }
            Op::SetArp { target, ifname, on } => {
                if !self.nl().await?.set_arp(target, ifname, *on).await? {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::SetArp {
                    target: target.clone(),
                    ifname: ifname.clone(),
                    on: !on,
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
                let nl = self.nl().await?;
                let before = nl.route_records(target).await?;
                if !nl.del_route(target, route).await? {
                    return Ok(Applied::unchanged());
                }
                // Put back the very route that went (its protocol, metric,
                // source), not a static one like it.
                let after = nl.route_records(target).await.unwrap_or_default();
                let gone = before.into_iter().find(|r| r.route.satisfies(route) && !after.contains(r));
                let undo = match gone {
                    Some(r) => Op::Restore { value: Restore::Route { target: target.clone(), route: r } },
                    None => Op::AddRoute { target: target.clone(), route: route.clone() },
                };
                Ok(Applied::changed(vec![undo]))
            }
            Op::AddTunnel { bridge, tunnel } => {
                let ovs = self.ovs().await?;
                super::tunnels::add(&ovs, self.nl().await.ok(), &self.cfg.ovsdb, bridge, tunnel).await
            }
            Op::DelTunnel { bridge, name } => super::tunnels::remove(&self.ovs().await?, bridge, name).await,
            Op::Restore { value } => self.restore(value).await,
            Op::Ovn { change } => self.ovn().await?.apply(change).await,
            Op::SetExternalIds { bridge, port, ids } => {
                let old = self.ovs().await?.set_interface_ids(port, ids).await?;
                if &old == ids {
                    return Ok(Applied::unchanged());
                }
                Ok(Applied::changed(vec![Op::SetExternalIds {
                    bridge: bridge.clone(),
                    port: port.clone(),
                    ids: old,
                }]))
            }
        }
    }

    async fn ovn_topology(&self) -> CapResult<Topology> {
        self.ovn().await?.topology().await
    }

    async fn ovs_external_ids(&self) -> CapResult<std::collections::BTreeMap<String, String>> {
        self.ovs().await?.external_ids().await
    }

    async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        self.ovs().await?.bridges().await
    }

    async fn bridge_datapath(&self, bridge: &IfName) -> CapResult<Option<String>> {
        self.ovs().await?.bridge_datapath(bridge).await
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

    async fn tcp_check(
        &self,
        client: &Target,
        server: &Target,
        addr: IpAddr,
        bytes: u64,
        timeout: Duration,
    ) -> CapResult<TransferStats> {
        super::tcp_check::tcp_check(client, server, addr, bytes, timeout).await
    }

    async fn list_tunnels(&self, bridge: &IfName) -> CapResult<Vec<crate::tunnel::TunnelInfo>> {
        self.ovs().await?.tunnels(bridge).await
    }
}
