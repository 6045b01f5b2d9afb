//! One run of a script from start to finish: a gate with its policy and
//! journal, the engine run within limits, and the rollback when the script
//! fails. The command line, and anything else that runs scripts, goes
//! through [`run`].

use std::sync::Arc;

use crate::backend::{Backend, Op};
use crate::capabilities::{Caps, LogLevel, ScriptPre};
use crate::engine::{Engine, Limits, Outcome, RunState};
use crate::gate::Gate;
use crate::journal::RollbackReport;
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
    let gate = Arc::new(Gate::new(cfg.backend, cfg.policy));
    let caps = Caps::new(gate.clone(), cfg.datapath, cfg.log_level, cfg.limits.max_calls);
    let outcome = engine.run(pre, caps, args, &cfg.limits).await;
    let changes = gate.changes();
    let failed = !matches!(outcome, Outcome::Ok);
    let rollback =
        if failed && cfg.rollback && gate.has_changes() { Some(gate.rollback().await) } else { None };
    RunResult { outcome, changes, rollback }
}
