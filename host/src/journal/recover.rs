//! Rolling back runs that died (kill -9, power cut of the process, a panic).
//!
//! A journal file whose lock can be taken belongs to a process that is gone.
//! Its applied changes are undone newest first with the undo ops recorded
//! for them. A change that was begun but has no outcome recorded may or may
//! not have happened: an add-port is undone anyway (removing a port that
//! is not there is a no-op, and its name is derived from the container and
//! interface it was made for); anything else is reported, not guessed at.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::store::{self, Header, Record};
use super::RollbackReport;
use crate::backend::{Backend, Op};

/// An unfinished journal of a dead run, locked by us while we look at it.
pub struct Interrupted {
    pub path: PathBuf,
    pub header: Header,
    /// Undo ops to run, in order.
    pub undo: Vec<Op>,
    /// Changes that cannot be undone, or whose outcome is unknown.
    pub unknown: Vec<Op>,
    _lock: File,
}

/// Age after which a journal still being created is known to be abandoned.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(60);

/// The journals in `dir` whose runs are gone. Live runs hold their lock and
/// are skipped.
pub fn find(dir: &Path) -> Vec<Interrupted> {
    let Ok(rd) = fs::read_dir(dir) else { return vec![] };
    let all: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // A `.tmp` is a journal whose run died before it held any change (see
    // `JournalFile::create`): nothing to undo. A fresh one may be a live run
    // between creating and locking it, so only old, unlocked ones go.
    for tmp in all.iter().filter(|p| p.extension().is_some_and(|e| e == "tmp")) {
        let old = fs::metadata(tmp)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TMP));
        if old && File::open(tmp).is_ok_and(|f| store::try_lock(&f)) {
            let _ = fs::remove_file(tmp);
        }
    }
    let mut paths: Vec<PathBuf> =
        all.into_iter().filter(|p| p.extension().is_some_and(|e| e == "jsonl")).collect();
    paths.sort();
    paths.into_iter().filter_map(|p| open(&p)).collect()
}

fn open(path: &Path) -> Option<Interrupted> {
    let lock = File::options().append(true).open(path).ok()?;
    if !store::try_lock(&lock) {
        return None;
    }
    let (header, records) = match store::read(path) {
        Ok(r) => r,
        // Died before the header was complete: it never changed anything.
        Err(_) => {
            let _ = fs::remove_file(path);
            return None;
        }
    };
    let (undo, unknown) = plan(&records);
    Some(Interrupted { path: path.to_path_buf(), header, undo, unknown, _lock: lock })
}

/// What to undo for a run's records: applied changes newest first, plus
/// add-ports that were begun without an outcome.
pub fn plan(records: &[Record]) -> (Vec<Op>, Vec<Op>) {
    #[derive(Clone)]
    enum State {
        Begun(Op),
        Done(Op, Vec<Op>, bool),
        Settled,
    }
    let mut entries: Vec<Option<State>> = Vec::new();
    for r in records {
        let (idx, state) = match r {
            Record::Begin { idx, op } => (*idx, State::Begun(op.clone())),
            Record::Done { idx, undo, reversible } => {
                let op = match entries.get(*idx).cloned().flatten() {
                    Some(State::Begun(op)) => op,
                    _ => continue,
                };
                (*idx, State::Done(op, undo.clone(), *reversible))
            }
            Record::Nothing { idx } | Record::Undone { idx } => (*idx, State::Settled),
        };
        if entries.len() <= idx {
            entries.resize(idx + 1, None);
        }
        entries[idx] = Some(state);
    }
    let (mut undo, mut unknown) = (Vec::new(), Vec::new());
    for e in entries.into_iter().rev().flatten() {
        match e {
            State::Done(_, u, true) => undo.extend(u),
            State::Done(op, _, false) => unknown.push(op),
            State::Begun(Op::AddPort { bridge, port, .. }) => undo.push(Op::DelPort { bridge, port }),
            State::Begun(op) => unknown.push(op),
            State::Settled => {}
        }
    }
    (undo, unknown)
}

impl Interrupted {
    /// Undo through `backend` (the system the dead run used). The journal is
    /// removed when every undo step worked.
    pub async fn roll_back(self, backend: &dyn Backend) -> RollbackReport {
        let mut report = RollbackReport { irreversible: self.unknown.clone(), ..Default::default() };
        for op in &self.undo {
            match backend.apply(op).await {
                Ok(_) => report.undone.push(op.clone()),
                Err(e) => report.failed.push((op.clone(), e.to_string())),
            }
        }
        if report.failed.is_empty() {
            let _ = fs::remove_file(&self.path);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Cidr, IfName, Target};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn header(pid: u32, started: u64) -> Header {
        Header {
            version: 1,
            pid,
            started,
            script: "s.wasm".into(),
            ovsdb: String::new(),
            docker: String::new(),
            apply_timeout_ms: 1000,
        }
    }

    /// Regression: a recovery scan running while another run created its
    /// journal used to lock (and delete, as header-less) the new file.
    #[test]
    fn a_concurrent_scan_never_takes_a_journal_being_created() {
        // On tmpfs when there is one: the race window is microseconds wide and
        // needs many rounds, which a disk's fdatasync would make slow.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
        let stop = AtomicBool::new(false);
        // Stops the scanners however the creating loop ends (a panic too).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        assert!(find(dir.path()).is_empty(), "a live journal was taken for dead");
                    }
                });
            }
            let _stop = Stop(&stop);
            for i in 0..3000 {
                let j = store::JournalFile::create(dir.path(), &header(1, i)).expect("create");
                assert!(j.path().exists());
                j.close().unwrap();
            }
        });
    }

    #[test]
    fn only_old_unlocked_tmp_journals_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let dead = dir.path().join(".run-1-1.jsonl.tmp");
        File::create(&dead).unwrap().set_modified(hour_ago).unwrap();
        let locked = dir.path().join(".run-2-2.jsonl.tmp");
        let f = File::create(&locked).unwrap();
        f.set_modified(hour_ago).unwrap();
        assert!(store::try_lock(&f));
        // Unlocked but fresh: a run between creating and locking it.
        let fresh = dir.path().join(".run-3-3.jsonl.tmp");
        File::create(&fresh).unwrap();
        assert!(find(dir.path()).is_empty());
        assert!(!dead.exists());
        assert!(locked.exists());
        assert!(fresh.exists());
    }

    fn n(s: &str) -> IfName {
        IfName::parse(s).unwrap()
    }

    #[test]
    fn plan_undoes_done_and_begun_add_ports_newest_first() {
        let add = Op::AddPort {
            bridge: n("br0"),
            port: n("ovrx_l"),
            target: Target::Host,
            ifname: n("ovrx_l"),
            mtu: None,
            mac: None,
            vlan: None,
            trunks: vec![],
            sw_checksum: false,
        };
        let del = Op::DelPort { bridge: n("br0"), port: n("ovrx_l") };
        let addr = Op::AddAddress {
            target: Target::Host,
            ifname: n("br0"),
            cidr: Cidr::parse("10.0.0.1/24").unwrap(),
        };
        let unaddr = Op::DelAddress {
            target: Target::Host,
            ifname: n("br0"),
            cidr: Cidr::parse("10.0.0.1/24").unwrap(),
        };
        let records = vec![
            Record::Begin { idx: 0, op: addr.clone() },
            Record::Done { idx: 0, undo: vec![unaddr.clone()], reversible: true },
            Record::Begin { idx: 1, op: add.clone() },
        ];
        let (undo, unknown) = plan(&records);
        assert_eq!(undo, vec![del, unaddr]);
        assert!(unknown.is_empty());
        // An address change begun without an outcome is reported, not guessed.
        let (undo, unknown) = plan(&[Record::Begin { idx: 0, op: addr.clone() }]);
        assert!(undo.is_empty());
        assert_eq!(unknown, vec![addr]);
    }
}
