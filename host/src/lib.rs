//! ovs-run: run network automation written as sandboxed WebAssembly components.
//!
//! The layers, outermost first, each a folder or file here:
//! - [`runner`]: one run of a script: gate, engine, rollback.
//! - [`lifecycle`]: container ports collected when containers die, bindings re-run when they start.
//! - [`engine`]: wasmtime, the sandbox (WASI with nothing open, limits), the compile cache.
//! - [`capabilities`]: one module per WIT interface; turns Wasm values into typed requests.
//! - [`gate`]: the single choke point every capability call passes: policy check,
//!   journal entry, backend call, in that order.
//! - [`policy`] and [`journal`]: what the gate consults and records (rollback lives in the journal).
//! - [`daemon`]: `ovs-run serve` / `submit`: tenants' scripts run by a root
//!   daemon under a Cedar [`policy`], every call in the [`audit`] log.
//! - [`backend`]: the [`backend::Backend`] trait and its implementations: the dry-run
//!   planner and the real system (OVSDB, netlink, Docker). No backend knows Wasm.
//! - [`vetting`]: inspecting, signing and verifying scripts before they run.
//! - [`inventory`]: what is attached where (`ovs-run ps`, `show`), read only.

pub mod audit;
pub mod backend;
pub mod capabilities;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod error;
pub mod gate;
pub mod inventory;
pub mod journal;
pub mod lifecycle;
pub mod policy;
pub mod runner;
pub mod sandbox;
pub mod types;
pub mod verbose;
pub mod vetting;
