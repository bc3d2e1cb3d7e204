//! The sensitive-data policy: which types may appear where, how bad each is, and the operator's
//! own types.
//!
//! Loaded from the agent's YAML config file (`observer run --config FILE`, also spelt
//! `--policy`), whose `detect:` section belongs to attack detection (`detect::config`):
//!
//! ```yaml
//! severity:                 # per type or category (personal, financial, secret)
//!   email: low
//! types:                    # custom types: a regex, and optionally a field-name hint
//!   - name: employee_id
//!     pattern: 'EMP-[0-9]{6}'
//!     key: employee
//!     category: personal
//!     severity: medium
//! rules:                    # first match wins
//!   - action: allow         # expected here: labelled on the endpoint, not reported
//!     types: [email, phone]
//!     services: ["10.0.0.5:8080", "users-api"]
//!     endpoints: ["GET /users/*"]
//!     callers: ["billing"]
//!     direction: response
//!   - action: report
//!     types: [ssn]
//!     severity: critical
//! builtin_rules: true       # the defaults below, after the file's rules
//! ```
//!
//! The built-in rules report secrets sent over plaintext HTTP, card numbers and SSNs in any
//! response, and credentials in URLs, at high severity. Anything no rule matches is reported at
//! its type's severity.

use std::path::Path;

use regex::RegexBuilder;
use serde::Deserialize;
use thiserror::Error;

use super::{
    fields::Part,
    scan::{CustomType, CUSTOM_REGEX_SIZE_LIMIT},
    types::{Category, DataType},
};
use crate::findings::{MessageSide, Severity};

/// Policy files are small; a bound keeps a wrong path (a log file) from being read whole.
const MAX_POLICY_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy file {path} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge { path: String },
    #[error("policy: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("policy: unknown type or category `{0}` (types are named like `email`, `card_number`; categories are personal, financial, secret)")]
    UnknownType(String),
    #[error("policy: custom type `{name}`: {source}")]
    Pattern {
        name: String,
        #[source]
        source: regex::Error,
    },
    #[error("policy: custom type `{0}` has the name of a built-in type")]
    Shadows(String),
    #[error("policy: more custom types than the {max} allowed", max = u16::MAX)]
    TooManyTypes,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    severity: std::collections::BTreeMap<String, Severity>,
    #[serde(default)]
    types: Vec<CustomTypeFile>,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default = "yes")]
    builtin_rules: bool,
    /// Attack detection's section of the same config file: `detect::config` reads and checks
    /// it; here it is only allowed, so that one file configures both.
    #[serde(default, rename = "detect")]
    _detect: Option<serde::de::IgnoredAny>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomTypeFile {
    name: String,
    pattern: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default = "personal")]
    category: Category,
    #[serde(default = "medium")]
    severity: Severity,
}

fn personal() -> Category {
    Category::Personal
}

fn medium() -> Severity {
    Severity::Medium
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Expected: label the endpoint, report nothing.
    Allow,
    /// Report, at the rule's severity if it has one.
    Report,
}

/// Which side a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Request,
    Response,
    Any,
}

/// One rule: conditions (all must hold; an empty list holds for everything) and an action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: Action,
    /// Type names, category names, or `*`.
    #[serde(default)]
    pub types: Vec<String>,
    /// `address:port`, `address`, `:port`, or the serving process's name.
    #[serde(default)]
    pub services: Vec<String>,
    /// `METHOD /path` or `/path`, with `*` matching any characters.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Client address, or the calling process's name.
    #[serde(default)]
    pub callers: Vec<String>,
    #[serde(default = "any_direction")]
    pub direction: Direction,
    /// Only over plaintext HTTP (`true`) or only inside TLS (`false`).
    #[serde(default)]
    pub plaintext: Option<bool>,
    /// Only values in the URL (path, query).
    #[serde(default)]
    pub in_url: Option<bool>,
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Said in the finding when this rule decides it.
    #[serde(default)]
    pub reason: Option<String>,
}

fn any_direction() -> Direction {
    Direction::Any
}

/// What a decision is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub type_name: &'a str,
    pub category: Category,
    /// The type's own severity (built-in default, or the custom type's).
    pub severity: Severity,
    pub side: MessageSide,
    pub part: Part,
    pub plaintext: bool,
    pub method: Option<&'a str>,
    /// The route if known, else the path.
    pub route: Option<&'a str>,
    pub server: Option<(&'a str, Option<u16>)>,
    pub server_name: Option<&'a str>,
    pub caller_address: Option<&'a str>,
    pub caller_name: Option<&'a str>,
}

/// The outcome for one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Report {
        severity: Severity,
        /// The deciding rule's reason, if a rule decided.
        reason: Option<String>,
    },
}

/// A loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    severity: std::collections::BTreeMap<String, Severity>,
    rules: Vec<Rule>,
    custom: Vec<CustomType>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            severity: Default::default(),
            rules: builtin_rules(),
            custom: Vec::new(),
        }
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let display = path.display().to_string();
        let metadata = std::fs::metadata(path).map_err(|source| PolicyError::Read {
            path: display.clone(),
            source,
        })?;
        if metadata.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { path: display });
        }
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: display,
            source,
        })?;
        Policy::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = if text.trim().is_empty() {
            PolicyFile {
                builtin_rules: true,
                ..PolicyFile::default()
            }
        } else {
            serde_norway::from_str(text)?
        };
        if file.types.len() > usize::from(u16::MAX) {
            return Err(PolicyError::TooManyTypes);
        }
        let mut custom = Vec::new();
        for t in file.types {
            if DataType::from_name(&t.name).is_some() || category_named(&t.name).is_some() {
                return Err(PolicyError::Shadows(t.name));
            }
            let regex = RegexBuilder::new(&t.pattern)
                .size_limit(CUSTOM_REGEX_SIZE_LIMIT)
                .build()
                .map_err(|source| PolicyError::Pattern {
                    name: t.name.clone(),
                    source,
                })?;
            custom.push(CustomType {
                name: t.name,
                regex,
                key_hint: t.key.map(|k| k.to_ascii_lowercase()),
                category: t.category,
                severity: t.severity,
            });
        }
        let known = |name: &str| {
            name == "*"
                || DataType::from_name(name).is_some()
                || category_named(name).is_some()
                || custom.iter().any(|c| c.name == name)
        };
        for name in file
            .severity
            .keys()
            .chain(file.rules.iter().flat_map(|r| r.types.iter()))
        {
            if !known(name) {
                return Err(PolicyError::UnknownType(name.clone()));
            }
        }
        let mut rules = file.rules;
        if file.builtin_rules {
            rules.extend(builtin_rules());
        }
        Ok(Policy {
            severity: file.severity,
            rules,
            custom,
        })
    }

    /// The custom types, for the scanner.
    pub fn custom_types(&self) -> Vec<CustomType> {
        self.custom.clone()
    }

    /// What to do about `subject`.
    pub fn decide(&self, subject: &Subject<'_>) -> Decision {
        let base = self
            .severity
            .get(subject.type_name)
            .or_else(|| self.severity.get(subject.category.name()))
            .copied()
            .unwrap_or(subject.severity);
        for rule in &self.rules {
            if rule.matches(subject) {
                return match rule.action {
                    Action::Allow => Decision::Allow,
                    Action::Report => Decision::Report {
                        severity: rule.severity.unwrap_or(base),
                        reason: rule.reason.clone(),
                    },
                };
            }
        }
        Decision::Report {
            severity: base,
            reason: None,
        }
    }
}

fn category_named(name: &str) -> Option<Category> {
    [Category::Personal, Category::Financial, Category::Secret]
        .into_iter()
        .find(|c| c.name() == name)
}

/// The defaults every policy has unless it says `builtin_rules: false`.
pub fn builtin_rules() -> Vec<Rule> {
    let report = |types: &[&str], reason: &str| Rule {
        action: Action::Report,
        types: types.iter().map(|t| t.to_string()).collect(),
        services: Vec::new(),
        endpoints: Vec::new(),
        callers: Vec::new(),
        direction: Direction::Any,
        plaintext: None,
        in_url: None,
        severity: Some(Severity::High),
        reason: Some(reason.to_string()),
    };
    vec![
        Rule {
            plaintext: Some(true),
            ..report(
                &["secret"],
                "a credential crossed the network in plaintext HTTP",
            )
        },
        Rule {
            in_url: Some(true),
            ..report(
                &["secret"],
                "a credential in a URL ends up in logs, histories and referrers",
            )
        },
        report(
            &["url_credentials", "signed_url"],
            "a credential in a URL ends up in logs, histories and referrers",
        ),
        Rule {
            direction: Direction::Response,
            ..report(
                &["card_number", "ssn"],
                "card numbers and SSNs should never be returned by an API",
            )
        },
    ]
}

impl Rule {
    fn matches(&self, s: &Subject<'_>) -> bool {
        let types = self.types.is_empty()
            || self
                .types
                .iter()
                .any(|t| t == "*" || t == s.type_name || t == s.category.name());
        let direction = match self.direction {
            Direction::Any => true,
            Direction::Request => s.side == MessageSide::Request,
            Direction::Response => s.side == MessageSide::Response,
        };
        let plaintext = self.plaintext.is_none_or(|p| p == s.plaintext);
        let in_url = self
            .in_url
            .is_none_or(|u| u == matches!(s.part, Part::Path | Part::Query));
        types
            && direction
            && plaintext
            && in_url
            && (self.services.is_empty() || self.services.iter().any(|p| service_matches(p, s)))
            && (self.endpoints.is_empty() || self.endpoints.iter().any(|p| endpoint_matches(p, s)))
            && (self.callers.is_empty()
                || self.callers.iter().any(|p| {
                    Some(p.as_str()) == s.caller_address || Some(p.as_str()) == s.caller_name
                }))
    }
}

fn service_matches(pattern: &str, s: &Subject<'_>) -> bool {
    if Some(pattern) == s.server_name {
        return true;
    }
    let Some((address, port)) = s.server else {
        return false;
    };
    match pattern.rsplit_once(':') {
        Some(("", p)) => port.is_some_and(|port| p == port.to_string()),
        Some((a, p)) if !a.contains(':') || a.starts_with('[') => {
            a.trim_matches(['[', ']']) == address && port.is_some_and(|port| p == port.to_string())
        }
        _ => pattern == address,
    }
}

fn endpoint_matches(pattern: &str, s: &Subject<'_>) -> bool {
    let (method, path) = match pattern.split_once(' ') {
        Some((method, path)) => (Some(method), path.trim()),
        None => (None, pattern),
    };
    method.is_none_or(|m| s.method.is_some_and(|sm| sm.eq_ignore_ascii_case(m)))
        && s.route.is_some_and(|route| glob(path, route))
}

/// `*` matches any characters (including none); everything else matches itself. Linear in
/// pattern times text at worst: the classic two-pointer algorithm with one backtrack point.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(type_name: &'a str, category: Category, side: MessageSide) -> Subject<'a> {
        Subject {
            type_name,
            category,
            severity: Severity::Info,
            side,
            part: Part::Json,
            plaintext: false,
            method: Some("GET"),
            route: Some("/users/{id}"),
            server: Some(("10.0.0.5", Some(8080))),
            server_name: Some("users-api"),
            caller_address: Some("10.0.0.7"),
            caller_name: None,
        }
    }

    #[test]
    fn builtin_rules_flag_the_defaults() {
        let policy = Policy::default();
        let ssn = subject("ssn", Category::Personal, MessageSide::Response);
        assert!(matches!(
            policy.decide(&ssn),
            Decision::Report {
                severity: Severity::High,
                ..
            }
        ));
        let ssn_in_request = subject("ssn", Category::Personal, MessageSide::Request);
        assert!(matches!(
            policy.decide(&ssn_in_request),
            Decision::Report {
                severity: Severity::Info,
                ..
            }
        ));
        let mut jwt = subject("jwt", Category::Secret, MessageSide::Request);
        jwt.plaintext = true;
        assert!(matches!(
            policy.decide(&jwt),
            Decision::Report {
                severity: Severity::High,
                ..
            }
        ));
        jwt.plaintext = false;
        jwt.part = Part::Query;
        assert!(matches!(
            policy.decide(&jwt),
            Decision::Report {
                severity: Severity::High,
                ..
            }
        ));
    }

    #[test]
    fn file_rules_come_first_and_match_on_every_condition() {
        let policy = Policy::parse(
            r#"
severity:
  email: low
rules:
  - action: allow
    types: [email]
    services: ["10.0.0.5:8080"]
    endpoints: ["GET /users/*"]
    callers: ["10.0.0.7"]
    direction: response
types:
  - name: employee_id
    pattern: 'EMP-[0-9]{6}'
    key: employee
"#,
        )
        .unwrap();
        let email = subject("email", Category::Personal, MessageSide::Response);
        assert_eq!(policy.decide(&email), Decision::Allow);
        let mut other_caller = email;
        other_caller.caller_address = Some("10.0.0.8");
        assert!(matches!(
            policy.decide(&other_caller),
            Decision::Report {
                severity: Severity::Low,
                ..
            }
        ));
        let mut other_endpoint = email;
        other_endpoint.route = Some("/admin");
        assert!(matches!(
            policy.decide(&other_endpoint),
            Decision::Report { .. }
        ));
        assert_eq!(policy.custom_types()[0].name, "employee_id");
    }

    #[test]
    fn mistakes_in_policy_files_are_named() {
        let unknown = Policy::parse("rules:\n  - action: allow\n    types: [emial]\n").unwrap_err();
        assert!(unknown.to_string().contains("emial"), "{unknown}");
        let typo = Policy::parse("rulez: []\n").unwrap_err();
        assert!(typo.to_string().contains("rulez"), "{typo}");
        let regex = Policy::parse("types:\n  - name: x\n    pattern: '('\n").unwrap_err();
        assert!(matches!(regex, PolicyError::Pattern { .. }), "{regex}");
        let shadow = Policy::parse("types:\n  - name: email\n    pattern: 'x'\n").unwrap_err();
        assert!(matches!(shadow, PolicyError::Shadows(_)));
    }

    #[test]
    fn the_detect_section_of_the_shared_config_file_is_left_to_detection() {
        let policy =
            Policy::parse("severity: { email: low }\ndetect:\n  learning_period: 10m\n").unwrap();
        assert_eq!(policy.severity.get("email"), Some(&Severity::Low));
    }

    #[test]
    fn globs() {
        assert!(glob("/users/*", "/users/{id}"));
        assert!(glob("*", ""));
        assert!(glob("/a/*/c", "/a/b/x/c"));
        assert!(!glob("/a/*/c", "/a/b/x/d"));
        assert!(glob("/users", "/users"));
        assert!(!glob("/users", "/users/1"));
    }
}
