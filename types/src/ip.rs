//! IP addresses and interface addresses with their prefix length.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{shorten, InvalidValue};

/// Parses a bare IPv4 or IPv6 address, naming it in the error.
pub fn parse_ip(s: &str) -> Result<IpAddr, InvalidValue> {
    s.parse().map_err(|_| InvalidValue::new(format!("'{}' is not a valid IP address", shorten(s))))
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
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, InvalidValue> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(InvalidValue::new(format!("prefix length {prefix} of {addr} must be 0-{max}")));
        }
        Ok(Self { addr, prefix })
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let shown = shorten(s);
        let (a, p) = s.split_once('/').ok_or_else(|| {
            InvalidValue::new(format!("address '{shown}' has no prefix length (expected e.g. 10.1.0.2/24)"))
        })?;
        let addr: IpAddr = a.parse().map_err(|_| {
            InvalidValue::new(format!("'{shown}' is not a valid CIDR: '{}' is not an IP address", shorten(a)))
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
            InvalidValue::new(format!(
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
    pub fn host(&self, n: u128) -> Result<Cidr, InvalidValue> {
        let host_bits = u32::from(self.bits() - self.prefix);
        // size == 0 stands for 2^128 (an IPv6 /0).
        let size = 1u128.checked_shl(host_bits).unwrap_or(0);
        // Address 0 is the network itself; an IPv4 network's last is broadcast.
        let end = if self.is_ipv4() { size - 1 } else { size };
        if n == 0 || (size != 0 && n >= end) {
            return Err(InvalidValue::new(format!("{} has no host address number {n}", self.network())));
        }
        let bits = (Self::bits_of(self.addr) & self.mask()) | n;
        Ok(Cidr { addr: self.addr_from_bits(bits), prefix: self.prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Cidr::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_both_families_and_names_bad_values() {
        assert_eq!(Cidr::parse("10.1.0.2/24").unwrap().to_string(), "10.1.0.2/24");
        assert_eq!(Cidr::parse("fd00::2/64").unwrap().to_string(), "fd00::2/64");
        assert!(err("10.1.0.300/24").contains("10.1.0.300/24"));
        assert!(err("10.1.0.3/33").contains("0-32"));
        assert!(err("10.1.0.3").contains("no prefix length"));
        assert!(parse_ip("10.0.0.256").unwrap_err().to_string().contains("10.0.0.256"));
    }

    #[test]
    fn network_contains_and_hosts() {
        let c = Cidr::parse("10.10.0.77/24").unwrap();
        assert_eq!(c.network().to_string(), "10.10.0.0/24");
        assert!(c.contains("10.10.0.200".parse().unwrap()) && !c.contains("10.10.1.1".parse().unwrap()));
        assert_eq!(c.host(1).unwrap().to_string(), "10.10.0.1/24");
        assert_eq!(c.host(254).unwrap().to_string(), "10.10.0.254/24");
        assert!(c.host(255).is_err(), "broadcast is not a host");
        assert!(Cidr::parse("10.0.0.0/32").unwrap().host(1).is_err());
        let v6 = Cidr::parse("fd00:9::/64").unwrap();
        assert_eq!(v6.host(2).unwrap().to_string(), "fd00:9::2/64");
        assert!(v6.contains("fd00:9::1234".parse().unwrap()) && !v6.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(Cidr::parse("::/0").unwrap().host(1).unwrap().to_string(), "::1/0");
        assert_eq!(Cidr::parse("fd00::2/64").unwrap().network().to_string(), "fd00::/64");
    }
}
