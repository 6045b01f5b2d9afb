//! `ovs-run sandbox up --hosts N [--ovn]`: N simulated hosts on one machine,
//! to try tunnel meshes and OVN without N machines.
//!
//! Each host (A, B, C, ...) is a one-host sandbox of the usual kind in
//! DIR/A, DIR/B, ... (a network namespace of its own with its own
//! ovsdb-server and ovs-vswitchd, userspace datapath), so everything that
//! works with one sandbox works with `--dir DIR/B`. The hosts are joined by
//! an underlay: a Linux bridge `ul0` in a namespace of its own and one veth
//! per host, `eth0` inside the host. On the userspace datapath a tunnel's
//! underlay address must sit on an OVS internal port, so each host gets
//! the recipe that works here (../shared/notes/multihost.md): bridge
//! `br-phy` (netdev) holding `eth0`, the address on `br-phy`'s internal
//! port, ARP off on `eth0` (or the kernel answers ARP for that address
//! with `eth0`'s MAC too, and a peer that caches it loses its tunnels).
//! Each `br-phy` has a fixed MAC, and every host knows its peers' as
//! permanent neighbours, so tunnel neighbour seeding always finds them.
//!
//! With `--ovn`, host A also runs OVN's central part (northbound and
//! southbound ovsdb-servers, ovn-northd; the southbound one listens on A's
//! underlay address) and every host an ovn-controller with the settings it
//! needs here (system-id, ovn-remote, Geneve on the underlay address, a
//! netdev br-int). `up` returns once every host has its Geneve tunnels to
//! all others, with their neighbours seeded.
//!
//! The underlay is made natively (rtnetlink, the OVSDB protocol, the
//! vswitchd control socket); other programs run only to start daemons.

use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::neighbour::NeighbourState;
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec};
use serde_json::{json, Value};

use super::sandbox::{self as one, NETNS_DIR};
use crate::backend::netlink::netns::Namespace;
use crate::types::{NetnsName, Target};

/// `--help` of `sandbox up --hosts`: what a host is and how to use one.
pub const HOSTS_HELP: &str = "\
Start N simulated hosts (2-8), named A, B, C, ... Each host is a sandbox of
its own in DIR/A, DIR/B, ...: a network namespace with its own ovsdb-server
and ovs-vswitchd (userspace datapath). The hosts are joined by an underlay
switch (a Linux bridge in a namespace of its own); each host's underlay
address, 172.31.0.10 for A, .11 for B, ..., sits on the OVS bridge br-phy,
which holds the host's underlay NIC eth0.

Run a command \"on\" a host (its namespace, its Open vSwitch, and with --ovn
the northbound database in OVN_NB_DB):
  ovs-run sandbox exec --host B -- ovs-run scripts/mesh.wasm br-mesh --kind=vxlan 172.31.0.10
  ovs-run sandbox exec --host B -- ovs-vsctl show
Its environment, to use in a shell: eval \"$(ovs-run sandbox env --host B)\".
Stop everything (every host, the underlay, OVN): ovs-run sandbox down.";

/// The underlay: 172.31.0.0/24, host i at .(10 + i).
const UNDERLAY_NET: [u8; 3] = [172, 31, 0];
const UNDERLAY_FIRST: u8 = 10;
const UNDERLAY_PREFIX: u8 = 24;
/// The file in DIR that says "a sandbox of several hosts": its host letters.
const HOSTS_FILE: &str = "hosts";
/// The file in DIR naming the underlay switch's namespace.
const UNDERLAY_NETNS_FILE: &str = "underlay-netns";
/// OVN's central databases and ovn-northd: DIR/central.
const CENTRAL: &str = "central";
const NB_SCHEMA: &str = "/usr/share/ovn/ovn-nb.ovsschema";
const SB_SCHEMA: &str = "/usr/share/ovn/ovn-sb.ovsschema";
const SB_PORT: u16 = 6642;
/// How long OVN gets to bring up every chassis and its tunnels.
const OVN_TIMEOUT: Duration = Duration::from_secs(30);
const OVS_TIMEOUT: Duration = Duration::from_secs(10);

/// A host's name: one letter, A for the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostName(u8);

impl HostName {
    fn nth(i: usize) -> HostName {
        HostName(b'A' + i as u8)
    }

    fn index(self) -> usize {
        usize::from(self.0 - b'A')
    }

    /// Its underlay address.
    fn ip(self) -> Ipv4Addr {
        let [a, b, c] = UNDERLAY_NET;
        Ipv4Addr::new(a, b, c, UNDERLAY_FIRST + self.index() as u8)
    }

    /// The fixed MAC of its br-phy: locally administered, the address's last octet.
    fn mac(self) -> [u8; 6] {
        let [a, b, c] = UNDERLAY_NET;
        [0x02, a, b, c, 0, UNDERLAY_FIRST + self.index() as u8]
    }

    fn dir(self, dir: &Path) -> PathBuf {
        dir.join(self.to_string())
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 as char)
    }
}

impl FromStr for HostName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.as_bytes() {
            // Any letter: whether the sandbox has that host is checked against it.
            [c] if c.is_ascii_alphabetic() => Ok(HostName(c.to_ascii_uppercase())),
            _ => Err(format!("'{s}' is not a host name: hosts are letters, A for the first")),
        }
    }
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// DIR as an absolute path: the daemons detach into `/` and the printed
/// environment is used from anywhere, so no path given to them may be relative.
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// DIR holds a sandbox of several hosts.
pub fn is_multi(dir: &Path) -> bool {
    dir.join(HOSTS_FILE).exists()
}

/// The hosts `up` recorded in DIR.
fn hosts_of(dir: &Path) -> Vec<HostName> {
    fs::read_to_string(dir.join(HOSTS_FILE))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|h| h.parse().ok())
        .collect()
}

fn names(hosts: &[HostName]) -> String {
    hosts.iter().map(HostName::to_string).collect::<Vec<_>>().join(", ")
}

/// The error for `exec`/`env` without `--host` on a sandbox of several hosts.
pub fn pick_a_host(dir: &Path) -> String {
    format!(
        "{} holds several hosts ({}): pick one with --host, e.g. --host A",
        dir.display(),
        names(&hosts_of(dir))
    )
}

/// `host`, if DIR's sandbox has it; else the error naming those it has.
fn known(dir: &Path, host: HostName) -> Result<(), String> {
    let hosts = hosts_of(dir);
    if hosts.is_empty() {
        return Err(format!(
            "no sandbox of several hosts in {} (start one: ovs-run sandbox up --hosts 3 --dir {0})",
            dir.display()
        ));
    }
    if hosts.contains(&host) {
        Ok(())
    } else {
        Err(format!("no host {host} in the sandbox in {}: its hosts are {}", dir.display(), names(&hosts)))
    }
}

/// Host `host`'s environment: the one-host sandbox's, with the compile
/// cache shared by all hosts, the vswitchd control socket named, and OVN's
/// databases when OVN runs.
fn env_of(dir: &Path, host: HostName) -> Vec<(&'static str, Option<String>)> {
    let hdir = host.dir(dir);
    let mut env = one::env_of(&hdir);
    // One cache for all hosts: a script is compiled once, not once per host.
    for (k, v) in &mut env {
        if *k == "OVS_RUN_CACHE_DIR" {
            *v = Some(dir.join("cache").display().to_string());
        }
    }
    env.push((crate::backend::unixctl::CTL_ENV, Some(hdir.join("vswitchd.ctl").display().to_string())));
    let central = dir.join(CENTRAL);
    if central.exists() {
        env.push(("OVN_NB_DB", Some(format!("unix:{}", central.join("nb.sock").display()))));
        env.push(("OVN_SB_DB", Some(format!("unix:{}", central.join("sb.sock").display()))));
        // Where ovn-appctl finds this host's ovn-controller.
        env.push(("OVN_RUNDIR", Some(hdir.display().to_string())));
    } else {
        env.push(("OVN_NB_DB", None));
        env.push(("OVN_SB_DB", None));
    }
    env
}

/// `sandbox env --host H`.
pub fn env(dir: &Path, host: HostName) -> i32 {
    let dir = &absolute(dir);
    if let Err(e) = known(dir, host) {
        eprintln!("ovs-run sandbox: {e}");
        return crate::cli::EXIT_USAGE;
    }
    for (k, v) in env_of(dir, host) {
        match v {
            Some(v) => println!("export {k}={v}"),
            None => println!("unset {k}"),
        }
    }
    0
}

/// `sandbox exec --host H -- COMMAND`: COMMAND in H's namespace with H's
/// environment, in this process's place.
pub fn exec(dir: &Path, host: HostName, command: &[String]) -> i32 {
    let dir = &absolute(dir);
    if let Err(e) = known(dir, host) {
        eprintln!("ovs-run sandbox: {e}");
        return crate::cli::EXIT_USAGE;
    }
    let ns = match open_host_ns(dir, host) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("ovs-run sandbox: {e}");
            return 1;
        }
    };
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    for (k, v) in env_of(dir, host) {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    one::in_netns(&mut cmd, &ns);
    let e = cmd.exec();
    eprintln!("ovs-run sandbox: cannot run {}: {e}", command[0]);
    127
}

/// Host `host`'s network namespace, opened.
fn open_host_ns(dir: &Path, host: HostName) -> Result<OwnedFd, String> {
    let hdir = host.dir(dir);
    let name = one::netns_of(&hdir)
        .ok_or_else(|| format!("host {host}: no namespace recorded in {}", hdir.display()))?;
    let path = Path::new(NETNS_DIR).join(&name);
    fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| format!("host {host}: cannot open {}: {e}", path.display()))
}

/// `sandbox up --hosts N [--ovn]`: everything, or on failure nothing.
pub fn up(dir: &Path, n: u8, ovn: bool) -> Result<(), String> {
    let dir = &absolute(dir);
    if is_multi(dir) || dir.join("db.sock").exists() {
        return Err(format!(
            "a sandbox already runs in {} (stop it: ovs-run sandbox down --dir {0})",
            dir.display()
        ));
    }
    let hosts: Vec<HostName> = (0..usize::from(n)).map(HostName::nth).collect();
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Recorded first: `down` then finds whatever part of it was made.
    fs::write(dir.join(HOSTS_FILE), names(&hosts).replace(", ", " ") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", dir.join(HOSTS_FILE).display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let started = Instant::now();
    let result = rt.block_on(build(dir, &hosts, ovn));
    drop(rt);
    match result {
        Ok(()) => {
            print_summary(dir, &hosts, ovn, started.elapsed());
            Ok(())
        }
        Err(e) => {
            let _ = down(dir);
            Err(e)
        }
    }
}

fn print_summary(dir: &Path, hosts: &[HostName], ovn: bool, took: Duration) {
    let d = dir.display();
    println!("{} simulated hosts in {d}, up in {:.1} s:", hosts.len(), took.as_secs_f64());
    for h in hosts {
        let ns = one::netns_of(&h.dir(dir)).unwrap_or_default();
        println!(
            "  host {h}  underlay {}/{UNDERLAY_PREFIX} on br-phy (eth0)  netns {ns}  dir {}",
            h.ip(),
            h.dir(dir).display()
        );
    }
    if ovn {
        let c = dir.join(CENTRAL);
        println!(
            "  OVN: northbound unix:{}, southbound tcp:{}:{SB_PORT} (ovn-northd on host A); ovn-controller on every host",
            c.join("nb.sock").display(),
            hosts[0].ip()
        );
    }
    println!("Run a command on a host: ovs-run sandbox exec --dir {d} --host B -- ovs-vsctl show");
    println!("Its environment:          eval \"$(ovs-run sandbox env --dir {d} --host B)\"");
    println!("Stop everything:          ovs-run sandbox down --dir {d}");
}

async fn build(dir: &Path, hosts: &[HostName], ovn: bool) -> Result<(), String> {
    // The underlay switch, in a namespace of its own.
    let ul_name = format!("{}-ul", one::default_netns(dir));
    one::create_netns(&ul_name)?;
    fs::write(dir.join(UNDERLAY_NETNS_FILE), &ul_name)
        .map_err(|e| format!("cannot write {}: {e}", dir.join(UNDERLAY_NETNS_FILE).display()))?;
    let ul = netlink_in(&ul_name).await?;
    ul.link()
        .add(LinkBridge::new("ul0").build())
        .execute()
        .await
        .map_err(|e| format!("underlay: creating bridge ul0: {e}"))?;
    let ul0 = link(&ul, "ul0").await?.ok_or("underlay: bridge ul0 vanished")?.0;
    fs::create_dir_all(dir.join("cache"))
        .map_err(|e| format!("cannot create {}/cache: {e}", dir.display()))?;

    let mut nls = Vec::new();
    for &h in hosts {
        let hdir = h.dir(dir);
        let ns_name = one::default_netns(&hdir);
        one::up(&hdir, false, Some(&ns_name)).map_err(|e| format!("host {h}: {e}"))?;
        let nl = netlink_in(&ns_name).await?;
        plug(&ul, ul0, dir, h).await?;
        set_link(&nl, "eth0", |m| m.up().arp(false), &format!("host {h}: eth0 up, ARP off")).await?;
        ovsdb_transact(&hdir, br_phy_ops(h, hosts, ovn), &format!("host {h}: creating br-phy")).await?;
        nls.push(nl);
    }
    // Then the address on each br-phy, once ovs-vswitchd made it with its MAC.
    for (&h, nl) in hosts.iter().zip(&nls) {
        let index = wait_link_mac(nl, h).await?;
        nl.address()
            .add(index, IpAddr::V4(h.ip()), UNDERLAY_PREFIX)
            .execute()
            .await
            .map_err(|e| format!("host {h}: address {} on br-phy: {e}", h.ip()))?;
        set_link(nl, "br-phy", |m| m.up(), &format!("host {h}: br-phy up")).await?;
        for &p in hosts.iter().filter(|&&p| p != h) {
            nl.neighbours()
                .add(index, IpAddr::V4(p.ip()))
                .link_layer_address(&p.mac())
                .state(NeighbourState::Permanent)
                .execute()
                .await
                .map_err(|e| format!("host {h}: neighbour {} on br-phy: {e}", p.ip()))?;
        }
    }
    if ovn {
        start_ovn(dir, hosts).await?;
    }
    Ok(())
}

/// A netlink socket inside namespace `name`.
async fn netlink_in(name: &str) -> Result<Handle, String> {
    let target = Target::Netns { name: NetnsName::parse(name).map_err(|e| e.message)? };
    let ns = Namespace::open(&target).map_err(|e| e.message)?;
    let rt = tokio::runtime::Handle::current();
    let (conn, handle) = ns
        .run("opening a netlink socket", move || {
            let _guard = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection()?;
            Ok((conn, handle))
        })
        .await
        .map_err(|e| e.message)?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Link `name`'s index and MAC, if it exists.
async fn link(nl: &Handle, name: &str) -> Result<Option<(u32, Vec<u8>)>, String> {
    let mut links = nl.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => {
            let mac = m
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::Address(a) => Some(a.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            Ok(Some((m.header.index, mac)))
        }
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e))
            if matches!(e.raw_code().abs(), libc::ENODEV | libc::ENOENT) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("looking up link {name}: {e}")),
    }
}

async fn set_link(
    nl: &Handle,
    name: &str,
    f: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    what: &str,
) -> Result<(), String> {
    nl.link()
        .change(f(LinkUnspec::new_with_name(name)).build())
        .execute()
        .await
        .map_err(|e| format!("{what}: {e}"))
}

/// Host `h`'s underlay cable: a veth from the switch's `ul0` (end `hA`, ...)
/// to `eth0` in the host.
async fn plug(ul: &Handle, ul0: u32, dir: &Path, h: HostName) -> Result<(), String> {
    let ns = open_host_ns(dir, h)?;
    let end = format!("h{h}");
    let peer = LinkUnspec::new_with_name("eth0").setns_by_fd(ns.as_raw_fd()).build();
    let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(end.clone())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    ul.link().add(msg).execute().await.map_err(|e| format!("host {h}: underlay veth {end} <-> eth0: {e}"))?;
    set_link(ul, &end, |m| m.controller(ul0).up(), &format!("host {h}: {end} into ul0")).await
}

/// One transaction: bridge br-phy (netdev, fixed MAC) with its internal
/// port and eth0; with OVN, the chassis settings of the Open_vSwitch row.
fn br_phy_ops(h: HostName, hosts: &[HostName], ovn: bool) -> Vec<Value> {
    let uuid = |n: &str| json!(["named-uuid", n]);
    let mut ops = vec![
        json!({"op": "insert", "table": "Interface", "uuid-name": "i_int",
               "row": {"name": "br-phy", "type": "internal"}}),
        json!({"op": "insert", "table": "Interface", "uuid-name": "i_eth", "row": {"name": "eth0"}}),
        json!({"op": "insert", "table": "Port", "uuid-name": "p_int",
               "row": {"name": "br-phy", "interfaces": uuid("i_int")}}),
        json!({"op": "insert", "table": "Port", "uuid-name": "p_eth",
               "row": {"name": "eth0", "interfaces": uuid("i_eth")}}),
        json!({"op": "insert", "table": "Bridge", "uuid-name": "br",
               "row": {"name": "br-phy", "datapath_type": "netdev",
                       "ports": ["set", [uuid("p_int"), uuid("p_eth")]],
                       "other_config": ["map", [["hwaddr", mac_text(&h.mac())]]]}}),
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
               "mutations": [["bridges", "insert", uuid("br")], ["next_cfg", "+=", 1]]}),
    ];
    if ovn {
        let ext = [
            ("system-id", h.to_string()),
            ("ovn-remote", format!("tcp:{}:{SB_PORT}", hosts[0].ip())),
            ("ovn-encap-type", "geneve".to_string()),
            ("ovn-encap-ip", h.ip().to_string()),
            // Or ovn-controller makes a kernel-datapath br-int, which cannot exist here.
            ("ovn-bridge-datapath-type", "netdev".to_string()),
        ];
        let pairs: Vec<Value> = ext.iter().map(|(k, v)| json!([k, v])).collect();
        ops.push(json!({"op": "update", "table": "Open_vSwitch", "where": [],
                        "row": {"external_ids": ["map", pairs]}}));
    }
    ops
}

/// A transaction on host `hdir`'s Open_vSwitch database; its results.
async fn ovsdb_transact(hdir: &Path, ops: Vec<Value>, what: &str) -> Result<Vec<Value>, String> {
    transact(&hdir.join("db.sock"), "Open_vSwitch", ops, what).await
}

async fn transact(sock: &Path, db: &str, ops: Vec<Value>, what: &str) -> Result<Vec<Value>, String> {
    let addr: ovsdb_client::Address =
        format!("unix:{}", sock.display()).parse().map_err(|e| format!("{what}: {e}"))?;
    let (conn, _) = ovsdb_client::Connection::connect(&addr).await.map_err(|e| format!("{what}: {e}"))?;
    let mut params = vec![json!(db)];
    params.extend(ops);
    let result = conn.call("transact", Value::Array(params)).await.map_err(|e| format!("{what}: {e}"))?;
    let results = result.as_array().cloned().unwrap_or_default();
    if let Some(err) = results.iter().find(|r| r.get("error").is_some()) {
        return Err(format!("{what}: {err}"));
    }
    Ok(results)
}

/// Wait until ovs-vswitchd made host `h`'s br-phy with its MAC; its index.
async fn wait_link_mac(nl: &Handle, h: HostName) -> Result<u32, String> {
    let start = Instant::now();
    loop {
        let seen = link(nl, "br-phy").await?;
        if let Some((index, mac)) = &seen {
            if mac[..] == h.mac() {
                return Ok(*index);
            }
        }
        if start.elapsed() > OVS_TIMEOUT {
            return Err(format!(
                "host {h}: ovs-vswitchd did not make br-phy with MAC {} within {} s ({}; see its vswitchd.log)",
                mac_text(&h.mac()),
                OVS_TIMEOUT.as_secs(),
                match seen {
                    Some((_, mac)) => format!("it has {}", mac_text(&mac)),
                    None => "no such link".into(),
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// OVN central on host A (databases made and initialised before their
/// servers start), then ovn-controller on every host; done when every host
/// has a Geneve tunnel to every other, their neighbours seeded.
async fn start_ovn(dir: &Path, hosts: &[HostName]) -> Result<(), String> {
    let c = dir.join(CENTRAL);
    fs::create_dir_all(&c).map_err(|e| format!("cannot create {}: {e}", c.display()))?;
    let p = |f: &str| c.join(f).display().to_string();
    let a = hosts[0];
    let a_ns = open_host_ns(dir, a)?;
    for (db, schema, name, global) in
        [("nb", NB_SCHEMA, "OVN_Northbound", "NB_Global"), ("sb", SB_SCHEMA, "OVN_Southbound", "SB_Global")]
    {
        let file = p(&format!("{db}.db"));
        one::sh(Command::new("ovsdb-tool").args(["create", &file, schema]))
            .map_err(|e| format!("{e} (is ovn-central installed?)"))?;
        let init = json!([name, {"op": "insert", "table": global, "row": {}}]).to_string();
        one::sh(Command::new("ovsdb-tool").args(["transact", &file, &init]))?;
        let mut server = Command::new("ovsdb-server");
        server.args([
            file,
            format!("--remote=punix:{}", p(&format!("{db}.sock"))),
            format!("--unixctl={}", p(&format!("{db}.ctl"))),
            format!("--pidfile={}", p(&format!("{db}.pid"))),
            format!("--log-file={}", p(&format!("{db}.log"))),
            "--detach".into(),
        ]);
        if db == "sb" {
            // The chassis reach it over the underlay.
            server.arg(format!("--remote=ptcp:{SB_PORT}:{}", a.ip()));
        }
        one::in_netns(&mut server, &a_ns);
        one::sh(&mut server).map_err(|e| format!("OVN {db} database: {e}"))?;
        one::wait_for(&c.join(format!("{db}.sock")), &format!("OVN {db} ovsdb-server"), OVS_TIMEOUT)?;
    }
    let mut northd = Command::new("ovn-northd");
    northd
        .args([
            format!("--ovnnb-db=unix:{}", p("nb.sock")),
            format!("--ovnsb-db=unix:{}", p("sb.sock")),
            format!("--unixctl={}", p("northd.ctl")),
            format!("--pidfile={}", p("northd.pid")),
            format!("--log-file={}", p("northd.log")),
            "--detach".into(),
        ])
        .env("OVN_RUNDIR", &c)
        .env("OVS_RUNDIR", &c);
    one::in_netns(&mut northd, &a_ns);
    one::sh(&mut northd).map_err(|e| format!("ovn-northd: {e}"))?;

    for &h in hosts {
        let hdir = h.dir(dir);
        let d = |f: &str| hdir.join(f).display().to_string();
        // ovn-controller 23.03 has no --unixctl: its socket goes to $OVN_RUNDIR.
        let mut ctl = Command::new("ovn-controller");
        ctl.args([
            format!("unix:{}", d("db.sock")),
            format!("--pidfile={}", d("ovn-controller.pid")),
            format!("--log-file={}", d("ovn-controller.log")),
            "--detach".into(),
        ])
        .env("OVN_RUNDIR", &hdir)
        .env("OVS_RUNDIR", &hdir);
        // Kept open until it started: the child enters it by this fd.
        let ns = open_host_ns(dir, h)?;
        one::in_netns(&mut ctl, &ns);
        one::sh(&mut ctl).map_err(|e| format!("host {h}: ovn-controller: {e}"))?;
    }
    let start = Instant::now();
    for &h in hosts {
        let want = hosts.len() - 1;
        loop {
            let ops = vec![json!({"op": "select", "table": "Interface",
                                  "where": [["type", "==", "geneve"]], "columns": ["name"]})];
            let r = ovsdb_transact(&h.dir(dir), ops, &format!("host {h}: listing tunnels")).await?;
            let got = r.first().and_then(|r| r["rows"].as_array()).map_or(0, Vec::len);
            if got >= want {
                break;
            }
            if start.elapsed() > OVN_TIMEOUT {
                return Err(format!(
                    "host {h}: ovn-controller made {got} of {want} Geneve tunnels within {} s (see {} and {})",
                    OVN_TIMEOUT.as_secs(),
                    h.dir(dir).join("ovn-controller.log").display(),
                    c.join("northd.log").display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The tunnels' first packets are not dropped while ovs-vswitchd
    // resolves a peer: it knows every peer's MAC from the start.
    for &h in hosts {
        let ctl = h.dir(dir).join("vswitchd.ctl");
        for &p in hosts.iter().filter(|&&p| p != h) {
            let (ip, mac) = (p.ip().to_string(), mac_text(&p.mac()));
            crate::backend::unixctl::call(&ctl, "tnl/arp/set", &["br-phy", &ip, &mac], OVS_TIMEOUT)
                .await
                .map_err(|e| format!("host {h}: seeding the tunnel neighbour {ip}: {e}"))?;
        }
    }
    Ok(())
}

/// `sandbox down` of a sandbox of several hosts: every daemon of every
/// host and OVN's, then each host as one-host `down` does (its namespace,
/// its directory), the underlay, and DIR. What is already gone is skipped,
/// so it can run again after a partial failure.
pub fn down(dir: &Path) -> Result<(), String> {
    let dir = &absolute(dir);
    let hosts = hosts_of(dir);
    stop_daemons(dir, &hosts);
    let mut errors = Vec::new();
    for &h in &hosts {
        let hdir = h.dir(dir);
        if hdir.exists() {
            if let Err(e) = one::down(&hdir) {
                errors.push(format!("host {h}: {e}"));
            }
        }
    }
    if let Ok(name) = fs::read_to_string(dir.join(UNDERLAY_NETNS_FILE)) {
        one::delete_netns(&Path::new(NETNS_DIR).join(name.trim()));
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        errors.push(format!("cannot remove {}: {e}", dir.display()));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Stop every daemon of the sandbox at once: each takes about 2 s to exit
/// here, so one after the other would take half a minute. ovs-vswitchd is
/// asked to `exit --cleanup` (removing the userspace datapath's taps), the
/// others get SIGTERM; whatever still runs after 10 s gets SIGKILL.
fn stop_daemons(dir: &Path, hosts: &[HostName]) {
    use nix::sys::signal::{kill, Signal};
    // The hosts whose ovs-vswitchd took the request (the others get SIGTERM).
    let cleaning: Vec<PathBuf> = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt
            .block_on(futures::future::join_all(hosts.iter().map(|h| async move {
                let ctl = h.dir(dir).join("vswitchd.ctl");
                let asked = ctl.exists()
                    && crate::backend::unixctl::call(&ctl, "exit", &["--cleanup"], OVS_TIMEOUT).await.is_ok();
                asked.then(|| h.dir(dir).join("vswitchd.pid"))
            })))
            .into_iter()
            .flatten()
            .collect(),
        Err(_) => vec![],
    };
    let mut pidfiles = vec![];
    for h in hosts {
        for f in ["ovn-controller.pid", "vswitchd.pid", "ovsdb.pid"] {
            pidfiles.push(h.dir(dir).join(f));
        }
    }
    for f in ["northd.pid", "sb.pid", "nb.pid"] {
        pidfiles.push(dir.join(CENTRAL).join(f));
    }
    let pids: Vec<_> = pidfiles.iter().filter_map(|f| one::read_pid(f)).collect();
    // An ovs-vswitchd cleaning up is left to finish: a signal would cut it short.
    for (f, pid) in pidfiles.iter().filter_map(|f| one::read_pid(f).map(|p| (f, p))) {
        if !cleaning.contains(f) {
            let _ = kill(pid, Signal::SIGTERM);
        }
    }
    let start = Instant::now();
    while pids.iter().any(|p| kill(*p, None).is_ok()) && start.elapsed() < OVS_TIMEOUT {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids.into_iter().filter(|p| kill(*p, None).is_ok()) {
        let _ = kill(p, Signal::SIGKILL);
    }
}
