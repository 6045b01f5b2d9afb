//! `ovs-run push FILE REF` and `ovs-run pull REF` (`pull --list`: what the
//! local store holds). Exit status: 0 ok; 1 refused (a digest that does not
//! match, not a component); 2 usage error, unreachable registry, 401, 404.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::store::{self, Store};
use super::{Error, OciRef, Options};
use crate::runner::exit::EXIT_USAGE;

const EXIT_REFUSED: i32 = 1;

/// How to reach a registry: shared by push, pull, inspect.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Reach the registry over plain HTTP (a registry on loopback or in a lab)
    #[arg(long)]
    pub insecure: bool,
    /// Cache directory; the pulled scripts are kept in its oci/ folder [default: /var/cache/ovs-run for root]
    #[arg(long, value_name = "DIR", env = "OVS_RUN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn options(&self) -> Options {
        Options::new(self.insecure, self.cache_dir.clone())
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  ovs-run push scripts/attach.wasm registry.example:5000/netops/attach:1.2.0\n\n\
Prints the manifest digest; pin it as oci://HOST/REPO@sha256:HEX. Push after signing:\n\
the signatures are inside the component and travel with it."
)]
pub struct PushArgs {
    /// The script component (signed, with its metadata set)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to push: HOST[:PORT]/REPO[:TAG] (oci:// optional)
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  ovs-run pull registry.example:5000/netops/attach:1.2.0\n  ovs-run pull --list\n\n\
Prints the manifest digest. Pulling again is harmless: blobs already stored are\n\
not fetched again, and a tag that now names other content is reported."
)]
pub struct PullArgs {
    /// What to pull: HOST[:PORT]/REPO[:TAG][@sha256:HEX] (oci:// optional)
    #[arg(value_name = "REF", required_unless_present = "list")]
    pub reference: Option<String>,
    /// List the references the local store holds instead
    #[arg(long, conflicts_with = "reference")]
    pub list: bool,
    /// With --list: JSON
    #[arg(long, requires = "list")]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn fail(e: &Error) -> i32 {
    eprintln!("ovs-run: {e}");
    match e {
        Error::Tampered { .. } | Error::NotAComponent(_) => EXIT_REFUSED,
        _ => EXIT_USAGE,
    }
}

pub async fn push(a: PushArgs) -> i32 {
    let r = match OciRef::parse(&a.reference) {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    let bytes = match crate::vetting::read_script_file(&a.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ovs-run: {e}");
            return EXIT_USAGE;
        }
    };
    if !crate::engine::is_component(&bytes) {
        eprintln!("ovs-run: {}: not a WebAssembly component", a.file.display());
        return EXIT_USAGE;
    }
    match super::push(&r, &bytes, &a.registry.options()).await {
        Ok(digest) => {
            let pinned = OciRef { tag: None, ..r.pinned(digest) };
            eprintln!(
                "ovs-run: pushed {} to {r} (component sha256:{}); run it pinned: {}",
                a.file.display(),
                crate::vetting::Digest::of(&bytes),
                pinned.uri()
            );
            println!("sha256:{digest}");
            0
        }
        Err(e) => fail(&e),
    }
}

pub async fn pull(a: PullArgs) -> i32 {
    let opts = a.registry.options();
    if a.list {
        return list(&opts, a.json);
    }
    let r = match OciRef::parse(a.reference.as_deref().unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return fail(&e.into()),
    };
    match super::pull(&r, &opts).await {
        Ok(res) => {
            if let Some(before) = &res.moved_from {
                eprintln!("ovs-run: warning: tag {r} moved: it was {before} at the last pull");
            }
            eprintln!(
                "ovs-run: {r}: component sha256:{} ({} bytes) in {}",
                res.layer,
                res.bytes.len(),
                opts.store_dir.display()
            );
            println!("sha256:{}", res.manifest);
            0
        }
        Err(e) => fail(&e),
    }
}

/// The store's references, one a line (or JSON): the function the `scripts` listing can use too.
pub fn list(opts: &Options, json: bool) -> i32 {
    let listed = match Store::open(&opts.store_dir).and_then(|s| s.list()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ovs-run: {e}");
            return EXIT_USAGE;
        }
    };
    let text =
        if json { serde_json::to_string_pretty(&listed).unwrap_or_default() + "\n" } else { render(&listed) };
    let _ = std::io::stdout().write_all(text.as_bytes());
    0
}

/// A table of the store's references.
pub fn render(listed: &[store::Listed]) -> String {
    if listed.is_empty() {
        return "the local OCI store holds no scripts (ovs-run pull HOST/REPO:TAG)\n".into();
    }
    let mut out = String::new();
    let width = listed.iter().map(|l| l.reference.len()).max().unwrap_or(0).max(9);
    out.push_str(&format!(
        "{:<width$}  {:<19}  {:<19}  NAME VERSION\n",
        "REFERENCE", "MANIFEST", "COMPONENT"
    ));
    for l in listed {
        let short = |d: &str| d.get(..19).unwrap_or(d).to_string();
        out.push_str(&format!(
            "{:<width$}  {:<19}  {:<19}  {} {}\n",
            l.reference,
            short(&l.record.manifest),
            short(&l.record.layer),
            l.record.name.as_deref().unwrap_or("-"),
            l.record.version.as_deref().unwrap_or("-"),
        ));
    }
    out
}
