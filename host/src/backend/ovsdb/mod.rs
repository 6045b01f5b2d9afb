//! A native OVSDB client: [`jsonrpc`] speaks RFC 7047 JSON-RPC over a Unix
//! or TCP socket, [`vswitch`] turns bridge and port changes into single
//! `Open_vSwitch` transactions and waits until ovs-vswitchd has applied them,
//! as `ovs-vsctl` does, without forking it.

pub mod jsonrpc;
pub mod vswitch;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use jsonrpc::{Connection, Notification, OpError};
pub use vswitch::{PortSpec, Vswitch};

use crate::error::CapError;
use crate::types::shorten;

/// Where ovsdb-server listens, in ovs-vsctl's `--db` syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OvsdbUri {
    Unix(PathBuf),
    /// `host:port`; an IPv6 host is bracketed (`[::1]:6640`).
    Tcp(String),
}

impl FromStr for OvsdbUri {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, CapError> {
        let bad = |why: &str| {
            CapError::invalid(format!(
                "OVSDB address '{}' {why} (expected unix:PATH or tcp:HOST:PORT)",
                shorten(s)
            ))
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("has an empty path"));
            }
            return Ok(OvsdbUri::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
            if host.is_empty() {
                return Err(bad("has no host"));
            }
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad("has an invalid port"));
            }
            return Ok(OvsdbUri::Tcp(addr.to_string()));
        }
        if s.starts_with("punix:") || s.starts_with("ptcp:") {
            return Err(bad("is a listening address, not one to connect to"));
        }
        Err(bad("has an unsupported scheme"))
    }
}

impl fmt::Display for OvsdbUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OvsdbUri::Unix(p) => write!(f, "unix:{}", p.display()),
            OvsdbUri::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// The database ovs-vsctl uses when given no `--db`.
pub fn default_uri() -> OvsdbUri {
    let rundir = std::env::var_os("OVS_RUNDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"));
    OvsdbUri::Unix(rundir.join("db.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip() {
        for s in ["unix:/run/openvswitch/db.sock", "tcp:127.0.0.1:6640", "tcp:[::1]:6640"] {
            let u: OvsdbUri = s.parse().unwrap();
            assert_eq!(u.to_string(), s);
        }
        assert_eq!("unix:/x/db.sock".parse::<OvsdbUri>().unwrap(), OvsdbUri::Unix("/x/db.sock".into()));
    }

    #[test]
    fn uri_errors_name_the_string() {
        for s in ["unix:", "tcp:1.2.3.4", "tcp::6640", "tcp:h:0", "tcp:h:x", "ssl:h:1", "ptcp:6640", "/x"] {
            let e = s.parse::<OvsdbUri>().unwrap_err();
            assert!(e.message.contains(s), "{e}");
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidArgument);
        }
    }
}
