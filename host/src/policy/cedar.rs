//! Tenant policies in Cedar: the operator writes permits and forbids against
//! ovs-run's schema (`ovs-run.cedarschema`), lists tenants as Cedar entities
//! (a JSON file), and each capability call of a tenant's script becomes one
//! Cedar request: principal the tenant, action the capability, resource the
//! bridge, port or namespace, context the arguments. Deny by default; a
//! forbid beats any permit; anything that cannot be evaluated is denied.
//!
//! The load-time check ([`Policy::may_ever`]) reads the policies' scopes
//! only: an action may ever be allowed for a tenant when some `permit`'s
//! principal scope can match the tenant and its action scope names the
//! action (directly or through its interface's action group). Conditions
//! are ignored, so the check never refuses a script that could work; it
//! refuses one that imports an interface no permit reaches, before it runs.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, PrincipalConstraint, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use super::{Decision, Policy, Request, Resource};
use crate::backend::Op;
use crate::types::{Cidr, MacAddr, Mtu, RouteSpec, Target, VlanId};

/// The schema every policy and tenants file is checked against.
pub const SCHEMA_SRC: &str = include_str!("ovs-run.cedarschema");

pub fn schema() -> Schema {
    Schema::from_cedarschema_str(SCHEMA_SRC).map(|(s, _)| s).expect("the built-in schema is valid")
}

/// What a tenant entity says about running its scripts (`ovs-run serve`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// The entity id: `Tenant::"a"` is tenant `a`.
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    pub max_runs: Option<u32>,
    pub timeout: Option<Duration>,
    pub memory_mib: Option<usize>,
}

/// A policy set and the tenants, both checked against the schema.
pub struct PolicyStore {
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    actions: Entities,
    tenants: Vec<Tenant>,
    pub policy_file: PathBuf,
    pub tenants_file: PathBuf,
}

/// `tenants.cedar` -> `tenants.json`: the tenants file when none is named.
pub fn default_tenants_file(policy: &Path) -> PathBuf {
    policy.with_extension("json")
}

impl PolicyStore {
    /// Read and check both files; the error lists every problem with its position.
    pub fn load(policy_file: &Path, tenants_file: &Path) -> Result<Self, String> {
        let schema = schema();
        let src = std::fs::read_to_string(policy_file)
            .map_err(|e| format!("cannot read policy file {}: {e}", policy_file.display()))?;
        let policies = parse_policies(&src, &policy_file.display().to_string(), &schema)?;
        let json = std::fs::read_to_string(tenants_file)
            .map_err(|e| format!("cannot read tenants file {}: {e}", tenants_file.display()))?;
        let entities = Entities::from_json_str(&json, Some(&schema))
            .map_err(|e| render(&e, &tenants_file.display().to_string(), None).join("\n"))?;
        let tenants = tenants_of(&entities).map_err(|e| format!("{}: {e}", tenants_file.display()))?;
        let actions = schema.action_entities().map_err(|e| format!("schema actions: {e}"))?;
        Ok(Self {
            schema,
            policies,
            entities,
            actions,
            tenants,
            policy_file: policy_file.to_path_buf(),
            tenants_file: tenants_file.to_path_buf(),
        })
    }

    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// The tenant a peer process runs as: the one listing its uid, else the
    /// one listing its primary gid. No tenant, or two: refused.
    pub fn tenant_for_peer(&self, uid: u32, gid: u32) -> Result<&Tenant, String> {
        let by_uid: Vec<&Tenant> = self.tenants.iter().filter(|t| t.uids.contains(&uid)).collect();
        let found = if by_uid.is_empty() {
            self.tenants.iter().filter(|t| t.gids.contains(&gid)).collect()
        } else {
            by_uid
        };
        match found.as_slice() {
            [t] => Ok(t),
            [] => Err(format!("uid {uid} (gid {gid}) is not a tenant of this ovs-run daemon")),
            many => Err(format!(
                "uid {uid} (gid {gid}) matches several tenants ({}); fix {}",
                many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
                self.tenants_file.display()
            )),
        }
    }

    /// The policy for one tenant's runs.
    pub fn policy_for(self: &Arc<Self>, tenant: &str) -> Result<CedarPolicy, String> {
        let uid = uid("Tenant", tenant);
        let entity = self.entities.get(&uid).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.tenants.iter().map(|t| t.name.as_str()).collect();
            format!(
                "no tenant '{tenant}' in {} (tenants: {})",
                self.tenants_file.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })?;
        Ok(CedarPolicy { store: self.clone(), name: tenant.to_string(), uid, entity })
    }
}

/// Parse a policy file, give each policy its `@id("...")` (else `policyN`),
/// and validate it in strict mode. The error names file, line and column.
pub fn parse_policies(src: &str, file: &str, schema: &Schema) -> Result<PolicySet, String> {
    let parsed = PolicySet::from_str(src).map_err(|e| render(&e, file, Some(src)).join("\n"))?;
    let mut seen = HashSet::new();
    let mut policies = Vec::new();
    let mut parsed: Vec<_> = parsed.policies().cloned().collect();
    // Source order: the default ids are policy0, policy1, ...
    parsed.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0));
    for p in parsed {
        let id = p.annotation("id").map(str::to_string).unwrap_or_else(|| p.id().to_string());
        if !seen.insert(id.clone()) {
            return Err(format!("{file}: two policies have the id '{id}'"));
        }
        policies.push(p.new_id(PolicyId::new(id)));
    }
    let set = PolicySet::from_policies(policies).map_err(|e| format!("{file}: {e}"))?;
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let mut lines = Vec::new();
        for e in result.validation_errors() {
            lines.extend(render(e, file, Some(src)));
        }
        return Err(lines.join("\n"));
    }
    Ok(set)
}

/// `ovs-run policy check`: the problems of a policy file (and a tenants
/// file), each with its position, or a summary of what is there.
pub fn check(policy_file: &Path, tenants_file: Option<&Path>) -> Result<String, String> {
    let schema = schema();
    let src = std::fs::read_to_string(policy_file)
        .map_err(|e| format!("cannot read policy file {}: {e}", policy_file.display()))?;
    let set = parse_policies(&src, &policy_file.display().to_string(), &schema)?;
    let ids: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
    let mut out = format!(
        "{}: {} policies valid against the ovs-run schema (strict): {}",
        policy_file.display(),
        ids.len(),
        ids.join(", ")
    );
    if let Some(t) = tenants_file {
        let store = PolicyStore::load(policy_file, t)?;
        let names: Vec<&str> = store.tenants.iter().map(|t| t.name.as_str()).collect();
        let _ = write!(out, "\n{}: {} tenants: {}", t.display(), names.len(), names.join(", "));
    }
    Ok(out)
}

/// One line per problem: `file:line:col: message (label)`, then its help.
pub fn render(d: &dyn Diagnostic, file: &str, src: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = String::new();
    let mut labels = Vec::new();
    if let Some(ls) = d.labels() {
        for l in ls {
            if at.is_empty() {
                if let Some(src) = src {
                    let (line, col) = line_col(src, l.offset());
                    at = format!(":{line}:{col}");
                }
            }
            if let Some(text) = l.label() {
                labels.push(text.to_string());
            }
        }
    }
    let mut line = format!("{file}{at}: {d}");
    // The cause chain: "error during entity deserialization: ... colour ...".
    let mut cause = d.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            let _ = write!(line, ": {text}");
        }
        cause = c.source();
    }
    if !labels.is_empty() {
        let _ = write!(line, " ({})", labels.join("; "));
    }
    lines.push(line);
    if let Some(help) = d.help() {
        lines.push(format!("  help: {help}"));
    }
    if let Some(related) = d.related() {
        for r in related {
            lines.extend(render(r, file, src));
        }
    }
    lines
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn tenants_of(entities: &Entities) -> Result<Vec<Tenant>, String> {
    let mut out = Vec::new();
    for e in entities.iter().filter(|e| e.uid().type_name().to_string() == "Tenant") {
        let name = e.uid().id().unescaped().to_string();
        let json = e.to_json_value().map_err(|err| format!("tenant {name}: {err}"))?;
        let attrs = &json["attrs"];
        let ids = |key: &str| -> Result<Vec<u32>, String> {
            attrs[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .unwrap_or(Some(vec![]))
                .ok_or_else(|| format!("tenant {name}: {key} must be a list of numbers 0-4294967295"))
        };
        let positive = |key: &str| -> Result<Option<u64>, String> {
            match attrs.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("tenant {name}: {key} must be a positive number, not {v}")),
            }
        };
        out.push(Tenant {
            uids: ids("uids")?,
            gids: ids("gids")?,
            max_runs: positive("max_runs")?.map(|n| n.min(1024) as u32),
            timeout: positive("timeout_seconds")?.map(|s| Duration::from_secs(s.min(86_400))),
            memory_mib: positive("memory_mib")?.map(|m| m.min(65_536) as usize),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(ty).expect("a schema type name"),
        EntityId::new(id),
    )
}

/// One tenant's view of a [`PolicyStore`].
pub struct CedarPolicy {
    store: Arc<PolicyStore>,
    name: String,
    uid: EntityUid,
    entity: Entity,
}

impl CedarPolicy {
    pub fn tenant(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, request: &Request<'_>) -> Result<Decision, String> {
        let schema = &self.store.schema;
        let (resource, mut entities) = resource_entities(request.resource())?;
        let mut ctx = Ctx::default();
        fill_context(request, &mut ctx, &mut entities)?;
        entities.push(self.entity.clone());
        let entities = Entities::from_entities(dedup(entities), Some(schema)).map_err(|e| e.to_string())?;
        let context = Context::from_pairs(ctx.0).map_err(|e| e.to_string())?;
        let action = uid("Action", request.action());
        let req = cedar_policy::Request::new(self.uid.clone(), action, resource, context, Some(schema))
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&req, &self.store.policies, &entities);
        let policies: Vec<String> = response.diagnostics().reason().map(|id| id.to_string()).collect();
        let errors: Vec<String> = response.diagnostics().errors().map(|e| e.to_string()).collect();
        Ok(match response.decision() {
            cedar_policy::Decision::Allow => {
                let reason = format!("permitted by policy {}", policies.join(", "));
                Decision { allowed: true, policies, reason }
            }
            cedar_policy::Decision::Deny if !policies.is_empty() => {
                let reason = format!("forbidden by policy {} (tenant {})", policies.join(", "), self.name);
                Decision::deny(policies, reason)
            }
            cedar_policy::Decision::Deny => {
                let mut reason = format!("no policy permits it for tenant {} (deny by default)", self.name);
                if !errors.is_empty() {
                    let _ = write!(reason, "; policies that failed to evaluate: {}", errors.join("; "));
                }
                Decision::deny(vec![], reason)
            }
        })
    }

    fn principal_matches(&self, c: &PrincipalConstraint) -> bool {
        let in_ =
            |group: &EntityUid| *group == self.uid || self.store.entities.is_ancestor_of(group, &self.uid);
        match c {
            PrincipalConstraint::Any => true,
            PrincipalConstraint::Eq(u) => *u == self.uid,
            PrincipalConstraint::In(u) => in_(u),
            PrincipalConstraint::Is(t) => *t == *self.uid.type_name(),
            PrincipalConstraint::IsIn(t, u) => *t == *self.uid.type_name() && in_(u),
        }
    }

    fn action_matches(&self, c: &ActionConstraint, action: &EntityUid) -> bool {
        let in_ = |g: &EntityUid| g == action || self.store.actions.is_ancestor_of(g, action);
        match c {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == action,
            ActionConstraint::In(groups) => groups.iter().any(in_),
        }
    }
}

impl Policy for CedarPolicy {
    fn decide(&self, request: &Request<'_>) -> Decision {
        // Cedar guards its recursion with the thread's stack bounds, which
        // are wrong on the Wasm fiber a capability call runs on: evaluate on
        // a stack segment whose bounds it knows (stacker switches to one
        // when the remaining stack looks short, as it does on the fiber).
        let result = stacker::maybe_grow(128 << 10, 1 << 20, || self.evaluate(request));
        // Fail closed: a request that cannot be put to Cedar is denied.
        result.unwrap_or_else(|e| Decision::deny(vec![], format!("the request cannot be evaluated: {e}")))
    }

    fn may_ever(&self, action: &str) -> bool {
        let action = uid("Action", action);
        self.store.policies.policies().any(|p| {
            p.effect() == Effect::Permit
                && self.principal_matches(&p.principal_constraint())
                && self.action_matches(&p.action_constraint(), &action)
        })
    }
}

/// The resource's uid and the entities it needs (a port needs its bridge).
fn resource_entities(r: Resource<'_>) -> Result<(EntityUid, Vec<Entity>), String> {
    let s = |v: &str| RestrictedExpression::new_string(v.to_string());
    let ent = |u: &EntityUid, attrs: Vec<(&str, RestrictedExpression)>, parents: Vec<EntityUid>| {
        Entity::new(
            u.clone(),
            attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            parents.into_iter().collect(),
        )
        .map_err(|e| e.to_string())
    };
    Ok(match r {
        Resource::Bridge(b) => {
            let u = uid("Bridge", b);
            let e = ent(&u, vec![("name", s(b))], vec![])?;
            (u, vec![e])
        }
        Resource::Port { name, bridge } => {
            let bu = uid("Bridge", bridge);
            let b = ent(&bu, vec![("name", s(bridge))], vec![])?;
            let u = uid("Port", name);
            let p = ent(&u, vec![("name", s(name)), ("bridge", s(bridge))], vec![bu])?;
            (u, vec![p, b])
        }
        Resource::Host => {
            let u = uid("Host", "host");
            let e = ent(&u, vec![], vec![])?;
            (u, vec![e])
        }
        Resource::Netns(n) => {
            let u = uid("Netns", n);
            let e = ent(&u, vec![("name", s(n))], vec![])?;
            (u, vec![e])
        }
        Resource::Container { id, name, labels } => {
            let u = uid("Container", id);
            let e = Entity::new_with_tags(
                u.clone(),
                [("id".to_string(), s(id)), ("name".to_string(), s(name))],
                [],
                labels.iter().map(|(k, v)| (k.clone(), s(v))),
            )
            .map_err(|e| e.to_string())?;
            (u, vec![e])
        }
    })
}

fn dedup(entities: Vec<Entity>) -> Vec<Entity> {
    let mut seen = HashSet::new();
    entities.into_iter().filter(|e| seen.insert(e.uid())).collect()
}

#[derive(Default)]
struct Ctx(HashMap<String, RestrictedExpression>);

impl Ctx {
    fn put(&mut self, k: &str, v: RestrictedExpression) {
        self.0.insert(k.to_string(), v);
    }
    fn string(&mut self, k: &str, v: impl ToString) {
        self.put(k, RestrictedExpression::new_string(v.to_string()));
    }
    fn long(&mut self, k: &str, v: impl Into<i64>) {
        self.put(k, RestrictedExpression::new_long(v.into()));
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.put(k, RestrictedExpression::new_bool(v));
    }
    fn ip(&mut self, k: &str, v: impl ToString) {
        self.put(k, RestrictedExpression::new_ip(v.to_string()));
    }
    fn target(&mut self, t: &Target, entities: &mut Vec<Entity>) -> Result<(), String> {
        match t {
            Target::Host => self.string("target_kind", "host"),
            Target::Netns { name } => {
                self.string("target_kind", "netns");
                self.string("netns", name);
            }
            Target::Container { .. } => {
                self.string("target_kind", "container");
                let (u, e) = resource_entities(Resource::of_target(t))?;
                entities.extend(e);
                self.put("container", RestrictedExpression::new_entity_uid(u));
            }
        }
        Ok(())
    }
    /// A port without an access VLAN is a trunk to OVS: it carries the
    /// tagged traffic of every VLAN (of those in `trunks` when set). A
    /// policy must see that, not only a missing `vlan`.
    fn trunk(&mut self, trunk: bool) {
        self.put("trunk", RestrictedExpression::new_bool(trunk));
    }
    /// What a new port carries, for add-port and the Docker driver's veth port alike.
    fn port_settings(
        &mut self,
        mtu: Option<Mtu>,
        mac: Option<MacAddr>,
        vlan: Option<VlanId>,
        trunks: &[VlanId],
    ) {
        if let Some(m) = mtu {
            self.long("mtu", m.get());
        }
        if let Some(m) = mac {
            self.string("mac", m);
        }
        if let Some(v) = vlan {
            self.long("vlan", v.get());
        }
        self.trunk(vlan.is_none());
        let trunks = trunks.iter().map(|t| RestrictedExpression::new_long(t.get().into()));
        self.put("trunks", RestrictedExpression::new_set(trunks));
    }
    fn address(&mut self, cidr: &Cidr) {
        self.ip("address", cidr.addr);
        self.long("prefix", cidr.prefix);
        self.ip("subnet", cidr.network());
    }
    /// An OVN change: the switch or router a tenant must own, the logical
    /// port, and what it carries (subnet, mtu; a router port's mac and networks).
    fn ovn(&mut self, change: &crate::backend::ovn::OvnChange) {
        use crate::backend::ovn::OvnChange;
        if let Some(s) = change.switch() {
            self.string("switch", s);
        }
        if let Some(r) = change.router() {
            self.string("router", r);
        }
        if let Some(p) = change.port() {
            self.string("logical_port", p);
        }
        match change {
            OvnChange::CreateSwitch { subnet, mtu, .. } => {
                if let Some(s) = subnet {
                    self.ip("subnet", s.network());
                }
                if let Some(m) = mtu {
                    self.long("mtu", m.get());
                }
            }
            OvnChange::AddRouterPort { mac, networks, .. } => {
                self.string("mac", mac);
                if let Some(n) = networks.first() {
                    self.ip("subnet", n.network());
                    self.ip("address", n.addr);
                }
            }
            _ => {}
        }
    }
    fn route(&mut self, r: &RouteSpec) {
        self.ip("destination", r.normalized_destination());
        if let Some(v) = r.via {
            self.ip("gateway", v);
        }
        if let Some(d) = &r.device {
            self.string("device", d);
        }
    }
}

fn fill_context(request: &Request<'_>, c: &mut Ctx, entities: &mut Vec<Entity>) -> Result<(), String> {
    match request {
        Request::Apply(op) => match op {
            Op::CreateBridge { name, datapath, .. } => {
                c.string("bridge", name);
                c.string("datapath", datapath);
            }
            Op::DeleteBridge { name, .. } => c.string("bridge", name),
            Op::AddPort { bridge, target, ifname, mtu, mac, vlan, trunks, iface_id, .. } => {
                c.string("bridge", bridge);
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.port_settings(*mtu, *mac, *vlan, trunks);
                if let Some(id) = iface_id {
                    c.string("iface_id", id);
                }
            }
            Op::AddVethPort { bridge, peer, mtu, mac, vlan, trunks, .. } => {
                c.string("bridge", bridge);
                // Docker's endpoint: the veth stays in the host until Docker moves it.
                c.target(&crate::types::Target::Host, entities)?;
                c.string("ifname", peer);
                c.port_settings(*mtu, *mac, *vlan, trunks);
            }
            Op::DelPort { bridge, .. } => c.string("bridge", bridge),
            Op::SetExternalIds { bridge, .. } => c.string("bridge", bridge),
            Op::SetVlan { bridge, vlan, .. } => {
                c.string("bridge", bridge);
                if let Some(v) = vlan {
                    c.long("vlan", v.get());
                }
                c.trunk(vlan.is_none());
            }
            Op::AddAddress { target, ifname, cidr } | Op::DelAddress { target, ifname, cidr } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.address(cidr);
            }
            Op::SetMtu { target, ifname, mtu } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.long("mtu", mtu.get());
            }
            Op::SetMac { target, ifname, mac } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.string("mac", mac);
            }
            Op::SetLinkState { target, ifname, .. } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
            }
            Op::SetOffload { target, ifname, offload, on } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.string("offload", offload);
                c.bool("on", *on);
            }
            Op::SetArp { target, ifname, on } => {
                c.target(target, entities)?;
                c.string("ifname", ifname);
                c.bool("on", *on);
            }
            Op::AddRoute { target, route } | Op::DelRoute { target, route } => {
                c.target(target, entities)?;
                c.route(route);
            }
            Op::AddTunnel { bridge, tunnel } => {
                c.string("bridge", bridge);
                c.string("tunnel_kind", tunnel.kind);
                c.ip("remote_ip", tunnel.remote_ip);
                if let Some(k) = tunnel.key {
                    c.long("vni", k);
                }
                if let Some(l) = tunnel.local_ip {
                    c.ip("local_ip", l);
                }
                c.bool("transit", tunnel.transit);
            }
            Op::DelTunnel { bridge, .. } => c.string("bridge", bridge),
            // Undo steps only: never authorized (they do not pass the gate).
            Op::Restore { .. } => {}
            Op::Ovn { change } => c.ovn(change),
        },
        Request::ListBridges { bridge } => c.string("bridge", bridge),
        Request::ListPorts { bridge } => c.string("bridge", bridge),
        Request::ListTunnels { bridge } => c.string("bridge", bridge),
        Request::ListLinks { target } | Request::ListRoutes { target } => c.target(target, entities)?,
        Request::LookupContainer { .. } | Request::ListContainers { .. } => {}
        Request::Ping { target, address } | Request::TcpCheck { target, address } => {
            c.target(target, entities)?;
            c.ip("address", address);
        }
        Request::OvnRead { switch, router, .. } => {
            if let Some(s) = switch {
                c.string("switch", s);
            }
            if let Some(r) = router {
                c.string("router", r);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::INTERFACE_ACTIONS;

    #[test]
    fn schema_has_every_action() {
        let s = schema();
        let actions: HashSet<String> = s.actions().map(|a| a.id().unescaped().to_string()).collect();
        for (iface, acts) in INTERFACE_ACTIONS {
            assert!(actions.contains(*iface), "group {iface}");
            for a in *acts {
                assert!(actions.contains(*a), "action {a} is missing from the schema");
            }
        }
    }

    #[test]
    fn unknown_action_and_attribute_are_errors_with_positions() {
        let s = schema();
        let e =
            parse_policies("permit(principal, action == Action::\"add-porrt\", resource);", "p.cedar", &s)
                .unwrap_err();
        assert!(e.contains("p.cedar:1:") && e.contains("add-porrt"), "{e}");
        let e = parse_policies(
            "permit(principal, action == Action::\"add-port\", resource)\nwhen { principal.colour == \"red\" };",
            "p.cedar",
            &s,
        )
        .unwrap_err();
        assert!(e.contains("p.cedar:2:") && e.contains("colour"), "{e}");
    }
}
