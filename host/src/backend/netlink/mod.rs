//! Namespace-aware rtnetlink: links, addresses and routes in the host, a
//! named netns or a container, without forking `ip`.
//!
//! Like netavark, each namespace gets one netlink socket, created by a thread
//! that entered the namespace (see [`netns`]); requests on that socket act in
//! that namespace. Sockets are opened on first use and kept, keyed by the
//! namespace's inode. A kept socket also keeps its namespace alive, so a
//! cached inode can never be reused by a different namespace; and so that a
//! deleted netns or stopped container is not kept alive (with its veths),
//! its socket is dropped as soon as its namespace file is found missing, and
//! whenever a new namespace is opened every cached one whose target no
//! longer leads to it is dropped too: a long-lived process (`watch`,
//! `serve`) holds sockets only for namespaces that still exist. That check
//! costs a stat per cached namespace, so it runs every time the cache is
//! small, and once per quarter of its size in new namespaces when it is
//! large (a batch of 1000 containers would otherwise pay half a million
//! stats); and at most [`MAX_CACHED`] namespaces keep their sockets, the
//! oldest opened going first, so memory does not grow with the batch.
//!
//! The operations live in [`link`], [`addr`], [`route`] and [`ethtool`]
//! (offloads, through an ioctl socket kept beside each netlink socket), and
//! whole-namespace link listings that only need names in [`dump`] (a raw
//! socket kept beside them too, read lean); this file holds the socket
//! cache, name-to-index resolution and errno mapping.

mod addr;
mod dump;
mod ethtool;
mod link;
mod neigh;
pub mod netns;
mod route;

use std::collections::HashMap;
use std::fmt::Display;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::Handle;

use crate::error::{CapError, CapResult};
use crate::types::{IfName, Target};
pub use link::{LinkEnds, PeerSetup};
use netns::{Namespace, NsKey};

/// Most namespaces whose sockets are kept (each costs a task and 72 KiB of
/// buffers: netlink-proto's fixed 64 KiB receive and 8 KiB send buffers); a
/// namespace used again after it was dropped is reopened (a thread entering
/// it, well under a millisecond). A batch visits each container once per
/// phase, so a larger cache only holds memory: 64 cost 3 MiB of peak heap in
/// `attach-many` of 1000 containers and saved no reopening.
const MAX_CACHED: usize = 16;

/// Below this many cached namespaces every new one prunes the cache.
const PRUNE_ALWAYS_BELOW: usize = 8;

/// Netlink access to every namespace ovs-run touches. Cheap to share (`Send + Sync`).
pub struct Netlink {
    /// The namespace ovs-run started in: [`Target::Host`] means this one even
    /// if the thread that asks is somewhere else.
    host: Namespace,
    /// Sockets per namespace.
    handles: Mutex<HashMap<NsKey, Sockets>>,
    /// Namespaces opened so far: orders the cache for eviction.
    opened: AtomicU64,
    /// Namespaces opened since the cache was last pruned.
    since_prune: AtomicUsize,
}

/// What is kept open for one namespace.
#[derive(Clone)]
struct Sockets {
    /// The target they were opened for: dropped when it is gone or no
    /// longer leads to this namespace.
    target: Target,
    handle: Handle,
    /// For device ioctls ([`ethtool`]).
    ioctl: Arc<OwnedFd>,
    /// For lean link dumps ([`dump`]), one at a time.
    dump: Arc<Mutex<OwnedFd>>,
    /// When it was opened ([`Netlink::opened`]): the oldest is evicted first.
    seq: u64,
}

impl Netlink {
    /// Must be called inside a tokio runtime (sockets register with its reactor).
    pub fn new() -> CapResult<Self> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| CapError::failed("netlink: not inside a tokio runtime"))?;
        Ok(Self {
            host: Namespace::open(&Target::Host)?,
            handles: Mutex::new(HashMap::new()),
            opened: AtomicU64::new(0),
            since_prune: AtomicUsize::new(0),
        })
    }

    /// Open the host namespace's socket now rather than on first use.
    pub async fn prewarm(&self) {
        let _ = self.handle(&Target::Host).await;
    }

    /// `target`'s namespace file, freshly opened (so a deleted namespace is
    /// noticed), with Host answered from the fd kept since [`Netlink::new`].
    fn namespace(&self, target: &Target) -> CapResult<Namespace> {
        match target {
            Target::Host => self.host.try_clone(),
            _ => Namespace::open(target),
        }
    }

    /// The rtnetlink handle whose socket lives in `target`'s namespace.
    async fn handle(&self, target: &Target) -> CapResult<Handle> {
        Ok(self.sockets(target).await?.handle)
    }

    /// The sockets that live in `target`'s namespace, opened on first use.
    async fn sockets(&self, target: &Target) -> CapResult<Sockets> {
        let ns = match self.namespace(target) {
            Ok(ns) => ns,
            Err(e) => {
                let gone = target.key();
                self.lock().retain(|_, s| s.target.key() != gone);
                return Err(e);
            }
        };
        let key = ns.key();
        if let Some(s) = self.lock().get(&key) {
            return Ok(s.clone());
        }
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, ioctl, dump) = ns
            .run("opening a netlink socket", move || {
                // The socket registers with the reactor when it is created.
                let _guard = rt.enter();
                let (conn, handle, _) = rtnetlink::new_connection()?;
                Ok((conn, handle, ethtool::ioctl_socket()?, dump::socket()?))
            })
            .await?;
        let since = self.since_prune.fetch_add(1, Ordering::Relaxed) + 1;
        let cached = self.lock().len();
        if cached < PRUNE_ALWAYS_BELOW || since * 4 >= cached {
            self.since_prune.store(0, Ordering::Relaxed);
            self.prune();
        }
        // Two callers may race to open the same namespace: keep the first,
        // the loser's connection ends when its handle is dropped.
        let seq = self.opened.fetch_add(1, Ordering::Relaxed);
        let fresh = Sockets {
            target: target.clone(),
            handle,
            ioctl: Arc::new(ioctl),
            dump: Arc::new(Mutex::new(dump)),
            seq,
        };
        let sockets = {
            let mut map = self.lock();
            let sockets = map.entry(key).or_insert(fresh).clone();
            if map.len() > MAX_CACHED {
                // Callers still holding the evicted handle keep its socket
                // until they are done; the next use opens a new one.
                let oldest = map
                    .iter()
                    .filter(|(_, s)| s.target != Target::Host)
                    .min_by_key(|(_, s)| s.seq)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            sockets
        };
        tokio::spawn(conn);
        Ok(sockets)
    }

    /// Drop the sockets of every namespace whose target is gone (a stopped
    /// container, a deleted netns) or now leads elsewhere (a restarted
    /// container), so they no longer keep it alive. A few stat calls per
    /// cached namespace; run when a new namespace is opened.
    pub fn prune(&self) {
        let cached: Vec<(NsKey, Target)> = self.lock().iter().map(|(k, s)| (*k, s.target.clone())).collect();
        let stale: Vec<NsKey> = cached
            .into_iter()
            .filter(|(key, target)| {
                *target != Target::Host && Namespace::open(target).map(|ns| ns.key() != *key).unwrap_or(true)
            })
            .map(|(key, _)| key)
            .collect();
        if !stale.is_empty() {
            self.lock().retain(|key, _| !stale.contains(key));
        }
    }

    /// How many namespaces have cached sockets (for tests and -vv).
    pub fn cached_namespaces(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NsKey, Sockets>> {
        // The map holds only handles; a panic elsewhere cannot leave it half-updated.
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The link called `name`, fetched by name (one request, no dump).
/// Not-found names the link and the target.
async fn get_link(handle: &Handle, target: &Target, name: &IfName) -> CapResult<LinkMessage> {
    crate::backend::stats::netlink_request();
    let mut links = handle.link().get().match_name(name.as_str()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => Err(link_not_found(target, name)),
        Err(e) if is_not_found(&e) => Err(link_not_found(target, name)),
        Err(e) => Err(nl_error(e, format!("looking up link {name} in {target}"))),
    }
}

fn link_not_found(target: &Target, name: &IfName) -> CapError {
    CapError::not_found(format!("link {name} not found in {target}"))
}

/// The positive errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn is_not_found(e: &rtnetlink::Error) -> bool {
    matches!(errno(e), Some(libc::ENODEV | libc::ENOENT))
}

/// Map a netlink error for operation `what` ("set mtu 1400 on eth0 in host").
/// Callers that can say more (which link is missing) check the errno first.
fn nl_error(e: rtnetlink::Error, what: impl Display) -> CapError {
    let text = match &e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
        other => other.to_string(),
    };
    match errno(&e) {
        Some(libc::EPERM | libc::EACCES) => CapError::failed(format!("{what}: needs root (CAP_NET_ADMIN)")),
        Some(libc::EEXIST) => CapError::exists(format!("{what}: {text}")),
        Some(libc::ENODEV | libc::ENOENT) => CapError::not_found(format!("{what}: {text}")),
        _ => CapError::failed(format!("{what}: {text}")),
    }
}
