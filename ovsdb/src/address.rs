//! Where an OVSDB server listens, in the `unix:PATH` / `tcp:HOST:PORT`
//! syntax that `ovs-vsctl --db` and `ovsdb-client` use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{shorten, Error};

/// An address to connect to (`punix:`/`ptcp:` are listening addresses and
/// refused; `ssl:` is not supported).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    Unix(PathBuf),
    /// `host:port`; an IPv6 host is bracketed (`[::1]:6640`).
    Tcp(String),
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &'static str| Error::InvalidAddress { address: shorten(s), why };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("has an empty path"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:") {
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("has no port"))?;
            if host.is_empty() {
                return Err(bad("has no host"));
            }
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad("has an invalid port"));
            }
            return Ok(Address::Tcp(addr.to_string()));
        }
        if s.starts_with("punix:") || s.starts_with("ptcp:") {
            return Err(bad("is a listening address, not one to connect to"));
        }
        Err(bad("has an unsupported scheme"))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in ["unix:/run/openvswitch/db.sock", "tcp:127.0.0.1:6640", "tcp:[::1]:6640"] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert_eq!("unix:/x/db.sock".parse::<Address>().unwrap(), Address::Unix("/x/db.sock".into()));
    }

    #[test]
    fn errors_name_the_string() {
        for s in ["unix:", "tcp:1.2.3.4", "tcp::6640", "tcp:h:0", "tcp:h:x", "ssl:h:1", "ptcp:6640", "/x"] {
            let e = s.parse::<Address>().unwrap_err();
            assert!(matches!(e, Error::InvalidAddress { .. }), "{e:?}");
            assert!(e.to_string().contains(s), "{e}");
        }
    }
}
