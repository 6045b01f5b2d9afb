//! `ovs-run recover`: roll back runs that died (and what every script run
//! does first, so a killed run never leaves half-built ports for long).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::system::{SystemBackend, SystemConfig};
use crate::journal::recover::{self, corrupt_path, Elsewhere, Interrupted};

/// The system a dead run used, as its journal records it.
fn backend_for(i: &Interrupted) -> Result<Arc<SystemBackend>, String> {
    let ovsdb = i.header.ovsdb.parse().map_err(|e| format!("journal {}: {e}", i.path.display()))?;
    Ok(Arc::new(SystemBackend::new(SystemConfig {
        ovsdb,
        docker: i.header.docker.clone(),
        apply_timeout: Duration::from_millis(i.header.apply_timeout_ms),
    })))
}

/// Roll back (or with `list_only`, show) every interrupted run in `dir`.
/// Returns false when some change could not be undone, or something could
/// not be read.
pub async fn recover_all(dir: &Path, list_only: bool, quiet_when_none: bool) -> bool {
    let scan = match recover::find(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ovs-run: recover: {e}");
            return false;
        }
    };
    let mut all_ok = true;
    for c in &scan.corrupt {
        eprintln!(
            "ovs-run: journal {} cannot be read ({}): nothing of it was recovered; \
             check by hand what it describes",
            c.path.display(),
            c.error
        );
        all_ok = false;
    }
    if !quiet_when_none {
        for k in &scan.kept {
            eprintln!("ovs-run: an unreadable journal is kept for inspection: {}", k.display());
        }
    }
    if scan.runs.is_empty() {
        if !quiet_when_none && scan.corrupt.is_empty() {
            println!("no interrupted runs in {}", dir.display());
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
            eprintln!(
                "ovs-run: interrupted {what}, {}: {verdict}: {e}; the journal is kept",
                i.path.display()
            );
            if matches!(e, Elsewhere::Gone(_)) {
                all_ok = false;
            }
            continue;
        }
        if list_only {
            println!("interrupted {what}: {}", i.path.display());
            for op in &i.undo {
                println!("  would undo: {op}");
            }
            for op in &i.unknown {
                println!("  cannot undo (outcome unknown or irreversible): {op}");
            }
            for b in &i.bad {
                println!("  cannot read line {}: {}", b.line, b.error);
            }
            continue;
        }
        let backend = match backend_for(&i) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("ovs-run: cannot recover {what}: {e}");
                all_ok = false;
                continue;
            }
        };
        let (path, bad) = (i.path.clone(), i.bad.clone());
        let report = i.roll_back(backend.as_ref()).await;
        eprintln!("ovs-run: recovered an interrupted {what}: undid {} change(s)", report.undone.len());
        for (op, e) in &report.failed {
            eprintln!(
                "ovs-run:   could not undo: {op}: {e} (the journal is kept; try `ovs-run recover` again)"
            );
            all_ok = false;
        }
        for (op, why) in &report.skipped {
            eprintln!("ovs-run:   not undone: {op}: {why}");
        }
        for op in &report.irreversible {
            eprintln!("ovs-run:   check by hand: {op} (its outcome is unknown or it cannot be undone)");
        }
        if !bad.is_empty() {
            let kept = if report.failed.is_empty() { corrupt_path(&path) } else { path };
            for b in &bad {
                eprintln!(
                    "ovs-run:   line {} of the journal cannot be read ({}): the change it records is \
                     not undone; check by hand",
                    b.line, b.error
                );
            }
            eprintln!("ovs-run:   the journal is kept as {}", kept.display());
            all_ok = false;
        }
    }
    all_ok
}
