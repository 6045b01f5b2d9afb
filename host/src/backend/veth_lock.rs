//! The lock between making a container's veth and adding its OVS port, and
//! `gc`'s search for orphaned veths.
//!
//! A port's veth is made complete before its OVS row is added (see
//! [`super::system`]), so for a moment a veth of ovs-run's naming exists
//! with no row: exactly what a detach killed half-way leaves behind for
//! good. `gc` tells the two apart with this lock: every attach holds it
//! shared from before its veths are made until their rows exist (or the
//! veths are gone again), and `gc` looks for orphans only while holding it
//! exclusively. It is a flock on a file in ovs-run's runtime directory
//! (root's is `/run/ovs-run`, which only root can enter), so it spans
//! every ovs-run process on the machine, and dies with its holder.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;

use crate::error::{CapError, CapResult};

/// Held while it lives (the flock goes with the file).
pub struct VethLock {
    _file: File,
}

/// `veths.lock` in the runtime directory (beside the default journal directory).
pub fn path() -> PathBuf {
    crate::rundir::runtime_dir().join("veths.lock")
}

async fn take(exclusive: bool) -> CapResult<VethLock> {
    let path = path();
    tokio::task::spawn_blocking(move || {
        let failed = |e: std::io::Error| CapError::failed(format!("veth lock {}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(failed)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(failed)?;
        let how = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
        // SAFETY: flock on a file descriptor we own; blocks this worker only.
        if unsafe { libc::flock(file.as_raw_fd(), how) } != 0 {
            return Err(failed(std::io::Error::last_os_error()));
        }
        Ok(VethLock { _file: file })
    })
    .await
    .map_err(|e| CapError::failed(format!("veth lock: {e}")))?
}

/// For an attach: held from before its veths exist until their rows do.
/// A lock that cannot be had (no runtime directory) costs only `gc`'s
/// orphan search its safety, which then refuses to run: attaching goes on.
pub async fn shared() -> CapResult<Option<VethLock>> {
    Ok(take(false).await.ok())
}

/// For `gc`: no attach is between its veths and its rows while held.
pub async fn exclusive() -> CapResult<VethLock> {
    take(true).await
}
