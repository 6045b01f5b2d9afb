//! Container lifecycle: ports that go away with their container, and
//! attachments that come back when it starts again.
//!
//! - [`ports`]: which container ports are dead, and removing them (`ovs-run gc`).
//! - [`bindings`]: "run SCRIPT for CONTAINER on every start", kept on disk.
//! - [`watch`]: follows Docker's container events: on `start` it removes the
//!   container's dead ports (its old veths went with its old namespace) and
//!   runs its bindings; on `die`/`destroy` it removes its ports. Events missed
//!   while nothing watched are made up for at start-up ([`Lifecycle::reconcile`]).
//!
//! A binding runs once per container start: after a successful run the
//! container's `State.StartedAt` is recorded, and a start is only acted on
//! when that record differs. Bound scripts run through [`runner::run`] like
//! any other script: same sandbox, limits, policy check and rollback.

pub mod bindings;
pub mod ports;
mod watch;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use self::bindings::{Binding, BindingStore, Selector};
pub use self::ports::{Removal, Scope};
pub use self::watch::{watch, WatchConfig};
use crate::backend::docker::{ContainerAction, ContainerEvent, Inspected};
use crate::backend::system::SystemBackend;
use crate::backend::Backend;
use crate::capabilities::LogLevel;
use crate::engine::{Engine, Limits, Outcome};
use crate::error::{CapError, CapResult, ErrorKind};
use crate::policy::{AllowAll, Policy};
use crate::runner::{self, RunConfig};
use crate::types::{ContainerInfo, ContainerRef, Datapath};

/// The policy a binding's script runs under, from the binding's tenant.
pub type PolicyFor = Arc<dyn Fn(Option<&str>) -> CapResult<Arc<dyn Policy>> + Send + Sync>;

/// For the command line: the local operator's bindings run with
/// [`AllowAll`]; a tenant's binding is refused (only the daemon knows
/// tenants' policies, and running it unrestricted would give the tenant root).
pub fn operator_policy() -> PolicyFor {
    Arc::new(|tenant| match tenant {
        None => Ok(Arc::new(AllowAll) as Arc<dyn Policy>),
        Some(t) => Err(CapError::denied(format!(
            "made by tenant {t}, whose policy only the ovs-run daemon has; not run here"
        ))),
    })
}

/// How bound scripts run.
pub struct ScriptSettings {
    /// Shared with whatever else runs scripts in the process (the daemon's requests).
    pub engine: Arc<Engine>,
    /// For bridges a script creates with the host default.
    pub datapath: Datapath,
    pub log_level: LogLevel,
    pub limits: Limits,
    pub policy_for: PolicyFor,
}

/// Everything the lifecycle needs: the real system, the bindings, and how to run scripts.
pub struct Lifecycle {
    pub system: Arc<SystemBackend>,
    pub store: BindingStore,
    pub scripts: ScriptSettings,
}

/// One thing the lifecycle did, reported as one line.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Following Docker's events (after a reconciliation).
    Watching { docker: String },
    /// A container event arrived.
    Event { event: String, container: ContainerLabel },
    /// A dead port, removed (or not: see [`Removal`]).
    Port(Removal),
    /// A binding's script ran for a container.
    Applied { binding: String, script: String, container: ContainerLabel, changes: usize },
    /// A binding's script failed for a container (its changes were rolled back).
    Failed { binding: String, script: String, container: ContainerLabel, error: String },
    /// The start-up reconciliation is done.
    Reconciled { removed: usize, applied: usize, failed: usize },
    /// Something went wrong that is not about one binding or port.
    Error { message: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Watching { docker } => write!(f, "watching container events from Docker at {docker}"),
            Action::Event { event, container } => write!(f, "event {event} {container}"),
            Action::Port(r) => write!(f, "{r}"),
            Action::Applied { binding, script, container, changes } => {
                write!(f, "applied binding {binding} ({script}) to {container}: {changes} change(s)")
            }
            Action::Failed { binding, script, container, error } => {
                write!(f, "failed binding {binding} ({script}) for {container}: {error}")
            }
            Action::Reconciled { removed, applied, failed } => write!(
                f,
                "reconciled: removed {removed} dead port(s), applied {applied} binding(s), {failed} failed"
            ),
            Action::Error { message } => write!(f, "error: {message}"),
        }
    }
}

/// Receives each [`Action`] as it happens.
pub type Reporter = Arc<dyn Fn(&Action) + Send + Sync>;

fn failed(binding: &Binding, c: &Inspected, error: String) -> Action {
    Action::Failed {
        binding: binding.id.clone(),
        script: binding.script.file_name(),
        container: ContainerLabel::of(&c.info),
        error,
    }
}

/// A container in an [`Action`]: "container web (3f2a9c01b2d4)" as text,
/// `{"name": "web", "id": FULL-ID}` in JSON, so that a program reading
/// `watch --json` need not take a sentence apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContainerLabel {
    /// Empty when Docker did not say.
    pub name: String,
    pub id: String,
}

impl ContainerLabel {
    pub fn of(c: &ContainerInfo) -> Self {
        Self { name: c.name.clone(), id: c.id.clone() }
    }
}

impl fmt::Display for ContainerLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = &self.id[..self.id.len().min(12)];
        let name = if self.name.is_empty() { short } else { self.name.as_str() };
        write!(f, "container {name} ({short})")
    }
}

/// "container web (3f2a9c01b2d4)".
pub fn describe(c: &ContainerInfo) -> String {
    format!("container {} ({})", c.name, &c.id[..c.id.len().min(12)])
}

impl Lifecycle {
    /// Run `binding`'s script (its copy in the store) for running container
    /// `c`, and on success record that it ran for this start of `c`.
    pub async fn apply(&self, binding: &Binding, c: &Inspected) -> Action {
        match self.store.script(binding) {
            Ok(bytes) => self.apply_script(binding, &bytes, c).await,
            Err(e) => failed(binding, c, e.message),
        }
    }

    /// [`Lifecycle::apply`] with the script's bytes in hand (a binding being made).
    pub async fn apply_script(&self, binding: &Binding, script: &[u8], c: &Inspected) -> Action {
        match self.run(binding, script, &c.info).await {
            Ok(changes) => match self.store.set_applied(&binding.id, &c.info.id, &c.started_at) {
                Ok(()) => Action::Applied {
                    binding: binding.id.clone(),
                    script: binding.script.file_name(),
                    container: ContainerLabel::of(&c.info),
                    changes,
                },
                Err(e) => failed(binding, c, e.message),
            },
            Err(error) => failed(binding, c, error),
        }
    }

    /// The script's changes on success; the error (rolled back) otherwise.
    async fn run(&self, binding: &Binding, script: &[u8], c: &ContainerInfo) -> Result<usize, String> {
        let s = &self.scripts;
        let policy = (s.policy_for)(binding.tenant.as_deref()).map_err(|e| e.message)?;
        let (pre, _) = s.engine.load(script).map_err(|e| e.to_string())?;
        let cfg = RunConfig {
            backend: self.system.clone() as Arc<dyn Backend>,
            policy,
            datapath: s.datapath,
            log_level: s.log_level,
            limits: s.limits.clone(),
            rollback: true,
            // In memory: a watcher killed mid-run leaves what `gc` and the
            // next start's stale-port cleanup remove.
            journal: crate::journal::Journal::default(),
            // The watcher handles SIGTERM itself, between actions.
            stop_on_signals: false,
            audit: None,
            output: None,
        };
        let result = runner::run(&s.engine, &pre, &binding.args_for(c), cfg).await;
        let error = match &result.outcome {
            Outcome::Ok => return Ok(result.changes.len()),
            Outcome::ScriptError(m) => m.clone(),
            Outcome::Trapped { message, .. } => message.clone(),
        };
        let undo = match &result.rollback {
            Some(r) if r.is_clean() => " (rolled back)".to_string(),
            Some(r) => format!(" ({} step(s) could not be undone)", r.failed.len() + r.irreversible.len()),
            None => String::new(),
        };
        Err(format!("{error}{undo}"))
    }

    /// Remove the dead ports that may belong to container `id` (`name`).
    async fn collect_for(&self, id: &str, name: &str, report: &Reporter) -> CapResult<()> {
        let scope = Scope { bridge: None, container: Some((id, name)) };
        for r in ports::collect(&self.system, scope, false).await? {
            report(&Action::Port(r));
        }
        Ok(())
    }

    /// A container event: `start` removes the container's dead ports, then
    /// runs its bindings not yet run for this start; `die` and `destroy`
    /// remove its dead ports (all of them, since it no longer runs).
    pub async fn on_event(&self, ev: &ContainerEvent, report: &Reporter) {
        let container = ContainerLabel { name: ev.name.clone(), id: ev.id.clone() };
        report(&Action::Event { event: ev.action.to_string(), container });
        let err = |e: CapError| report(&Action::Error { message: e.message });
        if let Err(e) = self.collect_for(&ev.id, &ev.name, report).await {
            err(e);
        }
        match ev.action {
            ContainerAction::Start => {
                let Ok(cref) = ContainerRef::parse(&ev.id) else { return };
                match self.system.docker().inspect(&cref).await {
                    Ok(c) if c.info.running => {
                        self.apply_bindings(&c, report).await;
                    }
                    Ok(_) => {} // stopped again already: its die event follows
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => err(e),
                }
            }
            ContainerAction::Die => {}
            ContainerAction::Destroy => self.store.forget_container(&ev.id),
        }
    }

    /// Run each binding matching `c` that has not run for this start of it.
    /// Returns (applied, failed).
    async fn apply_bindings(&self, c: &Inspected, report: &Reporter) -> (usize, usize) {
        let bindings = match self.store.list() {
            Ok((b, problems)) => {
                for p in problems {
                    report(&Action::Error { message: format!("skipping a binding: {p}") });
                }
                b
            }
            Err(e) => {
                report(&Action::Error { message: e.message });
                return (0, 1);
            }
        };
        let (mut applied, mut failed) = (0, 0);
        for b in bindings.iter().filter(|b| b.matches(&c.info)) {
            if self.store.applied(&b.id, &c.info.id).as_deref() == Some(c.started_at.as_str()) {
                continue;
            }
            let a = self.apply(b, c).await;
            match a {
                Action::Applied { .. } => applied += 1,
                _ => failed += 1,
            }
            report(&a);
        }
        (applied, failed)
    }

    /// Make up for missed events: remove every dead container port, run the
    /// bindings of running containers not yet run for their current start,
    /// and forget run records of containers Docker no longer knows. Errors
    /// when Docker or OVSDB cannot be asked.
    pub async fn reconcile(&self, report: &Reporter) -> CapResult<Action> {
        let removed = ports::collect(&self.system, Scope::default(), false).await?;
        for r in &removed {
            report(&Action::Port(r.clone()));
        }
        let (mut applied, mut failed) = (0, 0);
        let (bindings, _) = self.store.list()?;
        let docker = self.system.docker();
        let running = docker.list(&[]).await?;
        if !bindings.is_empty() {
            for c in running.iter().filter(|c| bindings.iter().any(|b| b.matches(c))) {
                let cref = ContainerRef::parse(&c.id)?;
                match docker.inspect(&cref).await {
                    Ok(c) if c.info.running => {
                        let (a, f) = self.apply_bindings(&c, report).await;
                        applied += a;
                        failed += f;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for id in self.store.applied_containers() {
            if running.iter().any(|c| c.id == id) {
                continue;
            }
            let Ok(cref) = ContainerRef::parse(&id) else { continue };
            if let Err(e) = docker.inspect(&cref).await {
                if e.kind == ErrorKind::NotFound {
                    self.store.forget_container(&id);
                }
            }
        }
        Ok(Action::Reconciled { removed: removed.iter().filter(|r| r.removed).count(), applied, failed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::ports::Reason;

    #[test]
    fn actions_are_one_line_of_text_or_json() {
        let removal = Removal {
            bridge: "br0".into(),
            port: "ovr0123456789_l".into(),
            owner: "container web (3f2a9c01b2d4) eth0".into(),
            reason: Reason::InterfaceError("could not open network device".into()),
            removed: true,
            error: None,
        };
        let a = Action::Port(removal);
        assert_eq!(
            a.to_string(),
            "removed port ovr0123456789_l from bridge br0 (container web (3f2a9c01b2d4) eth0: \
             interface in error: could not open network device)"
        );
        let j: serde_json::Value = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(j["action"], "port");
        assert_eq!(j["port"], "ovr0123456789_l");
        assert_eq!(j["reason"], "interface-error");
        assert_eq!(j["detail"], "could not open network device");
        assert_eq!(j["removed"], true);
    }

    #[test]
    fn tenant_bindings_are_refused_without_the_daemon() {
        let p = operator_policy();
        assert!(p(None).is_ok());
        let e = p(Some("alice")).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(e.message.contains("tenant alice"), "{e}");
    }
}
