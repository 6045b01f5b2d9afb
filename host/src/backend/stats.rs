//! How much a run asked of the system: OVSDB transactions (and how many of
//! them changed something, each a wait for ovs-vswitchd), netlink requests
//! and Docker API requests. Counted process-wide, where the requests are
//! sent; `-v` prints them and `--json` reports them, so the cost of a script
//! per container can be read off without a profiler.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

static OVSDB_TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
static OVSDB_CHANGES: AtomicU64 = AtomicU64::new(0);
static NETLINK_REQUESTS: AtomicU64 = AtomicU64::new(0);
static DOCKER_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// `transact` requests sent to ovsdb-server, reads included.
    pub ovsdb_transactions: u64,
    /// Of those, the ones that changed the database and waited for ovs-vswitchd.
    pub ovsdb_changes: u64,
    /// rtnetlink requests (a dump counts once).
    pub netlink_requests: u64,
    pub docker_requests: u64,
}

pub fn snapshot() -> Stats {
    Stats {
        ovsdb_transactions: OVSDB_TRANSACTIONS.load(Ordering::Relaxed),
        ovsdb_changes: OVSDB_CHANGES.load(Ordering::Relaxed),
        netlink_requests: NETLINK_REQUESTS.load(Ordering::Relaxed),
        docker_requests: DOCKER_REQUESTS.load(Ordering::Relaxed),
    }
}

pub(crate) fn ovsdb_transaction() {
    OVSDB_TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn ovsdb_change() {
    OVSDB_CHANGES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn netlink_request() {
    NETLINK_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn docker_request() {
    DOCKER_REQUESTS.fetch_add(1, Ordering::Relaxed);
}
