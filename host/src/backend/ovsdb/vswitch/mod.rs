//! Typed operations on the `Open_vSwitch` database, on top of
//! `ovsdb_client`. Each change is one transaction that checks its
//! preconditions with `wait` operations and bumps `next_cfg`; the call then
//! waits until ovs-vswitchd reports that `cur_cfg` (watched through an
//! OVSDB monitor) has caught up, as `ovs-vsctl` does.
//!
//! This module holds the connection and the change/read machinery;
//! [`bridges`] and [`ports`] the operations on each.

mod bridges;
mod external_ids;
mod global;
mod ovn_bind;
mod ports;
mod tunnels;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ovsdb_client::vswitch::{OpenVswitch, DATABASE as DB, REQUIREMENTS};
use ovsdb_client::{
    Condition, Connection, Error, MonitorRequest, Mutation, Mutator, OpError, OpResult, Operation, Row,
    Table, TableUpdates, Transaction,
};
use tokio::sync::watch;

pub use ports::del_port_ops;

use super::{op_error, OvsdbUri};
use crate::error::{CapError, CapResult};
use crate::types::{IfName, VlanId};

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
    /// Connect, check that the database has the tables and columns used
    /// here, and start watching `cur_cfg`. `apply_timeout` bounds each wait
    /// for ovs-vswitchd to apply a change.
    pub async fn connect(uri: &OvsdbUri, apply_timeout: Duration) -> CapResult<Vswitch> {
        let (conn, mut notes) = Connection::connect(uri).await?;
        // Both requests in flight at once: the schema check costs no round trip.
        let watch_cfg = [MonitorRequest::new(OpenVswitch::NAME, &["cur_cfg"])];
        let (schema, initial) =
            tokio::join!(conn.check_schema(DB, REQUIREMENTS), conn.monitor(DB, MONITOR_ID, &watch_cfg));
        schema?;
        let (tx, rx) = watch::channel(cur_cfg_of(&initial?).unwrap_or(0));
        // Ends when the connection does (its reader drops the notification sender).
        tokio::spawn(async move {
            while let Some(n) = notes.recv().await {
                let Some((id, updates)) = n.as_update() else { continue };
                if *id == MONITOR_ID {
                    if let Some(c) = cur_cfg_of(&updates) {
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

    /// Run `ops` plus a `next_cfg` bump as one transaction, then wait until
    /// ovs-vswitchd has applied it. Returns the results of `ops`.
    async fn change(
        &self,
        what: &str,
        ops: Vec<Operation>,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<OpResult>> {
        self.change_sized(what, ops, 1, explain).await
    }

    /// [`Vswitch::change`] for a batch of `ports` ports: ovs-vswitchd's work
    /// grows with it, and so does the time it is given ([`BATCH_GRACE`] per
    /// port beyond the first).
    async fn change_sized(
        &self,
        what: &str,
        ops: Vec<Operation>,
        ports: usize,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<OpResult>> {
        let n = ops.len();
        let mut txn = Transaction { database: DB.to_string(), ops };
        txn.add(Operation::mutate(
            OpenVswitch::NAME,
            vec![],
            vec![Mutation::new("next_cfg", Mutator::Add, 1i64)],
        ));
        let read_next = txn.add(Operation::select(OpenVswitch::NAME, vec![], &["next_cfg"]));
        txn.add(Operation::comment(format!("ovs-run: {what}")));
        let started = std::time::Instant::now();
        let mut results = self.transact(&txn, explain).await?;
        let committed = started.elapsed();
        // Counted once committed: a create-bridge for a bridge that exists
        // is refused by its `wait` op, changes nothing and waits for nothing.
        crate::backend::stats::ovsdb_change();
        let Some(next_cfg) = results[read_next].rows().first().and_then(|r| r.opt_i64("next_cfg")) else {
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
            Ok(Err(_)) => Err(self.inner.conn.lost_error().into()),
            Err(_) => Err(CapError::failed(format!(
                "{what}: ovs-vswitchd did not apply the change within {} s \
                 (is ovs-vswitchd running?)",
                limit.as_secs_f64()
            ))),
        }
    }

    /// One transaction, counted; `explain` may turn a failed operation into
    /// a better error (it knows what each index checked).
    async fn transact(
        &self,
        txn: &Transaction,
        explain: impl FnOnce(&OpError) -> Option<CapError>,
    ) -> CapResult<Vec<OpResult>> {
        crate::backend::stats::ovsdb_transaction();
        self.inner.conn.transact(txn).await.map_err(|e| match e {
            Error::Op(op) => explain(&op).unwrap_or_else(|| op_error(&op)),
            other => other.into(),
        })
    }

    /// A read-only transaction of selects; the rows of each.
    async fn read(&self, ops: Vec<Operation>) -> CapResult<Vec<Vec<Row>>> {
        let results = self.transact(&Transaction { database: DB.to_string(), ops }, |_| None).await?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                OpResult::Select { rows } => rows,
                _ => vec![],
            })
            .collect())
    }
}

fn cur_cfg_of(updates: &TableUpdates) -> Option<i64> {
    updates.new_rows(OpenVswitch::NAME).find_map(|(_, row)| row.opt_i64("cur_cfg"))
}

fn where_name(name: &IfName) -> Vec<Condition> {
    vec![Condition::eq("name", name.as_str())]
}

/// Fails with "timed out" at once unless a row named `name` exists (`present`)
/// or does not; its index tells the caller which precondition failed.
fn wait_rows(table: &str, name: &IfName, present: bool) -> Operation {
    let rows = if present { vec![Row::new().with("name", name.as_str())] } else { vec![] };
    Operation::wait_now(table, where_name(name), &["name"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cur_cfg_read_from_updates() {
        let u = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";
        let upd = json!({"Open_vSwitch": {u: {"new": {"cur_cfg": 9}, "old": {"cur_cfg": 8}}}});
        assert_eq!(cur_cfg_of(&TableUpdates::from_json(&upd).unwrap()), Some(9));
        assert_eq!(cur_cfg_of(&TableUpdates::default()), None);
    }

    #[test]
    fn wait_rows_is_an_immediate_precondition() {
        let br = IfName::parse("br0").unwrap();
        assert_eq!(
            wait_rows("Bridge", &br, true).to_json(),
            json!({"op": "wait", "table": "Bridge", "where": [["name", "==", "br0"]], "columns": ["name"],
                   "until": "==", "rows": [{"name": "br0"}], "timeout": 0})
        );
    }
}
