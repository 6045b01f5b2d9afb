//! ovs-vswitchd's control socket (what `ovs-appctl` talks to), natively:
//! JSON-RPC 1.0 over a Unix socket, method = the command name, params = its
//! argument strings, one request and one reply per connection.
//!
//! The socket is found as `ovs-appctl -t ovs-vswitchd` finds it: the pid in
//! `RUNDIR/ovs-vswitchd.pid`, the socket `RUNDIR/ovs-vswitchd.PID.ctl`. The
//! run directory is the one holding the OVSDB socket ovs-run talks to
//! (`unix:RUNDIR/db.sock`), else `$OVS_RUNDIR`, else `/var/run/openvswitch`;
//! `$OVS_RUN_VSWITCHD_CTL` names the socket outright (ovs-vswitchd started
//! with `--unixctl=PATH`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::ovsdb::OvsdbUri;
use crate::error::{CapError, CapResult};

/// The environment variable that names ovs-vswitchd's control socket.
pub const CTL_ENV: &str = "OVS_RUN_VSWITCHD_CTL";

/// A reply is a few lines; anything bigger is not ovs-vswitchd.
const MAX_REPLY: usize = 1 << 20;

/// ovs-vswitchd's control socket for the switch behind `ovsdb`, when one is
/// there; the error says where it looked.
pub fn vswitchd_ctl(ovsdb: &OvsdbUri) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(CTL_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let OvsdbUri::Unix(sock) = ovsdb {
        dirs.extend(sock.parent().map(Path::to_path_buf));
    }
    dirs.extend(std::env::var_os("OVS_RUNDIR").filter(|d| !d.is_empty()).map(PathBuf::from));
    dirs.push(PathBuf::from("/var/run/openvswitch"));
    for d in &dirs {
        let Ok(pid) = std::fs::read_to_string(d.join("ovs-vswitchd.pid")) else { continue };
        let ctl = d.join(format!("ovs-vswitchd.{}.ctl", pid.trim()));
        if ctl.exists() {
            return Ok(ctl);
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(format!("no ovs-vswitchd.pid with its control socket in {} (set {CTL_ENV})", looked.join(", ")))
}

/// Run `command` with `args` on the unixctl server at `socket`; its text answer.
pub async fn call(socket: &Path, command: &str, args: &[&str], timeout: Duration) -> CapResult<String> {
    let what = format!("{command} on {}", socket.display());
    tokio::time::timeout(timeout, call_inner(socket, command, args, &what))
        .await
        .map_err(|_| CapError::failed(format!("{what}: no answer within {} s", timeout.as_secs_f64())))?
}

async fn call_inner(socket: &Path, command: &str, args: &[&str], what: &str) -> CapResult<String> {
    let mut s = UnixStream::connect(socket)
        .await
        .map_err(|e| CapError::unavailable(format!("{what}: cannot connect: {e}")))?;
    let req = json!({ "id": 0, "method": command, "params": args });
    s.write_all(req.to_string().as_bytes()).await.map_err(|e| CapError::failed(format!("{what}: {e}")))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let reply: Value = loop {
        let n = s.read(&mut chunk).await.map_err(|e| CapError::failed(format!("{what}: {e}")))?;
        if n == 0 {
            return Err(CapError::failed(format!("{what}: connection closed before a reply")));
        }
        buf.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice(&buf) {
            Ok(v) => break v,
            Err(e) if e.is_eof() && buf.len() < MAX_REPLY => continue,
            Err(e) => return Err(CapError::failed(format!("{what}: bad reply: {e}"))),
        }
    };
    answer(&reply).map_err(|e| CapError::failed(format!("{what}: {e}")))
}

/// The `result` of a reply, or its `error` as the error.
fn answer(reply: &Value) -> Result<String, String> {
    match (&reply["error"], &reply["result"]) {
        (Value::Null, Value::String(r)) => Ok(r.trim_end().to_string()),
        (Value::Null, other) => Ok(other.to_string()),
        (Value::String(e), _) => Err(e.trim_end().to_string()),
        (e, _) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(answer(&json!({"id": 0, "result": "OK\n", "error": null})), Ok("OK".into()));
        assert_eq!(
            answer(&json!({"id": 0, "result": null, "error": "no such bridge\n"})),
            Err("no such bridge".into())
        );
    }

    #[tokio::test]
    async fn round_trip_with_a_fake_server() {
        let dir = std::env::temp_dir().join(format!("ovs-run-unixctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("fake.ctl");
        let _ = std::fs::remove_file(&sock);
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        let server = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut b = vec![0u8; 4096];
            let n = c.read(&mut b).await.unwrap();
            let req: Value = serde_json::from_slice(&b[..n]).unwrap();
            let reply = json!({"id": req["id"], "result": format!("{} {}", req["method"], req["params"]), "error": null});
            // Split in two writes: the client must wait for the whole value.
            let text = reply.to_string();
            let (a, z) = text.split_at(5);
            c.write_all(a.as_bytes()).await.unwrap();
            c.write_all(z.as_bytes()).await.unwrap();
        });
        let r =
            call(&sock, "tnl/arp/set", &["br-phy", "10.0.0.1", "02:00:00:00:00:01"], Duration::from_secs(5))
                .await
                .unwrap();
        assert_eq!(r, r#""tnl/arp/set" ["br-phy","10.0.0.1","02:00:00:00:00:01"]"#);
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
