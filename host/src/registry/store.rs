//! The local store: what was pulled, content-addressed, so a script already
//! pulled runs without the network and a pinned reference needs no trust in
//! the store at all.
//!
//! ```text
//! CACHE_DIR/oci/blobs/sha256/HEX                      manifests and components
//! CACHE_DIR/oci/refs/HOST[:PORT]/REPO/_tags/TAG       JSON: the tag's manifest and layer digests
//! CACHE_DIR/oci/refs/HOST[:PORT]/REPO/_digests/HEX    the same, for a pull by digest
//! ```
//!
//! `_tags` cannot be a repository component (those start with a letter or
//! digit), so no repository's refs collide with another's. A blob is read
//! back only when its sha256 is its name. A ref maps a tag to a digest, so
//! whoever can write the store decides what a tag runs: like the compile
//! cache and the trust store, a store that group or others can write, or
//! that belongs to another non-root user, is refused. Every file is written
//! to a temporary name and renamed, so concurrent pulls and a killed pull
//! leave only whole files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::reference::OciRef;
use crate::vetting::Digest;

/// The store under the compile cache directory (`--cache-dir`, `OVS_RUN_CACHE_DIR`).
pub fn dir_in(cache_dir: &Path) -> PathBuf {
    cache_dir.join("oci")
}

pub struct Store {
    root: PathBuf,
}

/// What the store knows about a reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    /// `sha256:HEX` of the manifest.
    pub manifest: String,
    /// `sha256:HEX` of the component (the layer).
    pub layer: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub pulled: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

impl RefRecord {
    pub fn manifest_digest(&self) -> Result<Digest, String> {
        self.manifest.parse()
    }
}

/// One entry of [`Store::list`].
#[derive(Clone, Debug, Serialize)]
pub struct Listed {
    /// `HOST/REPO:TAG` or `HOST/REPO@sha256:HEX`.
    pub reference: String,
    #[serde(flatten)]
    pub record: RefRecord,
}

fn io(path: &Path, e: impl std::fmt::Display) -> String {
    format!("OCI store: {}: {e}", path.display())
}

impl Store {
    /// Open (creating, mode 0700) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, String> {
        if !root.exists() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(root).map_err(|e| io(root, e))?;
        }
        let meta = fs::metadata(root).map_err(|e| io(root, e))?;
        if !meta.is_dir() {
            return Err(io(root, "is not a directory"));
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(io(
                root,
                format!(
                    "is owned by uid {}, neither root nor us: that user could change what a tag runs",
                    meta.uid()
                ),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(io(
                root,
                format!(
                    "is writable by group or others (mode {:o}): anyone could change what a tag runs",
                    meta.mode() & 0o777
                ),
            ));
        }
        Ok(Self { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.to_string())
    }

    /// The blob named `digest`, if the store holds it intact. A blob whose
    /// bytes do not hash to its name is removed and reported missing, so
    /// the next pull fetches it again.
    pub fn read_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, String> {
        let path = self.blob_path(digest);
        let bytes = match crate::vetting::read_script_file(&path) {
            Ok(b) => b,
            Err(_) if !path.exists() => return Ok(None),
            Err(e) => return Err(format!("OCI store: {e}")),
        };
        if Digest::of(&bytes) != *digest {
            let _ = fs::remove_file(&path);
            crate::verbose!(
                1,
                "OCI store: {} was corrupt (its sha256 is not its name): removed",
                path.display()
            );
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Store `bytes` under their sha256.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, String> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if self.read_blob(&digest)?.is_none() {
            write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    fn ref_path(&self, r: &OciRef) -> PathBuf {
        let base = self.root.join("refs").join(&r.registry).join(&r.repository);
        match (&r.digest, &r.tag) {
            (Some(d), _) => base.join("_digests").join(d.to_string()),
            (None, _) => base.join("_tags").join(r.tag_or_default()),
        }
    }

    /// What the store recorded for `r` (by digest when pinned, else by tag).
    pub fn lookup(&self, r: &OciRef) -> Result<Option<RefRecord>, String> {
        let path = self.ref_path(r);
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| io(&path, format!("unreadable: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Record what `r` resolved to; returns what it was before, if different.
    pub fn record(&self, r: &OciRef, rec: &RefRecord) -> Result<Option<RefRecord>, String> {
        let before = self.lookup(r)?.filter(|b| b.manifest != rec.manifest);
        let path = self.ref_path(r);
        let mut json = serde_json::to_vec_pretty(rec).expect("a record serializes");
        json.push(b'\n');
        write_atomic(&path, &json)?;
        Ok(before)
    }

    /// Every reference the store holds, sorted.
    pub fn list(&self) -> Result<Vec<Listed>, String> {
        let mut out = Vec::new();
        let refs = self.root.join("refs");
        if refs.exists() {
            walk(&refs, &refs, &mut out)?;
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }
}

/// Collect the records under `dir`: `_tags/T` and `_digests/H` files of a repository directory.
fn walk(refs: &Path, dir: &Path, out: &mut Vec<Listed>) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if !path.is_dir() {
            continue;
        }
        let kind = match name.as_str() {
            "_tags" => ":",
            "_digests" => "@sha256:",
            _ => {
                walk(refs, &path, out)?;
                continue;
            }
        };
        let repo = dir.strip_prefix(refs).unwrap_or(dir).display().to_string();
        for f in fs::read_dir(&path).map_err(|e| io(&path, e))? {
            let f = f.map_err(|e| io(&path, e))?.path();
            let leaf = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
            if leaf.starts_with('.') {
                continue; // a write in progress
            }
            let Ok(bytes) = fs::read(&f) else { continue };
            if let Ok(record) = serde_json::from_slice::<RefRecord>(&bytes) {
                out.push(Listed { reference: format!("{repo}{kind}{leaf}"), record });
            }
        }
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file in the same directory
/// (mode 0600, synced), then rename: readers see the old file or the new one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().expect("store paths have a parent");
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io(dir, e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("oci")).unwrap();
        let d = store.write_blob(b"hello").unwrap();
        assert_eq!(store.read_blob(&d).unwrap().as_deref(), Some(&b"hello"[..]));
        fs::write(store.blob_path(&d), b"tampered").unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), None, "a corrupt blob reads as missing");
        let mode = fs::metadata(store.root()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn records_report_a_moved_tag_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = OciRef::parse("localhost:5000/a/b:v1").unwrap();
        let rec = |m: &str| RefRecord {
            manifest: m.into(),
            layer: "l".into(),
            size: 1,
            pulled: 0,
            name: None,
            version: None,
        };
        assert_eq!(store.record(&r, &rec("m1")).unwrap(), None);
        assert_eq!(store.record(&r, &rec("m1")).unwrap(), None, "same digest: not moved");
        assert_eq!(store.record(&r, &rec("m2")).unwrap().map(|b| b.manifest), Some("m1".into()));
        let l = store.list().unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].reference, "localhost:5000/a/b:v1");
    }

    #[test]
    fn a_store_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = Store::open(dir.path()).err().unwrap();
        assert!(e.contains("writable by group or others"), "{e}");
    }
}
