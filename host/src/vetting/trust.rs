//! The trust store: a directory of public keys (`*.pub`, PEM or the raw
//! wasmsign2 format). A script is trusted when one of these keys signed it.
//!
//! Whoever can write to the directory decides what runs, so a directory or
//! key file that group or others can write, or that belongs to another
//! non-root user, is refused, like the compile cache directory.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use wasmsign2::PublicKey;

use super::signing::KeyId;

/// Where the daemon and `ovs-run --require-signed` look without `--trust`.
pub const DEFAULT_DIR: &str = "/etc/ovs-run/trusted-keys";

pub fn default_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DIR)
}

/// One trusted public key and the file it came from.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub id: KeyId,
    pub key: PublicKey,
    pub file: PathBuf,
}

#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    /// None for [`TrustStore::empty`].
    pub dir: Option<PathBuf>,
    pub keys: Vec<TrustedKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trust store {0}: does not exist (create it and put the signers' public keys, *.pub, in it)")]
    Missing(PathBuf),
    #[error("trust store {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("trust store: cannot read {path}: {why}")]
    Unreadable { path: PathBuf, why: String },
}

impl TrustStore {
    /// Trusts nothing: every signature is by an unknown key.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Load every `*.pub` file of `dir` (other files are ignored, so a README can live there).
    pub fn open(dir: &Path) -> Result<Self, TrustError> {
        let unreadable = |path: &Path, e: &dyn std::fmt::Display| TrustError::Unreadable {
            path: path.to_path_buf(),
            why: e.to_string(),
        };
        if !dir.exists() {
            return Err(TrustError::Missing(dir.to_path_buf()));
        }
        let meta = fs::metadata(dir).map_err(|e| unreadable(dir, &e))?;
        if !meta.is_dir() {
            return Err(TrustError::Unsafe { path: dir.to_path_buf(), why: "is not a directory".into() });
        }
        check_owner(dir, &meta)?;

        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| unreadable(dir, &e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        entries.sort();
        let mut keys: Vec<TrustedKey> = Vec::new();
        for file in entries {
            // Follows symlinks: what matters is who can write the key itself.
            let meta = fs::metadata(&file).map_err(|e| unreadable(&file, &e))?;
            if !meta.is_file() {
                continue;
            }
            check_owner(&file, &meta)?;
            let bytes = fs::read(&file).map_err(|e| unreadable(&file, &e))?;
            let key = PublicKey::from_any(&bytes).map_err(|_| {
                unreadable(&file, &"not an Ed25519 public key (PEM or wasmsign2 format expected)")
            })?;
            let id = KeyId::of(&key);
            if !keys.iter().any(|k| k.id == id) {
                keys.push(TrustedKey { id, key: key.attach_default_key_id(), file });
            }
        }
        Ok(Self { dir: Some(dir.to_path_buf()), keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, id: &KeyId) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| &k.id == id)
    }

    /// "trust store DIR" or "an empty trust store", for messages.
    pub fn describe(&self) -> String {
        match &self.dir {
            Some(d) => format!("trust store {}", d.display()),
            None => "an empty trust store".into(),
        }
    }
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<(), TrustError> {
    let me = nix::unistd::geteuid().as_raw();
    let why = if meta.uid() != me && meta.uid() != 0 {
        format!("is owned by uid {}, neither root nor us: that user could add keys", meta.uid())
    } else if meta.mode() & 0o022 != 0 {
        format!("is writable by group or others (mode {:o}): anyone could add keys", meta.mode() & 0o777)
    } else {
        return Ok(());
    };
    Err(TrustError::Unsafe { path: path.to_path_buf(), why })
}
