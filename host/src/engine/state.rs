//! What a script's store holds: the sandboxed WASI context, the resource
//! table, the memory budget and the capability state (the wasmtime-wasi
//! host-state pattern: one struct, a view trait per subsystem).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limiter::RunLimiter;
use crate::capabilities::output::Stream;
use crate::capabilities::Caps;

pub struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: RunLimiter,
    pub(crate) caps: Caps,
}

impl RunState {
    /// `stdout_to_stderr`: when ovs-run's own output (JSON) owns stdout.
    /// An output sink in `caps` takes both streams instead.
    pub fn new(caps: Caps, memory: usize, stdout_to_stderr: bool) -> Self {
        // Nothing is opened: no preopened directories, no environment, no
        // arguments (the script gets them through `run`), no network, no name
        // lookup. Only the user's terminal (or the daemon's client) for output.
        let mut builder = WasiCtx::builder();
        builder.allow_ip_name_lookup(false).allow_tcp(false).allow_udp(false);
        if let Some(sink) = caps.output() {
            builder.stdout(sink.stream(Stream::Stdout)).stderr(sink.stream(Stream::Stderr));
        } else if stdout_to_stderr {
            builder.inherit_stderr();
            builder.stdout(wasmtime_wasi::cli::stderr());
        } else {
            builder.inherit_stderr().inherit_stdout();
        }
        let wasi = builder.build();
        // One budget for every memory and table of the run (`--memory`).
        let limits = RunLimiter::new(memory);
        Self { wasi, table: ResourceTable::new(), limits, caps }
    }
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
