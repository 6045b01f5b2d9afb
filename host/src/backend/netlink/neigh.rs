//! The kernel's neighbour (ARP/NDP) table: what MAC a next hop has, read
//! without forking `ip neigh`. Used to seed ovs-vswitchd's tunnel
//! neighbour cache (see backend/tunnels.rs).

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};

use super::{get_link, nl_error, Netlink};
use crate::error::CapResult;
use crate::types::{IfName, MacAddr, Target};

impl Netlink {
    /// The MAC of `ip` on link `dev` in `target` when the kernel has a usable
    /// entry for it (reachable, stale, delay, probe or permanent); None when
    /// it has none or is still resolving it.
    pub async fn neighbour(&self, target: &Target, dev: &IfName, ip: IpAddr) -> CapResult<Option<MacAddr>> {
        let handle = self.handle(target).await?;
        let index = get_link(&handle, target, dev).await?.header.index;
        crate::backend::stats::netlink_request();
        let msgs: Vec<_> = handle
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_error(e, format!("list neighbours in {target}")))?;
        let usable = |s: NeighbourState| {
            matches!(
                s,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
            )
        };
        for m in msgs.iter().filter(|m| m.header.ifindex == index && usable(m.header.state)) {
            let dst = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
                _ => None,
            });
            if dst != Some(ip) {
                continue;
            }
            let mac = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => {
                    let mut o = [0u8; 6];
                    o.copy_from_slice(b);
                    Some(MacAddr(o))
                }
                _ => None,
            });
            if mac.is_some() {
                return Ok(mac);
            }
        }
        Ok(None)
    }
}
