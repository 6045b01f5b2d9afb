//! Sharing vetted scripts through an OCI registry, against a real one:
//! Debian's `docker-registry` (Distribution 2.8), started by each test on
//! 127.0.0.1 with a temporary storage root (and htpasswd basic auth for the
//! auth test), killed on drop. The registry is looked at independently with
//! curl (the manifest JSON, its media types) and through its storage root
//! (to tamper with a blob as a compromised registry would).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sha2::Digest as _;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A Distribution registry on 127.0.0.1:random port; killed (and its storage removed) on drop.
struct Registry {
    child: Option<Child>,
    addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// With `auth`, only USER:PASSWORD may pull or push (htpasswd, bcrypt).
    fn start_with(auth: Option<(&str, &str)>) -> Self {
        for t in ["docker-registry", "htpasswd", "curl"] {
            let (ok, _) = try_sh("sh", &["-c", &format!("command -v {t}")]);
            assert!(ok, "{t} is missing: run `make deps` (tests/support/install-deps.sh)");
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("storage").display()
        );
        if let Some((user, pass)) = auth {
            let file = dir.path().join("htpasswd");
            fs::write(&file, sh("htpasswd", &["-Bbn", user, pass])).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ovs-run-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        fs::write(&cfg, config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", s(&cfg)])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let reg = Self { child: Some(child), addr, dir };
        let t = Instant::now();
        loop {
            let code = reg.http_code("GET", "/v2/");
            if code == "200" || code == "401" {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(15), "registry did not start: {}", reg.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn http_code(&self, method: &str, path: &str) -> String {
        let url = format!("http://{}{path}", self.addr);
        try_sh("curl", &["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, &url])
            .1
            .trim()
            .to_string()
    }

    /// GET a manifest as the OCI media type: (body, Content-Type).
    fn manifest(&self, repo: &str, reference: &str) -> (Vec<u8>, String) {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let headers = self.dir.path().join("headers");
        let out = Command::new("curl")
            .args(["-sf", "-H", &format!("Accept: {OCI_MANIFEST}"), "-D", s(&headers), &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "GET {url} failed");
        let h = fs::read_to_string(&headers).unwrap();
        let ct = h
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_string()))
            .unwrap_or_default();
        (out.stdout, ct)
    }

    /// PUT a manifest by hand, as another client would.
    fn put_manifest(&self, repo: &str, tag: &str, body: &[u8]) {
        let file = self.dir.path().join("manifest.json");
        fs::write(&file, body).unwrap();
        let url = format!("http://{}/v2/{repo}/manifests/{tag}", self.addr);
        let code = sh(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {OCI_MANIFEST}"),
                "--data-binary",
                &format!("@{}", file.display()),
                &url,
            ],
        );
        assert_eq!(code.trim(), "201", "PUT {url}: {}", self.log());
    }

    /// The file the registry serves blob `hex` from.
    fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir.path().join(format!("storage/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private cache (the store is its oci/ folder), journal and Docker config for one test.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("docker")).unwrap();
        Self { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn store(&self) -> PathBuf {
        self.cache().join("oci")
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// ovs-run with exactly `args`, this host's cache, journal and Docker config.
    fn ovs(&self, args: &[&str]) -> Run {
        let t = Instant::now();
        let out = Command::new(bin())
            .args(args)
            .env_remove("OVS_RUNDIR")
            .env("OVS_RUN_CACHE_DIR", self.cache())
            .env("OVS_RUN_JOURNAL_DIR", self.dir.path().join("journal"))
            .env("DOCKER_CONFIG", self.docker_config())
            .output()
            .expect("run ovs-run");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: t.elapsed(),
        }
    }

    fn push(&self, file: &Path, reference: &str) -> String {
        let r = self.ovs(&["push", "--insecure", s(file), reference]);
        assert_eq!(r.code, 0, "{r:?}");
        digest_line(&r)
    }

    fn pull(&self, reference: &str) -> Run {
        self.ovs(&["pull", "--insecure", reference])
    }

    /// Every file under the store (blobs and refs), relative.
    fn store_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        walk(&self.store(), &self.store(), &mut out);
        out.sort();
        out
    }
}

/// The one stdout line of push/pull: `sha256:HEX`, returned as HEX.
fn digest_line(r: &Run) -> String {
    let line = r.stdout.trim();
    let hex = line.strip_prefix("sha256:").unwrap_or_else(|| panic!("no digest printed: {r:?}"));
    assert_eq!(hex.len(), 64, "{r:?}");
    hex.to_string()
}

fn test_trust() -> String {
    root().join("keys/test/trusted").display().to_string()
}

/// A dry-run of attach from `reference`, signatures required.
fn attach_dry_run(host: &Host, reference: &str, trust: &str) -> Run {
    host.ovs(&[
        "--insecure",
        "--require-signed",
        "--trust",
        trust,
        "--dry-run",
        "--assume-container",
        "web",
        reference,
        "br0",
        "eth0",
        "web",
    ])
}

#[test]
fn push_pull_inspect_and_run_by_tag_and_by_digest() {
    let reg = Registry::start();
    let host = Host::new();
    let attach = script("attach");
    let bytes = fs::read(&attach).unwrap();
    let tag_ref = format!("{}/netops/attach:1.2.0", reg.addr);
    let digest = host.push(&attach, &tag_ref);

    // The layout, read by hand: the Wasm OCI artifact, the component's exact bytes as its layer.
    let (body, content_type) = reg.manifest("netops/attach", "1.2.0");
    assert_eq!(content_type, OCI_MANIFEST);
    assert_eq!(sha256(&body), digest, "the printed digest is the manifest's");
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], format!("sha256:{}", sha256(&bytes)));
    assert_eq!(layers[0]["size"], bytes.len());
    let ann = &m["annotations"];
    assert_eq!(ann["org.opencontainers.image.title"], "attach", "{m}");
    assert!(ann["org.opencontainers.image.version"].is_string(), "{m}");
    assert!(ann["org.opencontainers.image.description"].is_string(), "{m}");
    // The config blob is what the manifest says, and names the layer.
    let config_digest = m["config"]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap();
    let config: Value = serde_json::from_slice(&fs::read(reg.blob_file(config_digest)).unwrap()).unwrap();
    assert_eq!(config["layerDigests"][0], format!("sha256:{}", sha256(&bytes)));

    // Pull: prints the digest; again: the same, nothing new stored.
    let r = host.pull(&tag_ref);
    assert_eq!((r.code, digest_line(&r)), (0, digest.clone()), "{r:?}");
    let files = host.store_files();
    let r = host.pull(&format!("oci://{tag_ref}"));
    assert_eq!((r.code, digest_line(&r)), (0, digest.clone()), "{r:?}");
    assert!(!r.stderr.contains("moved"), "{r:?}");
    assert_eq!(host.store_files(), files, "a second pull stores nothing new");
    // The layer is stored as the exact bytes, under their sha256.
    let stored = host.store().join("blobs/sha256").join(sha256(&bytes));
    assert_eq!(fs::read(&stored).unwrap(), bytes);

    // Store permissions: directories 0700, files 0600, ours.
    for f in &files {
        let meta = fs::metadata(host.store().join(f)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{f}");
    }
    for d in ["", "blobs", "blobs/sha256", "refs"] {
        assert_eq!(fs::metadata(host.store().join(d)).unwrap().mode() & 0o777, 0o700, "{d}");
    }
    let r = host.ovs(&["pull", "--list"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("{tag_ref} ")) && r.stdout.contains("attach"), "{r:?}");

    // Run by tag: the resolved digest is printed; signatures judged on the bytes.
    let r = attach_dry_run(&host, &format!("oci://{tag_ref}"), &test_trust());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Plan"), "{r:?}");
    assert!(r.stderr.contains(&format!("@sha256:{digest}")), "the digest is printed: {r:?}");
    // By digest.
    let pinned = format!("oci://{}/netops/attach@sha256:{digest}", reg.addr);
    let r = attach_dry_run(&host, &pinned, &test_trust());
    assert_eq!(r.code, 0, "{r:?}");
    // The compile cache key stays the component's sha256: one entry, shared with the file.
    let entries: Vec<String> = fs::read_dir(host.cache())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with(&sha256(&bytes)), "{entries:?}");

    // Inspect: the review screen of the pulled bytes.
    let r = host.ovs(&["inspect", "--json", "--trust", &test_trust(), &format!("oci://{tag_ref}")]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["sha256"], sha256(&bytes), "{v}");
    assert_eq!(v["path"], format!("oci://{tag_ref}"));
    assert!(r.stdout.contains("trusted"), "{r:?}");

    // A real run of the noop guest, by tag, through the store.
    let noop_ref = format!("{}/test/noop:v1", reg.addr);
    host.push(&guest("noop"), &noop_ref);
    let r = host.ovs(&["--insecure", &format!("oci://{noop_ref}")]);
    assert_eq!(r.code, 0, "{r:?}");

    // A tag that moves is reported at the next pull.
    host.push(&guest("noop"), &tag_ref);
    let r = host.pull(&tag_ref);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("tag {tag_ref} moved: it was sha256:{digest}")), "{r:?}");
}

#[test]
fn a_stored_reference_runs_offline_and_a_missing_one_says_why() {
    let mut reg = Registry::start();
    let host = Host::new();
    let tag_ref = format!("{}/test/noop:v1", reg.addr);
    let digest = host.push(&guest("noop"), &tag_ref);
    assert_eq!(host.pull(&tag_ref).code, 0);
    reg.stop();
    for r in [format!("oci://{tag_ref}"), format!("oci://{}/test/noop@sha256:{digest}", reg.addr)] {
        let run = host.ovs(&["--insecure", "--dry-run", &r]);
        assert_eq!(run.code, 0, "{r}: {run:?}");
    }
    // Another host, nothing stored, registry down: a clear error.
    let other = Host::new();
    let r = other.ovs(&["--insecure", "--dry-run", &format!("oci://{tag_ref}")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("cannot reach registry {}", reg.addr)), "{r:?}");
    // Without --insecure, the hint.
    let r = other.ovs(&["--dry-run", &format!("oci://{tag_ref}")]);
    assert!(r.stderr.contains("--insecure"), "{r:?}");
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_refused_and_nothing_stored() {
    let reg = Registry::start();
    let host = Host::new();
    let attach = script("attach");
    let bytes = fs::read(&attach).unwrap();
    // Another client's manifest, written by hand with the CNCF layout and PUT over HTTP.
    host.push(&attach, &format!("{}/netops/attach:base", reg.addr));
    let (body, _) = reg.manifest("netops/attach", "base");
    let mut m: Value = serde_json::from_slice(&body).unwrap();
    m["annotations"] = serde_json::json!({"org.opencontainers.image.title": "by-hand"});
    let hand = serde_json::to_vec(&m).unwrap();
    reg.put_manifest("netops/attach", "hand", &hand);
    let ok = host.pull(&format!("{}/netops/attach:hand", reg.addr));
    assert_eq!((ok.code, digest_line(&ok)), (0, sha256(&hand)), "{ok:?}");

    // The registry serves other bytes for the layer (a compromised registry, a proxy).
    let fresh = Host::new();
    let blob = reg.blob_file(&sha256(&bytes));
    let mut evil = bytes.clone();
    let n = evil.len();
    evil[n / 2] ^= 0xff;
    fs::write(&blob, &evil).unwrap();
    let r = fresh.pull(&format!("{}/netops/attach:hand", reg.addr));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused, nothing stored") || r.stderr.contains("sha256"), "{r:?}");
    assert!(
        fresh.store_files().iter().all(|f| !f.starts_with("refs") && !f.contains(&sha256(&evil))),
        "nothing of it stored: {:?}",
        fresh.store_files()
    );
    let r = fresh.ovs(&["--insecure", "--dry-run", &format!("oci://{}/netops/attach:hand", reg.addr)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stdout.contains("Plan"), "{r:?}");
}

#[test]
fn signed_by_an_untrusted_key_is_refused_from_the_registry_too() {
    let reg = Registry::start();
    let host = Host::new();
    let tag_ref = format!("{}/netops/attach:1", reg.addr);
    host.push(&script("attach"), &tag_ref);
    let trust = host.dir.path().join("trust");
    fs::create_dir(&trust).unwrap();
    fs::set_permissions(&trust, fs::Permissions::from_mode(0o755)).unwrap();
    let r = host.ovs(&["key", "generate", s(&trust.join("other"))]);
    assert_eq!(r.code, 0, "{r:?}");
    fs::remove_file(trust.join("other.key")).unwrap();
    let r = attach_dry_run(&host, &format!("oci://{tag_ref}"), s(&trust));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refused: it is signed only by keys that are not in"), "{r:?}");
    assert!(!r.stdout.contains("Plan"), "{r:?}");
    // An unsigned script is refused the same way.
    let noop = format!("{}/test/noop:v1", reg.addr);
    host.push(&guest("noop"), &noop);
    let r = attach_dry_run(&host, &format!("oci://{noop}"), &test_trust());
    assert!(r.code == 2 && r.stderr.contains("it is not signed"), "{r:?}");
}

#[test]
fn a_store_others_can_write_is_refused() {
    let reg = Registry::start();
    let host = Host::new();
    let tag_ref = format!("{}/test/noop:v1", reg.addr);
    host.push(&guest("noop"), &tag_ref);
    assert_eq!(host.pull(&tag_ref).code, 0);
    fs::set_permissions(host.store(), fs::Permissions::from_mode(0o777)).unwrap();
    for r in [host.pull(&tag_ref), host.ovs(&["--insecure", "--dry-run", &format!("oci://{tag_ref}")])] {
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("is writable by group or others (mode 777)"), "{r:?}");
    }
}

#[test]
fn concurrent_pulls_of_one_reference_agree_and_leave_whole_files() {
    let reg = Registry::start();
    let host = Host::new();
    let tag_ref = format!("{}/netops/attach:1", reg.addr);
    let digest = host.push(&script("attach"), &tag_ref);
    let fresh = Host::new();
    let children: Vec<Child> = (0..6)
        .map(|_| {
            Command::new(bin())
                .args(["pull", "--insecure", &tag_ref])
                .env("OVS_RUN_CACHE_DIR", fresh.cache())
                .env("DOCKER_CONFIG", fresh.docker_config())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.trim(), format!("sha256:{digest}"));
    }
    let files = fresh.store_files();
    assert!(
        files.iter().all(|f| !f.rsplit('/').next().unwrap().starts_with('.')),
        "temporary files left: {files:?}"
    );
    for f in files.iter().filter(|f| f.starts_with("blobs/sha256/")) {
        let bytes = fs::read(fresh.store().join(f)).unwrap();
        assert_eq!(&sha256(&bytes), f.rsplit('/').next().unwrap(), "{f} is whole");
    }
    assert_eq!(files.len(), 4, "layer, manifest, the tag and the digest refs: {files:?}");
}

#[test]
fn basic_auth_comes_from_the_docker_config() {
    let reg = Registry::start_with(Some(("alice", "s3cret")));
    let host = Host::new();
    let tag_ref = format!("{}/private/noop:v1", reg.addr);
    let r = host.ovs(&["push", "--insecure", s(&guest("noop")), &tag_ref]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("requires authentication (401)"), "{r:?}");

    let config = |user: &str, pass: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let json = serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}});
        fs::write(host.docker_config().join("config.json"), json.to_string()).unwrap();
    };
    config("alice", "wrong");
    let r = host.ovs(&["push", "--insecure", s(&guest("noop")), &tag_ref]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("refused the credentials"), "{r:?}");

    config("alice", "s3cret");
    let digest = host.push(&guest("noop"), &tag_ref);
    let r = host.pull(&tag_ref);
    assert_eq!((r.code, digest_line(&r)), (0, digest), "{r:?}");
    // Anonymous pulls are refused by the registry itself.
    assert_eq!(reg.http_code("GET", "/v2/private/noop/manifests/v1"), "401");
}

#[test]
fn unknown_references_and_bad_names_say_what_is_wrong() {
    let reg = Registry::start();
    let host = Host::new();
    let r = host.pull(&format!("{}/nothing/here:v1", reg.addr));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("{}/nothing/here:v1: not found in the registry (404)", reg.addr)),
        "{r:?}"
    );
    let r = host.ovs(&["--dry-run", "oci://Bad/Name"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("'oci://Bad/Name' is not an OCI reference"), "{r:?}");
    let r = host.ovs(&["push", "--insecure", s(&guest("noop")), "noregistry"]);
    assert!(r.code == 2 && r.stderr.contains("'noregistry' is not an OCI reference"), "{r:?}");
}
