//! The root `Open_vSwitch` row's settings: its external_ids, where
//! ovn-controller reads this host's chassis configuration (ovn-bridge,
//! ovn-encap-type, ovn-encap-ip).

use std::collections::BTreeMap;

use ovsdb_client::vswitch::OpenVswitch;
use ovsdb_client::{Operation, Table};

use super::Vswitch;
use crate::error::CapResult;

impl Vswitch {
    /// The `Open_vSwitch` row's external_ids (empty before `ovs-vsctl init`).
    pub async fn external_ids(&self) -> CapResult<BTreeMap<String, String>> {
        let r = self.read(vec![Operation::select(OpenVswitch::NAME, vec![], &["external_ids"])]).await?;
        Ok(r[0].first().map(|row| row.string_map("external_ids")).unwrap_or_default())
    }
}
