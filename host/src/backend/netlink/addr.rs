//! Interface addresses (IPv4 and IPv6), idempotent add and delete.

use std::collections::HashMap;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::{AddressMessageBuilder, Handle};

use super::{errno, get_link, is_not_found, link_not_found, nl_error, Netlink};
use crate::error::{CapError, CapResult};
use crate::types::{Cidr, IfName, Target};

impl Netlink {
    /// Add `cidr` to `name`; false when exactly that address is already there.
    /// The same address with another prefix length is already-exists.
    pub async fn add_address(&self, target: &Target, name: &IfName, cidr: Cidr) -> CapResult<bool> {
        let handle = self.handle(target).await?;
        let index = get_link(&handle, target, name).await?.header.index;
        add_address_at(&handle, target, name, index, cidr).await
    }

    /// Remove `cidr` (address and prefix length) from `name`; false when absent.
    pub async fn del_address(&self, target: &Target, name: &IfName, cidr: Cidr) -> CapResult<bool> {
        let handle = self.handle(target).await?;
        let index = get_link(&handle, target, name).await?.header.index;
        let msg = match cidr.addr {
            IpAddr::V4(a) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(index)
                .address(a, cidr.prefix)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(index)
                .address(a, cidr.prefix)
                .build(),
        };
        crate::backend::stats::netlink_request();
        match handle.address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) if is_not_found(&e) => Err(link_not_found(target, name)),
            Err(e) => Err(nl_error(e, format!("remove address {cidr} from {name} in {target}"))),
        }
    }
}

/// Addresses by link index, v4 and v6, in kernel order; `only` keeps one link.
pub(super) async fn dump(
    handle: &Handle,
    target: &Target,
    only: Option<u32>,
) -> CapResult<HashMap<u32, Vec<Cidr>>> {
    let mut req = handle.address().get();
    if let Some(i) = only {
        req = req.set_link_index_filter(i);
    }
    crate::backend::stats::netlink_request();
    let msgs: Vec<AddressMessage> =
        req.execute().try_collect().await.map_err(|e| nl_error(e, format!("list addresses in {target}")))?;
    let mut by_link: HashMap<u32, Vec<Cidr>> = HashMap::new();
    for m in msgs {
        if let Some(addr) = local_addr(&m) {
            let cidr = Cidr { addr, prefix: m.header.prefix_len };
            by_link.entry(m.header.index).or_default().push(cidr);
        }
    }
    Ok(by_link)
}

/// The interface's own address: IFA_LOCAL when present (on point-to-point
/// links IFA_ADDRESS is the peer), else IFA_ADDRESS (IPv6 sends only that).
fn local_addr(m: &AddressMessage) -> Option<IpAddr> {
    let find = |want_local: bool| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

/// [`Netlink::add_address`] on a socket already open in `target`, to the
/// link of index `index` (named `name` in errors).
pub(super) async fn add_address_at(
    handle: &Handle,
    target: &Target,
    name: &IfName,
    index: u32,
    cidr: Cidr,
) -> CapResult<bool> {
    let what = format!("add address {cidr} to {name} in {target}");
    crate::backend::stats::netlink_request();
    match handle.address().add(index, cidr.addr, cidr.prefix).execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::EEXIST) => {
            let present = dump(handle, target, Some(index)).await?.remove(&index);
            let present = present.unwrap_or_default();
            if present.contains(&cidr) {
                return Ok(false);
            }
            match present.iter().find(|c| c.addr == cidr.addr) {
                Some(other) => Err(CapError::exists(format!("{what}: {name} already has {other}"))),
                None => Err(CapError::exists(format!("{what}: address already in use"))),
            }
        }
        Err(e) if is_not_found(&e) => Err(link_not_found(target, name)),
        Err(e) => Err(nl_error(e, what)),
    }
}
