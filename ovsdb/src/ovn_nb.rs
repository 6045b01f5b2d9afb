//! Row types for the `OVN_Northbound` database (ovn-nb.ovsschema), for the
//! columns a client that manages logical switches, their ports and logical
//! routers needs. Hand-written like [`crate::vswitch`]: each struct
//! implements [`Table`], and [`REQUIREMENTS`] lists every column read, so a
//! server with another schema is refused on connect, naming what it lacks.

use std::collections::BTreeMap;

use crate::row::{Requirements, Row, Table};
use crate::value::Uuid;

/// The database's name.
pub const DATABASE: &str = "OVN_Northbound";

/// Every table and column the structs below read.
pub const REQUIREMENTS: Requirements<'static> = &[
    (LogicalSwitch::NAME, LogicalSwitch::COLUMNS),
    (LogicalSwitchPort::NAME, LogicalSwitchPort::COLUMNS),
    (LogicalRouter::NAME, LogicalRouter::COLUMNS),
    (LogicalRouterPort::NAME, LogicalRouterPort::COLUMNS),
];

/// A logical switch: one L2 domain, spread over every chassis with a port on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogicalSwitch {
    pub uuid: Option<Uuid>,
    pub name: String,
    pub ports: Vec<Uuid>,
    /// `subnet` (dynamic addresses), `mtu`, `exclude_ips`, ...
    pub other_config: BTreeMap<String, String>,
    pub external_ids: BTreeMap<String, String>,
}

impl Table for LogicalSwitch {
    const NAME: &'static str = "Logical_Switch";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "ports", "other_config", "external_ids"];

    fn from_row(row: &Row) -> Self {
        LogicalSwitch {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            ports: row.uuids("ports"),
            other_config: row.string_map("other_config"),
            external_ids: row.string_map("external_ids"),
        }
    }
}

/// A port of a logical switch; a chassis binds it where an OVS Interface
/// has `external_ids:iface-id` equal to its name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogicalSwitchPort {
    pub uuid: Option<Uuid>,
    pub name: String,
    /// "" (a VIF), "router", "localnet", ...
    pub port_type: String,
    /// "MAC IP..." entries, "dynamic", "router", "unknown".
    pub addresses: Vec<String>,
    /// "MAC IP..." entries the port may send from.
    pub port_security: Vec<String>,
    /// What northd assigned for "dynamic" addresses.
    pub dynamic_addresses: Option<String>,
    /// For type "router": `router-port`.
    pub options: BTreeMap<String, String>,
    /// Set by ovn-northd once a chassis has bound the port.
    pub up: Option<bool>,
    pub external_ids: BTreeMap<String, String>,
}

impl Table for LogicalSwitchPort {
    const NAME: &'static str = "Logical_Switch_Port";
    const COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "name",
        "type",
        "addresses",
        "port_security",
        "dynamic_addresses",
        "options",
        "up",
        "external_ids",
    ];

    fn from_row(row: &Row) -> Self {
        LogicalSwitchPort {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            port_type: row.str("type").to_string(),
            addresses: row.get("addresses").map(|v| v.strings()).unwrap_or_default(),
            port_security: row.get("port_security").map(|v| v.strings()).unwrap_or_default(),
            dynamic_addresses: row.opt_str("dynamic_addresses"),
            options: row.string_map("options"),
            up: row.get("up").and_then(|v| v.first()).and_then(|a| a.as_bool()),
            external_ids: row.string_map("external_ids"),
        }
    }
}

/// A logical router: routes between the switches its ports join.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogicalRouter {
    pub uuid: Option<Uuid>,
    pub name: String,
    pub ports: Vec<Uuid>,
    pub external_ids: BTreeMap<String, String>,
}

impl Table for LogicalRouter {
    const NAME: &'static str = "Logical_Router";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "ports", "external_ids"];

    fn from_row(row: &Row) -> Self {
        LogicalRouter {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            ports: row.uuids("ports"),
            external_ids: row.string_map("external_ids"),
        }
    }
}

/// A router port: its MAC and addresses (CIDRs) on the switch it joins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogicalRouterPort {
    pub uuid: Option<Uuid>,
    pub name: String,
    pub mac: String,
    pub networks: Vec<String>,
    pub external_ids: BTreeMap<String, String>,
}

impl Table for LogicalRouterPort {
    const NAME: &'static str = "Logical_Router_Port";
    const COLUMNS: &'static [&'static str] = &["_uuid", "name", "mac", "networks", "external_ids"];

    fn from_row(row: &Row) -> Self {
        LogicalRouterPort {
            uuid: row.uuid().cloned(),
            name: row.str("name").to_string(),
            mac: row.str("mac").to_string(),
            networks: row.get("networks").map(|v| v.strings()).unwrap_or_default(),
            external_ids: row.string_map("external_ids"),
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
        let row = Row::from_json(&json!({"_uuid": ["uuid", u], "name": "lsp1", "type": "",
            "addresses": "0a:00:00:00:00:01 10.0.0.1", "port_security": ["set", []],
            "up": ["set", [true]], "dynamic_addresses": ["set", []],
            "options": ["map", [["router-port", "lrp1"]]]}))
        .unwrap();
        let p = LogicalSwitchPort::from_row(&row);
        assert_eq!(p.addresses, vec!["0a:00:00:00:00:01 10.0.0.1".to_string()]);
        assert_eq!((p.up, p.dynamic_addresses.as_deref(), p.port_security.len()), (Some(true), None, 0));
        assert_eq!(p.options["router-port"], "lrp1");
        let s = LogicalSwitch::from_row(
            &Row::from_json(&json!({"name": "ls0", "other_config": ["map", [["subnet", "10.0.0.0/24"]]]}))
                .unwrap(),
        );
        assert_eq!((s.name.as_str(), s.other_config["subnet"].as_str()), ("ls0", "10.0.0.0/24"));
        assert_eq!(LogicalRouter::from_row(&Row::new()), LogicalRouter::default());
        assert_eq!(LogicalRouterPort::from_row(&Row::new()), LogicalRouterPort::default());
    }

    #[test]
    fn requirements_match_the_installed_schema() {
        // The schema Debian's ovn-central ships, when this machine has it.
        let Ok(text) = std::fs::read_to_string("/usr/share/ovn/ovn-nb.ovsschema") else { return };
        let schema = crate::Schema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(schema.name, DATABASE);
        assert_eq!(schema.missing(REQUIREMENTS), None);
    }
}
