//! One run of a script from start to finish: a gate with its policy and
//! journal, the engine run within limits, and the rollback when the script
//! fails or the process is told to stop. The command line, `ovs-run serve`,
//! and anything else that runs scripts, goes through [`run`] (and
//! [`refused_imports`] before it). The exit statuses every frontend uses are
//! in [`exit`].

pub mod exit;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map};
use tracing::Instrument;

use self::exit::{is_script_usage_error, EXIT_SCRIPT_ERROR, EXIT_TRAP, EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::audit::RunAudit;
use crate::backend::{Backend, Op};
use crate::capabilities::{Caps, LogLevel, ScriptPre};
use crate::engine::{Engine, Limits, Outcome, OutputSink, RunState, TrapReason};
use crate::gate::Gate;
use crate::journal::{Journal, RollbackReport};
use crate::policy::{self, Policy};
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
    /// Record each call and the run (tenants' runs; `--audit`).
    pub audit: Option<RunAudit>,
    /// The script's stdout, stderr and logs go here instead of the terminal.
    pub output: Option<OutputSink>,
}

pub struct RunResult {
    pub outcome: Outcome,
    /// What changed (a dry-run's plan), in order, rolled back or not.
    pub changes: Vec<Op>,
    /// Present when the script failed and its changes were undone.
    pub rollback: Option<RollbackReport>,
    /// The last call that failed because the system could not be reached.
    pub unavailable: Option<String>,
}

impl RunResult {
    pub fn failed(&self) -> bool {
        !matches!(self.outcome, Outcome::Ok)
    }

    /// See [`exit`]: 0 ok; a script error is 4 when the system was
    /// unreachable, 2 when the script said its arguments were wrong, else 1;
    /// 3 it trapped or hit a limit.
    pub fn exit_code(&self) -> i32 {
        match &self.outcome {
            Outcome::Ok => 0,
            Outcome::ScriptError(_) if self.unavailable.is_some() => EXIT_UNAVAILABLE,
            Outcome::ScriptError(m) if is_script_usage_error(m) => EXIT_USAGE,
            Outcome::ScriptError(_) => EXIT_SCRIPT_ERROR,
            Outcome::Trapped { .. } => EXIT_TRAP,
        }
    }

    /// "ok", "script-error", "timeout", "memory-limit", ...
    pub fn status(&self) -> &'static str {
        match &self.outcome {
            Outcome::Ok => "ok",
            Outcome::ScriptError(_) if self.unavailable.is_some() => "system-unavailable",
            Outcome::ScriptError(m) if is_script_usage_error(m) => "usage-error",
            Outcome::ScriptError(_) => "script-error",
            Outcome::Trapped { reason, .. } => match reason {
                TrapReason::Timeout => "timeout",
                TrapReason::Memory => "memory-limit",
                TrapReason::StackOverflow => "stack-overflow",
                TrapReason::CallLimit => "call-limit",
                TrapReason::Interrupted => "interrupted",
                TrapReason::Trap => "trap",
            },
        }
    }

    /// The script's error or the trap's explanation.
    pub fn message(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Ok => None,
            Outcome::ScriptError(m) | Outcome::Trapped { message: m, .. } => Some(m),
        }
    }

    /// What the user is told after the run, one line each (stderr): the
    /// error or trap with its backtrace, and what was rolled back or kept.
    pub fn report_lines(&self, no_rollback: bool) -> Vec<String> {
        let mut out = Vec::new();
        match &self.outcome {
            Outcome::Ok => {}
            Outcome::ScriptError(m) => out.push(format!("ovs-run: script error: {m}")),
            Outcome::Trapped { message, backtrace, .. } => {
                out.push(format!("ovs-run: {message}"));
                if let Some(bt) = backtrace {
                    out.push(bt.trim_end().to_string());
                }
            }
        }
        if let Some(r) = &self.rollback {
            let verdict = if r.is_clean() {
                "the system is as it was".to_string()
            } else {
                format!("{} step(s) could not be undone", r.failed.len() + r.irreversible.len())
            };
            out.push(format!(
                "ovs-run: rolled back the script's changes ({} undo step(s)); {verdict}",
                r.undone.len()
            ));
            for (op, e) in &r.failed {
                out.push(format!("ovs-run: rollback step failed: {op}: {e}"));
            }
            for op in &r.irreversible {
                out.push(format!("ovs-run: cannot undo: {op}"));
            }
        } else if self.failed() && no_rollback && !self.changes.is_empty() {
            out.push(format!(
                "ovs-run: kept {} change(s) of the failed script (--no-rollback):",
                self.changes.len()
            ));
            for op in &self.changes {
                out.push(format!("  {op}"));
            }
        }
        out
    }
}

/// The load-time check: the capability interfaces the script imports of
/// which `policy` can never allow anything. A script importing one is
/// refused before it runs (exit status 2), with this message.
pub fn refused_imports(engine: &Engine, pre: &ScriptPre<RunState>, policy: &dyn Policy) -> Option<String> {
    let refused = policy::refused_interfaces(policy, &engine.imports(pre));
    (!refused.is_empty()).then(|| {
        format!(
            "the policy never allows this tenant any call of these interfaces the script imports: {}",
            refused.join(", ")
        )
    })
}

/// Cancelled when the whole process stops (`ovs-run serve` on SIGTERM):
/// every run in progress is interrupted as on a signal, and rolled back.
static STOP_ALL: std::sync::LazyLock<tokio_util::sync::CancellationToken> =
    std::sync::LazyLock::new(tokio_util::sync::CancellationToken::new);

/// Interrupt every run of this process, now and from now on: each one stops
/// where it is (a capability call in flight is dropped), its changes are
/// rolled back and its journal closed, as when `stop_on_signals` sees a signal.
pub fn stop_all() {
    STOP_ALL.cancel();
}

/// Resolves once [`stop_all`] was called.
pub async fn stopped() {
    STOP_ALL.cancelled().await
}

/// Runs of this process so far: each run's span carries its number.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub async fn run(engine: &Engine, pre: &ScriptPre<RunState>, args: &[String], cfg: RunConfig) -> RunResult {
    let id = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let tenant = cfg.audit.as_ref().map(|a| a.tenant.clone());
    let span = match &tenant {
        Some(t) => tracing::debug_span!("run", id, tenant = t.as_str()),
        None => tracing::debug_span!("run", id),
    };
    run_in(engine, pre, args, cfg).instrument(span).await
}

async fn run_in(engine: &Engine, pre: &ScriptPre<RunState>, args: &[String], cfg: RunConfig) -> RunResult {
    let started = Instant::now();
    let mut gate = Gate::new(cfg.backend, cfg.policy).with_journal(cfg.journal);
    if let Some(a) = &cfg.audit {
        gate = gate.with_audit(a.clone());
    }
    let gate = Arc::new(gate);
    let mut caps = Caps::new(gate.clone(), cfg.datapath, cfg.log_level, cfg.limits.max_calls);
    if let Some(sink) = cfg.output {
        caps = caps.with_output(sink);
    }
    let outcome = tokio::select! {
        // A stop comes first: a run that starts after it never begins.
        biased;
        _ = STOP_ALL.cancelled() => Outcome::Trapped {
            reason: TrapReason::Interrupted,
            message: "interrupted: ovs-run is shutting down".to_string(),
            backtrace: None,
        },
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
    let result = RunResult { outcome, changes, rollback, unavailable: gate.unavailable() };
    if let Some(a) = &cfg.audit {
        let mut m = Map::new();
        m.insert("args".into(), json!(args));
        m.insert("status".into(), json!(result.status()));
        m.insert("exit".into(), json!(result.exit_code()));
        m.insert("error".into(), json!(result.message()));
        m.insert("changes".into(), json!(result.changes.len()));
        m.insert("rolled_back".into(), json!(result.rollback.as_ref().map(|r| r.undone.len())));
        m.insert("duration_ms".into(), json!(started.elapsed().as_secs_f64() * 1000.0));
        if let Err(e) = a.run_finished(m) {
            eprintln!("ovs-run: cannot write the audit log: {e}");
        }
    }
    result
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

/// The outcome of a run as `--json` prints it (`ovs-run --json`, and
/// `ovs-run submit --json` through the daemon).
pub fn outcome_json(result: &RunResult, dry_run: bool, no_rollback: bool) -> serde_json::Value {
    let rollback = &result.rollback;
    let code = result.exit_code();
    json!({
        "status": result.status(),
        "code": code,
        "dry_run": dry_run,
        "error": result.message(),
        "changes": result.changes,
        "rolled_back": rollback.as_ref().map(|r| &r.undone),
        "rollback_failed": rollback.as_ref().map(|r| r.failed.iter().map(|(op, e)| json!({"op": op, "error": e})).collect::<Vec<_>>()),
        "kept": code != 0 && no_rollback && !result.changes.is_empty(),
    })
}

/// A dry-run's plan, as printed on stdout (lines ending in newlines).
pub fn plan_text(plan: &[Op], ok: bool) -> String {
    let verdict = if ok { "" } else { " (the script failed: the plan stops where it did)" };
    let mut s = format!("Plan (dry-run: nothing was changed){verdict}:\n");
    if plan.is_empty() {
        s += "  nothing to do\n";
    }
    for (i, op) in plan.iter().enumerate() {
        s += &format!("  {:>2}. {op}\n", i + 1);
    }
    s
}
