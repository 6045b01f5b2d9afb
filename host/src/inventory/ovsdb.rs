//! The one OVSDB read the inventory needs: every bridge's ports with their
//! Interface rows, in a single read-only transaction (a consistent snapshot;
//! `ovs-vsctl list` would take one per table). Kept here, beside its only
//! user, rather than in the OVSDB backend: it asks for columns (the
//! interface's MTU and link state) that nothing that changes the switch needs.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::backend::ovsdb::{Connection, OvsdbUri};
use crate::backend::PortInfo;
use crate::error::CapResult;

/// A port as OVSDB has it, with what ovs-vswitchd reports for its interface.
#[derive(Clone, Debug)]
pub struct OvsPort {
    pub info: PortInfo,
    /// The Interface's `mtu` (what ovs-vswitchd reads from the device).
    pub mtu: Option<u32>,
    /// The Interface's `link_state` ("up" / "down").
    pub link_state: Option<String>,
}

/// Every port of every bridge (bridges' own local ports left out), sorted by
/// bridge, then port name.
pub async fn ports(uri: &OvsdbUri) -> CapResult<Vec<OvsPort>> {
    let (conn, _notes) = Connection::connect(uri).await?;
    let select = |table: &str, columns: &[&str]| json!({"op": "select", "table": table, "where": [], "columns": columns});
    // Raw JSON rows: the inventory reads columns the typed rows do not carry.
    let results = conn
        .call(
            "transact",
            json!([
                "Open_vSwitch",
                select("Bridge", &["name", "ports"]),
                select("Port", &["_uuid", "name", "tag", "trunks", "interfaces"]),
                select(
                    "Interface",
                    &["_uuid", "name", "external_ids", "ofport", "error", "mtu", "link_state"],
                ),
            ]),
        )
        .await?;
    let rows = |i: usize| results.get(i).and_then(|r| r["rows"].as_array()).cloned().unwrap_or_default();
    let (bridges, ports, ifaces) = (rows(0), rows(1), rows(2));
    Ok(decode(&bridges, &ports, &ifaces))
}

/// The rows of the three tables, joined. Never panics on odd values: a
/// malformed column reads as absent.
fn decode(bridges: &[Value], ports: &[Value], ifaces: &[Value]) -> Vec<OvsPort> {
    let ports_by_uuid: HashMap<String, &Value> =
        ports.iter().filter_map(|p| Some((uuid(&p["_uuid"])?, p))).collect();
    let ifaces_by_uuid: HashMap<String, &Value> =
        ifaces.iter().filter_map(|i| Some((uuid(&i["_uuid"])?, i))).collect();
    let mut out = Vec::new();
    for b in bridges {
        let Some(bridge) = b["name"].as_str() else { continue };
        for pu in members(&b["ports"]).into_iter().filter_map(uuid) {
            let Some(p) = ports_by_uuid.get(&pu) else { continue };
            let name = p["name"].as_str().unwrap_or_default();
            if name == bridge {
                continue;
            }
            let mut mine: Vec<&Value> = members(&p["interfaces"])
                .into_iter()
                .filter_map(uuid)
                .filter_map(|u| ifaces_by_uuid.get(&u).copied())
                .collect();
            // A bond has several interfaces; the one named like the port speaks for it.
            mine.sort_by_key(|i| i["name"] != name);
            let iface = mine.first();
            let mut trunks: Vec<u16> = members(&p["trunks"])
                .into_iter()
                .filter_map(Value::as_i64)
                .filter_map(|t| u16::try_from(t).ok())
                .collect();
            trunks.sort_unstable();
            let info = PortInfo {
                name: name.to_string(),
                bridge: bridge.to_string(),
                tag: opt_int(&p["tag"]).and_then(|t| u16::try_from(t).ok()),
                trunks,
                external_ids: iface.map(|i| str_map(&i["external_ids"])).unwrap_or_default(),
                ofport: iface.and_then(|i| opt_int(&i["ofport"])).and_then(|o| i32::try_from(o).ok()),
                error: iface.and_then(|i| opt_str(&i["error"])),
            };
            out.push(OvsPort {
                info,
                mtu: iface.and_then(|i| opt_int(&i["mtu"])).and_then(|m| u32::try_from(m).ok()),
                link_state: iface.and_then(|i| opt_str(&i["link_state"])),
            });
        }
    }
    out.sort_by(|a, b| (&a.info.bridge, &a.info.name).cmp(&(&b.info.bridge, &b.info.name)));
    out
}

// ---- RFC 7047 values ----

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
    pairs
        .iter()
        .filter_map(|kv| Some((kv.get(0)?.as_str()?.to_string(), kv.get(1)?.as_str()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_bridges_ports_and_interfaces() {
        let bridges = [
            json!({"name": "br0", "ports": ["set", [["uuid", "p0"], ["uuid", "p1"]]]}),
            json!({"name": "br1", "ports": ["uuid", "p2"]}),
        ];
        let ports = [
            json!({"_uuid": ["uuid", "p0"], "name": "br0", "tag": ["set", []], "trunks": ["set", []], "interfaces": ["uuid", "i0"]}),
            json!({"_uuid": ["uuid", "p1"], "name": "ovr0123456789_l", "tag": 10, "trunks": ["set", [20, 5]], "interfaces": ["uuid", "i1"]}),
            json!({"_uuid": ["uuid", "p2"], "name": "odd", "tag": "x", "trunks": 7, "interfaces": ["uuid", "gone"]}),
        ];
        let ifaces =
            [json!({"_uuid": ["uuid", "i1"], "name": "ovr0123456789_l", "ofport": 3, "error": ["set", []],
                   "mtu": 1450, "link_state": "up",
                   "external_ids": ["map", [["container_id", "web"], ["container_iface", "eth0"]]]})];
        let got = decode(&bridges, &ports, &ifaces);
        assert_eq!(got.len(), 2, "the bridge's own port is left out: {got:?}");
        let p = &got[0];
        assert_eq!((p.info.bridge.as_str(), p.info.name.as_str()), ("br0", "ovr0123456789_l"));
        assert_eq!((p.info.tag, p.info.trunks.clone(), p.info.ofport), (Some(10), vec![5, 20], Some(3)));
        assert_eq!((p.mtu, p.link_state.as_deref()), (Some(1450), Some("up")));
        assert_eq!(p.info.external_ids["container_iface"], "eth0");
        // Malformed and missing values read as absent.
        let q = &got[1];
        assert_eq!((q.info.tag, q.mtu, q.info.ofport), (None, None, None));
        assert_eq!(q.info.trunks, vec![7]);
    }
}
