//! Container lifecycle against real daemons: `ovs-run gc`, bindings, and the
//! `ovs-run watch` process following real Docker events. Every check looks
//! through an independent view (ovs-vsctl, ip, nsenter, docker), never
//! through ovs-run itself.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Run an `ovs-run` subcommand against `ovs` with the state in `state`.
fn lc(ovs: &Ovs, args: &[&str]) -> Run {
    let t = Instant::now();
    let out = Command::new(bin()).args(args).env("OVS_RUNDIR", ovs.rundir()).output().expect("run ovs-run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t.elapsed(),
    }
}

fn cache() -> String {
    cache_dir().to_str().unwrap().to_string()
}

/// A private state directory for bindings.
fn state() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ovs-run-t-state").tempdir().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ovs-run bind` with the test's state, cache and datapath.
fn bind(ovs: &Ovs, state: &Path, words: &[&str]) -> Run {
    let c = cache();
    let mut a = vec!["bind", "--state-dir", path(state), "--cache-dir", &c, "--datapath", "netdev"];
    a.extend_from_slice(words);
    lc(ovs, &a)
}

/// The binding id `bind` printed ("bound ID: ...").
fn bound_id(r: &Run) -> String {
    let line = r.stdout.lines().find_map(|l| l.strip_prefix("bound ")).unwrap_or_else(|| panic!("{r:?}"));
    line.split(':').next().unwrap().to_string()
}

fn attach(ovs: &Ovs, bridge: &str, ifname: &str, container: &str, opts: &[&str]) {
    let s = script("attach");
    let mut a = vec!["--datapath", "netdev", s.to_str().unwrap(), bridge, ifname, container];
    a.extend_from_slice(opts);
    let r = ovs.run(&a);
    assert_eq!(r.code, 0, "attach {container}: {r:?}");
}

fn ports(ovs: &Ovs, bridge: &str) -> Vec<String> {
    ovs.vsctl(&["list-ports", bridge]).lines().map(str::to_string).collect()
}

fn host_link_exists(name: &str) -> bool {
    host_links().lines().any(|l| l == name)
}

/// Give the bridge's internal port an address, so containers can ping it.
fn bridge_address(bridge: &str, cidr: &str) {
    sh("ip", &["addr", "add", cidr, "dev", bridge]);
    sh("ip", &["link", "set", bridge, "up"]);
}

fn docker(args: &[&str]) {
    sh("docker", args);
}

/// `ovs-docker` against `ovs`.
fn ovs_docker(ovs: &Ovs, args: &[&str]) {
    let out = Command::new("ovs-docker").args(args).env("OVS_RUNDIR", ovs.rundir()).output().unwrap();
    assert!(out.status.success(), "ovs-docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A host link deleted on drop (its veth peer goes with it).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// `ovs-run watch` as a child process, killed on drop. Its stdout lines are
/// collected by a thread, so a test waits for the action it expects.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watcher {
    fn start(ovs: &Ovs, state: &Path) -> Watcher {
        let mut child = Command::new(bin())
            .args(["watch", "--state-dir", path(state), "--cache-dir", &cache(), "--datapath", "netdev"])
            .env("OVS_RUNDIR", ovs.rundir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ovs-run watch");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut w = Watcher { child, lines, seen: vec![] };
        w.wait_for("watching container events", Duration::from_secs(30));
        w
    }

    /// The first new line containing `what`; panics (with everything seen) after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "no watcher line with {what:?} within {timeout:?} ({e:?}); it said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn restart_brings_a_bound_attachment_back() {
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    bridge_address(&br, "10.71.0.1/24");
    let c = Container::start();
    let a = script("attach");

    // bind runs the script now, and records the binding.
    let r = bind(
        &ovs,
        st.path(),
        &[&c.name, a.to_str().unwrap(), &br, "eth0", "{container}", "--ipaddress=10.71.0.2/24"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let id = bound_id(&r);
    let port = ovs.port_of(&c.name, "eth0").expect("bind attached the container now");
    assert!(c.ping("10.71.0.1"), "ping before the restart");
    assert_tcp("TCP before the restart", &c, &HereNs, "10.71.0.1");
    let before = ports(&ovs, &br);

    let mut w = Watcher::start(&ovs, st.path());
    let old_pid = c.pid();
    let t = Instant::now();
    docker(&["restart", "-t", "0", &c.name]);
    let restarted = t.elapsed();
    w.wait_for(&format!("applied binding {id}"), Duration::from_secs(30));
    eprintln!("docker restart took {restarted:?}; attached again {:?} after it began", t.elapsed());
    assert_ne!(c.pid(), old_pid, "a new init process, so a new network namespace");

    // The old row was removed and the port made again under the same name.
    assert_eq!(ports(&ovs, &br), before, "same ports on the bridge");
    assert_eq!(ovs.port_of(&c.name, "eth0").as_deref(), Some(port.as_str()));
    let ofport: i64 = ovs.vsctl(&["get", "Interface", &port, "ofport"]).trim().parse().unwrap();
    assert!(ofport > 0, "ovs-vswitchd attached the new veth: ofport {ofport}");
    assert!(c.ip(&["-4", "addr", "show", "eth0"]).contains("10.71.0.2/24"), "same address");
    assert!(c.ping("10.71.0.1"), "ping after the restart");
    assert_tcp("TCP after the restart", &c, &HereNs, "10.71.0.1");

    // And again: every restart, not just the first.
    docker(&["restart", "-t", "0", &c.name]);
    w.wait_for(&format!("applied binding {id}"), Duration::from_secs(30));
    assert_eq!(ports(&ovs, &br), before);
    assert!(c.ping("10.71.0.1"), "ping after the second restart");
}

#[test]
fn rm_f_removes_the_port_within_2s_while_watching() {
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    let (c, keep) = (Container::start(), Container::start());
    attach(&ovs, &br, "eth0", &c.name, &[]);
    attach(&ovs, &br, "eth0", &keep.name, &[]);
    let port = ovs.port_of(&c.name, "eth0").unwrap();
    let kept = ovs.port_of(&keep.name, "eth0").unwrap();
    assert!(host_link_exists(&port));

    let _w = Watcher::start(&ovs, st.path());
    let t = Instant::now();
    docker(&["rm", "-f", &c.name]);
    while ports(&ovs, &br).contains(&port) {
        assert!(t.elapsed() < Duration::from_secs(2), "port {port} still there after {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("port removed {:?} after docker rm -f", t.elapsed());
    // The watcher deletes the host veth right after the row (the kernel
    // would too, but only when it gets round to the dead namespace): the
    // row can be seen gone a moment before the veth is.
    while host_link_exists(&port) {
        assert!(t.elapsed() < Duration::from_secs(2), "host veth {port} still there after {:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ports(&ovs, &br), vec![kept], "the other container's port stays");
}

#[test]
fn gc_collects_dead_ports_of_ovs_run_and_ovs_docker_and_nothing_else() {
    let (ovs, br) = Ovs::with_bridge("tl");
    bridge_address(&br, "10.72.0.1/24");
    let (gone, stopped, by_ovs_docker, live) =
        (Container::start(), Container::start(), Container::start(), Container::start());
    attach(&ovs, &br, "eth0", &gone.name, &[]);
    attach(&ovs, &br, "eth0", &stopped.name, &[]);
    ovs_docker(&ovs, &["add-port", &br, "eth1", &by_ovs_docker.name]);
    attach(&ovs, &br, "eth0", &live.name, &["--ipaddress=10.72.0.2/24"]);
    let dead: Vec<String> = [(&gone, "eth0"), (&stopped, "eth0"), (&by_ovs_docker, "eth1")]
        .iter()
        .map(|(c, i)| ovs.port_of(&c.name, i).unwrap())
        .collect();
    let live_port = ovs.port_of(&live.name, "eth0").unwrap();

    // Ports without container metadata: a plain veth (with other external
    // ids), and one in error (no such device). gc must never touch them.
    let plain = unique("tlv");
    sh("ip", &["link", "add", &plain, "type", "veth", "peer", "name", &format!("{plain}p")]);
    let _cleanup = LinkGuard(plain.clone());
    ovs.vsctl(&["add-port", &br, &plain, "--", "set", "interface", &plain, "external_ids:owner=someone"]);
    let broken = unique("tlx");
    ovs.vsctl(&["add-port", &br, &broken]);
    let err = ovs.vsctl(&["get", "interface", &broken, "error"]);
    assert!(err.contains("No such device") || err.contains("could not open"), "really in error: {err}");

    // A container whose eth0 was moved into another namespace: its port
    // leads somewhere the container is not.
    let moved = Container::start();
    attach(&ovs, &br, "eth0", &moved.name, &[]);
    let elsewhere = Netns::new();
    sh("nsenter", &["-t", &moved.pid(), "-n", "ip", "link", "set", "eth0", "netns", &elsewhere.name]);
    let moved_port = ovs.port_of(&moved.name, "eth0").unwrap();

    // A port as ovs-docker leaves it between `add-port` and moving the peer
    // into the container: both veth ends still in the host. Not dead yet.
    let setup = unique("tls");
    sh("ip", &["link", "add", &setup, "type", "veth", "peer", "name", &format!("{setup}p")]);
    let _cleanup2 = LinkGuard(setup.clone());
    ovs.vsctl(&[
        "add-port",
        &br,
        &setup,
        "--",
        "set",
        "interface",
        &setup,
        &format!("external_ids:container_id={}", live.name),
        "external_ids:container_iface=eth5",
    ]);

    docker(&["rm", "-f", &gone.name]);
    docker(&["stop", "-t", "0", &stopped.name]);
    docker(&["rm", "-f", &by_ovs_docker.name]);

    // A dry run names each dead port and changes nothing.
    let snap = ovs.snapshot();
    let r = lc(&ovs, &["gc", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    for p in dead.iter().chain([&moved_port]) {
        assert!(
            r.stdout.lines().any(|l| l.starts_with("would remove port") && l.contains(p.as_str())),
            "{p}: {r:?}"
        );
    }
    assert_eq!(r.stdout.lines().count(), 4, "{r:?}");
    assert_eq!(ovs.snapshot(), snap, "dry run changed nothing");

    let r = lc(&ovs, &["gc", "--bridge", &br]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.lines().filter(|l| l.starts_with("removed port")).count(), 4, "{r:?}");
    for why in ["the container is gone", "the container is not running", "does not lead into the container's"]
    {
        assert!(r.stdout.contains(why), "{why}: {r:?}");
    }
    let mut left = ports(&ovs, &br);
    left.sort();
    let mut want = vec![live_port.clone(), plain.clone(), broken.clone(), setup.clone()];
    want.sort();
    assert_eq!(left, want, "exactly the dead container ports went");
    for p in &dead {
        assert!(!host_link_exists(p), "host veth {p} removed");
    }
    assert!(host_link_exists(&plain), "the plain veth is untouched");
    assert!(live.ping("10.72.0.1"), "the live container still pings");
    assert_tcp("the live container still moves data", &live, &HereNs, "10.72.0.1");

    let r = lc(&ovs, &["gc"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "nothing left to collect: {r:?}");
    let r = lc(&ovs, &["gc", "--bridge", "no-such-br0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no-such-br0"), "{r:?}");
}

#[test]
fn a_watcher_started_after_missed_events_reconciles() {
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    bridge_address(&br, "10.73.0.1/24");
    let (restarted, removed, untouched) = (Container::start(), Container::start(), Container::start());
    let a = script("attach");
    let r = bind(
        &ovs,
        st.path(),
        &[&restarted.name, a.to_str().unwrap(), &br, "eth0", "{container}", "--ipaddress=10.73.0.2/24"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    attach(&ovs, &br, "eth0", &removed.name, &[]);
    attach(&ovs, &br, "eth0", &untouched.name, &["--ipaddress=10.73.0.3/24"]);
    let gone_port = ovs.port_of(&removed.name, "eth0").unwrap();
    let untouched_port = ovs.port_of(&untouched.name, "eth0").unwrap();
    let untouched_row = ovs.vsctl(&["--columns=_uuid,ofport", "list", "interface", &untouched_port]);

    // Nothing watches while these happen.
    docker(&["restart", "-t", "0", &restarted.name]);
    docker(&["rm", "-f", &removed.name]);
    assert!(ovs.port_of(&restarted.name, "eth0").is_some(), "stale row still there");
    assert!(!restarted.ip(&["link"]).contains("eth0"), "the restart took the veth");

    let w = Watcher::start(&ovs, st.path());
    let line =
        w.seen.iter().find(|l| l.starts_with("reconciled:")).cloned().expect("reconciled before watching");
    assert!(line.contains("removed 2 dead port(s), applied 1 binding(s), 0 failed"), "{line}\n{:?}", w.seen);

    assert!(!ports(&ovs, &br).contains(&gone_port), "the removed container's port is gone");
    assert!(restarted.ip(&["-4", "addr", "show", "eth0"]).contains("10.73.0.2/24"), "binding re-run");
    assert!(restarted.ping("10.73.0.1"));
    assert_tcp("re-attached by the binding", &restarted, &HereNs, "10.73.0.1");
    assert_eq!(
        ovs.vsctl(&["--columns=_uuid,ofport", "list", "interface", &untouched_port]),
        untouched_row,
        "a live port is not touched"
    );
    assert!(untouched.ping("10.73.0.1"));
    drop(w);

    // A second start-up finds nothing to do: a binding runs once per container start.
    let w = Watcher::start(&ovs, st.path());
    let line = w.seen.iter().find(|l| l.starts_with("reconciled:")).cloned().unwrap();
    assert!(line.contains("removed 0 dead port(s), applied 0 binding(s), 0 failed"), "{line}");
}

#[test]
fn a_failing_binding_is_not_recorded_and_leaves_nothing() {
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    let c = Container::start();
    let a = script("attach");
    let snap = ovs.snapshot();
    let links = host_links();

    // A gateway in no subnet of the container fails after the port and the
    // address were made: the run is rolled back and the binding not recorded.
    let r = bind(
        &ovs,
        st.path(),
        &[
            &c.name,
            a.to_str().unwrap(),
            &br,
            "eth0",
            &c.name,
            "--ipaddress=10.74.0.2/24",
            "--gateway=10.99.0.1",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("failed binding") && r.stderr.contains("binding not recorded"), "{r:?}");
    assert_eq!(ovs.snapshot(), snap, "rolled back");
    assert_eq!(host_links(), links);
    let r = lc(&ovs, &["bindings", "--state-dir", path(st.path()), "--json"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"), "{r:?}");

    // Bad input names the bad value and records nothing.
    let r = bind(&ovs, st.path(), &["--label", "novalue", a.to_str().unwrap(), &br]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("'novalue'"), "{r:?}");
    let not_wasm = st.path().join("x.wasm");
    std::fs::write(&not_wasm, b"not wasm").unwrap();
    let r = bind(&ovs, st.path(), &[&c.name, path(&not_wasm), &br]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a WebAssembly component"), "{r:?}");
    let r = bind(&ovs, st.path(), &["bad/name", a.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad/name"), "{r:?}");
    let r = lc(&ovs, &["bindings", "--state-dir", path(st.path()), "--json"]);
    assert_eq!(r.stdout.trim(), "[]", "{r:?}");
}

#[test]
fn bindings_list_unbind_and_labels() {
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    let a = script("attach");
    let label = format!("ovsrt.test={}", unique("l"));

    // --no-run: recorded, nothing attached yet; the same binding twice is one.
    let r = bind(
        &ovs,
        st.path(),
        &["--no-run", "--label", &label, a.to_str().unwrap(), &br, "eth1", "{container}"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let id = bound_id(&r);
    let r2 = bind(
        &ovs,
        st.path(),
        &["--no-run", "--label", &label, a.to_str().unwrap(), &br, "eth1", "{container}"],
    );
    assert!(r2.code == 0 && r2.stdout.contains("already bound"), "{r2:?}");
    assert!(ports(&ovs, &br).is_empty());
    let r = lc(&ovs, &["bindings", "--state-dir", path(st.path())]);
    assert!(r.stdout.contains(&id) && r.stdout.contains(&label) && r.stdout.contains("attach.wasm"), "{r:?}");
    let json: serde_json::Value =
        serde_json::from_str(&lc(&ovs, &["bindings", "--state-dir", path(st.path()), "--json"]).stdout)
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["tenant"], serde_json::Value::Null);

    // A container carrying the label is attached when it starts.
    let mut w = Watcher::start(&ovs, st.path());
    let name = unique("ovsrt-c");
    let _c = RunningContainer::start(&name, &["--label", &label]);
    w.wait_for(&format!("applied binding {id}"), Duration::from_secs(30));
    assert!(ovs.port_of(&name, "eth1").is_some(), "{:?}", w.seen);
    drop(w);

    // unbind by a prefix; unknown ids are refused before anything is removed.
    let r = lc(&ovs, &["unbind", "--state-dir", path(st.path()), &id[..6], "ffffffffffff"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("ffffffffffff"), "{r:?}");
    let r = lc(&ovs, &["unbind", "--state-dir", path(st.path()), &id[..6]]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = lc(&ovs, &["bindings", "--state-dir", path(st.path()), "--json"]);
    assert_eq!(r.stdout.trim(), "[]");
    assert!(std::fs::read_dir(st.path().join("scripts")).unwrap().next().is_none(), "script copy removed");
}

/// The state directory decides what runs as root on every container start:
/// a directory others can write, or a script copy changed behind ovs-run's
/// back, is refused.
#[test]
fn tampered_state_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (ovs, br) = Ovs::with_bridge("tl");
    let st = state();
    let c = Container::start();
    let a = script("attach");
    let r = bind(&ovs, st.path(), &["--no-run", &c.name, a.to_str().unwrap(), &br, "eth0", "{container}"]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = bound_id(&r);

    // Swap the script copy for another valid component (detach-all).
    let copy = std::fs::read_dir(st.path().join("scripts")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(script("detach-all"), &copy).unwrap();
    let mut w = Watcher::start(&ovs, st.path());
    docker(&["restart", "-t", "0", &c.name]);
    let line = w.wait_for(&format!("failed binding {id}"), Duration::from_secs(30));
    assert!(line.contains("does not match its sha256"), "{line}");
    assert!(ports(&ovs, &br).is_empty(), "nothing ran");

    // A tenant's binding runs under the tenant's policy, which only the
    // daemon has: this watcher must refuse it rather than run it as root.
    std::fs::copy(&a, &copy).unwrap();
    let file = st.path().join("bindings").join(format!("{id}.json"));
    let mut b: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    b["tenant"] = "alice".into();
    std::fs::write(&file, serde_json::to_vec(&b).unwrap()).unwrap();
    docker(&["restart", "-t", "0", &c.name]);
    let line = w.wait_for(&format!("failed binding {id}"), Duration::from_secs(30));
    assert!(line.contains("tenant alice"), "{line}");
    assert!(ports(&ovs, &br).is_empty(), "nothing ran");
    drop(w);

    // A state directory writable by others: every command refuses it.
    std::fs::set_permissions(st.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [
        vec!["bindings", "--state-dir", path(st.path())],
        vec!["watch", "--state-dir", path(st.path()), "--cache-dir", &cache()],
        vec!["unbind", "--state-dir", path(st.path()), &id],
    ] {
        let r = lc(&ovs, &args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("writable by group or others"), "{args:?}: {r:?}");
    }
    let r = bind(&ovs, st.path(), &[&c.name, a.to_str().unwrap(), &br, "eth0", "{container}"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(ports(&ovs, &br).is_empty(), "bind refused before running anything");
}

/// A container started by the test with extra `docker run` options, removed on drop.
struct RunningContainer(String);

impl RunningContainer {
    fn start(name: &str, opts: &[&str]) -> RunningContainer {
        let mut a = vec!["run", "-d", "--net=none", "--name", name];
        a.extend_from_slice(opts);
        let img = image();
        a.extend_from_slice(&[&img, "/bin/sleep", "3600"]);
        docker(&a);
        RunningContainer(name.to_string())
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}
