"""The floor contender of `make bench`: the kernel and OVS work of attaching N
containers, done the cheapest way a program can, so that every other
contender can be reported as a multiple of what is unavoidable.

attach: one `ip -batch` creating every veth pair with its inner end made
directly inside its container's namespace under the final name and MTU; ONE
ovs-vsctl transaction adding every port (ovs-vsctl waits until ovs-vswitchd
has applied it, as ovs-run does); then, per container, this process enters
the namespace (setns, no new process) and sends on one rtnetlink socket the
three requests that are left: link up, address, default route, plus one
ethtool ioctl (TX checksum offload off, which TCP needs on the userspace
datapath). Nothing is looked up that is not needed: the container pids are
known before the clock starts.
detach: one ovs-vsctl transaction removing every port and one `ip -batch`
deleting every host end as one link group (the inner ends go with them).
"""

import ctypes
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000

# rtnetlink (linux/rtnetlink.h, linux/if_addr.h, linux/netlink.h)
RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
SIOCETHTOOL, ETHTOOL_STXCSUM = 0x8946, 0x17


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def _attr(kind, data):
    size = 4 + len(data)
    return struct.pack("HH", size, kind) + data + b"\0" * ((4 - size % 4) % 4)


def _msg(kind, seq, body, flags=NLM_F_REQUEST | NLM_F_ACK):
    return struct.pack("IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _configure_inside(iface, cidr, gateway):
    """Runs in the container's namespace: up, address, default route, tx off."""
    index = socket.if_nametoindex(iface)
    net = ipaddress.ip_interface(cidr)
    new = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    up = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP, IFF_UP)
    addr = struct.pack("BBBBi", socket.AF_INET, net.network.prefixlen, 0, 0, index) \
        + _attr(IFA_LOCAL, net.ip.packed) + _attr(IFA_ADDRESS, net.ip.packed)
    route = struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                        RTN_UNICAST, 0) \
        + _attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed) + _attr(RTA_OIF, struct.pack("i", index))
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.bind((0, 0))
        # In order: the route needs the link up and the address's subnet.
        nl.send(_msg(RTM_NEWLINK, 1, up) + _msg(RTM_NEWADDR, 2, addr, new) + _msg(RTM_NEWROUTE, 3, route, new))
        acked = 0
        while acked < 3:
            data = nl.recv(65536)
            off = 0
            while off < len(data):
                length, kind, _, seq, _ = struct.unpack_from("IHHII", data, off)
                if kind == NLMSG_ERROR:
                    (err,) = struct.unpack_from("i", data, off + 16)
                    if err:
                        raise OSError(-err, f"netlink request {seq} in {iface}: {os.strerror(-err)}")
                    acked += 1
                off += (length + 3) & ~3
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    ifreq = bytearray(struct.pack("16sP", iface.encode(), ctypes.addressof(value)).ljust(40, b"\0"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)


def port_name(i):
    return f"flr{i:05d}_l"


def attach(bridge, iface, mtu, containers):
    """containers: (name, pid, cidr, gateway) in order."""
    batch = "".join(f"link add {port_name(i)} mtu {mtu} up type veth peer name {iface} mtu {mtu} netns {pid}\n"
                    for i, (_, pid, _, _) in enumerate(containers))
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)
    vsctl = ["ovs-vsctl", "--timeout=60"]
    for i, (name, _, _, _) in enumerate(containers):
        vsctl += ["--", "add-port", bridge, port_name(i), "--", "set", "interface", port_name(i),
                  f"external_ids:container_id={name}", f"external_ids:container_iface={iface}"]
    subprocess.run(vsctl, check=True, stdout=subprocess.DEVNULL)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        for _, pid, cidr, gateway in containers:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                _setns(fd)
                _configure_inside(iface, cidr, gateway)
            finally:
                _setns(home)
                os.close(fd)
    finally:
        os.close(home)


# A link group no one else on the bench's private namespace uses.
GROUP = 0x7E5D


def detach(bridge, n):
    vsctl = ["ovs-vsctl", "--timeout=60"]
    for i in range(n):
        vsctl += ["--", "--if-exists", "del-port", bridge, port_name(i)]
    subprocess.run(vsctl, check=True, stdout=subprocess.DEVNULL)
    # Deleted one by one, every link waits for an RCU grace period; put in
    # one group and deleted as one, the kernel waits once.
    batch = "".join(f"link set {port_name(i)} group {GROUP}\n" for i in range(n)) + f"link del group {GROUP}\n"
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True)
