//! The network driver and the IPAM driver behind the socket: each Docker
//! call parsed into its typed request, checked against the [`State`], and
//! every change to the system made through a [`Gate`] of its own, with its
//! own journal file, exactly as a script's calls are: a plugin killed in the
//! middle of a call leaves a journal that the next start rolls back
//! ([`Driver::recover`]), so nothing is left half-built.
//!
//! Docker's order: run = CreateEndpoint, Join, ProgramExternalConnectivity,
//! EndpointOperInfo; stop = RevokeExternalConnectivity, Leave,
//! DeleteEndpoint. The veth pair is made whole in the host namespace at
//! CreateEndpoint (MTU, MAC, TX checksum offload set before its port is on
//! the bridge); Docker moves the peer into the container after Join.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

mod naming;
mod ovn;

use super::hooks::{Hooks, RunPlace};
use super::ipam;
use super::protocol::{self as p, EndpointOptions, NetworkMode, NetworkOptions};
use super::state::{Endpoint, Network, State, Store};
use crate::audit::{AuditLog, RunAudit};
use crate::backend::system::{SystemBackend, SystemConfig};
use crate::backend::{ext, Applied, Backend, Op};
use crate::error::{CapError, CapResult};
use crate::gate::Gate;
use crate::journal::store::{Header, JournalFile};
use crate::journal::Journal;
use crate::policy::AllowAll;
use crate::types::{is_userspace_datapath, Cidr, Datapath, IfName, MacAddr, Target};

/// Interface external_ids of a driver-managed port (besides ovs-docker's
/// `container_iface`): `gc` and `watch` leave ports carrying these alone.
pub use crate::types::external_ids::{DOCKER_ENDPOINT_ID, DOCKER_NETWORK_ID};

pub struct Driver {
    name: String,
    store: Store,
    state: Mutex<State>,
    backend: Arc<SystemBackend>,
    system: SystemConfig,
    journal_dir: PathBuf,
    datapath: Datapath,
    /// Every change's call, decision and result, when configured (`--audit`).
    audit: Option<Arc<AuditLog>>,
    /// Networks' scripts (`-o script=`).
    hooks: Hooks,
    /// mode=ovn address allocations, one at a time on this host.
    ovn_ipam: Mutex<()>,
}

/// The host end (an OVS port, named like ovs-run's other ports so that a
/// cleanup recognises it) and the peer Docker moves, both from the endpoint
/// id: a retried or recovered call computes the same names.
pub fn veth_names(endpoint_id: &str) -> (IfName, IfName) {
    let h = hex::encode(Sha256::digest(format!("docker-endpoint/{endpoint_id}").as_bytes()));
    let port = IfName::parse(&format!("ovr{}_l", &h[..10])).expect("valid name");
    let peer = IfName::parse(&format!("ovr{}_c", &h[..10])).expect("valid name");
    (port, peer)
}

/// A locally administered unicast MAC from the endpoint id, for Docker to
/// set on the container's interface when it was given none.
fn endpoint_mac(endpoint_id: &str) -> MacAddr {
    let h = Sha256::digest(format!("docker-mac/{endpoint_id}").as_bytes());
    MacAddr([0x02, h[0], h[1], h[2], h[3], h[4]])
}

/// For the crash tests only: with OVS_RUN_DOCKER_PLUGIN_TEST_PAUSE=CALL in
/// its environment the plugin stops for a minute at CALL's most delicate
/// point (CreateEndpoint: port made, endpoint not yet recorded as ready;
/// Join: before answering), where a test kills it.
async fn test_pause(call: &str) {
    if std::env::var("OVS_RUN_DOCKER_PLUGIN_TEST_PAUSE").is_ok_and(|c| c == call) {
        eprintln!("ovs-run docker-plugin: pausing in {call} (OVS_RUN_DOCKER_PLUGIN_TEST_PAUSE)");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> CapResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        // Measured with dockerd 20.10: its retry of a call whose connection
        // broke (the plugin was killed) sends the request without its body.
        return Err(CapError::invalid(
            "empty request: Docker retries a call the plugin did not answer without its body; \
             the plugin restarted, run the command again",
        ));
    }
    serde_json::from_slice(body).map_err(|e| CapError::invalid(format!("malformed request: {e}")))
}

impl Driver {
    /// `backend` is the real system `system` describes, with its OVN
    /// settings (`--ovn-nb`, `--ovn-bind-timeout`) for mode=ovn networks.
    pub fn new(
        name: &str,
        store: Store,
        (system, backend): (SystemConfig, SystemBackend),
        journal_dir: PathBuf,
        datapath: Datapath,
        hooks: Hooks,
    ) -> CapResult<Self> {
        let state = store.load()?;
        Ok(Self {
            name: name.to_string(),
            store,
            state: Mutex::new(state),
            backend: Arc::new(backend),
            system,
            journal_dir,
            datapath,
            audit: None,
            hooks,
            ovn_ipam: Mutex::new(()),
        })
    }

    /// Write every change to `log` too (one run per Docker call).
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(Arc::new(log));
        self
    }

    /// After a crash: roll back the calls that were under way (their
    /// journals), then forget the endpoints whose CreateEndpoint never
    /// finished (their ports went with that rollback; removed again here in
    /// case the crash came before the journal had them).
    pub async fn recover(&self) -> CapResult<()> {
        if self.journal_dir.exists()
            && !crate::journal::sweep::recover_all(&self.journal_dir, false, true, &|n| match n {
                crate::journal::sweep::Notice::Listing(l) | crate::journal::sweep::Notice::Warning(l) => {
                    eprintln!("{l}")
                }
            })
            .await
        {
            eprintln!(
                "ovs-run docker-plugin: some interrupted calls could not be fully rolled back (journals in {})",
                self.journal_dir.display()
            );
        }
        let unfinished: Vec<(String, Endpoint)> = {
            let st = self.state.lock().await;
            st.endpoints.iter().filter(|(_, e)| !e.ready).map(|(k, e)| (k.clone(), e.clone())).collect()
        };
        for (id, e) in unfinished {
            let mut ops = vec![Op::DelPort { bridge: e.bridge.clone(), port: e.port.clone() }];
            ops.extend(self.ovn_teardown_ops(&e).await?);
            self.change(&format!("recover endpoint {}", short(&id)), ops).await?;
            self.update(|s| {
                Self::forget_held(s, &e);
                s.endpoints.remove(&id);
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// A copy of the state (for `status` and tests).
    pub async fn snapshot(&self) -> State {
        self.state.lock().await.clone()
    }

    /// Change the state with `f` and save it; nothing changes when `f` or
    /// the save fails.
    async fn update<T>(&self, f: impl FnOnce(&mut State) -> CapResult<T>) -> CapResult<T> {
        let mut st = self.state.lock().await;
        let mut next = st.clone();
        let out = f(&mut next)?;
        if next != *st {
            self.store.save(&next)?;
            *st = next;
        }
        Ok(out)
    }

    /// Carry `ops` out through a gate with a journal on disk, all or none:
    /// on a failure the ones done are rolled back before the error returns.
    async fn change(&self, what: &str, ops: Vec<Op>) -> CapResult<Vec<Applied>> {
        let file = self.journal_file(what)?;
        let backend: Arc<dyn Backend> = self.backend.clone();
        let mut gate = Gate::new(backend, Arc::new(AllowAll)).with_journal(Journal::on_disk(file));
        if let Some(log) = &self.audit {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            gate = gate.with_audit(RunAudit::new(
                log.clone(),
                &format!("docker-plugin {}", self.name),
                Some(uid),
                "",
            ));
        }
        let mut done = Vec::with_capacity(ops.len());
        for op in ops {
            match gate.apply(op).await {
                Ok(a) => done.push(a),
                Err(e) => {
                    let report = gate.rollback().await;
                    gate.close_journal(report.is_clean());
                    if report.is_clean() {
                        return Err(e);
                    }
                    let left: Vec<String> = report
                        .failed
                        .iter()
                        .map(|(op, e)| format!("{op}: {e}"))
                        .chain(report.irreversible.iter().map(|op| format!("cannot undo {op}")))
                        .collect();
                    return Err(e.context(format!("(and the rollback left: {})", left.join("; "))));
                }
            }
        }
        gate.close_journal(true);
        Ok(done)
    }

    fn journal_file(&self, what: &str) -> CapResult<JournalFile> {
        let mut last = None;
        // Two calls started in the same nanosecond would pick one file name.
        for _ in 0..3 {
            let header = Header::for_system(&format!("docker-plugin {}: {what}", self.name), &self.system);
            match JournalFile::create(&self.journal_dir, &header) {
                Ok(f) => return Ok(f),
                Err(e) => last = Some(e),
            }
        }
        Err(CapError::failed(format!(
            "cannot create a journal in {}: {}; nothing was changed",
            self.journal_dir.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// One call of Docker's: `path` is the HTTP path (/NetworkDriver.Join).
    pub async fn call(&self, path: &str, body: &[u8]) -> CapResult<Value> {
        match path {
            "/Plugin.Activate" => Ok(json!({ "Implements": ["NetworkDriver", "IpamDriver"] })),
            "/NetworkDriver.GetCapabilities" => Ok(json!({ "Scope": "local", "ConnectivityScope": "local" })),
            "/NetworkDriver.CreateNetwork" => self.create_network(parse(body)?).await.map(|()| json!({})),
            "/NetworkDriver.DeleteNetwork" => {
                let r: p::NetworkRef = parse(body)?;
                self.delete_network(&r.network_id).await.map(|()| json!({}))
            }
            "/NetworkDriver.CreateEndpoint" => self.create_endpoint(parse(body)?).await,
            "/NetworkDriver.DeleteEndpoint" => {
                let r: p::EndpointRef = parse(body)?;
                self.delete_endpoint(&r.network_id, &r.endpoint_id).await.map(|()| json!({}))
            }
            "/NetworkDriver.EndpointOperInfo" => {
                let r: p::EndpointRef = parse(body)?;
                self.endpoint_info(&r.endpoint_id).await
            }
            "/NetworkDriver.Join" => self.join(parse(body)?).await,
            "/NetworkDriver.Leave" => {
                let r: p::EndpointRef = parse(body)?;
                self.leave(&r.endpoint_id).await.map(|()| json!({}))
            }
            "/NetworkDriver.ProgramExternalConnectivity"
            | "/NetworkDriver.RevokeExternalConnectivity"
            | "/NetworkDriver.DiscoverNew"
            | "/NetworkDriver.DiscoverDelete" => Ok(json!({})),
            "/IpamDriver.GetCapabilities" => {
                Ok(json!({ "RequiresMACAddress": false, "RequiresRequestReplay": false }))
            }
            "/IpamDriver.GetDefaultAddressSpaces" => Ok(json!({
                "LocalDefaultAddressSpace": ipam::LOCAL_SPACE,
                "GlobalDefaultAddressSpace": ipam::GLOBAL_SPACE,
            })),
            "/IpamDriver.RequestPool" => {
                let r: p::RequestPool = parse(body)?;
                let (id, pool) = self.update(|s| ipam::request_pool(s, &r)).await?;
                Ok(json!({ "PoolID": id, "Pool": pool.to_string(), "Data": {} }))
            }
            "/IpamDriver.ReleasePool" => {
                let r: p::PoolRef = parse(body)?;
                self.update(|s| {
                    ipam::release_pool(s, &r.pool_id);
                    Ok(())
                })
                .await?;
                Ok(json!({}))
            }
            "/IpamDriver.RequestAddress" => {
                let r: p::RequestAddress = parse(body)?;
                let a = match self.ovn_pool(&r.pool_id).await {
                    Some(_) => self.ovn_request_address(&r).await?,
                    None => self.update(|s| ipam::request_address(s, &r)).await?,
                };
                Ok(json!({ "Address": a.to_string(), "Data": {} }))
            }
            "/IpamDriver.ReleaseAddress" => {
                let r: p::ReleaseAddress = parse(body)?;
                if self.ovn_pool(&r.pool_id).await.is_some() {
                    self.ovn_release_address(&r.pool_id, &r.address).await?;
                }
                self.update(|s| ipam::release_address(s, &r.pool_id, &r.address)).await?;
                Ok(json!({}))
            }
            _ => Err(CapError::not_found(format!(
                "{} is not a call this plugin answers",
                crate::types::shorten(path)
            ))),
        }
    }

    async fn create_network(&self, r: p::CreateNetwork) -> CapResult<()> {
        // Everything is parsed and checked before anything is changed.
        let options = NetworkOptions::parse(&r.options)?;
        let gateway = p::gateway(r.ipv4_data.as_deref().unwrap_or_default())?;
        if options.gateway_on_bridge && gateway.is_none() {
            return Err(CapError::invalid("option gateway_on_bridge=true: the network has no IPv4 gateway"));
        }
        // A script that cannot run would fail every Join: refuse the network now.
        if let Some(script) = &options.script {
            self.hooks.load(script)?;
        }
        if options.mode == NetworkMode::Ovn {
            return self.create_ovn_network(&r, options, gateway).await;
        }
        let bridge = options.bridge();
        {
            let st = self.state.lock().await;
            if st.networks.contains_key(&r.network_id) {
                return Err(CapError::exists(format!("network {} exists already", short(&r.network_id))));
            }
            // The bridge's own port can be in one VLAN only.
            if let (true, Some(v)) = (options.gateway_on_bridge, options.vlan) {
                let clash = st.networks.values().find(|n| {
                    n.bridge == bridge
                        && n.options.gateway_on_bridge
                        && n.options.vlan.is_some_and(|w| w != v)
                });
                if let Some(n) = clash {
                    return Err(CapError::exists(format!(
                        "option gateway_on_bridge=true with vlan={v}: bridge {bridge}'s own port is in VLAN {} for another network",
                        n.options.vlan.map(|w| w.to_string()).unwrap_or_default()
                    )));
                }
            }
        }
        let datapath = options.datapath.unwrap_or(self.datapath);
        let mut ops = vec![Op::CreateBridge { name: bridge.clone(), datapath, may_exist: true }];
        if let (true, Some(gw)) = (options.gateway_on_bridge, gateway) {
            ops.push(Op::AddAddress { target: Target::Host, ifname: bridge.clone(), cidr: gw });
            ops.push(Op::SetLinkState { target: Target::Host, ifname: bridge.clone(), up: true });
            // The containers' ports are access ports of the VLAN: the
            // gateway's port must be in it too, or they cannot reach it.
            if let Some(v) = options.vlan {
                ops.push(Op::SetVlan { bridge: bridge.clone(), port: bridge.clone(), vlan: Some(v) });
            }
        }
        let applied = self.change(&format!("CreateNetwork {}", short(&r.network_id)), ops).await?;
        let network = Network {
            bridge,
            gateway,
            created_bridge: applied[0].changed,
            bridge_address: gateway.filter(|_| applied.get(1).is_some_and(|a| a.changed)),
            bridge_vlan: applied.get(3).is_some_and(|a| a.changed),
            options,
            ovn: None,
        };
        self.update(|s| {
            s.networks.insert(r.network_id.clone(), network);
            Ok(())
        })
        .await
    }

    async fn delete_network(&self, id: &str) -> CapResult<()> {
        let (net, shared) = {
            let st = self.state.lock().await;
            let Some(net) = st.networks.get(id).cloned() else { return Ok(()) };
            let shared = st.networks.iter().any(|(k, n)| k != id && n.bridge == net.bridge);
            (net, shared)
        };
        if let Some(ovn) = &net.ovn {
            self.delete_ovn_network(id, ovn).await;
            return self
                .update(|s| {
                    s.networks.remove(id);
                    Ok(())
                })
                .await;
        }
        let mut ops = Vec::new();
        if net.bridge_vlan {
            ops.push(Op::SetVlan { bridge: net.bridge.clone(), port: net.bridge.clone(), vlan: None });
        }
        if let Some(a) = net.bridge_address {
            ops.push(Op::DelAddress { target: Target::Host, ifname: net.bridge.clone(), cidr: a });
        }
        // A bridge this network made goes with it, unless something else uses it.
        if net.created_bridge && !shared {
            let ports = match self.backend.list_ports(&net.bridge).await {
                Ok(p) => p,
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => vec![],
                Err(e) => return Err(e),
            };
            if ports.is_empty() {
                ops.push(Op::DeleteBridge { name: net.bridge.clone(), if_exists: true });
            }
        }
        self.change(&format!("DeleteNetwork {}", short(id)), ops).await?;
        self.update(|s| {
            s.networks.remove(id);
            Ok(())
        })
        .await
    }

    async fn create_endpoint(&self, r: p::CreateEndpoint) -> CapResult<Value> {
        let options = EndpointOptions::parse(&r.options)?;
        let iface = r.interface.unwrap_or_default();
        let address = match iface.address.as_str() {
            "" => None,
            a => Some(Cidr::parse(a).map_err(|e| CapError::from(e).context("Interface.Address"))?),
        };
        let docker_mac = match iface.mac_address.as_str() {
            "" => None,
            m => Some(MacAddr::parse(m).map_err(|e| CapError::from(e).context("Interface.MacAddress"))?),
        };
        let eid = r.endpoint_id;
        let (port, peer) = veth_names(&eid);
        let net = self.state.lock().await.networks.get(&r.network_id).cloned().ok_or_else(|| {
            CapError::not_found(format!(
                "no network {} (created before this plugin's state?)",
                short(&r.network_id)
            ))
        })?;
        let (ovn, mac, ovn_ops) = match &net.ovn {
            Some(_) => {
                let (o, mac, ops) =
                    self.ovn_endpoint(&net, address, docker_mac.or(options.mac), endpoint_mac(&eid)).await?;
                (Some(o), mac, ops)
            }
            None => (None, docker_mac.or(options.mac).unwrap_or_else(|| endpoint_mac(&eid)), vec![]),
        };
        let endpoint = self
            .update(|s| {
                let net = s.networks.get(&r.network_id).ok_or_else(|| {
                    CapError::not_found(format!(
                        "no network {} (created before this plugin's state?)",
                        short(&r.network_id)
                    ))
                })?;
                if s.endpoints.contains_key(&eid) {
                    return Err(CapError::exists(format!("endpoint {} exists already", short(&eid))));
                }
                let e = Endpoint {
                    network: r.network_id.clone(),
                    bridge: net.bridge.clone(),
                    port: port.clone(),
                    peer: peer.clone(),
                    options: options.clone(),
                    address,
                    mac: Some(mac),
                    ready: false,
                    sandbox: None,
                    ovn: ovn.clone(),
                };
                s.endpoints.insert(eid.clone(), e.clone());
                Ok((e, net.clone()))
            })
            .await;
        let (ep, net) = endpoint?;
        let made = self.add_endpoint_port(&r.network_id, &eid, &ep, &net, ovn_ops).await;
        match made {
            Ok(()) => {
                test_pause("CreateEndpoint").await;
                self.update(|s| {
                    if let Some(e) = s.endpoints.get_mut(&eid) {
                        e.ready = true;
                    }
                    Ok(())
                })
                .await?;
            }
            Err(e) => {
                let _ = self
                    .update(|s| {
                        s.endpoints.remove(&eid);
                        Ok(())
                    })
                    .await;
                return Err(e);
            }
        }
        // Docker sets the MAC it gave; one it did not give is ours to name.
        Ok(match docker_mac {
            Some(_) => json!({ "Interface": {} }),
            None => json!({ "Interface": { "MacAddress": mac.to_string() } }),
        })
    }

    /// The endpoint's OVS port, after `first` (a mode=ovn endpoint's logical port), all or none.
    async fn add_endpoint_port(
        &self,
        nid: &str,
        eid: &str,
        ep: &Endpoint,
        net: &Network,
        first: Vec<Op>,
    ) -> CapResult<()> {
        let vlan = ep.options.vlan.or(net.options.vlan);
        // An access VLAN of the endpoint's own replaces the network's trunks.
        let trunks = if ep.options.vlan.is_some() { vec![] } else { net.options.trunks.clone() };
        let userspace =
            self.backend.bridge_datapath(&ep.bridge).await?.as_deref().is_some_and(is_userspace_datapath);
        let mut ids = BTreeMap::new();
        ids.insert(ext::CONTAINER_IFACE.to_string(), ep.peer.to_string());
        ids.insert(ext::CREATED_BY.to_string(), "ovs-run".to_string());
        ids.insert(DOCKER_NETWORK_ID.to_string(), nid.to_string());
        ids.insert(DOCKER_ENDPOINT_ID.to_string(), eid.to_string());
        if let Some(m) = ep.mac {
            ids.insert("attached-mac".to_string(), m.to_string());
        }
        if let Some(a) = ep.address {
            ids.insert("ip_address".to_string(), a.to_string());
        }
        if let Some(o) = &ep.ovn {
            // ovn-controller binds the port to the logical port by this.
            ids.insert(crate::backend::ovn::ext::IFACE_ID.to_string(), o.port.to_string());
        }
        let op = Op::AddVethPort {
            bridge: ep.bridge.clone(),
            port: ep.port.clone(),
            peer: ep.peer.clone(),
            mtu: ep.options.mtu.or(net.options.mtu),
            mac: ep.mac,
            vlan,
            trunks,
            sw_checksum: userspace,
            external_ids: ids,
        };
        let mut ops = first;
        ops.push(op);
        self.change(&format!("CreateEndpoint {}", short(eid)), ops).await.map(drop)
    }

    /// Succeeds for an endpoint that is gone already (Docker retries after crashes).
    async fn delete_endpoint(&self, nid: &str, eid: &str) -> CapResult<()> {
        let (target, known) = {
            let st = self.state.lock().await;
            let known = st.endpoints.get(eid).cloned();
            let target = match (&known, st.networks.get(nid)) {
                (Some(e), _) => Some((e.bridge.clone(), e.port.clone())),
                (None, Some(n)) => Some((n.bridge.clone(), veth_names(eid).0)),
                (None, None) => None,
            };
            (target, known)
        };
        if let Some((bridge, port)) = target {
            let mut ops = vec![Op::DelPort { bridge, port }];
            if let Some(e) = &known {
                ops.extend(self.ovn_teardown_ops(e).await?);
            }
            self.change(&format!("DeleteEndpoint {}", short(eid)), ops).await?;
        }
        self.update(|s| {
            if let Some(e) = &known {
                Self::forget_held(s, e);
            }
            s.endpoints.remove(eid);
            Ok(())
        })
        .await
    }

    async fn join(&self, r: p::Join) -> CapResult<Value> {
        let (ep, net) =
            {
                let st = self.state.lock().await;
                let ep =
                    st.endpoints.get(&r.endpoint_id).filter(|e| e.ready).cloned().ok_or_else(|| {
                        CapError::not_found(format!("no endpoint {}", short(&r.endpoint_id)))
                    })?;
                let net = st
                    .networks
                    .get(&ep.network)
                    .cloned()
                    .ok_or_else(|| CapError::not_found(format!("no network {}", short(&ep.network))))?;
                (ep, net)
            };
        if let Some(script) = &net.options.script {
            self.run_script(script, "join", &r.endpoint_id, &ep, &net).await?;
        }
        if let Some(o) = &ep.ovn {
            // "Joined" means traffic flows: ovn-controller installed the port's flows.
            let took = self.backend.wait_ovn_installed(&ep.port, &o.port).await?;
            crate::verbose!(1, "Join {}: ovn-installed after {} ms", short(&r.endpoint_id), took.as_millis());
        }
        let key = r.sandbox_key;
        self.update(|s| {
            if let Some(e) = s.endpoints.get_mut(&r.endpoint_id) {
                e.sandbox = Some(key);
            }
            Ok(())
        })
        .await?;
        test_pause("Join").await;
        let resp = p::JoinResponse {
            interface_name: p::InterfaceName { src_name: ep.peer.to_string(), dst_prefix: "eth".into() },
            gateway: net.gateway.map(|g| g.addr.to_string()),
            static_routes: vec![],
            disable_gateway_service: net.gateway.is_none(),
        };
        serde_json::to_value(resp).map_err(|e| CapError::failed(e.to_string()))
    }

    async fn leave(&self, eid: &str) -> CapResult<()> {
        let found = {
            let st = self.state.lock().await;
            st.endpoints.get(eid).and_then(|e| Some((e.clone(), st.networks.get(&e.network)?.clone())))
        };
        if let Some((ep, net)) = found {
            if let Some(script) = &net.options.script {
                // Docker stops the container whatever Leave answers: say
                // what failed in the plugin's log, and let the endpoint go.
                if let Err(e) = self.run_script(script, "leave", eid, &ep, &net).await {
                    eprintln!("ovs-run docker-plugin: Leave {}: {e}", short(eid));
                }
            }
        }
        self.update(|s| {
            if let Some(e) = s.endpoints.get_mut(eid) {
                e.sandbox = None;
            }
            Ok(())
        })
        .await
    }

    /// Run the network's script for `event` (join, leave) of endpoint `eid`.
    async fn run_script(
        &self,
        script: &str,
        event: &str,
        eid: &str,
        ep: &Endpoint,
        net: &Network,
    ) -> CapResult<()> {
        let mut args = vec![
            event.to_string(),
            format!("--bridge={}", ep.bridge),
            format!("--port={}", ep.port),
            format!("--peer={}", ep.peer),
            format!("--endpoint={eid}"),
            format!("--network={}", ep.network),
        ];
        if let Some(a) = ep.address {
            args.push(format!("--address={a}"));
        }
        if let Some(m) = ep.mac {
            args.push(format!("--mac={m}"));
        }
        if let Some(v) = ep.options.vlan.or(net.options.vlan) {
            args.push(format!("--vlan={v}"));
        }
        if let Some(m) = ep.options.mtu.or(net.options.mtu) {
            args.push(format!("--mtu={m}"));
        }
        args.extend(net.options.script_options.iter().map(|(k, v)| format!("--{k}={v}")));
        let what = format!("{} {}", if event == "join" { "Join" } else { "Leave" }, short(eid));
        let who = format!("docker-plugin {}", self.name);
        let place = RunPlace {
            backend: self.backend.clone(),
            datapath: net.options.datapath.unwrap_or(self.datapath),
            journal: self.journal_file(&format!("{what}: network script"))?,
            audit: self.audit.as_ref().map(|a| (a, who.as_str())),
        };
        let changes = self.hooks.run(script, &args, place).await?;
        crate::verbose!(1, "{what}: network script made {changes} change(s)");
        Ok(())
    }

    async fn endpoint_info(&self, eid: &str) -> CapResult<Value> {
        let st = self.state.lock().await;
        let Some(e) = st.endpoints.get(eid) else { return Ok(json!({ "Value": {} })) };
        let net = st.networks.get(&e.network);
        let vlan = e.options.vlan.or(net.and_then(|n| n.options.vlan));
        let mtu = e.options.mtu.or(net.and_then(|n| n.options.mtu));
        Ok(json!({ "Value": {
            "ovs_bridge": e.bridge.to_string(),
            "ovs_port": e.port.to_string(),
            "vlan": vlan.map(|v| v.to_string()).unwrap_or_default(),
            "mtu": mtu.map(|m| m.to_string()).unwrap_or_default(),
        }}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_are_ovs_run_port_names() {
        let (port, peer) = veth_names("4f1e2d");
        assert!(crate::backend::system::is_generated_port_name(&port), "{port}");
        assert!(!crate::backend::system::is_generated_port_name(&peer), "{peer}");
        assert_eq!(port.as_str()[..13], peer.as_str()[..13]);
        assert_eq!(veth_names("4f1e2d"), (port, peer));
    }
}
