//! `ovs-run:net/ports`: attach targets to bridges and detach them.

use std::collections::HashMap;

use futures::{stream, StreamExt};

use super::ovs_run::net::ports::{
    AttachRequest, Host, OverlayMtu, PortInfo as WitPortInfo, PortOptions, PortRef, PortRequest,
};
use super::{ifname, limits, target_ref, Caps, Pair, Trappable, WitTarget};
use crate::backend::{ext, find_port, host_port_name, Addressing, Op, PortInfo, PortOwner};
use crate::error::{CapError, CapResult};
use crate::types::{parse_ip, Cidr, ContainerRef, IfName, MacAddr, Mtu, Target, TargetRef, VlanId};

impl Caps {
    /// `add-ports` and `attach-ports`: a batch of ports, all or none.
    async fn attach(
        &mut self,
        call: &'static str,
        bridge: String,
        requests: Vec<AttachRequest>,
    ) -> Trappable<Vec<WitPortInfo>> {
        // Over the limit: refused as one call, before counting a call per request.
        if let Err(e) = batch_limits(&requests) {
            self.tick()?;
            return self.finish(call, Err(e));
        }
        self.tick_many(requests.len())?;
        let gate = self.gate.clone();
        let r = async {
            let bridge = ifname(&bridge)?;
            let reqs = requests
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let addressing = parse_addressing(&r.addresses, r.gateway.as_deref());
                    parse_request(r.port.target, &r.port.ifname, r.port.options)
                        .and_then(|req| req.with_addressing(addressing?))
                        .map_err(|e| e.context(nth(i)))
                })
                .collect::<CapResult<Vec<_>>>()?;
            let started = std::time::Instant::now();
            // Container lookups are Docker API round trips: overlap them.
            // By index: a closure over `&PortReq` trips the Send check of async traits.
            let targets = stream::iter(0..reqs.len())
                .map(|i| gate.resolve(&reqs[i].target))
                .buffered(RESOLVE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            crate::verbose!(
                2,
                "{call}: {} targets resolved in {} ms",
                reqs.len(),
                started.elapsed().as_millis()
            );
            let userspace = gate.bridge_is_userspace(&bridge).await?;
            let mut ops = Vec::with_capacity(reqs.len());
            let mut seen = HashMap::new();
            for (i, (req, target)) in reqs.into_iter().zip(targets).enumerate() {
                let op = req.into_op(&bridge, target.map_err(|e| e.context(nth(i)))?, userspace);
                let Op::AddPort { port, target, ifname, .. } = &op else {
                    unreachable!("into_op makes AddPort")
                };
                if let Some(j) = seen.insert(port.clone(), i) {
                    return Err(CapError::invalid(format!(
                        "{}: {ifname} in {target} is already asked for by request {}",
                        nth(i),
                        j + 1
                    )));
                }
                ops.push(op);
            }
            let applied = gate.apply_many(ops).await?;
            applied
                .into_iter()
                .map(|a| {
                    a.port.map(to_wit).ok_or_else(|| {
                        CapError::failed(format!("{call} on {bridge}: backend returned no port"))
                    })
                })
                .collect()
        };
        self.finish(call, r.await)
    }
}

impl Host for Caps {
    async fn add_port(
        &mut self,
        bridge: String,
        target: WitTarget,
        ifname_: String,
        options: PortOptions,
    ) -> Trappable<WitPortInfo> {
        self.tick()?;
        let r = async {
            // Parse everything before resolving anything: bad input changes nothing.
            let bridge = ifname(&bridge)?;
            let req = parse_request(target, &ifname_, options)?;
            let target = self.gate.resolve(&req.target).await?;
            let userspace = self.gate.bridge_is_userspace(&bridge).await?;
            let op = req.into_op(&bridge, target, userspace);
            let applied = self.gate.apply(op).await?;
            applied
                .port
                .map(to_wit)
                .ok_or_else(|| CapError::failed(format!("add-port on {bridge}: backend returned no port")))
        };
        self.finish("add-port", r.await)
    }

    async fn add_ports(&mut self, bridge: String, requests: Vec<PortRequest>) -> Trappable<Vec<WitPortInfo>> {
        let requests =
            requests.into_iter().map(|port| AttachRequest { port, addresses: vec![], gateway: None });
        self.attach("add-ports", bridge, requests.collect()).await
    }

    async fn attach_ports(
        &mut self,
        bridge: String,
        reqs: Vec<AttachRequest>,
    ) -> Trappable<Vec<WitPortInfo>> {
        self.attach("attach-ports", bridge, reqs).await
    }

    async fn remove_ports(&mut self, bridge: String, ports: Vec<PortRef>) -> Trappable<Vec<bool>> {
        if let Err(e) = limits::list("ports", ports.len(), limits::MAX_BATCH) {
            self.tick()?;
            return self.finish("remove-ports", Err(e));
        }
        self.tick_many(ports.len())?;
        let gate = self.gate.clone();
        let r = async {
            let bridge = ifname(&bridge)?;
            let refs = ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    Ok((target_ref(&p.target)?, ifname(&p.ifname)?)).map_err(|e: CapError| e.context(nth(i)))
                })
                .collect::<CapResult<Vec<_>>>()?;
            let owners = stream::iter(0..refs.len())
                .map(|i| gate.port_owner(&refs[i].0))
                .buffered(RESOLVE_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            let owners = owners.into_iter().collect::<CapResult<Vec<_>>>()?;
            let list = match gate.list_ports(&bridge).await {
                Ok(p) => p,
                // Detaching from a bridge that is gone: nothing left to remove.
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(vec![false; refs.len()]),
                Err(e) => return Err(e),
            };
            let index = PortIndex::new(&list);
            // Which op (if any) removes each requested port; a port asked for twice is removed once.
            let mut ops = Vec::new();
            let mut op_of: Vec<Option<usize>> = Vec::with_capacity(refs.len());
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for ((_, ifname), owner) in refs.iter().zip(&owners) {
                let Some(p) = index.find(owner, ifname) else {
                    op_of.push(None);
                    continue;
                };
                if seen.contains_key(p.name.as_str()) {
                    op_of.push(None);
                    continue;
                }
                seen.insert(&p.name, ops.len());
                op_of.push(Some(ops.len()));
                ops.push(Op::DelPort { bridge: bridge.clone(), port: ifname_of(p)? });
            }
            let applied = gate.apply_many(ops).await?;
            Ok(op_of.into_iter().map(|o| o.is_some_and(|i| applied[i].changed)).collect())
        };
        self.finish("remove-ports", r.await)
    }

    async fn del_port(&mut self, bridge: String, target: WitTarget, ifname_: String) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let target = target_ref(&target)?;
            let ifname = ifname(&ifname_)?;
            let owner = self.gate.port_owner(&target).await?;
            let ports = match self.gate.list_ports(&bridge).await {
                Ok(p) => p,
                // Detaching from a bridge that is gone: nothing left to remove.
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            let Some(port) = find_port(&ports, &owner, &ifname) else { return Ok(false) };
            let port = ifname_of(port)?;
            Ok(self.gate.apply(Op::DelPort { bridge, port }).await?.changed)
        };
        self.finish("del-port", r.await)
    }

    async fn del_ports(&mut self, bridge: String, container: String) -> Trappable<u32> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let container = ContainerRef::parse(&container)?;
            let owner = self.gate.port_owner(&crate::types::TargetRef::Container(container)).await?;
            let ports = match self.gate.list_ports(&bridge).await {
                Ok(p) => p,
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut removed = 0;
            for p in ports.iter().filter(|p| owner.owns(p) && !matches!(owner, PortOwner::Host)) {
                let port = ifname_of(p)?;
                if self.gate.apply(Op::DelPort { bridge: bridge.clone(), port }).await?.changed {
                    removed += 1;
                }
            }
            Ok(removed)
        };
        self.finish("del-ports", r.await)
    }

    async fn set_vlan(
        &mut self,
        bridge: String,
        target: WitTarget,
        ifname_: String,
        vlan: Option<u16>,
    ) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let target = target_ref(&target)?;
            let ifname = ifname(&ifname_)?;
            let vlan = vlan.map(VlanId::new).transpose()?;
            let owner = self.gate.port_owner(&target).await?;
            let ports = self.gate.list_ports(&bridge).await?;
            let port = find_port(&ports, &owner, &ifname).ok_or_else(|| {
                CapError::not_found(format!("no port for {ifname} of {target} on bridge {bridge}"))
            })?;
            let port = ifname_of(port)?;
            self.gate.apply(Op::SetVlan { bridge, port, vlan }).await?;
            Ok(())
        };
        self.finish("set-vlan", r.await)
    }

    async fn list_ports(&mut self, bridge: String) -> Trappable<Vec<WitPortInfo>> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            Ok(self.gate.list_ports(&bridge).await?.into_iter().map(to_wit).collect())
        };
        self.finish("list-ports", r.await)
    }

    async fn inner_mtu(&mut self, bridge: String) -> Trappable<Option<OverlayMtu>> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let m = self.gate.inner_mtu(&bridge).await?;
            Ok(m.map(|m| OverlayMtu { mtu: m.mtu, reason: m.reason }))
        };
        self.finish("inner-mtu", r.await)
    }
}

/// Container lookups a batch keeps in flight at once.
const RESOLVE_CONCURRENCY: usize = 16;

/// "request 3" (1-based, as a user counts).
fn nth(i: usize) -> String {
    format!("request {}", i + 1)
}

/// An add-port request, parsed and checked, its target not yet resolved.
struct PortReq {
    target: TargetRef,
    ifname: IfName,
    mtu: Option<Mtu>,
    mac: Option<MacAddr>,
    vlan: Option<VlanId>,
    trunks: Vec<VlanId>,
    iface_id: Option<crate::backend::ovn::OvnName>,
    addressing: Addressing,
}

/// An `add-ports` batch within its limits: the number of requests, and the
/// trunk VLANs of each request and of all of them together.
fn batch_limits(requests: &[AttachRequest]) -> CapResult<()> {
    limits::list("requests", requests.len(), limits::MAX_BATCH)?;
    let mut trunks = 0;
    for (i, r) in requests.iter().enumerate() {
        let n = r.port.options.trunks.len();
        limits::list(&format!("requests[{i}].options.trunks"), n, limits::MAX_TRUNKS)?;
        limits::list(&format!("requests[{i}].addresses"), r.addresses.len(), limits::MAX_ADDRESSES)?;
        trunks += n;
    }
    limits::list("the trunks of all requests together", trunks, limits::MAX_BATCH_TRUNKS)
}

fn parse_request(target: WitTarget, ifname_: &str, options: PortOptions) -> CapResult<PortReq> {
    // First: the trunks go into the policy's context, the journal and the audit line.
    limits::list("options.trunks", options.trunks.len(), limits::MAX_TRUNKS)?;
    let target = target_ref(&target)?;
    let ifname = ifname(ifname_)?;
    let mtu = options.mtu.map(Mtu::new).transpose()?;
    let mac = options.mac.as_deref().map(MacAddr::parse).transpose()?;
    let vlan = options.vlan.map(VlanId::new).transpose()?;
    let trunks = options.trunks.into_iter().map(VlanId::new).collect::<Result<Vec<_>, _>>()?;
    if target == TargetRef::Host && (mtu.is_some() || mac.is_some()) {
        return Err(CapError::invalid(format!(
            "add-port {ifname} (host): mtu and mac options apply to veth ports; use links.set-mtu/set-mac for host interfaces"
        )));
    }
    let iface_id = options.iface_id.as_deref().map(crate::backend::ovn::OvnName::parse).transpose()?;
    if target == TargetRef::Host && iface_id.is_some() {
        return Err(CapError::invalid(format!(
            "add-port {ifname} (host): iface-id binds a container's or netns's veth port to OVN, not a host interface"
        )));
    }
    Ok(PortReq { target, ifname, mtu, mac, vlan, trunks, iface_id, addressing: Addressing::default() })
}

/// An `attach-request`'s addresses and gateway, checked: no address twice,
/// and a gateway inside the subnet of one of them (the kernel would refuse
/// the route otherwise, after the veth was made).
fn parse_addressing(addresses: &[String], gateway: Option<&str>) -> CapResult<Addressing> {
    let mut parsed: Vec<Cidr> = Vec::with_capacity(addresses.len());
    for a in addresses {
        let cidr = Cidr::parse(a)?;
        if let Some(same) = parsed.iter().find(|c| c.addr == cidr.addr) {
            return Err(CapError::invalid(format!(
                "address {} is given twice ({same} and {cidr})",
                cidr.addr
            )));
        }
        parsed.push(cidr);
    }
    let gateway = gateway.map(parse_ip).transpose()?;
    if let Some(g) = gateway {
        // An IPv6 link-local gateway needs no address of its subnet: the
        // link has its own link-local one.
        let link_local = matches!(g, std::net::IpAddr::V6(v6) if v6.is_unicast_link_local());
        if !link_local && !parsed.iter().any(|c| c.contains(g)) {
            let given: Vec<String> = parsed.iter().map(Cidr::to_string).collect();
            return Err(CapError::invalid(format!(
                "gateway {g} is not in the subnet of any address given ({})",
                if given.is_empty() { "none".to_string() } else { given.join(", ") }
            )));
        }
    }
    Ok(Addressing { addresses: parsed, gateway })
}

impl PortReq {
    fn with_addressing(mut self, addressing: Addressing) -> CapResult<Self> {
        if self.target == TargetRef::Host && !addressing.is_empty() {
            return Err(Addressing::not_for_host(&self.ifname));
        }
        self.addressing = addressing;
        Ok(self)
    }

    /// `userspace`: the bridge uses ovs-vswitchd's userspace datapath, so a
    /// veth's container end gets TX checksum offload off (see [`Op::AddPort`]).
    fn into_op(self, bridge: &IfName, target: Target, userspace: bool) -> Op {
        let PortReq { ifname, mtu, mac, vlan, trunks, iface_id, addressing, .. } = self;
        let (bridge, port) = (bridge.clone(), host_port_name(&target, &ifname));
        let sw_checksum = userspace && target != Target::Host;
        Op::AddPort {
            bridge,
            port,
            target,
            ifname,
            mtu,
            mac,
            vlan,
            trunks,
            sw_checksum,
            iface_id,
            addressing,
        }
    }
}

/// The ports of a bridge indexed the ways [`find_port`] searches them, so
/// that finding N ports costs N lookups, not N scans of the bridge.
struct PortIndex<'a> {
    /// (owner key: container id/name or netns, container iface) -> port.
    by_owner: HashMap<(&'a str, &'a str), &'a PortInfo>,
    by_name: HashMap<&'a str, &'a PortInfo>,
}

impl<'a> PortIndex<'a> {
    fn new(ports: &'a [PortInfo]) -> Self {
        let mut by_owner = HashMap::new();
        for p in ports {
            let Some(iface) = p.container_iface() else { continue };
            for k in [ext::CONTAINER_ID, ext::CONTAINER_FULL_ID, ext::CONTAINER_NAME, ext::NETNS] {
                if let Some(v) = p.external_ids.get(k) {
                    by_owner.entry((v.as_str(), iface)).or_insert(p);
                }
            }
        }
        Self { by_owner, by_name: ports.iter().map(|p| (p.name.as_str(), p)).collect() }
    }

    /// Same answer as [`find_port`] (the index only narrows the candidates).
    fn find(&self, owner: &PortOwner, ifname: &IfName) -> Option<&'a PortInfo> {
        let candidates: Vec<&'a PortInfo> = match owner {
            PortOwner::Host => self.by_name.get(ifname.as_str()).copied().into_iter().collect(),
            PortOwner::Netns(n) => {
                self.by_owner.get(&(n.as_str(), ifname.as_str())).copied().into_iter().collect()
            }
            PortOwner::Container { given, known } => std::iter::once(given)
                .chain(known.iter().flat_map(|(id, name)| [id, name]))
                .filter_map(|k| self.by_owner.get(&(k.as_str(), ifname.as_str())).copied())
                .collect(),
        };
        candidates.into_iter().find(|p| find_port(std::slice::from_ref(*p), owner, ifname).is_some())
    }
}

fn ifname_of(p: &PortInfo) -> CapResult<crate::types::IfName> {
    Ok(crate::types::IfName::parse(&p.name)?)
}

fn to_wit(p: PortInfo) -> WitPortInfo {
    WitPortInfo {
        container_iface: p.container_iface().unwrap_or_default().to_string(),
        name: p.name,
        bridge: p.bridge,
        tag: p.tag,
        trunks: p.trunks,
        external_ids: p.external_ids.into_iter().map(|(key, value)| Pair { key, value }).collect(),
        ofport: p.ofport,
        error: p.error,
    }
}
