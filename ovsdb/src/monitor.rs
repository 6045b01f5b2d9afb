//! RFC 7047 `monitor` (section 4.1.5): what to watch, and the
//! `<table-updates>` that the initial reply and every later `update`
//! notification carry.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::row::Row;
use crate::value::Uuid;

/// Watch `columns` of `table` (all columns when empty), for every kind of
/// change (initial, insert, delete, modify).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorRequest {
    pub table: String,
    pub columns: Vec<String>,
}

impl MonitorRequest {
    pub fn new(table: &str, columns: &[&str]) -> MonitorRequest {
        MonitorRequest { table: table.to_string(), columns: columns.iter().map(|c| c.to_string()).collect() }
    }
}

/// The `<monitor-requests>` object for `requests`.
pub(crate) fn requests_json(requests: &[MonitorRequest]) -> Json {
    let mut m = serde_json::Map::new();
    for r in requests {
        let req = if r.columns.is_empty() { json!({}) } else { json!({"columns": r.columns}) };
        m.insert(r.table.clone(), req);
    }
    Json::Object(m)
}

/// One row's change: `old` is absent for an insert (and the initial
/// contents), `new` for a delete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowUpdate {
    pub old: Option<Row>,
    pub new: Option<Row>,
}

/// Table name to the changed rows, by uuid.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableUpdates(pub BTreeMap<String, BTreeMap<Uuid, RowUpdate>>);

impl TableUpdates {
    pub fn from_json(v: &Json) -> Result<TableUpdates, String> {
        let tables = v.as_object().ok_or("table-updates is not an object")?;
        let mut out = BTreeMap::new();
        for (table, rows) in tables {
            let rows =
                rows.as_object().ok_or_else(|| format!("table-update for {table} is not an object"))?;
            let mut updates = BTreeMap::new();
            for (uuid, u) in rows {
                let uuid: Uuid = uuid.parse()?;
                let part = |k: &str| u.get(k).map(Row::from_json).transpose();
                updates.insert(uuid, RowUpdate { old: part("old")?, new: part("new")? });
            }
            out.insert(table.clone(), updates);
        }
        Ok(TableUpdates(out))
    }

    /// The new contents of `table`'s changed rows (deleted rows left out).
    pub fn new_rows<'a>(&'a self, table: &str) -> impl Iterator<Item = (&'a Uuid, &'a Row)> + 'a {
        self.0.get(table).into_iter().flatten().filter_map(|(u, r)| Some((u, r.new.as_ref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_parsed() {
        let u = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";
        let v = json!({"Open_vSwitch": {u: {"new": {"cur_cfg": 9}, "old": {"cur_cfg": 8}}}});
        let t = TableUpdates::from_json(&v).unwrap();
        let rows: Vec<_> = t.new_rows("Open_vSwitch").collect();
        assert_eq!(rows[0].1.opt_i64("cur_cfg"), Some(9));
        assert_eq!(t.new_rows("Bridge").count(), 0);
        assert!(TableUpdates::from_json(&json!({"T": {"not-a-uuid": {}}})).is_err());
        assert_eq!(requests_json(&[MonitorRequest::new("T", &["a"])]), json!({"T": {"columns": ["a"]}}));
    }
}
