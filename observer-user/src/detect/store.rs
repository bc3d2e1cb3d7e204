//! The detectors' state in the state directory: baselines, so a restart does not relearn, and
//! findings, in the table every detector shares (`findings::store`).
//!
//! Baselines are one row each (`scope`, `key`, JSON), written in batches of those that changed
//! (`Detector` decides when); a row this version cannot read (written by a newer one) is
//! skipped and relearnt, never fatal.

use rusqlite::{params, OptionalExtension};
use serde::{de::DeserializeOwned, Serialize};

use super::{
    subjects::{EndpointBaseline, PrincipalBaseline, MAX_ENDPOINTS, MAX_PRINCIPALS},
    third_party::MAX_THIRD_PARTY_PAIRS,
    DetectError,
};
use crate::{
    findings::{self, Finding},
    state::{State, StateError},
};

/// The component name in `schema_versions`.
pub const COMPONENT: &str = "detect";

/// Append-only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &["CREATE TABLE detect_baselines (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    )"];

const ENDPOINT: &str = "endpoint";
const PRINCIPAL: &str = "principal";
const THIRD_PARTY: &str = "third_party";
const META: &str = "meta";
/// The meta row holding when the agent first saw traffic (the learning period's start).
const STARTED: &str = "started";

/// What the state directory held.
#[derive(Default)]
pub struct Loaded {
    pub endpoints: Vec<(u64, EndpointBaseline)>,
    pub principals: Vec<(u64, PrincipalBaseline)>,
    pub third_parties: Vec<String>,
    pub started: Option<u64>,
}

/// What changed since the last write.
#[derive(Default)]
pub struct Batch<'a> {
    pub endpoints: Vec<(u64, &'a EndpointBaseline)>,
    pub principals: Vec<(u64, &'a PrincipalBaseline)>,
    pub third_parties: Vec<String>,
    pub started: Option<u64>,
    /// Stored fingerprint, finding, sightings.
    pub findings: Vec<(String, Finding, u64)>,
    /// When (RFC 3339): the newest call's time.
    pub updated: String,
}

pub struct Store {
    state: State,
}

impl Store {
    pub fn open(mut state: State) -> Result<Store, DetectError> {
        state.migrate(COMPONENT, MIGRATIONS)?;
        findings::store::migrate(&mut state)?;
        Ok(Store { state })
    }

    pub fn load(&self) -> Result<Loaded, DetectError> {
        let connection = self.state.connection();
        let started = connection
            .query_row(
                "SELECT value FROM detect_baselines WHERE scope = ?1 AND key = ?2",
                params![META, STARTED],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(StateError::from)?
            .and_then(|v| v.parse().ok());
        Ok(Loaded {
            endpoints: self.rows(ENDPOINT, MAX_ENDPOINTS)?,
            principals: self.rows(PRINCIPAL, MAX_PRINCIPALS)?,
            third_parties: self
                .rows::<String>(THIRD_PARTY, MAX_THIRD_PARTY_PAIRS)?
                .into_iter()
                .map(|(_, pair)| pair)
                .collect(),
            started,
        })
    }

    fn rows<T: DeserializeOwned>(
        &self,
        scope: &str,
        max: usize,
    ) -> Result<Vec<(u64, T)>, DetectError> {
        let mut statement = self
            .state
            .connection()
            .prepare("SELECT key, value FROM detect_baselines WHERE scope = ?1")
            .map_err(StateError::from)?;
        let rows = statement
            .query_map(params![scope], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(StateError::from)?;
        let mut out = Vec::new();
        for row in rows.take(max) {
            let (key, value) = row.map_err(StateError::from)?;
            let (Ok(key), Ok(value)) =
                (u64::from_str_radix(&key, 16), serde_json::from_str(&value))
            else {
                continue;
            };
            out.push((key, value));
        }
        Ok(out)
    }

    /// Write `batch` in one transaction.
    pub fn save(&mut self, batch: &Batch<'_>) -> Result<(), DetectError> {
        let transaction = self
            .state
            .connection_mut()
            .transaction()
            .map_err(StateError::from)?;
        {
            let mut upsert = transaction
                .prepare_cached(
                    "INSERT INTO detect_baselines (scope, key, value, updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                )
                .map_err(StateError::from)?;
            let mut write = |scope: &str, key: &str, value: &str| {
                upsert
                    .execute(params![scope, key, value, batch.updated])
                    .map(|_| ())
                    .map_err(StateError::from)
            };
            for (key, endpoint) in &batch.endpoints {
                write(ENDPOINT, &format!("{key:016x}"), &encode(endpoint)?)?;
            }
            for (key, principal) in &batch.principals {
                write(PRINCIPAL, &format!("{key:016x}"), &encode(principal)?)?;
            }
            for pair in &batch.third_parties {
                let key = super::caller::stable_hash(&[pair.as_bytes()]);
                write(THIRD_PARTY, &format!("{key:016x}"), &encode(pair)?)?;
            }
            if let Some(started) = batch.started {
                write(META, STARTED, &started.to_string())?;
            }
        }
        for (fingerprint, finding, count) in &batch.findings {
            findings::store::record(&transaction, fingerprint, finding, *count)?;
        }
        transaction.commit().map_err(StateError::from)?;
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, DetectError> {
    serde_json::to_string(value).map_err(DetectError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::subjects::EndpointName;

    #[test]
    fn baselines_and_findings_survive_a_reopen() {
        let dir = crate::state::test_dir("detect-store");
        let endpoint = EndpointBaseline {
            name: EndpointName {
                method: "GET".into(),
                route: "/users/{id}".into(),
                server_address: Some("127.0.0.1".into()),
                server_port: Some(8080),
            },
            calls: 42,
            ..EndpointBaseline::default()
        };
        let principal = PrincipalBaseline {
            calls: 7,
            ..PrincipalBaseline::default()
        };
        let call = crate::inventory::tests::call("GET", "/users/1", 200);
        let finding = Finding::about(&call, "bola", findings::Severity::High, "walked".into());
        {
            let mut store = Store::open(State::open(&dir).unwrap()).unwrap();
            store
                .save(&Batch {
                    endpoints: vec![(1, &endpoint)],
                    principals: vec![(u64::MAX, &principal)],
                    third_parties: vec!["billing@host|api.stripe.com".into()],
                    started: Some(1_800_000_000),
                    findings: vec![("bola:1:2".into(), finding.clone(), 3)],
                    updated: "2026-11-28T00:00:00Z".into(),
                })
                .unwrap();
        }
        let state = State::open(&dir).unwrap();
        let store = Store::open(state).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.endpoints, vec![(1, endpoint)]);
        assert_eq!(loaded.principals, vec![(u64::MAX, principal)]);
        assert_eq!(loaded.third_parties, ["billing@host|api.stripe.com"]);
        assert_eq!(loaded.started, Some(1_800_000_000));
        let stored = findings::store::list(&store.state).unwrap();
        assert_eq!(stored[0].count, 3);
        assert_eq!(stored[0].finding, finding);
        let _ = std::fs::remove_dir_all(dir);
    }
}
