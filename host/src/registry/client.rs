//! Talking to a registry, through oci-client (the ORAS project's client):
//! pushing a component's blobs and manifest, fetching a manifest and its
//! component layer. Every digest is checked here before anything reaches the
//! store: the manifest against its pin (or the registry's digest header),
//! the layer against the manifest. Errors say what to do (log in, --insecure,
//! check the name) rather than echoing HTTP.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use super::artifact::{self, Layer, MANIFEST_MEDIA_TYPE};
use super::reference::OciRef;
use super::{auth, Error};
use crate::vetting::{file::MAX_SCRIPT_FILE, Digest};

/// A client for `r`'s registry with the credentials the Docker config holds for it.
pub struct Session {
    client: Client,
    auth: RegistryAuth,
    has_credentials: bool,
    insecure: bool,
}

impl Session {
    pub async fn connect(r: &OciRef, insecure: bool) -> Result<Self, Error> {
        // reqwest is built without a default TLS provider (no OpenSSL, no
        // aws-lc build): install ring's once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (auth, file) = auth::for_registry(&r.registry).map_err(Error::Credentials)?;
        if let Some(f) = &file {
            crate::verbose!(1, "registry {}: credentials from {}", r.registry, f.display());
        }
        let config = ClientConfig {
            protocol: if insecure { ClientProtocol::Http } else { ClientProtocol::Https },
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            // A component is one blob; no platform indexes are followed.
            platform_resolver: None,
            ..Default::default()
        };
        let client = Client::new(config);
        client.store_auth_if_needed(&r.registry, &auth).await;
        Ok(Self { client, has_credentials: file.is_some(), auth, insecure })
    }

    fn explain(&self, r: &OciRef, e: OciDistributionError) -> Error {
        explain(r, e, self.has_credentials, self.insecure)
    }

    /// The manifest `r` names and its digest, checked against the pin.
    pub async fn manifest(&self, r: &OciRef) -> Result<(Vec<u8>, Digest), Error> {
        let (body, digest) = self
            .client
            .pull_manifest_raw(&r.client_ref(), &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.explain(r, e))?;
        let actual = Digest::of(&body);
        // oci-client compared the body with the pin or the registry's
        // digest header; compare again with what it returned.
        let claimed = digest.strip_prefix("sha256:").and_then(|h| h.parse::<Digest>().ok());
        if let Some(expected) = r.digest.or(claimed) {
            if expected != actual {
                return Err(Error::Tampered {
                    what: format!("the manifest of {r}"),
                    expected: format!("sha256:{expected}"),
                    actual: format!("sha256:{actual}"),
                });
            }
        }
        Ok((body.to_vec(), actual))
    }

    /// The component bytes of `layer`, checked against its digest.
    pub async fn layer(&self, r: &OciRef, layer: &Layer) -> Result<Vec<u8>, Error> {
        if layer.size > MAX_SCRIPT_FILE as u64 {
            return Err(Error::NotAComponent(format!(
                "{r}: its layer is {} bytes, more than the {MAX_SCRIPT_FILE} ovs-run runs",
                layer.size
            )));
        }
        let desc = oci_client::manifest::OciDescriptor {
            media_type: artifact::LAYER_MEDIA_TYPE.into(),
            digest: format!("sha256:{}", layer.digest),
            size: layer.size as i64,
            ..Default::default()
        };
        let mut out = Vec::with_capacity(layer.size as usize);
        self.client.pull_blob(&r.client_ref(), &desc, &mut out).await.map_err(|e| self.explain(r, e))?;
        let actual = Digest::of(&out);
        if actual != layer.digest {
            return Err(Error::Tampered {
                what: format!("the component layer of {r}"),
                expected: format!("sha256:{}", layer.digest),
                actual: format!("sha256:{actual}"),
            });
        }
        Ok(out)
    }

    /// Upload `bytes` (a component) and its config, then the manifest under `r`'s tag.
    pub async fn push(&self, r: &OciRef, bytes: &[u8], a: &artifact::Artifact) -> Result<(), Error> {
        let target = r.client_ref();
        let blob = |data: &[u8]| (data.to_vec(), format!("sha256:{}", Digest::of(data)));
        for (data, digest) in [blob(bytes), blob(&a.config)] {
            let exists = self.client.blob_exists(&target, &digest).await.unwrap_or(false);
            if !exists {
                self.client.push_blob(&target, data, &digest).await.map_err(|e| self.explain(r, e))?;
            }
        }
        let ct = MANIFEST_MEDIA_TYPE.parse().expect("a valid header value");
        self.client
            .push_manifest_raw(&target, a.manifest.clone(), ct)
            .await
            .map_err(|e| self.explain(r, e))?;
        Ok(())
    }
}

/// Map oci-client's errors onto what the user can act on.
fn explain(r: &OciRef, e: OciDistributionError, has_credentials: bool, insecure: bool) -> Error {
    let unauthorized =
        || Error::Unauthorized { registry: r.registry.clone(), had_credentials: has_credentials };
    let not_found = || Error::NotFound { reference: r.to_string() };
    match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            unauthorized()
        }
        OciDistributionError::ServerError { code: 401 | 403, .. } => unauthorized(),
        OciDistributionError::ServerError { code: 404, .. }
        | OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                unauthorized()
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found()
            } else {
                let msgs: Vec<String> =
                    envelope.errors.iter().map(|e| format!("{:?}: {}", e.code, e.message)).collect();
                Error::Registry(format!("{}: {}", r.registry, msgs.join("; ")))
            }
        }
        OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
            Error::Tampered { what: format!("the content of {r}"), expected, actual }
        }
        OciDistributionError::UnsupportedMediaTypeError(t)
        | OciDistributionError::IncompatibleLayerMediaTypeError(t) => {
            Error::NotAComponent(format!("{r}: unknown media type {t}"))
        }
        OciDistributionError::RequestError(re) if re.is_connect() || re.is_timeout() || re.is_request() => {
            let hint = if insecure {
                ""
            } else {
                " (a plain-HTTP registry, e.g. on loopback or in a lab, needs --insecure)"
            };
            Error::Unreachable { registry: r.registry.clone(), why: format!("{}{hint}", chain(&re)) }
        }
        other => Error::Registry(format!("{}: {}", r.registry, chain(&other))),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
