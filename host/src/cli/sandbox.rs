//! `ovs-run sandbox`: a private Open vSwitch in a directory of its own
//! (ovsdb-server + ovs-vswitchd with the userspace datapath allowed), and
//! optionally a private dockerd, the way OVS ships `ovs-sandbox`. It is how a
//! new user tries ovs-run without touching the host's switch, and what the
//! tests and `make demo` run against.
//!
//! The daemons run in a network namespace of their own (`/run/netns/NAME`,
//! as `ip netns add` makes them) unless `--no-netns`: ovs-vswitchd's
//! userspace datapath owns a tap device called `ovs-netdev` in its namespace,
//! and a second userspace datapath in the same namespace (the host's own
//! OVS, another sandbox, a test run) fails to create every bridge. The
//! printed environment sets `OVS_RUN_NETNS`, which makes every later
//! ovs-run enter that namespace first (see [`enter_netns_from_env`]), so
//! its "host" is the sandbox's; `sandbox exec` runs any other command there.
//!
//! Starting daemons is the one place ovs-run runs other programs.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use clap::Subcommand;

const DEFAULT_DIR: &str = "/tmp/ovs-run-sandbox";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
pub(super) const NETNS_DIR: &str = "/run/netns";
/// The environment variable that makes ovs-run enter a named network namespace first.
pub const NETNS_ENV: &str = "OVS_RUN_NETNS";
/// The busybox image `sandbox up --docker` builds (no registry needed).
pub const IMAGE: &str = "ovsrun-busybox:latest";

#[derive(Subcommand, Debug)]
pub enum Action {
    /// Start the sandbox and print the environment to use it (eval "$(ovs-run sandbox up)")
    Up {
        /// Directory for the database, sockets, pid and log files, and the
        /// runs' journal, state and compile cache
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Also start a private dockerd (socket DIR/docker.sock) and build the
        /// busybox image ovsrun-busybox:latest from the host's busybox
        #[arg(long)]
        docker: bool,
        /// Name of the sandbox's network namespace [default: ovsrun-HASH, from DIR]
        #[arg(long, value_name = "NAME", conflicts_with = "no_netns")]
        netns: Option<String>,
        /// Run the daemons in this network namespace instead of one of their
        /// own (only where no other userspace datapath runs: a test's own namespace)
        #[arg(long)]
        no_netns: bool,
        /// Start N simulated hosts (2-8) named A, B, C... joined by an underlay
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=8),
              conflicts_with_all = ["docker", "netns", "no_netns"], long_help = super::sandbox_hosts::HOSTS_HELP)]
        hosts: Option<u8>,
        /// With --hosts: OVN central (NB, SB, ovn-northd) on host A, ovn-controller on every host
        #[arg(long, requires = "hosts")]
        ovn: bool,
    },
    /// Stop the sandbox's daemons and remove its directory
    Down {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Print the environment that points ovs-run, ovs-vsctl and docker at the sandbox
    Env {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// In a sandbox of several hosts: the environment of this host (A, B, ...)
        #[arg(long, value_name = "HOST")]
        host: Option<super::sandbox_hosts::HostName>,
    },
    /// Run a command inside the sandbox's network namespace (ip, ping, ovs-appctl...)
    Exec {
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// In a sandbox of several hosts: run it "on" this host (A, B, ...), with its environment
        #[arg(long, value_name = "HOST")]
        host: Option<super::sandbox_hosts::HostName>,
        /// The command and its arguments
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

pub fn run(action: Action) -> i32 {
    let r = match action {
        // Several simulated hosts: their own module.
        Action::Up { dir, hosts: Some(n), ovn, .. } => super::sandbox_hosts::up(&dir, n, ovn),
        Action::Exec { dir, host: Some(h), command } => return super::sandbox_hosts::exec(&dir, h, &command),
        Action::Env { dir, host: Some(h) } => return super::sandbox_hosts::env(&dir, h),
        Action::Down { dir } if super::sandbox_hosts::is_multi(&dir) => super::sandbox_hosts::down(&dir),
        Action::Exec { dir, .. } | Action::Env { dir, .. } if super::sandbox_hosts::is_multi(&dir) => {
            eprintln!("ovs-run sandbox: {}", super::sandbox_hosts::pick_a_host(&dir));
            return super::EXIT_USAGE;
        }

        Action::Up { dir, docker, netns, no_netns, .. } => {
            let netns = if no_netns { None } else { Some(netns.unwrap_or_else(|| default_netns(&dir))) };
            up(&dir, docker, netns.as_deref()).map(|()| print_env(&dir))
        }
        Action::Exec { dir, command, .. } => return exec(&dir, &command),
        Action::Down { dir } => down(&dir),
        Action::Env { dir, .. } => {
            if dir.join("db.sock").exists() {
                print_env(&dir);
                Ok(())
            } else {
                Err(format!("no sandbox runs in {} (start one: ovs-run sandbox up)", dir.display()))
            }
        }
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ovs-run sandbox: {e}");
            1
        }
    }
}

fn print_env(dir: &Path) {
    for (k, v) in env_of(dir) {
        match v {
            Some(v) => println!("export {k}={v}"),
            None => println!("unset {k}"),
        }
    }
    if dir.join("docker.sock").exists() {
        println!("# image {IMAGE}: busybox, built from the host's /bin/busybox");
    }
}

/// The sandbox's environment: each variable with its value, or None for
/// one to unset.
pub(super) fn env_of(dir: &Path) -> Vec<(&'static str, Option<String>)> {
    let d = dir.display();
    let mut env = vec![("OVS_RUNDIR", Some(d.to_string()))];
    // A sandbox without a namespace of its own: runs stay where they are.
    env.push((NETNS_ENV, netns_of(dir)));
    // The sandbox's runs keep their journals, bindings and compiled scripts
    // with it, not with the host's.
    env.push(("OVS_RUN_JOURNAL_DIR", Some(format!("{d}/journal"))));
    env.push(("OVS_RUN_STATE_DIR", Some(format!("{d}/state"))));
    env.push(("OVS_RUN_CACHE_DIR", Some(format!("{d}/cache"))));
    if dir.join("docker.sock").exists() {
        env.push(("DOCKER_HOST", Some(format!("unix://{d}/docker.sock"))));
    }
    env
}

/// `ovsrun-` and 8 hex digits of DIR's path: one namespace per sandbox
/// directory, the same name every time for the same directory.
pub(super) fn default_netns(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hash = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    format!("ovsrun-{}", hex::encode(&hash[..4]))
}

/// The sandbox's namespace name, as `up` recorded it in DIR/netns.
pub(super) fn netns_of(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join("netns")).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A namespace name as `ip netns` takes it: a plain file name.
fn check_netns_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("network namespace name '{name}' must be 1-64 of A-Z a-z 0-9 - _ . (not . or ..)"))
    }
}

/// Create `/run/netns/NAME` as `ip netns add` does: a new namespace, kept
/// alive by a bind mount of its nsfs file, with `lo` up.
pub(super) fn create_netns(name: &str) -> Result<PathBuf, String> {
    check_netns_name(name)?;
    fs::create_dir_all(NETNS_DIR).map_err(|e| format!("cannot create {NETNS_DIR}: {e}"))?;
    share_netns_dir()?;
    let path = Path::new(NETNS_DIR).join(name);
    fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "network namespace {name} exists already ({}): another sandbox uses it; stop it or pick --netns",
            path.display()
        ),
        _ => format!("cannot create {}: {e}", path.display()),
    })?;
    let target = path.clone();
    // unshare() moves the calling thread only: a thread of its own, which
    // ends right after, keeps the rest of ovs-run where it is.
    let made = std::thread::spawn(move || -> Result<(), String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare: {e}"))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting the namespace on {}: {e}", target.display()))?;
        loopback_up().map_err(|e| format!("bringing lo up: {e}"))
    })
    .join()
    .unwrap_or_else(|_| Err("namespace thread panicked".into()));
    if let Err(e) = made {
        delete_netns(&path);
        return Err(format!("creating network namespace {name}: {e}"));
    }
    Ok(path)
}

/// Make /run/netns a shared mount point of its own, as `ip netns add` does
/// first. Otherwise the first `ip netns add` after ours bind-mounts
/// /run/netns over itself and hides our namespaces' mounts below it: they
/// can then neither be unmounted nor removed (`down` left them behind, and
/// `ip netns list` said "Peer netns reference is invalid").
fn share_netns_dir() -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    let shared =
        || mount(None::<&str>, NETNS_DIR, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself first.
        Err(nix::errno::Errno::EINVAL) => {
            mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .and_then(|()| shared())
                .map_err(|e| format!("making {NETNS_DIR} a shared mount point: {e}"))
        }
        Err(e) => Err(format!("making {NETNS_DIR} a shared mount point: {e}")),
    }
}

/// `ip link set lo up` in the calling thread's namespace (SIOCSIFFLAGS).
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain socket(2), owned by the OwnedFd below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and ours.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; "lo" fits ifr_name with its NUL.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq for SIOCGIFFLAGS/SIOCSIFFLAGS.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Remove `/run/netns/NAME`: the namespace goes once nothing is left in it.
pub(super) fn delete_netns(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    let _ = fs::remove_file(path);
}

/// Enter the network namespace `OVS_RUN_NETNS` names, if it is set, so that
/// the "host" of this run is the sandbox's. Must be called before any other
/// thread starts: threads created later are in the namespace of their
/// creator.
pub fn enter_netns_from_env() -> Result<(), String> {
    let Some(name) = std::env::var_os(NETNS_ENV) else { return Ok(()) };
    let name = name.to_string_lossy().into_owned();
    if name.is_empty() {
        return Ok(());
    }
    check_netns_name(&name).map_err(|e| format!("{NETNS_ENV}: {e}"))?;
    let path = Path::new(NETNS_DIR).join(&name);
    let file = fs::File::open(&path).map_err(|e| {
        format!(
            "{NETNS_ENV}={name}: cannot open {}: {e} (is the sandbox running? `ovs-run sandbox up`, or unset {NETNS_ENV})",
            path.display()
        )
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "{NETNS_ENV}={name}: entering {}: {e} (needs root; is it a network namespace?)",
            path.display()
        )
    })
}

/// `sandbox exec`: run COMMAND inside the sandbox's namespace in this process's place.
fn exec(dir: &Path, command: &[String]) -> i32 {
    let Some(name) = netns_of(dir) else {
        eprintln!("ovs-run sandbox: no sandbox with a network namespace of its own in {}", dir.display());
        return 1;
    };
    let path = Path::new(NETNS_DIR).join(&name);
    let ns = match fs::File::open(&path) {
        Ok(f) => OwnedFd::from(f),
        Err(e) => {
            eprintln!("ovs-run sandbox: cannot open {}: {e}", path.display());
            return 1;
        }
    };
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    in_netns(&mut cmd, &ns);
    // exec, not spawn: the command takes this process's place (its pid is
    // the one a caller started, its signals reach it, its status is ours).
    let e = cmd.exec();
    eprintln!("ovs-run sandbox: cannot run {}: {e}", command[0]);
    127
}

/// Make `cmd` start inside the namespace `ns` (the fd is inherited across fork).
pub(super) fn in_netns(cmd: &mut Command, ns: &OwnedFd) {
    let fd = ns.as_raw_fd();
    // SAFETY: setns(2) is a plain system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub(super) fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e} (is openvswitch-switch installed?)", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

pub(super) fn wait_for(path: &Path, what: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > timeout {
            return Err(format!(
                "{what} did not come up within {} s ({} missing)",
                timeout.as_secs(),
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn up(dir: &Path, docker: bool, netns: Option<&str>) -> Result<(), String> {
    if dir.join("db.sock").exists() {
        return Err(format!(
            "a sandbox already runs in {} (stop it: ovs-run sandbox down --dir {0})",
            dir.display()
        ));
    }
    if let Some(name) = netns {
        check_netns_name(name)?;
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let d = |f: &str| dir.join(f).display().to_string();
    let result = (|| {
        // The namespace first, recorded so that `down` removes it even if
        // a daemon fails to start.
        let ns: Option<OwnedFd> = match netns {
            Some(name) => {
                let path = create_netns(name)?;
                fs::write(dir.join("netns"), name)
                    .map_err(|e| format!("cannot write {}: {e}", d("netns")))?;
                Some(
                    fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?.into(),
                )
            }
            None => None,
        };
        // The daemons' run directory is the sandbox's: ovs-vswitchd puts each
        // bridge's OpenFlow socket (BRIDGE.mgmt, which ovs-ofctl and
        // ovn-controller connect to) in $OVS_RUNDIR, by default
        // /var/run/openvswitch, where it fails (no such directory) or meets
        // another OVS's sockets.
        let rundir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let daemon = |prog: &str| {
            let mut c = Command::new(prog);
            c.env("OVS_RUNDIR", &rundir);
            if let Some(ns) = &ns {
                in_netns(&mut c, ns);
            }
            c
        };
        for sub in ["journal", "state", "cache"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| format!("cannot create {}: {e}", d(sub)))?;
        }
        sh(Command::new("ovsdb-tool").args(["create", &d("conf.db"), SCHEMA]))?;
        // The root row ovs-vsctl init would add, written before the server starts.
        sh(Command::new("ovsdb-tool").args([
            "transact",
            &d("conf.db"),
            r#"["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]"#,
        ]))?;
        sh(daemon("ovsdb-server").args([
            &d("conf.db"),
            &format!("--remote=punix:{}", d("db.sock")),
            &format!("--pidfile={}", d("ovsdb.pid")),
            &format!("--log-file={}", d("ovsdb.log")),
            &format!("--unixctl={}", d("ovsdb.ctl")),
            "--detach",
        ]))?;
        wait_for(&dir.join("db.sock"), "ovsdb-server", Duration::from_secs(10))?;
        sh(daemon("ovs-vswitchd").args([
            &format!("unix:{}", d("db.sock")),
            &format!("--pidfile={}", d("vswitchd.pid")),
            &format!("--log-file={}", d("vswitchd.log")),
            &format!("--unixctl={}", d("vswitchd.ctl")),
            "--detach",
        ]))?;
        if docker {
            start_dockerd(dir, daemon("dockerd"))?;
            build_image(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = down(dir);
    }
    result
}

fn start_dockerd(dir: &Path, mut dockerd: Command) -> Result<(), String> {
    let d = |f: &str| dir.join(f).display().to_string();
    let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    let mut child = dockerd
        .args([
            "--host",
            &format!("unix://{}", d("docker.sock")),
            "--data-root",
            &d("docker-data"),
            "--exec-root",
            &d("docker-exec"),
            "--pidfile",
            &d("docker.pid"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start dockerd: {e} (is docker.io installed?)"))?;
    // Up means answering: the socket appears before dockerd has finished
    // starting, and it can still die after (no cgroups, a stale pid file).
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "dockerd exited ({status}) while starting; {}",
                log_tail(&dir.join("dockerd.log"))
            ));
        }
        if docker_ping(&dir.join("docker.sock")) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "dockerd did not answer within 30 s; {}",
                log_tail(&dir.join("dockerd.log"))
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /_ping` on the Docker socket answered `OK`.
fn docker_ping(sock: &Path) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = s.take(4096).read_to_string(&mut reply);
    reply.starts_with("HTTP/1.") && reply.contains(" 200 ") && reply.ends_with("OK")
}

/// The last lines of a daemon's log, for an error message.
pub(super) fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("the end of {}:\n{}", log.display(), lines[lines.len().saturating_sub(8)..].join("\n"))
}

/// The busybox image from the host's /bin/busybox (no registry is needed):
/// the applets a network test uses, as `tests/support/dockerd.sh` builds it.
fn build_image(dir: &Path) -> Result<(), String> {
    let root = dir.join("image-root");
    let bin = root.join("bin");
    fs::create_dir_all(&bin).map_err(|e| format!("cannot create {}: {e}", bin.display()))?;
    fs::copy("/bin/busybox", bin.join("busybox"))
        .map_err(|e| format!("cannot copy /bin/busybox (install busybox-static): {e}"))?;
    for applet in ["sh", "ip", "ping", "sleep", "ifconfig", "route", "cat", "ls", "nc", "wget"] {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    let script = format!(
        "tar -C '{}' -c . | docker -H 'unix://{}' import - {IMAGE} >/dev/null",
        root.display(),
        dir.join("docker.sock").display()
    );
    let r = sh(Command::new("sh").args(["-c", &script]));
    let _ = fs::remove_dir_all(&root);
    r.map_err(|e| format!("building the image {IMAGE}: {e}"))
}

pub(super) fn read_pid(path: &Path) -> Option<nix::unistd::Pid> {
    let s = fs::read_to_string(path).ok()?;
    Some(nix::unistd::Pid::from_raw(s.trim().parse().ok()?))
}

/// Wait until the process in `path` has exited; true when it has.
fn wait_exit(path: &Path, timeout: Duration) -> bool {
    let Some(pid) = read_pid(path) else { return true };
    let start = Instant::now();
    while nix::sys::signal::kill(pid, None).is_ok() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

pub(super) fn kill_pidfile(path: &Path) {
    let Some(pid) = read_pid(path) else { return };
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
        return;
    }
    if !wait_exit(path, Duration::from_secs(10)) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

pub fn down(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Err(format!("no sandbox in {}", dir.display()));
    }
    // `exit --cleanup` makes ovs-vswitchd remove its datapath and the tap
    // devices of the userspace datapath; a plain SIGTERM leaves them behind.
    if dir.join("vswitchd.ctl").exists() {
        let _ = Command::new("ovs-appctl")
            .args(["--timeout=10", "-t"])
            .arg(dir.join("vswitchd.ctl"))
            .args(["exit", "--cleanup"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // It answers before it has cleaned up: a signal now would cut that short.
        wait_exit(&dir.join("vswitchd.pid"), Duration::from_secs(10));
    }
    for f in ["docker.pid", "vswitchd.pid", "ovsdb.pid"] {
        kill_pidfile(&dir.join(f));
    }
    // A dockerd killed before it stopped every container leaves them, their
    // shims and containerd running, and mounts under its roots.
    if super::sandbox_reap::kill_engine(dir) > 0 {
        // SIGKILL is asynchronous: let the kernel finish before unmounting.
        std::thread::sleep(Duration::from_millis(500));
    }
    super::sandbox_reap::unmount_under(dir);
    // Last, with every daemon gone: what is left in the namespace (veths,
    // the datapath's tap) goes with it.
    if let Some(name) = netns_of(dir) {
        delete_netns(&Path::new(NETNS_DIR).join(name));
    }
    fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}
