//! The record of what a run changed, and how to take it back.
//!
//! The gate writes an entry before each change reaches the backend and
//! completes it with the backend's undo ops afterwards. When a script fails
//! (error, trap, timeout, denial) the engine rolls the journal back in reverse
//! order. The applied entries double as the run's report: for a dry-run they
//! are the plan, for a real run what was done, in the same format.

use serde::Serialize;

use crate::backend::{Applied, Backend, Op};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    /// Sent to the backend, no answer yet (a crash here leaves it unknown).
    Pending,
    /// Applied; `undo` puts it back.
    Done { undo: Vec<Op>, reversible: bool },
    /// Applied but already as asked: nothing changed.
    Unchanged,
    /// The backend refused or failed; the backend left nothing behind.
    Failed { error: String },
    /// Undone by a rollback.
    RolledBack,
}

#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub op: Op,
    pub state: EntryState,
}

#[derive(Default, Debug)]
pub struct Journal {
    entries: Vec<Entry>,
}

/// What a rollback did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RollbackReport {
    /// Undo ops that ran, in order.
    pub undone: Vec<Op>,
    /// Undo ops that failed, with the error.
    pub failed: Vec<(Op, String)>,
    /// Changes that cannot be undone (e.g. a deleted bridge).
    pub irreversible: Vec<Op>,
}

impl RollbackReport {
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.irreversible.is_empty()
    }
}

impl Journal {
    /// Record intent before the backend is called; returns the entry's index.
    pub fn begin(&mut self, op: &Op) -> usize {
        self.entries.push(Entry { op: op.clone(), state: EntryState::Pending });
        self.entries.len() - 1
    }

    pub fn finish(&mut self, idx: usize, result: &Result<Applied, crate::error::CapError>) {
        let state = match result {
            Ok(a) if !a.changed => EntryState::Unchanged,
            Ok(a) => EntryState::Done { undo: a.undo.clone(), reversible: a.reversible },
            Err(e) => EntryState::Failed { error: e.to_string() },
        };
        self.entries[idx].state = state;
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The ops that changed something, in order: the plan of a dry-run, the
    /// report of a real run.
    pub fn changes(&self) -> Vec<Op> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, EntryState::Done { .. } | EntryState::RolledBack))
            .map(|e| e.op.clone())
            .collect()
    }

    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| matches!(e.state, EntryState::Done { .. }))
    }

    /// Undo every applied change, newest first. Keeps going after a failed
    /// undo (like netavark's teardown) and reports every error.
    pub async fn rollback(&mut self, backend: &dyn Backend) -> RollbackReport {
        let mut report = RollbackReport::default();
        for entry in self.entries.iter_mut().rev() {
            let EntryState::Done { undo, reversible } = &entry.state else { continue };
            if !reversible {
                report.irreversible.push(entry.op.clone());
                continue;
            }
            for u in undo.clone() {
                match backend.apply(&u).await {
                    Ok(_) => report.undone.push(u),
                    Err(e) => report.failed.push((u, e.to_string())),
                }
            }
            entry.state = EntryState::RolledBack;
        }
        report
    }
}
