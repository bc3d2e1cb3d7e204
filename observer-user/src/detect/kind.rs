//! The detectors by name: what each finding's `finding.kind` says, the OWASP API Security
//! Top 10 (2023) category it belongs to, and how bad it is unless the config says otherwise.
//!
//! Names are stable: they are what operators write in the config file (`disabled:`,
//! `severity:`, `suppress:`) and what findings in the state directory are filed under.

use crate::findings::Severity;

/// Every detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    SqlInjection,
    Xss,
    PathTraversal,
    CommandInjection,
    Ssrf,
    TemplateInjection,
    JndiInjection,
    Bola,
    UnauthenticatedAccess,
    AuthFailureBurst,
    WeakToken,
    MassAssignment,
    SensitiveFieldExposure,
    RateAnomaly,
    ExpensiveRequest,
    FunctionLevelAuthz,
    ShadowEndpoint,
    ZombieEndpoint,
    NewThirdPartyApi,
}

impl Kind {
    pub const ALL: [Kind; 19] = [
        Kind::SqlInjection,
        Kind::Xss,
        Kind::PathTraversal,
        Kind::CommandInjection,
        Kind::Ssrf,
        Kind::TemplateInjection,
        Kind::JndiInjection,
        Kind::Bola,
        Kind::UnauthenticatedAccess,
        Kind::AuthFailureBurst,
        Kind::WeakToken,
        Kind::MassAssignment,
        Kind::SensitiveFieldExposure,
        Kind::RateAnomaly,
        Kind::ExpensiveRequest,
        Kind::FunctionLevelAuthz,
        Kind::ShadowEndpoint,
        Kind::ZombieEndpoint,
        Kind::NewThirdPartyApi,
    ];

    /// The finding's `finding.kind`, and the detector's name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SqlInjection => "sql_injection",
            Kind::Xss => "xss",
            Kind::PathTraversal => "path_traversal",
            Kind::CommandInjection => "command_injection",
            Kind::Ssrf => "ssrf",
            Kind::TemplateInjection => "template_injection",
            Kind::JndiInjection => "jndi_injection",
            Kind::Bola => "bola",
            Kind::UnauthenticatedAccess => "unauthenticated_access",
            Kind::AuthFailureBurst => "auth_failure_burst",
            Kind::WeakToken => "weak_token_accepted",
            Kind::MassAssignment => "mass_assignment",
            Kind::SensitiveFieldExposure => "sensitive_field_exposure",
            Kind::RateAnomaly => "rate_anomaly",
            Kind::ExpensiveRequest => "expensive_request",
            Kind::FunctionLevelAuthz => "function_level_authz",
            Kind::ShadowEndpoint => "shadow_endpoint_traffic",
            Kind::ZombieEndpoint => "zombie_endpoint_traffic",
            Kind::NewThirdPartyApi => "new_third_party_api",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// OWASP API Security Top 10 (2023). The 2023 list has no injection category of its own:
    /// injection probes are filed under API8 (security misconfiguration: the API takes input it
    /// should refuse), as the OWASP text for API8 suggests; SSRF has its own, API7.
    pub fn owasp(self) -> &'static str {
        match self {
            Kind::Bola => "API1:2023",
            Kind::UnauthenticatedAccess | Kind::AuthFailureBurst | Kind::WeakToken => "API2:2023",
            Kind::MassAssignment | Kind::SensitiveFieldExposure => "API3:2023",
            Kind::RateAnomaly | Kind::ExpensiveRequest => "API4:2023",
            Kind::FunctionLevelAuthz => "API5:2023",
            Kind::Ssrf => "API7:2023",
            Kind::SqlInjection
            | Kind::Xss
            | Kind::PathTraversal
            | Kind::CommandInjection
            | Kind::TemplateInjection
            | Kind::JndiInjection => "API8:2023",
            Kind::ShadowEndpoint | Kind::ZombieEndpoint => "API9:2023",
            Kind::NewThirdPartyApi => "API10:2023",
        }
    }

    /// Severity unless the config overrides it (detectors may raise it for a worse case, an
    /// attack that succeeded).
    pub fn default_severity(self) -> Severity {
        match self {
            Kind::JndiInjection => Severity::Critical,
            Kind::SqlInjection
            | Kind::PathTraversal
            | Kind::CommandInjection
            | Kind::Ssrf
            | Kind::TemplateInjection
            | Kind::Bola
            | Kind::UnauthenticatedAccess
            | Kind::AuthFailureBurst
            | Kind::WeakToken
            | Kind::MassAssignment
            | Kind::FunctionLevelAuthz => Severity::High,
            Kind::Xss
            | Kind::SensitiveFieldExposure
            | Kind::RateAnomaly
            | Kind::ExpensiveRequest
            | Kind::ZombieEndpoint
            | Kind::NewThirdPartyApi => Severity::Medium,
            Kind::ShadowEndpoint => Severity::Low,
        }
    }

    /// Signature detectors look at one request; the others at behaviour over time.
    pub fn is_signature(self) -> bool {
        matches!(
            self,
            Kind::SqlInjection
                | Kind::Xss
                | Kind::PathTraversal
                | Kind::CommandInjection
                | Kind::Ssrf
                | Kind::TemplateInjection
                | Kind::JndiInjection
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
            assert!(kind.owasp().starts_with("API") && kind.owasp().ends_with(":2023"));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }
}
