//! Signatures with wasmsign2: Ed25519 over the sha256 of every section after
//! the `signature` custom section, which comes first in the component and
//! holds any number of signatures (an author's and a reviewer's, say).
//!
//! Each signature carries its signer's key id, so an unknown signer can be
//! named; trust, though, only ever comes from wasmsign2's verification with
//! a key of the trust store, never from a claimed id.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use wasmsign2::{KeyPair, Module, PublicKey, PublicKeySet, SecretKey, Section, SignatureData, WSError};

use super::trust::TrustStore;

/// wasmsign2's deterministic key id: 12 bytes of HMAC-SHA256 of the public key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub Vec<u8>);

impl KeyId {
    pub fn of(key: &PublicKey) -> Self {
        let with_id = PublicKey { pk: key.pk, key_id: None }.attach_default_key_id();
        Self(with_id.key_id().cloned().unwrap_or_default())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Write a new key pair to `PREFIX.key` (mode 0600) and `PREFIX.pub`; never overwrites.
pub fn generate(prefix: &Path) -> Result<(KeyId, std::path::PathBuf, std::path::PathBuf), String> {
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    for p in [&secret, &public] {
        if p.exists() {
            return Err(format!("{} exists; not overwriting a key", p.display()));
        }
    }
    let kp = KeyPair::generate();
    let write = |path: &Path, mode: u32, text: &str| -> Result<(), String> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&secret, 0o600, &kp.sk.to_pem())?;
    write(&public, 0o644, &kp.pk.to_pem())?;
    Ok((KeyId::of(&kp.pk), secret, public))
}

pub fn load_secret_key(path: &Path) -> Result<SecretKey, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    SecretKey::from_any(&bytes).map_err(|_| {
        format!("{}: not an Ed25519 secret key (PEM or wasmsign2 format expected)", path.display())
    })
}

pub fn load_public_key(path: &Path) -> Result<PublicKey, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read key {}: {e}", path.display()))?;
    PublicKey::from_any(&bytes).map_err(|_| {
        format!("{}: not an Ed25519 public key (PEM or wasmsign2 format expected)", path.display())
    })
}

pub fn public_of(sk: &SecretKey) -> PublicKey {
    PublicKey { pk: sk.sk.public_key(), key_id: None }
}

/// Add `sk`'s signature to the component; earlier signatures stay.
pub fn sign(bytes: &[u8], sk: &SecretKey) -> Result<Vec<u8>, String> {
    let id = KeyId::of(&public_of(sk));
    let module =
        Module::deserialize(&mut &bytes[..]).map_err(|e| format!("cannot read the component: {e}"))?;
    let (signed, _) = sk.sign_multi(module, Some(&id.0), false, false).map_err(|e| match e {
        WSError::DuplicateSignature => format!("already signed by key {id}"),
        e => format!("cannot sign: {e}"),
    })?;
    let mut out = Vec::with_capacity(bytes.len() + 128);
    signed.serialize(&mut out).map_err(|e| format!("cannot write the signed component: {e}"))?;
    Ok(out)
}

/// What one signature in the component amounts to against a trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SignatureStatus {
    /// Made by a trusted key, over exactly these bytes.
    Trusted { key_file: String },
    /// The signer's key is not in the trust store.
    UnknownKey,
    /// A trusted key signed other content: the script changed after signing.
    Modified { key_file: String },
    /// Claims a trusted key, covers these bytes, but does not verify: corrupt or forged.
    Invalid { key_file: String },
    /// Carries no key id; it counts when it verifies with some trusted key.
    Anonymous,
}

#[derive(Clone, Debug, Serialize)]
pub struct SignatureEntry {
    /// The signer's key id as recorded in the signature (None: anonymous signature).
    pub key_id: Option<KeyId>,
    #[serde(flatten)]
    pub status: SignatureStatus,
}

/// Every signature of a component, judged against a trust store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SignatureReport {
    pub signatures: Vec<SignatureEntry>,
    /// Trusted keys with a valid signature over exactly these bytes, as
    /// wasmsign2 verified them: the only thing that makes a script trusted.
    pub trusted_signers: Vec<KeyId>,
    /// Why the signature section could not be read, when it could not.
    pub malformed: Option<String>,
}

impl SignatureReport {
    pub fn is_signed(&self) -> bool {
        !self.signatures.is_empty() || self.malformed.is_some()
    }
}

/// Read the signature section (the component's first section) and judge
/// each signature. Trust comes from `PublicKeySet::verify`; the rest only
/// explains a failure (changed content vs. a bad signature).
pub fn examine(bytes: &[u8], trust: &TrustStore) -> SignatureReport {
    let (data, content) = match signature_section(bytes) {
        Ok(Some(x)) => x,
        Ok(None) => return SignatureReport::default(),
        Err(e) => return SignatureReport { malformed: Some(e), ..Default::default() },
    };
    let content_hash: Vec<u8> = Sha256::digest(content).to_vec();

    let set = PublicKeySet::new(trust.keys.iter().map(|k| k.key.clone()).collect());
    let verified: Vec<KeyId> = match set.verify(&mut &bytes[..], None) {
        Ok(keys) => keys.into_iter().map(KeyId::of).collect(),
        Err(_) => vec![],
    };

    let mut signatures = Vec::new();
    for signed in &data.signed_hashes_set {
        let covers_content = signed.hashes.contains(&content_hash);
        for sig in &signed.signatures {
            let key_id = sig.key_id.clone().map(KeyId);
            let status = match key_id.as_ref().map(|id| trust.get(id)) {
                None => SignatureStatus::Anonymous,
                Some(None) => SignatureStatus::UnknownKey,
                Some(Some(k)) => {
                    let key_file = k.file.display().to_string();
                    if verified.contains(&k.id) && covers_content {
                        SignatureStatus::Trusted { key_file }
                    } else if !covers_content {
                        SignatureStatus::Modified { key_file }
                    } else {
                        SignatureStatus::Invalid { key_file }
                    }
                }
            };
            signatures.push(SignatureEntry { key_id, status });
        }
    }
    SignatureReport { signatures, trusted_signers: verified, malformed: None }
}

/// The parsed signature section and the bytes its signatures cover, or None when unsigned.
fn signature_section(bytes: &[u8]) -> Result<Option<(SignatureData, &[u8])>, String> {
    let mut rest = bytes;
    let first = {
        let stream = Module::init_from_reader(&mut rest).map_err(|e| format!("not a Wasm file: {e}"))?;
        match Module::iterate(stream).map_err(|e| e.to_string())?.next() {
            None => return Ok(None),
            Some(s) => s.map_err(|e| format!("cannot read the first section: {e}"))?,
        }
    };
    match first {
        Section::Custom(c) if c.is_signature_header() => {
            let data = c.signature_data().map_err(|e| format!("the signature section is malformed: {e}"))?;
            Ok(Some((data, rest)))
        }
        _ => Ok(None),
    }
}

/// True when the component carries a signature section (valid or not).
pub fn has_signatures(bytes: &[u8]) -> bool {
    !matches!(signature_section(bytes), Ok(None))
}
