//! End to end against real daemons: a private ovsdb-server + ovs-vswitchd per
//! test, real network namespaces, real Docker containers. Every check goes
//! through an independent view (ovs-vsctl, ip, nsenter), never through ovs-run.

mod common;

use common::*;

fn attach(ovs: &Ovs, bridge: &str, ifname: &str, container: &str, opts: &[&str]) -> Run {
    let s = script("attach");
    let mut a = vec!["--datapath", "netdev", s.to_str().unwrap(), bridge, ifname, container];
    a.extend_from_slice(opts);
    ovs.run(&a)
}

fn iface_ids(ovs: &Ovs, port: &str) -> String {
    ovs.vsctl(&["get", "Interface", port, "external_ids"])
}

#[test]
fn attach_configures_port_address_mac_mtu_route_and_pings() {
    let ovs = Ovs::start();
    let c = Container::start();
    let br = unique("tb");
    let r = attach(
        &ovs,
        &br,
        "eth0",
        &c.name,
        &["--ipaddress=10.61.0.2/24", "--gateway=10.61.0.1", "--mtu=1450", "--macaddress=02:61:00:00:00:02"],
    );
    assert_eq!(r.code, 0, "{r:?}");

    // OVS: the bridge exists (netdev), the port carries both external ids.
    assert_eq!(ovs.vsctl(&["get", "bridge", &br, "datapath_type"]).trim(), "netdev");
    let port = ovs.port_of(&c.name, "eth0").expect("port with ovs-docker external ids");
    assert!(ovs.vsctl(&["list-ports", &br]).lines().any(|l| l == port));
    let ids = iface_ids(&ovs, &port);
    assert!(ids.contains(&c.id()), "full id recorded: {ids}");
    let ofport: i64 = ovs.vsctl(&["get", "Interface", &port, "ofport"]).trim().parse().unwrap();
    assert!(ofport > 0, "ovs-vswitchd attached the port: ofport {ofport}");

    // The host end as the userspace datapath wants it: up, promiscuous (so
    // OVS need not change it), and making no IPv6 address, whose
    // solicitations ovs-vswitchd would flood to every port.
    let host_end = sh("ip", &["-d", "link", "show", &port]);
    assert!(host_end.contains("PROMISC") && host_end.contains(",UP"), "{host_end}");
    assert!(host_end.contains("addrgenmode none"), "{host_end}");
    let v6 = sh("ip", &["-6", "addr", "show", "dev", &port]);
    assert!(!v6.contains("inet6"), "no IPv6 address on the host end: {v6}");

    // Inside the container, through nsenter.
    let link = c.ip(&["link", "show", "eth0"]);
    assert!(link.contains("mtu 1450") && link.contains("02:61:00:00:00:02") && link.contains("UP"), "{link}");
    assert!(c.ip(&["-4", "addr", "show", "eth0"]).contains("10.61.0.2/24"));
    assert!(c.ip(&["route"]).contains("default via 10.61.0.1 dev eth0"));

    // The userspace datapath forwards frames as they are: TX checksum
    // offload is off on the container's end (ethtool through nsenter), and
    // left on on the host end, which only carries ovs-vswitchd's frames.
    assert_eq!(c.tx_checksum("eth0"), "off");
    assert_eq!(tx_checksum_here(&port), "on");

    // The bridge's own address, then a ping and real TCP data both ways.
    sh("ip", &["addr", "add", "10.61.0.1/24", "dev", &br]);
    sh("ip", &["link", "set", &br, "up"]);
    assert!(c.ping("10.61.0.1"), "ping from the container to the bridge");
    assert_tcp("container -> bridge", &c, &HereNs, "10.61.0.1");
    assert_tcp("bridge -> container", &HereNs, &c, "10.61.0.2");
}

/// `ethtool -k`'s tx-checksumming of a link in this namespace.
fn tx_checksum_here(link: &str) -> String {
    tx_checksum_of(&sh("ethtool", &["-k", link]))
}

#[test]
fn two_containers_ping_each_other_and_vlans_isolate() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let (a, b, x) = (Container::start(), Container::start(), Container::start());
    assert_eq!(attach(&ovs, &br, "eth0", &a.name, &["--ipaddress=10.62.0.2/24", "--vlan=10"]).code, 0);
    assert_eq!(attach(&ovs, &br, "eth0", &b.name, &["--ipaddress=10.62.0.3/24", "--vlan=10"]).code, 0);
    let r = attach(&ovs, &br, "eth0", &x.name, &["--ipaddress=10.62.0.4/24", "--vlan=20"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["get", "port", &ovs.port_of(&x.name, "eth0").unwrap(), "tag"]).trim(), "20");
    assert!(a.ping("10.62.0.3"), "same VLAN pings");
    assert_tcp("a -> b, same VLAN", &a, &b, "10.62.0.3");
    assert_tcp("b -> a, same VLAN", &b, &a, "10.62.0.2");
    assert!(!a.ping("10.62.0.4"), "different VLAN must not");
    assert!(tcp_transfer(&a, &x, "10.62.0.4", 1024).is_err(), "no TCP across VLANs either");

    // set-vlan moves x into VLAN 10: now it answers.
    let sv = script("set-vlan");
    let r = ovs.run(&[sv.to_str().unwrap(), &br, "eth0", &x.name, "10"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(a.ping("10.62.0.4"), "after set-vlan");
    assert_tcp("a -> x after set-vlan", &a, &x, "10.62.0.4");
}

#[test]
fn detach_and_detach_all_are_idempotent() {
    let ovs = Ovs::start();
    let br = unique("tb");
    let c = Container::start();
    assert_eq!(attach(&ovs, &br, "eth0", &c.name, &["--ipaddress=10.63.0.2/24"]).code, 0);
    assert_eq!(attach(&ovs, &br, "eth1", &c.name, &[]).code, 0);
    let host_port = ovs.port_of(&c.name, "eth0").unwrap();

    let detach = script("detach");
    let r = ovs.run(&[detach.to_str().unwrap(), &br, "eth0", &c.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ovs.port_of(&c.name, "eth0").is_none());
    assert!(!host_links().lines().any(|l| l == host_port), "host veth removed");
    assert!(!c.ip(&["link"]).contains("eth0"), "container end gone");
    let r = ovs.run(&[detach.to_str().unwrap(), &br, "eth0", &c.name]);
    assert_eq!(r.code, 0, "detaching again succeeds: {r:?}");

    let all = script("detach-all");
    let r = ovs.run(&[all.to_str().unwrap(), &br, &c.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ovs.port_of(&c.name, "eth1").is_none());
    let r = ovs.run(&[all.to_str().unwrap(), &br, &c.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), "");
}

#[test]
fn detach_works_for_a_container_that_is_gone() {
    let ovs = Ovs::start();
    let br = unique("tb");
    let name;
    {
        let c = Container::start();
        name = c.name.clone();
        assert_eq!(attach(&ovs, &br, "eth0", &c.name, &[]).code, 0);
    } // removed here
    let detach = script("detach");
    let r = ovs.run(&[detach.to_str().unwrap(), &br, "eth0", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), "");
}

#[test]
fn interop_with_ovs_docker_both_ways() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let env = [("OVS_RUNDIR", ovs.rundir())];

    // ovs-run attaches, ovs-docker removes.
    assert_eq!(attach(&ovs, &br, "eth0", &c.name, &["--ipaddress=10.64.0.2/24"]).code, 0);
    let out = std::process::Command::new("ovs-docker")
        .args(["del-port", &br, "eth0", &c.name])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), "", "ovs-docker removed ovs-run's port");

    // ovs-docker attaches, ovs-run removes.
    let out = std::process::Command::new("ovs-docker")
        .args(["add-port", &br, "eth1", &c.name, "--ipaddress=10.64.0.3/24"])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let detach = script("detach");
    let r = ovs.run(&[detach.to_str().unwrap(), &br, "eth1", &c.name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), "", "ovs-run removed ovs-docker's port");
    // Found by full id too (ovs-docker only stored the name it was given).
    let out = std::process::Command::new("ovs-docker")
        .args(["add-port", &br, "eth2", &c.name])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = ovs.run(&[detach.to_str().unwrap(), &br, "eth2", &c.id()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ovs.vsctl(&["list-ports", &br]).trim(), "", "found by full id");
}

/// Bad input and failures leave OVS and the links exactly as they were.
#[test]
fn failures_leave_the_system_as_it_was() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let stopped = Container::start();
    stopped.stop();
    // An existing eth0 in the container, from a first attach.
    assert_eq!(attach(&ovs, &br, "eth0", &c.name, &["--ipaddress=10.65.0.2/24"]).code, 0);
    let before = (ovs.snapshot(), host_links(), c.ip(&["-o", "addr"]));

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "missing container",
            vec![br.clone(), "eth1".into(), "no-such-container".into()],
            "no-such-container",
        ),
        ("stopped container", vec![br.clone(), "eth1".into(), stopped.name.clone()], "not running"),
        (
            "bad CIDR",
            vec![br.clone(), "eth1".into(), c.name.clone(), "--ipaddress=10.65.0.300/24".into()],
            "10.65.0.300",
        ),
        ("interface already in the container", vec![br.clone(), "eth0".into(), c.name.clone()], "eth0"),
        // The address works but the gateway is unreachable: add-port and the
        // address must be rolled back.
        (
            "late failure",
            vec![
                br.clone(),
                "eth1".into(),
                c.name.clone(),
                "--ipaddress=10.66.0.2/24".into(),
                "--gateway=10.99.0.1".into(),
            ],
            "10.99.0.1",
        ),
    ];
    let s = script("attach");
    for (what, args, needle) in cases {
        let mut a = vec![s.to_str().unwrap()];
        a.extend(args.iter().map(String::as_str));
        let r = ovs.run(&a);
        assert_eq!(r.code, 1, "{what}: {r:?}");
        assert!(r.stderr.contains(needle), "{what}: error names {needle}: {r:?}");
        let after = (ovs.snapshot(), host_links(), c.ip(&["-o", "addr"]));
        assert_eq!(before, after, "{what}: system changed");
    }

    // A bridge name that clashes with an existing port.
    let port = ovs.port_of(&c.name, "eth0").unwrap();
    let c2 = Container::start();
    let r = ovs.run(&[s.to_str().unwrap(), &port, "eth0", &c2.name]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&port), "{r:?}");
    assert_eq!(before.0, ovs.snapshot());

    // No ovsdb socket: a clear error naming it, nothing changed.
    let r =
        ovs_run(&["--ovsdb", "unix:/nonexistent/db.sock", s.to_str().unwrap(), &br, "eth1", &c.name], &[]);
    assert_eq!(r.code, 4, "OVSDB unreachable is exit status 4: {r:?}");
    assert!(r.stderr.contains("/nonexistent/db.sock"), "{r:?}");
    assert_eq!(before, (ovs.snapshot(), host_links(), c.ip(&["-o", "addr"])));
}

#[test]
fn dry_run_on_the_real_system_changes_nothing_and_matches_the_real_run() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let c = Container::start();
    let s = script("attach");
    let args = [
        "--json",
        "--datapath",
        "netdev",
        s.to_str().unwrap(),
        &br,
        "eth0",
        &c.name,
        "--ipaddress=10.67.0.2/24",
        "--gateway=10.67.0.1",
        "--mtu=1400",
    ];
    let before = (ovs.snapshot(), host_links(), c.ip(&["-o", "link"]));
    let mut dry_args = vec!["--dry-run"];
    dry_args.extend_from_slice(&args);
    let plan = ovs.run(&dry_args);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert_eq!(before, (ovs.snapshot(), host_links(), c.ip(&["-o", "link"])), "dry-run changed the system");

    let real = ovs.run(&args);
    assert_eq!(real.code, 0, "{real:?}");
    let p: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let r: serde_json::Value = serde_json::from_str(&real.stdout).unwrap();
    assert_eq!(p["changes"], r["changes"], "plan and real run differ");
    // The bridge existed: no create-bridge in either.
    assert!(!plan.stdout.contains("create-bridge"), "{}", plan.stdout);
}

#[test]
fn seed_demo_runs_the_tutorial_and_pings() {
    let ovs = Ovs::start();
    let c = Container::start();
    let br = unique("tb");
    let s = script("seed-demo");
    let r = ovs.run(&[
        "--datapath",
        "netdev",
        s.to_str().unwrap(),
        &format!("--bridge={br}"),
        &format!("--container={}", c.name),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("tcp ") && r.stdout.contains("1048576 bytes"), "TCP in the report: {r:?}");
    assert!(c.ip(&["addr", "show", "eth0"]).contains("10.10.0.2"), "{r:?}");
    assert!(c.ping("10.10.0.1"), "independent ping after the demo");
    assert_tcp("independent TCP after the demo", &c, &HereNs, "10.10.0.1");
}

#[test]
fn netns_targets_work_without_docker() {
    let ovs = Ovs::start();
    let ns = Netns::new();
    let br = unique("tb");
    ovs.add_bridge(&br);
    sh("ip", &["addr", "add", "10.68.0.1/24", "dev", &br]);
    sh("ip", &["link", "set", &br, "up"]);
    // The scripts take containers; the hostile test guest has a plain
    // attach of a named netns.
    let r = ovs.run(&[
        guest("hostile").to_str().unwrap(),
        "netns-attach",
        &br,
        &ns.name,
        "10.68.0.2/24",
        "10.68.0.1",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ns.ip(&["addr", "show", "eth0"]).contains("10.68.0.2/24"));
    let (ok, out) = try_sh("ip", &["netns", "exec", &ns.name, "ping", "-c", "1", "-W", "2", "10.68.0.1"]);
    assert!(ok, "{out}");
    assert_tcp("netns -> bridge", &ns, &HereNs, "10.68.0.1");
}

/// Everything a batch could touch: OVS, the host's links, and each
/// container's links and addresses (through nsenter).
fn world(ovs: &Ovs, cs: &[Container]) -> (String, String, Vec<String>) {
    let inside = cs.iter().map(|c| c.ip(&["-o", "link"]) + &c.ip(&["-o", "addr"])).collect();
    (ovs.snapshot(), host_links(), inside)
}

/// attach-many: all ports in one batch (one OVSDB change for the ports), each
/// container with its address, MTU and route; a failure inside the batch, or
/// after it, takes the whole run back.
#[test]
fn attach_many_batches_ports_and_rolls_back_as_a_unit() {
    let (ovs, br) = Ovs::with_bridge("tb");
    let cs: Vec<Container> = (0..3).map(|_| Container::start()).collect();
    let (many, detach_many) = (script("attach-many"), script("detach-many"));
    let spec = |i: usize, gw: &str| format!("{}=10.68.0.{}/24,{gw}", cs[i].name, i + 2);
    let attach_many = |specs: &[String]| {
        let mut a = vec!["--json", "--datapath", "netdev", many.to_str().unwrap(), &br, "eth0", "--mtu=1400"];
        a.extend(specs.iter().map(String::as_str));
        ovs.run(&a)
    };
    let before = world(&ovs, &cs);

    // A failure in the middle of the batch: the second container already has
    // an eth0, so its veth cannot be made after the first one's was.
    cs[1].ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "clash0"]);
    let before_clash = world(&ovs, &cs);
    let r = attach_many(&(0..3).map(|i| spec(i, "10.68.0.1")).collect::<Vec<_>>());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("eth0") && r.stderr.contains("request 2 of 3"), "names the request: {r:?}");
    assert_eq!(before_clash, world(&ovs, &cs), "a failed batch leaves nothing behind");
    cs[1].ip(&["link", "del", "eth0"]);

    // Refused before anything is made: the third container's gateway is not
    // on its subnet.
    let mut specs: Vec<String> = (0..2).map(|i| spec(i, "10.68.0.1")).collect();
    specs.push(spec(2, "10.99.0.1"));
    let r = attach_many(&specs);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("10.99.0.1") && r.stderr.contains("request 3"), "{r:?}");
    assert_eq!(before, world(&ovs, &cs), "nothing is made");

    // A failure while the veths are made with their addresses and routes
    // (the third container has a default route already, which the kernel
    // will not replace): the veths made, addressed, are taken back.
    cs[2].ip(&["link", "add", "other0", "type", "veth", "peer", "name", "other1"]);
    cs[2].ip(&["link", "set", "other0", "up"]);
    cs[2].ip(&["route", "add", "default", "dev", "other0"]);
    let before_route = world(&ovs, &cs);
    let r = attach_many(&(0..3).map(|i| spec(i, "10.68.0.1")).collect::<Vec<_>>());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("default") && r.stderr.contains("request 3 of 3"), "names the request: {r:?}");
    assert_eq!(before_route, world(&ovs, &cs), "a failed batch leaves nothing behind");
    assert!(cs[2].ip(&["route"]).contains("default dev other0"), "the container's own route stays");
    cs[2].ip(&["link", "del", "other0"]);
    assert_eq!(before, world(&ovs, &cs));

    // Success: one port per container, attached by ovs-vswitchd, configured inside.
    let r = attach_many(&(0..3).map(|i| spec(i, "10.68.0.1")).collect::<Vec<_>>());
    assert_eq!(r.code, 0, "{r:?}");
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("--json output");
    let changes = json["stats"]["ovsdb_changes"].as_u64().unwrap();
    // The bridge exists, so its create-bridge changes nothing.
    assert_eq!(changes, 1, "all ports in one OVSDB change: {r:?}");
    let ports: Vec<String> = ovs.vsctl(&["list-ports", &br]).lines().map(str::to_string).collect();
    assert_eq!(ports.len(), 3, "{ports:?}");
    for (i, c) in cs.iter().enumerate() {
        let port = ovs.port_of(&c.name, "eth0").expect("port with ovs-docker external ids");
        assert!(ports.contains(&port), "{port} on {br}");
        let ofport: i64 = ovs.vsctl(&["get", "Interface", &port, "ofport"]).trim().parse().unwrap();
        assert!(ofport > 0, "{port}: ofport {ofport}");
        let link = c.ip(&["link", "show", "eth0"]);
        assert!(link.contains("mtu 1400") && link.contains("UP"), "{link}");
        assert!(c.ip(&["-4", "addr", "show", "eth0"]).contains(&format!("10.68.0.{}/24", i + 2)));
        assert!(c.ip(&["route"]).contains("default via 10.68.0.1 dev eth0"));
        assert_eq!(c.tx_checksum("eth0"), "off", "batch ports get the offload fix too");
    }
    assert_tcp("batch: first -> third", &cs[0], &cs[2], "10.68.0.4");

    // detach-many removes all of it.
    let mut a = vec![detach_many.to_str().unwrap(), br.as_str(), "eth0"];
    a.extend(cs.iter().map(|c| c.name.as_str()));
    let r = ovs.run(&a);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(before, world(&ovs, &cs), "detach-many undoes attach-many");
}

/// A second ovs-vswitchd with the userspace datapath in the same network
/// namespace cannot create its datapath's tap device (`ovs-netdev`, taken
/// by the first), so none of its netdev bridges comes up although their
/// rows are written. create-bridge checks what ovs-vswitchd did, says why,
/// and leaves no rows behind.
#[test]
fn create_bridge_fails_clearly_when_another_userspace_datapath_owns_the_namespace() {
    let (first, _br) = Ovs::with_bridge("tb");
    let second = std::env::temp_dir().join(unique("ovs-run-t-ovs2"));
    struct Down(std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ =
                std::process::Command::new(bin()).args(["sandbox", "down", "--dir"]).arg(&self.0).output();
        }
    }
    let _down = Down(second.clone());
    let (ok, out) = try_sh(bin(), &["sandbox", "up", "--no-netns", "--dir", second.to_str().unwrap()]);
    assert!(ok, "{out}");
    let rundir = second.to_str().unwrap();
    let r = ovs_run(&["--datapath", "netdev", guest("probe").to_str().unwrap()], &[("OVS_RUNDIR", rundir)]);
    let line = r.stdout.lines().find(|l| l.starts_with("probe create-bridge")).unwrap_or_default();
    assert!(line.starts_with("probe create-bridge err"), "create-bridge must fail: {r:?}");
    assert!(
        line.contains("br-probe") && line.contains("another ovs-vswitchd"),
        "names bridge and cause: {line}"
    );
    let db = format!("--db=unix:{rundir}/db.sock");
    assert_eq!(sh("ovs-vsctl", &[&db, "list-br"]).trim(), "", "no rows left behind");
    // The first instance is untouched.
    assert_eq!(first.vsctl(&["list-br"]).lines().count(), 1);
}
