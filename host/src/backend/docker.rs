//! Docker, through its API socket (bollard): container name or id to full
//! id, name, init pid and labels, and the stream of container start/die/destroy
//! events. Connected on first use, so scripts that never name a container do
//! not need dockerd.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::errors::Error as DockerError;
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, InspectContainerOptions, ListContainersOptions};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::OnceCell;

use crate::error::{CapError, CapResult};
use crate::types::{ContainerInfo, ContainerRef};

/// A container as inspected, with when it last started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    pub info: ContainerInfo,
    /// Docker's `State.StartedAt` (RFC 3339); a new value means a new network namespace.
    pub started_at: String,
}

/// What happened to a container, as far as its network is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerAction {
    /// Its init process started, in a new network namespace.
    Start,
    /// Its init process exited: the namespace, and every veth end in it, is gone.
    Die,
    /// The container was removed.
    Destroy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerEvent {
    pub action: ContainerAction,
    /// Full container id.
    pub id: String,
    /// Name without the leading slash (empty when Docker did not say).
    pub name: String,
}

impl std::fmt::Display for ContainerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerAction::Start => "start",
            ContainerAction::Die => "die",
            ContainerAction::Destroy => "destroy",
        })
    }
}

impl ContainerEvent {
    /// "container web (3f2a9c01b2d4)".
    pub fn container(&self) -> String {
        let short = &self.id[..self.id.len().min(12)];
        let name = if self.name.is_empty() { short } else { self.name.as_str() };
        format!("container {name} ({short})")
    }

    fn from_message(m: EventMessage) -> Option<Self> {
        let action = match m.action.as_deref()? {
            "start" => ContainerAction::Start,
            "die" => ContainerAction::Die,
            "destroy" => ContainerAction::Destroy,
            _ => return None,
        };
        let actor = m.actor?;
        let name = actor.attributes.as_ref().and_then(|a| a.get("name")).cloned().unwrap_or_default();
        Some(Self { action, id: actor.id?, name })
    }
}

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

    pub fn uri(&self) -> &str {
        &self.uri
    }

    async fn client(&self) -> CapResult<&bollard::Docker> {
        self.client
            .get_or_try_init(|| async {
                bollard::Docker::connect_with_host(&self.uri).map_err(|e| match e {
                    // No socket: dockerd is not running (or not there), not a bad URI.
                    DockerError::SocketNotFoundError(_) => self.unreachable(e),
                    e => CapError::failed(format!("cannot use Docker at {}: {e}", self.uri)),
                })
            })
            .await
    }

    fn unreachable(&self, e: DockerError) -> CapError {
        CapError::unavailable(format!("cannot reach Docker at {}: {e} (is dockerd running?)", self.uri))
    }

    /// The id of the container whose endpoint on Docker network `network`
    /// is `endpoint` (`GET /networks/ID`); None while Docker lists none
    /// (it does shortly after a network driver's Join; before, the key is
    /// "ep-" and the endpoint id, not a container's).
    pub async fn endpoint_container(&self, network: &str, endpoint: &str) -> CapResult<Option<String>> {
        let c = self.client().await?;
        crate::backend::stats::docker_request();
        let r = match c.inspect_network(network, None).await {
            Ok(r) => r,
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(CapError::not_found(format!("Docker network {network} not found")))
            }
            Err(e @ DockerError::DockerResponseServerError { .. }) => {
                return Err(CapError::failed(format!("Docker refused to inspect network {network}: {e}")))
            }
            Err(e) => return Err(self.unreachable(e)),
        };
        Ok(r.containers
            .unwrap_or_default()
            .into_iter()
            .find(|(_, e)| e.endpoint_id.as_deref() == Some(endpoint))
            .map(|(id, _)| id)
            // Until the container's sandbox has the endpoint, Docker lists it as "ep-ENDPOINT".
            .filter(|id| !id.starts_with("ep-")))
    }

    pub async fn lookup(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        Ok(self.inspect(name).await?.info)
    }

    /// [`Docker::lookup`] plus when the container last started, which tells
    /// one run of a container (one network namespace) from the next.
    pub async fn inspect(&self, name: &ContainerRef) -> CapResult<Inspected> {
        let c = self.client().await?;
        let key = self.id_first(c, name).await?;
        crate::backend::stats::docker_request();
        let r = match c.inspect_container(&key, None::<InspectContainerOptions>).await {
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
        let info = ContainerInfo {
            id: r.id.unwrap_or_default(),
            name: r.name.unwrap_or_default().trim_start_matches('/').to_string(),
            pid: if running { pid } else { 0 },
            running,
            labels,
        };
        Ok(Inspected { info, started_at: state.started_at.unwrap_or_default() })
    }

    /// What to inspect for `name`: the full id when `name` is a hex string
    /// that starts exactly one container's id, else `name` as given. Docker
    /// itself tries names before id prefixes, so a container named like
    /// another's id prefix ("3f2a") would take the references meant for that
    /// one; ovs-run resolves hex strings as ids first. A prefix of several
    /// ids is ambiguous and refused (naming none of them).
    async fn id_first(&self, c: &bollard::Docker, name: &ContainerRef) -> CapResult<String> {
        let s = name.as_str();
        if s.len() >= 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            // A full id already wins in Docker; a name that is not hex cannot be an id.
            return Ok(s.to_string());
        }
        // Docker's `id` filter matches anywhere in the id: keep the prefixes.
        let filters = HashMap::from([("id".to_string(), vec![s.to_string()])]);
        let opts = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        crate::backend::stats::docker_request();
        let listed = c.list_containers(Some(opts)).await.map_err(|e| self.unreachable(e))?;
        let ids: Vec<String> =
            listed.into_iter().filter_map(|c| c.id).filter(|id| id.starts_with(s)).collect();
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Ok(s.to_string()),
            many => Err(CapError::invalid(format!(
                "container id prefix {s} is ambiguous: it starts {} container ids; give more digits",
                many.len()
            ))),
        }
    }

    /// Container start, die and destroy events from `since` on (Docker
    /// replays the ones it still remembers, then follows live). The stream
    /// ends, or yields an error, when the connection to dockerd is lost.
    pub async fn container_events(
        &self,
        since: SystemTime,
    ) -> CapResult<BoxStream<'_, CapResult<ContainerEvent>>> {
        let c = self.client().await?;
        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("event".to_string(), vec!["start".into(), "die".into(), "destroy".into()]),
        ]);
        let opts = EventsOptions {
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            until: None,
            filters: Some(filters),
        };
        let uri = self.uri.clone();
        Ok(c.events(Some(opts))
            .filter_map(move |m| {
                let item = match m {
                    Ok(m) => ContainerEvent::from_message(m).map(Ok),
                    Err(e) => Some(Err(CapError::failed(format!("Docker events from {uri}: {e}")))),
                };
                futures::future::ready(item)
            })
            .boxed())
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
