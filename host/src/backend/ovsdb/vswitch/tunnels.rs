//! Tunnel ports in the `Open_vSwitch` database: one Port row (with
//! `protected=true` unless the tunnel is transit) and one Interface row of
//! type gre/vxlan/geneve with its `options`, added in one transaction;
//! read back from the same columns.

use std::collections::{HashMap, HashSet};

use ovsdb_client::vswitch::{Bridge, Interface, Port};
use ovsdb_client::{Atom, Mutation, Mutator, Operation, Row, Table, Uuid, Value};

use super::ports::inserted_uuid;
use super::{wait_rows, where_name, Vswitch};
use crate::backend::ext;
use crate::error::{CapError, CapResult};
use crate::tunnel::{TunnelInfo, TunnelKind, TunnelSpec};
use crate::types::IfName;

/// Interface columns a tunnel is read from.
const IFACE_COLUMNS: &[&str] = &["_uuid", "name", "type", "options", "ofport", "error"];
/// Port columns a tunnel is read from.
const PORT_COLUMNS: &[&str] = &["_uuid", "name", "interfaces", "protected"];

impl Vswitch {
    /// The tunnel ports of `bridge`, sorted by name. Tunnel interfaces with
    /// settings this model cannot express (`remote_ip=flow`) are left out.
    pub async fn tunnels(&self, bridge: &IfName) -> CapResult<Vec<TunnelInfo>> {
        let r = self
            .read(vec![
                Operation::select(Bridge::NAME, where_name(bridge), &["ports"]),
                Operation::select(Port::NAME, vec![], PORT_COLUMNS),
                Operation::select(Interface::NAME, vec![], IFACE_COLUMNS),
            ])
            .await?;
        let b = r[0].first().ok_or_else(|| CapError::not_found(format!("bridge {bridge} does not exist")))?;
        let members: HashSet<Uuid> = b.uuids("ports").into_iter().collect();
        let ifaces: HashMap<Uuid, &Row> = r[2].iter().filter_map(|i| Some((i.uuid()?.clone(), i))).collect();
        let mut out: Vec<TunnelInfo> = r[1]
            .iter()
            .filter(|p| p.uuid().is_some_and(|u| members.contains(u)))
            .filter_map(|p| {
                let iface = p.uuids("interfaces").first().and_then(|u| ifaces.get(u)).copied()?;
                tunnel_of(bridge, p, iface)
            })
            .collect();
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(out)
    }

    /// Add tunnel port `spec` to `bridge` in one transaction and wait until
    /// ovs-vswitchd applied it. A tunnel ovs-vswitchd refused is removed
    /// again and reported with its error.
    pub async fn add_tunnel(&self, bridge: &IfName, spec: &TunnelSpec) -> CapResult<TunnelInfo> {
        let name = &spec.name;
        let options = spec.ovs_options();
        let iface = Row::new()
            .with("name", name.as_str())
            .with("type", spec.kind.as_str())
            .with("options", Value::map(options.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .with("external_ids", Value::map([(ext::CREATED_BY, "ovs-run")]));
        let port = Row::new()
            .with("name", name.as_str())
            .with("interfaces", Atom::named("iface"))
            .with("protected", !spec.transit);
        let ops = vec![
            wait_rows(Bridge::NAME, bridge, true),
            wait_rows(Port::NAME, name, false),
            Operation::insert(Interface::NAME, iface, Some("iface")),
            Operation::insert(Port::NAME, port, Some("port")),
            Operation::mutate(
                Bridge::NAME,
                where_name(bridge),
                vec![Mutation::new("ports", Mutator::Insert, Value::set([Atom::named("port")]))],
            ),
        ];
        let r = self
            .change(&format!("add-tunnel {bridge} {name}"), ops, |e| match e.index {
                0 => Some(CapError::not_found(format!("bridge {bridge} does not exist"))),
                1 => Some(CapError::exists(format!("port {name} already exists"))),
                _ if e.is_unique_index_violation() => Some(CapError::exists(format!(
                    "tunnel {name}: an interface named {name} already exists ({})",
                    e.describe()
                ))),
                _ => None,
            })
            .await?;
        let ofport = self.attached_or_removed(bridge, name, &inserted_uuid(&r[2])?, "tunnel").await?;
        Ok(TunnelInfo {
            spec: spec.clone(),
            bridge: bridge.to_string(),
            ofport: ofport.and_then(|o| i32::try_from(o).ok()),
            error: None,
        })
    }

    /// Remove tunnel `name` from `bridge`; what was removed (for the undo),
    /// None when the bridge has no port of that name. A port that is not a
    /// tunnel (or one with settings this model cannot put back) is refused.
    pub async fn del_tunnel(&self, bridge: &IfName, name: &IfName) -> CapResult<Option<TunnelInfo>> {
        let r = self
            .read(vec![
                Operation::select(Bridge::NAME, where_name(bridge), &["ports"]),
                Operation::select(Port::NAME, where_name(name), PORT_COLUMNS),
                Operation::select(Interface::NAME, where_name(name), IFACE_COLUMNS),
            ])
            .await?;
        let (Some(b), Some(p)) = (r[0].first(), r[1].first()) else { return Ok(None) };
        if !p.uuid().is_some_and(|u| b.uuids("ports").contains(u)) {
            return Ok(None);
        }
        let Some(iface) = r[2].first() else { return Ok(None) };
        let Some(tunnel) = tunnel_of(bridge, p, iface) else {
            let t = iface.str("type");
            return Err(CapError::invalid(format!(
                "port {name} on bridge {bridge} is not a tunnel ovs-run manages (interface type '{t}'{}); \
                 remove it with del-port",
                if TunnelKind::from_ovs(t).is_some() { ", with options it does not model" } else { "" }
            )));
        };
        // del_port checks the row is still the bridge's when it commits.
        Ok(self.del_port(bridge, name).await?.then_some(tunnel))
    }
}

/// The tunnel a Port row and its Interface row describe, if they are one.
fn tunnel_of(bridge: &IfName, port: &Row, iface: &Row) -> Option<TunnelInfo> {
    let protected = port.get("protected").and_then(|v| v.first()).and_then(Atom::as_bool).unwrap_or(false);
    let spec =
        TunnelSpec::from_ovs(port.str("name"), iface.str("type"), &iface.string_map("options"), protected)?;
    let i = Interface::from_row(iface);
    Some(TunnelInfo {
        spec,
        bridge: bridge.to_string(),
        ofport: i.ofport.and_then(|o| i32::try_from(o).ok()),
        error: i.error,
    })
}
