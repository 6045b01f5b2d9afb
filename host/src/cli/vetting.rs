//! The vetting commands: `ovs-run inspect`, `key`, `sign`, `verify` and
//! `metadata`. Exit status: 0 ok; 1 refused (a failed verification, a pin
//! that does not match); 2 usage error or unreadable input.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::EXIT_USAGE;
use crate::vetting::metadata::{self, ScriptMetadata};
use crate::vetting::signing::{self, KeyId, SignatureStatus};
use crate::vetting::trust::{self, TrustStore};
use crate::vetting::{check, check_pin, inspect, read_script_file, RequireSigned, ScriptRef};

const EXIT_REFUSED: i32 = 1;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The script, optionally pinned: SCRIPT@sha256:HEX, or a registry reference: oci://HOST/REPO[:TAG][@sha256:HEX]
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
    /// Trust store to judge the signatures against [default: /etc/ovs-run/trusted-keys, when it exists]
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,
    /// Print the inspection as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: crate::registry::cli::RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum KeyAction {
    /// Make an Ed25519 key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (for trust stores)
    Generate {
        /// Path and name of the key files, without extension (e.g. ~/keys/alice)
        #[arg(value_name = "PREFIX")]
        prefix: PathBuf,
    },
    /// List the keys of a trust store with their key ids
    List {
        /// The trust store [default: /etc/ovs-run/trusted-keys]
        #[arg(long, value_name = "DIR")]
        trust: Option<PathBuf>,
    },
    /// Print the key id of a public or secret key file (the id `inspect` shows for its signatures)
    Id {
        #[arg(value_name = "KEYFILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Secret key (PREFIX.key from `ovs-run key generate`, PEM or wasmsign2 format)
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// Write the signed script here instead of replacing SCRIPT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The script; signatures already on it are kept
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Trust store: a directory of public keys (*.pub) [default: /etc/ovs-run/trusted-keys]
    #[arg(long, value_name = "DIR")]
    pub trust: Option<PathBuf>,
    /// The script, optionally pinned: SCRIPT@sha256:HEX
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum MetadataAction {
    /// Write name, version, description, authors, source and usage into the component.
    ///
    /// Values the Rust SDK embedded (from the script crate's Cargo.toml and its
    /// usage text) are used unless given here. Run it before signing: a signed
    /// script is refused, since the change would invalidate its signatures.
    Set(Box<MetadataSetArgs>),
}

#[derive(Args, Debug)]
pub struct MetadataSetArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long = "version", value_name = "VERSION")]
    pub script_version: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Authors, e.g. "Alice <alice@example.com>, Bob"
    #[arg(long)]
    pub authors: Option<String>,
    /// URL of the script's source code
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    #[arg(long, value_name = "URL")]
    pub homepage: Option<String>,
    /// SPDX license expression, e.g. Apache-2.0
    #[arg(long, value_name = "SPDX")]
    pub license: Option<String>,
    /// Source revision, e.g. a git commit
    #[arg(long)]
    pub revision: Option<String>,
    /// The script's argument help, as `inspect` and reviewers see it
    #[arg(long, conflicts_with = "usage_file")]
    pub usage: Option<String>,
    /// Read the usage text from FILE
    #[arg(long, value_name = "FILE")]
    pub usage_file: Option<PathBuf>,
    /// Write the result here instead of replacing SCRIPT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
}

fn usage_error(msg: impl std::fmt::Display) -> i32 {
    eprintln!("ovs-run: {msg}");
    EXIT_USAGE
}

/// Read a script given as SCRIPT, SCRIPT@sha256:HEX or oci://REF; a pin
/// that does not match is a refusal.
fn read_script(arg: &Path, registry: &crate::registry::Options) -> Result<(ScriptRef, Vec<u8>), i32> {
    let (r, bytes) = crate::registry::source::load_blocking(arg, registry).map_err(usage_error)?;
    if let Some(pin) = &r.pin {
        if let Err(e) = check_pin(&bytes, pin) {
            eprintln!("ovs-run: {}: refused: {e}", r.path.display());
            return Err(EXIT_REFUSED);
        }
    }
    Ok((r, bytes))
}

/// The trust store given with --trust (which must be usable), else the
/// default one. Unless `required`, a default store that is missing or
/// unusable means judging against no keys (with a warning when unusable).
fn open_trust(dir: Option<&Path>, required: bool) -> Result<TrustStore, i32> {
    let default = trust::default_dir();
    match dir {
        Some(d) => TrustStore::open(d).map_err(usage_error),
        None if required => TrustStore::open(&default).map_err(usage_error),
        None if !default.exists() => Ok(TrustStore::empty()),
        None => Ok(TrustStore::open(&default).unwrap_or_else(|e| {
            eprintln!("ovs-run: warning: {e}; no key is trusted");
            TrustStore::empty()
        })),
    }
}

/// Replace `path` by `bytes` atomically, keeping its permissions.
fn write_file(path: &Path, bytes: &[u8], like: Option<&Path>) -> Result<(), String> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.ovs-run-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        fs::write(&tmp, bytes)?;
        if let Some(perm) = like.and_then(|l| fs::metadata(l).ok()).map(|m| m.permissions()) {
            fs::set_permissions(&tmp, perm)?;
        }
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

pub fn inspect(args: InspectArgs) -> i32 {
    let (r, bytes) = match read_script(&args.script, &args.registry.options()) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let trust = match open_trust(args.trust.as_deref(), false) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let inspection = match inspect::inspect(&bytes, &trust) {
        Ok(i) => i,
        Err(e) => return usage_error(format!("{}: {e}", r.path.display())),
    };
    let path = r.path.display().to_string();
    let text = if args.json {
        #[derive(serde::Serialize)]
        struct WithPath<'a> {
            path: &'a str,
            #[serde(flatten)]
            inspection: &'a inspect::Inspection,
        }
        let out = WithPath { path: &path, inspection: &inspection };
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
    } else {
        inspect::render(&path, &inspection)
    };
    // Not print!: a closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    0
}

pub fn key(action: KeyAction) -> i32 {
    match action {
        KeyAction::Generate { prefix } => match signing::generate(&prefix) {
            Ok((id, secret, public)) => {
                println!("key id {id}");
                println!("secret key {} (keep it private: it signs scripts)", secret.display());
                println!(
                    "public key {} (install it in {} on hosts that should run what it signs)",
                    public.display(),
                    trust::DEFAULT_DIR
                );
                0
            }
            Err(e) => usage_error(e),
        },
        KeyAction::List { trust } => {
            let store = match open_trust(trust.as_deref(), true) {
                Ok(t) => t,
                Err(code) => return code,
            };
            if store.is_empty() {
                eprintln!("ovs-run: {} holds no keys (*.pub)", store.describe());
            }
            for k in &store.keys {
                println!("{}  {}", k.id, k.file.display());
            }
            0
        }
        KeyAction::Id { file } => {
            let id = signing::load_public_key(&file)
                .map(|k| KeyId::of(&k))
                .or_else(|_| signing::load_secret_key(&file).map(|k| KeyId::of(&signing::public_of(&k))));
            match id {
                Ok(id) => {
                    println!("{id}");
                    0
                }
                Err(e) => usage_error(e),
            }
        }
    }
}

pub fn sign(args: SignArgs) -> i32 {
    let sk = match signing::load_secret_key(&args.key) {
        Ok(k) => k,
        Err(e) => return usage_error(e),
    };
    let bytes = match read_script_file(&args.script) {
        Ok(b) => b,
        Err(e) => return usage_error(e),
    };
    if !crate::engine::is_component(&bytes) {
        return usage_error(format!("{}: not a WebAssembly component", args.script.display()));
    }
    let signed = match signing::sign(&bytes, &sk) {
        Ok(s) => s,
        Err(e) => return usage_error(format!("{}: {e}", args.script.display())),
    };
    let out = args.output.as_deref().unwrap_or(&args.script);
    if let Err(e) = write_file(out, &signed, Some(&args.script)) {
        return usage_error(e);
    }
    let count = signing::examine(&signed, &TrustStore::empty()).signatures.len();
    let id = KeyId::of(&signing::public_of(&sk));
    println!("signed {} with key {id} ({count} signature(s) on it now)", out.display());
    0
}

pub fn verify(args: VerifyArgs) -> i32 {
    let (r, bytes) = match read_script(&args.script, &crate::registry::Options::new(false, None)) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let trust = match open_trust(args.trust.as_deref(), true) {
        Ok(t) => t,
        Err(code) => return code,
    };
    match check(&bytes, &trust, RequireSigned::Yes) {
        Ok(v) => {
            for s in &v.signatures.signatures {
                if let (Some(id), SignatureStatus::Trusted { key_file }) = (&s.key_id, &s.status) {
                    println!("{}: ok: signed by trusted key {id} ({key_file})", r.path.display());
                }
            }
            if v.signatures.signatures.iter().all(|s| !matches!(s.status, SignatureStatus::Trusted { .. })) {
                println!("{}: ok: signed by a trusted key", r.path.display());
            }
            0
        }
        Err(e) => {
            eprintln!("ovs-run: {}: refused: {e}", r.path.display());
            EXIT_REFUSED
        }
    }
}

pub fn metadata(action: MetadataAction) -> i32 {
    let MetadataAction::Set(a) = action;
    let a = *a;
    let bytes = match read_script_file(&a.script) {
        Ok(b) => b,
        Err(e) => return usage_error(e),
    };
    let usage = match &a.usage_file {
        Some(f) => match fs::read_to_string(f) {
            Ok(s) => Some(s),
            Err(e) => return usage_error(format!("cannot read --usage-file {}: {e}", f.display())),
        },
        None => a.usage.clone(),
    };
    let given = ScriptMetadata {
        name: a.name,
        version: a.script_version,
        description: a.description,
        authors: a.authors,
        source: a.source,
        homepage: a.homepage,
        licenses: a.license,
        revision: a.revision,
        usage,
    };
    let from_sdk = match metadata::embedded_by_sdk(&bytes) {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => return usage_error(format!("{}: {e}", a.script.display())),
    };
    let m = from_sdk.overridden_by(given);
    if m.is_empty() {
        return usage_error(format!(
            "{}: nothing to set: it was not built with the ovs-run SDK, so give the values (--name, --version, ...)",
            a.script.display()
        ));
    }
    let out_bytes = match metadata::set(&bytes, &m) {
        Ok(b) => b,
        Err(e) => return usage_error(format!("{}: {e}", a.script.display())),
    };
    let out = a.output.as_deref().unwrap_or(&a.script);
    if let Err(e) = write_file(out, &out_bytes, Some(&a.script)) {
        return usage_error(e);
    }
    let name = m.name.as_deref().unwrap_or("-");
    let version = m.version.as_deref().unwrap_or("-");
    println!("{}: metadata set ({name} {version})", out.display());
    0
}
