//! Container references as users type them.

use crate::{shorten, InvalidValue};

/// A Docker container name or (possibly abbreviated) id, as Docker accepts it;
/// Docker's own spelling with a leading '/' is accepted and dropped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerRef(String);

impl ContainerRef {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let name = s.strip_prefix('/').unwrap_or(s);
        let ok = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(InvalidValue::new(format!("container '{}' is not a valid container name or id", shorten(s))))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names() {
        assert_eq!(ContainerRef::parse("/web").unwrap().as_str(), "web");
        assert!(ContainerRef::parse("we b").is_err());
        assert!(ContainerRef::parse("").is_err());
    }
}
