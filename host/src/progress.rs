//! How far a long batch is, for whoever shows it. The backend reports the
//! stages of a batch of ports (veth pairs made, the one OVSDB transaction
//! applied); the command line, on a terminal, shows them (issue 19: 1000
//! containers must not look like a hang). Without a sink nothing happens,
//! so the daemon, the plugin and the tests pay nothing.

use std::sync::OnceLock;

/// Receives `(what, done, total)`; `done == total` ends a stage.
pub type Sink = Box<dyn Fn(&str, usize, usize) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Batches smaller than this finish too soon to need a word.
pub const MIN_TOTAL: usize = 20;

/// Install the process's sink (the first one wins).
pub fn set_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// `done` of `total` of `what` are finished.
pub fn step(what: &str, done: usize, total: usize) {
    if total >= MIN_TOTAL {
        if let Some(s) = SINK.get() {
            s(what, done, total);
        }
    }
}
