//! Docker, through its API socket (bollard): container name or id to full
//! id, name, init pid and labels. Connected on first use, so scripts that
//! never name a container do not need dockerd.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use tokio::sync::OnceCell;

use crate::error::{CapError, CapResult};
use crate::types::{ContainerInfo, ContainerRef};

pub struct Docker {
    /// `unix:///path` or `tcp://host:port`, as in DOCKER_HOST.
    uri: String,
    client: OnceCell<bollard::Docker>,
}

/// DOCKER_HOST, else the standard socket.
pub fn default_uri() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

impl Docker {
    pub fn new(uri: &str) -> Self {
        Self { uri: uri.to_string(), client: OnceCell::new() }
    }

    async fn client(&self) -> CapResult<&bollard::Docker> {
        self.client
            .get_or_try_init(|| async {
                bollard::Docker::connect_with_host(&self.uri)
                    .map_err(|e| CapError::failed(format!("cannot use Docker at {}: {e}", self.uri)))
            })
            .await
    }

    fn unreachable(&self, e: DockerError) -> CapError {
        CapError::failed(format!("cannot reach Docker at {}: {e} (is dockerd running?)", self.uri))
    }

    pub async fn lookup(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        let c = self.client().await?;
        crate::backend::stats::docker_request();
        let r = match c.inspect_container(name.as_str(), None::<InspectContainerOptions>).await {
            Ok(r) => r,
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(CapError::not_found(format!("container {name} not found")))
            }
            Err(e @ DockerError::DockerResponseServerError { .. }) => {
                return Err(CapError::failed(format!("Docker refused to inspect container {name}: {e}")))
            }
            Err(e) => return Err(self.unreachable(e)),
        };
        let state = r.state.unwrap_or_default();
        let running = state.running.unwrap_or(false);
        let pid = state.pid.unwrap_or(0).max(0) as u32;
        let mut labels: Vec<(String, String)> =
            r.config.and_then(|c| c.labels).unwrap_or_default().into_iter().collect();
        labels.sort();
        Ok(ContainerInfo {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default().trim_start_matches('/').to_string(),
            pid: if running { pid } else { 0 },
            running,
            labels,
        })
    }

    /// Running containers carrying all of `labels`.
    pub async fn list(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>> {
        let c = self.client().await?;
        let mut filters = HashMap::new();
        if !labels.is_empty() {
            filters.insert("label".to_string(), labels.iter().map(|(k, v)| format!("{k}={v}")).collect());
        }
        let opts = ListContainersOptions { filters: Some(filters), ..Default::default() };
        crate::backend::stats::docker_request();
        let summaries = c.list_containers(Some(opts)).await.map_err(|e| self.unreachable(e))?;
        let mut out = Vec::new();
        for s in summaries {
            let Some(id) = s.id else { continue };
            // A container can go away between list and inspect; skip it then.
            match self.lookup(&ContainerRef::parse(&id)?).await {
                Ok(info) => out.push(info),
                Err(e) if e.kind == crate::error::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
