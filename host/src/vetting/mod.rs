//! Sharing vetted scripts: what a script is (digest, metadata, the
//! capabilities it imports), who vouches for it (wasmsign2 signatures), and
//! whether this host trusts them (a directory of public keys).
//!
//! - [`inspect`]: the review screen, read statically: nothing is compiled or run.
//! - [`metadata`]: name, version, description, authors, source, usage in the
//!   component's standard metadata sections.
//! - [`signing`]: keys, signing, and judging each signature of a component.
//! - [`trust`]: the trust store.
//! - [`digest`]: sha256 and `SCRIPT@sha256:HEX` pins.
//! - [`file`]: reading a script file, bounded.
//! - [`source`]: a script named by a file or by a registry reference (`oci://`).
//!
//! Anything that runs scripts (the CLI, the daemon) calls [`check`] on the
//! script's bytes BEFORE handing them to the engine, so an unsigned or
//! tampered script is never even compiled:
//!
//! ```ignore
//! let trust = TrustStore::open(Path::new(trust::DEFAULT_DIR))?;
//! let verified = vetting::check(&bytes, &trust, RequireSigned::Yes)?; // Err: refuse, with the reason
//! let (pre, _) = engine.load(&bytes)?;
//! ```

pub mod digest;
pub mod file;
pub mod inspect;
pub mod metadata;
pub mod signing;
pub mod trust;

use serde::Serialize;

pub use self::digest::{Digest, ScriptRef};
pub use self::file::read_script_file;
pub use self::signing::{KeyId, SignatureReport, SignatureStatus};
pub use self::trust::{TrustError, TrustStore};

/// Whether a script must carry a valid signature by a trusted key to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequireSigned {
    Yes,
    /// Signatures are examined and reported, never a reason to refuse.
    No,
}

impl From<bool> for RequireSigned {
    fn from(b: bool) -> Self {
        if b {
            Self::Yes
        } else {
            Self::No
        }
    }
}

/// What [`check`] found about a script it let through.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    pub sha256: Digest,
    /// Trusted keys that signed exactly these bytes (may be empty with [`RequireSigned::No`]).
    pub signed_by: Vec<KeyId>,
    pub verdict: Verdict,
    pub signatures: SignatureReport,
}

/// The one-word summary of a script's signatures against a trust store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A trusted key signed exactly these bytes.
    Trusted,
    Unsigned,
    /// Signed, but by no trusted key.
    Untrusted,
    /// A trusted key signed it, and it changed since.
    Modified,
    /// A signature claims a trusted key but does not verify.
    Invalid,
    /// The signature section is unreadable.
    Malformed,
}

impl Verdict {
    pub fn of(report: &SignatureReport) -> Self {
        let any = |f: fn(&SignatureStatus) -> bool| report.signatures.iter().any(|s| f(&s.status));
        if report.malformed.is_some() {
            Self::Malformed
        } else if !report.trusted_signers.is_empty() {
            Self::Trusted
        } else if report.signatures.is_empty() {
            Self::Unsigned
        } else if any(|s| matches!(s, SignatureStatus::Modified { .. })) {
            Self::Modified
        } else if any(|s| matches!(s, SignatureStatus::Invalid { .. })) {
            Self::Invalid
        } else {
            Self::Untrusted
        }
    }
}

/// Why a script was refused. Each message says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VetError {
    #[error("its sha256 is {actual}, not the pinned {expected}: this is not the file that was reviewed")]
    DigestMismatch { expected: String, actual: String },
    #[error("{store} holds no public keys (*.pub), so no signature can be trusted")]
    NoTrustedKeys { store: String },
    #[error("it is not signed, and a signature by a trusted key is required (sign it: ovs-run sign --key KEY SCRIPT)")]
    Unsigned,
    #[error("it is signed only by keys that are not in {store}: {key_ids}")]
    Untrusted { store: String, key_ids: String },
    #[error("it was modified after it was signed: its content no longer matches the signature of trusted key {key_id} ({key_file})")]
    Modified { key_id: String, key_file: String },
    #[error("its signature by trusted key {key_id} ({key_file}) does not verify: the signature is corrupt or forged")]
    Invalid { key_id: String, key_file: String },
    #[error("its signatures cannot be read: {0}")]
    Malformed(String),
}

/// Decide whether `bytes` may run: with [`RequireSigned::Yes`] only when a
/// key of `trust` signed exactly these bytes. Reads the bytes only; call it
/// before compiling. With [`RequireSigned::No`] it never fails and reports
/// what it found.
pub fn check(bytes: &[u8], trust: &TrustStore, require: RequireSigned) -> Result<Verified, VetError> {
    let report = signing::examine(bytes, trust);
    let verdict = Verdict::of(&report);
    let verified = Verified {
        sha256: Digest::of(bytes),
        signed_by: report.trusted_signers.clone(),
        verdict,
        signatures: report,
    };
    if require == RequireSigned::No || verdict == Verdict::Trusted {
        return Ok(verified);
    }
    let store = trust.describe();
    // Prefer the explanation that points at a trusted key: it says what happened.
    let about = |want: fn(&SignatureStatus) -> Option<&String>| {
        verified.signatures.signatures.iter().find_map(|s| {
            want(&s.status)
                .map(|file| (s.key_id.as_ref().map(|k| k.to_string()).unwrap_or_default(), file.clone()))
        })
    };
    Err(match verdict {
        Verdict::Trusted => unreachable!("returned above"),
        Verdict::Malformed => VetError::Malformed(verified.signatures.malformed.clone().unwrap_or_default()),
        Verdict::Unsigned => VetError::Unsigned,
        Verdict::Modified => {
            let (key_id, key_file) =
                about(|s| if let SignatureStatus::Modified { key_file } = s { Some(key_file) } else { None })
                    .unwrap_or_default();
            VetError::Modified { key_id, key_file }
        }
        Verdict::Invalid => {
            let (key_id, key_file) =
                about(|s| if let SignatureStatus::Invalid { key_file } = s { Some(key_file) } else { None })
                    .unwrap_or_default();
            VetError::Invalid { key_id, key_file }
        }
        Verdict::Untrusted if trust.is_empty() => VetError::NoTrustedKeys { store },
        Verdict::Untrusted => {
            let ids: Vec<String> = verified
                .signatures
                .signatures
                .iter()
                .map(|s| s.key_id.as_ref().map_or("(anonymous)".to_string(), |k| k.to_string()))
                .collect();
            VetError::Untrusted { store, key_ids: ids.join(", ") }
        }
    })
}

/// Refuse `bytes` unless their sha256 is `pin`.
pub fn check_pin(bytes: &[u8], pin: &Digest) -> Result<(), VetError> {
    let actual = Digest::of(bytes);
    if &actual == pin {
        Ok(())
    } else {
        Err(VetError::DigestMismatch { expected: pin.to_string(), actual: actual.to_string() })
    }
}
