//! The error every capability returns: a kind a script can match on and a
//! message that names the bad value. Mirrors `ovs-run:net/types.error`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Denied,
    Failed,
    /// The system could not be reached (OVSDB, Docker, netlink): not the
    /// input's fault. Scripts see it as `failed`; a run that fails after it
    /// exits with its own status (4) so monitoring can tell.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct CapError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CapError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Denied, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Prefix the message with what was being done ("add-port br0/eth0: ...").
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

pub type CapResult<T> = Result<T, CapError>;

/// A value that failed to parse is an invalid argument, with its message.
impl From<ovs_run_types::InvalidValue> for CapError {
    fn from(e: ovs_run_types::InvalidValue) -> Self {
        CapError::invalid(e.0)
    }
}
