//! Main-table unicast routes as [`RouteSpec`]s, idempotent add and delete.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use super::{errno, get_link, nl_error, Netlink};
use crate::backend::restore::RouteRecord;
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{Cidr, IfName, RouteSpec, Target};

impl Netlink {
    /// Unicast routes of the main table, v4 and v6, kernel link routes included.
    /// A multipath route gives one entry per next hop.
    pub async fn routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>> {
        Ok(self.route_records(target).await?.into_iter().map(|r| r.route).collect())
    }

    /// [`Netlink::routes`] with what a static re-add would lose (protocol,
    /// scope, metric, source), so that an undo puts a route back as it was.
    pub async fn route_records(&self, target: &Target) -> CapResult<Vec<RouteRecord>> {
        let handle = self.handle(target).await?;
        crate::backend::stats::netlink_request();
        let msgs: Vec<RouteMessage> = handle
            .route()
            .get(RouteMessage::default())
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_error(e, format!("list routes in {target}")))?;
        let names = self.link_index_names(target).await?;
        let dev = |i: u32| names.get(&i).and_then(|n| IfName::parse(n).ok());
        let mut out = Vec::new();
        for m in msgs.iter().filter(|m| is_main_unicast(m)) {
            let destination = destination(m);
            let record = |route: RouteSpec| RouteRecord {
                route,
                protocol: u8::from(m.header.protocol),
                scope: u8::from(m.header.scope),
                metric: m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Priority(p) => Some(*p),
                    _ => None,
                }),
                prefsrc: m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::PrefSource(a) => ip(a),
                    _ => None,
                }),
            };
            let hops = m.attributes.iter().find_map(|a| match a {
                RouteAttribute::MultiPath(hops) => Some(hops),
                _ => None,
            });
            match hops {
                Some(hops) => out.extend(hops.iter().map(|h| {
                    record(RouteSpec {
                        destination,
                        via: gateway(&h.attributes),
                        device: dev(h.interface_index),
                    })
                })),
                None => out.push(record(RouteSpec {
                    destination,
                    via: gateway(&m.attributes),
                    device: oif(m).and_then(dev),
                })),
            }
        }
        Ok(out)
    }

    /// Put back a route recorded by [`Netlink::route_records`], with its
    /// protocol, scope, metric and source. False when it is there already.
    pub async fn restore_route(&self, target: &Target, rec: &RouteRecord) -> CapResult<bool> {
        let route = &rec.route;
        let handle = self.handle(target).await?;
        let oif = match &route.device {
            Some(d) => Some(get_link(&handle, target, d).await?.header.index),
            None => None,
        };
        let mut msg = message(route, oif, false);
        msg.header.protocol = RouteProtocol::from(rec.protocol);
        msg.header.scope = RouteScope::from(rec.scope);
        if let Some(p) = rec.metric {
            msg.attributes.push(RouteAttribute::Priority(p));
        }
        if let Some(src) = rec.prefsrc {
            msg.attributes.push(RouteAttribute::PrefSource(src.into()));
        }
        crate::backend::stats::netlink_request();
        match handle.route().add(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => {
                if self.route_records(target).await?.contains(rec) {
                    Ok(false)
                } else {
                    Err(CapError::exists(format!(
                        "restore route {rec} in {target}: a different route to {} exists",
                        route.normalized_destination()
                    )))
                }
            }
            Err(e) => Err(nl_error(e, format!("restore route {rec} in {target}"))),
        }
    }

    /// Add `route` to the main table. False when the same route (destination,
    /// gateway, and device if given) is already there; a different route to
    /// the same destination is already-exists naming it.
    pub async fn add_route(&self, target: &Target, route: &RouteSpec) -> CapResult<bool> {
        route.validate()?;
        let handle = self.handle(target).await?;
        let oif = match &route.device {
            Some(d) => Some(get_link(&handle, target, d).await?.header.index),
            None => None,
        };
        self.add_route_at(&handle, target, route, oif).await
    }

    /// [`Netlink::add_route`] on a socket already open in `target`, through
    /// the link of index `oif` (the route's device).
    pub(super) async fn add_route_at(
        &self,
        handle: &Handle,
        target: &Target,
        route: &RouteSpec,
        oif: Option<u32>,
    ) -> CapResult<bool> {
        let what = format!("add route {route} in {target}");
        crate::backend::stats::netlink_request();
        match handle.route().add(message(route, oif, false)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => {
                let dest = route.normalized_destination();
                let same_dest: Vec<RouteSpec> = self
                    .routes(target)
                    .await?
                    .into_iter()
                    .filter(|r| r.normalized_destination() == dest)
                    .collect();
                let identical = same_dest
                    .iter()
                    .any(|r| r.via == route.via && (route.device.is_none() || r.device == route.device));
                if identical {
                    return Ok(false);
                }
                let have: Vec<String> = same_dest.iter().map(|r| r.to_string()).collect();
                Err(CapError::exists(format!(
                    "{what}: a different route exists: {}",
                    if have.is_empty() { "(not visible)".into() } else { have.join(", ") }
                )))
            }
            // The kernel's way of saying no connected subnet holds the gateway:
            // a bad argument, as the dry-run model reports it too.
            Err(e) if errno(&e) == Some(libc::ENETUNREACH) => Err(CapError::invalid(format!(
                "{what}: gateway {} is not in any subnet of {}in {target}",
                route.via.map(|v| v.to_string()).unwrap_or_default(),
                route.device.as_ref().map(|d| format!("{d} ")).unwrap_or_default()
            ))),
            Err(e) => Err(nl_error(e, what)),
        }
    }

    /// Delete `route` from the main table; false when there is no such route
    /// (including when its device does not exist).
    pub async fn del_route(&self, target: &Target, route: &RouteSpec) -> CapResult<bool> {
        route.validate()?;
        let handle = self.handle(target).await?;
        let oif = match &route.device {
            Some(d) => match get_link(&handle, target, d).await {
                Ok(link) => Some(link.header.index),
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            },
            None => None,
        };
        crate::backend::stats::netlink_request();
        match handle.route().del(message(route, oif, true)).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(nl_error(e, format!("remove route {route} in {target}"))),
        }
    }
}

/// The RTM_NEWROUTE / RTM_DELROUTE message for `route`, as iproute2 builds it.
fn message(route: &RouteSpec, oif: Option<u32>, delete: bool) -> RouteMessage {
    let dest = route.normalized_destination();
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = if dest.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    h.table = RouteHeader::RT_TABLE_MAIN;
    h.destination_prefix_length = dest.prefix;
    if delete {
        // Wildcards: match kernel ("proto kernel scope link") routes too.
        h.protocol = RouteProtocol::Unspec;
        h.scope = RouteScope::NoWhere;
        h.kind = RouteType::Unspec;
    } else {
        h.protocol = RouteProtocol::Static;
        // Like `ip route add X dev Y`: without a gateway the route is on-link.
        h.scope = if route.via.is_none() && dest.is_ipv4() { RouteScope::Link } else { RouteScope::Universe };
        h.kind = RouteType::Unicast;
    }
    if dest.prefix > 0 {
        m.attributes.push(RouteAttribute::Destination(dest.addr.into()));
    }
    match (route.via, dest.is_ipv4()) {
        // An IPv4 route via an IPv6 gateway (RFC 5549) needs RTA_VIA.
        (Some(IpAddr::V6(v6)), true) => m.attributes.push(RouteAttribute::Via(RouteVia::Inet6(v6))),
        (Some(gw), _) => m.attributes.push(RouteAttribute::Gateway(gw.into())),
        (None, _) => {}
    }
    if let Some(i) = oif {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    m
}

fn is_main_unicast(m: &RouteMessage) -> bool {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    table == u32::from(RouteHeader::RT_TABLE_MAIN)
        && m.header.kind == RouteType::Unicast
        && matches!(m.header.address_family, AddressFamily::Inet | AddressFamily::Inet6)
}

/// None for default routes (prefix length 0), except an IPv6 default route
/// without a gateway: a [`RouteSpec`] with neither reads as IPv4, so that
/// one keeps `::/0` to stay IPv6.
fn destination(m: &RouteMessage) -> Option<Cidr> {
    let prefix = m.header.destination_prefix_length;
    if prefix == 0 {
        let v6_dev_only = m.header.address_family == AddressFamily::Inet6 && gateway(&m.attributes).is_none();
        return v6_dev_only.then_some(Cidr { addr: IpAddr::V6(0u128.into()), prefix: 0 });
    }
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(addr) => ip(addr).map(|addr| Cidr { addr, prefix }),
        _ => None,
    })
}

fn gateway(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(addr) => ip(addr),
        RouteAttribute::Via(RouteVia::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Via(RouteVia::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

fn oif(m: &RouteMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

fn ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
