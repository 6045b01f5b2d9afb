//! `ovs-run docker-plugin` against a real dockerd (tests/support/dockerd.sh)
//! and a private Open vSwitch: Docker creates the networks and attaches the
//! containers itself; the tests look at the result with docker, ovs-vsctl,
//! ip and nsenter, never through ovs-run.
//!
//! Every test starts its own plugin under a unique name (the plugin socket
//! directory is shared by every dockerd of the host) and removes its
//! containers, networks and plugin on drop, also when it fails. dockerd must
//! run in the tests' network namespace (Docker moves the veth peers the
//! plugin makes there): tests/support/dockerd.sh's private one, as `make
//! test` starts it; one test restarts it.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_tcp, image, require_root, sh, try_sh, unique, HereNs, NsFile, Ovs};

const SOCKET_DIR: &str = "/run/docker/plugins";

/// A running `ovs-run docker-plugin`, stopped (and its socket removed) on drop.
struct Plugin {
    name: String,
    state_dir: PathBuf,
    log: PathBuf,
    ovsdb: String,
    child: Option<Child>,
}

impl Plugin {
    fn start(ovs: &Ovs) -> Plugin {
        require_root();
        let name = unique("ovsrt-dp");
        let state_dir = std::env::temp_dir().join(format!("{name}-state"));
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let ovsdb = format!("unix:{}/db.sock", ovs.rundir());
        let mut p = Plugin { name, state_dir, log, ovsdb, child: None };
        p.spawn(&[]);
        p
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(SOCKET_DIR).join(format!("{}.sock", self.name))
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = Command::new(common::bin());
        cmd.args([
            "docker-plugin",
            "-v",
            "--name",
            &self.name,
            "--datapath",
            "netdev",
            "--ovsdb",
            &self.ovsdb,
        ])
        .arg("--state-dir")
        .arg(&self.state_dir)
        .arg("--cache-dir")
        .arg(common::cache_dir())
        .arg("--audit")
        .arg(self.audit())
        .env_remove("OVS_RUNDIR")
        .stdout(Stdio::null())
        .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start ovs-run docker-plugin"));
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-plugin exited ({status}):\n{}", self.log_text());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "plugin socket never appeared:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn audit(&self) -> PathBuf {
        std::env::temp_dir().join(format!("{}.audit", self.name))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait: a clean stop.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// kill -9 and wait: a crash (the socket file stays).
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn(&[]);
    }

    /// `ovs-run docker-plugin status --json`, parsed.
    fn status(&self) -> serde_json::Value {
        let out = sh(
            common::bin(),
            &[
                "docker-plugin",
                "--name",
                &self.name,
                "--state-dir",
                self.state_dir.to_str().unwrap(),
                "status",
                "--json",
            ],
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- plugin log {}:\n{}", self.log.display(), self.log_text());
        }
        self.stop();
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(self.audit());
    }
}

/// A Docker network, removed on drop (before its plugin: declare it after).
struct Net {
    name: String,
}

impl Net {
    fn create(plugin: &Plugin, subnet: &str, opts: &[&str]) -> Net {
        let name = unique("ovsrt-n");
        let (ok, out) = Net::try_create(plugin, &name, subnet, opts);
        assert!(ok, "docker network create {name} {opts:?} failed: {out}\n{}", plugin.log_text());
        Net { name }
    }

    fn try_create(plugin: &Plugin, name: &str, subnet: &str, opts: &[&str]) -> (bool, String) {
        let mut args =
            vec!["network", "create", "-d", &plugin.name, "--ipam-driver", &plugin.name, "--subnet", subnet];
        let mut flag_value = false;
        for o in opts {
            // "--gateway", "VALUE" pass as they are; everything else is an -o option.
            if o.starts_with("--") || flag_value {
                flag_value = o.starts_with("--");
                args.push(o);
            } else {
                args.extend(["-o", o]);
            }
        }
        args.push(name);
        let r = try_sh("docker", &args);
        if !r.0 {
            // A failed create must leave no network behind either.
            let _ = try_sh("docker", &["network", "rm", name]);
        }
        r
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["network", "rm", &self.name]).output();
    }
}

/// A container on a network, removed on drop.
struct Ctr {
    name: String,
}

impl Ctr {
    fn run(net: &str, extra: &[&str]) -> Ctr {
        let (c, out) = Ctr::try_run(net, extra);
        c.unwrap_or_else(|| panic!("docker run on {net} {extra:?} failed: {out}"))
    }

    fn try_run(net: &str, extra: &[&str]) -> (Option<Ctr>, String) {
        let name = unique("ovsrt-c");
        let image = image();
        let mut args = vec!["run", "-d", "--name", &name, "--network", net];
        args.extend_from_slice(extra);
        args.extend([image.as_str(), "/bin/sleep", "3600"]);
        let (ok, out) = try_sh("docker", &args);
        let c = Ctr { name };
        if ok {
            (Some(c), out)
        } else {
            (None, out)
        }
    }

    /// Create through Docker's API with `extra` merged into the body, then start.
    fn create_api(net: &str, extra: serde_json::Value) -> Ctr {
        let name = unique("ovsrt-c");
        let mut body = serde_json::json!({
            "Image": image(), "Cmd": ["/bin/sleep", "3600"], "HostConfig": { "NetworkMode": net },
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let sock = host.trim_start_matches("unix://").to_string();
        let url = format!("http://localhost/v1.41/containers/create?name={name}");
        let out = sh(
            "curl",
            &[
                "-sS",
                "--unix-socket",
                &sock,
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
                &url,
            ],
        );
        let c = Ctr { name };
        assert!(out.contains("\"Id\""), "create {}: {out}", c.name);
        sh("docker", &["start", &c.name]);
        c
    }

    fn pid(&self) -> String {
        sh("docker", &["inspect", "-f", "{{.State.Pid}}", &self.name]).trim().to_string()
    }

    fn ip(&self, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        sh("docker", &["inspect", "-f", &f, &self.name]).trim().to_string()
    }

    fn endpoint(&self, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").EndpointID}}}}");
        sh("docker", &["inspect", "-f", &f, &self.name]).trim().to_string()
    }

    /// `ip ARGS` in the container, through nsenter.
    fn ip_cmd(&self, args: &[&str]) -> String {
        let pid = self.pid();
        let mut a = vec!["-t", pid.as_str(), "-n", "ip"];
        a.extend_from_slice(args);
        sh("nsenter", &a)
    }

    fn ping(&self, addr: &str) -> bool {
        let pid = self.pid();
        try_sh("nsenter", &["-t", &pid, "-n", "ping", "-c", "3", "-W", "2", "-i", "0.3", addr]).0
    }
}

impl NsFile for Ctr {
    fn ns_file(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// The driver's ports on `bridge`: name -> docker_endpoint_id.
fn driver_ports(ovs: &Ovs, bridge: &str) -> Vec<(String, String)> {
    let (ok, out) = ovs.try_vsctl(&["list-ports", bridge]);
    if !ok {
        return vec![];
    }
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|p| {
            let (ok, id) = ovs.try_vsctl(&["get", "interface", p, "external_ids:docker_endpoint_id"]);
            ok.then(|| (p.to_string(), id.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// Host links with the driver's veth names (`ovr..._l` host ends, `ovr..._c` peers).
fn driver_veths() -> BTreeSet<String> {
    common::host_links()
        .lines()
        .filter(|l| l.starts_with("ovr") && (l.ends_with("_c") || l.ends_with("_l")))
        .map(str::to_string)
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn link_field(show: &str, key: &str) -> String {
    let words: Vec<&str> = show.split_whitespace().collect();
    words.iter().position(|w| *w == key).map(|i| words[i + 1].to_string()).unwrap_or_default()
}

#[test]
fn network_create_with_options_and_with_bad_options() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(
        &plugin,
        "10.61.0.0/24",
        &[&format!("bridge={br}"), "vlan=120", "mtu=1450", "gateway_on_bridge=true"],
    );
    // The bridge was created, on the datapath asked for, with the gateway on its port.
    assert_eq!(ovs.vsctl(&["get", "bridge", &br, "datapath_type"]).trim(), "netdev");
    let addrs = sh("ip", &["-o", "addr", "show", "dev", &br]);
    assert!(addrs.contains("10.61.0.1/24"), "gateway not on {br}: {addrs}");
    let st = plugin.status();
    assert_eq!(st["networks"].as_object().unwrap().len(), 1, "{st}");
    let text = sh(
        common::bin(),
        &[
            "docker-plugin",
            "--name",
            &plugin.name,
            "--state-dir",
            plugin.state_dir.to_str().unwrap(),
            "status",
        ],
    );
    assert!(text.contains(&format!("bridge {br}")) && text.contains("vlan 120"), "{text}");

    // Bad options: a clear error naming option and value; nothing created.
    let bad_br = unique("brbad");
    for (opt, words) in [
        ("vlan=5000", "vlan=5000"),
        ("mtu=huge", "mtu=huge"),
        ("colour=red", "colour=red"),
        ("trunks=1,x", "trunks=x"),
        ("gateway_on_bridge=maybe", "gateway_on_bridge=maybe"),
    ] {
        let name = unique("ovsrt-bad");
        let (ok, out) = Net::try_create(&plugin, &name, "10.62.0.0/24", &[&format!("bridge={bad_br}"), opt]);
        assert!(!ok, "-o {opt} accepted");
        assert!(out.contains(words), "-o {opt}: the error does not name it: {out}");
        assert!(!ovs.try_vsctl(&["br-exists", &bad_br]).0, "-o {opt} created bridge {bad_br}");
        let (exists, _) = try_sh("docker", &["network", "inspect", &name]);
        assert!(!exists, "-o {opt}: network {name} exists");
    }
    let (ok, out) =
        Net::try_create(&plugin, &unique("ovsrt-bad"), "10.62.0.0/24", &["bridge=this-is-too-long-a-name"]);
    assert!(!ok && out.contains("bridge=this-is-too-long"), "{out}");
    assert_eq!(plugin.status()["networks"].as_object().unwrap().len(), 1);

    // Removing the network takes the gateway address and the bridge it made.
    drop(net);
    assert!(!ovs.try_vsctl(&["br-exists", &br]).0, "bridge {br} left after network rm");
    assert_eq!(plugin.status()["networks"].as_object().unwrap().len(), 0);
}

#[test]
fn two_containers_ping_each_other_and_the_gateway_and_move_tcp_data() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    // The README's command: --subnet and --gateway, -o bridge, vlan, mtu, gateway_on_bridge.
    let net = Net::create(
        &plugin,
        "10.63.0.0/24",
        &[
            "--gateway",
            "10.63.0.1",
            &format!("bridge={br}"),
            "vlan=120",
            "mtu=1450",
            "gateway_on_bridge=true",
        ],
    );
    let a = Ctr::run(&net.name, &[]);
    let b = Ctr::run(&net.name, &[]);
    let (ip_a, ip_b) = (a.ip(&net.name), b.ip(&net.name));
    assert!(ip_a.starts_with("10.63.0.") && ip_b.starts_with("10.63.0.") && ip_a != ip_b, "{ip_a} {ip_b}");
    assert_ne!(ip_a, "10.63.0.1", "the gateway's address was handed to a container");

    // Inside: eth0 with the address, the MTU, the default route via the gateway.
    let link = a.ip_cmd(&["-o", "link", "show", "eth0"]);
    assert_eq!(link_field(&link, "mtu"), "1450", "{link}");
    assert!(a.ip_cmd(&["-o", "-4", "addr", "show", "eth0"]).contains(&format!("{ip_a}/24")));
    assert!(a.ip_cmd(&["route"]).contains("default via 10.63.0.1"), "{}", a.ip_cmd(&["route"]));
    // TX checksum offload off on the container's end (userspace datapath).
    let pid = a.pid();
    assert_eq!(common::tx_checksum_of(&sh("nsenter", &["-t", &pid, "-n", "ethtool", "-k", "eth0"])), "off");

    // On the bridge: one port per container, tag 120, the driver's external ids.
    let ports = driver_ports(&ovs, &br);
    assert_eq!(ports.len(), 2, "{ports:?}");
    let ep_a = a.endpoint(&net.name);
    let (port_a, _) = ports.iter().find(|(_, e)| *e == ep_a).expect("a port for a's endpoint");
    assert_eq!(ovs.vsctl(&["get", "port", port_a, "tag"]).trim(), "120");
    let ids = ovs.vsctl(&["get", "interface", port_a, "external_ids"]);
    assert!(ids.contains("docker_network_id") && ids.contains("container_iface"), "{ids}");

    assert!(a.ping(&ip_b), "a cannot ping b");
    assert!(b.ping(&ip_a), "b cannot ping a");
    assert!(a.ping("10.63.0.1"), "a cannot ping the gateway on the bridge");
    assert_tcp("a -> b", &a, &b, &ip_b);
    assert_tcp("b -> a", &b, &a, &ip_a);
    assert_tcp("a -> gateway", &a, &HereNs, "10.63.0.1");
    assert_tcp("gateway -> b", &HereNs, &b, &ip_b);
}

#[test]
fn two_vlans_on_one_network_are_isolated_and_endpoint_options_apply() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.64.0.0/24", &[&format!("bridge={br}"), "vlan=10"]);
    let a = Ctr::run(&net.name, &[]);
    let same = Ctr::run(&net.name, &[]);
    // Per-endpoint options: another VLAN and MTU for this container only.
    let other = Ctr::run(&format!("name={},driver-opt=vlan=20,driver-opt=mtu=1400", net.name), &[]);
    let link = other.ip_cmd(&["-o", "link", "show", "eth0"]);
    assert_eq!(link_field(&link, "mtu"), "1400", "{link}");
    let ep = other.endpoint(&net.name);
    let (port, _) = driver_ports(&ovs, &br).into_iter().find(|(_, e)| *e == ep).expect("other's port");
    assert_eq!(ovs.vsctl(&["get", "port", &port, "tag"]).trim(), "20");
    // Docker's own --ip and --mac-address (through the API: this docker
    // CLI refuses --mac-address with an API 1.41 daemon).
    let fixed = Ctr::create_api(
        &net.name,
        serde_json::json!({
            "MacAddress": "02:42:0a:40:00:32",
            "NetworkingConfig": { "EndpointsConfig": { net.name.clone(): {
                "IPAMConfig": { "IPv4Address": "10.64.0.50" } } } },
        }),
    );
    assert_eq!(fixed.ip(&net.name), "10.64.0.50");
    let link = fixed.ip_cmd(&["-o", "link", "show", "eth0"]);
    assert!(link.contains("02:42:0a:40:00:32"), "{link}");

    let other_ip = other.ip(&net.name);
    assert!(a.ping(&same.ip(&net.name)), "same VLAN cannot reach each other");
    assert!(a.ping("10.64.0.50"), "--ip container unreachable in its VLAN");
    assert!(!a.ping(&other_ip), "VLAN 10 reaches VLAN 20");
    assert!(!other.ping(&a.ip(&net.name)), "VLAN 20 reaches VLAN 10");

    // The address asked for is taken: a second --ip of it is refused.
    let (c, out) = Ctr::try_run(&net.name, &["--ip", "10.64.0.50"]);
    assert!(c.is_none() && out.contains("already in use"), "{out}");
}

#[test]
fn connect_disconnect_stop_and_rm_leave_no_port_and_no_veth() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let br2 = unique("brdq");
    let net = Net::create(&plugin, "10.65.0.0/24", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let net2 = Net::create(&plugin, "10.66.0.0/24", &[&format!("bridge={br2}"), "gateway_on_bridge=true"]);
    let before = driver_veths();
    let c = Ctr::run(&net.name, &[]);
    sh("docker", &["network", "connect", "--driver-opt", "mtu=1400", &net2.name, &c.name]);
    let eth1 = c.ip_cmd(&["-o", "link", "show", "eth1"]);
    assert_eq!(link_field(&eth1, "mtu"), "1400", "{eth1}");
    assert!(c.ping("10.66.0.1"), "no reach to the second network's gateway");
    assert_eq!(driver_ports(&ovs, &br2).len(), 1);
    sh("docker", &["network", "disconnect", &net2.name, &c.name]);
    assert!(driver_ports(&ovs, &br2).is_empty(), "port left after disconnect");
    assert!(!try_sh("nsenter", &["-t", &c.pid(), "-n", "ip", "link", "show", "eth1"]).0, "eth1 left");
    assert_eq!(driver_ports(&ovs, &br).len(), 1);
    // Only the host end is in the host namespace: the peer is the container's eth0.
    assert_eq!(driver_veths().len(), before.len() + 1, "{:?}", driver_veths());

    sh("docker", &["stop", "-t", "0", &c.name]);
    assert!(driver_ports(&ovs, &br).is_empty(), "port left after stop: {:?}", driver_ports(&ovs, &br));
    assert_eq!(driver_veths(), before, "veth left after stop");
    sh("docker", &["start", &c.name]);
    assert_eq!(driver_ports(&ovs, &br).len(), 1, "no port after start");
    assert!(c.ping("10.65.0.1"));
    sh("docker", &["rm", "-f", &c.name]);
    assert!(driver_ports(&ovs, &br).is_empty(), "port left after rm");
    assert_eq!(driver_veths(), before, "veth left after rm");
    assert_eq!(plugin.status()["endpoints"].as_object().unwrap().len(), 0);
    // Every change went through the gate: the audit log has them, allowed.
    let audit = std::fs::read_to_string(plugin.audit()).unwrap();
    let calls: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of =
        |action: &str| calls.iter().filter(|c| c["action"] == action && c["decision"] == "allow").count();
    assert!(of("add-port") >= 3 && of("del-port") >= 3 && of("create-bridge") >= 2, "{audit}");
}

#[test]
fn restart_keeps_the_address_also_with_the_plugin_restarted_between() {
    let ovs = Ovs::start();
    let mut plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.67.0.0/24", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let c = Ctr::run(&net.name, &[]);
    let ip = c.ip(&net.name);
    let other = Ctr::run(&net.name, &[]);
    plugin.restart();
    sh("docker", &["restart", "-t", "0", &c.name]);
    assert_eq!(c.ip(&net.name), ip, "the address changed over restart");
    assert!(c.ping("10.67.0.1") && c.ping(&other.ip(&net.name)));
    assert_eq!(driver_ports(&ovs, &br).len(), 2);
    // After a plugin restart the state on disk still knows the taken addresses.
    plugin.restart();
    let third = Ctr::run(&net.name, &[]);
    let ips: BTreeSet<String> = [&c, &other, &third].iter().map(|x| x.ip(&net.name)).collect();
    assert_eq!(ips.len(), 3, "an address was handed out twice: {ips:?}");
}

#[test]
fn twenty_concurrent_runs_get_distinct_addresses_and_ports_then_pool_exhaustion() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    // A /27: 30 host addresses, the gateway takes one.
    let net = Net::create(&plugin, "10.68.0.0/27", &[&format!("bridge={br}")]);
    let before = driver_veths();
    let names: Vec<String> = (0..20).map(|_| unique("ovsrt-c")).collect();
    let image = image();
    let started = Instant::now();
    let children: Vec<Child> = names
        .iter()
        .map(|n| {
            Command::new("docker")
                .args(["run", "-d", "--name", n, "--network", &net.name, &image, "/bin/sleep", "3600"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ctrs: Vec<Ctr> = names.iter().map(|n| Ctr { name: n.clone() }).collect();
    for (n, ch) in names.iter().zip(children) {
        let out = ch.wait_with_output().unwrap();
        assert!(out.status.success(), "docker run {n}: {}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("20 concurrent docker runs: {} ms", started.elapsed().as_millis());
    let ips: BTreeSet<String> = ctrs.iter().map(|c| c.ip(&net.name)).collect();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let ports = driver_ports(&ovs, &br);
    assert_eq!(ports.iter().map(|p| &p.0).collect::<BTreeSet<_>>().len(), 20, "{ports:?}");

    // 29 usable addresses for containers: 9 more fit, the 10th does not.
    let more: Vec<Ctr> = (0..9).map(|_| Ctr::run(&net.name, &[])).collect();
    let (c, out) = Ctr::try_run(&net.name, &[]);
    assert!(c.is_none(), "a 30th container got an address of a /27");
    assert!(out.contains("exhausted"), "the error does not say the pool is exhausted: {out}");
    drop(c);
    drop(more);
    drop(ctrs);
    wait_until("every port removed", Duration::from_secs(20), || driver_ports(&ovs, &br).is_empty());
    assert_eq!(driver_veths(), before);
}

/// Kill -9 the plugin where OVS_RUN_DOCKER_PLUGIN_TEST_PAUSE stops it, start
/// it again: the docker run that was under way ends (Docker retries the call
/// on the new plugin), what exists is consistent, and rm leaves nothing.
fn kill_during(call: &str) {
    let ovs = Ovs::start();
    let mut plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.69.0.0/24", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let before = driver_veths();
    plugin.stop();
    plugin.spawn(&[("OVS_RUN_DOCKER_PLUGIN_TEST_PAUSE", call)]);
    let name = unique("ovsrt-c");
    let image = image();
    let run = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", &net.name, &image, "/bin/sleep", "3600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c = Ctr { name };
    let pausing = format!("pausing in {call}");
    wait_until("the plugin to pause", Duration::from_secs(30), || plugin.log_text().contains(&pausing));
    if call == "CreateEndpoint" {
        assert_eq!(driver_ports(&ovs, &br).len(), 1, "the port exists while paused");
    }
    plugin.kill9();
    plugin.spawn(&[]);
    let out = run.wait_with_output().unwrap();
    eprintln!("docker run after the kill: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    // Consistent: every port on the bridge is an endpoint the plugin knows, and one container at most.
    let eps: BTreeSet<String> = plugin.status()["endpoints"].as_object().unwrap().keys().cloned().collect();
    let ports = driver_ports(&ovs, &br);
    assert!(ports.len() <= 1, "{ports:?}");
    for (p, e) in &ports {
        assert!(eps.contains(e), "port {p} of endpoint {e} that the plugin does not know ({eps:?})");
    }
    if out.status.success() {
        assert!(c.ping("10.69.0.1"), "the container that started after the crash has no network");
    }
    drop(c);
    wait_until("no port left", Duration::from_secs(20), || driver_ports(&ovs, &br).is_empty());
    assert_eq!(driver_veths(), before, "veth left");
    assert_eq!(plugin.status()["endpoints"].as_object().unwrap().len(), 0);
    // And the plugin serves normally.
    let d = Ctr::run(&net.name, &[]);
    assert!(d.ping("10.69.0.1"));
}

#[test]
fn kill_9_during_create_endpoint_then_recovery() {
    kill_during("CreateEndpoint");
}

#[test]
fn kill_9_during_join_then_recovery() {
    kill_during("Join");
}

#[test]
fn gc_leaves_driver_ports_alone() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.70.0.0/24", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let c = Ctr::run(&net.name, &[]);
    let before = driver_ports(&ovs, &br);
    let r = ovs.run(&["gc"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(driver_ports(&ovs, &br), before, "gc touched the driver's port: {r:?}");
    assert!(c.ping("10.70.0.1"));
}

#[test]
fn dockers_default_ipam_works_with_the_driver() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let name = unique("ovsrt-n");
    sh(
        "docker",
        &[
            "network",
            "create",
            "-d",
            &plugin.name,
            "--subnet",
            "10.71.0.0/24",
            "-o",
            &format!("bridge={br}"),
            "-o",
            "gateway_on_bridge=true",
            &name,
        ],
    );
    let net = Net { name };
    let c = Ctr::run(&net.name, &[]);
    assert!(c.ip(&net.name).starts_with("10.71.0."));
    assert!(c.ping("10.71.0.1"), "no reach to the gateway on the bridge");
    assert!(plugin.status()["pools"].as_object().unwrap().is_empty(), "the plugin's IPAM was used");
}

/// The private dockerd of tests/support/dockerd.sh: its directory, from DOCKER_HOST.
fn private_dockerd_dir() -> PathBuf {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let sock = PathBuf::from(host.trim_start_matches("unix://"));
    let dir = sock.parent().map(PathBuf::from).unwrap_or_default();
    assert!(
        dir.join("docker.pid").exists(),
        "this test restarts dockerd: it needs the private one of tests/support/dockerd.sh (DOCKER_HOST={host})"
    );
    dir
}

/// Stop dockerd (SIGTERM, as `systemctl restart docker`) and start it again
/// as dockerd.sh does. (After a SIGKILL, the private dockerd's containerd,
/// left running with the containers, keeps a new dockerd from starting here.)
fn restart_dockerd(dir: &std::path::Path) {
    let pid: i32 = std::fs::read_to_string(dir.join("docker.pid")).unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) on the test dockerd.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_until("dockerd to stop", Duration::from_secs(60), || gone(pid));
    let _ = std::fs::remove_file(dir.join("docker.pid"));
    start_dockerd(dir);
}

/// Whether process `pid` has ended. A dockerd that an earlier test started
/// again is this process's child: once it exits it stays a zombie (which
/// signal 0 still finds) until reaped here.
fn gone(pid: i32) -> bool {
    // SAFETY: waitpid(2) with WNOHANG on one pid (ECHILD when not our child);
    // kill(2) with signal 0 only checks the process exists.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
        libc::kill(pid, 0) != 0
    }
}

/// Start the private dockerd again, as dockerd.sh does, and wait until it answers.
fn start_dockerd(dir: &std::path::Path) {
    let host = std::env::var("DOCKER_HOST").unwrap();
    let log = std::fs::OpenOptions::new().append(true).create(true).open(dir.join("dockerd.log")).unwrap();
    // It outlives the test, as the dockerd it replaces did: docker_down stops it.
    #[allow(clippy::zombie_processes)]
    Command::new("dockerd")
        .args(common::dockerd_args(&host, dir, "exec"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dockerd");
    let t = Instant::now();
    while !try_sh("docker", &["info"]).0 {
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        assert!(t.elapsed() < Duration::from_secs(60), "dockerd did not come back; its log ends:\n{tail:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn dockerd_restarted_cleans_up_and_restarts_containers() {
    // Ovs::start holds the suite's one-at-a-time lock: no other test meets the dockerd down.
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let dir = private_dockerd_dir();
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.72.0.0/24", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let before = driver_veths();
    let always = Ctr::run(&net.name, &["--restart=always"]);
    let plain = Ctr::run(&net.name, &[]);
    let ip = always.ip(&net.name);
    assert_eq!(driver_ports(&ovs, &br).len(), 2);
    restart_dockerd(&dir);
    // Docker deletes the dead endpoints and starts --restart=always again.
    wait_until("the --restart=always container to run", Duration::from_secs(60), || {
        try_sh("docker", &["inspect", "-f", "{{.State.Running}}", &always.name]).1.trim() == "true"
    });
    wait_until("one port left", Duration::from_secs(30), || driver_ports(&ovs, &br).len() == 1);
    assert!(always.ping("10.72.0.1"), "no network after dockerd restart");
    let eps: BTreeSet<String> = plugin.status()["endpoints"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(eps.len(), 1, "{eps:?}");
    assert_eq!(driver_veths().len(), before.len() + 1, "{:?}", driver_veths());
    sh("docker", &["start", &plain.name]);
    assert!(plain.ping("10.72.0.1"));
    assert_ne!(plain.ip(&net.name), always.ip(&net.name));
    eprintln!("address before {ip}, after {}", always.ip(&net.name));
}

#[test]
fn a_compose_file_using_the_driver_goes_up_and_down() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let dir = std::env::temp_dir().join(unique("ovsrt-compose"));
    std::fs::create_dir_all(&dir).unwrap();
    let project = unique("ovsrtp");
    let compose = format!(
        "version: \"2.4\"\nservices:\n  web:\n    image: {img}\n    command: [\"/bin/sleep\", \"3600\"]\n    networks: [tenant]\n  \
         db:\n    image: {img}\n    command: [\"/bin/sleep\", \"3600\"]\n    networks: [tenant]\nnetworks:\n  tenant:\n    \
         driver: {name}\n    driver_opts:\n      bridge: {br}\n      gateway_on_bridge: \"true\"\n    ipam:\n      \
         driver: {name}\n      config:\n        - subnet: 10.73.0.0/24\n",
        img = image(),
        name = plugin.name,
    );
    std::fs::write(dir.join("docker-compose.yml"), compose).unwrap();
    let file = dir.join("docker-compose.yml").to_str().unwrap().to_string();
    let compose_cmd = |args: &[&str]| {
        let mut a: Vec<&str> = vec!["-p", &project, "-f", &file];
        a.extend_from_slice(args);
        try_sh("docker-compose", &a)
    };
    let (ok, out) = compose_cmd(&["up", "-d"]);
    let down = || compose_cmd(&["down"]);
    if !ok {
        let _ = down();
        panic!("docker-compose up: {out}");
    }
    let web = Ctr { name: format!("{project}_web_1") };
    let db = Ctr { name: format!("{project}_db_1") };
    let net = format!("{project}_tenant");
    let ping = web.ping(&db.ip(&net)) && db.ping("10.73.0.1");
    let ports = driver_ports(&ovs, &br).len();
    let (ok, out) = down();
    std::mem::forget(web);
    std::mem::forget(db);
    assert!(ok, "docker-compose down: {out}");
    assert!(ping, "the compose services cannot reach each other or the gateway");
    assert_eq!(ports, 2);
    assert!(!ovs.try_vsctl(&["br-exists", &br]).0, "bridge left after compose down");
    assert_eq!(plugin.status()["networks"].as_object().unwrap().len(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// POST `body` to the plugin's `call` as Docker does; the JSON answer.
fn post(plugin: &Plugin, call: &str, body: &str) -> serde_json::Value {
    let sock = plugin.socket();
    let out = sh(
        "curl",
        &["-sS", "--unix-socket", sock.to_str().unwrap(), "-d", body, &format!("http://plugin/{call}")],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{call}: not JSON ({e}): {out}"))
}

#[test]
fn bad_requests_get_error_answers_and_repeated_deletes_succeed() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let before = ovs.snapshot();
    let err = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let r = post(&plugin, "NetworkDriver.CreateEndpoint", "{not json");
    assert!(err(&r, "Err").contains("malformed request"), "{r}");
    let r = post(&plugin, "NetworkDriver.CreateEndpoint", r#"{"NetworkID":"n1","EndpointID":"e1"}"#);
    assert!(err(&r, "Err").contains("no network"), "{r}");
    let r = post(
        &plugin,
        "NetworkDriver.CreateNetwork",
        r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"vlan":"0"}}}"#,
    );
    assert!(err(&r, "Err").contains("vlan=0"), "{r}");
    let r = post(&plugin, "IpamDriver.RequestAddress", r#"{"PoolID":"nope"}"#);
    assert!(err(&r, "Error").contains("no pool"), "{r}");
    let r = post(&plugin, "IpamDriver.RequestPool", r#"{"Pool":"10.80.0.0/24","V6":true}"#);
    assert!(err(&r, "Error").contains("IPv4 only"), "{r}");
    let r = post(&plugin, "NetworkDriver.NoSuchCall", "{}");
    assert!(err(&r, "Err").contains("not a call"), "{r}");
    let big = std::env::temp_dir().join(unique("ovsrt-big"));
    std::fs::write(&big, format!("{{\"NetworkID\":\"{}\"}}", "x".repeat(2 << 20))).unwrap();
    let (ok, out) = try_sh(
        "curl",
        &[
            "-sS",
            "--unix-socket",
            plugin.socket().to_str().unwrap(),
            "--data-binary",
            &format!("@{}", big.display()),
            "http://plugin/NetworkDriver.DeleteNetwork",
        ],
    );
    let _ = std::fs::remove_file(&big);
    // The answer comes before the rest of the body is read (curl may then report a broken pipe).
    let _ = ok;
    assert!(out.contains("length limit exceeded"), "oversized body: {out}");
    // Deleting what is gone (or never was) succeeds: Docker repeats deletes after crashes.
    for _ in 0..2 {
        let r = post(&plugin, "NetworkDriver.DeleteEndpoint", r#"{"NetworkID":"n1","EndpointID":"e1"}"#);
        assert_eq!(r, serde_json::json!({}));
        let r = post(&plugin, "NetworkDriver.DeleteNetwork", r#"{"NetworkID":"n1"}"#);
        assert_eq!(r, serde_json::json!({}));
    }
    // Still serving, and nothing changed.
    let r = post(&plugin, "Plugin.Activate", "");
    assert_eq!(r["Implements"], serde_json::json!(["NetworkDriver", "IpamDriver"]));
    assert_eq!(ovs.snapshot(), before);
}

/// `PATH@sha256:HEX` of a file, the way a network's script is named.
fn pinned(path: &std::path::Path) -> String {
    let out = sh("sha256sum", &[path.to_str().unwrap()]);
    format!("{}@sha256:{}", path.display(), out.split_whitespace().next().unwrap())
}

#[test]
fn a_network_script_runs_at_join_and_leave_and_one_that_fails_fails_docker_run_leaving_nothing() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let hook = common::guest("net-hook");
    let script = pinned(&hook);

    // Unpinned: refused at create, before anything exists.
    let (ok, out) = Net::try_create(
        &plugin,
        &unique("ovsrt-n"),
        "10.67.0.0/24",
        &[&format!("bridge={br}"), &format!("script={}", hook.display())],
    );
    assert!(!ok && out.contains("pin the script"), "{out}");
    assert!(!ovs.try_vsctl(&["br-exists", &br]).0, "bridge {br} made by a refused network");

    // Join creates the bridge the script option names, Leave removes it.
    let mark = unique("brhk");
    let net = Net::create(
        &plugin,
        "10.67.0.0/24",
        &[&format!("bridge={br}"), &format!("script={script}"), &format!("script.mark={mark}")],
    );
    let c = Ctr::run(&net.name, &[]);
    assert!(ovs.try_vsctl(&["br-exists", &mark]).0, "the join script did not run:\n{}", plugin.log_text());
    sh("docker", &["rm", "-f", &c.name]);
    wait_until("the leave script removed its bridge", Duration::from_secs(10), || {
        !ovs.try_vsctl(&["br-exists", &mark]).0
    });

    // A join script that fails: docker run fails with its message, and
    // nothing is left: not the script's bridge, not the port, not the veth.
    let mark2 = unique("brhk");
    let net2 = Net::create(
        &plugin,
        "10.68.0.0/24",
        &[
            &format!("bridge={br}"),
            &format!("script={script}"),
            &format!("script.mark={mark2}"),
            "script.fail=no VLAN for this container",
        ],
    );
    let before = driver_veths();
    let (c2, out) = Ctr::try_run(&net2.name, &[]);
    assert!(c2.is_none(), "docker run succeeded although the join script failed");
    assert!(out.contains("refused port") && out.contains("no VLAN for this container"), "{out}");
    assert!(!ovs.try_vsctl(&["br-exists", &mark2]).0, "the failed script's bridge was not rolled back");
    wait_until("no port of the failed run", Duration::from_secs(10), || driver_ports(&ovs, &br).is_empty());
    assert_eq!(driver_veths(), before, "veth left by the failed run");
}

/// The driver's ports carry ovs-docker's container_id and container_iface
/// (and ovs-run's container_full_id, container_name) once Docker names the
/// container, shortly after Join: set through the gate (audited); `ovs-run
/// ps` lists the port with the container's name; gc still leaves it alone.
#[test]
fn ports_name_their_container_for_ovs_vsctl_and_ps() {
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let br = unique("brdp");
    let net = Net::create(&plugin, "10.74.0.0/24", &[&format!("bridge={br}")]);
    let c = Ctr::run(&net.name, &[]);
    let id = sh("docker", &["inspect", "-f", "{{.Id}}", &c.name]).trim().to_string();
    let started = Instant::now();
    let mut ids = String::new();
    wait_until("the port to name its container", Duration::from_secs(15), || {
        let find = format!("external_ids:container_id=\"{id}\"");
        ids = ovs.vsctl(&["--columns=external_ids", "find", "Interface", &find]);
        ids.contains("container_iface=eth0")
    });
    eprintln!("container named on its port {} ms after docker run returned", started.elapsed().as_millis());
    assert!(
        ids.contains(&format!("container_name={}", c.name)) && ids.contains("docker_endpoint_id"),
        "{ids}"
    );
    let r = ovs.run(&["ps"]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(&c.name));
    let line = line.unwrap_or_else(|| panic!("ovs-run ps does not name {}:\n{}", c.name, r.all()));
    assert!(line.contains(&br) && line.contains("eth0") && line.contains("docker network"), "{line}");
    let r = ovs.run(&["gc"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(driver_ports(&ovs, &br).len(), 1, "gc removed the named driver port: {r:?}");
    let audit = std::fs::read_to_string(plugin.audit()).unwrap();
    assert!(audit.lines().any(|l| l.contains("set-external-ids") && l.contains("allow")), "{audit}");
}

/// dockerd killed with -9 (a crash: no Leave, no DeleteEndpoint) and
/// started again: Docker re-activates the plugin and deletes the endpoints
/// of the containers that died with it; no port and no veth is left, and
/// their addresses are handed out again. Its containerd is killed too (a
/// managed containerd left running would keep the new dockerd from
/// starting here, see restart_dockerd), by the pid in its own pid file.
#[test]
fn dockerd_killed_9_then_restarted_cleans_dead_endpoints() {
    // Ovs::start holds the suite's one-at-a-time lock: no other test meets the dockerd down.
    let ovs = Ovs::start();
    let plugin = Plugin::start(&ovs);
    let dir = private_dockerd_dir();
    let br = unique("brdp");
    // A /29: 5 addresses for containers, so a leaked one shows at once.
    let net = Net::create(&plugin, "10.75.0.0/29", &[&format!("bridge={br}"), "gateway_on_bridge=true"]);
    let before = driver_veths();
    let ctrs: Vec<Ctr> = (0..2).map(|_| Ctr::run(&net.name, &[])).collect();
    let ips: BTreeSet<String> = ctrs.iter().map(|c| c.ip(&net.name)).collect();
    assert_eq!(driver_ports(&ovs, &br).len(), 2);
    let pid: i32 = std::fs::read_to_string(dir.join("docker.pid")).unwrap().trim().parse().unwrap();
    let ctrd = dir.join("exec/containerd/containerd.pid");
    let ctrd: Option<i32> = std::fs::read_to_string(&ctrd).ok().and_then(|p| p.trim().parse().ok());
    for p in std::iter::once(pid).chain(ctrd) {
        // SAFETY: kill(2) on the test's private dockerd and its containerd.
        unsafe { libc::kill(p, libc::SIGKILL) };
        wait_until("the kill", Duration::from_secs(10), || gone(p));
    }
    // Crashed: the plugin was told nothing, the ports are still there.
    assert_eq!(driver_ports(&ovs, &br).len(), 2);
    let _ = std::fs::remove_file(dir.join("exec/containerd/containerd.pid"));
    start_dockerd(&dir);
    wait_until("the dead containers' ports removed", Duration::from_secs(60), || {
        driver_ports(&ovs, &br).is_empty()
    });
    assert_eq!(driver_veths(), before, "veth left after the dockerd crash");
    assert_eq!(plugin.status()["endpoints"].as_object().unwrap().len(), 0);
    // The addresses are free again: 5 containers fit in the /29, the two old addresses among them.
    let again: Vec<Ctr> = (0..5).map(|_| Ctr::run(&net.name, &[])).collect();
    let now: BTreeSet<String> = again.iter().map(|c| c.ip(&net.name)).collect();
    assert!(ips.is_subset(&now), "addresses of the dead containers not handed out again: {ips:?} {now:?}");
    assert!(again[0].ping("10.75.0.1"));
    drop(ctrs);
}
