//! `ovs-run:net/tunnels`: GRE, VXLAN and Geneve tunnel ports to other hosts.
//! Every argument is parsed into a [`TunnelSpec`] before anything is asked
//! of the system, so bad input changes nothing.

use super::ovs_run::net::tunnels::{
    Host, TunnelInfo as WitTunnelInfo, TunnelKind as WitKind, TunnelOptions as WitOptions,
};
use super::{ifname, Caps, Trappable};
use crate::backend::Op;
use crate::error::CapError;
use crate::tunnel::{TunnelInfo, TunnelKind, TunnelOptions, TunnelSpec};

impl Host for Caps {
    async fn add_tunnel(
        &mut self,
        bridge: String,
        name: String,
        kind: WitKind,
        remote_ip: String,
        options: WitOptions,
    ) -> Trappable<WitTunnelInfo> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let o = TunnelOptions {
                key: options.key,
                local_ip: options.local_ip,
                dst_port: options.dst_port,
                ttl: options.ttl,
                tos: options.tos,
                transit: options.transit,
            };
            let spec = TunnelSpec::new(ifname(&name)?, kind_of(kind), &remote_ip, &o)?;
            let applied =
                self.gate.apply(Op::AddTunnel { bridge: bridge.clone(), tunnel: spec.clone() }).await?;
            let port = applied.port.ok_or_else(|| {
                CapError::failed(format!("add-tunnel on {bridge}: backend returned no port"))
            })?;
            Ok(to_wit(TunnelInfo {
                spec,
                bridge: bridge.to_string(),
                ofport: port.ofport,
                error: port.error,
            }))
        };
        self.finish("add-tunnel", r.await)
    }

    async fn remove_tunnel(&mut self, bridge: String, name: String) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            let name = ifname(&name)?;
            Ok(self.gate.apply(Op::DelTunnel { bridge, name }).await?.changed)
        };
        self.finish("remove-tunnel", r.await)
    }

    async fn list_tunnels(&mut self, bridge: String) -> Trappable<Vec<WitTunnelInfo>> {
        self.tick()?;
        let r = async {
            let bridge = ifname(&bridge)?;
            Ok(self.gate.list_tunnels(&bridge).await?.into_iter().map(to_wit).collect())
        };
        self.finish("list-tunnels", r.await)
    }
}

fn kind_of(k: WitKind) -> TunnelKind {
    match k {
        WitKind::Gre => TunnelKind::Gre,
        WitKind::Vxlan => TunnelKind::Vxlan,
        WitKind::Geneve => TunnelKind::Geneve,
    }
}

fn to_wit(t: TunnelInfo) -> WitTunnelInfo {
    let s = t.spec;
    WitTunnelInfo {
        name: s.name.to_string(),
        bridge: t.bridge,
        kind: match s.kind {
            TunnelKind::Gre => WitKind::Gre,
            TunnelKind::Vxlan => WitKind::Vxlan,
            TunnelKind::Geneve => WitKind::Geneve,
        },
        remote_ip: s.remote_ip.to_string(),
        options: WitOptions {
            key: s.key,
            local_ip: s.local_ip.map(|l| l.to_string()),
            dst_port: s.dst_port,
            ttl: s.ttl,
            tos: s.tos,
            transit: s.transit,
        },
        ofport: t.ofport,
        error: t.error,
    }
}
