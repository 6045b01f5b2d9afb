//! Typed network values, checked in the script before anything is sent to the
//! host: a bad argument fails early, with a message that names it, and before
//! any change is made. They are the host's own types (the `ovs-run-types`
//! crate), so both sides agree on what is valid by construction.
//!
//! Every type implements `FromStr` and `Display` in the notation the WIT
//! contract uses; a parse error converts into [`Error::Invalid`] with `?`.

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) use ovs_run_types::shorten;
pub use ovs_run_types::{parse_ip, Cidr, ContainerRef, IfName, InvalidValue, MacAddr, Mtu, VlanId};

use crate::Error;

/// A unicast Ethernet address (the host calls it `MacAddr`).
pub type Mac = MacAddr;

/// A Docker container name or (abbreviated) id (the host calls it `ContainerRef`).
pub type ContainerName = ContainerRef;

impl From<InvalidValue> for Error {
    fn from(e: InvalidValue) -> Self {
        Error::Invalid(e.0)
    }
}
