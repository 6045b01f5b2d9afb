//! Tunnel meshes across simulated hosts: each host a network namespace with
//! its own ovsdb-server and ovs-vswitchd (private run directory), joined by
//! an underlay Linux bridge in a namespace of its own; its underlay address
//! on the OVS internal port br-phy (userspace datapath), ARP off on the
//! NIC; a "container" per host (a netns whose veth is a port of br-int).
//! ovs-run runs "on" a host through nsenter. Everything is checked with
//! ovs-vsctl, ovs-appctl, ping and kernel TCP sockets, not with ovs-run.
//! The hosts are common::hosts's lab. Recipe: ../shared/lab/multihost/tunnels.sh.

mod common;

use std::time::Duration;

use common::hosts::{overlay_ip, underlay_ip, Host, Lab, Nic};
use common::*;

/// The name mesh.wasm gives the tunnel of `kind` to IPv4 `peer`.
fn tunnel_name(kind: &str, peer: &str) -> String {
    let prefix = match kind {
        "gre" => "gre",
        "vxlan" => "vxl",
        "geneve" => "gnv",
        _ => panic!("kind {kind}"),
    };
    let ip: std::net::Ipv4Addr = peer.parse().unwrap();
    format!("{prefix}-{:08x}", u32::from(ip))
}

/// `n` hosts ready for tunnels: the underlay address on br-phy, a container
/// on br-int each, the underlay checked.
fn lab(n: usize) -> Lab {
    let mut lab = Lab::new(n, Nic::BrPhy);
    lab.add_containers();
    lab.assert_underlay();
    lab
}

/// What this suite does on a host: mesh.wasm, and its tunnels as OVS has them.
impl Host {
    /// `mesh.wasm br-int --kind=KIND [extra] PEERS...` on this host.
    fn mesh(&self, kind: &str, peers: &[&Host], extra: &[&str], env: &[(&str, &str)]) -> Run {
        let s = script("mesh");
        let k = format!("--kind={kind}");
        let ips: Vec<String> = peers.iter().map(|p| p.ip()).collect();
        let mut a = vec![s.to_str().unwrap(), "br-int", k.as_str()];
        a.extend_from_slice(extra);
        a.extend(ips.iter().map(String::as_str));
        self.ovs_run(&a, env)
    }

    /// Names of br-int's tunnel ports, by ovs-vsctl (type gre/vxlan/geneve).
    fn tunnel_ports(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.vsctl(&["list-ports", "br-int"]).lines().map(str::trim).filter(|l| !l.is_empty()) {
            let t = self.vsctl(&["get", "interface", p, "type"]);
            if ["gre", "vxlan", "geneve"].contains(&t.trim()) {
                out.push(p.to_string());
            }
        }
        out.sort();
        out
    }

    /// Packets received by the underlay NIC so far (live datapath counters).
    fn underlay_rx(&self) -> u64 {
        let mgmt = format!("unix:{}/br-phy.mgmt", self.dir.display());
        let out = sh("ovs-ofctl", &["dump-ports", &mgmt, "eth0"]);
        let n = out.split("rx pkts=").nth(1).and_then(|s| s.split(',').next()).unwrap_or_default();
        n.trim().parse().unwrap_or_else(|_| panic!("no rx pkts in {out}"))
    }
}

/// mesh.wasm of `kind` on every host to all the others.
fn full_mesh(lab: &Lab, kind: &str) {
    for h in &lab.hosts {
        let peers: Vec<&Host> = lab.hosts.iter().filter(|p| p.i != h.i).collect();
        let r = h.mesh(kind, &peers, &[], &[]);
        assert_eq!(r.code, 0, "mesh on host {}: {r:?}", h.i);
    }
}

/// Every ordered pair of containers pings, and moves 1 MiB over TCP.
fn assert_all_pairs(hosts: &[&Host], what: &str) {
    for a in hosts {
        for b in hosts {
            if a.i == b.i {
                continue;
            }
            let t = a.first_ping(b, Duration::from_secs(5));
            assert!(t.is_some(), "{what}: container {} cannot ping container {}", a.i, b.i);
            assert_tcp(
                &format!("{what}: container {} -> {}", a.i, b.i),
                a.container(),
                b.container(),
                &overlay_ip(b.i),
            );
        }
    }
}

/// The checks of one kind: mesh.wasm builds it, one broadcast does not
/// loop, every pair pings and moves TCP, ovs-vsctl shows the ports (type,
/// remote, protected), and a re-run changes nothing.
fn mesh_works(kind: &str) {
    let lab = lab(3);
    full_mesh(&lab, kind);
    // No loop: one ARP broadcast from container 1 (for an address nobody
    // has) reaches host 2 a bounded number of times. Without split horizon
    // it circles the mesh: thousands of packets a second.
    let (a, b) = (&lab.hosts[0], &lab.hosts[1]);
    let before = b.underlay_rx();
    let f = format!("--net=/run/netns/{}", a.container().name);
    let _ = try_sh("nsenter", &[&f, "ping", "-c", "1", "-W", "1", "10.60.0.99"]);
    std::thread::sleep(Duration::from_secs(2));
    let got = b.underlay_rx() - before;
    assert!(
        got < 100,
        "{kind}: the mesh loops: host 2's underlay received {got} packets in ~3 s after one broadcast"
    );

    let all: Vec<&Host> = lab.hosts.iter().collect();
    assert_all_pairs(&all, kind);

    for h in &lab.hosts {
        let mut want: Vec<String> =
            lab.hosts.iter().filter(|p| p.i != h.i).map(|p| tunnel_name(kind, &underlay_ip(p.i))).collect();
        want.sort();
        assert_eq!(h.tunnel_ports(), want, "host {}", h.i);
        for p in lab.hosts.iter().filter(|p| p.i != h.i) {
            let name = tunnel_name(kind, &underlay_ip(p.i));
            assert_eq!(h.vsctl(&["get", "interface", &name, "type"]).trim(), kind);
            assert_eq!(
                h.vsctl(&["get", "interface", &name, "options:remote_ip"]).trim(),
                format!("\"{}\"", underlay_ip(p.i))
            );
            assert_eq!(
                h.vsctl(&["get", "port", &name, "protected"]).trim(),
                "true",
                "{name} on host {}",
                h.i
            );
        }
    }
    // Idempotent: the same run again changes nothing.
    let r = a.mesh(kind, &[b, &lab.hosts[2]], &[], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.all().contains("0 added, 0 removed, 2 unchanged"), "{r:?}");
}

#[test]
fn vxlan_mesh_of_three_hosts_carries_ping_and_tcp_without_looping() {
    mesh_works("vxlan");
}

#[test]
fn gre_mesh_of_three_hosts_carries_ping_and_tcp_without_looping() {
    mesh_works("gre");
}

#[test]
fn geneve_mesh_of_three_hosts_carries_ping_and_tcp_without_looping() {
    mesh_works("geneve");
}

/// A re-run with a shorter peer list removes the difference; a host whose
/// tunnels are all removed leaves the other two working.
#[test]
fn removing_one_hosts_tunnels_leaves_the_other_two_working() {
    let lab = lab(3);
    full_mesh(&lab, "vxlan");
    let [a, b, c] = [&lab.hosts[0], &lab.hosts[1], &lab.hosts[2]];
    // Host 3 leaves: no peers at all; hosts 1 and 2 drop it from their lists.
    let r = c.mesh("vxlan", &[], &[], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.all().contains("0 added, 2 removed"), "{r:?}");
    for (h, peer) in [(a, b), (b, a)] {
        let r = h.mesh("vxlan", &[peer], &[], &[]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.all().contains("0 added, 1 removed, 1 unchanged"), "{r:?}");
        assert_eq!(h.tunnel_ports(), vec![tunnel_name("vxlan", &underlay_ip(peer.i))]);
    }
    assert!(c.tunnel_ports().is_empty());
    assert_all_pairs(&[a, b], "after host 3 left");
    assert!(!a.container_ping(c), "host 3 is no longer reachable");
}

/// `remove-tunnel` puts back what it removed when the run fails later, and
/// bad input (kind, remote address, VNI) leaves nothing behind.
#[test]
fn bad_kind_remote_or_vni_leaves_nothing() {
    let lab = lab(2);
    let [a, b] = [&lab.hosts[0], &lab.hosts[1]];
    let before = a.vsctl(&["list-ports", "br-int"]);
    let s = script("mesh");
    let cases: [(&[&str], &str); 4] = [
        (&["--kind=vxlanx", "192.168.50.2"], "vxlanx"),
        (&["--kind=vxlan", "192.168.50.2", "192.168.50.300"], "192.168.50.300"),
        (&["--kind=geneve", "--vni=16777216", "192.168.50.2"], "16777216"),
        // The first tunnel (to .2) is made, the second refused by the host: rolled back.
        (&["--kind=vxlan", "192.168.50.2", "255.255.255.255"], "255.255.255.255"),
    ];
    for (args, bad) in cases {
        let mut a_ = vec![s.to_str().unwrap(), "br-int"];
        a_.extend_from_slice(args);
        let r = a.ovs_run(&a_, &[]);
        assert_ne!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stderr.contains(bad), "{args:?}: the error names {bad}: {r:?}");
        assert_eq!(a.vsctl(&["list-ports", "br-int"]), before, "{args:?} left something");
    }
    // And a good run works.
    let r = a.mesh("vxlan", &[b], &["--vni=5000"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let name = tunnel_name("vxlan", &underlay_ip(b.i));
    assert_eq!(a.vsctl(&["get", "interface", &name, "options:key"]).trim(), "\"5000\"");
}

/// A tenant may build tunnels only to the peers its policy allows; a
/// refused one fails the run and the run is rolled back.
#[test]
fn policy_refuses_a_tunnel_to_a_peer_outside_the_tenants_set() {
    let lab = lab(3);
    let [a, b, c] = [&lab.hosts[0], &lab.hosts[1], &lab.hosts[2]];
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("tunnels.cedar");
    std::fs::write(
        &policy,
        r#"@id("bridges")
permit (principal == Tenant::"a", action in [Action::"bridges", Action::"list-tunnels", Action::"remove-tunnel"], resource);
@id("tunnels-to-host-2")
permit (principal == Tenant::"a", action == Action::"add-tunnel", resource)
when {
  context has remote_ip && context.remote_ip.isInRange(ip("192.168.50.2/32")) &&
  context has tunnel_kind && context.tunnel_kind == "vxlan"
};
"#,
    )
    .unwrap();
    let tenants = root().join("examples/policy/tenants.json");
    let audit = dir.path().join("audit.log");
    let p = [
        "--policy",
        policy.to_str().unwrap(),
        "--tenants",
        tenants.to_str().unwrap(),
        "--tenant",
        "a",
        "--audit",
        audit.to_str().unwrap(),
    ];
    let s = script("mesh");
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = p.to_vec();
        args.extend([s.to_str().unwrap(), "br-int"]);
        args.extend_from_slice(extra);
        a.ovs_run(&args, &[])
    };
    let r = run(&["--kind=vxlan", &underlay_ip(b.i), &underlay_ip(c.i)]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("add-tunnel") && r.stderr.contains("192.168.50.3") || r.stderr.contains("denied"),
        "{r:?}"
    );
    assert!(a.tunnel_ports().is_empty(), "the refused run is rolled back");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"deny\"") && l.contains("add-tunnel") && l.contains("192.168.50.3")),
        "{log}"
    );
    let r = run(&["--kind=gre", &underlay_ip(b.i)]);
    assert_ne!(r.code, 0, "gre is not allowed: {r:?}");
    let r = run(&["--kind=vxlan", &underlay_ip(b.i)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(a.tunnel_ports(), vec![tunnel_name("vxlan", &underlay_ip(b.i))]);
}

/// A dry-run plans what the real run then does, and changes nothing.
#[test]
fn dry_run_plan_matches_the_real_run() {
    let lab = lab(3);
    let a = &lab.hosts[0];
    let s = script("mesh");
    let args = [
        "--json",
        s.to_str().unwrap(),
        "br-int",
        "--kind=geneve",
        "--vni=77",
        "192.168.50.2",
        "192.168.50.3",
    ];
    let mut dry = vec!["--dry-run"];
    dry.extend_from_slice(&args);
    let plan = a.ovs_run(&dry, &[]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(a.tunnel_ports().is_empty(), "dry-run changed the system");
    let real = a.ovs_run(&args, &[]);
    assert_eq!(real.code, 0, "{real:?}");
    let p: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_str(&real.stdout).unwrap();
    assert_eq!(p["changes"], r["changes"], "plan and real run differ");
    assert!(plan.stdout.contains("add-tunnel"), "{}", plan.stdout);
    assert_eq!(a.tunnel_ports().len(), 2);
}

/// Seeding the tunnel neighbour cache from the kernel's neighbour table:
/// ovs-vswitchd holds the peer's MAC as soon as the tunnel exists, before
/// any traffic (without seeding it learns it by snooping ARP, and drops the
/// packet that made it ask). The first ping's time is measured both ways.
#[test]
fn neighbour_seeding_fills_the_tunnel_cache_before_any_traffic() {
    let lab = lab(2);
    let [a, b] = [&lab.hosts[0], &lab.hosts[1]];
    // Both kernels learn the other's MAC (what seeding reads), then both
    // ovs-vswitchd caches are emptied: ovs-vswitchd snoops every ARP packet
    // for its bridge's address, the other host's request included, so a
    // flush before the other host's ping made this test fail now and then.
    let learn = |h: &Host| {
        h.container().ip(&["neigh", "flush", "all"]);
        let (ok, out) = h.exec("ping", &["-c", "1", "-W", "2", &underlay_ip(if h.i == 1 { 2 } else { 1 })]);
        assert!(ok, "{out}");
    };
    let forget = |h: &Host| {
        h.appctl(&["tnl/arp/flush"]);
        h.appctl(&["revalidator/purge"]);
    };
    let measure = |env: &[(&str, &str)]| -> (Duration, String) {
        learn(a);
        learn(b);
        forget(a);
        forget(b);
        let r = a.mesh("vxlan", &[b], &[], env);
        assert_eq!(r.code, 0, "{r:?}");
        // Read before any traffic (and before host 2 has its tunnel).
        let cache = a.appctl(&["tnl/arp/show"]);
        let r = b.mesh("vxlan", &[a], &[], env);
        assert_eq!(r.code, 0, "{r:?}");
        let t = a.first_ping(b, Duration::from_secs(10)).expect("the tunnel never carried a ping");
        for h in [a, b] {
            assert_eq!(h.mesh("vxlan", &[], &[], &[]).code, 0);
        }
        (t, cache)
    };
    // Without seeding: ovs-run cannot find ovs-vswitchd's control socket.
    let (unseeded, cache) = measure(&[("OVS_RUN_VSWITCHD_CTL", "/nonexistent.ctl")]);
    assert!(!cache.contains(&underlay_ip(2)), "nothing seeded, nothing there: {cache}");
    let (seeded, cache) = measure(&[]);
    // ovs-appctl, not ovs-run, shows the entry: host 2's br-phy MAC.
    let mac = b.mac("br-phy");
    assert!(!mac.is_empty(), "host 2 has no br-phy");
    assert!(
        cache.lines().any(|l| l.contains(&underlay_ip(2)) && l.contains(&mac)),
        "tnl/arp/show after mesh.wasm lacks {} {mac}: {cache}",
        underlay_ip(2)
    );
    eprintln!(
        "first ping over a new vxlan tunnel: {:.0} ms unseeded, {:.0} ms seeded",
        unseeded.as_secs_f64() * 1000.0,
        seeded.as_secs_f64() * 1000.0
    );
    assert!(seeded < Duration::from_millis(300), "seeded first packet took {seeded:?}");
}

// ------------------------------------------------ inner MTU on overlays (issue 18)

/// `attach.wasm` "on" `h` (with -v: it says which MTU and why).
fn attach_on(h: &Host, args: &[&str]) -> Run {
    let s = script("attach");
    let mut a = vec!["-v", s.to_str().unwrap()];
    a.extend_from_slice(args);
    h.ovs_run(&a, &[])
}

/// The MTU of `link` in container `c`, by `ip` through nsenter.
fn mtu_in(c: &Container, link: &str) -> u32 {
    let out = c.ip(&["-o", "link", "show", link]);
    let m = out.split(" mtu ").nth(1).and_then(|s| s.split_whitespace().next());
    m.and_then(|m| m.parse().ok()).unwrap_or_else(|| panic!("no mtu in {out}"))
}

/// A mesh of `kind` between two hosts whose underlay link (br-phy) has MTU
/// `underlay`: attach without --mtu gives the container's interface the
/// underlay's MTU minus the encapsulation, and 1 MiB crosses over TCP; with
/// --mtu the given one; on a bridge without tunnels the kernel's default.
fn attach_gets_the_inner_mtu(kind: &str, underlay: u32, overhead: u32) {
    let lab = lab(2);
    let [a, b] = [&lab.hosts[0], &lab.hosts[1]];
    let u = underlay.to_string();
    for h in [a, b] {
        if underlay != 1500 {
            // OVS sets an internal port's MTU: ask it, as an operator would.
            h.vsctl(&["set", "interface", "br-phy", &format!("mtu_request={u}")]);
            let link = h.ns.ip(&["-o", "link", "show", "br-phy"]);
            assert!(link.contains(&format!("mtu {u} ")), "br-phy of host {}: {link}", h.i);
        }
    }
    full_mesh(&lab, kind);
    let want = underlay - overhead;
    let (ca, cb) = (Container::start(), Container::start());
    for (h, c, ip) in [(a, &ca, "10.70.0.1/24"), (b, &cb, "10.70.0.2/24")] {
        let r = attach_on(h, &["br-int", "eth1", &c.name, &format!("--ipaddress={ip}")]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(mtu_in(c, "eth1"), want, "{kind} on a {underlay} underlay, host {}", h.i);
        assert!(
            r.stderr.contains(&format!("MTU {want}, bridge br-int's inner MTU: {kind} tunnel"))
                && r.stderr.contains(&format!("over br-phy (MTU {underlay}) minus {overhead}")),
            "attach -v says which MTU and why: {r:?}"
        );
    }
    // Full-sized segments cross the tunnel: the MTU is not too big.
    assert!(ca.ping("10.70.0.2"), "{kind}: container A cannot ping B");
    assert_tcp(&format!("{kind}: A -> B at MTU {want}"), &ca, &cb, "10.70.0.2");
    assert_tcp(&format!("{kind}: B -> A at MTU {want}"), &cb, &ca, "10.70.0.1");

    // Given: that one.
    let r = attach_on(a, &["br-int", "eth2", &ca.name, "--mtu=1300"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(mtu_in(&ca, "eth2"), 1300);
    // A bridge without tunnels: unchanged (the kernel's 1500).
    let r = attach_on(a, &["br-plain", "eth3", &ca.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("bridge br-plain has no overlay"), "{r:?}");
    assert_eq!(mtu_in(&ca, "eth3"), 1500);
}

#[test]
fn attach_on_a_vxlan_mesh_sets_the_underlay_mtu_minus_50() {
    attach_gets_the_inner_mtu("vxlan", 1500, 50);
}

#[test]
fn attach_on_a_gre_mesh_over_a_1400_underlay_sets_1362() {
    attach_gets_the_inner_mtu("gre", 1400, 38);
}
