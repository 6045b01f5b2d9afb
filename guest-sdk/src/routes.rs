//! Routes inside a target's main table (WIT interface `routes`), with
//! builder methods on [`Route`]: `Route::default_route().via(gw).dev("eth1")`.

use crate::bindings::ovs_run::net::routes as wit;
use crate::net::{Cidr, IpAddr};
use crate::{Error, Target};

pub use wit::Route;

impl Route {
    /// The default route (no destination), with no next hop or device yet.
    pub fn default_route() -> Self {
        Route { destination: None, via: None, device: None }
    }

    /// A route to `destination` (give the network, e.g. 10.20.0.0/16).
    pub fn to(destination: Cidr) -> Self {
        Route { destination: Some(destination.to_string()), ..Self::default_route() }
    }

    /// Next hop.
    pub fn via(mut self, gateway: IpAddr) -> Self {
        self.via = Some(gateway.to_string());
        self
    }

    /// Output interface.
    pub fn dev(mut self, device: impl AsRef<str>) -> Self {
        self.device = Some(device.as_ref().to_string());
        self
    }
}

/// Adds `route`; false when an identical route was already there.
pub fn add(target: &Target, route: &Route) -> Result<bool, Error> {
    Ok(wit::set_route(target, route)?)
}

/// Removes `route`; false when it was not there.
pub fn del(target: &Target, route: &Route) -> Result<bool, Error> {
    Ok(wit::del_route(target, route)?)
}

pub fn list(target: &Target) -> Result<Vec<Route>, Error> {
    Ok(wit::list_routes(target)?)
}
