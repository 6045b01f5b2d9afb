//! Network scripts: `docker network create -o script=PATH@sha256:HEX` names a
//! Wasm script that runs at every Join and Leave of the network's endpoints,
//! exactly like `ovs-run SCRIPT` would run it: same sandbox, limits, gate,
//! journal on disk, rollback and audit. A script that fails at Join fails
//! the `docker run` with its message, and its changes are rolled back
//! (Docker then deletes the endpoint, which removes the port).
//!
//! The script gets `join` or `leave` and the endpoint's facts as options:
//! `--bridge`, `--port` (the OVS port), `--peer` (the container's end before
//! Docker renames it), `--endpoint`, `--network`, and when known
//! `--address`, `--mac`, `--vlan`, `--mtu`; every `-o script.KEY=VALUE` of the
//! network comes as `--KEY=VALUE`. Docker names no container in these calls.
//!
//! Scripts are pinned by digest (the network was created with these bytes
//! in mind) and, with `--require-signed`, signed by a trusted key; both are
//! checked before anything compiles, at `network create` and at every run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::{AuditLog, RunAudit};
use crate::backend::system::SystemBackend;
use crate::backend::Backend;
use crate::capabilities::LogLevel;
use crate::capabilities::ScriptPre;
use crate::engine::cache::CompileCache;
use crate::engine::{Engine, Limits, Outcome, RunState};
use crate::error::{CapError, CapResult};
use crate::journal::store::JournalFile;
use crate::journal::Journal;
use crate::policy::AllowAll;
use crate::runner::{self, RunConfig};
use crate::types::Datapath;
use crate::vetting::{self, RequireSigned, ScriptRef, TrustStore};

/// How network scripts run; one per plugin.
pub struct Hooks {
    engine: Engine,
    /// With `--require-signed`: the keys one of which must have signed a script.
    trust: Option<TrustStore>,
    limits: Limits,
}

/// Where a run's journal and audit records go.
pub struct RunPlace<'a> {
    pub backend: Arc<SystemBackend>,
    pub datapath: Datapath,
    pub journal: JournalFile,
    pub audit: Option<(&'a Arc<AuditLog>, &'a str)>,
}

impl Hooks {
    pub fn new(cache_dir: &Path, trust: Option<TrustStore>) -> CapResult<Self> {
        let engine = Engine::new(CompileCache::open(cache_dir))
            .map_err(|e| CapError::failed(format!("cannot start the Wasm engine: {e:#}")))?;
        let limits = Limits {
            timeout: std::time::Duration::from_secs(30),
            memory: 64 << 20,
            max_calls: 100_000,
            // The plugin's stdout is nobody's: everything to its log (stderr).
            stdout_to_stderr: true,
        };
        Ok(Self { engine, trust, limits })
    }

    /// The script option's value, parsed: a file with its digest pin.
    pub fn parse(script: &str) -> CapResult<ScriptRef> {
        let r = ScriptRef::parse(Path::new(script))
            .map_err(|e| CapError::invalid(format!("option script: {e}")))?;
        if r.pin.is_none() {
            return Err(CapError::invalid(format!(
                "option script={script}: pin the script: PATH@sha256:HEX (`ovs-run inspect PATH` shows it), \
                 so every Join runs exactly the bytes you reviewed"
            )));
        }
        if !r.path.is_absolute() {
            return Err(CapError::invalid(format!(
                "option script={script}: the path must be absolute (the plugin's working directory is not yours)"
            )));
        }
        Ok(r)
    }

    /// Read, check (pin, signature) and compile the script.
    pub fn load(&self, script: &str) -> CapResult<ScriptPre<RunState>> {
        let r = Self::parse(script)?;
        let refused = |e: String| CapError::invalid(format!("option script={script}: {e}"));
        let bytes = vetting::read_script_file(&r.path).map_err(refused)?;
        if let Some(pin) = &r.pin {
            vetting::check_pin(&bytes, pin).map_err(|e| refused(format!("refused: {e}")))?;
        }
        if let Some(trust) = &self.trust {
            vetting::check(&bytes, trust, RequireSigned::Yes)
                .map_err(|e| refused(format!("refused: {e}")))?;
        }
        let (pre, _) = self.engine.load(&bytes).map_err(|e| refused(e.to_string()))?;
        Ok(pre)
    }

    /// Run `script` with `args`; its changes are undone when it fails.
    pub async fn run(&self, script: &str, args: &[String], place: RunPlace<'_>) -> CapResult<usize> {
        let pre = self.load(script)?;
        let audit = place.audit.map(|(log, who)| {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            RunAudit::new(log.clone(), who, Some(uid), script)
        });
        let cfg = RunConfig {
            backend: place.backend as Arc<dyn Backend>,
            policy: Arc::new(AllowAll),
            datapath: place.datapath,
            log_level: LogLevel::Warn,
            limits: self.limits.clone(),
            rollback: true,
            journal: Journal::on_disk(place.journal),
            // The plugin handles SIGTERM itself, between calls.
            stop_on_signals: false,
            audit,
            output: None,
        };
        let result = runner::run(&self.engine, &pre, args, cfg).await;
        let error = match &result.outcome {
            Outcome::Ok => return Ok(result.changes.len()),
            Outcome::ScriptError(m) | Outcome::Trapped { message: m, .. } => m.clone(),
        };
        let undo = match &result.rollback {
            Some(r) if r.is_clean() => " (its changes were rolled back)".to_string(),
            Some(r) => format!(" ({} change(s) could not be undone)", r.failed.len() + r.irreversible.len()),
            None => String::new(),
        };
        let name =
            ScriptRef::parse(Path::new(script)).map(|r| r.path).unwrap_or_else(|_| PathBuf::from(script));
        Err(CapError::failed(format!("network script {}: {error}{undo}", name.display())))
    }
}
