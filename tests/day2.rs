//! Day-2 operations (issue 19): the inventory (`ps`, `show`) against real
//! Open vSwitch and Docker, checked against ovs-vsctl and ip; scripts found
//! by name, typos, options before subcommands; `make install` into a DESTDIR.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `ovs-docker ARGS` against `ovs`.
fn ovs_docker(ovs: &Ovs, args: &[&str]) {
    let out = Command::new("ovs-docker").args(args).env("OVS_RUNDIR", ovs.rundir()).output().unwrap();
    assert!(out.status.success(), "ovs-docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ps_json(ovs: &Ovs, state: &Path, extra: &[&str]) -> Vec<Value> {
    let mut a = vec!["ps", "--json", "--state-dir", state.to_str().unwrap()];
    a.extend_from_slice(extra);
    let r = ovs.run(&a);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str::<Value>(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {r:?}"))
        .as_array()
        .unwrap()
        .clone()
}

fn row_of<'a>(rows: &'a [Value], container: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["container"]["name"] == container || r["container"]["given"] == container)
        .unwrap_or_else(|| panic!("no row for {container}: {rows:#?}"))
}

/// The MTU of `link` as `ip link` prints it.
fn mtu_in(text: &str) -> u64 {
    let at = text.find(" mtu ").expect("mtu in ip link output") + 5;
    text[at..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn ps_lists_ovs_run_and_ovs_docker_ports_as_ovs_vsctl_and_ip_see_them() {
    let (ovs, br) = Ovs::with_bridge("d2b");
    let other = unique("d2o");
    ovs.add_bridge(&other);
    let state = tempfile::tempdir().unwrap();
    let (a, b) = (Container::start(), Container::start());

    // a: attached by ovs-run, with a VLAN and an MTU; b: by ovs-docker.
    let s = script("attach");
    let r = ovs.run(&[
        "--datapath",
        "netdev",
        s.to_str().unwrap(),
        &br,
        "eth0",
        &a.name,
        "--ipaddress=10.71.0.2/24",
        "--mtu=1450",
        "--vlan=12",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    ovs_docker(&ovs, &["add-port", &other, "eth1", &b.name, "--ipaddress=10.72.0.3/24"]);
    let (pa, pb) = (ovs.port_of(&a.name, "eth0").unwrap(), ovs.port_of(&b.name, "eth1").unwrap());

    let rows = ps_json(&ovs, state.path(), &[]);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let ra = row_of(&rows, &a.name);
    assert_eq!(ra["container"]["id"], a.id());
    assert_eq!(ra["container"]["status"], "running");
    assert_eq!((ra["iface"].as_str(), ra["bridge"].as_str()), (Some("eth0"), Some(br.as_str())));
    assert_eq!(ra["port"], pa);
    assert_eq!(ra["vlan"].as_u64().unwrap().to_string(), ovs.vsctl(&["get", "Port", &pa, "tag"]).trim());
    assert_eq!(
        ra["state"]["ofport"].as_i64().unwrap().to_string(),
        ovs.vsctl(&["get", "Interface", &pa, "ofport"]).trim()
    );
    assert_eq!(ra["state"]["veth"], "alive");
    assert_eq!(ra["created_by"], "ovs-run");
    assert_eq!(ra["managed_by"]["kind"], "by-hand");
    // Addresses, MAC and MTU as `ip` sees them inside the container.
    let link = a.ip(&["link", "show", "eth0"]);
    assert_eq!(ra["mtu"].as_u64().unwrap(), mtu_in(&link));
    assert_eq!(ra["mtu"], 1450);
    assert!(link.contains(ra["mac"].as_str().unwrap()), "{link} vs {ra}");
    assert!(a.ip(&["-4", "addr", "show", "eth0"]).contains("10.71.0.2/24"));
    assert!(ra["addresses"].as_array().unwrap().iter().any(|x| x == "10.71.0.2/24"), "{ra}");

    let rb = row_of(&rows, &b.name);
    assert_eq!(rb["container"]["given"], b.name);
    assert_eq!(rb["container"]["id"], b.id(), "the id from Docker, though ovs-docker recorded only the name");
    assert_eq!((rb["bridge"].as_str(), rb["port"].as_str()), (Some(other.as_str()), Some(pb.as_str())));
    assert_eq!(rb["vlan"], Value::Null);
    assert_eq!(rb["created_by"], Value::Null);
    assert!(rb["addresses"].as_array().unwrap().iter().any(|x| x == "10.72.0.3/24"), "{rb}");
    assert_eq!(rb["mtu"].as_u64().unwrap(), mtu_in(&b.ip(&["link", "show", "eth1"])));

    // Text: one aligned table, a column starting where its header does.
    let r = ovs.run(&["ls", "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    eprintln!("{}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    let col = lines[0].find("BRIDGE").unwrap();
    for (l, want) in lines[1..].iter().zip([&br, &other]) {
        assert_eq!(l.find(want.as_str()), Some(col), "{}", r.stdout);
        assert!(l.contains("  ok  "), "{l}");
    }
    assert!(
        lines[1].contains(&a.name) && lines[1].contains("10.71.0.2/24") && lines[1].contains(" 12 "),
        "{}",
        lines[1]
    );

    // Filters.
    let only_other = ps_json(&ovs, state.path(), &["--bridge", &other]);
    assert_eq!(only_other.len(), 1);
    assert_eq!(only_other[0]["port"], pb);
    let only_a = ps_json(&ovs, state.path(), &["--container", &a.id()[..12]]);
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0]["port"], pa);

    // Who manages them: a binding naming a's bridge and interface; a Docker network's id on b's.
    let r = ovs.run(&[
        "bind",
        "--no-run",
        "--state-dir",
        state.path().to_str().unwrap(),
        &a.name,
        s.to_str().unwrap(),
        &br,
        "eth0",
        "{container}",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string();
    ovs.vsctl(&["set", "Interface", &pb, "external_ids:docker_network_id=4b1d5e7a0c9f33"]);
    let rows = ps_json(&ovs, state.path(), &[]);
    assert_eq!(
        row_of(&rows, &a.name)["managed_by"],
        serde_json::json!({"kind": "binding", "binding": id, "script": "attach.wasm"})
    );
    assert_eq!(row_of(&rows, &b.name)["managed_by"]["kind"], "docker-network");

    // show: one container in detail.
    let r = ovs.run(&["show", &a.name, "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    eprintln!("{}", r.stdout);
    assert!(r.stdout.contains(&format!("Interface eth0 (bridge {br}, port {pa})")), "{r:?}");
    assert!(r.stdout.contains("10.71.0.2/24") && r.stdout.contains(&format!("binding {id}")), "{r:?}");
    assert!(r.stdout.contains(&a.id()), "{r:?}");

    // A stopped container: its port stays in OVS (ovs-docker does not
    // remove it), its veth went with its namespace.
    b.stop();
    let rows = ps_json(&ovs, state.path(), &[]);
    let rb = row_of(&rows, &b.name);
    assert_eq!(rb["container"]["status"], "stopped");
    assert_eq!(rb["state"]["veth"], "gone");
    assert!(!try_sh("ip", &["link", "show", &pb]).0, "the host veth is gone as ps says");
    let r = ovs.run(&["ps", "--state-dir", state.path().to_str().unwrap(), "--container", &b.name]);
    assert!(r.stdout.contains("container stopped"), "{r:?}");

    let r = ovs.run(&["show", "nosuch-container", "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("nosuch-container has no ports"), "{r:?}");
}

#[test]
fn ps_and_show_without_ovsdb_exit_unavailable() {
    let state = tempfile::tempdir().unwrap();
    let sd = state.path().to_str().unwrap();
    for args in [vec!["ps"], vec!["ls", "--json"], vec!["show", "web"]] {
        let mut a = args.clone();
        a.extend_from_slice(&["--ovsdb", "unix:/nonexistent/db.sock", "--state-dir", sd]);
        let r = ovs_run(&a, &[]);
        // 4: the system is down, not the operator's input (that is 2).
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(r.stderr.contains("cannot connect to OVSDB at unix:/nonexistent/db.sock"), "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    // A bad --ovsdb is still the input's fault.
    let r = ovs_run(&["ps", "--ovsdb", "nonsense", "--state-dir", sd], &[]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// A directory holding copies of scripts under the names given.
fn script_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, from) in files {
        std::fs::copy(wasm(from), d.path().join(format!("{name}.wasm"))).unwrap();
    }
    d
}

#[test]
fn installed_scripts_run_by_name_through_the_search_path() {
    let first = script_dir(&[("attach", "scripts/attach.wasm")]);
    // Later in the path: does not shadow the first attach.
    let later = script_dir(&[("attach", "tests/guests/noop.wasm"), ("detach", "scripts/detach.wasm")]);
    let path = format!("{}:{}", first.path().display(), later.path().display());
    let env = [("OVS_RUN_PATH", path.as_str())];

    let plan = |first_word: &str| {
        let r = ovs_run(
            &[
                "--dry-run",
                "--assume-container",
                "web",
                first_word,
                "br0",
                "eth0",
                "web",
                "--ipaddress=10.1.0.2/24",
            ],
            &env,
        );
        assert_eq!(r.code, 0, "{r:?}");
        r.stdout
    };
    let by_name = plan("attach");
    assert!(by_name.contains("10.1.0.2/24") && by_name.contains("br0"), "{by_name}");
    // The same plan as the file itself, which still runs by path.
    assert_eq!(by_name, plan(script("attach").to_str().unwrap()));
    // A pin works on a name too.
    let sha = sh("sha256sum", &[script("attach").to_str().unwrap()]);
    assert_eq!(by_name, plan(&format!("attach@sha256:{}", &sha[..64])));

    // `scripts` lists them with their metadata's description.
    let r = ovs_run(&["scripts"], &env);
    assert_eq!(r.code, 0, "{r:?}");
    let attach_line = r.stdout.lines().find(|l| l.starts_with("attach ")).expect("attach listed");
    assert!(attach_line.contains("Connect a Docker container to an Open vSwitch bridge"), "{attach_line}");
    assert!(
        attach_line.contains(&first.path().display().to_string()),
        "the first in the path: {attach_line}"
    );
    assert!(r.stdout.lines().any(|l| l.starts_with("detach ")), "{r:?}");
    let r = ovs_run(&["scripts", "--json"], &env);
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        list.as_array().unwrap().iter().any(|s| s["name"] == "detach" && s["version"] == "0.1.0"),
        "{list}"
    );

    // A typo of a subcommand, and of a script.
    let r = ovs_run(&["inpsect", "x.wasm"], &env);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("did you mean inspect?"), "{r:?}");
    assert!(!r.stderr.contains("cannot read script"), "{r:?}");
    let r = ovs_run(&["atach", "br0"], &env);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("did you mean attach?"), "{r:?}");
}

#[test]
fn options_before_a_subcommand_apply_to_it() {
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap();
    let attach = script("attach");
    let r = ovs_run(&["--cache-dir", cache, "inspect", attach.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("sha256"), "{r:?}");
    let r = ovs_run(&["--ovsdb", "unix:/nonexistent/db.sock", "-v", "ls"], &[]);
    assert!(r.stderr.contains("unix:/nonexistent/db.sock"), "--ovsdb reached ps: {r:?}");
    // An option that would change what the subcommand does is refused, not dropped.
    let r = ovs_run(&["--dry-run", "bind", "web", attach.to_str().unwrap()], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--dry-run does not apply to `bind`"), "{r:?}");
    // A path is a path, whatever its name.
    let r = ovs_run(&["./nosuch.wasm"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot read script ./nosuch.wasm"), "{r:?}");
}

#[test]
fn make_install_into_a_destdir() {
    let dest = tempfile::tempdir().unwrap();
    let destdir = dest.path().to_str().unwrap();
    // The binary the tests run is the one make installs.
    let target = Path::new(bin()).parent().unwrap().parent().unwrap();
    let out = Command::new("make")
        .args(["-s", "install", &format!("DESTDIR={destdir}"), "PREFIX=/usr/local"])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p = |rel: &str| dest.path().join(rel);

    // The binary: stripped, runs, and finds the scripts installed beside it.
    let installed = p("usr/local/bin/ovs-run");
    let size = std::fs::metadata(&installed).unwrap().len();
    assert!(size < std::fs::metadata(bin()).unwrap().len() / 2, "stripped: {size} bytes");
    assert!(
        sh("file", &[installed.to_str().unwrap()]).contains("stripped")
            && !sh("file", &[installed.to_str().unwrap()]).contains("not stripped")
    );
    assert!(sh(installed.to_str().unwrap(), &["--version"]).starts_with("ovs-run "));
    let listed = Command::new(&installed).arg("scripts").env_remove("OVS_RUN_PATH").output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for s in ["attach", "detach", "set-vlan", "seed-demo"] {
        assert!(p(&format!("usr/local/share/ovs-run/scripts/{s}.wasm")).is_file(), "{s}");
        assert!(
            listed.lines().any(|l| l.starts_with(&format!("{s} ")) && l.contains(destdir)),
            "{s} in:\n{listed}"
        );
    }

    // systemd units, with the installed binary's path.
    for unit in ["ovs-run-serve.service", "ovs-run-watch.service"] {
        let file = p(&format!("usr/local/lib/systemd/system/{unit}"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/ovs-run "), "{text}");
        assert!(!text.contains("@BINDIR@"));
        if try_sh("systemd-analyze", &["--version"]).0 {
            // The unit as it is, but starting the binary in DESTDIR (verify
            // checks that ExecStart's program exists; --root would want a
            // whole system there). Any complaint names the unit's file.
            let check = tempfile::tempdir().unwrap();
            let copy = check.path().join(unit);
            std::fs::write(&copy, text.replace("/usr/local/bin/ovs-run", installed.to_str().unwrap()))
                .unwrap();
            let (ok, out) = try_sh("systemd-analyze", &["verify", "--man=no", copy.to_str().unwrap()]);
            assert!(ok && !out.contains(unit), "systemd-analyze verify {unit}: {out}");
        }
    }

    // Manual pages, one per subcommand, that man renders.
    for page in
        ["ovs-run.1", "ovs-run-ps.1", "ovs-run-attach.1", "ovs-run-key-generate.1", "ovs-run-scripts.1"]
    {
        let f = p(&format!("usr/local/share/man/man1/{page}"));
        if page == "ovs-run-attach.1" {
            assert!(!f.exists(), "scripts have no page of their own");
            continue;
        }
        let out = Command::new("man")
            .args(["-l", f.to_str().unwrap()])
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("NAME"), "{page}: {text}");
    }
    assert!(!p("usr/local/share/man/man1/ovs-run-generate.1").exists(), "the hidden command has no page");

    // Completions for bash, zsh and fish that name the subcommands.
    let bash = p("usr/local/share/bash-completion/completions/ovs-run");
    assert!(try_sh("bash", &["-n", bash.to_str().unwrap()]).0);
    for f in [
        bash,
        p("usr/local/share/zsh/site-functions/_ovs-run"),
        p("usr/local/share/fish/vendor_completions.d/ovs-run.fish"),
    ] {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(text.contains("inspect") && text.contains("ps"), "{}", f.display());
    }
}

#[test]
fn bind_says_when_it_selects_nothing_and_lists_bindings_aligned() {
    let ovs = Ovs::start();
    let state = tempfile::tempdir().unwrap();
    let st = state.path().to_str().unwrap();
    let attach = script("attach");
    let a = attach.to_str().unwrap();
    let bind = |words: &[&str]| {
        let mut args = vec!["bind", "--state-dir", st];
        args.extend_from_slice(words);
        ovs.run(&args)
    };
    let count = || {
        let r = ovs.run(&["bindings", "--state-dir", st, "--json"]);
        serde_json::from_str::<Value>(&r.stdout).unwrap().as_array().unwrap().len()
    };

    // A name Docker does not know: refused, nothing recorded.
    let nosuch = unique("nosuch");
    let r = bind(&[&nosuch, a, "br0", "eth0", "{container}"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("container {nosuch} does not exist")), "{r:?}");
    assert!(r.stderr.contains("--no-run"), "{r:?}");
    assert_eq!(count(), 0);
    // For a container yet to come, explicitly: recorded, and said.
    let r = bind(&["--no-run", &nosuch, a, "br0", "eth0", "{container}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("no running container matches container {nosuch}")), "{r:?}");
    // A label that selects nothing: recorded, with the warning.
    let label = format!("day2={}", unique("l"));
    let r = bind(&["--label", &label, a, "br0", "eth1-long-args-here", "{container}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("no running container matches label {label}")), "{r:?}");
    assert_eq!(count(), 2);

    // Columns line up, whatever the selector's width.
    let r = ovs.run(&["bindings", "--state-dir", st]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    for h in ["SELECTOR", "SCRIPT", "ARGS"] {
        let col = lines[0].find(h).unwrap();
        for l in &lines[1..] {
            assert_eq!(l.chars().nth(col - 1), Some(' '), "{h} column in:\n{}", r.stdout);
            assert_ne!(l.chars().nth(col), Some(' '), "{h} column in:\n{}", r.stdout);
        }
    }
}

#[test]
fn watch_json_lines_have_a_time_and_the_container_as_an_object() {
    use std::io::{BufRead, BufReader};
    let ovs = Ovs::start();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["watch", "--json", "--state-dir", state.path().to_str().unwrap()])
        .env("OVS_RUNDIR", ovs.rundir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = child.stdout.take().unwrap();
    let _kill = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let next = |want: &dyn Fn(&Value) -> bool| loop {
        let l = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("a watch line within 30 s");
        let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}"));
        let t = v["time"].as_str().unwrap_or_else(|| panic!("no time: {l}"));
        assert!(t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        if want(&v) {
            return v;
        }
    };
    next(&|v| v["action"] == "watching");
    let c = Container::start();
    let ev = next(&|v| v["action"] == "event" && v["event"] == "start");
    assert_eq!(ev["container"], serde_json::json!({"name": c.name, "id": c.id()}));
}

/// The default route's gateway inside `c` through `dev`, as `ip route` sees it.
fn default_via(c: &Container, dev: &str) -> Option<String> {
    let out = c.ip(&["-4", "route", "show", "default", "dev", dev]);
    out.split_whitespace().skip_while(|w| *w != "via").nth(1).map(str::to_string)
}

#[test]
fn modify_changes_an_attachment_in_place_idempotently_and_all_or_nothing() {
    let (ovs, br) = Ovs::with_bridge("d2m");
    let c = Container::start();
    let s = script("attach");
    let m = script("modify");
    let (attach, modify) = (s.to_str().unwrap(), m.to_str().unwrap());
    let r = ovs.run(&[
        "--datapath",
        "netdev",
        attach,
        &br,
        "eth1",
        &c.name,
        "--ipaddress=10.73.0.2/24",
        "--gateway=10.73.0.1",
        "--mtu=1450",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let port = ovs.port_of(&c.name, "eth1").unwrap();

    // Attaching it again says which port holds it and what to use instead.
    let r = ovs.run(&[attach, &br, "eth1", &c.name, "--mtu=1400"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("port {port} on bridge {br}, made by attach")), "{r:?}");
    assert!(r.stderr.contains(&format!("ovs-run modify {br} eth1 {}", c.name)), "{r:?}");

    // Everything at once: address, gateway, MTU (both ends), MAC, VLAN.
    let change = [
        modify,
        &br,
        "eth1",
        &c.name,
        "--ipaddress=10.74.0.9/24",
        "--gateway=10.74.0.1",
        "--mtu=1400",
        "--macaddress=02:00:00:74:00:09",
        "--vlan=74",
    ];
    let r = ovs.run(&change);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("mtu 1400") && r.stdout.contains("vlan 74"), "{r:?}");
    let addrs = c.ip(&["-4", "-o", "addr", "show", "eth1"]);
    assert!(addrs.contains("10.74.0.9/24") && !addrs.contains("10.73.0.2"), "{addrs}");
    assert_eq!(default_via(&c, "eth1").as_deref(), Some("10.74.0.1"));
    let link = c.ip(&["link", "show", "eth1"]);
    assert_eq!(mtu_in(&link), 1400);
    assert!(link.contains("02:00:00:74:00:09"), "{link}");
    assert_eq!(mtu_in(&sh("ip", &["link", "show", &port])), 1400, "the host end too");
    assert_eq!(ovs.vsctl(&["get", "Port", &port, "tag"]).trim(), "74");
    assert_eq!(ovs.port_of(&c.name, "eth1").as_deref(), Some(port.as_str()), "the same port, not a new one");

    // Twice: nothing changes.
    let before = (ovs.snapshot(), c.ip(&["-o", "addr"]), c.ip(&["route"]), c.ip(&["-o", "link"]));
    let r = ovs.run(&[&["--json"][..], &change[..]].concat());
    assert_eq!(r.code, 0, "{r:?}");
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["changes"], serde_json::json!([]), "{r:?}");
    assert!(r.stderr.contains("nothing changed"), "{r:?}");
    assert_eq!(before, (ovs.snapshot(), c.ip(&["-o", "addr"]), c.ip(&["route"]), c.ip(&["-o", "link"])));

    // A step fails (the gateway is not on any of the link's networks): the
    // MTU, MAC and VLAN changed before it are rolled back too.
    let r = ovs.run(&[modify, &br, "eth1", &c.name, "--mtu=1300", "--vlan=none", "--gateway=192.0.2.1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(before, (ovs.snapshot(), c.ip(&["-o", "addr"]), c.ip(&["route"]), c.ip(&["-o", "link"])));
    assert_eq!(mtu_in(&sh("ip", &["link", "show", &port])), 1400);

    // A new address alone, off the gateway's network: refused before any change.
    let r = ovs.run(&[modify, &br, "eth1", &c.name, "--ipaddress=10.75.0.9/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--gateway"), "{r:?}");
    assert_eq!(before, (ovs.snapshot(), c.ip(&["-o", "addr"]), c.ip(&["route"]), c.ip(&["-o", "link"])));

    // Removing: the gateway and the VLAN.
    let r = ovs.run(&[modify, &br, "eth1", &c.name, "--gateway=none", "--vlan=none"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(default_via(&c, "eth1"), None);
    assert_eq!(ovs.vsctl(&["get", "Port", &port, "tag"]).trim(), "[]");

    // Not attached, nothing to change: said, before any change.
    let r = ovs.run(&[modify, &br, "eth2", &c.name, "--mtu=1400"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("is not attached") && r.stderr.contains("ovs-run attach"), "{r:?}");
    let r = ovs.run(&[modify, &br, "eth1", &c.name]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing to change"), "{r:?}");
}

#[test]
fn modify_and_attach_know_ovs_docker_ports() {
    let (ovs, br) = Ovs::with_bridge("d2k");
    let c = Container::start();
    ovs_docker(&ovs, &["add-port", &br, "eth3", &c.name, "--ipaddress=10.76.0.3/24", "--gateway=10.76.0.1"]);
    let port = ovs.port_of(&c.name, "eth3").unwrap();

    let attach = script("attach");
    let r = ovs.run(&[attach.to_str().unwrap(), &br, "eth3", &c.name, "--ipaddress=10.76.0.4/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("link eth3 already exists"), "{r:?}");
    assert!(r.stderr.contains(&format!("port {port} on bridge {br}, made by ovs-docker")), "{r:?}");
    assert!(r.stderr.contains(&format!("ovs-docker del-port {br} eth3 {}", c.name)), "{r:?}");

    let modify = script("modify");
    let r =
        ovs.run(&[modify.to_str().unwrap(), &br, "eth3", &c.name, "--ipaddress=10.76.0.5/24", "--vlan=9"]);
    assert_eq!(r.code, 0, "{r:?}");
    let addrs = c.ip(&["-4", "-o", "addr", "show", "eth3"]);
    assert!(addrs.contains("10.76.0.5/24") && !addrs.contains("10.76.0.3/"), "{addrs}");
    // The old address was the only one: its routes went with it, the gateway came back.
    assert_eq!(default_via(&c, "eth3").as_deref(), Some("10.76.0.1"));
    assert_eq!(ovs.vsctl(&["get", "Port", &port, "tag"]).trim(), "9");
}

#[test]
fn seed_demo_twice_hands_out_two_addresses() {
    let ovs = Ovs::start();
    let (a, b) = (Container::start(), Container::start());
    let br = unique("d2s");
    let s = script("seed-demo");
    for c in [&a, &b] {
        let r = ovs.run(&[
            "--datapath",
            "netdev",
            s.to_str().unwrap(),
            &format!("--bridge={br}"),
            &format!("--container={}", c.name),
            "--subnet=10.78.0.0/24",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let addr = |c: &Container| c.ip(&["-4", "-o", "addr", "show", "eth0"]);
    assert!(addr(&a).contains("10.78.0.2/24"), "{}", addr(&a));
    assert!(addr(&b).contains("10.78.0.3/24"), "{}", addr(&b));
    assert!(b.ping("10.78.0.2"), "b reaches a: no duplicate address");
}

#[test]
fn dry_run_of_an_attached_assumed_container_fails_like_the_real_run() {
    let (ovs, br) = Ovs::with_bridge("d2a");
    let c = Container::start();
    let s = script("attach");
    let attach = s.to_str().unwrap();
    let r = ovs.run(&["--datapath", "netdev", attach, &br, "eth0", &c.name, "--ipaddress=10.79.0.2/24"]);
    assert_eq!(r.code, 0, "{r:?}");
    let port = ovs.port_of(&c.name, "eth0").unwrap();

    let again = [attach, &br, "eth0", &c.name, "--ipaddress=10.79.0.3/24"];
    let real = ovs.run(&again);
    let plan = ovs.run(&[&["--dry-run", "--assume-container", &c.name][..], &again[..]].concat());
    assert_eq!(real.code, 1, "{real:?}");
    assert_eq!(plan.code, real.code, "the plan must fail like the real run: {plan:?}");
    let said = format!("port {port} on bridge {br}");
    assert!(real.stderr.contains(&said) && plan.stderr.contains(&said), "{real:?}\n{plan:?}");
    // Another interface of the same container plans fine.
    let r = ovs.run(&["--dry-run", "--assume-container", &c.name, attach, &br, "eth1", &c.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("add port"), "{r:?}");
}

#[test]
fn new_makes_a_rust_project_that_builds_and_runs_and_a_python_one() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("proj");
    let r = ovs_run(&["new", "--dir", dir.to_str().unwrap(), "my-check"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("cargo build --release --target wasm32-wasip2"), "{r:?}");
    // Outside the repository, with its own target dir: it builds as it is.
    let target = work.path().join("target");
    let out = Command::new("cargo")
        .args(["build", "--offline", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo build: {}", String::from_utf8_lossy(&out.stderr));
    let wasm = target.join("wasm32-wasip2/release/my_check.wasm");
    let r = ovs_run(
        &["--dry-run", "--assume-container", "web", wasm.to_str().unwrap(), "br0", "web", "--mtu=1400"],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("add port") && r.stdout.contains("1400"), "{r:?}");
    // Its Cargo.toml's name and description, as the shipped scripts carry them.
    let r = ovs_run(&["metadata", "set", wasm.to_str().unwrap()], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = ovs_run(&["inspect", wasm.to_str().unwrap()], &[]);
    assert!(r.stdout.contains("my-check") && r.stdout.contains("What my-check does"), "{r:?}");

    // Not over an existing directory; names are checked.
    let r = ovs_run(&["new", "--dir", dir.to_str().unwrap(), "my-check"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("exists"), "{r:?}");
    let r = ovs_run(&["new", "--dir", work.path().join("x").to_str().unwrap(), "Bad_Name"], &[]);
    assert_eq!(r.code, 2, "{r:?}");

    let py = work.path().join("py");
    let r = ovs_run(&["new", "--lang", "python", "--dir", py.to_str().unwrap(), "vlan-check"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(py.join("vlan_check.py")).unwrap();
    assert!(
        text.contains("Usage: vlan-check") && text.contains("build-guest python vlan_check.py"),
        "{text}"
    );
}

#[test]
fn a_compile_that_takes_a_while_says_so_on_a_terminal_only() {
    let attach = script("attach");
    let cmd =
        format!("{} --no-cache --dry-run --assume-container web {} br0 eth0 web", bin(), attach.display());
    // On a terminal (script(1) gives it one): what is compiled, why, and how long it took.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("OVS_RUN_PROGRESS_AFTER_MS", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("ovs-run: compiling {} to native code (--no-cache) ...", attach.display())),
        "{text}"
    );
    assert!(text.contains("ovs-run: ... done in "), "{text}");
    // Not on a pipe, and never on stdout.
    let r = ovs_run(
        &[
            "--no-cache",
            "--dry-run",
            "--assume-container",
            "web",
            attach.to_str().unwrap(),
            "br0",
            "eth0",
            "web",
        ],
        &[("OVS_RUN_PROGRESS_AFTER_MS", "0")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("compiling"), "{r:?}");
}

#[test]
fn a_batch_shows_its_progress_on_a_terminal_only() {
    let (ovs, br) = Ovs::with_bridge("d2p");
    let cs: Vec<Container> = (0..20).map(|_| Container::start()).collect();
    let s = script("attach-many");
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    let mut args = vec!["--datapath", "netdev", s.to_str().unwrap(), &br, "eth0"];
    args.extend(&names);
    // On a terminal (script(1) gives it one), with the test's OVS.
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let cmd = format!("{} {}", bin(), quoted.join(" "));
    let mut script_cmd = Command::new("script");
    script_cmd.args(["-qec", &cmd, "/dev/null"]);
    for (k, v) in ovs.env() {
        script_cmd.env(k, v);
    }
    let out = script_cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ovs-run: veth pairs made: 20/20"), "{text}");
    assert!(
        text.contains("ovs-run: 20 ports added in one OVSDB transaction and applied by ovs-vswitchd: 20/20"),
        "{text}"
    );
    assert_eq!(ovs.vsctl(&["list-ports", &br]).lines().count(), 20);
    // Not on a pipe: the same batch again (detached first) says nothing of it.
    let d = script("detach-many");
    let mut dargs = vec![d.to_str().unwrap(), br.as_str(), "eth0"];
    dargs.extend(&names);
    assert_eq!(ovs.run(&dargs).code, 0);
    let r = ovs.run(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("veth pairs made"), "{r:?}");
}
