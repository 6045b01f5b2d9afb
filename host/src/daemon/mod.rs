//! Delegation to tenants: `ovs-run serve` runs as root and runs scripts that
//! other local users (tenants: people, CI jobs, teams) send it with
//! `ovs-run submit`, each under the operator's Cedar policy for that tenant.
//!
//! - Who: the kernel says (SO_PEERCRED on the Unix socket); the uid, else the
//!   primary gid, is looked up in the tenants file. Nothing the client sends
//!   names the tenant; an unknown uid is refused before anything is read.
//! - What: every capability call is authorized by the tenant's policy before
//!   it touches the system, and a script importing an interface the tenant
//!   may never use is refused before it runs.
//! - How much: per tenant, concurrent runs, timeout and memory come from the
//!   tenants file or the daemon's flags; a client cannot raise them. Requests
//!   are size-bounded and must arrive in time. Each run is its own task and
//!   Wasm yields at every epoch tick, so a spinning script cannot stall
//!   another tenant's run or the accept loop.
//! - Record: the audit log has a line per call and per run (and per refusal;
//!   refusals of peers that are no tenant are rate-limited and summarised).
//! - Stop: on SIGTERM the daemon stops accepting, interrupts its runs into
//!   their rollback, and exits when they are done (or after a grace period).
//!
//! [`protocol`] is the wire format, [`serve`] the daemon, [`submit`] the client.

mod allowlist;
pub mod protocol;
mod reqlog;
pub mod serve;
pub mod submit;
