//! The choke point. Every capability call, from whichever WIT interface, ends
//! up here, and here only the following happens, in this order:
//! 1. targets are resolved (a container name becomes id, pid and labels,
//!    through a read that is itself authorized);
//! 2. the policy authorizes the typed request;
//! 3. a change is entered in the journal;
//! 4. the backend carries it out, and the journal records how to undo it;
//! 5. the call, the decision and the result go to the audit log, when the
//!    run has one, before the script sees the answer.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};
use tracing::Instrument;

use serde_json::{json, Value};

use crate::audit::{CallResult, RunAudit};
use crate::backend::{
    Applied, Backend, BatchError, BridgeInfo, LinkInfo, Op, PingStats, PortInfo, PortOwner, TransferStats,
};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::journal::{Journal, RollbackReport};
use crate::policy::{self, Decision, Policy, Request};
use crate::types::{ContainerInfo, ContainerRef, IfName, RouteSpec, Target, TargetRef};

pub struct Gate {
    backend: Arc<dyn Backend>,
    policy: Arc<dyn Policy>,
    journal: Mutex<Journal>,
    /// Lookups are cached for the run: a script names its container in every
    /// call, and the answer must not change halfway through.
    containers: Mutex<HashMap<ContainerRef, ContainerInfo>>,
    audit: Option<RunAudit>,
    /// Audit lines written so far (a capability call that adds none was refused before the gate).
    audited: AtomicU64,
    /// The last call that failed because the system could not be reached.
    unavailable: Mutex<Option<String>>,
}

impl Gate {
    pub fn new(backend: Arc<dyn Backend>, policy: Arc<dyn Policy>) -> Self {
        Self {
            backend,
            policy,
            journal: Mutex::new(Journal::default()),
            containers: Mutex::new(HashMap::new()),
            audit: None,
            audited: AtomicU64::new(0),
            unavailable: Mutex::new(None),
        }
    }

    /// Record every call of this run in an audit log.
    pub fn with_audit(mut self, audit: RunAudit) -> Self {
        self.audit = Some(audit);
        self
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
        let span = tracing::debug_span!("call", action = op.action());
        self.apply_in(op).instrument(span).await
    }

    async fn apply_in(&self, op: Op) -> CapResult<Applied> {
        let decisions = self.authorize_op(&op)?;
        let started = Instant::now();
        let idx = self.journal().begin(&op)?;
        let result = self.backend.apply(&op).await;
        crate::verbose!(2, "{} in {:.1} ms", op.action(), started.elapsed().as_secs_f64() * 1000.0);
        self.journal().finish(idx, &result);
        let result = result.map_err(|e| e.context(op.action()));
        let summary = result.as_ref().map(|a| json!({ "changed": a.changed }));
        self.audit_op(&decisions, summary, started)?;
        result
    }

    /// Carry out several changes as one, all or none: every op is authorized
    /// (before any is applied) and journaled like [`Gate::apply`], and the
    /// backend applies them together ([`Backend::apply_many`]). The error
    /// names the op that failed and its place in the batch.
    pub async fn apply_many(&self, ops: Vec<Op>) -> CapResult<Vec<Applied>> {
        if ops.is_empty() {
            return Ok(vec![]);
        }
        let decisions = ops.iter().map(|op| self.authorize_op(op)).collect::<CapResult<Vec<_>>>()?;
        let started = Instant::now();
        // One journal write (and one sync) for the whole batch.
        let entries: Vec<usize> = self.journal().begin_many(&ops)?;
        let result = self.backend.apply_many(&ops).await;
        crate::verbose!(
            2,
            "{} changes in one batch in {:.1} ms",
            ops.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        let result = self.finish_batch(&ops, &entries, result);
        for (i, decisions) in decisions.iter().enumerate() {
            let summary = match &result {
                Ok(applied) => Ok(json!({ "changed": applied[i].changed })),
                Err(e) => Err(e),
            };
            self.audit_op(decisions, summary, started)?;
        }
        result
    }

    /// Journal a batch's outcome; the error names the op that failed.
    fn finish_batch(
        &self,
        ops: &[Op],
        entries: &[usize],
        result: Result<Vec<Applied>, BatchError>,
    ) -> CapResult<Vec<Applied>> {
        let mut journal = self.journal();
        match result {
            Ok(applied) if applied.len() == ops.len() => {
                let results: Vec<_> = applied.iter().map(|a| Ok(a.clone())).collect();
                journal.finish_many(entries, &results);
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
                journal.finish_many(entries, &results);
                Err(e)
            }
            Err(BatchError { index, error }) => {
                let failed = &ops[index.min(ops.len() - 1)]; // ops is not empty
                let aborted = CapError::failed(format!("not applied: {} failed: {error}", failed.action()));
                let results: Vec<_> = (0..entries.len())
                    .map(|i| Err(if i == index { error.clone() } else { aborted.clone() }))
                    .collect();
                journal.finish_many(entries, &results);
                Err(error.context(format!("{} (request {} of {})", failed.action(), index + 1, ops.len())))
            }
        }
    }

    /// The changes made so far (a dry-run's plan).
    /// Remember that a call failed because OVSDB, Docker or netlink could not
    /// be reached: a run that then fails is the system's fault, not the input's.
    pub fn note_unavailable(&self, message: &str) {
        *self.unavailable.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.to_string());
    }

    /// The last "system unavailable" error of this run, if any.
    pub fn unavailable(&self) -> Option<String> {
        self.unavailable.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

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
                Ok(Target::Container {
                    given: c.clone(),
                    id: info.id,
                    name: info.name,
                    pid: info.pid,
                    labels: info.labels,
                })
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
                let known = match self.lookup_container(c).await {
                    Ok(info) => Some((info.id, info.name)),
                    Err(e) if e.kind == ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                };
                PortOwner::Container { given: c.to_string(), known }
            }
        })
    }

    /// Look a container up, then ask whether the run may see it: the policy
    /// decides on its labels, which only the lookup knows.
    pub async fn lookup_container(&self, name: &ContainerRef) -> CapResult<ContainerInfo> {
        let started = Instant::now();
        let cached = self.containers.lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        let info = match cached {
            Some(c) => c,
            None => match self.backend.lookup_container(name).await {
                Ok(info) => {
                    crate::verbose!(
                        2,
                        "look up container {name} in {:.1} ms",
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                    let mut cache = self.containers.lock().unwrap_or_else(|p| p.into_inner());
                    cache.insert(name.clone(), info.clone());
                    info
                }
                Err(e) => {
                    let resource = format!("Container {:?}", name.as_str());
                    let args = json!({ "container": name.as_str() });
                    self.audit_raw("lookup-container", &resource, args, None, Err(&e), started)?;
                    return Err(e);
                }
            },
        };
        let request = Request::LookupContainer { container: &info };
        let decision = self.policy.decide(&request);
        if !decision.allowed {
            // The script is told only what it asked for: the container found
            // may be another tenant's, whose id and name it must not learn
            // (the audit line, for the operator, has them).
            let reason = decision.reason.split("; policies that failed").next().unwrap_or_default();
            let e = CapError::denied(format!("lookup-container on container {:?}: {reason}", name.as_str()));
            self.audit(&request, Some(&decision), Err(&e), started)?;
            return Err(e);
        }
        self.audit(&request, Some(&decision), Ok(json!({ "id": info.id })), started)?;
        Ok(info)
    }

    /// Running containers with `labels`; only those the run may see.
    pub async fn list_containers(&self, labels: &[(String, String)]) -> CapResult<Vec<ContainerInfo>> {
        let started = Instant::now();
        let all = self.backend.list_containers(labels).await;
        let args = json!({ "labels": labels });
        self.filtered("list-containers", args, all, started, |c| Request::ListContainers { container: c })
    }

    /// The bridges; only those the run may see.
    pub async fn list_bridges(&self) -> CapResult<Vec<BridgeInfo>> {
        let started = Instant::now();
        let all = self.backend.list_bridges().await;
        self.filtered("list-bridges", json!({}), all, started, |b| Request::ListBridges { bridge: &b.name })
    }

    /// Whether `bridge` uses ovs-vswitchd's userspace datapath (false when
    /// there is no such bridge: adding a port to it fails anyway). Not a
    /// call of the script's: it decides how an add-port the policy allows is
    /// carried out, so it is neither policed nor audited on its own.
    pub async fn bridge_is_userspace(&self, bridge: &IfName) -> CapResult<bool> {
        let datapath = self.backend.bridge_datapath(bridge).await?;
        Ok(datapath.as_deref().is_some_and(crate::types::is_userspace_datapath))
    }

    pub async fn list_ports(&self, bridge: &IfName) -> CapResult<Vec<PortInfo>> {
        self.read(
            Request::ListPorts { bridge },
            self.backend.list_ports(bridge),
            |v| json!({ "count": v.len() }),
        )
        .await
    }

    pub async fn list_tunnels(&self, bridge: &IfName) -> CapResult<Vec<crate::tunnel::TunnelInfo>> {
        self.read(
            Request::ListTunnels { bridge },
            self.backend.list_tunnels(bridge),
            |v| json!({ "count": v.len() }),
        )
        .await
    }

    /// The MTU ports on `bridge` need to fit its overlay (see
    /// [`crate::backend::overlay_mtu`]); None when it has none. It reads one
    /// bridge's ports (its tunnels) and the host's links and routes to them,
    /// and is allowed and audited as list-ports of the bridge.
    pub async fn inner_mtu(
        &self,
        bridge: &IfName,
    ) -> CapResult<Option<crate::backend::overlay_mtu::InnerMtu>> {
        self.read(
            Request::ListPorts { bridge },
            crate::backend::overlay_mtu::inner_mtu(self.backend.as_ref(), bridge),
            |m| json!({ "inner_mtu": m.as_ref().map(|m| m.mtu) }),
        )
        .await
    }

    pub async fn list_links(&self, target: &Target, name: Option<&IfName>) -> CapResult<Vec<LinkInfo>> {
        self.read(
            Request::ListLinks { target },
            self.backend.list_links(target, name),
            |v| json!({ "count": v.len() }),
        )
        .await
    }

    pub async fn list_routes(&self, target: &Target) -> CapResult<Vec<RouteSpec>> {
        self.read(
            Request::ListRoutes { target },
            self.backend.list_routes(target),
            |v| json!({ "count": v.len() }),
        )
        .await
    }

    pub async fn ping(
        &self,
        target: &Target,
        address: IpAddr,
        count: u32,
        timeout: Duration,
    ) -> CapResult<PingStats> {
        self.read(
            Request::Ping { target, address },
            self.backend.ping(target, address, count, timeout),
            |s| json!({ "sent": s.sent, "received": s.received }),
        )
        .await
    }

    /// A TCP check acts in two namespaces: the policy must allow it in both
    /// (the server's end is asked first, the client's call is the one audited).
    pub async fn tcp_check(
        &self,
        client: &Target,
        server: &Target,
        address: IpAddr,
        bytes: u64,
        timeout: Duration,
    ) -> CapResult<TransferStats> {
        self.authorize(&Request::TcpCheck { target: server, address })?;
        self.read(
            Request::TcpCheck { target: client, address },
            self.backend.tcp_check(client, server, address, bytes, timeout),
            |s| json!({ "sent": s.sent, "received": s.received }),
        )
        .await
    }

    /// The OVN logical switches (with their ports); only those the run may see.
    pub async fn list_switches(&self) -> CapResult<Vec<crate::backend::ovn::SwitchInfo>> {
        let started = Instant::now();
        let all = self.backend.ovn_topology().await.map(|t| t.switches);
        self.filtered("list-switches", json!({}), all, started, |s| Request::OvnRead {
            action: "list-switches",
            switch: Some(&s.name),
            router: None,
        })
    }

    /// The OVN logical routers (with their ports); only those the run may see.
    pub async fn list_routers(&self) -> CapResult<Vec<crate::backend::ovn::RouterInfo>> {
        let started = Instant::now();
        let all = self.backend.ovn_topology().await.map(|t| t.routers);
        self.filtered("list-routers", json!({}), all, started, |r| Request::OvnRead {
            action: "list-routers",
            switch: None,
            router: Some(&r.name),
        })
    }

    /// Authorize `op` and what it does besides its own change
    /// ([`Op::implied`]: an add-port's addresses and route), each of which
    /// needs the policy's yes as if asked for alone, so that no capability
    /// is a way around another's rules. The op comes first in the answer.
    fn authorize_op<'a>(&self, op: &'a Op) -> CapResult<Vec<(Cow<'a, Op>, Decision)>> {
        let mut decisions = vec![(Cow::Borrowed(op), self.authorize(&Request::Apply(op))?)];
        for implied in op.implied() {
            let d = self.authorize(&Request::Apply(&implied)).map_err(|e| e.context(op.action()))?;
            decisions.push((Cow::Owned(implied), d));
        }
        Ok(decisions)
    }

    /// One audit line per authorized op (see [`Gate::authorize_op`]), all
    /// with the outcome of the op that carried them out.
    fn audit_op(
        &self,
        decisions: &[(Cow<'_, Op>, Decision)],
        summary: Result<Value, &CapError>,
        started: Instant,
    ) -> CapResult<()> {
        for (op, decision) in decisions {
            self.audit(&Request::Apply(op), Some(decision), summary.clone(), started)?;
        }
        Ok(())
    }

    /// Ask the policy; a denial is audited and becomes the `denied` error.
    fn authorize(&self, request: &Request<'_>) -> CapResult<Decision> {
        let decision = self.policy.decide(request);
        if decision.allowed {
            return Ok(decision);
        }
        let e = policy::denied(request, &decision);
        self.audit(request, Some(&decision), Err(&e), Instant::now())?;
        Err(e)
    }

    /// A read of one thing: authorized as a whole, then carried out (the
    /// future does nothing until awaited, so a denied read reads nothing).
    async fn read<T>(
        &self,
        request: Request<'_>,
        read: impl std::future::Future<Output = CapResult<T>>,
        summary: impl Fn(&T) -> Value,
    ) -> CapResult<T> {
        let decision = self.authorize(&request)?;
        let started = Instant::now();
        let result = read.await;
        self.audit(&request, Some(&decision), result.as_ref().map(&summary), started)?;
        result
    }

    /// A read across everybody's things: each item is asked about, and only
    /// the allowed ones are returned (see the policy module on why).
    fn filtered<T>(
        &self,
        action: &str,
        args: Value,
        all: CapResult<Vec<T>>,
        started: Instant,
        request: impl for<'a> Fn(&'a T) -> Request<'a>,
    ) -> CapResult<Vec<T>> {
        let all = match all {
            Ok(v) => v,
            Err(e) => {
                self.audit_raw(action, "*", args, None, Err(&e), started)?;
                return Err(e);
            }
        };
        let total = all.len();
        let mut policies = BTreeSet::new();
        let shown: Vec<T> = all
            .into_iter()
            .filter(|item| {
                let d = self.policy.decide(&request(item));
                if d.allowed {
                    policies.extend(d.policies);
                }
                d.allowed
            })
            .collect();
        let decision = Decision {
            allowed: true,
            policies: policies.into_iter().collect(),
            reason: "filtered item by item".into(),
        };
        let result = json!({ "shown": shown.len(), "hidden": total - shown.len() });
        self.audit_raw(action, "*", args, Some(&decision), Ok(result), started)?;
        Ok(shown)
    }

    /// How many audit lines this run has written.
    pub fn audited(&self) -> u64 {
        self.audited.load(Ordering::Relaxed)
    }

    /// A call refused before it reached the gate (an argument that does not
    /// parse or is over a limit): audited with no decision and no arguments
    /// (the error names the bad one, shortened).
    pub fn audit_refused(&self, call: &str, error: &CapError) -> CapResult<()> {
        self.audit_raw(call, "", Value::Null, None, Err(error), Instant::now())
    }

    fn audit(
        &self,
        request: &Request<'_>,
        decision: Option<&Decision>,
        result: Result<Value, &CapError>,
        started: Instant,
    ) -> CapResult<()> {
        if self.audit.is_none() {
            return Ok(());
        }
        let resource = request.resource().to_string();
        self.audit_raw(request.action(), &resource, request.arguments(), decision, result, started)
    }

    fn audit_raw(
        &self,
        action: &str,
        resource: &str,
        arguments: Value,
        decision: Option<&Decision>,
        result: Result<Value, &CapError>,
        started: Instant,
    ) -> CapResult<()> {
        let Some(audit) = &self.audit else { return Ok(()) };
        let result = match result {
            Ok(v) => CallResult::Ok(v),
            Err(e) => CallResult::Err(e),
        };
        audit
            .call(action, resource, arguments, decision, result, started.elapsed())
            .map_err(|e| CapError::failed(format!("cannot write the audit log: {e}")))?;
        self.audited.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
