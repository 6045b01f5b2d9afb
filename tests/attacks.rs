//! Attack tests: hostile guests and hostile inputs against the real binary,
//! each bounded in time and memory. The guests are written here in WAT (a
//! component is a few lines), so every test shows exactly what it attacks.
//!
//! Covered: many core instances each growing a memory, and a table grown to
//! 60M entries, under `--memory` (the cap holds for the whole run; exit 3,
//! peak RSS measured); a function with 40,000 locals (refused before
//! compiling); compiling past `--timeout`; `/dev/zero`, FIFOs and directories
//! as SCRIPT; pins on non-UTF-8 paths and in capitals; hostile guests
//! (tests/guests/hostile) handing the capability boundary more than it may
//! take (a 20M-entry trunks list, too many labels). The daemon's attacks
//! (floods, tenants against each other) are in tests/daemon.rs, next to the
//! daemon harness. And a journal planted by a user for root's `recover`.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ovs_run::backend::Op;
use ovs_run::journal::store::{Header, NsId, Record};
use ovs_run::types::IfName;
use serde_json::Value;

/// The export every ovs-run script has, from a core module `$main` with a
/// memory and a `run` that returns `ok` (a zeroed result at address 0).
const RUN_EXPORT: &str = r#"
  (core module $Main
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "run") (param i32 i32) (result i32) (i32.const 0)))
  (core instance $main (instantiate $Main))
  (func (export "run") (param "args" (list string)) (result (result (error string)))
    (canon lift (core func $main "run") (memory (core memory $main "mem"))
      (realloc (core func $main "realloc"))))
"#;

/// A component of `count` core instances, each growing its own memory to
/// `pages` 64 KiB pages at instantiation and writing every 4 KiB page of it
/// (so it is resident, not just reserved).
fn many_memories(count: usize, pages: u32) -> Vec<u8> {
    let instances = "  (core instance (instantiate $Grow))\n".repeat(count);
    let text = format!(
        r#"(component
  (core module $Grow
    (memory 1)
    (func $start (local $i i32)
      (drop (memory.grow (i32.const {grow})))
      (loop $touch
        (i32.store8 (local.get $i) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 4096)))
        (br_if $touch (i32.lt_u (local.get $i) (i32.const {bytes})))))
    (start $start))
{instances}{RUN_EXPORT})"#,
        grow = pages - 1,
        bytes = u64::from(pages) * 65536,
    );
    wat::parse_str(&text).expect("valid WAT")
}

/// A component whose only core instance grows a funcref table by `entries`.
fn huge_table(entries: u32) -> Vec<u8> {
    let text = format!(
        r#"(component
  (core module $Table
    (table 1 funcref)
    (func $start (drop (table.grow (ref.null func) (i32.const {entries}))))
    (start $start))
  (core instance (instantiate $Table))
{RUN_EXPORT})"#
    );
    wat::parse_str(&text).expect("valid WAT")
}

/// A component with one function of `locals` locals, all live at once
/// (each set from the argument, then all summed): Cranelift's cost grows
/// faster than the count.
fn many_locals(locals: u32) -> Vec<u8> {
    let mut body = String::new();
    for i in 1..=locals {
        body.push_str(&format!("(local.set {i} (i32.add (local.get 0) (i32.const {i})))\n"));
    }
    body.push_str("(local.get 1)\n");
    for i in 2..=locals {
        body.push_str(&format!("(local.get {i}) (i32.add)\n"));
    }
    let text = format!(
        r#"(component
  (core module $Big
    (func (export "big") (param i32) (result i32) (local {decls})
{body}))
  (core instance (instantiate $Big))
{RUN_EXPORT})"#,
        decls = "i32 ".repeat(locals as usize),
    );
    wat::parse_str(&text).expect("valid WAT")
}

/// A scratch directory removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Scratch(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// Run ovs-run in a dry run (nothing on the system) and measure its peak RSS.
fn run_measured(args: &[&str]) -> (Run, u64) {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    ovs_run_measured(&a, &[])
}

/// Run ovs-run like [`ovs_run`] and measure the peak RSS of exactly that
/// process (wait4), in MiB.
#[allow(clippy::zombie_processes, reason = "reaped by wait4 below, which also reports its peak RSS")]
fn ovs_run_measured(args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
    let mut cmd = Command::new(bin());
    cmd.arg("--cache-dir").arg(cache_dir()).args(args);
    cmd.env_remove("OVS_RUNDIR").env("OVS_RUN_JOURNAL_DIR", journal_dir());
    cmd.envs(env.iter().copied());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().expect("run ovs-run");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals above.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let run = Run { code, stdout: out.join().unwrap(), stderr: err.join().unwrap(), elapsed: t.elapsed() };
    (run, usage.ru_maxrss as u64 / 1024)
}

// ------------------------------------------------------------ memory cap

/// 16 core instances each growing a memory past `--memory` / 16 held 16
/// times the cap (1,046 MB RSS under --memory 64). The cap is the run's.
#[test]
fn many_instances_share_one_memory_cap() {
    let dir = Scratch::new();
    // (--memory MiB, instances, pages each): each instance alone fits.
    for (cap, count, pages) in [(16u64, 16, 240), (64, 16, 1000)] {
        let wasm = dir.write(&format!("mem{cap}.wasm"), &many_memories(count, pages));
        let (r, rss) = run_measured(&["--memory", &cap.to_string(), wasm.to_str().unwrap()]);
        eprintln!(
            "--memory {cap}: {count} instances x {} MiB each: exit {}, peak RSS {rss} MiB",
            pages / 16,
            r.code
        );
        assert_eq!(r.code, 3, "{r:?}");
        assert!(r.stderr.contains("memory limit") && r.stderr.contains(&format!("{cap} MiB")), "{r:?}");
        // The process itself (wasmtime, the compiler) is ~40-60 MiB.
        assert!(rss < cap + 120, "peak RSS {rss} MiB under --memory {cap}");
    }
}

/// A table grown to 60M entries is 480 MB of host memory (491 MB RSS under
/// --memory 16): tables count against the cap too.
#[test]
fn a_huge_table_counts_against_the_memory_cap() {
    let dir = Scratch::new();
    let wasm = dir.write("table.wasm", &huge_table(60_000_000));
    let (r, rss) = run_measured(&["--memory", "16", wasm.to_str().unwrap()]);
    eprintln!("table of 60M entries under --memory 16: exit {}, peak RSS {rss} MiB", r.code);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("memory limit") && r.stderr.contains("16 MiB"), "{r:?}");
    assert!(rss < 16 + 120, "peak RSS {rss} MiB under --memory 16");
}

/// Under the cap, the same guests run: the budget is not taken by anything else.
#[test]
fn guests_within_the_cap_still_run() {
    let dir = Scratch::new();
    let wasm = dir.write("fits.wasm", &many_memories(3, 64));
    let (r, _) = run_measured(&["--memory", "16", wasm.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
}

// ------------------------------------------------------------ compiling

/// One 40,000-local function took 22 s to compile under --timeout 1. It is
/// refused before compiling, fast, naming the function and the limit.
#[test]
fn a_function_with_40000_locals_is_refused_before_compiling() {
    let dir = Scratch::new();
    let wasm = dir.write("locals.wasm", &many_locals(40_000));
    let (r, _) = run_measured(&["--no-cache", "--timeout", "1", wasm.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("40000 locals") && r.stderr.contains("refused before compiling"), "{r:?}");
    assert!(r.elapsed.as_secs_f64() < 2.0, "took {:?}", r.elapsed);
}

/// Compiling gives up at --timeout: no cache, a timeout shorter than any
/// compile of a real component.
#[test]
fn compiling_is_bounded_by_the_timeout() {
    let g = guest("hostile");
    let (r, _) = run_measured(&["--no-cache", "--timeout", "0.001", g.to_str().unwrap(), "loop"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("compiling the script took longer than the 0.001 s timeout"), "{r:?}");
}

// ------------------------------------------------------------ reading SCRIPT

/// Every command that reads SCRIPT refuses what is not a regular file, at
/// once and by name (they used to read /dev/zero until memory ran out).
#[test]
fn dev_zero_fifos_and_directories_are_refused_as_scripts() {
    let dir = Scratch::new();
    let fifo = dir.0.path().join("script.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let key = dir.0.path().join("k");
    let made = ovs_run(&["key", "generate", key.to_str().unwrap()], &[]);
    let secret = std::fs::read_dir(dir.0.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "key"))
        .unwrap_or_else(|| panic!("no key generated: {made:?}"));
    let tmp = dir.0.path().to_str().unwrap().to_string();
    for (script, what) in
        [("/dev/zero", "character device"), (fifo.to_str().unwrap(), "FIFO"), (&tmp, "directory")]
    {
        let cases: Vec<Vec<&str>> = vec![
            vec![script],
            vec!["inspect", script],
            vec!["verify", "--trust", &tmp, script],
            vec!["sign", "--key", secret.to_str().unwrap(), script],
            vec!["metadata", "set", "--name", "x", script],
            vec!["submit", "--socket", "/nonexistent.sock", script],
        ];
        for args in cases {
            let r = ovs_run(&args, &[]);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            assert!(r.stderr.contains(script) && r.stderr.contains(what), "{args:?}: {r:?}");
            assert!(r.elapsed.as_secs_f64() < 5.0, "{args:?} took {:?}", r.elapsed);
        }
    }
}

// ------------------------------------------------------------ pins

/// A pin on a path that is not UTF-8 used to be ignored (the file ran), and
/// `@SHA256:` was taken as part of the file name. Both are pins now: a
/// wrong digest is refused, the right one runs.
#[test]
fn pins_hold_on_non_utf8_paths_and_in_capitals() {
    let dir = Scratch::new();
    let noop = std::fs::read(guest("noop")).unwrap();
    let raw_name = b"caf\xe9.wasm";
    let path = dir.0.path().join(OsStr::from_bytes(raw_name));
    std::fs::write(&path, &noop).unwrap();
    let wrong = "0".repeat(64);
    let right = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&noop))
    };
    let with_pin = |sep: &str, hex: &str| -> PathBuf {
        let mut b = path.as_os_str().as_bytes().to_vec();
        b.extend_from_slice(sep.as_bytes());
        b.extend_from_slice(hex.as_bytes());
        PathBuf::from(OsStr::from_bytes(&b))
    };
    let run = |arg: &Path| {
        let out = Command::new(bin())
            .args(["--no-cache", "--dry-run"])
            .arg(arg)
            .env("OVS_RUN_JOURNAL_DIR", journal_dir())
            .env_remove("OVS_RUNDIR")
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for sep in ["@sha256:", "@SHA256:"] {
        // A file named like the pinned reference must not turn it unpinned.
        std::fs::write(with_pin(sep, &wrong), &noop).unwrap();
        let (code, err) = run(&with_pin(sep, &wrong));
        assert_eq!(code, 2, "{sep} wrong pin on a non-UTF-8 path must be refused: {err}");
        assert!(err.contains("refused"), "{err}");
        let (code, err) = run(&with_pin(sep, &right));
        assert_eq!(code, 0, "{sep} right pin: {err}");
    }
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

/// Issue 15 item 7: a user plants a journal in a directory it owns (or one
/// anybody can write) whose "undo" deletes a bridge; root's `recover` with
/// that directory refuses it and deletes nothing (before the fix it deleted
/// the bridge). Creating a run's journal there is refused the same way.
#[test]
fn a_journal_planted_in_a_user_owned_directory_is_refused() {
    let (ovs, br) = Ovs::with_bridge("ta");
    let (uid, gid) = test_user("ovsrt-a");
    let dir = tempfile::tempdir().unwrap();
    let jd = dir.path().join("journal");
    std::fs::create_dir(&jd).unwrap();
    let mut h = Header::new(
        "planted.wasm",
        format!("unix:{}/db.sock", ovs.rundir()),
        "unix:///nonexistent/docker.sock".into(),
        std::time::Duration::from_secs(5),
    );
    h.pid = 1;
    h.netns = NsId::current().ok();
    let bridge = IfName::parse(&br).unwrap();
    let create = Op::CreateBridge {
        name: bridge.clone(),
        datapath: ovs_run::types::Datapath::Netdev,
        may_exist: false,
    };
    let lines = [
        serde_json::to_string(&h).unwrap(),
        serde_json::to_string(&Record::Begin { idx: 0, op: Box::new(create) }).unwrap(),
        serde_json::to_string(&Record::Done {
            idx: 0,
            undo: vec![Op::DeleteBridge { name: bridge, if_exists: true }],
            reversible: true,
        })
        .unwrap(),
    ];
    let path = jd.join("run-1-1.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    let jd_s = jd.to_str().unwrap();

    // Owned by the user.
    std::os::unix::fs::chown(&jd, Some(uid), Some(gid)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("owned by uid {uid}")) && r.stderr.contains("refusing"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");
    // A run does not write its journal there either.
    let run = ovs.run(&["--journal-dir", jd_s, guest("hostile").to_str().unwrap(), "env"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("refusing"), "{run:?}");

    // Root's, but writable by everybody.
    std::os::unix::fs::chown(&jd, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&jd, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("writable by group or others"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");

    // Root's and private, but the planted file is the user's.
    std::fs::set_permissions(&jd, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a regular file owned by us"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");
    assert!(path.exists(), "the planted file is left for a human");
}
