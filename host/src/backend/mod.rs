//! The one interface between the engine and whatever carries changes out.
//!
//! Every change is an [`Op`]: a plain, serialisable value (no Wasm, no
//! bindings) that the dry-run planner records, the journal stores with its
//! inverse, and the real system applies. Reads are separate methods. The
//! dry-run model ([`dryrun`]) and the real system ([`system`]) are two
//! implementations of the same [`Backend`] trait.

pub mod container_port;
pub mod docker;
pub mod dryrun;
pub mod netlink;
pub mod overlay_mtu;
pub mod ovn;
pub mod ovsdb;
pub mod ping;
pub mod restore;
pub mod stats;
pub mod system;
pub mod tcp_check;
pub mod tunnels;
pub mod unixctl;
pub mod veth_lock;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CapError, CapResult};
use crate::types::{
    Cidr, ContainerInfo, ContainerRef, Datapath, IfName, MacAddr, Mtu, Offload, RouteSpec, Target, VlanId,
};

/// A change to the network. `changed: false` outcomes (create with may-exist
/// on an existing bridge, an address already present) are not in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Op {
    CreateBridge {
        name: IfName,
        datapath: Datapath,
        may_exist: bool,
    },
    DeleteBridge {
        name: IfName,
        if_exists: bool,
    },
    /// Connect `target`'s `ifname` to `bridge` through OVS port `port`.
    /// For the host target `port == ifname` and the link must exist; for a
    /// container or netns a veth pair is made: `port` on the host side,
    /// `ifname` created directly inside the target namespace.
    AddPort {
        bridge: IfName,
        port: IfName,
        target: Target,
        ifname: IfName,
        mtu: Option<Mtu>,
        mac: Option<MacAddr>,
        vlan: Option<VlanId>,
        trunks: Vec<VlanId>,
        /// TX checksum offload off on `ifname` before it comes up: the
        /// bridge uses the userspace datapath, which forwards frames as they
        /// are, so a checksum left for hardware would never be filled in
        /// (see backend/netlink/ethtool.rs). Decided by the ports capability
        /// from the bridge's datapath; always false for host interfaces.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sw_checksum: bool,
        /// Bind the port to this OVN logical switch port (Interface
        /// external_ids:iface-id) and wait until the local ovn-controller
        /// marks it ovn-installed (see [`ovn`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface_id: Option<ovn::OvnName>,
        /// The inner end's own addressing, set before the end comes up (a
        /// container's or netns's port only): ovs-docker's --ipaddress and
        /// --gateway, done on the socket the veth's set-up already opened in
        /// the target, not as calls of their own. Deleting the veth takes
        /// them along, so the port's undo covers them.
        #[serde(default, skip_serializing_if = "Addressing::is_empty")]
        addressing: Addressing,
    },
    /// A veth pair made whole in the HOST namespace, `port` added to
    /// `bridge`, and `peer` left in the host namespace for another program
    /// to move into its container: Docker does so after a network driver's
    /// Join (see docker_plugin). `external_ids` are the Interface row's (they
    /// name `peer` as container_iface, so removing the port removes the
    /// veth). MTU, MAC and TX checksum offload (`sw_checksum`, as for
    /// [`Op::AddPort`]) are set on `peer` before anything else sees it.
    AddVethPort {
        bridge: IfName,
        port: IfName,
        peer: IfName,
        mtu: Option<Mtu>,
        mac: Option<MacAddr>,
        vlan: Option<VlanId>,
        trunks: Vec<VlanId>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sw_checksum: bool,
        external_ids: BTreeMap<String, String>,
    },
    /// Remove OVS port `port` from `bridge`, and its host-side veth if it has one.
    DelPort {
        bridge: IfName,
        port: IfName,
    },
    SetVlan {
        bridge: IfName,
        port: IfName,
        vlan: Option<VlanId>,
    },
    AddAddress {
        target: Target,
        ifname: IfName,
        cidr: Cidr,
    },
    DelAddress {
        target: Target,
        ifname: IfName,
        cidr: Cidr,
    },
    SetMtu {
        target: Target,
        ifname: IfName,
        mtu: Mtu,
    },
    SetMac {
        target: Target,
        ifname: IfName,
        mac: MacAddr,
    },
    SetLinkState {
        target: Target,
        ifname: IfName,
        up: bool,
    },
    SetOffload {
        target: Target,
        ifname: IfName,
        offload: Offload,
        on: bool,
    },
    /// ARP on or off on a link (IFF_NOARP clear or set).
    SetArp {
        target: Target,
        ifname: IfName,
        on: bool,
    },
    AddRoute {
        target: Target,
        route: RouteSpec,
    },
    DelRoute {
        target: Target,
        route: RouteSpec,
    },
    /// Add tunnel port `tunnel.name` to `bridge`: one OVSDB transaction
    /// (Interface type and options, `Port.protected` unless transit), then,
    /// on the system, the remote's MAC seeded into ovs-vswitchd's tunnel
    /// neighbour cache when the kernel knows it (see [`tunnels`]).
    AddTunnel {
        bridge: IfName,
        tunnel: crate::tunnel::TunnelSpec,
    },
    /// Remove tunnel port `name` from `bridge` (a port that is not a tunnel is refused).
    DelTunnel {
        bridge: IfName,
        name: IfName,
    },
    /// Put a value back exactly as it was: an undo step only, never
    /// requested by a script (see [`restore`]).
    Restore {
        value: restore::Restore,
    },
    /// A change to the OVN northbound database (see [`ovn`]).
    Ovn {
        change: ovn::OvnChange,
    },
    /// Set (Some) or remove (None) keys of port `port`'s Interface
    /// external_ids, the other keys untouched. The Docker driver names the
    /// container on its ports this way once Docker does (after Join). The
    /// undo puts the keys' old values back.
    SetExternalIds {
        bridge: IfName,
        port: IfName,
        ids: BTreeMap<String, Option<String>>,
    },
}

/// Addresses and a default gateway for a port's inner end ([`Op::AddPort`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addressing {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Cidr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl Addressing {
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.gateway.is_none()
    }

    /// The refusal of addressing for an add-port of a host interface: that
    /// interface keeps its own configuration (links.set-address and
    /// routes.set-route change it). The ports capability, which alone makes
    /// an add-port with addressing, refuses it while parsing the request.
    pub fn not_for_host(ifname: &IfName) -> CapError {
        CapError::invalid(format!(
            "add-port {ifname} (host): addresses and gateway are for a container's or netns's new veth end, not a host interface"
        ))
    }

    /// The default route through `ifname` that `gateway` stands for.
    pub fn default_route(&self, ifname: &IfName) -> Option<RouteSpec> {
        self.gateway.map(|via| RouteSpec { destination: None, via: Some(via), device: Some(ifname.clone()) })
    }
}

impl Op {
    /// The changes an op makes besides its own, each of which the policy
    /// must allow as if asked for alone: an add-port's addresses
    /// (set-address) and default route (set-route). The op's undo covers
    /// them, so they are authorized, not journaled, on their own.
    pub fn implied(&self) -> Vec<Op> {
        let (Op::AddPort { target, ifname, .. }, Some(addressing)) = (self, self.addressing()) else {
            return vec![];
        };
        let addresses = addressing.addresses.iter().map(|cidr| Op::AddAddress {
            target: target.clone(),
            ifname: ifname.clone(),
            cidr: *cidr,
        });
        let route =
            addressing.default_route(ifname).map(|route| Op::AddRoute { target: target.clone(), route });
        addresses.chain(route).collect()
    }

    /// An add-port's addresses and gateway (none for any other op).
    pub fn addressing(&self) -> Option<&Addressing> {
        match self {
            Op::AddPort { addressing, .. } => Some(addressing),
            _ => None,
        }
    }

    /// Whether the change outlives a reboot: OVSDB's rows do, the kernel's
    /// links, addresses and routes do not. Only such a change needs its
    /// journal record on stable storage (fsync) before it is made; for the
    /// others, a record the kernel holds is enough (it survives the process).
    pub fn survives_reboot(&self) -> bool {
        matches!(
            self,
            Op::CreateBridge { .. }
                | Op::DeleteBridge { .. }
                | Op::AddPort { .. }
                | Op::AddVethPort { .. }
                | Op::DelPort { .. }
                | Op::SetVlan { .. }
                | Op::AddTunnel { .. }
                | Op::DelTunnel { .. }
                | Op::Restore { value: restore::Restore::Vlan { .. } }
                | Op::Restore { value: restore::Restore::BridgeHwaddr { .. } }
                | Op::Ovn { .. }
                | Op::SetExternalIds { .. }
        )
    }

    /// The capability name (as in the WIT contract and the policy schema).
    pub fn action(&self) -> &'static str {
        match self {
            Op::CreateBridge { .. } => "create-bridge",
            Op::DeleteBridge { .. } => "delete-bridge",
            // The policy sees it as what it is: a port added to a bridge, from the host.
            Op::AddPort { .. } | Op::AddVethPort { .. } => "add-port",
            Op::DelPort { .. } => "del-port",
            Op::SetVlan { .. } => "set-vlan",
            Op::AddAddress { .. } => "set-address",
            Op::DelAddress { .. } => "del-address",
            Op::SetMtu { .. } => "set-mtu",
            Op::SetMac { .. } => "set-mac",
            Op::SetLinkState { up: true, .. } => "set-link-up",
            Op::SetLinkState { up: false, .. } => "set-link-down",
            Op::SetOffload { .. } => "set-offload",
            Op::SetArp { .. } => "set-arp",
            Op::AddRoute { .. } => "set-route",
            Op::DelRoute { .. } => "del-route",
            Op::AddTunnel { .. } => "add-tunnel",
            Op::DelTunnel { .. } => "remove-tunnel",
            Op::Restore { .. } => "restore",
            Op::Ovn { change } => change.action(),
            Op::SetExternalIds { .. } => "set-external-ids",
        }
    }
}

impl Op {
    /// The settings of an add-port, as its plan line lists them after the port.
    fn fmt_port_settings(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Op::AddPort { ifname, mtu, mac, vlan, trunks, sw_checksum, iface_id, addressing, .. } = self
        else {
            return Ok(());
        };
        port_settings(f, mtu, mac, vlan, trunks)?;
        if *sw_checksum {
            write!(f, ", tx-checksum offload off on {ifname} (userspace datapath)")?;
        }
        if let Some(id) = iface_id {
            write!(f, ", bound to OVN logical port {id}")?;
        }
        for cidr in &addressing.addresses {
            write!(f, ", address {cidr}")?;
        }
        if let Some(g) = addressing.gateway {
            write!(f, ", default route via {g}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateBridge { name, datapath, .. } => {
                write!(f, "create bridge {name} (datapath {datapath})")
            }
            Op::DeleteBridge { name, .. } => write!(f, "delete bridge {name}"),
            Op::AddPort { bridge, port, target, ifname, .. } => {
                match target {
                    Target::Host => write!(f, "add host interface {ifname} to bridge {bridge}")?,
                    _ => write!(
                        f,
                        "create veth {port} <-> {ifname} in {target}, add port {port} to bridge {bridge}"
                    )?,
                }
                self.fmt_port_settings(f)
            }
            Op::AddVethPort { bridge, port, peer, mtu, mac, vlan, trunks, .. } => {
                write!(f, "create veth {port} <-> {peer} in host, add port {port} to bridge {bridge}")?;
                port_settings(f, mtu, mac, vlan, trunks)
            }
            Op::DelPort { bridge, port } => write!(f, "remove port {port} from bridge {bridge}"),
            Op::SetVlan { bridge, port, vlan: Some(v) } => {
                write!(f, "set vlan tag {v} on port {port} of bridge {bridge}")
            }
            Op::SetVlan { bridge, port, vlan: None } => {
                write!(f, "clear vlan tag on port {port} of bridge {bridge}")
            }
            Op::AddAddress { target, ifname, cidr } => {
                write!(f, "add address {cidr} to {ifname} in {target}")
            }
            Op::DelAddress { target, ifname, cidr } => {
                write!(f, "remove address {cidr} from {ifname} in {target}")
            }
            Op::SetMtu { target, ifname, mtu } => write!(f, "set mtu {mtu} on {ifname} in {target}"),
            Op::SetMac { target, ifname, mac } => write!(f, "set mac {mac} on {ifname} in {target}"),
            Op::SetLinkState { target, ifname, up } => {
                write!(f, "set {ifname} {} in {target}", if *up { "up" } else { "down" })
            }
            Op::SetOffload { target, ifname, offload, on } => {
                write!(f, "turn {offload} offload {} on {ifname} in {target}", if *on { "on" } else { "off" })
            }
            Op::SetArp { target, ifname, on } => {
                write!(f, "turn arp {} on {ifname} in {target}", if *on { "on" } else { "off" })
            }
            Op::AddRoute { target, route } => write!(f, "add route {route} in {target}"),
            Op::DelRoute { target, route } => write!(f, "remove route {route} in {target}"),
            Op::AddTunnel { bridge, tunnel } => write!(f, "add {tunnel} on bridge {bridge}"),
            Op::DelTunnel { bridge, name } => write!(f, "remove tunnel {name} from bridge {bridge}"),
            Op::Restore { value } => write!(f, "{value}"),
            Op::Ovn { change } => write!(f, "{change}"),
            Op::SetExternalIds { bridge, port, ids } => {
                let kv: Vec<String> = ids
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => format!("-{k}"),
                    })
                    .collect();
                write!(f, "set external_ids {} on port {port} of bridge {bridge}", kv.join(","))
            }
        }
    }
}

/// The settings a new port carries, as `Op`'s Display appends them.
fn port_settings(
    f: &mut fmt::Formatter<'_>,
    mtu: &Option<Mtu>,
    mac: &Option<MacAddr>,
    vlan: &Option<VlanId>,
    trunks: &[VlanId],
) -> fmt::Result {
    if let Some(m) = mtu {
        write!(f, ", mtu {m}")?;
    }
    if let Some(m) = mac {
        write!(f, ", mac {m}")?;
    }
    if let Some(v) = vlan {
        write!(f, ", vlan tag {v}")?;
    }
    if !trunks.is_empty() {
        let t: Vec<String> = trunks.iter().map(|v| v.to_string()).collect();
        write!(f, ", trunks {}", t.join(","))?;
    }
    Ok(())
}

/// What applying an [`Op`] did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// False when the system already was as asked (nothing to undo).
    pub changed: bool,
    /// Ops that put things back, in the order to run them.
    pub undo: Vec<Op>,
    /// False when the change cannot be undone (a deleted bridge's ports).
    pub reversible: bool,
    /// For add-port: the port as created.
    pub port: Option<PortInfo>,
}

impl Applied {
    pub fn unchanged() -> Self {
        Self { changed: false, undo: vec![], reversible: true, port: None }
    }
    pub fn changed(undo: Vec<Op>) -> Self {
        Self { changed: true, undo, reversible: true, port: None }
    }
    pub fn irreversible() -> Self {
        Self { changed: true, undo: vec![], reversible: false, port: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeInfo {
    pub name: String,
    pub datapath_type: String,
    pub ports: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub name: String,
    pub bridge: String,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    /// The Interface row's external_ids.
    pub external_ids: BTreeMap<String, String>,
    pub ofport: Option<i32>,
    pub error: Option<String>,
}

impl PortInfo {
    /// The interface name inside the container or netns, when the port has one.
    pub fn container_iface(&self) -> Option<&str> {
        self.external_ids.get(ext::CONTAINER_IFACE).map(|s| s.as_str())
    }

    /// For unit tests: an attached port of ovs-run's naming on br0 with these external ids.
    #[cfg(test)]
    pub(crate) fn fixture(ids: &[(&str, &str)]) -> PortInfo {
        PortInfo {
            name: "ovr0123456789_l".into(),
            bridge: "br0".into(),
            tag: None,
            trunks: vec![],
            external_ids: ids.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ofport: Some(1),
            error: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub name: String,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    pub up: bool,
    pub addresses: Vec<Cidr>,
    /// ARP on (IFF_NOARP not set), as `ip link` shows it.
    #[serde(default = "arp_default")]
    pub arp: bool,
}

fn arp_default() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingStats {
    pub sent: u32,
    pub received: u32,
    pub rtt_min: Duration,
    pub rtt_avg: Duration,
    pub rtt_max: Duration,
}

/// What a TCP check moved (see [`tcp_check`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    pub sent: u64,
    /// Bytes that arrived intact.
    pub received: u64,
    pub elapsed: Duration,
}

/// Why a batch of [`Op`]s failed: the op that failed (its index in the
/// batch) and its error. Nothing of the batch is left applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    pub index: usize,
    pub error: CapError,
}

/// Carries out [`Op`]s and answers reads. Implementations know nothing of Wasm.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A short name for messages ("dry-run", "system").
    fn name(&self) -> &'static str;

    async fn apply(&self, op: &Op) -> CapResult<Applied>;

    /// Apply `ops` as one change, all or none: on success one [`Applied`] per
    /// op, in order; on failure the ops that had been applied are undone
    /// again before the error returns. Backends override this to do a batch
    /// faster than one op at a time (the system: one OVSDB transaction for
    /// many ports); the default applies them in order with [`apply_each`].
    async fn apply_many(&self, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
        apply_each(self, ops).await
    }

    async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>>;
    /// `bridge`'s `datapath_type` as OVSDB holds it; None when there is no
    /// such bridge.
    async fn bridge_datapath(&self, bridge: &IfName) -> CapResult<Option<String>> {
        Ok(self
            .list_bridges()
            .await?
            .into_iter()
            .find(|b| b.name == bridge.as_str())
            .map(|b| b.datapath_type))
    }
    /// Ports of `bridge` (not-found when the bridge does not exist).
    async fn list_ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>>;
    async fn list_links(&self, target: &Target, ifname: Option<&IfName>) -> CapResult<Vec<LinkInfo>>;
    async fn list_routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>>;
    /// A container by name or id; not-found when Docker does not know it.
    async fn lookup_container(&self, name: &ContainerRef) -> CapResult<ContainerInfo>;
    async fn list_containers(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>>;
    async fn ping(
        &self,
        target: &Target,
        addr: IpAddr,
        count: u32,
        timeout: Duration,
    ) -> CapResult<PingStats>;
    /// Move `bytes` over TCP from `client` to a listener on `address` in
    /// `server` (see [`tcp_check`]).
    async fn tcp_check(
        &self,
        client: &Target,
        server: &Target,
        address: IpAddr,
        bytes: u64,
        timeout: Duration,
    ) -> CapResult<TransferStats>;

    /// The tunnel ports of `bridge` (not-found when the bridge does not exist).
    async fn list_tunnels(&self, bridge: &IfName) -> CapResult<Vec<crate::tunnel::TunnelInfo>>;
    /// The OVN northbound database's switches, routers and their ports.
    async fn ovn_topology(&self) -> CapResult<ovn::Topology> {
        Err(CapError::unavailable(format!("the {} backend has no OVN northbound database", self.name())))
    }
    /// The `Open_vSwitch` row's external_ids (this host's OVN chassis
    /// settings among them: see [`overlay_mtu`]); empty where there is no
    /// Open_vSwitch database to read.
    async fn ovs_external_ids(&self) -> CapResult<BTreeMap<String, String>> {
        Ok(BTreeMap::new())
    }
}

/// [`Backend::apply_many`] one op at a time: apply in order and, at the first
/// failure, undo what was applied (newest first). An undo that fails, or a
/// change that cannot be undone, is added to the error's message.
pub async fn apply_each<B: Backend + ?Sized>(backend: &B, ops: &[Op]) -> Result<Vec<Applied>, BatchError> {
    let mut done: Vec<(&Op, Applied)> = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        match backend.apply(op).await {
            Ok(a) => done.push((op, a)),
            Err(mut error) => {
                let mut left = Vec::new();
                for (op, a) in done.iter().rev().filter(|(_, a)| a.changed) {
                    if !a.reversible {
                        left.push(format!("cannot undo: {op}"));
                        continue;
                    }
                    for u in &a.undo {
                        if let Err(e) = backend.apply(u).await {
                            left.push(format!("undoing '{op}' failed: {e}"));
                        }
                    }
                }
                if !left.is_empty() {
                    error.message =
                        format!("{} (and the batch is not fully undone: {})", error.message, left.join("; "));
                }
                return Err(BatchError { index, error });
            }
        }
    }
    Ok(done.into_iter().map(|(_, a)| a).collect())
}

/// Interface external_ids keys. The first two are ovs-docker's, so ports made
/// by either tool are found and removed by the other.
pub mod ext {
    /// What the user called the container (ovs-docker stores exactly this).
    pub const CONTAINER_ID: &str = "container_id";
    /// Interface name inside the container.
    pub const CONTAINER_IFACE: &str = "container_iface";
    /// The full 64-digit container id, so lookups by name and by id both match.
    pub const CONTAINER_FULL_ID: &str = "container_full_id";
    pub const CONTAINER_NAME: &str = "container_name";
    /// Named netns the port leads to (ovs-run only).
    pub const NETNS: &str = "netns";
    /// Marks ports that ovs-run created.
    pub const CREATED_BY: &str = "created_by";
}

/// The host-side veth / OVS port name for `ifname` inside `target`:
/// deterministic, so a re-run or a detach computes the same name, and at
/// most 15 bytes ("ovr" + 10 hex digits + "_l", like ovs-docker's `_l`).
pub fn host_port_name(target: &Target, ifname: &IfName) -> IfName {
    let key = match target {
        Target::Host => return ifname.clone(),
        Target::Netns { name } => format!("netns/{name}/{ifname}"),
        Target::Container { id, .. } => format!("container/{id}/{ifname}"),
    };
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    IfName::parse(&format!("ovr{}_l", &h[..10])).expect("generated name is valid")
}

/// The external_ids a port for `target`/`ifname` carries.
pub fn port_external_ids(target: &Target, ifname: &IfName) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    match target {
        Target::Host => return m,
        Target::Netns { name } => {
            m.insert(ext::NETNS.into(), name.to_string());
        }
        Target::Container { given, id, name, .. } => {
            m.insert(ext::CONTAINER_ID.into(), given.to_string());
            m.insert(ext::CONTAINER_FULL_ID.into(), id.clone());
            m.insert(ext::CONTAINER_NAME.into(), name.clone());
        }
    }
    m.insert(ext::CONTAINER_IFACE.into(), ifname.to_string());
    m.insert(ext::CREATED_BY.into(), "ovs-run".into());
    m
}

/// Who a port belongs to, for finding ports to remove. A container that no
/// longer exists is known only by the names the user gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortOwner {
    Host,
    Netns(String),
    /// A container as the user named it (`given`), with its full id and
    /// name when Docker knows it (`known`, None: the container is gone).
    Container {
        given: String,
        known: Option<(String, String)>,
    },
}

impl PortOwner {
    pub fn owns(&self, port: &PortInfo) -> bool {
        let ids = &port.external_ids;
        match self {
            PortOwner::Host => !ids.contains_key(ext::CONTAINER_IFACE),
            PortOwner::Netns(n) => ids.get(ext::NETNS) == Some(n),
            PortOwner::Container { given, known } => {
                let full_id = ids.get(ext::CONTAINER_FULL_ID).filter(|v| !v.is_empty());
                match (known, full_id) {
                    // ovs-run's port of a live container: the full id alone decides,
                    // so no name or id prefix can claim another container's port.
                    (Some((id, _)), Some(full_id)) => id == full_id,
                    // ovs-docker's port (no full id): what it stored, by any of the container's names.
                    (Some((id, name)), None) => {
                        ids.get(ext::CONTAINER_ID).is_some_and(|v| v == given || v == id || v == name)
                    }
                    // A container that is gone: by the name or id the user knew it by.
                    (None, _) => [ext::CONTAINER_ID, ext::CONTAINER_FULL_ID, ext::CONTAINER_NAME]
                        .iter()
                        .filter_map(|k| ids.get(*k))
                        .any(|v| v == given),
                }
            }
        }
    }
}

/// The port on `ports` that connects `owner`'s `ifname`, if any.
pub fn find_port<'a>(ports: &'a [PortInfo], owner: &PortOwner, ifname: &IfName) -> Option<&'a PortInfo> {
    ports.iter().find(|p| match owner {
        PortOwner::Host => p.name == ifname.as_str() && owner.owns(p),
        _ => owner.owns(p) && p.container_iface() == Some(ifname.as_str()),
    })
}
