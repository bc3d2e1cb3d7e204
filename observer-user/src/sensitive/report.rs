//! `observer findings`: what the state directory holds, for people (a table) or machines (JSON
//! lines).
//!
//! Reads only: findings as the detectors stored them (evidence already masked) and the
//! per-endpoint labels of sensitive types. Works while the agent runs (the database is in WAL
//! mode).

use std::{io::Write, path::Path};

use serde::Serialize;
use thiserror::Error;

use super::labels::{self, EndpointLabels};
use crate::{
    findings::{store, StoredFinding},
    state::{State, StateError, DATABASE_FILE},
};

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("no observer state in {0} (run `observer run`, or `observer replay --state-dir`, first; or choose another with --state-dir)")]
    NoState(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// An endpoint's labels as a line of the JSON output.
#[derive(Serialize)]
struct LabelsLine<'a> {
    #[serde(rename = "event.name")]
    event_name: &'static str,
    #[serde(flatten)]
    labels: &'a EndpointLabels,
}

/// Everything stored, read from `state_dir`.
pub fn read(state_dir: &Path) -> Result<(Vec<StoredFinding>, Vec<EndpointLabels>), ReportError> {
    if !state_dir.join(DATABASE_FILE).exists() {
        return Err(ReportError::NoState(state_dir.display().to_string()));
    }
    let mut state = State::open(state_dir)?;
    store::migrate(&mut state)?;
    Ok((store::list(&state)?, labels::endpoint_labels(&state)?))
}

/// Writes the report: JSON lines (`api.finding` with first/last seen and count, then
/// `api.endpoint.labels`) or a table.
pub fn write(state_dir: &Path, json: bool, out: &mut dyn Write) -> Result<(), ReportError> {
    let (findings, endpoints) = read(state_dir)?;
    if json {
        for finding in &findings {
            serde_json::to_writer(&mut *out, finding)?;
            out.write_all(b"\n")?;
        }
        for labels in &endpoints {
            serde_json::to_writer(
                &mut *out,
                &LabelsLine {
                    event_name: "api.endpoint.labels",
                    labels,
                },
            )?;
            out.write_all(b"\n")?;
        }
        return Ok(out.flush()?);
    }
    if findings.is_empty() {
        writeln!(out, "No findings in {}.", state_dir.display())?;
    } else {
        writeln!(
            out,
            "{:<9} {:<16} {:<34} {:<40} {:>6}  LAST SEEN",
            "SEVERITY", "TYPE", "WHERE", "ENDPOINT", "COUNT"
        )?;
    }
    for stored in &findings {
        let f = &stored.finding;
        let location = f.evidence.first().map(|e| {
            let side = labels::side_name(e.location.side);
            match &e.location.name {
                Some(name) => format!("{side} {} {name}", e.location.part),
                None => format!("{side} {}", e.location.part),
            }
        });
        let endpoint = format!(
            "{} {}{}",
            f.endpoint.method.as_deref().unwrap_or("?"),
            f.endpoint.route.as_deref().unwrap_or("?"),
            match (&f.endpoint.server_address, f.endpoint.server_port) {
                (Some(a), Some(p)) => format!(" @{a}:{p}"),
                _ => String::new(),
            }
        );
        let severity = serde_json::to_value(f.severity)?;
        writeln!(
            out,
            "{:<9} {:<16} {:<34} {:<40} {:>6}  {}{}",
            severity.as_str().unwrap_or("?"),
            f.detail_type.as_deref().unwrap_or(&f.kind),
            location.unwrap_or_default(),
            endpoint,
            stored.count,
            stored.last_seen,
            if f.plaintext { "  plaintext" } else { "" }
        )?;
        for evidence in &f.evidence {
            writeln!(out, "          evidence: {}", evidence.value)?;
        }
    }
    if !endpoints.is_empty() {
        writeln!(out, "\nSensitive data by endpoint")?;
    }
    for e in &endpoints {
        let list = |types: &std::collections::BTreeMap<String, u64>| {
            types.keys().cloned().collect::<Vec<_>>().join(", ")
        };
        let mut line = format!("  {} {} {}", e.service, e.method, e.route);
        if !e.accepts.is_empty() {
            line.push_str(&format!("  accepts: {}", list(&e.accepts)));
        }
        if !e.returns.is_empty() {
            line.push_str(&format!("  returns: {}", list(&e.returns)));
        }
        writeln!(out, "{line}")?;
    }
    Ok(out.flush()?)
}
