//! Typed operations on the `Open_vSwitch` database. Each change is one
//! transaction that checks its preconditions with `wait` operations and bumps
//! `next_cfg`; the call then waits until ovs-vswitchd reports that `cur_cfg`
//! (watched through an OVSDB monitor) has caught up, as `ovs-vsctl` does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::jsonrpc::{Connection, OpError};
use super::OvsdbUri;
use crate::backend::{BridgeInfo, PortInfo};
use crate::error::{CapError, CapResult};
use crate::types::{Datapath, IfName, VlanId};

const DB: &str = "Open_vSwitch";
const MONITOR_ID: &str = "ovs-run-cur-cfg";

/// Extra time ovs-vswitchd gets per port of a batch, beyond --apply-timeout:
/// a thousand ports take it many seconds on a busy 2-core machine.
const BATCH_GRACE: Duration = Duration::from_millis(50);

/// A port to add: one Port row with one Interface row of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub name: IfName,
    /// None = "" (a system device such as a veth); Some("internal") etc.
    pub iface_type: Option<String>,
    pub tag: Option<VlanId>,
    pub trunks: Vec<VlanId>,
    /// Set on the Interface row, where ovs-docker keeps its keys too.
    pub external_ids: BTreeMap<String, String>,
}

impl PortSpec {
    pub fn new(name: IfName) -> Self {
        Self { name, iface_type: None, tag: None, trunks: vec![], external_ids: BTreeMap::new() }
    }
}

/// A connection to the `Open_vSwitch` database; clones share it.
#[derive(Clone)]
pub struct Vswitch {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Connection,
    /// Latest `Open_vSwitch.cur_cfg`; the sender closes with the connection.
    cur_cfg: watch::Receiver<i64>,
    apply_timeout: Duration,
}

impl fmt::Debug for Vswitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vswitch").field("uri", &self.inner.conn.uri()).finish()
    }
}

impl Vswitch {
    /// Connect and start watching `cur_cfg`. `apply_timeout` bounds each wait
    /// for ovs-vswitchd to apply a change.
    pub async fn connect(uri: &OvsdbUri, apply_timeout: Duration) -> CapResult<Vswitch> {
        let (conn, mut notes) = Connection::connect(uri).await?;
        let params = json!([DB, MONITOR_ID, {DB: {"columns": ["cur_cfg"]}}]);
        let initial = conn.call("monitor", params).await?;
        let (tx, rx) = watch::channel(cur_cfg_of(&initial).unwrap_or(0));
        // Ends when the connection does (its reader drops the notification sender).
        tokio::spawn(async move {
            while let Some(n) = notes.recv().await {
                if n.method == "update" && n.params[0] == MONITOR_ID {
                    if let Some(c) = cur_cfg_of(&n.params[1]) {
                        tx.send_replace(c);
                    }
                }
            }
        });
        Ok(Vswitch { inner: Arc::new(Inner { conn, cur_cfg: rx, apply_timeout }) })
    }

    /// The connection is gone (server restarted or stopped): connect anew.
    pub fn is_closed(&self) -> bool {
        self.inner.conn.is_closed()
    }

    pub fn uri(&self) -> &str {
        self.inner.conn.uri()
    }

    /// All bridges; `ports` includes each bridge's own internal port, as
    /// the WIT contract (`bridge-info.ports`) says (`ovs-vsctl list-ports`
    /// and [`Vswitch::ports`] leave it out).
    pub async fn bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        let r = self
            .read(vec![
                select("Bridge", json!([]), &["name", "datapath_type", "ports"]),
                select("Port", json!([]), &["_uuid", "name"]),
            ])
            .await?;
        let names: HashMap<String, &str> =
            r[1].iter().filter_map(|p| Some((uuid(&p["_uuid"])?, p["name"].as_str()?))).collect();
        let mut bridges: Vec<BridgeInfo> = r[0]
            .iter()
            .map(|b| {
                let name = b["name"].as_str().unwrap_or_default().to_string();
                let mut ports: Vec<String> = uuid_set(&b["ports"])
                    .iter()
                    .filter_map(|u| names.get(u).copied())
                    .map(str::to_string)
                    .collect();
                ports.sort();
                let datapath_type = b["datapath_type"].as_str().unwrap_or_default().to_string();
                BridgeInfo { name, datapath_type, ports }
            })
            .collect();
        bridges.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(bridges)
    }

    /// `bridge`'s `datapath_type` ("" means the kernel's); None when there
    /// is no such bridge.
    pub async fn bridge_datapath(&self, bridge: &IfName) -> CapResult<Option<String>> {
        let r = self
            .read(vec![select("Bridge", json!([["name", "==", bridge.as_str()]]), &["datapath_type"])])
            .await?;
        Ok(r[0].first().map(|b| b["datapath_type"].as_str().unwrap_or_default().to_string()))
    }

    /// true = created; false = it existed and `may_exist`.
    pub async fn create_bridge(&self, name: &IfName, datapath: Datapath, may_exist: bool) -> CapResult<bool> {
        let ops = vec![
            wait_rows("Bridge", name, false),
            insert("Interface", "iface", json!({"name": name.as_str(), "type": "internal"})),
            insert("Port", "port", json!({"name": name.as_str(), "interfaces": named("iface")})),
            insert(
                "Bridge",
                "bridge",
                json!({"name": name.as_str(), "ports": set([named("port")]),
                       "datapath_type": datapath.as_ovsdb()}),
            ),
            mutate(DB, json!([]), "bridges", "insert", set([named("bridge")])),
        ];
        let mut existed = false;
        let done = self
            .change(&format!("add-br {name}"), ops, |e| {
                if e.index == 0 {
                    existed = true;
                    Some(CapError::exists(format!("bridge {name} already exists")))
                } else if e.is_duplicate() {
                    Some(CapError::exists(format!(
                        "cannot create bridge {name}: a port or interface named {name} already exists"
                    )))
                } else {
                    None
                }
            })
            .await;
        match done {
            Ok(_) => {
                self.check_bridge_attached(name, datapath).await?;
                Ok(true)
            }
            Err(_) if existed && may_exist => Ok(false),
            // Another client created it between our check and our insert.
            Err(e) if may_exist && e.kind == crate::error::ErrorKind::AlreadyExists => {
                let exists = self.bridges().await?.iter().any(|b| b.name == name.as_str());
                if exists {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A bridge's rows can exist while ovs-vswitchd failed to make the
    /// bridge (its internal interface then has an error or no ofport):
    /// check what it did, as add-port does for its interface, and take the
    /// rows out again when it failed, so a failed create-bridge leaves
    /// nothing behind and says why.
    async fn check_bridge_attached(&self, name: &IfName, datapath: Datapath) -> CapResult<()> {
        let r = self.read(vec![select("Interface", where_name(name), IFACE_COLUMNS)]).await?;
        let (_, problem) = attach_problem(name, r[0].first());
        let Some(problem) = problem else { return Ok(()) };
        let undo = self.delete_bridge(name, true).await;
        // The case measured: a second ovs-vswitchd with the userspace
        // datapath in this network namespace cannot create the datapath's
        // tap device `ovs-netdev` (EBUSY), and then no netdev bridge at all.
        let hint = match datapath {
            Datapath::Netdev => {
                "; is another ovs-vswitchd with the userspace datapath running in this network namespace? \
                 Each needs a namespace of its own (ovs-run sandbox up makes one)"
            }
            Datapath::System => "; is the openvswitch kernel module loaded?",
        };
        let undone = match undo {
            Ok(_) => "its rows were removed again".to_string(),
            Err(e) => format!("removing its rows again failed too: {e}"),
        };
        Err(CapError::failed(format!("create bridge {name}: {problem}{hint} ({undone})")))
    }

    /// true = deleted; false = absent and `if_exists`. Its ports and
    /// interfaces go with it (OVSDB collects unreferenced rows).
    pub async fn delete_bridge(&self, name: &IfName, if_exists: bool) -> CapResult<bool> {
        let rows = self.read(vec![select("Bridge", where_name(name), &["_uuid"])]).await?;
        let Some(u) = rows[0].first().and_then(|b| uuid(&b["_uuid"])) else {
            return match if_exists {
                true => Ok(false),
                false => Err(CapError::not_found(format!("bridge {name} does not exist"))),
            };
        };
        let ops = vec![mutate(DB, json!([]), "bridges", "delete", set([json!(["uuid", u])]))];
        self.change(&format!("del-br {name}"), ops, |_| None).await?;
        Ok(true)
    }

    /// The ports of `bridge` (without its local port), sorted by name.
    pub async fn ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        let r = self
            .read(vec![
                select("Bridge", where_name(bridge), &["ports"]),
                select("Port", json!([]), PORT_COLUMNS),
                select("Interface", json!([]), IFACE_COLUMNS),
            ])
            .await?;
        let b = r[0].first().ok_or_else(|| CapError::not_found(format!("bridge {bridge} does not exist")))?;
        let members: HashSet<String> = uuid_set(&b["ports"]).into_iter().collect();
        let ifaces = by_uuid(&r[2]);
        let mut ports: Vec<PortInfo> = r[1]
            .iter()
            .filter(|p| uuid(&p["_uuid"]).is_some_and(|u| members.contains(&u)))
            .filter(|p| p["name"] != bridge.as_str())
            .map(|p| port_info(p, bridge.as_str(), &ifaces))
            .collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ports)
    }

    /// The port `name` on whichever bridge has it; None when absent (or when
    /// it is a bridge's local port, which is not a port one adds or removes).
    pub async fn port(&self, name: &IfName) -> CapResult<Option<PortInfo>> {
        let r = self.read(vec![select("Port", where_name(name), PORT_COLUMNS)]).await?;
        let Some(p) = r[0].first() else {
            return Ok(None);
        };
        let Some(pu) = uuid(&p["_uuid"]) else {
            return Ok(None);
        };
        let mut ops =
            vec![select("Bridge", json!([["ports", "includes", set([json!(["uuid", pu])])]]), &["name"])];
        for iu in uuid_set(&p["interfaces"]) {
            ops.push(select("Interface", json!([["_uuid", "==", ["uuid", iu]]]), IFACE_COLUMNS));
        }
        let r = self.read(ops).await?;
        let bridge = r[0].first().and_then(|b| b["name"].as_str()).unwrap_or_default();
        if bridge == name.as_str() {
            return Ok(None);
        }
        let iface_rows: Vec<Value> = r[1..].iter().flatten().cloned().collect();
        Ok(Some(port_info(p, bridge, &by_uuid(&iface_rows))))
    }

    /// Add a port in one transaction, wait until ovs-vswitchd applied it and
    /// return it with its ofport. A port ovs-vswitchd could not open is removed
    /// again and reported with ovs-vswitchd's own error.
    pub async fn add_port(&self, bridge: &IfName, spec: &PortSpec) -> CapResult<PortInfo> {
        let name = &spec.name;
        let (iface, port) = port_rows(spec, "iface");
        let ops = vec![
            wait_rows("Bridge", bridge, true),
            wait_rows("Port", name, false),
            insert("Interface", "iface", iface),
            insert("Port", "port", port),
            mutate("Bridge", where_name(bridge), "ports", "insert", set([named("port")])),
        ];
        let r = self
            .change(&format!("add-port {bridge} {name}"), ops, |e| match e.index {
                0 => Some(CapError::not_found(format!("bridge {bridge} does not exist"))),
                1 => Some(CapError::exists(format!("port {name} already exists"))),
                _ if e.is_duplicate() => Some(CapError::exists(format!(
                    "port {name}: an interface named {name} already exists ({})",
                    e.describe()
                ))),
                _ => None,
            })
            .await?;

        let iface_uuid = inserted_uuid(&r[2])?;
        let r = self.read(vec![select("Interface", where_uuid(&iface_uuid), &["ofport", "error"])]).await?;
        let (ofport, problem) = attach_problem(bridge, r[0].first());
        if let Some(problem) = problem {
            let mut msg = format!("port {name}: {problem}");
            if let Err(e) = self.del_port(bridge, name).await {
                msg.push_str(&format!("; removing the port again failed too: {e}"));
            }
            return Err(CapError::failed(msg));
        }
        Ok(new_port_info(bridge, spec, ofport))
    }

    /// Add many ports, possibly on several bridges, in ONE transaction, and
    /// wait for ovs-vswitchd once: what makes attaching N containers cost one
    /// reconfiguration instead of N. All or none: when ovs-vswitchd cannot
    /// attach one of them, every port of the batch is removed again. The
    /// error carries the index of the port at fault.
    pub async fn add_ports(&self, ports: &[(IfName, PortSpec)]) -> Result<Vec<PortInfo>, (usize, CapError)> {
        let bridges = distinct_bridges(ports);
        let mut ops: Vec<Value> = bridges.iter().map(|b| wait_rows("Bridge", b, true)).collect();
        let first_insert = ops.len();
        for (i, (_, spec)) in ports.iter().enumerate() {
            let (iface, port) = port_rows(spec, &format!("iface{i}"));
            ops.push(insert("Interface", &format!("iface{i}"), iface));
            ops.push(insert("Port", &format!("port{i}"), port));
        }
        for b in &bridges {
            let members = ports.iter().enumerate().filter(|(_, (pb, _))| pb == *b);
            let members = members.map(|(i, _)| named(&format!("port{i}")));
            ops.push(mutate("Bridge", where_name(b), "ports", "insert", set(members)));
        }

        let mut fault = 0;
        let what = format!("add {} ports", ports.len());
        let r = self
            .change_sized(&what, ops, ports.len(), |e| {
                if let Some(b) = bridges.get(e.index) {
                    fault = ports.iter().position(|(pb, _)| pb == *b).unwrap_or(0);
                    return Some(CapError::not_found(format!("bridge {b} does not exist")));
                }
                if !e.is_duplicate() {
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
        let reads = iface_uuids.iter().map(|u| select("Interface", where_uuid(u), &["ofport", "error"]));
        let rows = self.read(reads.collect()).await.map_err(|e| (0, e))?;
        let mut infos = Vec::with_capacity(ports.len());
        for (i, ((bridge, spec), row)) in ports.iter().zip(&rows).enumerate() {
            let (ofport, problem) = attach_problem(bridge, row.first());
            if let Some(problem) = problem {
                let mut msg = format!("port {}: {problem}", spec.name);
                let all: Vec<(IfName, String)> =
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
        let mut reads: Vec<Value> =
            bridges.iter().map(|b| select("Bridge", where_name(b), &["ports"])).collect();
        reads.extend(ports.iter().map(|(_, p)| select("Port", where_name(p), PORT_COLUMNS)));
        let r = self.read(reads).await?;
        let members: HashMap<&IfName, HashSet<String>> = bridges
            .iter()
            .zip(&r)
            .map(|(b, rows)| (*b, rows.first().map(|row| uuid_set(&row["ports"])).unwrap_or_default()))
            .map(|(b, set)| (b, set.into_iter().collect()))
            .collect();
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut rows: Vec<Option<&Value>> = Vec::with_capacity(ports.len());
        for ((b, _), port_rows) in ports.iter().zip(&r[bridges.len()..]) {
            let row = port_rows.first();
            match row.and_then(|p| uuid(&p["_uuid"])) {
                // The same port asked for twice is removed once.
                Some(pu) if members.get(b).is_some_and(|m| m.contains(&pu)) && seen.insert(pu.clone()) => {
                    found.push((b.clone(), pu));
                    rows.push(row);
                }
                _ => rows.push(None),
            }
        }
        let ifaces = rows.iter().flatten().flat_map(|p| uuid_set(&p["interfaces"]));
        let ifaces: Vec<Value> = ifaces.map(|u| select("Interface", where_uuid(&u), IFACE_COLUMNS)).collect();
        let iface_rows: Vec<Value> = self.read(ifaces).await?.into_iter().flatten().collect();
        let by_id = by_uuid(&iface_rows);
        if !found.is_empty() {
            self.remove_port_rows(&found).await?;
        }
        Ok(ports
            .iter()
            .zip(rows)
            .map(|((b, _), row)| row.map(|p| port_info(p, b.as_str(), &by_id)))
            .collect())
    }

    /// Take ports (by uuid) off their bridges, one transaction; OVSDB then
    /// garbage-collects the Port and Interface rows.
    /// Each port must still be on its bridge when this commits (a `wait`
    /// per port): one removed by someone else since it was read fails the
    /// whole batch, and nothing is changed.
    async fn remove_port_rows(&self, ports: &[(IfName, String)]) -> CapResult<()> {
        let bridges = distinct_bridges(ports);
        let mut ops: Vec<Value> = ports.iter().map(|(b, u)| wait_member(b, u)).collect();
        ops.extend(bridges.iter().map(|b| {
            let uuids = ports.iter().filter(|(pb, _)| pb == *b).map(|(_, u)| json!(["uuid", u]));
            mutate("Bridge", where_name(b), "ports", "delete", set(uuids))
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
                    select("Bridge", where_name(bridge), &["ports"]),
                    select("Port", where_name(port), &["_uuid"]),
                ])
                .await?;
            let (Some(b), Some(pu)) = (r[0].first(), r[1].first().and_then(|p| uuid(&p["_uuid"]))) else {
                return Ok(false);
            };
            if !uuid_set(&b["ports"]).contains(&pu) {
                return Ok(false);
            }
            let conflict = std::sync::atomic::AtomicBool::new(false);
            let done = self
                .change(&format!("del-port {bridge} {port}"), del_port_ops(bridge, &pu), |e| {
                    conflict
                        .store(e.index == 0 && e.error == "timed out", std::sync::atomic::Ordering::Relaxed);
                    None
                })
                .await;
            match done {
                Ok(_) => return Ok(true),
                Err(_) if conflict.load(std::sync::atomic::Ordering::Relaxed) => continue,
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
        let tag = vlan.map_or_else(|| json!(["set", []]), |v| json!(v));
        let ops = vec![
            wait_rows("Port", port, true),
            select("Port", where_name(port), &["tag"]),
            json!({"op": "update", "table": "Port", "where": where_name(port), "row": {"tag": tag}}),
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
        let old = rows(&r[1]).first().and_then(|p| opt_int(&p["tag"]));
        Ok(old.and_then(|t| u16::try_from(t).ok()))
    }

    /// Run `ops` plus a `next_cfg` bump as one transaction, then wait until
    /// ovs-vswitchd has applied it. Returns the results of `ops`.
    async fn change(
        &self,
        what: &str,
        ops: Vec<Value>,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<Value>> {
        self.change_sized(what, ops, 1, explain).await
    }

    /// [`Vswitch::change`] for a batch of `ports` ports: ovs-vswitchd's work
    /// grows with it, and so does the time it is given ([`BATCH_GRACE`] per
    /// port beyond the first).
    async fn change_sized(
        &self,
        what: &str,
        mut ops: Vec<Value>,
        ports: usize,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<Value>> {
        let n = ops.len();
        ops.push(json!({"op": "mutate", "table": DB, "where": [],
                        "mutations": [["next_cfg", "+=", 1]]}));
        ops.push(select(DB, json!([]), &["next_cfg"]));
        ops.push(json!({"op": "comment", "comment": format!("ovs-run: {what}")}));
        let started = std::time::Instant::now();
        let mut results = self.inner.conn.transact_explained(DB, ops, explain).await?;
        let committed = started.elapsed();
        // Counted once committed: a create-bridge for a bridge that exists
        // is refused by its `wait` op, changes nothing and waits for nothing.
        crate::backend::stats::ovsdb_change();
        let next_cfg = rows(&results[n + 1]).first().and_then(|r| r["next_cfg"].as_i64());
        let Some(next_cfg) = next_cfg else {
            return Err(CapError::failed(format!(
                "{what}: the Open_vSwitch table has no row (was 'ovs-vsctl init' run?)"
            )));
        };
        let limit = self.inner.apply_timeout + BATCH_GRACE * (ports.max(1) - 1) as u32;
        self.wait_applied(next_cfg, what, limit).await?;
        crate::verbose!(
            2,
            "OVSDB {what}: committed in {:.1} ms, applied by ovs-vswitchd {:.1} ms later",
            committed.as_secs_f64() * 1000.0,
            (started.elapsed() - committed).as_secs_f64() * 1000.0
        );
        results.truncate(n);
        Ok(results)
    }

    async fn wait_applied(&self, next_cfg: i64, what: &str, limit: Duration) -> CapResult<()> {
        let mut rx = self.inner.cur_cfg.clone();
        // Drop the watch guard at once: holding it would block the monitor task.
        let applied = tokio::time::timeout(limit, rx.wait_for(|c| *c >= next_cfg)).await.map(|r| r.map(drop));
        match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.inner.conn.lost_error()),
            Err(_) => Err(CapError::failed(format!(
                "{what}: ovs-vswitchd did not apply the change within {} s \
                 (is ovs-vswitchd running?)",
                limit.as_secs_f64()
            ))),
        }
    }

    /// A read-only transaction of selects; the rows of each.
    async fn read(&self, ops: Vec<Value>) -> CapResult<Vec<Vec<Value>>> {
        let results = self.inner.conn.transact(DB, ops).await?;
        Ok(results.iter().map(|r| rows(r).to_vec()).collect())
    }
}

const PORT_COLUMNS: &[&str] = &["_uuid", "name", "tag", "trunks", "interfaces"];
const IFACE_COLUMNS: &[&str] = &["_uuid", "name", "external_ids", "ofport", "error"];

fn port_info(p: &Value, bridge: &str, ifaces: &HashMap<String, &Value>) -> PortInfo {
    let name = p["name"].as_str().unwrap_or_default();
    let mut mine: Vec<&Value> =
        uuid_set(&p["interfaces"]).iter().filter_map(|u| ifaces.get(u).copied()).collect();
    // A bond has several interfaces; the one named like the port speaks for it.
    mine.sort_by_key(|i| i["name"] != name);
    let iface = mine.first();
    let mut trunks: Vec<u16> =
        int_set(&p["trunks"]).into_iter().filter_map(|t| u16::try_from(t).ok()).collect();
    trunks.sort_unstable();
    PortInfo {
        name: name.to_string(),
        bridge: bridge.to_string(),
        tag: opt_int(&p["tag"]).and_then(|t| u16::try_from(t).ok()),
        trunks,
        external_ids: iface.map(|i| str_map(&i["external_ids"])).unwrap_or_default(),
        ofport: iface.and_then(|i| opt_int(&i["ofport"])).and_then(|o| i32::try_from(o).ok()),
        error: iface.and_then(|i| opt_str(&i["error"])),
    }
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
fn port_rows(spec: &PortSpec, iface: &str) -> (Value, Value) {
    let name = spec.name.as_str();
    let mut iface_row = json!({"name": name});
    if let Some(t) = &spec.iface_type {
        iface_row["type"] = json!(t);
    }
    if !spec.external_ids.is_empty() {
        let pairs: Vec<Value> = spec.external_ids.iter().map(|(k, v)| json!([k, v])).collect();
        iface_row["external_ids"] = json!(["map", pairs]);
    }
    let mut port = json!({"name": name, "interfaces": named(iface)});
    if let Some(t) = spec.tag {
        port["tag"] = json!(t.get());
    }
    if !spec.trunks.is_empty() {
        port["trunks"] = set(spec.trunks.iter().map(|t| json!(t.get())));
    }
    (iface_row, port)
}

/// The ofport of a just-added interface (its row after ovs-vswitchd applied
/// the change), and what went wrong if it was not attached.
fn attach_problem(bridge: &IfName, row: Option<&Value>) -> (Option<i64>, Option<String>) {
    let ofport = row.and_then(|i| opt_int(&i["ofport"]));
    let error = row.and_then(|i| opt_str(&i["error"]));
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
fn inserted_uuid(result: &Value) -> CapResult<String> {
    uuid(&result["uuid"]).ok_or_else(|| CapError::failed("OVSDB insert returned no uuid"))
}

fn where_uuid(u: &str) -> Value {
    json!([["_uuid", "==", ["uuid", u]]])
}

fn cur_cfg_of(table_updates: &Value) -> Option<i64> {
    let rows = table_updates.get(DB)?.as_object()?;
    rows.values().find_map(|row| row["new"]["cur_cfg"].as_i64())
}

// ---- RFC 7047 operations and values ----

fn select(table: &str, where_: Value, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": where_, "columns": columns})
}

fn insert(table: &str, uuid_name: &str, row: Value) -> Value {
    json!({"op": "insert", "table": table, "uuid-name": uuid_name, "row": row})
}

fn mutate(table: &str, where_: Value, column: &str, mutator: &str, value: Value) -> Value {
    json!({"op": "mutate", "table": table, "where": where_,
           "mutations": [[column, mutator, value]]})
}

/// Fails with "timed out" at once unless a row named `name` exists (`present`)
/// or does not; its index tells the caller which precondition failed.
fn wait_rows(table: &str, name: &IfName, present: bool) -> Value {
    let rows = if present { json!([{"name": name.as_str()}]) } else { json!([]) };
    json!({"op": "wait", "timeout": 0, "table": table, "where": where_name(name),
           "columns": ["name"], "until": "==", "rows": rows})
}

/// How often [`Vswitch::del_port`] reads again after a concurrent change.
const CONFLICT_TRIES: usize = 3;

/// `del-port`'s transaction for the port row `port_uuid` read from `bridge`:
/// the precondition that the bridge still has that row, then its removal.
/// Public so that tests can run it against a change made in between.
pub fn del_port_ops(bridge: &IfName, port_uuid: &str) -> Vec<Value> {
    vec![
        wait_member(bridge, port_uuid),
        mutate("Bridge", where_name(bridge), "ports", "delete", set([json!(["uuid", port_uuid])])),
    ]
}

/// Fails with "timed out" at once unless bridge `bridge` still has the port
/// row `port_uuid` (RFC 7047 `wait` with `includes` in its `where`).
fn wait_member(bridge: &IfName, port_uuid: &str) -> Value {
    json!({"op": "wait", "timeout": 0, "table": "Bridge",
           "where": [["name", "==", bridge.as_str()], ["ports", "includes", ["uuid", port_uuid]]],
           "columns": ["name"], "until": "==", "rows": [{"name": bridge.as_str()}]})
}

fn where_name(name: &IfName) -> Value {
    json!([["name", "==", name.as_str()]])
}

fn named(uuid_name: &str) -> Value {
    json!(["named-uuid", uuid_name])
}

fn set(items: impl IntoIterator<Item = Value>) -> Value {
    json!(["set", items.into_iter().collect::<Vec<_>>()])
}

fn rows(result: &Value) -> &[Value] {
    result["rows"].as_array().map_or(&[], Vec::as_slice)
}

fn by_uuid(rows: &[Value]) -> HashMap<String, &Value> {
    rows.iter().filter_map(|r| Some((uuid(&r["_uuid"])?, r))).collect()
}

/// The members of a set column: a lone atom stands for a one-element set.
fn members(v: &Value) -> Vec<&Value> {
    match v.as_array() {
        Some(a) if a.len() == 2 && a[0] == "set" => a[1].as_array().map_or(vec![], |m| m.iter().collect()),
        _ if v.is_null() => vec![],
        _ => vec![v],
    }
}

fn uuid(v: &Value) -> Option<String> {
    match v.as_array()?.as_slice() {
        [tag, Value::String(u)] if tag == "uuid" => Some(u.clone()),
        _ => None,
    }
}

fn uuid_set(v: &Value) -> Vec<String> {
    members(v).into_iter().filter_map(uuid).collect()
}

fn int_set(v: &Value) -> Vec<i64> {
    members(v).into_iter().filter_map(Value::as_i64).collect()
}

fn opt_int(v: &Value) -> Option<i64> {
    members(v).first().and_then(|m| m.as_i64())
}

fn opt_str(v: &Value) -> Option<String> {
    members(v).first().and_then(|m| m.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    let pairs = match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(pairs)]) if tag == "map" => pairs.as_slice(),
        _ => &[],
    };
    pairs.iter().filter_map(|kv| Some((kv[0].as_str()?.to_string(), kv[1].as_str()?.to_string()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovsdb_values() {
        assert_eq!(opt_int(&json!(["set", []])), None);
        assert_eq!(opt_int(&json!(5)), Some(5));
        assert_eq!(opt_int(&json!(["set", [7]])), Some(7));
        assert_eq!(int_set(&json!(["set", [1, 2]])), vec![1, 2]);
        assert_eq!(int_set(&json!(3)), vec![3]);
        assert_eq!(uuid_set(&json!(["uuid", "a"])), vec!["a"]);
        assert_eq!(uuid_set(&json!(["set", [["uuid", "a"], ["uuid", "b"]]])), vec!["a", "b"]);
        assert_eq!(opt_str(&json!("boom")).as_deref(), Some("boom"));
        assert_eq!(opt_str(&json!(["set", []])), None);
        let m = str_map(&json!(["map", [["k", "v"], ["bad"], [1, "x"]]]));
        assert_eq!(m.len(), 1);
        assert_eq!(m["k"], "v");
        assert!(str_map(&json!("junk")).is_empty());
        let upd = json!({"Open_vSwitch": {"u1": {"new": {"cur_cfg": 9}, "old": {"cur_cfg": 8}}}});
        assert_eq!(cur_cfg_of(&upd), Some(9));
        assert_eq!(cur_cfg_of(&json!({})), None);
    }
}

#[cfg(test)]
mod fuzz {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::Value;

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
            let ifaces: HashMap<String, &Value> = [("u".to_string(), &iface)].into();
            let _ = super::port_info(&port, "br0", &ifaces);
            let _ = super::cur_cfg_of(&port);
        }
    }
}
