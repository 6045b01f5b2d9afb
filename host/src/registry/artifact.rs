//! The artifact layout: the CNCF Wasm OCI artifact (what `wkg oci push`,
//! `wash push` and Spin use): an OCI image manifest whose config has media
//! type `application/vnd.wasm.config.v0+json` and whose one layer is the
//! component itself, `application/wasm`, byte for byte. So the layer digest
//! is the component's sha256 (what `ovs-run inspect` prints), and its
//! wasmsign2 signatures travel inside it.
//!
//! The component's metadata (see [`crate::vetting::metadata`]) becomes the
//! manifest's `org.opencontainers.image.*` annotations, for registry UIs and
//! other clients; ovs-run itself always judges the layer's bytes, never the
//! annotations.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};

use crate::vetting::{metadata, Digest};

pub const MANIFEST_MEDIA_TYPE: &str = OCI_IMAGE_MEDIA_TYPE;
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The older wasm-to-oci layout, still accepted on pull.
const LEGACY_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// What `push` uploads: the blobs and the manifest that names them.
pub struct Artifact {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// The annotations for `bytes`' metadata (fields it lacks are left out).
pub fn annotations(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let m = metadata::read(bytes)?;
    let mut out = BTreeMap::new();
    for (key, value) in [
        ("title", m.name),
        ("version", m.version),
        ("description", m.description),
        ("authors", m.authors),
        ("source", m.source),
        ("url", m.homepage),
        ("licenses", m.licenses),
        ("revision", m.revision),
    ] {
        if let Some(v) = value {
            out.insert(format!("org.opencontainers.image.{key}"), v);
        }
    }
    Ok(out)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", Digest::of(bytes))
}

/// The config and manifest for component `bytes`. Deterministic (no
/// timestamp): pushing the same component twice gives the same digest.
pub fn build(bytes: &[u8]) -> Result<Artifact, String> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [sha(bytes)],
    }))
    .expect("JSON serializes");
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: OciDescriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: sha(&config),
            size: config.len() as i64,
            ..Default::default()
        },
        layers: vec![OciDescriptor {
            media_type: LAYER_MEDIA_TYPE.into(),
            digest: sha(bytes),
            size: bytes.len() as i64,
            ..Default::default()
        }],
        subject: None,
        artifact_type: None,
        annotations: Some(annotations(bytes)?).filter(|a| !a.is_empty()),
    };
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    Ok(Artifact { manifest_digest: Digest::of(&manifest), config, manifest })
}

/// The component layer a pulled manifest names: its digest and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
}

/// Read a manifest and find its component layer; anything but a Wasm
/// component artifact (an image, an index, several layers, an unknown media
/// type) is refused, naming what it is.
pub fn layer_of(manifest: &[u8]) -> Result<(Layer, BTreeMap<String, String>), String> {
    let m: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("the manifest is not an OCI image manifest: {e}"))?;
    if let Some(mt) = m.media_type.as_deref().filter(|t| *t != MANIFEST_MEDIA_TYPE) {
        return Err(format!("unknown manifest media type {mt} (expected {MANIFEST_MEDIA_TYPE})"));
    }
    let config = m.config.media_type.as_str();
    if config != CONFIG_MEDIA_TYPE && config != LEGACY_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "unknown config media type {config}: not a Wasm component artifact (expected {CONFIG_MEDIA_TYPE})"
        ));
    }
    let [layer] = m.layers.as_slice() else {
        return Err(format!("the manifest has {} layers; a Wasm component artifact has one", m.layers.len()));
    };
    if layer.media_type != LAYER_MEDIA_TYPE && layer.media_type != LEGACY_LAYER_MEDIA_TYPE {
        return Err(format!(
            "unknown layer media type {}: not a Wasm component (expected {LAYER_MEDIA_TYPE})",
            layer.media_type
        ));
    }
    let digest = layer
        .digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("layer digest {} is not sha256:HEX", layer.digest))?
        .parse::<Digest>()?;
    let size = u64::try_from(layer.size).map_err(|_| format!("layer size {} is negative", layer.size))?;
    Ok((Layer { digest, size }, m.annotations.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_manifests_read_back_and_are_deterministic() {
        let wasm = wat::parse_str("(component)").unwrap();
        let a = build(&wasm).unwrap();
        assert_eq!(a.manifest, build(&wasm).unwrap().manifest);
        let (layer, _) = layer_of(&a.manifest).unwrap();
        assert_eq!(layer, Layer { digest: Digest::of(&wasm), size: wasm.len() as u64 });
        let v: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(v["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(v["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
    }

    #[test]
    fn other_artifacts_are_refused_by_media_type() {
        let wasm = wat::parse_str("(component)").unwrap();
        let a = build(&wasm).unwrap();
        let text = String::from_utf8(a.manifest).unwrap();
        let image = text.replace(LAYER_MEDIA_TYPE, "application/vnd.oci.image.layer.v1.tar+gzip");
        let e = layer_of(image.as_bytes()).unwrap_err();
        assert!(e.contains("unknown layer media type application/vnd.oci.image.layer.v1.tar+gzip"), "{e}");
        let cfg = text.replace(CONFIG_MEDIA_TYPE, "application/vnd.oci.image.config.v1+json");
        assert!(layer_of(cfg.as_bytes()).unwrap_err().contains("config media type"));
    }
}
