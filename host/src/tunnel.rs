//! Tunnel ports (GRE, VXLAN, Geneve): their kind and settings, parsed once
//! from what a script or OVSDB hands over, with errors naming the bad value,
//! and their form in the `Open_vSwitch` database (`Interface.type`,
//! `Interface.options`, `Port.protected`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::{CapError, CapResult};
use crate::types::IfName;

/// The encapsulation, as OVS names it in `Interface.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelKind {
    Gre,
    Vxlan,
    Geneve,
}

impl TunnelKind {
    pub const ALL: [TunnelKind; 3] = [TunnelKind::Gre, TunnelKind::Vxlan, TunnelKind::Geneve];

    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }

    /// `Interface.type` -> kind; None for any other interface type.
    pub fn from_ovs(t: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == t)
    }

    /// The largest key: VXLAN and Geneve carry a 24-bit VNI, GRE a 32-bit key.
    pub fn max_key(self) -> u32 {
        match self {
            TunnelKind::Gre => u32::MAX,
            TunnelKind::Vxlan | TunnelKind::Geneve => (1 << 24) - 1,
        }
    }

    /// Bytes the encapsulation adds to an Ethernet frame on an IPv4
    /// underlay: the inner MTU is the underlay's minus this.
    pub fn overhead(self) -> u32 {
        match self {
            TunnelKind::Gre => 38,
            TunnelKind::Vxlan | TunnelKind::Geneve => 50,
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TunnelKind {
    type Err = CapError;
    fn from_str(s: &str) -> CapResult<Self> {
        Self::from_ovs(s).ok_or_else(|| {
            CapError::invalid(format!(
                "tunnel kind '{}' is not one of gre, vxlan, geneve",
                crate::types::shorten(s)
            ))
        })
    }
}

/// A tunnel port as asked for: everything checked, so OVSDB never sees a
/// value ovs-vswitchd would refuse after the commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSpec {
    pub name: IfName,
    pub kind: TunnelKind,
    pub remote_ip: IpAddr,
    /// GRE key or VXLAN/Geneve VNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// Not protected: forwards to and from the bridge's other tunnels.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transit: bool,
}

/// The settings of a tunnel besides name, kind and remote, unchecked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelOptions {
    pub key: Option<u32>,
    pub local_ip: Option<String>,
    pub dst_port: Option<u16>,
    pub ttl: Option<u8>,
    pub tos: Option<u8>,
    pub transit: bool,
}

/// An address a tunnel can reach: not unspecified, multicast or broadcast.
fn endpoint(what: &str, s: &str) -> CapResult<IpAddr> {
    let ip = crate::types::parse_ip(s).map_err(|e| CapError::invalid(format!("{what}: {e}")))?;
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(CapError::invalid(format!(
            "{what} {ip} is not a unicast address a tunnel can be sent to"
        )));
    }
    Ok(ip)
}

impl TunnelSpec {
    /// Check a request; the error names the bad value.
    pub fn new(name: IfName, kind: TunnelKind, remote_ip: &str, o: &TunnelOptions) -> CapResult<Self> {
        let remote_ip = endpoint("remote-ip", remote_ip)?;
        if let Some(k) = o.key {
            if k > kind.max_key() {
                return Err(CapError::invalid(format!(
                    "key {k} is out of range for {kind}: its VNI is 24 bits (0-{})",
                    kind.max_key()
                )));
            }
        }
        let local_ip = o.local_ip.as_deref().map(|s| endpoint("local-ip", s)).transpose()?;
        if let Some(l) = local_ip {
            if l.is_ipv4() != remote_ip.is_ipv4() {
                return Err(CapError::invalid(format!(
                    "local-ip {l} and remote-ip {remote_ip} are not of the same address family"
                )));
            }
        }
        match o.dst_port {
            Some(0) => return Err(CapError::invalid("dst-port 0 is not a port (1-65535)")),
            Some(p) if kind == TunnelKind::Gre => {
                return Err(CapError::invalid(format!("dst-port {p}: a gre tunnel has no UDP port")))
            }
            _ => {}
        }
        if o.ttl == Some(0) {
            return Err(CapError::invalid("ttl 0 is out of range (1-255)"));
        }
        Ok(Self {
            name,
            kind,
            remote_ip,
            key: o.key,
            local_ip,
            dst_port: o.dst_port,
            ttl: o.ttl,
            tos: o.tos,
            transit: o.transit,
        })
    }

    /// `Interface.options` for this tunnel.
    pub fn ovs_options(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("remote_ip".into(), self.remote_ip.to_string());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("key", self.key.map(|k| k.to_string()));
        put("local_ip", self.local_ip.map(|v| v.to_string()));
        put("dst_port", self.dst_port.map(|v| v.to_string()));
        put("ttl", self.ttl.map(|v| v.to_string()));
        put("tos", self.tos.map(|v| v.to_string()));
        m
    }

    /// A tunnel as OVSDB holds it. None when the interface is not a tunnel
    /// of ours to describe: another type, or options this model does not
    /// have (`remote_ip=flow`, `key=flow`, ...), which are then left alone.
    pub fn from_ovs(
        name: &str,
        iface_type: &str,
        options: &BTreeMap<String, String>,
        protected: bool,
    ) -> Option<Self> {
        let kind = TunnelKind::from_ovs(iface_type)?;
        Some(Self {
            name: IfName::parse(name).ok()?,
            kind,
            remote_ip: options.get("remote_ip")?.parse().ok()?,
            key: option(options, "key")?,
            local_ip: option(options, "local_ip")?,
            dst_port: option(options, "dst_port")?,
            ttl: option(options, "ttl")?,
            tos: option(options, "tos")?,
            transit: !protected,
        })
    }
}

/// An optional option: absent is `Some(None)`; present but not a `T`
/// (`flow`, `inherit`) is None.
fn option<T: std::str::FromStr>(options: &BTreeMap<String, String>, key: &str) -> Option<Option<T>> {
    match options.get(key) {
        None => Some(None),
        Some(v) => v.parse().ok().map(Some),
    }
}

impl fmt::Display for TunnelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tunnel {} to {}", self.kind, self.name, self.remote_ip)?;
        if let Some(k) = self.key {
            write!(f, ", key {k}")?;
        }
        if let Some(l) = self.local_ip {
            write!(f, ", local {l}")?;
        }
        if let Some(p) = self.dst_port {
            write!(f, ", dst-port {p}")?;
        }
        if let Some(t) = self.ttl {
            write!(f, ", ttl {t}")?;
        }
        if let Some(t) = self.tos {
            write!(f, ", tos {t}")?;
        }
        if self.transit {
            write!(f, ", transit")?;
        }
        Ok(())
    }
}

/// A tunnel port on a bridge, as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelInfo {
    pub spec: TunnelSpec,
    pub bridge: String,
    pub ofport: Option<i32>,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> IfName {
        IfName::parse("vx1").unwrap()
    }

    #[test]
    fn bad_values_are_named() {
        let o = TunnelOptions::default();
        let e = "gree".parse::<TunnelKind>().unwrap_err();
        assert!(e.message.contains("'gree'"), "{e}");
        let e = TunnelSpec::new(name(), TunnelKind::Vxlan, "10.0.0.300", &o).unwrap_err();
        assert!(e.message.contains("10.0.0.300"), "{e}");
        let e = TunnelSpec::new(name(), TunnelKind::Vxlan, "0.0.0.0", &o).unwrap_err();
        assert!(e.message.contains("0.0.0.0"), "{e}");
        let big = TunnelOptions { key: Some(1 << 24), ..Default::default() };
        let e = TunnelSpec::new(name(), TunnelKind::Geneve, "10.0.0.1", &big).unwrap_err();
        assert!(e.message.contains("16777216"), "{e}");
        assert!(TunnelSpec::new(name(), TunnelKind::Gre, "10.0.0.1", &big).is_ok());
        let mixed = TunnelOptions { local_ip: Some("fd00::1".into()), ..Default::default() };
        let e = TunnelSpec::new(name(), TunnelKind::Gre, "10.0.0.1", &mixed).unwrap_err();
        assert!(e.message.contains("fd00::1"), "{e}");
        let port = TunnelOptions { dst_port: Some(4789), ..Default::default() };
        assert!(TunnelSpec::new(name(), TunnelKind::Gre, "10.0.0.1", &port).is_err());
    }

    #[test]
    fn ovsdb_round_trip() {
        let o = TunnelOptions {
            key: Some(42),
            local_ip: Some("fd00::2".into()),
            dst_port: Some(6081),
            ttl: Some(64),
            tos: Some(0),
            transit: false,
        };
        let s = TunnelSpec::new(name(), TunnelKind::Geneve, "fd00::1", &o).unwrap();
        let opts = s.ovs_options();
        assert_eq!(opts["remote_ip"], "fd00::1");
        assert_eq!(opts["key"], "42");
        assert_eq!(TunnelSpec::from_ovs("vx1", "geneve", &opts, true), Some(s.clone()));
        let mut flow = opts.clone();
        flow.insert("key".into(), "flow".into());
        assert_eq!(TunnelSpec::from_ovs("vx1", "geneve", &flow, true), None);
        assert_eq!(TunnelSpec::from_ovs("vx1", "internal", &opts, true), None);
    }
}
