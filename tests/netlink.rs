//! The netlink backend (`ovs_run::backend::netlink::Netlink`) and ICMP
//! `ping` against real network namespaces, every result checked with
//! iproute2 (`ip`), an independent view.
//!
//! Covered: veth pairs into a named netns and into a container (reached by
//! its pid), links with MTU / MAC / state, IPv4 and IPv6 addresses, routes
//! (default, on-link, kernel link routes), their idempotence and error paths
//! (duplicates, conflicting default route, missing links, namespaces and
//! containers, a netns deleted while in use), twenty veths into one netns,
//! ping over IPv4 and IPv6 between namespaces, lost replies, no route,
//! concurrent pings, invalid arguments; and that every backend future is
//! `Send` (the engine calls them from `#[async_trait]` methods).
//!
//! Needs root and iproute2; a missing prerequisite fails the test (run them
//! through `make test`).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ovs_run::backend::netlink::{Netlink, PeerSetup};
use ovs_run::backend::ping::ping;
use ovs_run::backend::Addressing;
use ovs_run::error::ErrorKind;
use ovs_run::types::{Cidr, ContainerRef, IfName, MacAddr, Mtu, NetnsName, RouteSpec, Target};

mod common;

use common::{require_root, sh, try_sh, tx_checksum_of, Netns};

/// The namespace as a backend target.
trait AsTarget {
    fn target(&self) -> Target;
}

impl AsTarget for Netns {
    fn target(&self) -> Target {
        Target::Netns { name: NetnsName::parse(&self.name).unwrap() }
    }
}

/// A host-namespace link name unique to this test process; the link (and
/// with it a veth's peer) is deleted on drop.
struct HostLink(String);

impl HostLink {
    fn new(tag: &str) -> Self {
        Self(format!("ovt{:05}{tag}", std::process::id() % 100_000))
    }

    fn name(&self) -> IfName {
        IfName::parse(&self.0).unwrap()
    }
}

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = try_sh("ip", &["link", "del", &self.0]);
    }
}

/// A child process killed and reaped on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A netns name that does not exist.
fn missing_netns() -> Target {
    Target::Netns { name: NetnsName::parse(&format!("ovsrt-{}-missing", std::process::id())).unwrap() }
}

fn n(s: &str) -> IfName {
    IfName::parse(s).unwrap()
}

fn c(s: &str) -> Cidr {
    Cidr::parse(s).unwrap()
}

/// `ethtool -k`'s tx-checksumming state ("on"/"off") of `link` in netns
/// `ns` (None: this one): the independent view of offloads.
fn tx_checksum(ns: Option<&str>, link: &str) -> String {
    let out = match ns {
        Some(ns) => sh("ip", &["netns", "exec", ns, "ethtool", "-k", link]),
        None => sh("ethtool", &["-k", link]),
    };
    tx_checksum_of(&out)
}

/// What a veth's peer gets, without addresses.
fn setup(mtu: Option<Mtu>, mac: Option<MacAddr>, sw_checksum: bool) -> PeerSetup<'static> {
    PeerSetup { mtu, mac, sw_checksum, addressing: None }
}

/// A per-process octet for test addresses.
fn x() -> u32 {
    std::process::id() % 250
}

/// A veth's peer made with its addresses and default route (attach-ports):
/// all there once `create_veth` returns, seen by iproute2; and when the
/// route cannot be made, the veth is gone again, both ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veth_made_with_its_addresses_and_default_route() {
    require_root();
    let nl = Netlink::new().unwrap();
    let b = Netns::tagged("addr");
    let host = HostLink::new("a1");
    let tb = b.target();
    let addressing = Addressing {
        addresses: vec![Cidr::parse("10.77.0.2/24").unwrap(), Cidr::parse("fd77::2/64").unwrap()],
        gateway: Some("10.77.0.1".parse().unwrap()),
    };
    let with = PeerSetup { addressing: Some(&addressing), ..setup(None, None, false) };
    nl.create_veth(&host.name(), &n("eth0"), &tb, with).await.unwrap();
    let addrs = b.ip(&["addr", "show", "eth0"]);
    assert!(addrs.contains("10.77.0.2/24") && addrs.contains("fd77::2/64"), "{addrs}");
    assert!(b.ip(&["link", "show", "eth0"]).contains(",UP"));
    let routes = b.ip(&["route"]);
    assert!(routes.contains("default via 10.77.0.1 dev eth0"), "{routes}");
    sh("ip", &["link", "del", &host.0]);

    // The namespace has a default route already: the kernel will not make a
    // second, and nothing of the veth is left, on either side.
    b.ip(&["link", "add", "other0", "type", "veth", "peer", "name", "other1"]);
    b.ip(&["link", "set", "other0", "up"]);
    b.ip(&["route", "add", "default", "dev", "other0"]);
    let e = nl.create_veth(&host.name(), &n("eth0"), &tb, with).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains("default dev other0"), "names the route in the way: {e}");
    assert!(!try_sh("ip", &["link", "show", &host.0]).0, "host end left behind");
    assert!(!b.ip(&["link"]).contains("eth0"), "peer left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veth_links_addresses_routes() {
    require_root();
    let nl = Netlink::new().unwrap();
    let b = Netns::tagged("b");
    let host = HostLink::new("v1");
    let tb = b.target();
    let mac = MacAddr::parse("02:42:ac:11:00:02").unwrap();
    nl.create_veth(&host.name(), &n("eth0"), &tb, setup(Some(Mtu::new(1400).unwrap()), Some(mac), true))
        .await
        .unwrap();

    // Independent view: iproute2 and ethtool. TX checksum offload is off on
    // the peer only (asked for), on on the host end (the veth default).
    assert_eq!(tx_checksum(Some(&b.name), "eth0"), "off");
    assert_eq!(tx_checksum(None, &host.0), "on");
    // The offload setter returns the old state; the kernel agrees.
    assert!(!nl.set_tx_checksum(&tb, &n("eth0"), true).await.unwrap());
    assert_eq!(tx_checksum(Some(&b.name), "eth0"), "on");
    assert!(nl.set_tx_checksum(&tb, &n("eth0"), false).await.unwrap());
    assert!(!nl.set_tx_checksum(&tb, &n("eth0"), false).await.unwrap());
    assert_eq!(tx_checksum(Some(&b.name), "eth0"), "off");
    let e = nl.set_tx_checksum(&tb, &n("nope0"), false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("nope0"), "{e}");
    let peer = b.ip(&["link", "show", "eth0"]);
    assert!(peer.contains("mtu 1400") && peer.contains("02:42:ac:11:00:02"), "{peer}");
    assert!(peer.contains(",UP"), "peer not up: {peer}");
    let h = sh("ip", &["link", "show", &host.0]);
    assert!(h.contains("mtu 1400") && h.contains(",UP"), "{h}");
    assert!(h.contains(&format!("link-netns {}", b.name)) || h.contains("link-netnsid"), "{h}");

    let h = nl.links(&Target::Host, Some(&host.name())).await.unwrap();
    assert_eq!((h[0].mtu, h[0].up), (1400, true));
    let l = nl.links(&tb, Some(&n("eth0"))).await.unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].name.as_str(), l[0].mtu, l[0].mac, l[0].up), ("eth0", 1400, Some(mac), true));
    let all = nl.links(&tb, None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth0"]);
    assert_eq!(all[0].mac, None, "loopback has no MAC");

    // Addresses: added once, then reported as already there.
    let v4 = c(&format!("10.98.{}.2/24", x()));
    let v6 = c("fd00:98::2/64");
    assert!(nl.add_address(&tb, &n("eth0"), v4).await.unwrap());
    assert!(!nl.add_address(&tb, &n("eth0"), v4).await.unwrap());
    assert!(nl.add_address(&tb, &n("eth0"), v6).await.unwrap());
    assert!(!nl.add_address(&tb, &n("eth0"), v6).await.unwrap());
    // The same address with another prefix is a conflict, not a no-op.
    let e = nl.add_address(&tb, &n("eth0"), c("fd00:98::2/80")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains("fd00:98::2"), "{e}");
    let shown = b.ip(&["addr", "show", "eth0"]);
    assert!(shown.contains(&v4.to_string()) && shown.contains("fd00:98::2/64"), "{shown}");
    let l = nl.links(&tb, Some(&n("eth0"))).await.unwrap();
    assert!(l[0].addresses.contains(&v4) && l[0].addresses.contains(&v6), "{:?}", l[0].addresses);
    assert!(l[0].addresses.iter().any(|a| a.addr.to_string().starts_with("fe80")), "link-local listed");

    // Routes.
    let gw4 = format!("10.98.{}.1", x()).parse().unwrap();
    let def4 = RouteSpec { destination: None, via: Some(gw4), device: None };
    assert!(nl.add_route(&tb, &def4).await.unwrap());
    assert!(!nl.add_route(&tb, &def4).await.unwrap());
    let with_dev = RouteSpec { device: Some(n("eth0")), ..def4.clone() };
    assert!(!nl.add_route(&tb, &with_dev).await.unwrap(), "same route with its device");
    // A different default route is a conflict.
    let other = RouteSpec { via: Some(format!("10.98.{}.254", x()).parse().unwrap()), ..def4.clone() };
    let e = nl.add_route(&tb, &other).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains("default"), "{e}");
    let def6 = RouteSpec { destination: None, via: Some("fd00:98::1".parse().unwrap()), device: None };
    assert!(nl.add_route(&tb, &def6).await.unwrap());
    let net = RouteSpec { destination: Some(c("10.200.0.0/16")), via: None, device: Some(n("eth0")) };
    assert!(nl.add_route(&tb, &net).await.unwrap());
    let shown = b.ip(&["route", "show"]);
    assert!(shown.contains(&format!("default via {gw4} dev eth0")), "{shown}");
    assert!(shown.contains("10.200.0.0/16 dev eth0") && shown.contains("scope link"), "{shown}");
    assert!(b.ip(&["-6", "route", "show"]).contains("default via fd00:98::1 dev eth0"));

    let routes = nl.routes(&tb).await.unwrap();
    let kernel = RouteSpec {
        destination: Some(c(&format!("10.98.{}.0/24", x()))),
        via: None,
        device: Some(n("eth0")),
    };
    assert!(routes.contains(&with_dev), "{routes:?}");
    assert!(routes.contains(&RouteSpec { device: Some(n("eth0")), ..def6.clone() }), "{routes:?}");
    assert!(routes.contains(&kernel), "kernel link route listed: {routes:?}");
    assert!(routes.contains(&net), "{routes:?}");

    assert!(nl.del_route(&tb, &def4).await.unwrap());
    assert!(!nl.del_route(&tb, &def4).await.unwrap());
    assert!(nl.del_route(&tb, &def6).await.unwrap());
    assert!(nl.del_route(&tb, &net).await.unwrap());
    assert!(nl.del_route(&tb, &kernel).await.unwrap(), "kernel route deletable");
    let gone = RouteSpec { device: Some(n("nope0")), ..net.clone() };
    assert!(!nl.del_route(&tb, &gone).await.unwrap());
    let shown = b.ip(&["route", "show"]);
    assert!(shown.trim().is_empty(), "{shown}");

    assert!(nl.del_address(&tb, &n("eth0"), v4).await.unwrap());
    assert!(!nl.del_address(&tb, &n("eth0"), v4).await.unwrap());
    assert!(!nl.del_address(&tb, &n("eth0"), c("fd00:98::2/80")).await.unwrap(), "prefix must match");
    assert!(nl.del_address(&tb, &n("eth0"), v6).await.unwrap());
    let shown = b.ip(&["addr", "show", "eth0"]);
    assert!(!shown.contains("fd00:98::2") && !shown.contains(&v4.addr.to_string()), "{shown}");

    // Setters return the previous value.
    assert_eq!(nl.set_mtu(&tb, &n("eth0"), Mtu::new(1300).unwrap()).await.unwrap(), 1400);
    assert_eq!(nl.set_mtu(&tb, &n("eth0"), Mtu::new(1300).unwrap()).await.unwrap(), 1300);
    let mac2 = MacAddr::parse("02:42:ac:11:00:03").unwrap();
    assert_eq!(nl.set_mac(&tb, &n("eth0"), mac2).await.unwrap(), Some(mac));
    assert!(nl.set_up(&tb, &n("eth0"), false).await.unwrap());
    assert!(!nl.set_up(&tb, &n("eth0"), false).await.unwrap());
    let shown = b.ip(&["link", "show", "eth0"]);
    assert!(shown.contains("mtu 1300") && shown.contains("02:42:ac:11:00:03"), "{shown}");
    assert!(!shown.contains(",UP"), "{shown}");
    assert!(nl.set_up(&tb, &n("eth0"), true).await.unwrap());
    assert!(b.ip(&["link", "show", "eth0"]).contains(",UP"));

    // Errors.
    let host2 = HostLink::new("v2");
    let e = nl.create_veth(&host2.name(), &n("eth0"), &tb, setup(None, None, false)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains("link eth0 already exists in") && e.message.contains(&b.name), "{e}");
    assert!(!try_sh("ip", &["link", "show", &host2.0]).0, "nothing half-made");
    let e = nl.create_veth(&host.name(), &n("eth9"), &tb, setup(None, None, false)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains(&format!("link {} already exists in host", host.0)), "{e}");
    assert!(!b.ip(&["link"]).contains("eth9"), "nothing half-made");
    let missing = missing_netns();
    let e = nl.create_veth(&host2.name(), &n("eth0"), &missing, setup(None, None, false)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("missing"), "{e}");
    assert!(!try_sh("ip", &["link", "show", &host2.0]).0, "nothing half-made");
    let e = nl.set_mtu(&tb, &n("nope0"), Mtu::new(1500).unwrap()).await.unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::NotFound, format!("link nope0 not found in netns {}", b.name).as_str())
    );
    let e = nl.links(&tb, Some(&n("nope0"))).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains("nope0"), "{e}");
    let gone_pid = Target::Container {
        given: ContainerRef::parse("web").unwrap(),
        id: "abc123def4567890".into(),
        name: "web".into(),
        pid: 999_999_999,
        labels: vec![],
    };
    let e = nl.links(&gone_pid, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("web"), "{e}");

    // Deleting: gone namespaces and containers are tolerated.
    assert!(!nl.delete_link(&missing, &n("eth0")).await.unwrap(), "gone namespace tolerated");
    assert!(!nl.delete_link(&gone_pid, &n("eth0")).await.unwrap());
    assert!(nl.delete_link(&Target::Host, &host.name()).await.unwrap());
    assert!(!nl.delete_link(&Target::Host, &host.name()).await.unwrap());
    assert!(!try_sh("ip", &["link", "show", &host.0]).0, "host side gone");
    assert!(!b.ip(&["link"]).contains("eth0"), "peer went with it");
    assert!(!nl.delete_link(&tb, &n("eth0")).await.unwrap());
}

/// A stale /run/netns entry (namespace gone, file left) reads as not-found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_deleted_after_use() {
    require_root();
    let nl = Netlink::new().unwrap();
    let host = HostLink::new("v3");
    let t;
    {
        let b = Netns::tagged("gone");
        t = b.target();
        nl.create_veth(&host.name(), &n("eth0"), &t, setup(None, None, false)).await.unwrap();
    }
    // The cached socket keeps the namespace alive, but the name is gone.
    let e = nl.links(&t, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(!nl.delete_link(&t, &n("eth0")).await.unwrap());
    // Dropping the cached socket freed the namespace, and with it the veth
    // (the kernel does that asynchronously).
    let start = Instant::now();
    while try_sh("ip", &["link", "show", &host.0]).0 {
        assert!(start.elapsed() < Duration::from_secs(10), "namespace kept alive: {} still exists", host.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A long-lived process (watch, serve) must not keep dead namespaces alive:
/// a namespace used once and then deleted is never asked for again, yet its
/// cached socket is dropped when the next namespace is opened, which frees
/// it and its veth (the independent view: the host end disappears).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_namespaces_are_released_without_being_asked_for_again() {
    require_root();
    let nl = Netlink::new().unwrap();
    let host = HostLink::new("vr");
    {
        let gone = Netns::tagged("rel");
        nl.create_veth(&host.name(), &n("eth0"), &gone.target(), setup(None, None, false)).await.unwrap();
    }
    let next = Netns::tagged("nxt");
    nl.links(&next.target(), None).await.unwrap();
    let start = Instant::now();
    while try_sh("ip", &["link", "show", &host.0]).0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the deleted namespace is kept alive by its cached socket: {} still exists",
            host.0
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(nl.cached_namespaces() <= 2, "host and the live one: {}", nl.cached_namespaces());
}

/// Twenty veth pairs into one namespace: all there with their MTU on both
/// sides, all gone again after deleting the host sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_veths_into_one_namespace() {
    require_root();
    let nl = Netlink::new().unwrap();
    let ns = Netns::tagged("many");
    let t = ns.target();
    let pid = std::process::id() % 100_000;
    let hosts: Vec<HostLink> = (0..20).map(|i| HostLink(format!("ovm{pid:05}{i:02}"))).collect();
    for (i, h) in hosts.iter().enumerate() {
        let peer = n(&format!("eth{i}"));
        nl.create_veth(&h.name(), &peer, &t, setup(Some(Mtu::new(1450).unwrap()), None, false))
            .await
            .unwrap();
    }

    let links = nl.links(&t, None).await.unwrap();
    assert_eq!(links.len(), 21, "lo and 20 peers: {links:?}");
    for i in 0..20 {
        let peer = ns.ip(&["link", "show", &format!("eth{i}")]);
        assert!(peer.contains("mtu 1450") && peer.contains(",UP"), "{peer}");
    }
    for h in &hosts {
        let shown = sh("ip", &["link", "show", &h.0]);
        assert!(shown.contains("mtu 1450") && shown.contains(",UP"), "{shown}");
    }

    for h in &hosts {
        assert!(nl.delete_link(&Target::Host, &h.name()).await.unwrap());
        assert!(!try_sh("ip", &["link", "show", &h.0]).0, "{} still there", h.0);
    }
    let left = ns.ip(&["-o", "link", "show"]);
    assert_eq!(left.lines().count(), 1, "only lo left: {left}");
    assert_eq!(nl.links(&t, None).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_between_namespaces() {
    require_root();
    let nl = Netlink::new().unwrap();
    let a = Netns::tagged("pa");
    let b = Netns::tagged("pb");
    // Made with ip, inside the two namespaces: deleted along with them.
    sh(
        "ip",
        &["link", "add", "p0", "netns", &a.name, "type", "veth", "peer", "name", "p1", "netns", &b.name],
    );
    let (ta, tb) = (a.target(), b.target());
    let (a4, b4) = (c(&format!("10.99.{}.1/24", x())), c(&format!("10.99.{}.2/24", x())));
    let (a6, b6) = (c("fd00:99::1/64"), c("fd00:99::2/64"));
    for (t, dev, v4, v6) in [(&ta, "p0", a4, a6), (&tb, "p1", b4, b6)] {
        assert!(nl.set_up(t, &n(dev), true).await.unwrap());
        nl.add_address(t, &n(dev), v4).await.unwrap();
        nl.add_address(t, &n(dev), v6).await.unwrap();
    }

    // Until linkwatch has run (it needs the RTNL lock, which other tests
    // hammer) the veth's qdisc drops everything: wait for operstate UP.
    let start = Instant::now();
    while !(a.ip(&["link", "show", "p0"]).contains("state UP")
        && b.ip(&["link", "show", "p1"]).contains("state UP"))
    {
        assert!(start.elapsed() < Duration::from_secs(10), "links never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let start = Instant::now();
    let s = ping(&ta, b4.addr, 3, Duration::from_secs(1)).await.unwrap();
    assert_eq!((s.sent, s.received), (3, 3), "{s:?}");
    assert!(s.rtt_min > Duration::ZERO && s.rtt_min <= s.rtt_avg && s.rtt_avg <= s.rtt_max, "{s:?}");
    // The next request goes out as soon as a reply arrives: pausing the
    // 200 ms interval between answered requests would take 400 ms or more.
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "answered requests must not wait for the interval: {:?}",
        start.elapsed()
    );

    // IPv6 addresses are unusable until DAD finishes.
    let dad = Instant::now();
    while !(a.ip(&["-6", "addr", "show", "tentative"]).trim().is_empty()
        && b.ip(&["-6", "addr", "show", "tentative"]).trim().is_empty())
    {
        assert!(dad.elapsed() < Duration::from_secs(10), "DAD did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = ping(&tb, a6.addr, 3, Duration::from_secs(1)).await.unwrap();
    assert_eq!((s.sent, s.received), (3, 3), "{s:?}");

    // Nobody there: all lost, not an error. The second request goes out
    // after the 200 ms interval and gets its full timeout: 500 ms in all.
    let start = Instant::now();
    let unused = format!("10.99.{}.99", x()).parse().unwrap();
    let s = ping(&ta, unused, 2, Duration::from_millis(300)).await.unwrap();
    let took = start.elapsed();
    assert_eq!((s.sent, s.received), (2, 0), "{s:?}");
    assert!(took >= Duration::from_millis(450), "timeout cut short: {took:?}");
    assert!(took < Duration::from_secs(3), "ping hung: {took:?}");

    // No route at all: not an error either.
    let s = ping(&ta, "192.0.2.1".parse().unwrap(), 1, Duration::from_millis(100)).await.unwrap();
    assert_eq!((s.sent, s.received), (1, 0), "{s:?}");

    // Two pings at once in the same namespace keep their replies apart.
    let (p1, p2) = tokio::join!(
        ping(&ta, b4.addr, 5, Duration::from_secs(1)),
        ping(&ta, b4.addr, 5, Duration::from_secs(1))
    );
    assert_eq!((p1.unwrap().received, p2.unwrap().received), (5, 5));

    for (count, timeout) in [(0, 1000), (1001, 1000), (1, 0)] {
        let e = ping(&ta, b4.addr, count, Duration::from_millis(timeout)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    }
    let e = ping(&missing_netns(), b4.addr, 1, Duration::from_secs(1)).await.unwrap_err();
    assert!(e.kind == ErrorKind::NotFound && e.message.contains("missing"), "{e}");
}

/// A container is reached through /proc/PID/ns/net.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_target_by_pid() {
    require_root();
    let nl = Netlink::new().unwrap();
    let ns = Netns::tagged("ctr");
    let child =
        KillOnDrop(Command::new("ip").args(["netns", "exec", &ns.name, "sleep", "30"]).spawn().unwrap());
    let pid = child.0.id();
    // `ip netns exec` enters the namespace, then execs sleep.
    let want = std::fs::metadata(format!("/run/netns/{}", ns.name))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .ok()
        != Some(want)
    {
        assert!(start.elapsed() < Duration::from_secs(5), "child never entered {}", ns.name);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = Target::Container {
        given: ContainerRef::parse("web").unwrap(),
        id: "0123456789abcdef0123".into(),
        name: "web".into(),
        pid,
        labels: vec![],
    };
    let host = HostLink::new("v4");
    nl.create_veth(&host.name(), &n("eth1"), &t, setup(None, None, false)).await.unwrap();
    assert!(ns.ip(&["link", "show", "eth1"]).contains(",UP"));
    assert!(sh("ip", &["link", "show", &host.0]).contains(",UP"));
    let e = nl.set_up(&t, &n("nope0"), true).await.unwrap_err();
    assert_eq!(
        (e.kind, e.message.as_str()),
        (ErrorKind::NotFound, "link nope0 not found in container web (0123456789ab)")
    );
    assert!(nl.delete_link(&t, &n("eth1")).await.unwrap());
    assert!(!try_sh("ip", &["link", "show", &host.0]).0, "host side went with it");
}

/// The engine calls these from `#[async_trait]` methods, which need `Send`
/// futures: this only has to compile.
#[allow(dead_code, unused_must_use)]
fn futures_are_send(nl: &Netlink, t: &Target, i: &IfName, r: &RouteSpec, m: MacAddr, mtu: Mtu) {
    fn send<T: Send>(_: T) {}
    let cidr = c("10.0.0.1/24");
    send(nl.create_veth(i, i, t, setup(Some(mtu), Some(m), true)));
    send(nl.delete_link(t, i));
    send(nl.links(t, Some(i)));
    send(nl.set_up(t, i, true));
    send(nl.set_mtu(t, i, mtu));
    send(nl.set_mac(t, i, m));
    send(nl.add_address(t, i, cidr));
    send(nl.del_address(t, i, cidr));
    send(nl.routes(t));
    send(nl.add_route(t, r));
    send(nl.del_route(t, r));
    send(ping(t, cidr.addr, 1, Duration::from_secs(1)));
    fn sync<T: Send + Sync>() {}
    sync::<Netlink>();
}
