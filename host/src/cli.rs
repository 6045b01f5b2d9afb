//! The `ovs-run` command line: argument definitions, and the run command
//! (load, run, report, roll back). Exit status: 0 ok; 1 the script returned
//! an error; 2 usage error or a script that cannot be loaded; 3 the script
//! trapped or hit a limit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::backend::dryrun::{parse_assumed_container, DryRunBackend};
use crate::backend::ovsdb::{self, OvsdbUri};
use crate::backend::system::{SystemBackend, SystemConfig};
use crate::backend::{docker, Backend, Op};
use crate::capabilities::{Caps, LogLevel};
use crate::engine::{cache, CompileCache, Engine, Limits, Outcome, TrapReason};
use crate::gate::Gate;
use crate::journal::RollbackReport;
use crate::policy::AllowAll;
use crate::types::Datapath;
use crate::{sandbox, verbose};

pub const EXIT_SCRIPT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_TRAP: i32 = 3;

const AFTER_HELP: &str = "\
Everything after SCRIPT is passed to the script unchanged, hyphens included:
options for ovs-run go before SCRIPT.

Examples:
  # attach container web to br0, like `ovs-docker add-port`
  ovs-run scripts/attach.wasm br0 eth0 web --ipaddress=172.17.0.2/16 --gateway=172.17.42.1
  # show what it would do, without Docker or OVS
  ovs-run --dry-run --assume-container web scripts/attach.wasm br0 eth0 web --ipaddress=10.1.0.2/24
  # try ovs-run against a private Open vSwitch
  eval $(ovs-run sandbox up) && ovs-run scripts/seed-demo.wasm --container web

Exit status: 0 ok, 1 the script reported an error, 2 usage error or a script
that cannot be loaded, 3 the script trapped or hit a limit (--timeout, --memory).
A script that fails (1 or 3) has its changes rolled back unless --no-rollback.";

#[derive(Parser, Debug)]
#[command(
    name = "ovs-run",
    version,
    about = "Run sandboxed WebAssembly network scripts against Open vSwitch, netlink and Docker",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The script: a WebAssembly component (e.g. scripts/attach.wasm)
    #[arg(value_name = "SCRIPT", required = true)]
    pub script: Option<PathBuf>,

    /// Arguments for the script
    #[arg(value_name = "SCRIPT-ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub script_args: Vec<String>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// OVSDB to use: unix:PATH or tcp:HOST:PORT [default: unix:$OVS_RUNDIR/db.sock, else unix:/var/run/openvswitch/db.sock]
    #[arg(long, value_name = "URI")]
    pub ovsdb: Option<String>,

    /// Docker API: unix:///PATH or tcp://HOST:PORT [default: $DOCKER_HOST, else unix:///var/run/docker.sock]
    #[arg(long, value_name = "URI")]
    pub docker: Option<String>,

    /// Datapath for bridges a script creates with the host default [default: system if the openvswitch kernel module is loaded, else netdev]
    #[arg(long, value_name = "TYPE", value_parser = ["system", "netdev"])]
    pub datapath: Option<String>,

    /// Stop the script after this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub timeout: f64,

    /// Memory cap for the script, in MiB
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub memory: usize,

    /// Seconds to wait for ovs-vswitchd to apply each OVSDB change
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    pub apply_timeout: f64,

    /// Change nothing: print the plan of what the script would do
    #[arg(long)]
    pub dry_run: bool,

    /// In a dry-run, pretend container NAME runs (optionally with labels): NAME[,KEY=VALUE...]
    #[arg(long, value_name = "NAME[,KEY=VALUE...]")]
    pub assume_container: Vec<String>,

    /// Print the plan (dry-run) or the changes made, and the outcome, as JSON on stdout (the script's own stdout then goes to stderr)
    #[arg(long)]
    pub json: bool,

    /// Keep the changes of a failed script instead of rolling them back
    #[arg(long)]
    pub no_rollback: bool,

    /// Compile cache directory [default: /var/cache/ovs-run for root]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Most capability calls one run may make
    #[arg(long, value_name = "N", default_value = "100000")]
    pub max_calls: u64,

    /// More output: -v shows the script's info logs and what ovs-run does, -vv debug
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Show only the script's error logs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// A private Open vSwitch (ovsdb-server + ovs-vswitchd) to try ovs-run without touching the host's switch
    Sandbox {
        #[command(subcommand)]
        action: sandbox::Action,
    },
}

/// Parse the command line and run; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    verbose::set_level(cli.run.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ovs-run: cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    match cli.command {
        Some(Command::Sandbox { action }) => sandbox::run(action),
        None => {
            let script = cli.script.expect("clap requires SCRIPT");
            rt.block_on(run_script(script, cli.script_args, cli.run))
        }
    }
}

fn usage(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_USAGE
}

async fn run_script(script: PathBuf, args: Vec<String>, opts: RunArgs) -> i32 {
    if !(opts.timeout > 0.0 && opts.timeout <= 86_400.0) {
        return usage(format!("--timeout {} must be between 0 and 86400 seconds", opts.timeout));
    }
    if !(1..=65_536).contains(&opts.memory) {
        return usage(format!("--memory {} must be between 1 and 65536 MiB", opts.memory));
    }
    if !(opts.apply_timeout > 0.0 && opts.apply_timeout <= 3600.0) {
        return usage(format!("--apply-timeout {} must be between 0 and 3600 seconds", opts.apply_timeout));
    }
    let bytes = match std::fs::read(&script) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read script {}: {e}", script.display())),
    };
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
    let (pre, _) = match engine.load(&bytes) {
        Ok(p) => p,
        Err(e) => return usage(format!("{}: {e}", script.display())),
    };

    let datapath = match opts.datapath.as_deref() {
        Some(d) => d.parse().expect("clap checked the value"),
        None => Datapath::host_default(),
    };
    let gate = Arc::new(Gate::new(backend.clone(), Arc::new(AllowAll)));
    let log_level = match (opts.quiet, opts.verbose) {
        (true, _) => LogLevel::Error,
        (false, 0) => LogLevel::Warn,
        (false, 1) => LogLevel::Info,
        (false, 2) => LogLevel::Debug,
        _ => LogLevel::Trace,
    };
    let caps = Caps::new(gate.clone(), datapath, log_level, opts.max_calls);
    let limits = Limits {
        timeout: Duration::from_secs_f64(opts.timeout),
        memory: opts.memory << 20,
        max_calls: opts.max_calls,
        stdout_to_stderr: opts.json,
    };
    let outcome = engine.run(&pre, caps, &args, &limits).await;
    report(&outcome, &gate, &opts).await
}

/// The dry-run model (starting from the real system when OVSDB answers) or the real system.
async fn make_backend(opts: &RunArgs) -> Result<Arc<dyn Backend>, String> {
    let ovsdb: OvsdbUri = match &opts.ovsdb {
        Some(u) => u.parse().map_err(|e| format!("--ovsdb: {e}"))?,
        None => ovsdb::default_uri(),
    };
    let system = || {
        Arc::new(SystemBackend::new(SystemConfig {
            ovsdb: ovsdb.clone(),
            docker: opts.docker.clone().unwrap_or_else(docker::default_uri),
            apply_timeout: Duration::from_secs_f64(opts.apply_timeout),
        }))
    };
    if !opts.dry_run {
        if !opts.assume_container.is_empty() {
            return Err("--assume-container only makes sense with --dry-run".into());
        }
        return Ok(system());
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
                verbose!(1, "dry-run: starting from an empty model ({e})");
                None
            }
        }
    };
    Ok(Arc::new(DryRunBackend::new(reader, assumed)))
}

/// Print the outcome, roll back on failure, and pick the exit status.
async fn report(outcome: &Outcome, gate: &Gate, opts: &RunArgs) -> i32 {
    let (status, code, message) = match outcome {
        Outcome::Ok => ("ok", 0, None),
        Outcome::ScriptError(m) => ("script-error", EXIT_SCRIPT_ERROR, Some(m.clone())),
        Outcome::Trapped { reason, message, .. } => (trap_status(*reason), EXIT_TRAP, Some(message.clone())),
    };
    let changes = gate.changes();
    let mut rollback: Option<RollbackReport> = None;
    if code != 0 && gate.has_changes() && !opts.no_rollback {
        rollback = Some(gate.rollback().await);
    }

    if opts.json {
        let out = json!({
            "status": status,
            "dry_run": opts.dry_run,
            "error": message,
            "changes": changes,
            "rolled_back": rollback.as_ref().map(|r| &r.undone),
            "rollback_failed": rollback.as_ref().map(|r| r.failed.iter().map(|(op, e)| json!({"op": op, "error": e})).collect::<Vec<_>>()),
            "kept": code != 0 && opts.no_rollback && !changes.is_empty(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if opts.dry_run {
        print_plan(&changes, code == 0);
    } else if verbose::level() > 0 {
        for (i, op) in changes.iter().enumerate() {
            eprintln!("ovs-run: done {}. {op}", i + 1);
        }
    }

    if let Some(m) = &message {
        match outcome {
            Outcome::Trapped { backtrace, .. } => {
                eprintln!("ovs-run: {m}");
                if let Some(bt) = backtrace {
                    eprintln!("{bt}");
                }
            }
            _ => eprintln!("ovs-run: script error: {m}"),
        }
    }
    if let Some(r) = &rollback {
        let verdict = if r.is_clean() {
            "the system is as it was".to_string()
        } else {
            format!("{} step(s) could not be undone", r.failed.len() + r.irreversible.len())
        };
        eprintln!("ovs-run: rolled back the script's changes ({} undo step(s)); {verdict}", r.undone.len());
        for (op, e) in &r.failed {
            eprintln!("ovs-run: rollback step failed: {op}: {e}");
        }
        for op in &r.irreversible {
            eprintln!("ovs-run: cannot undo: {op}");
        }
    } else if code != 0 && opts.no_rollback && !changes.is_empty() {
        eprintln!("ovs-run: kept {} change(s) of the failed script (--no-rollback):", changes.len());
        for op in &changes {
            eprintln!("  {op}");
        }
    }
    code
}

fn trap_status(r: TrapReason) -> &'static str {
    match r {
        TrapReason::Timeout => "timeout",
        TrapReason::Memory => "memory-limit",
        TrapReason::StackOverflow => "stack-overflow",
        TrapReason::CallLimit => "call-limit",
        TrapReason::Trap => "trap",
    }
}

fn print_plan(plan: &[Op], ok: bool) {
    let verdict = if ok { "" } else { " (the script failed: the plan stops where it did)" };
    println!("Plan (dry-run: nothing was changed){verdict}:");
    if plan.is_empty() {
        println!("  nothing to do");
    }
    for (i, op) in plan.iter().enumerate() {
        println!("  {:>2}. {op}", i + 1);
    }
}
