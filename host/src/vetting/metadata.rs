//! Script metadata in the component's own custom sections: name (the
//! `component-name` section), version, description, authors, source,
//! homepage, licenses and revision in the standard sections `wasm-metadata`
//! writes (what `wasm-tools metadata add|show` use), plus `ovs-run:usage`,
//! the script's argument help.
//!
//! The Rust SDK's `script!` embeds the crate's Cargo.toml fields and the
//! usage text in its core module (section `ovs-run-sdk:metadata`);
//! `ovs-run metadata set` lifts them to the component, where other tools
//! look, and takes explicit values for components built any other way.
//! Reading never trusts the sections to be well-formed: a script under
//! review may be hostile.

use serde::Serialize;
use wasm_metadata::{
    AddMetadata, AddMetadataField, Authors, Description, Homepage, Licenses, Revision, Source, Version,
};
use wasmparser::{ComponentName, KnownCustom, Parser, Payload};

/// The component-level section with the script's argument help.
pub const USAGE_SECTION: &str = "ovs-run:usage";
/// The section the SDK's `script!` writes into the core module.
pub const SDK_SECTION: &str = "ovs-run-sdk:metadata";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScriptMetadata {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Option<String>,
    pub source: Option<String>,
    pub homepage: Option<String>,
    pub licenses: Option<String>,
    pub revision: Option<String>,
    pub usage: Option<String>,
}

impl ScriptMetadata {
    /// `other`'s fields where it has them, ours elsewhere.
    pub fn overridden_by(mut self, other: ScriptMetadata) -> Self {
        let pick = |a: &mut Option<String>, b: Option<String>| {
            if b.is_some() {
                *a = b;
            }
        };
        pick(&mut self.name, other.name);
        pick(&mut self.version, other.version);
        pick(&mut self.description, other.description);
        pick(&mut self.authors, other.authors);
        pick(&mut self.source, other.source);
        pick(&mut self.homepage, other.homepage);
        pick(&mut self.licenses, other.licenses);
        pick(&mut self.revision, other.revision);
        pick(&mut self.usage, other.usage);
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A custom section and how deep it sits (0: the component itself).
struct Custom<'a> {
    depth: usize,
    name: &'a str,
    data: &'a [u8],
    known: KnownCustom<'a>,
}

fn custom_sections(bytes: &[u8]) -> Result<Vec<Custom<'_>>, String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a readable Wasm file: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) => {
                out.push(Custom { depth, name: c.name(), data: c.data(), known: c.as_known() })
            }
            _ => {}
        }
    }
    Ok(out)
}

fn text(data: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(data).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The component's own metadata (nested modules' sections are not the script's).
pub fn read(bytes: &[u8]) -> Result<ScriptMetadata, String> {
    let mut m = ScriptMetadata::default();
    for c in custom_sections(bytes)?.into_iter().filter(|c| c.depth == 0) {
        let slot = match c.name {
            "version" => &mut m.version,
            "description" => &mut m.description,
            "authors" => &mut m.authors,
            "source" => &mut m.source,
            "homepage" => &mut m.homepage,
            "licenses" => &mut m.licenses,
            "revision" => &mut m.revision,
            USAGE_SECTION => &mut m.usage,
            _ => {
                if let KnownCustom::ComponentName(names) = c.known {
                    for n in names.into_iter().flatten() {
                        if let ComponentName::Component { name, .. } = n {
                            m.name = text(name.as_bytes());
                        }
                    }
                }
                continue;
            }
        };
        *slot = text(c.data);
    }
    Ok(m)
}

/// What the Rust SDK's `script!` embedded, if it did: `key\0value\0` pairs.
pub fn embedded_by_sdk(bytes: &[u8]) -> Result<Option<ScriptMetadata>, String> {
    let Some(section) = custom_sections(bytes)?.into_iter().find(|c| c.name == SDK_SECTION) else {
        return Ok(None);
    };
    let mut m = ScriptMetadata::default();
    let mut fields = section.data.split(|b| *b == 0);
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        let value = text(value);
        match key {
            b"name" => m.name = value,
            b"version" => m.version = value,
            b"description" => m.description = value,
            // Cargo joins authors with ':'.
            b"authors" => m.authors = value.map(|v| v.split(':').collect::<Vec<_>>().join(", ")),
            b"repository" => m.source = value,
            b"homepage" => m.homepage = value,
            b"license" => m.licenses = value,
            b"usage" => m.usage = value,
            _ => {}
        }
    }
    Ok(Some(m))
}

/// Write `m`'s fields into the component (fields that are None stay as they are).
///
/// Signatures cover every section, so metadata goes in before signing; a
/// signed component is refused rather than silently invalidated.
pub fn set(bytes: &[u8], m: &ScriptMetadata) -> Result<Vec<u8>, String> {
    if super::signing::has_signatures(bytes) {
        return Err("it is signed, and changing its metadata would invalidate the signatures: \
                    set metadata on the unsigned build, then sign"
            .into());
    }
    let mut add = AddMetadata::default();
    let set = |v: &Option<String>| v.clone().map_or(AddMetadataField::Keep, AddMetadataField::Set);
    add.name = set(&m.name);
    add.version = map(set(&m.version), Version::new);
    add.description = map(set(&m.description), Description::new);
    add.authors = map(set(&m.authors), Authors::new);
    add.revision = map(set(&m.revision), Revision::new);
    add.source = try_map(set(&m.source), |s| {
        Source::new(&s).map_err(|e| anyhow::anyhow!("source '{s}' is not a URL: {e}"))
    })?;
    add.homepage = try_map(set(&m.homepage), |s| {
        Homepage::new(&s).map_err(|e| anyhow::anyhow!("homepage '{s}' is not a URL: {e}"))
    })?;
    add.licenses = try_map(set(&m.licenses), |s| {
        Licenses::new(&s).map_err(|e| anyhow::anyhow!("license '{s}' is not an SPDX expression: {e}"))
    })?;
    add.processed_by = vec![("ovs-run".into(), env!("CARGO_PKG_VERSION").into())];
    let out = add.to_wasm(bytes).map_err(|e| format!("cannot add metadata: {e:#}"))?;
    match &m.usage {
        Some(usage) => replace_custom_section(&out, USAGE_SECTION, usage.as_bytes()),
        None => Ok(out),
    }
}

fn map<T: Clone + std::fmt::Debug>(
    f: AddMetadataField<String>,
    g: impl Fn(String) -> T,
) -> AddMetadataField<T> {
    match f {
        AddMetadataField::Set(s) => AddMetadataField::Set(g(s)),
        AddMetadataField::Clear => AddMetadataField::Clear,
        AddMetadataField::Keep => AddMetadataField::Keep,
    }
}

fn try_map<T: Clone + std::fmt::Debug>(
    f: AddMetadataField<String>,
    g: impl Fn(String) -> anyhow::Result<T>,
) -> Result<AddMetadataField<T>, String> {
    Ok(match f {
        AddMetadataField::Set(s) => AddMetadataField::Set(g(s).map_err(|e| format!("{e:#}"))?),
        AddMetadataField::Clear => AddMetadataField::Clear,
        AddMetadataField::Keep => AddMetadataField::Keep,
    })
}

/// Drop the component's top-level custom sections named `name` and append one with `data`.
fn replace_custom_section(bytes: &[u8], name: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    use wasmsign2::{CustomSection, Module, Section};
    let mut module =
        Module::deserialize(&mut &bytes[..]).map_err(|e| format!("cannot read the component: {e}"))?;
    module.sections.retain(|s| !matches!(s, Section::Custom(c) if c.name() == name));
    module.sections.push(Section::Custom(CustomSection::new(name.to_string(), data.to_vec())));
    let mut out = Vec::with_capacity(bytes.len() + data.len() + 32);
    module.serialize(&mut out).map_err(|e| format!("cannot write the component: {e}"))?;
    Ok(out)
}
