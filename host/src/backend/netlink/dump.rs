//! Link dumps read lean: the index, name and group of every link in a
//! namespace, parsed straight out of the kernel's messages.
//!
//! Why not rtnetlink's dump: its connection task decodes every message of a
//! dump in full (about 13 KiB parsed per link: statistics, per-family
//! settings) and queues them on an unbounded channel faster than anyone
//! consumes them, so the whole dump is in memory at once. Listing the host's
//! links beside 1000 veths cost `detach-many` about 17 MiB of peak heap for
//! the three fields it needs. Here a raw socket sends one `RTM_GETLINK`
//! dump request and reads the answer one receive buffer at a time, reading
//! only those fields; nothing else of a message is kept. The socket is kept
//! with the namespace's others (see the parent module), so a dump costs no
//! entry into the namespace; each dump has a sequence number of its own,
//! so what is left of one cut short (a timeout) is skipped by the next.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::Netlink;
use crate::error::{CapError, CapResult};
use crate::types::Target;

/// One link of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LinkName {
    pub index: u32,
    pub name: String,
    /// `ip link set ... group G`; 0 is the default group.
    pub group: u32,
}

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_GROUP: u16 = 27;
/// `nlattr.nla_type` without the nested / byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
/// The kernel fills a dump buffer up to 32 KiB per receive; twice that
/// leaves room, and a message that still does not fit is an error, not a
/// silent truncation.
const RECV_BUFFER: usize = 64 * 1024;
/// A dump is answered in milliseconds; never hang on a wedged kernel.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

impl Netlink {
    /// Every link in `target`, read from one dump (see the module doc).
    pub(super) async fn link_names(&self, target: &Target) -> CapResult<Vec<LinkName>> {
        let sock = self.sockets(target).await?.dump;
        crate::backend::stats::netlink_request();
        let what = format!("list links in {target}");
        let seq = DUMP_SEQ.fetch_add(1, Ordering::Relaxed);
        // Blocking reads: the kernel answers at once, and a thread of the
        // blocking pool is simpler than registering the socket with the
        // reactor. One dump at a time per socket: answers do not interleave.
        tokio::task::spawn_blocking(move || dump(&sock.lock().unwrap_or_else(|p| p.into_inner()), seq))
            .await
            .map_err(|e| CapError::failed(format!("{what}: {e}")))?
            .map_err(|e| CapError::failed(format!("{what}: {e}")))
    }

    /// Index -> name, for routes that only carry an output interface index.
    pub(super) async fn link_index_names(&self, target: &Target) -> CapResult<HashMap<u32, String>> {
        Ok(self.link_names(target).await?.into_iter().map(|l| (l.index, l.name)).collect())
    }
}

/// Sequence numbers of dump requests, never the same twice in a process
/// (wrapping after 4 billion dumps is harmless: only leftovers of the one
/// dump before on the same socket are ever in the way).
static DUMP_SEQ: AtomicU32 = AtomicU32::new(1);

/// A netlink route socket in the calling thread's namespace, with a receive timeout.
pub(super) fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned by the returned OwnedFd.
    let fd =
        unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval { tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
    // SAFETY: tv is a valid timeval for the length given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

/// Send the dump request `seq` on `sock` and read the links out of the answer.
fn dump(sock: &OwnedFd, seq: u32) -> io::Result<Vec<LinkName>> {
    // nlmsghdr + an all-zero ifinfomsg (AF_UNSPEC: every link).
    const LEN: usize = NLMSG_HDRLEN + IFINFOMSG_LEN;
    let mut req = [0u8; LEN];
    req[0..4].copy_from_slice(&(LEN as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    // SAFETY: req is valid for its length; the destination is the kernel (unconnected netlink socket).
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut links = Vec::new();
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(io::Error::other(format!(
                "a dump message of {n} bytes does not fit in {} bytes",
                buf.len()
            )));
        }
        if parse(&buf[..n], seq, &mut links)? {
            return Ok(links);
        }
    }
}

/// Append the links of one received buffer to `links`; true at the end of the dump.
fn parse(mut data: &[u8], seq: u32, links: &mut Vec<LinkName>) -> io::Result<bool> {
    let bad = |why: &str| io::Error::other(format!("malformed link dump: {why}"));
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(bad("message length out of bounds"));
        }
        let kind = u16_at(data, 4);
        let body = &data[NLMSG_HDRLEN..len];
        // Not this request's answer (what is left of an earlier dump cut short): skip.
        if u32_at(data, 8) == seq {
            match kind {
                NLMSG_DONE => {
                    // The kernel may report an error in the done message.
                    let err = if body.len() >= 4 { u32_at(body, 0) as i32 } else { 0 };
                    return match err {
                        0 => Ok(true),
                        e => Err(io::Error::from_raw_os_error(-e)),
                    };
                }
                NLMSG_ERROR => {
                    let err = if body.len() >= 4 { u32_at(body, 0) as i32 } else { -libc::EPROTO };
                    if err != 0 {
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                }
                RTM_NEWLINK => links.push(link(body).ok_or_else(|| bad("link message too short"))?),
                _ => {}
            }
        }
        data = &data[align4(len).min(data.len())..];
    }
    Ok(false)
}

/// Index, name and group out of one `RTM_NEWLINK` body (ifinfomsg + attributes).
fn link(body: &[u8]) -> Option<LinkName> {
    if body.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = u32_at(body, 4);
    let (mut name, mut group) = (String::new(), 0);
    let mut attrs = &body[IFINFOMSG_LEN..];
    while attrs.len() >= 4 {
        let len = u16_at(attrs, 0) as usize;
        if len < 4 || len > attrs.len() {
            return None;
        }
        let value = &attrs[4..len];
        match u16_at(attrs, 2) & NLA_TYPE_MASK {
            IFLA_IFNAME => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_GROUP if value.len() >= 4 => group = u32_at(value, 0),
            _ => {}
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    Some(LinkName { index, name, group })
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align4(a.len()), 0);
        a
    }

    fn msg(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    fn newlink(index: u32, name: &str, group: Option<u32>) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        body.extend(attr(4, &1500u32.to_ne_bytes())); // IFLA_MTU, ignored
        body.extend(attr(IFLA_IFNAME, format!("{name}\0").as_bytes()));
        if let Some(g) = group {
            body.extend(attr(IFLA_GROUP, &g.to_ne_bytes()));
        }
        body.extend(attr(0x8000 | 26, &[0; 8])); // a nested attribute, ignored
        msg(RTM_NEWLINK, 1, &body)
    }

    #[test]
    fn reads_index_name_and_group_until_done() {
        let mut links = Vec::new();
        let first = [newlink(1, "lo", Some(0)), newlink(7, "ovr0123_l", Some(0x8000_0001))].concat();
        assert!(!parse(&first, 1, &mut links).unwrap());
        let second = [newlink(9, "eth0", None), msg(NLMSG_DONE, 1, &0i32.to_ne_bytes())].concat();
        assert!(parse(&second, 1, &mut links).unwrap());
        let got: Vec<_> = links.iter().map(|l| (l.index, l.name.as_str(), l.group)).collect();
        assert_eq!(got, [(1, "lo", 0), (7, "ovr0123_l", 0x8000_0001), (9, "eth0", 0)]);
    }

    #[test]
    fn leftovers_of_an_earlier_dump_are_skipped() {
        let mut links = Vec::new();
        let mut old = newlink(5, "old0", None);
        old[8..12].copy_from_slice(&6u32.to_ne_bytes());
        let mut old_done = msg(NLMSG_DONE, 6, &0i32.to_ne_bytes());
        old_done.extend(msg(NLMSG_ERROR, 6, &(-libc::EPERM).to_ne_bytes()));
        let mine = [old, old_done, newlink(2, "eth0", None)].concat();
        // newlink() makes seq 1: the answer to request 1 is read, 6's ignored.
        assert!(!parse(&mine, 1, &mut links).unwrap());
        assert!(parse(&msg(NLMSG_DONE, 1, &0i32.to_ne_bytes()), 1, &mut links).unwrap());
        assert_eq!(links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["eth0"]);
    }

    #[test]
    fn kernel_errors_and_bad_lengths_are_errors() {
        let mut links = Vec::new();
        let e = parse(&msg(NLMSG_ERROR, 1, &(-libc::EPERM).to_ne_bytes()), 1, &mut links).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        let e = parse(&msg(NLMSG_DONE, 1, &(-libc::EINTR).to_ne_bytes()), 1, &mut links).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINTR));
        let mut cut = newlink(3, "x", None);
        cut[0..4].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(parse(&cut, 1, &mut links).unwrap_err().to_string().contains("malformed"));
        let mut short_attr = newlink(3, "x", None);
        let at = NLMSG_HDRLEN + IFINFOMSG_LEN;
        short_attr[at..at + 2].copy_from_slice(&2u16.to_ne_bytes());
        assert!(parse(&short_attr, 1, &mut links).is_err());
    }
}
