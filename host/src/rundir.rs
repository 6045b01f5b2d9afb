//! ovs-run's runtime directory: root's is `/run/ovs-run` (only root can
//! enter it); other users get theirs under `$XDG_RUNTIME_DIR` or the temp
//! dir. The journals and the veth lock live in it; every layer may ask.

use std::path::PathBuf;

pub fn runtime_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run/ovs-run")
    } else if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        PathBuf::from(x).join("ovs-run")
    } else {
        std::env::temp_dir().join(format!("ovs-run-{}", nix::unistd::geteuid()))
    }
}
