//! Observed traffic against a documented spec: shadow, zombie, orphan and drift.
//!
//! The last step of `observer diff` (and, endpoint by endpoint, of live reports under
//! `observer run --spec`). Each observed endpoint is matched to the spec operation with the same
//! method whose path matches segment by segment (a spec parameter matches any segment; the most
//! literal match wins; with or without the spec's base path). Then:
//!
//! - **shadow**: observed, not documented;
//! - **zombie**: documented as deprecated and still called, or an older version (`/v1/...`)
//!   still answering while a newer one (`/v2/...`) of the same resource exists, observed or
//!   documented;
//! - **orphan**: documented, never observed;
//! - **drift**: observed traffic the operation does not declare: query and header parameters,
//!   status codes, content types, JSON body fields, and calls without credentials where the spec
//!   requires them.
//!
//! Shadow and zombie endpoints are what a CI gate stops on ([`DiffReport::gate_failed`]).

use std::{collections::BTreeSet, fmt::Write as _};

use serde::Serialize;
use serde_json::Value;

use super::{
    auth::AuthScheme,
    endpoint::{content_type_matches, sorted},
    format_time,
    schema::Schema,
    spec::{ApiSpec, ParamLocation, SpecOperation},
    Endpoint, Service,
};

/// Request headers that proxies, tracing and browsers add: undeclared in every spec, and not
/// the API's parameters.
const INFRASTRUCTURE_HEADERS: &[&str] = &[
    "forwarded",
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-request-id",
    "x-correlation-id",
    "x-real-ip",
    "x-amzn-trace-id",
    "x-cloud-trace-context",
    "dnt",
    "upgrade-insecure-requests",
];

/// Undeclared body fields reported per endpoint and side: the first ones tell the story.
const MAX_FIELDS_REPORTED: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    Shadow,
    Zombie,
    Orphan,
    Drift,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffItem {
    pub kind: DiffKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub method: String,
    /// The observed route, or the spec's path for orphans.
    pub route: String,
    /// The spec path the endpoint matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_path: Option<String>,
    pub detail: String,
    /// Calls observed (none for orphans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
}

/// A whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub spec: String,
    pub spec_version: super::spec::SpecVersion,
    pub services: Vec<String>,
    pub operations: usize,
    pub endpoints: usize,
    pub shadow: Vec<DiffItem>,
    pub zombie: Vec<DiffItem>,
    pub orphan: Vec<DiffItem>,
    pub drift: Vec<DiffItem>,
}

impl DiffReport {
    /// Shadow or zombie APIs were found: `observer diff` exits non-zero.
    pub fn gate_failed(&self) -> bool {
        !self.shadow.is_empty() || !self.zombie.is_empty()
    }

    /// The readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "observer diff: {} ({:?}, {} operations) against {} ({} endpoints)",
            self.spec,
            self.spec_version,
            self.operations,
            self.services.join(", "),
            self.endpoints
        );
        for (name, what, items) in [
            ("shadow", "observed, not in the spec", &self.shadow),
            (
                "zombie",
                "deprecated or superseded, still answering",
                &self.zombie,
            ),
            ("orphan", "in the spec, never observed", &self.orphan),
            ("drift", "traffic the spec does not declare", &self.drift),
        ] {
            let _ = writeln!(out, "\n{name} ({}): {what}", items.len());
            for item in items {
                let calls = item
                    .calls
                    .map(|n| format!(" [{n} calls]"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<7} {:<40} {}{calls}",
                    item.method, item.route, item.detail
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{} shadow, {} zombie, {} orphan, {} drift{}",
            self.shadow.len(),
            self.zombie.len(),
            self.orphan.len(),
            self.drift.len(),
            if self.gate_failed() {
                " (exit status 2: shadow or zombie APIs found)"
            } else {
                ""
            }
        );
        out
    }
}

/// Whether a spec path matches an observed route, segment by segment.
fn path_matches(spec_path: &str, route: &str) -> Option<usize> {
    let spec: Vec<&str> = spec_path.split('/').filter(|s| !s.is_empty()).collect();
    let observed: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    if spec.len() != observed.len() {
        return None;
    }
    let mut literal = 0;
    for (s, o) in spec.iter().zip(&observed) {
        if s.contains('{') {
            continue;
        }
        if s != o {
            return None;
        }
        literal += 1;
    }
    Some(literal)
}

/// The operation an endpoint is an instance of. HEAD is answered by GET's operation where the
/// spec has no HEAD (servers do that for free), and OPTIONS by any operation of the path (CORS
/// preflight).
pub fn find_operation<'a>(
    spec: &'a ApiSpec,
    method: &str,
    route: &str,
) -> Option<&'a SpecOperation> {
    let mut best: Option<(usize, u8, &SpecOperation)> = None;
    for op in &spec.operations {
        let rank = if op.method == method {
            2
        } else if (method == "HEAD" && op.method == "GET") || method == "OPTIONS" {
            1
        } else {
            continue;
        };
        let literal = path_matches(&op.path, route).or_else(|| path_matches(&op.raw_path, route));
        if let Some(literal) = literal {
            if best.is_none_or(|(l, r, _)| (literal, rank) > (l, r)) {
                best = Some((literal, rank, op));
            }
        }
    }
    best.map(|(_, _, op)| op)
}

/// `/v1/users/{id}` → (`v`, 1, `/{}/users/{}` with the version segment blanked) for comparing
/// versions of one resource.
fn versioned(route: &str) -> Option<(u32, String)> {
    let mut version = None;
    let mut shape = String::new();
    for segment in route.split('/').filter(|s| !s.is_empty()) {
        shape.push('/');
        if version.is_none() {
            if let Some(n) = segment
                .strip_prefix(['v', 'V'])
                .and_then(|n| n.split('.').next())
                .and_then(|n| n.parse::<u32>().ok())
            {
                version = Some(n);
                shape.push_str("{version}");
                continue;
            }
        }
        if segment.contains('{') {
            shape.push_str("{}");
        } else {
            shape.push_str(segment);
        }
    }
    version.map(|v| (v, shape))
}

/// Whether the endpoint answered (2xx or 3xx) at all.
fn answers(endpoint: &Endpoint) -> bool {
    endpoint
        .facts
        .responses
        .keys()
        .any(|s| (200..400).contains(s))
}

/// The newer version of `route` among `routes`, if any.
fn newer_version<'a>(route: &str, routes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let (version, shape) = versioned(route)?;
    routes
        .into_iter()
        .filter(|other| versioned(other).is_some_and(|(v, s)| v > version && s == shape))
        .max_by_key(|other| versioned(other).map(|(v, _)| v))
}

/// Everything to say about one observed endpoint against `spec` (shadow, zombie, drift).
/// `routes` are the (method, route) pairs observed on its service: a newer version of the
/// same method and resource there, or in the spec, makes an answering older one a zombie.
pub fn check_endpoint<'a>(
    spec: &'a ApiSpec,
    endpoint: &Endpoint,
    routes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<DiffItem> {
    let mut out = Vec::new();
    let item = |kind, spec_path: Option<&str>, detail: String| DiffItem {
        kind,
        service: None,
        method: endpoint.method.to_string(),
        route: endpoint.route.to_string(),
        spec_path: spec_path.map(str::to_string),
        detail,
        calls: Some(endpoint.facts.calls),
    };
    let op = find_operation(spec, &endpoint.method, &endpoint.route);
    let method = &*endpoint.method;
    let spec_paths = spec
        .operations
        .iter()
        .filter(|op| op.method == method)
        .map(|op| op.path.as_str());
    let observed = routes
        .into_iter()
        .filter(|(m, _)| *m == method)
        .map(|(_, route)| route);
    let newer = if answers(endpoint) {
        newer_version(&endpoint.route, observed.chain(spec_paths))
    } else {
        None
    };
    if let Some(newer) = newer {
        out.push(item(
            DiffKind::Zombie,
            op.map(|op| op.path.as_str()),
            format!("older version still answering while {newer} exists"),
        ));
    }
    let Some(op) = op else {
        out.push(item(
            DiffKind::Shadow,
            None,
            format!(
                "not in the spec; last seen {}",
                format_time(endpoint.facts.last_seen_ns)
            ),
        ));
        return out;
    };
    if op.deprecated && endpoint.facts.calls > 0 && newer.is_none() {
        out.push(item(
            DiffKind::Zombie,
            Some(&op.path),
            format!(
                "deprecated in the spec, still called; last seen {}",
                format_time(endpoint.facts.last_seen_ns)
            ),
        ));
    }
    for detail in drift(spec, op, endpoint) {
        out.push(item(DiffKind::Drift, Some(&op.path), detail));
    }
    out
}

/// Where traffic to `endpoint` disagrees with `op`.
fn drift(spec: &ApiSpec, op: &SpecOperation, endpoint: &Endpoint) -> Vec<String> {
    let facts = &endpoint.facts;
    let mut out = Vec::new();
    let declared = |location: ParamLocation, name: &str| {
        op.parameters.iter().any(|p| {
            p.location == location
                && if location == ParamLocation::Header {
                    p.name.eq_ignore_ascii_case(name)
                } else {
                    p.name == name
                }
        })
    };
    let auth_names: BTreeSet<String> = facts
        .auth
        .keys()
        .filter_map(|scheme| match scheme {
            AuthScheme::ApiKeyHeader { name } | AuthScheme::ApiKeyQuery { name } => {
                Some(name.to_ascii_lowercase())
            }
            _ => None,
        })
        .collect();
    for (name, param) in sorted(&facts.query) {
        if !declared(ParamLocation::Query, name) && !auth_names.contains(&name.to_ascii_lowercase())
        {
            out.push(format!(
                "undeclared query parameter `{name}` ({})",
                param.ty.describe()
            ));
        }
    }
    for (name, param) in sorted(&facts.headers) {
        if !declared(ParamLocation::Header, name)
            && !auth_names.contains(name)
            && !INFRASTRUCTURE_HEADERS.contains(&name)
            && !name.starts_with("x-forwarded-")
            && !name.starts_with("x-b3-")
        {
            out.push(format!(
                "undeclared header `{name}` ({})",
                param.ty.describe()
            ));
        }
    }
    for status in facts.responses.keys() {
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        if !op.responses.contains_key(&code)
            && !op.responses.contains_key(&range)
            && !op.responses.contains_key("default")
        {
            out.push(format!("undeclared status code {status}"));
        }
    }
    match &op.request_body {
        Some(body) => {
            for ct in facts.request_content_types.keys() {
                if !body.content_types.is_empty()
                    && !body
                        .content_types
                        .iter()
                        .any(|d| content_type_matches(d, ct))
                {
                    out.push(format!("undeclared request content type {ct}"));
                }
            }
            if let (Some((doc, schema)), Some(observed)) = (&body.schema, &facts.request_body) {
                let mut fields = Vec::new();
                undeclared_fields(spec, doc, schema, &observed.root, "$", 0, &mut fields);
                for field in fields.into_iter().take(MAX_FIELDS_REPORTED) {
                    out.push(format!("undeclared request field `{field}`"));
                }
            }
        }
        None => {
            if let Some(ct) = facts.request_content_types.keys().next() {
                out.push(format!("request body ({ct}) where the spec declares none"));
            }
        }
    }
    for (status, response) in &facts.responses {
        let declared = op
            .responses
            .get(&status.to_string())
            .or_else(|| op.responses.get(&format!("{}XX", status / 100)))
            .or_else(|| op.responses.get("default"));
        let Some(declared) = declared else { continue };
        for ct in response.content_types.keys() {
            if !declared.content_types.is_empty()
                && !declared
                    .content_types
                    .iter()
                    .any(|d| content_type_matches(d, ct))
            {
                out.push(format!(
                    "undeclared response content type {ct} (status {status})"
                ));
            }
        }
        if let (Some((doc, schema)), Some(observed)) = (&declared.schema, &response.body) {
            let mut fields = Vec::new();
            undeclared_fields(spec, doc, schema, &observed.root, "$", 0, &mut fields);
            for field in fields.into_iter().take(MAX_FIELDS_REPORTED) {
                out.push(format!(
                    "undeclared response field `{field}` (status {status})"
                ));
            }
        }
    }
    if op.security_required {
        if let Some(n) = facts.auth.get(&AuthScheme::None) {
            out.push(format!(
                "{n} calls without credentials where the spec requires authentication"
            ));
        }
    }
    out
}

/// Depth of spec schema walked when comparing fields (recursive schemas end here).
const MAX_FIELD_DEPTH: usize = 12;

/// The properties a (possibly composed) spec schema declares, and whether it allows others.
fn declared_properties<'a>(
    spec: &'a ApiSpec,
    doc: &'a str,
    schema: &'a Value,
    depth: usize,
    out: &mut Vec<(&'a str, &'a str, &'a Value)>,
) -> bool {
    let (doc, schema) = spec.deref(doc, schema);
    let mut open = match schema.get("additionalProperties") {
        Some(Value::Bool(false)) | None => false,
        Some(_) => true,
    };
    let mut described = false;
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        described = true;
        for (name, sub) in properties {
            out.push((name.as_str(), doc, sub));
        }
    }
    if depth < MAX_FIELD_DEPTH {
        for key in ["allOf", "oneOf", "anyOf"] {
            for member in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                described = true;
                open |= declared_properties(spec, doc, member, depth + 1, out);
            }
        }
    }
    // A schema that describes no properties at all is free-form: nothing is undeclared in it.
    open || !described
}

fn undeclared_fields(
    spec: &ApiSpec,
    doc: &str,
    schema: &Value,
    observed: &Schema,
    path: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    if depth > MAX_FIELD_DEPTH || out.len() >= MAX_FIELDS_REPORTED {
        return;
    }
    let (doc, schema) = spec.deref(doc, schema);
    if observed.is_object() {
        let mut declared = Vec::new();
        let open = declared_properties(spec, doc, schema, 0, &mut declared);
        for (name, _, sub) in observed.properties() {
            let field = format!("{path}.{name}");
            match declared.iter().find(|(n, _, _)| *n == name) {
                Some((_, sub_doc, sub_schema)) => {
                    undeclared_fields(spec, sub_doc, sub_schema, sub, &field, depth + 1, out)
                }
                None if !open => out.push(field),
                None => {}
            }
        }
    }
    if let (Some(items), Some(spec_items)) = (observed.items(), schema.get("items")) {
        undeclared_fields(
            spec,
            doc,
            spec_items,
            items,
            &format!("{path}[]"),
            depth + 1,
            out,
        );
    }
}

/// Compare `services` with `spec`.
pub fn diff(spec: &ApiSpec, services: &[&Service]) -> DiffReport {
    let mut report = DiffReport {
        spec: if spec.title.is_empty() {
            spec.source.clone()
        } else {
            format!("{} ({})", spec.title, spec.source)
        },
        spec_version: spec.version,
        services: services.iter().map(|s| s.name()).collect(),
        operations: spec.operations.len(),
        endpoints: services.iter().map(|s| s.endpoints().len()).sum(),
        shadow: Vec::new(),
        zombie: Vec::new(),
        orphan: Vec::new(),
        drift: Vec::new(),
    };
    let mut matched: BTreeSet<(String, String)> = BTreeSet::new();
    for service in services {
        let name = service.name();
        for endpoint in service.endpoints() {
            if let Some(op) = find_operation(spec, &endpoint.method, &endpoint.route) {
                matched.insert((op.method.clone(), op.path.clone()));
            }
            let routes = service
                .endpoints()
                .iter()
                .map(|e| (e.method.as_ref(), e.route.as_ref()));
            for mut item in check_endpoint(spec, endpoint, routes) {
                item.service = Some(name.clone());
                match item.kind {
                    DiffKind::Shadow => report.shadow.push(item),
                    DiffKind::Zombie => report.zombie.push(item),
                    DiffKind::Orphan => report.orphan.push(item),
                    DiffKind::Drift => report.drift.push(item),
                }
            }
        }
    }
    for op in &spec.operations {
        if !matched.contains(&(op.method.clone(), op.path.clone())) {
            report.orphan.push(DiffItem {
                kind: DiffKind::Orphan,
                service: None,
                method: op.method.clone(),
                route: op.path.clone(),
                spec_path: Some(op.path.clone()),
                detail: match &op.operation_id {
                    Some(id) => format!("documented ({id}), never observed"),
                    None => "documented, never observed".to_string(),
                },
                calls: None,
            });
        }
    }
    for list in [
        &mut report.shadow,
        &mut report.zombie,
        &mut report.orphan,
        &mut report.drift,
    ] {
        list.sort_by(|a, b| {
            (&a.route, &a.method, &a.detail).cmp(&(&b.route, &b.method, &b.detail))
        });
    }
    report
}

/// The services a spec is about when the user did not say: the local services with at least
/// one endpoint the spec documents (or every local service if none has one).
pub fn services_for<'a>(spec: &ApiSpec, services: &'a [Service]) -> Vec<&'a Service> {
    let local = || {
        services
            .iter()
            .filter(|s| s.key.kind == super::service::ServiceKind::Local)
    };
    let matching: Vec<&Service> = local()
        .filter(|s| {
            s.endpoints()
                .iter()
                .any(|e| find_operation(spec, &e.method, &e.route).is_some())
        })
        .collect();
    if matching.is_empty() {
        local().collect()
    } else {
        matching
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        inventory::{tests::call, Inventory},
        pipeline::Analyzer,
    };

    const SPEC: &str = r##"
openapi: 3.1.0
info: {title: Shop, version: "2"}
security: [{bearer: []}]
paths:
  /v1/items/{id}:
    get: {responses: {"200": {description: ok}}}
  /v2/items/{id}:
    get:
      parameters: [{name: fields, in: query}]
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                properties: {id: {type: integer}, name: {type: string}}
  /legacy:
    get: {deprecated: true, responses: {"200": {description: ok}}}
  /never:
    post: {responses: {"201": {description: made}}}
"##;

    fn inventory() -> Inventory {
        let mut inventory = Inventory::in_memory();
        let mut out = Vec::new();
        let mut calls = vec![
            call("GET", "/v1/items/1", 200),
            call("GET", "/legacy", 200),
            call("GET", "/admin/debug", 200),
        ];
        let mut v2 = call("GET", "/v2/items/2", 200);
        v2.query = Some("fields=id&debug=1".into());
        v2.response_headers
            .insert("content-type", "application/json");
        v2.response_body_bytes = br#"{"id":2,"name":"x","secret":true}"#.to_vec();
        calls.push(v2);
        calls.push(call("GET", "/v2/items/3", 500));
        for mut c in calls {
            inventory.analyze(&mut c, &mut out);
        }
        inventory
    }

    #[test]
    fn every_category_is_found() {
        let spec = ApiSpec::parse(SPEC, "shop.yaml").unwrap();
        let inventory = inventory();
        let services = services_for(&spec, inventory.services());
        let report = diff(&spec, &services);
        let routes = |items: &[DiffItem]| -> Vec<String> {
            items
                .iter()
                .map(|i| format!("{} {}", i.method, i.route))
                .collect()
        };
        assert_eq!(routes(&report.shadow), vec!["GET /admin/debug"]);
        assert_eq!(
            routes(&report.zombie),
            vec!["GET /legacy", "GET /v1/items/{id}"]
        );
        assert_eq!(routes(&report.orphan), vec!["POST /never"]);
        let drift: Vec<&str> = report.drift.iter().map(|i| i.detail.as_str()).collect();
        for expected in [
            "undeclared query parameter `debug` (integer)",
            "undeclared status code 500",
            "undeclared response field `$.secret` (status 200)",
            "2 calls without credentials where the spec requires authentication",
        ] {
            assert!(drift.contains(&expected), "{expected} not in {drift:#?}");
        }
        assert!(report.gate_failed());
        let text = report.to_text();
        assert!(text.contains("1 shadow, 2 zombie, 1 orphan"), "{text}");
    }

    #[test]
    fn matching_prefers_literals_and_allows_head_and_base_paths() {
        let spec = ApiSpec::parse(
            r##"{"swagger": "2.0", "info": {}, "basePath": "/api",
                "paths": {"/u/{id}": {"get": {"responses": {}}},
                          "/u/me": {"get": {"responses": {}}}}}"##,
            "s.json",
        )
        .unwrap();
        assert_eq!(
            find_operation(&spec, "GET", "/api/u/me").unwrap().raw_path,
            "/u/me"
        );
        assert_eq!(
            find_operation(&spec, "GET", "/api/u/{id}")
                .unwrap()
                .raw_path,
            "/u/{id}"
        );
        assert_eq!(
            find_operation(&spec, "HEAD", "/u/{id}").unwrap().raw_path,
            "/u/{id}"
        );
        assert!(find_operation(&spec, "POST", "/u/{id}").is_none());
        assert!(find_operation(&spec, "GET", "/u/{id}/x").is_none());
    }

    #[test]
    fn versions_compare_by_resource_shape() {
        assert_eq!(
            newer_version(
                "/api/v1/users/{id}",
                ["/api/v2/users/{userId}", "/api/v3/orders/{id}"]
            ),
            Some("/api/v2/users/{userId}")
        );
        assert_eq!(
            newer_version("/api/v2/users/{id}", ["/api/v1/users/{id}"]),
            None
        );
        assert_eq!(newer_version("/users/{id}", ["/v2/users/{id}"]), None);
    }
}
