//! Write ovs-run network scripts in Rust.
//!
//! A script is a WebAssembly component (`wasm32-wasip2`) that exports `run`
//! from the `ovs-run:net` WIT world and calls the host's capabilities:
//! [`bridges`], [`ports`], [`links`], [`routes`], [`containers`],
//! [`diagnostics`] and [`log`]. A component imports only the interfaces its
//! code calls, so what a script may do can be read off its import list.
//!
//! The SDK adds typed values checked before anything reaches the host
//! ([`net`]), a command-line parser ([`Args`]), one [`Error`] type that `?`
//! converts into, and the [`script!`] macro that turns a plain `main` into
//! the component's export.
//!
//! # Example
//!
//! ```no_run
//! # #![no_main] // rustdoc would take the script's `main` for the program's.
//! use ovs_run_sdk::net::{Cidr, IfName, Mtu};
//! use ovs_run_sdk::{bridges, info, links, ports, Args, Error, PortOptions, Target};
//!
//! const USAGE: &str = "\
//! Usage: plug BRIDGE NETNS [--address=CIDR] [--mtu=N]
//! Connects network namespace NETNS to BRIDGE through eth1.";
//!
//! fn main(args: Args) -> Result<(), Error> {
//!     // Validate everything first: a bad value fails before any change.
//!     let [bridge, netns] = args.exact(["BRIDGE", "NETNS"])?;
//!     let bridge: IfName = bridge.parse()?;
//!     let address: Option<Cidr> = args.opt("address")?;
//!     let mtu: Option<Mtu> = args.opt("mtu")?;
//!
//!     let target = Target::netns(netns.as_str());
//!     bridges::create(&bridge, bridges::Datapath::HostDefault, true)?;
//!     let port = ports::add(&bridge, &target, "eth1", &PortOptions::new().mtu(mtu))?;
//!     info!("{target} is on {bridge} through port {}", port.name);
//!     if let Some(address) = address {
//!         links::set_address(&target, "eth1", &address)?;
//!     }
//!     Ok(())
//! }
//!
//! ovs_run_sdk::script!(main, usage: USAGE, options: ["address", "mtu"]);
//! ```
//!
//! Build it as a `cdylib` (`[lib] crate-type = ["cdylib"]`) with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component.

use std::io::Write;

pub mod args;
pub mod bindings;
pub mod bridges;
pub mod containers;
pub mod diagnostics;
mod error;
pub mod links;
pub mod log;
pub mod net;
pub mod ovn;
pub mod ports;
pub mod routes;
mod target;
pub mod tunnels;

pub use args::{Arg, Args, Spec};
pub use bindings::HostError;
pub use error::{Context, Error};
pub use log::{debug, error, info, trace, warn};
pub use ports::{PortOptions, PortRef, PortRequest};
pub use routes::Route;
pub use target::Target;

/// Makes `main` the script's `run` export.
///
/// `script!(main, usage: USAGE, options: ["mtu", "vlan"])` parses the
/// arguments against the usage text and option names, prints the usage and
/// succeeds on `--help`, and otherwise calls `main(args)`; an `Err` becomes
/// the error string the host reports. `options` may be left out.
///
/// Use it once per crate, at the top level.
#[macro_export]
macro_rules! script {
    ($main:path, usage: $usage:expr $(, options: [$($opt:literal),* $(,)?])? $(,)?) => {
        #[doc(hidden)]
        struct __OvsRunScript;

        impl $crate::bindings::Guest for __OvsRunScript {
            fn run(
                args: ::std::vec::Vec<::std::string::String>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                let spec = $crate::Spec {
                    usage: $usage,
                    options: &[$($($opt),*)?],
                };
                $crate::__run(args, spec, $main)
            }
        }

        $crate::bindings::export!(__OvsRunScript with_types_in $crate::bindings);

        // The crate's Cargo.toml fields and the usage text, in a custom
        // section of the core module: `ovs-run metadata set` lifts them into
        // the component's standard metadata, where `ovs-run inspect` and
        // `wasm-tools metadata show` read them.
        const __OVS_RUN_METADATA_FIELDS: [&str; 16] = [
            "name", $crate::__cargo_env!("CARGO_PKG_NAME"),
            "version", $crate::__cargo_env!("CARGO_PKG_VERSION"),
            "description", $crate::__cargo_env!("CARGO_PKG_DESCRIPTION"),
            "authors", $crate::__cargo_env!("CARGO_PKG_AUTHORS"),
            "repository", $crate::__cargo_env!("CARGO_PKG_REPOSITORY"),
            "homepage", $crate::__cargo_env!("CARGO_PKG_HOMEPAGE"),
            "license", $crate::__cargo_env!("CARGO_PKG_LICENSE"),
            "usage", $usage,
        ];
        #[doc(hidden)]
        #[used]
        #[link_section = "ovs-run-sdk:metadata"]
        static __OVS_RUN_METADATA: [u8; $crate::__metadata_len(&__OVS_RUN_METADATA_FIELDS)] =
            $crate::__metadata(&__OVS_RUN_METADATA_FIELDS);
    };
}

/// A Cargo package variable of the crate being built, "" outside Cargo.
#[doc(hidden)]
#[macro_export]
macro_rules! __cargo_env {
    ($var:literal) => {
        match ::core::option_env!($var) {
            Some(v) => v,
            None => "",
        }
    };
}

/// The size of [`__metadata`]'s output: every field followed by a NUL.
#[doc(hidden)]
pub const fn __metadata_len(fields: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < fields.len() {
        n += fields[i].len() + 1;
        i += 1;
    }
    n
}

/// `key\0value\0...`, built at compile time for a `link_section` static.
#[doc(hidden)]
pub const fn __metadata<const N: usize>(fields: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let (mut at, mut i) = (0, 0);
    while i < fields.len() {
        let bytes = fields[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            // A NUL inside a field would shift the pairs: drop it.
            if bytes[j] != 0 {
                out[at] = bytes[j];
                at += 1;
            }
            j += 1;
        }
        at += 1;
        i += 1;
    }
    out
}

/// The body of every `run` export; see [`script!`].
#[doc(hidden)]
pub fn __run(raw: Vec<String>, spec: Spec, main: fn(Args) -> Result<(), Error>) -> Result<(), String> {
    match Args::parse(raw, spec) {
        Ok(Some(args)) => main(args).map_err(|e| e.to_string()),
        Ok(None) => {
            // Not println!: it panics (traps) when the host gave no usable stdout.
            let _ = writeln!(std::io::stdout(), "{}", spec.usage.trim_end());
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}
