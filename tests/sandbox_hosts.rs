//! `ovs-run sandbox up --hosts N [--ovn]`: simulated hosts on one machine,
//! as a user tries them (README "Try it on one machine"). Everything the
//! sandbox claims is checked without ovs-run: ovs-vsctl and ovn-sbctl on the
//! hosts' sockets, `ip` and `ping` through nsenter in the hosts'
//! namespaces, kernel TCP sockets between "containers" (named network
//! namespaces) on different hosts. One sandbox with OVN carries the checks
//! that only look at a running sandbox (its hosts, a VXLAN mesh, an OVN
//! switch): each builds on what `up` made and nothing the others need.
//! Last, `sandbox up --docker`'s `down` with a container that outlives
//! dockerd's shutdown.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const HOSTS: [&str; 3] = ["A", "B", "C"];

/// Host `h`'s underlay address, as `sandbox up --hosts` documents it.
fn underlay_ip(h: &str) -> String {
    format!("172.31.0.{}", 10 + (h.as_bytes()[0] - b'A'))
}

/// A sandbox of several hosts in a temp dir; `down` on drop (also when a
/// check failed), so a failed test leaves nothing behind either.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        require_root();
        Sandbox { dir: std::env::temp_dir().join(unique("ovsrt-hosts-")) }
    }

    fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn sandbox(&self, args: &[&str]) -> Run {
        let mut a = vec!["sandbox", args[0], "--dir", self.d()];
        a.extend_from_slice(&args[1..]);
        ovs_run(&a, &[])
    }

    fn up(&self, extra: &[&str]) -> Run {
        let mut a = vec!["up"];
        a.extend_from_slice(extra);
        let r = self.sandbox(&a);
        assert_eq!(r.code, 0, "sandbox up {extra:?}: {r:?}");
        r
    }

    /// `sandbox exec --host H -- ARGS`.
    fn exec(&self, h: &str, args: &[&str]) -> Run {
        let mut a = vec!["exec", "--host", h, "--"];
        a.extend_from_slice(args);
        self.sandbox(&a)
    }

    /// Host `h`'s network namespace, from the file `up` wrote.
    fn netns(&self, h: &str) -> String {
        std::fs::read_to_string(self.dir.join(h).join("netns")).expect("host netns file").trim().to_string()
    }

    /// A command in host `h`'s namespace through nsenter: not ovs-run's exec.
    fn nsenter(&self, h: &str, args: &[&str]) -> (bool, String) {
        let f = format!("--net=/run/netns/{}", self.netns(h));
        let mut a = vec![f.as_str()];
        a.extend_from_slice(args);
        try_sh("nsenter", &a)
    }

    /// ovs-vsctl on host `h`'s database socket.
    fn vsctl(&self, h: &str, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/{h}/db.sock", self.d());
        let mut a = vec![db.as_str(), "--timeout=10"];
        a.extend_from_slice(args);
        sh("ovs-vsctl", &a)
    }

    /// The namespaces this sandbox's `up` would make, by the documented rule
    /// (`ovsrun-` and the first 8 hex digits of the SHA-256 of the host's
    /// directory; the underlay's of DIR, with `-ul`), computed with sha256sum.
    fn expected_netns(&self, hosts: &[&str]) -> Vec<String> {
        let hash = |p: &str| {
            let out = sh("sh", &["-c", &format!("printf %s '{p}' | sha256sum")]);
            format!("ovsrun-{}", &out[..8])
        };
        let mut names: Vec<String> = hosts.iter().map(|h| hash(&format!("{}/{h}", self.d()))).collect();
        names.push(format!("{}-ul", hash(self.d())));
        names
    }

    /// None of `names` is a namespace (ip netns list, /run/netns).
    fn assert_no_netns(&self, names: &[String], what: &str) {
        let listed = sh("ip", &["netns", "list"]);
        for n in names {
            assert!(!listed.contains(n.as_str()), "{what}: netns {n} is left: {listed}");
            assert!(!Path::new("/run/netns").join(n).exists(), "{what}: /run/netns/{n} is left");
        }
    }

    /// Everything `down` must remove: the namespaces' names and the daemons' pids.
    fn footprint(&self) -> (Vec<String>, Vec<i32>) {
        let mut netns = vec![];
        let mut pids = vec![];
        for entry in walk(&self.dir) {
            let name = entry.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            if name == "netns" || name == "underlay-netns" {
                netns.push(text.trim().to_string());
            } else if name.ends_with(".pid") {
                pids.extend(text.trim().parse::<i32>().ok());
            }
        }
        (netns, pids)
    }

    /// `down`, then nothing of the sandbox is left: no directory, no
    /// namespace (`ip netns list`, /run/netns), no daemon.
    fn down_leaves_nothing(&self) {
        let (netns, pids) = self.footprint();
        assert!(!netns.is_empty() && !pids.is_empty(), "nothing recorded in {}", self.d());
        let r = self.sandbox(&["down"]);
        assert_eq!(r.code, 0, "sandbox down: {r:?}");
        assert!(!self.dir.exists(), "{} is left", self.d());
        self.assert_no_netns(&netns, "after down");
        for p in &pids {
            // SAFETY: signal 0 only asks whether the process exists.
            assert!(unsafe { libc::kill(*p, 0) } != 0, "pid {p} still runs after down");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = self.sandbox(&["down"]);
        }
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Ping `ip` from namespace file `ns`, retried for a few seconds (a new
/// tunnel's first packets may go while its peer is being resolved).
fn pings(ns: &str, ip: &str) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if try_sh("nsenter", &[&format!("--net={ns}"), "ping", "-c", "1", "-W", "1", ip]).0 {
            return true;
        }
    }
    false
}

/// The checks that read a running three-host sandbox with OVN, in one
/// sandbox: starting one costs ~1 s of the suite, its daemons are what
/// every check reads, and no check changes what another one looks at
/// (the mesh is on br-mesh, OVN on br-int, the containers separate).
#[test]
fn three_hosts_with_ovn_carry_a_mesh_and_an_ovn_switch_then_down_leaves_nothing() {
    let sb = Sandbox::new();
    let r = sb.up(&["--hosts", "3", "--ovn"]);
    for h in HOSTS {
        assert!(r.stdout.contains(&format!("host {h}  underlay {}/24", underlay_ip(h))), "summary: {r:?}");
    }

    hosts_have_their_underlay(&sb);
    env_is_usable(&sb);
    vxlan_mesh_carries_tcp(&sb);
    ovn_switch_carries_tcp(&sb);

    sb.down_leaves_nothing();
}

/// Each host: br-phy (netdev) holds eth0 (ovs-vsctl), its internal port
/// holds the underlay address and eth0 has ARP off (ip via nsenter), and
/// every host pings every other over the underlay.
fn hosts_have_their_underlay(sb: &Sandbox) {
    for h in HOSTS {
        let ports = sb.vsctl(h, &["list-ports", "br-phy"]);
        assert_eq!(ports.trim(), "eth0", "host {h}: br-phy's ports");
        assert_eq!(sb.vsctl(h, &["get", "bridge", "br-phy", "datapath_type"]).trim(), "netdev");
        let (ok, addr) = sb.nsenter(h, &["ip", "-o", "-4", "addr", "show", "dev", "br-phy"]);
        assert!(ok && addr.contains(&format!("inet {}/24", underlay_ip(h))), "host {h}: br-phy: {addr}");
        let (ok, eth0) = sb.nsenter(h, &["ip", "-o", "link", "show", "dev", "eth0"]);
        assert!(ok && eth0.contains("NOARP") && eth0.contains("state UP"), "host {h}: eth0: {eth0}");
        // The exec of the sandbox shows the same namespace.
        let r = sb.exec(h, &["ip", "-o", "-4", "addr", "show", "dev", "br-phy"]);
        assert!(r.code == 0 && r.stdout.contains(&underlay_ip(h)), "exec --host {h}: {r:?}");
    }
    for from in HOSTS {
        for to in HOSTS.iter().filter(|&&to| to != from) {
            let (ok, out) = sb.nsenter(from, &["ping", "-c", "1", "-W", "2", &underlay_ip(to)]);
            assert!(ok, "host {from} cannot ping host {to} over the underlay: {out}");
        }
    }
}

/// `eval "$(sandbox env --host B)"` points ovs-vsctl, ovs-run and OVN's
/// tools at host B.
fn env_is_usable(sb: &Sandbox) {
    let r = sb.sandbox(&["env", "--host", "B"]);
    assert_eq!(r.code, 0, "env --host B: {r:?}");
    let env: BTreeMap<&str, &str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(env.get("OVS_RUNDIR").copied(), Some(format!("{}/B", sb.d()).as_str()), "{r:?}");
    assert_eq!(env.get("OVS_RUN_NETNS").copied(), Some(sb.netns("B").as_str()), "{r:?}");
    let script = format!(
        "eval \"$('{}' sandbox env --dir '{}' --host B)\" && ovs-vsctl get open . external_ids:system-id \
         && ovn-nbctl ls-list && '{}' --dry-run --no-cache '{}' br-x --kind=vxlan {}",
        bin(),
        sb.d(),
        bin(),
        script("mesh").display(),
        underlay_ip("A"),
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}: {text}{}", String::from_utf8_lossy(&out.stderr));
    // ovs-vsctl prints the system-id as B or "B".
    let system_id = text.lines().next().unwrap_or_default().trim_matches('"');
    assert_eq!(system_id, "B", "ovs-vsctl under env --host B is not on host B: {text}");
    // The dry-run planned against host B's real OVS (no "empty model" warning).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("empty model"), "ovs-run under env --host B did not reach B's OVSDB: {err}");
}

/// A "container" on host `h`: a named netns whose eth0 is a port of
/// `bridge` there, plumbed with ip and ovs-vsctl (not ovs-run), MTU 1450
/// (VXLAN on a 1500 underlay) and TX checksum offload off (the userspace
/// datapath forwards frames as they are).
fn container(sb: &Sandbox, h: &str, bridge: &str, cidr: &str) -> Netns {
    let c = Netns::tagged("hc");
    let port = unique("ct");
    let (ok, out) = sb.nsenter(
        h,
        &[
            "ip", "link", "add", &port, "mtu", "1450", "type", "veth", "peer", "name", "eth0", "mtu", "1450",
            "netns", &c.name,
        ],
    );
    assert!(ok, "{out}");
    assert!(sb.nsenter(h, &["ip", "link", "set", &port, "up"]).0);
    sb.vsctl(h, &["add-port", bridge, &port]);
    c.ip(&["addr", "add", cidr, "dev", "eth0"]);
    c.ip(&["link", "set", "eth0", "up"]);
    c.ip(&["link", "set", "lo", "up"]);
    sh("nsenter", &[&format!("--net=/run/netns/{}", c.name), "ethtool", "-K", "eth0", "tx", "off"]);
    c
}

/// mesh.wasm run on every host through `sandbox exec --host`: a VXLAN full
/// mesh on br-mesh; containers on A and C exchange ICMP and 1 MiB of TCP.
fn vxlan_mesh_carries_tcp(sb: &Sandbox) {
    let mesh = script("mesh");
    for h in HOSTS {
        let peers: Vec<String> = HOSTS.iter().filter(|&&p| p != h).map(|p| underlay_ip(p)).collect();
        let mut a = vec![bin(), mesh.to_str().unwrap(), "br-mesh", "--kind=vxlan"];
        a.extend(peers.iter().map(String::as_str));
        let r = sb.exec(h, &a);
        assert!(r.code == 0 && r.stdout.contains("2 added"), "mesh on host {h}: {r:?}");
        let tunnels = sb.vsctl(h, &["--bare", "--columns=name", "find", "interface", "type=vxlan"]);
        assert_eq!(tunnels.split_whitespace().count(), 2, "host {h}'s VXLAN tunnels: {tunnels}");
    }
    let ca = container(sb, "A", "br-mesh", "10.70.0.1/24");
    let cc = container(sb, "C", "br-mesh", "10.70.0.3/24");
    assert!(pings(&ca.ns_file(), "10.70.0.3"), "container on A cannot ping the one on C over VXLAN");
    assert_tcp("VXLAN mesh, A -> C", &ca, &cc, "10.70.0.3");
}

/// OVN: 3 chassis in the southbound database (ovn-sbctl), a logical switch
/// (ovn-network.wasm) and ovn-attach.wasm of a netns on B and on C, run
/// through `sandbox exec --host`; ICMP and 1 MiB of TCP between them.
fn ovn_switch_carries_tcp(sb: &Sandbox) {
    let sbdb = format!("--db=unix:{}/central/sb.sock", sb.d());
    let chassis = sh("ovn-sbctl", &[&sbdb, "--bare", "--columns=name", "list", "chassis"]);
    let mut names: Vec<&str> = chassis.split_whitespace().collect();
    names.sort();
    assert_eq!(names, HOSTS, "chassis in the southbound database");

    let r = sb.exec("A", &[bin(), script("ovn-network").to_str().unwrap(), "switch", "blue"]);
    assert_eq!(r.code, 0, "ovn-network switch blue: {r:?}");
    let cb = Netns::tagged("ho");
    let cc = Netns::tagged("ho");
    let attach = script("ovn-attach");
    for (h, c, lsp, cidr) in [("B", &cb, "web-b", "10.80.0.2/24"), ("C", &cc, "web-c", "10.80.0.3/24")] {
        let target = format!("netns:{}", c.name);
        let ip = format!("--ipaddress={cidr}");
        let r = sb.exec(h, &[bin(), attach.to_str().unwrap(), "blue", lsp, &target, &ip]);
        assert_eq!(r.code, 0, "ovn-attach on host {h}: {r:?}");
    }
    let nbdb = format!("--db=unix:{}/central/nb.sock", sb.d());
    let ports = sh("ovn-nbctl", &[&nbdb, "lsp-list", "blue"]);
    assert!(ports.contains("web-b") && ports.contains("web-c"), "blue's ports: {ports}");
    assert!(pings(&cb.ns_file(), "10.80.0.3"), "OVN: B's port cannot ping C's");
    assert_tcp("OVN switch, B -> C", &cb, &cc, "10.80.0.3");
}

/// Bad input is refused with a message that says what is wrong, before
/// anything exists; a sandbox whose daemons were killed still goes away
/// completely; an `up` that fails half-way removes what it made.
#[test]
fn bad_input_creates_nothing_and_down_cleans_up_after_failures() {
    let sb = Sandbox::new();
    let ours = sb.expected_netns(&["A", "B"]);
    for (args, says) in [
        (vec!["up", "--hosts", "1"], "1 is not in 2..=8"),
        (vec!["up", "--hosts", "9"], "9 is not in 2..=8"),
        (vec!["up", "--ovn"], "--hosts"),
    ] {
        let r = sb.sandbox(&args);
        assert!(r.code != 0 && r.stderr.contains(says), "{args:?}: {r:?}");
        assert!(!sb.dir.exists(), "{args:?} created {}", sb.d());
    }
    sb.assert_no_netns(&ours, "a refused up");

    sb.up(&["--hosts", "2"]);
    // The rule the check above relies on is the one `up` follows.
    let (mut made, _) = sb.footprint();
    made.sort();
    let mut want = ours.clone();
    want.sort();
    assert_eq!(made, want, "the namespaces up made");
    let r = sb.exec("Z", &["true"]);
    assert!(
        r.code != 0 && r.stderr.contains("no host Z") && r.stderr.contains("A, B"),
        "exec --host Z: {r:?}"
    );
    let r = sb.sandbox(&["exec", "--", "true"]);
    assert!(r.code != 0 && r.stderr.contains("pick one with --host"), "exec without --host: {r:?}");
    let r = sb.sandbox(&["env", "--host", "C"]);
    assert!(r.code != 0 && r.stderr.contains("no host C"), "env --host C: {r:?}");

    // A host whose daemons died: down still removes everything.
    for f in ["vswitchd.pid", "ovsdb.pid"] {
        let pid = std::fs::read_to_string(sb.dir.join("B").join(f)).unwrap();
        sh("kill", &["-9", pid.trim()]);
    }
    sb.down_leaves_nothing();

    // An `up --ovn` that fails half-way (ovn-controller cannot be found,
    // after every host and OVN's central daemons started) undoes itself.
    let bin_dir = std::env::temp_dir().join(unique("ovsrt-path-"));
    std::fs::create_dir_all(&bin_dir).unwrap();
    for p in ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovn-northd"] {
        let real = sh("sh", &["-c", &format!("command -v {p}")]);
        std::os::unix::fs::symlink(real.trim(), bin_dir.join(p)).unwrap();
    }
    let dir = sb.d().to_string();
    let r = ovs_run(
        &["sandbox", "up", "--dir", &dir, "--hosts", "2", "--ovn"],
        &[("PATH", bin_dir.to_str().unwrap())],
    );
    let _ = std::fs::remove_dir_all(&bin_dir);
    assert!(r.code != 0 && r.stderr.contains("ovn-controller"), "up without ovn-controller: {r:?}");
    assert!(!sb.dir.exists(), "a failed up left {}", sb.d());
    sb.assert_no_netns(&ours, "a failed up");
    let (_, left) = try_sh("pgrep", &["-f", &dir]);
    assert!(left.trim().is_empty(), "a failed up left daemons: {left}");
}

/// A namespace made with `ip netns add` while the sandbox runs, on a machine
/// where /run/netns was not yet a mount point (as after boot): `ip` then
/// bind-mounts /run/netns over itself, and unless the sandbox made it a
/// shared mount point first, its namespaces end up hidden below that mount,
/// where `down` can neither unmount nor remove them. Run in a mount
/// namespace of its own, so that /run/netns can be "fresh" without touching
/// the machine's.
#[test]
fn down_leaves_no_namespace_after_ip_netns_add_on_a_fresh_run_netns() {
    let sb = Sandbox::new();
    let ours = sb.expected_netns(&["A", "B"]);
    let probe = unique("ovsrt-probe-");
    let script = format!(
        "set -e
         while mountpoint -q /run/netns; do umount -l /run/netns; done
         '{bin}' sandbox up --hosts 2 --dir '{dir}' >/dev/null
         ip netns add {probe}
         ip netns del {probe}
         '{bin}' sandbox down --dir '{dir}'
         grep ' /run/netns/' /proc/self/mountinfo || true",
        bin = bin(),
        dir = sb.d(),
    );
    let (ok, out) = try_sh("unshare", &["--mount", "--propagation", "private", "bash", "-c", &script]);
    assert!(ok, "{out}");
    for n in &ours {
        assert!(!out.contains(n.as_str()), "netns {n} is still mounted after down: {out}");
        assert!(!Path::new("/run/netns").join(n).exists(), "/run/netns/{n} is left");
    }
    assert!(!sb.dir.exists(), "{} is left", sb.d());
}

/// `sandbox up --docker`, then `down` while a container outlives dockerd's
/// own shutdown (its init, busybox `sleep` as PID 1, ignores SIGTERM, and
/// its stop timeout is longer than `down` waits): dockerd is killed first,
/// and its containerd, the shim, the container and the mounts under the
/// directory still go. Seen with the benchmark's 1000 containers.
#[test]
fn down_with_docker_leaves_no_container_shim_or_mount() {
    let sb = Sandbox::new();
    sb.up(&["--docker"]);
    let host = format!("unix://{}/docker.sock", sb.d());
    let name = unique("ovsrt-slow");
    sh(
        "docker",
        &[
            "-H",
            &host,
            "run",
            "-d",
            "--net=none",
            "--stop-timeout=120",
            "--name",
            &name,
            "ovsrun-busybox:latest",
            "sleep",
            "3600",
        ],
    );
    let pid = sh("docker", &["-H", &host, "inspect", "-f", "{{.State.Pid}}", &name]).trim().to_string();
    assert!(Path::new("/proc").join(&pid).exists(), "container init {pid} runs");

    let t = Instant::now();
    let r = sb.sandbox(&["down"]);
    assert_eq!(r.code, 0, "sandbox down: {r:?}");
    assert!(t.elapsed() < Duration::from_secs(60), "down took {:?}", t.elapsed());
    assert!(!sb.dir.exists(), "{} is left", sb.d());
    // An independent view: /proc and the mount table, not ovs-run.
    // Killed is enough: a zombie waits for whoever inherits it to reap it.
    let running = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    };
    let t = Instant::now();
    while running() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running(), "the container's init {pid} outlived down");
    let (_, procs) = try_sh("ps", &["-eo", "pid,args"]);
    let left: Vec<&str> = procs.lines().filter(|l| l.contains(sb.d())).collect();
    assert!(left.is_empty(), "processes naming {}: {left:#?}", sb.d());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(sb.d())).collect();
    assert!(left.is_empty(), "mounts under {}: {left:#?}", sb.d());
}
