//! The error a script returns: a failed host call, an invalid value, or the
//! script's own reason. `?` converts into it from every SDK call.

use std::fmt;

use crate::bindings::HostError;

/// Why a script (or one step of it) failed. Its `Display` text is what the
/// user sees when the script returns it from `main`.
#[derive(Clone, Debug)]
pub enum Error {
    /// A capability call failed on the host (bad value, missing object, policy, system).
    Host(HostError),
    /// An argument or value was rejected by the script before any call was made.
    Invalid(String),
    /// The script gave up for its own reason.
    Script(String),
}

impl Error {
    /// An invalid-argument error; the message should name the value.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// A script-level failure with the given message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error::Script(message.to_string())
    }

    /// True for the host's `not-found` (a bridge, port, container or link is missing).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Host(HostError::NotFound(_)))
    }

    /// True for the host's `already-exists`.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::Host(HostError::AlreadyExists(_)))
    }

    /// True when the policy refused the call.
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Host(HostError::Denied(_)))
    }

    /// Prefixes the message with what the script was doing, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Error::Host(e) => Error::Host(match e {
                HostError::InvalidArgument(m) => HostError::InvalidArgument(format!("{what}: {m}")),
                HostError::NotFound(m) => HostError::NotFound(format!("{what}: {m}")),
                HostError::AlreadyExists(m) => HostError::AlreadyExists(format!("{what}: {m}")),
                HostError::Denied(m) => HostError::Denied(format!("{what}: {m}")),
                HostError::Failed(m) => HostError::Failed(format!("{what}: {m}")),
            }),
            Error::Invalid(m) => Error::Invalid(format!("{what}: {m}")),
            Error::Script(m) => Error::Script(format!("{what}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Host(HostError::InvalidArgument(m)) => write!(f, "invalid argument: {m}"),
            Error::Host(HostError::NotFound(m)) => write!(f, "not found: {m}"),
            Error::Host(HostError::AlreadyExists(m)) => write!(f, "already exists: {m}"),
            Error::Host(HostError::Denied(m)) => write!(f, "denied: {m}"),
            Error::Host(HostError::Failed(m)) => write!(f, "failed: {m}"),
            Error::Invalid(m) | Error::Script(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        Error::Host(e)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Script(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Script(message.to_string())
    }
}

/// Adds [`Error::context`] to any result whose error converts into [`Error`].
pub trait Context<T> {
    /// On error, prefix the message with `what` (e.g. `"add-port eth1"`).
    fn context(self, what: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| e.into().context(what))
    }
}
