//! Progress for long work on a terminal (issue 19, item 9): a compile that
//! misses the cache (a Python script's first run takes ~20 s) says what is
//! happening once it has taken a moment, and how long it took. Only on a
//! terminal, only on stderr, never with `--json` or `-q`: stdout stays the
//! script's (or the JSON document's).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Quiet work below this needs no word ($OVS_RUN_PROGRESS_AFTER_MS
/// overrides it: the tests make a quick compile count as long).
const AFTER: Duration = Duration::from_millis(700);

fn after() -> Duration {
    std::env::var("OVS_RUN_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(AFTER, Duration::from_millis)
}

/// Says `what` on stderr if the guard lives longer than [`AFTER`], and then,
/// when it is dropped, how long it took.
pub struct Notice {
    state: Option<(Arc<AtomicBool>, Arc<AtomicBool>, Instant)>,
}

impl Notice {
    /// `enabled`: the caller's verdict (not --json, not -q); the terminal is checked here.
    pub fn after_a_moment(enabled: bool, what: String) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Self { state: None };
        }
        let (done, said) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (d, s) = (done.clone(), said.clone());
        let wait = after();
        let spawned = std::thread::Builder::new().name("progress".into()).spawn(move || {
            std::thread::sleep(wait);
            if !d.load(Ordering::SeqCst) {
                s.store(true, Ordering::SeqCst);
                eprintln!("ovs-run: {what} ...");
            }
        });
        Self { state: spawned.ok().map(|_| (done, said, Instant::now())) }
    }
}

impl Drop for Notice {
    fn drop(&mut self) {
        if let Some((done, said, started)) = &self.state {
            done.store(true, Ordering::SeqCst);
            if said.load(Ordering::SeqCst) {
                eprintln!("ovs-run: ... done in {:.1} s", started.elapsed().as_secs_f64());
            }
        }
    }
}

/// Show the stages of long batches ([`crate::progress`]: 1000 containers'
/// veth pairs, then their one OVSDB transaction) on a terminal: one line per
/// stage, rewritten in place at most ten times a second. `enabled`: not
/// --json, not -q.
pub fn show_batches(enabled: bool) {
    if !enabled || !std::io::stderr().is_terminal() {
        return;
    }
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    crate::progress::set_sink(Box::new(move |what, done, total| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let end = done == total;
        if !end && done != 0 && last.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        let mut err = std::io::stderr().lock();
        // Carriage return and erase-line: the stage's line is rewritten in place.
        let _ = write!(err, "\r\x1b[Kovs-run: {what}: {done}/{total}");
        if end {
            let _ = writeln!(err);
        }
    }));
}
