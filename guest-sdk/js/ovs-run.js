// Write ovs-run network scripts in JavaScript.
//
// A script is an ES module built into a WebAssembly component with
// componentize-qjs (QuickJS) against guest-sdk/js/wit (ovs-run's shared
// `script` world plus WASI stdout for `print`). This module is the JS side
// of the Rust SDK (guest-sdk/src): the same argument rules, the same checks
// of network values before anything reaches the host, the same error texts.
//
//   import { script, parse, Target, bridges, info } from "../../guest-sdk/js/ovs-run.js";
//
//   const USAGE = `Usage: hello BRIDGE
//   Creates BRIDGE.`;
//
//   function main(args) {
//     const [bridge] = args.exact("BRIDGE");
//     const name = bridge.parse(parse.ifname);   // checked before any change
//     bridges.create(name);
//     info(`bridge ${name} is there`);
//   }
//
//   export const run = script(main, { usage: USAGE });
//
// `script` makes `main` the component's `run` export: --help prints the
// usage; an OvsRunError (or any other exception) becomes the error the user
// sees, with exit status 1.

import * as witBridges from "ovs-run:net/bridges@0.1.0";
import * as witContainers from "ovs-run:net/containers@0.1.0";
import * as witDiagnostics from "ovs-run:net/diagnostics@0.1.0";
import * as witLinks from "ovs-run:net/links@0.1.0";
import * as witLog from "ovs-run:net/log@0.1.0";
import * as witPorts from "ovs-run:net/ports@0.1.0";
import * as witRoutes from "ovs-run:net/routes@0.1.0";
import stdout from "wasi:cli/stdout@0.2.12";

// ---------------------------------------------------------------------------
// Errors

const HOST_PREFIX = {
  "invalid-argument": "invalid argument: ",
  "not-found": "not found: ",
  "already-exists": "already exists: ",
  denied: "denied: ",
  failed: "failed: ",
};

/**
 * Why a script (or one step of it) failed; `toString()` is what the user sees.
 * `kind`: the host's error case (invalid-argument, not-found, already-exists,
 * denied, failed), "invalid" for a value the script rejected, "script" for
 * the script's own reason.
 */
export class OvsRunError extends Error {
  constructor(message, kind = "script") {
    super(message);
    this.name = "OvsRunError";
    this.kind = kind;
  }
  static invalid(message) {
    return new OvsRunError(message, "invalid");
  }
  get isNotFound() {
    return this.kind === "not-found";
  }
  get isAlreadyExists() {
    return this.kind === "already-exists";
  }
  get isDenied() {
    return this.kind === "denied";
  }
  /** The same error with `what: ` in front of its message. */
  context(what) {
    return new OvsRunError(`${what}: ${this.message}`, this.kind);
  }
  toString() {
    return (HOST_PREFIX[this.kind] ?? "") + this.message;
  }
}

/** Call a capability; the host's error variant becomes an OvsRunError. */
function call(f, ...args) {
  try {
    return f(...args);
  } catch (e) {
    const p = e && e.payload;
    if (p && p.tag in HOST_PREFIX) throw new OvsRunError(p.val, p.tag);
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Network values, checked in the script with the host's rules

const utf8Length = (s) => unescape(encodeURIComponent(s)).length;

/** Long values are cut in messages (64 bytes, then `...`). */
export function shorten(s) {
  if (utf8Length(s) <= 64) return s;
  let out = "";
  for (const c of s) {
    if (utf8Length(out + c) > 64) break;
    out += c;
  }
  return out + "...";
}

/** Rust's u16/u32 parsing: ASCII digits with an optional leading '+'. */
function number(s, top) {
  const digits = s.startsWith("+") ? s.slice(1) : s;
  if (!/^[0-9]+$/.test(digits)) return null;
  const v = Number(digits);
  return v <= top ? v : null;
}

function parseIPv4(s) {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const octets = [];
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === "0") || Number(p) > 255) return null;
    octets.push(Number(p));
  }
  return octets;
}

function parseIPv6(s) {
  let groups = [];
  let tail = s;
  // An IPv4 address may end it (::ffff:10.0.0.1).
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = s.slice(0, lastColon + 1) + "0:0";
    groups = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
  }
  const halves = tail.split("::");
  if (halves.length > 2) return null;
  const part = (h) => (h === "" ? [] : h.split(":"));
  const head = part(halves[0]);
  const rest = halves.length === 2 ? part(halves[1]) : [];
  const all = [...head, ...rest];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const missing = 8 - all.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const out = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest].map((g) => parseInt(g, 16));
  if (groups.length) out.splice(6, 2, ...groups);
  return out;
}

/** An IPv4 or IPv6 address, kept as its numeric value and shown as Rust shows it. */
export class IpAddr {
  constructor(version, value) {
    this.version = version; // 4 or 6
    this.value = value; // BigInt
  }
  static tryParse(s) {
    const v4 = parseIPv4(s);
    if (v4) return new IpAddr(4, v4.reduce((acc, o) => (acc << 8n) | BigInt(o), 0n));
    const v6 = parseIPv6(s);
    if (v6) return new IpAddr(6, v6.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n));
    return null;
  }
  get isIpv4() {
    return this.version === 4;
  }
  toString() {
    if (this.isIpv4) return [24n, 16n, 8n, 0n].map((sh) => (this.value >> sh) & 255n).join(".");
    const g = [];
    for (let i = 7; i >= 0; i--) g.push(Number((this.value >> BigInt(i * 16)) & 0xffffn));
    if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
      return `::ffff:${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
    }
    // RFC 5952: the longest run (two or more) of zero groups becomes "::".
    let best = -1, bestLen = 1;
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen) [best, bestLen] = [i, j - i];
      i = j > i ? j : i + 1;
    }
    const hex = (a) => a.map((x) => x.toString(16)).join(":");
    if (best < 0) return hex(g);
    return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
  }
}

/** An address with its prefix length (10.1.0.2/24). */
export class Cidr {
  constructor(addr, prefix) {
    this.addr = addr;
    this.prefix = prefix;
  }
  get isIpv4() {
    return this.addr.isIpv4;
  }
  get bits() {
    return this.isIpv4 ? 32 : 128;
  }
  get mask() {
    const all = (1n << BigInt(this.bits)) - 1n;
    return all ^ ((1n << BigInt(this.bits - this.prefix)) - 1n);
  }
  get network() {
    return new Cidr(new IpAddr(this.addr.version, this.addr.value & this.mask), this.prefix);
  }
  contains(ip) {
    return ip.version === this.addr.version && (ip.value & this.mask) === (this.addr.value & this.mask);
  }
  /** The subnet's n-th host address with this prefix (10.1.0.0/24 -> host(1) is 10.1.0.1/24). */
  host(n) {
    const size = 1n << BigInt(this.bits - this.prefix);
    const end = this.isIpv4 ? size - 1n : size;
    const k = BigInt(n);
    if (k <= 0n || k >= end) throw OvsRunError.invalid(`${this.network} has no host address number ${n}`);
    return new Cidr(new IpAddr(this.addr.version, (this.addr.value & this.mask) | k), this.prefix);
  }
  toString() {
    return `${this.addr}/${this.prefix}`;
  }
}

/** Parsers for `Arg.parse` and `Args.opt`: each returns the value or throws OvsRunError. */
export const parse = {
  /** A Linux interface name: 1-15 bytes, no '/', ':', space or control character. */
  ifname(s) {
    const shown = shorten(s);
    if (s === "") throw OvsRunError.invalid("interface name is empty");
    const len = utf8Length(s);
    if (len > 15) throw OvsRunError.invalid(`interface name '${shown}' is ${len} bytes long; the limit is 15`);
    if (s === "." || s === "..") throw OvsRunError.invalid(`interface name '${s}' is reserved`);
    for (const c of s) {
      if (c === "/" || c === ":" || /^[\s\p{Cc}]$/u.test(c)) {
        const shownChar = JSON.stringify(c).slice(1, -1).replace(/'/g, "\\'");
        throw OvsRunError.invalid(`interface name '${shown}' contains '${shownChar}', which Linux does not allow`);
      }
    }
    return s;
  },
  /** A Docker container name or (abbreviated) id; a leading '/' is dropped. */
  containerName(s) {
    const name = s.startsWith("/") ? s.slice(1) : s;
    if (name.length > 0 && name.length <= 128 && /^[A-Za-z0-9_.-]+$/.test(name)) return name;
    throw OvsRunError.invalid(`container '${shorten(s)}' is not a valid container name or id`);
  },
  /** An IPv4 or IPv6 address (an IpAddr). */
  ip(s) {
    const ip = IpAddr.tryParse(s);
    // Rust's std::net::IpAddr says this; the argument layer adds the value.
    if (!ip) throw OvsRunError.invalid("invalid IP address syntax");
    return ip;
  },
  /** An address with a prefix length (a Cidr). */
  cidr(s) {
    const shown = shorten(s);
    const slash = s.indexOf("/");
    if (slash < 0) throw OvsRunError.invalid(`address '${shown}' has no prefix length (expected e.g. 10.1.0.2/24)`);
    const [a, p] = [s.slice(0, slash), s.slice(slash + 1)];
    const addr = IpAddr.tryParse(a);
    if (!addr) throw OvsRunError.invalid(`'${shown}' is not a valid CIDR: '${shorten(a)}' is not an IP address`);
    const top = addr.isIpv4 ? 32 : 128;
    const prefix = number(p, 255);
    if (prefix === null || prefix > top) {
      throw OvsRunError.invalid(`'${shown}' is not a valid CIDR: prefix length '${shorten(p)}' must be 0-${top}`);
    }
    return new Cidr(addr, prefix);
  },
  /** A unicast MAC address, returned in the usual lower-case form. */
  mac(s) {
    const shown = shorten(s);
    const parts = s.split(":");
    if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
      throw OvsRunError.invalid(`MAC address '${shown}' is not six hex octets separated by ':' (e.g. 02:42:ac:11:00:02)`);
    }
    const octets = parts.map((p) => parseInt(p, 16));
    if (octets[0] & 1) throw OvsRunError.invalid(`MAC address '${shown}' is a multicast address; an interface needs a unicast one`);
    if (octets.every((o) => o === 0)) throw OvsRunError.invalid(`MAC address '${shown}' is all zeros`);
    return octets.map((o) => o.toString(16).padStart(2, "0")).join(":");
  },
  /** An MTU, 68-65535. */
  mtu(s) {
    const v = number(s, 0xffffffff);
    if (v === null) throw OvsRunError.invalid(`MTU '${shorten(s)}' is not a number 68-65535`);
    if (v < 68 || v > 65535) throw OvsRunError.invalid(`MTU '${s}' is out of range 68-65535`);
    return v;
  },
  /** An access VLAN id, 1-4094. */
  vlan(s) {
    const v = number(s, 0xffff);
    if (v === null) throw OvsRunError.invalid(`VLAN id '${shorten(s)}' is not a number 1-4094`);
    if (v < 1 || v > 4094) throw OvsRunError.invalid(`VLAN id '${s}' is out of range 1-4094`);
    return v;
  },
};

// ---------------------------------------------------------------------------
// Command lines: ovs-docker style, as the Rust SDK's Args

function invalidValue(name, value, e) {
  const message = e instanceof OvsRunError ? e.message : String(e && e.message !== undefined ? e.message : e);
  const shown = shorten(value);
  if (value !== "" && message.includes(`'${shown}'`)) return OvsRunError.invalid(`${name}: ${message}`);
  return OvsRunError.invalid(`${name}: '${shown}': ${message}`);
}

/** One positional argument with its name from the usage (BRIDGE). */
export class Arg {
  constructor(name, value) {
    this.name = name;
    this.value = value;
  }
  /** `parser(value)` (parse.ifname, parse.cidr...); errors name the argument. */
  parse(parser) {
    try {
      return parser(this.value);
    } catch (e) {
      throw invalidValue(this.name, this.value, e);
    }
  }
  toString() {
    return this.value;
  }
}

/** Positional arguments plus --key=value / --key value options from a fixed list. */
export class Args {
  constructor(usage, options) {
    this.usage = usage;
    this.options = options;
    this.positional = [];
    this.given = new Map();
  }
  /** The parsed command line, or null when --help/-h was asked for. */
  static parse(raw, usage, options) {
    const end = raw.indexOf("--");
    const before = end < 0 ? raw : raw.slice(0, end);
    if (before.includes("--help") || before.includes("-h")) return null;
    const args = new Args(usage, options);
    for (let i = 0; i < raw.length; i++) {
      const arg = raw[i];
      if (arg === "--") {
        args.positional.push(...raw.slice(i + 1));
        break;
      }
      if (!arg.startsWith("--")) {
        args.positional.push(arg);
        continue;
      }
      const eq = arg.indexOf("=");
      const key = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      if (!options.includes(key)) throw args.usageError(`unknown option --${shorten(key)}`);
      let value;
      if (eq >= 0) {
        value = arg.slice(eq + 1);
      } else {
        value = raw[i + 1];
        // `--key value`, but not `--key --other`: that is a forgotten value.
        if (value === undefined || value.startsWith("--")) throw args.usageError(`option --${key} needs a value`);
        i++;
      }
      if (args.given.has(key)) throw args.usageError(`option --${key} given twice`);
      args.given.set(key, value);
    }
    return args;
  }
  /** An invalid-argument error that points at the usage line. */
  usageError(message) {
    const line = this.usage.split("\n").find((l) => l.trim() !== "");
    return OvsRunError.invalid(line ? `${message} (${line.trim()}; see --help)` : String(message));
  }
  /** Exactly names.length positional arguments: `const [bridge, port] = args.exact("BRIDGE", "PORT")`. */
  exact(...names) {
    const n = this.positional.length;
    if (n < names.length) throw this.usageError(`missing argument ${names[n]}`);
    if (n > names.length) throw this.usageError(`unexpected argument '${shorten(this.positional[names.length])}'`);
    return names.map((name, i) => new Arg(name, this.positional[i]));
  }
  /** The raw value of option `key`, or undefined. Asking for an undeclared option is a bug. */
  get(key) {
    if (!this.options.includes(key)) throw new Error(`option --${key} is not in this script's option list`);
    return this.given.get(key);
  }
  /** Option `key` parsed with `parser`, or null when not given. */
  opt(key, parser) {
    const value = this.get(key);
    return value === undefined ? null : new Arg(`--${key}`, value).parse(parser);
  }
  /** Option `key`, or `fallback` (a string), parsed with `parser`. */
  optOr(key, fallback, parser) {
    const value = this.get(key);
    return new Arg(`--${key}`, value === undefined ? fallback : value).parse(parser);
  }
}

// ---------------------------------------------------------------------------
// Targets and capabilities

/** Where a network operation happens: Target.host(), Target.container("web"), Target.netns("ns1"). */
export class Target {
  constructor(wit, text) {
    this.wit = wit;
    this.text = text;
  }
  static host() {
    return new Target({ tag: "host" }, "host");
  }
  static container(name) {
    return new Target({ tag: "container", val: String(name) }, `container ${name}`);
  }
  static netns(name) {
    return new Target({ tag: "netns", val: String(name) }, `netns ${name}`);
  }
  toString() {
    return this.text;
  }
}

const optStr = (v) => (v === null || v === undefined ? null : String(v));

/** Open vSwitch bridges. `create` returns true when it created the bridge. */
export const bridges = {
  create: (name, datapath = "host-default", mayExist = true) =>
    call(witBridges.createBridge, String(name), datapath, mayExist),
  delete: (name, ifExists = true) => call(witBridges.deleteBridge, String(name), ifExists),
  list: () => call(witBridges.listBridges),
};

/** Ports on bridges; `add` options: { mtu, mac, vlan, trunks, ifaceId }. */
export const ports = {
  add: (bridge, target, ifname, { mtu = null, mac = null, vlan = null, trunks = [], ifaceId = null } = {}) =>
    call(witPorts.addPort, String(bridge), target.wit, String(ifname),
      { mtu, mac: optStr(mac), vlan, trunks, ifaceId: optStr(ifaceId) }),
  /** `add` that also gives the inner end `addresses` (CIDRs) and a default route via
   *  `gateway`, set while the veth is made: one call and one OVS transaction where add,
   *  setAddress and routes.add are three. All or none; the policy judges each address
   *  and the route as if set on their own. Returns the port's info. */
  attach: (bridge, target, ifname,
    { mtu = null, mac = null, vlan = null, trunks = [], ifaceId = null, addresses = [], gateway = null } = {}) => {
    const port = { target: target.wit, ifname: String(ifname),
      options: { mtu, mac: optStr(mac), vlan, trunks, ifaceId: optStr(ifaceId) } };
    const found = call(witPorts.attachPorts, String(bridge),
      [{ port, addresses: addresses.map(String), gateway: optStr(gateway) }]);
    if (found.length !== 1) throw new OvsRunError(`attach-ports answered ${found.length} ports for 1 request`);
    return found[0];
  },
  delete: (bridge, target, ifname) => call(witPorts.delPort, String(bridge), target.wit, String(ifname)),
  deleteAll: (bridge, container) => call(witPorts.delPorts, String(bridge), String(container)),
  setVlan: (bridge, target, ifname, vlan) => call(witPorts.setVlan, String(bridge), target.wit, String(ifname), vlan),
  list: (bridge) => call(witPorts.listPorts, String(bridge)),
  /** `bridge`'s inner MTU ({ mtu, reason }): what a port needs so its frames still fit
   *  the underlay once encapsulated; null: the bridge has no overlay. */
  innerMtu: (bridge) => call(witPorts.innerMtu, String(bridge)) ?? null,
  /** The MTU for a new port on `bridge`: `given` when the user gave one, else the
   *  bridge's inner MTU, else null (no overlay: the kernel's default). Says which at
   *  info level (`ovs-run -v`), as the Rust SDK's `ports::mtu_for`. */
  mtuFor: (bridge, given = null) => {
    if (given != null) {
      info(`MTU ${given}, as given`);
      return given;
    }
    const found = ports.innerMtu(bridge);
    if (found == null) {
      info(`bridge ${bridge} has no overlay: MTU left at the kernel's default`);
      return null;
    }
    info(`MTU ${found.mtu}, bridge ${bridge}'s inner MTU: ${found.reason}`);
    return found.mtu;
  },
};

/** Links and their addresses inside a target. */
export const links = {
  setAddress: (target, ifname, cidr) => call(witLinks.setAddress, target.wit, String(ifname), String(cidr)),
  delAddress: (target, ifname, cidr) => call(witLinks.delAddress, target.wit, String(ifname), String(cidr)),
  setMtu: (target, ifname, mtu) => call(witLinks.setMtu, target.wit, String(ifname), mtu),
  setMac: (target, ifname, mac) => call(witLinks.setMac, target.wit, String(ifname), String(mac)),
  setUp: (target, ifname) => call(witLinks.setLinkUp, target.wit, String(ifname)),
  setDown: (target, ifname) => call(witLinks.setLinkDown, target.wit, String(ifname)),
  list: (target, ifname = null) => call(witLinks.listLinks, target.wit, optStr(ifname)),
};

/** Routes in a target's main table; a route is { destination, via, dev } (none: the default route). */
export const routes = {
  add: (target, { destination = null, via = null, dev = null } = {}) =>
    call(witRoutes.setRoute, target.wit, { destination: optStr(destination), via: optStr(via), device: optStr(dev) }),
  delete: (target, { destination = null, via = null, dev = null } = {}) =>
    call(witRoutes.delRoute, target.wit, { destination: optStr(destination), via: optStr(via), device: optStr(dev) }),
  list: (target) => call(witRoutes.listRoutes, target.wit),
};

/** Docker containers. */
export const containers = {
  lookup: (name) => call(witContainers.lookup, String(name)),
  listByLabel: (labels) =>
    call(witContainers.listByLabel, Object.entries(labels).map(([key, value]) => ({ key, value }))),
};

/**
 * ICMP echo from inside a target, and TCP data from one target to a listener
 * in another; `pingText` and `transferText` format the stats as the Rust SDK does.
 */
export const diagnostics = {
  ping: (target, address, count = 3, timeoutMs = 1000) =>
    call(witDiagnostics.ping, target.wit, String(address), count, timeoutMs),
  tcpCheck: (client, server, serverAddress, bytes = 1 << 20, timeoutMs = 10000) =>
    call(witDiagnostics.tcpCheck, client.wit, server.wit, String(serverAddress), Number(bytes), timeoutMs),
  transferText(stats) {
    const [sent, received, us] = [Number(stats.sent), Number(stats.received), Number(stats.elapsedUs)];
    const ms = (us / 1000).toFixed(1);
    if (received === sent) {
      return `${received} bytes in ${ms} ms (${((received * 8) / Math.max(us, 1)).toFixed(0)} Mbit/s)`;
    }
    return `${received} of ${sent} bytes arrived in ${ms} ms`;
  },
  pingText(stats) {
    let s = `${stats.sent} sent, ${stats.received} received`;
    if (stats.received > 0) {
      const ms = [stats.rttMinUs, stats.rttAvgUs, stats.rttMaxUs].map((us) => (Number(us) / 1000).toFixed(3));
      s += `, rtt min/avg/max ${ms.join("/")} ms`;
    }
    return s;
  },
};

export const trace = (message) => witLog.log("trace", String(message));
export const debug = (message) => witLog.log("debug", String(message));
export const info = (message) => witLog.log("info", String(message));
export const warn = (message) => witLog.log("warn", String(message));
export const error = (message) => witLog.log("error", String(message));

/** Write a line to the user's stdout (QuickJS has no console). */
export function print(text) {
  const bytes = unescape(encodeURIComponent(`${text}\n`));
  const buf = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buf[i] = bytes.charCodeAt(i);
  const out = stdout.getStdout();
  // blocking-write-and-flush takes at most 4096 bytes at a time.
  for (let i = 0; i < buf.length; i += 4096) out.blockingWriteAndFlush(buf.subarray(i, i + 4096));
}

// ---------------------------------------------------------------------------
// The export

/**
 * Make `main(args)` the script's `run` export: `export const run = script(main, { usage, options })`.
 * An OvsRunError from `main` is reported as is, any other exception as
 * `TypeName: text`; both make the run fail with exit status 1.
 */
export function script(main, { usage, options = [] }) {
  return function run(raw) {
    try {
      const args = Args.parse([...raw], usage, options);
      if (args === null) {
        print(usage.trimEnd());
        return;
      }
      main(args);
    } catch (e) {
      if (e instanceof OvsRunError) throw e.toString();
      if (e instanceof Error) throw `${e.name}: ${e.message}`;
      throw String(e);
    }
  };
}
