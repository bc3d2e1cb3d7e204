//! The API inventory: every service and endpoint the agent has seen, what each carries, and how
//! that changes. An [`Analyzer`]: it sees each call after pairing and before redaction.
//!
//! ```text
//! pairing ─> ApiCall ─> Inventory::analyze ─┬─> call.route = "/users/{id}"   (then redact, export)
//!                                           ├─> api.inventory.change events (new service,
//!                                           │   endpoint, parameter, field, status, caller;
//!                                           │   shadow / zombie / drift against loaded specs)
//!                                           └─> memory ──(every FLUSH_INTERVAL)──> state database
//! ```
//!
//! For each call: find its service (`service`), template its path in the service's tree
//! (`template`), find or make the endpoint (method + route), and fold the call into its facts
//! (`endpoint`, with `schema`, `sketch` and `auth`). All of that is in memory, with no SQL per
//! call; [`Inventory::tick`] writes the endpoints that changed every [`FLUSH_INTERVAL_NS`],
//! [`FLUSH_SLICE_ENDPOINTS`] per tick in one transaction (a service whose routes moved whole),
//! so a crash loses at most that much and the ticks of a flush (`store`). Readers load the same
//! tables: `observer inventory` (`view`), `observer openapi` (`openapi`), and `observer diff`
//! against an imported spec (`spec`, `diff`).
//!
//! Bounded everywhere: services, endpoints per service and in all, tree nodes, and every fact
//! collection have caps; hitting one is logged once and counted in [`InventoryStats`].

pub mod auth;
pub mod commands;
pub mod diff;
pub mod endpoint;
pub mod openapi;
pub mod schema;
pub mod service;
pub mod sketch;
pub mod spec;
pub mod store;
pub mod template;
pub mod view;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use serde::Serialize;
use thiserror::Error;

use self::{
    diff::{DiffItem, DiffKind},
    endpoint::{EndpointFacts, Novelty, Observation},
    service::{ServiceFacts, ServiceKey, ServiceKind},
    spec::ApiSpec,
    store::{Batch, EndpointRow, ServiceRow, Store},
    template::{NodeId, PathTree, Seg},
};
use crate::{
    findings::EndpointRef,
    model::{rfc3339, ApiCall},
    output::{ChangeKind, InventoryChange, Output},
    pipeline::{Analyzer, AnalyzerStats, InventoryTotals},
    state::{State, StateError},
};

/// How often (kernel time) changed endpoints are written to the state database: at most this
/// much is lost when the agent is killed. Each flush is one transaction of the endpoints that
/// changed, so a shorter interval costs little more than a few fsyncs.
pub const FLUSH_INTERVAL_NS: u64 = 2_000_000_000;

/// Endpoints a flush writes per tick (more when a service whose stored routes moved has more:
/// such a service is written whole). Ticks run on the thread that reads the ring buffer, which
/// fills in ~30 ms at this machine's saturation: writing 10,000 endpoints at once took ~360 ms
/// here (the inventory bench's flush figure), 256 take under 10 ms.
pub const FLUSH_SLICE_ENDPOINTS: usize = 256;

/// Where a flush under way goes on from: a service, and an index into its endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FlushPosition {
    service: usize,
    endpoint: usize,
}

/// Services tracked. A host serves a few dozen and calls a few hundred; past this, calls to new
/// services are counted, not inventoried.
pub const MAX_SERVICES: usize = 1024;

/// Endpoints per service: templating keeps real APIs far below this; it stops a service whose
/// paths defeat templating (every position a new word, under the fan-out limit) from growing.
pub const MAX_ENDPOINTS_PER_SERVICE: usize = 10_000;

/// Endpoints in all. An endpoint costs one to a few kilobytes (more with large body schemas):
/// this bounds the inventory to a few hundred megabytes in the worst case.
pub const MAX_ENDPOINTS: usize = 100_000;

/// Labels other stages may queue between two calls before they are applied.
pub const MAX_PENDING_LABELS: usize = 10_000;

/// Drift items reported live per endpoint (each once); past this, drift is left to
/// `observer diff`.
const MAX_DRIFT_REPORTED_PER_ENDPOINT: usize = 64;

#[derive(Debug, Error)]
pub enum InventoryError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot encode inventory facts: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("{0}")]
    Spec(#[from] spec::SpecError),
    #[error("no service named {name:?}; known services: {known}")]
    UnknownService { name: String, known: String },
    #[error("the inventory holds {count} services; choose one with --service: {known}")]
    AmbiguousService { count: usize, known: String },
    #[error("the inventory is empty: run `observer run` (or `observer replay --state-dir`) first")]
    Empty,
}

/// What the inventory counted, including everything a cap left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryStats {
    pub calls: u64,
    /// Calls without a method or path (responses to unseen requests), or without a server.
    pub calls_skipped: u64,
    pub services_capped: u64,
    pub endpoints_capped: u64,
    /// New path literals folded into parameters by the tree's node cap.
    pub tree_capped: u64,
    pub labels_dropped: u64,
    pub flushes: u64,
    pub flush_errors: u64,
}

/// One endpoint in memory.
pub struct Endpoint {
    pub method: Box<str>,
    pub route: Arc<str>,
    pub facts: EndpointFacts,
    node: NodeId,
    segs: Vec<Seg>,
    /// The route this endpoint is stored under, if it was stored.
    stored_route: Option<String>,
    dirty: bool,
    reported_drift: BTreeSet<String>,
}

/// A method as a number, so finding an endpoint compares a byte, not a string in memory the
/// cache may not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MethodCode(u8);

impl MethodCode {
    /// Any method but the common ones: the name itself is compared.
    const OTHER: MethodCode = MethodCode(u8::MAX);

    fn of(method: &str) -> MethodCode {
        MethodCode(match method {
            "GET" => 0,
            "POST" => 1,
            "PUT" => 2,
            "DELETE" => 3,
            "PATCH" => 4,
            "HEAD" => 5,
            "OPTIONS" => 6,
            _ => return MethodCode::OTHER,
        })
    }
}

/// One service in memory.
pub struct Service {
    pub key: ServiceKey,
    pub facts: ServiceFacts,
    tree: PathTree,
    endpoints: Vec<Endpoint>,
    /// Endpoints by the node their route ends at: (method, index) pairs, so a lookup touches
    /// no endpoint but the one it finds.
    by_node: template::FastMap<NodeId, Vec<(MethodCode, usize)>>,
    dirty: bool,
    tree_dirty: bool,
    /// Routes merged away since the last flush: (method, route).
    removed: Vec<(String, String)>,
}

impl Service {
    fn new(key: ServiceKey) -> Service {
        Service {
            key,
            facts: ServiceFacts::default(),
            tree: PathTree::default(),
            endpoints: Vec::new(),
            by_node: template::FastMap::default(),
            dirty: true,
            tree_dirty: true,
            removed: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        service::display_name(&self.key, &self.facts)
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn find(&self, node: NodeId, method: &str) -> Option<usize> {
        let code = MethodCode::of(method);
        self.by_node
            .get(&node)?
            .iter()
            .find(|(c, i)| {
                *c == code && (code != MethodCode::OTHER || &*self.endpoints[*i].method == method)
            })
            .map(|(_, i)| *i)
    }

    /// The tree changed shape: move every endpoint to the node its template reaches now,
    /// merging endpoints that became one.
    fn reshape(&mut self) {
        let old = std::mem::take(&mut self.endpoints);
        self.by_node.clear();
        for mut endpoint in old {
            let node = self.tree.resolve(&endpoint.segs);
            let route = self.tree.route(node);
            match self.find(node, &endpoint.method) {
                Some(existing) => {
                    let target = &mut self.endpoints[existing];
                    target.facts.merge(&endpoint.facts);
                    target.dirty = true;
                    if let Some(stored) = endpoint.stored_route.take() {
                        self.removed.push((endpoint.method.to_string(), stored));
                    }
                }
                None => {
                    if endpoint.route != route {
                        if let Some(stored) = endpoint.stored_route.take() {
                            self.removed.push((endpoint.method.to_string(), stored));
                        }
                        endpoint.route = route;
                        endpoint.dirty = true;
                    }
                    endpoint.node = node;
                    endpoint.segs = self.tree.segs(node);
                    self.by_node
                        .entry(node)
                        .or_default()
                        .push((MethodCode::of(&endpoint.method), self.endpoints.len()));
                    self.endpoints.push(endpoint);
                }
            }
        }
        self.tree_dirty = true;
        self.dirty = true;
    }

    fn add_endpoint(&mut self, node: NodeId, method: &str) -> usize {
        let index = self.endpoints.len();
        self.endpoints.push(Endpoint {
            method: method.into(),
            route: self.tree.route(node),
            facts: EndpointFacts::default(),
            node,
            segs: self.tree.segs(node),
            stored_route: None,
            dirty: true,
            reported_drift: BTreeSet::new(),
        });
        self.by_node
            .entry(node)
            .or_default()
            .push((MethodCode::of(method), index));
        index
    }
}

/// A spec loaded at startup for live drift reports, and the service it is about (`None`: every
/// local service).
pub struct SpecBinding {
    pub service: Option<String>,
    pub spec: ApiSpec,
}

impl SpecBinding {
    fn applies_to(&self, service: &Service) -> bool {
        match &self.service {
            None => service.key.kind == ServiceKind::Local,
            Some(name) => service_matches(service, name),
        }
    }
}

/// Whether `--service NAME` means this service: its display name, its `host:port`, its port
/// alone, or one of its process names.
pub fn service_matches(service: &Service, name: &str) -> bool {
    name == service.name()
        || name == service.key.to_string()
        || name
            .parse::<u16>()
            .is_ok_and(|port| port == service.key.port)
        || service.facts.processes.contains(name)
        || service.facts.hosts.contains(name)
}

/// A label another stage wants attached to the endpoint of a call.
struct PendingLabel {
    call: LabelTarget,
    label: String,
}

/// What of a call decides its endpoint.
struct LabelTarget {
    role: Option<crate::conn::Role>,
    server_address: Option<String>,
    server_port: Option<u16>,
    host: Option<String>,
    method: String,
    route: String,
}

/// A handle other stages use to attach labels (sensitive-data kinds...) to endpoints: the slot
/// the inventory keeps for detectors. Cheap to clone; labels are applied at the inventory's
/// next call or tick, and persisted with the endpoint.
#[derive(Clone, Default)]
pub struct Labeler {
    pending: Arc<Mutex<Vec<PendingLabel>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Labeler {
    /// Attach `label` to the endpoint `call` belongs to. The call must have gone through the
    /// inventory already (its `route` set), as it has for any analyzer added after it.
    pub fn label(&self, call: &ApiCall, label: &str) {
        let (Some(method), Some(route)) =
            (&call.method, call.route.as_ref().or(call.path.as_ref()))
        else {
            return;
        };
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if pending.len() >= MAX_PENDING_LABELS {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        pending.push(PendingLabel {
            call: LabelTarget {
                role: call.role,
                server_address: call.server_address.clone(),
                server_port: call.server_port,
                host: service::host_header(call).map(str::to_string),
                method: method.clone(),
                route: route.clone(),
            },
            label: label.to_string(),
        });
    }
}

/// The inventory: in memory, persisted to the state database.
pub struct Inventory {
    services: Vec<Service>,
    index: HashMap<ServiceKey, usize>,
    /// Local services by port, then address: found per call without allocating a key.
    local_by_port: template::FastMap<u16, Vec<(Box<str>, usize)>>,
    endpoint_count: usize,
    store: Option<Store>,
    specs: Vec<SpecBinding>,
    /// Route templates from the command line (`--route`), for every service.
    routes: Vec<String>,
    labeler: Labeler,
    last_flush_ns: Option<u64>,
    /// Where the flush under way goes on from at the next tick.
    flush_from: Option<FlushPosition>,
    stats: InventoryStats,
    warned: BTreeSet<&'static str>,
}

impl Inventory {
    /// An inventory kept in memory only (tests, benchmarks).
    pub fn in_memory() -> Inventory {
        Inventory {
            services: Vec::new(),
            index: HashMap::new(),
            local_by_port: template::FastMap::default(),
            endpoint_count: 0,
            store: None,
            specs: Vec::new(),
            routes: Vec::new(),
            labeler: Labeler::default(),
            last_flush_ns: None,
            flush_from: None,
            stats: InventoryStats::default(),
            warned: BTreeSet::new(),
        }
    }

    /// The inventory persisted in `state`, with what it already holds loaded.
    pub fn open(state: State) -> Result<Inventory, InventoryError> {
        let store = Store::open(state)?;
        let mut inventory = Inventory::in_memory();
        for stored in store.load()? {
            let mut service = Service::new(stored.key.clone());
            service.facts = stored.facts;
            service.tree = stored.tree.unwrap_or_default();
            service.dirty = false;
            service.tree_dirty = false;
            for e in stored.endpoints {
                let node = service.tree.resolve(&e.segs);
                let index = match service.find(node, &e.method) {
                    Some(existing) => {
                        service.endpoints[existing].facts.merge(&e.facts);
                        service.removed.push((e.method, e.route));
                        continue;
                    }
                    None => service.add_endpoint(node, &e.method),
                };
                let endpoint = &mut service.endpoints[index];
                endpoint.facts = e.facts;
                endpoint.dirty = *endpoint.route != *e.route;
                if endpoint.dirty {
                    service.removed.push((e.method, e.route));
                } else {
                    endpoint.stored_route = Some(e.route);
                }
            }
            inventory.endpoint_count += service.endpoints.len();
            inventory.insert_service(service);
        }
        inventory.store = Some(store);
        Ok(inventory)
    }

    /// Load specs for live drift reports; their paths become user templates.
    pub fn with_specs(mut self, specs: Vec<SpecBinding>) -> Inventory {
        self.specs = specs;
        for i in 0..self.services.len() {
            self.declare_spec_templates(i);
        }
        self
    }

    /// Route templates that win over learned ones in every service (`--route`).
    pub fn with_routes(mut self, routes: Vec<String>) -> Inventory {
        self.routes = routes;
        for i in 0..self.services.len() {
            self.declare_spec_templates(i);
        }
        self
    }

    fn declare_spec_templates(&mut self, index: usize) {
        let service = &mut self.services[index];
        let mut declared = false;
        for route in &self.routes {
            service.tree.declare(route);
            declared = true;
        }
        for binding in &self.specs {
            if binding.applies_to(service) {
                for operation in &binding.spec.operations {
                    service.tree.declare(&operation.path);
                    declared = true;
                }
            }
        }
        if declared && !service.endpoints.is_empty() {
            service.reshape();
        }
    }

    /// The handle other analyzers use to label endpoints.
    pub fn labeler(&self) -> Labeler {
        self.labeler.clone()
    }

    pub fn stats(&self) -> InventoryStats {
        let mut stats = self.stats.clone();
        stats.labels_dropped += self
            .labeler
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        stats
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The one service `name` designates (see [`service_matches`]), or the only local service
    /// when `name` is `None`.
    pub fn select(&self, name: Option<&str>) -> Result<Vec<&Service>, InventoryError> {
        let known = || {
            self.services
                .iter()
                .map(Service::name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.services.is_empty() {
            return Err(InventoryError::Empty);
        }
        match name {
            Some(name) => {
                let found: Vec<&Service> = self
                    .services
                    .iter()
                    .filter(|s| service_matches(s, name))
                    .collect();
                if found.is_empty() {
                    return Err(InventoryError::UnknownService {
                        name: name.to_string(),
                        known: known(),
                    });
                }
                Ok(found)
            }
            None => Ok(self.services.iter().collect()),
        }
    }

    /// Attach a label to an endpoint directly; false if there is no such endpoint.
    pub fn label_endpoint(
        &mut self,
        key: &ServiceKey,
        method: &str,
        route: &str,
        label: &str,
    ) -> bool {
        let Some(&index) = self.index.get(key) else {
            return false;
        };
        let service = &mut self.services[index];
        match service
            .endpoints
            .iter_mut()
            .find(|e| &*e.method == method && &*e.route == route)
        {
            Some(endpoint) => {
                if endpoint.facts.label(label) {
                    endpoint.dirty = true;
                }
                true
            }
            None => false,
        }
    }

    fn apply_pending_labels(&mut self) {
        let pending = match self.labeler.pending.try_lock() {
            Ok(mut pending) if !pending.is_empty() => std::mem::take(&mut *pending),
            _ => return,
        };
        for PendingLabel { call, label } in pending {
            let target = service::Target {
                role: call.role,
                server_address: call.server_address.as_deref(),
                server_port: call.server_port,
                host: call.host.as_deref(),
            };
            if let Some(key) = service::key_for(target, |a, p| self.is_local(a, p)) {
                self.label_endpoint(&key, &call.method, &call.route, &label);
            }
        }
    }

    fn is_local(&self, address: &str, port: u16) -> bool {
        self.local_service(address, port).is_some()
    }

    /// The local service at `address:port`, without building a key: the lookup every call
    /// makes first.
    fn local_service(&self, address: &str, port: u16) -> Option<usize> {
        self.local_by_port
            .get(&port)?
            .iter()
            .find(|(a, _)| &**a == address)
            .map(|(_, index)| *index)
    }

    fn insert_service(&mut self, service: Service) -> usize {
        let index = self.services.len();
        if service.key.kind == ServiceKind::Local {
            self.local_by_port
                .entry(service.key.port)
                .or_default()
                .push((service.key.host.as_str().into(), index));
        }
        self.index.insert(service.key.clone(), index);
        self.services.push(service);
        index
    }

    fn warn_once(&mut self, what: &'static str, message: impl FnOnce() -> String) {
        if self.warned.insert(what) {
            tracing::warn!("inventory: {}", message());
        }
    }

    fn service_index(
        &mut self,
        key: ServiceKey,
        call: &ApiCall,
        out: &mut Vec<Output>,
    ) -> Option<usize> {
        if let Some(&index) = self.index.get(&key) {
            return Some(index);
        }
        if self.services.len() >= MAX_SERVICES {
            self.stats.services_capped += 1;
            self.warn_once("services", || {
                format!("{MAX_SERVICES} services tracked: calls to new services are counted, not inventoried")
            });
            return None;
        }
        let index = self.insert_service(Service::new(key));
        self.declare_spec_templates(index);
        // Named after this first call's attributes (its process, when it is the server).
        self.services[index].facts.observe(call, call.realtime_ns);
        out.push(Output::Inventory(self.change(
            index,
            call,
            ChangeKind::NewService,
            None,
            Vec::new(),
        )));
        Some(index)
    }

    fn change(
        &self,
        service: usize,
        call: &ApiCall,
        change: ChangeKind,
        endpoint: Option<usize>,
        details: Vec<String>,
    ) -> InventoryChange {
        let service = &self.services[service];
        let endpoint = endpoint.map(|i| &service.endpoints[i]);
        InventoryChange {
            event_name: "api.inventory.change".to_string(),
            timestamp: call.timestamp.clone(),
            change,
            service: service.name(),
            endpoint: EndpointRef {
                method: endpoint.map(|e| e.method.to_string()),
                route: endpoint.map(|e| e.route.to_string()),
                server_address: Some(service.key.host.clone()),
                server_port: Some(service.key.port),
            },
            details,
        }
    }

    /// Compare one endpoint with the specs that apply to its service, reporting each finding
    /// once.
    fn live_drift(
        &mut self,
        service: usize,
        endpoint: usize,
        call: &ApiCall,
        out: &mut Vec<Output>,
    ) {
        let svc = &self.services[service];
        let mut items: Vec<DiffItem> = Vec::new();
        for binding in self.specs.iter().filter(|b| b.applies_to(svc)) {
            items.extend(diff::check_endpoint(
                &binding.spec,
                &svc.endpoints[endpoint],
                svc.endpoints
                    .iter()
                    .map(|e| (e.method.as_ref(), e.route.as_ref())),
            ));
        }
        for item in items {
            let reported = &mut self.services[service].endpoints[endpoint].reported_drift;
            let key = format!("{:?}:{}", item.kind, item.detail);
            if reported.len() >= MAX_DRIFT_REPORTED_PER_ENDPOINT || !reported.insert(key) {
                continue;
            }
            let kind = match item.kind {
                DiffKind::Shadow => ChangeKind::ShadowEndpoint,
                DiffKind::Zombie => ChangeKind::ZombieEndpoint,
                DiffKind::Orphan => continue,
                DiffKind::Drift => ChangeKind::Drift,
            };
            out.push(Output::Inventory(self.change(
                service,
                call,
                kind,
                Some(endpoint),
                vec![item.detail],
            )));
        }
    }

    /// Write what changed since the last flush, all at once.
    pub fn flush(&mut self) -> Result<(), InventoryError> {
        self.flush_from = None;
        if self
            .flush_slice(FlushPosition::default(), usize::MAX)?
            .is_some()
        {
            self.stats.flushes += 1;
        }
        Ok(())
    }

    /// Write what changed from `from` on, up to `budget` endpoints (more when a service goes
    /// whole), in one transaction. Returns where the next slice goes on from (past the last
    /// service when nothing is left); `None` for an inventory kept in memory, which writes
    /// nothing.
    ///
    /// A service whose stored routes moved (templating merged or renamed endpoints) is written
    /// whole, its moved endpoints with the removal of their old rows, so that no route is ever
    /// stored twice or lost; any other service may be cut between endpoints, each transaction
    /// writing the service's row and its path tree if they changed, so that every stored
    /// endpoint's path is in the stored tree. A vulnerability scanner's thousands of new paths
    /// on one service are then written over several ticks.
    fn flush_slice(
        &mut self,
        from: FlushPosition,
        budget: usize,
    ) -> Result<Option<FlushPosition>, InventoryError> {
        let Some(store) = &mut self.store else {
            return Ok(None);
        };
        let mut batch = Batch::default();
        // Of each service in the batch: its index, whether its row went too, whether it went
        // whole, and the endpoints the batch looked at.
        let mut written = Vec::new();
        let mut at = from;
        while let Some(service) = self.services.get(at.service) {
            let room = budget.saturating_sub(batch.endpoints.len());
            if room == 0 {
                break;
            }
            let whole = !service.removed.is_empty();
            if whole {
                at.endpoint = 0;
            }
            if service.dirty {
                batch.services.push(ServiceRow {
                    key: &service.key,
                    facts: &service.facts,
                    tree: service.tree_dirty.then_some(&service.tree),
                });
            }
            for (method, route) in &service.removed {
                batch
                    .removed
                    .push((&service.key, method.clone(), route.clone()));
            }
            // Clamped rather than trusted: templating may have merged endpoints since the
            // last slice (any it left dirty before the position go with the next flush).
            let start = at.endpoint.min(service.endpoints.len());
            let mut taken = 0;
            let mut end = start;
            for endpoint in &service.endpoints[start..] {
                if !whole && taken == room {
                    break;
                }
                end += 1;
                if endpoint.dirty {
                    taken += 1;
                    batch.endpoints.push(EndpointRow {
                        service: &service.key,
                        method: &endpoint.method,
                        route: &endpoint.route,
                        segs: &endpoint.segs,
                        facts: &endpoint.facts,
                    });
                }
            }
            written.push((at.service, service.dirty, whole, start..end));
            if end < service.endpoints.len() {
                at.endpoint = end;
                break;
            }
            at = FlushPosition {
                service: at.service + 1,
                endpoint: 0,
            };
        }
        if batch.is_empty() {
            return Ok(Some(at));
        }
        store.save(&batch)?;
        drop(batch);
        for (index, row, whole, endpoints) in written {
            let service = &mut self.services[index];
            if row {
                service.dirty = false;
                service.tree_dirty = false;
            }
            if whole {
                service.removed.clear();
            }
            for endpoint in &mut service.endpoints[endpoints] {
                if endpoint.dirty {
                    endpoint.dirty = false;
                    endpoint.stored_route = Some(endpoint.route.to_string());
                }
            }
        }
        Ok(Some(at))
    }

    fn flush_logged(&mut self) {
        if let Err(error) = self.flush() {
            self.flush_failed(&error);
        }
    }

    /// Go on with the flush under way (from `from`) for one slice of [`FLUSH_SLICE_ENDPOINTS`].
    fn continue_flush(&mut self, from: FlushPosition) {
        match self.flush_slice(from, FLUSH_SLICE_ENDPOINTS) {
            Ok(None) => self.flush_from = None,
            Ok(Some(next)) if next.service >= self.services.len() => {
                self.flush_from = None;
                self.stats.flushes += 1;
            }
            Ok(Some(next)) => self.flush_from = Some(next),
            Err(error) => {
                self.flush_from = None;
                self.flush_failed(&error);
            }
        }
    }

    fn flush_failed(&mut self, error: &InventoryError) {
        self.stats.flush_errors += 1;
        // Dirty state stays dirty: the next flush tries again.
        tracing::error!("inventory: cannot write the state database: {error}");
    }

    fn observe(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) -> Option<()> {
        let (Some(method), Some(path)) = (call.method.as_deref(), call.path.as_deref()) else {
            return None;
        };
        let known = call
            .server_address
            .as_deref()
            .zip(call.server_port)
            .and_then(|(address, port)| self.local_service(address, port));
        let s = match known {
            Some(s) => s,
            None => {
                let key = service::key_for(service::Target::of(call), |a, p| self.is_local(a, p))?;
                self.service_index(key, call, out)?
            }
        };
        let at_ns = call.realtime_ns;
        let service = &mut self.services[s];
        let counts = call.role == Some(crate::conn::Role::Server) || !service.facts.server_seen;
        service.facts.observe(call, at_ns);
        if counts {
            service.facts.calls += 1;
        }
        service.dirty = true;

        let lookup = service.tree.lookup(path);
        if lookup.grew || lookup.reshaped {
            service.tree_dirty = true;
        }
        if lookup.reshaped {
            let before = service.endpoints.len();
            service.reshape();
            self.endpoint_count -= before - self.services[s].endpoints.len();
        }
        if lookup.capped {
            self.stats.tree_capped += 1;
            self.warn_once("tree", || {
                format!(
                    "a service's path tree reached {} nodes: new path segments are taken for parameters",
                    template::MAX_NODES_PER_SERVICE
                )
            });
        }
        let service = &mut self.services[s];
        let (e, new_endpoint) = match service.find(lookup.node, method) {
            Some(e) => (e, false),
            None => {
                if service.endpoints.len() >= MAX_ENDPOINTS_PER_SERVICE
                    || self.endpoint_count >= MAX_ENDPOINTS
                {
                    self.stats.endpoints_capped += 1;
                    self.warn_once("endpoints", || {
                        format!(
                            "endpoint cap reached ({MAX_ENDPOINTS_PER_SERVICE} per service, \
                             {MAX_ENDPOINTS} in all): calls to new endpoints are counted, not inventoried"
                        )
                    });
                    return None;
                }
                self.endpoint_count += 1;
                (service.add_endpoint(lookup.node, method), true)
            }
        };
        let endpoint = &mut service.endpoints[e];
        call.route = Some(String::from(&*endpoint.route));

        let mut novelties = Vec::new();
        endpoint.facts.record(
            &Observation {
                call,
                at_ns,
                path,
                segs: &endpoint.segs,
                counts,
            },
            &mut novelties,
        );
        endpoint.dirty = true;

        if new_endpoint {
            out.push(Output::Inventory(self.change(
                s,
                call,
                ChangeKind::NewEndpoint,
                Some(e),
                Vec::new(),
            )));
        }
        for novelty in &novelties {
            let kind = match novelty {
                Novelty::Parameter { .. } => ChangeKind::NewParameter,
                Novelty::Field { .. } => ChangeKind::NewField,
                Novelty::StatusCode(_) => ChangeKind::NewStatusCode,
                Novelty::Caller(_) => ChangeKind::NewCaller,
            };
            out.push(Output::Inventory(self.change(
                s,
                call,
                kind,
                Some(e),
                vec![novelty.describe()],
            )));
        }
        if !self.specs.is_empty() && (new_endpoint || !novelties.is_empty()) {
            self.live_drift(s, e, call, out);
        }
        Some(())
    }
}

impl Analyzer for Inventory {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) {
        self.apply_pending_labels();
        self.stats.calls += 1;
        if self.observe(call, out).is_none() {
            self.stats.calls_skipped += 1;
        }
    }

    fn tick(&mut self, now_ns: u64, _out: &mut Vec<Output>) {
        self.apply_pending_labels();
        if let Some(from) = self.flush_from {
            self.continue_flush(from);
            return;
        }
        let last = *self.last_flush_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(last) >= FLUSH_INTERVAL_NS {
            self.last_flush_ns = Some(now_ns);
            self.continue_flush(FlushPosition::default());
        }
    }

    fn stats(&self, out: &mut AnalyzerStats) {
        out.inventory = Some(InventoryTotals {
            services: self.services.len() as u64,
            endpoints: self.endpoint_count as u64,
            stats: self.stats(),
        });
    }

    fn finish(&mut self, _out: &mut Vec<Output>) {
        self.apply_pending_labels();
        self.flush_logged();
        let stats = self.stats();
        tracing::info!(
            "inventory: {} services, {} endpoints from {} calls ({} skipped; capped: {} services, \
             {} endpoints, {} path segments; {} flushes, {} failed)",
            self.services.len(),
            self.endpoint_count,
            stats.calls,
            stats.calls_skipped,
            stats.services_capped,
            stats.endpoints_capped,
            stats.tree_capped,
            stats.flushes,
            stats.flush_errors
        );
    }
}

/// Nanoseconds since the epoch of an RFC 3339 UTC timestamp as `model::rfc3339` writes it
/// (`2026-11-28T18:45:55.125312Z`).
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let mut nanos = 0u64;
    if b[19] == b'.' {
        let mut scale = 100_000_000;
        for digit in b[20..].iter().take_while(|c| c.is_ascii_digit()) {
            nanos += u64::from(digit - b'0') * scale;
            scale /= 10;
        }
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of model's.
    let y = if month <= 2 { year - 1 } else { year } as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(secs * 1_000_000_000 + nanos)
}

/// A wall-clock time for people (`2026-11-28T18:45:55Z`), or `-` when unknown.
pub fn format_time(ns: u64) -> String {
    if ns == 0 {
        return "-".to_string();
    }
    let full = rfc3339(ns);
    format!("{}Z", &full[..19])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::conn::Role;
    use template::LITERAL_FANOUT_LIMIT;

    /// A complete server-side call, for tests.
    pub(crate) fn call(method: &str, path: &str, status: u16) -> ApiCall {
        // 2026-01-02T03:04:05.000006Z
        let (timestamp, realtime_ns) = crate::model::call_time(1_767_323_045_000_006_000);
        ApiCall {
            event_name: "api.call",
            timestamp,
            status: crate::model::CallStatus::Complete,
            role: Some(Role::Server),
            method: Some(method.into()),
            path: Some(path.into()),
            query: None,
            route: None,
            status_code: Some(status),
            interim_status_codes: Vec::new(),
            protocol_name: "http",
            protocol_version: Some("1.1"),
            transport: "tcp",
            server_address: Some("127.0.0.1".into()),
            server_port: Some(8080),
            client_address: Some("127.0.0.1".into()),
            client_port: Some(40000),
            tls: false,
            tls_library: None,
            duration_ms: Some(1.5),
            latency_ms: Some(1.0),
            pid: 100,
            executable_name: Some("python3".into()),
            executable_path: None,
            command_args: Default::default(),
            container_id: None,
            pod_uid: None,
            request_headers: Default::default(),
            response_headers: Default::default(),
            request_body: None,
            response_body: None,
            incomplete: Vec::new(),
            connection: "100:3:1".into(),
            start_ns: 1,
            realtime_ns,
            request_body_bytes: Vec::new(),
            response_body_bytes: Vec::new(),
        }
    }

    fn run(
        inventory: &mut Inventory,
        calls: impl IntoIterator<Item = ApiCall>,
    ) -> Vec<InventoryChange> {
        let mut out = Vec::new();
        for mut call in calls {
            inventory.analyze(&mut call, &mut out);
        }
        out.into_iter()
            .filter_map(|o| match o {
                Output::Inventory(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The inventory is kept and exported: no value the scanner finds on its shape alone may
    /// reach it, whether in a path segment, as a query parameter's name, or as a JSON key.
    #[test]
    fn no_value_of_the_corpus_reaches_the_inventory() {
        use crate::sensitive::{corpus, fields::Source, scan::Scanner, types::DataType};
        let scanner = Scanner::builtin();
        let mut inventory = Inventory::in_memory();
        let mut out = Vec::new();
        let mut values = Vec::new();
        for sample in corpus::generate(0x1_4e7, 20 * DataType::ALL.len()) {
            for (_, value) in sample.labels {
                let mut found = Vec::new();
                scanner.scan_source(Source::Body(Some("text/plain")), &value, 0, &mut found);
                let path_safe = value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"@._~:-".contains(&b));
                if found.is_empty() || !path_safe {
                    continue;
                }
                let mut call = call("POST", &format!("/by/{value}/x"), 200);
                call.query = Some(format!("{value}=1&page=2"));
                call.request_headers
                    .insert("content-type", "application/json");
                call.request_body_bytes = format!(r#"{{"by":{{"{value}":1}}}}"#).into_bytes();
                inventory.analyze(&mut call, &mut out);
                values.push(value);
            }
        }
        assert!(values.len() >= 200, "{} values", values.len());
        let mut kept = serde_json::to_string(&out).expect("json");
        for service in inventory.services() {
            kept.push_str(&serde_json::to_string(&openapi::document(service)).expect("json"));
        }
        kept.push_str(&view::view(inventory.services()).to_table());
        for value in &values {
            assert!(!kept.contains(value.as_str()), "{value} kept:\n{kept}");
        }
    }

    #[test]
    fn calls_are_templated_and_changes_reported() {
        let mut inventory = Inventory::in_memory();
        let mut first = call("GET", "/users/1", 200);
        let mut out = Vec::new();
        inventory.analyze(&mut first, &mut out);
        assert_eq!(first.route.as_deref(), Some("/users/{id}"));
        let changes = run(
            &mut inventory,
            [
                call("GET", "/users/2", 200),
                call("GET", "/users/3", 404),
                call("POST", "/users", 201),
            ],
        );
        let kinds: Vec<_> = changes.iter().map(|c| c.change).collect();
        assert_eq!(
            kinds,
            vec![ChangeKind::NewStatusCode, ChangeKind::NewEndpoint]
        );
        let service = &inventory.services()[0];
        assert_eq!(service.name(), "python3@127.0.0.1:8080");
        assert_eq!(service.endpoints()[0].facts.calls, 3);
        assert_eq!(service.facts.calls, 4);
    }

    #[test]
    fn a_call_seen_from_both_sides_counts_once() {
        let mut inventory = Inventory::in_memory();
        let server = call("GET", "/a", 200);
        let mut client = server.clone();
        client.role = Some(Role::Client);
        client.executable_name = Some("curl".into());
        let changes = run(&mut inventory, [server, client]);
        let endpoint = &inventory.services()[0].endpoints()[0];
        assert_eq!(endpoint.facts.calls, 1);
        assert_eq!(inventory.services().len(), 1);
        assert_eq!(
            changes.last().unwrap().details,
            vec!["new caller curl (127.0.0.1)"]
        );
    }

    #[test]
    fn learned_parameters_merge_endpoints() {
        let mut inventory = Inventory::in_memory();
        let calls: Vec<ApiCall> = (0..40)
            .map(|i| call("GET", &format!("/users/name{i}x/profile"), 200))
            .collect();
        run(&mut inventory, calls);
        let service = &inventory.services()[0];
        assert_eq!(service.endpoints().len(), 1);
        assert_eq!(&*service.endpoints()[0].route, "/users/{id}/profile");
        assert_eq!(service.endpoints()[0].facts.calls, 40);
        assert_eq!(inventory.endpoint_count, 1);
    }

    #[test]
    fn labels_from_other_stages_reach_the_endpoint() {
        let mut inventory = Inventory::in_memory();
        let labeler = inventory.labeler();
        let mut c = call("GET", "/users/7", 200);
        let mut out = Vec::new();
        inventory.analyze(&mut c, &mut out);
        labeler.label(&c, "email");
        inventory.tick(1, &mut out);
        let endpoint = &inventory.services()[0].endpoints()[0];
        assert!(endpoint.facts.labels.contains("email"));
    }

    #[test]
    fn a_service_is_cut_between_endpoints_unless_its_routes_moved() {
        let dir = crate::state::test_dir("inventory-cut");
        // Paths of three literal segments, each level under the fan-out that templates it.
        let letters = |range: std::ops::Range<u8>| range.map(|b| char::from(b'a' + b));
        let paths = |first: std::ops::Range<u8>| {
            letters(first).flat_map(move |x| {
                letters(0..10)
                    .flat_map(move |y| letters(0..6).map(move |z| format!("/{x}/{y}/{z}")))
            })
        };
        let mut inventory = Inventory::open(State::open(&dir).unwrap()).unwrap();
        run(
            &mut inventory,
            paths(0..10).map(|path| call("GET", &path, 200)),
        );
        let endpoints = 10 * 10 * 6;
        assert!(endpoints > 2 * FLUSH_SLICE_ENDPOINTS);
        let dirty = |inventory: &Inventory| {
            inventory.services[0]
                .endpoints
                .iter()
                .filter(|e| e.dirty)
                .count()
        };
        let mut out = Vec::new();
        inventory.tick(1, &mut out);
        assert_eq!(dirty(&inventory), endpoints);
        let mut now = 1 + FLUSH_INTERVAL_NS;
        inventory.tick(now, &mut out);
        assert_eq!(dirty(&inventory), endpoints - FLUSH_SLICE_ENDPOINTS);
        // What the first slice stored loads back as it was: the service's row and tree went
        // with it.
        let stored = Inventory::open(State::open(&dir).unwrap()).unwrap();
        let routes = |inventory: &Inventory| -> BTreeSet<String> {
            inventory.services[0]
                .endpoints
                .iter()
                .map(|e| e.route.to_string())
                .collect()
        };
        assert_eq!(routes(&stored).len(), FLUSH_SLICE_ENDPOINTS);
        assert!(routes(&stored).is_subset(&routes(&inventory)));
        drop(stored);
        for left in [endpoints - 2 * FLUSH_SLICE_ENDPOINTS, 0] {
            now += 1;
            inventory.tick(now, &mut out);
            assert_eq!(dirty(&inventory), left);
        }

        // More new endpoints than a slice, and /a/a's last segment past the fan-out: its six
        // stored routes become one template, and the service goes whole in one slice.
        let more = 5 * 10 * 6;
        assert!(more > FLUSH_SLICE_ENDPOINTS);
        run(
            &mut inventory,
            paths(10..15)
                .chain(
                    (6..LITERAL_FANOUT_LIMIT as u8 + 2)
                        .map(|z| format!("/a/a/{}", char::from(b'a' + z))),
                )
                .map(|path| call("GET", &path, 200)),
        );
        assert!(!inventory.services[0].removed.is_empty());
        assert!(dirty(&inventory) > FLUSH_SLICE_ENDPOINTS);
        now += FLUSH_INTERVAL_NS;
        inventory.tick(now, &mut out);
        assert_eq!(dirty(&inventory), 0);
        assert!(inventory.services[0].removed.is_empty());
        drop(inventory);
        let reopened = Inventory::open(State::open(&dir).unwrap()).unwrap();
        let reopened_routes = routes(&reopened);
        assert_eq!(reopened_routes.len(), endpoints - 6 + more + 1);
        assert!(!reopened_routes.contains("/a/a/a"), "{reopened_routes:?}");
        assert_eq!(dirty(&reopened), 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn what_is_stored_loads_back_consistent_at_every_tick() {
        // Calls and ticks at random on a few services: new paths on every level, bursts that
        // push a level past the fan-out (templating moves stored routes, mid-flush too), and
        // ticks that start flushes or go on with them. After every tick the store, opened
        // apart, holds no route its own tree would move or merge (loading found nothing
        // dirty) and has lost no call it held (a moved route's old row never goes before its
        // new one); at the end it holds exactly what memory does.
        let dir = crate::state::test_dir("inventory-consistent");
        for seed in 0..3 {
            let _ = std::fs::remove_dir_all(&dir);
            let mut rng = crate::sensitive::corpus::Rng::new(0x1_4e0 + seed);
            let mut inventory = Inventory::open(State::open(&dir).unwrap()).unwrap();
            let mut out = Vec::new();
            let mut now = 1;
            let mut stored_calls = 0;
            for _ in 0..20 {
                // A level's literals: under the fan-out, or past it.
                let burst = if rng.chance(15) {
                    LITERAL_FANOUT_LIMIT + 6
                } else {
                    LITERAL_FANOUT_LIMIT / 2
                } as u64;
                let calls: Vec<ApiCall> = (0..rng.below(1_000))
                    .map(|_| {
                        let segment = |rng: &mut crate::sensitive::corpus::Rng, n: u64| {
                            format!("/s{}", char::from(b'a' + rng.below(n) as u8))
                        };
                        let (a, b, c) = (
                            segment(&mut rng, 4),
                            segment(&mut rng, 10),
                            segment(&mut rng, burst),
                        );
                        let method = *rng.pick(&["GET", "POST"]);
                        let mut call = call(method, &format!("{a}{b}{c}"), 200);
                        call.server_port = Some(8000 + rng.below(2) as u16);
                        call
                    })
                    .collect();
                run(&mut inventory, calls);
                now += if rng.chance(30) { FLUSH_INTERVAL_NS } else { 1 };
                inventory.tick(now, &mut out);
                let stored = Inventory::open(State::open(&dir).unwrap()).unwrap();
                for service in &stored.services {
                    assert!(
                        service.removed.is_empty(),
                        "seed {seed}: {:?}",
                        service.removed
                    );
                    assert!(service.endpoints.iter().all(|e| !e.dirty), "seed {seed}");
                }
                let calls: u64 = (stored.services.iter())
                    .flat_map(|s| s.endpoints.iter().map(|e| e.facts.calls))
                    .sum();
                assert!(
                    calls >= stored_calls,
                    "seed {seed}: {stored_calls} -> {calls}"
                );
                stored_calls = calls;
            }
            inventory.flush().unwrap();
            let routes = |inventory: &Inventory| -> BTreeSet<(u16, String, String)> {
                inventory
                    .services
                    .iter()
                    .flat_map(|s| {
                        s.endpoints
                            .iter()
                            .map(|e| (s.key.port, e.method.to_string(), e.route.to_string()))
                    })
                    .collect()
            };
            let stored = Inventory::open(State::open(&dir).unwrap()).unwrap();
            assert_eq!(routes(&stored), routes(&inventory), "seed {seed}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_flush_writes_a_slice_of_services_per_tick() {
        let dir = crate::state::test_dir("inventory-slices");
        let services = 2 * FLUSH_SLICE_ENDPOINTS + 10;
        let mut inventory = Inventory::open(State::open(&dir).unwrap()).unwrap();
        run(
            &mut inventory,
            (0..services).map(|i| {
                let mut call = call("GET", "/status", 200);
                call.server_port = Some(10_000 + i as u16);
                call
            }),
        );
        let dirty = |inventory: &Inventory| inventory.services.iter().filter(|s| s.dirty).count();
        let mut out = Vec::new();
        inventory.tick(1, &mut out);
        assert_eq!(dirty(&inventory), services);
        let slices = [
            services - FLUSH_SLICE_ENDPOINTS,
            services - 2 * FLUSH_SLICE_ENDPOINTS,
            0,
        ];
        // The flush starts at the tick an interval after the first; the next ticks go on with it.
        for (now, left) in (1 + FLUSH_INTERVAL_NS..).zip(slices) {
            inventory.tick(now, &mut out);
            assert_eq!(dirty(&inventory), left);
        }
        assert_eq!(inventory.stats().flushes, 1);
        drop(inventory);
        // Kept in memory only, nothing is written and nothing counted as written.
        let mut in_memory = Inventory::in_memory();
        in_memory.tick(1, &mut out);
        in_memory.tick(1 + FLUSH_INTERVAL_NS, &mut out);
        in_memory.flush().unwrap();
        assert_eq!(in_memory.stats().flushes, 0);
        let reopened = Inventory::open(State::open(&dir).unwrap()).unwrap();
        assert_eq!(reopened.services().len(), services);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_inventory_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("observer-inventory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut inventory = Inventory::open(State::open(&dir).unwrap()).unwrap();
            run(
                &mut inventory,
                (0..30).map(|i| call("GET", &format!("/items/item{i}x"), 200)),
            );
            inventory.flush().unwrap();
            run(&mut inventory, [call("GET", "/items/more", 200)]);
            let mut out = Vec::new();
            inventory.finish(&mut out);
        }
        let mut inventory = Inventory::open(State::open(&dir).unwrap()).unwrap();
        let service = &inventory.services()[0];
        assert_eq!(service.endpoints().len(), 1);
        assert_eq!(&*service.endpoints()[0].route, "/items/{id}");
        assert_eq!(service.endpoints()[0].facts.calls, 31);
        // The learned tree came back too: no new endpoint for another id.
        let changes = run(&mut inventory, [call("GET", "/items/another", 200)]);
        assert!(changes.is_empty(), "{changes:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn specs_given_to_run_report_drift_live_and_template_routes() {
        let spec = ApiSpec::parse(
            r##"{"openapi": "3.1.0", "info": {"title": "T", "version": "1"},
                 "paths": {"/files/{name}": {"get": {"responses": {"200": {"description": "ok"}}}},
                           "/old": {"get": {"deprecated": true, "responses": {"200": {"description": "ok"}}}}}}"##,
            "t.json",
        )
        .unwrap();
        let mut inventory = Inventory::in_memory().with_specs(vec![SpecBinding {
            service: None,
            spec,
        }]);
        let mut first = call("GET", "/files/report", 200);
        let mut out = Vec::new();
        inventory.analyze(&mut first, &mut out);
        // The spec's template wins over a literal segment.
        assert_eq!(first.route.as_deref(), Some("/files/{name}"));
        let mut with_query = call("GET", "/files/other", 500);
        with_query.query = Some("debug=1".into());
        let changes = run(
            &mut inventory,
            [
                with_query,
                call("GET", "/old", 200),
                call("POST", "/admin", 200),
            ],
        );
        let live: Vec<(ChangeKind, String)> = changes
            .iter()
            .filter(|c| {
                matches!(
                    c.change,
                    ChangeKind::Drift | ChangeKind::ShadowEndpoint | ChangeKind::ZombieEndpoint
                )
            })
            .map(|c| (c.change, c.details.join("; ")))
            .collect();
        assert!(
            live.contains(&(
                ChangeKind::Drift,
                "undeclared query parameter `debug` (integer)".into()
            )),
            "{live:#?}"
        );
        assert!(
            live.contains(&(ChangeKind::Drift, "undeclared status code 500".into())),
            "{live:#?}"
        );
        assert!(
            live.iter()
                .any(|(k, d)| *k == ChangeKind::ZombieEndpoint && d.starts_with("deprecated")),
            "{live:#?}"
        );
        assert!(
            live.iter().any(|(k, _)| *k == ChangeKind::ShadowEndpoint),
            "{live:#?}"
        );
        // Each is reported once.
        let again = run(&mut inventory, [call("GET", "/files/x", 500)]);
        assert!(again.is_empty(), "{again:#?}");
    }

    #[test]
    fn command_line_routes_win_in_every_service() {
        let mut inventory =
            Inventory::in_memory().with_routes(vec!["/repos/{owner}/{repo}".into()]);
        let mut c = call("GET", "/repos/rust-lang/rust", 200);
        let mut out = Vec::new();
        inventory.analyze(&mut c, &mut out);
        assert_eq!(c.route.as_deref(), Some("/repos/{owner}/{repo}"));
        let mut other = call("GET", "/repos/torvalds/linux", 200);
        other.server_port = Some(9999);
        inventory.analyze(&mut other, &mut out);
        assert_eq!(other.route.as_deref(), Some("/repos/{owner}/{repo}"));
    }

    #[test]
    fn timestamps_parse_back() {
        for ns in [0u64, 1_795_000_000_123_456_000, 951_782_400_000_000_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns));
        }
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
