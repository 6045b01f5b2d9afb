//! Bounds on what one capability call may hand the host, checked here, at
//! the capability boundary, before the policy, the journal or the audit log
//! see the call: every later stage (Cedar context, journal line, audit line,
//! OVSDB transaction) grows with the arguments, so an unbounded list would
//! cost the host (and ovsdb-server) memory and time even when the call is
//! then denied.
//!
//! Two layers:
//! - [`MAX_CALL_DATA`]: wasmtime's hostcall fuel, set on every store. It
//!   caps the bytes the host allocates while lifting one call's arguments out
//!   of guest memory. The guest's memory limit alone does not: a list of N
//!   strings all pointing at the same large buffer lifts to N copies of it. A
//!   call over this cap traps before its host function runs.
//! - The per-argument limits below, each refused with an `invalid-argument`
//!   error naming the argument and the limit.
//!
//! Strings that are parsed into a type (interface, container and namespace
//! names, addresses, MACs) are bounded by their parsers; the others are
//! bounded here.

use crate::error::{CapError, CapResult};

/// Bytes of arguments the host copies out of the guest for one call.
pub const MAX_CALL_DATA: usize = 16 << 20;

/// Trunk VLANs of one port: OVS's own limit (the `trunks` column holds at most 4096).
pub const MAX_TRUNKS: usize = 4096;

/// Requests in one `add-ports` or `remove-ports` batch.
pub const MAX_BATCH: usize = 4096;

/// Trunk VLANs across all the requests of one `add-ports` batch: each one
/// ends up in the policy's context, the journal and an audit line.
pub const MAX_BATCH_TRUNKS: usize = 65_536;

/// Addresses of one `attach-ports` request's inner end.
pub const MAX_ADDRESSES: usize = 16;

/// Label pairs in one `list-by-label` call.
pub const MAX_LABELS: usize = 64;

/// Bytes of one label key or value.
pub const MAX_LABEL_BYTES: usize = 1024;

/// Refuse a list longer than `max`; `what` names the argument ("options.trunks").
pub fn list(what: &str, len: usize, max: usize) -> CapResult<()> {
    if len > max {
        return Err(CapError::invalid(format!("{what} has {len} entries; the limit is {max}")));
    }
    Ok(())
}

/// Refuse a string longer than `max` bytes; the message does not echo it.
pub fn string(what: &str, s: &str, max: usize) -> CapResult<()> {
    if s.len() > max {
        return Err(CapError::invalid(format!("{what} is {} bytes long; the limit is {max}", s.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_argument_and_the_limit_not_the_value() {
        let e = list("options.trunks", 20_000_000, MAX_TRUNKS).unwrap_err().to_string();
        assert_eq!(e, "options.trunks has 20000000 entries; the limit is 4096");
        let big = "k".repeat(1 << 20);
        let e = string("labels[0].key", &big, MAX_LABEL_BYTES).unwrap_err().to_string();
        assert!(e.starts_with("labels[0].key is 1048576 bytes long; the limit is 1024"), "{e}");
        assert!(list("requests", MAX_BATCH, MAX_BATCH).is_ok());
    }
}
