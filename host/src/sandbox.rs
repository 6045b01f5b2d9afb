//! `ovs-run sandbox`: a private Open vSwitch in a directory of its own
//! (ovsdb-server + ovs-vswitchd with the userspace datapath allowed), and
//! optionally a private dockerd, the way OVS ships `ovs-sandbox`. It is how a
//! new user tries ovs-run without touching the host's switch, and what the
//! tests and `make demo` run against.
//!
//! Starting daemons is the one place ovs-run runs other programs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Subcommand;

const DEFAULT_DIR: &str = "/tmp/ovs-run-sandbox";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

#[derive(Subcommand, Debug)]
pub enum Action {
    /// Start the sandbox and print the environment to use it (eval "$(ovs-run sandbox up)")
    Up {
        /// Directory for the database, sockets, pid and log files
        #[arg(long, default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Also start a private dockerd (socket DIR/docker.sock)
        #[arg(long)]
        docker: bool,
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
    },
}

pub fn run(action: Action) -> i32 {
    let r = match action {
        Action::Up { dir, docker } => up(&dir, docker).map(|()| print_env(&dir)),
        Action::Down { dir } => down(&dir),
        Action::Env { dir } => {
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
    println!("export OVS_RUNDIR={}", dir.display());
    if dir.join("docker.sock").exists() {
        println!("export DOCKER_HOST=unix://{}/docker.sock", dir.display());
    }
}

fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e} (is openvswitch-switch installed?)", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn wait_for(path: &Path, what: &str, timeout: Duration) -> Result<(), String> {
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

pub fn up(dir: &Path, docker: bool) -> Result<(), String> {
    if dir.join("db.sock").exists() {
        return Err(format!(
            "a sandbox already runs in {} (stop it: ovs-run sandbox down --dir {0})",
            dir.display()
        ));
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let d = |f: &str| dir.join(f).display().to_string();
    let result = (|| {
        sh(Command::new("ovsdb-tool").args(["create", &d("conf.db"), SCHEMA]))?;
        // The root row ovs-vsctl init would add, written before the server starts.
        sh(Command::new("ovsdb-tool").args([
            "transact",
            &d("conf.db"),
            r#"["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]"#,
        ]))?;
        sh(Command::new("ovsdb-server").args([
            &d("conf.db"),
            &format!("--remote=punix:{}", d("db.sock")),
            &format!("--pidfile={}", d("ovsdb.pid")),
            &format!("--log-file={}", d("ovsdb.log")),
            &format!("--unixctl={}", d("ovsdb.ctl")),
            "--detach",
        ]))?;
        wait_for(&dir.join("db.sock"), "ovsdb-server", Duration::from_secs(10))?;
        sh(Command::new("ovs-vswitchd").args([
            &format!("unix:{}", d("db.sock")),
            &format!("--pidfile={}", d("vswitchd.pid")),
            &format!("--log-file={}", d("vswitchd.log")),
            &format!("--unixctl={}", d("vswitchd.ctl")),
            "--detach",
        ]))?;
        if docker {
            start_dockerd(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = down(dir);
    }
    result
}

fn start_dockerd(dir: &Path) -> Result<(), String> {
    let d = |f: &str| dir.join(f).display().to_string();
    let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    Command::new("dockerd")
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
    wait_for(&dir.join("docker.sock"), "dockerd", Duration::from_secs(30))
}

fn read_pid(path: &Path) -> Option<nix::unistd::Pid> {
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

fn kill_pidfile(path: &Path) {
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
    // dockerd leaves mounts under its roots; unmount before removing.
    for sub in ["docker-exec", "docker-data"] {
        let _ = Command::new("umount").args(["-R", "-l"]).arg(dir.join(sub)).stderr(Stdio::null()).status();
    }
    fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}
