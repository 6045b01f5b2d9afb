//! The compile cache: Cranelift output for a component, keyed by the
//! component's sha256 and the engine's compatibility hash.
//!
//! Deserializing is `unsafe` in wasmtime (the bytes become machine code), so
//! an entry is only loaded when (a) the directory can be written by nobody but
//! us and root, and (b) the entry's own sha256 checks out. Anything else is a
//! miss: the component is compiled again and the entry rewritten.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

const MAGIC: &[u8; 8] = b"OVSRUNC1";
const HEADER: usize = 8 + 32;

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

pub struct CompileCache {
    dir: Option<PathBuf>,
    why_disabled: String,
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
        Self { dir: None, why_disabled: why.to_string() }
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
                Self { dir: Some(dir.to_path_buf()), why_disabled: String::new() }
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
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<(Component, CacheEvent)> {
        let Some(path) = self.entry_path(engine, bytes) else {
            return Ok((Component::new(engine, bytes)?, CacheEvent::Disabled(self.why_disabled.clone())));
        };
        let mut event = CacheEvent::Miss;
        match fs::read(&path) {
            Ok(data) => match verify(&data) {
                Ok(payload) => {
                    // SAFETY: the payload was written by `store` below into a
                    // directory only we (or root) can write, and its sha256
                    // matches the one recorded with it.
                    match unsafe { Component::deserialize(engine, payload) } {
                        Ok(c) => return Ok((c, CacheEvent::Hit)),
                        Err(e) => event = CacheEvent::Corrupt(format!("does not load: {e}")),
                    }
                }
                Err(why) => event = CacheEvent::Corrupt(why),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => event = CacheEvent::Corrupt(format!("unreadable: {e}")),
        }
        let compiled = engine.precompile_component(bytes)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        if let Err(e) = store(&path, &compiled) {
            event = CacheEvent::Disabled(format!("cannot write {}: {e}", path.display()));
        }
        Ok((component, event))
    }
}

fn verify(data: &[u8]) -> Result<&[u8], String> {
    if data.len() < HEADER || &data[..8] != MAGIC {
        return Err("bad header".into());
    }
    let payload = &data[HEADER..];
    if Sha256::digest(payload).as_slice() != &data[8..HEADER] {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

/// Write via a temporary file and rename, so a reader never sees half an entry.
fn store(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&Sha256::digest(payload))?;
    f.write_all(payload)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
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
