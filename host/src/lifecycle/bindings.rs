//! Bindings: "run this script for that container, every time it starts",
//! kept durably in a state directory (default `/var/lib/ovs-run`):
//!
//! ```text
//! bindings/<id>.json             one binding (see [`Binding`])
//! scripts/<sha256>.wasm          the bound script, copied at bind time
//! applied/<id>/<container id>    the container start (State.StartedAt) the binding last ran for
//! ```
//!
//! Every file is written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves the old or the new file, never half of
//! one. The script is a copy, checked against its sha256 before each run: a
//! later edit of the original does not change what runs as root on every
//! container start. For the same reason the directory must be writable by
//! its owner (us or root) only, or it is refused.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CapError, CapResult, ErrorKind};
use crate::types::{shorten, ContainerInfo, ContainerRef};

/// The state directory when neither `--state-dir` nor `OVS_RUN_STATE_DIR` says otherwise.
pub use crate::config::DEFAULT_STATE_DIR;

const FORMAT_VERSION: u32 = 1;

/// Which containers a binding applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selector {
    /// A container by name, or by id (at least 12 hex digits), as the user gave it.
    Container(ContainerRef),
    /// Every container carrying all of these labels.
    Labels(BTreeMap<String, String>),
}

impl Selector {
    pub fn matches(&self, c: &ContainerInfo) -> bool {
        match self {
            Selector::Container(given) => {
                let g = given.as_str();
                // A short prefix names different containers over time; a
                // binding outlives any one of them, so it needs a real id.
                c.name == g || (is_id_prefix(g) && c.id.starts_with(g))
            }
            Selector::Labels(want) => {
                want.iter().all(|(k, v)| c.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            }
        }
    }

    /// `KEY=VALUE` pairs into a label selector; the bad pair is named.
    pub fn labels(pairs: &[String]) -> CapResult<Selector> {
        let mut m = BTreeMap::new();
        for p in pairs {
            match p.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    m.insert(k.to_string(), v.to_string());
                }
                _ => return Err(CapError::invalid(format!("label '{}' is not KEY=VALUE", shorten(p)))),
            }
        }
        if m.is_empty() {
            return Err(CapError::invalid("a label selector needs at least one KEY=VALUE"));
        }
        Ok(Selector::Labels(m))
    }
}

fn is_id_prefix(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Container(c) => write!(f, "container {c}"),
            Selector::Labels(m) => {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "label {}", pairs.join(","))
            }
        }
    }
}

/// The script a binding runs: its copy in the state directory is `scripts/<sha256>.wasm`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRef {
    pub sha256: String,
    /// Where it was copied from (for people reading the binding).
    pub source: PathBuf,
}

impl ScriptRef {
    /// The file name of the source, for listings.
    pub fn file_name(&self) -> String {
        self.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub version: u32,
    /// 12 hex digits derived from what the binding does: binding the same
    /// script with the same arguments to the same selector twice is one binding.
    pub id: String,
    pub selector: Selector,
    pub script: ScriptRef,
    /// The script's arguments; `{container}` and `{id}` become the container's name and full id.
    pub args: Vec<String>,
    /// The tenant who made the binding (the daemon's); None: the local operator.
    /// The script then runs under that tenant's policy.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Seconds since the epoch.
    pub created: u64,
}

impl Binding {
    pub fn new(
        selector: Selector,
        script: &[u8],
        source: PathBuf,
        args: Vec<String>,
        tenant: Option<String>,
    ) -> Self {
        let sha256 = hex::encode(Sha256::digest(script));
        let key = serde_json::json!([selector, sha256, args, tenant]);
        let id = hex::encode(Sha256::digest(key.to_string().as_bytes()))[..12].to_string();
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            version: FORMAT_VERSION,
            id,
            selector,
            script: ScriptRef { sha256, source },
            args,
            tenant,
            created,
        }
    }

    pub fn matches(&self, c: &ContainerInfo) -> bool {
        self.selector.matches(c)
    }

    /// The script's arguments for container `c`.
    pub fn args_for(&self, c: &ContainerInfo) -> Vec<String> {
        self.args.iter().map(|a| a.replace("{container}", &c.name).replace("{id}", &c.id)).collect()
    }
}

/// The state directory. Every read goes to disk, so a running watcher sees
/// bindings added or removed by other `ovs-run` processes.
#[derive(Clone, Debug)]
pub struct BindingStore {
    dir: PathBuf,
}

impl BindingStore {
    /// Use `dir`, creating it (mode 0700) when missing. Refused when someone
    /// other than us or root owns it or could write to it: whoever can write
    /// a binding there has a script run with our privileges.
    pub fn open(dir: &Path) -> CapResult<Self> {
        let store = Self { dir: dir.to_path_buf() };
        for d in [dir.to_path_buf(), store.bindings_dir(), store.scripts_dir(), store.applied_dir()] {
            if !d.exists() {
                fs::DirBuilder::new().recursive(true).mode(0o700).create(&d).map_err(|e| {
                    CapError::failed(format!("cannot create state directory {}: {e}", d.display()))
                })?;
            }
            check_private(&d)?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn bindings_dir(&self) -> PathBuf {
        self.dir.join("bindings")
    }
    fn scripts_dir(&self) -> PathBuf {
        self.dir.join("scripts")
    }
    fn applied_dir(&self) -> PathBuf {
        self.dir.join("applied")
    }
    fn binding_path(&self, id: &str) -> PathBuf {
        self.bindings_dir().join(format!("{id}.json"))
    }
    fn script_path(&self, sha256: &str) -> PathBuf {
        self.scripts_dir().join(format!("{sha256}.wasm"))
    }

    /// Record `binding` with its script. False when it was there already.
    pub fn add(&self, binding: &Binding, script: &[u8]) -> CapResult<bool> {
        let path = self.binding_path(&binding.id);
        if path.exists() {
            return Ok(false);
        }
        // The script first: a binding on disk always has its script.
        let sp = self.script_path(&binding.script.sha256);
        if !sp.exists() {
            write_atomic(&sp, script)?;
        }
        let json = serde_json::to_vec_pretty(binding)
            .map_err(|e| CapError::failed(format!("cannot encode binding {}: {e}", binding.id)))?;
        write_atomic(&path, &json)?;
        Ok(true)
    }

    /// Every binding, oldest first, and a message for each file that could not be read.
    pub fn list(&self) -> CapResult<(Vec<Binding>, Vec<String>)> {
        let dir = self.bindings_dir();
        let entries = fs::read_dir(&dir).map_err(|e| CapError::failed(format!("{}: {e}", dir.display())))?;
        let (mut out, mut problems) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json"))
            else {
                continue; // temporary files of a write in progress
            };
            match fs::read(&path).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<Binding>(&b).map_err(|e| format!("not a binding: {e}"))
            }) {
                Ok(b) if b.id == id && b.version == FORMAT_VERSION => out.push(b),
                Ok(b) if b.id != id => problems.push(format!("{}: holds binding {}", path.display(), b.id)),
                Ok(b) => problems.push(format!("{}: unknown format version {}", path.display(), b.version)),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((out, problems))
    }

    /// The binding whose id starts with `prefix` (which must pick exactly one).
    pub fn find(&self, prefix: &str) -> CapResult<Binding> {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CapError::invalid(format!("'{}' is not a binding id", shorten(prefix))));
        }
        let (all, _) = self.list()?;
        let mut hits = all.into_iter().filter(|b| b.id.starts_with(prefix));
        match (hits.next(), hits.next()) {
            (Some(b), None) => Ok(b),
            (None, _) => Err(CapError::not_found(format!("no binding {prefix} in {}", self.dir.display()))),
            (Some(_), Some(_)) => Err(CapError::invalid(format!("binding id {prefix} is ambiguous"))),
        }
    }

    /// Remove a binding, its run records, and its script copy unless another binding uses it.
    pub fn remove(&self, binding: &Binding) -> CapResult<()> {
        let path = self.binding_path(&binding.id);
        fs::remove_file(&path)
            .map_err(|e| CapError::failed(format!("cannot remove {}: {e}", path.display())))?;
        sync_dir(&self.bindings_dir())?;
        self.forget_binding(&binding.id);
        let (rest, _) = self.list()?;
        if !rest.iter().any(|b| b.script.sha256 == binding.script.sha256) {
            let _ = fs::remove_file(self.script_path(&binding.script.sha256));
        }
        Ok(())
    }

    /// The bound script's bytes, refused when the copy no longer matches its sha256.
    pub fn script(&self, binding: &Binding) -> CapResult<Vec<u8>> {
        let path = self.script_path(&binding.script.sha256);
        let bytes = fs::read(&path).map_err(|e| {
            CapError::failed(format!("script of binding {}: {}: {e}", binding.id, path.display()))
        })?;
        if hex::encode(Sha256::digest(&bytes)) != binding.script.sha256 {
            return Err(CapError::failed(format!(
                "script of binding {}: {} does not match its sha256 any more; refusing to run it",
                binding.id,
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// The container start the binding last ran for in container `id`.
    pub fn applied(&self, binding: &str, id: &str) -> Option<String> {
        if !(is_plain(binding) && is_plain(id)) {
            return None;
        }
        fs::read_to_string(self.applied_dir().join(binding).join(id)).ok()
    }

    pub fn set_applied(&self, binding: &str, id: &str, started_at: &str) -> CapResult<()> {
        if !(is_plain(binding) && is_plain(id)) {
            return Err(CapError::invalid(format!(
                "bad binding or container id '{}/{}'",
                shorten(binding),
                shorten(id)
            )));
        }
        let dir = self.applied_dir().join(binding);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CapError::failed(format!("cannot create {}: {e}", dir.display())))?;
        write_atomic(&dir.join(id), started_at.as_bytes())
    }

    /// Forget where binding `id` ran.
    pub fn forget_binding(&self, id: &str) {
        if !is_plain(id) {
            return;
        }
        let _ = fs::remove_dir_all(self.applied_dir().join(id));
    }

    /// Forget run records of a container that was removed.
    pub fn forget_container(&self, id: &str) {
        if !is_plain(id) {
            return;
        }
        if let Ok(entries) = fs::read_dir(self.applied_dir()) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path().join(id));
            }
        }
    }

    /// Container ids with run records (to forget the ones Docker no longer knows).
    pub fn applied_containers(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.applied_dir())
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|b| fs::read_dir(b.path()).into_iter().flatten().flatten())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Ids become file names: letters and digits only.
fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Owned by us or root, and writable by nobody else.
fn check_private(dir: &Path) -> CapResult<()> {
    let m =
        fs::metadata(dir).map_err(|e| CapError::failed(format!("state directory {}: {e}", dir.display())))?;
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me && m.uid() != 0 {
        return Err(CapError::denied(format!(
            "state directory {} is owned by uid {}, not by us (uid {me}): refusing to use it",
            dir.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(CapError::denied(format!(
            "state directory {} is writable by group or others (mode {:o}): refusing to use it, \
             since whoever can write there chooses what runs on every container start",
            dir.display(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// Write `path` so that readers see the old or the new content, and a crash
/// after return keeps the new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> CapResult<()> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let failed = |e: std::io::Error| CapError::failed(format!("cannot write {}: {e}", path.display()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(failed(e));
    }
    sync_dir(dir)
}

/// Make a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> CapResult<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CapError::new(ErrorKind::Failed, format!("cannot sync {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, id: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            id: id.into(),
            name: name.into(),
            pid: 1,
            running: true,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const ID: &str = "3f2a9c01b2d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef12";

    #[test]
    fn selectors_match_name_long_id_prefix_and_labels() {
        let c = container("web", ID, &[("app", "web"), ("tier", "front")]);
        let by = |s: &str| Selector::Container(ContainerRef::parse(s).unwrap());
        assert!(by("web").matches(&c));
        assert!(by(&ID[..12]).matches(&c));
        assert!(by(ID).matches(&c));
        assert!(!by(&ID[..6]).matches(&c), "short prefixes are too ambiguous for a durable binding");
        assert!(!by("we").matches(&c));
        let labels = |p: &[&str]| Selector::labels(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(labels(&["app=web"]).unwrap().matches(&c));
        assert!(labels(&["app=web", "tier=front"]).unwrap().matches(&c));
        assert!(!labels(&["app=web", "tier=back"]).unwrap().matches(&c));
        for bad in ["app", "=web"] {
            assert!(labels(&[bad]).unwrap_err().message.contains(bad));
        }
    }

    #[test]
    fn ids_are_stable_and_args_substitute() {
        let sel = Selector::Container(ContainerRef::parse("web").unwrap());
        let args = vec!["br0".into(), "eth0".into(), "{container}".into(), "--x={id}".into()];
        let a = Binding::new(sel.clone(), b"wasm", "/s/attach.wasm".into(), args.clone(), None);
        let b = Binding::new(sel.clone(), b"wasm", "/elsewhere/a.wasm".into(), args.clone(), None);
        assert_eq!(a.id, b.id, "same script bytes, selector and args: same binding");
        let c = Binding::new(sel, b"wasm2", "/s/attach.wasm".into(), args, None);
        assert_ne!(a.id, c.id);
        let got = a.args_for(&container("web", ID, &[]));
        assert_eq!(got, vec!["br0", "eth0", "web", &format!("--x={ID}")]);
    }

    #[test]
    fn store_round_trip_and_refuses_a_tampered_script() {
        let dir = tempfile::tempdir().unwrap();
        let store = BindingStore::open(&dir.path().join("state")).unwrap();
        let sel = Selector::Container(ContainerRef::parse("web").unwrap());
        let b = Binding::new(sel, b"\0asm-bytes", "/s/attach.wasm".into(), vec!["a".into()], None);
        assert!(store.add(&b, b"\0asm-bytes").unwrap());
        assert!(!store.add(&b, b"\0asm-bytes").unwrap(), "adding twice is a no-op");
        assert_eq!(store.list().unwrap().0, vec![b.clone()]);
        assert_eq!(store.find(&b.id[..4]).unwrap(), b);
        assert_eq!(store.script(&b).unwrap(), b"\0asm-bytes");

        store.set_applied(&b.id, ID, "2024-01-01T00:00:00Z").unwrap();
        assert_eq!(store.applied(&b.id, ID).as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(store.applied_containers(), vec![ID.to_string()]);

        let copy = dir.path().join("state/scripts").join(format!("{}.wasm", b.script.sha256));
        fs::write(&copy, b"something else").unwrap();
        let e = store.script(&b).unwrap_err();
        assert!(e.message.contains("does not match its sha256"), "{e}");

        store.remove(&b).unwrap();
        assert!(store.list().unwrap().0.is_empty());
        assert!(!copy.exists(), "an unused script copy goes with its binding");
        assert!(store.applied(&b.id, ID).is_none());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = BindingStore::open(dir.path()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(e.message.contains("writable by group or others"), "{e}");
    }

    #[test]
    fn unreadable_binding_files_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let store = BindingStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("bindings/abc.json"), b"{not json").unwrap();
        let (all, problems) = store.list().unwrap();
        assert!(all.is_empty());
        assert!(problems[0].contains("abc.json"), "{problems:?}");
    }
}
