//! Rolling back runs that died (kill -9, power cut of the process, a panic).
//!
//! A journal file whose lock can be taken belongs to a process that is gone.
//! Its applied changes are undone newest first with the undo ops recorded
//! for them. A change that was begun but has no outcome recorded may or may
//! not have happened: an add-port is undone anyway (removing a port that
//! is not there is a no-op, and its name is derived from the container and
//! interface it was made for), and a del-port is finished (its row may be
//! gone with the veth left: a removal is not taken back, so it is
//! completed); anything else is reported, not guessed at.
//!
//! Recovery acts only where the run acted. The header names the network
//! namespace the run was in: a journal of another namespace is left for a
//! recovery there (and said so), and one whose namespace is gone is
//! refused. A container's ops are undone only while its pid is still the
//! same process (start time) in the same namespace; a named netns only
//! while its name still names the same namespace.
//!
//! What cannot be read is kept: a journal with unreadable lines is
//! recovered as far as it can be read, then kept as `NAME.corrupt` with
//! the unread lines named; one with an unreadable header is renamed to
//! `NAME.corrupt` untouched.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::store::{self, BadLine, Header, NsId, Place, Record, Unreadable};
use super::{target_of, RollbackReport};
use crate::backend::{Backend, Op};

/// An unfinished journal of a dead run, locked by us while we look at it.
pub struct Interrupted {
    pub path: PathBuf,
    pub header: Header,
    /// Undo ops to run, in order.
    pub undo: Vec<Op>,
    /// Changes that cannot be undone, or whose outcome is unknown.
    pub unknown: Vec<Op>,
    /// Lines that could not be read: what they describe is not recovered.
    pub bad: Vec<BadLine>,
    /// Where each target's ops acted, by [`crate::types::Target::key`].
    places: HashMap<String, Place>,
    /// Why the run is not recovered here (another or a gone namespace).
    pub elsewhere: Option<Elsewhere>,
    _lock: File,
}

/// A run that is not this namespace's to recover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Elsewhere {
    /// Its namespace lives: recover from inside it (a process in it named).
    Other { netns: NsId, pid: Option<u32> },
    /// Its namespace is gone (or, version 1, was never recorded).
    Gone(String),
}

impl std::fmt::Display for Elsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Elsewhere::Other { netns, pid: Some(pid) } => write!(
                f,
                "it ran in network namespace {netns}, not this one: recover it there \
                 (e.g. `nsenter --net=/proc/{pid}/ns/net ovs-run recover`)"
            ),
            Elsewhere::Other { netns, pid: None } => {
                write!(f, "it ran in network namespace {netns}, not this one: recover it there")
            }
            Elsewhere::Gone(why) => write!(f, "{why}: refusing to act in this one"),
        }
    }
}

/// A journal whose header could not be read, renamed to `*.corrupt`.
#[derive(Clone, Debug)]
pub struct Corrupt {
    pub path: PathBuf,
    pub error: String,
}

/// What a scan of the journal directory found.
#[derive(Default)]
pub struct Scan {
    pub runs: Vec<Interrupted>,
    /// Journals found corrupt by this scan (renamed, nothing recovered).
    pub corrupt: Vec<Corrupt>,
    /// `*.corrupt` files kept by earlier scans.
    pub kept: Vec<PathBuf>,
}

/// Age after which a journal still being created is known to be abandoned.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(60);

/// The journals in `dir` whose runs are gone. Live runs hold their lock and
/// are skipped. A directory that is not safe to read from (see
/// [`store::check_dir`]) is refused, a missing one holds nothing.
pub fn find(dir: &Path) -> Result<Scan, String> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(format!("cannot read the journal directory {}: {e}", dir.display())),
    };
    store::check_dir(dir).map_err(|e| e.to_string())?;
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
    let ext = |p: &PathBuf, e: &str| p.extension().is_some_and(|x| x == e);
    let mut paths: Vec<PathBuf> = all.iter().filter(|p| ext(p, "jsonl")).cloned().collect();
    paths.sort();
    let mut kept: Vec<PathBuf> = all.iter().filter(|p| ext(p, "corrupt")).cloned().collect();
    kept.sort();
    let mut scan = Scan { kept, ..Default::default() };
    let here = NsId::current().ok();
    for p in paths {
        match open(&p, here) {
            Ok(Some(i)) => scan.runs.push(i),
            Ok(None) => {}
            Err(c) => scan.corrupt.push(c),
        }
    }
    Ok(scan)
}

/// `PATH.corrupt`: kept for a human, never recovered again.
pub fn corrupt_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".corrupt");
    PathBuf::from(p)
}

fn open(path: &Path, here: Option<NsId>) -> Result<Option<Interrupted>, Corrupt> {
    let corrupt = |error: String| {
        let kept = corrupt_path(path);
        let error = match fs::rename(path, &kept) {
            Ok(()) => error,
            Err(e) => format!("{error} (and renaming it to {} failed: {e})", kept.display()),
        };
        Corrupt { path: kept, error }
    };
    // Not through a symlink: a planted link must not make us read (or
    // rename) a file elsewhere.
    let Ok(lock) = File::options().read(true).append(true).custom_flags(libc::O_NOFOLLOW).open(path) else {
        return Ok(None);
    };
    if !store::try_lock(&lock) {
        return Ok(None);
    }
    // A run that just ended removes its file and then lets go of the lock:
    // the lock was ours only because the file is gone.
    let same = |a: &fs::Metadata, b: &fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
    match (lock.metadata(), fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) if same(&held, &named) && held.nlink() > 0 => {}
        _ => return Ok(None),
    }
    if let Err(e) = store::check_file(&lock, path) {
        // Not renamed: it is not ours to touch.
        return Err(Corrupt { path: path.to_path_buf(), error: e.to_string() });
    }
    let contents = match store::read(&lock) {
        Ok(c) => c,
        // Died before the header was complete: it never changed anything.
        Err(Unreadable::Unfinished) => {
            let _ = fs::remove_file(path);
            return Ok(None);
        }
        Err(Unreadable::Corrupt(e)) => return Err(corrupt(e)),
        Err(Unreadable::Io(e)) => return Err(Corrupt { path: path.to_path_buf(), error: e.to_string() }),
    };
    let (undo, unknown) = plan(&contents.records);
    let places = contents
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Place { place } => Some((place.target.clone(), place.clone())),
            _ => None,
        })
        .collect();
    let elsewhere = elsewhere(&contents.header, here);
    Ok(Some(Interrupted {
        path: path.to_path_buf(),
        header: contents.header,
        undo,
        unknown,
        bad: contents.bad,
        places,
        elsewhere,
        _lock: lock,
    }))
}

/// Whether a run of `header` is this namespace's (`here`) to recover.
fn elsewhere(header: &Header, here: Option<NsId>) -> Option<Elsewhere> {
    let Some(theirs) = header.netns else {
        return Some(Elsewhere::Gone(
            "the journal does not say which network namespace it ran in (version 1)".into(),
        ));
    };
    if here == Some(theirs) {
        return None;
    }
    match find_namespace(theirs) {
        Some(pid) => Some(Elsewhere::Other { netns: theirs, pid }),
        None => Some(Elsewhere::Gone(format!("its network namespace {theirs} is gone"))),
    }
}

/// Whether namespace `ns` still exists: Some(a pid in it), or Some(None)
/// when only a /run/netns name holds it.
fn find_namespace(ns: NsId) -> Option<Option<u32>> {
    let pids = fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        Some(pid)
    });
    for pid in pids {
        if NsId::of(Path::new(&format!("/proc/{pid}/ns/net"))).is_ok_and(|id| id == ns) {
            return Some(Some(pid));
        }
    }
    let named = fs::read_dir("/run/netns").into_iter().flatten().flatten();
    for e in named {
        if fs::metadata(e.path()).is_ok_and(|m| NsId { dev: m.dev(), ino: m.ino() } == ns) {
            return Some(None);
        }
    }
    None
}

/// What to undo for a run's records: applied changes newest first, plus
/// add-ports that were begun without an outcome (removed) and del-ports
/// begun without one (finished).
pub fn plan(records: &[Record]) -> (Vec<Op>, Vec<Op>) {
    #[derive(Clone)]
    enum State {
        Begun(Op),
        /// The op itself is unknown when its begin line was unreadable.
        Done(Option<Op>, Vec<Op>, bool),
        Settled,
    }
    let mut entries: Vec<Option<State>> = Vec::new();
    for r in records {
        let (idx, state) = match r {
            Record::Begin { idx, op } => (*idx, State::Begun((**op).clone())),
            Record::Done { idx, undo, reversible } => {
                let op = match entries.get(*idx).cloned().flatten() {
                    Some(State::Begun(op)) => Some(op),
                    Some(_) => continue,
                    // Its begin line was lost: the outcome still says how to undo it.
                    None => None,
                };
                (*idx, State::Done(op, undo.clone(), *reversible))
            }
            Record::Nothing { idx } | Record::Undone { idx } => (*idx, State::Settled),
            Record::Place { .. } => continue,
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
            State::Done(Some(op), _, false) => unknown.push(op),
            State::Done(None, _, false) => {}
            State::Begun(Op::AddPort { bridge, port, .. } | Op::AddVethPort { bridge, port, .. }) => {
                undo.push(Op::DelPort { bridge, port })
            }
            State::Begun(op @ Op::DelPort { .. }) => undo.push(op),
            State::Begun(op) => unknown.push(op),
            State::Settled => {}
        }
    }
    (undo, unknown)
}

/// Whether `op` may act now: its target is where the run saw it.
fn still_there(op: &Op, places: &HashMap<String, Place>) -> Result<(), String> {
    let Some(target) = target_of(op) else { return Ok(()) };
    let Some(now) = Place::of(target) else { return Ok(()) };
    let Some(then) = places.get(&target.key()) else {
        return Err(format!("the journal does not say which process or namespace {target} was"));
    };
    let now = now.map_err(|e| format!("{target} is gone ({e})"))?;
    if now.pid == then.pid && now.start_time == then.start_time && now.netns == then.netns {
        Ok(())
    } else if now.pid.is_some() && now.start_time != then.start_time {
        Err(format!(
            "pid {} is another process now (started at {}, not {}): {target} is gone",
            now.pid.unwrap_or_default(),
            now.start_time.unwrap_or_default(),
            then.start_time.unwrap_or_default()
        ))
    } else {
        Err(format!("{target} is in network namespace {} now, not {}", now.netns, then.netns))
    }
}

impl Interrupted {
    /// Undo through `backend` (the system the dead run used). The journal is
    /// removed when every undo step worked; with unreadable lines it is kept
    /// as `*.corrupt` instead. A run of another namespace is not touched.
    pub async fn roll_back(self, backend: &dyn Backend) -> RollbackReport {
        let mut report = RollbackReport { irreversible: self.unknown.clone(), ..Default::default() };
        if self.elsewhere.is_some() {
            return report;
        }
        for op in &self.undo {
            if let Err(why) = still_there(op, &self.places) {
                report.skipped.push((op.clone(), why));
                continue;
            }
            match backend.apply(op).await {
                Ok(_) => report.undone.push(op.clone()),
                Err(e) => report.failed.push((op.clone(), e.to_string())),
            }
        }
        if report.failed.is_empty() {
            if self.bad.is_empty() {
                let _ = fs::remove_file(&self.path);
            } else {
                let _ = fs::rename(&self.path, corrupt_path(&self.path));
            }
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
            netns: None,
            ovn_nb: None,
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
                        assert!(
                            find(dir.path()).unwrap().runs.is_empty(),
                            "a live journal was taken for dead"
                        );
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
        assert!(find(dir.path()).unwrap().runs.is_empty());
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
            iface_id: None,
            addressing: Default::default(),
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
            Record::Begin { idx: 0, op: Box::new(addr.clone()) },
            Record::Done { idx: 0, undo: vec![unaddr.clone()], reversible: true },
            Record::Begin { idx: 1, op: Box::new(add.clone()) },
        ];
        let (undo, unknown) = plan(&records);
        assert_eq!(undo, vec![del, unaddr]);
        assert!(unknown.is_empty());
        // An address change begun without an outcome is reported, not guessed.
        let (undo, unknown) = plan(&[Record::Begin { idx: 0, op: Box::new(addr.clone()) }]);
        assert!(undo.is_empty());
        assert_eq!(unknown, vec![addr]);
    }

    /// The Docker plugin's host-namespace veth port, begun and never finished
    /// (the plugin killed mid CreateEndpoint): its port and veth are removed.
    #[test]
    fn plan_undoes_a_begun_add_veth_port() {
        let add = Op::AddVethPort {
            bridge: n("br0"),
            port: n("ovr0123456789_l"),
            peer: n("ovr0123456789_c"),
            mtu: None,
            mac: None,
            vlan: None,
            trunks: vec![],
            sw_checksum: true,
            external_ids: Default::default(),
        };
        let (undo, unknown) = plan(&[Record::Begin { idx: 0, op: Box::new(add) }]);
        assert_eq!(undo, vec![Op::DelPort { bridge: n("br0"), port: n("ovr0123456789_l") }]);
        assert!(unknown.is_empty());
    }

    #[test]
    fn plan_finishes_a_begun_del_port() {
        let del = Op::DelPort { bridge: n("br0"), port: n("ovr0123456789_l") };
        let (undo, unknown) = plan(&[Record::Begin { idx: 0, op: Box::new(del.clone()) }]);
        assert_eq!(undo, vec![del]);
        assert!(unknown.is_empty());
    }

    /// A bad line in the middle costs its own record, not the ones after;
    /// a torn last line (no newline) is not reported.
    #[test]
    fn read_goes_past_a_bad_line_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run-1-1.jsonl");
        let h = serde_json::to_string(&header(1, 1)).unwrap();
        let del = |i: usize| {
            serde_json::to_string(&Record::Begin {
                idx: i,
                op: Box::new(Op::DelPort { bridge: n("br0"), port: n("p0") }),
            })
            .unwrap()
        };
        let text = format!(
            "{h}\n{}\nnot json\n{}\n{{\"rec\":\"begin\",\"idx\":9,\"op\":{{\"op\":\"frob\"}}}}\n{{\"torn",
            del(0),
            del(1)
        );
        std::fs::write(&path, text).unwrap();
        let c = store::read(&File::open(&path).unwrap()).unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 5]);
        std::fs::write(&path, "{\"version\":2,\"pi").unwrap();
        assert!(matches!(store::read(&File::open(&path).unwrap()), Err(Unreadable::Unfinished)));
        std::fs::write(&path, "{\"version\":2,\"pi\n").unwrap();
        assert!(matches!(store::read(&File::open(&path).unwrap()), Err(Unreadable::Corrupt(_))));
    }

    #[test]
    fn start_time_reads_past_a_command_name_with_parentheses() {
        let me = std::process::id();
        let t = store::start_time(me).unwrap();
        assert!(t > 0);
        assert_eq!(store::start_time(me).unwrap(), t);
    }
}
