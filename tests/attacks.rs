//! Attacks on the host's bounds (issue 15): hostile guests (tests/guests/hostile)
//! that hand the capability boundary more than it may take. Each case is
//! bounded in time and memory, and says what it measured. The daemon's
//! attacks (floods, tenants against each other) are in tests/daemon.rs,
//! next to the daemon harness.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Run ovs-run like [`ovs_run`] and measure its peak resident memory
/// (wait4's ru_maxrss of exactly this child), in MiB.
fn ovs_run_measured(args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
    let mut cmd = Command::new(bin());
    cmd.arg("--cache-dir").arg(cache_dir()).args(args);
    cmd.env_remove("OVS_RUNDIR").env("OVS_RUN_JOURNAL_DIR", journal_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    // Reaped by wait4 below (Child::wait would lose the rusage).
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("run ovs-run");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for (and reaps) our own child; the outputs are small enough for the pipes.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = t.elapsed();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let code = std::process::ExitStatus::from_raw(status).code().unwrap_or(-1);
    (Run { code, stdout, stderr, elapsed }, usage.ru_maxrss as u64 / 1024)
}

fn audit_lines(path: &std::path::Path) -> Vec<(usize, Value)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| (l.len(), serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line: {e}"))))
        .collect()
}

/// Issue 15 item 2: add-port with a 20,000,000-entry trunks list (40 MB of
/// guest memory) cost 12.5 s, 3.0 GB in ovs-run and 945 MB in ovsdb-server.
/// Now wasmtime refuses to copy more than 16 MiB of one call's arguments:
/// the script traps before the host function runs, fast, in bounded memory,
/// with one short audit line and nothing in OVSDB.
#[test]
fn attack_huge_trunks_list_is_refused_fast_in_bounded_memory() {
    let ovs = Ovs::start();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let hostile = guest("hostile");
    let args = [
        "--memory",
        "128",
        "--timeout",
        "10",
        "--audit",
        audit.to_str().unwrap(),
        hostile.to_str().unwrap(),
        "bigtrunks",
        "br0",
        "20000000",
    ];
    let (r, rss_mib) = ovs_run_measured(&args, &ovs.env());
    eprintln!("20,000,000 trunks: exit {} in {:?}, peak RSS {rss_mib} MiB", r.code, r.elapsed);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("argument limit") && r.stderr.contains("16 MiB"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(3), "{:?}", r.elapsed);
    // The guest's own 40 MB list plus the runtime; it was 3 GB.
    assert!(rss_mib < 256, "peak RSS {rss_mib} MiB");
    let lines = audit_lines(&audit);
    assert!(!lines.is_empty() && lines.iter().all(|(len, _)| *len < 2048), "{lines:?}");
    assert_eq!(ovs.vsctl(&["list-br"]).trim(), "", "nothing may reach OVSDB");
    assert_eq!(ovs.vsctl(&["--columns=name", "list", "Port"]).trim(), "");

    // Under the copy limit but over OVS's 4096: the error names the argument
    // and the limit, the audit line is short, nothing reaches OVSDB.
    let audit2 = dir.path().join("audit2.log");
    let (r, rss_mib) = ovs_run_measured(
        &["--audit", audit2.to_str().unwrap(), hostile.to_str().unwrap(), "bigtrunks", "br0", "1000000"],
        &ovs.env(),
    );
    eprintln!("1,000,000 trunks: exit {} in {:?}, peak RSS {rss_mib} MiB", r.code, r.elapsed);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("options.trunks has 1000000 entries; the limit is 4096"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(3), "{:?}", r.elapsed);
    let lines = audit_lines(&audit2);
    let call = lines.iter().find(|(_, l)| l["event"] == "call").expect("the refused call is audited");
    assert!(call.0 < 2048, "audit line of {} bytes", call.0);
    assert_eq!(call.1["action"], "add-port");
    assert_eq!(call.1["result"], "invalid-argument");
    assert_eq!(ovs.vsctl(&["list-br"]).trim(), "");
}

/// The other lists of the contract are bounded too: list-by-label's labels
/// are refused before Docker is asked.
#[test]
fn attack_too_many_labels_are_refused_before_docker() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let hostile = guest("hostile");
    let r = ovs_run(
        &["--audit", audit.to_str().unwrap(), hostile.to_str().unwrap(), "biglabels", "100"],
        // No Docker: a refusal that reached it would say "cannot use Docker".
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("labels has 100 entries; the limit is 64"), "{r:?}");
    let lines = audit_lines(&audit);
    assert!(
        lines.iter().any(|(_, l)| l["action"] == "list-by-label" && l["result"] == "invalid-argument"),
        "{lines:?}"
    );
}
