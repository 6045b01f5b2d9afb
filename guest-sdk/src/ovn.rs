//! OVN logical networks (WIT interface `ovn`): logical switches, their ports
//! and logical routers in the northbound database the host is pointed at
//! (`ovs-run --ovn-nb`). To put a container on a logical port, create the
//! port here, then attach the container with
//! [`PortOptions::iface_id`](crate::PortOptions::iface_id) on `br-int`.

use crate::bindings::ovs_run::net::ovn as wit;
use crate::net::{Mac, Mtu};
use crate::Error;

pub use wit::{RouterInfo, RouterPortInfo, SwitchInfo, SwitchOptions, SwitchPortInfo};

/// Inner MTU of a container on OVN's Geneve overlay over a 1500-byte
/// underlay: 58 bytes of Geneve, UDP, IP and OVN's option go on top.
pub const GENEVE_MTU: u32 = 1442;

impl SwitchOptions {
    /// No subnet, no MTU.
    pub fn new() -> Self {
        SwitchOptions { subnet: None, mtu: None }
    }

    /// other_config:subnet, from which ovn-northd assigns "dynamic" addresses.
    pub fn subnet(mut self, cidr: impl Into<String>) -> Self {
        self.subnet = Some(cidr.into());
        self
    }

    pub fn mtu(mut self, mtu: impl Into<Option<Mtu>>) -> Self {
        self.mtu = mtu.into().map(Mtu::get);
        self
    }
}

impl Default for SwitchOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates logical switch `name`.
pub fn create_switch(name: &str, options: &SwitchOptions) -> Result<(), Error> {
    Ok(wit::create_switch(name, options)?)
}

/// Deletes logical switch `name` and its ports; false when there was none.
pub fn delete_switch(name: &str) -> Result<bool, Error> {
    Ok(wit::delete_switch(name)?)
}

/// Every logical switch the script may see, with its ports.
pub fn list_switches() -> Result<Vec<SwitchInfo>, Error> {
    Ok(wit::list_switches()?)
}

/// The "MAC IP" entry of an address list or port security list.
pub fn mac_ip(mac: Mac, ip: impl std::fmt::Display) -> String {
    format!("{mac} {ip}")
}

/// Adds logical port `name` to `switch` with `addresses` ("MAC IP...",
/// "dynamic", "unknown") and `port_security` ("MAC IP..."; empty: none).
pub fn add_switch_port(
    switch: &str,
    name: &str,
    addresses: &[String],
    port_security: &[String],
) -> Result<(), Error> {
    Ok(wit::add_switch_port(switch, name, addresses, port_security)?)
}

/// Removes logical port `name` of `switch`; false when there was none.
pub fn del_switch_port(switch: &str, name: &str) -> Result<bool, Error> {
    Ok(wit::del_switch_port(switch, name)?)
}

pub fn create_router(name: &str) -> Result<(), Error> {
    Ok(wit::create_router(name)?)
}

/// Deletes a router that has no ports; false when there was none.
pub fn delete_router(name: &str) -> Result<bool, Error> {
    Ok(wit::delete_router(name)?)
}

/// Joins `router` to `switch` through router port `name` (`mac`, `networks`
/// such as "10.0.1.1/24": the router's address on the switch's subnet).
pub fn add_router_port(
    router: &str,
    switch: &str,
    name: &str,
    mac: Mac,
    networks: &[String],
) -> Result<(), Error> {
    Ok(wit::add_router_port(router, switch, name, &mac.to_string(), networks)?)
}

/// Removes router port `name` (and its switch port); false when there was none.
pub fn del_router_port(router: &str, name: &str) -> Result<bool, Error> {
    Ok(wit::del_router_port(router, name)?)
}

pub fn list_routers() -> Result<Vec<RouterInfo>, Error> {
    Ok(wit::list_routers()?)
}

/// A locally administered unicast MAC derived from a logical port's name
/// (FNV-1a), so re-running with the same port gives the same address.
pub fn port_mac(port: &str) -> Mac {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in port.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    Mac::parse(&format!("0a:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4]))
        .expect("valid MAC")
}
