//! Crash safety and faults, against real daemons: kill -9 at random points
//! then recover, signals, a journal of a live run left alone, daemons and
//! containers going away mid-run, concurrent runs on one bridge, hostile
//! inputs. Every "as before" is checked with ovs-vsctl, ip and nsenter.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Start ovs-run with `args` against `ovs` without waiting for it.
fn spawn(ovs: &Ovs, args: &[&str]) -> Child {
    Command::new(bin())
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(args)
        .env("OVS_RUNDIR", ovs.rundir())
        .env("OVS_RUN_JOURNAL_DIR", journal_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ovs-run")
}

/// Read the child's stdout until a line equal to `line` (the script's progress marks).
fn wait_for_line(child: &mut Child, line: &str) {
    let out = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(out);
    let mut buf = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        buf.clear();
        if reader.read_line(&mut buf).unwrap_or(0) == 0 {
            panic!("ovs-run ended before printing {line:?}");
        }
        if buf.trim() == line {
            return;
        }
    }
    panic!("no {line:?} within 30 s");
}

/// `hostile slow-attach`: attach each container's eth0 to `br` step by
/// step, pausing `ms` milliseconds after each change; returned at the first
/// pause, with a change made and the run still going.
fn slow_attach(ovs: &Ovs, br: &str, ms: u32, containers: &[&str]) -> Child {
    let hostile = guest("hostile");
    let ms = ms.to_string();
    let mut args = vec![hostile.to_str().unwrap(), "slow-attach", br, ms.as_str()];
    args.extend_from_slice(containers);
    let mut child = spawn(ovs, &args);
    wait_for_line(&mut child, "paused");
    child
}

fn finish(child: Child) -> Run {
    let t = Instant::now();
    let out = child.wait_with_output().expect("wait for ovs-run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t.elapsed(),
    }
}

fn state(ovs: &Ovs, containers: &[Container]) -> (String, String, Vec<String>) {
    (ovs.snapshot(), host_links(), containers.iter().map(|c| c.ip(&["-o", "addr"])).collect())
}

fn start_containers(n: usize) -> Vec<Container> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(Container::start)).collect();
        handles.into_iter().map(|h| h.join().expect("container start")).collect()
    })
}

fn journal_files() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(journal_dir())
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn kill_9_at_random_points_then_recover_leaves_nothing_behind() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let containers = start_containers(50);
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let hostile = guest("hostile");
    let mut args = vec![hostile.to_str().unwrap(), "attach-all", br.as_str(), "eth0"];
    args.extend(names.iter().copied());
    let before = state(&ovs, &containers);

    // Calibrate: how long a whole run takes here (compile cache warm), then
    // undo it with detach-all.
    let warm = ovs_run(&["--dry-run", "--assume-container", "x", hostile.to_str().unwrap(), "env"], &[]);
    assert_eq!(warm.code, 0, "{warm:?}");
    let t = Instant::now();
    let full = finish(spawn(&ovs, &args));
    let whole = t.elapsed();
    assert_eq!(full.code, 0, "{full:?}");
    let all = script("detach-all");
    for c in &names {
        assert_eq!(ovs.run(&[all.to_str().unwrap(), &br, c]).code, 0);
    }
    assert_eq!(before, state(&ovs, &containers), "calibration run not undone");

    // A cheap deterministic spread of kill points over the run.
    let mut seed = u64::from(std::process::id());
    for trial in 0..10 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Kill points spread over the first 70% of the calibrated time: the
        // calibration run also paid for loading, so later runs are faster.
        let frac = 0.05 + 0.65 * ((seed >> 33) as f64 / (1u64 << 31) as f64);
        let mut delay = whole.mul_f64(frac);
        // The calibration is one sample on a machine that may be busy: a
        // run that finishes before its kill point is undone and tried again
        // with the kill earlier, so that every trial really kills a run.
        let mut misses = 0;
        loop {
            let mut child = spawn(&ovs, &args);
            std::thread::sleep(delay);
            child.kill().expect("kill -9");
            let killed = finish(child);
            if killed.code != 0 {
                break;
            }
            misses += 1;
            assert!(misses < 6, "trial {trial}: every run finished before its kill (last at {delay:?})");
            for c in &names {
                assert_eq!(ovs.run(&[all.to_str().unwrap(), &br, c]).code, 0);
            }
            assert_eq!(before, state(&ovs, &containers), "trial {trial}: a finished run not undone");
            delay = delay.mul_f64(0.5);
        }

        let listed = ovs_run(&["recover", "--list"], &[]);
        assert_eq!(listed.code, 0, "{listed:?}");
        let recovered = ovs_run(&["recover"], &[]);
        assert_eq!(recovered.code, 0, "trial {trial}: {recovered:?}");
        assert_eq!(
            before,
            state(&ovs, &containers),
            "trial {trial} (kill after {delay:?}): left something behind"
        );
        assert!(journal_files().is_empty(), "trial {trial}: journal left: {:?}", journal_files());
    }
}

#[test]
fn sigterm_mid_run_rolls_back() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let before = state(&ovs, std::slice::from_ref(&c));
    let child = slow_attach(&ovs, &br, 10000, &[&c.name]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let r = finish(child);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("interrupted by SIGTERM") && r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(before, state(&ovs, std::slice::from_ref(&c)));
    assert!(journal_files().is_empty());
}

#[test]
fn the_next_run_recovers_a_killed_one_and_live_runs_are_left_alone() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let before = state(&ovs, std::slice::from_ref(&c));
    let mut child = slow_attach(&ovs, &br, 10000, &[&c.name]);

    // Alive and paused: its journal is locked and not touched.
    let listed = ovs_run(&["recover", "--list"], &[]);
    assert!(listed.stdout.contains("no interrupted runs"), "{listed:?}");
    assert!(port_count(&ovs, &br) == 1, "the live run's port is still there");

    child.kill().unwrap();
    finish(child);
    let listed = ovs_run(&["recover", "--list"], &[]);
    assert!(listed.stdout.contains("would undo: remove port"), "{listed:?}");
    // Any real run first rolls back what the dead one left.
    let r = ovs.run(&[guest("hostile").to_str().unwrap(), "env"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("recovered an interrupted run"), "{r:?}");
    assert_eq!(before, state(&ovs, std::slice::from_ref(&c)));
}

fn port_count(ovs: &Ovs, br: &str) -> usize {
    ovs.vsctl(&["list-ports", br]).lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn a_container_killed_mid_attach_is_a_clear_error_and_a_full_rollback() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let (ovs_before, links_before) = (ovs.snapshot(), host_links());
    let child = slow_attach(&ovs, &br, 1500, &[&c.name]);
    sh("docker", &["kill", &c.name]);
    let r = finish(child);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&c.name) || r.stderr.contains("not found"), "names what failed: {r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(ovs_before, ovs.snapshot());
    assert_eq!(links_before, host_links());
}

#[test]
fn ovsdb_server_stopped_mid_run_then_recover_finishes_the_rollback() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let (c1, c2) = (Container::start(), Container::start());
    let before = (ovs.snapshot(), host_links());
    // The second container's add-port needs OVSDB while it is down.
    let child = slow_attach(&ovs, &br, 700, &[&c1.name, &c2.name]);
    ovs.stop_ovsdb();
    let r = finish(child);
    // OVSDB down mid-run: the system's fault, exit status 4.
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("db.sock"), "the error names the OVSDB socket: {r:?}");
    // The rollback could not remove the first port without OVSDB: the
    // journal is kept, and `recover` finishes the job once it is back.
    assert!(!journal_files().is_empty(), "journal kept for later: {r:?}");
    ovs.start_ovsdb();
    let rec = ovs_run(&["recover"], &[]);
    assert_eq!(rec.code, 0, "{rec:?}");
    assert_eq!(before, (ovs.snapshot(), host_links()));
    assert!(journal_files().is_empty());
}

#[test]
fn ovsdb_server_restarted_between_calls_is_transparent() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let (c1, c2) = (Container::start(), Container::start());
    let child = slow_attach(&ovs, &br, 1500, &[&c1.name]);
    ovs.stop_ovsdb();
    ovs.start_ovsdb();
    let r = finish(child);
    assert_eq!(r.code, 0, "{r:?}");
    // The same process-less path: a fresh run reaches the restarted server.
    let a = script("attach");
    let r = ovs.run(&[a.to_str().unwrap(), &br, "eth0", &c2.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(port_count(&ovs, &br), 2);
}

#[test]
fn ovs_vswitchd_stopped_is_a_timeout_that_names_it_and_nothing_stays() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let before = (ovs.snapshot(), host_links());
    ovs.stop_vswitchd();
    let a = script("attach");
    let r = ovs.run(&[
        "--apply-timeout",
        "1",
        a.to_str().unwrap(),
        &br,
        "eth0",
        &c.name,
        "--ipaddress=10.72.0.2/24",
    ]);
    ovs.start_vswitchd();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("ovs-vswitchd"), "{r:?}");
    assert_eq!(before.0, ovs.snapshot(), "no OVS rows left");
    assert_eq!(before.1, host_links(), "no veth left");
}

#[test]
fn dockerd_unreachable_is_a_clear_error() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let before = (ovs.snapshot(), host_links());
    let a = script("attach");
    let r =
        ovs.run(&["--docker", "unix:///nonexistent/docker.sock", a.to_str().unwrap(), &br, "eth0", "web"]);
    // Docker down is the system's fault: exit status 4, not the script's 1.
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("/nonexistent/docker.sock"), "{r:?}");
    assert_eq!(before, (ovs.snapshot(), host_links()));
}

#[test]
fn eight_concurrent_runs_on_one_bridge_lose_nothing() {
    let (ovs, br) = Ovs::with_bridge("tb");
    // 40 containers, 4 interfaces each: 160 attachments, 20 per process.
    let containers = start_containers(40);
    let a = script("attach");
    let jobs: Vec<(String, String)> =
        (0..160).map(|i| (containers[i % 40].name.clone(), format!("eth{}", i / 40))).collect();
    std::thread::scope(|s| {
        for p in 0..8 {
            let (jobs, ovs, a, br) = (&jobs, &ovs, &a, &br);
            s.spawn(move || {
                for (c, ifname) in jobs.iter().skip(p * 20).take(20) {
                    let r = ovs.run(&[a.to_str().unwrap(), br, ifname, c]);
                    assert_eq!(r.code, 0, "{c} {ifname}: {r:?}");
                }
            });
        }
    });
    assert_eq!(port_count(&ovs, &br), 160);
    for (c, ifname) in &jobs {
        let id = containers.iter().find(|x| &x.name == c).unwrap();
        assert!(id.ip(&["link", "show", ifname]).contains("UP"), "{c} {ifname}");
    }
}

#[test]
fn hostile_inputs_are_rejected_and_the_host_is_fine() {
    // A 10 MiB interface name: a short, clear error (exit 1), fast.
    let r = ovs_run(&[guest("hostile").to_str().unwrap(), "hugename"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("10485760 bytes"), "{r:?}");
    assert!(r.stderr.len() < 2000, "error not cut down: {} bytes", r.stderr.len());
    // A million calls: stopped at the default call limit.
    let r = ovs_run(&[guest("hostile").to_str().unwrap(), "calls", "1000000"], &[]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("call limit"), "{r:?}");
}

// ---------------------------------------------------------------------------
// Issue 15, crash safety and the journal (items 5, 6, 8, 9, 10).

use ovs_run::backend::restore::Restore;
use ovs_run::backend::system::{SystemBackend, SystemConfig};
use ovs_run::backend::{host_port_name, Backend, Op};
use ovs_run::journal::store::{Header, NsId, Place, Record};
use ovs_run::types::{Cidr, ContainerRef, IfName, MacAddr, Mtu, NetnsName, RouteSpec, Target, VlanId};

/// Host links of ovs-run's port naming (`ovr` + 10 hex digits + `_l`).
fn generated_veths() -> Vec<String> {
    host_links()
        .lines()
        .filter(|n| n.len() == 15 && n.starts_with("ovr") && n.ends_with("_l"))
        .map(str::to_string)
        .collect()
}

/// Item 5: a detach-many killed at several points, then `recover` and `gc`:
/// no host veth and no OVS row stays (before the fix the rows went first and
/// the veths stayed for good: `recover` undid 0 and `gc` saw nothing).
#[test]
fn kill_9_during_detach_many_then_recover_and_gc_leave_no_veth_and_no_row() {
    let (ovs, br) = Ovs::with_bridge("tk");
    let containers = start_containers(20);
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let (attach, detach) = (script("attach-many"), script("detach-many"));
    let mut attach_args = vec![attach.to_str().unwrap(), br.as_str(), "eth0"];
    attach_args.extend(names.iter().copied());
    let mut detach_args = vec![detach.to_str().unwrap(), br.as_str(), "eth0"];
    detach_args.extend(names.iter().copied());
    let attach_all = || {
        let r = ovs.run(&attach_args);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(port_count(&ovs, &br), names.len());
    };
    // Calibrate: a whole detach-many, compile cache warm.
    attach_all();
    let t = Instant::now();
    let full = finish(spawn(&ovs, &detach_args));
    let whole = t.elapsed();
    assert_eq!(full.code, 0, "{full:?}");
    assert!(generated_veths().is_empty(), "calibration detach left veths: {:?}", generated_veths());

    let mut killed_mid = 0;
    for (trial, frac) in [0.35, 0.5, 0.65, 0.8, 0.9, 0.97].into_iter().enumerate() {
        attach_all();
        let child = spawn(&ovs, &detach_args);
        std::thread::sleep(whole.mul_f64(frac));
        let mut child = child;
        child.kill().expect("kill -9");
        let killed = finish(child);
        let (rows, veths) = (port_count(&ovs, &br), generated_veths().len());
        if rows < names.len() && veths > 0 && killed.code != 0 {
            killed_mid += 1;
        }
        let rec = ovs_run(&["recover"], &ovs.env());
        assert_eq!(rec.code, 0, "trial {trial} ({frac}): {rec:?}");
        let gc = ovs.run(&["gc"]);
        assert_eq!(gc.code, 0, "trial {trial}: {gc:?}");
        eprintln!(
            "trial {trial}: killed at {:?} (exit {}): {rows} rows, {veths} veths; after recover+gc: {} rows, {} veths",
            whole.mul_f64(frac),
            killed.code,
            port_count(&ovs, &br),
            generated_veths().len()
        );
        assert_eq!(port_count(&ovs, &br), 0, "trial {trial}: rows left");
        assert!(generated_veths().is_empty(), "trial {trial}: veths left: {:?} {rec:?}", generated_veths());
        for c in &containers {
            assert!(!c.ip(&["-o", "link"]).contains("eth0"), "trial {trial}: eth0 left in {}", c.name);
        }
        assert!(journal_files().is_empty(), "trial {trial}: journal left: {:?}", journal_files());
    }
    eprintln!("{killed_mid} of 6 kills landed between the rows and the veths");
}

/// Item 5: `gc` removes a host veth of ovs-run's naming that no OVS port
/// uses, and leaves the veths of live ports alone.
#[test]
fn gc_removes_orphaned_veths_and_keeps_live_ones() {
    let (ovs, br) = Ovs::with_bridge("tg");
    let ns = Netns::new();
    let r = ovs.run(&[
        guest("hostile").to_str().unwrap(),
        "netns-attach",
        &br,
        &ns.name,
        "10.81.0.2/24",
        "10.81.0.1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let live = ovs.vsctl(&["list-ports", &br]).trim().to_string();
    let target = Target::Netns { name: NetnsName::parse(&format!("gone-{}", std::process::id())).unwrap() };
    let orphan = host_port_name(&target, &IfName::parse("eth9").unwrap()).to_string();
    sh("ip", &["link", "add", &orphan, "type", "veth", "peer", "name", &format!("{}p", &orphan[..10])]);
    let dry = ovs.run(&["gc", "--dry-run"]);
    assert!(dry.stdout.contains(&format!("would remove host veth {orphan}")), "{dry:?}");
    let gc = ovs.run(&["gc"]);
    assert_eq!(gc.code, 0, "{gc:?}");
    assert!(gc.stdout.contains(&format!("removed host veth {orphan}")), "{gc:?}");
    let links = host_links();
    assert!(!links.lines().any(|l| l == orphan), "orphan left: {links}");
    assert!(links.lines().any(|l| l == live), "live port's veth {live} removed: {links}");
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), live);
}

/// A journal file written by hand (what a dead run would have left).
fn write_journal(dir: &std::path::Path, header: &Header, lines: &[String]) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("run-{}-{}.jsonl", header.pid, header.started));
    let mut text = serde_json::to_string(header).unwrap() + "\n";
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn header(ovs: Option<&Ovs>, netns: Option<NsId>) -> Header {
    let mut h = Header::new(
        "hand-written.wasm",
        ovs.map_or("unix:/nonexistent/db.sock".into(), |o| format!("unix:{}/db.sock", o.rundir())),
        "unix:///nonexistent/docker.sock".into(),
        Duration::from_secs(5),
    );
    // Not this process: a dead one (pid 1 never runs ovs-run).
    h.pid = 1;
    h.started = u64::from(std::process::id()) * 1000 + rand_suffix();
    h.netns = netns;
    h
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn rec(r: &Record) -> String {
    serde_json::to_string(r).unwrap()
}

fn link_down_record(ifname: &str) -> Vec<String> {
    let n = IfName::parse(ifname).unwrap();
    let down = Op::SetLinkState { target: Target::Host, ifname: n.clone(), up: false };
    let up = Op::SetLinkState { target: Target::Host, ifname: n, up: true };
    vec![
        rec(&Record::Begin { idx: 0, op: Box::new(down) }),
        rec(&Record::Done { idx: 0, undo: vec![up], reversible: true }),
    ]
}

fn is_up(ns: Option<&str>, link: &str) -> bool {
    let out = match ns {
        Some(ns) => sh("ip", &["-n", ns, "-o", "link", "show", link]),
        None => sh("ip", &["-o", "link", "show", link]),
    };
    out.contains(",UP") || out.contains("<UP")
}

/// Item 6: a run killed in another network namespace is not recovered in
/// this one (before the fix `recover` here brought this namespace's own
/// link up); it is recovered there; one whose namespace is gone is refused.
#[test]
fn recovery_acts_only_in_the_namespace_the_run_was_in() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let jd = dir.path().join("journal");
    let other = format!("ovsrt-j-{}", std::process::id());
    let _ = try_sh("ip", &["netns", "del", &other]);
    sh("ip", &["netns", "add", &other]);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }
    let del = Del(other.clone());
    let link = format!("ovrtj{}", std::process::id() % 100000);
    // veths: this kernel may have no dummy links.
    let peer = format!("{link}p");
    sh("ip", &["link", "add", &link, "type", "veth", "peer", "name", &peer]);
    sh("ip", &["-n", &other, "link", "add", &link, "type", "veth", "peer", "name", &peer]);
    let theirs = NsId::of(&std::path::Path::new("/run/netns").join(&other)).unwrap();
    let path = write_journal(&jd, &header(None, Some(theirs)), &link_down_record(&link));
    let jd_s = jd.to_str().unwrap();

    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    let ours_up = is_up(None, &link);
    let _ = try_sh("ip", &["link", "del", &link]);
    assert!(!ours_up, "this namespace's link {link} was brought up: {r:?}");
    assert!(r.stderr.contains("not this one") && r.stderr.contains("kept"), "{r:?}");
    assert!(path.exists(), "journal of another namespace kept");
    // Recovered in its own namespace.
    let r = Command::new("ip")
        .args(["netns", "exec", other.as_str(), bin(), "recover", "--journal-dir", jd_s])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(is_up(Some(&other), &link), "the other namespace's link brought back up");
    assert!(!path.exists());

    // Its namespace gone: refused, kept.
    let path = write_journal(&jd, &header(None, Some(theirs)), &link_down_record(&link));
    drop(del);
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is gone") && r.stderr.contains("refusing"), "{r:?}");
    assert!(path.exists());
}

/// Item 6: a container target is reopened by its pid only while that pid
/// is the same process (start time): a reused pid is never acted in.
#[test]
fn recovery_never_acts_in_a_process_that_reused_the_pid() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let jd = dir.path().join("journal");
    // A process in a namespace of its own, whose lo is down.
    let mut child = Command::new("unshare").args(["--net", "sleep", "60"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id();
    let target = Target::Container {
        given: ContainerRef::parse("victim").unwrap(),
        id: "ab".repeat(32),
        name: "victim".into(),
        pid,
        labels: vec![],
    };
    let mut place = Place::of(&target).unwrap().unwrap();
    let lo = IfName::parse("lo").unwrap();
    let down = Op::SetLinkState { target: target.clone(), ifname: lo.clone(), up: false };
    let up = Op::SetLinkState { target: target.clone(), ifname: lo, up: true };
    let lines = |place: &Place| {
        vec![
            rec(&Record::Place { place: place.clone() }),
            rec(&Record::Begin { idx: 0, op: Box::new(down.clone()) }),
            rec(&Record::Done { idx: 0, undo: vec![up.clone()], reversible: true }),
        ]
    };
    let here = NsId::current().ok();
    // The run saw another process under this pid (an earlier start time).
    place.start_time = place.start_time.map(|t| t.saturating_sub(1));
    write_journal(&jd, &header(None, here), &lines(&place));
    let r = ovs_run(&["recover", "--journal-dir", jd.to_str().unwrap()], &[]);
    let lo_out = sh("nsenter", &["-t", &pid.to_string(), "-n", "ip", "-o", "link", "show", "lo"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(r.stderr.contains("is another process now"), "{r:?}");
    assert!(!lo_out.contains(",UP") && !lo_out.contains("<UP"), "acted in the new process: {lo_out}");
}

/// Item 8: a bad line in the middle, an unknown op, and a corrupt header.
/// What can be read is recovered, the rest is kept and named.
#[test]
fn corrupt_journals_are_recovered_as_far_as_readable_and_kept() {
    let (ovs, br) = Ovs::with_bridge("tc");
    let dir = tempfile::tempdir().unwrap();
    let jd = dir.path().join("journal");
    let jd_s = jd.to_str().unwrap();
    let bri = IfName::parse(&br).unwrap();
    let mut lines = Vec::new();
    for (i, p) in ["cp1", "cp2", "cp3"].into_iter().enumerate() {
        let port = format!("{p}{}", std::process::id() % 10000);
        ovs.vsctl(&["add-port", &br, &port, "--", "set", "interface", &port, "type=internal"]);
        let portn = IfName::parse(&port).unwrap();
        let add = Op::AddPort {
            bridge: bri.clone(),
            port: portn.clone(),
            target: Target::Host,
            ifname: portn.clone(),
            mtu: None,
            mac: None,
            vlan: None,
            trunks: vec![],
            sw_checksum: false,
            iface_id: None,
            addressing: Default::default(),
        };
        let mut begin = rec(&Record::Begin { idx: i, op: Box::new(add) });
        if i == 2 {
            // An op this ovs-run does not know.
            begin = begin.replace("\"add-port\"", "\"frobnicate\"");
        }
        lines.push(begin);
        lines.push(rec(&Record::Done {
            idx: i,
            undo: vec![Op::DelPort { bridge: bri.clone(), port: portn }],
            reversible: true,
        }));
        if i == 0 {
            lines.push("{\"rec\":\"done\",\"idx\":0,\"und".into());
        }
    }
    let path = write_journal(&jd, &header(Some(&ovs), NsId::current().ok()), &lines);
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(port_count(&ovs, &br), 0, "every readable undo ran: {r:?}");
    assert!(r.stderr.contains("line 4 of the journal cannot be read"), "{r:?}");
    assert!(r.stderr.contains("line 7 of the journal cannot be read"), "{r:?}");
    let kept = format!("{}.corrupt", path.display());
    assert!(r.stderr.contains(&format!("kept as {kept}")), "{r:?}");
    assert!(std::path::Path::new(&kept).exists() && !path.exists());

    // A corrupt header: nothing is done, the file is kept and named.
    let port = format!("cp4{}", std::process::id() % 10000);
    ovs.vsctl(&["add-port", &br, &port, "--", "set", "interface", &port, "type=internal"]);
    let bad = jd.join("run-1-2.jsonl");
    let del = rec(&Record::Done {
        idx: 0,
        undo: vec![Op::DelPort { bridge: bri.clone(), port: IfName::parse(&port).unwrap() }],
        reversible: true,
    });
    std::fs::write(&bad, format!("{{\"version\":2,\"pid\":\n{del}\n")).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("run-1-2.jsonl.corrupt cannot be read"), "{r:?}");
    assert_eq!(port_count(&ovs, &br), 1, "nothing guessed from a journal without a header");
    assert!(jd.join("run-1-2.jsonl.corrupt").exists() && !bad.exists());
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert!(r.stderr.contains("kept for inspection"), "{r:?}");
}

fn backend(ovs: Option<&Ovs>) -> SystemBackend {
    SystemBackend::new(SystemConfig {
        ovsdb: ovs
            .map_or("unix:/nonexistent/db.sock".to_string(), |o| format!("unix:{}/db.sock", o.rundir()))
            .parse()
            .unwrap(),
        docker: "unix:///nonexistent/docker.sock".into(),
        apply_timeout: Duration::from_secs(5),
        ovn_nb: None,
    })
}

async fn undo(b: &SystemBackend, undo: &[Op]) {
    for op in undo {
        b.apply(op).await.unwrap_or_else(|e| panic!("undo {op}: {e}"));
    }
}

/// Item 9: set-link-down, del-address and del-route are undone exactly:
/// the routes the kernel took along come back, with their protocol and
/// metric (before the fix the default route was lost, and a deleted one
/// came back as `proto static`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_routes_a_change_took_along() {
    let ns = Netns::new();
    let target = Target::Netns { name: NetnsName::parse(&ns.name).unwrap() };
    // A veth (this kernel may have no dummy links), its peer up for carrier.
    ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    ns.ip(&["addr", "add", "10.93.0.1/24", "dev", "d0"]);
    ns.ip(&["link", "set", "d1", "up"]);
    ns.ip(&["link", "set", "d0", "up"]);
    ns.ip(&["route", "add", "default", "via", "10.93.0.254", "dev", "d0", "proto", "dhcp", "metric", "100"]);
    ns.ip(&["route", "add", "10.94.0.0/16", "via", "10.93.0.254", "proto", "boot"]);
    let state = || (ns.ip(&["route", "show"]), ns.ip(&["-d", "link", "show", "d0"]).replace(" qdisc", "\n"));
    let before = state();
    assert!(before.0.contains("default via 10.93.0.254 dev d0 proto dhcp metric 100"), "{before:?}");
    let b = backend(None);
    let d0 = IfName::parse("d0").unwrap();

    let a =
        b.apply(&Op::SetLinkState { target: target.clone(), ifname: d0.clone(), up: false }).await.unwrap();
    assert!(!ns.ip(&["route", "show"]).contains("default"), "the kernel took the default route along");
    undo(&b, &a.undo).await;
    assert_eq!(before.0, state().0, "set-link-down undone exactly");

    let cidr = Cidr::parse("10.93.0.1/24").unwrap();
    let a = b.apply(&Op::DelAddress { target: target.clone(), ifname: d0.clone(), cidr }).await.unwrap();
    undo(&b, &a.undo).await;
    assert_eq!(before.0, state().0, "del-address undone exactly");

    let default = RouteSpec { destination: None, via: Some("10.93.0.254".parse().unwrap()), device: None };
    let a = b.apply(&Op::DelRoute { target: target.clone(), route: default }).await.unwrap();
    assert!(!ns.ip(&["route", "show"]).contains("default"));
    undo(&b, &a.undo).await;
    assert_eq!(before, state(), "del-route undone exactly (proto dhcp metric 100)");
}

/// Items 9 and 10: set-mtu on lo (65536, outside what a script may ask)
/// and set-vlan on ports tagged 0 and 4095 record their undo (before the
/// fix the change was made and then reported as failed with nothing
/// journaled); set-mac on a link without an Ethernet address is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_old_values_are_recorded_raw_and_undone() {
    let (ovs, br) = Ovs::with_bridge("tv");
    let ns = Netns::new();
    let target = Target::Netns { name: NetnsName::parse(&ns.name).unwrap() };
    let b = backend(Some(&ovs));
    let lo = IfName::parse("lo").unwrap();
    assert!(ns.ip(&["link", "show", "lo"]).contains("mtu 65536"));
    let op = Op::SetMtu { target: target.clone(), ifname: lo.clone(), mtu: Mtu::new(1500).unwrap() };
    let a = b.apply(&op).await.expect("set-mtu on lo changes and records its undo");
    assert!(ns.ip(&["link", "show", "lo"]).contains("mtu 1500"));
    assert!(matches!(&a.undo[..], [Op::Restore { value: Restore::Mtu { mtu: 65536, .. } }]), "{:?}", a.undo);
    undo(&b, &a.undo).await;
    assert!(ns.ip(&["link", "show", "lo"]).contains("mtu 65536"));

    let mac = MacAddr::parse("02:00:00:00:00:01").unwrap();
    let e = b.apply(&Op::SetMac { target: target.clone(), ifname: lo.clone(), mac }).await.unwrap_err();
    assert!(e.message.contains("not an Ethernet link"), "{e:?}");
    assert!(ns.ip(&["link", "show", "lo"]).contains("00:00:00:00:00:00"));

    let bri = IfName::parse(&br).unwrap();
    for tag in ["0", "4095"] {
        let port = format!("tv{tag}{}", std::process::id() % 10000);
        ovs.vsctl(&[
            "add-port",
            &br,
            &port,
            &format!("tag={tag}"),
            "--",
            "set",
            "interface",
            &port,
            "type=internal",
        ]);
        let p = IfName::parse(&port).unwrap();
        let op = Op::SetVlan { bridge: bri.clone(), port: p, vlan: Some(VlanId::new(7).unwrap()) };
        let a = b.apply(&op).await.unwrap_or_else(|e| panic!("set-vlan over tag {tag}: {e}"));
        assert_eq!(ovs.vsctl(&["get", "port", &port, "tag"]).trim(), "7");
        undo(&b, &a.undo).await;
        assert_eq!(ovs.vsctl(&["get", "port", &port, "tag"]).trim(), tag);
    }
}

/// Item 10: ovsdb-server restarted while an add-port waits for
/// ovs-vswitchd: the call fails, and its cleanup reconnects and removes the
/// committed row and the veth (before the fix it ran on the dead
/// connection, and the row stayed while the journal said "failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_port_cleanup_reconnects_after_the_ovsdb_connection_died() {
    let (ovs, br) = Ovs::with_bridge("tr");
    let ns = Netns::new();
    let target = Target::Netns { name: NetnsName::parse(&ns.name).unwrap() };
    let b = backend(Some(&ovs));
    // Connected, so the call below uses this connection.
    b.list_bridges().await.unwrap();
    ovs.stop_vswitchd();
    let eth = IfName::parse("eth0").unwrap();
    let port = host_port_name(&target, &eth);
    let op = Op::AddPort {
        bridge: IfName::parse(&br).unwrap(),
        port: port.clone(),
        target: target.clone(),
        ifname: eth,
        mtu: None,
        mac: None,
        vlan: None,
        trunks: vec![],
        sw_checksum: true,
        iface_id: None,
        addressing: Default::default(),
    };
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            ovs.stop_ovsdb();
            ovs.start_ovsdb();
        });
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(b.apply(&op)))
    });
    let e = r.expect_err("the connection died mid-call");
    ovs.start_vswitchd();
    assert_eq!(port_count(&ovs, &br), 0, "row left after the failed add-port: {e:?}");
    assert!(!host_links().lines().any(|l| l == port.as_str()), "veth left: {e:?}");
}

/// An OVN change of a dead run is undone in the northbound database the run
/// used (recorded in its journal), whatever `$OVN_NB_DB` says when
/// `recover` runs: the Docker plugin started with `--ovn-nb` (and no
/// `$OVN_NB_DB`) used to leave its logical ports behind after a kill -9.
#[test]
fn recovery_undoes_ovn_changes_in_the_northbound_database_the_run_used() {
    use ovs_run::backend::ovn::{OvnChange, OvnName};
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    // A northbound database of this test's own: no datapath, so no namespace needed.
    sh("ovsdb-tool", &["create", &format!("{d}/nb.db"), "/usr/share/ovn/ovn-nb.ovsschema"]);
    sh(
        "ovsdb-server",
        &[
            &format!("{d}/nb.db"),
            &format!("--remote=punix:{d}/nb.sock"),
            &format!("--unixctl={d}/nb.ctl"),
            &format!("--pidfile={d}/nb.pid"),
            &format!("--log-file={d}/nb.log"),
            "--detach",
        ],
    );
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("ovs-appctl").args(["-t", &self.0, "exit"]).output();
        }
    }
    let _stop = Stop(format!("{d}/nb.ctl"));
    let nb = format!("unix:{d}/nb.sock");
    let nbctl = |args: &[&str]| sh("ovn-nbctl", &[&[format!("--db={nb}").as_str()], args].concat());
    let switch = format!("rel-ls-{}", std::process::id());
    // What the dead run did, and its journal saying so.
    nbctl(&["ls-add", &switch]);
    let name = OvnName::parse(&switch).unwrap();
    let create = Op::Ovn { change: OvnChange::CreateSwitch { name: name.clone(), subnet: None, mtu: None } };
    let delete = Op::Ovn { change: OvnChange::DeleteSwitch { name } };
    let lines = vec![
        rec(&Record::Begin { idx: 0, op: Box::new(create) }),
        rec(&Record::Done { idx: 0, undo: vec![delete], reversible: true }),
    ];
    let mut h = header(None, NsId::current().ok());
    h.ovn_nb = Some(nb.clone());
    let jd = dir.path().join("journal");
    let path = write_journal(&jd, &h, &lines);

    // The recovering process's environment points elsewhere on purpose.
    let r = ovs_run(
        &["recover", "--journal-dir", jd.to_str().unwrap()],
        &[("OVN_NB_DB", "unix:/nonexistent/nb.sock")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!nbctl(&["ls-list"]).contains(&switch), "the switch is gone: {r:?}");
    assert!(!path.exists(), "journal done with");
}
