//! A TCP check between two targets: real data, not only a ping.
//!
//! A ping proves that small packets whose checksum the kernel always
//! computes get through. TCP can still fail on the same path: on
//! ovs-vswitchd's userspace datapath a veth that leaves its checksums to
//! "hardware" sends segments nobody ever completes (backend/netlink/ethtool.rs).
//! So "attached" is checked the way users will use the link: a listener on
//! an ephemeral port of `server`'s address inside its namespace, a client
//! connecting from `client`'s namespace, a fixed pattern of bytes sent and
//! checked byte for byte on arrival, both sockets closed afterwards.
//!
//! Both sockets are created inside their namespaces (see [`Namespace::run`])
//! and then driven by tokio here.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::backend::netlink::netns::Namespace;
use crate::backend::TransferStats;
use crate::error::{CapError, CapResult};
use crate::types::Target;

/// Most bytes one check may move (bounds the time and memory a script can spend).
pub const MAX_BYTES: u64 = 64 << 20;
const CHUNK: usize = 64 * 1024;

/// Byte `i` of the stream: not periodic in any segment or page size, so a
/// lost, repeated or reordered chunk shows.
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

/// Send `bytes` from `client` to a listener on `addr` (an ephemeral port)
/// inside `server`, within `timeout`. Data that does not arrive is not an
/// error: the stats say how much did, as ping's say how many replies came.
/// An `addr` that is not `server`'s is an error.
pub async fn tcp_check(
    client: &Target,
    server: &Target,
    addr: IpAddr,
    bytes: u64,
    timeout: Duration,
) -> CapResult<TransferStats> {
    if bytes == 0 || bytes > MAX_BYTES {
        return Err(CapError::invalid(format!("tcp-check bytes {bytes} is out of range 1-{MAX_BYTES}")));
    }
    let what = format!("tcp-check from {client} to {addr} in {server}");
    let listener = Namespace::open(server)?
        .run("opening a TCP listener", move || {
            let l = match std::net::TcpListener::bind(SocketAddr::new(addr, 0)) {
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => return Ok(None),
                other => other?,
            };
            l.set_nonblocking(true)?;
            Ok(Some(l))
        })
        .await?
        .ok_or_else(|| CapError::not_found(format!("{what}: {addr} is not an address in {server}")))?;
    let port = listener.local_addr().map_err(|e| CapError::failed(format!("{what}: {e}")))?.port();
    let to = SocketAddr::new(addr, port);
    let sock = Namespace::open(client)?
        .run("opening a TCP socket", move || {
            let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .await?;
    let io_err = |e: io::Error| CapError::failed(format!("{what}: {e}"));
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io_err)?;
    let sock = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(OwnedFd::from(sock)));

    let started = Instant::now();
    let received = std::sync::atomic::AtomicU64::new(0);
    let receive = async {
        let (mut conn, _) = listener.accept().await?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = conn.read(&mut buf).await?;
            let got = received.load(std::sync::atomic::Ordering::Relaxed);
            if n == 0 {
                return Ok::<_, io::Error>(());
            }
            // Count only what arrived intact, up to the first wrong byte.
            let good = (0..n).take_while(|&i| buf[i] == pattern(got + i as u64)).count();
            received.fetch_add(good as u64, std::sync::atomic::Ordering::Relaxed);
            if good < n {
                return Ok(());
            }
        }
    };
    let send = async {
        let mut conn = sock.connect(to).await?;
        let mut sent = 0u64;
        let mut chunk = Vec::with_capacity(CHUNK);
        while sent < bytes {
            chunk.clear();
            chunk.extend((sent..bytes.min(sent + CHUNK as u64)).map(pattern));
            conn.write_all(&chunk).await?;
            sent += chunk.len() as u64;
        }
        conn.shutdown().await
    };
    // A path that drops data shows as the deadline passing: not an error.
    let outcome = tokio::time::timeout(timeout, async { tokio::try_join!(receive, send) }).await;
    if let Ok(Err(e)) = outcome {
        // Refused or unreachable is a result too (nothing arrived).
        if !matches!(
            e.raw_os_error(),
            Some(libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ECONNRESET)
        ) {
            return Err(io_err(e));
        }
    }
    let received = received.load(std::sync::atomic::Ordering::Relaxed);
    Ok(TransferStats { sent: bytes, received, elapsed: started.elapsed() })
}
