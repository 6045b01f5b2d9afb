//! Row types for the `Open_vSwitch` database (vswitch.ovsschema), for the
//! columns a bridge-and-port client needs. Each struct implements
//! [`Table`]: its name, the columns it reads (checked on connect with
//! [`REQUIREMENTS`]) and a lenient `from_row` (a column a select did not ask
//! for reads as empty). Another schema (OVN_Northbound, ...) gets a module
//! like this one.

use std::collections::BTreeMap;

use crate::row::{Requirements, Row, Table};
use crate::value::Uuid;

/// The database's name.
pub const DATABASE: &str = "Open_vSwitch";

/// Every table and column the structs below read.
pub const REQUIREMENTS: Requirements<'static> = &[
    (OpenVswitch::NAME, OpenVswitch::COLUMNS),
    (Bridge::NAME, Bridge::COLUMNS),
    (Port::NAME, Port::COLUMNS),
    (Interface::NAME, Interface::COLUMNS),
];

/// The root row: which bridges exist and how far ovs-vswitchd got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenVswitch {
    pub uuid: Option<Uuid>,
    pub bridges: Vec<Uuid>,
    /// Bumped by clients with every change they want applied.
    pub next_cfg: i64,
    /// Set by ovs-vswitchd to the `next_cfg` it has applied.
    pub cur_cfg: i64,
}

impl Table for OpenVswitch {
    const NAME: &'static str = "Open_vSwitch";
    const COLUMNS: &'static [&'static str] = &["_uuid", "bridges", "next_cfg", "cur_cfg"];

    fn from_row(row: &Row) -> Self {
        OpenVswitch {
            uuid: row.uuid().cloned(),
            bridges: row.uuids("bridges"),
            next_cfg: row.opt_i64("next_cfg").unwrap_or_default(),
            cur_cfg: row.opt_i64("cur_cfg").unwrap_or_default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bridge {
    pub uuid: Option<Uuid>,
    pub name: String,
    /// "" (the kernel datapath), "system" or "netdev".
    pub datapath_type: String,
    pub ports: Vec<Uuid>,
}

impl Table for Bridge {
    const NAME: &'static str = "Bridge";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "datapath_type", "ports"];

    fn from_row(row: &Row) -> Self {
        Bridge {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            datapath_type: row.str("datapath_type").to_string(),
            ports: row.uuids("ports"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Port {
    pub uuid: Option<Uuid>,
    pub name: String,
    /// The access VLAN (0-4095), if any.
    pub tag: Option<i64>,
    pub trunks: Vec<i64>,
    pub interfaces: Vec<Uuid>,
}

impl Table for Port {
    const NAME: &'static str = "Port";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "tag", "trunks", "interfaces"];

    fn from_row(row: &Row) -> Self {
        Port {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            tag: row.opt_i64("tag"),
            trunks: row.integers("trunks"),
            interfaces: row.uuids("interfaces"),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub uuid: Option<Uuid>,
    pub name: String,
    /// "" (a system device), "internal", "patch", ...
    pub iface_type: String,
    pub external_ids: BTreeMap<String, String>,
    /// The OpenFlow port number ovs-vswitchd gave it; -1 when it could not
    /// open it; None before it looked.
    pub ofport: Option<i64>,
    /// ovs-vswitchd's error for this interface (empty counts as none).
    pub error: Option<String>,
}

impl Table for Interface {
    const NAME: &'static str = "Interface";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "type", "external_ids", "ofport", "error"];

    fn from_row(row: &Row) -> Self {
        Interface {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            iface_type: row.str("type").to_string(),
            external_ids: row.string_map("external_ids"),
            ofport: row.opt_i64("ofport"),
            error: row.opt_str("error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_read_leniently() {
        let u = "0b6ad4a6-4bd4-4d7f-9d8e-2b1a2f7d8c11";
        let row = Row::from_json(&json!({"_uuid": ["uuid", u], "name": "p1", "tag": ["set", []],
            "trunks": ["set", [10, 20]], "interfaces": ["uuid", u]}))
        .unwrap();
        let p = Port::from_row(&row);
        assert_eq!((p.name.as_str(), p.tag, p.trunks.as_slice()), ("p1", None, &[10, 20][..]));
        assert_eq!(p.interfaces, vec![u.parse().unwrap()]);
        let i = Interface::from_row(
            &Row::from_json(&json!({"error": "", "ofport": 3,
            "external_ids": ["map", [["k", "v"]]]}))
            .unwrap(),
        );
        assert_eq!((i.error, i.ofport, i.external_ids["k"].as_str()), (None, Some(3), "v"));
        assert_eq!(Bridge::from_row(&Row::new()), Bridge::default());
    }
}
