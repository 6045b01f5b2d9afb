//! One run of a script from start to finish: a gate with its policy and
//! journal, the engine run within limits, and the rollback when the script
//! fails or the process is told to stop. The command line, and anything else
//! that runs scripts, goes through [`run`].

use std::sync::Arc;

use crate::backend::{Backend, Op};
use crate::capabilities::{Caps, LogLevel, ScriptPre};
use crate::engine::{Engine, Limits, Outcome, RunState, TrapReason};
use crate::gate::Gate;
use crate::journal::{Journal, RollbackReport};
use crate::policy::Policy;
use crate::types::Datapath;

pub struct RunConfig {
    pub backend: Arc<dyn Backend>,
    pub policy: Arc<dyn Policy>,
    /// For bridges a script creates with the host default.
    pub datapath: Datapath,
    /// The least severe script log message shown.
    pub log_level: LogLevel,
    pub limits: Limits,
    /// Undo the changes of a failed script (false: `--no-rollback`).
    pub rollback: bool,
    /// The journal to keep (on disk for real runs, so a killed run can be recovered).
    pub journal: Journal,
    /// Stop and roll back on SIGINT, SIGTERM or SIGHUP.
    pub stop_on_signals: bool,
}

pub struct RunResult {
    pub outcome: Outcome,
    /// What changed (a dry-run's plan), in order, rolled back or not.
    pub changes: Vec<Op>,
    /// Present when the script failed and its changes were undone.
    pub rollback: Option<RollbackReport>,
}

impl RunResult {
    pub fn failed(&self) -> bool {
        !matches!(self.outcome, Outcome::Ok)
    }
}

pub async fn run(engine: &Engine, pre: &ScriptPre<RunState>, args: &[String], cfg: RunConfig) -> RunResult {
    let gate = Arc::new(Gate::new(cfg.backend, cfg.policy).with_journal(cfg.journal));
    let caps = Caps::new(gate.clone(), cfg.datapath, cfg.log_level, cfg.limits.max_calls);
    let outcome = tokio::select! {
        o = engine.run(pre, caps, args, &cfg.limits) => o,
        sig = signal(), if cfg.stop_on_signals => Outcome::Trapped {
            reason: TrapReason::Interrupted,
            message: format!("interrupted by {sig}"),
            backtrace: None,
        },
    };
    let changes = gate.changes();
    let failed = !matches!(outcome, Outcome::Ok);
    let rollback =
        if failed && cfg.rollback && gate.has_changes() { Some(gate.rollback().await) } else { None };
    let clean = !failed || rollback.as_ref().is_some_and(|r| r.is_clean()) || !gate.has_changes();
    // --no-rollback keeps the changes on purpose: nothing for a recovery to do.
    gate.close_journal(clean || !cfg.rollback);
    RunResult { outcome, changes, rollback }
}

/// The first of SIGINT, SIGTERM, SIGHUP.
async fn signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}
