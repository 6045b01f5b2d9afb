//! `ovs-run new NAME`: a script project anywhere, ready to build against
//! the SDKs of the ovs-run checkout this binary was built from (or the one
//! `--sdk` names): for Rust a Cargo project of its own (its own workspace,
//! the SDK by path), for Python, JavaScript and C the SDK's template script
//! beside a README that says how to build it with `guest-sdk/build-guest`
//! (which builds a script from any directory).

use std::path::{Path, PathBuf};

use super::EXIT_USAGE;

const NEW_HELP: &str = "\
Makes DIR (default: ./NAME) with a script that already works (it connects a
container to a bridge, like a small attach), and says how to build and run
it. Nothing is created when DIR exists.

Rust:    cargo build --release --target wasm32-wasip2 (rustup target add
         wasm32-wasip2 once), then ovs-run target/wasm32-wasip2/release/NAME.wasm
Python:  SDK/build-guest python NAME.py, then ovs-run NAME.wasm
JS, C:   SDK/build-guest js NAME.js (c NAME.c), then ovs-run NAME.wasm

Examples:
  ovs-run new my-attach
  ovs-run new --lang python --dir ~/net/vlan-check vlan-check
  ovs-run new --lang c port-audit";

#[derive(clap::Args, Debug)]
#[command(after_help = NEW_HELP)]
pub struct NewArgs {
    /// The script's name: lowercase letters, digits and '-', starting with a letter
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The language
    #[arg(long, value_name = "LANG", default_value = "rust", value_parser = ["rust", "python", "js", "c"])]
    pub lang: String,

    /// Where to make the project [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The guest-sdk directory of an ovs-run checkout [default: $OVS_RUN_SDK, else the checkout this binary was built from]
    #[arg(long, value_name = "DIR", env = "OVS_RUN_SDK")]
    pub sdk: Option<PathBuf>,
}

/// The checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

pub(super) fn run(a: NewArgs) -> i32 {
    match make(&a) {
        Ok(next) => {
            println!("{next}");
            0
        }
        Err(e) => {
            eprintln!("ovs-run new: {e}");
            EXIT_USAGE
        }
    }
}

fn make(a: &NewArgs) -> Result<String, String> {
    check_name(&a.name)?;
    let sdk = a.sdk.clone().unwrap_or_else(|| PathBuf::from(BUILT_SDK));
    let sdk = sdk.canonicalize().ok().filter(|s| s.join("Cargo.toml").is_file()).ok_or_else(|| {
        format!(
            "no ovs-run guest SDK at {}: give --sdk DIR (the guest-sdk directory of an ovs-run checkout)",
            sdk.display()
        )
    })?;
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from(&a.name));
    if dir.exists() {
        return Err(format!("{} exists; not touching it", dir.display()));
    }
    if a.lang == "rust" {
        write_all(&dir, &rust(&a.name, &sdk))?;
        let shown = dir.display();
        return Ok(format!(
            "made {shown} (Rust). Build and try it:\n  cd {shown} && cargo build --release --target wasm32-wasip2\n  \
             ovs-run --dry-run --assume-container web target/wasm32-wasip2/release/{}.wasm br0 web",
            a.name.replace('-', "_")
        ));
    }
    let t = Template::of(&a.lang, &a.name);
    write_all(&dir, &t.files(&a.name, &sdk)?)?;
    let shown = dir.display();
    Ok(format!(
        "made {shown} ({}). Build and try it:\n  {}/build-guest {} {shown}/{}\n  \
         ovs-run --dry-run --assume-container web {shown}/{}.wasm br0 web",
        t.language,
        sdk.display(),
        a.lang,
        t.file,
        a.name
    ))
}

/// A name that is a crate name, a Python module (with '_') and a file name.
fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a script name: lowercase letters, digits and '-', starting with a letter"
        ))
    }
}

/// Every file is written, or (on an error) the directory is removed again.
fn write_all(dir: &Path, files: &[(String, String)]) -> Result<(), String> {
    let write = || -> std::io::Result<()> {
        for (rel, text) in files {
            let p = dir.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, text)?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_dir_all(dir);
        format!("cannot write {}: {e}", dir.display())
    })
}

fn rust(name: &str, sdk: &Path) -> Vec<(String, String)> {
    let cargo = format!(
        r#"[package]
name = "{name}"
description = "What {name} does, in one line (ovs-run inspect and ovs-run scripts show it)"
version = "0.1.0"
edition = "2021"
publish = false

# A reactor component: ovs-run calls the exported `run`.
[lib]
crate-type = ["cdylib"]

[dependencies]
ovs-run-sdk = {{ path = "{sdk}" }}

# A project of its own, even inside another Cargo workspace.
[workspace]

# Small scripts compile fast on their first run (as the shipped ones are built).
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"
"#,
        sdk = sdk.display()
    );
    let lib = format!(
        r#"//! `{name}`: connects a container's interface to a bridge (a small attach).
//! Replace with what your script does; the SDK's docs: `cargo doc --open`.

use ovs_run_sdk::net::{{ContainerName, IfName, Mtu}};
use ovs_run_sdk::{{bridges, containers, info, ports, Args, Error, PortOptions, Target}};

const USAGE: &str = "\
Usage: {name} BRIDGE CONTAINER [--interface=eth1] [--mtu=N]

Connects CONTAINER's INTERFACE to BRIDGE (created when missing).";

fn main(args: Args) -> Result<(), Error> {{
    // Check every argument first: a bad value fails before any change.
    let [bridge, container] = args.exact(["BRIDGE", "CONTAINER"])?;
    let bridge: IfName = bridge.parse()?;
    let container: ContainerName = container.parse()?;
    let iface: IfName = args.opt_or("interface", "eth1")?;
    let mtu: Option<Mtu> = args.opt("mtu")?;

    if !containers::lookup(&container)?.running {{
        return Err(Error::msg(format!("container '{{container}}' is not running")));
    }}
    bridges::create(&bridge, bridges::Datapath::HostDefault, true)?;
    let port = ports::add(&bridge, &Target::container(&container), &iface, &PortOptions::new().mtu(mtu))?;
    info!("{{container}} {{iface}} is on {{bridge}} through port {{}}", port.name);
    Ok(())
}}

ovs_run_sdk::script!(main, usage: USAGE, options: ["interface", "mtu"]);
"#
    );
    let readme = format!(
        "# {name}\n\nAn ovs-run script in Rust.\n\n    rustup target add wasm32-wasip2   # once\n    \
         cargo build --release --target wasm32-wasip2\n    \
         ovs-run --dry-run --assume-container web target/wasm32-wasip2/release/{}.wasm br0 web\n\n\
         Before others run it: `ovs-run metadata set`, then `ovs-run sign --key KEY` the .wasm.\n",
        name.replace('-', "_")
    );
    vec![
        ("Cargo.toml".into(), cargo),
        ("src/lib.rs".into(), lib),
        ("README.md".into(), readme),
        (".gitignore".into(), "/target\n".into()),
    ]
}

/// A script made from the SDK's template for Python, JavaScript or C.
struct Template {
    /// `python`, `js` or `c`: the SDK's directory and build-guest's argument.
    lang: String,
    language: &'static str,
    /// The script's file: a Python module name ('_'), else NAME.js / NAME.c
    /// (build-guest names the component NAME.wasm either way).
    file: String,
}

impl Template {
    fn of(lang: &str, name: &str) -> Template {
        let (language, file) = match lang {
            "python" => ("Python", format!("{}.py", name.replace('-', "_"))),
            "js" => ("JavaScript", format!("{name}.js")),
            _ => ("C", format!("{name}.c")),
        };
        Template { lang: lang.to_string(), language, file }
    }

    fn files(&self, name: &str, sdk: &Path) -> Result<Vec<(String, String)>, String> {
        let ext = self.file.rsplit('.').next().unwrap_or_default();
        let template = sdk.join(&self.lang).join(format!("template/script.{ext}"));
        let text = std::fs::read_to_string(&template).map_err(|e| format!("{}: {e}", template.display()))?;
        let build = format!("{}/build-guest {} {}", sdk.display(), self.lang, self.file);
        let text = retarget_build_note(&text, &build, name)
            .replace("my-script", name)
            .replace("my_script", &name.replace('-', "_"));
        let readme = format!(
            "# {name}\n\nAn ovs-run script in {}.\n\n    {build}\n    \
             ovs-run --dry-run --assume-container web {name}.wasm br0 web\n",
            self.language
        );
        Ok(vec![(self.file.clone(), text), ("README.md".into(), readme)])
    }
}

/// The templates say how to build them inside the repository ("Copy this
/// file to scripts/LANG/NAME.EXT and build it with `make guests` (or ...)",
/// two comment lines); a project elsewhere builds with build-guest directly.
/// The comment's own prefix (`// `, ` * ` or none) is kept.
fn retarget_build_note(text: &str, build: &str, name: &str) -> String {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        match line.find("Copy this file to") {
            Some(at) => {
                let prefix = &line[..at];
                out.push(format!("{prefix}Build it with `{build}` (-> {name}.wasm)."));
                lines.next(); // the note's second line
            }
            None => out.push(line.to_string()),
        }
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "my-attach", "vlan2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "1x", "a_b", "a-", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_template_is_retargeted_to_build_guest() {
        let sdk = Path::new(BUILT_SDK);
        for lang in ["python", "js", "c"] {
            let t = Template::of(lang, "vlan-check");
            let files = t.files("vlan-check", sdk).unwrap();
            let text = &files[0].1;
            assert!(!text.contains("Copy this file") && !text.contains("my-script"), "{lang}: {text}");
            assert!(
                text.contains(&format!("build-guest {lang} {}` (-> vlan-check.wasm)", t.file)),
                "{lang}: {text}"
            );
        }
    }
}
