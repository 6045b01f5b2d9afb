//! Numeric link settings with their valid ranges.

use std::fmt;

use crate::{shorten, InvalidValue};

/// A link MTU: 68 (the IPv4 minimum) to 65535 (the kernel maximum for veth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mtu(u32);

impl Mtu {
    pub const MIN: u32 = 68;
    pub const MAX: u32 = 65535;

    pub fn new(v: u32) -> Result<Self, InvalidValue> {
        Self::checked(v).ok_or_else(|| Self::out_of_range(&v.to_string()))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let v: u32 = s.parse().map_err(|_| {
            InvalidValue::new(format!("MTU '{}' is not a number {}-{}", shorten(s), Self::MIN, Self::MAX))
        })?;
        Self::checked(v).ok_or_else(|| Self::out_of_range(&format!("'{s}'")))
    }

    fn checked(v: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&v).then_some(Self(v))
    }

    fn out_of_range(shown: &str) -> InvalidValue {
        InvalidValue::new(format!("MTU {shown} is out of range {}-{}", Self::MIN, Self::MAX))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// An 802.1Q VLAN id, 1-4094 (0 and 4095 are reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(v: u16) -> Result<Self, InvalidValue> {
        Self::checked(v).ok_or_else(|| InvalidValue::new(format!("VLAN id {v} is out of range 1-4094")))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let v: u16 = s
            .parse()
            .map_err(|_| InvalidValue::new(format!("VLAN id '{}' is not a number 1-4094", shorten(s))))?;
        Self::checked(v).ok_or_else(|| InvalidValue::new(format!("VLAN id '{s}' is out of range 1-4094")))
    }

    fn checked(v: u16) -> Option<Self> {
        (1..=4094).contains(&v).then_some(Self(v))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Numbers convert both ways (serde carries them as numbers, not text).
macro_rules! number_impls {
    ($($ty:ident: $n:ty),*) => {$(
        impl TryFrom<$n> for $ty {
            type Error = InvalidValue;
            fn try_from(v: $n) -> Result<Self, InvalidValue> {
                Self::new(v)
            }
        }
        impl From<$ty> for $n {
            fn from(v: $ty) -> $n {
                v.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
        impl std::str::FromStr for $ty {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(<$n>::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
number_impls!(Mtu: u32, VlanId: u16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_messages() {
        assert!(VlanId::new(0).is_err() && VlanId::new(4095).is_err() && VlanId::new(100).is_ok());
        assert!(VlanId::parse("4095").unwrap_err().to_string().contains("'4095'"));
        assert!(VlanId::parse("0").is_err() && VlanId::parse("1").is_ok());
        assert!(Mtu::new(70000).unwrap_err().to_string().contains("70000"));
        assert!(Mtu::parse("70000").unwrap_err().to_string().contains("'70000'"));
        assert!(Mtu::parse("big").unwrap_err().to_string().contains("'big' is not a number"));
        assert!(Mtu::parse("67").is_err() && Mtu::parse("65535").is_ok() && Mtu::new(1450).is_ok());
    }
}
