//! What the driver remembers: its networks, endpoints and IPAM pools, in one
//! JSON file written atomically (temporary file, fsync, rename, fsync of the
//! directory) after every change. Docker neither re-activates nor replays
//! anything after a plugin restart, so this file is the only memory of
//! which address is taken and which port belongs to which endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::protocol::{EndpointOptions, NetworkOptions};
use crate::backend::ovn::OvnName;
use crate::error::{CapError, CapResult};
use crate::types::{Cidr, IfName, MacAddr};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub options: NetworkOptions,
    pub bridge: IfName,
    /// Docker's gateway for the network, with its prefix.
    pub gateway: Option<Cidr>,
    /// The bridge did not exist and this network created it.
    #[serde(default)]
    pub created_bridge: bool,
    /// The gateway address this network put on the bridge (gateway_on_bridge).
    #[serde(default)]
    pub bridge_address: Option<Cidr>,
    /// This network put the bridge's own port in its VLAN (gateway_on_bridge with vlan).
    #[serde(default)]
    pub bridge_vlan: bool,
    /// A mode=ovn network: its logical switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn: Option<OvnNetwork>,
}

/// The logical switch of a mode=ovn network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvnNetwork {
    pub switch: OvnName,
    /// The switch did not exist and this network created it (network rm
    /// deletes it again when no host has a port on it any more).
    #[serde(default)]
    pub created_switch: bool,
}

/// An endpoint of a mode=ovn network: its logical switch port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvnEndpoint {
    pub switch: OvnName,
    /// The logical switch port, the OVS port's external_ids:iface-id.
    pub port: OvnName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub bridge: IfName,
    /// The host end, the OVS port.
    pub port: IfName,
    /// The end Docker moves into the container.
    pub peer: IfName,
    pub options: EndpointOptions,
    pub address: Option<Cidr>,
    pub mac: Option<MacAddr>,
    /// False while CreateEndpoint is under way: an endpoint found so at
    /// start was interrupted, and its journal's recovery took its port away.
    #[serde(default)]
    pub ready: bool,
    /// Docker's SandboxKey once joined.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// A mode=ovn network's endpoint: the logical switch port it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn: Option<OvnEndpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The network, host bits clear (10.20.0.0/24).
    pub pool: Cidr,
    /// Addresses are handed out from here when set (--ip-range).
    #[serde(default)]
    pub sub_pool: Option<Cidr>,
    /// Taken addresses, the gateway's included.
    #[serde(default)]
    pub allocated: BTreeSet<IpAddr>,
    /// The pool of a mode=ovn network: addresses come from its logical
    /// switch (the northbound database is the truth, across hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn: Option<OvnPool>,
}

/// A pool whose addresses are reserved in the northbound database (see driver/ovn.rs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvnPool {
    pub switch: OvnName,
    /// Addresses this plugin reserved with a logical switch port of its
    /// own, and that port's MAC (what tells our port from another host's).
    #[serde(default)]
    pub held: BTreeMap<IpAddr, MacAddr>,
}

/// The state file and its directory.
pub struct Store {
    dir: PathBuf,
}

const FILE: &str = "state.json";

impl Store {
    /// Open (creating, mode 0700) `dir`; refuse one others can write to.
    pub fn open(dir: &Path) -> CapResult<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CapError::failed(format!("cannot create state directory {}: {e}", dir.display())))?;
        let m = fs::metadata(dir).map_err(|e| CapError::failed(format!("{}: {e}", dir.display())))?;
        let me = nix::unistd::geteuid().as_raw();
        if (m.uid() != me && m.uid() != 0) || m.mode() & 0o022 != 0 {
            return Err(CapError::failed(format!(
                "state directory {} must be owned by us or root and writable by nobody else (owner uid {}, mode {:o})",
                dir.display(),
                m.uid(),
                m.mode() & 0o777
            )));
        }
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The saved state; empty when there is none yet.
    pub fn load(&self) -> CapResult<State> {
        load(&self.path())
    }

    /// Replace the file atomically: a crash leaves the old or the new state, whole.
    pub fn save(&self, state: &State) -> CapResult<()> {
        let fail =
            |e: std::io::Error| CapError::failed(format!("cannot save {}: {e}", self.path().display()));
        let tmp = self.dir.join(format!(".{FILE}.tmp"));
        let data = serde_json::to_vec_pretty(state).map_err(|e| CapError::failed(e.to_string()))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(&data).and_then(|()| f.sync_all()).map_err(fail)?;
        fs::rename(&tmp, self.path()).map_err(fail)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(fail)
    }
}

/// Read a state file (for `status`, which needs no lock).
pub fn load(path: &Path) -> CapResult<State> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map_err(|e| CapError::failed(format!("state file {} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(CapError::failed(format!("cannot read {}: {e}", path.display()))),
    }
}
