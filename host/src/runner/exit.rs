//! The exit statuses of ovs-run, one table for every frontend (the command
//! line, `submit`, the lifecycle commands), so an operator's monitoring can
//! tell "fix your input" from "the system is down" whichever way a script ran.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | the script reported an error (its message is printed) |
//! | 2 | usage error: bad options or script arguments, a script that cannot be loaded or was refused |
//! | 3 | the script trapped or hit a limit (--timeout, --memory, --max-calls) |
//! | 4 | the system was unavailable: OVSDB, Docker or netlink could not be reached |

use crate::error::ErrorKind;

pub const EXIT_OK: i32 = 0;
pub const EXIT_SCRIPT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_TRAP: i32 = 3;
pub const EXIT_UNAVAILABLE: i32 = 4;

/// The status of a command that failed with `kind` before or outside a
/// script run (gc, watch, bind): the system's fault, the input's, or neither.
pub fn for_error(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Unavailable => EXIT_UNAVAILABLE,
        // A bad or unknown name the operator typed (gc --bridge nosuch): fix the input.
        ErrorKind::InvalidArgument | ErrorKind::NotFound => EXIT_USAGE,
        _ => EXIT_SCRIPT_ERROR,
    }
}

/// What every SDK (Rust, Python, JavaScript, C) appends to a script's usage
/// error: "(Usage: attach.wasm BRIDGE ...; see --help)". A script that fails
/// with it failed on its arguments, which is a usage error like ovs-run's own.
const SCRIPT_USAGE_MARK: &str = "; see --help)";

/// Whether a script's error message is a usage error (see [`SCRIPT_USAGE_MARK`]).
pub fn is_script_usage_error(message: &str) -> bool {
    message.trim_end().ends_with(SCRIPT_USAGE_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_usage_errors_are_recognised() {
        assert!(is_script_usage_error(
            "missing argument CONTAINER (Usage: attach.wasm BRIDGE INTERFACE CONTAINER [OPTIONS]; see --help)"
        ));
        assert!(!is_script_usage_error("not found: container web not found"));
    }
}
