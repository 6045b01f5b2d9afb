//! `ovs-run:net/diagnostics`: ping and a TCP check from inside a target.

use std::time::Duration;

use super::ovs_run::net::diagnostics::{Host, PingStats, TransferStats};
use super::{target_ref, Caps, Trappable, WitTarget};
use crate::error::CapError;
use crate::types::parse_ip;

impl Host for Caps {
    async fn ping(
        &mut self,
        target: WitTarget,
        address: String,
        count: u32,
        timeout_ms: u32,
    ) -> Trappable<PingStats> {
        self.tick()?;
        let r = async {
            let addr = parse_ip(&address)?;
            if !(1..=1000).contains(&count) {
                return Err(CapError::invalid(format!("ping count {count} is out of range 1-1000")));
            }
            if !(1..=60_000).contains(&timeout_ms) {
                return Err(CapError::invalid(format!(
                    "ping timeout {timeout_ms} ms is out of range 1-60000"
                )));
            }
            let target = self.gate.resolve(&target_ref(&target)?).await?;
            let s = self.gate.ping(&target, addr, count, Duration::from_millis(timeout_ms.into())).await?;
            Ok(PingStats {
                sent: s.sent,
                received: s.received,
                rtt_min_us: s.rtt_min.as_micros() as u64,
                rtt_avg_us: s.rtt_avg.as_micros() as u64,
                rtt_max_us: s.rtt_max.as_micros() as u64,
            })
        };
        self.finish("ping", r.await)
    }

    async fn tcp_check(
        &mut self,
        client: WitTarget,
        server: WitTarget,
        server_address: String,
        bytes: u64,
        timeout_ms: u32,
    ) -> Trappable<TransferStats> {
        self.tick()?;
        let r = async {
            let addr = parse_ip(&server_address)?;
            let max = crate::backend::tcp_check::MAX_BYTES;
            if !(1..=max).contains(&bytes) {
                return Err(CapError::invalid(format!("tcp-check bytes {bytes} is out of range 1-{max}")));
            }
            if !(1..=60_000).contains(&timeout_ms) {
                return Err(CapError::invalid(format!(
                    "tcp-check timeout {timeout_ms} ms is out of range 1-60000"
                )));
            }
            let client = self.gate.resolve(&target_ref(&client)?).await?;
            let server = self.gate.resolve(&target_ref(&server)?).await?;
            let timeout = Duration::from_millis(timeout_ms.into());
            let s = self.gate.tcp_check(&client, &server, addr, bytes, timeout).await?;
            Ok(TransferStats { sent: s.sent, received: s.received, elapsed_us: s.elapsed.as_micros() as u64 })
        };
        self.finish("tcp-check", r.await)
    }
}
