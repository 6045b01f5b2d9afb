//! A script's sha256 and the `SCRIPT@sha256:HEX` pin: the digest is the
//! identity of a reviewed script, so a pinned run refuses any other bytes.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The sha256 of a whole script file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{self}")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `HEX` or `sha256:HEX`, 64 hex digits in either case.
impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let mut out = [0u8; 32];
        match hex::decode_to_slice(hex, &mut out) {
            Ok(()) => Ok(Self(out)),
            Err(_) => {
                Err(format!("'{s}' is not a sha256 digest (64 hex digits, as `ovs-run inspect` prints)"))
            }
        }
    }
}

/// The separator of a pinned script reference.
pub const PIN: &str = "@sha256:";

/// `SCRIPT` or `SCRIPT@sha256:HEX`, as given on the command line.
///
/// A suffix `@sha256:` is always a pin, even if a file of that full name
/// exists: otherwise whoever can create such a file beside the script could
/// turn a pinned run into an unpinned one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRef {
    pub path: PathBuf,
    pub pin: Option<Digest>,
}

impl ScriptRef {
    pub fn parse(arg: &std::path::Path) -> Result<Self, String> {
        let Some(s) = arg.to_str() else { return Ok(Self { path: arg.to_path_buf(), pin: None }) };
        match s.rsplit_once(PIN) {
            None => Ok(Self { path: arg.to_path_buf(), pin: None }),
            Some((path, hex)) if !path.is_empty() => {
                let pin = hex.parse().map_err(|e| format!("{s}: {e}"))?;
                Ok(Self { path: PathBuf::from(path), pin: Some(pin) })
            }
            Some(_) => Err(format!("'{s}': a pin needs a script before it: SCRIPT@sha256:HEX")),
        }
    }
}

impl fmt::Display for ScriptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pin {
            Some(d) => write!(f, "{}{PIN}{d}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_pins() {
        let r = ScriptRef::parse(Path::new(&format!("a/attach.wasm@sha256:{HEX}"))).unwrap();
        assert_eq!(r.path, Path::new("a/attach.wasm"));
        assert_eq!(r.pin.unwrap().to_string(), HEX);
        let upper = ScriptRef::parse(Path::new(&format!("x@sha256:{}", HEX.to_uppercase()))).unwrap();
        assert_eq!(upper.pin, r.pin);
        assert_eq!(ScriptRef::parse(Path::new("a/attach.wasm")).unwrap().pin, None);
    }

    #[test]
    fn bad_pins_name_the_value() {
        for bad in ["x@sha256:12", "x@sha256:", &format!("x@sha256:{HEX}00"), &format!("@sha256:{HEX}")] {
            let e = ScriptRef::parse(Path::new(bad)).unwrap_err();
            assert!(e.contains(bad) || e.contains(bad.split('@').nth(1).unwrap()), "{bad}: {e}");
        }
    }

    #[test]
    fn digest_of_bytes() {
        assert_eq!(Digest::of(b"test").to_string(), HEX);
    }
}
