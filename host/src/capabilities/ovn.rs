//! `ovs-run:net/ovn`: OVN logical switches, their ports and logical routers
//! in the northbound database. Every argument is parsed (names, CIDRs,
//! "MAC IP" entries) before the gate sees the change: bad input reaches
//! neither the policy nor the database.

use super::ovs_run::net::ovn::{
    Host, RouterInfo as WitRouter, RouterPortInfo as WitRouterPort, SwitchInfo as WitSwitch, SwitchOptions,
    SwitchPortInfo as WitSwitchPort,
};
use super::{limits, Caps, Trappable};
use crate::backend::ovn::{parse_lsp_address, OvnChange, OvnName, RouterInfo, SwitchInfo, SwitchPortSpec};
use crate::backend::Op;
use crate::error::CapResult;
use crate::types::{Cidr, MacAddr, Mtu};

/// Entries of a port's addresses or port security, and networks of a router port.
const MAX_ENTRIES: usize = 16;

fn name(what: &str, s: &str) -> CapResult<OvnName> {
    OvnName::parse(s).map_err(|e| e.context(what))
}

fn entries(what: &str, v: &[String], security: bool) -> CapResult<Vec<String>> {
    limits::list(what, v.len(), MAX_ENTRIES)?;
    v.iter().map(|e| parse_lsp_address(e, security)).collect()
}

impl Caps {
    /// Apply one OVN change through the gate; whether it changed anything.
    async fn ovn_change(&self, change: CapResult<OvnChange>) -> CapResult<bool> {
        Ok(self.gate.apply(Op::Ovn { change: change? }).await?.changed)
    }
}

impl Host for Caps {
    async fn create_switch(&mut self, name_: String, options: SwitchOptions) -> Trappable<()> {
        self.tick()?;
        let r = self.ovn_change(create_switch(&name_, &options)).await.map(drop);
        self.finish("create-switch", r)
    }

    async fn delete_switch(&mut self, name_: String) -> Trappable<bool> {
        self.tick()?;
        let change = name("switch", &name_).map(|name| OvnChange::DeleteSwitch { name });
        let r = self.ovn_change(change).await;
        self.finish("delete-switch", r)
    }

    async fn list_switches(&mut self) -> Trappable<Vec<WitSwitch>> {
        self.tick()?;
        let r = self.gate.list_switches().await.map(|v| v.into_iter().map(switch_to_wit).collect());
        self.finish("list-switches", r)
    }

    async fn add_switch_port(
        &mut self,
        switch: String,
        name_: String,
        addresses: Vec<String>,
        port_security: Vec<String>,
    ) -> Trappable<()> {
        self.tick()?;
        let change = add_switch_port(&switch, &name_, &addresses, &port_security);
        let r = self.ovn_change(change).await.map(drop);
        self.finish("add-switch-port", r)
    }

    async fn del_switch_port(&mut self, switch: String, name_: String) -> Trappable<bool> {
        self.tick()?;
        let change = name("switch", &switch)
            .and_then(|switch| Ok(OvnChange::DelSwitchPort { switch, name: name("port", &name_)? }));
        let r = self.ovn_change(change).await;
        self.finish("del-switch-port", r)
    }

    async fn create_router(&mut self, name_: String) -> Trappable<()> {
        self.tick()?;
        let change = name("router", &name_).map(|name| OvnChange::CreateRouter { name });
        let r = self.ovn_change(change).await.map(drop);
        self.finish("create-router", r)
    }

    async fn delete_router(&mut self, name_: String) -> Trappable<bool> {
        self.tick()?;
        let change = name("router", &name_).map(|name| OvnChange::DeleteRouter { name });
        let r = self.ovn_change(change).await;
        self.finish("delete-router", r)
    }

    async fn add_router_port(
        &mut self,
        router: String,
        switch: String,
        name_: String,
        mac: String,
        networks: Vec<String>,
    ) -> Trappable<()> {
        self.tick()?;
        let change = add_router_port(&router, &switch, &name_, &mac, &networks);
        let r = self.ovn_change(change).await.map(drop);
        self.finish("add-router-port", r)
    }

    async fn del_router_port(&mut self, router: String, name_: String) -> Trappable<bool> {
        self.tick()?;
        let change = name("router", &router)
            .and_then(|router| Ok(OvnChange::DelRouterPort { router, name: name("port", &name_)? }));
        let r = self.ovn_change(change).await;
        self.finish("del-router-port", r)
    }

    async fn list_routers(&mut self) -> Trappable<Vec<WitRouter>> {
        self.tick()?;
        let r = self.gate.list_routers().await.map(|v| v.into_iter().map(router_to_wit).collect());
        self.finish("list-routers", r)
    }
}

fn create_switch(name_: &str, options: &SwitchOptions) -> CapResult<OvnChange> {
    Ok(OvnChange::CreateSwitch {
        name: name("switch", name_)?,
        subnet: options.subnet.as_deref().map(Cidr::parse).transpose()?,
        mtu: options.mtu.map(Mtu::new).transpose()?,
    })
}

fn add_switch_port(
    switch: &str,
    name_: &str,
    addresses: &[String],
    port_security: &[String],
) -> CapResult<OvnChange> {
    Ok(OvnChange::AddSwitchPort {
        switch: name("switch", switch)?,
        port: SwitchPortSpec {
            name: name("port", name_)?,
            addresses: entries("addresses", addresses, false)?,
            port_security: entries("port-security", port_security, true)?,
        },
    })
}

fn add_router_port(
    router: &str,
    switch: &str,
    name_: &str,
    mac: &str,
    networks: &[String],
) -> CapResult<OvnChange> {
    limits::list("networks", networks.len(), MAX_ENTRIES)?;
    if networks.is_empty() {
        return Err(crate::error::CapError::invalid(format!(
            "router port {name_}: networks is empty (want the router's address on the switch, e.g. 10.0.1.1/24)"
        )));
    }
    Ok(OvnChange::AddRouterPort {
        router: name("router", router)?,
        switch: name("switch", switch)?,
        name: name("port", name_)?,
        mac: MacAddr::parse(mac)?,
        networks: networks.iter().map(|n| Cidr::parse(n)).collect::<Result<_, _>>()?,
    })
}

fn switch_to_wit(s: SwitchInfo) -> WitSwitch {
    WitSwitch {
        name: s.name,
        subnet: s.subnet,
        mtu: s.mtu,
        ports: s
            .ports
            .into_iter()
            .map(|p| WitSwitchPort {
                name: p.name,
                port_type: p.port_type,
                addresses: p.addresses,
                port_security: p.port_security,
                dynamic_addresses: p.dynamic_addresses,
                up: p.up,
            })
            .collect(),
    }
}

fn router_to_wit(r: RouterInfo) -> WitRouter {
    WitRouter {
        name: r.name,
        ports: r
            .ports
            .into_iter()
            .map(|p| WitRouterPort { name: p.name, mac: p.mac, networks: p.networks })
            .collect(),
    }
}
