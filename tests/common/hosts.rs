//! Simulated hosts for the multi-host suites (tunnels, underlay, ovn,
//! docker_ovn). Host `i` is a network namespace running its own
//! ovsdb-server and ovs-vswitchd (userspace datapath, private run directory:
//! two userspace datapaths in one namespace break each other), joined by a
//! veth (`eth0` in the host) to the Linux bridge `ul0` of a switch namespace;
//! its underlay address is 192.168.50.i. On request: the address on br-phy
//! (an OVS internal port holding eth0, as tunnels of the userspace datapath
//! need), a "container" per host on br-int, and OVN (northbound and
//! southbound databases and ovn-northd on host 1, ovn-controller on every
//! host, tunnel neighbours seeded). Everything lives in namespaces and one
//! directory of the lab's own; dropping the lab stops every daemon by the
//! pidfiles in that directory and deletes the namespaces, also when a test
//! fails (OVS_RUN_TEST_KEEP=1 keeps the directory, with the daemons' logs).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    bin, cache_dir, journal_dir, require_root, run_timed, sh, try_sh, try_vsctl_in, unique, Netns, NsFile,
    Run,
};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// The containers' MTU: fits VXLAN and Geneve (and GRE) on a 1500-byte underlay.
pub const INNER_MTU: &str = "1450";

/// Host `i`'s underlay address.
pub fn underlay_ip(i: usize) -> String {
    format!("192.168.50.{i}")
}

/// The address of host `i`'s container (see [`Lab::add_containers`]).
pub fn overlay_ip(i: usize) -> String {
    format!("10.60.0.{i}")
}

/// Call `f` every 50 ms until it says yes (true) or `limit` has passed (false).
pub fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Where a host's underlay address is when the lab hands it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nic {
    /// On br-phy, a netdev bridge whose port is eth0, with ARP off on eth0
    /// (or the kernel answers for br-phy's address with eth0's MAC too): the
    /// userspace datapath routes tunnels only from an OVS internal port.
    BrPhy,
    /// Nowhere yet: eth0 is up and bare, the suite sets the host up itself.
    Bare,
}

/// One simulated host.
pub struct Host {
    /// 1, 2, ...: its underlay address is [`underlay_ip`]`(i)`.
    pub i: usize,
    pub ns: Netns,
    /// Its run directory (OVS_RUNDIR): database, sockets, pidfiles, logs.
    pub dir: PathBuf,
    container: Option<Netns>,
}

impl Host {
    /// A, B, C...: how messages and OVN chassis name it.
    pub fn name(&self) -> char {
        (b'A' + (self.i - 1) as u8) as char
    }

    pub fn ip(&self) -> String {
        underlay_ip(self.i)
    }

    /// nsenter's option that enters this host's namespace.
    pub fn nsfile(&self) -> String {
        format!("--net=/run/netns/{}", self.ns.name)
    }

    /// ovs-vsctl against this host's OVS: the independent view.
    pub fn try_vsctl(&self, args: &[&str]) -> (bool, String) {
        try_vsctl_in(&self.dir, 15, args)
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        let (ok, out) = self.try_vsctl(args);
        assert!(ok, "host {}: ovs-vsctl {args:?}: {out}", self.name());
        out
    }

    /// ovs-vswitchd's control socket: the default name in its run directory,
    /// where ovs-run looks for it too.
    pub fn vswitchd_ctl(&self) -> String {
        let pid = std::fs::read_to_string(self.dir.join("ovs-vswitchd.pid")).expect("vswitchd pid");
        self.dir.join(format!("ovs-vswitchd.{}.ctl", pid.trim())).display().to_string()
    }

    /// ovs-appctl against this host's ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> String {
        let ctl = self.vswitchd_ctl();
        let mut a = vec!["-t", ctl.as_str()];
        a.extend_from_slice(args);
        sh("ovs-appctl", &a)
    }

    /// A command inside the host's namespace.
    pub fn exec(&self, prog: &str, args: &[&str]) -> (bool, String) {
        let f = self.nsfile();
        let mut a = vec![f.as_str(), "--", prog];
        a.extend_from_slice(args);
        try_sh("nsenter", &a)
    }

    /// ovs-run "on" this host: in its namespace, against its OVS, with the
    /// test process's cache and journal; `env` on top.
    pub fn ovs_run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("nsenter");
        cmd.arg(self.nsfile()).arg("--").arg(bin()).arg("--cache-dir").arg(cache_dir()).args(args);
        cmd.env("OVS_RUNDIR", &self.dir).env("OVS_RUN_JOURNAL_DIR", journal_dir());
        // Only what the host has: no control socket or NB database from the caller's shell.
        cmd.env_remove("OVS_RUN_VSWITCHD_CTL").env_remove("OVN_NB_DB");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_timed(&mut cmd)
    }

    /// The MAC of `link` in the host.
    pub fn mac(&self, link: &str) -> String {
        let out = self.ns.ip(&["-br", "link", "show", link]);
        out.split_whitespace().nth(2).unwrap_or_default().to_string()
    }

    /// The host's container (a namespace whose veth is a port of br-int).
    pub fn container(&self) -> &Netns {
        self.container.as_ref().expect("no container: Lab::add_containers makes them")
    }

    /// ICMP from this host's container to `to`'s, once.
    pub fn container_ping(&self, to: &Host) -> bool {
        let f = format!("--net=/run/netns/{}", self.container().name);
        try_sh("nsenter", &[&f, "ping", "-c", "1", "-W", "1", &overlay_ip(to.i)]).0
    }

    /// How long until this container's ping to `to`'s gets an answer (at most `limit`).
    pub fn first_ping(&self, to: &Host, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.container_ping(to) {
                return Some(t.elapsed());
            }
        }
        None
    }

    /// The Interface bound to OVN logical port `lsp` here, with its external_ids.
    pub fn bound(&self, lsp: &str) -> String {
        self.vsctl(&[
            "--bare",
            "--columns=name,external_ids",
            "find",
            "interface",
            &format!("external_ids:iface-id={lsp}"),
        ])
    }

    /// `args` (a daemon that detaches) in this host's namespace, with `env`.
    fn daemon(&self, env: &[(&str, &str)], args: &[&str]) {
        let mut cmd = Command::new("nsenter");
        cmd.arg(self.nsfile()).arg("--").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(
            out.status.success(),
            "host {}: {args:?}: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl NsFile for Host {
    fn ns_file(&self) -> String {
        format!("/run/netns/{}", self.ns.name)
    }
}

/// N simulated hosts on one underlay; see the module doc.
pub struct Lab {
    /// A short unique name the lab's directory and OVN chassis carry.
    pub tag: String,
    /// Everything on disk: a directory per host, `central` for OVN's.
    pub dir: PathBuf,
    pub hosts: Vec<Host>,
    /// The underlay switch: bridge `ul0` in a namespace of its own.
    pub switch: Netns,
    /// Further namespaces the suite asked for ([`Lab::netns`]).
    extra: Vec<Netns>,
}

impl Lab {
    /// `n` hosts running OVS, their underlay address as `nic` says.
    pub fn new(n: usize, nic: Nic) -> Lab {
        require_root();
        for t in ["ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl"] {
            assert!(try_sh("which", &[t]).0, "{t} is missing: run `make deps` (openvswitch-switch)");
        }
        let tag = unique("lab");
        let dir = std::env::temp_dir().join(format!("ovs-run-t-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        // Made before any daemon starts: a failed setup is torn down by Drop.
        let mut lab = Lab { tag, dir, hosts: vec![], switch: Netns::tagged("sw"), extra: vec![] };
        lab.switch.ip(&["link", "set", "lo", "up"]);
        lab.switch.ip(&["link", "add", "ul0", "type", "bridge"]);
        lab.switch.ip(&["link", "set", "ul0", "up"]);
        for i in 1..=n {
            let dir = lab.dir.join(format!("h{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            lab.hosts.push(Host { i, ns: Netns::tagged(&format!("h{i}")), dir, container: None });
            lab.start_host(i - 1, nic);
        }
        lab
    }

    fn start_host(&self, idx: usize, nic: Nic) {
        let h = &self.hosts[idx];
        let d = h.dir.to_str().unwrap();
        let u = format!("u{}", h.i);
        self.switch.ip(&["link", "add", &u, "type", "veth", "peer", "name", "eth0", "netns", &h.ns.name]);
        self.switch.ip(&["link", "set", &u, "master", "ul0", "up"]);
        h.ns.ip(&["link", "set", "lo", "up"]);
        h.ns.ip(&["link", "set", "eth0", "up"]);
        sh("ovsdb-tool", &["create", &format!("{d}/conf.db"), SCHEMA]);
        let env = [("OVS_RUNDIR", d)];
        h.daemon(
            &env,
            &[
                "ovsdb-server",
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                &format!("--pidfile={d}/ovsdb.pid"),
                &format!("--unixctl={d}/ovsdb.ctl"),
                &format!("--log-file={d}/ovsdb.log"),
                "--detach",
            ],
        );
        h.vsctl(&["--no-wait", "init"]);
        // Default pidfile and control socket in OVS_RUNDIR: where ovs-run looks for them.
        h.daemon(
            &env,
            &[
                "ovs-vswitchd",
                &format!("unix:{d}/db.sock"),
                "--pidfile",
                &format!("--log-file={d}/vswitchd.log"),
                "--detach",
            ],
        );
        if nic == Nic::BrPhy {
            h.vsctl(&[
                "add-br",
                "br-phy",
                "--",
                "set",
                "bridge",
                "br-phy",
                "datapath_type=netdev",
                "--",
                "add-port",
                "br-phy",
                "eth0",
            ]);
            h.ns.ip(&["addr", "add", &format!("{}/24", h.ip()), "dev", "br-phy"]);
            h.ns.ip(&["link", "set", "br-phy", "up"]);
            h.ns.ip(&["link", "set", "eth0", "arp", "off"]);
        }
    }

    /// On every host a netdev br-int and a "container": a namespace whose
    /// eth0 ([`overlay_ip`]`(i)`/24, MTU [`INNER_MTU`], TX checksum offload
    /// off: the userspace datapath forwards frames as they are) has its
    /// peer `vcI` on br-int.
    pub fn add_containers(&mut self) {
        for h in &mut self.hosts {
            h.vsctl(&["add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev"]);
            let c = Netns::tagged(&format!("c{}", h.i));
            let v = format!("vc{}", h.i);
            h.ns.ip(&["link", "add", &v, "type", "veth", "peer", "name", "eth0", "netns", &c.name]);
            h.ns.ip(&["link", "set", &v, "up"]);
            h.vsctl(&["add-port", "br-int", &v]);
            c.ip(&["addr", "add", &format!("{}/24", overlay_ip(h.i)), "dev", "eth0"]);
            c.ip(&["link", "set", "eth0", "mtu", INNER_MTU, "up"]);
            c.ip(&["link", "set", "lo", "up"]);
            let cf = format!("--net=/run/netns/{}", c.name);
            sh("nsenter", &[&cf, "ethtool", "-K", "eth0", "tx", "off"]);
            h.container = Some(c);
        }
    }

    /// Every host pings every other over the underlay (and so each kernel
    /// knows the others' MACs).
    pub fn assert_underlay(&self) {
        for a in &self.hosts {
            for b in self.hosts.iter().filter(|b| b.i != a.i) {
                let (ok, out) = a.exec("ping", &["-c", "1", "-W", "2", &b.ip()]);
                assert!(ok, "underlay ping {} -> {}: {out}", a.i, b.i);
            }
        }
    }

    /// A further namespace (lo up), deleted with the lab; its name.
    pub fn netns(&mut self, what: &str) -> String {
        let ns = Netns::tagged(what);
        ns.ip(&["link", "set", "lo", "up"]);
        let name = ns.name.clone();
        self.extra.push(ns);
        name
    }

    // ------------------------------------------------------------ OVN

    /// OVN's databases and ovn-northd: under `central`, run on host 1.
    pub fn central(&self) -> PathBuf {
        self.dir.join("central")
    }

    pub fn nb_uri(&self) -> String {
        format!("unix:{}/nb.sock", self.central().display())
    }

    pub fn sb_uri(&self) -> String {
        format!("unix:{}/sb.sock", self.central().display())
    }

    /// ovn-nbctl: the independent view of the northbound database.
    pub fn nbctl(&self, args: &[&str]) -> String {
        let db = format!("--db={}", self.nb_uri());
        let mut a = vec![db.as_str(), "--timeout=10"];
        a.extend_from_slice(args);
        sh("ovn-nbctl", &a)
    }

    /// OVN on a lab of [`Nic::BrPhy`] hosts: the central on host 1 (SB also
    /// on tcp over the underlay), every host a chassis with Geneve on its
    /// underlay address. With `controllers`, ovn-controller runs on each
    /// host, has made br-int and a tunnel to every other chassis, and the
    /// tunnel neighbours are seeded; without, br-int is made by hand (a host
    /// that lost its controller).
    pub fn start_ovn(&mut self, controllers: bool) {
        for t in ["ovn-northd", "ovn-controller", "ovn-nbctl", "ovn-sbctl"] {
            assert!(try_sh("which", &[t]).0, "{t} is missing: run `make deps` (ovn-central, ovn-host)");
        }
        self.start_central();
        let remote = format!("external_ids:ovn-remote=tcp:{}:6642", self.hosts[0].ip());
        for h in &self.hosts {
            let d = h.dir.to_str().unwrap();
            h.vsctl(&[
                "set",
                "open_vswitch",
                ".",
                &format!("external_ids:system-id=chassis-{}-{}", self.tag, h.name()),
                &remote,
                "external_ids:ovn-encap-type=geneve",
                &format!("external_ids:ovn-encap-ip={}", h.ip()),
                // Or ovn-controller makes a `system` br-int, which cannot exist here.
                "external_ids:ovn-bridge-datapath-type=netdev",
            ]);
            if controllers {
                h.daemon(
                    &[("OVS_RUNDIR", d), ("OVN_RUNDIR", d)],
                    &[
                        "ovn-controller",
                        &format!("unix:{d}/db.sock"),
                        &format!("--pidfile={d}/ovn-controller.pid"),
                        &format!("--log-file={d}/ovn-controller.log"),
                        "--detach",
                    ],
                );
            } else {
                h.vsctl(&["add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev"]);
            }
        }
        if !controllers {
            return;
        }
        let want = self.hosts.len() - 1;
        for h in &self.hosts {
            let ok = poll(Duration::from_secs(20), || {
                h.try_vsctl(&["get", "bridge", "br-int", "datapath_type"]).1.trim() == "netdev"
            });
            assert!(ok, "host {}: ovn-controller made no netdev br-int", h.name());
            let ok = poll(Duration::from_secs(20), || {
                let (_, out) = h.try_vsctl(&["--bare", "--columns=name", "find", "interface", "type=geneve"]);
                out.lines().filter(|l| !l.trim().is_empty()).count() >= want
            });
            assert!(ok, "host {}: no geneve tunnel to every other chassis", h.name());
        }
        self.seed_tunnel_neighbours();
    }

    /// NB + SB ovsdb-servers and ovn-northd in host 1's namespace.
    fn start_central(&self) {
        let c = self.central();
        std::fs::create_dir_all(&c).unwrap();
        let cs = c.to_str().unwrap();
        let a = &self.hosts[0];
        sh("ovsdb-tool", &["create", &format!("{cs}/nb.db"), "/usr/share/ovn/ovn-nb.ovsschema"]);
        sh("ovsdb-tool", &["create", &format!("{cs}/sb.db"), "/usr/share/ovn/ovn-sb.ovsschema"]);
        for (db, extra) in [("nb", None), ("sb", Some(format!("--remote=ptcp:6642:{}", a.ip())))] {
            let mut args = vec![
                "ovsdb-server".to_string(),
                format!("{cs}/{db}.db"),
                format!("--remote=punix:{cs}/{db}.sock"),
                format!("--unixctl={cs}/{db}.ctl"),
                format!("--pidfile={cs}/{db}.pid"),
                format!("--log-file={cs}/{db}.log"),
                "--detach".into(),
            ];
            args.extend(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            a.daemon(&[("OVS_RUNDIR", cs)], &args);
        }
        a.daemon(
            &[("OVS_RUNDIR", cs), ("OVN_RUNDIR", cs)],
            &[
                "ovn-northd",
                &format!("--ovnnb-db=unix:{cs}/nb.sock"),
                &format!("--ovnsb-db=unix:{cs}/sb.sock"),
                &format!("--unixctl={cs}/northd.ctl"),
                &format!("--pidfile={cs}/northd.pid"),
                &format!("--log-file={cs}/northd.log"),
                "--detach",
            ],
        );
        self.nbctl(&["init"]);
        sh("ovn-sbctl", &[&format!("--db={}", self.sb_uri()), "init"]);
    }

    /// Seed each host's tunnel neighbour cache (tnl/arp/set) with the
    /// others' br-phy MACs: without it the first packet to a VTEP not yet
    /// resolved is dropped, and the first ping takes about a second.
    fn seed_tunnel_neighbours(&self) {
        for h in &self.hosts {
            for p in self.hosts.iter().filter(|p| p.i != h.i) {
                let _ = h.exec("ping", &["-c", "1", "-W", "1", &p.ip()]);
                let neigh = h.ns.ip(&["neigh", "show", &p.ip(), "dev", "br-phy"]);
                if let Some(mac) = neigh.split_whitespace().nth(2) {
                    let ctl = h.vswitchd_ctl();
                    let _ = try_sh("ovs-appctl", &["-t", &ctl, "tnl/arp/set", "br-phy", &p.ip(), mac]);
                }
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Our daemons only: by the pidfiles in our own directory (hosts and central).
        let mut pids = vec![];
        for sub in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(sub.path()).into_iter().flatten().flatten() {
                if f.path().extension().is_some_and(|e| e == "pid") {
                    let pid = std::fs::read_to_string(f.path()).unwrap_or_default();
                    if let Ok(p) = pid.trim().parse::<i32>() {
                        // SAFETY: kill(2) on a daemon this lab started.
                        unsafe { libc::kill(p, libc::SIGTERM) };
                        pids.push(p);
                    }
                }
            }
        }
        let start = Instant::now();
        // SAFETY: signal 0 only checks the process exists.
        while pids.iter().any(|p| unsafe { libc::kill(*p, 0) } == 0)
            && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in &pids {
            // SAFETY: as above; a daemon that ignored SIGTERM.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        if std::env::var_os("OVS_RUN_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        // Then the fields: the hosts' and extra namespaces, the switch (Netns drops).
    }
}
