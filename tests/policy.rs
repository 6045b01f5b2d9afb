//! Tenant policies run locally (`--policy FILE --tenant NAME`) against the
//! shipped example (examples/policy/tenants.cedar + tenants.json), in
//! dry-run so each case is fast and needs no Docker: the assumed containers
//! carry the labels the policy looks at. `policy check` against good and bad
//! policies. The daemon and the real system are in tests/daemon.rs.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn example(name: &str) -> String {
    root().join("examples/policy").join(name).to_str().unwrap().to_string()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A dry-run of `script` as tenant `tenant` of the example policy, with an
/// audit log in `dir`; containers web-a (tenant=a) and web-b (tenant=b) exist.
fn as_tenant(dir: &tempfile::TempDir, tenant: &str, script: &Path, args: &[&str]) -> Run {
    as_tenant_with(dir, tenant, &["web-a,tenant=a", "web-b,tenant=b"], script, args)
}

fn as_tenant_with(
    dir: &tempfile::TempDir,
    tenant: &str,
    containers: &[&str],
    script: &Path,
    args: &[&str],
) -> Run {
    let audit = dir.path().join("audit.log");
    let policy = example("tenants.cedar");
    let mut a = vec!["--dry-run"];
    for c in containers {
        a.extend(["--assume-container", c]);
    }
    a.extend([
        "--policy",
        policy.as_str(),
        "--tenant",
        tenant,
        "--audit",
        audit.to_str().unwrap(),
        script.to_str().unwrap(),
    ]);
    a.extend_from_slice(args);
    // No OVS socket: the dry-run starts from an empty model.
    ovs_run(&a, &[("OVS_RUNDIR", "/nonexistent")])
}

fn audit_lines(dir: &tempfile::TempDir) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line {l}: {e}")))
        .collect()
}

/// The single denied call in the audit log, checked for what it must say.
fn denied_line(dir: &tempfile::TempDir, action: &str) -> Value {
    let lines = audit_lines(dir);
    let denied: Vec<&Value> = lines.iter().filter(|l| l["decision"] == "deny").collect();
    assert_eq!(denied.len(), 1, "one denied call expected: {lines:#?}");
    let d = denied[0].clone();
    assert_eq!(d["action"], action, "{d:#}");
    assert_eq!(d["tenant"], "a", "{d:#}");
    assert_eq!(d["result"], "denied", "{d:#}");
    assert!(d["script_sha256"].as_str().is_some_and(|s| s.len() == 64), "{d:#}");
    assert!(d["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{d:#}");
    let run = lines.iter().find(|l| l["event"] == "run").expect("a run line");
    assert_eq!(run["status"], "script-error", "{run:#}");
    d
}

#[test]
fn example_policy_checks_clean() {
    let r =
        ovs_run(&["policy", "check", &example("tenants.cedar"), "--tenants", &example("tenants.json")], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    for id in
        ["own-bridges", "own-ports", "own-containers", "vlan-range", "addresses-in-network", "no-host-routes"]
    {
        assert!(r.stdout.contains(id), "{id} missing: {r:?}");
    }
    assert!(r.stdout.contains("2 tenants: a, b"), "{r:?}");
}

#[test]
fn policy_check_rejects_unknown_action_attribute_and_syntax_with_positions() {
    let dir = tmp();
    let cases = [
        // An action the schema does not have.
        ("permit (principal, action == Action::\"add-porrt\", resource);\n", "add-porrt", ":1:"),
        // An attribute no tenant has.
        (
            "permit (principal is Tenant, action == Action::\"add-port\", resource)\nwhen { principal.colour == \"red\" };\n",
            "colour",
            ":2:",
        ),
        // A context attribute that does not exist.
        (
            "// ok so far\nforbid (principal, action == Action::\"set-address\", resource)\nwhen { context.adress.isInRange(ip(\"10.0.0.0/8\")) };\n",
            "adress",
            ":3:",
        ),
        // A syntax error.
        ("permit (principal, action, resource) when { principal.name == };\n", "", ":1:"),
    ];
    for (i, (src, name, pos)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("bad{i}.cedar"));
        std::fs::write(&f, src).unwrap();
        let r = ovs_run(&["policy", "check", f.to_str().unwrap()], &[]);
        assert_eq!(r.code, 1, "case {i} must fail: {r:?}");
        let where_ = format!("bad{i}.cedar{pos}");
        assert!(r.stderr.contains(&where_), "case {i}: no position {where_}: {r:?}");
        assert!(r.stderr.contains(name), "case {i}: {name} not named: {r:?}");
    }
    // The tenants file is checked against the schema too.
    let bad = dir.path().join("tenants.json");
    std::fs::write(
        &bad,
        r#"[{"uid":{"type":"Tenant","id":"a"},"attrs":{"name":"a","uids":[1],"gids":[],"bridges":[],"network":"10.1.0.0/24","vlan_min":1,"vlan_max":2,"colour":"red"},"parents":[]}]"#,
    )
    .unwrap();
    let r = ovs_run(&["policy", "check", &example("tenants.cedar"), "--tenants", bad.to_str().unwrap()], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("colour"), "{r:?}");
}

#[test]
fn tenant_a_within_its_limits_is_allowed() {
    let dir = tmp();
    let r = as_tenant(
        &dir,
        "a",
        &script("attach"),
        &["br-a", "eth1", "web-a", "--ipaddress=10.1.0.5/24", "--gateway=10.1.0.1", "--vlan=150"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("create bridge br-a") && r.stdout.contains("vlan tag 150"), "{r:?}");
    assert!(
        r.stdout.contains("address 10.1.0.5/24") && r.stdout.contains("default route via 10.1.0.1"),
        "{r:?}"
    );
    let lines = audit_lines(&dir);
    let calls: Vec<&Value> = lines.iter().filter(|l| l["event"] == "call").collect();
    assert!(calls.iter().all(|l| l["decision"] == "allow"), "{lines:#?}");
    for action in ["lookup-container", "create-bridge", "add-port", "set-address", "set-route"] {
        let l =
            calls.iter().find(|l| l["action"] == action).unwrap_or_else(|| panic!("{action}: {lines:#?}"));
        assert!(!l["policies"].as_array().unwrap().is_empty(), "{l:#}");
    }
    let run = lines.iter().find(|l| l["event"] == "run").expect("run line");
    assert_eq!(run["status"], "ok");
    assert_eq!(run["exit"], 0);
}

#[test]
fn address_outside_the_network_is_denied_by_its_forbid() {
    let dir = tmp();
    let r = as_tenant(
        &dir,
        "a",
        &script("attach"),
        &["br-a", "eth1", "web-a", "--ipaddress=10.2.0.5/24", "--vlan=150"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("set-address on Container::")
            && r.stderr.contains("denied")
            && r.stderr.contains("forbidden by policy addresses-in-network"),
        "{r:?}"
    );
    let d = denied_line(&dir, "set-address");
    assert_eq!(d["policies"], serde_json::json!(["addresses-in-network"]));
    assert_eq!(d["arguments"]["cidr"], "10.2.0.5/24");
    // Inside the network but a wider subnet is refused too.
    let dir = tmp();
    let r = as_tenant(
        &dir,
        "a",
        &script("attach"),
        &["br-a", "eth1", "web-a", "--ipaddress=10.1.0.5/16", "--vlan=150"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("addresses-in-network"), "{r:?}");
}

/// attach-ports sets the addresses and the default route while it makes the
/// veths, in the add-port: the policy still judges each of them as the
/// set-address and set-route it stands for, so batching is no way around a
/// forbid.
#[test]
fn an_address_inside_attach_ports_is_judged_as_set_address() {
    let dir = tmp();
    let r =
        as_tenant(&dir, "a", &script("attach-many"), &["br-a", "eth1", "--vlan=150", "web-a=10.2.0.5/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("set-address on Container::") && r.stderr.contains("addresses-in-network"),
        "{r:?}"
    );
    let d = denied_line(&dir, "set-address");
    assert_eq!(d["arguments"]["cidr"], "10.2.0.5/24");
    let lines = audit_lines(&dir);
    assert!(!lines.iter().any(|l| l["action"] == "add-port" && l["decision"] == "allow"), "{lines:#?}");

    // Inside the network, the same batch is allowed: the port, its address and route.
    let dir = tmp();
    let r = as_tenant(
        &dir,
        "a",
        &script("attach-many"),
        &["br-a", "eth1", "--vlan=150", "web-a=10.1.0.5/24,10.1.0.1"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("address 10.1.0.5/24, default route via 10.1.0.1"), "{r:?}");
}

#[test]
fn another_tenants_container_is_denied() {
    let dir = tmp();
    let r = as_tenant(&dir, "a", &script("attach"), &["br-a", "eth1", "web-b", "--ipaddress=10.1.0.5/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("lookup-container on container \"web-b\"") && r.stderr.contains("deny by default"),
        "{r:?}"
    );
    assert!(r.stdout.contains("nothing to do"), "nothing may be planned: {r:?}");
    let d = denied_line(&dir, "lookup-container");
    assert_eq!(d["policies"], serde_json::json!([]));
}

/// The id `--assume-container NAME` gives NAME's container (dryrun.rs).
fn assumed_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("assumed-container/{name}").as_bytes()))
}

#[test]
fn denied_lookup_names_only_the_reference_given() {
    // One hex digit of tenant b's container id finds it; the refusal must
    // not tell tenant a its id or name (the audit line, the operator's, does).
    let id = assumed_id("web-b");
    let prefix = &id[..1];
    let dir = tmp();
    let r = as_tenant_with(
        &dir,
        "a",
        &["web-b,tenant=b"],
        &script("attach"),
        &["br-a", "eth1", prefix, "--vlan=150"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&format!("lookup-container on container \"{prefix}\"")), "{r:?}");
    assert!(!r.all().contains(&id[..8]) && !r.all().contains("web-b"), "b's container leaked: {r:?}");
    let d = denied_line(&dir, "lookup-container");
    assert_eq!(d["arguments"]["id"], id, "the operator's audit line names it: {d:#}");
}

#[test]
fn untagged_port_is_a_trunk_and_denied() {
    // No --vlan: OVS makes the port a trunk of every VLAN on the bridge.
    let dir = tmp();
    let r = as_tenant(&dir, "a", &script("attach"), &["br-a", "eth1", "web-a", "--ipaddress=10.1.0.5/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("add-port on Port::") && r.stderr.contains("no-trunks"), "{r:?}");
    let d = denied_line(&dir, "add-port");
    assert_eq!(d["policies"], serde_json::json!(["no-trunks"]));
    // The same port with an access VLAN of a's range is allowed.
    let dir = tmp();
    let r = as_tenant(&dir, "a", &script("attach"), &["br-a", "eth1", "web-a", "--vlan=150"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn arguments_refused_while_parsing_are_audited() {
    // A 10 MiB interface name: refused before the policy is asked, and on record, briefly.
    let dir = tmp();
    let r = as_tenant(&dir, "a", &guest("hostile"), &["hugename"]);
    assert_eq!(r.code, 1, "{r:?}");
    let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let lines = audit_lines(&dir);
    let refused = lines.iter().find(|l| l["action"] == "add-port").unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(refused["result"], "invalid-argument", "{refused:#}");
    assert!(refused["decision"].is_null() && refused["tenant"] == "a", "{refused:#}");
    assert!(refused["error"].as_str().unwrap().contains("interface name"), "{refused:#}");
    assert!(text.len() < 4096, "the audit log must stay short: {} bytes", text.len());
    // A list over its limit: the error names the argument and the limit.
    let dir = tmp();
    let r = as_tenant(&dir, "a", &guest("hostile"), &["bigtrunks", "br-a", "5000"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("options.trunks has 5000 entries; the limit is 4096"), "{r:?}");
    let lines = audit_lines(&dir);
    assert!(
        lines.iter().any(|l| l["action"] == "add-port" && l["result"] == "invalid-argument"),
        "{lines:#?}"
    );
}

#[test]
fn another_bridge_is_denied() {
    let dir = tmp();
    let r = as_tenant(&dir, "a", &script("attach"), &["br-b", "eth1", "web-a", "--ipaddress=10.1.0.5/24"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("create-bridge on Bridge::\"br-b\": no policy permits"), "{r:?}");
    denied_line(&dir, "create-bridge");
}

#[test]
fn vlan_outside_the_range_is_denied() {
    let dir = tmp();
    let r = as_tenant(&dir, "a", &script("attach"), &["br-a", "eth1", "web-a", "--vlan=300"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("add-port on Port::") && r.stderr.contains("vlan-range"), "{r:?}");
    // The bridge the script created before the refusal is rolled back (planned, then undone).
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    let d = denied_line(&dir, "add-port");
    assert_eq!(d["policies"], serde_json::json!(["vlan-range"]));
}

#[test]
fn host_route_is_denied() {
    let dir = tmp();
    let r = as_tenant(&dir, "a", &guest("hostile"), &["host-route", "198.51.100.0/24", "10.1.0.1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("set-route on Host::\"host\"") && r.stderr.contains("no-host-routes"), "{r:?}");
    denied_line(&dir, "set-route");
}

#[test]
fn list_results_are_filtered_per_tenant() {
    // probe lists the containers labelled ovs-run.probe=1: both tenants' are,
    // tenant a is shown only its own.
    let dir = tmp();
    let containers = ["web-a,tenant=a,ovs-run.probe=1", "web-b,tenant=b,ovs-run.probe=1"];
    let r = as_tenant_with(&dir, "a", &containers, &guest("probe"), &[]);
    let listed =
        r.stdout.lines().find(|l| l.starts_with("probe list-by-label")).unwrap_or_else(|| panic!("{r:?}"));
    assert!(listed.contains("web-a") && !listed.contains("web-b"), "{listed}");
    let lines = audit_lines(&dir);
    let list = lines.iter().find(|l| l["action"] == "list-containers").expect("list-containers line");
    assert_eq!(list["decision"], "allow", "{list:#}");
    assert_eq!(list["result"], serde_json::json!({"shown": 1, "hidden": 1}), "{list:#}");
    assert_eq!(list["policies"], serde_json::json!(["own-containers"]), "{list:#}");
    // probe's own bridge is not tenant a's: creating it was denied, and
    // list-ports of it is denied as a whole.
    assert!(
        r.stdout.contains("probe create-bridge err") && r.stdout.contains("probe list-ports err"),
        "{r:?}"
    );
}

#[test]
fn interfaces_a_tenant_may_never_use_are_refused_before_the_run() {
    let dir = tmp();
    let policy = dir.path().join("readonly.cedar");
    std::fs::write(
        &policy,
        "@id(\"see-bridges\")\npermit (principal == Tenant::\"a\", action in [Action::\"list-bridges\", Action::\"list-ports\"], resource);\n",
    )
    .unwrap();
    let tenants = example("tenants.json");
    let audit = dir.path().join("audit.log");
    let r = ovs_run(
        &[
            "--dry-run",
            "--policy",
            policy.to_str().unwrap(),
            "--tenants",
            tenants.as_str(),
            "--tenant",
            "a",
            "--audit",
            audit.to_str().unwrap(),
            script("attach").to_str().unwrap(),
            "br-a",
            "eth1",
            "web-a",
        ],
        &[("OVS_RUNDIR", "/nonexistent")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    for iface in ["ovs-run:net/links", "ovs-run:net/containers"] {
        assert!(r.stderr.contains(iface), "{iface} not listed: {r:?}");
    }
    // bridges and ports are reachable (list-bridges, list-ports): not listed.
    assert!(!r.stderr.contains("ovs-run:net/bridges") && !r.stderr.contains("ovs-run:net/ports"), "{r:?}");
    assert!(std::fs::read_to_string(&audit).unwrap_or_default().is_empty(), "nothing ran, nothing audited");
}

#[test]
fn unknown_tenant_is_a_usage_error() {
    let dir = tmp();
    let r = as_tenant(&dir, "zed", &script("attach"), &["br-a", "eth1", "web-a"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no tenant 'zed'") && r.stderr.contains("a, b"), "{r:?}");
}
