//! Checks that a configuration works (WIT interface `diagnostics`).

use std::fmt;

use crate::bindings::ovs_run::net::diagnostics as wit;
use crate::net::IpAddr;
use crate::{Error, Target};

pub use wit::PingStats;

/// ICMP echo from inside `target` to `address`: `count` requests, waiting at
/// most `timeout_ms` for each reply.
pub fn ping(target: &Target, address: IpAddr, count: u32, timeout_ms: u32) -> Result<PingStats, Error> {
    Ok(wit::ping(target, &address.to_string(), count, timeout_ms)?)
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
