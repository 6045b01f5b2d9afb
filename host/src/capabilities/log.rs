//! `ovs-run:net/log`: a script's messages to the user, on stderr (or to the
//! daemon's client), filtered by `-v`.

use super::output::Stream;
use super::ovs_run::net::log::{Host, Level};
use super::Caps;

/// How much of a script's log to show (ordered: a level shows itself and above).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for LogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// A script can send a 10 MiB message; the user gets the start of it.
const MAX_MESSAGE: usize = 4096;

impl Host for Caps {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.tick()?;
        let level = LogLevel::from(level);
        if level >= self.log_level {
            let text = if message.len() > MAX_MESSAGE {
                let mut end = MAX_MESSAGE;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}... ({} bytes in all)", &message[..end], message.len())
            } else {
                message
            };
            let tag = format!("{level:?}").to_lowercase();
            match &self.output {
                Some(sink) => sink.send(Stream::Stderr, format!("[{tag}] {text}\n").into_bytes()).await,
                None => eprintln!("[{tag}] {text}"),
            }
        }
        Ok(())
    }
}
