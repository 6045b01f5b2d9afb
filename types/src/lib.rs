//! Validated network values, one definition for both sides of the WIT contract:
//! the ovs-run host parses every string a script, the CLI or a config file hands
//! it into one of these, and the Rust guest SDK checks arguments with the same
//! rules before any call is made, so host and script never disagree on what is
//! valid. A parse error is an [`InvalidValue`] whose message names the value
//! (shortened: a hostile 10 MiB "interface name" does not flood a log).
//!
//! std only; `serde` (feature `serde`) serialises each type as its text (or
//! number), deserialising through the same parser.

mod container;
mod error;
mod ifname;
mod ip;
mod mac;
mod numbers;

pub use container::ContainerRef;
pub use error::{shorten, InvalidValue};
pub use ifname::{IfName, IFNAME_MAX};
pub use ip::{parse_ip, Cidr};
pub use mac::MacAddr;
pub use numbers::{Mtu, VlanId};

/// `FromStr`, `String` conversions and, with serde, string (de)serialisation
/// through `parse` (the numbers, `Mtu` and `VlanId`, are carried as numbers).
macro_rules! text_impls {
    ($($ty:ident),*) => {$(
        impl std::str::FromStr for $ty {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(&s)
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.to_string()
            }
        }
        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
text_impls!(IfName, ContainerRef, Cidr, MacAddr);

/// `Display`, `AsRef<str>` and `Deref<Target = str>` for the name types.
macro_rules! name_impls {
    ($($ty:ident),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}
name_impls!(IfName, ContainerRef);

#[cfg(test)]
mod fuzz;
