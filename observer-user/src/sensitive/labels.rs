//! Per-endpoint labels: which sensitive types each endpoint accepts (in requests) and returns
//! (in responses), persisted in the state directory.
//!
//! The sensitive-data analyzer counts labels in memory and writes them with its findings; the
//! inventory gets the same labels through its labeler as `accepts:<type>` / `returns:<type>`,
//! and `observer findings` (or anything else holding a [`State`]) reads them back with
//! [`endpoint_labels`].

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::{
    findings::MessageSide,
    state::{State, StateError},
};

/// The component name in `schema_versions`.
pub const COMPONENT: &str = "sensitive";

/// Append-only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &["CREATE TABLE sensitive_labels (
        service TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        direction TEXT NOT NULL,
        data_type TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (service, method, route, direction, data_type)
    )"];

/// Rows read at most: a bound on memory whatever the table holds.
const MAX_LABEL_ROWS: usize = 200_000;

/// One endpoint and direction, the key of a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelKey {
    /// `address:port` of the server.
    pub service: String,
    pub method: String,
    pub route: String,
    pub side: MessageSide,
    pub data_type: String,
}

pub fn migrate(state: &mut State) -> Result<(), StateError> {
    state.migrate(COMPONENT, MIGRATIONS)
}

/// Record `count` more calls carrying the labelled type (inside the caller's transaction).
pub fn record(
    connection: &Connection,
    key: &LabelKey,
    seen: &str,
    count: u64,
) -> Result<(), StateError> {
    connection.execute(
        "INSERT INTO sensitive_labels
            (service, method, route, direction, data_type, first_seen, last_seen, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
         ON CONFLICT (service, method, route, direction, data_type) DO UPDATE SET
            last_seen = excluded.last_seen,
            count = count + excluded.count",
        params![
            key.service,
            key.method,
            key.route,
            side_name(key.side),
            key.data_type,
            seen,
            i64::try_from(count).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(())
}

pub fn side_name(side: MessageSide) -> &'static str {
    match side {
        MessageSide::Request => "request",
        MessageSide::Response => "response",
    }
}

/// The sensitive types of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointLabels {
    #[serde(rename = "service.name")]
    pub service: String,
    #[serde(rename = "http.request.method")]
    pub method: String,
    #[serde(rename = "http.route")]
    pub route: String,
    /// Types seen in requests, with the number of calls.
    pub accepts: BTreeMap<String, u64>,
    /// Types seen in responses, with the number of calls.
    pub returns: BTreeMap<String, u64>,
}

/// Every labelled endpoint, by service, route and method.
pub fn endpoint_labels(state: &State) -> Result<Vec<EndpointLabels>, StateError> {
    let exists: bool = state.connection().query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sensitive_labels')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut statement = state.connection().prepare(
        "SELECT service, method, route, direction, data_type, count FROM sensitive_labels
         ORDER BY service, route, method",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut by_endpoint: BTreeMap<(String, String, String), EndpointLabels> = BTreeMap::new();
    for row in rows.take(MAX_LABEL_ROWS) {
        let (service, method, route, direction, data_type, count) = row?;
        let entry = by_endpoint
            .entry((service.clone(), route.clone(), method.clone()))
            .or_insert_with(|| EndpointLabels {
                service,
                method,
                route,
                ..EndpointLabels::default()
            });
        let count = u64::try_from(count).unwrap_or(0);
        match direction.as_str() {
            "request" => *entry.accepts.entry(data_type).or_default() += count,
            _ => *entry.returns.entry(data_type).or_default() += count,
        }
    }
    Ok(by_endpoint.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_add_up_per_endpoint_and_direction() {
        let mut state = State::in_memory().unwrap();
        assert!(endpoint_labels(&state).unwrap().is_empty());
        migrate(&mut state).unwrap();
        let key = |side, data_type: &str| LabelKey {
            service: "127.0.0.1:8080".into(),
            method: "GET".into(),
            route: "/users/{id}".into(),
            side,
            data_type: data_type.into(),
        };
        let c = state.connection();
        record(c, &key(MessageSide::Response, "email"), "t1", 2).unwrap();
        record(c, &key(MessageSide::Response, "email"), "t2", 3).unwrap();
        record(c, &key(MessageSide::Request, "password"), "t2", 1).unwrap();
        let labels = endpoint_labels(&state).unwrap();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels[0].returns.get("email"), Some(&5));
        assert_eq!(labels[0].accepts.get("password"), Some(&1));
    }
}
