//! The WIT bindings: one module per interface of `wit/ovs-run.wit`, each
//! turning Wasm values into typed requests (parsed once, errors naming the
//! value) and handing them to the [`Gate`]. Nothing here touches the system.
//!
//! Only interfaces added to the linker exist for a script: a component that
//! imports anything else is refused before it runs.

mod bridges;
mod containers;
mod diagnostics;
pub mod limits;
mod links;
mod log;
pub mod output;
mod ovn;
mod ports;
mod routes;
mod tunnels;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use self::output::OutputSink;
use crate::error::{CapError, CapResult, ErrorKind};
use crate::gate::Gate;
use crate::types::{ContainerRef, Datapath, IfName, NetnsName, TargetRef};

pub use self::log::LogLevel;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "script",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use ovs_run::net::types::{Error as WitError, Pair, Target as WitTarget};

/// The fully qualified names of the interfaces this host grants.
pub const GRANTED: &[&str] = &[
    "ovs-run:net/types@0.1.0",
    "ovs-run:net/bridges@0.1.0",
    "ovs-run:net/ports@0.1.0",
    "ovs-run:net/links@0.1.0",
    "ovs-run:net/routes@0.1.0",
    "ovs-run:net/containers@0.1.0",
    "ovs-run:net/diagnostics@0.1.0",
    "ovs-run:net/tunnels@0.1.0",
    "ovs-run:net/log@0.1.0",
    "ovs-run:net/ovn@0.1.0",
];

/// Per-run state of the capability interfaces.
pub struct Caps {
    gate: Arc<Gate>,
    default_datapath: Datapath,
    log_level: LogLevel,
    calls: u64,
    max_calls: u64,
    /// Audit lines the gate had written when the current call began: a call
    /// that ends in an error without adding one never reached the gate.
    audited_at_call: u64,
    /// Where stdout, stderr and log lines go instead of the terminal.
    output: Option<OutputSink>,
}

/// What a trappable host function returns: the outer error traps the guest.
type Trappable<T> = wasmtime::Result<Result<T, WitError>>;

impl Caps {
    pub fn new(gate: Arc<Gate>, default_datapath: Datapath, log_level: LogLevel, max_calls: u64) -> Self {
        Self { gate, default_datapath, log_level, calls: 0, max_calls, audited_at_call: 0, output: None }
    }

    /// Send the script's output and log lines to `sink` (ovs-run serve's client).
    pub fn with_output(mut self, sink: OutputSink) -> Self {
        self.output = Some(sink);
        self
    }

    pub fn output(&self) -> Option<&OutputSink> {
        self.output.as_ref()
    }

    /// Count a call; a runaway script is stopped (trapped) at `max_calls`.
    fn tick(&mut self) -> wasmtime::Result<()> {
        self.audited_at_call = self.gate.audited();
        self.calls += 1;
        if self.calls > self.max_calls {
            return Err(wasmtime::Error::msg(format!(
                "call limit reached: the script made more than {} capability calls",
                self.max_calls
            )));
        }
        Ok(())
    }

    /// A batch counts one call per item (at least one) towards --max-calls.
    fn tick_many(&mut self, items: usize) -> wasmtime::Result<()> {
        for _ in 0..items.max(1) {
            self.tick()?;
        }
        Ok(())
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Hand a call's result to the guest (never traps). A call refused
    /// before the gate saw it (an argument that does not parse or is over a
    /// limit) is audited here, as `call` with no decision: every call that a
    /// script made and that failed is on record, not only those the policy was asked about.
    fn finish<T>(&self, call: &str, r: CapResult<T>) -> Trappable<T> {
        if let Err(e) = &r {
            if e.kind == ErrorKind::Unavailable {
                self.gate.note_unavailable(&e.message);
            }
            if self.gate.audited() == self.audited_at_call {
                if let Err(audit) = self.gate.audit_refused(call, e) {
                    return wit(Err(audit));
                }
            }
        }
        wit(r)
    }
}

/// Add every capability interface to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Caps,
) -> wasmtime::Result<()> {
    ovs_run::net::types::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::bridges::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::ports::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::links::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::routes::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::containers::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::diagnostics::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::tunnels::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::log::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    ovs_run::net::ovn::add_to_linker::<T, HasSelf<Caps>>(linker, get)?;
    Ok(())
}

impl ovs_run::net::types::Host for Caps {}

impl From<CapError> for WitError {
    fn from(e: CapError) -> Self {
        let m = e.message;
        match e.kind {
            ErrorKind::InvalidArgument => WitError::InvalidArgument(m),
            ErrorKind::NotFound => WitError::NotFound(m),
            ErrorKind::AlreadyExists => WitError::AlreadyExists(m),
            ErrorKind::Denied => WitError::Denied(m),
            // The WIT contract has no such kind: to a script it is a failure.
            ErrorKind::Failed | ErrorKind::Unavailable => WitError::Failed(m),
        }
    }
}

/// Hand a capability result to the guest (never traps).
fn wit<T>(r: CapResult<T>) -> Trappable<T> {
    Ok(r.map_err(WitError::from))
}

fn target_ref(t: &WitTarget) -> CapResult<TargetRef> {
    Ok(match t {
        WitTarget::Host => TargetRef::Host,
        WitTarget::Container(c) => TargetRef::Container(ContainerRef::parse(c)?),
        WitTarget::Netns(n) => TargetRef::Netns(NetnsName::parse(n)?),
    })
}

fn ifname(s: &str) -> CapResult<IfName> {
    Ok(IfName::parse(s)?)
}

fn pairs(v: &[(String, String)]) -> Vec<Pair> {
    v.iter().map(|(k, val)| Pair { key: k.clone(), value: val.clone() }).collect()
}
