//! `ovs-run serve` for real: a root daemon, tenants that are real
//! unprivileged users (created here when missing: ovsrt-a, ovsrt-b and
//! ovsrt-x, which no tenant lists), `ovs-run submit` run as those users with
//! setpriv, real Open vSwitch and Docker, checked with ovs-vsctl and nsenter.
//! The policy is the shipped example with the test users' uids.
//!
//! Raw protocol abuse (forged fields, oversized and malformed frames,
//! hang-ups) comes from this test binary re-run as a tenant user (the
//! ignored `raw_client` test, driven by environment variables).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const USERS: [&str; 3] = ["ovsrt-a", "ovsrt-b", "ovsrt-x"];

struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// A daemon for the example policy, against `ovs` when given.
    fn start(ovs: Option<&Ovs>) -> Daemon {
        Daemon::start_with(ovs, |_| {}, &[])
    }

    /// [`Daemon::start`], with the tenants edited by `tenants` and `extra` serve arguments.
    fn start_with(ovs: Option<&Ovs>, tenants_edit: impl Fn(&mut Value), extra: &[&str]) -> Daemon {
        require_root();
        for u in USERS {
            test_user(u);
        }
        // Not under $TMPDIR: the test run's work directory is private (0700),
        // and the tenants (other users) must reach the socket and scripts.
        let dir = tempfile::Builder::new().prefix("ovsrt-daemon").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The example tenants, with the test users' uids.
        let mut tenants: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("examples/policy/tenants.json")).unwrap(),
        )
        .unwrap();
        for t in tenants.as_array_mut().unwrap() {
            let id = t["uid"]["id"].as_str().unwrap().to_string();
            t["attrs"]["uids"] = serde_json::json!([test_user(&format!("ovsrt-{id}")).0]);
        }
        tenants_edit(&mut tenants);
        let tenants_file = dir.path().join("tenants.json");
        std::fs::write(&tenants_file, serde_json::to_string_pretty(&tenants).unwrap()).unwrap();
        // Scripts the tenants submit: readable by them.
        for (src, name) in [
            (script("attach"), "attach.wasm"),
            (script("set-vlan"), "set-vlan.wasm"),
            (guest("hostile"), "hostile.wasm"),
        ] {
            let dst = dir.path().join(name);
            std::fs::copy(src, &dst).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let socket = dir.path().join("ovs-run.sock");
        let ovsdb = match ovs {
            Some(o) => format!("unix:{}/db.sock", o.rundir()),
            None => format!("unix:{}/no-ovsdb.sock", dir.path().display()),
        };
        let child = Command::new(bin())
            .args(["serve", "--socket"])
            .arg(&socket)
            .args(["--policy"])
            .arg(root().join("examples/policy/tenants.cedar"))
            .args(["--tenants"])
            .arg(&tenants_file)
            .args(["--audit"])
            .arg(dir.path().join("audit.log"))
            .args(["--ovsdb", &ovsdb, "--datapath", "netdev", "--cache-dir"])
            .arg(cache_dir())
            .args(extra)
            .stdout(Stdio::null())
            // Kept for the per-request log lines; printed when a test fails.
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .expect("start ovs-run serve");
        let d = Daemon { dir, child, socket };
        let t = Instant::now();
        while !d.socket.exists() {
            assert!(t.elapsed() < Duration::from_secs(20), "the daemon did not create its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666, "socket mode");
        d
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// `ovs-run submit` as `user`.
    fn submit_cmd(&self, user_name: &str, script: &str, args: &[&str]) -> Command {
        self.submit_cmd_with(user_name, &[], script, args)
    }

    /// `ovs-run submit OPTS SCRIPT ARGS` as `user`.
    fn submit_cmd_with(&self, user_name: &str, opts: &[&str], script: &str, args: &[&str]) -> Command {
        let (uid, gid) = test_user(user_name);
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(bin())
            .arg("submit")
            .arg("--socket")
            .arg(&self.socket)
            .args(opts)
            .arg(self.path(script))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    fn submit(&self, user_name: &str, script: &str, args: &[&str]) -> Run {
        self.submit_with(user_name, &[], script, args)
    }

    fn submit_with(&self, user_name: &str, opts: &[&str], script: &str, args: &[&str]) -> Run {
        let t = Instant::now();
        let out = self.submit_cmd_with(user_name, opts, script, args).output().expect("run submit");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: t.elapsed(),
        }
    }

    /// This test binary, re-run as `user_name`, speaking raw protocol.
    fn raw(&self, user_name: &str, mode: &str) -> String {
        self.raw_n(user_name, mode, 0)
    }

    /// [`Daemon::raw`] with a count (the flood's connections).
    fn raw_n(&self, user_name: &str, mode: &str, n: u32) -> String {
        let (uid, gid) = test_user(user_name);
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(&exe)
            .args(["raw_client", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("OVSRT_RAW_SOCKET", &self.socket)
            .env("OVSRT_RAW_MODE", mode)
            .env("OVSRT_RAW_N", n.to_string())
            .env("OVSRT_RAW_SCRIPT", self.path("hostile.wasm"))
            .output()
            .expect("run the raw client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "raw client {mode} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// What the daemon wrote on stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line {l}: {e}")))
            .collect()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then wait up to `limit` for the exit; its status code.
    fn terminate(&mut self, limit: Duration) -> Option<i32> {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- ovs-run serve's stderr ---\n{}", self.log());
        }
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn denied_calls<'a>(audit: &'a [Value], action: &str) -> Vec<&'a Value> {
    audit.iter().filter(|l| l["decision"] == "deny" && l["action"] == action).collect()
}

#[test]
fn tenant_attaches_inside_its_limits_and_everything_else_is_denied() {
    let ovs = Ovs::start();
    let d = Daemon::start(Some(&ovs));
    let ca = Container::start_labelled(&[("tenant", "a")]);
    let cb = Container::start_labelled(&[("tenant", "b")]);

    let r = d.submit(
        "ovsrt-a",
        "attach.wasm",
        &["br-a", "eth1", &ca.name, "--ipaddress=10.1.0.5/24", "--vlan=150"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["port-to-br", &find_port(&ovs, &ca)]).trim(), "br-a");
    assert_eq!(ovs.vsctl(&["get", "Port", &find_port(&ovs, &ca), "tag"]).trim(), "150");
    assert!(ca.ip(&["-o", "addr", "show", "eth1"]).contains("10.1.0.5/24"));

    let before = (ovs.snapshot(), ca.ip(&["-o", "addr"]), cb.ip(&["-o", "link"]), sh("ip", &["route"]));
    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["br-a", "eth2", &ca.name, "--ipaddress=10.2.0.5/24", "--vlan=150"],
            "set-address",
            "addresses-in-network",
        ),
        (&["br-a", "eth2", &cb.name, "--ipaddress=10.1.0.6/24"], "lookup-container", "deny by default"),
        (&["br-b", "eth2", &ca.name, "--ipaddress=10.1.0.6/24"], "create-bridge", "deny by default"),
        (&["br-a", "eth2", &ca.name, "--vlan=300"], "add-port", "vlan-range"),
        (&["br-a", "eth2", &ca.name], "add-port", "no-trunks"),
    ];
    for (args, action, why) in cases {
        let r = d.submit("ovsrt-a", "attach.wasm", args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(&format!("{action} on")) && r.stderr.contains(why), "{args:?}: {r:?}");
        assert!(
            denied_calls(&d.audit(), action).iter().any(|l| l["tenant"] == "a"),
            "{action}: no audit line"
        );
    }
    let r = d.submit("ovsrt-a", "hostile.wasm", &["host-route", "198.51.100.0/24", "10.1.0.1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("set-route on Host::\"host\"") && r.stderr.contains("no-host-routes"), "{r:?}");
    let after = (ovs.snapshot(), ca.ip(&["-o", "addr"]), cb.ip(&["-o", "link"]), sh("ip", &["route"]));
    assert_eq!(before, after, "a denied script changed the system");
    assert!(!ovs.try_vsctl(&["br-exists", "br-b"]).0, "br-b must not exist");

    // The audit log: every call and every run, with who, what and why.
    let audit = d.audit();
    let (uid_a, _) = test_user("ovsrt-a");
    let runs: Vec<&Value> = audit.iter().filter(|l| l["event"] == "run").collect();
    assert_eq!(runs.len(), 7, "{audit:#?}");
    assert!(runs.iter().all(|r| r["tenant"] == "a" && r["uid"] == uid_a), "{runs:#?}");
    assert_eq!(runs.iter().filter(|r| r["status"] == "ok").count(), 1);
    let add = audit
        .iter()
        .find(|l| l["action"] == "add-port" && l["decision"] == "allow")
        .expect("the allowed add-port");
    assert_eq!(add["arguments"]["vlan"], 150, "{add:#}");
    assert_eq!(add["result"]["changed"], true, "{add:#}");
    assert!(add["policies"].as_array().unwrap().contains(&Value::from("own-ports")), "{add:#}");
    assert!(add["duration_ms"].as_f64().is_some() && add["script_sha256"].as_str().unwrap().len() == 64);
}

/// The OVS port of `c`'s eth1 (by external_ids, the independent view).
fn find_port(ovs: &Ovs, c: &Container) -> String {
    let out = ovs.vsctl(&[
        "--format=csv",
        "--no-headings",
        "--columns=name",
        "find",
        "Interface",
        &format!("external_ids:container_name={}", c.name),
    ]);
    out.lines().next().unwrap_or_else(|| panic!("no port for {}", c.name)).trim_matches('"').to_string()
}

#[test]
fn unknown_uid_is_refused_and_a_forged_tenant_is_ignored() {
    let mut d = Daemon::start(None);
    let r = d.submit("ovsrt-x", "hostile.wasm", &["env"]);
    assert_eq!(r.code, 2, "{r:?}");
    let (uid_x, _) = test_user("ovsrt-x");
    assert!(r.stderr.contains(&format!("uid {uid_x}")) && r.stderr.contains("not a tenant"), "{r:?}");
    assert!(!r.stdout.contains("env-count"), "it must not have run: {r:?}");
    let audit = d.audit();
    assert!(audit.iter().any(|l| l["event"] == "refused" && l["uid"] == uid_x), "{audit:#?}");
    assert!(!audit.iter().any(|l| l["event"] == "run"), "{audit:#?}");

    // User b claims to be tenant a: the daemon runs it as b (b's bridge rules apply).
    let out = d.raw("ovsrt-b", "forged");
    assert!(out.contains("exit 1") && out.contains("no-host-routes") && out.contains("(tenant b)"), "{out}");
    let audit = d.audit();
    let run = audit.iter().rev().find(|l| l["event"] == "run").expect("a run");
    assert_eq!(run["tenant"], "b", "{run:#}");
    assert!(!audit.iter().any(|l| l["tenant"] == "a"), "nothing may run as a: {audit:#?}");
    assert!(d.alive());
}

#[test]
fn a_spinning_tenant_does_not_stall_another() {
    let ovs = Ovs::start();
    let mut d = Daemon::start(Some(&ovs));
    let ca = Container::start_labelled(&[("tenant", "a")]);
    // Tenant b fills both its run slots with scripts that never call the host.
    let started = Instant::now();
    let mut loops: Vec<Child> = (0..2)
        .map(|_| {
            d.submit_cmd("ovsrt-b", "hostile.wasm", &["loop"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // A third one is over b's limit.
    let r = d.submit("ovsrt-b", "hostile.wasm", &["loop"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("already runs 2 script(s)"), "{r:?}");
    // Tenant a's real attach goes through meanwhile.
    let r = d.submit(
        "ovsrt-a",
        "attach.wasm",
        &["br-a", "eth1", &ca.name, "--ipaddress=10.1.0.9/24", "--vlan=150"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ca.ip(&["-o", "addr", "show", "eth1"]).contains("10.1.0.9/24"));
    assert!(
        loops.iter_mut().all(|c| c.try_wait().unwrap().is_none()),
        "b's loops must still be running when a is done ({:?})",
        started.elapsed()
    );
    // b's loops end at b's timeout (10 s in tenants.json), not the daemon's 60 s.
    for c in loops.iter_mut() {
        let out = wait_output(c, Duration::from_secs(30));
        assert_eq!(out.0, 3, "{}", out.1);
        assert!(out.1.contains("timeout"), "{}", out.1);
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(9) && elapsed < Duration::from_secs(20), "{elapsed:?}");
    // b's memory cap (32 MiB) holds, and the daemon goes on.
    let r = d.submit("ovsrt-b", "hostile.wasm", &["membomb"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("memory limit") && r.stderr.contains("32 MiB"), "{r:?}");
    assert!(d.alive());
}

fn wait_output(c: &mut Child, limit: Duration) -> (i32, String) {
    let t = Instant::now();
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            let mut s = String::new();
            c.stderr.take().unwrap().read_to_string(&mut s).unwrap();
            return (status.code().unwrap_or(-1), s);
        }
        assert!(t.elapsed() < limit, "submit did not finish within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn malformed_frames_and_hangups_leave_the_daemon_serving() {
    let mut d = Daemon::start(None);
    for (mode, expect) in [
        ("oversized", "exceeds the limit"),
        ("empty", "empty frame"),
        ("garbage-json", "malformed request"),
        ("wrong-tag", "expected a request frame"),
        ("no-script", "before its script"),
        ("huge-script", "exceeds the limit"),
        ("not-wasm", "not a WebAssembly component"),
    ] {
        let out = d.raw("ovsrt-a", mode);
        assert!(out.contains("exit 2") && out.contains(expect), "{mode}: {out}");
        assert!(d.alive(), "{mode} killed the daemon");
    }
    // Half a frame, then gone; a run whose client hangs up mid-run.
    d.raw("ovsrt-a", "truncated");
    d.raw("ovsrt-a", "hangup-mid-run");
    assert!(d.alive());
    let r = d.submit("ovsrt-a", "hostile.wasm", &["env"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("env-count=0"), "output streams back: {r:?}");
    // The hung-up run finished on its own (timeout, audited), freeing its slot.
    let t = Instant::now();
    loop {
        let audit = d.audit();
        if audit.iter().any(|l| l["event"] == "run" && l["status"] == "timeout") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(45), "the abandoned run never ended: {audit:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = d.audit().iter().filter(|l| l["event"] == "refused").count();
    assert_eq!(refused, 8, "each malformed request is audited");
}

#[test]
fn serve_max_runs_0_is_refused_before_the_audit_log_exists() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let r = ovs_run(
        &[
            "serve",
            "--socket",
            dir.path().join("s.sock").to_str().unwrap(),
            "--policy",
            root().join("examples/policy/tenants.cedar").to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
            "--max-runs",
            "0",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--max-runs"), "{r:?}");
    assert!(!audit.exists(), "the audit log was created before the arguments were checked");
}

/// Attack (issue 15 item 4): a user no tenant lists floods the socket. Its
/// refusals are one audit line per second plus a summary, every connection
/// is accounted for (refused in full, counted, or dropped at the cap and
/// counted), and the daemon goes on.
#[test]
fn attack_strangers_flood_is_rate_limited_in_the_audit_log() {
    let mut d = Daemon::start(None);
    let (uid_x, _) = test_user("ovsrt-x");
    let started = Instant::now();
    let out = d.raw_n("ovsrt-x", "flood", 3000);
    let made: u64 = out
        .lines()
        .find_map(|l| l.split("connected ").nth(1))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .parse()
        .unwrap();
    let flood = started.elapsed();
    assert!(made >= 2900, "{out}");
    // The summaries are written every second: wait for the last one.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(d.alive());
    let size = std::fs::metadata(d.path("audit.log")).unwrap().len();
    let audit = d.audit();
    let full = audit.iter().filter(|l| l["event"] == "refused" && l["uid"] == uid_x).count() as u64;
    let summaries: Vec<&Value> = audit.iter().filter(|l| l["event"] == "refused-summary").collect();
    let counted: u64 = summaries.iter().map(|l| l["by_uid"][uid_x.to_string()].as_u64().unwrap_or(0)).sum();
    let dropped: u64 = summaries.iter().map(|l| l["dropped_at_connection_cap"].as_u64().unwrap()).sum();
    eprintln!(
        "flood: {made} connections in {flood:?}: {full} full lines, {counted} counted, {dropped} dropped at the cap, \
         {} lines, {size} bytes of audit log",
        audit.len()
    );
    assert_eq!(full + counted + dropped, made, "every connection is accounted for: {summaries:#?}");
    let seconds = flood.as_secs() + 3;
    assert!(full <= seconds, "{full} full lines in {seconds} s");
    assert!(audit.len() as u64 <= 2 * seconds + 2, "{} lines: {audit:#?}", audit.len());
    assert!(size < 64 << 10, "{size} bytes");
    // A tenant still gets through.
    let r = d.submit("ovsrt-a", "hostile.wasm", &["env"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// SIGTERM while a run is in the middle of its work: the daemon stops
/// accepting, the run is interrupted and rolled back, then the daemon exits.
#[test]
fn sigterm_rolls_back_running_runs_before_exit() {
    let ovs = Ovs::start();
    let journal = tempfile::tempdir().unwrap();
    let journal_dir = journal.path().to_str().unwrap().to_string();
    let mut d = Daemon::start_with(Some(&ovs), |_| {}, &["--journal-dir", &journal_dir]);
    let mut run = d
        .submit_cmd("ovsrt-a", "hostile.wasm", &["slow-bridge", "br-a", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the bridge is there and the script sleeps.
    let mut stdout = std::io::BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "paused", "{line}");
    assert!(ovs.try_vsctl(&["br-exists", "br-a"]).0, "the run made its bridge");
    assert_eq!(journals(journal.path()).len(), 1, "the run's journal");

    let t = Instant::now();
    let code = d.terminate(Duration::from_secs(40));
    let took = t.elapsed();
    assert_eq!(code, Some(0), "the daemon must exit cleanly after SIGTERM");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!ovs.try_vsctl(&["br-exists", "br-a"]).0, "the interrupted run's bridge must be rolled back");
    let left = journals(journal.path());
    assert!(left.is_empty(), "no journal may be left: {left:?}");
    let (code, stderr) = wait_output(&mut run, Duration::from_secs(10));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("shutting down") && stderr.contains("rolled back"), "{stderr}");
    let audit = d.audit();
    let last = audit.iter().rev().find(|l| l["event"] == "run").expect("the run's audit line");
    assert_eq!(last["status"], "interrupted", "{last:#}");
    assert_eq!(last["rolled_back"], 1, "{last:#}");
    eprintln!("SIGTERM to exit, run rolled back: {took:?}");
}

/// The run journals (`*.jsonl`) in `dir`.
fn journals(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect()
}

/// `ip -s -j link show IFNAME` in `c`: received packets.
fn rx_packets(c: &Container, ifname: &str) -> u64 {
    let out = c.ip(&["-s", "-j", "link", "show", ifname]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0]["stats64"]["rx"]["packets"].as_u64().unwrap_or_else(|| panic!("{out}"))
}

/// Attack (issue 15 item 13): tenants a and b share a bridge. A port with no
/// access VLAN is a trunk to OVS; tenant a may not make one (nor turn its
/// port into one), so its container receives nothing of b's VLAN 250.
#[test]
fn attack_untagged_port_cannot_see_another_tenants_vlan() {
    let ovs = Ovs::start();
    let shared = |t: &mut Value| {
        for t in t.as_array_mut().unwrap() {
            t["attrs"]["bridges"] = serde_json::json!(["br-shared"]);
        }
    };
    let d = Daemon::start_with(Some(&ovs), shared, &[]);
    let ca = Container::start_labelled(&[("tenant", "a")]);
    let cb = Container::start_labelled(&[("tenant", "b")]);
    let r = d.submit(
        "ovsrt-b",
        "attach.wasm",
        &["br-shared", "eth1", &cb.name, "--ipaddress=10.2.0.5/24", "--vlan=250"],
    );
    assert_eq!(r.code, 0, "{r:?}");

    // Untagged: every VLAN. Refused, and nothing of it is left.
    let r = d.submit("ovsrt-a", "attach.wasm", &["br-shared", "eth1", &ca.name, "--ipaddress=10.1.0.5/24"]);
    let untagged_port = ovs.port_of(&ca.name, "eth1");
    assert_eq!(r.code, 1, "tenant a got an untagged (trunk) port {untagged_port:?}: {r:?}");
    assert!(r.stderr.contains("no-trunks"), "{r:?}");
    assert_eq!(untagged_port, None);

    // With an access VLAN of its own it is attached; `set-vlan none` would
    // make that port a trunk again: refused too.
    let r = d.submit(
        "ovsrt-a",
        "attach.wasm",
        &["br-shared", "eth1", &ca.name, "--ipaddress=10.1.0.5/24", "--vlan=150"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = d.submit("ovsrt-a", "set-vlan.wasm", &["br-shared", "eth1", &ca.name, "none"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("set-vlan on Port::") && r.stderr.contains("no-trunks"), "{r:?}");
    let port = ovs.port_of(&ca.name, "eth1").expect("a's port");
    assert_eq!(ovs.vsctl(&["get", "Port", &port, "tag"]).trim(), "150");

    // b broadcasts on VLAN 250 (ARP for an address nobody has): a sees none of it.
    std::thread::sleep(Duration::from_millis(1500)); // a's own link-up chatter settles
    let before = rx_packets(&ca, "eth1");
    let pid = cb.pid();
    let _ = try_sh("nsenter", &["-t", &pid, "-n", "ping", "-c", "4", "-i", "0.3", "-W", "1", "10.2.0.99"]);
    let after = rx_packets(&ca, "eth1");
    eprintln!("tenant a's eth1 received {} packets while b broadcast on VLAN 250", after - before);
    assert_eq!(after, before, "tenant a's container received packets of b's VLAN");
}

/// Attack (issue 15 item 14): a container named like another container's
/// id prefix does not take the references meant for that container.
#[test]
fn attack_hex_id_prefix_is_the_container_not_one_named_like_it() {
    let ovs = Ovs::start();
    let d = Daemon::start(Some(&ovs));
    let cb = Container::start_labelled(&[("tenant", "b")]);
    let prefix = cb.id()[..10].to_string();
    // Tenant a names its container after b's id prefix.
    let squatter = Named::start(&prefix, &[("tenant", "a")]);
    // b attaches its container by that prefix: it is b's, not a's.
    let r = d.submit(
        "ovsrt-b",
        "attach.wasm",
        &["br-b", "eth1", &prefix, "--ipaddress=10.2.0.5/24", "--vlan=250"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let port = ovs.port_of(&prefix, "eth1").expect("b's port");
    let full = ovs.vsctl(&["get", "Interface", &port, "external_ids:container_full_id"]);
    assert_eq!(full.trim().trim_matches('"'), cb.id(), "the prefix went to another container");
    drop(squatter);
}

/// Attack (issue 15 item 14): ports match their container by full id. A
/// container that takes over the name of an attached container (renamed
/// away) does not get to detach its ports.
#[test]
fn ports_match_by_full_id_not_by_a_reused_name() {
    let ovs = Ovs::start();
    let br = unique("brf");
    ovs.add_bridge(&br);
    let first = Container::start();
    let name = first.name.clone();
    let r = ovs.run(&[script("attach").to_str().unwrap(), &br, "eth1", &name, "--ipaddress=10.9.0.2/24"]);
    assert_eq!(r.code, 0, "{r:?}");
    let port = ovs.port_of(&name, "eth1").expect("the port");
    sh("docker", &["rename", &name, &format!("{name}-old")]);
    let _first_renamed = Named(format!("{name}-old"));
    let second = Named::start(&name, &[]);
    let r = ovs.run(&[script("detach").to_str().unwrap(), &br, "eth1", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        ovs.try_vsctl(&["port-to-br", &port]).0,
        "detaching the new container named {name} removed the old one's port: {r:?}"
    );
    drop(second);
}

/// A container with exactly this name (the tests' squatters), removed on drop.
struct Named(String);

impl Named {
    fn start(name: &str, labels: &[(&str, &str)]) -> Named {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("--label={k}={v}")).collect();
        let image = image();
        let mut args = vec!["run", "-d", "--net=none", "--name", name];
        args.extend(labels.iter().map(String::as_str));
        args.extend([image.as_str(), "/bin/sleep", "3600"]);
        sh("docker", &args);
        Named(name.to_string())
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

// ---- the raw client, run as a tenant user by the tests above ----------------

fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    f.push(tag);
    f.extend_from_slice(payload);
    f
}

/// Print the daemon's frames as `out ...`, `err ...`, `exit N`.
fn print_replies(s: &mut UnixStream) {
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            println!("eof");
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        let text = String::from_utf8_lossy(&body[1..]).into_owned();
        match body[0] {
            b'O' => println!("out {text:?}"),
            b'E' => println!("err {text:?}"),
            b'X' => {
                let v: Value = serde_json::from_str(&text).unwrap();
                println!("exit {}", v["code"]);
                return;
            }
            t => println!("tag {t}"),
        }
    }
}

#[test]
#[ignore = "a helper: the daemon tests run it as a tenant user"]
fn raw_client() {
    let socket = PathBuf::from(std::env::var("OVSRT_RAW_SOCKET").expect("OVSRT_RAW_SOCKET"));
    let mode = std::env::var("OVSRT_RAW_MODE").unwrap();
    let wasm = std::fs::read(std::env::var("OVSRT_RAW_SCRIPT").unwrap()).unwrap();
    let mut s = UnixStream::connect(Path::new(&socket)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = |v: Value| frame(b'R', &serde_json::to_vec(&v).unwrap());
    match mode.as_str() {
        "forged" => {
            let forged = serde_json::json!({"args": ["host-route", "198.51.100.0/24", "10.1.0.1"], "tenant": "a", "uid": 0});
            // hostile host-route: denied for anybody; the audit shows who ran it.
            send(&mut s, &req(forged));
            send(&mut s, &frame(b'W', &wasm));
        }
        "oversized" => send(&mut s, &u32::MAX.to_be_bytes()),
        "empty" => send(&mut s, &0u32.to_be_bytes()),
        "garbage-json" => {
            send(&mut s, &frame(b'R', b"{not json"));
        }
        "wrong-tag" => send(&mut s, &frame(b'W', b"xx")),
        "no-script" => {
            send(&mut s, &req(serde_json::json!({"args": []})));
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        "huge-script" => {
            send(&mut s, &req(serde_json::json!({"args": []})));
            send(&mut s, &((64u32 << 20) + 1).to_be_bytes());
        }
        "not-wasm" => {
            send(&mut s, &req(serde_json::json!({"args": []})));
            send(&mut s, &frame(b'W', b"\0asm\x01\0\0\0 a core module header and junk"));
        }
        "truncated" => {
            send(&mut s, &100u32.to_be_bytes());
            send(&mut s, b"R{\"args\"");
            return; // hang up mid-frame
        }
        "flood" => {
            // Many connections from 8 threads at once, each read to its end.
            drop(s);
            let n: u32 = std::env::var("OVSRT_RAW_N").unwrap().parse().unwrap();
            let made = std::sync::atomic::AtomicU32::new(0);
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    scope.spawn(|| {
                        for _ in 0..n / 8 {
                            let Ok(mut c) = UnixStream::connect(Path::new(&socket)) else { continue };
                            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                            let mut sink = Vec::new();
                            let _ = c.read_to_end(&mut sink);
                        }
                    });
                }
            });
            // The first connection, made before the mode was looked at, counts too.
            println!("connected {}", made.into_inner() + 1);
            return;
        }
        "hangup-mid-run" => {
            send(&mut s, &req(serde_json::json!({"args": ["loop"]})));
            send(&mut s, &frame(b'W', &wasm));
            std::thread::sleep(Duration::from_millis(500));
            return; // hang up while the script spins
        }
        other => panic!("unknown raw mode {other}"),
    }
    print_replies(&mut s);
}

/// Writes may fail once the daemon has refused and closed: that is fine.
fn send(s: &mut UnixStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

#[test]
fn serve_require_signed_refuses_scripts_no_trusted_key_signed() {
    // The shipped scripts carry the TEST key's signature; the test guests none.
    let trust = tempfile::Builder::new().prefix("ovsrt-trust").tempdir_in("/tmp").unwrap();
    std::fs::copy(root().join("keys/test/trusted/ovs-run-test-only.pub"), trust.path().join("test.pub"))
        .unwrap();
    let t = trust.path().to_str().unwrap();
    let d = Daemon::start_with(None, |_| {}, &["--require-signed", "--trust", t]);

    let r = d.submit("ovsrt-a", "hostile.wasm", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refused") && r.stderr.contains("signed"), "{r:?}");
    // A signed script gets past vetting: its own usage text, as without the flag.
    let r = d.submit("ovsrt-a", "attach.wasm", &["--", "--help"]);
    assert!(r.stdout.contains("Usage: attach") || r.stderr.contains("Usage: attach"), "{r:?}");
    let audit = d.audit();
    let unsigned: Vec<&Value> =
        audit.iter().filter(|v| v["event"] == "refused" && v["status"] == "unsigned").collect();
    assert_eq!(unsigned.len(), 1, "{audit:#?}");
    assert_eq!(unsigned[0]["tenant"], "a");
    drop(d);

    // A trust store without keys would refuse everything: the daemon does not start.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--require-signed", "--trust", empty.path().to_str().unwrap(), "--policy"])
        .arg(root().join("examples/policy/tenants.cedar"))
        .args(["--socket", "/tmp/ovsrt-never.sock", "--audit"])
        .arg(empty.path().join("audit.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no keys"), "{out:?}");
}

#[test]
fn the_warm_daemon_reconnects_when_ovsdb_restarted_between_runs() {
    // serve keeps one OVSDB connection for all runs: a restarted
    // ovsdb-server must cost nothing but a reconnect on the next run.
    let ovs = Ovs::start();
    let d = Daemon::start(Some(&ovs));
    let ca = Container::start_labelled(&[("tenant", "a")]);
    let r = d.submit(
        "ovsrt-a",
        "attach.wasm",
        &["br-a", "eth1", &ca.name, "--ipaddress=10.1.0.5/24", "--vlan=150"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    ovs.stop_ovsdb();
    ovs.start_ovsdb();
    let r = d.submit(
        "ovsrt-a",
        "attach.wasm",
        &["br-a", "eth2", &ca.name, "--ipaddress=10.1.0.6/24", "--vlan=151"],
    );
    assert_eq!(r.code, 0, "the run after the restart: {r:?}");
    let ports = ovs.vsctl(&["list-ports", "br-a"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    assert!(ca.ip(&["-o", "addr", "show", "eth2"]).contains("10.1.0.6/24"));
}

/// The daemon's per-request log lines (logfmt) with `event`.
fn log_lines(d: &Daemon, event: &str) -> Vec<String> {
    let want = format!("ovs-run serve: event={event} ");
    d.log().lines().filter(|l| l.starts_with(&want)).map(str::to_string).collect()
}

#[test]
fn serve_allow_list_submit_dry_run_and_json_and_a_log_line_per_request() {
    let ovs = Ovs::start();
    // Only attach.wasm (as the daemon gets it: the copy in its directory) may run.
    let allow = tempfile::Builder::new().prefix("ovsrt-allow").tempdir_in("/tmp").unwrap();
    let list = allow.path().join("allowed");
    let sha = sh("sha256sum", &[script("attach").to_str().unwrap()]);
    std::fs::write(&list, format!("# vetted scripts\n{sha}")).unwrap();
    let d = Daemon::start_with(Some(&ovs), |_| {}, &["--allow-digests", list.to_str().unwrap()]);
    let ca = Container::start_labelled(&[("tenant", "a")]);
    let attach = ["br-a", "eth1", &ca.name, "--ipaddress=10.1.0.5/24", "--vlan=150"];

    // Not on the list: refused before it is compiled, said to the tenant, the audit log and stderr.
    let r = d.submit("ovsrt-a", "hostile.wasm", &["env"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not in the daemon's allow-list"), "{r:?}");
    assert!(!r.stdout.contains("env-count"), "{r:?}");
    assert!(d.audit().iter().any(|l| l["event"] == "refused" && l["status"] == "not-allowed"));
    let refused = log_lines(&d, "refused");
    assert!(
        refused.iter().any(|l| l.contains(" tenant=a ") && l.contains(" status=not-allowed ")),
        "{refused:#?}"
    );

    // --dry-run: the plan, under the tenant's policy, and nothing changes.
    let before = (ovs.snapshot(), ca.ip(&["-o", "addr"]));
    let r = d.submit_with("ovsrt-a", &["--dry-run"], "attach.wasm", &attach);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("Plan (dry-run: nothing was changed):"), "{r:?}");
    assert!(r.stdout.contains("br-a") && r.stdout.contains("10.1.0.5/24"), "{r:?}");
    let r = d.submit_with("ovsrt-a", &["--dry-run", "--json"], "attach.wasm", &attach);
    assert_eq!(r.code, 0, "{r:?}");
    let plan: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!((plan["status"].as_str(), plan["dry_run"].as_bool()), (Some("ok"), Some(true)), "{plan:#}");
    assert!(plan["changes"].as_array().unwrap().len() >= 2, "{plan:#}");
    assert_eq!(before, (ovs.snapshot(), ca.ip(&["-o", "addr"])), "a dry-run changed the system");
    // Its calls are audited under a run id that says it was a dry-run.
    let audit = d.audit();
    let planned = audit.iter().find(|l| l["action"] == "add-port").expect("the dry-run's add-port");
    assert!(planned["run"].as_str().unwrap().ends_with("-dry-run"), "{planned:#}");
    // A dry-run of what the policy denies fails like the real run would.
    let r =
        d.submit_with("ovsrt-a", &["--dry-run"], "attach.wasm", &["br-a", "eth2", &ca.name, "--vlan=300"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("vlan-range"), "{r:?}");

    // --json for real: the changes, and only the document on stdout.
    let r = d.submit_with("ovsrt-a", &["--json"], "attach.wasm", &attach);
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(
        (out["status"].as_str(), out["code"].as_i64(), out["dry_run"].as_bool()),
        (Some("ok"), Some(0), Some(false))
    );
    assert!(out["changes"].as_array().unwrap().iter().any(|c| c["op"] == "add-port"), "{out:#}");
    assert_eq!(ovs.vsctl(&["get", "Port", &find_port(&ovs, &ca), "tag"]).trim(), "150");
    // A refusal with --json is a document too.
    let r = d.submit_with("ovsrt-x", &["--json"], "attach.wasm", &attach);
    assert_eq!(r.code, 2, "{r:?}");
    let out: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    assert_eq!(out["status"], "unknown-tenant", "{out:#}");
    assert!(out["error"].as_str().unwrap().contains("not a tenant"), "{out:#}");

    // One line per run on stderr: who, what, how it ended.
    let runs = log_lines(&d, "run");
    assert_eq!(runs.len(), 4, "{runs:#?}");
    let (uid_a, _) = test_user("ovsrt-a");
    let sha = &sha[..64];
    assert!(
        runs.iter().all(|l| l.contains(" tenant=a ")
            && l.contains(&format!(" uid={uid_a} "))
            && l.contains(&format!(" sha256={sha} "))),
        "{runs:#?}"
    );
    assert!(
        runs[0].contains(" dry_run=true ")
            && runs[0].contains(" status=ok ")
            && runs[0].contains(" duration_ms="),
        "{}",
        runs[0]
    );
    assert!(runs[2].contains(" status=script-error code=1 ") && runs[2].contains(" error=\""), "{}", runs[2]);
    assert!(runs[3].contains(" dry_run=false ") && runs[3].contains(" status=ok code=0 "), "{}", runs[3]);
}

#[test]
fn a_user_who_is_not_root_is_told_to_use_submit() {
    let ovs = Ovs::start();
    let d = Daemon::start(None);
    let (uid, gid) = test_user("ovsrt-a");
    // The user's runtime directory (where its journal goes by default) in
    // one of the test's own, removed with it: not /tmp/ovs-run-UID for good.
    // Under /tmp itself: the suite's TMPDIR is root's, closed to the user.
    let runtime = tempfile::Builder::new().prefix("ovsrt-runtime.").tempdir_in("/tmp").unwrap();
    std::os::unix::fs::chown(runtime.path(), Some(uid), Some(gid)).unwrap();
    let local = |opts: &[&str]| {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(bin())
            .args(["--no-cache", "--ovsdb", &format!("unix:{}/db.sock", ovs.rundir())])
            .args(opts)
            .arg(d.path("attach.wasm"))
            .args(["br0", "eth1", "web"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DOCKER_HOST", std::env::var("DOCKER_HOST").unwrap_or_default())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // The journal directory it may not write.
    let (code, stderr) = local(&["--journal-dir", "/root/ovsrt-no-journal"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ovs-run submit") && stderr.contains(&format!("uid {uid}")), "{stderr}");
    assert!(!stderr.contains("cannot create a journal"), "{stderr}");
    // Its own journal, but Docker's and OVSDB's sockets are root's (in
    // directories it may not enter: they look missing).
    let (code, stderr) = local(&[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("cannot reach Docker") && stderr.contains("ovs-run submit"), "{stderr}");
}
