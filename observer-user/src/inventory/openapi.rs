//! The inventory as an OpenAPI 3.1 document (`observer openapi`).
//!
//! One document per service: its paths (the routes, with path, query and header parameters
//! typed from the values seen), request bodies and responses per status with their content
//! types and inferred JSON schemas, the security schemes calls used, and `x-observer-*`
//! extensions for what was observed (first and last seen, call and status counts, latency
//! percentiles, callers, labels). What OpenAPI cannot express is left out rather than bent:
//! methods outside the eight it knows are listed in `x-observer-other-methods`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    auth::AuthScheme,
    endpoint::{is_json, sorted, EndpointFacts},
    format_time,
    schema::ScalarType,
    service::ServiceKind,
    Endpoint, Service,
};

/// The OpenAPI version written.
pub const OPENAPI_VERSION: &str = "3.1.0";

const OPENAPI_METHODS: &[&str] = &[
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

/// The document's top level, in the order people expect to read it.
#[derive(Debug, Serialize)]
pub struct Document {
    pub openapi: &'static str,
    pub info: Value,
    pub servers: Vec<Value>,
    pub paths: BTreeMap<String, Map<String, Value>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub components: Map<String, Value>,
    #[serde(
        rename = "x-observer-other-methods",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub other_methods: Vec<String>,
}

/// Security scheme names in `components.securitySchemes`.
fn scheme_name(scheme: &AuthScheme) -> Option<String> {
    Some(match scheme {
        AuthScheme::None => return None,
        AuthScheme::Basic => "basicAuth".into(),
        AuthScheme::Bearer => "bearerAuth".into(),
        AuthScheme::Jwt { .. } => "jwtAuth".into(),
        AuthScheme::ApiKeyHeader { name } => format!("apiKeyHeader_{}", safe_name(name)),
        AuthScheme::ApiKeyQuery { name } => format!("apiKeyQuery_{}", safe_name(name)),
        AuthScheme::Cookie { name } => format!("cookie_{}", safe_name(name)),
        AuthScheme::Other { name } => format!("http_{}", safe_name(name)),
    })
}

fn scheme_definition(scheme: &AuthScheme, jwt_algs: &BTreeSet<String>) -> Value {
    match scheme {
        AuthScheme::None => Value::Null,
        AuthScheme::Basic => json!({"type": "http", "scheme": "basic"}),
        AuthScheme::Bearer => json!({"type": "http", "scheme": "bearer"}),
        AuthScheme::Jwt { .. } => json!({
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "x-observer-jwt-algorithms": jwt_algs,
        }),
        AuthScheme::ApiKeyHeader { name } => {
            json!({"type": "apiKey", "in": "header", "name": name})
        }
        AuthScheme::ApiKeyQuery { name } => json!({"type": "apiKey", "in": "query", "name": name}),
        AuthScheme::Cookie { name } => json!({"type": "apiKey", "in": "cookie", "name": name}),
        AuthScheme::Other { name } => json!({"type": "http", "scheme": name}),
    }
}

/// Letters, digits, `.`, `-` and `_`: what component names allow.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn status_description(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 | 302 | 303 | 307 | 308 => "Redirect",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        s if s < 200 => "Informational",
        s if s < 300 => "Success",
        s if s < 400 => "Redirect",
        s if s < 500 => "Client error",
        _ => "Server error",
    }
}

/// The OpenAPI document of one service.
pub fn document(service: &Service) -> Document {
    let facts = &service.facts;
    let scheme = if facts.tls { "https" } else { "http" };
    let host = match service.key.kind {
        ServiceKind::External => service.key.host.clone(),
        ServiceKind::Local => facts
            .hosts
            .iter()
            .next()
            .map(|h| {
                h.rsplit_once(':')
                    .map_or(h.as_str(), |(name, _)| name)
                    .to_string()
            })
            .unwrap_or_else(|| service.key.host.clone()),
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let info = json!({
        "title": service.name(),
        "version": "observed",
        "description": format!(
            "What observer saw {} serve, from {} to {}. Generated from traffic, not from code: \
             paths, parameters and schemas cover what was called.",
            service.key, format_time(facts.first_seen_ns), format_time(facts.last_seen_ns)
        ),
        "x-observer-service": {
            "kind": service.key.kind,
            "address": service.key.host,
            "port": service.key.port,
            "processes": facts.processes,
            "containers": facts.containers,
            "hosts": facts.hosts,
            "calls": facts.calls,
            "first-seen": format_time(facts.first_seen_ns),
            "last-seen": format_time(facts.last_seen_ns),
        },
    });
    let mut doc = Document {
        openapi: OPENAPI_VERSION,
        info,
        servers: vec![json!({"url": format!("{scheme}://{host}:{}", service.key.port)})],
        paths: BTreeMap::new(),
        components: Map::new(),
        other_methods: Vec::new(),
    };
    let mut schemes: BTreeMap<String, Value> = BTreeMap::new();
    let mut operation_ids: BTreeSet<String> = BTreeSet::new();
    for endpoint in service.endpoints() {
        if !OPENAPI_METHODS.contains(&&*endpoint.method) {
            doc.other_methods
                .push(format!("{} {}", endpoint.method, endpoint.route));
            continue;
        }
        let op = operation(endpoint, &mut schemes, &mut operation_ids);
        doc.paths
            .entry(endpoint.route.to_string())
            .or_default()
            .insert(endpoint.method.to_ascii_lowercase(), op);
    }
    if !schemes.is_empty() {
        doc.components
            .insert("securitySchemes".into(), json!(schemes));
    }
    doc
}

fn operation(
    endpoint: &Endpoint,
    schemes: &mut BTreeMap<String, Value>,
    operation_ids: &mut BTreeSet<String>,
) -> Value {
    let facts = &endpoint.facts;
    let mut op = Map::new();
    let base_id = format!(
        "{}{}",
        endpoint.method.to_ascii_lowercase(),
        endpoint
            .route
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
    );
    let mut id = base_id.clone();
    let mut n = 2;
    while !operation_ids.insert(id.clone()) {
        id = format!("{base_id}{n}");
        n += 1;
    }
    op.insert("operationId".into(), json!(id));
    let parameters = parameters(endpoint);
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    if !facts.request_content_types.is_empty() {
        let mut content = Map::new();
        for ct in facts.request_content_types.keys() {
            let schema = match (&facts.request_body, is_json(ct)) {
                (Some(body), true) => body.to_json_schema(),
                _ => json!({}),
            };
            content.insert(ct.clone(), json!({ "schema": schema }));
        }
        let with_body: u64 = facts.request_content_types.values().sum();
        op.insert(
            "requestBody".into(),
            json!({"required": with_body >= facts.calls, "content": content}),
        );
    }
    op.insert("responses".into(), responses(facts));
    let security = security(facts, schemes);
    if !security.is_empty() {
        op.insert("security".into(), Value::Array(security));
    }
    let latency = |q| {
        facts
            .latency
            .quantile(q)
            .map(|v| (v * 1000.0).round() / 1000.0)
    };
    op.insert("x-observer-calls".into(), json!(facts.calls));
    op.insert(
        "x-observer-first-seen".into(),
        json!(format_time(facts.first_seen_ns)),
    );
    op.insert(
        "x-observer-last-seen".into(),
        json!(format_time(facts.last_seen_ns)),
    );
    op.insert(
        "x-observer-status-counts".into(),
        json!(facts
            .responses
            .iter()
            .map(|(s, r)| (s.to_string(), r.count))
            .collect::<BTreeMap<_, _>>()),
    );
    if facts.latency.count() > 0 {
        op.insert(
            "x-observer-latency-ms".into(),
            json!({"p50": latency(0.5), "p90": latency(0.9), "p99": latency(0.99),
                   "max": facts.latency.max()}),
        );
    }
    op.insert(
        "x-observer-auth".into(),
        json!(facts
            .auth
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect::<BTreeMap<_, _>>()),
    );
    op.insert(
        "x-observer-callers".into(),
        json!(facts.callers.iter().collect::<BTreeMap<_, _>>()),
    );
    if !facts.labels.is_empty() {
        op.insert("x-observer-labels".into(), json!(facts.labels));
    }
    Value::Object(op)
}

fn parameters(endpoint: &Endpoint) -> Vec<Value> {
    let facts = &endpoint.facts;
    let mut out = Vec::new();
    let names = endpoint
        .route
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
    for (i, name) in names.enumerate() {
        let schema = facts
            .path_params
            .get(i)
            .copied()
            .flatten()
            .unwrap_or(ScalarType::String)
            .to_json_schema();
        out.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
    }
    let api_keys: BTreeSet<&str> = facts
        .auth
        .keys()
        .filter_map(|s| match s {
            AuthScheme::ApiKeyHeader { name } | AuthScheme::ApiKeyQuery { name } => {
                Some(name.as_str())
            }
            _ => None,
        })
        .collect();
    for (location, params) in [("query", &facts.query), ("header", &facts.headers)] {
        for (name, param) in sorted(params) {
            // Credentials are security schemes, not parameters.
            if api_keys.contains(name.to_ascii_lowercase().as_str()) {
                continue;
            }
            out.push(json!({
                "name": name,
                "in": location,
                "required": param.seen >= facts.calls,
                "schema": param.ty.to_json_schema(),
                "x-observer-calls": param.seen,
            }));
        }
    }
    out
}

fn responses(facts: &EndpointFacts) -> Value {
    let mut out = Map::new();
    for (status, response) in &facts.responses {
        let mut entry = Map::new();
        entry.insert("description".into(), json!(status_description(*status)));
        if !response.content_types.is_empty() {
            let mut content = Map::new();
            for ct in response.content_types.keys() {
                let schema = match (&response.body, is_json(ct)) {
                    (Some(body), true) => body.to_json_schema(),
                    _ => json!({}),
                };
                content.insert(ct.clone(), json!({ "schema": schema }));
            }
            entry.insert("content".into(), Value::Object(content));
        }
        entry.insert("x-observer-calls".into(), json!(response.count));
        out.insert(status.to_string(), Value::Object(entry));
    }
    if out.is_empty() {
        out.insert(
            "default".into(),
            json!({"description": "No response observed"}),
        );
    }
    Value::Object(out)
}

fn security(facts: &EndpointFacts, schemes: &mut BTreeMap<String, Value>) -> Vec<Value> {
    let jwt_algs: BTreeSet<String> = facts
        .auth
        .keys()
        .filter_map(|s| match s {
            AuthScheme::Jwt { alg } => Some(alg.clone()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for scheme in facts.auth.keys() {
        let Some(name) = scheme_name(scheme) else {
            continue;
        };
        if !seen.insert(name.clone()) {
            continue;
        }
        let definition = scheme_definition(scheme, &jwt_algs);
        match schemes.get_mut(&name) {
            Some(existing) => {
                // JWT algorithms seen anywhere in the service.
                if let (Some(all), Some(new)) = (
                    existing.get_mut("x-observer-jwt-algorithms"),
                    definition.get("x-observer-jwt-algorithms"),
                ) {
                    let mut merged: BTreeSet<String> =
                        serde_json::from_value(all.clone()).unwrap_or_default();
                    merged.extend(
                        serde_json::from_value::<BTreeSet<String>>(new.clone()).unwrap_or_default(),
                    );
                    *all = json!(merged);
                }
            }
            None => {
                schemes.insert(name.clone(), definition);
            }
        }
        let mut requirement = Map::new();
        requirement.insert(name, json!([]));
        out.push(Value::Object(requirement));
    }
    // Calls without credentials: authentication is optional here.
    if !out.is_empty() && facts.auth.contains_key(&AuthScheme::None) {
        out.push(json!({}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        inventory::{tests::call, Inventory},
        pipeline::Analyzer,
    };

    #[test]
    fn a_service_becomes_a_document() {
        let mut inventory = Inventory::in_memory();
        let mut out = Vec::new();
        for i in 0..3 {
            let mut c = call("POST", &format!("/users/{i}/orders"), 201);
            c.query = Some("dry_run=true".into());
            c.request_headers.insert("content-type", "application/json");
            c.request_headers
                .insert("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
            c.request_body_bytes = br#"{"item":"x","qty":2}"#.to_vec();
            c.response_headers
                .insert("content-type", "application/json");
            c.response_body_bytes = br#"{"id":"6f0e7b8e-2d0a-4c53-9b8e-6a1c3f0e2d11"}"#.to_vec();
            inventory.analyze(&mut c, &mut out);
        }
        let doc = serde_json::to_value(document(&inventory.services()[0])).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let op = &doc["paths"]["/users/{id}/orders"]["post"];
        assert_eq!(
            op["parameters"][0],
            json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}})
        );
        assert_eq!(op["parameters"][1]["schema"], json!({"type": "boolean"}));
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"]["required"],
            json!(["item", "qty"])
        );
        assert_eq!(
            op["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["id"]
                ["format"],
            "uuid"
        );
        assert_eq!(op["security"], json!([{"jwtAuth": []}]));
        assert_eq!(
            doc["components"]["securitySchemes"]["jwtAuth"]["x-observer-jwt-algorithms"],
            json!(["RS256"])
        );
        assert_eq!(op["x-observer-calls"], 3);
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
    }
}
