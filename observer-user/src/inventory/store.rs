//! The inventory's tables in the state database, and the batches that keep them current.
//!
//! The inventory lives in memory; this module persists it. Every flush writes, in one
//! transaction, the services and endpoints that changed since the last one (facts as JSON, so a
//! new fact is a new field with a default, not a migration) and deletes endpoints that were
//! merged into others. Readers (`observer inventory`, `openapi`, `diff`) load everything back;
//! WAL mode lets them read while the agent writes.
//!
//! Schema changes are migrations appended to [`MIGRATIONS`], never edits of shipped ones.

use rusqlite::{params, OptionalExtension};

use super::{
    endpoint::EndpointFacts,
    service::{ServiceFacts, ServiceKey},
    template::{PathTree, Seg},
    InventoryError,
};
use crate::state::State;

/// This component's name in `schema_versions`.
pub const COMPONENT: &str = "inventory";

/// The inventory's schema, one migration per version.
pub const MIGRATIONS: &[&str] = &["
    CREATE TABLE inventory_services (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        facts TEXT NOT NULL,
        tree TEXT
    );
    CREATE TABLE inventory_endpoints (
        service TEXT NOT NULL REFERENCES inventory_services (key),
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        segments TEXT NOT NULL,
        calls INTEGER NOT NULL,
        last_seen_ns INTEGER NOT NULL,
        facts TEXT NOT NULL,
        PRIMARY KEY (service, method, route)
    );
"];

/// A service as loaded.
pub struct StoredService {
    pub key: ServiceKey,
    pub facts: ServiceFacts,
    pub tree: Option<PathTree>,
    pub endpoints: Vec<StoredEndpoint>,
}

pub struct StoredEndpoint {
    pub method: String,
    pub route: String,
    pub segs: Vec<Seg>,
    pub facts: EndpointFacts,
}

/// One service's changes for a flush.
pub struct ServiceRow<'a> {
    pub key: &'a ServiceKey,
    pub facts: &'a ServiceFacts,
    /// Only when its shape changed: trees are the largest rows.
    pub tree: Option<&'a PathTree>,
}

pub struct EndpointRow<'a> {
    pub service: &'a ServiceKey,
    pub method: &'a str,
    pub route: &'a str,
    pub segs: &'a [Seg],
    pub facts: &'a EndpointFacts,
}

/// What one flush writes.
#[derive(Default)]
pub struct Batch<'a> {
    pub services: Vec<ServiceRow<'a>>,
    pub endpoints: Vec<EndpointRow<'a>>,
    /// Endpoints merged away: (service, method, route).
    pub removed: Vec<(&'a ServiceKey, String, String)>,
}

impl Batch<'_> {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.endpoints.is_empty() && self.removed.is_empty()
    }
}

pub struct Store {
    state: State,
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, InventoryError> {
    serde_json::to_string(value).map_err(InventoryError::Encode)
}

impl Store {
    /// Take over the state database, bringing the inventory's tables up to date.
    pub fn open(mut state: State) -> Result<Store, InventoryError> {
        state.migrate(COMPONENT, MIGRATIONS)?;
        Ok(Store { state })
    }

    /// Write one batch in one transaction.
    pub fn save(&mut self, batch: &Batch<'_>) -> Result<(), InventoryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let transaction = self
            .state
            .connection_mut()
            .transaction()
            .map_err(crate::state::StateError::from)?;
        {
            let mut service = transaction
                .prepare_cached(
                    "INSERT INTO inventory_services (key, kind, host, port, facts, tree)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (key) DO UPDATE SET facts = excluded.facts,
                         tree = COALESCE(excluded.tree, inventory_services.tree)",
                )
                .map_err(crate::state::StateError::from)?;
            for row in &batch.services {
                let tree = row.tree.map(to_json).transpose()?;
                let kind = serde_json::to_value(row.key.kind).map_err(InventoryError::Encode)?;
                service
                    .execute(params![
                        row.key.storage_key(),
                        kind.as_str().unwrap_or("local"),
                        row.key.host,
                        row.key.port,
                        to_json(row.facts)?,
                        tree,
                    ])
                    .map_err(crate::state::StateError::from)?;
            }
            let mut endpoint = transaction
                .prepare_cached(
                    "INSERT INTO inventory_endpoints
                         (service, method, route, segments, calls, last_seen_ns, facts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (service, method, route) DO UPDATE SET
                         segments = excluded.segments, calls = excluded.calls,
                         last_seen_ns = excluded.last_seen_ns, facts = excluded.facts",
                )
                .map_err(crate::state::StateError::from)?;
            for row in &batch.endpoints {
                endpoint
                    .execute(params![
                        row.service.storage_key(),
                        row.method,
                        row.route,
                        to_json(&row.segs)?,
                        row.facts.calls as i64,
                        row.facts.last_seen_ns as i64,
                        to_json(row.facts)?,
                    ])
                    .map_err(crate::state::StateError::from)?;
            }
            let mut delete = transaction
                .prepare_cached(
                    "DELETE FROM inventory_endpoints
                     WHERE service = ?1 AND method = ?2 AND route = ?3",
                )
                .map_err(crate::state::StateError::from)?;
            for (service, method, route) in &batch.removed {
                delete
                    .execute(params![service.storage_key(), method, route])
                    .map_err(crate::state::StateError::from)?;
            }
        }
        transaction
            .commit()
            .map_err(crate::state::StateError::from)?;
        Ok(())
    }

    /// Everything stored. Rows that do not decode (written by a damaged or foreign database)
    /// are skipped with a warning rather than failing the whole load.
    pub fn load(&self) -> Result<Vec<StoredService>, InventoryError> {
        let connection = self.state.connection();
        let mut services = Vec::new();
        let mut statement = connection
            .prepare(
                "SELECT key, kind, host, port, facts, tree FROM inventory_services ORDER BY key",
            )
            .map_err(crate::state::StateError::from)?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, u16>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(crate::state::StateError::from)?;
        for row in rows {
            let (storage_key, kind, host, port, facts, tree) =
                row.map_err(crate::state::StateError::from)?;
            let decoded = (|| -> Result<StoredService, serde_json::Error> {
                Ok(StoredService {
                    key: ServiceKey {
                        kind: serde_json::from_value(serde_json::Value::String(kind))?,
                        host,
                        port,
                    },
                    facts: serde_json::from_str(&facts)?,
                    tree: tree.as_deref().map(serde_json::from_str).transpose()?,
                    endpoints: Vec::new(),
                })
            })();
            match decoded {
                Ok(mut service) => {
                    service.endpoints = self.load_endpoints(&storage_key)?;
                    services.push(service);
                }
                Err(error) => {
                    tracing::warn!("inventory: skipping stored service {storage_key}: {error}")
                }
            }
        }
        Ok(services)
    }

    fn load_endpoints(&self, service: &str) -> Result<Vec<StoredEndpoint>, InventoryError> {
        let mut statement = self
            .state
            .connection()
            .prepare_cached(
                "SELECT method, route, segments, facts FROM inventory_endpoints
                 WHERE service = ?1 ORDER BY route, method",
            )
            .map_err(crate::state::StateError::from)?;
        let rows = statement
            .query_map(params![service], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(crate::state::StateError::from)?;
        let mut out = Vec::new();
        for row in rows {
            let (method, route, segs, facts) = row.map_err(crate::state::StateError::from)?;
            match (serde_json::from_str(&segs), serde_json::from_str(&facts)) {
                (Ok(segs), Ok(facts)) => out.push(StoredEndpoint {
                    method,
                    route,
                    segs,
                    facts,
                }),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!("inventory: skipping stored endpoint {method} {route}: {error}")
                }
            }
        }
        Ok(out)
    }

    /// Whether the database holds an inventory at all (for readers to say so plainly).
    pub fn has_inventory(&self) -> Result<bool, InventoryError> {
        let found: Option<i64> = self
            .state
            .connection()
            .query_row("SELECT 1 FROM inventory_services LIMIT 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(crate::state::StateError::from)?;
        Ok(found.is_some())
    }
}
