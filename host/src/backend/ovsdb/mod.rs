//! Open vSwitch through OVSDB, on top of the `ovsdb-client` crate (the
//! RFC 7047 connection, values, operations and `Open_vSwitch` rows):
//! [`vswitch`] turns bridge and port changes into single `Open_vSwitch`
//! transactions and waits until ovs-vswitchd has applied them, as
//! `ovs-vsctl` does, without forking it. This module maps the crate's typed
//! errors onto [`CapError`] kinds.

pub mod vswitch;

use std::path::PathBuf;

pub use ovsdb_client::{Address as OvsdbUri, Connection, Notification, OpError};
pub use vswitch::{PortSpec, Vswitch};

use crate::error::CapError;
use ovsdb_client::{Error, OpErrorKind};

impl From<Error> for CapError {
    fn from(e: Error) -> CapError {
        match e {
            Error::InvalidAddress { .. } => CapError::invalid(e.to_string()),
            // ovsdb-server is not there: the system's fault (exit status 4), not the input's.
            Error::Connect { .. } => CapError::unavailable(e.to_string()),
            Error::Op(op) => op_error(&op),
            other => CapError::failed(other.to_string()),
        }
    }
}

/// A failed operation, when the caller has nothing more specific to say.
pub fn op_error(op: &OpError) -> CapError {
    let msg = op.to_string();
    if op.is_unique_index_violation() {
        CapError::exists(msg)
    } else if op.kind == OpErrorKind::TimedOut {
        // Only our timeout-0 wait ops time out: a row that should be there is not.
        CapError::not_found(msg)
    } else {
        CapError::failed(msg)
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
    use crate::error::ErrorKind;

    #[test]
    fn uri_errors_name_the_string_and_are_invalid_arguments() {
        for s in ["unix:", "tcp:1.2.3.4", "tcp::6640", "tcp:h:0", "tcp:h:x", "ssl:h:1", "ptcp:6640", "/x"] {
            let e = CapError::from(s.parse::<OvsdbUri>().unwrap_err());
            assert!(e.message.contains(s), "{e}");
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn op_errors_map_to_kinds() {
        let wait = OpError::new(0, "wait", "timed out", None);
        assert_eq!(CapError::from(Error::Op(wait)).kind, ErrorKind::NotFound);
        let dup =
            OpError::new(2, "commit", "constraint violation", Some("... identical values (p1) ...".into()));
        let e = CapError::from(Error::Op(dup));
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        assert!(e.message.contains("identical values (p1)"), "{e}");
        let other = OpError::new(1, "insert", "referential integrity violation", None);
        assert_eq!(CapError::from(Error::Op(other)).kind, ErrorKind::Failed);
    }
}
