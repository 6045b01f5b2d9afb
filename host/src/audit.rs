//! The audit log: one JSON line per authorized capability call and one per
//! run, appended to a file with a single `write(2)` each (O_APPEND, so lines
//! of concurrent runs never interleave) before the call returns to the
//! script. A line that cannot be written fails the call: nothing happens
//! that is not on record.
//!
//! Call lines: `{"time","event":"call","run","tenant","uid","script_sha256",
//! "action","resource","arguments","decision","policies","result","error",
//! "duration_ms"}`; run lines: `{"event":"run",...,"args","status","exit",
//! "changes","rolled_back","duration_ms"}`; refused connections of
//! `ovs-run serve`: `{"event":"refused","uid","gid","pid","error"}`.
//!
//! Peers that are not tenants cost the daemon nothing but a connection, so
//! their refusals are rate-limited ([`RefusalLog`]): the first of each uid
//! per second is written in full, the rest are counted, and so are the
//! connections dropped at the daemon's connection cap; each second with
//! counts gets one `{"event":"refused-summary"}` line. A stranger cannot grow
//! the log faster than two lines a second per uid (nor fill the disk, which
//! would stop every tenant: a failed audit write fails the call).

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::error::CapError;
use crate::policy::Decision;

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Open (create, mode 0640) for appending; its directory is created 0750.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).mode(0o640).open(path)?;
        Ok(Self { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record, stamped with the time, as one line.
    pub fn write(&self, mut record: Map<String, Value>) -> io::Result<()> {
        record.insert("time".into(), Value::String(rfc3339(SystemTime::now())));
        let mut line = serde_json::to_vec(&Value::Object(record)).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // One write: O_APPEND makes it atomic with respect to other writers.
        f.write_all(&line)?;
        f.flush()
    }
}

/// The rate-limited part of the audit log: refusals of peers that are not
/// tenants, and connections dropped at the connection cap (module doc).
pub struct RefusalLog {
    log: Arc<AuditLog>,
    window: Mutex<Window>,
}

/// How long one summary covers.
const WINDOW: Duration = Duration::from_secs(1);
/// Distinct uids tracked per window (the rest are counted together):
/// the bookkeeping is bounded too.
const MAX_UIDS: usize = 256;

struct Window {
    started: Instant,
    /// Uids whose refusal was written in full this window.
    written: HashSet<u32>,
    /// Refusals counted, not written, per uid.
    suppressed: BTreeMap<u32, u64>,
    /// Refusals of uids past MAX_UIDS.
    suppressed_other: u64,
    /// Connections dropped unanswered at the connection cap.
    dropped: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            written: HashSet::new(),
            suppressed: BTreeMap::new(),
            suppressed_other: 0,
            dropped: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.suppressed.is_empty() && self.suppressed_other == 0 && self.dropped == 0
    }
}

impl RefusalLog {
    pub fn new(log: Arc<AuditLog>) -> Self {
        Self { log, window: Mutex::new(Window::new()) }
    }

    /// A refused peer that is no tenant: `record` is written when it is the
    /// first of `uid` this second, else counted for the summary.
    pub fn refused(&self, uid: u32, record: Map<String, Value>) -> io::Result<()> {
        let mut w = self.lock_rolled()?;
        if w.written.len() < MAX_UIDS && w.written.insert(uid) {
            drop(w);
            return self.log.write(record);
        }
        if w.suppressed.len() < MAX_UIDS || w.suppressed.contains_key(&uid) {
            *w.suppressed.entry(uid).or_default() += 1;
        } else {
            w.suppressed_other += 1;
        }
        Ok(())
    }

    /// A connection dropped at the connection cap (its peer is not known yet).
    pub fn dropped_at_cap(&self) -> io::Result<()> {
        self.lock_rolled()?.dropped += 1;
        Ok(())
    }

    /// Write the summary of a window that is over (the daemon calls this
    /// every second, so counts are reported even when the flood stops);
    /// `force`: the current one too (at exit).
    pub fn flush(&self, force: bool) -> io::Result<()> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if force || w.started.elapsed() >= WINDOW {
            self.summarise(&mut w)?;
        }
        Ok(())
    }

    fn lock_rolled(&self) -> io::Result<std::sync::MutexGuard<'_, Window>> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.elapsed() >= WINDOW {
            self.summarise(&mut w)?;
        }
        Ok(w)
    }

    /// One line for the window's counts (none when nothing was counted); a new window.
    fn summarise(&self, w: &mut Window) -> io::Result<()> {
        let old = std::mem::replace(w, Window::new());
        if old.is_empty() {
            return Ok(());
        }
        let mut m = Map::new();
        m.insert("event".into(), json!("refused-summary"));
        m.insert("seconds".into(), json!(old.started.elapsed().as_secs_f64()));
        let by_uid: Map<String, Value> =
            old.suppressed.iter().map(|(uid, n)| (uid.to_string(), json!(n))).collect();
        let total = old.suppressed.values().sum::<u64>() + old.suppressed_other;
        m.insert("refused_not_written".into(), json!(total));
        m.insert("by_uid".into(), Value::Object(by_uid));
        m.insert("other_uids".into(), json!(old.suppressed_other));
        m.insert("dropped_at_connection_cap".into(), json!(old.dropped));
        self.log.write(m)
    }
}

/// Who and what one run is, stamped on each of its lines.
#[derive(Clone)]
pub struct RunAudit {
    log: Arc<AuditLog>,
    pub run: String,
    pub tenant: String,
    pub uid: Option<u32>,
    pub script_sha256: String,
}

/// What an audited call came to.
pub enum CallResult<'a> {
    Ok(Value),
    Err(&'a CapError),
}

impl RunAudit {
    pub fn new(log: Arc<AuditLog>, tenant: &str, uid: Option<u32>, script_sha256: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let run = format!("{}-{}-{}", std::process::id(), started, N.fetch_add(1, Ordering::Relaxed));
        Self { log, run, tenant: tenant.to_string(), uid, script_sha256: script_sha256.to_string() }
    }

    fn base(&self, event: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event".into(), json!(event));
        m.insert("run".into(), json!(self.run));
        m.insert("tenant".into(), json!(self.tenant));
        m.insert("uid".into(), json!(self.uid));
        m.insert("script_sha256".into(), json!(self.script_sha256));
        m
    }

    /// One capability call. `decision` is None when the call failed before
    /// the policy could be asked (a container that does not exist).
    pub fn call(
        &self,
        action: &str,
        resource: &str,
        arguments: Value,
        decision: Option<&Decision>,
        result: CallResult<'_>,
        duration: Duration,
    ) -> io::Result<()> {
        let mut m = self.base("call");
        m.insert("action".into(), json!(action));
        m.insert("resource".into(), json!(resource));
        m.insert("arguments".into(), arguments);
        m.insert("decision".into(), json!(decision.map(|d| if d.allowed { "allow" } else { "deny" })));
        m.insert("policies".into(), json!(decision.map(|d| &d.policies)));
        match result {
            CallResult::Ok(v) => {
                m.insert("result".into(), v);
            }
            CallResult::Err(e) => {
                m.insert("result".into(), json!(e.kind));
                m.insert("error".into(), json!(e.message));
            }
        }
        m.insert("duration_ms".into(), json!(duration.as_secs_f64() * 1000.0));
        self.log.write(m)
    }

    /// The end of the run.
    pub fn run_finished(&self, fields: Map<String, Value>) -> io::Result<()> {
        let mut m = self.base("run");
        m.extend(fields);
        self.log.write(m)
    }
}

/// `2025-01-02T03:04:05.678Z` (UTC), without a date library.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_one_line_per_uid_per_second_plus_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let r = RefusalLog::new(log);
        let rec = |uid: u32| {
            let mut m = Map::new();
            m.insert("event".into(), json!("refused"));
            m.insert("uid".into(), json!(uid));
            m
        };
        for _ in 0..10_000 {
            r.refused(4242, rec(4242)).unwrap();
        }
        r.refused(7, rec(7)).unwrap();
        for _ in 0..5 {
            r.dropped_at_cap().unwrap();
        }
        r.flush(true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["uid"], 4242);
        assert_eq!(lines[1]["uid"], 7);
        let s = &lines[2];
        assert_eq!(s["event"], "refused-summary");
        assert_eq!(s["refused_not_written"], 9_999);
        assert_eq!(s["by_uid"]["4242"], 9_999);
        assert_eq!(s["dropped_at_connection_cap"], 5);
        // Nothing counted: no summary.
        r.flush(true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year end of Feb
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
