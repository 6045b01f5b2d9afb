//! The real northbound database: each [`OvnChange`] is ONE `OVN_Northbound`
//! transaction whose `wait` operations check what the change assumes (a
//! switch that must exist, a name that must be free, a port still as it was
//! read), so two clients racing never half-apply anything. Names are not
//! unique in OVN's schema (only in practice): the `wait` for "no row of
//! this name" is what keeps them unique here.

use std::collections::BTreeMap;

use ovsdb_client::ovn_nb::{
    LogicalRouter, LogicalRouterPort, LogicalSwitch, LogicalSwitchPort, DATABASE as DB, REQUIREMENTS,
};
use ovsdb_client::{
    Atom, Condition, Connection, Error, Mutation, Mutator, OpError, OpResult, Operation, Row, Table,
    Transaction, Uuid, Value,
};

use super::{
    recreate_switch_port, OvnChange, OvnName, RouterInfo, RouterPortInfo, SwitchInfo, SwitchPortInfo,
    Topology,
};
use crate::backend::ovsdb::{op_error, OvsdbUri};
use crate::backend::Applied;
use crate::error::{CapError, CapResult};

/// A connection to the `OVN_Northbound` database; clones share it.
#[derive(Clone)]
pub struct OvnNb {
    conn: std::sync::Arc<Connection>,
}

impl OvnNb {
    /// Connect and check that the database has the tables and columns used here.
    pub async fn connect(uri: &OvsdbUri) -> CapResult<OvnNb> {
        let (conn, _notes) = Connection::connect(uri).await.map_err(|e| {
            let e = CapError::from(e);
            e.context("OVN northbound database (--ovn-nb, $OVN_NB_DB)")
        })?;
        conn.check_schema(DB, REQUIREMENTS).await?;
        Ok(OvnNb { conn: std::sync::Arc::new(conn) })
    }

    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    async fn transact(
        &self,
        what: &str,
        mut ops: Vec<Operation>,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<OpResult>> {
        ops.push(Operation::comment(format!("ovs-run: {what}")));
        crate::backend::stats::ovsdb_transaction();
        let txn = Transaction { database: DB.to_string(), ops };
        self.conn.transact(&txn).await.map_err(|e| match e {
            Error::Op(op) => explain(&op).unwrap_or_else(|| op_error(&op)),
            other => other.into(),
        })
    }

    /// Every switch, router and port, in one read.
    pub async fn topology(&self) -> CapResult<Topology> {
        let ops = vec![
            Operation::select(LogicalSwitch::NAME, vec![], LogicalSwitch::COLUMNS),
            Operation::select(LogicalSwitchPort::NAME, vec![], LogicalSwitchPort::COLUMNS),
            Operation::select(LogicalRouter::NAME, vec![], LogicalRouter::COLUMNS),
            Operation::select(LogicalRouterPort::NAME, vec![], LogicalRouterPort::COLUMNS),
        ];
        let r = self.transact("read", ops, |_| None).await?;
        let lsps: BTreeMap<Uuid, LogicalSwitchPort> = r[1]
            .rows()
            .iter()
            .map(LogicalSwitchPort::from_row)
            .filter_map(|p| Some((p.uuid.clone()?, p)))
            .collect();
        let lrps: BTreeMap<Uuid, LogicalRouterPort> = r[3]
            .rows()
            .iter()
            .map(LogicalRouterPort::from_row)
            .filter_map(|p| Some((p.uuid.clone()?, p)))
            .collect();
        let mut switches: Vec<SwitchInfo> = r[0]
            .rows()
            .iter()
            .map(LogicalSwitch::from_row)
            .map(|s| {
                let mut ports: Vec<SwitchPortInfo> =
                    s.ports.iter().filter_map(|u| lsps.get(u)).map(switch_port_info).collect();
                ports.sort_by(|a, b| a.name.cmp(&b.name));
                SwitchInfo {
                    name: s.name,
                    subnet: s.other_config.get("subnet").cloned(),
                    mtu: s.other_config.get("mtu").and_then(|m| m.parse().ok()),
                    ports,
                }
            })
            .collect();
        switches.sort_by(|a, b| a.name.cmp(&b.name));
        let mut routers: Vec<RouterInfo> = r[2]
            .rows()
            .iter()
            .map(LogicalRouter::from_row)
            .map(|lr| {
                let mut ports: Vec<RouterPortInfo> = lr
                    .ports
                    .iter()
                    .filter_map(|u| lrps.get(u))
                    .map(|p| RouterPortInfo {
                        name: p.name.clone(),
                        mac: p.mac.clone(),
                        networks: p.networks.clone(),
                    })
                    .collect();
                ports.sort_by(|a, b| a.name.cmp(&b.name));
                RouterInfo { name: lr.name, ports }
            })
            .collect();
        routers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Topology { switches, routers })
    }

    /// Carry out one change; what undoes it.
    pub async fn apply(&self, change: &OvnChange) -> CapResult<Applied> {
        let what = change.to_string();
        match change {
            OvnChange::CreateSwitch { name, subnet, mtu } => {
                let mut other = Vec::new();
                if let Some(s) = subnet {
                    other.push(("subnet".to_string(), s.network().to_string()));
                }
                if let Some(m) = mtu {
                    other.push(("mtu".to_string(), m.get().to_string()));
                }
                let row = Row::new().with("name", name.as_str()).with("other_config", Value::map(other));
                let ops = vec![
                    wait_named(LogicalSwitch::NAME, name, false),
                    Operation::insert(LogicalSwitch::NAME, row, None),
                ];
                self.transact(&what, ops, |e| {
                    (e.index == 0)
                        .then(|| CapError::exists(format!("OVN logical switch {name} already exists")))
                })
                .await?;
                Ok(Applied::changed(vec![super::super::Op::Ovn {
                    change: OvnChange::DeleteSwitch { name: name.clone() },
                }]))
            }
            OvnChange::DeleteSwitch { name } => {
                let r = self
                    .transact(
                        "read switch",
                        vec![Operation::select(LogicalSwitch::NAME, where_name(name), &["_uuid", "ports"])],
                        |_| None,
                    )
                    .await?;
                let Some(row) = r[0].rows().first() else {
                    return Ok(Applied::unchanged());
                };
                let uuid = row.uuid().cloned().ok_or_else(|| CapError::failed("switch row without _uuid"))?;
                let before = self.topology().await?;
                let ops = vec![
                    // Still the ports that were read: the undo recreates exactly those.
                    Operation::wait_now(
                        LogicalSwitch::NAME,
                        vec![Condition::uuid(&uuid)],
                        &["ports"],
                        vec![Row::new().with("ports", row.get("ports").cloned().unwrap_or_else(Value::empty))],
                    ),
                    Operation::delete(LogicalSwitch::NAME, vec![Condition::uuid(&uuid)]),
                ];
                self.transact(&what, ops, |e| {
                    (e.index == 0).then(|| {
                        CapError::failed(format!(
                            "OVN logical switch {name} changed while being deleted; try again"
                        ))
                    })
                })
                .await?;
                Ok(undo_delete_switch(&before, name))
            }
            OvnChange::AddSwitchPort { switch, port } => {
                let lsp = Row::new()
                    .with("name", port.name.as_str())
                    .with("addresses", Value::set(port.addresses.iter().map(String::as_str)))
                    .with("port_security", Value::set(port.port_security.iter().map(String::as_str)));
                let ops = vec![
                    wait_named(LogicalSwitch::NAME, switch, true),
                    wait_named(LogicalSwitchPort::NAME, &port.name, false),
                    Operation::insert(LogicalSwitchPort::NAME, lsp, Some("lsp")),
                    Operation::mutate(
                        LogicalSwitch::NAME,
                        where_name(switch),
                        vec![Mutation::new("ports", Mutator::Insert, Value::set([Atom::named("lsp")]))],
                    ),
                ];
                let p = &port.name;
                self.transact(&what, ops, |e| match e.index {
                    0 => Some(CapError::not_found(format!("OVN logical switch {switch} does not exist"))),
                    1 => Some(CapError::exists(format!("OVN logical switch port {p} already exists"))),
                    _ if e.is_unique_index_violation() => {
                        Some(CapError::exists(format!("OVN logical switch port {p} already exists")))
                    }
                    _ => None,
                })
                .await?;
                Ok(Applied::changed(vec![super::super::Op::Ovn {
                    change: OvnChange::DelSwitchPort { switch: switch.clone(), name: port.name.clone() },
                }]))
            }
            OvnChange::DelSwitchPort { switch, name } => {
                let before = self.topology().await?;
                let Some((s, p)) = before.switch_port(name.as_str()) else {
                    return Ok(Applied::unchanged());
                };
                if s.name != switch.as_str() {
                    return Err(CapError::not_found(format!(
                        "OVN logical switch port {name} is on switch {}, not {switch}",
                        s.name
                    )));
                }
                let undo = recreate_switch_port(&s.name, p);
                self.remove_switch_port(&what, switch, name).await?;
                Ok(match undo {
                    Some(c) => Applied::changed(vec![super::super::Op::Ovn { change: c }]),
                    None => Applied::irreversible(),
                })
            }
            OvnChange::CreateRouter { name } => {
                let ops = vec![
                    wait_named(LogicalRouter::NAME, name, false),
                    Operation::insert(LogicalRouter::NAME, Row::new().with("name", name.as_str()), None),
                ];
                self.transact(&what, ops, |e| {
                    (e.index == 0)
                        .then(|| CapError::exists(format!("OVN logical router {name} already exists")))
                })
                .await?;
                Ok(Applied::changed(vec![super::super::Op::Ovn {
                    change: OvnChange::DeleteRouter { name: name.clone() },
                }]))
            }
            OvnChange::DeleteRouter { name } => {
                // Only without ports: the wait (ports == []) makes it so atomically.
                let no_ports = Row::new().with("ports", Value::empty());
                let ops = vec![
                    wait_named(LogicalRouter::NAME, name, true),
                    Operation::wait_now(LogicalRouter::NAME, where_name(name), &["ports"], vec![no_ports]),
                    Operation::delete(LogicalRouter::NAME, where_name(name)),
                ];
                let r = self
                    .transact(&what, ops, |e| match e.index {
                        0 => Some(CapError::not_found(format!("OVN logical router {name} does not exist"))),
                        1 => Some(CapError::invalid(format!(
                            "OVN logical router {name} still has ports: remove them first (del-router-port)"
                        ))),
                        _ => None,
                    })
                    .await;
                match r {
                    Ok(_) => Ok(Applied::changed(vec![super::super::Op::Ovn {
                        change: OvnChange::CreateRouter { name: name.clone() },
                    }])),
                    Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(Applied::unchanged()),
                    Err(e) => Err(e),
                }
            }
            OvnChange::AddRouterPort { router, switch, name, mac, networks } => {
                let lrp = Row::new()
                    .with("name", name.as_str())
                    .with("mac", mac.to_string())
                    .with("networks", Value::set(networks.iter().map(|c| c.to_string())));
                let peer = super::peer_switch_port(name.as_str());
                let lsp = Row::new()
                    .with("name", peer.as_str())
                    .with("type", "router")
                    .with("addresses", Value::set(["router"]))
                    .with("options", Value::map([("router-port", name.as_str())]));
                let ops = vec![
                    wait_named(LogicalRouter::NAME, router, true),
                    wait_named(LogicalSwitch::NAME, switch, true),
                    wait_named(LogicalRouterPort::NAME, name, false),
                    wait_name(LogicalSwitchPort::NAME, &peer, false),
                    Operation::insert(LogicalRouterPort::NAME, lrp, Some("lrp")),
                    Operation::mutate(
                        LogicalRouter::NAME,
                        where_name(router),
                        vec![Mutation::new("ports", Mutator::Insert, Value::set([Atom::named("lrp")]))],
                    ),
                    Operation::insert(LogicalSwitchPort::NAME, lsp, Some("lsp")),
                    Operation::mutate(
                        LogicalSwitch::NAME,
                        where_name(switch),
                        vec![Mutation::new("ports", Mutator::Insert, Value::set([Atom::named("lsp")]))],
                    ),
                ];
                self.transact(&what, ops, |e| match e.index {
                    0 => Some(CapError::not_found(format!("OVN logical router {router} does not exist"))),
                    1 => Some(CapError::not_found(format!("OVN logical switch {switch} does not exist"))),
                    2 => Some(CapError::exists(format!("OVN logical router port {name} already exists"))),
                    3 => Some(CapError::exists(format!("OVN logical switch port {peer} already exists"))),
                    _ if e.is_unique_index_violation() => {
                        Some(CapError::exists(format!("OVN router port {name} already exists")))
                    }
                    _ => None,
                })
                .await?;
                Ok(Applied::changed(vec![super::super::Op::Ovn {
                    change: OvnChange::DelRouterPort { router: router.clone(), name: name.clone() },
                }]))
            }
            OvnChange::DelRouterPort { router, name } => {
                let before = self.topology().await?;
                let Some(lrp) = before
                    .router(router.as_str())
                    .and_then(|r| r.ports.iter().find(|p| p.name == name.as_str()))
                else {
                    return Ok(Applied::unchanged());
                };
                let peer_name = super::peer_switch_port(name.as_str());
                let peer = before.switch_port(&peer_name).filter(|(_, p)| p.port_type == "router");
                let Some(lrp_uuid) = self.uuid_of(LogicalRouterPort::NAME, name.as_str()).await? else {
                    return Ok(Applied::unchanged());
                };
                let mut ops = vec![
                    // Still this router's port: the read above stays true until the commit.
                    Operation::wait_now(
                        LogicalRouter::NAME,
                        vec![
                            Condition::eq("name", router.as_str()),
                            Condition::includes("ports", Value::set([lrp_uuid.clone()])),
                        ],
                        &["name"],
                        vec![Row::new().with("name", router.as_str())],
                    ),
                    Operation::mutate(
                        LogicalRouter::NAME,
                        where_name(router),
                        vec![Mutation::new("ports", Mutator::Delete, Value::set([lrp_uuid]))],
                    ),
                ];
                if let Some((s, _)) = peer {
                    if let Some(u) = self.uuid_of(LogicalSwitchPort::NAME, &peer_name).await? {
                        ops.push(Operation::mutate(
                            LogicalSwitch::NAME,
                            vec![Condition::eq("name", s.name.as_str())],
                            vec![Mutation::new("ports", Mutator::Delete, Value::set([u]))],
                        ));
                    }
                }
                self.transact(&what, ops, |e| {
                    (e.index == 0).then(|| {
                        CapError::not_found(format!("OVN logical router {router} has no port {name}"))
                    })
                })
                .await?;
                let undo = match (peer, networks(lrp)) {
                    (Some((s, _)), Some(networks)) => {
                        let mac = crate::types::MacAddr::parse(&lrp.mac).ok();
                        match (OvnName::parse(&s.name), mac) {
                            (Ok(switch), Some(mac)) => Some(OvnChange::AddRouterPort {
                                router: router.clone(),
                                switch,
                                name: name.clone(),
                                mac,
                                networks,
                            }),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                Ok(match undo {
                    Some(c) => Applied::changed(vec![super::super::Op::Ovn { change: c }]),
                    None => Applied::irreversible(),
                })
            }
        }
    }

    /// The `_uuid` of the row of `table` named `name`, if there is one.
    async fn uuid_of(&self, table: &str, name: &str) -> CapResult<Option<Uuid>> {
        let r = self
            .transact(
                "read",
                vec![Operation::select(table, vec![Condition::eq("name", name)], &["_uuid"])],
                |_| None,
            )
            .await?;
        Ok(r[0].rows().first().and_then(|row| row.uuid().cloned()))
    }

    /// Take switch port `name` off `switch` (the row goes with its last reference).
    async fn remove_switch_port(&self, what: &str, switch: &OvnName, name: &OvnName) -> CapResult<()> {
        let Some(u) = self.uuid_of(LogicalSwitchPort::NAME, name.as_str()).await? else {
            return Ok(());
        };
        let ops = vec![
            Operation::wait_now(
                LogicalSwitch::NAME,
                vec![
                    Condition::eq("name", switch.as_str()),
                    Condition::includes("ports", Value::set([u.clone()])),
                ],
                &["name"],
                vec![Row::new().with("name", switch.as_str())],
            ),
            Operation::mutate(
                LogicalSwitch::NAME,
                where_name(switch),
                vec![Mutation::new("ports", Mutator::Delete, Value::set([u]))],
            ),
        ];
        self.transact(what, ops, |e| {
            (e.index == 0)
                .then(|| CapError::not_found(format!("OVN logical switch {switch} has no port {name}")))
        })
        .await?;
        Ok(())
    }
}

fn networks(p: &RouterPortInfo) -> Option<Vec<crate::types::Cidr>> {
    p.networks.iter().map(|n| crate::types::Cidr::parse(n).ok()).collect()
}

fn switch_port_info(p: &LogicalSwitchPort) -> SwitchPortInfo {
    SwitchPortInfo {
        name: p.name.clone(),
        port_type: p.port_type.clone(),
        addresses: p.addresses.clone(),
        port_security: p.port_security.clone(),
        dynamic_addresses: p.dynamic_addresses.clone(),
        up: p.up.unwrap_or(false),
        router_port: p.options.get("router-port").cloned(),
    }
}

/// What undoes deleting switch `name` as `before` had it: the switch with its
/// settings and its plain ports; a switch with a router or other special
/// port cannot be put back as it was.
pub fn undo_delete_switch(before: &Topology, name: &OvnName) -> Applied {
    let Some(s) = before.switch(name.as_str()) else {
        return Applied::irreversible();
    };
    let subnet = s.subnet.as_deref().and_then(|s| crate::types::Cidr::parse(s).ok());
    let mtu = s.mtu.and_then(|m| crate::types::Mtu::new(m).ok());
    let mut undo =
        vec![super::super::Op::Ovn { change: OvnChange::CreateSwitch { name: name.clone(), subnet, mtu } }];
    for p in &s.ports {
        match recreate_switch_port(&s.name, p) {
            Some(c) => undo.push(super::super::Op::Ovn { change: c }),
            None => return Applied::irreversible(),
        }
    }
    Applied::changed(undo)
}

fn where_name(name: &OvnName) -> Vec<Condition> {
    vec![Condition::eq("name", name.as_str())]
}

/// Fails with "timed out" at once unless a row named `name` exists (`present`) or not.
fn wait_named(table: &str, name: &OvnName, present: bool) -> Operation {
    wait_name(table, name.as_str(), present)
}

fn wait_name(table: &str, name: &str, present: bool) -> Operation {
    let rows = if present { vec![Row::new().with("name", name)] } else { vec![] };
    Operation::wait_now(table, vec![Condition::eq("name", name)], &["name"], rows)
}
