//! `ovs-run:net/containers`: find Docker containers.

use super::ovs_run::net::containers::{ContainerInfo as WitContainer, Host};
use super::{limits, pairs, Caps, Pair, Trappable};
use crate::error::CapResult;
use crate::types::{ContainerInfo, ContainerRef};

fn to_wit(c: ContainerInfo) -> WitContainer {
    WitContainer { labels: pairs(&c.labels), id: c.id, name: c.name, pid: c.pid, running: c.running }
}

impl Host for Caps {
    async fn lookup(&mut self, name_or_id: String) -> Trappable<WitContainer> {
        self.tick()?;
        let r = async {
            let name = ContainerRef::parse(&name_or_id)?;
            Ok(to_wit(self.gate.lookup_container(&name).await?))
        };
        self.finish("lookup", r.await)
    }

    async fn list_by_label(&mut self, labels: Vec<Pair>) -> Trappable<Vec<WitContainer>> {
        self.tick()?;
        let r = async {
            let labels = checked_labels(labels)?;
            Ok(self.gate.list_containers(&labels).await?.into_iter().map(to_wit).collect())
        };
        self.finish("list-by-label", r.await)
    }
}

/// The label filter, each list and string within its limit (they reach
/// Docker's query, the policy and the audit line).
fn checked_labels(labels: Vec<Pair>) -> CapResult<Vec<(String, String)>> {
    limits::list("labels", labels.len(), limits::MAX_LABELS)?;
    for (i, p) in labels.iter().enumerate() {
        limits::string(&format!("labels[{i}].key"), &p.key, limits::MAX_LABEL_BYTES)?;
        limits::string(&format!("labels[{i}].value"), &p.value, limits::MAX_LABEL_BYTES)?;
    }
    Ok(labels.into_iter().map(|p| (p.key, p.value)).collect())
}
