//! OVN across simulated hosts: each host is a network namespace running its
//! own ovsdb-server, ovs-vswitchd and ovn-controller (userspace datapath,
//! underlay address on br-phy, ARP off on eth0), joined by an underlay
//! Linux bridge in a namespace of its own; host A also runs the northbound
//! and southbound databases and ovn-northd (SB on tcp over the underlay).
//! "Containers" are further namespaces. ovs-run runs "on" a host through
//! nsenter, pointed at that host's OVS and at the northbound database.
//! Everything is checked with ovn-nbctl, ovs-vsctl and real traffic (ping
//! and a 1 MiB TCP transfer), and torn down by pidfile on drop. The hosts
//! are common::hosts's lab.

mod common;

use std::time::Duration;

use common::hosts::{poll, Lab, Nic};
use common::{script, tcp_transfer, try_sh, NsFile, Run};

/// A "container": a namespace on no host's bridge until ovn-attach puts it there.
struct Cont {
    ns: String,
}

impl NsFile for Cont {
    fn ns_file(&self) -> String {
        format!("/run/netns/{}", self.ns)
    }
}

impl Cont {
    fn exec(&self, args: &[&str]) -> (bool, String) {
        let mut a = vec!["netns", "exec", self.ns.as_str()];
        a.extend_from_slice(args);
        try_sh("ip", &a)
    }

    fn ping(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "1", ip]).0
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `hosts` simulated hosts with OVN; with `controllers`, ovn-controller runs
/// on each (else br-int is made by hand, as a host that lost its controller).
fn ovn_lab(hosts: usize, controllers: bool) -> Lab {
    let mut lab = Lab::new(hosts, Nic::BrPhy);
    lab.start_ovn(controllers);
    lab
}

/// What this suite does with the lab: ovs-run and its OVN scripts on a host,
/// pointed at the lab's northbound database.
impl Lab {
    /// Every logical switch port and router, as ovn-nbctl shows them.
    fn nb_snapshot(&self) -> String {
        self.nbctl(&["show"])
    }

    fn container(&mut self, what: &str) -> Cont {
        Cont { ns: self.netns(what) }
    }

    /// ovs-run on host `h` (its namespace, its OVS) with this lab's northbound database.
    fn run_on(&self, h: usize, args: &[&str]) -> Run {
        let nb = format!("--ovn-nb={}", self.nb_uri());
        let mut a = vec![nb.as_str()];
        a.extend_from_slice(args);
        self.hosts[h].ovs_run(&a, &[])
    }

    fn network(&self, args: &[&str]) -> Run {
        let s = script("ovn-network");
        let mut a = vec![s.to_str().unwrap()];
        a.extend_from_slice(args);
        self.run_on(0, &a)
    }

    fn attach(&self, h: usize, args: &[&str]) -> Run {
        let s = script("ovn-attach");
        let mut a = vec![s.to_str().unwrap()];
        a.extend_from_slice(args);
        self.run_on(h, &a)
    }
}

/// One logical switch across two hosts: containers attached with
/// ovn-attach.wasm ping each other and move 1 MiB over TCP; ovn-nbctl and
/// each host's ovs-vsctl show what was made; "attached" means ovn-controller
/// had installed the port already when the script returned; port security
/// drops a spoofed source address.
#[test]
fn one_switch_across_two_hosts_carries_traffic_and_enforces_port_security() {
    let mut lab = ovn_lab(2, true);
    let (ca, cb) = (lab.container("cA"), lab.container("cB"));
    let r = lab.network(&["switch", "ls0", "--subnet=10.60.0.0/24", "--mtu=1442"]);
    assert_eq!(r.code, 0, "{r:?}");
    let nb = lab.nbctl(&["--bare", "--columns=other_config", "list", "logical_switch", "ls0"]);
    assert!(nb.contains("subnet=10.60.0.0/24") && nb.contains("mtu=1442"), "{nb}");

    let mut bind_ms = vec![];
    for (h, c, lsp, ip, mac) in [
        (0, &ca, "lsp-a", "10.60.0.1/24", "0a:00:00:60:00:01"),
        (1, &cb, "lsp-b", "10.60.0.2/24", "0a:00:00:60:00:02"),
    ] {
        let who = format!("netns:{}", c.ns);
        let r =
            lab.attach(h, &["ls0", lsp, &who, &format!("--ipaddress={ip}"), &format!("--macaddress={mac}")]);
        assert_eq!(r.code, 0, "{r:?}");
        bind_ms.push(ms(r.elapsed));
        // The independent views, read right after the script returned.
        let host = &lab.hosts[h];
        let bound = host.bound(lsp);
        assert!(
            bound.contains("ovn-installed=true"),
            "host {}: not installed when attach returned: {bound}",
            host.name()
        );
        let addr = ip.split('/').next().unwrap();
        let want = format!("{mac} {addr}");
        assert_eq!(lab.nbctl(&["lsp-get-addresses", lsp]).trim(), want);
        assert_eq!(lab.nbctl(&["lsp-get-port-security", lsp]).trim(), want);
        let link = c.exec(&["ip", "-o", "link", "show", "eth0"]).1;
        assert!(link.contains("mtu 1442") && link.contains(mac), "{link}");
    }
    eprintln!("ovn-attach runs (create LSP, veth, bind, wait for ovn-installed): {bind_ms:?} ms");

    assert!(poll(Duration::from_secs(10), || ca.ping("10.60.0.2")), "A cannot ping B over OVN");
    assert!(cb.ping("10.60.0.1"), "B cannot ping A over OVN");
    let took = tcp_transfer(&ca, &cb, "10.60.0.2", common::TCP_CHECK_BYTES)
        .unwrap_or_else(|e| panic!("TCP A->B over OVN: {e}"));
    eprintln!("1 MiB A->B over OVN Geneve in {} ms", ms(took));
    tcp_transfer(&cb, &ca, "10.60.0.1", common::TCP_CHECK_BYTES).unwrap_or_else(|e| panic!("TCP B->A: {e}"));

    // Port security: a source address the port does not own is dropped.
    let (ok, out) = ca.exec(&["ip", "addr", "add", "10.60.0.99/24", "dev", "eth0"]);
    assert!(ok, "{out}");
    let (spoofed, out) = ca.exec(&["ping", "-c", "2", "-W", "1", "-I", "10.60.0.99", "10.60.0.2"]);
    assert!(!spoofed, "a spoofed source passed port security: {out}");
    assert!(ca.ping("10.60.0.2"), "the port's own address stopped working");

    // Listing through the ovn capability matches ovn-nbctl.
    let r = lab.network(&["list"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("switch ls0 subnet=10.60.0.0/24 mtu=1442"), "{}", r.stdout);
    assert!(r.stdout.contains("port lsp-a") && r.stdout.contains("up=true"), "{}", r.stdout);
}

/// add-port with an iface-id waits for ovn-controller: with none running,
/// the attach fails within --ovn-bind-timeout with an error naming the port
/// and what is missing, and the run leaves nothing behind (no logical port,
/// no OVS port).
#[test]
fn bind_without_ovn_controller_times_out_and_leaves_nothing() {
    let mut lab = ovn_lab(1, false);
    let c = lab.container("c");
    assert_eq!(lab.network(&["switch", "ls0"]).code, 0);
    let before = (lab.nb_snapshot(), lab.hosts[0].vsctl(&["list-ports", "br-int"]));
    let who = format!("netns:{}", c.ns);
    let s = script("ovn-attach");
    let r = lab.run_on(
        0,
        &["--ovn-bind-timeout=1", s.to_str().unwrap(), "ls0", "lsp-x", &who, "--ipaddress=10.60.0.5/24"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    let err = r.all();
    assert!(
        err.contains("ovn-installed") && err.contains("lsp-x") && err.contains("ovn-controller"),
        "{err}"
    );
    assert!(err.contains("within 1.0 s"), "{err}");
    assert!(r.elapsed < Duration::from_secs(8), "took {:?}", r.elapsed);
    let after = (lab.nb_snapshot(), lab.hosts[0].vsctl(&["list-ports", "br-int"]));
    assert_eq!(before, after, "the failed attach left something behind");
    assert!(!c.exec(&["ip", "link", "show", "eth0"]).0, "the veth is still in the container");
}

/// Bad input changes nothing in the northbound database: an unknown switch,
/// a bad name, a bad MAC, a duplicate port; dry-run plans without changing.
#[test]
fn bad_input_leaves_nothing_in_nb() {
    let mut lab = ovn_lab(1, false);
    let c = lab.container("c");
    assert_eq!(lab.network(&["switch", "ls0"]).code, 0);
    let who = format!("netns:{}", c.ns);
    let before = lab.nb_snapshot();
    for (args, says) in [
        (vec!["nope", "lsp1", who.as_str()], "switch nope does not exist"),
        (vec!["ls0", "bad name", who.as_str()], "bad name"),
        (vec!["ls0", "lsp1", who.as_str(), "--macaddress=zz"], "zz"),
        (vec!["ls0", "lsp1", who.as_str(), "--gateway=10.0.0.1"], "--gateway needs --ipaddress"),
    ] {
        let r = lab.attach(0, &args);
        assert_ne!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.all().contains(says), "{args:?}: {}", r.all());
        assert_eq!(lab.nb_snapshot(), before, "{args:?} changed NB");
    }
    let r = lab.network(&["switch", "ls0"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.all().contains("ls0 already exists"), "{}", r.all());
    let r = lab.network(&["switch", "ls1", "--subnet=10.1.0.0/33"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(lab.nb_snapshot(), before);
    // --dry-run: the plan, from the real database, and nothing changed.
    let s = script("ovn-network");
    let r = lab.run_on(0, &["--dry-run", s.to_str().unwrap(), "switch", "ls9", "--subnet=10.9.0.0/24"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.all().contains("create OVN logical switch ls9, subnet 10.9.0.0/24"), "{}", r.all());
    let r = lab.run_on(0, &["--dry-run", s.to_str().unwrap(), "switch", "ls0"]);
    assert_ne!(r.code, 0, "the dry-run model knows ls0 exists: {r:?}");
    assert_eq!(lab.nb_snapshot(), before);
}

/// A logical router joins two switches; containers on them, on two hosts,
/// reach each other through it (ICMP and 1 MiB of TCP). Removing the router
/// port and the router works and ovn-nbctl agrees.
#[test]
fn router_joins_two_switches_across_hosts() {
    let mut lab = ovn_lab(2, true);
    let (ca, cb) = (lab.container("cA"), lab.container("cB"));
    for args in [
        vec!["switch", "ls1"],
        vec!["switch", "ls2"],
        vec!["router", "lr0"],
        vec!["join", "lr0", "ls1", "--mac=0a:00:00:61:01:01", "--network=10.61.1.1/24"],
        vec!["join", "lr0", "ls2", "--mac=0a:00:00:61:02:01", "--network=10.61.2.1/24"],
    ] {
        let r = lab.network(&args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
    }
    let lrps = lab.nbctl(&["--bare", "--columns=name,networks", "list", "logical_router_port"]);
    assert!(lrps.contains("lr0-ls1") && lrps.contains("10.61.2.1/24"), "{lrps}");
    let peer =
        lab.nbctl(&["--bare", "--columns=type,options", "list", "logical_switch_port", "stor-lr0-ls2"]);
    assert!(peer.contains("router") && peer.contains("router-port=lr0-ls2"), "{peer}");
    let a = lab.attach(
        0,
        &["ls1", "lsp-a", &format!("netns:{}", ca.ns), "--ipaddress=10.61.1.10/24", "--gateway=10.61.1.1"],
    );
    assert_eq!(a.code, 0, "{a:?}");
    let b = lab.attach(
        1,
        &["ls2", "lsp-b", &format!("netns:{}", cb.ns), "--ipaddress=10.61.2.10/24", "--gateway=10.61.2.1"],
    );
    assert_eq!(b.code, 0, "{b:?}");
    if !poll(Duration::from_secs(10), || ca.ping("10.61.2.10")) {
        let sb = format!("--db={}", lab.sb_uri());
        panic!(
            "A cannot reach B through the router\nNB:\n{}\nSB:\n{}\nA routes: {}\nA neigh: {}\nA->gw ping: {}",
            lab.nb_snapshot(),
            try_sh("ovn-sbctl", &[&sb, "show"]).1,
            ca.exec(&["ip", "route"]).1,
            ca.exec(&["ip", "neigh"]).1,
            ca.ping("10.61.1.1"),
        );
    }
    assert!(cb.ping("10.61.1.10"));
    tcp_transfer(&ca, &cb, "10.61.2.10", common::TCP_CHECK_BYTES)
        .unwrap_or_else(|e| panic!("TCP A->B routed: {e}"));

    // A router with ports is not deleted; without them it is.
    let r = lab.network(&["delete-router", "lr0"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.all().contains("still has ports"), "{}", r.all());
    for args in
        [vec!["leave", "lr0", "lr0-ls1"], vec!["leave", "lr0", "lr0-ls2"], vec!["delete-router", "lr0"]]
    {
        let r = lab.network(&args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
    }
    assert_eq!(lab.nbctl(&["lr-list"]).trim(), "");
    let ls1 = lab.nbctl(&["lsp-list", "ls1"]);
    assert!(!ls1.contains("stor-lr0-ls1") && ls1.contains("lsp-a"), "{ls1}");
}

// ------------------------------ ovn-attach-many and OVN's inner MTU (issue 18)

/// ovn-attach-many puts two containers on a switch in one run, both
/// installed by ovn-controller when it returns; with no --mtu their MTU is
/// the MTU of the link holding ovn-encap-ip (br-phy, set to 1400 here) minus
/// 58, as ovn-attach's is; ping and 1 MiB over TCP cross the hosts.
#[test]
fn ovn_attach_many_binds_a_batch_at_the_underlay_mtu_minus_58() {
    let mut lab = ovn_lab(2, true);
    let (m0, m1, m2) = (lab.container("m0"), lab.container("m1"), lab.container("m2"));
    for h in &lab.hosts {
        h.vsctl(&["set", "interface", "br-phy", "mtu_request=1400"]);
        let (_, link) = try_sh("ip", &["-n", &h.ns.name, "-o", "link", "show", "br-phy"]);
        assert!(link.contains("mtu 1400 "), "host {}: {link}", h.name());
    }
    let r = lab.network(&["switch", "ls0", "--subnet=10.60.0.0/24"]);
    assert_eq!(r.code, 0, "{r:?}");
    let s = script("ovn-attach-many");
    let members =
        [format!("lsp-m0=netns:{},10.60.0.10/24", m0.ns), format!("lsp-m1=netns:{},10.60.0.11/24", m1.ns)];
    let r = lab.run_on(0, &["-v", s.to_str().unwrap(), "ls0", &members[0], &members[1]]);
    assert_eq!(r.code, 0, "{r:?}");
    for (c, lsp) in [(&m0, "lsp-m0"), (&m1, "lsp-m1")] {
        let bound = lab.hosts[0].bound(lsp);
        assert!(bound.contains("ovn-installed=true"), "{lsp} not installed when the run returned: {bound}");
        let link = c.exec(&["ip", "-o", "link", "show", "eth0"]).1;
        assert!(link.contains("mtu 1342 "), "{lsp}: {link}");
    }
    assert!(r.stderr.contains("MTU 1342, bridge br-int's inner MTU: OVN geneve"), "{r:?}");
    let r = lab.attach(1, &["ls0", "lsp-m2", &format!("netns:{}", m2.ns), "--ipaddress=10.60.0.12/24"]);
    assert_eq!(r.code, 0, "{r:?}");
    let link = m2.exec(&["ip", "-o", "link", "show", "eth0"]).1;
    assert!(link.contains("mtu 1342 "), "ovn-attach: {link}");

    assert!(poll(Duration::from_secs(10), || m0.ping("10.60.0.12")), "m0 (host A) cannot ping m2 (host B)");
    tcp_transfer(&m0, &m2, "10.60.0.12", common::TCP_CHECK_BYTES)
        .unwrap_or_else(|e| panic!("TCP m0->m2: {e}"));
    tcp_transfer(&m2, &m1, "10.60.0.11", common::TCP_CHECK_BYTES)
        .unwrap_or_else(|e| panic!("TCP m2->m1: {e}"));
}

/// A batch whose ports ovn-controller never installs (none runs) fails
/// within --ovn-bind-timeout naming a port, and leaves nothing: no logical
/// port, no OVS port, no veth.
#[test]
fn ovn_attach_many_without_ovn_controller_times_out_and_leaves_nothing() {
    let mut lab = ovn_lab(1, false);
    let (c1, c2) = (lab.container("c1"), lab.container("c2"));
    assert_eq!(lab.network(&["switch", "ls0"]).code, 0);
    let before = (lab.nb_snapshot(), lab.hosts[0].vsctl(&["list-ports", "br-int"]));
    let s = script("ovn-attach-many");
    let m1 = format!("lsp-x1=netns:{},10.60.0.5/24", c1.ns);
    let m2 = format!("lsp-x2=netns:{},10.60.0.6/24", c2.ns);
    let r = lab.run_on(0, &["--ovn-bind-timeout=1", s.to_str().unwrap(), "ls0", &m1, &m2]);
    assert_ne!(r.code, 0, "{r:?}");
    let err = r.all();
    assert!(err.contains("ovn-installed") && err.contains("lsp-x1") && err.contains("within 1.0 s"), "{err}");
    assert!(r.elapsed < Duration::from_secs(8), "took {:?}", r.elapsed);
    let after = (lab.nb_snapshot(), lab.hosts[0].vsctl(&["list-ports", "br-int"]));
    assert_eq!(before, after, "the failed batch left something behind");
    for c in [&c1, &c2] {
        assert!(!c.exec(&["ip", "link", "show", "eth0"]).0, "a veth is still in {}", c.ns);
    }
}
