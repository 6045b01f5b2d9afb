//! An Interface row's external_ids, changed key by key: the other keys (the
//! ones ovn-controller and others set) are never touched.

use std::collections::BTreeMap;

use ovsdb_client::vswitch::Interface;
use ovsdb_client::{Mutation, Mutator, Operation, Table, Value};

use super::{wait_rows, where_name, Vswitch};
use crate::error::{CapError, CapResult};
use crate::types::IfName;

impl Vswitch {
    /// Set (Some) or remove (None) keys of interface `iface`'s
    /// external_ids, in one transaction; the keys' old values (None: the
    /// key was not there), read in that same transaction.
    pub async fn set_interface_ids(
        &self,
        iface: &IfName,
        ids: &BTreeMap<String, Option<String>>,
    ) -> CapResult<BTreeMap<String, Option<String>>> {
        let keys = Value::set(ids.keys().map(String::as_str));
        let set = Value::map(ids.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?))));
        let ops = vec![
            wait_rows(Interface::NAME, iface, true),
            Operation::select(Interface::NAME, where_name(iface), &["external_ids"]),
            Operation::mutate(
                Interface::NAME,
                where_name(iface),
                vec![
                    Mutation::new("external_ids", Mutator::Delete, keys),
                    Mutation::new("external_ids", Mutator::Insert, set),
                ],
            ),
        ];
        let r = self
            .change(&format!("set external_ids of interface {iface}"), ops, |e| {
                (e.index == 0).then(|| CapError::not_found(format!("interface {iface} does not exist")))
            })
            .await?;
        let old = r[1].rows().first().map(|row| row.string_map("external_ids")).unwrap_or_default();
        Ok(ids.keys().map(|k| (k.clone(), old.get(k).cloned())).collect())
    }
}
