//! The dry-run model and the real system agree: random sequences of changes
//! are applied to both (model first, so its lazy copy of the real state is
//! taken before the real change), every call must succeed or fail alike, and
//! at the end both must show the same bridges, ports, links, addresses and
//! routes. Real side: a private OVS and two network namespaces.
//!
//! What the kernel adds by itself and the model does not pretend to know is
//! left out of the comparison: IPv6 link-local addresses and the connected
//! routes of a subnet.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ovs_run::backend::dryrun::DryRunBackend;
use ovs_run::backend::system::{SystemBackend, SystemConfig};
use ovs_run::backend::{host_port_name, Backend, Op};
use ovs_run::types::{Cidr, Datapath, IfName, Mtu, NetnsName, RouteSpec, Target};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Step {
    CreateBridge,
    DeleteBridge,
    AddPort { ns: usize, ifname: usize, mtu: Option<u32> },
    DelPort { ns: usize, ifname: usize },
    AddAddress { ns: usize, ifname: usize, host: u8 },
    DelAddress { ns: usize, ifname: usize, host: u8 },
    SetMtu { ns: usize, ifname: usize, mtu: u32 },
    SetUp { ns: usize, ifname: usize, up: bool },
    AddRoute { ns: usize, ifname: usize },
    DelRoute { ns: usize, ifname: usize },
}

fn step() -> impl Strategy<Value = Step> {
    let ns = 0..2usize;
    let ifn = 0..2usize;
    prop_oneof![
        1 => Just(Step::CreateBridge),
        1 => Just(Step::DeleteBridge),
        4 => (ns.clone(), ifn.clone(), prop::option::of(prop_oneof![Just(1400u32), Just(9000)]))
            .prop_map(|(ns, ifname, mtu)| Step::AddPort { ns, ifname, mtu }),
        2 => (ns.clone(), ifn.clone()).prop_map(|(ns, ifname)| Step::DelPort { ns, ifname }),
        3 => (ns.clone(), ifn.clone(), 2u8..5).prop_map(|(ns, ifname, host)| Step::AddAddress { ns, ifname, host }),
        1 => (ns.clone(), ifn.clone(), 2u8..5).prop_map(|(ns, ifname, host)| Step::DelAddress { ns, ifname, host }),
        1 => (ns.clone(), ifn.clone(), prop_oneof![Just(1300u32), Just(1500)])
            .prop_map(|(ns, ifname, mtu)| Step::SetMtu { ns, ifname, mtu }),
        1 => (ns.clone(), ifn.clone(), any::<bool>()).prop_map(|(ns, ifname, up)| Step::SetUp { ns, ifname, up }),
        2 => (ns.clone(), ifn.clone()).prop_map(|(ns, ifname)| Step::AddRoute { ns, ifname }),
        1 => (ns, ifn).prop_map(|(ns, ifname)| Step::DelRoute { ns, ifname }),
    ]
}

struct World {
    bridge: IfName,
    targets: [Target; 2],
}

fn n(s: &str) -> IfName {
    IfName::parse(s).unwrap()
}

impl World {
    fn op(&self, s: &Step) -> Op {
        let ifname = |i: usize| n(["eth0", "eth1"][i]);
        let t = |ns: usize| self.targets[ns].clone();
        let cidr = |ifname: usize, host: u8| Cidr::parse(&format!("10.8{ifname}.0.{host}/24")).unwrap();
        let route = |ifname: usize| RouteSpec {
            destination: Some(Cidr::parse(&format!("10.9{ifname}.0.0/16")).unwrap()),
            via: Some(format!("10.8{ifname}.0.1").parse().unwrap()),
            device: Some(n(["eth0", "eth1"][ifname])),
        };
        match *s {
            Step::CreateBridge => {
                Op::CreateBridge { name: self.bridge.clone(), datapath: Datapath::Netdev, may_exist: true }
            }
            Step::DeleteBridge => Op::DeleteBridge { name: self.bridge.clone(), if_exists: true },
            Step::AddPort { ns, ifname: i, mtu } => Op::AddPort {
                bridge: self.bridge.clone(),
                port: host_port_name(&t(ns), &ifname(i)),
                target: t(ns),
                ifname: ifname(i),
                mtu: mtu.map(|m| Mtu::new(m).unwrap()),
                mac: None,
                vlan: None,
                trunks: vec![],
                // The bridge is netdev: as the ports capability decides.
                sw_checksum: true,
                iface_id: None,
                addressing: Default::default(),
            },
            Step::DelPort { ns, ifname: i } => {
                Op::DelPort { bridge: self.bridge.clone(), port: host_port_name(&t(ns), &ifname(i)) }
            }
            Step::AddAddress { ns, ifname: i, host } => {
                Op::AddAddress { target: t(ns), ifname: ifname(i), cidr: cidr(i, host) }
            }
            Step::DelAddress { ns, ifname: i, host } => {
                Op::DelAddress { target: t(ns), ifname: ifname(i), cidr: cidr(i, host) }
            }
            Step::SetMtu { ns, ifname: i, mtu } => {
                Op::SetMtu { target: t(ns), ifname: ifname(i), mtu: Mtu::new(mtu).unwrap() }
            }
            Step::SetUp { ns, ifname: i, up } => Op::SetLinkState { target: t(ns), ifname: ifname(i), up },
            Step::AddRoute { ns, ifname: i } => Op::AddRoute { target: t(ns), route: route(i) },
            Step::DelRoute { ns, ifname: i } => Op::DelRoute { target: t(ns), route: route(i) },
        }
    }
}

/// What both sides must agree on, normalised.
async fn observe(b: &dyn Backend, w: &World) -> String {
    let mut out = String::new();
    match b.list_ports(&w.bridge).await {
        Ok(ports) => {
            let mut ps: Vec<String> = ports.iter().map(|p| format!("{} tag={:?}", p.name, p.tag)).collect();
            ps.sort();
            out += &format!("bridge {}: {ps:?}\n", w.bridge);
        }
        Err(e) => out += &format!("bridge {}: {:?}\n", w.bridge, e.kind),
    }
    for t in &w.targets {
        let mut links: Vec<String> = b
            .list_links(t, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.name != "lo")
            .map(|l| {
                let mut a: Vec<String> = l
                    .addresses
                    .iter()
                    .filter(|c| !c.to_string().starts_with("fe80:"))
                    .map(|c| c.to_string())
                    .collect();
                a.sort();
                format!("{} mtu={} up={} {a:?}", l.name, l.mtu, l.up)
            })
            .collect();
        links.sort();
        let mut routes: Vec<String> = b
            .list_routes(t)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.via.is_some())
            .map(|r| r.to_string())
            .collect();
        routes.sort();
        out += &format!("{t}: {links:?} {routes:?}\n");
    }
    out
}

#[test]
fn dry_run_model_and_real_system_agree() {
    let ovs = Ovs::start();
    let (a, b) = (Netns::new(), Netns::new());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut runner = TestRunner::new(Config { cases: 40, failure_persistence: None, ..Config::default() });
    let case = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&prop::collection::vec(step(), 1..14), |steps| {
        let i = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let w = World {
            bridge: n(&unique("mc")),
            targets: [
                Target::Netns { name: NetnsName::parse(&a.name).unwrap() },
                Target::Netns { name: NetnsName::parse(&b.name).unwrap() },
            ],
        };
        rt.block_on(async {
            let sys: Arc<dyn Backend> = Arc::new(SystemBackend::new(SystemConfig {
                ovsdb: format!("unix:{}/db.sock", ovs.rundir()).parse().unwrap(),
                docker: "unix:///nonexistent".into(),
                apply_timeout: Duration::from_secs(10),
                ovn_nb: None,
            }));
            let model = DryRunBackend::new(Some(sys.clone()), vec![]);
            let compared = async {
                for s in &steps {
                    let op = w.op(s);
                    let m = model.apply(&op).await;
                    let r = sys.apply(&op).await;
                    prop_assert_eq!(
                        m.as_ref().map(|a| a.changed).map_err(|e| e.kind),
                        r.as_ref().map(|a| a.changed).map_err(|e| e.kind),
                        "case {} step {:?}: model {:?} vs system {:?}",
                        i,
                        s,
                        m,
                        r
                    );
                }
                Ok((observe(&model, &w).await, observe(sys.as_ref(), &w).await))
            }
            .await;
            // Leave the namespaces and OVS empty for the next case, also
            // after a failed one: what it left would fail every later case
            // (and every shrinking step) for a reason of its own.
            for ns in 0..2 {
                for ifname in 0..2 {
                    let _ = sys.apply(&w.op(&Step::DelPort { ns, ifname })).await;
                }
            }
            let _ = sys.apply(&w.op(&Step::DeleteBridge)).await;
            let (mo, so) = compared?;
            prop_assert_eq!(mo, so, "case {} after {:?}", i, steps);
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
