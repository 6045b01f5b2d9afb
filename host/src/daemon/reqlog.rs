//! One line per request on the daemon's stderr, for journald and log
//! shippers: `ovs-run serve: event=run request=7 tenant=a uid=1001 ...`,
//! logfmt (key=value, values with spaces or quotes quoted). The audit log
//! has the details of every call; these lines say what each connection came
//! to, where an operator looks first.
//!
//! Refusals of peers that are no tenant are rate-limited here as they are
//! in the audit log: a local flood must not flood the journal.

use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A line being built.
pub struct Line {
    text: String,
}

impl Line {
    pub fn new(event: &str, request: u64) -> Self {
        let mut l = Self { text: String::new() };
        l.field("event", event);
        l.field("request", request);
        l
    }

    pub fn field(&mut self, key: &str, value: impl Display) -> &mut Self {
        let v = value.to_string();
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let _ = write!(self.text, "{key}={}", quote(&v));
        self
    }

    #[cfg(test)]
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn emit(&self) {
        eprintln!("ovs-run serve: {}", self.text);
    }
}

/// A logfmt value: bare when it can be, else double-quoted with `"`, `\`
/// and control characters escaped (one request, one line).
fn quote(v: &str) -> String {
    let bare = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if bare {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Request numbers, and the strangers' refusal budget.
pub struct RequestLog {
    next: AtomicU64,
    strangers: Mutex<Window>,
}

struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Strangers' refusals logged per second; the rest are counted.
const STRANGER_LINES_PER_SEC: u32 = 5;

impl Default for RequestLog {
    fn default() -> Self {
        Self {
            next: AtomicU64::new(1),
            strangers: Mutex::new(Window { start: Instant::now(), logged: 0, suppressed: 0 }),
        }
    }
}

impl RequestLog {
    /// The number of a new connection.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Emit a stranger's refusal unless over the budget; the first line of a
    /// new second says how many were left out before it.
    pub fn emit_stranger(&self, line: &mut Line) {
        let mut w = self.strangers.lock().unwrap_or_else(|p| p.into_inner());
        if w.start.elapsed().as_secs() >= 1 {
            if w.suppressed > 0 {
                line.field("suppressed_before", w.suppressed);
            }
            *w = Window { start: Instant::now(), logged: 0, suppressed: 0 };
        }
        if w.logged < STRANGER_LINES_PER_SEC {
            w.logged += 1;
            line.emit();
        } else {
            w.suppressed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let mut l = Line::new("run", 3);
        l.field("tenant", "a").field("error", "port \"x\" gone\nnext").field("args", "");
        assert_eq!(l.text(), r#"event=run request=3 tenant=a error="port \"x\" gone\nnext" args="""#);
    }
}
