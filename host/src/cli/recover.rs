//! `ovs-run recover`: roll back runs that died (and what every script run
//! does first, so a killed run never leaves half-built ports for long). The
//! work is the journal's ([`crate::journal::sweep`]); this prints its notices.

use std::path::Path;

use crate::journal::sweep::{self, Notice};

/// Roll back (or with `list_only`, show) every interrupted run in `dir`.
/// Returns false when some change could not be undone, or something could
/// not be read.
pub async fn recover_all(dir: &Path, list_only: bool, quiet_when_none: bool) -> bool {
    sweep::recover_all(dir, list_only, quiet_when_none, &print).await
}

/// Listings on stdout, warnings on stderr.
pub fn print(notice: Notice) {
    match notice {
        Notice::Listing(line) => println!("{line}"),
        Notice::Warning(line) => eprintln!("{line}"),
    }
}
