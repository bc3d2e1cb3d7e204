//! Broken function level authorization (API5): callers reaching administrative endpoints they
//! never used.
//!
//! An endpoint is administrative when a segment of its route says so (`/admin/...`,
//! `/internal/...`, `/actuator/...`). During its learning period (time alone: administrative
//! endpoints are quiet, and who calls them is what is learnt, not how often) the principals
//! that use it are remembered; afterwards a principal outside that set is reported, at high severity when the
//! endpoint answered it with a success (the function is open to it) and medium when it was
//! refused (a probe). A principal joins the set only through a success, so a probe that later
//! finds a way in is still new. An endpoint that many principals use
//! (`subjects::MAX_ENDPOINT_CALLERS`) is nobody's privilege, whatever its name.

use super::{
    kind::Kind,
    report::{Alert, Scope},
    subjects::EndpointBaseline,
};
use crate::findings::Severity;

/// Route segments (lowercased) that make an endpoint administrative.
const ADMIN_SEGMENTS: &[&str] = &[
    "admin",
    "admins",
    "administrator",
    "administration",
    "internal",
    "manage",
    "management",
    "mgmt",
    "superuser",
    "sudo",
    "actuator",
    "debug",
    "console",
    "backoffice",
    "back-office",
    "staff",
    "sysadmin",
    "privileged",
    "impersonate",
    "moderation",
    "wp-admin",
    "_admin",
];

/// Recognises administrative routes.
pub struct AdminRoutes {
    extra: Vec<String>,
}

impl AdminRoutes {
    pub fn new(extra: &[String]) -> AdminRoutes {
        AdminRoutes {
            extra: extra.iter().map(|s| s.to_ascii_lowercase()).collect(),
        }
    }

    pub fn is_admin(&self, route: &str) -> bool {
        route.split('/').any(|segment| {
            if segment.starts_with('{') {
                return false;
            }
            let lower = segment.to_ascii_lowercase();
            ADMIN_SEGMENTS.contains(&lower.as_str())
                || lower.starts_with("admin")
                || self.extra.contains(&lower)
        })
    }
}

/// Note `principal` calling an administrative endpoint; an alert if it never did before.
pub fn check(
    endpoint: &mut EndpointBaseline,
    learned: bool,
    principal: u64,
    status: Option<u16>,
) -> Option<Alert> {
    let success = status.is_some_and(|s| (200..300).contains(&s));
    let known = endpoint.callers_full || endpoint.callers.contains(&principal);
    if success || !learned {
        endpoint.note_caller(principal);
    }
    if known || !learned {
        return None;
    }
    let status_text = status.map_or_else(|| "no answer".to_string(), |s| s.to_string());
    let (rule, severity, outcome) = if success {
        ("admin_access", Severity::High, "and was let in")
    } else {
        ("admin_probe", Severity::Medium, "and was refused")
    };
    let reason = format!(
        "a caller that never used this administrative endpoint called it ({status_text}) {outcome}; \
         {} principals used it while it was learnt",
        endpoint.callers.len()
    );
    Some(
        Alert::new(Kind::FunctionLevelAuthz, rule, reason, Scope::Principal)
            .severity(severity)
            .fact("path", None, endpoint.name.route.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrative_routes() {
        let routes = AdminRoutes::new(&["ops".to_string()]);
        for route in [
            "/admin/users",
            "/api/v1/Admin/users/{id}",
            "/internal/metrics",
            "/actuator/env",
            "/adminpanel",
            "/ops/restart",
        ] {
            assert!(routes.is_admin(route), "{route}");
        }
        // A parameter named admin is not an admin segment.
        for route in [
            "/api/v1/users/{id}",
            "/products/{admin}",
            "/badminton/courts",
        ] {
            assert!(!routes.is_admin(route), "{route}");
        }
    }

    #[test]
    fn a_new_principal_on_an_admin_endpoint() {
        let mut endpoint = EndpointBaseline::default();
        for admin in [1, 2] {
            assert!(check(&mut endpoint, false, admin, Some(200)).is_none());
        }
        assert!(check(&mut endpoint, true, 1, Some(200)).is_none());
        let probe = check(&mut endpoint, true, 7, Some(403)).expect("probe");
        assert_eq!(probe.severity, Some(Severity::Medium));
        // Refused, so still new: a later success is reported too (dedupe keeps it to one
        // finding per window).
        let access = check(&mut endpoint, true, 7, Some(200)).expect("access");
        assert_eq!(access.severity, Some(Severity::High));
        assert!(check(&mut endpoint, true, 7, Some(200)).is_none());
    }
}
