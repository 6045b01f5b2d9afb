//! Network namespaces: opening a [`Target`]'s namespace file and running a
//! short piece of setup code (creating a socket) inside it.
//!
//! A socket belongs to the namespace it was created in for its whole life, so
//! only socket creation has to happen inside the namespace. That is done on
//! an OS thread of its own: `setns()` changes the calling thread, and a tokio
//! worker that switched namespace would silently run every later task there.
//!
//! One long-lived thread (the [`Worker`]) does it for every namespace, one
//! job after the other, and goes back to ovs-run's own namespace after each
//! (so that it keeps no container's namespace alive). A fresh thread per
//! namespace cost a clone, a stack and an exit each: `attach-many` of 1000
//! containers opens 2000 namespaces (the socket cache holds 16), and those
//! threads were about 4% of its CPU. Should the worker ever be gone (it stops
//! when it cannot get back home), a throw-away thread does the job instead.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};

use crate::error::{CapError, CapResult};
use crate::types::Target;

/// Identifies a namespace: (device, inode) of its nsfs file. Equal keys mean
/// the same namespace for as long as something keeps that namespace alive.
pub type NsKey = (u64, u64);

/// An open network namespace file.
#[derive(Debug)]
pub struct Namespace {
    fd: OwnedFd,
    key: NsKey,
    /// Says which namespace this is in messages ("netns blue", "host").
    label: String,
}

impl Namespace {
    /// Open `target`'s namespace. Host is the calling thread's namespace,
    /// which for a tokio worker is the one ovs-run started in.
    /// A missing namespace is not-found naming the target and the path.
    pub fn open(target: &Target) -> CapResult<Self> {
        let path = match target {
            Target::Host => PathBuf::from("/proc/thread-self/ns/net"),
            Target::Netns { name } => PathBuf::from("/run/netns").join(name.as_str()),
            Target::Container { pid: 0, .. } => {
                return Err(CapError::not_found(format!("{target} is not running")));
            }
            Target::Container { pid, .. } => PathBuf::from(format!("/proc/{pid}/ns/net")),
        };
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => match target {
                Target::Container { .. } => CapError::not_found(format!(
                    "{target} is not running ({} does not exist)",
                    path.display()
                )),
                _ => CapError::not_found(format!("{target} not found ({} does not exist)", path.display())),
            },
            io::ErrorKind::PermissionDenied => CapError::failed(format!(
                "opening {} for {target}: needs root (CAP_SYS_ADMIN)",
                path.display()
            )),
            _ => CapError::failed(format!("opening {} for {target}: {e}", path.display())),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| CapError::failed(format!("stat {} for {target}: {e}", path.display())))?;
        Ok(Self { fd: file.into(), key: (meta.dev(), meta.ino()), label: target.to_string() })
    }

    pub fn key(&self) -> NsKey {
        self.key
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn try_clone(&self) -> CapResult<Self> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| CapError::failed(format!("duplicating namespace fd of {}: {e}", self.label)))?;
        Ok(Self { fd, key: self.key, label: self.label.clone() })
    }

    /// Run `f` on an OS thread that has entered this namespace (the
    /// [`Worker`]) and return its result. `f` should only create sockets and
    /// must not block: other namespaces wait for it.
    /// A namespace file that is no longer a namespace (a stale /run/netns
    /// entry) is not-found, like a missing one.
    pub async fn run<T, F>(self, what: &str, f: F) -> CapResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let label = self.label.clone();
        let job: Job = Box::new(move || {
            let res = match setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET) {
                Ok(()) => f().map_err(Entered::Inside),
                Err(e) => Err(Entered::Setns(e)),
            };
            // The receiver only goes away if the caller was cancelled.
            let _ = tx.send(res);
        });
        if let Err(mpsc::SendError(job)) = Worker::get().send(job) {
            // No worker (it could not get back home once): a thread of its
            // own, which exits right after.
            let thread = std::thread::Builder::new().name("ovs-run-netns".into()).spawn(job);
            thread.map_err(|e| CapError::failed(format!("{what} in {label}: spawning a thread: {e}")))?;
        }
        let res =
            rx.await.map_err(|_| CapError::failed(format!("{what} in {label}: namespace thread died")))?;
        res.map_err(|e| match e {
            Entered::Setns(Errno::EINVAL) => CapError::not_found(format!(
                "{label} not found (its namespace file is not a network namespace any more)"
            )),
            Entered::Setns(Errno::EPERM) => {
                CapError::failed(format!("{what} in {label}: needs root (CAP_SYS_ADMIN)"))
            }
            Entered::Setns(e) => CapError::failed(format!("{what} in {label}: setns: {e}")),
            Entered::Inside(e) if e.raw_os_error() == Some(libc::EPERM) => {
                CapError::failed(format!("{what} in {label}: needs root (CAP_NET_RAW/CAP_NET_ADMIN)"))
            }
            Entered::Inside(e) => CapError::failed(format!("{what} in {label}: {e}")),
        })
    }
}

/// Work for the namespace thread: enter a namespace, make sockets, report.
type Job = Box<dyn FnOnce() + Send>;

/// The thread that enters namespaces on behalf of everyone (see the module
/// doc), started on first use.
struct Worker;

impl Worker {
    /// Where jobs go. Started from a tokio worker or the main thread, which
    /// never leave the namespace ovs-run started in: that is the worker's
    /// home. Jobs sent after the worker stopped come back as errors.
    fn get() -> &'static mpsc::Sender<Job> {
        static JOBS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
        JOBS.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = File::open("/proc/thread-self/ns/net").and_then(|home| {
                std::thread::Builder::new().name("ovs-run-netns".into()).spawn(move || {
                    for job in rx {
                        job();
                        // Home again: a socket made later must not land in
                        // the last namespace, nor may the thread keep it
                        // alive. Cannot get back: stop taking jobs.
                        if setns(home.as_fd(), CloneFlags::CLONE_NEWNET).is_err() {
                            return;
                        }
                    }
                })
            });
            // Not started (no /proc, no threads left): the receiver is gone
            // with the closure, every send fails and falls back.
            drop(started);
            tx
        })
    }
}

enum Entered {
    Setns(Errno),
    Inside(io::Error),
}
