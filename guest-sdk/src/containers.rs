//! Docker containers (WIT interface `containers`).

use crate::bindings::ovs_run::net::containers as wit;
use crate::bindings::Pair;
use crate::Error;

pub use wit::ContainerInfo;

/// Finds a container by name or (abbreviated) id; `not-found` when Docker does
/// not know it.
pub fn lookup(name_or_id: impl AsRef<str>) -> Result<ContainerInfo, Error> {
    Ok(wit::lookup(name_or_id.as_ref())?)
}

/// Running containers carrying every one of `labels` (key, value).
pub fn list_by_label(labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>, Error> {
    let labels: Vec<Pair> =
        labels.iter().map(|(key, value)| Pair { key: key.to_string(), value: value.to_string() }).collect();
    Ok(wit::list_by_label(&labels)?)
}
