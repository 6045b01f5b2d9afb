//! `-v` output: what ovs-run itself is doing (cache, timings, each change),
//! as `tracing` events on stderr. Runs and the changes they make are spans, so
//! when a daemon runs many scripts at once every line says which run (and
//! which tenant) it belongs to: `ovs-run: run{id=3 tenant=a}: add-port in 12.0 ms`.
//! With `--json` the same events are JSON lines instead.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// `-v` given `v` times: 1 shows what ovs-run does, 2 also each change's timing.
pub fn set_level(v: u8) {
    init(v, false);
}

/// [`set_level`], rendering events as JSON lines when `json`.
pub fn init(v: u8, json: bool) {
    LEVEL.store(v, Ordering::Relaxed);
    if v == 0 {
        return;
    }
    let max = if v >= 2 { tracing::Level::TRACE } else { tracing::Level::DEBUG };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(max);
    // A second call (a test, a frontend that sets it again) keeps the first subscriber.
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(true).try_init()
    } else {
        builder.event_format(Plain).try_init()
    };
}

pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// `ovs-run: SPAN{fields}: SPAN{fields}: message`, the way ovs-run has always
/// printed its `-v` lines, with the spans they happen in.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        w.write_str("ovs-run: ")?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                w.write_str(span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        write!(w, "{{{fields}}}")?;
                    }
                }
                w.write_str(": ")?;
            }
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// `verbose!(1, "compile cache: hit")`: an event shown with `-v` (2: `-vv`).
#[macro_export]
macro_rules! verbose {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::verbose::level() >= $lvl {
            if $lvl <= 1 {
                tracing::debug!("{}", format_args!($($arg)*));
            } else {
                tracing::trace!("{}", format_args!($($arg)*));
            }
        }
    };
}
