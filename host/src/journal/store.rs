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
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Op;

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
}

impl Header {
    /// The header of a run starting now in this process.
    pub fn new(script: &str, ovsdb: String, docker: String, apply_timeout: std::time::Duration) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            version: 1,
            pid: std::process::id(),
            started,
            script: script.to_string(),
            ovsdb,
            docker,
            apply_timeout_ms: apply_timeout.as_millis() as u64,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rec")]
pub enum Record {
    /// About to apply `op` (written before the backend is called).
    Begin { idx: usize, op: Op },
    /// Applied; `undo` puts it back.
    Done { idx: usize, undo: Vec<Op>, reversible: bool },
    /// Nothing happened (unchanged, or the backend failed cleanly).
    Nothing { idx: usize },
    /// Undone by a rollback.
    Undone { idx: usize },
}

/// The open journal of a live run (holds the lock).
pub struct JournalFile {
    file: File,
    path: PathBuf,
    /// The directory entry was synced (done before the first synced record).
    dir_synced: bool,
}

pub fn default_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/ovs-run/journal")
    } else if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        PathBuf::from(x).join("ovs-run/journal")
    } else {
        std::env::temp_dir().join(format!("ovs-run-{}/journal", nix::unistd::geteuid()))
    }
}

/// Take the run's exclusive lock; false when another live process holds it.
pub(super) fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl JournalFile {
    pub fn create(dir: &Path, header: &Header) -> std::io::Result<Self> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
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

/// Read a journal file: the header and its records. A torn last line (the
/// process died mid-write) is ignored: the change it describes never started.
pub fn read(path: &Path) -> std::io::Result<(Header, Vec<Record>)> {
    let f = File::open(path)?;
    let mut lines = BufReader::new(f).lines();
    let first = lines.next().ok_or_else(|| std::io::Error::other("empty journal"))??;
    let header: Header = serde_json::from_str(&first).map_err(std::io::Error::other)?;
    let mut records = Vec::new();
    for line in lines {
        let line = line?;
        match serde_json::from_str(&line) {
            Ok(r) => records.push(r),
            Err(_) => break,
        }
    }
    Ok((header, records))
}
