//! Who may do what. The gate asks the policy before every capability call,
//! reads included; a refusal becomes the `denied` error and changes nothing.
//!
//! This release ships [`AllowAll`] (the operator running ovs-run as root may do
//! anything). Tenant policies plug in behind the same trait.

use std::net::IpAddr;

use crate::backend::Op;
use crate::error::CapResult;
use crate::types::{ContainerRef, IfName, Target};

/// A capability call as the policy sees it: typed, with targets resolved
/// (a container carries its id and name, so rules can name either).
#[derive(Debug)]
pub enum Request<'a> {
    Apply(&'a Op),
    ListBridges,
    ListPorts { bridge: &'a IfName },
    ListLinks { target: &'a Target },
    ListRoutes { target: &'a Target },
    LookupContainer { name: &'a ContainerRef },
    ListContainers,
    Ping { target: &'a Target, address: IpAddr },
}

impl Request<'_> {
    /// The capability name, as in the WIT contract.
    pub fn action(&self) -> &'static str {
        match self {
            Request::Apply(op) => op.action(),
            Request::ListBridges => "list-bridges",
            Request::ListPorts { .. } => "list-ports",
            Request::ListLinks { .. } => "list-links",
            Request::ListRoutes { .. } => "list-routes",
            Request::LookupContainer { .. } => "lookup-container",
            Request::ListContainers => "list-containers",
            Request::Ping { .. } => "ping",
        }
    }
}

pub trait Policy: Send + Sync {
    /// Ok to go ahead; `Err(CapError::denied(..))` naming action, resource and rule otherwise.
    fn authorize(&self, request: &Request<'_>) -> CapResult<()>;
}

/// Everything is allowed: the local root operator's default.
pub struct AllowAll;

impl Policy for AllowAll {
    fn authorize(&self, _request: &Request<'_>) -> CapResult<()> {
        Ok(())
    }
}
