//! Checks that a configuration works (WIT interface `diagnostics`).

use std::fmt;

use crate::bindings::ovs_run::net::diagnostics as wit;
use crate::net::IpAddr;
use crate::{Error, Target};

pub use wit::{PingStats, TransferStats};

/// ICMP echo from inside `target` to `address`: `count` requests, waiting at
/// most `timeout_ms` for each reply.
pub fn ping(target: &Target, address: IpAddr, count: u32, timeout_ms: u32) -> Result<PingStats, Error> {
    Ok(wit::ping(target, &address.to_string(), count, timeout_ms)?)
}

/// Real data, not only a ping: `bytes` over TCP from inside `client` to a
/// listener the host opens on `server_address` inside `server`, checked byte
/// for byte; waits at most `timeout_ms`. Data that does not arrive is not an
/// error: `received` says how much did.
pub fn tcp_check(
    client: &Target,
    server: &Target,
    server_address: IpAddr,
    bytes: u64,
    timeout_ms: u32,
) -> Result<TransferStats, Error> {
    Ok(wit::tcp_check(client, server, &server_address.to_string(), bytes, timeout_ms)?)
}

/// `1048576 bytes in 4.1 ms (2046 Mbit/s)`, or `65536 of 1048576 bytes
/// arrived in 5000.0 ms`.
impl fmt::Display for TransferStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed_us as f64 / 1000.0;
        if self.received == self.sent {
            let mbits = self.received as f64 * 8.0 / (self.elapsed_us.max(1) as f64);
            write!(f, "{} bytes in {ms:.1} ms ({mbits:.0} Mbit/s)", self.received)
        } else {
            write!(f, "{} of {} bytes arrived in {ms:.1} ms", self.received, self.sent)
        }
    }
}

/// `3 sent, 3 received, rtt min/avg/max 0.041/0.057/0.080 ms`, like ping(8).
impl fmt::Display for PingStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: u64| us as f64 / 1000.0;
        write!(f, "{} sent, {} received", self.sent, self.received)?;
        if self.received > 0 {
            write!(
                f,
                ", rtt min/avg/max {:.3}/{:.3}/{:.3} ms",
                ms(self.rtt_min_us),
                ms(self.rtt_avg_us),
                ms(self.rtt_max_us)
            )?;
        }
        Ok(())
    }
}
