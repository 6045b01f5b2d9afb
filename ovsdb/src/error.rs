//! Every way a call can fail, as a typed enum: callers match variants
//! (and [`OpErrorKind`] for a failed operation) instead of searching
//! messages. The messages name the server, the method and the bad input.

use std::fmt;
use std::time::Duration;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// A string that is not a `unix:PATH` / `tcp:HOST:PORT` address.
    #[error("OVSDB address '{address}' {why} (expected unix:PATH or tcp:HOST:PORT)")]
    InvalidAddress { address: String, why: &'static str },

    /// The socket could not be opened (or not within the connect timeout).
    #[error("cannot connect to OVSDB at {uri}: {reason} (is ovsdb-server running?)")]
    Connect { uri: String, reason: String },

    /// The connection ended (the server closed it, a read or write failed,
    /// an earlier request timed out, the server sent bytes that are not
    /// JSON): this and every later call on it fail; connect anew.
    #[error("connection to OVSDB at {uri} lost: {reason}")]
    ConnectionLost { uri: String, reason: String },

    /// No answer in time. The connection was closed with it: a late answer
    /// could otherwise be taken for another request's.
    #[error(
        "OVSDB at {uri} did not answer {method} within {} s (closed the connection; the next call reconnects)",
        after.as_secs_f64()
    )]
    Timeout { uri: String, method: String, after: Duration },

    /// The server answered the request with a JSON-RPC `error`.
    #[error("OVSDB at {uri} rejected {method}: {}", describe(error, details.as_deref()))]
    Rpc { uri: String, method: String, error: String, details: Option<String> },

    /// A reply that does not have the shape RFC 7047 gives it.
    #[error("OVSDB at {uri}: {message}")]
    Protocol { uri: String, message: String },

    /// The server has no database of that name.
    #[error("OVSDB at {uri} has no database {database} (it has: {})", available.join(", "))]
    UnknownDatabase { uri: String, database: String, available: Vec<String> },

    /// The database lacks a table or column the caller declared it needs.
    #[error("OVSDB database {database} at {uri} has no {}", missing_what(table, column.as_deref()))]
    SchemaMismatch { uri: String, database: String, table: String, column: Option<String> },

    /// One operation of a transaction (or its commit) failed; nothing of the
    /// transaction was applied.
    #[error(transparent)]
    Op(#[from] OpError),
}

impl Error {
    /// The failed operation, when this is one.
    pub fn op_error(&self) -> Option<&OpError> {
        match self {
            Error::Op(e) => Some(e),
            _ => None,
        }
    }

    /// The connection is gone (lost or closed by a timeout): a new one may work.
    pub fn is_connection_gone(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. } | Error::Timeout { .. })
    }
}

fn missing_what(table: &str, column: Option<&str>) -> String {
    match column {
        Some(c) => format!("column {c} in table {table}"),
        None => format!("table {table}"),
    }
}

fn describe(error: &str, details: Option<&str>) -> String {
    match details {
        Some(d) if !d.is_empty() => format!("{error}: {d}"),
        _ => error.to_string(),
    }
}

/// RFC 7047's `error` strings of a failed operation (section 4.1.3 and 5.2),
/// typed. Unknown strings are kept in [`OpErrorKind::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpErrorKind {
    /// "referential integrity violation": a row would refer to a missing row,
    /// or a row still referred to would be deleted.
    ReferentialIntegrityViolation,
    /// "constraint violation": a value out of its column's constraints, or
    /// two rows with identical values in a unique index (see
    /// [`OpError::is_unique_index_violation`]).
    ConstraintViolation,
    ResourcesExhausted,
    /// "I/O error": the server could not write the database.
    IoError,
    /// "duplicate uuid-name": two inserts used one `uuid-name`.
    DuplicateUuidName,
    /// "domain error" (a mutation divided by zero, ...).
    DomainError,
    /// "range error" (a mutation overflowed).
    RangeError,
    /// "timed out": a `wait` whose condition did not hold in time.
    TimedOut,
    /// "not supported" (e.g. a durable commit on a server that cannot).
    NotSupported,
    /// "aborted": the transaction ran an `abort` operation.
    Aborted,
    /// "not owner": an `assert` for a lock this session does not hold.
    NotOwner,
    /// Any other string the server sent ("syntax error", "unknown table", ...).
    Other(String),
}

impl OpErrorKind {
    pub fn parse(error: &str) -> Self {
        match error {
            "referential integrity violation" => Self::ReferentialIntegrityViolation,
            "constraint violation" => Self::ConstraintViolation,
            "resources exhausted" => Self::ResourcesExhausted,
            "I/O error" => Self::IoError,
            "duplicate uuid-name" => Self::DuplicateUuidName,
            "domain error" => Self::DomainError,
            "range error" => Self::RangeError,
            "timed out" => Self::TimedOut,
            "not supported" => Self::NotSupported,
            "aborted" => Self::Aborted,
            "not owner" => Self::NotOwner,
            other => Self::Other(other.to_string()),
        }
    }
}

/// The first failed operation of a transaction; `index == ops.len()` (and
/// `op == "commit"`) when the transaction failed at commit, as a violated
/// unique index does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub index: usize,
    /// The operation's `op` ("wait", "insert", ...) or "commit".
    pub op: String,
    pub kind: OpErrorKind,
    /// The server's `error` string, as sent.
    pub error: String,
    /// The server's `details`, as sent.
    pub details: Option<String>,
}

impl OpError {
    pub fn new(
        index: usize,
        op: impl Into<String>,
        error: impl Into<String>,
        details: Option<String>,
    ) -> Self {
        let error = error.into();
        Self { index, op: op.into(), kind: OpErrorKind::parse(&error), error, details }
    }

    /// The server's own words: "constraint violation: Transaction causes ...".
    pub fn describe(&self) -> String {
        describe(&self.error, self.details.as_deref())
    }

    /// Two rows with the same value in a unique index (a duplicate name).
    /// RFC 7047 reports it as a "constraint violation" at commit;
    /// ovsdb-server's details say "identical values", which is the only
    /// thing telling it apart from a value out of range.
    pub fn is_unique_index_violation(&self) -> bool {
        self.kind == OpErrorKind::ConstraintViolation
            && self.details.as_deref().is_some_and(|d| d.contains("identical values"))
    }

    /// A `wait` operation's condition did not hold (with timeout 0: at once).
    pub fn is_wait_timeout(&self) -> bool {
        self.kind == OpErrorKind::TimedOut
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OVSDB transaction failed at operation {} ({}): {}", self.index, self.op, self.describe())
    }
}

impl std::error::Error for OpError {}

/// At most 64 bytes of `s` (on a char boundary) and its length: errors
/// quote what they got without flooding a log.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_rfc_strings() {
        assert_eq!(OpErrorKind::parse("timed out"), OpErrorKind::TimedOut);
        assert_eq!(
            OpErrorKind::parse("referential integrity violation"),
            OpErrorKind::ReferentialIntegrityViolation
        );
        assert_eq!(OpErrorKind::parse("syntax error"), OpErrorKind::Other("syntax error".into()));
        let dup = OpError::new(
            3,
            "commit",
            "constraint violation",
            Some(
                "Transaction causes multiple rows in \"Port\" table to have identical values (\"p1\")".into(),
            ),
        );
        assert!(dup.is_unique_index_violation() && !dup.is_wait_timeout());
        assert_eq!(
            dup.to_string(),
            "OVSDB transaction failed at operation 3 (commit): constraint violation: Transaction causes \
             multiple rows in \"Port\" table to have identical values (\"p1\")"
        );
        let range = OpError::new(0, "insert", "constraint violation", Some("4096 is not in range".into()));
        assert!(!range.is_unique_index_violation());
    }

    #[test]
    fn shorten_cuts_on_a_char_boundary() {
        let s = "é".repeat(40);
        let short = shorten(&s);
        assert!(short.starts_with(&"é".repeat(32)) && short.ends_with("(80 bytes)"), "{short}");
    }
}
