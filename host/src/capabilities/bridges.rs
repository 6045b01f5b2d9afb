//! `ovs-run:net/bridges`: create, delete and list Open vSwitch bridges.

use super::ovs_run::net::bridges::{BridgeInfo, Datapath as WitDatapath, Host};
use super::{ifname, Caps, Trappable};
use crate::backend::Op;
use crate::types::Datapath;

impl Host for Caps {
    async fn create_bridge(
        &mut self,
        name: String,
        datapath: WitDatapath,
        may_exist: bool,
    ) -> Trappable<bool> {
        self.tick()?;
        let datapath = match datapath {
            WitDatapath::HostDefault => self.default_datapath,
            WitDatapath::System => Datapath::System,
            WitDatapath::Netdev => Datapath::Netdev,
        };
        let r = async {
            let name = ifname(&name)?;
            let applied = self.gate.apply(Op::CreateBridge { name, datapath, may_exist }).await?;
            Ok(applied.changed)
        };
        self.finish("create-bridge", r.await)
    }

    async fn delete_bridge(&mut self, name: String, if_exists: bool) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let name = ifname(&name)?;
            Ok(self.gate.apply(Op::DeleteBridge { name, if_exists }).await?.changed)
        };
        self.finish("delete-bridge", r.await)
    }

    async fn list_bridges(&mut self) -> Trappable<Vec<BridgeInfo>> {
        self.tick()?;
        let r = self.gate.list_bridges().await.map(|bs| {
            bs.into_iter()
                .map(|b| BridgeInfo { name: b.name, datapath_type: b.datapath_type, ports: b.ports })
                .collect()
        });
        self.finish("list-bridges", r)
    }
}
