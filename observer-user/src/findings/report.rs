//! `observer findings`: what the state directory holds, for people (a table) or machines (JSON
//! lines).
//!
//! Both kinds of findings share the findings table and this one command: attacks and anomalies
//! (attack detection, each with its OWASP API Top 10 category, caller and reason) come first,
//! under their own heading, then sensitive data, then the sensitive types each endpoint
//! accepts and returns. In JSON each line says what it is: `finding.kind` (`sensitive_data`, or
//! a detector's name such as `bola`) and `owasp.category`.
//!
//! Reads only: findings as the detectors stored them (evidence already redacted) and the
//! per-endpoint labels of sensitive types. Works while the agent runs (the database is in WAL
//! mode).

use std::{io::Write, path::Path};

use serde::Serialize;
use thiserror::Error;

use super::{store, CallerRef, EndpointRef, Severity, StoredFinding};
use crate::{
    sensitive::{
        analyzer::FINDING_KIND as SENSITIVE_KIND,
        labels::{self, EndpointLabels},
    },
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

/// What the state directory holds, most severe first within each kind.
pub struct Stored {
    /// Attack detection's findings.
    pub attacks: Vec<StoredFinding>,
    pub sensitive: Vec<StoredFinding>,
    pub endpoints: Vec<EndpointLabels>,
}

/// Everything stored, read from `state_dir`.
pub fn read(state_dir: &Path) -> Result<Stored, ReportError> {
    if !state_dir.join(DATABASE_FILE).exists() {
        return Err(ReportError::NoState(state_dir.display().to_string()));
    }
    let mut state = State::open(state_dir)?;
    store::migrate(&mut state)?;
    let (sensitive, attacks) = store::list(&state)?
        .into_iter()
        .partition(|stored| stored.finding.kind == SENSITIVE_KIND);
    Ok(Stored {
        attacks,
        sensitive,
        endpoints: labels::endpoint_labels(&state)?,
    })
}

/// Writes the report: JSON lines (`api.finding` with first/last seen and count, attacks
/// first, then `api.endpoint.labels`) or a table per kind.
pub fn write(state_dir: &Path, json: bool, out: &mut dyn Write) -> Result<(), ReportError> {
    let stored = read(state_dir)?;
    if json {
        for finding in stored.attacks.iter().chain(&stored.sensitive) {
            serde_json::to_writer(&mut *out, finding)?;
            out.write_all(b"\n")?;
        }
        for labels in &stored.endpoints {
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
    if stored.attacks.is_empty() && stored.sensitive.is_empty() {
        writeln!(out, "No findings in {}.", state_dir.display())?;
    }
    if !stored.attacks.is_empty() {
        write_attacks(&stored.attacks, out)?;
    }
    if !stored.sensitive.is_empty() {
        if !stored.attacks.is_empty() {
            writeln!(out)?;
        }
        write_sensitive(&stored.sensitive, out)?;
    }
    if !stored.endpoints.is_empty() {
        writeln!(out, "\nSensitive data by endpoint")?;
    }
    for e in &stored.endpoints {
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

/// Attacks and anomalies: category, detector, endpoint, caller, then why and the evidence.
fn write_attacks(findings: &[StoredFinding], out: &mut dyn Write) -> Result<(), ReportError> {
    writeln!(out, "Attacks and anomalies")?;
    writeln!(
        out,
        "{:<9} {:<10} {:<42} {:<40} {:<28} {:>6}  LAST SEEN",
        "SEVERITY", "OWASP", "DETECTOR", "ENDPOINT", "CALLER", "COUNT"
    )?;
    for stored in findings {
        let f = &stored.finding;
        let detector = match &f.detail_type {
            Some(detail) => format!("{} ({detail})", f.kind),
            None => f.kind.clone(),
        };
        writeln!(
            out,
            "{:<9} {:<10} {:<42} {:<40} {:<28} {:>6}  {}",
            severity_name(f.severity)?,
            f.owasp_category.as_deref().unwrap_or("-"),
            detector,
            endpoint_text(&f.endpoint),
            caller_text(&f.caller),
            stored.count,
            stored.last_seen,
        )?;
        writeln!(out, "          why: {}", f.reason)?;
        for evidence in &f.evidence {
            writeln!(out, "          evidence: {}", evidence.value)?;
        }
    }
    Ok(())
}

/// Sensitive data: type, where in the message, endpoint.
fn write_sensitive(findings: &[StoredFinding], out: &mut dyn Write) -> Result<(), ReportError> {
    writeln!(out, "Sensitive data")?;
    writeln!(
        out,
        "{:<9} {:<16} {:<34} {:<40} {:>6}  LAST SEEN",
        "SEVERITY", "TYPE", "WHERE", "ENDPOINT", "COUNT"
    )?;
    for stored in findings {
        let f = &stored.finding;
        let location = f.evidence.first().map(|e| {
            let side = labels::side_name(e.location.side);
            match &e.location.name {
                Some(name) => format!("{side} {} {name}", e.location.part),
                None => format!("{side} {}", e.location.part),
            }
        });
        writeln!(
            out,
            "{:<9} {:<16} {:<34} {:<40} {:>6}  {}{}",
            severity_name(f.severity)?,
            f.detail_type.as_deref().unwrap_or(&f.kind),
            location.unwrap_or_default(),
            endpoint_text(&f.endpoint),
            stored.count,
            stored.last_seen,
            if f.plaintext { "  plaintext" } else { "" }
        )?;
        for evidence in &f.evidence {
            writeln!(out, "          evidence: {}", evidence.value)?;
        }
    }
    Ok(())
}

/// The severity as the JSON spells it (`high`).
fn severity_name(severity: Severity) -> Result<String, ReportError> {
    Ok(serde_json::to_value(severity)?
        .as_str()
        .unwrap_or("?")
        .to_string())
}

/// `GET /users/{id} @10.0.0.1:8080`.
fn endpoint_text(endpoint: &EndpointRef) -> String {
    format!(
        "{} {}{}",
        endpoint.method.as_deref().unwrap_or("?"),
        endpoint.route.as_deref().unwrap_or("?"),
        match (&endpoint.server_address, endpoint.server_port) {
            (Some(a), Some(p)) => format!(" @{a}:{p}"),
            _ => String::new(),
        }
    )
}

/// Whatever is known of the caller: address, process, user (`10.0.0.7 user mallory`).
fn caller_text(caller: &CallerRef) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(caller.address.clone());
    if let Some(name) = &caller.executable_name {
        match caller.pid {
            Some(pid) => parts.push(format!("{name}[{pid}]")),
            None => parts.push(name.clone()),
        }
    }
    if let Some(container) = &caller.container_id {
        parts.push(format!(
            "container {}",
            container.get(..12).unwrap_or(container)
        ));
    }
    if let Some(user) = &caller.user {
        parts.push(format!("user {user}"));
    }
    if parts.is_empty() {
        "?".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        findings::{store, Finding},
        inventory::tests::call,
    };

    #[test]
    fn attacks_and_sensitive_data_are_listed_apart() {
        let dir =
            std::env::temp_dir().join(format!("observer-findings-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut state = State::open(&dir).unwrap();
        store::migrate(&mut state).unwrap();
        let mut request = call("GET", "/users/7", 404);
        request.route = Some("/users/{id}".into());
        request.client_address = Some("10.0.0.7".into());
        let mut bola = Finding::about(&request, "bola", Severity::High, "walked 40 ids".into());
        bola.owasp_category = Some("API1:2023".into());
        bola.detail_type = Some("sequential_walk".into());
        bola.caller.user = Some("mallory".into());
        let email = Finding::about(&request, SENSITIVE_KIND, Severity::Low, "an email".into());
        store::record(state.connection(), "bola:1", &bola, 40).unwrap();
        store::record(state.connection(), "email:1", &email, 2).unwrap();

        let mut table = Vec::new();
        write(&dir, false, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        let attacks = table.find("Attacks and anomalies").expect(&table);
        let sensitive = table.find("Sensitive data").expect(&table);
        assert!(attacks < sensitive, "{table}");
        let bola_line = table
            .lines()
            .find(|l| l.contains("API1:2023"))
            .expect(&table);
        for expected in [
            "bola (sequential_walk)",
            "GET /users/{id}",
            "10.0.0.7 user mallory",
        ] {
            assert!(bola_line.contains(expected), "{expected} in {bola_line}");
        }
        assert!(table.contains("why: walked 40 ids"), "{table}");

        let mut json = Vec::new();
        write(&dir, true, &mut json).unwrap();
        let kinds: Vec<String> = String::from_utf8(json)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .map(|v| v["finding.kind"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(kinds, ["bola", SENSITIVE_KIND]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
