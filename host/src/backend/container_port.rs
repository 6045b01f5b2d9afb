//! Which container a port leads into, read from the external ids ovs-run
//! and ovs-docker give its Interface row (`container_full_id`,
//! `container_id`, `container_iface`). Shared by `gc` and the watcher
//! (lifecycle), the inventory (`ps`) and the dry-run model (an assumed
//! container's real ports).

use super::{ext, PortInfo};
use crate::types::IfName;

/// A port that leads into a container, by its external ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPort {
    pub bridge: IfName,
    pub port: IfName,
    /// The interface name inside the container.
    pub iface: IfName,
    /// `container_full_id` (ports made by ovs-run).
    pub full_id: Option<String>,
    /// `container_id`: what the user called the container (ovs-docker's only key).
    pub given: Option<String>,
    pub info: PortInfo,
}

impl ContainerPort {
    /// None for ports without container metadata (host and netns ports,
    /// ports someone else made): those are never touched.
    pub fn of(info: PortInfo) -> Option<Self> {
        // Docker's own network driver (docker-plugin) made it: Docker removes it.
        if info.external_ids.contains_key(crate::types::external_ids::DOCKER_ENDPOINT_ID) {
            return None;
        }
        Self::listed(info)
    }

    /// [`ContainerPort::of`], the Docker driver's ports included (once it
    /// named their container): what `ps` lists, which removes nothing.
    pub fn listed(info: PortInfo) -> Option<Self> {
        let ids = &info.external_ids;
        let iface = IfName::parse(ids.get(ext::CONTAINER_IFACE)?).ok()?;
        let full_id = ids.get(ext::CONTAINER_FULL_ID).filter(|s| !s.is_empty()).cloned();
        let given = ids.get(ext::CONTAINER_ID).filter(|s| !s.is_empty()).cloned();
        if full_id.is_none() && given.is_none() {
            return None;
        }
        let bridge = IfName::parse(&info.bridge).ok()?;
        let port = IfName::parse(&info.name).ok()?;
        Some(Self { bridge, port, iface, full_id, given, info })
    }

    /// What to ask Docker for: the full id when recorded (a name can be
    /// reused by another container), else what the user gave.
    pub fn key(&self) -> &str {
        self.full_id.as_deref().or(self.given.as_deref()).unwrap_or_default()
    }

    /// Whether the port may belong to container `id` named `name`: a cheap
    /// filter for events; whether it is dead is still decided by `gc`
    /// (lifecycle/ports.rs).
    pub fn may_belong_to(&self, id: &str, name: &str) -> bool {
        match (&self.full_id, &self.given) {
            (Some(full), _) => full == id,
            (None, Some(g)) => g == name || g == id || (g.len() >= 4 && id.starts_with(g.as_str())),
            (None, None) => false,
        }
    }

    /// "container web (3f2a9c01b2d4) eth0", for messages.
    pub fn owner(&self) -> String {
        let short = |id: &str| id[..id.len().min(12)].to_string();
        let who = match (&self.given, &self.full_id) {
            (Some(g), Some(f)) if g != f && !f.starts_with(g.as_str()) => format!("{g} ({})", short(f)),
            (_, Some(f)) => short(f),
            (Some(g), None) => g.clone(),
            (None, None) => String::new(),
        };
        format!("container {who} {}", self.iface)
    }
}
