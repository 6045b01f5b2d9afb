//! Registry credentials the Docker way: `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, entry `auths.HOST.auth` = base64 of `user:pass`
//! (what `docker login` writes). Credential helpers (`credsStore`,
//! `credHelpers`) are not run: ovs-run runs as root and does not execute
//! programs named by a user's config.

use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

/// The config file that is read, if any.
pub fn config_file() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

/// Credentials for `registry` (`host[:port]`), or anonymous when none are
/// configured. A config file that exists but cannot be used is an error
/// naming it: silently going anonymous would turn into a puzzling 401.
pub fn for_registry(registry: &str) -> Result<(RegistryAuth, Option<PathBuf>), String> {
    let Some(file) = config_file() else { return Ok((RegistryAuth::Anonymous, None)) };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((RegistryAuth::Anonymous, None)),
        Err(e) => return Err(format!("cannot read registry credentials {}: {e}", file.display())),
    };
    let auth = from_config(&text, registry).map_err(|e| format!("{}: {e}", file.display()))?;
    let used = (!matches!(auth, RegistryAuth::Anonymous)).then_some(file);
    Ok((auth, used))
}

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// `docker login` keys entries by `host[:port]`, older clients by a URL
/// (`https://host/v1/`): both name the same registry.
fn key_matches(key: &str, registry: &str) -> bool {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next() == Some(registry)
}

fn from_config(text: &str, registry: &str) -> Result<RegistryAuth, String> {
    let config: Config = serde_json::from_str(text).map_err(|e| format!("not a Docker config file: {e}"))?;
    let Some((_, entry)) = config.auths.iter().find(|(k, _)| key_matches(k, registry)) else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || format!("auths.{registry}.auth is not base64 of USER:PASSWORD");
        let raw = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        return Ok(RegistryAuth::Basic(user.to_string(), pass.to_string()));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(RegistryAuth::Basic(u.clone(), p.clone())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_login_entries() {
        // base64("alice:s3cret")
        let cfg = r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"},"https://other.example/v1/":{"username":"bob","password":"pw"}}}"#;
        assert!(matches!(from_config(cfg, "127.0.0.1:5000").unwrap(),
            RegistryAuth::Basic(u, p) if u == "alice" && p == "s3cret"));
        assert!(
            matches!(from_config(cfg, "other.example").unwrap(), RegistryAuth::Basic(u, _) if u == "bob")
        );
        assert!(matches!(from_config(cfg, "127.0.0.1:5001").unwrap(), RegistryAuth::Anonymous));
        let e = from_config(r#"{"auths":{"h":{"auth":"!!"}}}"#, "h").unwrap_err();
        assert!(e.contains("auths.h.auth"), "{e}");
    }
}
