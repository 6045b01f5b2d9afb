//! Open vSwitch bridges (WIT interface `bridges`).

use crate::bindings::ovs_run::net::bridges as wit;
use crate::Error;

pub use wit::{BridgeInfo, Datapath};

/// Creates `name` (with its internal port of the same name). Returns true when
/// it was created, false when it already existed and `may_exist` is set.
pub fn create(name: impl AsRef<str>, datapath: Datapath, may_exist: bool) -> Result<bool, Error> {
    Ok(wit::create_bridge(name.as_ref(), datapath, may_exist)?)
}

/// Deletes `name` and all its ports. Returns false when it did not exist and
/// `if_exists` is set.
pub fn delete(name: impl AsRef<str>, if_exists: bool) -> Result<bool, Error> {
    Ok(wit::delete_bridge(name.as_ref(), if_exists)?)
}

/// All bridges with their ports.
pub fn list() -> Result<Vec<BridgeInfo>, Error> {
    Ok(wit::list_bridges()?)
}
