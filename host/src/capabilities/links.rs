//! `ovs-run:net/links`: addresses, MTU, MAC, link state, offloads and ARP inside a target.

use super::ovs_run::net::links::{Host, LinkInfo as WitLinkInfo, Offload as WitOffload};
use super::{ifname, target_ref, Caps, Trappable, WitTarget};
use crate::backend::Op;
use crate::error::CapResult;
use crate::types::{Cidr, IfName, MacAddr, Mtu, Offload, Target};

impl Caps {
    async fn link_target(&self, target: &WitTarget, name: &str) -> CapResult<(Target, IfName)> {
        let t = target_ref(target)?;
        let name = ifname(name)?;
        Ok((self.gate.resolve(&t).await?, name))
    }
}

impl Host for Caps {
    async fn set_address(&mut self, target: WitTarget, ifname: String, cidr: String) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let cidr = Cidr::parse(&cidr)?;
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            Ok(self.gate.apply(Op::AddAddress { target, ifname, cidr }).await?.changed)
        };
        self.finish("set-address", r.await)
    }

    async fn del_address(&mut self, target: WitTarget, ifname: String, cidr: String) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let cidr = Cidr::parse(&cidr)?;
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            Ok(self.gate.apply(Op::DelAddress { target, ifname, cidr }).await?.changed)
        };
        self.finish("del-address", r.await)
    }

    async fn set_mtu(&mut self, target: WitTarget, ifname: String, mtu: u32) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let mtu = Mtu::new(mtu)?;
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            self.gate.apply(Op::SetMtu { target, ifname, mtu }).await.map(drop)
        };
        self.finish("set-mtu", r.await)
    }

    async fn set_mac(&mut self, target: WitTarget, ifname: String, mac: String) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let mac = MacAddr::parse(&mac)?;
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            self.gate.apply(Op::SetMac { target, ifname, mac }).await.map(drop)
        };
        self.finish("set-mac", r.await)
    }

    async fn set_link_up(&mut self, target: WitTarget, ifname: String) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            self.gate.apply(Op::SetLinkState { target, ifname, up: true }).await.map(drop)
        };
        self.finish("set-link-up", r.await)
    }

    async fn set_link_down(&mut self, target: WitTarget, ifname: String) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            self.gate.apply(Op::SetLinkState { target, ifname, up: false }).await.map(drop)
        };
        self.finish("set-link-down", r.await)
    }

    async fn set_offload(
        &mut self,
        target: WitTarget,
        ifname: String,
        offload: WitOffload,
        on: bool,
    ) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let offload = match offload {
                WitOffload::TxChecksum => Offload::TxChecksum,
            };
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            self.gate.apply(Op::SetOffload { target, ifname, offload, on }).await.map(drop)
        };
        self.finish("set-offload", r.await)
    }

    async fn set_arp(&mut self, target: WitTarget, ifname: String, on: bool) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let (target, ifname) = self.link_target(&target, &ifname).await?;
            Ok(self.gate.apply(Op::SetArp { target, ifname, on }).await?.changed)
        };
        self.finish("set-arp", r.await)
    }

    async fn list_links(&mut self, target: WitTarget, name: Option<String>) -> Trappable<Vec<WitLinkInfo>> {
        self.tick()?;
        let r = async {
            let name = name.as_deref().map(ifname).transpose()?;
            let target = self.gate.resolve(&target_ref(&target)?).await?;
            let links = self.gate.list_links(&target, name.as_ref()).await?;
            Ok(links
                .into_iter()
                .map(|l| WitLinkInfo {
                    name: l.name,
                    mtu: l.mtu,
                    mac: l.mac.map(|m| m.to_string()).unwrap_or_default(),
                    up: l.up,
                    addresses: l.addresses.iter().map(|a| a.to_string()).collect(),
                })
                .collect())
        };
        self.finish("list-links", r.await)
    }
}
