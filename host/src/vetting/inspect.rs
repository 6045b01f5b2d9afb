//! `ovs-run inspect`: the review screen. Everything is read statically from
//! the component's bytes (its type, custom sections and signatures); nothing
//! is compiled or run, so inspecting a hostile script is safe.
//!
//! The import list is the permission manifest: a script can do nothing but
//! call the interfaces it imports, and the host refuses what it does not grant.

use std::fmt::Write as _;

use serde::Serialize;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldItem, WorldKey};

use super::metadata::{self, ScriptMetadata};
use super::signing::{self, SignatureReport, SignatureStatus};
use super::{Digest, TrustStore, Verdict};
use crate::engine;

/// What each capability interface lets a script do, for the reviewer.
const CAPABILITIES: &[(&str, &str)] = &[
    ("bridges", "create and delete Open vSwitch bridges (deleting one removes all its ports), list them"),
    ("ports", "add and remove bridge ports for containers, netns and host interfaces (a new veth with its addresses and default route); set VLANs"),
    ("links", "change links in the host, containers or netns: addresses, MTU, MAC, up/down"),
    ("routes", "add and remove routes in the host, containers or netns"),
    ("containers", "look up Docker containers by name, id or labels (read-only)"),
    ("diagnostics", "ping from inside the host, a container or a netns"),
    ("tunnels", "add and remove GRE, VXLAN and Geneve tunnel ports to other hosts, list them"),
    ("ovn", "create, delete and list OVN logical switches, their ports and logical routers in the northbound database"),
    ("log", "print messages for the user"),
    ("types", "shared type definitions only: grants nothing"),
];

const CAPABILITY_PACKAGE: &str = "ovs-run:net/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportKind {
    /// An ovs-run:net interface.
    Capability,
    /// WASI, sandboxed (nothing open).
    Wasi,
    /// Neither: this host refuses to run the script.
    NotGranted,
}

#[derive(Clone, Debug, Serialize)]
pub struct Import {
    /// As the component names it, e.g. `ovs-run:net/bridges@0.1.0`.
    pub name: String,
    pub kind: ImportKind,
    /// The functions of the interface the component uses.
    pub functions: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    pub sha256: Digest,
    pub size: usize,
    pub metadata: ScriptMetadata,
    /// The ovs-run:net interfaces imported, short names (`bridges`, ...).
    pub capabilities: Vec<String>,
    pub imports: Vec<Import>,
    pub exports: Vec<String>,
    /// The component's world in WIT.
    pub world: String,
    /// The trust store signatures were judged against (None: no trust store).
    pub trust_store: Option<String>,
    pub verdict: Verdict,
    pub signatures: SignatureReport,
}

pub fn inspect(bytes: &[u8], trust: &TrustStore) -> Result<Inspection, String> {
    if !engine::is_component(bytes) {
        return Err("not a WebAssembly component (core modules and other files cannot run)".into());
    }
    let decoded = wit_component::decode(bytes).map_err(|e| format!("not a valid component: {e:#}"))?;
    let DecodedWasm::Component(resolve, world_id) = &decoded else {
        return Err("a WIT package, not a script component".into());
    };
    let world = &resolve.worlds[*world_id];

    let mut imports: Vec<Import> = world
        .imports
        .iter()
        .map(|(key, item)| {
            let name = key_name(resolve, key);
            let functions = match item {
                WorldItem::Interface { id, .. } => {
                    resolve.interfaces[*id].functions.keys().cloned().collect()
                }
                WorldItem::Function(f) => vec![f.name.clone()],
                WorldItem::Type { .. } => vec![],
            };
            let kind = if name.starts_with(CAPABILITY_PACKAGE) && engine::is_granted(&name) {
                ImportKind::Capability
            } else if engine::is_granted(&name) {
                ImportKind::Wasi
            } else {
                ImportKind::NotGranted
            };
            Import { name, kind, functions }
        })
        .collect();
    imports.sort_by_key(|i| (i.kind as u8, capability_rank(&i.name), i.name.clone()));
    let capabilities = imports
        .iter()
        .filter(|i| i.kind == ImportKind::Capability)
        .map(|i| short_name(&i.name).to_string())
        .collect();
    let exports = world.exports.keys().map(|k| key_name(resolve, k)).collect();

    let mut printer = WitPrinter::default();
    printer.emit_docs(false);
    printer.print(resolve, decoded.package(), &[]).map_err(|e| format!("cannot print the world: {e:#}"))?;
    let world_text = printer.output.to_string();

    let signatures = signing::examine(bytes, trust);
    Ok(Inspection {
        sha256: Digest::of(bytes),
        size: bytes.len(),
        metadata: metadata::read(bytes)?,
        capabilities,
        imports,
        exports,
        world: world_text,
        trust_store: trust.dir.as_ref().map(|d| d.display().to_string()),
        verdict: Verdict::of(&signatures),
        signatures,
    })
}

fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(n) => n.clone(),
        WorldKey::Interface(id) => resolve.id_of(*id).unwrap_or_else(|| "(anonymous interface)".into()),
    }
}

/// `ovs-run:net/bridges@0.1.0` -> `bridges`; `wasi:cli/stdout@0.2.0` -> `cli/stdout`.
fn short_name(name: &str) -> &str {
    let base = name.split('@').next().unwrap_or(name);
    let rest = base.split_once(':').map_or(base, |(_, rest)| rest);
    rest.strip_prefix("net/").unwrap_or(rest)
}

fn capability_rank(name: &str) -> usize {
    let short = short_name(name);
    CAPABILITIES.iter().position(|(n, _)| *n == short).unwrap_or(CAPABILITIES.len())
}

/// Text from the component, made safe for a terminal: control characters
/// and bidirectional overrides (which can make text read differently from
/// what it is) are shown escaped.
pub fn clean(s: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
        if (c == '\n' && multiline) || c == '\t' || !(c.is_control() || bidi) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    out
}

/// The review screen as text.
pub fn render(path: &str, i: &Inspection) -> String {
    let mut o = String::new();
    let m = &i.metadata;
    let field = |v: &Option<String>| v.as_deref().map_or("-".to_string(), |s| clean(s, false));
    let _ = writeln!(o, "{}", clean(path, false));
    let _ = writeln!(o, "  name         {}", field(&m.name));
    let _ = writeln!(o, "  version      {}", field(&m.version));
    let _ = writeln!(o, "  description  {}", field(&m.description));
    let _ = writeln!(o, "  authors      {}", field(&m.authors));
    let _ = writeln!(o, "  source       {}", field(&m.source));
    for (label, v) in [("homepage", &m.homepage), ("licenses", &m.licenses), ("revision", &m.revision)] {
        if v.is_some() {
            let _ = writeln!(o, "  {label:<12} {}", field(v));
        }
    }
    let _ = writeln!(o, "  size         {} bytes", i.size);
    let _ = writeln!(o, "  sha256       {}", i.sha256);
    let _ = writeln!(o, "  pinned run   ovs-run {}@sha256:{}", clean(path, false), i.sha256);

    let store = i.trust_store.as_deref().map_or("no trust store".to_string(), |d| format!("trust store {d}"));
    let _ = writeln!(o, "\nSignatures: {} (against {store})", verdict_text(i.verdict));
    if let Some(why) = &i.signatures.malformed {
        let _ = writeln!(o, "  unreadable: {}", clean(why, false));
    }
    for s in &i.signatures.signatures {
        let id = s.key_id.as_ref().map_or("(no key id)".to_string(), |k| k.to_string());
        let what = match &s.status {
            SignatureStatus::Trusted { key_file } => format!("valid, trusted key {key_file}"),
            SignatureStatus::UnknownKey => "key not in the trust store".into(),
            SignatureStatus::Modified { key_file } => {
                format!("DOES NOT MATCH: the file changed after trusted key {key_file} signed it")
            }
            SignatureStatus::Invalid { key_file } => {
                format!("INVALID signature claiming trusted key {key_file}")
            }
            SignatureStatus::Anonymous => "no key id (counts if it verifies with a trusted key)".into(),
        };
        let _ = writeln!(o, "  key {id}  {what}");
    }

    let _ = writeln!(o, "\nCapabilities (the script can do nothing else):");
    if i.capabilities.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for imp in i.imports.iter().filter(|i| i.kind == ImportKind::Capability) {
        let short = short_name(&imp.name);
        let what = CAPABILITIES.iter().find(|(n, _)| *n == short).map_or("", |(_, d)| d);
        let _ = writeln!(o, "  {short:<12} {what}");
        if !imp.functions.is_empty() {
            let _ = writeln!(o, "  {:<12} uses: {}", "", clean(&imp.functions.join(", "), false));
        }
    }
    let wasi: Vec<&str> =
        i.imports.iter().filter(|i| i.kind == ImportKind::Wasi).map(|i| short_name(&i.name)).collect();
    if !wasi.is_empty() {
        let _ = writeln!(
            o,
            "  {:<12} sandboxed: no files, sockets or environment; output to the terminal",
            "WASI"
        );
        let _ = writeln!(o, "  {:<12} uses: {}", "", group_wasi(&wasi));
    }
    let refused: Vec<String> = i
        .imports
        .iter()
        .filter(|i| i.kind == ImportKind::NotGranted)
        .map(|i| clean(&i.name, false))
        .collect();
    if !refused.is_empty() {
        let _ =
            writeln!(o, "  NOT GRANTED by this host (the script cannot run here): {}", refused.join(", "));
    }

    if let Some(usage) = &m.usage {
        let _ = writeln!(o, "\nUsage (from the script):");
        for line in clean(usage, true).lines() {
            let _ = writeln!(o, "{}", format!("  {line}").trim_end());
        }
    }
    let _ = writeln!(o, "\nWIT world:");
    // The decoder names the package of a component's own world root:component: noise here.
    let world_lines = clean(&i.world, true);
    for line in world_lines.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("package root:")) {
        let _ = writeln!(o, "  {line}");
    }
    o
}

/// `cli/stdout, cli/stderr, io/poll` -> `cli/{stderr, stdout}, io/poll`.
fn group_wasi(names: &[&str]) -> String {
    let mut groups: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for n in names {
        let (pkg, iface) = n.split_once('/').unwrap_or((n, ""));
        groups.entry(pkg).or_default().push(iface);
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(pkg, mut ifaces)| {
            ifaces.sort_unstable();
            match ifaces.as_slice() {
                [one] => format!("{pkg}/{one}"),
                many => format!("{pkg}/{{{}}}", many.join(", ")),
            }
        })
        .collect();
    clean(&parts.join(", "), false)
}

fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Trusted => "TRUSTED",
        Verdict::Unsigned => "unsigned",
        Verdict::Untrusted => "signed, but by no trusted key",
        Verdict::Modified => "MODIFIED after signing",
        Verdict::Invalid => "INVALID signature",
        Verdict::Malformed => "unreadable signature section",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_granted_capability_is_described() {
        for g in crate::capabilities::GRANTED {
            let short = short_name(g);
            assert!(CAPABILITIES.iter().any(|(n, _)| *n == short), "{g} ({short}) has no description");
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("ovs-run:net/bridges@0.1.0"), "bridges");
        assert_eq!(short_name("wasi:cli/stdout@0.2.3"), "cli/stdout");
        assert_eq!(short_name("run"), "run");
    }

    #[test]
    fn wasi_grouping() {
        assert_eq!(group_wasi(&["io/poll", "cli/stdout", "cli/exit"]), "cli/{exit, stdout}, io/poll");
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        assert_eq!(clean("a\x1b[2Jb", false), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\u{202E}y", false), "x\\u{202e}y");
        assert_eq!(clean("l1\nl2", true), "l1\nl2");
        assert_eq!(clean("l1\nl2", false), "l1\\u{a}l2");
    }
}
