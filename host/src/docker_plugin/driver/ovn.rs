//! `-o mode=ovn` networks: the network is an OVN logical switch (created in
//! the northbound database when missing), so the same switch named by
//! networks on several hosts is ONE network across them. Each endpoint is a
//! logical switch port ("MAC IP" addresses and port security) bound to the
//! endpoint's OVS port on the integration bridge (external_ids:iface-id);
//! Join waits until ovn-controller marks the port ovn-installed.
//!
//! Addresses unique across hosts: with the plugin's IPAM, the northbound
//! database is the truth. RequestAddress reads the switch's ports (their
//! addresses, dynamic addresses and router ports' networks), picks the
//! first address none of them holds, and reserves it by creating its
//! logical switch port right away, in ONE transaction whose `wait` requires
//! that no port of that name exists. The port's name is derived from the
//! switch and the address ([`lsp_name`]), so two hosts that pick the same
//! address race for the same name: one transaction commits, the other fails
//! its wait, and that host takes the next free address. The port's MAC is
//! chosen by the reserving host (random) and remembered with the address:
//! it is how a host tells its own port from another host's port of the same
//! name, and nothing is ever removed that does not carry it.
//!
//! With Docker's default IPAM, CreateEndpoint makes the reservation itself:
//! an address another host holds fails the endpoint with a clear error.

use std::collections::BTreeSet;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::{short, Driver};
use crate::backend::ovn::{OvnChange, OvnName, SwitchInfo, SwitchPortSpec, Topology};
use crate::backend::Op;
use crate::docker_plugin::ipam;
use crate::docker_plugin::protocol::{self as p, NetworkOptions, GATEWAY_TYPE, REQUEST_ADDRESS_TYPE};
use crate::docker_plugin::state::{Endpoint, Network, OvnEndpoint, OvnNetwork, OvnPool};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{Cidr, MacAddr};

/// How many addresses RequestAddress tries when other hosts take the ones
/// it picked (each lost race costs one transaction).
const MAX_RACES: usize = 32;

/// The logical switch port that holds `ip` on `switch`: one name per
/// address, so the name's uniqueness (a `wait` in the transaction that
/// creates it) is the address's.
pub fn lsp_name(switch: &OvnName, ip: IpAddr) -> OvnName {
    let plain = format!("{switch}-{ip}");
    if plain.len() <= OvnName::MAX_LEN {
        return OvnName::parse(&plain).expect("switch name and address are name characters");
    }
    let h = hex::encode(Sha256::digest(switch.as_str().as_bytes()));
    OvnName::parse(&format!("ovsrun-{}-{ip}", &h[..12])).expect("valid name")
}

/// The switch a mode=ovn network without `-o ovn_switch` gets: this host's only.
pub fn default_switch(network_id: &str) -> OvnName {
    let id: String = network_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
    OvnName::parse(&format!("docker-{id}")).expect("valid name")
}

/// A MAC for a reservation: locally administered, unicast, random (so a
/// port of this host's is told from another host's port of the same name).
fn reservation_mac(pool_id: &str, ip: IpAddr) -> MacAddr {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let h = Sha256::digest(format!("ovn-mac/{pool_id}/{ip}/{nanos}/{}", std::process::id()).as_bytes());
    MacAddr([0x0a, h[0], h[1], h[2], h[3], h[4]])
}

/// Every address a port of `sw` holds: static and dynamic addresses, and
/// the networks of the router ports joined to it.
pub fn taken_addresses(topo: &Topology, sw: &SwitchInfo) -> BTreeSet<IpAddr> {
    let mut taken = BTreeSet::new();
    for port in &sw.ports {
        for entry in port.addresses.iter().chain(port.dynamic_addresses.iter()) {
            taken.extend(entry.split_whitespace().filter_map(|w| crate::types::parse_ip(w).ok()));
        }
        if let Some(lrp) = &port.router_port {
            for r in &topo.routers {
                for rp in r.ports.iter().filter(|rp| &rp.name == lrp) {
                    taken.extend(rp.networks.iter().filter_map(|n| Cidr::parse(n).ok()).map(|c| c.addr));
                }
            }
        }
    }
    taken
}

fn lsp_spec(name: OvnName, mac: MacAddr, ip: IpAddr) -> SwitchPortSpec {
    let entry = format!("{mac} {ip}");
    SwitchPortSpec { name, addresses: vec![entry.clone()], port_security: vec![entry] }
}

/// The northbound database could not be read: say where the plugin looked.
fn nb_error(e: CapError) -> CapError {
    CapError::new(
        e.kind,
        format!(
            "mode=ovn: the OVN northbound database cannot be used (the plugin's --ovn-nb URI, \
             else $OVN_NB_DB, else unix:/var/run/ovn/ovnnb_db.sock): {}",
            e.message
        ),
    )
}

impl Driver {
    async fn topology(&self) -> CapResult<Topology> {
        crate::backend::Backend::ovn_topology(self.backend.as_ref()).await.map_err(nb_error)
    }

    /// CreateNetwork with mode=ovn: the northbound database must answer and
    /// the integration bridge exist before anything is made; then the
    /// switch (when missing, with the network's subnet and MTU), and the
    /// plugin's pool of the network linked to it.
    pub(super) async fn create_ovn_network(
        &self,
        r: &p::CreateNetwork,
        options: NetworkOptions,
        gateway: Option<Cidr>,
    ) -> CapResult<()> {
        let topo = self.topology().await?;
        let bridge = options.bridge();
        if crate::backend::Backend::bridge_datapath(self.backend.as_ref(), &bridge).await?.is_none() {
            return Err(CapError::not_found(format!(
                "mode=ovn: integration bridge {bridge} does not exist on this host: is ovn-controller \
                 running here (it creates br-int)? -o bridge=NAME names another"
            )));
        }
        let switch = options.ovn_switch.clone().unwrap_or_else(|| default_switch(&r.network_id));
        let data = r.ipv4_data.as_deref().unwrap_or_default();
        let subnet = data
            .iter()
            .find(|d| !d.pool.is_empty())
            .map(|d| Cidr::parse(&d.pool).map_err(|e| CapError::from(e).context("IPv4Data.Pool")))
            .transpose()?
            .map(|c| c.network());
        if let (Some(s), Some(want)) = (topo.switch(switch.as_str()), subnet) {
            if let Some(have) = s.subnet.as_deref().filter(|h| *h != want.to_string()) {
                return Err(CapError::invalid(format!(
                    "mode=ovn: OVN logical switch {switch} has subnet {have}, this network's is {want}: \
                     every network on one switch needs the same --subnet"
                )));
            }
        }
        {
            let st = self.state.lock().await;
            if st.networks.contains_key(&r.network_id) {
                return Err(CapError::exists(format!("network {} exists already", short(&r.network_id))));
            }
            if let Some((id, _)) =
                st.networks.iter().find(|(_, n)| n.ovn.as_ref().is_some_and(|o| o.switch == switch))
            {
                return Err(CapError::exists(format!(
                    "mode=ovn: network {} of this host is on OVN logical switch {switch} already",
                    short(id)
                )));
            }
        }
        let mut created_switch = false;
        if topo.switch(switch.as_str()).is_none() {
            let op = Op::Ovn {
                change: OvnChange::CreateSwitch { name: switch.clone(), subnet, mtu: options.mtu },
            };
            match self.change(&format!("CreateNetwork {}", short(&r.network_id)), vec![op]).await {
                Ok(_) => created_switch = true,
                // Another host made it a moment ago: the same network.
                Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let network = Network {
            bridge,
            gateway,
            created_bridge: false,
            bridge_address: None,
            bridge_vlan: false,
            options,
            ovn: Some(OvnNetwork { switch: switch.clone(), created_switch }),
        };
        let saved = self
            .update(|s| {
                // The plugin's own pool of this network (its IPAM): addresses from the switch.
                if let Some(want) = subnet {
                    let spaces: Vec<&str> = data.iter().map(|d| d.address_space.as_str()).collect();
                    let pool = s.pools.iter_mut().find(|(id, pool)| {
                        pool.pool == want && spaces.iter().any(|sp| id.starts_with(&format!("{sp}/")))
                    });
                    if let Some((_, pool)) = pool {
                        pool.ovn = Some(OvnPool { switch: switch.clone(), held: Default::default() });
                    }
                }
                s.networks.insert(r.network_id.clone(), network);
                Ok(())
            })
            .await;
        if saved.is_err() && created_switch {
            self.drop_switch_if_unused(&switch, &r.network_id).await;
        }
        saved
    }

    /// DeleteNetwork of a mode=ovn network: its switch goes only when this
    /// plugin created it and no host has a port on it any more.
    pub(super) async fn delete_ovn_network(&self, id: &str, ovn: &OvnNetwork) {
        if ovn.created_switch {
            self.drop_switch_if_unused(&ovn.switch, id).await;
        }
        let _ = self
            .update(|s| {
                for pool in s.pools.values_mut() {
                    if pool.ovn.as_ref().is_some_and(|o| o.switch == ovn.switch) {
                        pool.ovn = None;
                    }
                }
                Ok(())
            })
            .await;
    }

    async fn drop_switch_if_unused(&self, switch: &OvnName, network_id: &str) {
        let unused = match self.topology().await {
            Ok(t) => t.switch(switch.as_str()).is_some_and(|s| s.ports.is_empty()),
            Err(e) => {
                eprintln!("ovs-run docker-plugin: OVN logical switch {switch} left in place: {e}");
                return;
            }
        };
        if !unused {
            return;
        }
        // The delete's wait (the ports still as read) keeps a port another
        // host adds meanwhile: then the switch stays, as it must.
        let op = Op::Ovn { change: OvnChange::DeleteSwitch { name: switch.clone() } };
        if let Err(e) = self.change(&format!("DeleteNetwork {}", short(network_id)), vec![op]).await {
            eprintln!("ovs-run docker-plugin: OVN logical switch {switch} left in place: {e}");
        }
    }

    /// The OVN switch of pool `pool_id`, when it is a mode=ovn network's.
    pub(super) async fn ovn_pool(&self, pool_id: &str) -> Option<OvnName> {
        let st = self.state.lock().await;
        st.pools.get(pool_id).and_then(|p| p.ovn.as_ref()).map(|o| o.switch.clone())
    }

    /// RequestAddress from a mode=ovn network's pool: the first address no
    /// port of the switch holds, reserved by creating its port (see the
    /// module doc).
    pub(super) async fn ovn_request_address(&self, r: &p::RequestAddress) -> CapResult<Cidr> {
        let gateway =
            r.options.as_ref().and_then(|o| o.get(REQUEST_ADDRESS_TYPE)).is_some_and(|t| t == GATEWAY_TYPE);
        // One allocation at a time on this host; other hosts race through the database.
        let _one = self.ovn_ipam.lock().await;
        let pool = {
            let st = self.state.lock().await;
            st.pools
                .get(&r.pool_id)
                .cloned()
                .ok_or_else(|| CapError::not_found(format!("no pool {} (was it released?)", r.pool_id)))?
        };
        let Some(link) = &pool.ovn else {
            return Err(CapError::failed(format!("pool {} is not a mode=ovn network's", r.pool_id)));
        };
        let topo = self.topology().await?;
        let sw = topo.switch(link.switch.as_str()).ok_or_else(|| {
            CapError::not_found(format!(
                "OVN logical switch {} is gone from the northbound database (removed by another host?); \
                 recreate the network",
                link.switch
            ))
        })?;
        let mut taken = taken_addresses(&topo, sw);
        taken.extend(pool.allocated.iter().copied());
        let range = pool.sub_pool.unwrap_or(pool.pool);
        let wanted: Vec<IpAddr> = if r.address.is_empty() {
            ipam::hosts(range).filter(|a| !taken.contains(a)).take(MAX_RACES).collect()
        } else {
            let a = crate::types::parse_ip(&r.address).map_err(|e| CapError::from(e).context("Address"))?;
            if !pool.pool.contains(a) || !ipam::is_host(pool.pool, a) {
                return Err(CapError::invalid(format!(
                    "address {a} is not a host address of pool {}",
                    pool.pool
                )));
            }
            if taken.contains(&a) {
                let what = if gateway { "the gateway address" } else { "address" };
                return Err(CapError::exists(format!(
                    "{what} {a} of pool {} is already in use (OVN logical switch {})",
                    pool.pool, link.switch
                )));
            }
            vec![a]
        };
        if wanted.is_empty() {
            return Err(CapError::failed(format!(
                "pool {} is exhausted: every address of {range} is in use on OVN logical switch {}",
                pool.pool, link.switch
            )));
        }
        for ip in &wanted {
            let mac = reservation_mac(&r.pool_id, *ip);
            let port = lsp_spec(lsp_name(&link.switch, *ip), mac, *ip);
            let op = Op::Ovn { change: OvnChange::AddSwitchPort { switch: link.switch.clone(), port } };
            match self.change(&format!("RequestAddress {ip}"), vec![op]).await {
                Ok(_) => {}
                // Another host reserved it since the read: the next one.
                Err(e) if e.kind == ErrorKind::AlreadyExists && r.address.is_empty() => continue,
                Err(e) if e.kind == ErrorKind::AlreadyExists => {
                    return Err(CapError::exists(format!(
                        "address {ip} of pool {} is already in use (OVN logical switch {}, another host)",
                        pool.pool, link.switch
                    )))
                }
                Err(e) => return Err(e),
            }
            let kept = self
                .update(|s| {
                    let p = s.pools.get_mut(&r.pool_id).ok_or_else(|| {
                        CapError::not_found(format!("pool {} was released meanwhile", r.pool_id))
                    })?;
                    p.allocated.insert(*ip);
                    if let Some(o) = p.ovn.as_mut() {
                        o.held.insert(*ip, mac);
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = kept {
                let _ = self.remove_ours(&link.switch, *ip, mac, "RequestAddress failed").await;
                return Err(e);
            }
            return Ok(Cidr { addr: *ip, prefix: pool.pool.prefix });
        }
        Err(CapError::failed(format!(
            "pool {}: other hosts took each of the {} free addresses tried on OVN logical switch {}; try again",
            pool.pool,
            wanted.len(),
            link.switch
        )))
    }

    /// ReleaseAddress: the reservation's port goes, when it is still held
    /// (an endpoint that used it removed it already at DeleteEndpoint).
    pub(super) async fn ovn_release_address(&self, pool_id: &str, address: &str) -> CapResult<()> {
        let a = address.split_once('/').map(|(a, _)| a).unwrap_or(address);
        let Ok(ip) = crate::types::parse_ip(a) else { return Ok(()) };
        let held = {
            let st = self.state.lock().await;
            st.pools
                .get(pool_id)
                .and_then(|p| p.ovn.as_ref())
                .and_then(|o| o.held.get(&ip).map(|mac| (o.switch.clone(), *mac)))
        };
        let Some((switch, mac)) = held else { return Ok(()) };
        self.remove_ours(&switch, ip, mac, &format!("ReleaseAddress {ip}")).await?;
        self.update(|s| {
            if let Some(o) = s.pools.get_mut(pool_id).and_then(|p| p.ovn.as_mut()) {
                o.held.remove(&ip);
            }
            Ok(())
        })
        .await
    }

    /// Remove the port holding `ip` on `switch` if it is ours (has `mac`).
    async fn remove_ours(&self, switch: &OvnName, ip: IpAddr, mac: MacAddr, what: &str) -> CapResult<()> {
        let ops = self.remove_ours_ops(switch, &lsp_name(switch, ip), mac).await?;
        self.change(what, ops).await.map(drop)
    }

    /// The change that removes logical port `name` of `switch`, when it
    /// exists and carries `mac` (another host's port of that name stays).
    async fn remove_ours_ops(&self, switch: &OvnName, name: &OvnName, mac: MacAddr) -> CapResult<Vec<Op>> {
        let topo = self.topology().await?;
        let ours = topo.switch_port(name.as_str()).is_some_and(|(s, p)| {
            s.name == switch.as_str() && p.addresses.iter().any(|a| a.starts_with(&mac.to_string()))
        });
        Ok(if ours {
            vec![Op::Ovn { change: OvnChange::DelSwitchPort { switch: switch.clone(), name: name.clone() } }]
        } else {
            vec![]
        })
    }

    /// CreateEndpoint on a mode=ovn network: the endpoint's logical port,
    /// its MAC, and the changes to make before the OVS port (none when the
    /// plugin's IPAM reserved the address: its port exists).
    pub(super) async fn ovn_endpoint(
        &self,
        net: &Network,
        address: Option<Cidr>,
        mac: Option<MacAddr>,
        fallback_mac: MacAddr,
    ) -> CapResult<(OvnEndpoint, MacAddr, Vec<Op>)> {
        let Some(ovn) = &net.ovn else { unreachable!("called for mode=ovn networks") };
        let ip = address.map(|a| a.addr).filter(IpAddr::is_ipv4).ok_or_else(|| {
            CapError::invalid("mode=ovn: the endpoint has no IPv4 address (its logical port needs one)")
        })?;
        let name = lsp_name(&ovn.switch, ip);
        let ep = OvnEndpoint { switch: ovn.switch.clone(), port: name.clone() };
        let held = {
            let st = self.state.lock().await;
            st.pools
                .values()
                .filter_map(|p| p.ovn.as_ref())
                .find(|o| o.switch == ovn.switch)
                .and_then(|o| o.held.get(&ip).copied())
        };
        if let Some(held) = held {
            if let Some(m) = mac.filter(|m| *m != held) {
                return Err(CapError::invalid(format!(
                    "mode=ovn: MAC {m} asked for, but address {ip}'s logical port {name} was reserved with MAC \
                     {held} (a mode=ovn network with the plugin's IPAM chooses the MAC)"
                )));
            }
            return Ok((ep, held, vec![]));
        }
        // Docker's IPAM gave the address: reserve it here, where other hosts see it.
        let mac = mac.unwrap_or(fallback_mac);
        let topo = self.topology().await?;
        let sw = topo.switch(ovn.switch.as_str()).ok_or_else(|| {
            CapError::not_found(format!(
                "OVN logical switch {} is gone from the northbound database",
                ovn.switch
            ))
        })?;
        if taken_addresses(&topo, sw).contains(&ip) {
            return Err(CapError::exists(format!(
                "mode=ovn: address {ip} is in use on OVN logical switch {} (another host's container?): \
                 with --ipam-driver {} addresses are allocated from the northbound database",
                ovn.switch, self.name
            )));
        }
        let op = Op::Ovn {
            change: OvnChange::AddSwitchPort { switch: ovn.switch.clone(), port: lsp_spec(name, mac, ip) },
        };
        Ok((ep, mac, vec![op]))
    }

    /// The changes that take an endpoint's logical port away (when it is ours).
    pub(super) async fn ovn_teardown_ops(&self, ep: &Endpoint) -> CapResult<Vec<Op>> {
        match (&ep.ovn, ep.mac) {
            (Some(o), Some(mac)) => self.remove_ours_ops(&o.switch, &o.port, mac).await,
            _ => Ok(vec![]),
        }
    }

    /// After an endpoint's logical port went: its address is no longer held.
    pub(super) fn forget_held(s: &mut crate::docker_plugin::state::State, ep: &Endpoint) {
        let (Some(o), Some(a), Some(mac)) = (&ep.ovn, ep.address, ep.mac) else { return };
        for pool in s.pools.values_mut() {
            if let Some(p) = pool.ovn.as_mut().filter(|p| p.switch == o.switch) {
                if p.held.get(&a.addr) == Some(&mac) {
                    p.held.remove(&a.addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ovn::{RouterInfo, RouterPortInfo, SwitchPortInfo};

    fn port(name: &str, addresses: &[&str], router_port: Option<&str>) -> SwitchPortInfo {
        SwitchPortInfo {
            name: name.into(),
            port_type: if router_port.is_some() { "router".into() } else { String::new() },
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            port_security: vec![],
            dynamic_addresses: (name == "dyn").then(|| "0a:00:00:00:00:09 10.5.0.9".to_string()),
            up: false,
            router_port: router_port.map(str::to_string),
        }
    }

    #[test]
    fn taken_addresses_come_from_every_kind_of_port() {
        let sw = SwitchInfo {
            name: "ls".into(),
            subnet: None,
            mtu: None,
            ports: vec![
                port("a", &["0a:00:00:00:00:01 10.5.0.2 10.5.0.3"], None),
                port("dyn", &["dynamic"], None),
                port("r", &["router"], Some("lrp0")),
                port("u", &["unknown"], None),
            ],
        };
        let topo = Topology {
            switches: vec![sw.clone()],
            routers: vec![RouterInfo {
                name: "lr".into(),
                ports: vec![RouterPortInfo {
                    name: "lrp0".into(),
                    mac: "0a:00:00:00:00:ff".into(),
                    networks: vec!["10.5.0.1/24".into()],
                }],
            }],
        };
        let got: Vec<String> = taken_addresses(&topo, &sw).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.5.0.1", "10.5.0.2", "10.5.0.3", "10.5.0.9"]);
    }

    #[test]
    fn port_names_are_one_per_address_and_valid() {
        let ip: IpAddr = "10.5.0.7".parse().unwrap();
        assert_eq!(lsp_name(&OvnName::parse("ls-x").unwrap(), ip).as_str(), "ls-x-10.5.0.7");
        let long = OvnName::parse(&"s".repeat(60)).unwrap();
        let n = lsp_name(&long, ip);
        assert!(n.as_str().starts_with("ovsrun-") && n.as_str().ends_with("-10.5.0.7"), "{n}");
        assert_ne!(lsp_name(&OvnName::parse(&"t".repeat(60)).unwrap(), ip), n);
        assert_eq!(default_switch("4f1e2d3c4b5a69788796").as_str(), "docker-4f1e2d3c4b5a");
        let m = reservation_mac("p", ip);
        assert_eq!(m.0[0], 0x0a, "locally administered unicast");
    }
}
