//! Options shared by every frontend that changes the real system (the
//! lifecycle commands, `serve`, the Docker driver): where OVSDB and Docker
//! are and how long ovs-vswitchd may take, parsed once into a
//! [`SystemConfig`]. Frontends flatten [`SystemOpts`] into their arguments.

use std::time::Duration;

use crate::backend::docker;
use crate::backend::ovsdb::{self, OvsdbUri};
use crate::backend::system::SystemConfig;

/// Where state that outlives a run is kept (bindings, the Docker plugin's networks): `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ovs-run";

/// Where OVSDB and Docker are, and how long ovs-vswitchd may take: the
/// system options of every command that changes the real system without
/// being `ovs-run SCRIPT` (bind, watch, gc, serve).
#[derive(clap::Args, Debug, Clone)]
pub struct SystemOpts {
    /// OVSDB to use: unix:PATH or tcp:HOST:PORT [default: unix:$OVS_RUNDIR/db.sock, else unix:/var/run/openvswitch/db.sock]
    #[arg(long, value_name = "URI")]
    pub ovsdb: Option<String>,

    /// Docker API: unix:///PATH or tcp://HOST:PORT [default: $DOCKER_HOST, else unix:///var/run/docker.sock]
    #[arg(long, value_name = "URI")]
    pub docker: Option<String>,

    /// OVN northbound database for the ovn capability: unix:PATH or tcp:HOST:PORT [default: $OVN_NB_DB, else unix:/var/run/ovn/ovnnb_db.sock]
    #[arg(long, value_name = "URI")]
    pub ovn_nb: Option<String>,

    /// Seconds add-port with an iface-id waits for ovn-controller to install the port
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::config::apply_timeout_secs)]
    pub ovn_bind_timeout: f64,

    /// Seconds to wait for ovs-vswitchd to apply each OVSDB change
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = apply_timeout_secs)]
    pub apply_timeout: f64,
}

impl SystemOpts {
    /// The options, parsed: an --ovsdb that is not a URI is an error naming it.
    pub fn config(&self) -> Result<SystemConfig, String> {
        let ovsdb: OvsdbUri = match &self.ovsdb {
            Some(u) => u.parse().map_err(|e| format!("--ovsdb: {e}"))?,
            None => ovsdb::default_uri(),
        };
        Ok(SystemConfig {
            ovsdb,
            docker: self.docker.clone().unwrap_or_else(docker::default_uri),
            apply_timeout: Duration::from_secs_f64(self.apply_timeout),
            ovn_nb: ovn_nb_uri(self.ovn_nb.as_deref())?,
        })
    }
}

/// `--ovn-nb`, parsed (None: the default, $OVN_NB_DB or ovn-nbctl's socket).
pub fn ovn_nb_uri(given: Option<&str>) -> Result<Option<OvsdbUri>, String> {
    given.map(|u| u.parse().map_err(|e| format!("--ovn-nb: {e}"))).transpose()
}

impl SystemOpts {
    /// The real system with these options, the OVN ones included.
    pub fn backend(&self) -> Result<crate::backend::system::SystemBackend, String> {
        Ok(crate::backend::system::SystemBackend::new(self.config()?)
            .with_ovn_bind_timeout(Duration::from_secs_f64(self.ovn_bind_timeout)))
    }
}

/// `--apply-timeout`: more than 0, at most an hour.
pub fn apply_timeout_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(_) => Err("must be more than 0 and at most 3600 seconds".into()),
        Err(e) => Err(format!("{e} (seconds, e.g. 10 or 0.5)")),
    }
}
