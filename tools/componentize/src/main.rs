//! `ovs-run-componentize`: the two steps of building a C script that need the
//! component-model tooling, done with its library crates so that CI builds
//! them once with the workspace instead of installing `wit-bindgen-cli` and
//! `wasm-tools` (20 minutes of compiling on two cores).
//!
//! - `c-bindings`: C bindings for a WIT world (what `wit-bindgen c` writes):
//!   `WORLD.h`, `WORLD.c` and `WORLD_component_type.o`, the object that
//!   carries the world's type into the linked core module.
//! - `component`: a core module built for `wasm32-wasi` (WASI preview 1)
//!   becomes a component, its preview-1 imports served by wasmtime's
//!   `wasi_snapshot_preview1` reactor adapter (which speaks WASI 0.2 to the host).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_parser::Resolve;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write C bindings for WORLD of the WIT package in --wit to --out.
    CBindings {
        /// The WIT package: a directory or a .wit file.
        #[arg(long, default_value = "wit")]
        wit: PathBuf,
        /// The world to generate bindings for.
        #[arg(long, default_value = "script")]
        world: String,
        /// Directory the bindings are written to (created when missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a wasm32-wasi core module (linked with WORLD_component_type.o) a component.
    Component {
        /// The core module.
        module: PathBuf,
        /// The component to write.
        #[arg(short, long)]
        out: PathBuf,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("ovs-run-componentize: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::CBindings { wit, world, out } => c_bindings(&wit, &world, &out),
        Command::Component { module, out } => component(&module, &out),
    }
}

fn c_bindings(wit: &std::path::Path, world: &str, out: &std::path::Path) -> Result<()> {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve.push_path(wit).with_context(|| format!("reading WIT from {}", wit.display()))?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default().build().generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn component(module: &std::path::Path, out: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    if !bytes.starts_with(b"\0asm\x01\0\0\0") {
        bail!("{} is not a core WebAssembly module", module.display());
    }
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .context("the module carries no component type: link it with WORLD_component_type.o")?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?
        .validate(true)
        .encode()?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
