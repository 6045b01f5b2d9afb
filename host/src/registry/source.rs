//! Where a script's bytes come from: a file (`SCRIPT`, `SCRIPT@sha256:HEX`,
//! read through [`crate::vetting::read_script_file`]) or a registry (`oci://REF`,
//! resolved through [`crate::registry`]: the local store, else a pull).
//! Either way the caller gets the bytes and a [`ScriptRef`] whose pin is
//! checked before anything runs; for a registry reference the pin is the
//! component's sha256 the manifest named, so the bytes that reach vetting
//! and the compile cache are exactly the layer the digest chain pins.

use std::path::{Path, PathBuf};

use crate::registry::{self, reference::strip_scheme, OciRef};
use crate::vetting::{read_script_file, ScriptRef};

/// The registry reference `arg` names, if it is one (`oci://...`).
pub fn oci_ref(arg: &Path) -> Option<Result<OciRef, String>> {
    let s = arg.to_str()?;
    strip_scheme(s)?;
    Some(OciRef::parse(s).map_err(|e| e.to_string()))
}

/// Read the script `arg` names. Running by tag prints what the tag resolved
/// to on stderr (a tag is only a name; the digest is what ran).
pub async fn load(arg: &Path, reg: &registry::Options) -> Result<(ScriptRef, Vec<u8>), String> {
    let Some(r) = oci_ref(arg) else {
        let r = ScriptRef::parse(arg)?;
        let bytes = read_script_file(&r.path)?;
        return Ok((r, bytes));
    };
    let r = r?;
    let res = registry::resolve(&r, reg).await.map_err(|e| e.to_string())?;
    if r.digest.is_none() || res.moved_from.is_some() {
        eprintln!("ovs-run: {}", registry::describe(&res));
    } else {
        crate::verbose!(1, "{}", registry::describe(&res));
    }
    Ok((ScriptRef { path: PathBuf::from(r.uri()), pin: Some(res.layer) }, res.bytes))
}

/// [`load`] for commands that run outside the async runtime (`inspect`).
pub fn load_blocking(arg: &Path, reg: &registry::Options) -> Result<(ScriptRef, Vec<u8>), String> {
    if oci_ref(arg).is_none() {
        let r = ScriptRef::parse(arg)?;
        let bytes = read_script_file(&r.path)?;
        return Ok((r, bytes));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(load(arg, reg))
}
