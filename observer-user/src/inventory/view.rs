//! `observer inventory`: the inventory as a table for people and as JSON for machines.
//!
//! A read-only view over what the agent persisted (or a replay built): one row per endpoint,
//! grouped by service. The JSON form carries every fact, schemas as JSON Schema and latency as
//! percentiles; the table the few columns that answer "what is there, how used, how fast".

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;
use serde_json::Value;

use super::{format_time, service::ServiceKind, Service};

#[derive(Debug, Serialize)]
pub struct InventoryView {
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub kind: ServiceKind,
    pub address: String,
    pub port: u16,
    pub processes: Vec<String>,
    pub containers: Vec<String>,
    pub hosts: Vec<String>,
    pub tls: bool,
    pub calls: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub endpoints: Vec<EndpointView>,
}

#[derive(Debug, Serialize)]
pub struct LatencyView {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ParamView {
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    pub calls: u64,
}

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub method: String,
    pub route: String,
    pub calls: u64,
    pub no_response: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub status_codes: BTreeMap<u16, u64>,
    pub latency_ms: LatencyView,
    pub request_content_types: BTreeMap<String, u64>,
    pub response_content_types: BTreeMap<String, u64>,
    pub path_parameters: Vec<String>,
    pub query_parameters: BTreeMap<String, ParamView>,
    pub headers: BTreeMap<String, ParamView>,
    pub auth: BTreeMap<String, u64>,
    pub callers: BTreeMap<String, Vec<String>>,
    pub other_callers: u64,
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_schema: Option<Value>,
    pub response_schemas: BTreeMap<u16, Value>,
    /// Facts a cap left out.
    pub capped: u64,
}

fn round(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1000.0).round() / 1000.0)
}

pub fn view<'a>(services: impl IntoIterator<Item = &'a Service>) -> InventoryView {
    let services = services
        .into_iter()
        .map(|service| {
            let f = &service.facts;
            let mut endpoints: Vec<EndpointView> = service
                .endpoints()
                .iter()
                .map(|e| {
                    let facts = &e.facts;
                    let params =
                        |map: &super::template::FastMap<String, super::endpoint::ParamFacts>| {
                            map.iter()
                                .map(|(name, p)| {
                                    (
                                        name.clone(),
                                        ParamView {
                                            ty: p.ty.describe(),
                                            required: p.seen >= facts.calls,
                                            calls: p.seen,
                                        },
                                    )
                                })
                                .collect()
                        };
                    EndpointView {
                        method: e.method.to_string(),
                        route: e.route.to_string(),
                        calls: facts.calls,
                        no_response: facts.no_response,
                        first_seen: format_time(facts.first_seen_ns),
                        last_seen: format_time(facts.last_seen_ns),
                        status_codes: facts.responses.iter().map(|(s, r)| (*s, r.count)).collect(),
                        latency_ms: LatencyView {
                            p50: round(facts.latency.quantile(0.5)),
                            p90: round(facts.latency.quantile(0.9)),
                            p99: round(facts.latency.quantile(0.99)),
                            max: round(facts.latency.max()),
                        },
                        request_content_types: facts.request_content_types.clone(),
                        response_content_types: facts
                            .response_content_types()
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                        path_parameters: facts
                            .path_params
                            .iter()
                            .map(|t| t.map_or("string".into(), |t| t.describe()))
                            .collect(),
                        query_parameters: params(&facts.query),
                        headers: params(&facts.headers),
                        auth: facts
                            .auth
                            .iter()
                            .map(|(s, n)| (s.to_string(), *n))
                            .collect(),
                        callers: facts
                            .callers
                            .iter()
                            .map(|(a, p)| (a.clone(), p.iter().cloned().collect()))
                            .collect(),
                        other_callers: facts.other_callers,
                        labels: facts.labels.iter().cloned().collect(),
                        request_schema: facts.request_body.as_ref().map(|s| s.to_json_schema()),
                        response_schemas: facts
                            .responses
                            .iter()
                            .filter_map(|(s, r)| Some((*s, r.body.as_ref()?.to_json_schema())))
                            .collect(),
                        capped: facts.capped,
                    }
                })
                .collect();
            endpoints.sort_by(|a, b| (&a.route, &a.method).cmp(&(&b.route, &b.method)));
            ServiceView {
                name: service.name(),
                kind: service.key.kind,
                address: service.key.host.clone(),
                port: service.key.port,
                processes: f.processes.iter().cloned().collect(),
                containers: f.containers.iter().cloned().collect(),
                hosts: f.hosts.iter().cloned().collect(),
                tls: f.tls,
                calls: f.calls,
                first_seen: format_time(f.first_seen_ns),
                last_seen: format_time(f.last_seen_ns),
                endpoints,
            }
        })
        .collect();
    InventoryView { services }
}

impl InventoryView {
    /// One block per service, one row per endpoint.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for service in &self.services {
            let _ = writeln!(
                out,
                "{} ({:?}{}, {} calls, last seen {})",
                service.name,
                service.kind,
                if service.tls { ", tls" } else { "" },
                service.calls,
                service.last_seen
            );
            let rows: Vec<[String; 7]> = service
                .endpoints
                .iter()
                .map(|e| {
                    [
                        e.method.clone(),
                        e.route.clone(),
                        e.calls.to_string(),
                        e.status_codes
                            .iter()
                            .map(|(s, n)| format!("{s}×{n}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        e.latency_ms.p50.map_or("-".into(), |v| format!("{v}")),
                        e.latency_ms.p99.map_or("-".into(), |v| format!("{v}")),
                        e.auth.keys().cloned().collect::<Vec<_>>().join(", "),
                    ]
                })
                .collect();
            let header = [
                "METHOD", "ROUTE", "CALLS", "STATUS", "P50 MS", "P99 MS", "AUTH",
            ];
            let mut widths = header.map(|h| h.chars().count());
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let mut line = |cells: &[String]| {
                let mut text = String::from(" ");
                for (cell, w) in cells.iter().zip(widths) {
                    let pad = w.saturating_sub(cell.chars().count());
                    let _ = write!(text, " {cell}{}", " ".repeat(pad));
                }
                let _ = writeln!(out, "{}", text.trim_end());
            };
            line(&header.map(String::from));
            for row in &rows {
                line(row);
            }
            out.push('\n');
        }
        if self.services.is_empty() {
            out.push_str("the inventory is empty\n");
        }
        out
    }
}
