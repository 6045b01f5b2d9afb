//! `ovs-run recover`: roll back runs that died (and what every script run
//! does first, so a killed run never leaves half-built ports for long).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::system::{SystemBackend, SystemConfig};
use crate::journal::recover::{self, Interrupted};

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
/// Returns false when some change could not be undone.
pub async fn recover_all(dir: &Path, list_only: bool, quiet_when_none: bool) -> bool {
    let found = recover::find(dir);
    if found.is_empty() {
        if !quiet_when_none {
            println!("no interrupted runs in {}", dir.display());
        }
        return true;
    }
    let mut all_ok = true;
    for i in found {
        let h = &i.header;
        let what = format!("run of {} (pid {})", h.script, h.pid);
        if list_only {
            println!("interrupted {what}: {}", i.path.display());
            for op in &i.undo {
                println!("  would undo: {op}");
            }
            for op in &i.unknown {
                println!("  cannot undo (outcome unknown or irreversible): {op}");
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
        let report = i.roll_back(backend.as_ref()).await;
        eprintln!("ovs-run: recovered an interrupted {what}: undid {} change(s)", report.undone.len());
        for (op, e) in &report.failed {
            eprintln!(
                "ovs-run:   could not undo: {op}: {e} (the journal is kept; try `ovs-run recover` again)"
            );
            all_ok = false;
        }
        for op in &report.irreversible {
            eprintln!("ovs-run:   check by hand: {op} (its outcome is unknown or it cannot be undone)");
        }
    }
    all_ok
}
