//! The `ovs-run` command line: the argument definitions and the dispatch to
//! each command. Running a script lives in [`run`]; each other command in the
//! module that owns its feature. Exit statuses: [`crate::runner::exit`].

mod argv;
mod generate;
pub(crate) mod lifecycle;
mod new;
mod policy;
mod progress;
mod ps;
pub(crate) mod recover;
mod run;
pub mod sandbox;
pub mod sandbox_hosts;
mod sandbox_reap;
pub mod scripts;
mod table;
pub mod vetting;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::verbose;

pub use crate::runner::exit::{EXIT_SCRIPT_ERROR, EXIT_TRAP, EXIT_UNAVAILABLE, EXIT_USAGE};

const AFTER_HELP: &str = "\
Everything after SCRIPT is passed to the script unchanged, hyphens included:
options for ovs-run go before SCRIPT.

SCRIPT is a file when it has a slash or ends in .wasm, else an installed
script's name (`ovs-run scripts` lists them). Options before a subcommand go
to it.

Examples:
  # attach container web to br0, like `ovs-docker add-port`
  ovs-run scripts/attach.wasm br0 eth0 web --ipaddress=172.17.0.2/16 --gateway=172.17.42.1
  # the same with the installed script, by name; then see what is attached where
  ovs-run attach br0 eth0 web --ipaddress=172.17.0.2/16
  ovs-run ps
  # show what it would do, without Docker or OVS
  ovs-run --dry-run --assume-container web scripts/attach.wasm br0 eth0 web --ipaddress=10.1.0.2/24
  # review a script, then run exactly the reviewed bytes, signed by a trusted key
  ovs-run inspect scripts/attach.wasm
  ovs-run --require-signed scripts/attach.wasm@sha256:HEX br0 eth0 web
  # run a vetted script published to a registry (see push, pull)
  ovs-run --require-signed oci://registry.example:5000/netops/attach@sha256:HEX br0 eth0 web
  # try ovs-run against a private Open vSwitch
  eval $(ovs-run sandbox up) && ovs-run scripts/seed-demo.wasm --container web

Exit status: 0 ok, 1 the script reported an error, 2 usage error (ovs-run's
options or the script's arguments) or a script that cannot be loaded, 3 the
script trapped or hit a limit (--timeout, --memory), 4 the system was
unavailable (OVSDB or Docker could not be reached).
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

    /// The script: a WebAssembly component file (e.g. scripts/attach.wasm), an installed script's name (attach), or from a registry: oci://HOST/REPO[:TAG][@sha256:HEX]; optionally pinned: SCRIPT@sha256:HEX
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

    /// OVN northbound database for the ovn capability: unix:PATH or tcp:HOST:PORT [default: $OVN_NB_DB, else unix:/var/run/ovn/ovnnb_db.sock]
    #[arg(long, value_name = "URI")]
    pub ovn_nb: Option<String>,

    /// Seconds add-port with an iface-id waits for ovn-controller to install the port
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::config::apply_timeout_secs)]
    pub ovn_bind_timeout: f64,

    /// Datapath for bridges a script creates with the host default [default: system if the openvswitch kernel module is loaded, else netdev]
    #[arg(long, value_name = "TYPE", value_parser = ["system", "netdev"])]
    pub datapath: Option<String>,

    /// Stop the script after this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub timeout: f64,

    /// Memory cap for the script, in MiB
    #[arg(long, value_name = "MIB", default_value = "64")]
    pub memory: usize,

    /// Seconds to wait for ovs-vswitchd to apply each OVSDB change (plus 50 ms
    /// per port of a batch)
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::cli::apply_timeout_secs)]
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
    #[arg(long, value_name = "DIR", env = "OVS_RUN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use the compile cache
    #[arg(long)]
    pub no_cache: bool,

    /// Where runs keep their journals (a killed run is rolled back from it by the next ovs-run) [default: /run/ovs-run/journal for root]
    #[arg(long, value_name = "DIR", env = "OVS_RUN_JOURNAL_DIR")]
    pub journal_dir: Option<PathBuf>,

    /// Most capability calls one run may make
    #[arg(long, value_name = "N", default_value = "100000")]
    pub max_calls: u64,

    /// Refuse the script unless a key of the trust store signed exactly these bytes (checked before it is compiled)
    #[arg(long)]
    pub require_signed: bool,

    /// Trust store for --require-signed: a directory of public keys (*.pub) [default: /etc/ovs-run/trusted-keys]
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,

    /// More output: -v shows the script's info logs and what ovs-run does, -vv debug
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Show only the script's error logs
    #[arg(short, long)]
    pub quiet: bool,

    /// Run under this Cedar policy file as a tenant (--tenant): every call is authorized against it
    #[arg(long, value_name = "FILE", requires = "tenant")]
    pub policy: Option<PathBuf>,

    /// The tenants (Cedar entities, JSON) for --policy [default: the policy file with .json, e.g. tenants.cedar -> tenants.json]
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub tenants: Option<PathBuf>,

    /// The tenant to run as, under --policy
    #[arg(long, value_name = "NAME", requires = "policy")]
    pub tenant: Option<String>,

    /// Append one JSON line per capability call and per run to FILE
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    /// Reach the registry of an oci:// SCRIPT over plain HTTP (a registry on loopback or in a lab)
    #[arg(long)]
    pub insecure: bool,
}

impl RunArgs {
    /// The system options among these (the same as the other commands'
    /// [`SystemOpts`], whose parsing and backend they then share).
    pub fn system_opts(&self) -> crate::config::SystemOpts {
        crate::config::SystemOpts {
            ovsdb: self.ovsdb.clone(),
            docker: self.docker.clone(),
            ovn_nb: self.ovn_nb.clone(),
            ovn_bind_timeout: self.ovn_bind_timeout,
            apply_timeout: self.apply_timeout,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Review a script without running it: digest, metadata, capabilities it imports, WIT world, signatures
    Inspect(vetting::InspectArgs),
    /// Signing keys: generate a key pair, list a trust store, show a key's id
    Key {
        #[command(subcommand)]
        action: vetting::KeyAction,
    },
    /// Sign a script with a secret key (a script can carry several signatures)
    Sign(vetting::SignArgs),
    /// Check that a key of the trust store signed a script, and that it has not changed since
    Verify(vetting::VerifyArgs),
    /// Embed metadata (name, version, description, authors, source, usage) in a script before signing it
    Metadata {
        #[command(subcommand)]
        action: vetting::MetadataAction,
    },
    /// A private Open vSwitch (ovsdb-server + ovs-vswitchd) to try ovs-run without touching the host's switch
    Sandbox {
        #[command(subcommand)]
        action: sandbox::Action,
    },
    /// Roll back runs that were killed before they finished (every script run also does this first)
    Recover {
        /// Only show what would be undone
        #[arg(long)]
        list: bool,
        /// Journal directory [default: /run/ovs-run/journal for root]
        #[arg(long, value_name = "DIR", env = "OVS_RUN_JOURNAL_DIR")]
        journal_dir: Option<PathBuf>,
    },
    /// Remove OVS ports (and host veths) whose container is gone or stopped, or whose interface is in error
    Gc(lifecycle::GcArgs),
    /// Run a script for a container now and every time it starts again (see `watch`)
    Bind(lifecycle::BindArgs),
    /// List the bindings
    Bindings(lifecycle::BindingsArgs),
    /// Remove bindings
    Unbind(lifecycle::UnbindArgs),
    /// Follow Docker events: re-run bindings when containers start, remove their ports when they die
    Watch(lifecycle::WatchArgs),
    /// Check Cedar tenant policies against the ovs-run schema, or print the schema
    Policy {
        #[command(subcommand)]
        action: policy::Action,
    },
    /// Run tenants' scripts as root, under a Cedar policy, for clients of a Unix socket (see `ovs-run submit`)
    Serve(crate::daemon::serve::ServeArgs),
    /// Run a script through an `ovs-run serve` daemon, as the tenant your uid maps to
    Submit(crate::daemon::submit::SubmitArgs),
    /// Docker network and IPAM driver: `docker network create -d ovs-run` puts containers on OVS bridges
    DockerPlugin(crate::docker_plugin::Args),
    /// Publish a script to an OCI registry (the Wasm OCI artifact layout; its signatures travel inside)
    Push(crate::registry::cli::PushArgs),
    /// Fetch a script from an OCI registry into the local store and print its digest (--list: what the store holds)
    Pull(crate::registry::cli::PullArgs),
    /// List container ports: container, interface, bridge, VLAN, addresses, state, what manages them
    #[command(visible_alias = "ls")]
    Ps(ps::PsArgs),
    /// One container's ports in detail
    Show(ps::ShowArgs),
    /// List the installed scripts (run one by name: `ovs-run attach br0 eth0 web`)
    Scripts(scripts::ScriptsArgs),
    /// Make a script project (Rust or Python) that builds against the ovs-run SDK
    New(new::NewArgs),
    /// Manual pages and shell completions, from this command line's definition (for packaging)
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: generate::What,
    },
}

/// `--apply-timeout` of every command: seconds, checked where it is
/// parsed so that no command can take a value `Duration` would reject.
pub(crate) use crate::config::apply_timeout_secs;

/// Everything after SCRIPT belongs to the script, but clap still reads a
/// `--help` or `-V` right after SCRIPT as its own. A `--` put after SCRIPT
/// (when the next word is an option) hands the rest to the script untouched.
fn script_args_verbatim(mut argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let takes_value = |word: &str| {
        cmd.get_arguments().any(|a| {
            a.get_action().takes_values()
                && (a.get_long().is_some_and(|l| word == format!("--{l}"))
                    || a.get_short().is_some_and(|c| word == format!("-{c}")))
        })
    };
    let mut i = 1;
    while i < argv.len() {
        let Some(word) = argv[i].to_str() else { return argv };
        if word == "--" {
            return argv;
        }
        if !word.starts_with('-') {
            if !argv::is_subcommand(&cmd, word)
                && argv.get(i + 1).and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('-') && n != "--")
            {
                argv.insert(i + 1, "--".into());
            }
            return argv;
        }
        // `--opt VALUE` (not `--opt=VALUE`): skip the value too.
        i += if takes_value(word) { 2 } else { 1 };
    }
    argv
}

/// Parse the command line and run; returns the exit status.
pub fn main() -> i32 {
    let argv = match argv::prepare(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let cli = match Cli::try_parse_from(script_args_verbatim(argv)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    verbose::init(cli.run.verbose, cli.run.json);
    // Into the sandbox's network namespace, if the environment names one,
    // before the runtime starts its threads (they inherit it). `sandbox`
    // itself manages namespaces and stays where it was started.
    if !matches!(cli.command, Some(Command::Sandbox { .. })) {
        if let Err(e) = sandbox::enter_netns_from_env() {
            eprintln!("ovs-run: {e}");
            return EXIT_USAGE;
        }
    }
    // `submit` is a client that waits on one socket: a runtime on this
    // thread, no worker threads to start (it runs once per tenant call).
    let mut builder = match cli.command {
        Some(Command::Submit(_)) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ovs-run: cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    match cli.command {
        Some(Command::Sandbox { action }) => sandbox::run(action),
        Some(Command::Recover { list, journal_dir }) => {
            let dir = journal_dir.unwrap_or_else(crate::journal::store::default_dir);
            if rt.block_on(recover::recover_all(&dir, list, false)) {
                0
            } else {
                1
            }
        }
        Some(Command::Inspect(args)) => vetting::inspect(args),
        Some(Command::Key { action }) => vetting::key(action),
        Some(Command::Sign(args)) => vetting::sign(args),
        Some(Command::Verify(args)) => vetting::verify(args),
        Some(Command::Metadata { action }) => vetting::metadata(action),
        Some(Command::Gc(args)) => rt.block_on(lifecycle::gc(args)),
        Some(Command::Bind(args)) => rt.block_on(lifecycle::bind(args)),
        Some(Command::Bindings(args)) => lifecycle::bindings(args),
        Some(Command::Unbind(args)) => lifecycle::unbind(args),
        Some(Command::Watch(args)) => rt.block_on(lifecycle::watch(args)),
        Some(Command::Policy { action }) => policy::run(action),
        Some(Command::Serve(args)) => rt.block_on(crate::daemon::serve::run(args)),
        Some(Command::Submit(args)) => rt.block_on(crate::daemon::submit::run(args)),
        Some(Command::DockerPlugin(args)) => crate::docker_plugin::main(args, &rt),
        Some(Command::Push(args)) => rt.block_on(crate::registry::cli::push(args)),
        Some(Command::Pull(args)) => rt.block_on(crate::registry::cli::pull(args)),
        Some(Command::Ps(args)) => rt.block_on(ps::ps(args)),
        Some(Command::Show(args)) => rt.block_on(ps::show(args)),
        Some(Command::Scripts(args)) => scripts::list(args),
        Some(Command::New(args)) => new::run(args),
        Some(Command::Generate { what }) => generate::run(what),
        None => {
            let script = cli.script.expect("clap requires SCRIPT");
            rt.block_on(run::run_script(script, cli.script_args, cli.run))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{apply_timeout_secs, script_args_verbatim, Cli};
    use clap::Parser;

    #[test]
    fn apply_timeout_is_range_checked_by_every_command() {
        assert_eq!(apply_timeout_secs("0.5"), Ok(0.5));
        assert_eq!(apply_timeout_secs("3600"), Ok(3600.0));
        for bad in ["0", "-1", "3601", "NaN", "inf", "ten"] {
            assert!(apply_timeout_secs(bad).is_err(), "{bad} accepted");
        }
        // serve used to take any number, and a negative one made every
        // run it served panic.
        for cmd in [
            "ovs-run --apply-timeout=-1 x.wasm",
            "ovs-run serve --apply-timeout=-1",
            "ovs-run watch --apply-timeout=0",
        ] {
            let e = Cli::try_parse_from(cmd.split(' ')).err().unwrap_or_else(|| panic!("{cmd} accepted"));
            assert!(e.to_string().contains("--apply-timeout"), "{cmd}: {e}");
        }
    }

    fn words(s: &str) -> Vec<String> {
        let argv = s.split(' ').map(std::ffi::OsString::from).collect();
        script_args_verbatim(argv).into_iter().map(|w| w.into_string().unwrap()).collect()
    }

    #[test]
    fn options_after_script_go_to_the_script() {
        assert_eq!(words("ovs-run a.wasm --help"), words("ovs-run a.wasm -- --help"));
        assert_eq!(words("ovs-run a.wasm --help"), ["ovs-run", "a.wasm", "--", "--help"]);
        // A `--` the user wrote already does it.
        assert_eq!(words("ovs-run a.wasm -- --help"), ["ovs-run", "a.wasm", "--", "--help"]);
        assert_eq!(
            words("ovs-run --ovsdb unix:/x -v --timeout 5 a.wasm -V"),
            ["ovs-run", "--ovsdb", "unix:/x", "-v", "--timeout", "5", "a.wasm", "--", "-V"]
        );
        // Nothing to do: the script's first argument is positional, or a subcommand.
        assert_eq!(words("ovs-run a.wasm br0 --help"), ["ovs-run", "a.wasm", "br0", "--help"]);
        assert_eq!(words("ovs-run inspect --json a.wasm"), ["ovs-run", "inspect", "--json", "a.wasm"]);
        assert_eq!(words("ovs-run --help"), ["ovs-run", "--help"]);
    }
}
