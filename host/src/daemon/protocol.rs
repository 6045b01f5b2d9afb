//! The wire format between `ovs-run submit` and `ovs-run serve`: frames of
//! `u32 length (big-endian) | u8 tag | payload`, the length counting tag and
//! payload. Every read is bounded by the receiver's limit for that frame.
//!
//! client -> daemon, in this order:
//!   `R` the request: JSON `{"args": [...], "verbose": 0, "quiet": false,
//!       "json": false, "dry_run": false}` (other fields are ignored: the
//!       tenant comes from the kernel);
//!   `W` the script component's bytes.
//! daemon -> client, any number of `O` (script stdout bytes) and `E` (its
//! stderr, its log lines, ovs-run's messages), then one `X`: JSON
//! `{"code": N, "status": "..."}` with the exit status `submit` exits with.

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const REQUEST: u8 = b'R';
pub const WASM: u8 = b'W';
pub const STDOUT: u8 = b'O';
pub const STDERR: u8 = b'E';
pub const EXIT: u8 = b'X';

/// Most bytes of a request frame (the script's arguments).
pub const MAX_REQUEST: usize = 256 << 10;
/// Most bytes of a daemon -> client frame.
pub const MAX_REPLY: usize = 1 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub args: Vec<String>,
    #[serde(default)]
    pub verbose: u8,
    #[serde(default)]
    pub quiet: bool,
    /// The outcome as one JSON document on stdout (the script's stdout goes to stderr).
    #[serde(default)]
    pub json: bool,
    /// Change nothing: the plan, under the tenant's policy, from the real state.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    pub status: String,
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, tag: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len() + 1).map_err(|_| io::Error::other("frame too large"))?;
    let mut head = [0u8; 5];
    head[..4].copy_from_slice(&len.to_be_bytes());
    head[4] = tag;
    w.write_all(&head).await?;
    w.write_all(payload).await?;
    w.flush().await
}

/// Read one frame of at most `max` payload bytes. `Ok(None)` at a clean end
/// of stream; an error naming the problem for a short, empty or oversized frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty frame (no tag)"));
    }
    if len - 1 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {} bytes exceeds the limit of {max} bytes", len - 1),
        ));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag).await?;
    let mut payload = vec![0u8; len - 1];
    r.read_exact(&mut payload).await?;
    Ok(Some((tag[0], payload)))
}
