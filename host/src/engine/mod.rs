//! The Wasm engine: loads a script component (through the compile cache),
//! checks its imports against what the host grants, and runs its `run` export
//! in a sandbox: WASI with nothing open (no files, env, sockets or name
//! lookup; stdout/stderr go to the user), a wall-clock deadline (epoch
//! interruption), a memory cap for the whole run (one budget for every memory and table,
//! [`limiter`]) and a bounded Wasm stack.

pub mod cache;
mod limiter;
mod outcome;
pub mod precheck;
mod state;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine as WasmEngine, Store, UpdateDeadline};

use crate::capabilities::{self, Caps, ScriptPre};
use crate::verbose;

pub use self::cache::{CacheEvent, CompileCache};
pub use self::outcome::{Outcome, TrapReason};
pub use self::state::RunState;
pub use crate::capabilities::output::{Chunk, OutputSink, Stream};

/// Epoch tick: the resolution of `--timeout`.
const TICK: Duration = Duration::from_millis(10);

/// How long [`Engine::load`] compiles before giving up, for callers without
/// a `--timeout` of their own (bindings re-run by `watch`).
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits of one run.
#[derive(Clone, Debug)]
pub struct Limits {
    pub timeout: Duration,
    pub memory: usize,
    pub max_calls: u64,
    /// Send the script's stdout to stderr (ovs-run prints JSON on stdout).
    pub stdout_to_stderr: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            memory: 64 << 20,
            max_calls: 100_000,
            stdout_to_stderr: false,
        }
    }
}

/// Why a script could not be loaded (exit status 2: nothing ran).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the script imports interfaces this host does not grant: {}\n(granted: ovs-run:net/* and WASI with no files, sockets or environment)",
        .0.join(", ")
    )]
    Ungranted(Vec<String>),
}

pub struct Engine {
    engine: WasmEngine,
    linker: Linker<RunState>,
    cache: CompileCache,
    stop_ticker: Arc<AtomicBool>,
}

/// The WASI interfaces `wasmtime_wasi::p2::add_to_linker_async` provides.
/// Sockets are linked but every use is denied, so a script that merely
/// imports them (as Python's and JS's runtimes do) still loads.
const WASI_LINKED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

impl Engine {
    pub fn new(cache: CompileCache) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        // .eh_frame for compiled scripts only serves outside unwinders;
        // Wasm backtraces do not need it, and registering it with libgcc is
        // a tenth of a cache hit's cost.
        config.native_unwind_info(false);
        let engine = WasmEngine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        capabilities::add_to_linker(&mut linker, |s: &mut RunState| &mut s.caps)?;

        // Epochs advance on a clock of their own, so a guest spinning without
        // calling the host is still interrupted.
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (e, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                e.increment_epoch();
            }
        })?;
        Ok(Self { engine, linker, cache, stop_ticker })
    }

    /// [`Engine::load_within`] the default compile deadline.
    pub fn load(&self, bytes: &[u8]) -> Result<(ScriptPre<RunState>, CacheEvent), LoadError> {
        self.load_within(bytes, DEFAULT_COMPILE_TIMEOUT)
    }

    /// Compile (or fetch from the cache) and check imports; nothing runs.
    /// What may be compiled is bounded first ([`precheck`]: size, functions,
    /// locals), then compiling gives up after `timeout`.
    pub fn load_within(
        &self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(ScriptPre<RunState>, CacheEvent), LoadError> {
        if !is_component(bytes) {
            return Err(LoadError::Invalid(
                "not a WebAssembly component (core modules and other files cannot run; build scripts for wasm32-wasip2)".into(),
            ));
        }
        precheck::check(bytes).map_err(|e| LoadError::Invalid(format!("refused before compiling: {e}")))?;
        let t = Instant::now();
        let (component, event) = self.compile(bytes, timeout)?;
        verbose!(1, "compile cache: {event:?} ({} ms)", t.elapsed().as_millis());
        let ungranted = self.ungranted_imports(&component);
        if !ungranted.is_empty() {
            return Err(LoadError::Ungranted(ungranted));
        }
        let pre =
            self.linker.instantiate_pre(&component).and_then(ScriptPre::new).map_err(|e| {
                LoadError::Invalid(format!("the script does not fit the ovs-run host: {e:#}"))
            })?;
        Ok((pre, event))
    }

    /// Compile on a thread of its own and wait at most `timeout` for it.
    /// Cranelift cannot be interrupted: past the deadline the caller gets
    /// its error at once and the thread finishes unobserved (the command
    /// line exits; the daemon's cost per submission is bounded by
    /// [`precheck`]'s limits).
    fn compile(&self, bytes: &[u8], timeout: Duration) -> Result<(Component, CacheEvent), LoadError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let (engine, cache, bytes) = (self.engine.clone(), self.cache.clone(), bytes.to_vec());
        std::thread::Builder::new()
            .name("compile".into())
            .spawn(move || {
                let _ = tx.send(cache.load(&engine, &bytes));
            })
            .map_err(|e| LoadError::Invalid(format!("cannot start compiling the script: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r.map_err(|e| LoadError::Invalid(format!("cannot compile the script: {e}"))),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(LoadError::Invalid(format!(
                "compiling the script took longer than the {} s timeout (--timeout); gave up",
                timeout.as_secs_f64()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(LoadError::Invalid("compiling the script failed: the compiler thread panicked".into()))
            }
        }
    }

    /// Every interface a loaded script imports (its permission manifest).
    pub fn imports(&self, pre: &ScriptPre<RunState>) -> Vec<String> {
        pre.instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Imports that neither our capabilities nor the sandboxed WASI provide.
    pub fn ungranted_imports(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .filter(|name| !is_granted(name))
            .collect()
    }

    /// Run `pre`'s `run(args)` with `caps`, within `limits`.
    pub async fn run(
        &self,
        pre: &ScriptPre<RunState>,
        caps: Caps,
        args: &[String],
        limits: &Limits,
    ) -> Outcome {
        let mut store = Store::new(&self.engine, RunState::new(caps, limits.memory, limits.stdout_to_stderr));
        store.limiter(|s| &mut s.limits);
        // What the host may allocate lifting one call's arguments (see capabilities::limits).
        store.set_hostcall_fuel(crate::capabilities::limits::MAX_CALL_DATA);
        // At every tick the script yields to the async runtime, so a script
        // that spins without calling the host holds a worker thread for at
        // most one tick: other runs (and `ovs-run serve`'s accept loop) go on.
        // Past the deadline the next tick interrupts it.
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
        });

        let started = Instant::now();
        let call = async {
            let script = pre.instantiate_async(&mut store).await?;
            script.call_run(&mut store, args).await
        };
        // The epoch deadline stops Wasm code; this stops a host call that hangs.
        let result = match tokio::time::timeout(limits.timeout + Duration::from_secs(1), call).await {
            Ok(r) => r,
            Err(_) => {
                return Outcome::Trapped {
                    reason: TrapReason::Timeout,
                    message: format!(
                        "the script did not finish within the {} s timeout (stuck in a capability call)",
                        limits.timeout.as_secs_f64()
                    ),
                    backtrace: None,
                }
            }
        };
        verbose!(
            1,
            "script ran for {} ms, {} capability calls",
            started.elapsed().as_millis(),
            store.data().caps.calls()
        );
        Outcome::from_result(result, limits)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Whether this host provides the imported interface `name` (any version):
/// an ovs-run capability or the sandboxed WASI.
pub fn is_granted(name: &str) -> bool {
    let base = name.split('@').next().unwrap_or(name);
    capabilities::GRANTED.iter().any(|g| g.split('@').next() == Some(base)) || WASI_LINKED.contains(&base)
}

/// Components carry layer 1 in their header (core modules: layer 0).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[6..8] == [1, 0]
}
