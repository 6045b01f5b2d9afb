//! underlay.wasm on simulated hosts that start as real hosts do: the
//! underlay address on the NIC (eth0) with a default route (via a gateway
//! on the underlay switch) and a static route. Each host is a network
//! namespace with its own ovsdb-server and ovs-vswitchd (private run
//! directory), joined by an underlay Linux bridge in a namespace of its own.
//! ovs-run runs "on" a host through nsenter. Everything is checked with ip,
//! ovs-vsctl, ping and kernel TCP sockets, not with ovs-run. The hosts are
//! common::hosts's lab, with the NIC left bare for this suite to set up.

mod common;

use std::time::Duration;

use common::hosts::{overlay_ip, underlay_ip, Host, Lab, Nic};
use common::*;

/// The underlay's gateway: the switch namespace's own address.
const GATEWAY: &str = "192.168.50.254";
/// A route besides the default one, which must move with the address.
const STATIC_NET: &str = "10.99.0.0/16";
/// An address on the underlay that nobody has: a check that fails.
const NOBODY: &str = "192.168.50.77";

/// What this suite does on a host: underlay.wasm, and what it may change.
impl Host {
    /// `ovs-run [run_opts] underlay.wasm ARGS` on this host.
    fn underlay(&self, run_opts: &[&str], args: &[&str]) -> Run {
        let s = script("underlay");
        let mut a: Vec<&str> = run_opts.to_vec();
        a.push(s.to_str().unwrap());
        a.extend_from_slice(args);
        self.ovs_run(&a, &[])
    }

    /// What underlay.wasm may change, as ip and ovs-vsctl show it.
    fn state(&self) -> String {
        format!(
            "addresses:\n{}routes:\n{}eth0: {}bridges: {}",
            self.ns.ip(&["-br", "addr", "show"]),
            self.ns.ip(&["route", "show"]),
            link_flags(&self.ns.ip(&["link", "show", "eth0"])),
            self.vsctl(&["list-br"]).replace('\n', " "),
        )
    }
}

/// The flags of `ip link show`'s first line: `<BROADCAST,MULTICAST,UP,LOWER_UP>`.
fn link_flags(ip_link: &str) -> String {
    let s = ip_link.split('<').nth(1).and_then(|s| s.split('>').next()).unwrap_or_default();
    format!("<{s}>\n")
}

/// `n` hosts that start as real hosts do: the underlay address on eth0, a
/// default route via the gateway (the switch's address) and a static route;
/// a container on br-int each.
fn lab(n: usize) -> Lab {
    let mut lab = Lab::new(n, Nic::Bare);
    lab.switch.ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "ul0"]);
    for h in &lab.hosts {
        h.ns.ip(&["addr", "add", &format!("{}/24", h.ip()), "dev", "eth0"]);
        h.ns.ip(&["route", "add", "default", "via", GATEWAY, "dev", "eth0"]);
        h.ns.ip(&["route", "add", STATIC_NET, "via", GATEWAY, "dev", "eth0"]);
    }
    lab.add_containers();
    lab
}

/// The gateway (outside every host) reaches host `h`'s underlay address.
fn reaches(lab: &Lab, h: &Host) -> bool {
    let f = format!("--net=/run/netns/{}", lab.switch.name);
    try_sh("nsenter", &[&f, "ping", "-c", "2", "-i", "0.2", "-W", "1", &h.ip()]).0
}

/// What one host looks like after underlay.wasm, seen with ip and ovs-vsctl.
fn assert_moved(h: &Host) {
    let ip = underlay_ip(h.i);
    let br = h.ns.ip(&["-br", "addr", "show", "br-phy"]);
    assert!(br.contains(&format!("{ip}/24")), "the address is on br-phy: {br}");
    let eth0 = h.ns.ip(&["addr", "show", "eth0"]);
    assert!(!eth0.contains("inet "), "eth0 keeps no IPv4 address: {eth0}");
    assert!(eth0.contains("NOARP"), "ARP is off on eth0: {eth0}");
    let routes = h.ns.ip(&["route", "show"]);
    assert!(routes.contains(&format!("default via {GATEWAY} dev br-phy")), "{routes}");
    assert!(routes.contains(&format!("{STATIC_NET} via {GATEWAY} dev br-phy")), "{routes}");
    assert!(!routes.contains("dev eth0"), "no route is left on eth0: {routes}");
    assert!(
        h.vsctl(&["list-ports", "br-phy"]).lines().any(|l| l.trim() == "eth0"),
        "eth0 is a port of br-phy"
    );
    assert_eq!(h.vsctl(&["get", "bridge", "br-phy", "datapath_type"]).trim(), "netdev");
    assert_eq!(h.mac("br-phy"), h.mac("eth0"), "br-phy has the NIC's MAC");
}

/// The changes of a `--json` run.
fn changes(r: &Run) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"));
    v["changes"].clone()
}

/// underlay.wasm on both hosts (each checking the other and the gateway),
/// verified one by one; a VXLAN tunnel (mesh.wasm) between them carries
/// ping and 1 MiB of TCP; the hosts stay reachable; a re-run changes nothing.
#[test]
fn moves_the_address_and_routes_and_a_vxlan_tunnel_carries_ping_and_tcp() {
    let lab = lab(2);
    let [a, b] = [&lab.hosts[0], &lab.hosts[1]];
    for (h, peer) in [(a, b), (b, a)] {
        let check = format!("--check={},{GATEWAY}", underlay_ip(peer.i));
        let r = h.underlay(&[], &["eth0", &check]);
        assert_eq!(r.code, 0, "host {}: {r:?}", h.i);
        assert!(r.stdout.contains("moved 192.168.50."), "{r:?}");
        assert_moved(h);
        assert!(reaches(&lab, h), "the gateway reaches host {} after the move", h.i);
    }
    for (h, peer) in [(a, b), (b, a)] {
        let s = script("mesh");
        let r = h.ovs_run(&[s.to_str().unwrap(), "br-int", "--kind=vxlan", &underlay_ip(peer.i)], &[]);
        assert_eq!(r.code, 0, "mesh on host {}: {r:?}", h.i);
    }
    for (x, y) in [(a, b), (b, a)] {
        let t = x.first_ping(y, Duration::from_secs(5));
        assert!(t.is_some(), "container {} cannot ping container {}", x.i, y.i);
        assert_tcp(&format!("container {} -> {}", x.i, y.i), x.container(), y.container(), &overlay_ip(y.i));
    }
    // Idempotent: nothing to do, nothing changed, the checks still run.
    let r = a.underlay(&["--json"], &["eth0", &format!("--check={}", underlay_ip(b.i))]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(changes(&r), serde_json::json!([]), "a re-run changes nothing: {r:?}");
    assert!(r.stderr.contains("nothing to do") || r.stdout.contains("nothing to do"), "{r:?}");
    assert_moved(a);
}

/// A --check peer that does not answer fails the run, and the journal puts
/// everything back: the address and routes on eth0, ARP on, br-phy gone.
/// The host stays reachable from outside, and reaches its peer.
#[test]
fn a_failed_check_rolls_everything_back_and_the_host_stays_reachable() {
    let lab = lab(2);
    let [a, b] = [&lab.hosts[0], &lab.hosts[1]];
    let before = a.state();
    let check = format!("--check={},{NOBODY}", underlay_ip(b.i));
    let r = a.underlay(&[], &["eth0", &check]);
    assert_ne!(r.code, 0, "{r:?}");
    // Only the peer that is not there is named: host 2 answered.
    assert!(r.stderr.contains(&format!("peer {NOBODY} did not answer")), "{r:?}");
    assert!(r.stdout.contains(&format!("peer {} answers", underlay_ip(b.i))), "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    let after = a.state();
    assert_eq!(after, before, "the rollback left host 1 as it was");
    let eth0 = a.ns.ip(&["addr", "show", "eth0"]);
    assert!(eth0.contains(&format!("{}/24", underlay_ip(a.i))) && !eth0.contains("NOARP"), "{eth0}");
    assert!(!a.ns.ip(&["-br", "link", "show"]).contains("br-phy"), "br-phy is gone");
    assert!(reaches(&lab, a), "the gateway reaches host 1 after the rollback");
    let (ok, out) = a.exec("ping", &["-c", "1", "-W", "2", &underlay_ip(b.i)]);
    assert!(ok, "host 1 reaches host 2 after the rollback: {out}");
}

/// A dry run plans exactly what the real run then does, and changes nothing.
#[test]
fn dry_run_plan_matches_the_real_run() {
    let lab = lab(2);
    let a = &lab.hosts[0];
    let before = a.state();
    let plan = a.underlay(&["--dry-run", "--json"], &["eth0", &format!("--check={GATEWAY}")]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!(a.state(), before, "the dry run changed the host");
    let real = a.underlay(&["--json"], &["eth0", &format!("--check={GATEWAY}")]);
    assert_eq!(real.code, 0, "{real:?}");
    assert_eq!(changes(&plan), changes(&real), "plan and real run differ");
    let done = changes(&real);
    let ops: Vec<&str> = done.as_array().unwrap().iter().map(|c| c["op"].as_str().unwrap()).collect();
    for op in ["create-bridge", "set-mac", "add-port", "add-address", "del-route", "del-address", "set-arp"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
    assert_moved(a);
    // And a dry run of the re-run plans nothing.
    let again = a.underlay(&["--dry-run", "--json"], &["eth0"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(changes(&again), serde_json::json!([]), "{again:?}");
}

/// A NIC that does not exist, one without an address, and the kernel
/// datapath: clear errors (or a note), and the host as it was.
#[test]
fn missing_nic_no_address_and_kernel_datapath_leave_everything_as_it_was() {
    let lab = lab(1);
    let a = &lab.hosts[0];
    let before = a.state();
    let r = a.underlay(&[], &["eth9"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("eth9") && r.stderr.contains("does not exist"), "{r:?}");
    assert_eq!(a.state(), before);
    // vc1 (the container's veth, host end) is a port of br-int.
    let r = a.underlay(&[], &["vc1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("vc1") && r.stderr.contains("br-int"), "{r:?}");
    assert_eq!(a.state(), before);
    // A NIC without an address.
    a.ns.ip(&["link", "add", "nic9", "type", "veth", "peer", "name", "nic9p"]);
    let before = a.state();
    let r = a.underlay(&[], &["nic9"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("nic9") && r.stderr.contains("no address"), "{r:?}");
    assert_eq!(a.state(), before);
    let r = a.underlay(&[], &["eth0", "--check=192.168.50.300"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("192.168.50.300"), "{r:?}");
    let r = a.underlay(&["--json"], &["eth0", "--datapath=system", &format!("--check={GATEWAY}")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.all().contains("stays on eth0"), "{r:?}");
    assert_eq!(changes(&r), serde_json::json!([]));
    assert_eq!(a.state(), before);
}
