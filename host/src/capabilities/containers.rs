//! `ovs-run:net/containers`: find Docker containers.

use super::ovs_run::net::containers::{ContainerInfo as WitContainer, Host};
use super::{pairs, wit, Caps, Pair, Trappable};
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
        wit(r.await)
    }

    async fn list_by_label(&mut self, labels: Vec<Pair>) -> Trappable<Vec<WitContainer>> {
        self.tick()?;
        let labels: Vec<(String, String)> = labels.into_iter().map(|p| (p.key, p.value)).collect();
        wit(self.gate.list_containers(&labels).await.map(|v| v.into_iter().map(to_wit).collect()))
    }
}
