//! Sharing vetted scripts through OCI registries: `ovs-run push FILE REF`,
//! `ovs-run pull REF`, and `oci://REF` wherever a script is named (running,
//! `inspect`, `bind`, `submit`).
//!
//! A script travels as the CNCF Wasm OCI artifact ([`artifact`]): its one
//! layer is the component's exact bytes, wasmsign2 signatures included, so
//! `--require-signed` judges what was pulled exactly as it judges a local
//! file, and the compile cache key (the component's sha256) is the layer
//! digest. A tag is only a name: running by tag resolves it to a manifest
//! digest and prints it.
//!
//! - [`reference`] parses references, `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
//! - [`client`]: the registry protocol (oci-client), digests checked.
//! - [`auth`]: Docker-style credentials.
//! - [`store`]: the content-addressed local store; a reference it holds
//!   needs no network.
//! - [`cli`]: the `push` and `pull` commands.

pub mod artifact;
pub mod auth;
pub mod cli;
pub mod client;
pub mod reference;
pub mod source;
pub mod store;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub use self::reference::OciRef;
use self::store::{RefRecord, Store};
use crate::vetting::Digest;

/// How to reach registries and where the store is.
#[derive(Clone, Debug)]
pub struct Options {
    /// Plain HTTP instead of HTTPS (`--insecure`).
    pub insecure: bool,
    /// The store directory ([`store::dir_in`] the cache directory).
    pub store_dir: PathBuf,
}

impl Options {
    /// `--insecure` and the store under `cache_dir` (or the default cache directory).
    pub fn new(insecure: bool, cache_dir: Option<PathBuf>) -> Self {
        let cache = cache_dir.unwrap_or_else(crate::engine::cache::default_dir);
        Self { insecure, store_dir: store::dir_in(&cache) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] reference::RefError),
    #[error("registry credentials: {0}")]
    Credentials(String),
    #[error("{registry}: {}", if *had_credentials {
        "the registry refused the credentials (401/403): check them (docker login, or auths in $DOCKER_CONFIG/config.json)"
    } else {
        "the registry requires authentication (401): log in (docker login HOST) or put auths.HOST.auth in $DOCKER_CONFIG/config.json (default ~/.docker/config.json)"
    })]
    Unauthorized { registry: String, had_credentials: bool },
    #[error("{reference}: not found in the registry (404): check the repository, tag or digest")]
    NotFound { reference: String },
    #[error("cannot reach registry {registry}: {why}")]
    Unreachable { registry: String, why: String },
    #[error("{what}: refused, nothing stored: its sha256 is {actual}, not {expected}: the registry or the network altered it")]
    Tampered { what: String, expected: String, actual: String },
    #[error("not a Wasm component artifact: {0}")]
    NotAComponent(String),
    #[error("registry error: {0}")]
    Registry(String),
    #[error("{0}")]
    Store(String),
}

/// A reference resolved to a component.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub reference: OciRef,
    pub manifest: Digest,
    /// The component's sha256 (the layer digest).
    pub layer: Digest,
    pub bytes: Vec<u8>,
    /// Served from the local store, without the network.
    pub from_store: bool,
    /// The manifest the tag named before this pull, when it moved.
    pub moved_from: Option<String>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The component `r` names: from the store when it holds it (no network),
/// else pulled and stored.
pub async fn resolve(r: &OciRef, opts: &Options) -> Result<Resolved, Error> {
    let store = Store::open(&opts.store_dir).map_err(Error::Store)?;
    if let Some(found) = from_store(&store, r)? {
        return Ok(found);
    }
    pull_into(&store, r, opts).await
}

/// `r` from the store alone, when it holds the reference and both blobs intact.
fn from_store(store: &Store, r: &OciRef) -> Result<Option<Resolved>, Error> {
    let manifest_digest = match (&r.digest, store.lookup(r).map_err(Error::Store)?) {
        (Some(d), _) => *d,
        (None, Some(rec)) => rec.manifest_digest().map_err(Error::Store)?,
        (None, None) => return Ok(None),
    };
    let Some(manifest) = store.read_blob(&manifest_digest).map_err(Error::Store)? else { return Ok(None) };
    let (layer, _) = artifact::layer_of(&manifest).map_err(Error::NotAComponent)?;
    let Some(bytes) = store.read_blob(&layer.digest).map_err(Error::Store)? else { return Ok(None) };
    Ok(Some(Resolved {
        reference: r.clone(),
        manifest: manifest_digest,
        layer: layer.digest,
        bytes,
        from_store: true,
        moved_from: None,
    }))
}

/// Fetch `r` from its registry (always: a tag may have moved) and store it.
pub async fn pull(r: &OciRef, opts: &Options) -> Result<Resolved, Error> {
    let store = Store::open(&opts.store_dir).map_err(Error::Store)?;
    pull_into(&store, r, opts).await
}

async fn pull_into(store: &Store, r: &OciRef, opts: &Options) -> Result<Resolved, Error> {
    let session = client::Session::connect(r, opts.insecure).await?;
    let (manifest, manifest_digest) = session.manifest(r).await?;
    let (layer, annotations) =
        artifact::layer_of(&manifest).map_err(|e| Error::NotAComponent(format!("{r}: {e}")))?;
    // Blobs already stored (another tag, an earlier pull) are not fetched again.
    let bytes = match store.read_blob(&layer.digest).map_err(Error::Store)? {
        Some(b) => b,
        None => session.layer(r, &layer).await?,
    };
    if !crate::engine::is_component(&bytes) {
        return Err(Error::NotAComponent(format!("{r}: its layer is not a WebAssembly component")));
    }
    // Only checked bytes get here; the layer goes in before the manifest and
    // the manifest before the ref, so a ref never names a missing blob.
    store.write_blob(&bytes).map_err(Error::Store)?;
    store.write_blob(&manifest).map_err(Error::Store)?;
    let record = RefRecord {
        manifest: format!("sha256:{manifest_digest}"),
        layer: format!("sha256:{}", layer.digest),
        size: bytes.len() as u64,
        pulled: now(),
        name: annotations.get("org.opencontainers.image.title").cloned(),
        version: annotations.get("org.opencontainers.image.version").cloned(),
    };
    let moved_from = store.record(r, &record).map_err(Error::Store)?.map(|b| b.manifest);
    if r.digest.is_none() {
        // A pull by tag also makes the digest resolvable offline.
        store.record(&r.pinned(manifest_digest), &record).map_err(Error::Store)?;
    }
    Ok(Resolved {
        reference: r.clone(),
        manifest: manifest_digest,
        layer: layer.digest,
        bytes,
        from_store: false,
        moved_from,
    })
}

/// Push component `bytes` as `r` (a tag; a digest is computed, not given).
pub async fn push(r: &OciRef, bytes: &[u8], opts: &Options) -> Result<Digest, Error> {
    if r.digest.is_some() {
        return Err(Error::Reference(reference::RefError {
            reference: r.to_string(),
            why: "push to a tag (HOST/REPO:TAG): the digest is the result of the push".into(),
        }));
    }
    let a = artifact::build(bytes).map_err(Error::NotAComponent)?;
    let session = client::Session::connect(r, opts.insecure).await?;
    session.push(r, bytes, &a).await?;
    Ok(a.manifest_digest)
}

/// The line printed on stderr when a script runs by tag: what it resolved to.
pub fn describe(res: &Resolved) -> String {
    let from = if res.from_store { "from the local store" } else { "pulled" };
    let mut s = format!(
        "{} is {}@sha256:{} (component sha256:{}, {from})",
        res.reference.uri(),
        OciRef { tag: None, digest: None, ..res.reference.clone() },
        res.manifest,
        res.layer
    );
    if let Some(before) = &res.moved_from {
        s.push_str(&format!("\nwarning: tag {} moved: it was {before} at the last pull", res.reference));
    }
    s
}
