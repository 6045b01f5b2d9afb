//! Links and their addresses inside a target (WIT interface `links`).

use crate::bindings::ovs_run::net::links as wit;
use crate::net::{Cidr, Mac, Mtu};
use crate::{Error, Target};

pub use wit::{LinkInfo, Offload};

/// Adds `cidr` to `ifname`; false when it was already there.
pub fn set_address(target: &Target, ifname: impl AsRef<str>, cidr: &Cidr) -> Result<bool, Error> {
    Ok(wit::set_address(target, ifname.as_ref(), &cidr.to_string())?)
}

/// Removes `cidr` from `ifname`; false when it was not there.
pub fn del_address(target: &Target, ifname: impl AsRef<str>, cidr: &Cidr) -> Result<bool, Error> {
    Ok(wit::del_address(target, ifname.as_ref(), &cidr.to_string())?)
}

pub fn set_mtu(target: &Target, ifname: impl AsRef<str>, mtu: Mtu) -> Result<(), Error> {
    Ok(wit::set_mtu(target, ifname.as_ref(), mtu.get())?)
}

pub fn set_mac(target: &Target, ifname: impl AsRef<str>, mac: Mac) -> Result<(), Error> {
    Ok(wit::set_mac(target, ifname.as_ref(), &mac.to_string())?)
}

pub fn set_up(target: &Target, ifname: impl AsRef<str>) -> Result<(), Error> {
    Ok(wit::set_link_up(target, ifname.as_ref())?)
}

pub fn set_down(target: &Target, ifname: impl AsRef<str>) -> Result<(), Error> {
    Ok(wit::set_link_down(target, ifname.as_ref())?)
}

/// Turns an offload of `ifname` on or off (`ethtool -K`). add-port already
/// turns TX checksum offload off where the userspace datapath needs it; this
/// is for links the script did not create.
pub fn set_offload(
    target: &Target,
    ifname: impl AsRef<str>,
    offload: Offload,
    on: bool,
) -> Result<(), Error> {
    Ok(wit::set_offload(target, ifname.as_ref(), offload, on)?)
}

/// Turns ARP on or off on `ifname` (`ip link set IFNAME arp on|off`); false
/// when it already was so. A NIC whose address moved to the internal port of
/// the userspace-datapath bridge it is a port of needs it off.
pub fn set_arp(target: &Target, ifname: impl AsRef<str>, on: bool) -> Result<bool, Error> {
    Ok(wit::set_arp(target, ifname.as_ref(), on)?)
}

/// Links of `target` with their addresses; `ifname` narrows to one link.
pub fn list(target: &Target, ifname: Option<&str>) -> Result<Vec<LinkInfo>, Error> {
    Ok(wit::list_links(target, ifname)?)
}
