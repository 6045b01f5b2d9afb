//! Where a script's output goes when it is not the terminal: `ovs-run serve`
//! sends a client's script's stdout, stderr and log lines back over the
//! client's connection. The channel is bounded, so a script that prints
//! faster than its client reads waits (at an epoch yield, not blocking a
//! thread) instead of growing the daemon's memory; once the receiver is gone
//! (the client hung up) output is dropped and the script runs on.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which of the script's streams a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    /// The script's stderr and its log lines.
    Stderr,
}

#[derive(Debug)]
pub struct Chunk {
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// Most bytes in one chunk: bounds what one write holds in the channel.
const MAX_CHUNK: usize = 16 << 10;

#[derive(Clone)]
pub struct OutputSink {
    tx: mpsc::Sender<Chunk>,
}

impl OutputSink {
    /// A sink and the receiving end; `capacity` chunks may wait unread.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx }, rx)
    }

    /// A WASI stdout/stderr that writes into this sink.
    pub fn stream(&self, stream: Stream) -> SinkStream {
        SinkStream { tx: self.tx.clone(), stream }
    }

    /// One log line (the caller adds the newline).
    pub async fn send(&self, stream: Stream, data: Vec<u8>) {
        // A gone receiver means a gone client: nobody to tell.
        let _ = self.tx.send(Chunk { stream, data }).await;
    }
}

pub struct SinkStream {
    tx: mpsc::Sender<Chunk>,
    stream: Stream,
}

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(SinkWriter { tx: PollSender::new(self.tx.clone()), stream: self.stream })
    }
}

struct SinkWriter {
    tx: PollSender<Chunk>,
    stream: Stream,
}

impl AsyncWrite for SinkWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(MAX_CHUNK);
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Ok(n)); // the client is gone: discard
        }
        let chunk = Chunk { stream: self.stream, data: buf[..n].to_vec() };
        let _ = self.tx.send_item(chunk);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
