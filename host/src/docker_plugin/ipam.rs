//! The IPAM driver: pools and addresses, allocated and released with the
//! networks' and endpoints' lifecycle and kept in the [`State`], so that an
//! address is never handed out twice, across plugin and dockerd restarts
//! too. IPv4 only: Docker's default IPAM serves IPv6 networks.

use std::net::{IpAddr, Ipv4Addr};

use super::protocol::{RequestAddress, RequestPool, GATEWAY_TYPE, REQUEST_ADDRESS_TYPE};
use super::state::{Pool, State};
use crate::error::{CapError, CapResult};
use crate::types::{parse_ip, Cidr};

/// The address space names Docker asks for (one of each).
pub const LOCAL_SPACE: &str = "ovs-run-local";
pub const GLOBAL_SPACE: &str = "ovs-run-global";

/// Where a network with no --subnet gets its /24 from.
pub const DEFAULT_POOLS: &str = "10.199.0.0/16";

fn cidr(what: &str, s: &str) -> CapResult<Cidr> {
    let c = Cidr::parse(s).map_err(|e| CapError::from(e).context(what))?;
    if !c.is_ipv4() {
        return Err(CapError::invalid(format!("{what} {s}: ovs-run's IPAM is IPv4 only")));
    }
    Ok(c.network())
}

/// RequestPool: returns (pool id, pool).
pub fn request_pool(state: &mut State, r: &RequestPool) -> CapResult<(String, Cidr)> {
    if r.v6 {
        return Err(CapError::invalid(
            "ovs-run's IPAM is IPv4 only: use Docker's default IPAM for an IPv6 network",
        ));
    }
    let pool = if r.pool.is_empty() {
        if !r.sub_pool.is_empty() {
            return Err(CapError::invalid(format!("SubPool {} without a Pool", r.sub_pool)));
        }
        free_default_pool(state)?
    } else {
        cidr("Pool", &r.pool)?
    };
    let sub_pool = match r.sub_pool.as_str() {
        "" => None,
        s => {
            let sub = cidr("SubPool", s)?;
            if !pool.contains(sub.addr) || sub.prefix < pool.prefix {
                return Err(CapError::invalid(format!("SubPool {sub} is not inside Pool {pool}")));
            }
            Some(sub)
        }
    };
    if let Some((id, _)) = state.pools.iter().find(|(_, p)| overlaps(p.pool, pool)) {
        return Err(CapError::exists(format!("pool {pool} overlaps pool {id}, in use by another network")));
    }
    let id = format!("{}/{pool}", if r.address_space.is_empty() { LOCAL_SPACE } else { &r.address_space });
    state.pools.insert(id.clone(), Pool { pool, sub_pool, allocated: Default::default(), ovn: None });
    Ok((id, pool))
}

fn overlaps(a: Cidr, b: Cidr) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}

fn free_default_pool(state: &State) -> CapResult<Cidr> {
    let base = cidr("default pools", DEFAULT_POOLS)?;
    let IpAddr::V4(b) = base.addr else { unreachable!("IPv4 checked") };
    let count = 1u32 << (24 - base.prefix);
    (0..count)
        .map(|i| Cidr { addr: IpAddr::V4(Ipv4Addr::from(u32::from(b) + (i << 8))), prefix: 24 })
        .find(|c| !state.pools.values().any(|p| overlaps(p.pool, *c)))
        .ok_or_else(|| CapError::failed(format!("every /24 of {DEFAULT_POOLS} is in use: give --subnet")))
}

pub fn release_pool(state: &mut State, id: &str) {
    state.pools.remove(id);
}

/// RequestAddress: the address with the pool's prefix.
pub fn request_address(state: &mut State, r: &RequestAddress) -> CapResult<Cidr> {
    let pool = state
        .pools
        .get_mut(&r.pool_id)
        .ok_or_else(|| CapError::not_found(format!("no pool {} (was it released?)", r.pool_id)))?;
    let gateway =
        r.options.as_ref().and_then(|o| o.get(REQUEST_ADDRESS_TYPE)).is_some_and(|t| t == GATEWAY_TYPE);
    let addr = if r.address.is_empty() {
        let range = pool.sub_pool.unwrap_or(pool.pool);
        first_free(pool, range).ok_or_else(|| {
            CapError::failed(format!(
                "pool {} is exhausted: all {} addresses of {range} are in use",
                pool.pool,
                hosts(range).count()
            ))
        })?
    } else {
        let a = parse_ip(&r.address).map_err(|e| CapError::from(e).context("Address"))?;
        if !pool.pool.contains(a) {
            return Err(CapError::invalid(format!("address {a} is not in pool {}", pool.pool)));
        }
        if !is_host(pool.pool, a) {
            return Err(CapError::invalid(format!(
                "address {a} is the network or broadcast address of {}",
                pool.pool
            )));
        }
        if pool.allocated.contains(&a) {
            let what = if gateway { "the gateway address" } else { "address" };
            return Err(CapError::exists(format!("{what} {a} of pool {} is already in use", pool.pool)));
        }
        a
    };
    pool.allocated.insert(addr);
    Ok(Cidr { addr, prefix: pool.pool.prefix })
}

/// ReleaseAddress: false when the address was not taken (already released).
pub fn release_address(state: &mut State, pool_id: &str, address: &str) -> CapResult<bool> {
    let Some(pool) = state.pools.get_mut(pool_id) else { return Ok(false) };
    // Docker sends a bare address; accept one with a prefix too.
    let a = match address.split_once('/') {
        Some((a, _)) => a,
        None => address,
    };
    let a = parse_ip(a).map_err(|e| CapError::from(e).context("Address"))?;
    Ok(pool.allocated.remove(&a))
}

/// The usable host addresses of an IPv4 prefix (a /31 or /32 has all of its).
pub(super) fn hosts(c: Cidr) -> impl Iterator<Item = IpAddr> {
    let IpAddr::V4(net) = c.network().addr else { unreachable!("IPv4 pools only") };
    let n = u32::from(net) as u64;
    let size = 1u64 << (32 - c.prefix);
    let (first, last) = if size <= 2 { (n, n + size - 1) } else { (n + 1, n + size - 2) };
    (first..=last).map(|a| IpAddr::V4(Ipv4Addr::from(a as u32)))
}

fn first_free(pool: &Pool, range: Cidr) -> Option<IpAddr> {
    hosts(range).find(|a| !pool.allocated.contains(a))
}

/// Whether `a` (inside `c`) is one of its host addresses.
pub(super) fn is_host(c: Cidr, a: IpAddr) -> bool {
    let (IpAddr::V4(net), IpAddr::V4(a)) = (c.network().addr, a) else { return false };
    let size = 1u64 << (32 - c.prefix);
    let off = u32::from(a) as u64 - u32::from(net) as u64;
    size <= 2 || (off != 0 && off != size - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_req(pool: &str) -> RequestPool {
        RequestPool {
            address_space: LOCAL_SPACE.into(),
            pool: pool.into(),
            sub_pool: String::new(),
            v6: false,
        }
    }

    fn addr_req(id: &str, a: &str, gw: bool) -> RequestAddress {
        let options = gw.then(|| [(REQUEST_ADDRESS_TYPE.to_string(), GATEWAY_TYPE.to_string())].into());
        RequestAddress { pool_id: id.into(), address: a.into(), options }
    }

    #[test]
    fn addresses_are_unique_until_released_and_exhaustion_is_an_error() {
        let mut s = State::default();
        let (id, pool) = request_pool(&mut s, &pool_req("10.20.0.0/29")).unwrap();
        assert_eq!(pool.to_string(), "10.20.0.0/29");
        assert_eq!(
            request_address(&mut s, &addr_req(&id, "10.20.0.1", true)).unwrap().to_string(),
            "10.20.0.1/29"
        );
        let e = request_address(&mut s, &addr_req(&id, "10.20.0.1", false)).unwrap_err();
        assert!(e.message.contains("already in use"), "{e}");
        let got: Vec<String> =
            (0..5).map(|_| request_address(&mut s, &addr_req(&id, "", false)).unwrap().to_string()).collect();
        assert_eq!(got, ["10.20.0.2/29", "10.20.0.3/29", "10.20.0.4/29", "10.20.0.5/29", "10.20.0.6/29"]);
        let e = request_address(&mut s, &addr_req(&id, "", false)).unwrap_err();
        assert!(e.message.contains("exhausted"), "{e}");
        assert!(release_address(&mut s, &id, "10.20.0.4").unwrap());
        assert!(!release_address(&mut s, &id, "10.20.0.4").unwrap());
        assert_eq!(request_address(&mut s, &addr_req(&id, "", false)).unwrap().to_string(), "10.20.0.4/29");
        let e = request_address(&mut s, &addr_req(&id, "10.21.0.9", false)).unwrap_err();
        assert!(e.message.contains("not in pool"), "{e}");
    }

    #[test]
    fn pools_do_not_overlap_and_defaults_are_carved() {
        let mut s = State::default();
        request_pool(&mut s, &pool_req("10.20.0.0/24")).unwrap();
        assert!(request_pool(&mut s, &pool_req("10.20.0.128/25")).is_err());
        let (_, a) = request_pool(&mut s, &pool_req("")).unwrap();
        let (_, b) = request_pool(&mut s, &pool_req("")).unwrap();
        assert_ne!(a, b);
        assert!(request_pool(&mut s, &RequestPool { v6: true, ..pool_req("") }).is_err());
    }
}
