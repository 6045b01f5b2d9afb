//! Links: veth pairs across namespaces, deletion, listing, and the up/mtu/mac
//! setters. Setters read the link first so they can say what changed and
//! return the old value for the journal.

use std::hash::{BuildHasher, RandomState};
use std::os::fd::AsRawFd;

use futures::{stream, StreamExt, TryStreamExt};
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags,
    LinkLayerType, LinkMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use super::{errno, get_link, is_not_found, link_not_found, nl_error, Netlink};
use crate::backend::{Addressing, LinkInfo};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{IfName, MacAddr, Mtu, Target};

/// A link's index and, for a veth, where its other end is. Comparing both
/// ends' answers tells whether a host veth still leads into a given
/// namespace: the peer's index is only meaningful in the peer's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEnds {
    pub index: u32,
    /// IFLA_LINK: the peer's index (in the peer's namespace).
    pub peer: Option<u32>,
    /// IFLA_LINK_NETNSID is present: the peer is in another namespace.
    pub peer_elsewhere: bool,
}

impl LinkEnds {
    fn of(link: &LinkMessage) -> Self {
        let mut ends = LinkEnds { index: link.header.index, peer: None, peer_elsewhere: false };
        for a in &link.attributes {
            match a {
                LinkAttribute::Link(i) => ends.peer = Some(*i),
                LinkAttribute::LinkNetNsId(_) => ends.peer_elsewhere = true,
                _ => {}
            }
        }
        ends
    }
}

/// What the inner end of a veth gets before it comes up.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerSetup<'a> {
    /// MTU of both ends.
    pub mtu: Option<Mtu>,
    pub mac: Option<MacAddr>,
    /// TX checksum offload off (see [`Netlink::create_veth`]).
    pub sw_checksum: bool,
    /// Addresses, and a default route through the peer.
    pub addressing: Option<&'a Addressing>,
}

impl Netlink {
    /// A veth pair for an OVS port: `host_name` in the host namespace,
    /// `peer` created directly in `target`'s namespace under its final name
    /// by the same RTM_NEWLINK (IFLA_NET_NS_FD in the peer's attributes),
    /// then both up. If a step after the first fails the pair is deleted
    /// again.
    ///
    /// The host end is made ready for ovs-vswitchd's userspace datapath,
    /// which reads every packet the port sends or receives:
    /// - promiscuous, as OVS makes its ports anyway: set by OVS it would be
    ///   one more link change, and ovs-vswitchd reconfigures the whole switch
    ///   for each (see backend/system.rs);
    /// - without IPv6 addresses: the host end has no use for one, and the
    ///   solicitations that come with a link-local address would each be
    ///   flooded to every port of the bridge, which at 1000 ports costs
    ///   ovs-vswitchd seconds.
    ///
    /// `sw_checksum` turns TX checksum offload off on the peer before it
    /// comes up, for a port on the userspace datapath (see [`super::ethtool`]).
    /// Only the peer: what the host end sends comes from ovs-vswitchd, whose
    /// frames are complete, so offload there changes nothing (measured: TCP
    /// both ways between two containers, and to and from the bridge's own
    /// port, with offload off on the container ends only).
    ///
    /// The peer's addresses and default route, when asked for, are set in the
    /// same visit of the target (on the socket already open there): the
    /// addresses before the peer comes up, the route once it is up (the
    /// kernel refuses a route through a link that is down).
    pub async fn create_veth(
        &self,
        host_name: &IfName,
        peer: &IfName,
        target: &Target,
        setup: PeerSetup<'_>,
    ) -> CapResult<()> {
        let PeerSetup { mtu, mac: peer_mac, sw_checksum, addressing } = setup;
        let what = format!("create veth {host_name} <-> {peer} in {target}");
        let ns = self.namespace(target)?;
        let host = self.handle(&Target::Host).await?;

        let mut peer_msg = LinkUnspec::new_with_name(peer.as_str()).setns_by_fd(ns.fd().as_raw_fd());
        let mut msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.as_str())
            .promiscuous(true);
        if let Some(m) = mtu {
            peer_msg = peer_msg.mtu(m.get());
            msg = msg.mtu(m.get());
        }
        if let Some(mac) = peer_mac {
            peer_msg = peer_msg.address(mac.0.to_vec());
        }
        let msg = msg.set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build()))).build();
        crate::backend::stats::netlink_request();
        match host.link().add(msg).execute().await {
            Ok(()) => {}
            // EEXIST does not say which end clashed: ask the host side.
            Err(e) if errno(&e) == Some(libc::EEXIST) => {
                return match get_link(&host, &Target::Host, host_name).await {
                    Ok(_) => {
                        Err(CapError::exists(format!("{what}: link {host_name} already exists in host")))
                    }
                    Err(_) => {
                        Err(CapError::exists(format!("{what}: link {peer} already exists in {target}")))
                    }
                };
            }
            Err(e) => return Err(nl_error(e, what)),
        }

        // Then IPv6 address generation off on the host end, TX checksum
        // offload off on the peer when asked, the peer up, and the host end
        // up last. Neither end can be up in the RTM_NEWLINK itself: the
        // kernel configures the peer before pairing it (ENOTCONN), and
        // refuses IPv6 settings for a link being created. Changes to a link
        // that is down are not announced, so ovs-vswitchd sees two link
        // changes in all (the new link, then the host end up with carrier),
        // as for a pair made up at once.
        let finish = async {
            crate::backend::stats::netlink_request();
            match host.link().change(no_ipv6_addresses(host_name)).execute().await {
                Ok(()) => {}
                // A kernel without IPv6: nothing to turn off.
                Err(e) if errno(&e) == Some(libc::EAFNOSUPPORT) => {}
                Err(e) => return Err(nl_error(e, format!("{what}: turn IPv6 addresses off on {host_name}"))),
            }
            let inside = self.sockets(target).await?;
            if sw_checksum {
                crate::backend::stats::netlink_request();
                super::ethtool::set_tx_checksum(&inside.ioctl, peer, false).map_err(|e| {
                    CapError::failed(format!(
                        "{what}: turn TX checksum offload off on {peer} in {target}: {e}"
                    ))
                })?;
            }
            // On the socket open in the target (not through the cache, which
            // a batch's other veths may have turned over meanwhile).
            let addressing = addressing.filter(|a| !a.is_empty());
            let index = match addressing {
                Some(a) => {
                    let index = get_link(&inside.handle, target, peer).await?.header.index;
                    for cidr in &a.addresses {
                        super::addr::add_address_at(&inside.handle, target, peer, index, *cidr).await?;
                    }
                    Some(index)
                }
                None => None,
            };
            // By name: saves looking up the new peer's index.
            let up = LinkUnspec::new_with_name(peer.as_str()).up().build();
            change(&inside.handle, up, target, peer, format!("{what}: set {peer} up in {target}")).await?;
            if let Some(route) = addressing.and_then(|a| a.default_route(peer)) {
                self.add_route_at(&inside.handle, target, &route, index).await?;
            }
            let up = LinkUnspec::new_with_name(host_name.as_str()).up().build();
            change(&host, up, &Target::Host, host_name, format!("{what}: set {host_name} up")).await
        };
        // The pair exists: whatever fails from here on, it goes again
        // (deleting either end removes both), so no path leaves half a port.
        if let Err(mut e) = finish.await {
            if let Err(d) = self.delete_link(&Target::Host, host_name).await {
                e.message = format!("{} (and deleting veth {host_name} again failed: {d})", e.message);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Delete link `name`. Ok(false) when it, or its whole namespace, is gone.
    pub async fn delete_link(&self, target: &Target, name: &IfName) -> CapResult<bool> {
        let handle = match self.handle(target).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
            other => other?,
        };
        let index = match get_link(&handle, target, name).await {
            Ok(link) => link.header.index,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        crate::backend::stats::netlink_request();
        match handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            // Deleted meanwhile (or its veth peer was).
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(nl_error(e, format!("delete link {name} in {target}"))),
        }
    }

    /// Delete many links of `target` at once; per name, false when it was
    /// not there. One at a time, every deletion waits for an RCU grace period
    /// (10-20 ms each on a busy host); deleted as one link group the kernel
    /// waits once, as for `ip link del group G`. The links are put in a fresh
    /// random group, the group is checked to hold exactly these links, and
    /// then deleted with one request. Should another link turn out to be in
    /// that group, the links are deleted one by one instead.
    pub async fn delete_links(&self, target: &Target, names: &[IfName]) -> CapResult<Vec<bool>> {
        if names.len() < 2 {
            let mut found = Vec::new();
            for n in names {
                found.push(self.delete_link(target, n).await?);
            }
            return Ok(found);
        }
        let handle = match self.handle(target).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(vec![false; names.len()]),
            other => other?,
        };
        let group = 0x8000_0000 | (RandomState::new().hash_one(std::process::id()) as u32 & 0x7fff_ffff);
        let (handle, grouped) = (&handle, &names);
        let found: Vec<CapResult<bool>> = stream::iter(0..names.len())
            .map(|i| async move {
                let name = &grouped[i];
                let msg = LinkUnspec::new_with_name(name.as_str()).link_group(group).build();
                crate::backend::stats::netlink_request();
                match handle.link().change(msg).execute().await {
                    Ok(()) => Ok(true),
                    Err(e) if is_not_found(&e) => Ok(false),
                    Err(e) => Err(nl_error(e, format!("put {name} in link group {group} in {target}"))),
                }
            })
            .buffered(32)
            .collect()
            .await;
        let found = found.into_iter().collect::<CapResult<Vec<bool>>>()?;
        let mut ours: Vec<&str> =
            names.iter().zip(&found).filter(|(_, f)| **f).map(|(n, _)| n.as_str()).collect();
        let mut members: Vec<String> =
            self.link_names(target).await?.into_iter().filter(|l| l.group == group).map(|l| l.name).collect();
        ours.sort_unstable();
        ours.dedup();
        members.sort_unstable();
        if members != ours {
            for (n, f) in names.iter().zip(&found) {
                if *f {
                    self.delete_link(target, n).await?;
                }
            }
            return Ok(found);
        }
        let mut req = handle.link().del(0);
        req.message_mut().attributes.push(LinkAttribute::Group(group));
        crate::backend::stats::netlink_request();
        req.execute().await.map_err(|e| nl_error(e, format!("delete link group {group} in {target}")))?;
        Ok(found)
    }

    /// Link `name`'s own index and where its veth peer is (see [`LinkEnds`]);
    /// None when the link, or the whole namespace, does not exist.
    pub async fn link_ends(&self, target: &Target, name: &IfName) -> CapResult<Option<LinkEnds>> {
        let handle = match self.handle(target).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        match get_link(&handle, target, name).await {
            Ok(link) => Ok(Some(LinkEnds::of(&link))),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Netlink::link_ends`] of the link with index `index` in `target`.
    pub async fn link_ends_by_index(&self, target: &Target, index: u32) -> CapResult<Option<LinkEnds>> {
        let handle = match self.handle(target).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let mut links = handle.link().get().match_index(index).execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(Some(LinkEnds::of(&link))),
            Ok(None) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(nl_error(e, format!("looking up link index {index} in {target}"))),
        }
    }

    /// Links in `target` with their addresses; `name` narrows to one link
    /// (not-found when it does not exist).
    pub async fn links(&self, target: &Target, name: Option<&IfName>) -> CapResult<Vec<LinkInfo>> {
        let handle = self.handle(target).await?;
        let (msgs, only) = match name {
            Some(n) => {
                let link = get_link(&handle, target, n).await?;
                let index = link.header.index;
                (vec![link], Some(index))
            }
            None => (dump_links(&handle, target).await?, None),
        };
        let mut addrs = super::addr::dump(&handle, target, only).await?;
        Ok(msgs
            .into_iter()
            .map(|m| {
                let addresses = addrs.remove(&m.header.index).unwrap_or_default();
                to_link_info(&m, addresses)
            })
            .collect())
    }

    /// Bring `name` up or down; false when it already was.
    pub async fn set_up(&self, target: &Target, name: &IfName, up: bool) -> CapResult<bool> {
        let handle = self.handle(target).await?;
        let link = get_link(&handle, target, name).await?;
        if link.header.flags.contains(LinkFlags::Up) == up {
            return Ok(false);
        }
        let b = LinkUnspec::new_with_index(link.header.index);
        let msg = if up { b.up() } else { b.down() }.build();
        let state = if up { "up" } else { "down" };
        change(&handle, msg, target, name, format!("set {name} {state} in {target}")).await?;
        Ok(true)
    }

    /// Turn ARP on or off (IFF_NOARP); false when it already was so.
    pub async fn set_arp(&self, target: &Target, name: &IfName, on: bool) -> CapResult<bool> {
        let handle = self.handle(target).await?;
        let link = get_link(&handle, target, name).await?;
        let arp_on = !link.header.flags.contains(LinkFlags::Noarp);
        if arp_on == on {
            return Ok(false);
        }
        let msg = LinkUnspec::new_with_index(link.header.index).arp(on).build();
        let state = if on { "on" } else { "off" };
        change(&handle, msg, target, name, format!("set arp {state} on {name} in {target}")).await?;
        Ok(true)
    }

    /// Set the MTU; returns the old one.
    pub async fn set_mtu(&self, target: &Target, name: &IfName, mtu: Mtu) -> CapResult<u32> {
        self.set_mtu_raw(target, name, mtu.get()).await
    }

    /// [`Netlink::set_mtu`] with any value the kernel takes: an undo puts
    /// back whatever the link had (`lo`'s 65536).
    pub async fn set_mtu_raw(&self, target: &Target, name: &IfName, mtu: u32) -> CapResult<u32> {
        let handle = self.handle(target).await?;
        let link = get_link(&handle, target, name).await?;
        let old = link_mtu(&link);
        if old != mtu {
            let msg = LinkUnspec::new_with_index(link.header.index).mtu(mtu).build();
            change(&handle, msg, target, name, format!("set mtu {mtu} on {name} in {target}")).await?;
        }
        Ok(old)
    }

    /// Turn TX checksum offload on or off (see [`super::ethtool`]); returns
    /// whether it was on.
    pub async fn set_tx_checksum(&self, target: &Target, name: &IfName, on: bool) -> CapResult<bool> {
        let sockets = self.sockets(target).await?;
        let what = |verb: &str| format!("{verb} TX checksum offload of {name} in {target}");
        let io_error = |e: std::io::Error, what: String| match e.raw_os_error() {
            Some(libc::ENODEV) => link_not_found(target, name),
            Some(libc::EOPNOTSUPP) => {
                CapError::failed(format!("{what}: {name} does not support changing it"))
            }
            Some(libc::EPERM) => CapError::failed(format!("{what}: needs root (CAP_NET_ADMIN)")),
            _ => CapError::failed(format!("{what}: {e}")),
        };
        crate::backend::stats::netlink_request();
        let old = super::ethtool::tx_checksum(&sockets.ioctl, name).map_err(|e| io_error(e, what("read")))?;
        if old != on {
            crate::backend::stats::netlink_request();
            super::ethtool::set_tx_checksum(&sockets.ioctl, name, on)
                .map_err(|e| io_error(e, what("set")))?;
        }
        Ok(old)
    }

    /// Set the MAC address; returns the old one.
    pub async fn set_mac(&self, target: &Target, name: &IfName, mac: MacAddr) -> CapResult<Option<MacAddr>> {
        let handle = self.handle(target).await?;
        let link = get_link(&handle, target, name).await?;
        let old = link_mac(&link);
        // Without an Ethernet address of its own there is nothing to record
        // for the undo, and the change could not be taken back: refused.
        if old.is_none() {
            return Err(CapError::invalid(format!(
                "set mac {mac} on {name} in {target}: {name} is not an Ethernet link (link type {:?}), \
                 so its address could not be restored: refused",
                link.header.link_layer_type
            )));
        }
        if old != Some(mac) {
            let msg = LinkUnspec::new_with_index(link.header.index).address(mac.0.to_vec()).build();
            change(&handle, msg, target, name, format!("set mac {mac} on {name} in {target}")).await?;
        }
        Ok(old)
    }
}

/// RTM_NEWLINK without NLM_F_CREATE on an existing link (what `ip link set` sends).
async fn change(
    handle: &rtnetlink::Handle,
    msg: LinkMessage,
    target: &Target,
    name: &IfName,
    what: impl std::fmt::Display,
) -> CapResult<()> {
    crate::backend::stats::netlink_request();
    match handle.link().change(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Err(link_not_found(target, name)),
        Err(e) => Err(nl_error(e, what)),
    }
}

/// RTM_SETLINK: IPv6 address generation mode none for `name`: no
/// link-local address, so none of the neighbour, router and multicast
/// solicitations that come with one.
fn no_ipv6_addresses(name: &IfName) -> LinkMessage {
    let none = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
    LinkUnspec::new_with_name(name.as_str())
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![none]))
        .build()
}

fn to_link_info(m: &LinkMessage, addresses: Vec<crate::types::Cidr>) -> LinkInfo {
    let name = m
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_else(|| format!("if{}", m.header.index));
    LinkInfo {
        name,
        mtu: link_mtu(m),
        mac: link_mac(m),
        up: m.header.flags.contains(LinkFlags::Up),
        addresses,
        arp: !m.header.flags.contains(LinkFlags::Noarp),
    }
}

fn link_mtu(m: &LinkMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(v) => Some(*v),
            _ => None,
        })
        .unwrap_or(0)
}

/// The Ethernet address; None for links without one (loopback, tunnels).
fn link_mac(m: &LinkMessage) -> Option<MacAddr> {
    if m.header.link_layer_type != LinkLayerType::Ether {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok().map(MacAddr),
        _ => None,
    })
}

async fn dump_links(handle: &rtnetlink::Handle, target: &Target) -> CapResult<Vec<LinkMessage>> {
    crate::backend::stats::netlink_request();
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| nl_error(e, format!("list links in {target}")))
}
