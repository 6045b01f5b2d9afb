//! Test harness: run the real `ovs-run` binary, start private Open vSwitch
//! instances and Docker containers, and look at the system through
//! independent tools (ovs-vsctl, ip, nsenter). Everything a test creates is
//! removed on drop, also when the test fails.
#![allow(dead_code)]

pub mod hosts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ovs-run")
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A built script or test guest; missing ones fail loudly.
pub fn wasm(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing: run `make build` first", p.display());
    p
}

pub fn script(name: &str) -> PathBuf {
    wasm(&format!("scripts/{name}.wasm"))
}

pub fn guest(name: &str) -> PathBuf {
    wasm(&format!("tests/guests/{name}.wasm"))
}

/// A short unique name (interface names are at most 15 bytes).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

pub fn require_root() {
    assert!(nix_is_root(), "these tests need root (netns, veth, Open vSwitch); run them through `make test`");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Run `cmd` to its end: exit code, output and how long it took.
pub fn run_timed(cmd: &mut Command) -> Run {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    to_run(out, t.elapsed())
}

fn to_run(out: Output, elapsed: Duration) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    }
}

/// The compile cache all of this test process's runs share.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ovs-run-test-cache-{}", std::process::id()))
}

/// The journal directory all of this test process's runs share.
pub fn journal_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ovs-run-test-journal-{}", std::process::id()))
}

/// Run ovs-run with `args` (a per-process compile cache unless `args` picks
/// one), without any OVS socket from the environment unless `env` gives one.
pub fn ovs_run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    // Subcommands (recover, sandbox, ...) take no run options before them.
    let subcommand =
        args.first().is_some_and(|a| !a.starts_with('-') && !a.contains('/') && !a.ends_with(".wasm"));
    if !subcommand && !args.iter().any(|a| a.starts_with("--cache-dir") || *a == "--no-cache") {
        cmd.arg("--cache-dir").arg(cache_dir());
    }
    cmd.args(args);
    cmd.env_remove("OVS_RUNDIR");
    // Each test process recovers only its own interrupted runs.
    cmd.env("OVS_RUN_JOURNAL_DIR", journal_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output().expect("run ovs-run");
    to_run(out, t.elapsed())
}

/// Run a command, panicking with its output when it fails.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command and return (success, stdout+stderr).
pub fn try_sh(prog: &str, args: &[&str]) -> (bool, String) {
    match Command::new(prog).args(args).output() {
        Ok(out) => (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// ovs-vsctl against the OVS whose run directory (db.sock) is `rundir`,
/// waiting at most `timeout` seconds: (success, stdout+stderr).
pub fn try_vsctl_in(rundir: &Path, timeout: u32, args: &[&str]) -> (bool, String) {
    let db = format!("--db=unix:{}/db.sock", rundir.display());
    let timeout = format!("--timeout={timeout}");
    let mut a = vec![db.as_str(), timeout.as_str()];
    a.extend_from_slice(args);
    try_sh("ovs-vsctl", &a)
}

/// A private Open vSwitch (ovsdb-server + ovs-vswitchd), stopped on drop.
///
/// One at a time per test process: two ovs-vswitchd with the userspace
/// datapath in one network namespace fight over its `ovs-netdev` tap device.
pub struct Ovs {
    pub dir: PathBuf,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static OVS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Ovs {
    pub fn start() -> Ovs {
        require_root();
        let guard = OVS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(unique("ovs-run-t-ovs"));
        // In this test process's namespace (make test gives it one of its
        // own), so the tests see its bridges and veths directly.
        let out = Command::new(bin())
            .args(["sandbox", "up", "--no-netns", "--dir"])
            .arg(&dir)
            .output()
            .expect("run ovs-run sandbox up");
        assert!(out.status.success(), "sandbox up failed: {}", String::from_utf8_lossy(&out.stderr));
        Ovs { dir, _one_at_a_time: guard }
    }

    pub fn rundir(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![("OVS_RUNDIR", self.rundir())]
    }

    pub fn db(&self) -> String {
        format!("--db=unix:{}/db.sock", self.rundir())
    }

    /// ovs-vsctl against this instance: the independent view.
    /// A private Open vSwitch with one fresh netdev bridge (named
    /// `prefix` plus a unique suffix), the start of most tests.
    pub fn with_bridge(prefix: &str) -> (Ovs, String) {
        let ovs = Ovs::start();
        let br = unique(prefix);
        ovs.add_bridge(&br);
        (ovs, br)
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = self.db();
        let mut a = vec![db.as_str(), "--timeout=10"];
        a.extend_from_slice(args);
        sh("ovs-vsctl", &a)
    }

    /// The OVS port carrying `ifname` of `container`, found by ovs-docker's
    /// external ids (which ovs-run's ports carry too).
    pub fn port_of(&self, container: &str, ifname: &str) -> Option<String> {
        let out = self.vsctl(&[
            "--data=bare",
            "--no-heading",
            "--columns=name",
            "find",
            "interface",
            &format!("external_ids:container_id={container}"),
            &format!("external_ids:container_iface={ifname}"),
        ]);
        out.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
    }

    pub fn try_vsctl(&self, args: &[&str]) -> (bool, String) {
        try_vsctl_in(&self.dir, 10, args)
    }

    /// Run ovs-run against this instance.
    pub fn run(&self, args: &[&str]) -> Run {
        ovs_run(args, &self.env())
    }

    fn kill_pidfile(&self, name: &str) {
        let pid = std::fs::read_to_string(self.dir.join(name)).expect("pid file");
        let pid: i32 = pid.trim().parse().expect("pid");
        // SAFETY: kill(2) on a daemon this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let start = Instant::now();
        // SAFETY: signal 0 only checks the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill ovsdb-server (fault injection); `start_ovsdb` brings it back.
    pub fn stop_ovsdb(&self) {
        self.kill_pidfile("ovsdb.pid");
        let _ = std::fs::remove_file(self.dir.join("db.sock"));
    }

    pub fn start_ovsdb(&self) {
        let d = self.rundir();
        sh(
            "ovsdb-server",
            &[
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                &format!("--pidfile={d}/ovsdb.pid"),
                &format!("--log-file={d}/ovsdb.log"),
                &format!("--unixctl={d}/ovsdb.ctl"),
                "--detach",
            ],
        );
    }

    /// Kill ovs-vswitchd (fault injection); `start_vswitchd` brings it back.
    pub fn stop_vswitchd(&self) {
        self.kill_pidfile("vswitchd.pid");
    }

    pub fn start_vswitchd(&self) {
        let d = self.rundir();
        sh(
            "ovs-vswitchd",
            &[
                &format!("unix:{d}/db.sock"),
                &format!("--pidfile={d}/vswitchd.pid"),
                &format!("--log-file={d}/vswitchd.log"),
                &format!("--unixctl={d}/vswitchd.ctl"),
                "--detach",
            ],
        );
    }

    pub fn add_bridge(&self, name: &str) {
        self.vsctl(&["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]);
    }

    /// Ports with their Interface external_ids and tag, sorted: a snapshot to
    /// compare before/after.
    pub fn snapshot(&self) -> String {
        let mut s = self.vsctl(&["--format=csv", "--columns=name,external_ids", "list", "Interface"]);
        s += &self.vsctl(&["--format=csv", "--columns=name,tag", "list", "Port"]);
        let mut lines: Vec<&str> = s.lines().collect();
        lines.sort();
        lines.join("\n")
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        let _ = Command::new(bin()).args(["sandbox", "down", "--dir"]).arg(&self.dir).output();
    }
}

/// uid and gid of a test user, created (system user, no home) when missing.
pub fn test_user(name: &str) -> (u32, u32) {
    if !try_sh("id", &["-u", name]).0 {
        // Two test threads may race to create it: the loser's useradd fails.
        let _ = try_sh("useradd", &["-M", "-r", "-s", "/usr/sbin/nologin", name]);
    }
    let uid = sh("id", &["-u", name]).trim().parse().unwrap();
    let gid = sh("id", &["-g", name]).trim().parse().unwrap();
    (uid, gid)
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        require_root();
        Self::tagged("ns")
    }

    /// A namespace whose name says which test made it: `ovsrt-TAG-PID-N`.
    pub fn tagged(tag: &str) -> Netns {
        require_root();
        let name = unique(&format!("ovsrt-{tag}-"));
        sh("ip", &["netns", "add", &name]);
        Netns { name }
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        sh("ip", &a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// The arguments of a private dockerd answering on `host`, its state under
/// `dir` (exec root `dir/EXEC`), as tests/support/dockerd.sh starts one: no
/// iptables rules and no default bridge on the machine.
pub fn dockerd_args(host: &str, dir: &Path, exec: &str) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = vec!["--host".into(), host.into()];
    for (opt, path) in [("--data-root", dir.join("data")), ("--exec-root", dir.join(exec))] {
        a.extend([opt.into(), path.into_os_string()]);
    }
    a.extend(["--pidfile".into(), dir.join("docker.pid").into_os_string()]);
    a.extend(["--iptables=false", "--ip6tables=false", "--bridge=none"].map(Into::into));
    a
}

pub fn image() -> String {
    std::env::var("OVS_RUN_TEST_IMAGE").unwrap_or_else(|_| "ovsrun-test:latest".into())
}

/// A `--net=none` busybox container, removed on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    pub fn start() -> Container {
        Container::start_labelled(&[])
    }

    /// A container carrying Docker labels (`tenant=a` for the policy tests).
    pub fn start_labelled(labels: &[(&str, &str)]) -> Container {
        require_root();
        let (ok, out) = try_sh("docker", &["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            ok,
            "these tests need dockerd (DOCKER_HOST={:?}); run them through `make test`: {out}",
            std::env::var("DOCKER_HOST")
        );
        let name = unique("ovsrt-c");
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("--label={k}={v}")).collect();
        let image = image();
        let mut args = vec!["run", "-d", "--net=none", "--name", &name];
        args.extend(labels.iter().map(String::as_str));
        args.extend([image.as_str(), "/bin/sleep", "3600"]);
        sh("docker", &args);
        Container { name }
    }

    pub fn pid(&self) -> String {
        sh("docker", &["inspect", "-f", "{{.State.Pid}}", &self.name]).trim().to_string()
    }

    pub fn id(&self) -> String {
        sh("docker", &["inspect", "-f", "{{.Id}}", &self.name]).trim().to_string()
    }

    /// `ip ARGS` inside the container's netns, through nsenter (not docker exec,
    /// not ovs-run): the independent view.
    pub fn ip(&self, args: &[&str]) -> String {
        let pid = self.pid();
        let mut a = vec!["-t", pid.as_str(), "-n", "ip"];
        a.extend_from_slice(args);
        sh("nsenter", &a)
    }

    /// Ping from inside the container's netns; true when a reply came back.
    /// Three tries: after a failed ARP the first answer can take a second.
    pub fn ping(&self, addr: &str) -> bool {
        let pid = self.pid();
        try_sh("nsenter", &["-t", &pid, "-n", "ping", "-c", "3", "-W", "3", "-i", "0.3", addr]).0
    }

    pub fn stop(&self) {
        sh("docker", &["stop", "-t", "0", &self.name]);
    }

    /// `ethtool -k`'s tx-checksumming ("on"/"off") of `link` inside the
    /// container, through nsenter.
    pub fn tx_checksum(&self, link: &str) -> String {
        let pid = self.pid();
        tx_checksum_of(&sh("nsenter", &["-t", &pid, "-n", "ethtool", "-k", link]))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// The tx-checksumming state in `ethtool -k` output.
pub fn tx_checksum_of(ethtool_k: &str) -> String {
    ethtool_k
        .lines()
        .find_map(|l| l.strip_prefix("tx-checksumming: "))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("no tx-checksumming in: {ethtool_k}"))
        .to_string()
}

/// Host links, one name per line, sorted (for before/after comparisons).
pub fn host_links() -> String {
    let out = sh("ip", &["-o", "link", "show"]);
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect();
    names.sort();
    names.join("\n")
}

// ---------------------------------------------------------------- TCP

/// A network namespace to run one end of a TCP check in, by its nsfs file.
pub trait NsFile {
    fn ns_file(&self) -> String;
}

impl NsFile for Container {
    fn ns_file(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }
}

impl NsFile for Netns {
    fn ns_file(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

/// This test process's own namespace (where the private OVS and its
/// bridges' internal ports live).
pub struct HereNs;

impl NsFile for HereNs {
    fn ns_file(&self) -> String {
        format!("/proc/{}/ns/net", std::process::id())
    }
}

/// Bytes a connectivity check moves: enough for many full-size segments,
/// window growth and retransmission, so a path that only carries small
/// packets (ping, the handshake) does not pass.
pub const TCP_CHECK_BYTES: usize = 1 << 20;

/// Send `bytes` over TCP from `client`'s namespace to a listener on
/// `server_ip` in `server`'s namespace; Ok(elapsed) when every byte arrived
/// intact (the receiver checks length and content). The independent view of
/// "data moves": plain kernel sockets in threads that entered the
/// namespaces, nothing of ovs-run. Fails within 15 s.
pub fn tcp_transfer(
    client: &dyn NsFile,
    server: &dyn NsFile,
    server_ip: &str,
    bytes: usize,
) -> Result<Duration, String> {
    use std::io::{Read, Write};
    use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
    use std::sync::mpsc;

    let deadline = Instant::now() + Duration::from_secs(15);
    let ip: IpAddr = server_ip.parse().map_err(|e| format!("{server_ip}: {e}"))?;
    let pattern = |i: usize| (i.wrapping_mul(31) ^ (i >> 11)) as u8;
    let enter = |path: String| -> Result<(), String> {
        let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: setns on this (test-owned, short-lived) thread only.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    };

    let (port_tx, port_rx) = mpsc::channel();
    let server_path = server.ns_file();
    let server = std::thread::spawn(move || -> Result<usize, String> {
        enter(server_path)?;
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind {ip}: {e}"))?;
        let _ = port_tx.send(listener.local_addr().map_err(|e| e.to_string())?.port());
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("accept on {ip}: {e}")),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let (mut got, mut buf) = (0usize, vec![0u8; 64 * 1024]);
        loop {
            let n = conn.read(&mut buf).map_err(|e| format!("after {got} bytes: {e}"))?;
            if n == 0 {
                return Ok(got);
            }
            if let Some(i) = (0..n).find(|&i| buf[i] != pattern(got + i)) {
                return Err(format!("byte {} arrived corrupted", got + i));
            }
            got += n;
        }
    });
    let port = match port_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(port) => port,
        Err(_) => {
            return Err(match server.join() {
                Ok(Err(e)) => e,
                _ => "the server thread did not start".to_string(),
            })
        }
    };

    let client_path = client.ns_file();
    let started = Instant::now();
    let client = std::thread::spawn(move || -> Result<(), String> {
        enter(client_path)?;
        let to = SocketAddr::new(ip, port);
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(|e| format!("connect {to}: {e}"))?;
        c.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        c.write_all(&data).map_err(|e| format!("send to {to}: {e}"))?;
        c.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())
    });
    let sent = client.join().map_err(|_| "client thread panicked".to_string())?;
    let received = server.join().map_err(|_| "server thread panicked".to_string())?;
    sent?;
    let got = received?;
    if got != bytes {
        return Err(format!("{got} of {bytes} bytes arrived"));
    }
    Ok(started.elapsed())
}

/// [`tcp_transfer`] of [`TCP_CHECK_BYTES`], panicking with `what` and the reason.
pub fn assert_tcp(what: &str, client: &dyn NsFile, server: &dyn NsFile, server_ip: &str) {
    if let Err(e) = tcp_transfer(client, server, server_ip, TCP_CHECK_BYTES) {
        panic!("{what}: TCP transfer of {TCP_CHECK_BYTES} bytes to {server_ip} failed: {e}");
    }
}
