//! The record of what a run changed, and how to take it back.
//!
//! The gate writes an entry before each change reaches the backend and
//! completes it with the backend's undo ops afterwards. When a script fails
//! (error, trap, timeout, denial, signal) the run is rolled back in reverse
//! order. The applied entries double as the run's report: for a dry-run they
//! are the plan, for a real run what was done, in the same format.
//!
//! A real run also keeps the journal on disk ([`store`]), so that a run that
//! was killed is rolled back by the next ovs-run ([`recover`]).

pub mod recover;
pub mod store;
pub mod sweep;

use serde::Serialize;

use self::store::{JournalFile, Record};
use crate::backend::{Applied, Backend, Op};
use crate::error::{CapError, CapResult};
use crate::types::Target;

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

#[derive(Default)]
pub struct Journal {
    entries: Vec<Entry>,
    file: Option<JournalFile>,
    /// Targets whose [`store::Place`] is in the file already.
    placed: std::collections::HashSet<String>,
}

/// The namespace an op acts in, when it names one.
pub fn target_of(op: &Op) -> Option<&Target> {
    match op {
        Op::AddPort { target, .. }
        | Op::AddAddress { target, .. }
        | Op::DelAddress { target, .. }
        | Op::SetMtu { target, .. }
        | Op::SetMac { target, .. }
        | Op::SetLinkState { target, .. }
        | Op::SetOffload { target, .. }
        | Op::SetArp { target, .. }
        | Op::AddRoute { target, .. }
        | Op::DelRoute { target, .. } => Some(target),
        Op::Restore { value } => value.target(),
        Op::CreateBridge { .. }
        | Op::DeleteBridge { .. }
        | Op::AddVethPort { .. }
        | Op::DelPort { .. }
        | Op::SetVlan { .. }
        | Op::Ovn { .. }
        | Op::SetExternalIds { .. } => None,
        Op::AddTunnel { .. } | Op::DelTunnel { .. } => None,
    }
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
    /// Undo ops not run, and why (their target is not the one the run
    /// changed any more: a container whose pid now names another process).
    pub skipped: Vec<(Op, String)>,
}

impl RollbackReport {
    pub fn is_clean(&self) -> bool {
        self.failed.is_empty() && self.irreversible.is_empty() && self.skipped.is_empty()
    }
}

impl Journal {
    /// A journal that is also written to `file`, record by record.
    pub fn on_disk(file: JournalFile) -> Self {
        Self { entries: vec![], file: Some(file), placed: Default::default() }
    }

    fn write(&mut self, recs: &[Record], sync: bool) -> CapResult<()> {
        let Some(f) = &mut self.file else { return Ok(()) };
        f.append(recs, sync).map_err(|e| {
            CapError::failed(format!(
                "cannot write the journal {}: {e}; nothing was changed",
                f.path().display()
            ))
        })
    }

    /// Record intent before the backend is called; returns the entry's index.
    /// A journal that cannot be written stops the change (fail closed).
    /// A change that outlives a reboot ([`Op::survives_reboot`]) is synced
    /// to stable storage first; the others are written (the kernel holds the
    /// record if the process dies, and their effect is gone after a reboot).
    pub fn begin(&mut self, op: &Op) -> CapResult<usize> {
        Ok(self.begin_many(std::slice::from_ref(op))?[0])
    }

    /// [`Journal::begin`] for a batch: one write, at most one sync.
    pub fn begin_many(&mut self, ops: &[Op]) -> CapResult<Vec<usize>> {
        let first = self.entries.len();
        let mut recs = self.places(ops);
        recs.extend(
            ops.iter().enumerate().map(|(i, op)| Record::Begin { idx: first + i, op: Box::new(op.clone()) }),
        );
        self.write(&recs, ops.iter().any(Op::survives_reboot))?;
        self.entries.extend(ops.iter().map(|op| Entry { op: op.clone(), state: EntryState::Pending }));
        Ok((first..first + ops.len()).collect())
    }

    /// [`Record::Place`]s for the targets of `ops` not recorded yet, so
    /// that recovery acts on a container's pid only while it is the same
    /// process, and on a netns only while it is the same namespace. A
    /// target that cannot be placed (gone already) gets none: recovery
    /// then refuses to act on it.
    fn places(&mut self, ops: &[Op]) -> Vec<Record> {
        if self.file.is_none() {
            return vec![];
        }
        let mut recs = Vec::new();
        for target in ops.iter().filter_map(target_of) {
            let key = target.key();
            if self.placed.contains(&key) {
                continue;
            }
            if let Some(Ok(place)) = store::Place::of(target) {
                self.placed.insert(key);
                recs.push(Record::Place { place });
            }
        }
        recs
    }

    pub fn finish(&mut self, idx: usize, result: &Result<Applied, crate::error::CapError>) {
        self.finish_many(&[idx], std::slice::from_ref(result));
    }

    /// The outcomes of begun entries, written at once. Not synced: a crash
    /// that loses them leaves the entries begun, which recovery handles (the
    /// same as a crash just before they were written), and the next synced
    /// record takes them along.
    pub fn finish_many(&mut self, idxs: &[usize], results: &[Result<Applied, crate::error::CapError>]) {
        let mut recs = Vec::with_capacity(idxs.len());
        for (&idx, result) in idxs.iter().zip(results) {
            let (state, rec) = Self::outcome(idx, result);
            recs.push(rec);
            self.entries[idx].state = state;
        }
        // The changes happened; a journal that fails now only costs the
        // precision of a later recovery (the entries stay "begun").
        let _ = self.write(&recs, false);
    }

    fn outcome(idx: usize, result: &Result<Applied, crate::error::CapError>) -> (EntryState, Record) {
        let state = match result {
            Ok(a) if !a.changed => EntryState::Unchanged,
            Ok(a) => EntryState::Done { undo: a.undo.clone(), reversible: a.reversible },
            Err(e) => EntryState::Failed { error: e.to_string() },
        };
        let rec = match &state {
            EntryState::Done { undo, reversible } => {
                Record::Done { idx, undo: undo.clone(), reversible: *reversible }
            }
            _ => Record::Nothing { idx },
        };
        (state, rec)
    }

    /// The run is over and nothing is left to undo: drop the file. With
    /// changes that could not be undone the file stays for `ovs-run recover`.
    pub fn close(&mut self, clean: bool) {
        if let Some(mut f) = self.file.take() {
            if clean {
                let _ = f.close();
            } else {
                let _ = f.sync();
            }
        }
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

    /// Whether anything was (or may have been) changed.
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| matches!(e.state, EntryState::Done { .. } | EntryState::Pending))
    }

    /// Undo every applied change, newest first. Keeps going after a failed
    /// undo (like netavark's teardown) and reports every error.
    pub async fn rollback(&mut self, backend: &dyn Backend) -> RollbackReport {
        let mut report = RollbackReport::default();
        let mut undone = Vec::new();
        for (idx, entry) in self.entries.iter_mut().enumerate().rev() {
            let (undo, reversible) = match &entry.state {
                EntryState::Done { undo, reversible } => (undo.clone(), *reversible),
                // Interrupted mid-call (a signal): the port may exist; its
                // removal is harmless if it does not.
                EntryState::Pending => match &entry.op {
                    Op::AddPort { bridge, port, .. } | Op::AddVethPort { bridge, port, .. } => {
                        (vec![Op::DelPort { bridge: bridge.clone(), port: port.clone() }], true)
                    }
                    // A removal cannot be taken back, and half of one (the
                    // row gone, the veth left) is of no use: finished.
                    Op::DelPort { .. } => (vec![entry.op.clone()], true),
                    _ => {
                        report.irreversible.push(entry.op.clone());
                        continue;
                    }
                },
                _ => continue,
            };
            if !reversible {
                report.irreversible.push(entry.op.clone());
                continue;
            }
            let mut ok = true;
            for u in undo {
                match backend.apply(&u).await {
                    Ok(_) => report.undone.push(u),
                    Err(e) => {
                        ok = false;
                        report.failed.push((u, e.to_string()));
                    }
                }
            }
            if ok {
                entry.state = EntryState::RolledBack;
                undone.push(idx);
            }
        }
        let recs: Vec<Record> = undone.into_iter().map(|idx| Record::Undone { idx }).collect();
        let _ = self.write(&recs, false);
        report
    }
}
