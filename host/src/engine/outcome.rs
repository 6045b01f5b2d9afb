//! How a run ended, and how a trap is explained to the user (which limit,
//! with a Wasm backtrace naming functions when the component has names).

use wasmtime::{Trap, WasmBacktrace};

use super::limiter::{MemoryLimit, MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};
use super::Limits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapReason {
    Timeout,
    Memory,
    StackOverflow,
    CallLimit,
    /// Stopped by a signal (SIGINT, SIGTERM, SIGHUP) to ovs-run.
    Interrupted,
    /// Any other trap: a panic, an abort, an out-of-bounds access.
    Trap,
}

#[derive(Debug)]
pub enum Outcome {
    Ok,
    /// `run` returned `err(message)`.
    ScriptError(String),
    Trapped {
        reason: TrapReason,
        message: String,
        backtrace: Option<String>,
    },
}

impl Outcome {
    pub fn from_result(r: wasmtime::Result<Result<(), String>>, limits: &Limits) -> Outcome {
        let e = match r {
            Ok(Ok(())) => return Outcome::Ok,
            Ok(Err(m)) => return Outcome::ScriptError(m),
            Err(e) => e,
        };
        let backtrace =
            e.downcast_ref::<WasmBacktrace>().filter(|b| !b.frames().is_empty()).map(|b| b.to_string());
        // A trap raised by the host (call limit, memory limit) is the root
        // cause under wasmtime's "error while executing" context.
        let root = e.root_cause().to_string();
        let (reason, message) = match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => (
                TrapReason::Timeout,
                format!("timeout: the script ran longer than {} s (--timeout)", limits.timeout.as_secs_f64()),
            ),
            Some(Trap::StackOverflow) => (
                TrapReason::StackOverflow,
                "stack limit: the script overflowed its Wasm stack (deep recursion?)".to_string(),
            ),
            _ if e.chain().any(|c| c.is::<MemoryLimit>()) => (TrapReason::Memory, root),
            // The instance/memory/table counts ([`super::limiter`]) are
            // refused by wasmtime itself while instantiating.
            _ if is_count_limit(&root) => (
                TrapReason::Memory,
                format!(
                    "memory limit: {root} (a run may create at most {MAX_INSTANCES} instances, \
                     {MAX_MEMORIES} memories and {MAX_TABLES} tables)"
                ),
            ),
            _ if root.contains("call limit reached") => (TrapReason::CallLimit, root),
            _ if root.contains("fuel allocated for hostcalls") => (
                TrapReason::Trap,
                format!(
                    "argument limit: a capability call passed more than {} MiB of arguments",
                    crate::capabilities::limits::MAX_CALL_DATA >> 20
                ),
            ),
            Some(t) => (TrapReason::Trap, format!("the script trapped: {t}")),
            None => (TrapReason::Trap, format!("the script failed: {root}")),
        };
        Outcome::Trapped { reason, message, backtrace }
    }
}

/// wasmtime's refusals of a count from `ResourceLimiter::{instances,
/// memories, tables}` ("resource limit exceeded: instance count too high at 1001").
fn is_count_limit(message: &str) -> bool {
    message.contains("resource limit exceeded")
        && ["instance count", "memory count", "table count"].iter().any(|w| message.contains(w))
}
