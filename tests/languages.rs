//! Scripts in Python, JavaScript and C (`make guests`) against the Rust ones:
//! the same plans and the same error texts for the same arguments, the same
//! result on the real system (checked through ovs-vsctl, nsenter ip and
//! ping, never through ovs-run), exceptions that reach the user, and a
//! compile cache that makes a 20 MB Python component start fast.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const LANGS: [&str; 3] = ["python", "js", "c"];

/// `scripts/attach.wasm` for Rust, `scripts/LANG/attach.wasm` otherwise.
fn script_in(lang: &str, name: &str) -> std::path::PathBuf {
    match lang {
        "rust" => script(name),
        _ => wasm(&format!("scripts/{lang}/{name}.wasm")),
    }
}

fn dry_run(lang: &str, name: &str, args: &[&str], json: bool) -> Run {
    let s = script_in(lang, name);
    let mut a = vec!["--dry-run", "--assume-container", "web"];
    if json {
        a.push("--json");
    }
    a.push(s.to_str().unwrap());
    a.extend_from_slice(args);
    ovs_run(&a, &[])
}

// ------------------------------------------------------------ same plan, same errors

#[test]
fn attach_detach_and_seed_demo_plan_the_same_in_every_language() {
    let cases: &[(&str, &[&str])] = &[
        (
            "attach",
            &[
                "br0",
                "eth0",
                "web",
                "--ipaddress=10.1.0.2/24",
                "--gateway=10.1.0.1",
                "--mtu=1450",
                "--macaddress=02:AA:00:00:00:01",
                "--vlan",
                "5",
            ],
        ),
        ("attach", &["br0", "eth1", "web", "--ipaddress=fd00:0:0:0::2/64", "--gateway=FD00::1"]),
        ("attach", &["br1", "eth0", "/web"]),
        ("detach", &["br0", "eth0", "web"]),
        ("seed-demo", &["--container=web", "--subnet=10.77.0.9/28", "--mtu=1400"]),
        ("seed-demo", &["--container", "web", "--subnet=fd00:77::/64", "--bridge=br-v6"]),
    ];
    for (name, args) in cases {
        let rust = dry_run("rust", name, args, true);
        assert_eq!(rust.code, 0, "{name} {args:?}: {rust:?}");
        let plan: serde_json::Value = serde_json::from_str(&rust.stdout).unwrap();
        assert!(!plan["changes"].as_array().unwrap().is_empty() || *name == "detach", "{rust:?}");
        // The whole human output too: the plan, and seed-demo's report.
        let rust_text = dry_run("rust", name, args, false);
        for lang in LANGS {
            let r = dry_run(lang, name, args, true);
            assert_eq!(r.code, 0, "{lang} {name} {args:?}: {r:?}");
            assert_eq!(r.stdout, rust.stdout, "{lang} {name} {args:?}: the JSON plan differs from Rust's");
            let t = dry_run(lang, name, args, false);
            assert_eq!(t.stdout, rust_text.stdout, "{lang} {name} {args:?}: the output differs from Rust's");
        }
    }
}

#[test]
fn bad_arguments_fail_with_the_same_message_in_every_language() {
    // Each case: the arguments, and a piece of the message naming the culprit.
    let cases: &[(&[&str], &str)] = &[
        (&["br0", "eth0"], "missing argument CONTAINER"),
        (&["br0", "eth0", "web", "extra"], "unexpected argument 'extra'"),
        (&["br0", "eth0", "web", "--bogus=1"], "unknown option --bogus"),
        (&["br0", "eth0", "web", "--mtu"], "--mtu needs a value"),
        (&["br0", "eth0", "web", "--mtu=1400", "--mtu=1500"], "given twice"),
        (&["br0", "eth0", "web", "--mtu=70000"], "'70000' is out of range"),
        (&["br0", "eth0", "web", "--mtu=big"], "'big' is not a number"),
        (&["br0", "eth0", "web", "--vlan=4095"], "'4095'"),
        (&["br0", "eth0", "web", "--ipaddress=10.1.0.300/24"], "10.1.0.300"),
        (&["br0", "eth0", "web", "--ipaddress=10.1.0.3"], "no prefix length"),
        (&["br0", "eth0", "web", "--ipaddress=10.1.0.3/33"], "0-32"),
        (&["br0", "eth0", "web", "--ipaddress=010.1.0.3/24"], "010.1.0.3"),
        (&["br0", "eth0", "web", "--gateway=1.2.3"], "'1.2.3'"),
        (
            &["br0", "eth0", "web", "--ipaddress=10.0.0.2/24", "--gateway=fd00::1"],
            "different address families",
        ),
        (&["br0", "eth0", "web", "--macaddress=01:00:5e:00:00:01"], "multicast"),
        (&["br0", "eth0", "web", "--macaddress=00:00:00:00:00:00"], "all zeros"),
        (&["br0", "eth0", "web", "--macaddress=02:42:ac:11:00"], "02:42:ac:11:00"),
        (&["a234567890123456", "eth0", "web"], "a234567890123456"),
        (&["a/b", "eth0", "web"], "'/'"),
        (&["br0", "eth\t0", "web"], "'\\t'"),
        (&["br0", "..", "web"], "reserved"),
        (&["br0", "eth0", "we b!"], "not a valid container name"),
        // Valid, but no such container: the host's not-found, before any change.
        (&["br0", "eth0", "ghost"], "not found: "),
    ];
    for (i, (args, needle)) in cases.iter().enumerate() {
        let rust = dry_run("rust", "attach", args, false);
        // The first five are usage errors (the SDKs mark them "see --help"): exit 2.
        let want = if i < 5 { 2 } else { 1 };
        assert_eq!(rust.code, want, "{args:?}: {rust:?}");
        assert!(rust.stderr.contains(needle), "{args:?}: {rust:?}");
        for lang in LANGS {
            let r = dry_run(lang, "attach", args, false);
            assert_eq!((r.code, &r.stderr), (rust.code, &rust.stderr), "{lang} attach {args:?}");
        }
    }
    // --help (after an argument: right after SCRIPT it is ovs-run's own).
    for name in ["attach", "detach", "seed-demo"] {
        let rust = dry_run("rust", name, &["x", "--help"], false);
        assert!(rust.code == 0 && rust.stdout.starts_with("Usage: "), "{rust:?}");
        for lang in LANGS {
            let r = dry_run(lang, name, &["x", "--help"], false);
            assert_eq!((r.code, &r.stdout), (0, &rust.stdout), "{lang} {name} --help");
        }
    }
    let bad_subnet = ["--container=web", "--subnet=10.0.0.1/32"];
    let rust = dry_run("rust", "seed-demo", &bad_subnet, false);
    assert!(
        rust.code == 1 && rust.stderr.contains("--subnet: 10.0.0.1/32 has no host address number 1"),
        "{rust:?}"
    );
    for lang in LANGS {
        let r = dry_run(lang, "seed-demo", &bad_subnet, false);
        assert_eq!((r.code, &r.stderr), (rust.code, &rust.stderr), "{lang} seed-demo {bad_subnet:?}");
    }
}

// ------------------------------------------------------------ the real system

fn run_in(ovs: &Ovs, lang: &str, name: &str, args: &[&str]) -> Run {
    let s = script_in(lang, name);
    let mut a = vec!["--datapath", "netdev", s.to_str().unwrap()];
    a.extend_from_slice(args);
    ovs.run(&a)
}

/// attach (address, MAC, MTU, VLAN, gateway), ping from the container, detach
/// (twice: the second finds nothing and succeeds), all in `lang`.
fn attach_ping_detach(lang: &str, subnet: u8) {
    let ovs = Ovs::start();
    let c = Container::start();
    let br = unique("tl");
    let (addr, gw, mac) =
        (format!("10.{subnet}.0.2/24"), format!("10.{subnet}.0.1"), format!("02:{subnet:02x}:00:00:00:02"));
    let r = run_in(
        &ovs,
        lang,
        "attach",
        &[
            &br,
            "eth0",
            &c.name,
            &format!("--ipaddress={addr}"),
            &format!("--gateway={gw}"),
            "--mtu=1450",
            "--vlan=7",
        ],
    );
    assert_eq!(r.code, 0, "{lang} attach: {r:?}");
    let r = run_in(&ovs, lang, "attach", &[&br, "eth1", &c.name, &format!("--macaddress={mac}")]);
    assert_eq!(r.code, 0, "{lang} attach eth1: {r:?}");

    // OVS: bridge, port with ovs-docker's external ids and the full id, tag.
    assert_eq!(ovs.vsctl(&["get", "bridge", &br, "datapath_type"]).trim(), "netdev");
    let port = ovs.port_of(&c.name, "eth0").expect("port with ovs-docker external ids");
    assert!(ovs.vsctl(&["list-ports", &br]).lines().any(|l| l == port), "{port} on {br}");
    let ids = ovs.vsctl(&["get", "Interface", &port, "external_ids"]);
    assert!(ids.contains(&c.id()), "full container id recorded: {ids}");
    assert_eq!(ovs.vsctl(&["get", "Port", &port, "tag"]).trim(), "7");

    // Inside the container, through nsenter.
    let link = c.ip(&["link", "show", "eth0"]);
    assert!(link.contains("mtu 1450") && link.contains("UP"), "{link}");
    assert!(c.ip(&["-4", "addr", "show", "eth0"]).contains(&addr));
    assert!(c.ip(&["route"]).contains(&format!("default via {gw} dev eth0")));
    assert!(c.ip(&["link", "show", "eth1"]).contains(&mac), "MAC of eth1");

    // The bridge's own address on the same VLAN as the port, then a ping.
    ovs.vsctl(&["set", "Port", &br, "tag=7"]);
    sh("ip", &["addr", "add", &format!("{gw}/24"), "dev", &br]);
    sh("ip", &["link", "set", &br, "up"]);
    assert!(c.ping(&gw), "{lang}: ping from the container to the bridge");
    // Scripts in every language get the userspace datapath's offload fix:
    // add-port does it, whatever the script's language.
    assert_eq!(c.tx_checksum("eth0"), "off", "{lang}");
    assert_tcp(&format!("{lang}: container -> bridge"), &c, &HereNs, &gw);

    for round in ["first", "second"] {
        let r = run_in(&ovs, lang, "detach", &[&br, "eth0", &c.name]);
        assert_eq!(r.code, 0, "{lang} detach ({round}): {r:?}");
    }
    assert!(ovs.port_of(&c.name, "eth0").is_none(), "{lang}: port removed");
    assert!(!ovs.vsctl(&["list-ports", &br]).lines().any(|l| l == port), "{lang}: port off the bridge");
    let (has_eth0, _) = try_sh("nsenter", &["-t", &c.pid(), "-n", "ip", "link", "show", "eth0"]);
    assert!(!has_eth0, "{lang}: eth0 gone from the container");
    let r = run_in(&ovs, lang, "detach", &[&br, "eth1", &c.name]);
    assert_eq!(r.code, 0, "{lang} detach eth1: {r:?}");
    assert!(ovs.port_of(&c.name, "eth1").is_none());
}

/// seed-demo, then seed-demo again for a second container on the same
/// bridge: the second gets the next address, not the first one again.
fn seed_demo(lang: &str, subnet: u8) {
    let ovs = Ovs::start();
    let (c, d) = (Container::start(), Container::start());
    let br = unique("td");
    for (i, who) in [&c, &d].into_iter().enumerate() {
        let r = run_in(
            &ovs,
            lang,
            "seed-demo",
            &[
                &format!("--bridge={br}"),
                &format!("--container={}", who.name),
                &format!("--subnet=10.{subnet}.0.0/24"),
            ],
        );
        assert_eq!(r.code, 0, "{lang} seed-demo #{}: {r:?}", i + 1);
        assert!(r.stdout.contains("seed-demo report") && r.stdout.contains("3 received"), "{r:?}");
        let mine = format!("10.{subnet}.0.{}/24", i + 2);
        assert!(who.ip(&["addr", "show", "eth0"]).contains(&mine), "{lang} #{}: {mine}: {r:?}", i + 1);
    }
    assert!(sh("ip", &["addr", "show", &br]).contains(&format!("10.{subnet}.0.1/24")));
    assert!(c.ping(&format!("10.{subnet}.0.1")), "{lang}: independent ping after the demo");
    assert!(d.ping(&format!("10.{subnet}.0.2")), "{lang}: the second container reaches the first");
    assert_tcp(&format!("{lang}: independent TCP after the demo"), &c, &HereNs, &format!("10.{subnet}.0.1"));
}

#[test]
fn python_attach_ping_detach() {
    attach_ping_detach("python", 81);
}

#[test]
fn js_attach_ping_detach() {
    attach_ping_detach("js", 82);
}

#[test]
fn c_attach_ping_detach() {
    attach_ping_detach("c", 83);
}

#[test]
fn python_seed_demo_pings() {
    seed_demo("python", 84);
}

#[test]
fn js_seed_demo_pings() {
    seed_demo("js", 85);
}

#[test]
fn c_seed_demo_pings() {
    seed_demo("c", 86);
}

// ------------------------------------------------------------ exceptions, cache

#[test]
fn an_exception_reaches_the_user_and_its_changes_are_rolled_back() {
    for (lang, guest_name, text) in
        [("python", "hostile", "KeyError: 'vlan'"), ("js", "raises", "TypeError: ")]
    {
        let g = guest(&format!("{lang}/{guest_name}"));
        let g = g.to_str().unwrap();
        let args: Vec<&str> =
            if lang == "python" { vec![g, "raise", "br-raise"] } else { vec![g, "br-raise"] };
        let r = ovs_run(&[&["--dry-run", "--json"], &args[..]].concat(), &[]);
        assert_eq!(r.code, 1, "{lang}: an exception is the script's error, not a trap: {r:?}");
        let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(out["status"], "script-error", "{r:?}");
        let error = out["error"].as_str().unwrap();
        assert!(error.contains(text), "{lang}: the exception's own text: {error}");
        assert!(!error.contains("unreachable"), "{lang}: {error}");
        let undone = out["rolled_back"].to_string();
        assert!(undone.contains("br-raise"), "{lang}: the bridge it made is undone: {r:?}");
        if lang == "python" {
            assert!(r.stderr.contains("Traceback") && r.stderr.contains("hostile.py"), "traceback: {r:?}");
        }
        let plain = ovs_run(&[&["--dry-run"], &args[..]].concat(), &[]);
        assert!(
            plain.code == 1 && plain.stderr.contains(text),
            "{lang}: shown without --json too: {plain:?}"
        );
    }
}

#[test]
fn python_gets_no_files_sockets_or_environment() {
    let g = guest("python/hostile");
    let r = ovs_run(&["--dry-run", g.to_str().unwrap(), "escape"], &[("SECRET_TOKEN", "hunter2")]);
    assert_eq!(r.code, 0, "{r:?}");
    for what in ["read /etc/hostname", "list /", "write /tmp", "tcp connect", "udp socket", "resolve"] {
        assert!(r.stdout.contains(&format!("denied {what}: ")), "{what} must fail in the sandbox: {r:?}");
    }
    assert!(!r.stdout.contains("ESCAPED"), "{r:?}");
    assert!(r.stdout.contains("environment: []"), "no environment variables reach the script: {r:?}");
    assert!(!std::path::Path::new("/tmp/ovs-run-escape").exists());
}

/// Runs ovs-run once; returns its output, wall time and CPU time (user +
/// system, of that child alone: a busy machine slows the wall clock, not this).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports its CPU time
fn timed_run(args: &[&str]) -> (String, Duration, Duration) {
    let t = Instant::now();
    let child = Command::new(bin())
        .args(args)
        .env_remove("OVS_RUNDIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let wall = t.elapsed();
    assert_eq!(std::process::ExitStatus::from_raw(status).code(), Some(0), "{err}");
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    (err, wall, tv(usage.ru_utime) + tv(usage.ru_stime))
}

#[test]
fn python_second_run_hits_the_cache_and_starts_fast() {
    let dir = std::env::temp_dir().join(unique("ovs-run-langcache"));
    let d = dir.to_str().unwrap();
    let attach = script_in("python", "attach");
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
    let (first, first_wall, _) = timed_run(&args);
    assert!(first.contains("compile cache: Miss"), "{first}");
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let (out, wall, cpu) = timed_run(&args);
        assert!(out.contains("compile cache: Hit"), "no recompile: {out}");
        best = (best.0.min(wall), best.1.min(cpu));
    }
    eprintln!(
        "python attach: first run {} ms (compile), then {} ms wall, {} ms CPU",
        first_wall.as_millis(),
        best.0.as_millis(),
        best.1.as_millis()
    );
    // CPU time is what the run costs; the wall clock also counts the other
    // tests running beside this one.
    assert!(best.1 < Duration::from_millis(100), "a cached Python run took {} ms of CPU", best.1.as_millis());
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------ projects anywhere

/// `ovs-run new --lang js|c` makes a project outside the repository that
/// `guest-sdk/build-guest` builds from there (JavaScript used to fail:
/// "JS entry path ... is not under module root") and that runs.
#[test]
fn new_makes_js_and_c_projects_that_build_outside_the_repository() {
    let work = tempfile::tempdir().unwrap();
    for (lang, file) in [("js", "port-check.js"), ("c", "port-check.c")] {
        let dir = work.path().join(lang);
        let r = ovs_run(&["new", "--lang", lang, "--dir", dir.to_str().unwrap(), "port-check"], &[]);
        assert_eq!(r.code, 0, "{lang}: {r:?}");
        assert!(r.stdout.contains(&format!("build-guest {lang} ")), "{lang}: {r:?}");
        let out = Command::new(root().join("guest-sdk/build-guest"))
            .args([lang, file])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{lang} build-guest: {}", String::from_utf8_lossy(&out.stderr));
        let wasm = dir.join("port-check.wasm");
        let r = ovs_run(
            &["--dry-run", "--assume-container", "web", wasm.to_str().unwrap(), "br0", "web", "--mtu=1400"],
            &[],
        );
        assert_eq!(r.code, 0, "{lang}: {r:?}");
        assert!(r.stdout.contains("add port") && r.stdout.contains("1400"), "{lang}: {r:?}");
        let r = ovs_run(&["--dry-run", wasm.to_str().unwrap(), "--help"], &[]);
        assert!(r.stdout.contains("Usage: port-check BRIDGE CONTAINER"), "{lang}: {r:?}");
    }
}
