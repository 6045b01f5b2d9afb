//! `ovs-run:net/ports`: attach targets to bridges and detach them.

use super::ovs_run::net::ports::{Host, PortInfo as WitPortInfo, PortOptions};
use super::{ifname, target_ref, wit, Caps, Pair, Trappable, WitTarget};
use crate::backend::{find_port, host_port_name, Op, PortInfo, PortOwner};
use crate::error::{CapError, CapResult};
use crate::types::{ContainerRef, MacAddr, Mtu, VlanId};

impl Host for Caps {
    async fn add_port(
        &mut self,
        bridge: String,
        target: WitTarget,
        ifname_: String,
        options: PortOptions,
    ) -> Trappable<WitPortInfo> {
        self.tick()?;
        let r = async {
            // Parse everything before resolving anything: bad input changes nothing.
            let bridge = ifname(&bridge)?;
            let target = target_ref(&target)?;
            let ifname = ifname(&ifname_)?;
            let mtu = options.mtu.map(Mtu::new).transpose()?;
            let mac = options.mac.as_deref().map(MacAddr::parse).transpose()?;
            let vlan = options.vlan.map(VlanId::new).transpose()?;
            let trunks = options.trunks.into_iter().map(VlanId::new).collect::<CapResult<Vec<_>>>()?;
            if target == crate::types::TargetRef::Host && (mtu.is_some() || mac.is_some()) {
                return Err(CapError::invalid(format!(
                    "add-port {ifname} (host): mtu and mac options apply to veth ports; use links.set-mtu/set-mac for host interfaces"
                )));
            }
            let target = self.gate.resolve(&target).await?;
            let port = host_port_name(&target, &ifname);
            let op = Op::AddPort { bridge: bridge.clone(), port, target, ifname, mtu, mac, vlan, trunks };
            let applied = self.gate.apply(op).await?;
            applied
                .port
                .map(to_wit)
                .ok_or_else(|| CapError::failed(format!("add-port on {bridge}: backend returned no port")))
        };
        wit(r.await)
    }

    async fn del_port(&mut self, bridge: String, target: WitTarget, ifname_: String) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let target = target_ref(&target)?;
            let ifname = ifname(&ifname_)?;
            let owner = self.gate.port_owner(&target).await?;
            let ports = match self.gate.list_ports(&bridge).await {
                Ok(p) => p,
                // Detaching from a bridge that is gone: nothing left to remove.
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            let Some(port) = find_port(&ports, &owner, &ifname) else { return Ok(false) };
            let port = ifname_of(port)?;
            Ok(self.gate.apply(Op::DelPort { bridge, port }).await?.changed)
        };
        wit(r.await)
    }

    async fn del_ports(&mut self, bridge: String, container: String) -> Trappable<u32> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let container = ContainerRef::parse(&container)?;
            let owner = self.gate.port_owner(&crate::types::TargetRef::Container(container)).await?;
            let ports = match self.gate.list_ports(&bridge).await {
                Ok(p) => p,
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            let mut removed = 0;
            for p in ports.iter().filter(|p| owner.owns(p) && !matches!(owner, PortOwner::Host)) {
                let port = ifname_of(p)?;
                if self.gate.apply(Op::DelPort { bridge: bridge.clone(), port }).await?.changed {
                    removed += 1;
                }
            }
            Ok(removed)
        };
        wit(r.await)
    }

    async fn set_vlan(
        &mut self,
        bridge: String,
        target: WitTarget,
        ifname_: String,
        vlan: Option<u16>,
    ) -> Trappable<()> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let target = target_ref(&target)?;
            let ifname = ifname(&ifname_)?;
            let vlan = vlan.map(VlanId::new).transpose()?;
            let owner = self.gate.port_owner(&target).await?;
            let ports = self.gate.list_ports(&bridge).await?;
            let port = find_port(&ports, &owner, &ifname).ok_or_else(|| {
                CapError::not_found(format!("no port for {ifname} of {target} on bridge {bridge}"))
            })?;
            let port = ifname_of(port)?;
            self.gate.apply(Op::SetVlan { bridge, port, vlan }).await?;
            Ok(())
        };
        wit(r.await)
    }

    async fn list_ports(&mut self, bridge: String) -> Trappable<Vec<WitPortInfo>> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            Ok(self.gate.list_ports(&bridge).await?.into_iter().map(to_wit).collect())
        };
        wit(r.await)
    }
}

fn ifname_of(p: &PortInfo) -> CapResult<crate::types::IfName> {
    crate::types::IfName::parse(&p.name)
}

fn to_wit(p: PortInfo) -> WitPortInfo {
    WitPortInfo {
        container_iface: p.container_iface().unwrap_or_default().to_string(),
        name: p.name,
        bridge: p.bridge,
        tag: p.tag,
        trunks: p.trunks,
        external_ids: p.external_ids.into_iter().map(|(key, value)| Pair { key, value }).collect(),
        ofport: p.ofport,
        error: p.error,
    }
}
