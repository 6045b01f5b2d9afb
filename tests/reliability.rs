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
    assert_eq!(r.code, 1, "{r:?}");
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
    assert_eq!(r.code, 1, "{r:?}");
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
