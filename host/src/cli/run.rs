//! `ovs-run SCRIPT`: load the script, run it against the chosen backend,
//! report the plan or the changes, and roll back when it fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{RunArgs, EXIT_USAGE};
use crate::audit::{AuditLog, RunAudit};
use crate::backend::dryrun::{parse_assumed_container, DryRunBackend};
use crate::backend::stats::{self, Stats};
use crate::backend::Backend;
use crate::capabilities::LogLevel;
use crate::engine::{cache, CompileCache, Engine, Limits};
use crate::journal::store::{self, Header, JournalFile};
use crate::journal::Journal;
use crate::policy::cedar::{default_tenants_file, CedarPolicy, PolicyStore};
use crate::policy::{AllowAll, Policy};
use crate::runner::{self, RunConfig, RunResult};
use crate::types::{ContainerInfo, ContainerRef, Datapath};
use crate::verbose;
use crate::vetting::{self, RequireSigned, ScriptRef, TrustStore};

fn usage(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_USAGE
}

pub(super) async fn run_script(script: PathBuf, args: Vec<String>, opts: RunArgs) -> i32 {
    if !(opts.timeout > 0.0 && opts.timeout <= 86_400.0) {
        return usage(format!("--timeout {} must be between 0 and 86400 seconds", opts.timeout));
    }
    if !(1..=65_536).contains(&opts.memory) {
        return usage(format!("--memory {} must be between 1 and 65536 MiB", opts.memory));
    }
    // A file, or oci://REF from the local store or its registry.
    let registry = crate::registry::Options::new(opts.insecure, opts.cache_dir.clone());
    let (script, bytes) = match crate::registry::source::load(&script, &registry).await {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    // Vetting reads the bytes only: a refused script is never compiled.
    if let Err(msg) = vet(&script, &bytes, &opts) {
        return usage(format!("{}: refused: {msg}", script.path.display()));
    }
    let script = script.path;
    let backend = match make_backend(&opts).await {
        Ok(b) => b,
        Err(msg) => return usage(msg),
    };
    let cache = if opts.no_cache {
        CompileCache::disabled("--no-cache")
    } else {
        CompileCache::open(&opts.cache_dir.clone().unwrap_or_else(cache::default_dir))
    };
    let engine = match Engine::new(cache) {
        Ok(e) => e,
        Err(e) => return usage(format!("cannot start the Wasm engine: {e:#}")),
    };
    super::progress::show_batches(!opts.json && !opts.quiet);
    // Compiling is bounded by --timeout too (apart from the run's own).
    let notice = super::progress::Notice::after_a_moment(
        !opts.json && !opts.quiet,
        format!(
            "compiling {} to native code ({})",
            script.display(),
            if opts.no_cache {
                "--no-cache"
            } else {
                "not in the compile cache yet: a script's first run, ~20 s for a Python one; \
                 later runs load it in milliseconds"
            }
        ),
    );
    let loaded = engine.load_within(&bytes, Duration::from_secs_f64(opts.timeout));
    drop(notice);
    let (pre, _) = match loaded {
        Ok(p) => p,
        Err(e) => return usage(format!("{}: {e}", script.display())),
    };
    let (policy, tenant): (Arc<dyn Policy>, Option<String>) = match tenant_policy(&opts) {
        Ok(Some(p)) => {
            let name = p.tenant().to_string();
            (Arc::new(p), Some(name))
        }
        Ok(None) => (Arc::new(AllowAll), None),
        Err(msg) => return usage(msg),
    };
    if let Some(msg) = runner::refused_imports(&engine, &pre, policy.as_ref()) {
        return usage(format!("{}: {msg}", script.display()));
    }
    let audit = match &opts.audit {
        Some(path) => match AuditLog::open(path) {
            Ok(log) => {
                let sha = hex::encode(Sha256::digest(&bytes));
                // SAFETY: getuid has no preconditions.
                let uid = unsafe { libc::getuid() };
                Some(RunAudit::new(Arc::new(log), tenant.as_deref().unwrap_or("operator"), Some(uid), &sha))
            }
            Err(e) => return usage(format!("--audit {}: {e}", path.display())),
        },
        None => None,
    };

    let datapath = match opts.datapath.as_deref() {
        Some(d) => d.parse().expect("clap checked the value"),
        None => Datapath::host_default(),
    };
    let log_level = match (opts.quiet, opts.verbose) {
        (true, _) => LogLevel::Error,
        (false, 0) => LogLevel::Warn,
        (false, 1) => LogLevel::Info,
        (false, 2) => LogLevel::Debug,
        _ => LogLevel::Trace,
    };
    let limits = Limits {
        timeout: Duration::from_secs_f64(opts.timeout),
        memory: opts.memory << 20,
        max_calls: opts.max_calls,
        stdout_to_stderr: opts.json,
    };
    let journal = if opts.dry_run {
        Journal::default()
    } else {
        let dir = opts.journal_dir.clone().unwrap_or_else(store::default_dir);
        // A run that died earlier is rolled back before this one starts.
        super::recover::recover_all(&dir, false, true).await;
        // make_backend checked the options already.
        let system = opts.system_opts().config().expect("checked by make_backend");
        let header = Header::for_system(&script.display().to_string(), &system);
        match JournalFile::create(&dir, &header) {
            Ok(f) => Journal::on_disk(f),
            Err(e) if not_root_denied(&e) => return usage(needs_root(&dir)),
            Err(e) => {
                return usage(format!(
                    "cannot create a journal in {}: {e} (see --journal-dir)",
                    dir.display()
                ))
            }
        }
    };
    let cfg = RunConfig {
        backend,
        policy,
        datapath,
        log_level,
        limits,
        rollback: !opts.no_rollback,
        journal,
        stop_on_signals: true,
        audit,
        output: None,
    };
    let result = runner::run(&engine, &pre, &args, cfg).await;
    let code = report(&result, &opts, &stats::snapshot());
    if let Some(hint) = tenant_hint(&result, opts.dry_run) {
        eprintln!("ovs-run: {hint}");
    }
    code
}

/// A user who is not root was refused the journal directory: not a broken
/// installation but someone who cannot change the system locally.
fn not_root_denied(e: &std::io::Error) -> bool {
    // SAFETY: geteuid has no preconditions.
    e.kind() == std::io::ErrorKind::PermissionDenied && unsafe { libc::geteuid() } != 0
}

/// What a user who is not root can do instead of a local run.
fn needs_root(dir: &std::path::Path) -> String {
    format!("{} (the journal directory {} is not writable for you)", use_submit(), dir.display())
}

fn use_submit() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    format!(
        "changing this host's switch needs root, and you are uid {uid}: run the script through \
         the `ovs-run serve` daemon as your tenant instead: ovs-run submit [--socket PATH] SCRIPT \
         [ARGS...] (`ovs-run submit --dry-run` shows the plan first)"
    )
}

/// A real run by a user who is not root that failed on a permission, or
/// could not reach the system (OVSDB's and Docker's sockets are root's, and
/// a socket in a directory the user may not enter looks missing): point at
/// `submit`.
fn tenant_hint(result: &RunResult, dry_run: bool) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if dry_run || !result.failed() || unsafe { libc::geteuid() } == 0 {
        return None;
    }
    let denied = result
        .message()
        .is_some_and(|m| m.contains("Permission denied") || m.contains("Operation not permitted"));
    (denied || result.unavailable.is_some()).then(use_submit)
}

/// The digest pin, then the signatures (required with --require-signed; with
/// --trust alone, only reported with -v).
fn vet(script: &ScriptRef, bytes: &[u8], opts: &RunArgs) -> Result<(), String> {
    if let Some(pin) = &script.pin {
        vetting::check_pin(bytes, pin).map_err(|e| e.to_string())?;
        verbose!(1, "sha256 matches the pin {pin}");
    }
    if !opts.require_signed && opts.trust.is_none() {
        return Ok(());
    }
    let dir = opts.trust.clone().unwrap_or_else(vetting::trust::default_dir);
    let trust = TrustStore::open(&dir).map_err(|e| e.to_string())?;
    let v =
        vetting::check(bytes, &trust, RequireSigned::from(opts.require_signed)).map_err(|e| e.to_string())?;
    for s in &v.signatures.signatures {
        if let (Some(id), vetting::SignatureStatus::Trusted { key_file }) = (&s.key_id, &s.status) {
            verbose!(1, "signed by trusted key {id} ({key_file})");
        }
    }
    if v.signed_by.is_empty() {
        verbose!(1, "signatures: {:?} (not required without --require-signed)", v.verdict);
    }
    Ok(())
}

/// `--policy FILE --tenant NAME`: the tenant's view of the policy.
fn tenant_policy(opts: &RunArgs) -> Result<Option<CedarPolicy>, String> {
    let (Some(file), Some(tenant)) = (&opts.policy, &opts.tenant) else { return Ok(None) };
    let tenants = opts.tenants.clone().unwrap_or_else(|| default_tenants_file(file));
    let store = Arc::new(PolicyStore::load(file, &tenants)?);
    store.policy_for(tenant).map(Some)
}

/// The dry-run model (starting from the real system when OVSDB answers) or the real system.
async fn make_backend(opts: &RunArgs) -> Result<Arc<dyn Backend>, String> {
    let sys_opts = opts.system_opts();
    // Parsed once here: a bad --ovsdb or --ovn-nb is an error before anything runs.
    let ovsdb = sys_opts.config()?.ovsdb;
    sys_opts.backend()?;
    let system = || Arc::new(sys_opts.backend().expect("checked above"));
    if !opts.dry_run {
        if !opts.assume_container.is_empty() {
            return Err("--assume-container only makes sense with --dry-run".into());
        }
        let sys = system();
        sys.prewarm();
        return Ok(sys);
    }
    let assumed = opts
        .assume_container
        .iter()
        .map(|s| parse_assumed_container(s).map_err(|e| format!("--assume-container: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let reader: Option<Arc<dyn Backend>> = {
        let sys = system();
        match sys.list_bridges().await {
            Ok(_) => {
                verbose!(1, "dry-run: starting from the real system at {ovsdb}");
                Some(sys)
            }
            Err(e) => {
                // Said without -v: a plan that ignores what exists (bridges
                // "created" that are there) must not pass for the real one.
                eprintln!(
                    "ovs-run: warning: the plan starts from an empty model, not from this host's \
                     Open vSwitch: {e}"
                );
                None
            }
        }
    };
    let assumed = match &reader {
        Some(r) => adopt_real_ids(r.as_ref(), assumed).await,
        None => assumed,
    };
    Ok(Arc::new(DryRunBackend::new(reader, assumed).with_ovn_reader(system())))
}

/// An assumed container that Docker knows takes its real id: the plan then
/// names the ports the real run would, and the model gives it the ports
/// OVSDB records for it, so a plan for an attached container fails where
/// the real run does ("already attached").
async fn adopt_real_ids(reader: &dyn Backend, assumed: Vec<ContainerInfo>) -> Vec<ContainerInfo> {
    let mut out = Vec::with_capacity(assumed.len());
    for mut c in assumed {
        let real = match ContainerRef::parse(&c.name) {
            Ok(r) => reader.lookup_container(&r).await.ok(),
            Err(_) => None,
        };
        if let Some(real) = real {
            verbose!(
                1,
                "dry-run: --assume-container {} is Docker's {}: its ports come from OVSDB",
                c.name,
                &real.id[..12.min(real.id.len())]
            );
            c.id = real.id;
            if c.labels.is_empty() {
                c.labels = real.labels;
            }
        }
        out.push(c);
    }
    out
}

/// Print the outcome and what was done or undone; pick the exit status.
fn report(result: &RunResult, opts: &RunArgs, stats: &Stats) -> i32 {
    let code = result.exit_code();
    let changes = &result.changes;

    if opts.json {
        let mut out = runner::outcome_json(result, opts.dry_run, opts.no_rollback);
        out["stats"] = json!(stats);
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if opts.dry_run {
        print!("{}", runner::plan_text(changes, code == 0));
    } else if verbose::level() > 0 {
        for (i, op) in changes.iter().enumerate() {
            eprintln!("ovs-run: done {}. {op}", i + 1);
        }
    }
    verbose!(
        1,
        "asked of the system: {} OVSDB transactions ({} changes), {} netlink requests, {} Docker requests",
        stats.ovsdb_transactions,
        stats.ovsdb_changes,
        stats.netlink_requests,
        stats.docker_requests
    );

    for line in result.report_lines(opts.no_rollback) {
        eprintln!("{line}");
    }
    code
}
