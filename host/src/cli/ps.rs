//! `ovs-run ps` (alias `ls`) and `ovs-run show CONTAINER`: what is attached
//! where (see [`crate::inventory`]). Read only: nothing here changes the
//! system, so no journal and no gate.

use std::path::PathBuf;

use super::lifecycle::SystemOpts;
use super::table;
use super::{EXIT_SCRIPT_ERROR, EXIT_USAGE};
use crate::backend::system::SystemBackend;
use crate::error::CapError;
use crate::inventory::{self, Filter, Inventory, Row};
use crate::lifecycle::bindings::DEFAULT_STATE_DIR;

const PS_HELP: &str = "\
Lists every port that leads into a container: ports made by ovs-run and by
ovs-docker (an OVS interface with external_ids container_iface and
container_id or container_full_id). Addresses, MAC and MTU are read inside
the container's network namespace. STATE is ok, or the first thing wrong:
container gone/stopped, ovs error, ofport -1, veth gone (its host end is
missing), veth elsewhere (it no longer leads into the container, as after
`docker restart`: `ovs-run gc` removes such ports). MANAGED BY is a binding
(see `ovs-run bindings`), a Docker network, or \"by hand\".

Exit status: 0 listed (also when there is nothing), 2 usage error, 4 OVSDB
could not be reached.";

#[derive(clap::Args, Debug)]
#[command(after_help = PS_HELP)]
pub struct PsArgs {
    /// Only ports on this bridge
    #[arg(long, value_name = "BRIDGE")]
    pub bridge: Option<String>,

    /// Only ports of this container (name, id or id prefix)
    #[arg(long, value_name = "CONTAINER")]
    pub container: Option<String>,

    /// Print the ports as a JSON array
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub inv: InventoryOpts,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The container: name, id or id prefix
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// Print the ports as a JSON array
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub inv: InventoryOpts,
}

/// Where to look.
#[derive(clap::Args, Debug)]
pub struct InventoryOpts {
    /// Where bindings are kept (to tell which ports a binding manages)
    #[arg(long, value_name = "DIR", env = "OVS_RUN_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,

    #[command(flatten)]
    pub system: SystemOpts,
}

fn usage(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_USAGE
}

/// A failed read, printed, as its exit status: an OVSDB that cannot be
/// reached is the system's fault (4), not the operator's input (2).
fn failed(cmd: &str, e: CapError) -> i32 {
    eprintln!("ovs-run: {cmd}: {}", e.message);
    crate::runner::exit::for_error(e.kind)
}

async fn read(opts: &InventoryOpts, filter: &Filter) -> Result<Inventory, CapError> {
    let cfg = opts.system.config().map_err(CapError::invalid)?;
    let uri = cfg.ovsdb.clone();
    let sys = SystemBackend::new(cfg);
    let inv = inventory::gather(&sys, &uri, Some(&opts.state_dir), filter).await?;
    for w in &inv.warnings {
        eprintln!("ovs-run: warning: {w}");
    }
    Ok(inv)
}

fn print_json(rows: &[Row]) {
    println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
}

pub(super) async fn ps(args: PsArgs) -> i32 {
    let bridge = match args.bridge.as_deref().map(inventory::bridge_filter).transpose() {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let filter = Filter { bridge, container: args.container.clone() };
    let inv = match read(&args.inv, &filter).await {
        Ok(i) => i,
        Err(e) => return failed("ps", e),
    };
    if args.json {
        print_json(&inv.rows);
        return 0;
    }
    if inv.rows.is_empty() {
        eprintln!("ovs-run: no container ports{}", filter_text(&filter));
        return 0;
    }
    let header =
        ["CONTAINER", "ID", "IFACE", "BRIDGE", "PORT", "VLAN", "ADDRESSES", "MTU", "STATE", "MANAGED BY"];
    let rows: Vec<Vec<String>> = inv
        .rows
        .iter()
        .map(|r| {
            vec![
                r.container.label().to_string(),
                r.container.short_id().to_string(),
                r.iface.clone(),
                r.bridge.clone(),
                r.port.clone(),
                vlan_text(r),
                if r.addresses.is_empty() { "-".into() } else { r.addresses.join(",") },
                r.mtu.map_or("-".into(), |m| m.to_string()),
                r.health(),
                r.managed_by.to_string(),
            ]
        })
        .collect();
    for l in table::render(&header, &rows) {
        println!("{l}");
    }
    0
}

fn filter_text(f: &Filter) -> String {
    let mut s = String::new();
    if let Some(b) = &f.bridge {
        s += &format!(" on bridge {b}");
    }
    if let Some(c) = &f.container {
        s += &format!(" for container {c}");
    }
    s
}

fn vlan_text(r: &Row) -> String {
    match (r.vlan, r.trunks.is_empty()) {
        (Some(v), true) => v.to_string(),
        (None, true) => "-".into(),
        (v, false) => {
            let t: Vec<String> = r.trunks.iter().map(u16::to_string).collect();
            format!("{}trunks {}", v.map(|v| format!("{v} ")).unwrap_or_default(), t.join(","))
        }
    }
}

pub(super) async fn show(args: ShowArgs) -> i32 {
    let filter = Filter { bridge: None, container: Some(args.container.clone()) };
    let inv = match read(&args.inv, &filter).await {
        Ok(i) => i,
        Err(e) => return failed("show", e),
    };
    if args.json {
        print_json(&inv.rows);
    }
    if inv.rows.is_empty() {
        eprintln!("ovs-run: show: container {} has no ports on any bridge", args.container);
        return EXIT_SCRIPT_ERROR;
    }
    if args.json {
        return 0;
    }
    let first = &inv.rows[0].container;
    println!("Container {}", first.label());
    println!("  id:       {}", first.id.as_deref().unwrap_or("-"));
    println!("  status:   {}", serde_plain(&first.status));
    for r in &inv.rows {
        println!();
        println!("Interface {} (bridge {}, port {})", r.iface, r.bridge, r.port);
        let field = |k: &str, v: String| println!("  {:<12}{v}", format!("{k}:"));
        field("state", r.health());
        field("vlan", vlan_text(r));
        field("addresses", if r.addresses.is_empty() { "-".into() } else { r.addresses.join(", ") });
        field("mac", r.mac.clone().unwrap_or_else(|| "-".into()));
        field("mtu", r.mtu.map_or("-".into(), |m| m.to_string()));
        field("veth", serde_plain(&r.state.veth));
        field("ofport", r.state.ofport.map_or("-".into(), |o| o.to_string()));
        field("link", r.state.link_state.clone().unwrap_or_else(|| "-".into()));
        if let Some(e) = &r.state.ovs_error {
            field("ovs error", e.clone());
        }
        if let Some(n) = &r.state.note {
            field("note", n.clone());
        }
        field("managed by", r.managed_by.to_string());
        field("made by", r.created_by.clone().unwrap_or_else(|| "ovs-docker or another tool".into()));
        if let Some(g) = r.container.given.as_deref().filter(|g| Some(*g) != r.container.name.as_deref()) {
            field("attached as", g.to_string());
        }
    }
    0
}

/// A unit enum as its JSON name ("running", "veth-gone").
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
