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

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123); // leap year end of Feb
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
