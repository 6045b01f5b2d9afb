//! Typed network values, checked in the script before anything is sent to the
//! host: a bad argument fails early, with a message that names it, and before
//! any change is made. The rules match the host's, so both agree on what is valid.
//!
//! Every type implements `FromStr` (error: [`Error::Invalid`]) and `Display`
//! in the notation the WIT contract uses.

use std::fmt;
use std::str::FromStr;

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Error;

/// Long values are cut in messages so a hostile argument cannot flood the log.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Parses a bare IPv4 or IPv6 address, naming it in the error.
pub fn parse_ip(s: &str) -> Result<IpAddr, Error> {
    s.parse().map_err(|_| Error::invalid(format!("'{}' is not a valid IP address", shorten(s))))
}

/// A Linux interface name (also used for bridges and OVS ports): 1-15 bytes
/// of printable ASCII, no '/' or ':', not "." or "..".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);

impl IfName {
    /// IFNAMSIZ (16) minus the trailing NUL.
    pub const MAX_LEN: usize = 15;

    pub fn parse(s: &str) -> Result<Self, Error> {
        let shown = shorten(s);
        if s.is_empty() {
            return Err(Error::invalid("interface name is empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(Error::invalid(format!(
                "interface name '{shown}' is {} bytes long; the limit is {}",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if s == "." || s == ".." {
            return Err(Error::invalid(format!("interface name '{s}' is reserved")));
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
            return Err(Error::invalid(msg));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Docker container name or (abbreviated) id, as Docker accepts it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        // Docker shows names with a leading '/'; accept that spelling too.
        let name = s.strip_prefix('/').unwrap_or(s);
        let ok = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(Error::invalid(format!("container '{}' is not a valid container name or id", shorten(s))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An interface address with its prefix length: `10.1.0.2/24`, `fd00::2/64`.
/// Host bits are kept (this is an address on a link); see [`Cidr::network`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Builds a CIDR, checking the prefix length against the address family.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Error::invalid(format!("prefix length {prefix} of {addr} must be 0-{max}")));
        }
        Ok(Self { addr, prefix })
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let shown = shorten(s);
        let (a, p) = s.split_once('/').ok_or_else(|| {
            Error::invalid(format!("address '{shown}' has no prefix length (expected e.g. 10.1.0.2/24)"))
        })?;
        let addr: IpAddr = a.parse().map_err(|_| {
            Error::invalid(format!("'{shown}' is not a valid CIDR: '{}' is not an IP address", shorten(a)))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
            Error::invalid(format!(
                "'{shown}' is not a valid CIDR: prefix length '{}' must be 0-{max}",
                shorten(p)
            ))
        })?;
        Ok(Self { addr, prefix })
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    fn bits(&self) -> u8 {
        if self.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn mask(&self) -> u128 {
        let host_bits = u32::from(self.bits() - self.prefix);
        u128::MAX.checked_shl(host_bits).unwrap_or(0)
    }

    fn bits_of(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn addr_from_bits(&self, bits: u128) -> IpAddr {
        match self.addr {
            // Only the low 32 bits are set for an IPv4 prefix: truncation is intended.
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(bits as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
        }
    }

    /// The network this address is on (host bits cleared), e.g. 10.1.0.0/24.
    pub fn network(&self) -> Cidr {
        let bits = Self::bits_of(self.addr) & self.mask();
        Cidr { addr: self.addr_from_bits(bits), prefix: self.prefix }
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4()
            && Self::bits_of(ip) & self.mask() == Self::bits_of(self.addr) & self.mask()
    }

    /// The `n`-th address of the network with this prefix length (`n = 1` is
    /// the first host address); errors when the prefix has no room for it.
    pub fn host(&self, n: u128) -> Result<Cidr, Error> {
        let host_bits = u32::from(self.bits() - self.prefix);
        // size == 0 stands for 2^128 (an IPv6 /0).
        let size = 1u128.checked_shl(host_bits).unwrap_or(0);
        // Address 0 is the network itself; an IPv4 network's last is broadcast.
        let end = if self.is_ipv4() { size - 1 } else { size };
        if n == 0 || (size != 0 && n >= end) {
            return Err(Error::invalid(format!("{} has no host address number {n}", self.network())));
        }
        let bits = (Self::bits_of(self.addr) & self.mask()) | n;
        Ok(Cidr { addr: self.addr_from_bits(bits), prefix: self.prefix })
    }
}

/// A unicast Ethernet address, written `02:42:ac:11:00:02`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let shown = shorten(s);
        let bad = || {
            Error::invalid(format!(
                "MAC address '{shown}' is not six hex octets separated by ':' (e.g. 02:42:ac:11:00:02)"
            ))
        };
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *octet = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        // The kernel refuses these on an interface; say why instead of EADDRNOTAVAIL.
        if octets[0] & 1 == 1 {
            return Err(Error::invalid(format!(
                "MAC address '{shown}' is a multicast address; an interface needs a unicast one"
            )));
        }
        if octets == [0; 6] {
            return Err(Error::invalid(format!("MAC address '{shown}' is all zeros")));
        }
        Ok(Self(octets))
    }
}

/// A link MTU: 68 (the IPv4 minimum) to 65535 (the kernel maximum for veth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mtu(u32);

impl Mtu {
    pub const MIN: u32 = 68;
    pub const MAX: u32 = 65535;

    pub fn new(v: u32) -> Result<Self, Error> {
        Self::checked(v).ok_or_else(|| Error::invalid(Self::range_message(&v.to_string())))
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let v: u32 = s.parse().map_err(|_| {
            Error::invalid(format!("MTU '{}' is not a number {}-{}", shorten(s), Self::MIN, Self::MAX))
        })?;
        Self::checked(v).ok_or_else(|| Error::invalid(Self::range_message(&format!("'{s}'"))))
    }

    fn checked(v: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&v).then_some(Self(v))
    }

    fn range_message(shown: &str) -> String {
        format!("MTU {shown} is out of range {}-{}", Self::MIN, Self::MAX)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// An 802.1Q VLAN id, 1-4094 (0 and 4095 are reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(v: u16) -> Result<Self, Error> {
        Self::checked(v).ok_or_else(|| Error::invalid(format!("VLAN id {v} is out of range 1-4094")))
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let v: u16 = s
            .parse()
            .map_err(|_| Error::invalid(format!("VLAN id '{}' is not a number 1-4094", shorten(s))))?;
        Self::checked(v).ok_or_else(|| Error::invalid(format!("VLAN id '{s}' is out of range 1-4094")))
    }

    fn checked(v: u16) -> Option<Self> {
        (1..=4094).contains(&v).then_some(Self(v))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// `FromStr`, `Display` and `AsRef<str>` in one place for each type above.
macro_rules! text_impls {
    ($($ty:ident),*) => {$(
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }
    )*};
}
text_impls!(IfName, ContainerName, Cidr, Mac, Mtu, VlanId);

macro_rules! str_impls {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
str_impls!(IfName, ContainerName);

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Display for Mtu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: fmt::Debug>(r: Result<T, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn cidr_parses_both_families_and_names_bad_values() {
        assert_eq!(Cidr::parse("10.1.0.2/24").unwrap().to_string(), "10.1.0.2/24");
        assert_eq!(Cidr::parse("fd00::2/64").unwrap().to_string(), "fd00::2/64");
        assert!(err(Cidr::parse("10.1.0.300/24")).contains("10.1.0.300/24"));
        assert!(err(Cidr::parse("10.1.0.3/33")).contains("0-32"));
        assert!(err(Cidr::parse("10.1.0.3")).contains("no prefix length"));
    }

    #[test]
    fn cidr_network_and_hosts() {
        let c = Cidr::parse("10.10.0.77/24").unwrap();
        assert_eq!(c.network().to_string(), "10.10.0.0/24");
        assert_eq!(c.host(1).unwrap().to_string(), "10.10.0.1/24");
        assert_eq!(c.host(254).unwrap().to_string(), "10.10.0.254/24");
        assert!(c.host(255).is_err(), "broadcast is not a host");
        assert!(Cidr::parse("10.0.0.0/32").unwrap().host(1).is_err());
        let v6 = Cidr::parse("fd00:9::/64").unwrap();
        assert_eq!(v6.host(2).unwrap().to_string(), "fd00:9::2/64");
        assert!(v6.contains("fd00:9::1234".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("::/0").unwrap().host(1).unwrap().to_string(), "::1/0");
    }

    #[test]
    fn mac_rules() {
        assert_eq!(Mac::parse("02:42:AC:11:0:2").unwrap().to_string(), "02:42:ac:11:00:02");
        assert!(err(Mac::parse("01:00:5e:00:00:01")).contains("multicast"));
        assert!(err(Mac::parse("00:00:00:00:00:00")).contains("zeros"));
        assert!(err(Mac::parse("02:42:ac:11:00")).contains("02:42:ac:11:00"));
        assert!(Mac::parse("02:42:ac:11:00:02:03").is_err());
        assert!(Mac::parse("02:42:ac:11:00:g2").is_err());
    }

    #[test]
    fn ifname_mtu_vlan_limits() {
        assert!(IfName::parse("eth0").is_ok());
        assert!(IfName::parse("a23456789012345").is_ok());
        let e = err(IfName::parse("a234567890123456"));
        assert!(e.contains("a234567890123456") && e.contains("15"), "{e}");
        assert!(IfName::parse("a/b").is_err() && IfName::parse("").is_err());
        let e = err(IfName::parse("br\u{200b}0"));
        assert!(e.contains("U+200B") && e.contains("printable ASCII"), "{e}");
        assert!(err(Mtu::parse("70000")).contains("'70000'"));
        assert!(Mtu::parse("67").is_err() && Mtu::parse("65535").is_ok());
        assert!(err(VlanId::parse("4095")).contains("'4095'"));
        assert!(VlanId::parse("0").is_err() && VlanId::parse("1").is_ok());
        assert!(ContainerName::parse("/web").unwrap().as_str() == "web");
        assert!(ContainerName::parse("we b").is_err());
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(1000);
        assert!(err(IfName::parse(&long)).len() < 200);
    }
}
