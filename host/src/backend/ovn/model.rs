//! The dry-run model of the northbound database: a [`Topology`] (copied
//! from the real database when it answers, else empty) that every
//! [`OvnChange`] is checked against and applied to exactly as [`super::nb`]
//! would: the same refusals (a missing switch, a name taken), the same undo.

use super::nb::undo_delete_switch;
use super::{recreate_switch_port, OvnChange, RouterPortInfo, SwitchInfo, SwitchPortInfo, Topology};
use crate::backend::{Applied, Op};
use crate::error::{CapError, CapResult};

fn undo(c: OvnChange) -> Applied {
    Applied::changed(vec![Op::Ovn { change: c }])
}

fn port_taken(t: &Topology, name: &str) -> bool {
    t.switch_port(name).is_some()
}

/// Apply `change` to `t`, as the real database would.
pub fn apply(t: &mut Topology, change: &OvnChange) -> CapResult<Applied> {
    match change {
        OvnChange::CreateSwitch { name, subnet, mtu } => {
            if t.switch(name.as_str()).is_some() {
                return Err(CapError::exists(format!("OVN logical switch {name} already exists")));
            }
            t.switches.push(SwitchInfo {
                name: name.to_string(),
                subnet: subnet.map(|s| s.network().to_string()),
                mtu: mtu.map(|m| m.get()),
                ports: vec![],
            });
            t.switches.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(undo(OvnChange::DeleteSwitch { name: name.clone() }))
        }
        OvnChange::DeleteSwitch { name } => {
            if t.switch(name.as_str()).is_none() {
                return Ok(Applied::unchanged());
            }
            let applied = undo_delete_switch(t, name);
            t.switches.retain(|s| s.name != name.as_str());
            Ok(applied)
        }
        OvnChange::AddSwitchPort { switch, port } => {
            if t.switch(switch.as_str()).is_none() {
                return Err(CapError::not_found(format!("OVN logical switch {switch} does not exist")));
            }
            if port_taken(t, port.name.as_str()) {
                return Err(CapError::exists(format!(
                    "OVN logical switch port {} already exists",
                    port.name
                )));
            }
            let s = t.switches.iter_mut().find(|s| s.name == switch.as_str()).expect("checked");
            s.ports.push(SwitchPortInfo {
                name: port.name.to_string(),
                port_type: String::new(),
                addresses: port.addresses.clone(),
                port_security: port.port_security.clone(),
                dynamic_addresses: None,
                up: false,
                router_port: None,
            });
            s.ports.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(undo(OvnChange::DelSwitchPort { switch: switch.clone(), name: port.name.clone() }))
        }
        OvnChange::DelSwitchPort { switch, name } => {
            let Some((s, p)) = t.switch_port(name.as_str()) else {
                return Ok(Applied::unchanged());
            };
            if s.name != switch.as_str() {
                return Err(CapError::not_found(format!(
                    "OVN logical switch port {name} is on switch {}, not {switch}",
                    s.name
                )));
            }
            let applied = match recreate_switch_port(&s.name, p) {
                Some(c) => undo(c),
                None => Applied::irreversible(),
            };
            let s = t.switches.iter_mut().find(|s| s.name == switch.as_str()).expect("found");
            s.ports.retain(|p| p.name != name.as_str());
            Ok(applied)
        }
        OvnChange::CreateRouter { name } => {
            if t.router(name.as_str()).is_some() {
                return Err(CapError::exists(format!("OVN logical router {name} already exists")));
            }
            t.routers.push(super::RouterInfo { name: name.to_string(), ports: vec![] });
            t.routers.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(undo(OvnChange::DeleteRouter { name: name.clone() }))
        }
        OvnChange::DeleteRouter { name } => match t.router(name.as_str()) {
            None => Ok(Applied::unchanged()),
            Some(r) if !r.ports.is_empty() => Err(CapError::invalid(format!(
                "OVN logical router {name} still has ports: remove them first (del-router-port)"
            ))),
            Some(_) => {
                t.routers.retain(|r| r.name != name.as_str());
                Ok(undo(OvnChange::CreateRouter { name: name.clone() }))
            }
        },
        OvnChange::AddRouterPort { router, switch, name, mac, networks } => {
            if t.router(router.as_str()).is_none() {
                return Err(CapError::not_found(format!("OVN logical router {router} does not exist")));
            }
            if t.switch(switch.as_str()).is_none() {
                return Err(CapError::not_found(format!("OVN logical switch {switch} does not exist")));
            }
            if t.routers.iter().any(|r| r.ports.iter().any(|p| p.name == name.as_str())) {
                return Err(CapError::exists(format!("OVN logical router port {name} already exists")));
            }
            let peer = super::peer_switch_port(name.as_str());
            if port_taken(t, &peer) {
                return Err(CapError::exists(format!("OVN logical switch port {peer} already exists")));
            }
            let r = t.routers.iter_mut().find(|r| r.name == router.as_str()).expect("checked");
            r.ports.push(RouterPortInfo {
                name: name.to_string(),
                mac: mac.to_string(),
                networks: networks.iter().map(|c| c.to_string()).collect(),
            });
            let s = t.switches.iter_mut().find(|s| s.name == switch.as_str()).expect("checked");
            s.ports.push(SwitchPortInfo {
                name: peer,
                port_type: "router".into(),
                addresses: vec!["router".into()],
                port_security: vec![],
                dynamic_addresses: None,
                up: false,
                router_port: Some(name.to_string()),
            });
            Ok(undo(OvnChange::DelRouterPort { router: router.clone(), name: name.clone() }))
        }
        OvnChange::DelRouterPort { router, name } => {
            let Some(r) = t.routers.iter_mut().find(|r| r.name == router.as_str()) else {
                return Ok(Applied::unchanged());
            };
            let Some(i) = r.ports.iter().position(|p| p.name == name.as_str()) else {
                return Ok(Applied::unchanged());
            };
            let lrp = r.ports.remove(i);
            let mut switch = None;
            let peer = super::peer_switch_port(name.as_str());
            for s in &mut t.switches {
                if s.ports.iter().any(|p| p.name == peer && p.port_type == "router") {
                    s.ports.retain(|p| p.name != peer);
                    switch = Some(s.name.clone());
                }
            }
            let again = rejoin(router, name, switch, &lrp);
            Ok(again.map(undo).unwrap_or_else(Applied::irreversible))
        }
    }
}

/// The change that puts back router port `lrp` of `router` on `switch`.
fn rejoin(
    router: &super::OvnName,
    name: &super::OvnName,
    switch: Option<String>,
    lrp: &RouterPortInfo,
) -> Option<OvnChange> {
    Some(OvnChange::AddRouterPort {
        router: router.clone(),
        switch: super::OvnName::parse(&switch?).ok()?,
        name: name.clone(),
        mac: crate::types::MacAddr::parse(&lrp.mac).ok()?,
        networks: lrp.networks.iter().map(|n| crate::types::Cidr::parse(n).ok()).collect::<Option<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{OvnName, SwitchPortSpec};
    use super::*;

    fn n(s: &str) -> OvnName {
        OvnName::parse(s).unwrap()
    }

    #[test]
    fn model_refuses_like_the_database_and_undoes_exactly() {
        let mut t = Topology::default();
        let create = OvnChange::CreateSwitch { name: n("ls0"), subnet: None, mtu: None };
        apply(&mut t, &create).unwrap();
        assert_eq!(apply(&mut t, &create).unwrap_err().kind, crate::error::ErrorKind::AlreadyExists);
        let port = SwitchPortSpec {
            name: n("p1"),
            addresses: vec!["0a:00:00:00:00:01 10.0.0.1".into()],
            port_security: vec![],
        };
        let add = OvnChange::AddSwitchPort { switch: n("nope"), port: port.clone() };
        assert_eq!(apply(&mut t, &add).unwrap_err().kind, crate::error::ErrorKind::NotFound);
        apply(&mut t, &OvnChange::AddSwitchPort { switch: n("ls0"), port }).unwrap();
        let before = t.clone();
        let del = apply(&mut t, &OvnChange::DeleteSwitch { name: n("ls0") }).unwrap();
        assert!(t.switches.is_empty() && del.reversible);
        for op in &del.undo {
            let Op::Ovn { change } = op else { panic!() };
            apply(&mut t, change).unwrap();
        }
        assert_eq!(t, before);
    }
}
