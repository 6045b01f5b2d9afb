//! [`Target`]: where a network operation happens (the host, a container, a netns).

use std::fmt;

pub use crate::bindings::Target;

impl Target {
    /// The host's own network namespace (where ovs-run runs).
    pub fn host() -> Self {
        Target::Host
    }

    /// A running Docker container, by name or (abbreviated) id.
    pub fn container(name: impl AsRef<str>) -> Self {
        Target::Container(name.as_ref().to_string())
    }

    /// A named network namespace (`ip netns add NAME`).
    pub fn netns(name: impl AsRef<str>) -> Self {
        Target::Netns(name.as_ref().to_string())
    }
}

/// For log lines: `host`, `container web`, `netns ns1`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host => f.write_str("host"),
            Target::Container(name) => write!(f, "container {name}"),
            Target::Netns(name) => write!(f, "netns {name}"),
        }
    }
}
