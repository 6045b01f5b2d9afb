//! Ports: read, add (one or a batch, checked against what ovs-vswitchd
//! did), remove (conditional on what was read), and VLAN tags.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use ovsdb_client::vswitch::{Bridge, Interface, Port};
use ovsdb_client::{Atom, Condition, Mutation, Mutator, OpResult, Operation, Row, Table, Uuid, Value};

use super::{wait_rows, where_name, PortSpec, Vswitch};
use crate::backend::PortInfo;
use crate::error::{CapError, CapResult};
use crate::types::{IfName, VlanId};

/// How often [`Vswitch::del_port`] reads again after a concurrent change.
const CONFLICT_TRIES: usize = 3;

impl Vswitch {
    /// The ports of `bridge` (without its local port), sorted by name.
    pub async fn ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        let r = self
            .read(vec![
                Operation::select(Bridge::NAME, where_name(bridge), &["ports"]),
                Operation::select(Port::NAME, vec![], Port::COLUMNS),
                Operation::select(Interface::NAME, vec![], Interface::COLUMNS),
            ])
            .await?;
        let b = r[0].first().ok_or_else(|| CapError::not_found(format!("bridge {bridge} does not exist")))?;
        let members: HashSet<Uuid> = Bridge::from_row(b).ports.into_iter().collect();
        let ifaces = by_uuid(&r[2]);
        let mut ports: Vec<PortInfo> = r[1]
            .iter()
            .map(Port::from_row)
            .filter(|p| p.uuid.as_ref().is_some_and(|u| members.contains(u)))
            .filter(|p| p.name != bridge.as_str())
            .map(|p| port_info(&p, bridge.as_str(), &ifaces))
            .collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ports)
    }

    /// The port `name` on whichever bridge has it; None when absent (or when
    /// it is a bridge's local port, which is not a port one adds or removes).
    pub async fn port(&self, name: &IfName) -> CapResult<Option<PortInfo>> {
        let r = self.read(vec![Operation::select(Port::NAME, where_name(name), Port::COLUMNS)]).await?;
        let Some(p) = r[0].first().map(Port::from_row) else {
            return Ok(None);
        };
        let Some(pu) = p.uuid.clone() else {
            return Ok(None);
        };
        let mut ops = vec![Operation::select(
            Bridge::NAME,
            vec![Condition::includes("ports", Value::set([pu]))],
            &["name"],
        )];
        for iu in &p.interfaces {
            ops.push(Operation::select(Interface::NAME, vec![Condition::uuid(iu)], Interface::COLUMNS));
        }
        let r = self.read(ops).await?;
        let bridge = r[0].first().map(|b| b.str("name").to_string()).unwrap_or_default();
        if bridge == name.as_str() {
            return Ok(None);
        }
        let iface_rows: Vec<Row> = r[1..].iter().flatten().cloned().collect();
        Ok(Some(port_info(&p, &bridge, &by_uuid(&iface_rows))))
    }

    /// Add a port in one transaction, wait until ovs-vswitchd applied it and
    /// return it with its ofport. A port ovs-vswitchd could not open is removed
    /// again and reported with ovs-vswitchd's own error.
    pub async fn add_port(&self, bridge: &IfName, spec: &PortSpec) -> CapResult<PortInfo> {
        let name = &spec.name;
        let (iface, port) = port_rows(spec, "iface");
        let ops = vec![
            wait_rows(Bridge::NAME, bridge, true),
            wait_rows(Port::NAME, name, false),
            Operation::insert(Interface::NAME, iface, Some("iface")),
            Operation::insert(Port::NAME, port, Some("port")),
            Operation::mutate(Bridge::NAME, where_name(bridge), vec![insert_ports([Atom::named("port")])]),
        ];
        let r = self
            .change(&format!("add-port {bridge} {name}"), ops, |e| match e.index {
                0 => Some(CapError::not_found(format!("bridge {bridge} does not exist"))),
                1 => Some(CapError::exists(format!("port {name} already exists"))),
                _ if e.is_unique_index_violation() => Some(CapError::exists(format!(
                    "port {name}: an interface named {name} already exists ({})",
                    e.describe()
                ))),
                _ => None,
            })
            .await?;

        let ofport = self.attached_or_removed(bridge, name, &inserted_uuid(&r[2])?, "port").await?;
        Ok(new_port_info(bridge, spec, ofport))
    }

    /// After the insert of port `name`'s Interface row `iface_uuid`: its
    /// ofport once ovs-vswitchd attached it; when it could not (an error,
    /// ofport -1), the port is removed again and the error names it as `what`.
    pub(super) async fn attached_or_removed(
        &self,
        bridge: &IfName,
        name: &IfName,
        iface_uuid: &Uuid,
        what: &str,
    ) -> CapResult<Option<i64>> {
        let r = self
            .read(vec![Operation::select(
                Interface::NAME,
                vec![Condition::uuid(iface_uuid)],
                &["ofport", "error"],
            )])
            .await?;
        let iface = r[0].first().map(Interface::from_row);
        let (ofport, problem) = attach_problem(bridge, iface.as_ref());
        if let Some(problem) = problem {
            let mut msg = format!("{what} {name}: {problem}");
            if let Err(e) = self.del_port(bridge, name).await {
                msg.push_str(&format!("; removing the port again failed too: {e}"));
            }
            return Err(CapError::failed(msg));
        }
        Ok(ofport)
    }

    /// Add many ports, possibly on several bridges, in ONE transaction, and
    /// wait for ovs-vswitchd once: what makes attaching N containers cost one
    /// reconfiguration instead of N. All or none: when ovs-vswitchd cannot
    /// attach one of them, every port of the batch is removed again. The
    /// error carries the index of the port at fault.
    pub async fn add_ports(&self, ports: &[(IfName, PortSpec)]) -> Result<Vec<PortInfo>, (usize, CapError)> {
        let bridges = distinct_bridges(ports);
        let mut ops: Vec<Operation> = bridges.iter().map(|b| wait_rows(Bridge::NAME, b, true)).collect();
        let first_insert = ops.len();
        for (i, (_, spec)) in ports.iter().enumerate() {
            let (iface, port) = port_rows(spec, &format!("iface{i}"));
            ops.push(Operation::insert(Interface::NAME, iface, Some(&format!("iface{i}"))));
            ops.push(Operation::insert(Port::NAME, port, Some(&format!("port{i}"))));
        }
        for b in &bridges {
            let members = ports.iter().enumerate().filter(|(_, (pb, _))| pb == *b);
            let members = members.map(|(i, _)| Atom::named(format!("port{i}")));
            ops.push(Operation::mutate(Bridge::NAME, where_name(b), vec![insert_ports(members)]));
        }

        let mut fault = 0;
        let what = format!("add {} ports", ports.len());
        let r = self
            .change_sized(&what, ops, ports.len(), |e| {
                if let Some(b) = bridges.get(e.index) {
                    fault = ports.iter().position(|(pb, _)| pb == *b).unwrap_or(0);
                    return Some(CapError::not_found(format!("bridge {b} does not exist")));
                }
                if !e.is_unique_index_violation() {
                    return None;
                }
                // The server names the duplicated value: ("ovr0123456789_l").
                let details = e.details.as_deref().unwrap_or_default();
                let (i, (_, spec)) = ports
                    .iter()
                    .enumerate()
                    .find(|(_, (_, s))| details.contains(&format!("\"{}\"", s.name)))?;
                fault = i;
                let name = &spec.name;
                Some(CapError::exists(format!(
                    "port {name}: a port or interface named {name} already exists"
                )))
            })
            .await
            .map_err(|e| (fault, e))?;

        let at = |i: usize| (i, CapError::failed("OVSDB insert returned no uuid"));
        let mut iface_uuids = Vec::with_capacity(ports.len());
        let mut port_uuids = Vec::with_capacity(ports.len());
        for i in 0..ports.len() {
            iface_uuids.push(inserted_uuid(&r[first_insert + 2 * i]).map_err(|_| at(i))?);
            port_uuids.push(inserted_uuid(&r[first_insert + 2 * i + 1]).map_err(|_| at(i))?);
        }
        // By uuid: the server finds each row at once, however full the bridge.
        let reads = iface_uuids
            .iter()
            .map(|u| Operation::select(Interface::NAME, vec![Condition::uuid(u)], &["ofport", "error"]));
        let rows = self.read(reads.collect()).await.map_err(|e| (0, e))?;
        let mut infos = Vec::with_capacity(ports.len());
        for (i, ((bridge, spec), row)) in ports.iter().zip(&rows).enumerate() {
            let iface = row.first().map(Interface::from_row);
            let (ofport, problem) = attach_problem(bridge, iface.as_ref());
            if let Some(problem) = problem {
                let mut msg = format!("port {}: {problem}", spec.name);
                let all: Vec<(IfName, Uuid)> =
                    ports.iter().zip(&port_uuids).map(|((b, _), u)| (b.clone(), u.clone())).collect();
                if let Err(e) = self.remove_port_rows(&all).await {
                    msg.push_str(&format!("; removing the batch's ports again failed too: {e}"));
                }
                return Err((i, CapError::failed(msg)));
            }
            infos.push(new_port_info(bridge, spec, ofport));
        }
        Ok(infos)
    }

    /// Remove many ports in ONE transaction. Per port, what was removed, or
    /// None when `bridge` has no such port. Local ports of bridges are refused.
    pub async fn del_ports(&self, ports: &[(IfName, IfName)]) -> CapResult<Vec<Option<PortInfo>>> {
        if let Some((b, _)) = ports.iter().find(|(b, p)| b == p) {
            return Err(CapError::invalid(format!(
                "port {b} is the local port of bridge {b}; delete the bridge instead"
            )));
        }
        let bridges = distinct_bridges(ports);
        let mut reads: Vec<Operation> =
            bridges.iter().map(|b| Operation::select(Bridge::NAME, where_name(b), &["ports"])).collect();
        reads.extend(ports.iter().map(|(_, p)| Operation::select(Port::NAME, where_name(p), Port::COLUMNS)));
        let r = self.read(reads).await?;
        let members: HashMap<&IfName, HashSet<Uuid>> = bridges
            .iter()
            .zip(&r)
            .map(|(b, rows)| (*b, rows.first().map(|row| row.uuids("ports")).unwrap_or_default()))
            .map(|(b, set)| (b, set.into_iter().collect()))
            .collect();
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut rows: Vec<Option<Port>> = Vec::with_capacity(ports.len());
        for ((b, _), port_rows) in ports.iter().zip(&r[bridges.len()..]) {
            let row = port_rows.first().map(Port::from_row);
            match row.as_ref().and_then(|p| p.uuid.clone()) {
                // The same port asked for twice is removed once.
                Some(pu) if members.get(b).is_some_and(|m| m.contains(&pu)) && seen.insert(pu.clone()) => {
                    found.push((b.clone(), pu));
                    rows.push(row);
                }
                _ => rows.push(None),
            }
        }
        let ifaces = rows.iter().flatten().flat_map(|p| p.interfaces.iter());
        let ifaces: Vec<Operation> = ifaces
            .map(|u| Operation::select(Interface::NAME, vec![Condition::uuid(u)], Interface::COLUMNS))
            .collect();
        let iface_rows: Vec<Row> = self.read(ifaces).await?.into_iter().flatten().collect();
        let by_id = by_uuid(&iface_rows);
        if !found.is_empty() {
            self.remove_port_rows(&found).await?;
        }
        Ok(ports
            .iter()
            .zip(rows)
            .map(|((b, _), row)| row.map(|p| port_info(&p, b.as_str(), &by_id)))
            .collect())
    }

    /// Take ports (by uuid) off their bridges, one transaction; OVSDB then
    /// garbage-collects the Port and Interface rows.
    /// Each port must still be on its bridge when this commits (a `wait`
    /// per port): one removed by someone else since it was read fails the
    /// whole batch, and nothing is changed.
    async fn remove_port_rows(&self, ports: &[(IfName, Uuid)]) -> CapResult<()> {
        let bridges = distinct_bridges(ports);
        let mut ops: Vec<Operation> = ports.iter().map(|(b, u)| wait_member(b, u)).collect();
        ops.extend(bridges.iter().map(|b| {
            let uuids = ports.iter().filter(|(pb, _)| pb == *b).map(|(_, u)| u.clone());
            Operation::mutate(Bridge::NAME, where_name(b), vec![delete_ports(uuids)])
        }));
        self.change_sized(&format!("del {} ports", ports.len()), ops, ports.len(), |e| {
            let (b, _) = ports.get(e.index)?;
            Some(CapError::failed(format!(
                "a port of bridge {b} was removed by someone else while this batch was removing it; \
                 nothing was changed"
            )))
        })
        .await
        .map(drop)
    }

    /// true = removed; false = `bridge` has no port `port` (or no such bridge).
    ///
    /// It reads the port's row, then takes that row off the bridge. The
    /// change carries a `wait` precondition ([`del_port_ops`]): if someone
    /// else removed or replaced the port in between, the transaction changes
    /// nothing and the read is done again (at most [`CONFLICT_TRIES`] times),
    /// so a port that went meanwhile is reported as not there, never as
    /// removed by us (the journal would then "undo" someone else's removal).
    pub async fn del_port(&self, bridge: &IfName, port: &IfName) -> CapResult<bool> {
        if bridge == port {
            return Err(CapError::invalid(format!(
                "port {port} is the local port of bridge {bridge}; delete the bridge instead"
            )));
        }
        for _ in 0..CONFLICT_TRIES {
            let r = self
                .read(vec![
                    Operation::select(Bridge::NAME, where_name(bridge), &["ports"]),
                    Operation::select(Port::NAME, where_name(port), &["_uuid"]),
                ])
                .await?;
            let (Some(b), Some(pu)) = (r[0].first(), r[1].first().and_then(|p| p.uuid().cloned())) else {
                return Ok(false);
            };
            if !b.uuids("ports").contains(&pu) {
                return Ok(false);
            }
            let conflict = AtomicBool::new(false);
            let done = self
                .change(&format!("del-port {bridge} {port}"), del_port_ops(bridge, &pu), |e| {
                    conflict.store(e.index == 0 && e.is_wait_timeout(), Ordering::Relaxed);
                    None
                })
                .await;
            match done {
                Ok(_) => return Ok(true),
                Err(_) if conflict.load(Ordering::Relaxed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CapError::failed(format!(
            "del-port {bridge} {port}: the port kept changing while it was being removed \
             ({CONFLICT_TRIES} tries); nothing was changed"
        )))
    }

    /// Set (Some) or clear (None) the port's access VLAN; returns the old tag.
    pub async fn set_vlan(&self, port: &IfName, vlan: Option<VlanId>) -> CapResult<Option<u16>> {
        self.set_tag(port, vlan.map(VlanId::get)).await
    }

    /// [`Vswitch::set_vlan`] with any tag OVS takes (0-4095): an undo puts
    /// back whatever the port had.
    pub async fn set_tag(&self, port: &IfName, vlan: Option<u16>) -> CapResult<Option<u16>> {
        let tag = vlan.map_or_else(Value::empty, Value::from);
        let ops = vec![
            wait_rows(Port::NAME, port, true),
            Operation::select(Port::NAME, where_name(port), &["tag"]),
            Operation::update(Port::NAME, where_name(port), Row::new().with("tag", tag)),
        ];
        let what = match vlan {
            Some(v) => format!("set port {port} tag={v}"),
            None => format!("clear port {port} tag"),
        };
        let r = self
            .change(&what, ops, |e| {
                (e.index == 0).then(|| CapError::not_found(format!("port {port} does not exist")))
            })
            .await?;
        let old = r[1].rows().first().and_then(|p| p.opt_i64("tag"));
        Ok(old.and_then(|t| u16::try_from(t).ok()))
    }
}

/// `del-port`'s transaction for the port row `port_uuid` read from `bridge`:
/// the precondition that the bridge still has that row, then its removal.
/// Public so that tests can run it against a change made in between.
pub fn del_port_ops(bridge: &IfName, port_uuid: &Uuid) -> Vec<Operation> {
    vec![
        wait_member(bridge, port_uuid),
        Operation::mutate(Bridge::NAME, where_name(bridge), vec![delete_ports([port_uuid.clone()])]),
    ]
}

/// Fails with "timed out" at once unless bridge `bridge` still has the port
/// row `port_uuid` (RFC 7047 `wait` with `includes` in its `where`).
fn wait_member(bridge: &IfName, port_uuid: &Uuid) -> Operation {
    let mut conditions = where_name(bridge);
    conditions.push(Condition::includes("ports", port_uuid));
    Operation::wait_now(Bridge::NAME, conditions, &["name"], vec![Row::new().with("name", bridge.as_str())])
}

fn insert_ports(ports: impl IntoIterator<Item = Atom>) -> Mutation {
    Mutation::new("ports", Mutator::Insert, Value::set(ports))
}

fn delete_ports(ports: impl IntoIterator<Item = Uuid>) -> Mutation {
    Mutation::new("ports", Mutator::Delete, Value::set(ports))
}

pub(super) fn port_info(p: &Port, bridge: &str, ifaces: &HashMap<Uuid, Interface>) -> PortInfo {
    let mut mine: Vec<&Interface> = p.interfaces.iter().filter_map(|u| ifaces.get(u)).collect();
    // A bond has several interfaces; the one named like the port speaks for it.
    mine.sort_by_key(|i| i.name != p.name);
    let iface = mine.first();
    let mut trunks: Vec<u16> = p.trunks.iter().filter_map(|t| u16::try_from(*t).ok()).collect();
    trunks.sort_unstable();
    PortInfo {
        name: p.name.clone(),
        bridge: bridge.to_string(),
        tag: p.tag.and_then(|t| u16::try_from(t).ok()),
        trunks,
        external_ids: iface.map(|i| i.external_ids.clone()).unwrap_or_default(),
        ofport: iface.and_then(|i| i.ofport).and_then(|o| i32::try_from(o).ok()),
        error: iface.and_then(|i| i.error.clone()),
    }
}

fn by_uuid(rows: &[Row]) -> HashMap<Uuid, Interface> {
    rows.iter().map(Interface::from_row).filter_map(|i| Some((i.uuid.clone()?, i))).collect()
}

/// The bridges of `ports`, each once, in the order they first appear.
fn distinct_bridges<T>(ports: &[(IfName, T)]) -> Vec<&IfName> {
    let mut bridges: Vec<&IfName> = Vec::new();
    for (b, _) in ports {
        if !bridges.contains(&b) {
            bridges.push(b);
        }
    }
    bridges
}

/// The Interface and Port rows for `spec`; the Port refers to the Interface
/// inserted under the uuid-name `iface`.
fn port_rows(spec: &PortSpec, iface: &str) -> (Row, Row) {
    let name = spec.name.as_str();
    let mut iface_row = Row::new().with("name", name);
    if let Some(t) = &spec.iface_type {
        iface_row.set("type", t.as_str());
    }
    if !spec.external_ids.is_empty() {
        iface_row
            .set("external_ids", Value::map(spec.external_ids.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
    }
    let mut port = Row::new().with("name", name).with("interfaces", Atom::named(iface));
    if let Some(t) = spec.tag {
        port.set("tag", t.get());
    }
    if !spec.trunks.is_empty() {
        port.set("trunks", Value::set(spec.trunks.iter().map(|t| t.get())));
    }
    (iface_row, port)
}

/// The ofport of a just-added interface (its row after ovs-vswitchd applied
/// the change), and what went wrong if it was not attached.
pub(super) fn attach_problem(bridge: &IfName, iface: Option<&Interface>) -> (Option<i64>, Option<String>) {
    let ofport = iface.and_then(|i| i.ofport);
    let error = iface.and_then(|i| i.error.clone());
    // ovs-vswitchd writes every attached interface's ofport in the same
    // transaction as cur_cfg, so none at all means it was not attached
    // (e.g. the bridge's datapath failed to open).
    let problem = match (error, ofport) {
        (Some(e), _) => Some(format!("ovs-vswitchd reported: {e}")),
        (None, Some(-1)) => Some("ovs-vswitchd could not open the interface (ofport -1)".into()),
        (None, None) => {
            Some(format!("ovs-vswitchd did not attach it to bridge {bridge} (no ofport; see its log)"))
        }
        (None, Some(_)) => None,
    };
    (ofport, problem)
}

fn new_port_info(bridge: &IfName, spec: &PortSpec, ofport: Option<i64>) -> PortInfo {
    PortInfo {
        name: spec.name.to_string(),
        bridge: bridge.to_string(),
        tag: spec.tag.map(VlanId::get),
        trunks: spec.trunks.iter().map(|t| t.get()).collect(),
        external_ids: spec.external_ids.clone(),
        ofport: ofport.and_then(|o| i32::try_from(o).ok()),
        error: None,
    }
}

/// The uuid an `insert` operation's result reports.
pub(super) fn inserted_uuid(result: &OpResult) -> CapResult<Uuid> {
    result.uuid().cloned().ok_or_else(|| CapError::failed("OVSDB insert returned no uuid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_rows_in_rfc_7047_form() {
        let mut spec = PortSpec::new(IfName::parse("p1").unwrap());
        spec.tag = Some(VlanId::new(42).unwrap());
        spec.trunks = vec![VlanId::new(10).unwrap()];
        spec.external_ids.insert("k".into(), "v".into());
        let (iface, port) = port_rows(&spec, "i0");
        assert_eq!(iface.to_json(), json!({"name": "p1", "external_ids": ["map", [["k", "v"]]]}));
        assert_eq!(
            port.to_json(),
            json!({"name": "p1", "interfaces": ["named-uuid", "i0"], "tag": 42, "trunks": ["set", [10]]})
        );
    }
}

#[cfg(test)]
mod fuzz {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::Value;

    use super::{port_info, Interface, Port, Row, Table};

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            prop_oneof![Just("set".to_string()), Just("map".to_string()), Just("uuid".to_string()), ".{0,6}"]
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("name"),
                        Just("interfaces"),
                        Just("trunks"),
                        Just("tag"),
                        Just("external_ids"),
                        Just("ofport"),
                        Just("error")
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Rows as a (buggy or hostile) server might send them.
        #[test]
        fn row_decoding_never_panics(port in json(), iface in json()) {
            let (Ok(port), Ok(iface)) = (Row::from_json(&port), Row::from_json(&iface)) else { return Ok(()) };
            let u = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11".parse().unwrap();
            let ifaces: HashMap<_, _> = [(u, Interface::from_row(&iface))].into();
            let _ = port_info(&Port::from_row(&port), "br0", &ifaces);
        }
    }
}
