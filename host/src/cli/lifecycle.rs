//! `ovs-run gc | bind | bindings | unbind | watch`: the command line of the
//! container lifecycle (see [`crate::lifecycle`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{EXIT_SCRIPT_ERROR, EXIT_USAGE};
use crate::backend::docker::Inspected;
use crate::backend::system::SystemBackend;
use crate::capabilities::LogLevel;
pub use crate::config::SystemOpts;
use crate::engine::{cache, CompileCache, Engine, Limits};
use crate::error::{CapError, ErrorKind};
use crate::lifecycle::bindings::DEFAULT_STATE_DIR;
use crate::lifecycle::{
    self, describe, operator_policy, ports, Action, Binding, BindingStore, Lifecycle, Reporter, Scope,
    ScriptSettings, Selector, WatchConfig,
};
use crate::types::{ContainerRef, Datapath, IfName};
use crate::verbose;

/// Where bindings are kept.
#[derive(clap::Args, Debug, Clone)]
pub struct StateOpts {
    /// Directory holding bindings and their scripts (must be writable by its owner only)
    #[arg(long, value_name = "DIR", env = "OVS_RUN_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// How bound scripts run (as `ovs-run SCRIPT` runs them).
#[derive(clap::Args, Debug, Clone)]
pub struct ScriptOpts {
    /// Datapath for bridges a script creates with the host default [default: system if the openvswitch kernel module is loaded, else netdev]
    #[arg(long, value_name = "TYPE", value_parser = ["system", "netdev"])]
    pub datapath: Option<String>,

    /// Stop a script after this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub timeout: f64,

    /// Memory cap for a script, in MiB
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub memory: usize,

    /// Most capability calls one run may make
    #[arg(long, value_name = "N", default_value = "100000")]
    pub max_calls: u64,

    /// Compile cache directory [default: /var/cache/ovs-run for root]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// More output on stderr: -v the scripts' info logs and what ovs-run does, -vv debug
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

const GC_HELP: &str = "\
A container port is one whose OVS interface carries container metadata
(external_ids container_id or container_full_id, and container_iface), as
ports made by ovs-run and by ovs-docker do. It is removed, with its host
veth, when its container is gone or not running, when ovs-vswitchd reports an
error for it, or when its veth no longer leads into the container's network
namespace (after `docker restart`). Ports without container metadata are never
touched. Each removed port is printed on its own line.

Exit status: 0 done (also when nothing was dead), 1 a dead port could not be
removed, 2 usage error or OVSDB/Docker could not be asked (nothing removed).";

#[derive(clap::Args, Debug)]
#[command(after_help = GC_HELP)]
pub struct GcArgs {
    /// Only this bridge [default: all bridges]
    #[arg(long, value_name = "BRIDGE")]
    pub bridge: Option<String>,

    /// Remove nothing: print the ports that would be removed
    #[arg(long)]
    pub dry_run: bool,

    /// Print the ports as a JSON array
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub system: SystemOpts,
}

const BIND_HELP: &str = "\
Runs SCRIPT for every running container the binding selects, now (unless
--no-run), and again each time one of them starts, as long as `ovs-run watch`
runs: after `docker restart` or a reboot the attachment comes back. The
binding is only recorded when the runs now succeed.

In ARGS, {container} becomes the container's name and {id} its full id.
ovs-run's own options (--label included) go before CONTAINER or SCRIPT;
everything after SCRIPT goes to the script.

Examples:
  ovs-run bind web scripts/attach.wasm br0 eth0 {container} --ipaddress=10.1.0.2/24
  ovs-run bind --label net=ovs scripts/attach.wasm br0 eth1 {container}
  ovs-run bindings
  ovs-run unbind 3f2a9c01b2d4";

#[derive(clap::Args, Debug)]
#[command(
    after_help = BIND_HELP,
    override_usage = "ovs-run bind [OPTIONS] CONTAINER SCRIPT [ARGS]...\n       ovs-run bind [OPTIONS] --label KEY=VALUE... SCRIPT [ARGS]..."
)]
pub struct BindArgs {
    /// Select containers by label instead of naming one (repeat: all must match)
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Do not run the script now: it first runs when a selected container next starts
    #[arg(long)]
    pub no_run: bool,

    /// CONTAINER (name, or at least 12 digits of its id; not with --label), SCRIPT, then the script's arguments
    #[arg(
        value_name = "CONTAINER|SCRIPT",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub words: Vec<String>,

    #[command(flatten)]
    pub state: StateOpts,

    #[command(flatten)]
    pub system: SystemOpts,

    #[command(flatten)]
    pub script: ScriptOpts,
}

#[derive(clap::Args, Debug)]
pub struct BindingsArgs {
    /// Print the bindings as a JSON array
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub state: StateOpts,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Attachments the bindings made stay; remove them with scripts/detach.wasm.")]
pub struct UnbindArgs {
    /// Binding ids (or unique prefixes), as `ovs-run bindings` shows them
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,

    #[command(flatten)]
    pub state: StateOpts,
}

const WATCH_HELP: &str = "\
At start-up, makes up for what happened while nothing watched: removes dead
container ports (as `ovs-run gc` does) and runs the bindings of running
containers that have not run since the container last started. Then, for each
container event: on start, removes the container's dead ports and runs its
bindings; on die and destroy, removes its ports. One line per action on
stdout; scripts' own output goes to stderr. Stops on SIGINT or SIGTERM, after
the action in progress.";

#[derive(clap::Args, Debug)]
#[command(after_help = WATCH_HELP)]
pub struct WatchArgs {
    /// Print each action as a JSON object on its own line
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub state: StateOpts,

    #[command(flatten)]
    pub system: SystemOpts,

    #[command(flatten)]
    pub script: ScriptOpts,
}

fn usage(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_USAGE
}

/// A failure whose status says whose fault it is (see [`crate::runner::exit`]).
fn fail_with(e: &CapError, msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    crate::runner::exit::for_error(e.kind)
}

fn failed(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_SCRIPT_ERROR
}

fn system(opts: &SystemOpts) -> Result<Arc<SystemBackend>, String> {
    Ok(Arc::new(opts.backend()?))
}

fn script_settings(opts: &ScriptOpts) -> Result<ScriptSettings, String> {
    if !(opts.timeout > 0.0 && opts.timeout <= 86_400.0) {
        return Err(format!("--timeout {} must be between 0 and 86400 seconds", opts.timeout));
    }
    if !(1..=65_536).contains(&opts.memory) {
        return Err(format!("--memory {} must be between 1 and 65536 MiB", opts.memory));
    }
    let cache = if opts.no_cache {
        CompileCache::disabled("--no-cache")
    } else {
        CompileCache::open(&opts.cache_dir.clone().unwrap_or_else(cache::default_dir))
    };
    let engine = Engine::new(cache).map_err(|e| format!("cannot start the Wasm engine: {e:#}"))?;
    Ok(ScriptSettings {
        engine: Arc::new(engine),
        datapath: match opts.datapath.as_deref() {
            Some(d) => d.parse().expect("clap checked the value"),
            None => Datapath::host_default(),
        },
        log_level: match opts.verbose {
            0 => LogLevel::Warn,
            1 => LogLevel::Info,
            _ => LogLevel::Debug,
        },
        limits: Limits {
            timeout: Duration::from_secs_f64(opts.timeout),
            memory: opts.memory << 20,
            max_calls: opts.max_calls,
            // stdout is for the actions, one per line.
            stdout_to_stderr: true,
        },
        policy_for: operator_policy(),
    })
}

fn open_store(opts: &StateOpts) -> Result<BindingStore, String> {
    BindingStore::open(&opts.state_dir).map_err(|e| e.message)
}

/// Print one line and flush, so whoever reads a pipe sees it at once.
fn line(s: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

pub(super) async fn gc(args: GcArgs) -> i32 {
    let sys = match system(&args.system) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let bridge = match args.bridge.as_deref().map(IfName::parse).transpose() {
        Ok(b) => b,
        Err(e) => return usage(format!("--bridge: {e}")),
    };
    let scope = Scope { bridge: bridge.as_ref(), container: None };
    let removals = match ports::collect(&sys, scope, args.dry_run).await {
        Ok(r) => r,
        Err(e) => return fail_with(&e, format!("gc: nothing removed: {e}")),
    };
    if args.json {
        line(serde_json::to_string_pretty(&removals).unwrap_or_default());
    } else {
        for r in &removals {
            line(r);
        }
        if removals.is_empty() {
            eprintln!("ovs-run: gc: no dead container ports");
        }
    }
    if removals.iter().any(|r| r.error.is_some()) {
        EXIT_SCRIPT_ERROR
    } else {
        0
    }
}

pub(super) async fn bind(args: BindArgs) -> i32 {
    verbose::set_level(args.script.verbose);
    let mut words = args.words.into_iter();
    let selector = if args.label.is_empty() {
        let Some(c) = words.next() else { return usage("bind: CONTAINER and SCRIPT are required") };
        match ContainerRef::parse(&c) {
            Ok(c) => Selector::Container(c),
            Err(e) => return usage(format!("bind: {e}")),
        }
    } else {
        match Selector::labels(&args.label) {
            Ok(s) => s,
            Err(e) => return usage(format!("bind: --label: {e}")),
        }
    };
    let Some(script) = words.next() else { return usage("bind: SCRIPT is required") };
    let script_args: Vec<String> = words.collect();
    let script = PathBuf::from(script);
    // A file (pinned or not) or oci://REF: from the local store (`ovs-run pull`), else its registry.
    let registry = crate::registry::Options::new(false, args.script.cache_dir.clone());
    let bytes = match crate::registry::source::load(&script, &registry).await {
        Ok((r, bytes)) => match r.pin.map(|pin| crate::vetting::check_pin(&bytes, &pin)) {
            Some(Err(e)) => return usage(format!("{}: refused: {e}", r.path.display())),
            _ => bytes,
        },
        Err(e) => return usage(e),
    };
    let settings = match script_settings(&args.script) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    // A script that cannot load would fail on every start: refuse it now.
    if let Err(e) = settings.engine.load(&bytes) {
        return usage(format!("{}: {e}", script.display()));
    }
    let store = match open_store(&args.state) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let source = match crate::registry::source::oci_ref(&script) {
        Some(_) => script,
        None => std::path::absolute(&script).unwrap_or(script),
    };
    let binding = Binding::new(selector, &bytes, source, script_args, None);
    if store.find(&binding.id).is_ok() {
        line(format!("already bound: {}", summary(&binding)));
        return 0;
    }
    let sys = match system(&args.system) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let lc = Lifecycle { system: sys, store, scripts: settings };

    // A name Docker does not know is most often a typo: refused, unless the
    // binding is explicitly for a container yet to come (--no-run).
    if let (Selector::Container(c), false) = (&binding.selector, args.no_run) {
        match lc.system.docker().inspect(c).await {
            Err(e) if e.kind == ErrorKind::NotFound => {
                return usage(format!(
                    "bind: container {c} does not exist: nothing ran, binding not recorded \
                     (bind with --no-run to run the script when a container of that name starts)"
                ))
            }
            Err(e) => return usage(format!("bind: {e}")),
            Ok(_) => {}
        }
    }
    let running = match selected_running(&lc, &binding).await {
        Ok(r) => r,
        Err(e) => return usage(format!("bind: {e}")),
    };
    if running.is_empty() {
        eprintln!(
            "ovs-run: warning: bind: no running container matches {}: the script runs when one starts (under `ovs-run watch`)",
            binding.selector
        );
    }
    if !args.no_run {
        let mut ok = Vec::new();
        for c in &running {
            let a = lc.apply_script(&binding, &bytes, c).await;
            line(&a);
            if !matches!(a, Action::Applied { .. }) {
                lc.store.forget_binding(&binding.id);
                let kept = if ok.is_empty() {
                    String::new()
                } else {
                    format!(" (it did run for {}; those changes stay)", ok.join(", "))
                };
                return failed(format!("binding not recorded: the script failed{kept}"));
            }
            ok.push(describe(&c.info));
        }
    }
    if let Err(e) = lc.store.add(&binding, &bytes) {
        lc.store.forget_binding(&binding.id);
        return failed(format!("binding not recorded: {e}"));
    }
    if args.no_run {
        // What runs now is taken as done for this start of each container
        // (typically attached by hand already); the binding takes over at the next.
        for c in &running {
            if let Err(e) = lc.store.set_applied(&binding.id, &c.info.id, &c.started_at) {
                return failed(format!("bind: {e}"));
            }
        }
    }
    line(format!("bound {}", summary(&binding)));
    0
}

/// The running containers `binding` selects. Naming a container by a short
/// id prefix is refused: the binding would not recognise it again.
async fn selected_running(lc: &Lifecycle, binding: &Binding) -> Result<Vec<Inspected>, CapError> {
    let docker = lc.system.docker();
    let candidates = match &binding.selector {
        Selector::Container(c) => match docker.inspect(c).await {
            Ok(i) if !binding.matches(&i.info) => {
                return Err(CapError::invalid(format!(
                    "'{c}' names {} by a short id prefix; bind by name or by at least 12 digits of the id",
                    describe(&i.info)
                )))
            }
            Ok(i) => return Ok(if i.info.running { vec![i] } else { vec![] }),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        },
        Selector::Labels(l) => {
            let pairs: Vec<(String, String)> = l.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            docker.list(&pairs).await?
        }
    };
    let mut out = Vec::new();
    for c in candidates {
        match docker.inspect(&ContainerRef::parse(&c.id)?).await {
            Ok(i) if i.info.running && binding.matches(&i.info) => out.push(i),
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn summary(b: &Binding) -> String {
    let tenant = b.tenant.as_deref().map(|t| format!(" [tenant {t}]")).unwrap_or_default();
    format!("{}: {} -> {} {}{tenant}", b.id, b.selector, b.script.file_name(), b.args.join(" "))
}

pub(super) fn bindings(args: BindingsArgs) -> i32 {
    let store = match open_store(&args.state) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let (all, problems) = match store.list() {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    for p in &problems {
        eprintln!("ovs-run: unreadable binding: {p}");
    }
    if args.json {
        line(serde_json::to_string_pretty(&all).unwrap_or_default());
    } else if all.is_empty() {
        eprintln!("ovs-run: no bindings in {}", store.dir().display());
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|b| {
                let script = format!("{} ({})", b.script.file_name(), &b.script.sha256[..8]);
                vec![b.id.clone(), b.selector.to_string(), script, b.args.join(" ")]
            })
            .collect();
        for l in super::table::render(&["ID", "SELECTOR", "SCRIPT", "ARGS"], &rows) {
            line(l);
        }
    }
    if problems.is_empty() {
        0
    } else {
        EXIT_SCRIPT_ERROR
    }
}

pub(super) fn unbind(args: UnbindArgs) -> i32 {
    let store = match open_store(&args.state) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    // All ids are checked before any binding is removed.
    let mut found = Vec::new();
    for id in &args.ids {
        match store.find(id) {
            Ok(b) => found.push(b),
            Err(e) => return usage(format!("unbind: {e}")),
        }
    }
    for b in found {
        if let Err(e) = store.remove(&b) {
            return failed(format!("unbind: {e}"));
        }
        line(format!("unbound {}", summary(&b)));
    }
    0
}

/// `a` as one JSON object with `time`: when it happened, RFC 3339 in UTC
/// with milliseconds (journald and log shippers sort and join on it).
fn timestamped(a: &Action, now: std::time::SystemTime) -> String {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("time".into(), crate::audit::rfc3339(now).into());
    }
    v.to_string()
}

pub(super) async fn watch(args: WatchArgs) -> i32 {
    verbose::set_level(args.script.verbose);
    let (sys, scripts, store) =
        match (system(&args.system), script_settings(&args.script), open_store(&args.state)) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return usage(e),
        };
    let json = args.json;
    let report: Reporter = Arc::new(move |a: &Action| {
        if json {
            line(timestamped(a, std::time::SystemTime::now()));
        } else {
            line(a);
        }
    });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    let cfg = WatchConfig { lifecycle: Lifecycle { system: sys, store, scripts }, report, stop };
    // Spawned (not awaited in place) so the compiler checks what the daemon
    // needs: the watcher is Send + 'static.
    match tokio::spawn(lifecycle::watch(cfg)).await {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => fail_with(&e, format!("watch: {e}")),
        Err(e) => failed(format!("watch: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn watch_json_lines_carry_a_utc_time_and_the_container_as_an_object() {
        let at = |secs: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
        assert_eq!(crate::audit::rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(crate::audit::rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(crate::audit::rfc3339(at(1_796_300_405, 123)), "2026-12-03T12:20:05.123Z");
        let id = "3f2a9c01b2d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12";
        let a = Action::Event {
            event: "start".into(),
            container: crate::lifecycle::ContainerLabel { name: "web".into(), id: id.into() },
        };
        assert_eq!(a.to_string(), "event start container web (3f2a9c01b2d4)");
        let j: serde_json::Value = serde_json::from_str(&timestamped(&a, at(0, 0))).unwrap();
        assert_eq!(j["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(j["container"], serde_json::json!({"name": "web", "id": id}));
        assert_eq!(j["action"], "event");
    }
}
