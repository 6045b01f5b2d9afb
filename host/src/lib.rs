//! ovs-run: run network automation written as sandboxed WebAssembly components.
//!
//! The layers, outermost first; each uses only the ones below it (checked by
//! `tests/layers.rs`: `cargo test --test layers`):
//! - [`cli`]: the command line; dispatches to the frontends.
//! - Frontends, which build runs and hand them to the runner: [`daemon`]
//!   (`ovs-run serve` / `submit`: tenants' scripts under a Cedar [`policy`]),
//!   [`lifecycle`] (ports collected when containers die, bindings re-run when they start)
//!   and [`docker_plugin`] (`ovs-run docker-plugin`, Docker's network and IPAM driver).
//! - What frontends share: [`config`] (system options), [`vetting`] (inspecting,
//!   signing and verifying scripts before they run).
//! - [`runner`]: one run of a script: gate, engine, rollback; owns the exit statuses.
//! - [`engine`]: wasmtime, the sandbox (WASI with nothing open, limits), the compile cache.
//! - [`capabilities`]: one module per WIT interface; turns Wasm values into typed requests.
//! - [`gate`]: the single choke point every capability call passes: policy check,
//!   journal entry, backend call, in that order.
//! - [`audit`], [`policy`] and [`journal`]: what the gate consults and records
//!   (rollback and crash recovery live in the journal).
//! - [`backend`]: the [`backend::Backend`] trait and its implementations: the dry-run
//!   planner and the real system (OVSDB, netlink, Docker). No backend knows Wasm.
//! - Shared by all: [`types`] (validated values, from the `ovs-run-types` crate the
//!   guest SDK shares), [`error`], [`verbose`], [`rundir`].
//! - [`vetting`]: inspecting, signing and verifying scripts before they run.
//! - [`inventory`]: what is attached where (`ovs-run ps`, `show`), read only.

pub mod audit;
pub mod backend;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod docker_plugin;
pub mod engine;
pub mod error;
pub mod gate;
pub mod inventory;
pub mod journal;
pub mod lifecycle;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod rundir;
pub mod runner;
pub mod tunnel;
pub mod types;
pub mod verbose;
pub mod vetting;
