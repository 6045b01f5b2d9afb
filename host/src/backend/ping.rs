//! ICMP echo (IPv4 and IPv6) from inside a target's network namespace.
//!
//! Uses a RAW socket made inside the namespace: unprivileged ping sockets are
//! off in fresh namespaces (net.ipv4.ping_group_range defaults to "1 0").
//! The socket is connect()ed to the destination so the kernel only hands it
//! packets from there; replies are matched on identifier, sequence and a
//! per-run nonce in the payload, since a raw socket also sees other pings.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::{sleep_until, Instant};

use crate::backend::netlink::netns::Namespace;
use crate::backend::PingStats;
use crate::error::{CapError, CapResult};
use crate::types::Target;

/// Gap between requests when the previous one got no reply yet.
const INTERVAL: Duration = Duration::from_millis(200);
const MAX_COUNT: u32 = 1000;
/// Bytes after the ICMP header: 8 of nonce, the rest a fixed pattern (ping's default size).
const PAYLOAD: usize = 56;
/// Longer timeouts are cut to this so deadline arithmetic cannot overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Send `count` echo requests to `addr` from `target`'s namespace, each
/// waiting up to `timeout` for its reply. The next request goes out as soon
/// as the previous reply arrives, or after 200 ms without one. No reply (and
/// no route) is not an error: the stats say received 0.
pub async fn ping(target: &Target, addr: IpAddr, count: u32, timeout: Duration) -> CapResult<PingStats> {
    if count == 0 || count > MAX_COUNT {
        return Err(CapError::invalid(format!("ping count {count} is out of range 1-{MAX_COUNT}")));
    }
    if timeout.is_zero() {
        return Err(CapError::invalid("ping timeout must be above zero (got 0)"));
    }
    let what = format!("ping {addr} from {target}");
    let sock = Namespace::open(target)?.run("opening an ICMP socket", move || open_socket(addr)).await?;
    // connect() on a raw socket only looks up the route and sets the peer
    // filter; no route means every request would be lost.
    if let Err(e) = sock.connect(&SockAddr::from(SocketAddr::new(addr, 0))) {
        return match e.raw_os_error() {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => Ok(lost(count)),
            _ => Err(CapError::failed(format!("{what}: {e}"))),
        };
    }
    // SAFETY: `Socket` owns its fd, never changes it, and closes it only on
    // drop, which AsyncFd does after deregistering.
    let fd = unsafe { AsyncFd::register(sock) }
        .map_err(|e| CapError::failed(format!("{what}: {}", io::Error::from(e))))?;
    Pinger::new(addr, timeout.min(MAX_TIMEOUT)).run(&fd, count).await.map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            CapError::failed(format!("{what}: needs root (CAP_NET_RAW)"))
        } else {
            CapError::failed(format!("{what}: {e}"))
        }
    })
}

fn open_socket(addr: IpAddr) -> io::Result<Socket> {
    let sock = match addr {
        IpAddr::V4(_) => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?,
        IpAddr::V6(_) => Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?,
    };
    sock.set_nonblocking(true)?;
    Ok(sock)
}

fn lost(count: u32) -> PingStats {
    PingStats { sent: count, received: 0, ..Default::default() }
}

struct Pending {
    seq: u16,
    sent_at: Instant,
    deadline: Instant,
}

struct Pinger {
    v6: bool,
    id: u16,
    nonce: [u8; 8],
    timeout: Duration,
}

impl Pinger {
    fn new(addr: IpAddr, timeout: Duration) -> Self {
        // Distinct per call so concurrent pings in one namespace ignore each
        // other's replies; no randomness needed, only uniqueness.
        static CALLS: AtomicU16 = AtomicU16::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() as u16) ^ call.wrapping_mul(0x9e37) ^ (nanos as u16);
        let nonce = ((nanos as u64) ^ (u64::from(call) << 48)).to_be_bytes();
        Self { v6: addr.is_ipv6(), id, nonce, timeout }
    }

    async fn run(&self, fd: &AsyncFd<Socket>, count: u32) -> io::Result<PingStats> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut rtts: Vec<Duration> = Vec::new();
        let mut sent: u32 = 0;
        let mut next_send = Instant::now();
        let mut buf = [0u8; 1500];
        loop {
            let now = Instant::now();
            pending.retain(|p| p.deadline > now);
            if sent < count && now >= next_send {
                // count <= 1000, so sequence numbers never wrap.
                let seq = sent as u16;
                self.send(fd, seq).await?;
                pending.push(Pending { seq, sent_at: now, deadline: now + self.timeout });
                sent += 1;
                next_send = now + INTERVAL;
                continue;
            }
            let wake = pending.iter().map(|p| p.deadline).chain((sent < count).then_some(next_send)).min();
            let Some(wake) = wake else { break };
            tokio::select! {
                n = fd.async_io(Interest::READABLE, |s| { let mut r: &Socket = s; r.read(&mut buf) }) => {
                    let Some(seq) = self.reply_seq(&buf[..n?]) else { continue };
                    let Some(i) = pending.iter().position(|p| p.seq == seq) else { continue };
                    let p = pending.swap_remove(i);
                    let now = Instant::now();
                    rtts.push(now - p.sent_at);
                    if u32::from(seq) + 1 == sent {
                        next_send = now;
                    }
                }
                _ = sleep_until(wake) => {}
            }
        }
        Ok(stats(sent, &rtts))
    }

    async fn send(&self, fd: &AsyncFd<Socket>, seq: u16) -> io::Result<()> {
        let pkt = self.request(seq);
        match fd.async_io(Interest::WRITABLE, |s| s.send(&pkt)).await {
            // Routes can vanish mid-run; that request is simply lost.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENETUNREACH | libc::EHOSTUNREACH)) => Ok(()),
            other => other.map(drop),
        }
    }

    fn request(&self, seq: u16) -> Vec<u8> {
        let mut p = Vec::with_capacity(8 + PAYLOAD);
        p.extend_from_slice(&[if self.v6 { 128 } else { 8 }, 0, 0, 0]);
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&self.nonce);
        p.extend((0..PAYLOAD - 8).map(|i| i as u8));
        // The kernel fills in the ICMPv6 checksum (it covers a pseudo-header).
        if !self.v6 {
            let c = checksum(&p);
            p[2..4].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    /// The sequence number if `pkt` is a reply to one of our requests.
    /// IPv4 raw sockets deliver the IP header too; IPv6 ones do not.
    fn reply_seq(&self, pkt: &[u8]) -> Option<u16> {
        let icmp = if self.v6 {
            pkt
        } else {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            pkt.get(ihl..)?
        };
        let want_type = if self.v6 { 129 } else { 0 };
        let ok = icmp.len() >= 16
            && icmp[0] == want_type
            && icmp[1] == 0
            && icmp[4..6] == self.id.to_be_bytes()
            && icmp[8..16] == self.nonce;
        ok.then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
    }
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 =
        data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn stats(sent: u32, rtts: &[Duration]) -> PingStats {
    let received = rtts.len() as u32;
    if received == 0 {
        return PingStats { sent, ..Default::default() };
    }
    let total: Duration = rtts.iter().sum();
    PingStats {
        sent,
        received,
        rtt_min: rtts.iter().min().copied().unwrap_or_default(),
        rtt_avg: total / received,
        rtt_max: rtts.iter().max().copied().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_known_echo_request() {
        // type 8, id 1, seq 1, no payload: sum 0x0802 -> checksum 0xf7fd
        assert_eq!(checksum(&[8, 0, 0, 0, 0, 1, 0, 1]), 0xf7fd);
        let mut p = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, 1, 2, 3];
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn reply_matching() {
        let p = Pinger::new("10.0.0.1".parse().unwrap(), Duration::from_secs(1));
        let mut reply = p.request(5);
        reply[0] = 0;
        let mut ip = vec![0x45u8; 1];
        ip.resize(20, 0);
        ip.extend_from_slice(&reply);
        assert_eq!(p.reply_seq(&ip), Some(5));
        let mut other = ip.clone();
        other[24] ^= 1; // identifier
        assert_eq!(p.reply_seq(&other), None);
        let request = [&ip[..20], &p.request(5)].concat();
        assert_eq!(p.reply_seq(&request), None, "own request seen on loopback");
        assert_eq!(p.reply_seq(&[0x45]), None);
    }
}
