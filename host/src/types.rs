//! Validated network values: every string that crosses into ovs-run (from a
//! script, the CLI or a config file) is parsed into one of these exactly once,
//! and a parse error names the offending value.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CapError;

/// A Linux interface name: 1-15 bytes of printable ASCII, no '/' or ':', not "." or "..".
/// Bridge and OVS port names follow the same rule because each bridge owns an
/// internal interface of the same name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

/// Kernel limit: IFNAMSIZ (16) including the trailing NUL.
pub const IFNAME_MAX: usize = 15;

impl IfName {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let shown = shorten(s);
        if s.is_empty() {
            return Err(CapError::invalid("interface name is empty"));
        }
        if s.len() > IFNAME_MAX {
            return Err(CapError::invalid(format!(
                "interface name '{shown}' is {} bytes long; the limit is {IFNAME_MAX}",
                s.len()
            )));
        }
        if s == "." || s == ".." {
            return Err(CapError::invalid(format!("interface name '{s}' is reserved")));
        }
        // Printable ASCII only: Linux takes any byte but '/', ':' and
        // whitespace, but a zero-width or look-alike character makes two
        // names that read the same, in a policy or an audit log.
        if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic() || matches!(c, '/' | ':')) {
            // ASCII in the words every SDK uses; anything else with its code
            // point, and the name escaped (an invisible character shows).
            let msg = if c.is_ascii() {
                format!("interface name '{}' contains {c:?}, which Linux does not allow", shorten(s))
            } else {
                let shown = shorten(&s.escape_debug().to_string());
                format!(
                    "interface name '{shown}' contains {c:?} (U+{:04X}), which is not printable ASCII",
                    u32::from(c)
                )
            };
            return Err(CapError::invalid(msg));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IfName {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An interface address with its prefix length, e.g. `10.1.0.2/24` or `fd00::2/64`.
/// The host bits are kept: this is an address on a link, not a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let shown = shorten(s);
        let (a, p) = s.split_once('/').ok_or_else(|| {
            CapError::invalid(format!("address '{shown}' has no prefix length (expected e.g. 10.1.0.2/24)"))
        })?;
        let addr = parse_ip(a).map_err(|_| {
            CapError::invalid(format!("'{shown}' is not a valid CIDR: '{}' is not an IP address", shorten(a)))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            CapError::invalid(format!(
                "'{shown}' is not a valid CIDR: prefix length '{}' must be 0-{max}",
                shorten(p)
            ))
        })?;
        Ok(Self { addr, prefix })
    }

    /// The network this address belongs to (host bits cleared).
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr { addr, prefix: self.prefix }
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && Cidr { addr: ip, prefix: self.prefix }.network() == self.network()
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl FromStr for Cidr {
    type Err = CapError;
    fn from_str(s: &str) -> Result<Self, CapError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Cidr {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parse a bare IP address, naming it in the error.
pub fn parse_ip(s: &str) -> Result<IpAddr, CapError> {
    s.parse::<IpAddr>().map_err(|_| CapError::invalid(format!("'{}' is not a valid IP address", shorten(s))))
}

/// A unicast Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let shown = shorten(s);
        let bad = || {
            CapError::invalid(format!(
                "MAC address '{shown}' is not six hex octets separated by ':' (e.g. 02:42:ac:11:00:02)"
            ))
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            b[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if b[0] & 1 == 1 {
            return Err(CapError::invalid(format!(
                "MAC address '{shown}' is a multicast address; an interface needs a unicast one"
            )));
        }
        if b == [0; 6] {
            return Err(CapError::invalid(format!("MAC address '{shown}' is all zeros")));
        }
        Ok(Self(b))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// An 802.1Q VLAN id, 1-4094 (0 and 4095 are reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(v: u16) -> Result<Self, CapError> {
        if (1..=4094).contains(&v) {
            Ok(Self(v))
        } else {
            Err(CapError::invalid(format!("VLAN id {v} is out of range 1-4094")))
        }
    }

    pub fn parse(s: &str) -> Result<Self, CapError> {
        let v: u16 = s
            .parse()
            .map_err(|_| CapError::invalid(format!("VLAN id '{}' is not a number 1-4094", shorten(s))))?;
        Self::new(v)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for VlanId {
    type Error = CapError;
    fn try_from(v: u16) -> Result<Self, CapError> {
        Self::new(v)
    }
}

impl From<VlanId> for u16 {
    fn from(v: VlanId) -> u16 {
        v.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A link MTU: 68 (the IPv4 minimum) to 65535 (the kernel maximum for veth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Mtu(u32);

impl Mtu {
    pub const MIN: u32 = 68;
    pub const MAX: u32 = 65535;

    pub fn new(v: u32) -> Result<Self, CapError> {
        if (Self::MIN..=Self::MAX).contains(&v) {
            Ok(Self(v))
        } else {
            Err(CapError::invalid(format!("MTU {v} is out of range {}-{}", Self::MIN, Self::MAX)))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Mtu {
    type Error = CapError;
    fn try_from(v: u32) -> Result<Self, CapError> {
        Self::new(v)
    }
}

impl From<Mtu> for u32 {
    fn from(m: Mtu) -> u32 {
        m.0
    }
}

impl fmt::Display for Mtu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A container reference as a user typed it: a name or a (possibly short) id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerRef(String);

impl ContainerRef {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let s2 = s.strip_prefix('/').unwrap_or(s);
        let ok = !s2.is_empty()
            && s2.len() <= 128
            && s2.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Self(s2.to_string()))
        } else {
            Err(CapError::invalid(format!("container '{}' is not a valid container name or id", shorten(s))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContainerRef {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<ContainerRef> for String {
    fn from(c: ContainerRef) -> String {
        c.0
    }
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A named network namespace (`ip netns add NAME`), found under /run/netns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetnsName(String);

impl NetnsName {
    pub fn parse(s: &str) -> Result<Self, CapError> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s != "."
            && s != ".."
            && !s.contains('/')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(CapError::invalid(format!("network namespace name '{}' is not valid", shorten(s))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NetnsName {
    type Error = CapError;
    fn try_from(s: String) -> Result<Self, CapError> {
        Self::parse(&s)
    }
}

impl From<NetnsName> for String {
    fn from(n: NetnsName) -> String {
        n.0
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an operation happens, as the script asked for it (before lookup).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum TargetRef {
    Host,
    Container(ContainerRef),
    Netns(NetnsName),
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRef::Host => f.write_str("host"),
            TargetRef::Container(c) => write!(f, "container {c}"),
            TargetRef::Netns(n) => write!(f, "netns {n}"),
        }
    }
}

/// A Docker container as looked up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// Full 64-hex-digit id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Pid of the init process; 0 when not running.
    pub pid: u32,
    pub running: bool,
    pub labels: Vec<(String, String)>,
}

/// Where an operation happens, resolved: containers carry their id and pid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Target {
    Host,
    Netns {
        name: NetnsName,
    },
    Container {
        /// What the script called it (kept for ovs-docker compatible external ids).
        given: ContainerRef,
        id: String,
        name: String,
        pid: u32,
        /// The container's labels, for the policy (not part of its identity).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<(String, String)>,
    },
}

impl Target {
    /// A stable key naming the namespace (for models and caches).
    pub fn key(&self) -> String {
        match self {
            Target::Host => "host".into(),
            Target::Netns { name } => format!("netns:{name}"),
            Target::Container { id, .. } => format!("container:{id}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host => f.write_str("host"),
            Target::Netns { name } => write!(f, "netns {name}"),
            Target::Container { name, id, .. } => {
                write!(f, "container {name} ({})", &id[..id.len().min(12)])
            }
        }
    }
}

/// The datapath a bridge uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Datapath {
    System,
    Netdev,
}

impl Datapath {
    pub fn as_ovsdb(self) -> &'static str {
        match self {
            Datapath::System => "system",
            Datapath::Netdev => "netdev",
        }
    }

    /// The kernel datapath when the openvswitch module is loaded, else userspace.
    pub fn host_default() -> Self {
        if std::path::Path::new("/sys/module/openvswitch").exists() {
            Datapath::System
        } else {
            Datapath::Netdev
        }
    }
}

impl FromStr for Datapath {
    type Err = CapError;
    fn from_str(s: &str) -> Result<Self, CapError> {
        match s {
            "system" => Ok(Datapath::System),
            "netdev" => Ok(Datapath::Netdev),
            _ => Err(CapError::invalid(format!("datapath '{}' is not 'system' or 'netdev'", shorten(s)))),
        }
    }
}

impl fmt::Display for Datapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ovsdb())
    }
}

/// A link offload a script can turn on and off (`ethtool -K` by another name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offload {
    /// TX checksum offload (`ethtool -K DEV tx on|off`).
    TxChecksum,
}

impl fmt::Display for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Offload::TxChecksum => "tx-checksum",
        })
    }
}

/// Whether a bridge's `datapath_type` (as OVSDB holds it) is ovs-vswitchd's
/// userspace datapath: "netdev", or "dummy" (its test double).
pub fn is_userspace_datapath(datapath_type: &str) -> bool {
    matches!(datapath_type, "netdev" | "dummy")
}

/// A route: no destination means the default route of the destination's family.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteSpec {
    pub destination: Option<Cidr>,
    pub via: Option<IpAddr>,
    pub device: Option<IfName>,
}

impl RouteSpec {
    pub fn validate(&self) -> Result<(), CapError> {
        if self.via.is_none() && self.device.is_none() {
            return Err(CapError::invalid("a route needs a gateway ('via'), a device, or both"));
        }
        if let (Some(d), Some(v)) = (&self.destination, &self.via) {
            if d.is_ipv4() != v.is_ipv4() {
                return Err(CapError::invalid(format!("route to {d} via {v} mixes IPv4 and IPv6")));
            }
        }
        Ok(())
    }

    /// True for IPv4 routes (a default route takes its family from the gateway).
    pub fn is_ipv4(&self) -> bool {
        match (&self.destination, &self.via) {
            (Some(d), _) => d.is_ipv4(),
            (None, Some(v)) => v.is_ipv4(),
            (None, None) => true,
        }
    }

    /// Whether an existing route `self` is the route `want` asks for: same
    /// destination, and the next hop and device match where `want` names them.
    pub fn satisfies(&self, want: &RouteSpec) -> bool {
        self.normalized_destination() == want.normalized_destination()
            && (want.via.is_none() || self.via == want.via)
            && (want.device.is_none() || self.device == want.device)
    }

    /// The destination as stored by the kernel (network address, default as 0/0).
    pub fn normalized_destination(&self) -> Cidr {
        match self.destination {
            Some(d) => d.network(),
            None if self.is_ipv4() => Cidr { addr: IpAddr::V4(0.into()), prefix: 0 },
            None => Cidr { addr: IpAddr::V6(0u128.into()), prefix: 0 },
        }
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.destination {
            Some(d) if d.prefix != 0 => write!(f, "{}", d.network())?,
            _ => f.write_str("default")?,
        }
        if let Some(v) = &self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.device {
            write!(f, " dev {d}")?;
        }
        Ok(())
    }
}

/// Cut a hostile string (a 10 MiB "interface name") down for an error message.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        s.to_string()
    } else {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_limits() {
        assert!(IfName::parse("eth0").is_ok());
        assert!(IfName::parse("a23456789012345").is_ok());
        let e = IfName::parse("a234567890123456").unwrap_err().to_string();
        assert!(e.contains("a234567890123456") && e.contains("15"), "{e}");
        assert!(IfName::parse("").is_err());
        assert!(IfName::parse("a/b").is_err());
        assert!(IfName::parse("a b").is_err());
        assert!(IfName::parse("..").is_err());
        // A zero-width space (or any non-ASCII) is refused, and named.
        let e = IfName::parse("br\u{200b}0").unwrap_err().to_string();
        assert!(e.contains("U+200B") && e.contains("printable ASCII"), "{e}");
        assert!(IfName::parse("br-é").is_err() && IfName::parse("a\u{7f}").is_err());
    }

    #[test]
    fn cidr_parse_and_errors() {
        let c = Cidr::parse("10.1.0.2/24").unwrap();
        assert_eq!(c.to_string(), "10.1.0.2/24");
        assert_eq!(c.network().to_string(), "10.1.0.0/24");
        assert!(c.contains("10.1.0.200".parse().unwrap()));
        assert!(!c.contains("10.1.1.1".parse().unwrap()));
        let e = Cidr::parse("10.1.0.300/24").unwrap_err().to_string();
        assert!(e.contains("10.1.0.300"), "{e}");
        assert!(Cidr::parse("10.1.0.3/33").unwrap_err().to_string().contains("33"));
        assert!(Cidr::parse("10.1.0.3").is_err());
        assert_eq!(Cidr::parse("fd00::2/64").unwrap().network().to_string(), "fd00::/64");
    }

    #[test]
    fn mac_parse() {
        assert_eq!(MacAddr::parse("02:42:AC:11:00:02").unwrap().to_string(), "02:42:ac:11:00:02");
        assert!(MacAddr::parse("01:00:5e:00:00:01").is_err());
        assert!(MacAddr::parse("00:00:00:00:00:00").is_err());
        assert!(MacAddr::parse("02:42:ac:11:00").is_err());
        assert!(MacAddr::parse("02:42:ac:11:00:zz").is_err());
    }

    #[test]
    fn vlan_mtu_ranges() {
        assert!(VlanId::new(0).is_err());
        assert!(VlanId::new(4095).is_err());
        assert!(VlanId::new(100).is_ok());
        assert!(Mtu::new(70000).unwrap_err().to_string().contains("70000"));
        assert!(Mtu::new(1450).is_ok());
    }

    #[test]
    fn shorten_huge() {
        let s = "x".repeat(10 << 20);
        let e = IfName::parse(&s).unwrap_err().to_string();
        assert!(e.len() < 200, "{}", e.len());
    }
}

/// 10,000 random inputs per parser: errors are fine, panics are not, and
/// whatever parses prints back to something that parses to the same value.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = IfName::parse(&s);
            let _ = ContainerRef::parse(&s);
            let _ = NetnsName::parse(&s);
            let _ = VlanId::parse(&s);
            let _ = s.parse::<Datapath>();
            if let Ok(c) = Cidr::parse(&s) {
                prop_assert_eq!(Cidr::parse(&c.to_string()).unwrap(), c);
            }
            if let Ok(m) = MacAddr::parse(&s) {
                prop_assert_eq!(MacAddr::parse(&m.to_string()).unwrap(), m);
            }
        }

        #[test]
        fn cidr_like_strings(a in any::<[u8; 4]>(), p in 0u8..40, v6 in any::<u128>()) {
            let s = format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3]);
            prop_assert_eq!(Cidr::parse(&s).is_ok(), p <= 32);
            let s6 = format!("{}/{}", std::net::Ipv6Addr::from(v6), p * 3);
            prop_assert_eq!(Cidr::parse(&s6).is_ok(), p * 3 <= 128);
        }

        #[test]
        fn mac_like_strings(b in any::<[u8; 6]>()) {
            let s = format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
            prop_assert_eq!(MacAddr::parse(&s).is_ok(), b[0] & 1 == 0 && b != [0; 6]);
        }

        #[test]
        fn vlan_and_mtu_ranges(v in any::<u16>(), m in any::<u32>()) {
            prop_assert_eq!(VlanId::new(v).is_ok(), (1..=4094).contains(&v));
            prop_assert_eq!(Mtu::new(m).is_ok(), (68..=65535).contains(&m));
        }
    }
}
