//! Improper inventory management (API9): traffic to shadow and zombie endpoints; and what else
//! the inventory says about a call that detectors use (new response fields, for exposure).
//!
//! The inventory decides what is shadow (answering, undocumented) and zombie (deprecated, or
//! an older version still answering) against the specs given to `observer run --spec`, and
//! says so once per endpoint on the output stream (`api.inventory.change`). The analyzers run
//! in order on each call and the inventory runs first, so what it said about *this* call is in
//! the output after the previous call ([`status_from_outputs`]); the detector keeps the status
//! with the endpoint's baseline (so a restart remembers it) and reports every caller of such
//! an endpoint, once per window.

use super::{
    kind::Kind,
    report::{Alert, Scope},
    subjects::InventoryStatus,
};
use crate::{
    model::ApiCall,
    output::{ChangeKind, Output},
};

/// What the inventory said about `call`'s endpoint among the outputs it produced for it
/// (those after the last call in `out`). Zombie wins over shadow: it is the more specific.
pub fn status_from_outputs(out: &[Output], call: &ApiCall) -> Option<InventoryStatus> {
    let mut status = None;
    for output in out.iter().rev() {
        let change = match output {
            Output::Call(_) => break,
            Output::Inventory(change) => change,
            Output::Finding(_) => continue,
        };
        let about_call = change.endpoint.method.as_deref() == call.method.as_deref()
            && change.endpoint.route.is_some()
            && change.endpoint.route.as_deref() == call.route.as_deref()
            && change.endpoint.server_port == call.server_port;
        if !about_call {
            continue;
        }
        match change.change {
            ChangeKind::ZombieEndpoint => status = Some(InventoryStatus::Zombie),
            ChangeKind::ShadowEndpoint if status.is_none() => {
                status = Some(InventoryStatus::Shadow)
            }
            _ => {}
        }
    }
    status
}

/// The response fields the inventory saw for the first time on `call`'s endpoint, as it
/// reported them (`new response field `$.user.password_hash` (status 200)`). The inventory
/// parses response bodies anyway (every one until an endpoint's schema settles, then one in
/// `inventory::schema::SAMPLE_INTERVAL`), so exposure costs nothing per call; the price is
/// that a field appearing in fewer responses than that may be seen late or not at all.
pub fn new_response_fields(out: &[Output], call: &ApiCall) -> Vec<String> {
    let mut fields = Vec::new();
    for output in out.iter().rev() {
        let change = match output {
            Output::Call(_) => break,
            Output::Inventory(change) if change.change == ChangeKind::NewField => change,
            _ => continue,
        };
        if change.endpoint.method.as_deref() != call.method.as_deref()
            || change.endpoint.route.as_deref() != call.route.as_deref()
        {
            continue;
        }
        for detail in &change.details {
            let Some(rest) = detail.strip_prefix(NEW_RESPONSE_FIELD) else {
                continue;
            };
            if let Some((path, _)) = rest.split_once('`') {
                fields.push(path.to_string());
            }
        }
    }
    fields
}

/// How the inventory words a new response field (`inventory::endpoint::Novelty::describe`);
/// a test here pins it.
const NEW_RESPONSE_FIELD: &str = "new response field `";

/// A call to an endpoint the inventory called shadow or zombie.
pub fn check(status: Option<InventoryStatus>, call: &ApiCall) -> Option<Alert> {
    let status_code = call
        .status_code
        .map_or_else(|| "no answer".to_string(), |s| s.to_string());
    let alert = match status? {
        InventoryStatus::Shadow => Alert::new(
            Kind::ShadowEndpoint,
            "shadow",
            format!(
                "called an endpoint the API's spec does not document (answered {status_code}): \
                 undocumented endpoints escape review, monitoring and retirement"
            ),
            Scope::Principal,
        ),
        InventoryStatus::Zombie => Alert::new(
            Kind::ZombieEndpoint,
            "zombie",
            format!(
                "called an endpoint the spec deprecates or a newer version replaces (answered \
                 {status_code}): old versions keep old flaws"
            ),
            Scope::Principal,
        ),
    };
    Some(alert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{findings::EndpointRef, output::InventoryChange};

    fn change(kind: ChangeKind, route: &str) -> Output {
        Output::Inventory(InventoryChange {
            event_name: "api.inventory.change".into(),
            timestamp: String::new(),
            change: kind,
            service: "svc".into(),
            endpoint: EndpointRef {
                method: Some("GET".into()),
                route: Some(route.into()),
                server_address: Some("127.0.0.1".into()),
                server_port: Some(8080),
            },
            details: Vec::new(),
        })
    }

    #[test]
    fn only_what_the_inventory_said_about_this_call_counts() {
        let mut call = crate::inventory::tests::call("GET", "/v1/users/7", 200);
        call.route = Some("/v1/users/{id}".into());
        let earlier = Output::Call(call.clone());
        let out = vec![
            change(ChangeKind::ZombieEndpoint, "/v1/users/{id}"),
            earlier,
            change(ChangeKind::NewEndpoint, "/v1/users/{id}"),
            change(ChangeKind::ShadowEndpoint, "/v1/other"),
        ];
        assert_eq!(status_from_outputs(&out, &call), None);
        let out = vec![
            change(ChangeKind::ShadowEndpoint, "/v1/users/{id}"),
            change(ChangeKind::ZombieEndpoint, "/v1/users/{id}"),
        ];
        assert_eq!(
            status_from_outputs(&out, &call),
            Some(InventoryStatus::Zombie)
        );
        let alert = check(Some(InventoryStatus::Zombie), &call).unwrap();
        assert_eq!(alert.kind.owasp(), "API9:2023");
    }

    #[test]
    fn new_response_fields_as_the_inventory_words_them() {
        use crate::inventory::endpoint::Novelty;
        let mut call = crate::inventory::tests::call("GET", "/v1/users/7", 200);
        call.route = Some("/v1/users/{id}".into());
        let novelty = |side, path: &str| {
            Novelty::Field {
                side,
                status: Some(200),
                path: path.into(),
            }
            .describe()
        };
        let mut change = change(ChangeKind::NewField, "/v1/users/{id}");
        if let Output::Inventory(change) = &mut change {
            change.details = vec![
                novelty("response", "$.password_hash"),
                novelty("request", "$.isAdmin"),
            ];
        }
        assert_eq!(new_response_fields(&[change], &call), ["$.password_hash"]);
    }
}
