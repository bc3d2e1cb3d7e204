//! Findings: what the detectors report (sensitive data, attacks, anomalies), in one shape for
//! every detector and every consumer.
//!
//! A finding goes to the output stream next to the API calls (`event.name`: `api.finding`) and
//! to the state directory, where `observer findings` reads it. Evidence is redacted by the
//! detector that makes the finding, before the finding exists: no finding ever holds a raw
//! secret.

pub mod report;

use serde::{Deserialize, Serialize};

use crate::{conn::Role, model::ApiCall};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// As findings (`finding.severity`) and the metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Which message of the call something was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageSide {
    Request,
    Response,
}

/// Where in a message a value was.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub side: MessageSide,
    /// `path`, `query`, `header`, `cookie`, `json`, `form`, `body`, `url_userinfo`.
    pub part: String,
    /// The parameter, header or cookie name, or the JSON path (`$.user.email`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A piece of evidence: where, and the value as it may be shown (redacted or masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub location: Location,
    pub value: String,
}

/// The endpoint a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndpointRef {
    #[serde(
        rename = "http.request.method",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub method: Option<String>,
    /// The templated route (`/users/{id}`) when the inventory knows it, else the path.
    #[serde(
        rename = "http.route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub route: Option<String>,
    #[serde(
        rename = "server.address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_address: Option<String>,
    #[serde(
        rename = "server.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub server_port: Option<u16>,
}

/// Who made the call a finding is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallerRef {
    #[serde(
        rename = "client.address",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<String>,
    /// The observed process, when it is the client.
    #[serde(
        rename = "process.pid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<u32>,
    #[serde(
        rename = "process.executable.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub executable_name: Option<String>,
    #[serde(
        rename = "container.id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_id: Option<String>,
    /// The authenticated user or token subject, when a JWT or session reveals it.
    #[serde(
        rename = "enduser.id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<String>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Always `api.finding`.
    #[serde(rename = "event.name")]
    pub event_name: String,
    /// When the call the finding is about began (RFC 3339).
    pub timestamp: String,
    /// What was found: a detector's stable name (`sensitive_data`, `sql_injection`, `bola`...).
    #[serde(rename = "finding.kind")]
    pub kind: String,
    /// A finer type where the detector has one (`email`, `card_number`, `jwt_alg_none`...).
    #[serde(
        rename = "finding.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub detail_type: Option<String>,
    #[serde(rename = "finding.severity")]
    pub severity: Severity,
    /// OWASP API Security Top 10 (2023) category, e.g. `API1:2023`.
    #[serde(
        rename = "owasp.category",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub owasp_category: Option<String>,
    /// Why it fired, in a sentence a person can act on.
    #[serde(rename = "finding.reason")]
    pub reason: String,
    #[serde(flatten)]
    pub endpoint: EndpointRef,
    #[serde(flatten)]
    pub caller: CallerRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// The data crossed the network without TLS.
    #[serde(default)]
    pub plaintext: bool,
    /// The connection of the call, to find it in the call stream.
    #[serde(
        rename = "observer.connection",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection: Option<String>,
}

impl Finding {
    /// A finding about `call`, with the endpoint and caller filled in from it.
    pub fn about(call: &ApiCall, kind: &str, severity: Severity, reason: String) -> Finding {
        let caller_is_observed = call.role == Some(Role::Client);
        Finding {
            event_name: "api.finding".to_string(),
            timestamp: call.timestamp.clone(),
            kind: kind.to_string(),
            detail_type: None,
            severity,
            owasp_category: None,
            reason,
            endpoint: EndpointRef {
                method: call.method.clone(),
                route: call.route.clone().or_else(|| call.path.clone()),
                server_address: call.server_address.clone(),
                server_port: call.server_port,
            },
            caller: CallerRef {
                address: call.client_address.clone(),
                pid: caller_is_observed.then_some(call.pid),
                executable_name: if caller_is_observed {
                    call.executable_name.clone()
                } else {
                    None
                },
                container_id: if caller_is_observed {
                    call.container_id.clone()
                } else {
                    None
                },
                user: None,
            },
            evidence: Vec::new(),
            plaintext: !call.tls,
            connection: Some(call.connection.clone()),
        }
    }
}

/// A finding as kept in the state directory: reported once, counted every time it recurs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// When the finding was first and last seen (RFC 3339).
    #[serde(rename = "finding.first_seen")]
    pub first_seen: String,
    #[serde(rename = "finding.last_seen")]
    pub last_seen: String,
    /// Calls it was seen in.
    #[serde(rename = "finding.count")]
    pub count: u64,
}

/// The findings table, shared by every detector: one row per distinct finding, keyed by a
/// fingerprint the detector chooses (what, where, who), so a finding seen in a million calls
/// is one row with a count.
pub mod store {
    use rusqlite::{params, Connection};

    use super::{Finding, StoredFinding};
    use crate::state::{State, StateError};

    /// The component name in `schema_versions`.
    pub const COMPONENT: &str = "findings";

    /// Append-only: never edit a migration that has shipped.
    const MIGRATIONS: &[&str] = &["CREATE TABLE findings (
            fingerprint TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            count INTEGER NOT NULL,
            finding TEXT NOT NULL
        )"];

    /// Longest list `observer findings` reads: a bound on memory whatever the table holds.
    pub const MAX_LISTED: usize = 100_000;

    pub fn migrate(state: &mut State) -> Result<(), StateError> {
        state.migrate(COMPONENT, MIGRATIONS)
    }

    /// Record `count` more sightings of `finding` (inside the caller's transaction). The
    /// finding's evidence must already be redacted: it is stored as given.
    pub fn record(
        connection: &Connection,
        fingerprint: &str,
        finding: &Finding,
        count: u64,
    ) -> Result<(), StateError> {
        let json = serde_json::to_string(finding).unwrap_or_default();
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        connection.execute(
            "INSERT INTO findings (fingerprint, kind, severity, first_seen, last_seen, count, finding)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)
             ON CONFLICT (fingerprint) DO UPDATE SET
                last_seen = excluded.last_seen,
                count = count + excluded.count",
            params![
                fingerprint,
                finding.kind,
                severity,
                finding.timestamp,
                i64::try_from(count).unwrap_or(i64::MAX),
                json
            ],
        )?;
        Ok(())
    }

    /// Every stored finding, most severe first, then most recent.
    pub fn list(state: &State) -> Result<Vec<StoredFinding>, StateError> {
        let mut statement = state.connection().prepare(
            "SELECT finding, first_seen, last_seen, count FROM findings ORDER BY last_seen DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows.take(MAX_LISTED) {
            let (json, first_seen, last_seen, count) = row?;
            // A row this version cannot read (written by a newer detector) is skipped, not fatal.
            if let Ok(finding) = serde_json::from_str::<Finding>(&json) {
                out.push(StoredFinding {
                    finding,
                    first_seen,
                    last_seen,
                    count: u64::try_from(count).unwrap_or(0),
                });
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
        Ok(out)
    }
}
