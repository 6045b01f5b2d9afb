//! `ovs-run:net/routes`: routes in a target's main table.

use super::ovs_run::net::routes::{Host, Route};
use super::{ifname, target_ref, Caps, Trappable, WitTarget};
use crate::backend::Op;
use crate::error::CapResult;
use crate::types::{parse_ip, Cidr, RouteSpec};

fn route_spec(r: &Route) -> CapResult<RouteSpec> {
    let spec = RouteSpec {
        destination: r.destination.as_deref().map(Cidr::parse).transpose()?,
        via: r.via.as_deref().map(parse_ip).transpose()?,
        device: r.device.as_deref().map(ifname).transpose()?,
    };
    spec.validate()?;
    Ok(spec)
}

impl Host for Caps {
    async fn set_route(&mut self, target: WitTarget, route: Route) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let route = route_spec(&route)?;
            let target = self.gate.resolve(&target_ref(&target)?).await?;
            Ok(self.gate.apply(Op::AddRoute { target, route }).await?.changed)
        };
        self.finish("set-route", r.await)
    }

    async fn del_route(&mut self, target: WitTarget, route: Route) -> Trappable<bool> {
        self.tick()?;
        let r = async {
            let route = route_spec(&route)?;
            let target = self.gate.resolve(&target_ref(&target)?).await?;
            Ok(self.gate.apply(Op::DelRoute { target, route }).await?.changed)
        };
        self.finish("del-route", r.await)
    }

    async fn list_routes(&mut self, target: WitTarget) -> Trappable<Vec<Route>> {
        self.tick()?;
        let r = async {
            let target = self.gate.resolve(&target_ref(&target)?).await?;
            Ok(self
                .gate
                .list_routes(&target)
                .await?
                .into_iter()
                .map(|r| Route {
                    destination: r.destination.filter(|d| d.prefix != 0).map(|d| d.to_string()),
                    via: r.via.map(|v| v.to_string()),
                    device: r.device.map(|d| d.to_string()),
                })
                .collect())
        };
        self.finish("list-routes", r.await)
    }
}
