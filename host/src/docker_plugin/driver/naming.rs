//! Container ids on the driver's ports. No call of the plugin protocol
//! names the container: Docker lists the endpoint under its network
//! (`GET /networks/ID`) only shortly after Join was answered. So after
//! every Join a task asks Docker until it does (bounded), reads the
//! interface's name inside the container (the link with the endpoint's
//! MAC), and sets ovs-docker's `container_id` and `container_iface` (and
//! ovs-run's `container_full_id`, `container_name`) on the Interface,
//! through the gate like every other change. Then `ovs-vsctl`, `ovs-docker`
//! and `ovs-run ps` name the container of each port.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{short, Driver};
use crate::backend::{ext, Backend, Op};
use crate::docker_plugin::protocol as p;
use crate::error::{CapError, CapResult};
use crate::types::{ContainerRef, Target};

/// How long the task waits for Docker to list the endpoint.
const NAMING_LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

impl Driver {
    /// After a Join was answered: name its container on its port, in the
    /// background (Docker lists the container only after the answer).
    pub fn after_join(self: &Arc<Self>, body: &[u8]) {
        let Ok(r) = serde_json::from_slice::<p::Join>(body) else { return };
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.name_container(&r.network_id, &r.endpoint_id).await {
                eprintln!(
                    "ovs-run docker-plugin: endpoint {}: container not named on its port: {e}",
                    short(&r.endpoint_id)
                );
            }
        });
    }

    async fn name_container(&self, nid: &str, eid: &str) -> CapResult<()> {
        let started = Instant::now();
        let id = loop {
            if let Some(id) = self.backend.docker().endpoint_container(nid, eid).await? {
                break id;
            }
            if started.elapsed() > NAMING_LIMIT {
                return Err(CapError::failed(format!(
                    "Docker listed no container for it on network {} within {} s",
                    short(nid),
                    NAMING_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        };
        let given = ContainerRef::parse(&id).map_err(CapError::from)?;
        let c = self.backend.lookup_container(&given).await?;
        let Some(ep) = self.state.lock().await.endpoints.get(eid).cloned() else {
            return Ok(()); // gone meanwhile (Leave, DeleteEndpoint)
        };
        let target =
            Target::Container { given, id: c.id.clone(), name: c.name.clone(), pid: c.pid, labels: vec![] };
        // The name Docker gave the peer inside (eth0, eth1...): the link with the endpoint's MAC.
        let mut iface = None;
        for _ in 0..20 {
            let Some(mac) = ep.mac else { break };
            iface = self.backend.list_links(&target, None).await?.into_iter().find(|l| l.mac == Some(mac));
            if iface.is_some() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let iface = iface.map(|l| l.name);
        let mut ids = BTreeMap::new();
        ids.insert(ext::CONTAINER_ID.to_string(), Some(c.id.clone()));
        ids.insert(ext::CONTAINER_FULL_ID.to_string(), Some(c.id.clone()));
        ids.insert(ext::CONTAINER_NAME.to_string(), Some(c.name.clone()));
        if let Some(i) = iface {
            ids.insert(ext::CONTAINER_IFACE.to_string(), Some(i));
        }
        let op = Op::SetExternalIds { bridge: ep.bridge.clone(), port: ep.port.clone(), ids };
        self.change(&format!("Join {}: container {}", short(eid), c.name), vec![op]).await?;
        crate::verbose!(
            1,
            "endpoint {}: container {} ({}) named on port {} after {} ms",
            short(eid),
            c.name,
            short(&c.id),
            ep.port,
            started.elapsed().as_millis()
        );
        Ok(())
    }
}
