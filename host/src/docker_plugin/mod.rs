//! `ovs-run docker-plugin`: a Docker network driver and IPAM driver, so that
//! `docker network create -d ovs-run` networks put containers on an Open
//! vSwitch bridge, with their address, VLAN and MTU, from the moment they
//! start, and take them off when they stop.
//!
//! - [`protocol`]: the calls' JSON bodies and the options, parsed once;
//! - [`server`]: HTTP over the unix socket Docker finds the plugin by
//!   (`/run/docker/plugins/NAME.sock`);
//! - [`driver`]: the calls, every system change through a journaled gate;
//! - [`hooks`]: network scripts, run at Join and Leave;
//! - [`ipam`]: pools and addresses;
//! - [`state`]: what survives a restart (networks, endpoints, pools), on disk.

pub mod driver;
pub mod hooks;
pub mod ipam;
pub mod protocol;
pub mod server;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::SystemOpts;
use crate::config::DEFAULT_STATE_DIR;
use crate::error::{CapError, CapResult};
use crate::types::Datapath;

/// Exit status of a plugin that could not start or serve.
const EXIT_FAILED: i32 = 1;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,

    /// Driver name: `docker network create -d NAME`, socket SOCKET-DIR/NAME.sock
    #[arg(long, default_value = "ovs-run", global = true)]
    pub name: String,

    /// State directory; the plugin keeps its networks, endpoints and addresses in DIR/docker-plugin/NAME
    #[arg(long, value_name = "DIR", env = "OVS_RUN_STATE_DIR", default_value = DEFAULT_STATE_DIR, global = true)]
    pub state_dir: PathBuf,

    /// Where Docker looks for plugin sockets
    #[arg(long, value_name = "DIR", default_value = "/run/docker/plugins")]
    pub socket_dir: PathBuf,

    /// Datapath for bridges a network creates [default: system if the openvswitch kernel module is loaded, else netdev]
    #[arg(long, value_name = "TYPE", value_parser = ["system", "netdev"])]
    pub datapath: Option<String>,

    /// Append one JSON line per change (and its policy decision) to FILE, as `ovs-run --audit` does
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    #[command(flatten)]
    pub system: SystemOpts,

    /// Compile cache of network scripts (`-o script=`)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Refuse a network script unless a key of the trust store signed exactly its bytes
    #[arg(long)]
    pub require_signed: bool,

    /// Trust store for --require-signed: a directory of public keys (*.pub) [default: /etc/ovs-run/trusted-keys]
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,

    /// -v: one line per call with its time
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List the networks and endpoints the plugin manages (from its state)
    Status {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
}

/// A plugin name Docker can look up, and a file name.
fn check_name(name: &str) -> CapResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(CapError::invalid(format!(
            "--name {}: a plugin name is 1-64 letters, digits, '-', '_' or '.'",
            crate::types::shorten(name)
        )))
    }
}

fn plugin_dir(args: &Args) -> PathBuf {
    args.state_dir.join("docker-plugin").join(&args.name)
}

/// `ovs-run docker-plugin [status]`; returns the exit status.
pub fn main(args: Args, rt: &tokio::runtime::Runtime) -> i32 {
    crate::verbose::set_level(args.verbose);
    if let Err(e) = check_name(&args.name) {
        eprintln!("ovs-run docker-plugin: {e}");
        return crate::runner::exit::EXIT_USAGE;
    }
    let r = match &args.action {
        Some(Action::Status { json }) => status(&args, *json),
        None => rt.block_on(run(&args)),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ovs-run docker-plugin: {e}");
            EXIT_FAILED
        }
    }
}

async fn run(args: &Args) -> CapResult<()> {
    let system = args.system.config().map_err(CapError::invalid)?;
    let datapath = match &args.datapath {
        Some(d) => d.parse()?,
        None => Datapath::host_default(),
    };
    let dir = plugin_dir(args);
    let store = state::Store::open(&dir)?;
    let trust = if args.require_signed {
        let d = args.trust.clone().unwrap_or_else(crate::vetting::trust::default_dir);
        let t =
            crate::vetting::TrustStore::open(&d).map_err(|e| CapError::invalid(format!("--trust: {e}")))?;
        if t.is_empty() {
            return Err(CapError::invalid(format!(
                "--require-signed: {} holds no keys (*.pub): every network script would be refused",
                t.describe()
            )));
        }
        Some(t)
    } else {
        None
    };
    let cache = args.cache_dir.clone().unwrap_or_else(crate::engine::cache::default_dir);
    let hooks = hooks::Hooks::new(&cache, trust)?;
    let backend = args.system.backend().map_err(CapError::invalid)?;
    let mut driver =
        driver::Driver::new(&args.name, store, (system, backend), dir.join("journal"), datapath, hooks)?;
    if let Some(path) = &args.audit {
        let log = crate::audit::AuditLog::open(path)
            .map_err(|e| CapError::invalid(format!("--audit {}: {e}", path.display())))?;
        driver = driver.with_audit(log);
    }
    let driver = Arc::new(driver);
    driver.recover().await?;
    let path = args.socket_dir.join(format!("{}.sock", args.name));
    let socket = server::bind(&path)?;
    eprintln!("ovs-run docker-plugin: driver {} listening on {}", args.name, path.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CapError::failed(format!("cannot handle SIGTERM: {e}")))?;
    tokio::select! {
        r = server::serve(driver, &socket) => r,
        _ = term.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

fn status(args: &Args, json: bool) -> CapResult<()> {
    let st = state::load(&plugin_dir(args).join("state.json"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st).map_err(|e| CapError::failed(e.to_string()))?);
        return Ok(());
    }
    println!("driver {}: {} network(s), {} endpoint(s)", args.name, st.networks.len(), st.endpoints.len());
    for (id, n) in &st.networks {
        let gw = n.gateway.map(|g| g.to_string()).unwrap_or_else(|| "-".into());
        let vlan = n.options.vlan.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        println!("network {:.12}  bridge {}  gateway {gw}  vlan {vlan}", id, n.bridge);
        for (eid, e) in st.endpoints.iter().filter(|(_, e)| &e.network == id) {
            let addr = e.address.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
            let joined = if e.sandbox.is_some() { "joined" } else { "created" };
            println!("  endpoint {:.12}  port {}  address {addr}  {joined}", eid, e.port);
        }
    }
    Ok(())
}
