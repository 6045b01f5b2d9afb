//! The journal on disk: one JSON-lines file per run, written ahead of every
//! change and locked (flock) for as long as the run lives, so a crashed run
//! is recognisable (its lock is free) and can be rolled back by the next
//! ovs-run (see [`super::recover`]).
//!
//! Each record is written before the call it describes goes on, and
//! fdatasync'd first when the change outlives a reboot (an OVSDB row): a
//! written record already survives the death of the process, and a
//! kernel-only change does not survive a reboot. The default directory is
//! under /run: the journal describes kernel state (veths, addresses, routes)
//! that a reboot wipes anyway, and on tmpfs the sync costs nothing; OVS rows
//! left by a power loss are what `gc` is for.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::system::SystemConfig;
use crate::backend::Op;
use crate::types::Target;

/// The journal format this ovs-run writes. Version 1 had no namespaces.
pub const VERSION: u32 = 2;

/// A network namespace: (device, inode) of its nsfs file, as `stat` shows
/// it. Two equal ids name the same namespace while it lives; a namespace
/// that is gone has no file left to compare with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let m = fs::metadata(path)?;
        Ok(Self { dev: m.dev(), ino: m.ino() })
    }

    /// The namespace this process runs in: where a `host` target acts.
    pub fn current() -> std::io::Result<Self> {
        Self::of(Path::new("/proc/self/ns/net"))
    }
}

impl std::fmt::Display for NsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "net:[{}] (dev {})", self.ino, self.dev)
    }
}

/// Where a target's ops acted, as the run saw it: recovery acts on that
/// target only while it is still the same (a pid can be reused by another
/// process, a netns name by another namespace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// [`Target::key`].
    pub target: String,
    /// A container's process, with its start time (/proc/PID/stat field 22,
    /// clock ticks since boot): a reused pid has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    pub netns: NsId,
}

impl Place {
    /// Where `target` is now; None for the host (see [`Header::netns`]).
    pub fn of(target: &Target) -> Option<std::io::Result<Self>> {
        let key = target.key();
        match target {
            Target::Host => None,
            Target::Netns { name } => {
                Some(NsId::of(&Path::new("/run/netns").join(name.as_str())).map(|netns| Place {
                    target: key,
                    pid: None,
                    start_time: None,
                    netns,
                }))
            }
            Target::Container { pid, .. } => Some((|| {
                let start_time = start_time(*pid)?;
                let netns = NsId::of(Path::new(&format!("/proc/{pid}/ns/net")))?;
                // Read again: the pid may have died and been reused between.
                if start_time != self::start_time(*pid)? {
                    return Err(std::io::Error::other(format!("process {pid} was replaced")));
                }
                Ok(Place { target: key, pid: Some(*pid), start_time: Some(start_time), netns })
            })()),
        }
    }
}

/// Field 22 of /proc/PID/stat: when the process started (clock ticks since boot).
pub fn start_time(pid: u32) -> std::io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold anything:
    // count from the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    rest.split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("/proc/{pid}/stat has no start time")))
}

/// What a recovering process needs to reach the same system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub pid: u32,
    /// When the run started, in nanoseconds since the epoch (also in the file name).
    pub started: u64,
    pub script: String,
    pub ovsdb: String,
    pub docker: String,
    pub apply_timeout_ms: u64,
    /// The network namespace the run was in, where its `host` changes (and
    /// its veths' host ends) are. None in version 1 journals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<NsId>,
    /// The OVN northbound database the run's `ovn` changes went to, resolved
    /// when it started (`--ovn-nb` or `$OVN_NB_DB`), so recovery undoes them
    /// there and not wherever the recovering process's environment points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn_nb: Option<String>,
}

impl Header {
    /// The header of a run starting now in this process.
    pub fn new(script: &str, ovsdb: String, docker: String, apply_timeout: std::time::Duration) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            version: VERSION,
            pid: std::process::id(),
            started,
            script: script.to_string(),
            ovsdb,
            docker,
            apply_timeout_ms: apply_timeout.as_millis() as u64,
            netns: NsId::current().ok(),
            ovn_nb: None,
        }
    }

    /// The header of a run starting now against `system`.
    pub fn for_system(script: &str, system: &SystemConfig) -> Self {
        let mut h = Self::new(script, system.ovsdb.to_string(), system.docker.clone(), system.apply_timeout);
        h.ovn_nb = system.ovn_nb_resolved().map(|u| u.to_string());
        h
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rec")]
pub enum Record {
    /// About to apply `op` (written before the backend is called). Boxed:
    /// an op is far larger than the other records.
    Begin { idx: usize, op: Box<Op> },
    /// Applied; `undo` puts it back.
    Done { idx: usize, undo: Vec<Op>, reversible: bool },
    /// Nothing happened (unchanged, or the backend failed cleanly).
    Nothing { idx: usize },
    /// Undone by a rollback.
    Undone { idx: usize },
    /// Where a target's ops act, written before the first op naming it.
    Place { place: Place },
}

/// The open journal of a live run (holds the lock).
pub struct JournalFile {
    file: File,
    path: PathBuf,
    /// The directory entry was synced (done before the first synced record).
    dir_synced: bool,
}

pub fn default_dir() -> PathBuf {
    crate::rundir::runtime_dir().join("journal")
}

/// Take the run's exclusive lock; false when another live process holds it.
pub(super) fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The journal directory must be owned by us or root and writable by
/// nobody else (the rule of the compile cache and the state directory):
/// whoever can write a journal there chooses what a later `recover`, run
/// as root, deletes and adds.
pub fn check_dir(dir: &Path) -> std::io::Result<()> {
    let m = fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if !m.is_dir() {
        return Err(std::io::Error::other(format!("journal directory {} is not a directory", dir.display())));
    }
    if m.uid() != me && m.uid() != 0 {
        return Err(std::io::Error::other(format!(
            "journal directory {} is owned by uid {}, not by us (uid {me}) or root: refusing to use it",
            dir.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "journal directory {} is writable by group or others (mode {:o}): refusing to use it",
            dir.display(),
            m.mode() & 0o777
        )));
    }
    Ok(())
}

/// A journal file must be a regular file owned by us or root.
pub(super) fn check_file(file: &File, path: &Path) -> std::io::Result<()> {
    let m = file.metadata()?;
    let me = nix::unistd::geteuid().as_raw();
    if !m.is_file() || (m.uid() != me && m.uid() != 0) {
        return Err(std::io::Error::other(format!(
            "journal {} is not a regular file owned by us (uid {me}) or root (owner uid {}): refusing to read it",
            path.display(),
            m.uid()
        )));
    }
    Ok(())
}

impl JournalFile {
    pub fn create(dir: &Path, header: &Header) -> std::io::Result<Self> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        check_dir(dir)?;
        let name = format!("run-{}-{}.jsonl", header.pid, header.started);
        let path = dir.join(&name);
        // Recovery in another process scans for `*.jsonl` and takes any lock it
        // can get. The file therefore appears under its final name only once it
        // is locked and has its header; until then it is a hidden `.tmp` that
        // recovery does not look at.
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = OpenOptions::new().append(true).create_new(true).mode(0o600).open(&tmp)?;
        if !try_lock(&file) {
            let _ = fs::remove_file(&tmp);
            return Err(std::io::Error::other(format!("{} is locked by another run", tmp.display())));
        }
        let mut j = Self { file, path: tmp, dir_synced: false };
        // The header is written, not synced: the first record that must
        // survive a crash syncs it and the file's name along (a run that
        // changes nothing costs no fsync).
        let placed =
            j.write_lines(&[serde_json::to_string(header)?], false).and_then(|()| fs::rename(&j.path, &path));
        if let Err(e) = placed {
            let _ = fs::remove_file(&j.path);
            return Err(e);
        }
        j.path = path;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append records with one write; `sync`: and on stable storage (with
    /// everything written before them, and the file's name) before returning.
    pub fn append(&mut self, recs: &[Record], sync: bool) -> std::io::Result<()> {
        let lines = recs.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
        self.write_lines(&lines, sync)
    }

    fn write_lines(&mut self, lines: &[String], sync: bool) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Everything written so far, and the file's name, on stable storage.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if !self.dir_synced {
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            self.dir_synced = true;
        }
        self.file.sync_data()
    }

    /// The run ended (succeeded, or was rolled back): nothing to recover.
    pub fn close(self) -> std::io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// A complete line of a journal that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, the header being line 1.
    pub line: usize,
    pub error: String,
}

/// A journal as read: its header, the records that could be read, and the
/// lines that could not.
#[derive(Debug)]
pub struct Contents {
    pub header: Header,
    pub records: Vec<Record>,
    pub bad: Vec<BadLine>,
}

/// Why a journal has no usable header.
#[derive(Debug)]
pub enum Unreadable {
    /// No complete first line: the run died while creating the file, before
    /// it could change anything.
    Unfinished,
    /// A complete first line that is not a header this ovs-run knows.
    Corrupt(String),
    Io(std::io::Error),
}

/// Journals are small (a record per change); one larger than this is not ours.
const MAX_JOURNAL: u64 = 256 << 20;

/// Read a journal file. Records are written a whole line at a time, so a
/// last line without its newline is one the process died writing: the
/// change it announces never started, and it is ignored. Every other line
/// that cannot be read is reported in [`Contents::bad`], and the rest are
/// still read: a bad line costs the changes it describes, not the ones after.
pub fn read(file: &File) -> Result<Contents, Unreadable> {
    let mut bytes = Vec::new();
    file.take(MAX_JOURNAL + 1).read_to_end(&mut bytes).map_err(Unreadable::Io)?;
    if bytes.len() as u64 > MAX_JOURNAL {
        return Err(Unreadable::Corrupt(format!("larger than {MAX_JOURNAL} bytes")));
    }
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    // After the last newline: empty, or a torn line.
    lines.pop();
    let Some(first) = lines.first() else { return Err(Unreadable::Unfinished) };
    let header: Header = serde_json::from_slice(first)
        .map_err(|e| Unreadable::Corrupt(format!("line 1 (the header): {e}")))?;
    if header.version == 0 || header.version > VERSION {
        return Err(Unreadable::Corrupt(format!(
            "line 1 (the header): version {} (this ovs-run reads 1 to {VERSION})",
            header.version
        )));
    }
    let mut records = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        match serde_json::from_slice(line) {
            Ok(r) => records.push(r),
            Err(e) => bad.push(BadLine { line: i + 1, error: e.to_string() }),
        }
    }
    Ok(Contents { header, records, bad })
}
