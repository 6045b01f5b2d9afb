//! Tunnel ports to other hosts (WIT interface `tunnels`): GRE, VXLAN and
//! Geneve, with split horizon (protected ports) unless a tunnel is transit.

use std::fmt;
use std::str::FromStr;

use crate::bindings::ovs_run::net::tunnels as wit;
use crate::net::IpAddr;
use crate::Error;

pub use wit::{TunnelInfo, TunnelKind, TunnelOptions};

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TunnelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "gre" => Ok(TunnelKind::Gre),
            "vxlan" => Ok(TunnelKind::Vxlan),
            "geneve" => Ok(TunnelKind::Geneve),
            _ => Err(Error::invalid(format!("tunnel kind '{s}' is not one of gre, vxlan, geneve"))),
        }
    }
}

// The WIT bindings define the type: a derive cannot be added to it here.
#[allow(clippy::derivable_impls)]
impl Default for TunnelOptions {
    fn default() -> Self {
        TunnelOptions { key: None, local_ip: None, dst_port: None, ttl: None, tos: None, transit: false }
    }
}

impl TunnelOptions {
    pub fn new() -> Self {
        Self::default()
    }
    /// GRE key or VXLAN/Geneve VNI.
    pub fn key(mut self, key: Option<u32>) -> Self {
        self.key = key;
        self
    }
    pub fn local_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.local_ip = ip.map(|i| i.to_string());
        self
    }
    pub fn dst_port(mut self, port: Option<u16>) -> Self {
        self.dst_port = port;
        self
    }
    pub fn transit(mut self, transit: bool) -> Self {
        self.transit = transit;
        self
    }
}

/// Adds tunnel port `name` on `bridge` to `remote`.
pub fn add(
    bridge: impl AsRef<str>,
    name: impl AsRef<str>,
    kind: TunnelKind,
    remote: IpAddr,
    options: &TunnelOptions,
) -> Result<TunnelInfo, Error> {
    Ok(wit::add_tunnel(bridge.as_ref(), name.as_ref(), kind, &remote.to_string(), options)?)
}

/// Removes tunnel port `name` from `bridge`; false when there was none.
pub fn remove(bridge: impl AsRef<str>, name: impl AsRef<str>) -> Result<bool, Error> {
    Ok(wit::remove_tunnel(bridge.as_ref(), name.as_ref())?)
}

/// The tunnel ports of `bridge`.
pub fn list(bridge: impl AsRef<str>) -> Result<Vec<TunnelInfo>, Error> {
    Ok(wit::list_tunnels(bridge.as_ref())?)
}
