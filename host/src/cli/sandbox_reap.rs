//! What a sandbox's private dockerd leaves behind when `sandbox down` stops
//! waiting for it. On SIGTERM dockerd stops its containers first, each within
//! its stop timeout: with hundreds of containers, or one whose init ignores
//! SIGTERM, that outlasts `down`'s wait, and the SIGKILL that follows leaves
//! containerd, the containers' shims and the containers themselves running,
//! with their network namespace files and layers mounted under the sandbox
//! directory (which then cannot be removed). Everything here is found by that
//! directory, so nothing else on the host is touched.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The daemons of a private Docker engine, by their `comm` (15 bytes at most).
const ENGINE: [&str; 3] = ["dockerd", "containerd", "containerd-shim"];

/// SIGKILL what is left of the engine rooted under `dir`: the containers
/// first (the children of its shims: killing a container's init ends its
/// whole PID namespace), then the shims, containerd and dockerd, which are
/// recognised by name and by a command line naming a path under `dir`.
/// Returns how many processes were killed.
pub fn kill_engine(dir: &Path) -> usize {
    let under = prefix(dir);
    // One read of /proc serves both: the engine's processes and their children.
    let all: Vec<Process> = processes().collect();
    let engine: Vec<i32> = all
        .iter()
        .filter(|p| ENGINE.iter().any(|n| p.comm.starts_with(n)) && p.cmdline.contains(&under))
        .map(|p| p.pid)
        .collect();
    let containers: Vec<i32> =
        all.iter().filter(|p| engine.contains(&p.ppid) && !engine.contains(&p.pid)).map(|p| p.pid).collect();
    let mut killed = 0;
    for pid in containers.into_iter().chain(engine) {
        if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}

/// Lazily unmount every mount point under `dir`, deepest first (a
/// container's network namespace file, an overlay layer inside the data
/// root). Lazy: a mount still in use goes once its last user has.
pub fn unmount_under(dir: &Path) {
    let under = prefix(dir);
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else { return };
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(unescape)
        .filter(|p| p.starts_with(&under))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `dir/` as the daemons were given it: absolute, with a trailing slash so
/// that `/tmp/sb` does not match `/tmp/sb2`.
fn prefix(dir: &Path) -> String {
    let abs: PathBuf = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    format!("{}/", abs.display())
}

struct Process {
    pid: i32,
    ppid: i32,
    comm: String,
    /// The arguments joined by spaces.
    cmdline: String,
}

/// Every process of this PID namespace that can still be read.
fn processes() -> impl Iterator<Item = Process> {
    let entries = fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(e.path().join("stat")).ok()?;
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let (head, tail) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let ppid = tail.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = fs::read(e.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        Some(Process { pid, ppid, comm, cmdline })
    })
}

/// A path as /proc/self/mounts writes it: space, tab, newline and backslash
/// as three octal digits.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let (3, Ok(byte)) = (digits.len(), u8::from_str_radix(&digits, 8)) {
                out.push(byte as char);
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape(r"/tmp/a\040b/c\134d"), r"/tmp/a b/c\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/odd\04"), r"/odd\04");
    }

    #[test]
    fn a_sibling_directory_is_not_under() {
        let p = prefix(Path::new("/nonexistent/sb"));
        assert!("/nonexistent/sb/docker-exec/x".starts_with(&p));
        assert!(!"/nonexistent/sb2/docker-exec/x".starts_with(&p));
    }
}
