//! Bridges: list, create (checked against what ovs-vswitchd did), delete.

use std::collections::HashMap;

use ovsdb_client::vswitch::{Bridge, Interface, OpenVswitch, Port};
use ovsdb_client::{Atom, Mutation, Mutator, Operation, Row, Table, Value};

use super::ports::attach_problem;
use super::{wait_rows, where_name, Vswitch};
use crate::backend::BridgeInfo;
use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{Datapath, IfName};

impl Vswitch {
    /// All bridges; `ports` includes each bridge's own internal port, as
    /// the WIT contract (`bridge-info.ports`) says (`ovs-vsctl list-ports`
    /// and [`Vswitch::ports`] leave it out).
    pub async fn bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        let r = self
            .read(vec![
                Operation::select(Bridge::NAME, vec![], &["name", "datapath_type", "ports"]),
                Operation::select(Port::NAME, vec![], &["_uuid", "name"]),
            ])
            .await?;
        let ports: Vec<Port> = r[1].iter().map(Port::from_row).collect();
        let names: HashMap<_, &str> =
            ports.iter().filter_map(|p| Some((p.uuid.as_ref()?, p.name.as_str()))).collect();
        let mut bridges: Vec<BridgeInfo> = r[0]
            .iter()
            .map(Bridge::from_row)
            .map(|b| {
                let mut ports: Vec<String> =
                    b.ports.iter().filter_map(|u| names.get(u).copied()).map(str::to_string).collect();
                ports.sort();
                BridgeInfo { name: b.name, datapath_type: b.datapath_type, ports }
            })
            .collect();
        bridges.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(bridges)
    }

    /// `bridge`'s `datapath_type` ("" means the kernel's); None when there
    /// is no such bridge.
    pub async fn bridge_datapath(&self, bridge: &IfName) -> CapResult<Option<String>> {
        let r =
            self.read(vec![Operation::select(Bridge::NAME, where_name(bridge), &["datapath_type"])]).await?;
        Ok(r[0].first().map(|b| Bridge::from_row(b).datapath_type))
    }

    /// true = created; false = it existed and `may_exist`.
    pub async fn create_bridge(&self, name: &IfName, datapath: Datapath, may_exist: bool) -> CapResult<bool> {
        let n = name.as_str();
        let ops = vec![
            wait_rows(Bridge::NAME, name, false),
            Operation::insert(
                Interface::NAME,
                Row::new().with("name", n).with("type", "internal"),
                Some("iface"),
            ),
            Operation::insert(
                Port::NAME,
                Row::new().with("name", n).with("interfaces", Atom::named("iface")),
                Some("port"),
            ),
            Operation::insert(
                Bridge::NAME,
                Row::new()
                    .with("name", n)
                    .with("ports", Value::set([Atom::named("port")]))
                    .with("datapath_type", datapath.as_ovsdb()),
                Some("bridge"),
            ),
            Operation::mutate(
                OpenVswitch::NAME,
                vec![],
                vec![Mutation::new("bridges", Mutator::Insert, Value::set([Atom::named("bridge")]))],
            ),
        ];
        let mut existed = false;
        let done = self
            .change(&format!("add-br {name}"), ops, |e| {
                if e.index == 0 {
                    existed = true;
                    Some(CapError::exists(format!("bridge {name} already exists")))
                } else if e.is_unique_index_violation() {
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
            Err(e) if may_exist && e.kind == ErrorKind::AlreadyExists => {
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
        let r =
            self.read(vec![Operation::select(Interface::NAME, where_name(name), Interface::COLUMNS)]).await?;
        let iface = r[0].first().map(Interface::from_row);
        let (_, problem) = attach_problem(name, iface.as_ref());
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

    /// Set (Some) or clear (None) `bridge`'s `other_config:hwaddr`: the MAC
    /// ovs-vswitchd gives the bridge's internal port (one set on the link
    /// itself it puts back at once). Waits until ovs-vswitchd has applied
    /// it. Returns the old value as stored; not-found without the bridge.
    pub async fn set_bridge_hwaddr(
        &self,
        bridge: &IfName,
        hwaddr: Option<&str>,
    ) -> CapResult<Option<String>> {
        let mut mutations = vec![Mutation::new("other_config", Mutator::Delete, Value::set(["hwaddr"]))];
        if let Some(h) = hwaddr {
            mutations.push(Mutation::new("other_config", Mutator::Insert, Value::map([("hwaddr", h)])));
        }
        let ops = vec![
            wait_rows(Bridge::NAME, bridge, true),
            Operation::select(Bridge::NAME, where_name(bridge), &["other_config"]),
            Operation::mutate(Bridge::NAME, where_name(bridge), mutations),
        ];
        let what = match hwaddr {
            Some(h) => format!("set bridge {bridge} other_config:hwaddr={h}"),
            None => format!("remove bridge {bridge} other_config:hwaddr"),
        };
        let r = self
            .change(&what, ops, |e| {
                (e.index == 0).then(|| CapError::not_found(format!("bridge {bridge} does not exist")))
            })
            .await?;
        Ok(r[1].rows().first().and_then(|b| b.string_map("other_config").remove("hwaddr")))
    }

    /// true = deleted; false = absent and `if_exists`. Its ports and
    /// interfaces go with it (OVSDB collects unreferenced rows).
    pub async fn delete_bridge(&self, name: &IfName, if_exists: bool) -> CapResult<bool> {
        let rows = self.read(vec![Operation::select(Bridge::NAME, where_name(name), &["_uuid"])]).await?;
        let Some(u) = rows[0].first().and_then(|b| b.uuid().cloned()) else {
            return match if_exists {
                true => Ok(false),
                false => Err(CapError::not_found(format!("bridge {name} does not exist"))),
            };
        };
        let ops = vec![Operation::mutate(
            OpenVswitch::NAME,
            vec![],
            vec![Mutation::new("bridges", Mutator::Delete, Value::set([u]))],
        )];
        self.change(&format!("del-br {name}"), ops, |_| None).await?;
        Ok(true)
    }
}
