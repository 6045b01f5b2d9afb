//! HTTP/1.1 over the plugin's unix socket (hyper): every request is a POST
//! whose path names the call and whose body is JSON. Answers are always
//! HTTP 200 with a JSON body; an error is `{"Err": ...}` for the network
//! driver and `{"Error": ...}` for IPAM, as Docker reads them. A bad request
//! gets an error answer, never a crash.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::UnixListener;

use super::driver::Driver;
use crate::error::{CapError, CapResult};

/// The largest request body read (Docker's are a few KiB).
const MAX_BODY: usize = 1 << 20;

const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// The listening socket; removed when dropped.
pub struct Socket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `path` (mode 0600). A socket file left by a plugin that died is
/// replaced; one that a live plugin answers on is an error.
pub fn bind(path: &Path) -> CapResult<Socket> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CapError::failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(CapError::exists(format!(
                "{} is in use: another plugin of this name is running",
                path.display()
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| CapError::failed(format!("cannot listen on {}: {e}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CapError::failed(format!("{}: {e}", path.display())))?;
    Ok(Socket { listener, path: path.to_path_buf() })
}

/// Serve connections until the listener fails.
pub async fn serve(driver: Arc<Driver>, socket: &Socket) -> CapResult<()> {
    loop {
        let (stream, _) = socket
            .listener
            .accept()
            .await
            .map_err(|e| CapError::failed(format!("accept on the plugin socket: {e}")))?;
        let driver = driver.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(driver.clone(), req));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                crate::verbose!(1, "docker-plugin: connection: {e}");
            }
        });
    }
}

async fn handle(driver: Arc<Driver>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let result = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => {
            let body = body.to_bytes();
            let r = driver.call(&path, &body).await;
            if r.is_ok() && path == "/NetworkDriver.Join" {
                // Docker names the container only after this answer.
                driver.after_join(&body);
            }
            r
        }
        Err(e) => Err(CapError::invalid(format!("cannot read the request body: {e}"))),
    };
    crate::verbose!(
        1,
        "docker-plugin: {} {:.1} ms{}",
        path.trim_start_matches('/'),
        started.elapsed().as_secs_f64() * 1000.0,
        result.as_ref().err().map(|e| format!(": error: {e}")).unwrap_or_default()
    );
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let key = if path.starts_with("/IpamDriver.") { "Error" } else { "Err" };
            json!({ key: format!("ovs-run: {e}") })
        }
    };
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(CONTENT_TYPE));
    Ok(resp)
}
