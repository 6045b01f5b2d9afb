//! Ethernet addresses an interface can carry.

use std::fmt;

use crate::{shorten, InvalidValue};

/// A unicast Ethernet address, written `02:42:ac:11:00:02`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let shown = shorten(s);
        let bad = || {
            InvalidValue::new(format!(
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
            return Err(InvalidValue::new(format!(
                "MAC address '{shown}' is a multicast address; an interface needs a unicast one"
            )));
        }
        if octets == [0; 6] {
            return Err(InvalidValue::new(format!("MAC address '{shown}' is all zeros")));
        }
        Ok(Self(octets))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        MacAddr::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn rules() {
        assert_eq!(MacAddr::parse("02:42:AC:11:0:2").unwrap().to_string(), "02:42:ac:11:00:02");
        assert!(err("01:00:5e:00:00:01").contains("multicast"));
        assert!(err("00:00:00:00:00:00").contains("zeros"));
        assert!(err("02:42:ac:11:00").contains("02:42:ac:11:00"));
        assert!(MacAddr::parse("02:42:ac:11:00:02:03").is_err());
        assert!(MacAddr::parse("02:42:ac:11:00:g2").is_err());
    }
}
