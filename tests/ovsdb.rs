//! The native OVSDB client (`ovs_run::backend::ovsdb::Vswitch`) against real
//! Open vSwitch: every test starts its own ovsdb-server + ovs-vswitchd in its
//! own directory and checks what the client did through `ovs-vsctl`, an
//! independent view.
//!
//! Covered: bridge and port create / read / delete (internal ports, VLAN tag,
//! trunks, external_ids, ofport), set-vlan, twenty ports on one bridge, and
//! the error paths: duplicates, missing bridges and ports, a system port
//! without a device (ovs-vswitchd's error, port removed again), the bridge's
//! own port, no ovsdb-server socket, ovs-vswitchd not applying changes (apply
//! timeout), ovsdb-server going away (connection lost), and a TCP session
//! outliving ovsdb-server's inactivity probe.
//!
//! Needs root and Open vSwitch; a missing prerequisite fails the test (run
//! them through `make test`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ovs_run::backend::ovsdb::{OvsdbUri, PortSpec, Vswitch};
use ovs_run::error::ErrorKind;
use ovs_run::types::{Datapath, IfName, VlanId};

const NEEDS: &str = "needs root and openvswitch-switch: run through `make test`";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Fails (never skips) when the test cannot run here.
fn require_ovs() {
    // SAFETY: geteuid has no preconditions.
    assert!(unsafe { libc::geteuid() } == 0, "not root: {NEEDS}");
    for tool in ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl", "unshare"] {
        let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is not installed: {NEEDS}");
    }
    assert!(std::path::Path::new(SCHEMA).exists(), "{SCHEMA} is missing: {NEEDS}");
}

/// `prefix` plus this process's id: no clash with a test process running at
/// the same time (interface names are at most 15 bytes).
fn uniq(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// A private ovsdb-server + ovs-vswitchd in their own directory; both are
/// stopped and the directory removed on drop, also when the test panics.
struct Ovs {
    dir: PathBuf,
}

impl Ovs {
    fn start(tag: &str) -> Ovs {
        require_ovs();
        let dir = std::env::temp_dir().join(format!("ovsrt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // From here on, Drop cleans up whatever got started.
        let ovs = Ovs { dir };
        let d = ovs.dir.display().to_string();
        let run = |args: &[&str]| {
            // OVS_RUNDIR keeps the daemons' control sockets in the test directory.
            let out = Command::new(args[0])
                .args(&args[1..])
                .env("OVS_RUNDIR", &ovs.dir)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}: {NEEDS}", args[0]));
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["ovsdb-tool", "create", &format!("{d}/conf.db"), SCHEMA]);
        run(&[
            "ovsdb-server",
            &format!("{d}/conf.db"),
            &format!("--remote=punix:{d}/db.sock"),
            &format!("--pidfile={d}/ovsdb.pid"),
            "--detach",
            &format!("--log-file={d}/ovsdb.log"),
        ]);
        run(&["ovs-vsctl", &format!("--db=unix:{d}/db.sock"), "--no-wait", "init"]);
        // Each ovs-vswitchd runs in a network namespace of its own
        // (`unshare -n`; the namespace lives as long as the daemon). The
        // userspace (netdev) datapath creates a tap device named "ovs-netdev"
        // plus one per bridge, and those names are per namespace: two test
        // processes' daemons sharing the host namespace would take each
        // other's devices away. It also keeps the host free of test bridges.
        run(&[
            "unshare",
            "-n",
            "ovs-vswitchd",
            &format!("unix:{d}/db.sock"),
            &format!("--pidfile={d}/vswitchd.pid"),
            "--detach",
            &format!("--log-file={d}/vswitchd.log"),
        ]);
        ovs
    }

    fn uri(&self) -> OvsdbUri {
        OvsdbUri::Unix(self.dir.join("db.sock"))
    }

    async fn connect(&self) -> Vswitch {
        Vswitch::connect(&self.uri(), Duration::from_secs(10)).await.unwrap()
    }

    /// ovs-vsctl against this instance, trimmed stdout.
    fn vsctl(&self, args: &[&str]) -> String {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db=unix:{}/db.sock", self.dir.display()))
            .arg("--timeout=10")
            .args(args)
            .env("OVS_RUNDIR", &self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn pid(&self, daemon: &str) -> i32 {
        let p = std::fs::read_to_string(self.dir.join(format!("{daemon}.pid"))).unwrap();
        p.trim().parse().unwrap()
    }

    fn appctl_ovsdb(&self, args: &[&str]) {
        let ctl = self.dir.join(format!("ovsdb-server.{}.ctl", self.pid("ovsdb")));
        let out = Command::new("ovs-appctl").arg("-t").arg(&ctl).args(args).output().unwrap();
        assert!(out.status.success(), "ovs-appctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stop one of this instance's daemons ("ovsdb" or "vswitchd") and wait
    /// until it is gone. Only the process named in our pid file, and only
    /// while it still is that daemon (the pid may have been reused).
    fn stop(&self, daemon: &str) {
        let comm = match daemon {
            "ovsdb" => "ovsdb-server",
            _ => "ovs-vswitchd",
        };
        let Ok(p) = std::fs::read_to_string(self.dir.join(format!("{daemon}.pid"))) else {
            return;
        };
        let Ok(pid) = p.trim().parse::<i32>() else {
            return;
        };
        let alive = || std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm);
        if !alive() {
            return;
        }
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let start = Instant::now();
        while alive() {
            if start.elapsed() > Duration::from_secs(5) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if start.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        // ovs-vswitchd first: its namespace, and the tap devices in it, go with it.
        self.stop("vswitchd");
        self.stop("ovsdb");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn n(s: &str) -> IfName {
    IfName::parse(s).unwrap()
}

fn internal(name: &str) -> PortSpec {
    PortSpec { iface_type: Some("internal".into()), ..PortSpec::new(n(name)) }
}

fn vlan(v: u16) -> VlanId {
    VlanId::new(v).unwrap()
}

#[tokio::test]
async fn bridge_and_port_lifecycle() {
    let ovs = Ovs::start("life");
    let vs = ovs.connect().await;
    let (brs, p1s, p2s, p3s) = (uniq("brl"), uniq("pl1-"), uniq("pl2-"), uniq("pl3-"));
    let (nosuch, brmissing, nodev) = (uniq("nosuch"), uniq("brmiss"), uniq("nodev"));
    let (br, p1) = (n(&brs), n(&p1s));

    // Create: new, may-exist, duplicate.
    assert!(vs.create_bridge(&br, Datapath::Netdev, false).await.unwrap());
    assert!(!vs.create_bridge(&br, Datapath::Netdev, true).await.unwrap());
    let e = vs.create_bridge(&br, Datapath::Netdev, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains(&brs), "{e}");
    assert_eq!(ovs.vsctl(&["get", "bridge", &brs, "datapath_type"]), "netdev");

    let mut spec = internal(&p1s);
    spec.tag = Some(vlan(42));
    spec.trunks = vec![vlan(10), vlan(20)];
    spec.external_ids =
        BTreeMap::from([("container_iface".into(), "eth1".into()), ("created_by".into(), "ovs-run".into())]);
    let p = vs.add_port(&br, &spec).await.unwrap();
    // add_port waits until ovs-vswitchd applied the change, so the port has
    // its OpenFlow number already.
    assert!(
        p.ofport.is_some_and(|o| o > 0),
        "{p:?}; ovs-vsctl says ofport {}, cur_cfg/next_cfg {}\n{}",
        ovs.vsctl(&["get", "interface", &p1s, "ofport"]),
        ovs.vsctl(&["get", "open_vswitch", ".", "cur_cfg", "next_cfg"]),
        ovs.log("vswitchd.log")
    );
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), p1s);
    assert_eq!(ovs.vsctl(&["get", "port", &p1s, "tag"]), "42");
    assert_eq!(ovs.vsctl(&["get", "port", &p1s, "trunks"]), "[10, 20]");
    assert_eq!(ovs.vsctl(&["get", "interface", &p1s, "external_ids:container_iface"]), "eth1");
    assert_eq!(ovs.vsctl(&["get", "interface", &p1s, "ofport"]), p.ofport.unwrap().to_string());

    // Reads agree with what was written.
    assert_eq!(vs.ports(&br).await.unwrap(), vec![p.clone()]);
    assert_eq!(vs.port(&p1).await.unwrap(), Some(p.clone()));
    assert_eq!(vs.port(&n(&nosuch)).await.unwrap(), None);
    assert_eq!(vs.port(&br).await.unwrap(), None, "a bridge's local port is not listed");
    let bridges = vs.bridges().await.unwrap();
    let b = bridges.iter().find(|b| b.name == brs).unwrap();
    // list-bridges includes the bridge's own internal port (the WIT doc says so).
    let mut want = vec![brs.clone(), p1s.clone()];
    want.sort();
    assert_eq!((b.datapath_type.as_str(), b.ports.clone()), ("netdev", want));

    // VLAN changes return the previous tag.
    assert_eq!(vs.set_vlan(&p1, Some(vlan(7))).await.unwrap(), Some(42));
    assert_eq!(ovs.vsctl(&["get", "port", &p1s, "tag"]), "7");
    assert_eq!(vs.set_vlan(&p1, None).await.unwrap(), Some(7));
    assert_eq!(ovs.vsctl(&["get", "port", &p1s, "tag"]), "[]");
    let e = vs.set_vlan(&n(&nosuch), None).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains(&nosuch), "{e}");

    // Errors.
    let e = vs.add_port(&br, &spec).await.unwrap_err();
    assert!(e.kind == ErrorKind::AlreadyExists && e.message.contains(&p1s), "{e}");
    let e = vs.add_port(&br, &internal(&brs)).await.unwrap_err();
    assert!(e.kind == ErrorKind::AlreadyExists && e.message.contains(&brs), "{e}");
    let e = vs.add_port(&n(&brmissing), &internal(&p2s)).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains(&brmissing), "{e}");
    assert!(ovs.vsctl(&["--columns=name", "find", "port", &format!("name={p2s}")]).is_empty());
    let e = vs.ports(&n(&brmissing)).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains(&brmissing), "{e}");
    // A system port whose device does not exist: ovs-vswitchd's error, and
    // the port is removed again.
    let e = vs.add_port(&br, &PortSpec::new(n(&nodev))).await.unwrap_err();
    assert!(e.message.contains(&nodev) && e.message.contains("ovs-vswitchd reported"), "{e}");
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), p1s);
    assert!(ovs.vsctl(&["--columns=name", "find", "interface", &format!("name={nodev}")]).is_empty());

    // Removal.
    assert!(vs.del_port(&br, &p1).await.unwrap());
    assert!(!vs.del_port(&br, &p1).await.unwrap());
    assert!(!vs.del_port(&n(&brmissing), &p1).await.unwrap());
    assert_eq!(vs.del_port(&br, &br).await.unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), "");
    assert!(ovs.vsctl(&["--columns=name", "find", "interface", &format!("name={p1s}")]).is_empty());
    // Deleting a bridge takes its ports along.
    vs.add_port(&br, &internal(&p3s)).await.unwrap();
    assert!(vs.delete_bridge(&br, false).await.unwrap());
    assert!(!vs.delete_bridge(&br, true).await.unwrap());
    let e = vs.delete_bridge(&br, false).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains(&brs), "{e}");
    assert_eq!(ovs.vsctl(&["list-br"]), "");
    assert!(ovs.vsctl(&["--columns=name", "find", "port", &format!("name={p3s}")]).is_empty());
}

/// Twenty ports on one bridge: all created, all attached by ovs-vswitchd,
/// VLAN changes on one of them leave the others alone, all removed again.
#[tokio::test]
async fn twenty_ports_on_one_bridge() {
    let ovs = Ovs::start("many");
    let vs = ovs.connect().await;
    let brs = uniq("brm");
    let br = n(&brs);
    vs.create_bridge(&br, Datapath::Netdev, false).await.unwrap();
    let mut names: Vec<String> = (0..20).map(|i| uniq(&format!("pm{i:02}-"))).collect();
    names.sort();
    for name in &names {
        let p = vs.add_port(&br, &internal(name)).await.unwrap();
        assert!(p.ofport.is_some_and(|o| o > 0), "{p:?}");
    }

    let mut listed: Vec<String> = vs.ports(&br).await.unwrap().into_iter().map(|p| p.name).collect();
    listed.sort();
    assert_eq!(listed, names);
    let shown: Vec<String> = ovs.vsctl(&["list-ports", &brs]).lines().map(str::to_string).collect();
    assert_eq!(shown, names, "ovs-vsctl list-ports");
    for name in &names {
        let ofport: i64 = ovs.vsctl(&["get", "interface", name, "ofport"]).parse().unwrap();
        assert!(ofport > 0, "{name}: ofport {ofport}");
    }

    let first = n(&names[0]);
    let mut previous = None;
    for v in [1, 2, 1, 4094] {
        assert_eq!(vs.set_vlan(&first, Some(vlan(v))).await.unwrap(), previous);
        assert_eq!(ovs.vsctl(&["get", "port", &names[0], "tag"]), v.to_string());
        previous = Some(v);
    }
    assert_eq!(ovs.vsctl(&["get", "port", &names[1], "tag"]), "[]");

    for name in &names {
        assert!(vs.del_port(&br, &n(name)).await.unwrap(), "{name}");
    }
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), "");
    assert!(vs.ports(&br).await.unwrap().is_empty());
    assert!(vs.delete_bridge(&br, false).await.unwrap());
    assert_eq!(ovs.vsctl(&["list-br"]), "");
}

#[tokio::test]
async fn missing_socket_names_the_path() {
    let uri: OvsdbUri = "unix:/nonexistent/ovsrt/db.sock".parse().unwrap();
    let e = Vswitch::connect(&uri, Duration::from_secs(1)).await.unwrap_err();
    // No ovsdb-server: the system is unavailable (exit status 4), not a bad input.
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert_eq!(
        e.message,
        "cannot connect to OVSDB at unix:/nonexistent/ovsrt/db.sock: No such file or directory (is ovsdb-server running?)"
    );
}

#[tokio::test]
async fn vswitchd_not_running_times_out_and_loss_is_reported() {
    let ovs = Ovs::start("stall");
    ovs.stop("vswitchd");
    let vs = Vswitch::connect(&ovs.uri(), Duration::from_millis(300)).await.unwrap();
    let brs = uniq("brs");
    let e = vs.create_bridge(&n(&brs), Datapath::Netdev, false).await.unwrap_err();
    assert!(e.message.contains("did not apply the change within 0.3 s") && e.message.contains(&brs), "{e}");

    ovs.stop("ovsdb");
    // The client notices the closed socket on its own; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = vs.bridges().await.unwrap_err();
    assert!(e.message.contains("lost") && e.message.contains("db.sock"), "{e}");
}

#[tokio::test]
async fn tcp_survives_inactivity_probe() {
    let ovs = Ovs::start("tcp");
    let port = 20000 + std::process::id() % 20000;
    // A second remote on TCP, added at run time; ovsdb-server probes it after 5 s idle.
    ovs.appctl_ovsdb(&["ovsdb-server/add-remote", &format!("ptcp:{port}:127.0.0.1")]);
    let uri: OvsdbUri = format!("tcp:127.0.0.1:{port}").parse().unwrap();
    // The listener opens on ovsdb-server's next main-loop run.
    let start = Instant::now();
    let vs = loop {
        match Vswitch::connect(&uri, Duration::from_secs(10)).await {
            Ok(vs) => break vs,
            Err(_) if start.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}\n{}", ovs.log("ovsdb.log")),
        }
    };
    // Idle for more than two probe intervals: the client must answer the
    // server's echo requests or ovsdb-server drops the session.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let brs = uniq("brt");
    vs.create_bridge(&n(&brs), Datapath::Netdev, false).await.unwrap();
    assert_eq!(ovs.vsctl(&["list-br"]), brs);
    let log = ovs.log("ovsdb.log");
    assert!(!log.contains("no response to inactivity probe"), "{log}");

    let e = Vswitch::connect(&"tcp:127.0.0.1:1".parse().unwrap(), Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
    assert!(
        e.message.starts_with("cannot connect to OVSDB at tcp:127.0.0.1:1: ")
            && e.message.ends_with("(is ovsdb-server running?)"),
        "{e}"
    );
}

/// `del-port` reads the port's row, then removes it from the bridge. A
/// change in between (here: ovs-vsctl removes the port and adds one of the
/// same name) must make the removal fail its `wait` precondition and change
/// nothing, not "remove" a row that is already gone (and let the journal
/// record an undo of someone else's change). Then del_port reads again and
/// removes the new port.
#[tokio::test]
async fn del_port_is_conditional_on_what_it_read() {
    use ovs_run::backend::ovsdb::{vswitch::del_port_ops, Connection};
    use ovsdb_client::Transaction;
    let ovs = Ovs::start("delwait");
    let vs = ovs.connect().await;
    let (brs, ps) = (uniq("brw"), uniq("pw"));
    let (br, p) = (n(&brs), n(&ps));
    vs.create_bridge(&br, Datapath::Netdev, false).await.unwrap();
    vs.add_port(&br, &internal(&ps)).await.unwrap();
    let read_uuid = ovs.vsctl(&["get", "port", &ps, "_uuid"]);
    // The concurrent change, between the read and the removal.
    ovs.vsctl(&["del-port", &brs, &ps]);
    ovs.vsctl(&["add-port", &brs, &ps, "--", "set", "interface", &ps, "type=internal"]);
    let (conn, _notes) = Connection::connect(&ovs.uri()).await.unwrap();
    let txn =
        Transaction { database: "Open_vSwitch".into(), ops: del_port_ops(&br, &read_uuid.parse().unwrap()) };
    let e = conn.transact(&txn).await.unwrap_err().to_string();
    assert!(e.contains("operation 0 (wait)") && e.contains("timed out"), "{e}");
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), ps, "the new port must be untouched");
    // del_port itself reads again and removes the port that is there now.
    assert!(vs.del_port(&br, &p).await.unwrap());
    assert_eq!(ovs.vsctl(&["list-ports", &brs]), "");
}
