//! OCI references: `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]` where a script
//! is expected (`ovs-run oci://...`, `inspect`, `bind`, `submit`), and the bare
//! `HOST[:PORT]/REPO[:TAG][@sha256:HEX]` for `push` and `pull`.
//!
//! The first component is always the registry: there is no default registry,
//! so a name never silently resolves to somebody else's server. The names
//! follow the distribution spec's grammar, which also keeps them safe as
//! directory names in the local store (no `..`, no `/` in a tag).

use std::fmt;

use crate::vetting::Digest;

/// The scheme that marks a script argument as a registry reference.
pub const SCHEME: &str = "oci://";

/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

const FORM: &str = "HOST[:PORT]/REPO[:TAG][@sha256:HEX]";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host` or `host:port`.
    pub registry: String,
    /// `a/b/c`: lowercase components.
    pub repository: String,
    pub tag: Option<String>,
    /// The manifest digest: pins the manifest, which pins the layer's bytes.
    pub digest: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{reference}' is not an OCI reference ({FORM}): {why}")]
pub struct RefError {
    pub reference: String,
    pub why: String,
}

/// The text after `oci://`, if `arg` is a registry reference.
pub fn strip_scheme(arg: &str) -> Option<&str> {
    arg.get(..SCHEME.len()).filter(|s| s.eq_ignore_ascii_case(SCHEME)).map(|_| &arg[SCHEME.len()..])
}

impl OciRef {
    /// `oci://...` (as a script argument) or the bare form (push, pull).
    pub fn parse(s: &str) -> Result<Self, RefError> {
        let err = |why: &str| RefError { reference: s.to_string(), why: why.to_string() };
        let bare = strip_scheme(s).unwrap_or(s);
        let (name, digest) = match bare.split_once('@') {
            Some((name, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| err("the digest after '@' must be sha256:HEX (64 hex digits)"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("the digest after '@' must be sha256:HEX (64 hex digits)"));
                }
                (name, Some(hex.parse::<Digest>().map_err(|e| err(&e))?))
            }
            None => (bare, None),
        };
        let (registry, path) =
            name.split_once('/').ok_or_else(|| err("it needs a registry and a repository: HOST/REPO"))?;
        check_registry(registry).map_err(|w| err(&w))?;
        // A ':' after the last '/' starts the tag.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        for c in repository.split('/') {
            check_component(c).map_err(|w| err(&w))?;
        }
        if let Some(t) = tag {
            check_tag(t).map_err(|w| err(&w))?;
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The tag to ask for when no digest pins the reference.
    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The same reference with its digest pinned (the tag kept for display).
    pub fn pinned(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), ..self.clone() }
    }

    /// `oci://` and the reference: how a script argument names it.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{self}")
    }

    /// What oci-client addresses: by digest when pinned, else by tag.
    pub fn client_ref(&self) -> oci_client::Reference {
        match &self.digest {
            Some(d) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                format!("sha256:{d}"),
            ),
            None => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                self.tag_or_default().to_string(),
            ),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@sha256:{d}")?;
        }
        Ok(())
    }
}

/// `host[:port]`: DNS labels or an IPv4 address, then an optional port.
fn check_registry(s: &str) -> Result<(), String> {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!("registry host '{host}' is not a host name or IPv4 address"));
    }
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|n| n > 0) || p.starts_with('0') {
            return Err(format!("registry port '{p}' is not a port number (1-65535)"));
        }
    }
    Ok(())
}

/// A repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(c: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "repository component '{c}' must be lowercase letters and digits, separated by '.', '_', '__' or dashes"
        )
    };
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("tag '{t}' must be 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_the_uri_and_the_bare_form() {
        let r = OciRef::parse("oci://registry.example:5000/netops/attach:1.2.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref(), r.digest),
            ("registry.example:5000", "netops/attach", Some("1.2.0"), None)
        );
        assert_eq!(r.to_string(), "registry.example:5000/netops/attach:1.2.0");
        assert_eq!(OciRef::parse("registry.example:5000/netops/attach:1.2.0").unwrap(), r);
        let p = OciRef::parse(&format!("oci://127.0.0.1:5000/a@sha256:{HEX}")).unwrap();
        assert_eq!((p.tag.as_deref(), p.digest.map(|d| d.to_string())), (None, Some(HEX.to_string())));
        assert_eq!(p.uri(), format!("oci://127.0.0.1:5000/a@sha256:{HEX}"));
        let both = OciRef::parse(&format!("localhost/a/b:v1@sha256:{HEX}")).unwrap();
        assert_eq!((both.tag.as_deref(), both.digest.is_some()), (Some("v1"), true));
        assert_eq!(OciRef::parse("localhost/a").unwrap().tag_or_default(), "latest");
    }

    #[test]
    fn bad_references_are_named_with_the_reason() {
        for (bad, says) in [
            ("oci://attach", "HOST/REPO"),
            ("oci://host/Attach", "lowercase"),
            ("oci://host/a/../b", "'..'"),
            ("oci://host/a:..", "tag '..'"),
            ("oci://host:99999/a", "port"),
            ("oci://ho_st/a", "host"),
            ("oci://host/a@sha256:12", "64 hex"),
            ("oci://host/a@md5:12", "sha256"),
            ("oci://host//a", "component ''"),
        ] {
            let e = OciRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_scheme_is_recognised_in_any_case() {
        assert_eq!(strip_scheme("OCI://h/a"), Some("h/a"));
        assert_eq!(strip_scheme("scripts/attach.wasm"), None);
    }
}
