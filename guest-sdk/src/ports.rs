//! Ports on bridges (WIT interface `ports`): a veth pair per container or
//! netns interface, and a [`PortOptions`] builder for the optional settings.

use crate::bindings::ovs_run::net::ports as wit;
use crate::net::{Cidr, IpAddr, Mac, Mtu, VlanId};
use crate::{Error, Target};

pub use wit::{AttachRequest, PortInfo, PortOptions, PortRef, PortRequest};

impl PortInfo {
    /// Whether this port is container `found`'s (looked up by the name or
    /// id `given`), by the external ids ovs-run and ovs-docker set:
    /// ovs-docker records the name it was given, ovs-run the full id too.
    pub fn belongs_to(&self, given: &str, found: &crate::containers::ContainerInfo) -> bool {
        let id = |k: &str| self.external_ids.iter().find(|e| e.key == k).map(|e| e.value.as_str());
        match (id("container_full_id"), id("container_id")) {
            (Some(full), _) => full == found.id,
            (None, Some(g)) => g == given || g == found.name || (g.len() >= 4 && found.id.starts_with(g)),
            (None, None) => false,
        }
    }
}

impl PortOptions {
    /// No MTU, MAC or VLAN set; trunk list empty (all VLANs, as OVS does).
    pub fn new() -> Self {
        PortOptions { mtu: None, mac: None, vlan: None, trunks: Vec::new(), iface_id: None }
    }

    /// MTU of both veth ends. Takes `Mtu` or `Option<Mtu>` (none: leave default).
    pub fn mtu(mut self, mtu: impl Into<Option<Mtu>>) -> Self {
        self.mtu = mtu.into().map(Mtu::get);
        self
    }

    /// MAC address of the inner end. Takes `Mac` or `Option<Mac>`.
    pub fn mac(mut self, mac: impl Into<Option<Mac>>) -> Self {
        self.mac = mac.into().map(|m| m.to_string());
        self
    }

    /// Access VLAN tag. Takes `VlanId` or `Option<VlanId>`.
    pub fn vlan(mut self, vlan: impl Into<Option<VlanId>>) -> Self {
        self.vlan = vlan.into().map(VlanId::get);
        self
    }

    /// Bind the port to OVN logical switch port `lsp` (Interface
    /// external_ids:iface-id): add-port then returns only once this host's
    /// ovn-controller has installed it, so traffic flows.
    pub fn iface_id(mut self, lsp: impl Into<Option<String>>) -> Self {
        self.iface_id = lsp.into();
        self
    }

    /// Trunk VLANs (empty: all).
    pub fn trunks(mut self, trunks: impl IntoIterator<Item = VlanId>) -> Self {
        self.trunks = trunks.into_iter().map(VlanId::get).collect();
        self
    }
}

impl Default for PortOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Attaches `target` to `bridge` through an interface `ifname` inside it.
/// For [`Target::host()`], `ifname` is an existing host interface.
pub fn add(
    bridge: impl AsRef<str>,
    target: &Target,
    ifname: impl AsRef<str>,
    options: &PortOptions,
) -> Result<PortInfo, Error> {
    Ok(wit::add_port(bridge.as_ref(), target, ifname.as_ref(), options)?)
}

impl PortRequest {
    /// One port for [`add_many`]: `target`'s `ifname`, with `options`.
    pub fn new(target: Target, ifname: impl Into<String>, options: PortOptions) -> Self {
        PortRequest { target, ifname: ifname.into(), options }
    }
}

impl AttachRequest {
    /// One container for [`attach_many`]: its port, with no address yet.
    pub fn new(port: PortRequest) -> Self {
        AttachRequest { port, addresses: Vec::new(), gateway: None }
    }

    /// An address for the inner end. Takes `Cidr` or `Option<Cidr>`.
    pub fn address(mut self, cidr: impl Into<Option<Cidr>>) -> Self {
        self.addresses.extend(cidr.into().map(|c| c.to_string()));
        self
    }

    /// The default gateway, through the inner end; it must lie in the subnet
    /// of one of the addresses. Takes `IpAddr` or `Option<IpAddr>`.
    pub fn gateway(mut self, gateway: impl Into<Option<IpAddr>>) -> Self {
        self.gateway = gateway.into().map(|g| g.to_string());
        self
    }
}

impl PortRef {
    /// One port for [`del_many`]: the one connecting `target`'s `ifname`.
    pub fn new(target: Target, ifname: impl Into<String>) -> Self {
        PortRef { target, ifname: ifname.into() }
    }
}

/// Attaches many targets to `bridge` at once, all or none; the ports come
/// back in the order requested. Much faster than [`add`] in a loop: the veth
/// pairs are made concurrently, the OVS ports in one transaction, and
/// ovs-vswitchd reconfigures once instead of once per port. On error nothing
/// of the batch is left, and the message names the request that failed.
pub fn add_many(bridge: impl AsRef<str>, requests: &[PortRequest]) -> Result<Vec<PortInfo>, Error> {
    Ok(wit::add_ports(bridge.as_ref(), requests)?)
}

/// [`add_many`] for containers and netns that also gives each inner end its
/// addresses and default route, set while its veth is made: no call of
/// their own, and no second entry into each namespace. All or none.
pub fn attach_many(bridge: impl AsRef<str>, requests: &[AttachRequest]) -> Result<Vec<PortInfo>, Error> {
    Ok(wit::attach_ports(bridge.as_ref(), requests)?)
}

/// [`add`] that also gives the inner end its addresses and default route,
/// set while the veth is made: one call and one OVS transaction where add,
/// set-address and set-route would be three (attach-ports with one
/// request). All or none; the policy judges each address and the route as
/// if set on their own.
pub fn attach(bridge: impl AsRef<str>, request: AttachRequest) -> Result<PortInfo, Error> {
    let mut ports = wit::attach_ports(bridge.as_ref(), std::slice::from_ref(&request))?;
    ports.pop().ok_or_else(|| Error::msg("attach-ports answered no port for its one request"))
}

/// [`del`] for many ports at once (one OVS transaction); per port, false when
/// there was nothing to remove.
pub fn del_many(bridge: impl AsRef<str>, ports: &[PortRef]) -> Result<Vec<bool>, Error> {
    Ok(wit::remove_ports(bridge.as_ref(), ports)?)
}

/// Removes the port connecting `target`'s `ifname` to `bridge`; false when
/// there was none. A container that no longer exists is not an error.
pub fn del(bridge: impl AsRef<str>, target: &Target, ifname: impl AsRef<str>) -> Result<bool, Error> {
    Ok(wit::del_port(bridge.as_ref(), target, ifname.as_ref())?)
}

/// Removes every port of `container` on `bridge`; returns how many.
pub fn del_all(bridge: impl AsRef<str>, container: impl AsRef<str>) -> Result<u32, Error> {
    Ok(wit::del_ports(bridge.as_ref(), container.as_ref())?)
}

/// Sets (some) or clears (none) the access VLAN of `target`'s `ifname` port.
pub fn set_vlan(
    bridge: impl AsRef<str>,
    target: &Target,
    ifname: impl AsRef<str>,
    vlan: Option<VlanId>,
) -> Result<(), Error> {
    Ok(wit::set_vlan(bridge.as_ref(), target, ifname.as_ref(), vlan.map(VlanId::get))?)
}

/// The ports of `bridge`.
pub fn list(bridge: impl AsRef<str>) -> Result<Vec<PortInfo>, Error> {
    Ok(wit::list_ports(bridge.as_ref())?)
}

pub use wit::OverlayMtu;

/// `bridge`'s inner MTU: what a port on it needs so that its frames still
/// fit the underlay once encapsulated (tunnel ports: the route's link MTU
/// minus 50 for VXLAN/Geneve, 38 for GRE; OVN's integration bridge: minus
/// 58), with the reason. None: the bridge has no overlay.
pub fn inner_mtu(bridge: impl AsRef<str>) -> Result<Option<OverlayMtu>, Error> {
    Ok(wit::inner_mtu(bridge.as_ref())?)
}

/// The MTU to give a new port on `bridge`: `given` when the user gave one,
/// else the bridge's inner MTU ([`inner_mtu`]; None: no overlay, the
/// kernel's default). Says which, and why, at info level (`ovs-run -v`).
pub fn mtu_for(bridge: impl AsRef<str>, given: Option<Mtu>) -> Result<Option<Mtu>, Error> {
    let bridge = bridge.as_ref();
    if let Some(m) = given {
        crate::info!("MTU {m}, as given");
        return Ok(Some(m));
    }
    let found = inner_mtu(bridge)
        .map_err(|e| e.context(format_args!("the inner MTU of bridge {bridge} (give --mtu to skip)")))?;
    match found {
        Some(o) => {
            let m = Mtu::new(o.mtu).map_err(|e| {
                Error::msg(format!(
                    "bridge {bridge}: inner MTU {} ({}) is unusable: {}",
                    o.mtu, o.reason, e.0
                ))
            })?;
            crate::info!("MTU {m}, bridge {bridge}'s inner MTU: {}", o.reason);
            Ok(Some(m))
        }
        None => {
            crate::info!("bridge {bridge} has no overlay: MTU left at the kernel's default");
            Ok(None)
        }
    }
}
