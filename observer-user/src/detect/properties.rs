//! Broken object property level authorization (API3): write requests setting properties the
//! endpoint never took (mass assignment), and responses starting to carry sensitive
//! properties the endpoint never returned (excessive data exposure).
//!
//! Both compare with what an endpoint's traffic showed while it was learnt: its request body
//! fields, and the sensitive fields of its responses (the new ones the inventory reports,
//! named as `sensitive::hints` names them, the same reading of field names the sensitive-data
//! detectors use). A new *ordinary* field is
//! the API growing and is learnt silently; a new *privileged* one (`role`, `isAdmin`,
//! `balance`) is reported, until enough distinct principals use it that it is plainly the new
//! normal (`subjects::Pending`).

use super::{
    config::PropertyConfig,
    kind::Kind,
    report::{Alert, Scope},
    subjects::{EndpointBaseline, ADOPT_AFTER_PRINCIPALS},
};
use crate::{
    findings::Severity,
    sensitive::hints::{self, Hints},
};

/// Field names (lowercased, without `_`, `-` and `.`) that grant privileges or money.
const PRIVILEGED_FIELDS: &[&str] = &[
    "role",
    "roles",
    "admin",
    "isadmin",
    "administrator",
    "superuser",
    "issuperuser",
    "staff",
    "isstaff",
    "permission",
    "permissions",
    "privilege",
    "privileges",
    "scope",
    "scopes",
    "accesslevel",
    "usertype",
    "accounttype",
    "tier",
    "plan",
    "balance",
    "credit",
    "credits",
    "points",
    "wallet",
    "price",
    "discount",
    "verified",
    "isverified",
    "emailverified",
    "approved",
    "isapproved",
    "owner",
    "ownerid",
    "userid",
    "accountid",
    "tenantid",
    "orgid",
    "organizationid",
    "createdby",
];

/// Recognises privileged field names.
pub struct Properties {
    privileged: Vec<String>,
}

impl Properties {
    pub fn new(config: &PropertyConfig) -> Properties {
        let mut privileged: Vec<String> = PRIVILEGED_FIELDS.iter().map(|f| f.to_string()).collect();
        privileged.extend(config.privileged_fields.iter().map(|f| squash(f)));
        Properties { privileged }
    }

    pub fn is_privileged(&self, field: &str) -> bool {
        let leaf = field
            .rsplit('.')
            .next()
            .unwrap_or(field)
            .trim_end_matches("[]");
        let squashed = squash(leaf);
        self.privileged.contains(&squashed)
    }
}

/// `is_Admin`, `is-admin` and `isAdmin` are one name.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What a field (`users[].password_hash`, `card.number`) holds, if its name says it is
/// sensitive: its own name and its parent's, as the sensitive-data detectors read names.
pub fn sensitive_label_of(field: &str) -> Option<&'static str> {
    let mut segments = field.rsplit('.').map(|s| s.trim_end_matches("[]"));
    let key = segments.next().filter(|k| !k.is_empty())?;
    let parent = segments.next().filter(|p| !p.is_empty());
    sensitive_label(hints::hints(Some(key), parent))
}

/// What a field name says it holds, if it is sensitive. A password hash is still a password
/// (`hash` otherwise marks a name as not personal); names about a secret (`password_changed_at`)
/// are not the secret.
fn sensitive_label(hints: Hints) -> Option<&'static str> {
    if hints.has(Hints::ABOUT_SECRET) {
        return None;
    }
    if hints.has(Hints::PASSWORD) {
        return Some("password");
    }
    if hints.has(Hints::NOT_PERSONAL) {
        return None;
    }
    [
        (Hints::SECRET, "secret"),
        (Hints::SSN, "ssn"),
        (Hints::CARD, "card"),
        (Hints::ACCOUNT, "bank_account"),
        (Hints::ROUTING, "bank_account"),
        (Hints::PASSPORT, "national_id"),
        (Hints::NATIONAL_ID, "national_id"),
    ]
    .into_iter()
    .find(|(hint, _)| hints.has(*hint))
    .map(|(_, label)| label)
}

/// Learn a write request's fields; an alert for privileged ones the endpoint never took.
pub fn mass_assignment(
    properties: &Properties,
    config: &PropertyConfig,
    endpoint: &mut EndpointBaseline,
    learned: bool,
    principal: u64,
    fields: &[String],
    status: Option<u16>,
) -> Option<Alert> {
    if fields.is_empty() {
        return None;
    }
    endpoint.writes += 1;
    let comparing = learned && endpoint.writes > config.min_writes && !endpoint.request_fields.full;
    let mut new_privileged = Vec::new();
    for field in fields {
        if endpoint.request_fields.contains(field) {
            continue;
        }
        if comparing && properties.is_privileged(field) {
            if endpoint
                .pending_fields
                .note(field, principal, ADOPT_AFTER_PRINCIPALS)
            {
                endpoint.request_fields.learn(field);
            } else {
                new_privileged.push(field.as_str());
            }
        } else {
            endpoint.request_fields.learn(field);
        }
    }
    if new_privileged.is_empty() {
        return None;
    }
    let accepted = status.is_some_and(|s| (200..300).contains(&s));
    let reason = format!(
        "a write request set {} never seen in {} writes to this endpoint{}",
        new_privileged
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
        endpoint.writes - 1,
        if accepted {
            ", and it was accepted"
        } else {
            ""
        }
    );
    let mut alert = Alert::new(
        Kind::MassAssignment,
        "privileged_field",
        reason,
        Scope::Principal,
    )
    .severity(if accepted {
        Severity::High
    } else {
        Severity::Medium
    });
    for field in new_privileged {
        alert = alert.fact("json", Some(field), "new field".to_string());
    }
    Some(alert)
}

/// Learn the sensitive fields an endpoint's responses began to carry (each reported once, by
/// the inventory); an alert for each that appears after the endpoint was learnt.
pub fn exposure(
    endpoint: &mut EndpointBaseline,
    learned: bool,
    fields: &[(String, &'static str)],
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (field, label) in fields {
        if endpoint.response_sensitive.contains(field) {
            continue;
        }
        let comparing = learned && !endpoint.response_sensitive.full;
        endpoint.response_sensitive.learn(field);
        if !comparing {
            continue;
        }
        let severity = if matches!(*label, "password" | "secret" | "card" | "ssn") {
            Severity::High
        } else {
            Severity::Medium
        };
        let reason = format!(
            "responses began carrying `{field}` ({label}), which this endpoint did not return \
             while it was learnt"
        );
        let mut alert = Alert::new(
            Kind::SensitiveFieldExposure,
            *label,
            reason,
            Scope::Endpoint,
        )
        .severity(severity);
        alert.evidence.push(crate::findings::Evidence {
            location: crate::findings::Location {
                side: crate::findings::MessageSide::Response,
                part: "json".into(),
                name: Some(field.clone()),
            },
            value: format!("new {label} field"),
        });
        alerts.push(alert);
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn privileged_names_in_any_spelling() {
        let properties = Properties::new(&PropertyConfig::default());
        for name in [
            "role",
            "isAdmin",
            "is_admin",
            "user.roles[]",
            "account.balance",
            "Is-Staff",
        ] {
            assert!(properties.is_privileged(name), "{name}");
        }
        for name in [
            "name",
            "email",
            "description",
            "roleDescription",
            "quantity",
        ] {
            assert!(!properties.is_privileged(name), "{name}");
        }
        let custom = Properties::new(&PropertyConfig {
            privileged_fields: vec!["is_vip".into()],
            ..PropertyConfig::default()
        });
        assert!(custom.is_privileged("isVip"));
    }

    #[test]
    fn a_new_privileged_field_after_learning_is_mass_assignment() {
        let properties = Properties::new(&PropertyConfig::default());
        let config = PropertyConfig::default();
        let mut endpoint = EndpointBaseline::default();
        let usual = fields(&["name", "email"]);
        for _ in 0..30 {
            assert!(mass_assignment(
                &properties,
                &config,
                &mut endpoint,
                true,
                1,
                &usual,
                Some(200)
            )
            .is_none());
        }
        // A new ordinary field is learnt silently.
        let grown = fields(&["name", "email", "nickname"]);
        assert!(mass_assignment(
            &properties,
            &config,
            &mut endpoint,
            true,
            1,
            &grown,
            Some(200)
        )
        .is_none());
        let attack = fields(&["name", "isAdmin"]);
        let alert = mass_assignment(
            &properties,
            &config,
            &mut endpoint,
            true,
            9,
            &attack,
            Some(200),
        )
        .expect("mass assignment");
        assert_eq!(alert.severity, Some(Severity::High));
        assert!(alert.reason.contains("`isAdmin`"), "{}", alert.reason);
    }

    #[test]
    fn privileged_fields_seen_while_learning_or_by_many_are_normal() {
        let properties = Properties::new(&PropertyConfig::default());
        let config = PropertyConfig::default();
        let mut endpoint = EndpointBaseline::default();
        let with_role = fields(&["name", "role"]);
        for _ in 0..30 {
            mass_assignment(
                &properties,
                &config,
                &mut endpoint,
                false,
                1,
                &with_role,
                Some(200),
            );
        }
        assert!(mass_assignment(
            &properties,
            &config,
            &mut endpoint,
            true,
            2,
            &with_role,
            Some(200)
        )
        .is_none());
        // A release adds `plan`: reported for the first principals, then adopted.
        let with_plan = fields(&["name", "plan"]);
        let reported: Vec<bool> = (0..8)
            .map(|p| {
                mass_assignment(
                    &properties,
                    &config,
                    &mut endpoint,
                    true,
                    100 + p,
                    &with_plan,
                    Some(200),
                )
                .is_some()
            })
            .collect();
        assert_eq!(
            reported,
            [true, true, true, true, false, false, false, false]
        );
    }

    #[test]
    fn sensitive_fields_are_named() {
        assert_eq!(sensitive_label_of("password_hash"), Some("password"));
        assert_eq!(
            sensitive_label_of("users[].password_hash"),
            Some("password")
        );
        assert_eq!(sensitive_label_of("card.number"), Some("card"));
        assert_eq!(sensitive_label_of("api_key"), Some("secret"));
        assert_eq!(sensitive_label_of("tax_id"), Some("national_id"));
        for ordinary in [
            "password_changed_at",
            "order_id",
            "name",
            "items[].price",
            "",
            "id",
        ] {
            assert_eq!(sensitive_label_of(ordinary), None, "{ordinary}");
        }
    }

    #[test]
    fn a_new_sensitive_field_in_responses_is_exposure() {
        let mut endpoint = EndpointBaseline::default();
        let usual = [("api_key".to_string(), "secret")];
        assert!(exposure(&mut endpoint, false, &usual).is_empty());
        assert!(exposure(&mut endpoint, true, &usual).is_empty());
        let leaked = [
            ("password_hash".to_string(), "password"),
            ("passport_number".to_string(), "national_id"),
        ];
        let alerts = exposure(&mut endpoint, true, &leaked);
        assert_eq!(alerts.len(), 2, "one finding per field");
        assert_eq!(alerts[0].kind, Kind::SensitiveFieldExposure);
        assert_eq!(alerts[0].severity, Some(Severity::High));
        assert_eq!(alerts[1].severity, Some(Severity::Medium));
        assert!(exposure(&mut endpoint, true, &leaked).is_empty());
    }
}
