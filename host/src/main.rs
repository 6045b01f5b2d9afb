//! The `ovs-run` binary; everything lives in the library (see `cli`).

fn main() {
    // glibc gives each new thread that allocates a malloc arena of its own,
    // up to 8 per core. A batch opens a netlink socket from a short-lived
    // thread per network namespace, and the arenas those threads leave
    // behind added about 5 MiB of peak RSS at 1000 containers. ovs-run's
    // few threads do not contend enough for more than two to pay off.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    std::process::exit(ovs_run::cli::main());
}
