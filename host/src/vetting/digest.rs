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
    /// The pin is found in the path's raw bytes, in any case (`@SHA256:`
    /// too): a path that is not UTF-8, or a pin typed in capitals, must never
    /// turn a pinned run into an unpinned one.
    pub fn parse(arg: &std::path::Path) -> Result<Self, String> {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let raw = arg.as_os_str().as_bytes();
        let shown = arg.display();
        let pin = PIN.as_bytes();
        let Some(at) = raw.windows(pin.len()).rposition(|w| w.eq_ignore_ascii_case(pin)) else {
            return Ok(Self { path: arg.to_path_buf(), pin: None });
        };
        let (path, hex) = (&raw[..at], &raw[at + pin.len()..]);
        if path.is_empty() {
            return Err(format!("'{shown}': a pin needs a script before it: SCRIPT@sha256:HEX"));
        }
        let hex = std::str::from_utf8(hex)
            .map_err(|_| format!("{shown}: the pin is not a sha256 digest (64 hex digits)"))?;
        let digest = hex.parse().map_err(|e| format!("{shown}: {e}"))?;
        Ok(Self { path: PathBuf::from(OsStr::from_bytes(path)), pin: Some(digest) })
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
    fn pins_are_found_in_non_utf8_paths_and_in_capitals() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let raw = [b"caf\xe9.wasm@sha256:".as_slice(), HEX.as_bytes()].concat();
        let r = ScriptRef::parse(Path::new(OsStr::from_bytes(&raw))).unwrap();
        assert_eq!(r.path.as_os_str().as_bytes(), b"caf\xe9.wasm");
        assert_eq!(r.pin.unwrap().to_string(), HEX);
        let bad = [b"caf\xe9.wasm@sha256:12".as_slice()].concat();
        assert!(ScriptRef::parse(Path::new(OsStr::from_bytes(&bad))).is_err());
        for sep in ["@SHA256:", "@Sha256:"] {
            let r = ScriptRef::parse(Path::new(&format!("a.wasm{sep}{HEX}"))).unwrap();
            assert_eq!((r.path.to_str(), r.pin.map(|d| d.to_string())), (Some("a.wasm"), Some(HEX.into())));
        }
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
