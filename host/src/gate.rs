//! The choke point. Every capability call, from whichever WIT interface, ends
//! up here, and here only the following happens, in this order:
//! 1. targets are resolved (a container name becomes id + pid, through a read
//!    that is itself authorized);
//! 2. the policy authorizes the typed request;
//! 3. a change is entered in the journal;
//! 4. the backend carries it out, and the journal records how to undo it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{
    Applied, Backend, BatchError, BridgeInfo, LinkInfo, Op, PingStats, PortInfo, PortOwner,
};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::journal::{Journal, RollbackReport};
use crate::policy::{Policy, Request};
use crate::types::{ContainerInfo, ContainerRef, IfName, RouteSpec, Target, TargetRef};

pub struct Gate {
    backend: Arc<dyn Backend>,
    policy: Arc<dyn Policy>,
    journal: Mutex<Journal>,
    /// Lookups are cached for the run: a script names its container in every
    /// call, and the answer must not change halfway through.
    containers: Mutex<HashMap<ContainerRef, ContainerInfo>>,
}

impl Gate {
    pub fn new(backend: Arc<dyn Backend>, policy: Arc<dyn Policy>) -> Self {
        Self {
            backend,
            policy,
            journal: Mutex::new(Journal::default()),
            containers: Mutex::new(HashMap::new()),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Keep this run's journal in `journal` (e.g. one written to disk).
    pub fn with_journal(self, journal: Journal) -> Self {
        *self.journal() = journal;
        self
    }

    /// Carry out one change: authorize, journal, apply.
    pub async fn apply(&self, op: Op) -> CapResult<Applied> {
        self.policy.authorize(&Request::Apply(&op))?;
        let idx = self.journal().begin(&op)?;
        let started = std::time::Instant::now();
        let result = self.backend.apply(&op).await;
        crate::verbose!(2, "{} in {:.1} ms", op.action(), started.elapsed().as_secs_f64() * 1000.0);
        self.journal().finish(idx, &result);
        result.map_err(|e| e.context(op.action()))
    }

    /// Carry out several changes as one, all or none: every op is authorized
    /// (before any is applied) and journaled like [`Gate::apply`], and the
    /// backend applies them together ([`Backend::apply_many`]). The error
    /// names the op that failed and its place in the batch.
    pub async fn apply_many(&self, ops: Vec<Op>) -> CapResult<Vec<Applied>> {
        if ops.is_empty() {
            return Ok(vec![]);
        }
        for op in &ops {
            self.policy.authorize(&Request::Apply(op))?;
        }
        // One journal write (and one sync) for the whole batch.
        let entries: Vec<usize> = self.journal().begin_many(&ops)?;
        let started = std::time::Instant::now();
        let result = self.backend.apply_many(&ops).await;
        crate::verbose!(
            2,
            "{} changes in one batch in {:.1} ms",
            ops.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        let mut journal = self.journal();
        match result {
            Ok(applied) if applied.len() == ops.len() => {
                let results: Vec<_> = applied.iter().map(|a| Ok(a.clone())).collect();
                journal.finish_many(&entries, &results);
                Ok(applied)
            }
            Ok(applied) => {
                // A backend bug; what it did is unknown, so it is not journaled as done.
                let e = CapError::failed(format!(
                    "backend {} answered {} results for a batch of {}",
                    self.backend.name(),
                    applied.len(),
                    ops.len()
                ));
                let results: Vec<_> = entries.iter().map(|_| Err(e.clone())).collect();
                journal.finish_many(&entries, &results);
                Err(e)
            }
            Err(BatchError { index, error }) => {
                let failed = &ops[index.min(ops.len() - 1)]; // ops is not empty
                let aborted = CapError::failed(format!("not applied: {} failed: {error}", failed.action()));
                let results: Vec<_> = (0..entries.len())
                    .map(|i| Err(if i == index { error.clone() } else { aborted.clone() }))
                    .collect();
                journal.finish_many(&entries, &results);
                Err(error.context(format!("{} (request {} of {})", failed.action(), index + 1, ops.len())))
            }
        }
    }

    /// The changes made so far (a dry-run's plan).
    pub fn changes(&self) -> Vec<Op> {
        self.journal().changes()
    }

    pub fn has_changes(&self) -> bool {
        self.journal().has_changes()
    }

    /// The run is over; `clean`: nothing is left that a recovery should undo.
    pub fn close_journal(&self, clean: bool) {
        self.journal().close(clean);
    }

    /// Undo this run's changes, newest first.
    pub async fn rollback(&self) -> RollbackReport {
        // Take the journal out so no lock is held across the backend calls.
        let mut journal = std::mem::take(&mut *self.journal());
        let report = journal.rollback(self.backend.as_ref()).await;
        *self.journal() = journal;
        report
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where an operation happens. A container must exist and be running.
    pub async fn resolve(&self, target: &TargetRef) -> CapResult<Target> {
        match target {
            TargetRef::Host => Ok(Target::Host),
            TargetRef::Netns(name) => Ok(Target::Netns { name: name.clone() }),
            TargetRef::Container(c) => {
                let info = self.lookup_container(c).await?;
                if !info.running || info.pid == 0 {
                    return Err(CapError::failed(format!(
                        "container {c} ({}) is not running",
                        &info.id[..info.id.len().min(12)]
                    )));
                }
                Ok(Target::Container { given: c.clone(), id: info.id, name: info.name, pid: info.pid })
            }
        }
    }

    /// Who owns a port, for removal: lenient, because a container that is
    /// gone must still be detachable by the name the user knew it by.
    pub async fn port_owner(&self, target: &TargetRef) -> CapResult<PortOwner> {
        Ok(match target {
            TargetRef::Host => PortOwner::Host,
            TargetRef::Netns(n) => PortOwner::Netns(n.to_string()),
            TargetRef::Container(c) => {
                let mut keys = vec![c.to_string()];
                match self.lookup_container(c).await {
                    Ok(info) => {
                        keys.push(info.id);
                        keys.push(info.name);
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                PortOwner::Container(keys)
            }
        })
    }

    pub async fn lookup_container(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        self.policy.authorize(&Request::LookupContainer { name })?;
        if let Some(c) = self.containers.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Ok(c.clone());
        }
        let started = std::time::Instant::now();
        let info = self.backend.lookup_container(name).await?;
        crate::verbose!(2, "look up container {name} in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
        self.containers.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone(), info.clone());
        Ok(info)
    }

    pub async fn list_containers(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>> {
        self.policy.authorize(&Request::ListContainers)?;
        self.backend.list_containers(labels).await
    }

    pub async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        self.policy.authorize(&Request::ListBridges)?;
        self.backend.list_bridges().await
    }

    pub async fn list_ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        self.policy.authorize(&Request::ListPorts { bridge })?;
        self.backend.list_ports(bridge).await
    }

    pub async fn list_links(&self, target: &Target, name: Option<&IfName>) -> CapResult<Vec<LinkInfo>> {
        self.policy.authorize(&Request::ListLinks { target })?;
        self.backend.list_links(target, name).await
    }

    pub async fn list_routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>> {
        self.policy.authorize(&Request::ListRoutes { target })?;
        self.backend.list_routes(target).await
    }

    pub async fn ping(
        &self,
        target: &Target,
        address: IpAddr,
        count: u32,
        timeout: Duration,
    ) -> CapResult<PingStats> {
        self.policy.authorize(&Request::Ping { target, address })?;
        self.backend.ping(target, address, count, timeout).await
    }
}
