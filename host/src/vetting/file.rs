//! Reading a script file: bounded and regular files only. Every command that
//! takes SCRIPT (`ovs-run SCRIPT`, `inspect`, `verify`, `sign`, `metadata`,
//! `submit`) reads it through [`read_script_file`], so `/dev/zero`, a FIFO
//! or a runaway file is refused with its name instead of eating memory or
//! blocking forever.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest script file read: what the engine compiles at most.
pub const MAX_SCRIPT_FILE: usize = crate::engine::precheck::MAX_COMPONENT_BYTES;

fn kind(t: fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// The bytes of script `path`, at most [`MAX_SCRIPT_FILE`]; the error names
/// the file and says what was wrong with it.
pub fn read_script_file(path: &Path) -> Result<Vec<u8>, String> {
    read_bounded(path, MAX_SCRIPT_FILE)
}

fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let shown = path.display();
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is
    // checked on the open file, so a swap after a stat cannot slip past.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot read script {shown}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read script {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "cannot read script {shown}: it is {}, not a regular file",
            kind(meta.file_type())
        ));
    }
    let too_big = || {
        format!("script {shown} is larger than {limit} bytes ({} MiB), the most ovs-run reads", limit >> 20)
    };
    if meta.len() > limit as u64 {
        return Err(too_big());
    }
    // Bounded even if the file grows while it is read.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read script {shown}: {e}"))?;
    if bytes.len() > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_by_name() {
        let e = read_script_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("/dev/zero") && e.contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_script_file(&fifo).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
    }

    #[test]
    fn files_over_the_limit_are_refused_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big.wasm");
        fs::write(&f, vec![0u8; 101]).unwrap();
        let e = read_bounded(&f, 100).unwrap_err();
        assert!(e.contains("big.wasm") && e.contains("100 bytes"), "{e}");
        assert_eq!(read_bounded(&f, 101).unwrap().len(), 101);
    }
}
