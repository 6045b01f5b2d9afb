//! Docker's plugin protocol for network and IPAM drivers (libnetwork's
//! "remote" drivers, API 1.41): the JSON bodies of every call as serde
//! types, and the driver options parsed once into typed values. Field names
//! are Docker's (PascalCase); unknown fields are ignored, as Docker adds some
//! between versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::ovn::OvnName;
use crate::error::{CapError, CapResult};
use crate::types::{shorten, Cidr, Datapath, IfName, MacAddr, Mtu, VlanId};

/// The key under which `docker network create -o K=V` options arrive.
pub const GENERIC: &str = "com.docker.network.generic";
/// `RequestAddress` for a network's gateway carries this as its type.
pub const GATEWAY_TYPE: &str = "com.docker.network.gateway";
/// `RequestAddress` option naming the kind of address asked for.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamData {
    pub address_space: String,
    pub pool: String,
    pub gateway: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetwork {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data", default)]
    pub ipv4_data: Option<Vec<IpamData>>,
    #[serde(rename = "IPv6Data", default)]
    pub ipv6_data: Option<Vec<IpamData>>,
}

#[derive(Debug, Deserialize)]
pub struct NetworkRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    pub address: String,
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    pub mac_address: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub interface: Option<EndpointInterface>,
    #[serde(default)]
    pub options: BTreeMap<String, Value>,
}

/// DeleteEndpoint, EndpointOperInfo, Leave, Program/RevokeExternalConnectivity.
#[derive(Debug, Deserialize)]
pub struct EndpointRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Join {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub sandbox_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    pub interface_name: InterfaceName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub static_routes: Vec<Value>,
    /// No gateway: Docker must not add its own gateway bridge either.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_gateway_service: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestPool {
    #[serde(default)]
    pub address_space: String,
    #[serde(default)]
    pub pool: String,
    #[serde(default)]
    pub sub_pool: String,
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

#[derive(Debug, Deserialize)]
pub struct PoolRef {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReleaseAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(default)]
    pub address: String,
}

/// A network's `-o` options, parsed: every value checked with the types the
/// scripts' capabilities use, an unknown option refused by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// `bridge`: the Open vSwitch bridge (created when missing).
    pub bridge: Option<IfName>,
    /// `datapath`: for a bridge that is created (default: the host's).
    pub datapath: Option<Datapath>,
    /// `vlan`: the access tag of every endpoint's port.
    pub vlan: Option<VlanId>,
    /// `trunks`: comma-separated VLANs the ports carry tagged.
    pub trunks: Vec<VlanId>,
    /// `mtu`: of both veth ends.
    pub mtu: Option<Mtu>,
    /// `gateway_on_bridge`: the gateway address on the bridge's internal port.
    pub gateway_on_bridge: bool,
    /// `script`: a pinned Wasm script run at every Join and Leave (see `hooks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// `script.KEY=VALUE`: passed to the script as `--KEY=VALUE`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub script_options: BTreeMap<String, String>,
    /// `mode`: what a network is (an OVS bridge, or an OVN logical switch).
    #[serde(default, skip_serializing_if = "NetworkMode::is_bridge")]
    pub mode: NetworkMode,
    /// `ovn_switch`: the logical switch of a mode=ovn network (default
    /// `docker-` and the network id's first 12 digits: one host's network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovn_switch: Option<OvnName>,
}

/// `-o mode=`: `bridge` (the default: ports on an OVS bridge, this host
/// only) or `ovn` (an OVN logical switch: one network across every host
/// whose networks name the same switch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    #[default]
    Bridge,
    Ovn,
}

impl NetworkMode {
    pub fn is_bridge(&self) -> bool {
        *self == NetworkMode::Bridge
    }
}

/// The integration bridge ovn-controller manages (ovn-bridge's default).
pub const DEFAULT_OVN_BRIDGE: &str = "br-int";

/// The network options ovs-run knows (the error for an unknown one lists them).
pub const NETWORK_OPTIONS: &[&str] = &[
    "bridge",
    "datapath",
    "vlan",
    "trunks",
    "mtu",
    "gateway_on_bridge",
    "script",
    "script.KEY",
    "mode",
    "ovn_switch",
];
/// The endpoint options (`--driver-opt`) ovs-run knows.
pub const ENDPOINT_OPTIONS: &[&str] = &["vlan", "mtu", "mac"];

/// The bridge when a network names none.
pub const DEFAULT_BRIDGE: &str = "ovs-run0";

fn bad(option: &str, value: &str, e: impl Into<CapError>) -> CapError {
    let e: CapError = e.into();
    CapError::invalid(format!("option {option}={}: {}", shorten(value), e.message))
}

fn text<'a>(option: &str, v: &'a Value) -> CapResult<std::borrow::Cow<'a, str>> {
    match v {
        Value::String(s) => Ok(s.as_str().into()),
        Value::Number(n) => Ok(n.to_string().into()),
        Value::Bool(b) => Ok(b.to_string().into()),
        other => Err(CapError::invalid(format!("option {option}: {other} is not a string"))),
    }
}

fn vlan(option: &str, s: &str) -> CapResult<VlanId> {
    VlanId::parse(s.trim()).map_err(|e| bad(option, s, e))
}

fn mtu(option: &str, s: &str) -> CapResult<Mtu> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| CapError::invalid(format!("option {option}={}: not a number", shorten(s))))?;
    Mtu::new(n).map_err(|e| bad(option, s, e))
}

impl NetworkOptions {
    /// From CreateNetwork's `Options`: the `-o` options are under [`GENERIC`].
    pub fn parse(options: &BTreeMap<String, Value>) -> CapResult<Self> {
        let mut o = NetworkOptions::default();
        let Some(generic) = options.get(GENERIC) else { return Ok(o) };
        let Value::Object(generic) = generic else {
            return Err(CapError::invalid(format!("{GENERIC} is not an object")));
        };
        for (k, v) in generic {
            let s = text(k, v)?;
            match k.as_str() {
                "bridge" => o.bridge = Some(IfName::parse(&s).map_err(|e| bad(k, &s, e))?),
                "datapath" => o.datapath = Some(s.parse().map_err(|e| bad(k, &s, e))?),
                "vlan" => o.vlan = Some(vlan(k, &s)?),
                "trunks" => {
                    o.trunks = s
                        .split(',')
                        .filter(|t| !t.trim().is_empty())
                        .map(|t| vlan(k, t))
                        .collect::<CapResult<_>>()?
                }
                "mtu" => o.mtu = Some(mtu(k, &s)?),
                "gateway_on_bridge" => {
                    o.gateway_on_bridge = match s.as_ref() {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(CapError::invalid(format!(
                                "option {k}={}: not true or false",
                                shorten(&s)
                            )))
                        }
                    }
                }
                "mode" => {
                    o.mode = match s.as_ref() {
                        "bridge" => NetworkMode::Bridge,
                        "ovn" => NetworkMode::Ovn,
                        _ => {
                            return Err(CapError::invalid(format!(
                                "option {k}={}: not bridge or ovn",
                                shorten(&s)
                            )))
                        }
                    }
                }
                "ovn_switch" => o.ovn_switch = Some(OvnName::parse(&s).map_err(|e| bad(k, &s, e))?),
                "script" => {
                    super::hooks::Hooks::parse(&s)?;
                    o.script = Some(s.into_owned());
                }
                _ if k.starts_with("script.") => {
                    let key = &k["script.".len()..];
                    let ok = !key.is_empty()
                        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        && !key.starts_with('-');
                    if !ok {
                        return Err(CapError::invalid(format!(
                            "option {}: KEY in script.KEY is letters, digits, '-' and '_'",
                            shorten(k)
                        )));
                    }
                    o.script_options.insert(key.to_string(), s.into_owned());
                }
                _ => {
                    return Err(CapError::invalid(format!(
                        "unknown option {}={} (ovs-run networks take: {})",
                        shorten(k),
                        shorten(&s),
                        NETWORK_OPTIONS.join(", ")
                    )))
                }
            }
        }
        if o.script.is_none() && !o.script_options.is_empty() {
            return Err(CapError::invalid(
                "options script.KEY need a script option (the script they are for)",
            ));
        }
        if o.vlan.is_some() && !o.trunks.is_empty() {
            return Err(CapError::invalid(
                "options vlan and trunks exclude each other (an access port has no trunks)",
            ));
        }
        o.check_mode()?;
        Ok(o)
    }

    /// Options that mean nothing for the network's mode are refused by name.
    fn check_mode(&self) -> CapResult<()> {
        match self.mode {
            NetworkMode::Bridge if self.ovn_switch.is_some() => {
                Err(CapError::invalid("option ovn_switch needs mode=ovn"))
            }
            NetworkMode::Bridge => Ok(()),
            NetworkMode::Ovn => {
                // The logical switch is the network: OVN does VLANs, the
                // gateway and the integration bridge itself.
                let given = [
                    ("vlan", self.vlan.is_some()),
                    ("trunks", !self.trunks.is_empty()),
                    ("gateway_on_bridge", self.gateway_on_bridge),
                    ("datapath", self.datapath.is_some()),
                ];
                match given.iter().find(|(_, set)| *set) {
                    Some((name, _)) => Err(CapError::invalid(format!(
                        "option {name} does not apply with mode=ovn (the network is an OVN logical switch)"
                    ))),
                    None => Ok(()),
                }
            }
        }
    }

    pub fn bridge(&self) -> IfName {
        let default = match self.mode {
            NetworkMode::Bridge => DEFAULT_BRIDGE,
            NetworkMode::Ovn => DEFAULT_OVN_BRIDGE,
        };
        self.bridge.clone().unwrap_or_else(|| IfName::parse(default).expect("valid name"))
    }
}

/// An endpoint's `--driver-opt` options, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOptions {
    pub vlan: Option<VlanId>,
    pub mtu: Option<Mtu>,
    pub mac: Option<MacAddr>,
}

impl EndpointOptions {
    /// From CreateEndpoint's `Options`: driver options are top-level keys
    /// next to Docker's own, which all have dotted names (com.docker...).
    pub fn parse(options: &BTreeMap<String, Value>) -> CapResult<Self> {
        let mut o = EndpointOptions::default();
        for (k, v) in options.iter().filter(|(k, _)| !k.contains('.')) {
            let s = text(k, v)?;
            match k.as_str() {
                "vlan" => o.vlan = Some(vlan(k, &s)?),
                "mtu" => o.mtu = Some(mtu(k, &s)?),
                "mac" => o.mac = Some(MacAddr::parse(s.trim()).map_err(|e| bad(k, &s, e))?),
                _ => {
                    return Err(CapError::invalid(format!(
                        "unknown endpoint option {}={} (ovs-run endpoints take: {})",
                        shorten(k),
                        shorten(&s),
                        ENDPOINT_OPTIONS.join(", ")
                    )))
                }
            }
        }
        Ok(o)
    }
}

/// The first IPv4 gateway Docker's IPAM gave the network (`10.20.0.1/24`).
pub fn gateway(data: &[IpamData]) -> CapResult<Option<Cidr>> {
    for d in data {
        if !d.gateway.is_empty() {
            return Cidr::parse(&d.gateway)
                .map(Some)
                .map_err(|e| CapError::from(e).context("IPv4Data.Gateway"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn generic(v: Value) -> BTreeMap<String, Value> {
        [(GENERIC.to_string(), v)].into()
    }

    #[test]
    fn network_options_are_typed_and_bad_ones_named() {
        let o = NetworkOptions::parse(&generic(
            json!({"bridge":"br-t","vlan":"120","mtu":"1450","gateway_on_bridge":"true"}),
        ))
        .unwrap();
        assert_eq!(o.bridge.unwrap().as_str(), "br-t");
        assert_eq!(o.vlan.unwrap().get(), 120);
        assert_eq!(o.mtu.unwrap().get(), 1450);
        assert!(o.gateway_on_bridge);
        let t = NetworkOptions::parse(&generic(json!({"trunks":"10,20"}))).unwrap();
        assert_eq!(t.trunks.iter().map(|v| v.get()).collect::<Vec<_>>(), [10, 20]);
        for (opts, words) in [
            (json!({"vlan":"5000"}), "vlan=5000"),
            (json!({"mtu":"big"}), "mtu=big"),
            (json!({"bridge":"this-name-is-far-too-long"}), "bridge="),
            (json!({"colour":"red"}), "colour=red"),
            (json!({"datapath":"fast"}), "datapath=fast"),
        ] {
            let e = NetworkOptions::parse(&generic(opts)).unwrap_err();
            assert!(e.message.contains(words), "{e}");
        }
    }

    #[test]
    fn ovn_mode_options_are_checked() {
        let o =
            NetworkOptions::parse(&generic(json!({"mode":"ovn","ovn_switch":"ls-x","mtu":"1400"}))).unwrap();
        assert_eq!(
            (o.mode, o.ovn_switch.unwrap().as_str(), o.bridge.is_none()),
            (NetworkMode::Ovn, "ls-x", true)
        );
        let o = NetworkOptions::parse(&generic(json!({"mode":"ovn"}))).unwrap();
        assert_eq!(o.bridge().as_str(), "br-int");
        for (opts, words) in [
            (json!({"mode":"ovn","vlan":"10"}), "vlan does not apply with mode=ovn"),
            (json!({"mode":"ovn","gateway_on_bridge":"true"}), "gateway_on_bridge does not apply"),
            (json!({"ovn_switch":"ls-x"}), "ovn_switch needs mode=ovn"),
            (json!({"mode":"ovn","ovn_switch":"a b"}), "ovn_switch=a b"),
            (json!({"mode":"vxlan"}), "mode=vxlan"),
        ] {
            let e = NetworkOptions::parse(&generic(opts)).unwrap_err();
            assert!(e.message.contains(words), "{e}");
        }
    }

    #[test]
    fn endpoint_options_skip_dockers_own() {
        let o = EndpointOptions::parse(
            &[
                ("vlan".to_string(), json!("200")),
                ("com.docker.network.endpoint.exposedports".to_string(), json!([])),
                ("mac".to_string(), json!("02:00:00:00:00:01")),
            ]
            .into(),
        )
        .unwrap();
        assert_eq!(o.vlan.unwrap().get(), 200);
        assert!(o.mac.is_some());
        let e = EndpointOptions::parse(&[("speed".to_string(), json!("1"))].into()).unwrap_err();
        assert!(e.message.contains("speed=1"), "{e}");
    }
}
