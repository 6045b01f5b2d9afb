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

/// uid and gid of a test user, created (system user, no home) when missing.
fn user(name: &str) -> (u32, u32) {
    if !try_sh("id", &["-u", name]).0 {
        // Two test threads may race to create it: the loser's useradd fails.
        let _ = try_sh("useradd", &["-M", "-r", "-s", "/usr/sbin/nologin", name]);
    }
    let uid = sh("id", &["-u", name]).trim().parse().unwrap();
    let gid = sh("id", &["-g", name]).trim().parse().unwrap();
    (uid, gid)
}

struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    /// A daemon for the example policy, against `ovs` when given.
    fn start(ovs: Option<&Ovs>) -> Daemon {
        require_root();
        for u in USERS {
            user(u);
        }
        let dir = tempfile::Builder::new().prefix("ovsrt-daemon").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // The example tenants, with the test users' uids.
        let mut tenants: Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("examples/policy/tenants.json")).unwrap(),
        )
        .unwrap();
        for t in tenants.as_array_mut().unwrap() {
            let id = t["uid"]["id"].as_str().unwrap().to_string();
            t["attrs"]["uids"] = serde_json::json!([user(&format!("ovsrt-{id}")).0]);
        }
        let tenants_file = dir.path().join("tenants.json");
        std::fs::write(&tenants_file, serde_json::to_string_pretty(&tenants).unwrap()).unwrap();
        // Scripts the tenants submit: readable by them.
        for (src, name) in [(script("attach"), "attach.wasm"), (guest("hostile"), "hostile.wasm")] {
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
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
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
        let (uid, gid) = user(user_name);
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(bin())
            .arg("submit")
            .arg("--socket")
            .arg(&self.socket)
            .arg(self.path(script))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    fn submit(&self, user_name: &str, script: &str, args: &[&str]) -> Run {
        let t = Instant::now();
        let out = self.submit_cmd(user_name, script, args).output().expect("run submit");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: t.elapsed(),
        }
    }

    /// This test binary, re-run as `user_name`, speaking raw protocol.
    fn raw(&self, user_name: &str, mode: &str) -> String {
        let (uid, gid) = user(user_name);
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg(&exe)
            .args(["raw_client", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("OVSRT_RAW_SOCKET", &self.socket)
            .env("OVSRT_RAW_MODE", mode)
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
}

impl Drop for Daemon {
    fn drop(&mut self) {
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
    let cases: [(&[&str], &str, &str); 4] = [
        (&["br-a", "eth2", &ca.name, "--ipaddress=10.2.0.5/24"], "set-address", "addresses-in-network"),
        (&["br-a", "eth2", &cb.name, "--ipaddress=10.1.0.6/24"], "lookup-container", "deny by default"),
        (&["br-b", "eth2", &ca.name, "--ipaddress=10.1.0.6/24"], "create-bridge", "deny by default"),
        (&["br-a", "eth2", &ca.name, "--vlan=300"], "add-port", "vlan-range"),
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
    let (uid_a, _) = user("ovsrt-a");
    let runs: Vec<&Value> = audit.iter().filter(|l| l["event"] == "run").collect();
    assert_eq!(runs.len(), 6, "{audit:#?}");
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
    let (uid_x, _) = user("ovsrt-x");
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
    let r = d.submit("ovsrt-a", "attach.wasm", &["br-a", "eth1", &ca.name, "--ipaddress=10.1.0.9/24"]);
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
