//! `docker network create -d ovs-run -o mode=ovn`: one Docker network
//! across simulated hosts. Each host is a network namespace with its own
//! ovsdb-server, ovs-vswitchd, ovn-controller (the recipe of tests/ovn.rs),
//! its own dockerd (started in the host's namespace with nsenter --net, so
//! the containers' veths live there) and its own `ovs-run docker-plugin`
//! (a unique name per host: the plugin socket directory is shared by every
//! dockerd of the machine). Host A also runs the northbound and southbound
//! databases and ovn-northd. Docker does all the attaching; the tests look
//! with docker, ovn-nbctl, ovs-vsctl, nsenter and real traffic (ping and a
//! 1 MiB TCP transfer), and everything is torn down on drop. The hosts are
//! common::hosts's lab; this suite adds the dockerds and plugins.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{self, poll, Host, Nic};
use common::{sh, tcp_transfer, try_sh, unique, NsFile};

const SOCKET_DIR: &str = "/run/docker/plugins";
const IMAGE: &str = "ovsrun-test:latest";

/// What this suite adds to a host: its dockerd, and the driver's ports and veths.
impl Host {
    fn docker_host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    /// `docker ARGS` against this host's dockerd.
    fn try_docker(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .output()
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn docker(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_docker(args);
        assert!(ok, "host {}: docker {args:?}: {out}", self.name());
        out
    }

    /// The driver's ports on br-int (`ovr..._l`).
    fn driver_ports(&self) -> Vec<String> {
        self.vsctl(&["list-ports", "br-int"])
            .lines()
            .map(str::trim)
            .filter(|p| p.starts_with("ovr"))
            .map(str::to_string)
            .collect()
    }

    /// The host's links with the driver's veth names.
    fn driver_veths(&self) -> Vec<String> {
        self.ns
            .ip(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n.starts_with("ovr"))
            .collect()
    }
}

/// A container on host `h`, by name.
struct Ctr {
    name: String,
    pid: String,
}

impl NsFile for Ctr {
    fn ns_file(&self) -> String {
        format!("/proc/{}/ns/net", self.pid)
    }
}

impl Ctr {
    fn ping(&self, ip: &str) -> bool {
        try_sh("nsenter", &["-t", &self.pid, "-n", "ping", "-c", "3", "-W", "2", "-i", "0.3", ip]).0
    }
}

/// The OVN lab of common::hosts, with a dockerd and `ovs-run docker-plugin`s
/// on its hosts.
struct Lab {
    ovn: hosts::Lab,
    dockerds: Vec<Child>,
    plugins: Vec<Plugin>,
}

impl std::ops::Deref for Lab {
    type Target = hosts::Lab;

    fn deref(&self) -> &hosts::Lab {
        &self.ovn
    }
}

/// A running `ovs-run docker-plugin` on a host.
struct Plugin {
    name: String,
    log: PathBuf,
    child: Child,
}

impl Plugin {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Lab {
    /// Two hosts with OVN (ovn-controller on each) and a dockerd each, with the test image.
    fn new() -> Lab {
        assert!(try_sh("which", &["dockerd"]).0, "dockerd is missing: run `make deps`");
        let mut ovn = hosts::Lab::new(2, Nic::BrPhy);
        ovn.start_ovn(true);
        let mut lab = Lab { ovn, dockerds: vec![], plugins: vec![] };
        for i in 0..lab.hosts.len() {
            lab.start_dockerd(i);
        }
        lab
    }

    /// dockerd in host `i`'s namespace (nsenter --net: `ip netns exec`
    /// remounts /sys and dockerd dies there), with the busybox test image.
    fn start_dockerd(&mut self, i: usize) {
        let h = &self.hosts[i];
        let d = &h.dir;
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(h.nsfile())
            .arg("--")
            .arg("dockerd")
            .args(common::dockerd_args(&h.docker_host(), d, "x"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.dockerds.push(child);
        let h = &self.hosts[i];
        let up = poll(Duration::from_secs(60), || h.try_docker(&["info"]).0);
        let log = std::fs::read_to_string(h.dir.join("dockerd.log")).unwrap_or_default();
        assert!(up, "host {}: dockerd did not start:\n{log}", h.name());
        // No registry: the image is the host's busybox, imported.
        let root = h.dir.join("img");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for a in ["sh", "ip", "ping", "sleep", "cat", "ls"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Command::new("docker")
            .args(["import", "-", IMAGE])
            .env("DOCKER_HOST", h.docker_host())
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success(), "tar of {}", root.display());
        assert!(out.status.success(), "docker import: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The names of switch `ls`'s logical ports.
    fn lsps(&self, ls: &str) -> BTreeSet<String> {
        self.nbctl(&["--bare", "--columns=name", "list", "logical_switch_port"])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .filter(|n| self.nbctl(&["lsp-get-ls", n]).contains(ls))
            .collect()
    }

    /// `ovs-run docker-plugin` on host `h` (its namespace and OVS), with
    /// `nb` as its --ovn-nb. Returns its index in `self.plugins`.
    fn start_plugin(&mut self, h: usize, nb: &str) -> usize {
        let host = &self.hosts[h];
        let name = unique("ovsrt-do");
        let log = self.dir.join(format!("{name}.log"));
        let state = self.dir.join(format!("{name}-state"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("nsenter")
            .arg(host.nsfile())
            .arg("--")
            .arg(common::bin())
            .args(["docker-plugin", "-v", "--name", &name])
            .arg(format!("--ovsdb=unix:{}/db.sock", host.dir.display()))
            .arg(format!("--ovn-nb={nb}"))
            .arg("--state-dir")
            .arg(&state)
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .env_remove("OVS_RUNDIR")
            .env_remove("OVN_NB_DB")
            .env("DOCKER_HOST", host.docker_host())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("start ovs-run docker-plugin");
        let sock = PathBuf::from(SOCKET_DIR).join(format!("{name}.sock"));
        let p = Plugin { name, log, child };
        let up = poll(Duration::from_secs(20), || std::os::unix::net::UnixStream::connect(&sock).is_ok());
        assert!(up, "plugin socket {} never appeared:\n{}", sock.display(), p.log_text());
        self.plugins.push(p);
        self.plugins.len() - 1
    }

    fn plugin_logs(&self) -> String {
        self.plugins.iter().map(|p| format!("--- plugin {}:\n{}", p.name, p.log_text())).collect()
    }

    /// `docker network create` of a mode=ovn network on host `h` through plugin `p`.
    fn try_network(&self, h: usize, p: usize, net: &str, opts: &[&str]) -> (bool, String) {
        let name = &self.plugins[p].name;
        let mut args =
            vec!["network", "create", "-d", name, "--ipam-driver", name, "--subnet", "10.90.0.0/24"];
        for o in opts {
            args.extend(["-o", o]);
        }
        args.push(net);
        self.hosts[h].try_docker(&args)
    }

    fn run(&self, h: usize, net: &str) -> Child {
        let name = format!("{}c{}", self.tag, unique(""));
        Command::new("docker")
            .args(["run", "-d", "--name", &name, "--network", net, IMAGE, "/bin/sleep", "3600"])
            .env("DOCKER_HOST", self.hosts[h].docker_host())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn ctr(&self, h: usize, id: &str) -> Ctr {
        let host = &self.hosts[h];
        let pid = host.docker(&["inspect", "-f", "{{.State.Pid}}", id]).trim().to_string();
        let name =
            host.docker(&["inspect", "-f", "{{.Name}}", id]).trim().trim_start_matches('/').to_string();
        Ctr { name, pid }
    }

    fn ip_of(&self, h: usize, c: &Ctr, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        self.hosts[h].docker(&["inspect", "-f", &f, &c.name]).trim().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.plugin_logs());
        }
        // Containers and networks first, while their plugins still answer.
        for h in &self.hosts {
            let (_, ids) = h.try_docker(&["ps", "-aq"]);
            for id in ids.split_whitespace() {
                let _ = h.try_docker(&["rm", "-f", id]);
            }
            let (_, nets) = h.try_docker(&["network", "ls", "-q", "--filter", "type=custom"]);
            for n in nets.split_whitespace() {
                let _ = h.try_docker(&["network", "rm", n]);
            }
        }
        for p in &mut self.plugins {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
            let _ = p.child.wait();
            let _ = std::fs::remove_file(PathBuf::from(SOCKET_DIR).join(format!("{}.sock", p.name)));
        }
        // dockerd stops its containerd and containers on SIGTERM (a SIGKILL would leave them).
        for (d, h) in self.dockerds.iter_mut().zip(&self.ovn.hosts) {
            if let Ok(pid) = std::fs::read_to_string(h.dir.join("docker.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    // SAFETY: kill(2) on the dockerd this lab started.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
            let start = Instant::now();
            while d.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = d.kill();
            let _ = d.wait();
            for sub in ["x", "data"] {
                let _ = Command::new("umount").args(["-R", "-l"]).arg(h.dir.join(sub)).output();
            }
            let _ = std::fs::remove_file(h.dir.join("docker.pid"));
        }
        // Then the field `ovn`: the OVS and OVN daemons, the namespaces, the directory.
    }
}

fn wait_ok(c: Child, what: &str) -> String {
    let out = c.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what}: {text}");
    text.trim().to_string()
}

/// One Docker network across two hosts: `docker network create -o
/// mode=ovn -o ovn_switch=ls-x` on each host makes one logical switch;
/// containers started at the same time on both get distinct addresses from
/// it, reach each other across the hosts (ICMP and 1 MiB of TCP both
/// ways), are logical ports ovn-nbctl shows, bound to OVS ports; docker rm
/// -f takes ports and logical ports away; network rm removes the switch.
/// Bad setups (no northbound database, options OVN has no use for) fail
/// `network create` with a clear error and leave nothing.
#[test]
fn one_docker_network_across_two_hosts() {
    let mut lab = Lab::new();
    let nb = lab.nb_uri();
    let pa = lab.start_plugin(0, &nb);
    let pb = lab.start_plugin(1, &nb);
    let ls = format!("ls-{}", lab.tag);
    let net = "tenant";
    let sw_opt = format!("ovn_switch={ls}");
    for (h, p) in [(0, pa), (1, pb)] {
        let (ok, out) = lab.try_network(h, p, net, &["mode=ovn", &sw_opt, "mtu=1400"]);
        assert!(ok, "host {h}: network create: {out}\n{}", lab.plugin_logs());
    }
    let other = lab.nbctl(&["--bare", "--columns=other_config", "list", "logical_switch", &ls]);
    assert!(other.contains("subnet=10.90.0.0/24") && other.contains("mtu=1400"), "{other}");
    assert_eq!(lab.nbctl(&["--bare", "--columns=name", "list", "logical_switch"]).trim(), ls, "one switch");

    // Two containers on each host, all started at once: the hosts race for addresses.
    let started = Instant::now();
    let runs: Vec<(usize, Child)> = [0, 1, 0, 1].into_iter().map(|h| (h, lab.run(h, net))).collect();
    let ctrs: Vec<(usize, Ctr)> = runs
        .into_iter()
        .map(|(h, c)| {
            let id = wait_ok(c, &format!("docker run on host {h}\n{}", lab.plugin_logs()));
            (h, lab.ctr(h, &id))
        })
        .collect();
    eprintln!("4 concurrent docker runs on 2 hosts: {} ms", started.elapsed().as_millis());
    let ips: Vec<String> = ctrs.iter().map(|(h, c)| lab.ip_of(*h, c, net)).collect();
    let distinct: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), 4, "an address was handed out twice across hosts: {ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.90.0.") && ip != "10.90.0.1"), "{ips:?}");

    // NB: one logical port per container, "MAC IP" and port security; each bound on its host.
    let lsps = lab.lsps(&ls);
    assert_eq!(lsps.len(), 4, "{lsps:?}");
    for ((h, c), ip) in ctrs.iter().zip(&ips) {
        let lsp = lsps
            .iter()
            .find(|n| n.ends_with(&format!("-{ip}")))
            .unwrap_or_else(|| panic!("no LSP for {ip}: {lsps:?}"));
        let addr = lab.nbctl(&["lsp-get-addresses", lsp]);
        let sec = lab.nbctl(&["lsp-get-port-security", lsp]);
        assert!(addr.trim().ends_with(&format!(" {ip}")) && addr.trim() == sec.trim(), "{addr} / {sec}");
        let mac = addr.split_whitespace().next().unwrap();
        let pid = &c.pid;
        let link = sh("nsenter", &["-t", pid, "-n", "ip", "-o", "link", "show", "eth0"]);
        assert!(link.contains(mac) && link.contains("mtu 1400"), "{link}");
        let bound = lab.hosts[*h].bound(lsp);
        assert!(bound.contains("ovn-installed=true"), "host {h}: {lsp} not installed: {bound}");
    }

    // Across hosts: ICMP and 1 MiB of TCP both ways.
    let (a, ip_a) = (&ctrs[0].1, &ips[0]);
    let (b, ip_b) = (&ctrs[1].1, &ips[1]);
    assert!(a.ping(ip_b), "A cannot ping B across hosts\n{}", lab.nbctl(&["show"]));
    assert!(b.ping(ip_a), "B cannot ping A");
    assert!(ctrs[2].1.ping(ip_b) && ctrs[3].1.ping(&ips[2]));
    let took = tcp_transfer(a, b, ip_b, common::TCP_CHECK_BYTES).unwrap_or_else(|e| panic!("TCP A->B: {e}"));
    eprintln!("1 MiB A->B across hosts in {} ms", took.as_millis());
    tcp_transfer(b, a, ip_a, common::TCP_CHECK_BYTES).unwrap_or_else(|e| panic!("TCP B->A: {e}"));

    // docker rm -f: logical ports, OVS ports and veths go.
    for (h, c) in &ctrs {
        lab.hosts[*h].docker(&["rm", "-f", &c.name]);
    }
    assert!(lab.lsps(&ls).is_empty(), "logical ports left: {:?}", lab.lsps(&ls));
    for h in &lab.hosts {
        assert!(h.driver_ports().is_empty(), "host {}: ports left: {:?}", h.name(), h.driver_ports());
        assert!(h.driver_veths().is_empty(), "host {}: veths left: {:?}", h.name(), h.driver_veths());
    }
    // Addresses are free again: a new container gets the first one.
    let c = lab.run(0, net);
    let id = wait_ok(c, "docker run after rm");
    let c = lab.ctr(0, &id);
    assert_eq!(lab.ip_of(0, &c, net), "10.90.0.2");
    lab.hosts[0].docker(&["rm", "-f", &c.name]);

    // Network rm: the switch stays while another host's network uses it... and goes with the last.
    lab.hosts[1].docker(&["network", "rm", net]);
    lab.hosts[0].docker(&["network", "rm", net]);
    assert_eq!(lab.nbctl(&["ls-list"]).trim(), "", "switch left after the last network rm");

    // Bad setups: a clear error, nothing made (no network, no switch).
    let before = lab.nbctl(&["show"]);
    for (opts, says) in [
        (vec!["mode=ovn", "vlan=10"], "vlan does not apply with mode=ovn"),
        (vec!["ovn_switch=ls-y"], "ovn_switch needs mode=ovn"),
        (vec!["mode=ovn", "bridge=br-nope"], "integration bridge br-nope does not exist"),
    ] {
        let (ok, out) = lab.try_network(0, pa, "bad", &opts);
        assert!(!ok && out.contains(says), "{opts:?}: {out}");
        assert!(!lab.hosts[0].try_docker(&["network", "inspect", "bad"]).0, "{opts:?}: network left");
    }
    let nowhere = format!("unix:{}/no-nb.sock", lab.dir.display());
    let pn = lab.start_plugin(0, &nowhere);
    let (ok, out) = lab.try_network(0, pn, "bad", &["mode=ovn"]);
    assert!(!ok && out.contains("--ovn-nb") && out.contains("OVN_NB_DB"), "{out}");
    assert!(!lab.hosts[0].try_docker(&["network", "inspect", "bad"]).0, "network left");
    assert_eq!(lab.nbctl(&["show"]), before, "a refused network changed the northbound database");
}
