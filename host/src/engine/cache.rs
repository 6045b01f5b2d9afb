//! The compile cache: Cranelift output for a component, keyed by the
//! component's sha256 and the engine's compatibility hash.
//!
//! Deserializing is `unsafe` in wasmtime (the bytes become machine code), so
//! an entry is only loaded when (a) the directory can be written by nobody but
//! us and root, and (b) the entry matches the checksum recorded beside it.
//! Anything else is a miss: the component is compiled again and the entry
//! rewritten.
//!
//! (a) is the security boundary: whoever can write there is root or us
//! already. The key is a sha256, so no crafted component can be served
//! another's code. (b) catches corruption (a disk, a stray write), so a
//! CRC-32 does: a few ms for a 36 MB Python entry, where a sha256 took ~40,
//! a third of a cached run.
//!
//! The directory has a quota ([`DEFAULT_QUOTA`]): after each new entry the
//! least recently used ones (by modification time, which a hit refreshes)
//! are removed until the entries fit, so a stream of distinct scripts (a
//! daemon's tenants) cannot fill the disk.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where the answer came from, for `-v` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheEvent {
    Hit,
    Miss,
    /// An entry existed but failed its checksum or would not load; recompiled.
    Corrupt(String),
    /// No usable cache directory (why), compiled in memory only.
    Disabled(String),
}

/// The most bytes of entries (artifacts and checksums) the cache keeps.
pub const DEFAULT_QUOTA: u64 = 1 << 30;

#[derive(Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    why_disabled: String,
    quota: u64,
}

/// The default cache directory: root's is system-wide, others' per user.
pub fn default_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/var/cache/ovs-run")
    } else if let Some(x) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(x).join("ovs-run")
    } else {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/ovs-run")
    }
}

impl CompileCache {
    pub fn disabled(why: &str) -> Self {
        Self { dir: None, why_disabled: why.to_string(), quota: DEFAULT_QUOTA }
    }

    /// Keep at most `bytes` of entries (least recently used go first).
    pub fn with_quota(mut self, bytes: u64) -> Self {
        self.quota = bytes;
        self
    }

    /// Use `dir`, creating it (mode 0700) when missing. A directory others
    /// could write to is refused: its entries could be planted machine code.
    pub fn open(dir: &Path) -> Self {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            if let Err(e) = fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
                return Self::disabled(&format!("cannot create {}: {e}", dir.display()));
            }
        }
        match fs::metadata(dir) {
            Ok(m) => {
                let me = nix::unistd::geteuid().as_raw();
                if m.uid() != me && m.uid() != 0 {
                    return Self::disabled(&format!(
                        "{} is owned by uid {}, not by us",
                        dir.display(),
                        m.uid()
                    ));
                }
                if m.mode() & 0o022 != 0 {
                    return Self::disabled(&format!(
                        "{} is writable by group or others (mode {:o})",
                        dir.display(),
                        m.mode() & 0o777
                    ));
                }
                Self { dir: Some(dir.to_path_buf()), why_disabled: String::new(), quota: DEFAULT_QUOTA }
            }
            Err(e) => Self::disabled(&format!("{}: {e}", dir.display())),
        }
    }

    /// The entry path for `bytes` under `engine`.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}-{}.cwasm", hex::encode(Sha256::digest(bytes)), engine_key(engine))))
    }

    /// Load or compile `bytes`.
    ///
    /// An entry is wasmtime's own artifact (`KEY.cwasm`) with its length and
    /// CRC-32 beside it (`KEY.sum`). A hit maps the artifact from the file instead of
    /// copying it: for the 20-40 MB that Python and JavaScript runtimes
    /// compile to, that is most of the difference between a 30 ms and a
    /// 150 ms start (the linear memory's initial image is mapped
    /// copy-on-write from the file as well).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, CacheEvent)> {
        let Some(path) = self.entry_path(engine, bytes) else {
            return Ok((Component::new(engine, bytes)?, CacheEvent::Disabled(self.why_disabled.clone())));
        };
        let sum = path.with_extension("sum");
        let mut event = CacheEvent::Miss;
        match verify(&path, &sum) {
            Ok(true) => {
                // SAFETY: the file was written by `store` below into a
                // directory only we (or root) can write, and it matches the
                // checksum recorded beside it.
                match unsafe { Component::deserialize_file(engine, &path) } {
                    Ok(c) => {
                        // Recently used: the last to be evicted.
                        if let Ok(f) = fs::File::open(&path) {
                            let _ = f.set_modified(SystemTime::now());
                        }
                        return Ok((c, CacheEvent::Hit));
                    }
                    Err(e) => event = CacheEvent::Corrupt(format!("does not load: {e}")),
                }
            }
            Ok(false) => {}
            Err(why) => event = CacheEvent::Corrupt(why),
        }
        let compiled = engine.precompile_component(bytes)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        if compiled.len() as u64 > self.quota {
            event = CacheEvent::Disabled(format!(
                "the compiled script ({} bytes) is larger than the cache quota ({} bytes)",
                compiled.len(),
                self.quota
            ));
        } else if let Err(e) = store(&path, &sum, &compiled) {
            event = CacheEvent::Disabled(format!("cannot write {}: {e}", path.display()));
        } else if let Some(dir) = &self.dir {
            evict(dir, self.quota, &path);
        }
        Ok((component, event))
    }
}

/// Remove the least recently used entries (oldest modification time first)
/// until the entries in `dir` take at most `quota` bytes; `keep`, the entry
/// just written, goes last. Best effort: an entry another process removes
/// first is simply gone.
fn evict(dir: &Path, quota: u64, keep: &Path) {
    let Ok(list) = fs::read_dir(dir) else { return };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = list
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|p| {
            let m = fs::metadata(&p).ok()?;
            let sum = fs::metadata(p.with_extension("sum")).map(|m| m.len()).unwrap_or(0);
            Some((m.modified().ok()?, m.len() + sum, p))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort_by_key(|(t, _, p)| (p == keep, *t));
    for (_, size, p) in entries {
        if total <= quota {
            break;
        }
        // The checksum first: an artifact without one is a miss, never a hit.
        let _ = fs::remove_file(p.with_extension("sum"));
        if fs::remove_file(&p).is_ok() {
            total -= size;
        }
    }
}

/// `KEY.sum`: `crc32 HEX LENGTH`.
fn checksum(data: &[u8]) -> String {
    format!("crc32 {:08x} {}", crc32fast::hash(data), data.len())
}

/// `Ok(false)`: no entry; `Ok(true)`: the entry matches its recorded checksum.
fn verify(path: &Path, sum: &Path) -> Result<bool, String> {
    let recorded = match fs::read_to_string(sum) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("unreadable checksum: {e}")),
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let len = file.metadata().map_err(|e| format!("unreadable: {e}"))?.len() as usize;
    if len == 0 {
        return Err("empty".into());
    }
    // Mapped rather than read: no copy of the 20-40 MB of a Python or JS
    // entry, and the pages are the ones wasmtime maps next.
    // SAFETY: a private read-only mapping of a file we hold open. Entries
    // are replaced by rename, never truncated in place, so the pages stay valid.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0)
    };
    if ptr == libc::MAP_FAILED {
        return Err(format!("cannot map: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `ptr` maps `len` readable bytes until the munmap below.
    let crc = crc32fast::hash(unsafe { std::slice::from_raw_parts(ptr as *const u8, len) });
    // SAFETY: unmaps exactly the mapping made above; the slice is gone.
    unsafe { libc::munmap(ptr, len) };
    if format!("crc32 {crc:08x} {len}") != recorded.trim() {
        return Err("checksum mismatch".into());
    }
    Ok(true)
}

/// Write via temporary files and renames, so a reader never sees half an
/// entry: the checksum lands first, then the artifact it describes (a reader
/// in between finds no artifact, or the identical one an earlier run wrote:
/// the key is the component's and the engine's hash).
fn store(path: &Path, sum: &Path, payload: &[u8]) -> std::io::Result<()> {
    let write = |dest: &Path, data: &[u8]| -> std::io::Result<()> {
        let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, dest)
    };
    write(sum, checksum(payload).as_bytes())?;
    write(path, payload)
}

/// A short stable digest of the engine's compatibility hash (wasmtime
/// version, target, compiler settings).
fn engine_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

/// Time a closure, for `-v` output.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_removes_the_least_recently_used_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |name: &str, age_s: u64| {
            let p = dir.path().join(format!("{name}.cwasm"));
            fs::write(&p, vec![0u8; 1000]).unwrap();
            fs::write(p.with_extension("sum"), "x").unwrap();
            let t = SystemTime::now() - std::time::Duration::from_secs(age_s);
            fs::File::open(&p).unwrap().set_modified(t).unwrap();
            p
        };
        let old = entry("old", 300);
        let mid = entry("mid", 200);
        let new = entry("new", 100);
        // Room for two entries (1001 bytes each): the oldest goes.
        evict(dir.path(), 2500, &new);
        assert!(!old.exists() && !old.with_extension("sum").exists());
        assert!(mid.exists() && new.exists());
        // The entry just written is kept over an older one even when it is the oldest.
        let fresh = entry("fresh", 1000);
        evict(dir.path(), 1500, &fresh);
        assert!(fresh.exists() && !mid.exists() && !new.exists());
    }
}
