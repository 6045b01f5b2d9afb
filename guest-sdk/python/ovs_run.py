"""Write ovs-run network scripts in Python.

A script is a WebAssembly component built with componentize-py from the
shared WIT world (``wit/ovs-run.wit``, world ``script``). This module is the
Python side of the Rust SDK (``guest-sdk/src``): the same argument rules, the
same checks of network values before anything reaches the host, the same
error texts. A script looks like this::

    import ovs_run
    from ovs_run import Error, Target, bridges, info

    USAGE = '''Usage: hello BRIDGE
    Creates BRIDGE.'''

    def main(args):
        [bridge] = args.exact("BRIDGE")
        bridge = bridge.parse(ovs_run.ifname)   # checked before any change
        bridges.create(bridge)
        info(f"bridge {bridge} is there")

    WitWorld = ovs_run.script(main, usage=USAGE)

``script`` makes ``main`` the component's ``run`` export: ``--help`` prints
the usage, an :class:`Error` (or any other exception) becomes the error the
user sees, with exit status 1.
"""

import ipaddress
import sys
import traceback
import unicodedata

import wit_world
from componentize_py_types import Err
from wit_world.imports import bridges as _bridges
from wit_world.imports import containers as _containers
from wit_world.imports import diagnostics as _diagnostics
from wit_world.imports import links as _links
from wit_world.imports import log as _log
from wit_world.imports import ports as _ports
from wit_world.imports import routes as _routes
from wit_world.imports import types as _types

# --------------------------------------------------------------------------
# Errors


class Error(Exception):
    """Why a script (or one step of it) failed; ``str(e)`` is what the user sees.

    ``kind`` is the host's error case (``invalid-argument``, ``not-found``,
    ``already-exists``, ``denied``, ``failed``) for a failed capability
    call, ``invalid`` for a value the script rejected itself, and ``script``
    for the script's own reason.
    """

    _PREFIX = {
        "invalid-argument": "invalid argument: ",
        "not-found": "not found: ",
        "already-exists": "already exists: ",
        "denied": "denied: ",
        "failed": "failed: ",
    }

    def __init__(self, message, kind="script"):
        super().__init__(message)
        self.kind = kind
        self.message = message

    @classmethod
    def invalid(cls, message):
        return cls(message, "invalid")

    @property
    def is_not_found(self):
        return self.kind == "not-found"

    @property
    def is_already_exists(self):
        return self.kind == "already-exists"

    @property
    def is_denied(self):
        return self.kind == "denied"

    def context(self, what):
        """The same error with ``what: `` in front of its message."""
        return Error(f"{what}: {self.message}", self.kind)

    def __str__(self):
        return self._PREFIX.get(self.kind, "") + self.message


_HOST_KINDS = {
    _types.Error_InvalidArgument: "invalid-argument",
    _types.Error_NotFound: "not-found",
    _types.Error_AlreadyExists: "already-exists",
    _types.Error_Denied: "denied",
    _types.Error_Failed: "failed",
}


def _call(f, *args):
    """Call a capability; its ``Err(types.Error_*)`` becomes an :class:`Error`."""
    try:
        return f(*args)
    except Err as e:
        raise Error(e.value.value, _HOST_KINDS[type(e.value)]) from None


# --------------------------------------------------------------------------
# Network values, checked in the script with the host's rules


def shorten(s):
    """Long values are cut in messages (64 bytes, then ``...``)."""
    b = s.encode()
    if len(b) <= 64:
        return s
    return b[:64].decode(errors="ignore") + "..."


def ifname(s):
    """A Linux interface name: 1-15 bytes, no ``/``, ``:``, space or control character."""
    shown = shorten(s)
    if not s:
        raise Error.invalid("interface name is empty")
    if len(s.encode()) > 15:
        raise Error.invalid(f"interface name '{shown}' is {len(s.encode())} bytes long; the limit is 15")
    if s in (".", ".."):
        raise Error.invalid(f"interface name '{s}' is reserved")
    for c in s:
        if c in "/:" or c.isspace() or unicodedata.category(c) == "Cc":
            raise Error.invalid(f"interface name '{shown}' contains {c!r}, which Linux does not allow")
    return s


def container_name(s):
    """A Docker container name or (abbreviated) id; a leading ``/`` is dropped."""
    name = s[1:] if s.startswith("/") else s
    if name and len(name) <= 128 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
        return name
    raise Error.invalid(f"container '{shorten(s)}' is not a valid container name or id")


def _ip(s):
    # ipaddress accepts IPv6 scope ids ("fe80::1%eth0"); the host does not.
    if "%" in s:
        raise ValueError(s)
    return ipaddress.ip_address(s)


def ip(s):
    """An IPv4 or IPv6 address."""
    try:
        return _ip(s)
    except ValueError:
        # Rust's std::net::IpAddr says this; the argument layer adds the value.
        raise Error.invalid("invalid IP address syntax") from None


class Cidr:
    """An address with its prefix length (``10.1.0.2/24``), as the host wants it."""

    def __init__(self, addr, prefix):
        self.addr = addr
        self.prefix = prefix

    @property
    def is_ipv4(self):
        return self.addr.version == 4

    @property
    def network(self):
        net = ipaddress.ip_network(f"{self.addr}/{self.prefix}", strict=False)
        return Cidr(net.network_address, self.prefix)

    def contains(self, address):
        net = ipaddress.ip_network(f"{self.addr}/{self.prefix}", strict=False)
        return address.version == self.addr.version and address in net

    def host(self, n):
        """The subnet's ``n``-th host address with this prefix (``10.1.0.0/24``.host(1) is ``10.1.0.1/24``)."""
        bits = 32 if self.is_ipv4 else 128
        size = 1 << (bits - self.prefix)
        end = size - 1 if self.is_ipv4 else size
        if n <= 0 or n >= end:
            raise Error.invalid(f"{self.network} has no host address number {n}")
        base = int(self.network.addr)
        return Cidr(ipaddress.ip_address(base | n) if self.is_ipv4 else ipaddress.IPv6Address(base | n), self.prefix)

    def __str__(self):
        return f"{self.addr}/{self.prefix}"

    def __repr__(self):
        return f"Cidr('{self}')"


def cidr(s):
    """An address with a prefix length, IPv4 or IPv6."""
    shown = shorten(s)
    if "/" not in s:
        raise Error.invalid(f"address '{shown}' has no prefix length (expected e.g. 10.1.0.2/24)")
    a, p = s.split("/", 1)
    try:
        addr = _ip(a)
    except ValueError:
        raise Error.invalid(f"'{shown}' is not a valid CIDR: '{shorten(a)}' is not an IP address") from None
    top = 32 if addr.version == 4 else 128
    prefix = _number(p, 255)
    if prefix is None or prefix > top:
        raise Error.invalid(f"'{shown}' is not a valid CIDR: prefix length '{shorten(p)}' must be 0-{top}")
    return Cidr(addr, prefix)


def mac(s):
    """A unicast MAC address, returned in the usual lower-case form."""
    shown = shorten(s)
    parts = s.split(":")
    hexdigits = "0123456789abcdefABCDEF"
    if len(parts) != 6 or any(not p or len(p) > 2 or any(c not in hexdigits for c in p) for p in parts):
        raise Error.invalid(f"MAC address '{shown}' is not six hex octets separated by ':' (e.g. 02:42:ac:11:00:02)")
    octets = [int(p, 16) for p in parts]
    if octets[0] & 1:
        raise Error.invalid(f"MAC address '{shown}' is a multicast address; an interface needs a unicast one")
    if not any(octets):
        raise Error.invalid(f"MAC address '{shown}' is all zeros")
    return ":".join(f"{o:02x}" for o in octets)


def _number(s, top):
    # Rust's u16/u32 parsing: digits only, optional leading '+'.
    digits = s[1:] if s.startswith("+") else s
    if not (digits.isascii() and digits.isdigit()) or int(digits) > top:
        return None
    return int(digits)


def mtu(s):
    """An MTU, 68-65535."""
    v = _number(s, 0xFFFFFFFF)
    if v is None:
        raise Error.invalid(f"MTU '{shorten(s)}' is not a number 68-65535")
    if not 68 <= v <= 65535:
        raise Error.invalid(f"MTU '{s}' is out of range 68-65535")
    return v


def vlan(s):
    """An access VLAN id, 1-4094."""
    v = _number(s, 0xFFFF)
    if v is None:
        raise Error.invalid(f"VLAN id '{shorten(s)}' is not a number 1-4094")
    if not 1 <= v <= 4094:
        raise Error.invalid(f"VLAN id '{s}' is out of range 1-4094")
    return v


# --------------------------------------------------------------------------
# Command lines: ovs-docker style, as the Rust SDK's Args


def _invalid_value(name, value, e):
    message, shown = str(e), shorten(value)
    if value and f"'{shown}'" in message:
        return Error.invalid(f"{name}: {message}")
    return Error.invalid(f"{name}: '{shown}': {message}")


class Arg:
    """One positional argument with its name from the usage (``BRIDGE``)."""

    def __init__(self, name, value):
        self.name = name
        self.value = value

    def parse(self, parser):
        """``parser(value)`` (``ovs_run.ifname``, ``ovs_run.cidr``...); errors name the argument."""
        try:
            return parser(self.value)
        except (Error, ValueError) as e:
            raise _invalid_value(self.name, self.value, e) from None

    def __str__(self):
        return self.value


class Args:
    """Positional arguments plus ``--key=value`` / ``--key value`` options from a fixed list."""

    def __init__(self, usage, options, positional, given):
        self.usage = usage
        self._options = options
        self.positional = positional
        self._given = given

    @classmethod
    def parse(cls, raw, usage, options):
        """The parsed command line, or None when ``--help``/``-h`` was asked for."""
        before = raw[: raw.index("--")] if "--" in raw else raw
        if "--help" in before or "-h" in before:
            return None
        args = cls(usage, list(options), [], {})
        it = iter(raw)
        for arg in it:
            if arg == "--":
                args.positional.extend(it)
                break
            if not arg.startswith("--"):
                args.positional.append(arg)
                continue
            key, eq, value = arg[2:].partition("=")
            if key not in args._options:
                raise args.usage_error(f"unknown option --{shorten(key)}")
            if not eq:
                value = next(it, None)
                # `--key value`, but not `--key --other`: that is a forgotten value.
                if value is None or value.startswith("--"):
                    raise args.usage_error(f"option --{key} needs a value")
            if key in args._given:
                raise args.usage_error(f"option --{key} given twice")
            args._given[key] = value
        return args

    def usage_error(self, message):
        """An invalid-argument error that points at the usage line."""
        line = next((l.strip() for l in self.usage.splitlines() if l.strip()), None)
        return Error.invalid(f"{message} ({line}; see --help)" if line else str(message))

    def exact(self, *names):
        """Exactly ``len(names)`` positional arguments: ``[bridge, port] = args.exact("BRIDGE", "PORT")``."""
        if len(self.positional) < len(names):
            raise self.usage_error(f"missing argument {names[len(self.positional)]}")
        if len(self.positional) > len(names):
            raise self.usage_error(f"unexpected argument '{shorten(self.positional[len(names)])}'")
        return [Arg(n, v) for n, v in zip(names, self.positional)]

    def get(self, key):
        """The raw value of option ``key``, or None. Asking for an undeclared option is a bug."""
        assert key in self._options, f"option --{key} is not in this script's option list"
        return self._given.get(key)

    def opt(self, key, parser):
        """Option ``key`` parsed with ``parser``, or None when not given."""
        value = self.get(key)
        if value is None:
            return None
        return Arg(f"--{key}", value).parse(parser)

    def opt_or(self, key, default, parser):
        """Option ``key``, or ``default`` (a string), parsed with ``parser``."""
        value = self.get(key)
        return Arg(f"--{key}", default if value is None else value).parse(parser)


# --------------------------------------------------------------------------
# Targets and capabilities


class Target:
    """Where a network operation happens: ``Target.host()``, ``Target.container("web")``, ``Target.netns("ns1")``."""

    def __init__(self, wit, text):
        self.wit = wit
        self._text = text

    @staticmethod
    def host():
        return Target(_types.Target_Host(), "host")

    @staticmethod
    def container(name):
        return Target(_types.Target_Container(str(name)), f"container {name}")

    @staticmethod
    def netns(name):
        return Target(_types.Target_Netns(str(name)), f"netns {name}")

    def __str__(self):
        return self._text


_DATAPATHS = {
    "host-default": _bridges.Datapath.HOST_DEFAULT,
    "system": _bridges.Datapath.SYSTEM,
    "netdev": _bridges.Datapath.NETDEV,
}


def _opt_str(v):
    return None if v is None else str(v)


# One class per WIT interface, used as a namespace: bridges.create(...),
# ports.add(...). Names and arguments follow the Rust SDK's modules.


class bridges:
    """Open vSwitch bridges."""

    @staticmethod
    def create(name, datapath="host-default", may_exist=True):
        """Create a bridge; False when it existed and ``may_exist``. datapath: host-default, system, netdev."""
        return _call(_bridges.create_bridge, str(name), _DATAPATHS[datapath], may_exist)

    @staticmethod
    def delete(name, if_exists=True):
        """Delete a bridge and its ports; False when it did not exist and ``if_exists``."""
        return _call(_bridges.delete_bridge, str(name), if_exists)

    @staticmethod
    def list():
        return _call(_bridges.list_bridges)


class ports:
    """Ports on bridges: a veth pair per container or netns interface."""

    @staticmethod
    def add(bridge, target, ifname, mtu=None, mac=None, vlan=None, trunks=(), iface_id=None):
        """Attach ``target``'s ``ifname`` to ``bridge``; returns the port's info (``.name``, ``.error``...)."""
        options = _ports.PortOptions(mtu=mtu, mac=_opt_str(mac), vlan=vlan, trunks=[int(t) for t in trunks],
                                     iface_id=_opt_str(iface_id))
        return _call(_ports.add_port, str(bridge), target.wit, str(ifname), options)

    @staticmethod
    def attach(bridge, target, ifname, mtu=None, mac=None, vlan=None, trunks=(), iface_id=None, addresses=(),
               gateway=None):
        """``add`` that also gives the inner end ``addresses`` (CIDRs) and a default route via
        ``gateway``, set while the veth is made: one call and one OVS transaction where add,
        set-address and set-route are three. All or none; the policy judges each address and
        the route as if set on their own. Returns the port's info."""
        options = _ports.PortOptions(mtu=mtu, mac=_opt_str(mac), vlan=vlan, trunks=[int(t) for t in trunks],
                                     iface_id=_opt_str(iface_id))
        request = _ports.AttachRequest(port=_ports.PortRequest(target=target.wit, ifname=str(ifname), options=options),
                                       addresses=[str(a) for a in addresses], gateway=_opt_str(gateway))
        found = _call(_ports.attach_ports, str(bridge), [request])
        if len(found) != 1:
            raise Error(f"attach-ports answered {len(found)} ports for 1 request")
        return found[0]

    @staticmethod
    def delete(bridge, target, ifname):
        """Remove the port of ``target``'s ``ifname``; False when there was none."""
        return _call(_ports.del_port, str(bridge), target.wit, str(ifname))

    @staticmethod
    def delete_all(bridge, container):
        """Remove every port of a container on ``bridge``; returns how many."""
        return _call(_ports.del_ports, str(bridge), str(container))

    @staticmethod
    def set_vlan(bridge, target, ifname, vlan):
        """Set (a number) or clear (None) the access VLAN of a port."""
        return _call(_ports.set_vlan, str(bridge), target.wit, str(ifname), vlan)

    @staticmethod
    def list(bridge):
        return _call(_ports.list_ports, str(bridge))

    @staticmethod
    def inner_mtu(bridge):
        """``bridge``'s inner MTU (``.mtu``, ``.reason``): what a port needs so its frames
        still fit the underlay once encapsulated. None: the bridge has no overlay."""
        return _call(_ports.inner_mtu, str(bridge))

    @staticmethod
    def mtu_for(bridge, given=None):
        """The MTU for a new port on ``bridge``: ``given`` when the user gave one, else
        the bridge's inner MTU, else None (no overlay: the kernel's default). Says which
        at info level (``ovs-run -v``), as the Rust SDK's ``ports::mtu_for``."""
        if given is not None:
            info(f"MTU {given}, as given")
            return given
        found = ports.inner_mtu(bridge)
        if found is None:
            info(f"bridge {bridge} has no overlay: MTU left at the kernel's default")
            return None
        info(f"MTU {found.mtu}, bridge {bridge}'s inner MTU: {found.reason}")
        return found.mtu


class links:
    """Links and their addresses inside a target."""

    @staticmethod
    def set_address(target, ifname, cidr):
        """Add an address (a Cidr or its text); False when it was there already."""
        return _call(_links.set_address, target.wit, str(ifname), str(cidr))

    @staticmethod
    def del_address(target, ifname, cidr):
        return _call(_links.del_address, target.wit, str(ifname), str(cidr))

    @staticmethod
    def set_mtu(target, ifname, mtu):
        return _call(_links.set_mtu, target.wit, str(ifname), mtu)

    @staticmethod
    def set_mac(target, ifname, mac):
        return _call(_links.set_mac, target.wit, str(ifname), str(mac))

    @staticmethod
    def set_up(target, ifname):
        return _call(_links.set_link_up, target.wit, str(ifname))

    @staticmethod
    def set_down(target, ifname):
        return _call(_links.set_link_down, target.wit, str(ifname))

    @staticmethod
    def list(target, ifname=None):
        return _call(_links.list_links, target.wit, _opt_str(ifname))


class routes:
    """Routes in a target's main table; no ``destination`` means the default route."""

    @staticmethod
    def add(target, destination=None, via=None, dev=None):
        """Add a route; False when an identical one was there already."""
        route = _routes.Route(_opt_str(destination), _opt_str(via), _opt_str(dev))
        return _call(_routes.set_route, target.wit, route)

    @staticmethod
    def delete(target, destination=None, via=None, dev=None):
        route = _routes.Route(_opt_str(destination), _opt_str(via), _opt_str(dev))
        return _call(_routes.del_route, target.wit, route)

    @staticmethod
    def list(target):
        return _call(_routes.list_routes, target.wit)


class containers:
    """Docker containers."""

    @staticmethod
    def lookup(name):
        """A container by name or (abbreviated) id: ``.id``, ``.name``, ``.pid``, ``.running``, ``.labels``."""
        return _call(_containers.lookup, str(name))

    @staticmethod
    def list_by_label(**labels):
        """Running containers carrying every one of ``labels``."""
        return _call(_containers.list_by_label, [_types.Pair(k, v) for k, v in labels.items()])


class diagnostics:
    """Checks that a configuration works."""

    @staticmethod
    def ping(target, address, count=3, timeout_ms=1000):
        """ICMP echo from inside ``target``: ``.sent``, ``.received``, ``.rtt_{min,avg,max}_us``."""
        return _call(_diagnostics.ping, target.wit, str(address), count, timeout_ms)

    @staticmethod
    def tcp_check(client, server, server_address, nbytes=1 << 20, timeout_ms=10000):
        """``nbytes`` over TCP from inside ``client`` to a listener on
        ``server_address`` inside ``server``: ``.sent``, ``.received`` (intact), ``.elapsed_us``."""
        return _call(_diagnostics.tcp_check, client.wit, server.wit, str(server_address), nbytes, timeout_ms)

    @staticmethod
    def transfer_text(stats):
        """``1048576 bytes in 4.1 ms (2046 Mbit/s)``, as the Rust SDK shows it."""
        ms = stats.elapsed_us / 1000
        if stats.received == stats.sent:
            mbits = stats.received * 8 / max(stats.elapsed_us, 1)
            return f"{stats.received} bytes in {ms:.1f} ms ({mbits:.0f} Mbit/s)"
        return f"{stats.received} of {stats.sent} bytes arrived in {ms:.1f} ms"

    @staticmethod
    def ping_text(stats):
        """``3 sent, 3 received, rtt min/avg/max 0.041/0.052/0.070 ms``, as the Rust SDK shows it."""
        s = f"{stats.sent} sent, {stats.received} received"
        if stats.received > 0:
            ms = [f"{us / 1000:.3f}" for us in (stats.rtt_min_us, stats.rtt_avg_us, stats.rtt_max_us)]
            s += f", rtt min/avg/max {'/'.join(ms)} ms"
        return s


def trace(message):
    _log.log(_log.Level.TRACE, str(message))


def debug(message):
    _log.log(_log.Level.DEBUG, str(message))


def info(message):
    _log.log(_log.Level.INFO, str(message))


def warn(message):
    _log.log(_log.Level.WARN, str(message))


def error(message):
    _log.log(_log.Level.ERROR, str(message))


# --------------------------------------------------------------------------
# The export


def script(main, usage, options=()):
    """Make ``main(args)`` the script's ``run`` export: ``WitWorld = ovs_run.script(main, usage=USAGE)``.

    An :class:`Error` from ``main`` is reported as is; any other exception
    as ``TypeName: text``, its traceback on stderr. Both exit with status 1
    (componentize-py would otherwise trap with "unexpected exception").
    """

    class WitWorld(wit_world.WitWorld):
        def run(self, raw):
            try:
                args = Args.parse(list(raw), usage, options)
                if args is None:
                    print(usage.rstrip())
                    return
                main(args)
            except Error as e:
                raise Err(str(e)) from None
            except BaseException as e:  # SystemExit too: an escaping exception would trap
                traceback.print_exc(file=sys.stderr)
                raise Err(f"{type(e).__name__}: {e}") from None

    return WitWorld
