//! Linux interface names (also bridges and OVS ports: each bridge owns an
//! internal interface of the same name).

use crate::{shorten, InvalidValue};

/// Kernel limit: IFNAMSIZ (16) including the trailing NUL.
pub const IFNAME_MAX: usize = 15;

/// A Linux interface name: 1-15 bytes of printable ASCII, no '/' or ':', not "." or "..".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);

impl IfName {
    pub const MAX_LEN: usize = IFNAME_MAX;

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() {
            return Err(InvalidValue::new("interface name is empty"));
        }
        if s.len() > IFNAME_MAX {
            return Err(InvalidValue::new(format!(
                "interface name '{}' is {} bytes long; the limit is {IFNAME_MAX}",
                shorten(s),
                s.len()
            )));
        }
        if s == "." || s == ".." {
            return Err(InvalidValue::new(format!("interface name '{s}' is reserved")));
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
            return Err(InvalidValue::new(msg));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_errors_name_the_value() {
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
    fn long_values_are_shortened() {
        let e = IfName::parse(&"x".repeat(10 << 20)).unwrap_err().to_string();
        assert!(e.len() < 200, "{}", e.len());
    }
}
