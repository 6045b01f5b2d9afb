//! Sharing vetted scripts: `inspect` reads the capabilities a script imports
//! (checked against the component's import section read independently with
//! wasmparser), metadata in the standard sections (read with wasm-metadata,
//! the library behind `wasm-tools metadata show`), and signatures that try
//! hard to let the wrong bytes run: tampered code, appended sections, unknown
//! signers, forged key ids, wrong pins, unsafe trust stores.
//!
//! No daemon is needed: runs are dry-runs with an assumed container.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::Value;

/// The repository's test trust store (holds keys/test/trusted/ovs-run-test-only.pub).
fn test_trust() -> String {
    root().join("keys/test/trusted").display().to_string()
}

fn test_key() -> String {
    root().join("keys/test/ovs-run-test-only.key").display().to_string()
}

/// ovs-run with exactly `args` (subcommands take no global options).
fn ovs(args: &[&str]) -> Run {
    let t = Instant::now();
    let out = Command::new(bin()).args(args).env_remove("OVS_RUNDIR").output().expect("run ovs-run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t.elapsed(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn inspect_json(path: &Path, trust: Option<&str>) -> Value {
    let mut args = vec!["inspect", "--json"];
    if let Some(t) = trust {
        args.extend(["--trust", t]);
    }
    args.push(s(path));
    let r = ovs(&args);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// A copy of `src` in `dir` to tamper with.
fn copy(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    fs::copy(src, &dst).unwrap();
    dst
}

fn new_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let prefix = dir.join(name);
    let r = ovs(&["key", "generate", s(&prefix)]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = ovs(&["key", "id", s(&prefix.with_extension("pub"))]).stdout.trim().to_string();
    assert_eq!(id.len(), 24, "{id}");
    (prefix.with_extension("key"), id)
}

fn sign(key: &str, script: &Path) {
    let r = ovs(&["sign", "--key", key, s(script)]);
    assert_eq!(r.code, 0, "{r:?}");
}

fn verify(script: &Path) -> Run {
    ovs(&["verify", "--trust", &test_trust(), s(script)])
}

/// A dry-run of `script` with signatures required and a private compile cache.
fn run_required(script: &str, cache: &Path) -> Run {
    ovs(&[
        "--require-signed",
        "--trust",
        &test_trust(),
        "--cache-dir",
        s(cache),
        "-v",
        "--dry-run",
        "--assume-container",
        "web",
        script,
        "br0",
        "eth0",
        "web",
    ])
}

/// Top-level import names of a component, read with wasmparser.
fn component_imports(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.unwrap() {
            wasmparser::Payload::ModuleSection { .. } | wasmparser::Payload::ComponentSection { .. } => {
                depth += 1
            }
            wasmparser::Payload::End(_) => depth -= 1,
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import.unwrap().name.name.to_string());
                }
            }
            _ => {}
        }
    }
    names
}

/// The byte range of the first code section (inside the component's core module).
fn code_section(bytes: &[u8]) -> std::ops::Range<usize> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::CodeSectionStart { range, .. } = payload.unwrap() {
            return range;
        }
    }
    panic!("no code section");
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_lists_exactly_the_capabilities_each_script_imports() {
    let expected: &[(&str, &[&str])] = &[
        ("attach", &["bridges", "ports", "links", "containers", "log", "types"]),
        ("detach", &["ports", "log", "types"]),
        ("detach-all", &["ports", "log", "types"]),
        ("set-vlan", &["ports", "log", "types"]),
        ("seed-demo", &["bridges", "ports", "links", "routes", "containers", "diagnostics", "log", "types"]),
        ("mesh", &["bridges", "tunnels", "log", "types"]),
    ];
    for (name, caps) in expected {
        let path = script(name);
        let v = inspect_json(&path, None);
        let mut got: Vec<&str> =
            v["capabilities"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        let mut want = caps.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{name}");

        // The same set, read straight from the component's import section.
        let bytes = fs::read(&path).unwrap();
        let mut raw: Vec<String> = component_imports(&bytes)
            .into_iter()
            .filter_map(|n| n.strip_prefix("ovs-run:net/").map(|n| n.split('@').next().unwrap().to_string()))
            .collect();
        raw.sort_unstable();
        assert_eq!(raw, want, "{name}: wasmparser's view");

        // Every import is accounted for, and all are granted.
        let imports = v["imports"].as_array().unwrap();
        assert_eq!(imports.len(), component_imports(&bytes).len(), "{name}");
        assert!(imports.iter().all(|i| i["kind"] != "not-granted"), "{name}: {imports:?}");
        assert_eq!(v["exports"], serde_json::json!(["run"]), "{name}");
        assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(v["size"].as_u64().unwrap() as usize, bytes.len());
    }
}

#[test]
fn inspect_text_is_a_review_screen() {
    let path = script("attach");
    let r = ovs(&["inspect", "--trust", &test_trust(), s(&path)]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = &r.stdout;
    for want in [
        "name         attach",
        "Signatures: TRUSTED",
        "Capabilities (the script can do nothing else):",
        "uses: create-bridge",
        "Usage (from the script):",
        "Usage: attach BRIDGE INTERFACE CONTAINER",
        "import ovs-run:net/bridges@0.1.0;",
        "export run: func(args: list<string>) -> result<_, string>;",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("diagnostics"), "attach does not import diagnostics:\n{out}");
    let sha = sha256_hex(&fs::read(&path).unwrap());
    assert!(out.contains(&format!("{}@sha256:{sha}", path.display())), "{out}");
}

#[test]
fn inspect_shows_ungranted_imports_and_compiles_nothing() {
    let g = guest("ungranted");
    let v = inspect_json(&g, None);
    let bad: Vec<&Value> =
        v["imports"].as_array().unwrap().iter().filter(|i| i["kind"] == "not-granted").collect();
    assert!(bad.iter().any(|i| i["name"].as_str().unwrap().starts_with("ovs-run:evil/raw-socket")), "{v}");
    let r = ovs(&["inspect", s(&g)]);
    assert!(r.stdout.contains("NOT GRANTED"), "{r:?}");

    let r = ovs(&["inspect", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a WebAssembly component"), "{r:?}");
}

#[test]
fn hostile_metadata_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(&guest("probe"), dir.path(), "probe.wasm");
    let evil = "fine\x1b[2J\x1b[1;1Hall clear\u{202E}txt.exe";
    let r = ovs(&["metadata", "set", "--description", evil, "--usage", "u\x07\x1b]0;title\x07", s(&p)]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = ovs(&["inspect", s(&p)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.contains('\x1b') && !r.stdout.contains('\x07') && !r.stdout.contains('\u{202E}'),
        "{r:?}"
    );
    assert!(r.stdout.contains("fine\\u{1b}[2J"), "{r:?}");
}

// ---------------------------------------------------------------- metadata

#[test]
fn every_script_carries_standard_metadata_usage_and_the_test_signature() {
    for name in ["attach", "detach", "detach-all", "set-vlan", "seed-demo"] {
        let path = script(name);
        let bytes = fs::read(&path).unwrap();
        // What `wasm-tools metadata show` reads.
        let payload = wasm_metadata::Payload::from_binary(&bytes).unwrap();
        let m = payload.metadata();
        assert_eq!(m.name.as_deref(), Some(name));
        assert_eq!(m.version.as_ref().map(|v| v.to_string()).as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert!(
            m.description.as_ref().is_some_and(|d| d.to_string().len() > 20),
            "{name}: {:?}",
            m.description
        );
        assert!(m.authors.is_some(), "{name}");
        assert_eq!(m.licenses.as_ref().map(|l| l.to_string()).as_deref(), Some("Apache-2.0"));

        let v = inspect_json(&path, Some(&test_trust()));
        let usage = v["metadata"]["usage"].as_str().unwrap_or_default();
        assert!(usage.starts_with(&format!("Usage: {name}")), "{name}: {usage:?}");
        assert_eq!(v["verdict"], "trusted", "{name}: {v}");
        assert_eq!(verify(&path).code, 0, "{name}");
    }
}

#[test]
fn metadata_set_takes_explicit_values_and_refuses_signed_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(&guest("probe"), dir.path(), "probe.wasm");
    let r = ovs(&[
        "metadata",
        "set",
        "--name",
        "probe-x",
        "--version",
        "2.3.4",
        "--source",
        "https://example.com/probe",
        "--authors",
        "Alice",
        s(&p),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let payload = wasm_metadata::Payload::from_binary(&fs::read(&p).unwrap()).unwrap();
    let m = payload.metadata();
    assert_eq!(m.name.as_deref(), Some("probe-x"));
    assert_eq!(m.version.as_ref().unwrap().to_string(), "2.3.4");
    assert_eq!(m.source.as_ref().unwrap().to_string(), "https://example.com/probe");
    assert_eq!(m.authors.as_ref().unwrap().to_string(), "Alice");

    let r = ovs(&["metadata", "set", "--source", "not a url", s(&p)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("'not a url'"), "{r:?}");

    let signed = copy(&script("detach"), dir.path(), "detach.wasm");
    let before = fs::read(&signed).unwrap();
    let r = ovs(&["metadata", "set", "--version", "9", s(&signed)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("invalidate the signatures"), "{r:?}");
    assert_eq!(fs::read(&signed).unwrap(), before, "a refused change leaves the file alone");
}

// ---------------------------------------------------------------- signatures

#[test]
fn sign_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unsigned = guest("probe");
    let before = fs::read(&unsigned).unwrap();
    let out = dir.path().join("probe-signed.wasm");
    let r = ovs(&["sign", "--key", &test_key(), "-o", s(&out), s(&unsigned)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(fs::read(&unsigned).unwrap(), before, "-o leaves the input alone");

    let r = verify(&out);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("ok: signed by trusted key"), "{r:?}");
    let r = verify(&unsigned);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not signed"), "{r:?}");

    // The signed component still runs.
    let cache = tempfile::tempdir().unwrap();
    let r = ovs(&[
        "--require-signed",
        "--trust",
        &test_trust(),
        "--cache-dir",
        s(cache.path()),
        "--dry-run",
        s(&out),
    ]);
    assert_eq!(r.code, 0, "{r:?}");

    // Signing twice with one key is refused, not duplicated.
    let r = ovs(&["sign", "--key", &test_key(), s(&out)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("already signed by key"), "{r:?}");
}

#[test]
fn one_flipped_byte_in_the_code_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(&script("attach"), dir.path(), "attach.wasm");
    let mut bytes = fs::read(&p).unwrap();
    let code = code_section(&bytes);
    bytes[code.start + code.len() / 2] ^= 0x01;
    fs::write(&p, &bytes).unwrap();

    let r = verify(&p);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("modified after it was signed"), "{r:?}");
    let v = inspect_json(&p, Some(&test_trust()));
    assert_eq!(v["verdict"], "modified", "{v}");

    let cache = tempfile::tempdir().unwrap();
    let r = run_required(s(&p), cache.path());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refused") && r.stderr.contains("modified after it was signed"), "{r:?}");
}

#[test]
fn a_section_appended_after_signing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = copy(&script("detach"), dir.path(), "detach.wasm");
    let mut bytes = fs::read(&p).unwrap();
    // A custom section named "x" holding "hi": harmless to run, still not what was signed.
    bytes.extend_from_slice(&[0, 4, 1, b'x', b'h', b'i']);
    fs::write(&p, &bytes).unwrap();
    let r = verify(&p);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("modified after it was signed"), "{r:?}");
}

#[test]
fn a_signature_by_an_unknown_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, id) = new_key(dir.path(), "mallory");
    let p = copy(&guest("probe"), dir.path(), "probe.wasm");
    sign(s(&key), &p);
    let r = verify(&p);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("signed only by keys that are not in") && r.stderr.contains(&id), "{r:?}");

    let cache = tempfile::tempdir().unwrap();
    let r = run_required(s(&p), cache.path());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&id), "{r:?}");
}

#[test]
fn a_forged_key_id_does_not_make_a_signature_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, id) = new_key(dir.path(), "mallory");
    let trusted_id = ovs(&["key", "id", &test_key()]).stdout.trim().to_string();
    let p = copy(&guest("probe"), dir.path(), "probe.wasm");
    sign(s(&key), &p);
    // Claim the trusted key's id in mallory's signature.
    let mut bytes = fs::read(&p).unwrap();
    let (from, to) = (hex_bytes(&id), hex_bytes(&trusted_id));
    let at = bytes.windows(from.len()).position(|w| w == from).expect("key id in the signature");
    bytes[at..at + to.len()].copy_from_slice(&to);
    fs::write(&p, &bytes).unwrap();

    let r = verify(&p);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not verify") && r.stderr.contains(&trusted_id), "{r:?}");
}

#[test]
fn two_signatures_one_trusted_is_accepted_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    let (other, other_id) = new_key(dir.path(), "reviewer");
    let trusted_id = ovs(&["key", "id", &test_key()]).stdout.trim().to_string();

    // The trusted signature first (scripts/ are signed by make build), then another.
    let a = copy(&script("set-vlan"), dir.path(), "a.wasm");
    sign(s(&other), &a);
    // Another key first, then the trusted one.
    let b = copy(&guest("probe"), dir.path(), "b.wasm");
    sign(s(&other), &b);
    sign(&test_key(), &b);

    for p in [&a, &b] {
        let r = verify(p);
        assert_eq!(r.code, 0, "{r:?}");
        let v = inspect_json(p, Some(&test_trust()));
        assert_eq!(v["verdict"], "trusted", "{v}");
        let sigs = v["signatures"]["signatures"].as_array().unwrap();
        assert_eq!(sigs.len(), 2, "{v}");
        let status = |id: &str| sigs.iter().find(|s| s["key_id"] == id).map(|s| s["status"].clone());
        assert_eq!(status(&trusted_id), Some("trusted".into()), "{v}");
        assert_eq!(status(&other_id), Some("unknown-key".into()), "{v}");
    }
}

#[test]
fn require_signed_refuses_an_unsigned_script_before_compiling_it() {
    let cache = tempfile::tempdir().unwrap();
    let unsigned = guest("probe");
    let r = run_required(s(&unsigned), cache.path());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refused: it is not signed"), "{r:?}");
    assert!(!r.stderr.contains("compile cache"), "compiled before refusing: {r:?}");
    assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 0, "a cache entry was written: {r:?}");

    // The same run of a signed script compiles and fills the cache: the check above can see it.
    let r = run_required(s(&script("attach")), cache.path());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("signed by trusted key") && r.stderr.contains("compile cache"), "{r:?}");
    assert!(fs::read_dir(cache.path()).unwrap().count() > 0, "{r:?}");
}

#[test]
fn without_require_signed_unsigned_scripts_still_run() {
    let r = ovs(&["--no-cache", "--dry-run", s(&guest("probe"))]);
    assert_eq!(r.code, 0, "{r:?}");
}

// ---------------------------------------------------------------- pins

#[test]
fn a_digest_pin_runs_exactly_the_reviewed_bytes() {
    let path = script("detach");
    let sha = sha256_hex(&fs::read(&path).unwrap());
    let args = |pinned: &str| -> Run { ovs(&["--no-cache", "--dry-run", pinned, "br0", "eth0", "web"]) };

    let r = args(&format!("{}@sha256:{sha}", path.display()));
    assert_eq!(r.code, 0, "{r:?}");

    let wrong = format!("{}@sha256:{}", path.display(), "ab".repeat(32));
    let r = args(&wrong);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("its sha256 is {sha}, not the pinned {}", "ab".repeat(32))), "{r:?}");
    assert!(!r.stdout.contains("Plan"), "{r:?}");

    let r = args(&format!("{}@sha256:1234", path.display()));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("'1234' is not a sha256 digest"), "{r:?}");

    let r = ovs(&["verify", "--trust", &test_trust(), &wrong]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = ovs(&["inspect", &wrong]);
    assert_eq!(r.code, 1, "{r:?}");
}

// ---------------------------------------------------------------- trust store and keys

#[test]
fn trust_stores_others_can_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("trusted");
    fs::create_dir(&store).unwrap();
    fs::copy(root().join("keys/test/trusted/ovs-run-test-only.pub"), store.join("t.pub")).unwrap();
    let attach = script("attach");
    assert_eq!(ovs(&["verify", "--trust", s(&store), s(&attach)]).code, 0);

    fs::set_permissions(&store, fs::Permissions::from_mode(0o777)).unwrap();
    let r = ovs(&["verify", "--trust", s(&store), s(&attach)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("writable by group or others"), "{r:?}");

    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(store.join("t.pub"), fs::Permissions::from_mode(0o666)).unwrap();
    let r = ovs(&["verify", "--trust", s(&store), s(&attach)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("t.pub") && r.stderr.contains("writable by group or others"), "{r:?}");

    let r = ovs(&["verify", "--trust", s(&dir.path().join("missing")), s(&attach)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not exist"), "{r:?}");

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let r = ovs(&["verify", "--trust", s(&empty), s(&attach)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("holds no public keys"), "{r:?}");
}

#[test]
fn key_generate_keeps_the_secret_private_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (key, id) = new_key(dir.path(), "k");
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(ovs(&["key", "id", s(&key)]).stdout.trim(), id, "secret and public key share the id");
    let r = ovs(&["key", "generate", s(&dir.path().join("k"))]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("exists"), "{r:?}");
    let r = ovs(&["key", "list", "--trust", &test_trust()]);
    assert!(r.stdout.contains("ovs-run-test-only.pub"), "{r:?}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn hex_bytes(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
