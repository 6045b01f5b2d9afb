//! The engine without the real system: capability calls reach the backend
//! typed, exit statuses, the sandbox against hostile scripts, the dry-run
//! planner, and the compile cache.

mod common;

use common::*;
use serde_json::Value;

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:?}"))
}

fn dry(args: &[&str]) -> Run {
    let mut a = vec!["--dry-run"];
    a.extend_from_slice(args);
    ovs_run(&a, &[])
}

// ---------------------------------------------------------------- engine

#[test]
fn capability_calls_reach_the_backend_typed() {
    let probe = guest("probe");
    let r = dry(&["--json", probe.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    let changes = v["changes"].as_array().unwrap();
    let find = |op: &str| -> Vec<&Value> { changes.iter().filter(|c| c["op"] == op).collect() };

    let br = find("create-bridge");
    assert_eq!(br[0]["name"], "br-probe");
    assert_eq!(br[0]["datapath"], "netdev");

    let port = find("add-port")[0];
    assert_eq!(port["bridge"], "br-probe");
    assert_eq!(port["target"]["kind"], "netns");
    assert_eq!(port["target"]["name"], "ns-probe");
    assert_eq!(port["ifname"], "eth1");
    assert_eq!(port["mtu"], 1400);
    assert_eq!(port["mac"], "02:00:00:00:00:01");
    assert_eq!(port["vlan"], 42);
    // br-probe is netdev: the container end's TX checksum offload goes off.
    assert_eq!(port["sw_checksum"], true, "{port}");
    let off = find("set-offload")[0];
    assert_eq!((off["offload"].as_str(), off["on"].as_bool()), (Some("tx-checksum"), Some(true)), "{off}");
    let pname = port["port"].as_str().unwrap();
    assert!(pname.len() <= 15 && pname.starts_with("ovr"), "{pname}");

    let addrs: Vec<&str> = find("add-address").iter().map(|a| a["cidr"].as_str().unwrap()).collect();
    assert!(addrs.contains(&"10.9.0.2/24") && addrs.contains(&"fd00:9::2/64"), "{addrs:?}");
    let routes = find("add-route");
    assert!(
        routes.iter().any(|r| r["route"]["destination"].is_null() && r["route"]["via"] == "10.9.0.1"),
        "{routes:?}"
    );
    assert!(routes.iter().any(|r| r["route"]["destination"] == "10.20.0.0/16"), "{routes:?}");
    assert_eq!(find("set-vlan")[0]["vlan"], 43);
}

#[test]
fn script_error_exits_1_with_its_message_and_rolls_back() {
    let probe = guest("probe");
    let r = dry(&["--json", probe.to_str().unwrap(), "fail-at-end"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("probe failed on purpose"), "{r:?}");
    let v = json(&r);
    assert_eq!(v["status"], "script-error");
    assert!(!v["rolled_back"].as_array().unwrap().is_empty(), "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
}

#[test]
fn ungranted_imports_fail_before_running() {
    let g = guest("ungranted");
    let r = ovs_run(&[g.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not grant"), "{r:?}");
    assert!(r.stderr.contains("ovs-run:evil/raw-socket"), "{r:?}");
}

#[test]
fn a_file_that_is_not_a_component_is_a_usage_error() {
    let r = ovs_run(&[concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a WebAssembly component"), "{r:?}");
    let r = ovs_run(&["/nonexistent/x.wasm"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("/nonexistent/x.wasm"), "{r:?}");
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let r = ovs_run(&["--timeout", "-1", "x.wasm"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = ovs_run(&["--help"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("--dry-run") && r.stdout.contains("Exit status"), "{r:?}");
}

// ---------------------------------------------------------------- sandbox

fn hostile(args: &[&str]) -> Run {
    let g = guest("hostile");
    let mut a = args.to_vec();
    let pos = a.iter().position(|x| *x == "--").expect("-- before script args");
    a[pos] = g.to_str().unwrap();
    ovs_run(&a, &[])
}

#[test]
fn infinite_loop_is_stopped_by_the_timeout() {
    let r = hostile(&["--timeout", "1", "--", "loop"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("timeout"), "{r:?}");
    assert!(r.elapsed.as_secs_f64() < 2.5, "took {:?}", r.elapsed);
}

#[test]
fn memory_bomb_is_stopped_at_the_memory_cap() {
    let r = hostile(&["--memory", "16", "--", "membomb"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("memory limit") && r.stderr.contains("16 MiB"), "{r:?}");
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    let r = hostile(&["--", "recurse"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("stack"), "{r:?}");
}

#[test]
fn reading_host_files_fails_inside_the_script() {
    let r = hostile(&["--", "readfile"]);
    assert_eq!(r.code, 1, "the script must not be able to read /etc/passwd: {r:?}");
    assert!(!r.stdout.contains("root:"), "{r:?}");
}

#[test]
fn the_environment_is_empty() {
    let r = ovs_run(&[guest("hostile").to_str().unwrap(), "env"], &[("SECRET_TOKEN", "hunter2")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("env-count=0"), "{r:?}");
    assert!(!r.all().contains("hunter2"), "{r:?}");
}

#[test]
fn opening_a_socket_fails_inside_the_script() {
    let r = hostile(&["--", "socket"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("socket"), "{r:?}");
}

#[test]
fn a_panic_is_a_trap_with_the_scripts_message_and_a_backtrace() {
    let r = hostile(&["--", "trap"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("boom from script"), "{r:?}");
    assert!(r.stderr.contains("hostile"), "backtrace names the module: {r:?}");
}

#[test]
fn a_runaway_call_loop_is_stopped() {
    let r = hostile(&["--max-calls", "1000", "--", "calls", "100000"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("call limit"), "{r:?}");
}

// ---------------------------------------------------------------- dry-run

#[test]
fn dry_run_attach_prints_the_plan_in_order() {
    let attach = script("attach");
    let r = dry(&[
        "--assume-container",
        "web",
        "--datapath",
        "netdev",
        attach.to_str().unwrap(),
        "br0",
        "eth0",
        "web",
        "--ipaddress=10.1.0.2/24",
        "--gateway=10.1.0.1",
        "--mtu=1450",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = &r.stdout;
    let pos = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("plan lacks {needle:?}:\n{out}"));
    let bridge = pos("create bridge br0");
    let veth = pos("create veth");
    let mtu = pos("mtu 1450");
    // The address and route are made with the veth (attach-ports): one change.
    let addr = pos("address 10.1.0.2/24");
    let route = pos("default route via 10.1.0.1");
    assert!(bridge < veth && veth < mtu && mtu < addr && addr < route, "order:\n{out}");
    assert!(!out.contains("add address") && !out.contains("add route"), "no change of their own:\n{out}");
    assert!(out.contains("nothing was changed"), "{out}");
}

#[test]
fn dry_run_json_is_machine_readable() {
    let attach = script("attach");
    let r = dry(&["--json", "--assume-container", "web", attach.to_str().unwrap(), "br0", "eth0", "web"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    assert_eq!(v["dry_run"], true);
    let ops: Vec<&str> = v["changes"].as_array().unwrap().iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["create-bridge", "add-port"]);
}

#[test]
fn bad_input_is_named_and_exits_1() {
    let attach = script("attach");
    let a = attach.to_str().unwrap();
    for (bad, needle) in [
        ("--ipaddress=10.1.0.300/24", "10.1.0.300"),
        ("--mtu=70000", "70000"),
        ("--macaddress=zz:00:00:00:00:01", "zz:00:00:00:00:01"),
        ("--gateway=10.1.0.999", "10.1.0.999"),
    ] {
        let r = dry(&["--assume-container", "web", a, "br0", "eth0", "web", bad]);
        assert_eq!(r.code, 1, "{bad}: {r:?}");
        assert!(r.stderr.contains(needle), "{bad}: {r:?}");
        assert!(r.stdout.contains("nothing to do") || r.stdout.is_empty(), "{bad}: {r:?}");
    }
    let long = "eth0-much-too-long";
    let r = dry(&["--assume-container", "web", a, "br0", long, "web"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(long), "{r:?}");
}

#[test]
fn exit_status_says_whose_fault_it_is() {
    let attach = script("attach");
    let a = attach.to_str().unwrap();
    // The script's own usage error (every SDK marks it "see --help") is a usage error: 2.
    let r = dry(&["--json", a, "br0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing argument") && r.stderr.contains("see --help"), "{r:?}");
    assert_eq!(json(&r)["status"], "usage-error", "{r:?}");
    // The dry-run says, without -v, that it does not start from the real system.
    assert!(r.stderr.contains("the plan starts from an empty model"), "{r:?}");

    // OVSDB and Docker that cannot be reached: the system's fault, 4, named.
    let gone = std::env::temp_dir().join(unique("no-such-socket"));
    let ovsdb = format!("unix:{}", gone.display());
    let docker = format!("unix://{}", gone.display());
    let r = ovs_run(&["--json", "--ovsdb", &ovsdb, "--docker", &docker, a, "br0", "eth0", "web"], &[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("is dockerd running?") || r.stderr.contains("is ovsdb-server running?"),
        "{r:?}"
    );
    assert_eq!(json(&r)["status"], "system-unavailable", "{r:?}");
    let r = ovs_run(&["gc", "--ovsdb", &ovsdb, "--docker", &docker], &[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("running?"), "{r:?}");
}

#[test]
fn dry_run_models_the_system_rules() {
    // Attaching the same interface twice: the model refuses, like the kernel would.
    let probe = guest("probe");
    let r = dry(&["--json", probe.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let attach = script("attach");
    let a = attach.to_str().unwrap();
    let r = dry(&["--assume-container", "web", a, "br0", "eth0", "web", "--gateway=10.1.0.1"]);
    assert_eq!(r.code, 1, "a gateway outside any subnet must be refused: {r:?}");
    assert!(r.stderr.contains("10.1.0.1"), "{r:?}");
    let r = dry(&[a, "br0", "eth0", "ghost"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("ghost") && r.stderr.contains("--assume-container"), "{r:?}");

    // One container twice in a batch: refused before any port is planned,
    // naming both requests.
    let many = script("attach-many");
    let r = dry(&["--assume-container", "web", many.to_str().unwrap(), "br0", "eth0", "web", "web"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("request 2") && r.stderr.contains("request 1"), "{r:?}");
}

// ---------------------------------------------------------------- compile cache

#[test]
fn second_run_uses_the_cache_and_corrupt_entries_are_recompiled() {
    let dir = std::env::temp_dir().join(unique("ovs-run-cache-t"));
    let d = dir.to_str().unwrap();
    let attach = script("attach");
    let args = [
        "-v",
        "--cache-dir",
        d,
        "--dry-run",
        "--assume-container",
        "web",
        attach.to_str().unwrap(),
        "br0",
        "eth0",
        "web",
    ];
    let first = ovs_run(&args, &[]);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stderr.contains("compile cache: Miss"), "{first:?}");
    let second = ovs_run(&args, &[]);
    assert_eq!(second.code, 0, "{second:?}");
    assert!(second.stderr.contains("compile cache: Hit"), "{second:?}");

    // Flip one byte in the middle of the entry: detected, recompiled, still runs.
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let third = ovs_run(&args, &[]);
    assert_eq!(third.code, 0, "{third:?}");
    assert!(third.stderr.contains("compile cache: Corrupt"), "{third:?}");
    let fourth = ovs_run(&args, &[]);
    assert!(fourth.stderr.contains("compile cache: Hit"), "rewritten after corruption: {fourth:?}");

    // A directory others can write to is never trusted.
    use std::os::unix::fs::PermissionsExt;
    let open = std::env::temp_dir().join(unique("ovs-run-cache-open"));
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = open.to_str().unwrap();
    let r = ovs_run(
        &[
            "-v",
            "--cache-dir",
            o,
            "--dry-run",
            "--assume-container",
            "web",
            attach.to_str().unwrap(),
            "br0",
            "eth0",
            "web",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("compile cache: Disabled") && r.stderr.contains("writable by group or others"),
        "{r:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&open);
}
