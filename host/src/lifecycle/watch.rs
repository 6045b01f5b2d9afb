//! The watcher: reconcile, then follow Docker's container events, for as
//! long as it is not told to stop. Used by `ovs-run watch`, and meant to be
//! spawned by the daemon as it is.
//!
//! Nothing is missed between the reconciliation and the events: the events
//! are asked for from a moment before the reconciliation began (Docker
//! replays what it still remembers), and every handler is idempotent, so an
//! event seen by both does no harm. When the event stream breaks (dockerd
//! restarted), the watcher reconnects with the same overlap, reconciling again.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::sync::watch as signal;

use super::{Action, Lifecycle, Reporter};
use crate::error::CapResult;

/// The slack taken before the reconciliation when asking Docker for events
/// (its timestamps and ours come from the same clock, at second resolution).
const OVERLAP: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct WatchConfig {
    pub lifecycle: Lifecycle,
    /// Told about every action, one at a time, in order.
    pub report: Reporter,
    /// The watcher returns once this is true (or its sender is dropped),
    /// never in the middle of handling an event or running a script.
    pub stop: signal::Receiver<bool>,
}

/// Run the watcher until stopped. Fails only when the first reconciliation
/// does (Docker or OVSDB unreachable at start-up); later trouble is reported
/// and retried with a growing pause. The future is `Send + 'static`, so it
/// can be given to `tokio::spawn` (`ovs-run watch` does exactly that).
pub async fn watch(cfg: WatchConfig) -> CapResult<()> {
    let WatchConfig { lifecycle: lc, report, mut stop } = cfg;
    let docker = lc.system.docker();
    let mut backoff = BACKOFF_MIN;
    let mut first = true;
    loop {
        if stopping(&stop) {
            return Ok(());
        }
        let since = SystemTime::now() - OVERLAP;
        match lc.reconcile(&report).await {
            Ok(done) => report(&done),
            Err(e) if first => return Err(e),
            Err(e) => {
                report(&Action::Error { message: format!("reconciling: {e}; retrying in {backoff:?}") });
                if pause(&mut stop, &mut backoff).await {
                    return Ok(());
                }
                continue;
            }
        }
        first = false;
        let mut events = match docker.container_events(since).await {
            Ok(s) => s,
            Err(e) => {
                report(&Action::Error { message: format!("{e}; retrying in {backoff:?}") });
                if pause(&mut stop, &mut backoff).await {
                    return Ok(());
                }
                continue;
            }
        };
        report(&Action::Watching { docker: docker.uri().to_string() });
        backoff = BACKOFF_MIN;
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                next = events.next() => next,
            };
            match next {
                Some(Ok(ev)) => lc.on_event(&ev, &report).await,
                Some(Err(e)) => {
                    report(&Action::Error { message: format!("{e}; reconnecting in {backoff:?}") });
                    break;
                }
                None => {
                    report(&Action::Error {
                        message: format!("Docker closed the event stream; reconnecting in {backoff:?}"),
                    });
                    break;
                }
            }
        }
        if pause(&mut stop, &mut backoff).await {
            return Ok(());
        }
    }
}

fn stopping(stop: &signal::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Wait `backoff` (doubling it for next time) unless told to stop; true = stop.
async fn pause(stop: &mut signal::Receiver<bool>, backoff: &mut Duration) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    tokio::select! {
        _ = stop.changed() => true,
        _ = tokio::time::sleep(wait) => stopping(stop),
    }
}
