//! Link offloads through the `SIOCETHTOOL` ioctl (what `ethtool -K` does).
//!
//! Only TX checksum offload so far. It matters for ovs-vswitchd's userspace
//! datapath: a veth with TX checksum offload on hands its peer frames whose
//! TCP/UDP checksum is left for "hardware" to fill in (CHECKSUM_PARTIAL).
//! The kernel datapath forwards such a frame as a kernel object and the
//! checksum is completed wherever it finally leaves; the userspace datapath
//! reads the bytes through a socket and forwards them as they are, so the
//! receiver drops every TCP segment for its bad checksum (ping, whose ICMP
//! checksum is always computed in software, still works). Turning TX checksum
//! offload off on the sending end makes the kernel compute the checksum
//! itself; it also turns off the segmentation offloads that depend on it.
//!
//! The legacy ioctl rather than ethtool's generic netlink family: one fixed
//! 8-byte request each way, no family resolution, and every kernel with veth
//! has it. The ioctl acts in the namespace of the socket it is issued on, so
//! [`super::Netlink`] keeps one such socket per namespace beside its netlink
//! socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::types::IfName;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// A socket to issue device ioctls on, in the calling thread's namespace.
/// AF_UNIX: it needs no IP stack and can never carry traffic.
pub(super) fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether TX checksum offload is on for `name`.
pub(super) fn tx_checksum(sock: &OwnedFd, name: &IfName) -> io::Result<bool> {
    let mut v = EthtoolValue { cmd: ETHTOOL_GTXCSUM, data: 0 };
    ethtool(sock, name, &mut v)?;
    Ok(v.data != 0)
}

/// Turn TX checksum offload on or off for `name`.
pub(super) fn set_tx_checksum(sock: &OwnedFd, name: &IfName, on: bool) -> io::Result<()> {
    let mut v = EthtoolValue { cmd: ETHTOOL_STXCSUM, data: u32::from(on) };
    ethtool(sock, name, &mut v)
}

fn ethtool(sock: &OwnedFd, name: &IfName, value: &mut EthtoolValue) -> io::Result<()> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // IfName is at most 15 bytes of printable ASCII, so it fits with its NUL.
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_str().bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_data = (value as *mut EthtoolValue).cast();
    // SAFETY: req points at a valid ifreq whose data points at a live
    // ethtool_value, as SIOCETHTOOL with these commands expects.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
