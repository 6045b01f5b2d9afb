//! Binding a port to OVN: wait until the local ovn-controller has installed
//! the flows of the logical port an Interface names in
//! `external_ids:iface-id`; it says so by setting
//! `external_ids:ovn-installed=true` on that Interface row.

use std::time::{Duration, Instant};

use ovsdb_client::vswitch::Interface;
use ovsdb_client::{Operation, Table};

use super::{where_name, Vswitch};
use crate::backend::ovn::ext::{IFACE_ID, OVN_INSTALLED};
use crate::error::{CapError, CapResult};
use crate::types::IfName;

/// How often the Interface row is read while waiting: small against the
/// 70-160 ms ovn-controller takes here, and one cheap select each time.
const POLL: Duration = Duration::from_millis(20);

impl Vswitch {
    /// Wait until Interface `port` has `external_ids:ovn-installed=true`, at
    /// most `limit`. The timeout error names the port, its logical port and
    /// what is missing.
    pub async fn wait_ovn_installed(
        &self,
        port: &IfName,
        iface_id: &str,
        limit: Duration,
    ) -> CapResult<Duration> {
        let started = Instant::now();
        loop {
            let r = self
                .read(vec![Operation::select(Interface::NAME, where_name(port), &["external_ids"])])
                .await?;
            let Some(row) = r[0].first() else {
                return Err(CapError::not_found(format!("port {port}: its Interface row is gone")));
            };
            let ids = row.string_map("external_ids");
            if ids.get(OVN_INSTALLED).map(String::as_str) == Some("true") {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= limit {
                let bound = ids.get(IFACE_ID).map(String::as_str).unwrap_or("(none)");
                return Err(CapError::failed(format!(
                    "port {port} (external_ids:{IFACE_ID}={bound}): ovn-controller did not set \
                     external_ids:{OVN_INSTALLED}=true within {:.1} s; is ovn-controller running on this host \
                     (Open_vSwitch external_ids:ovn-remote, system-id, ovn-encap-ip) and does the logical \
                     switch port {iface_id} exist in the northbound database?",
                    limit.as_secs_f64()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
