//! Raw bindings generated from `wit/ovs-run.wit` (world `script`).
//!
//! Scripts normally use the typed wrappers in the other modules; this module
//! is public for callers that need the exact WIT signatures (for example to
//! send a deliberately malformed string to the host in a test).

wit_bindgen::generate!({
    path: "../wit",
    world: "script",
    // The export macro must be reachable from the script crates, which are
    // the ones that implement `Guest`; the SDK itself exports nothing.
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "ovs_run_sdk::bindings",
});

pub use ovs_run::net::types::{Error as HostError, Pair, Target};
