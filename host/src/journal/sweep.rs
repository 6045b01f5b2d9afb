//! Recovery of whole journal directories: every run that died is rolled
//! back (or, listed only) from its journal, against the system it recorded.
//! What happens is told to a reporter, so the command line prints it and the
//! daemon logs it: this layer never writes to a terminal itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::recover::{self, corrupt_path, Elsewhere, Interrupted};
use crate::backend::system::{SystemBackend, SystemConfig};

/// One line for the operator: a listing (`ovs-run recover --list`, stdout)
/// or a warning about what was done or could not be (stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Listing(String),
    Warning(String),
}

/// The system a dead run used, as its journal records it.
fn backend_for(i: &Interrupted) -> Result<Arc<SystemBackend>, String> {
    let bad = |e| format!("journal {}: {e}", i.path.display());
    let ovsdb = i.header.ovsdb.parse().map_err(bad)?;
    let ovn_nb = i.header.ovn_nb.as_deref().map(str::parse).transpose().map_err(bad)?;
    Ok(Arc::new(SystemBackend::new(SystemConfig {
        ovsdb,
        docker: i.header.docker.clone(),
        apply_timeout: Duration::from_millis(i.header.apply_timeout_ms),
        ovn_nb,
    })))
}

/// Roll back (or with `list_only`, show) every interrupted run in `dir`.
/// Returns false when some change could not be undone, or something could
/// not be read.
pub async fn recover_all(dir: &Path, list_only: bool, quiet_when_none: bool, say: &dyn Fn(Notice)) -> bool {
    let scan = match recover::find(dir) {
        Ok(s) => s,
        Err(e) => {
            say(Notice::Warning(format!("ovs-run: recover: {e}")));
            return false;
        }
    };
    let mut all_ok = true;
    for c in &scan.corrupt {
        say(Notice::Warning(format!(
            "ovs-run: journal {} cannot be read ({}): nothing of it was recovered; \
             check by hand what it describes",
            c.path.display(),
            c.error
        )));
        all_ok = false;
    }
    if !quiet_when_none {
        for k in &scan.kept {
            say(Notice::Warning(format!(
                "ovs-run: an unreadable journal is kept for inspection: {}",
                k.display()
            )));
        }
    }
    if scan.runs.is_empty() {
        if !quiet_when_none && scan.corrupt.is_empty() {
            say(Notice::Listing(format!("no interrupted runs in {}", dir.display())));
        }
        return all_ok;
    }
    for i in scan.runs {
        let h = &i.header;
        let what = format!("run of {} (pid {})", h.script, h.pid);
        if let Some(e) = &i.elsewhere {
            let verdict = match e {
                Elsewhere::Other { .. } => "left alone",
                Elsewhere::Gone(_) => "not recovered",
            };
            say(Notice::Warning(format!(
                "ovs-run: interrupted {what}, {}: {verdict}: {e}; the journal is kept",
                i.path.display()
            )));
            if matches!(e, Elsewhere::Gone(_)) {
                all_ok = false;
            }
            continue;
        }
        if list_only {
            say(Notice::Listing(format!("interrupted {what}: {}", i.path.display())));
            for op in &i.undo {
                say(Notice::Listing(format!("  would undo: {op}")));
            }
            for op in &i.unknown {
                say(Notice::Listing(format!("  cannot undo (outcome unknown or irreversible): {op}")));
            }
            for b in &i.bad {
                say(Notice::Listing(format!("  cannot read line {}: {}", b.line, b.error)));
            }
            continue;
        }
        let backend = match backend_for(&i) {
            Ok(b) => b,
            Err(e) => {
                say(Notice::Warning(format!("ovs-run: cannot recover {what}: {e}")));
                all_ok = false;
                continue;
            }
        };
        let (path, bad) = (i.path.clone(), i.bad.clone());
        let report = i.roll_back(backend.as_ref()).await;
        say(Notice::Warning(format!(
            "ovs-run: recovered an interrupted {what}: undid {} change(s)",
            report.undone.len()
        )));
        for (op, e) in &report.failed {
            say(Notice::Warning(format!(
                "ovs-run:   could not undo: {op}: {e} (the journal is kept; try `ovs-run recover` again)"
            )));
            all_ok = false;
        }
        for (op, why) in &report.skipped {
            say(Notice::Warning(format!("ovs-run:   not undone: {op}: {why}")));
        }
        for op in &report.irreversible {
            say(Notice::Warning(format!(
                "ovs-run:   check by hand: {op} (its outcome is unknown or it cannot be undone)"
            )));
        }
        if !bad.is_empty() {
            let kept = if report.failed.is_empty() { corrupt_path(&path) } else { path };
            for b in &bad {
                say(Notice::Warning(format!(
                    "ovs-run:   line {} of the journal cannot be read ({}): the change it records is \
                     not undone; check by hand",
                    b.line, b.error
                )));
            }
            say(Notice::Warning(format!("ovs-run:   the journal is kept as {}", kept.display())));
            all_ok = false;
        }
    }
    all_ok
}
