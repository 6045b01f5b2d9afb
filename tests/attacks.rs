//! Attack tests: what a hostile user, tenant or guest tries, and that it is
//! refused. Each test names the attack and checks the system afterwards
//! through an independent view (ovs-vsctl, ip).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use ovs_run::backend::Op;
use ovs_run::journal::store::{Header, NsId, Record};
use ovs_run::types::IfName;

/// uid and gid of a test user, created (system user, no home) when missing.
fn user(name: &str) -> (u32, u32) {
    if !try_sh("id", &["-u", name]).0 {
        // Two test threads may race to create it: the loser's useradd fails.
        let _ = try_sh("useradd", &["-M", "-r", "-s", "/usr/sbin/nologin", name]);
    }
    let uid = sh("id", &["-u", name]).trim().parse().unwrap();
    let gid = sh("id", &["-g", name]).trim().parse().unwrap();
    (uid, gid)
}

/// Issue 15 item 7: a user plants a journal in a directory it owns (or one
/// anybody can write) whose "undo" deletes a bridge; root's `recover` with
/// that directory refuses it and deletes nothing (before the fix it deleted
/// the bridge). Creating a run's journal there is refused the same way.
#[test]
fn a_journal_planted_in_a_user_owned_directory_is_refused() {
    let (ovs, br) = Ovs::with_bridge("ta");
    let (uid, gid) = user("ovsrt-a");
    let dir = tempfile::tempdir().unwrap();
    let jd = dir.path().join("journal");
    std::fs::create_dir(&jd).unwrap();
    let mut h = Header::new(
        "planted.wasm",
        format!("unix:{}/db.sock", ovs.rundir()),
        "unix:///nonexistent/docker.sock".into(),
        std::time::Duration::from_secs(5),
    );
    h.pid = 1;
    h.netns = NsId::current().ok();
    let bridge = IfName::parse(&br).unwrap();
    let create = Op::CreateBridge {
        name: bridge.clone(),
        datapath: ovs_run::types::Datapath::Netdev,
        may_exist: false,
    };
    let lines = [
        serde_json::to_string(&h).unwrap(),
        serde_json::to_string(&Record::Begin { idx: 0, op: create }).unwrap(),
        serde_json::to_string(&Record::Done {
            idx: 0,
            undo: vec![Op::DeleteBridge { name: bridge, if_exists: true }],
            reversible: true,
        })
        .unwrap(),
    ];
    let path = jd.join("run-1-1.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    let jd_s = jd.to_str().unwrap();

    // Owned by the user.
    std::os::unix::fs::chown(&jd, Some(uid), Some(gid)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("owned by uid {uid}")) && r.stderr.contains("refusing"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");
    // A run does not write its journal there either.
    let run = ovs.run(&["--journal-dir", jd_s, guest("hostile").to_str().unwrap(), "env"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("refusing"), "{run:?}");

    // Root's, but writable by everybody.
    std::os::unix::fs::chown(&jd, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&jd, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("writable by group or others"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");

    // Root's and private, but the planted file is the user's.
    std::fs::set_permissions(&jd, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = ovs_run(&["recover", "--journal-dir", jd_s], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a regular file owned by us"), "{r:?}");
    assert!(ovs.vsctl(&["list-br"]).lines().any(|l| l == br), "bridge deleted: {r:?}");
    assert!(path.exists(), "the planted file is left for a human");
}
