//! Tuning: thresholds, which detectors run, and what not to report.
//!
//! The `detect:` section of the agent's config file, the same YAML file as the sensitive-data
//! policy (`observer run --config FILE`, also spelt `--policy`); every key is optional and
//! unknown keys are refused, so a typo does not silently leave a default in place:
//!
//! ```yaml
//! detect:
//!   learning_period: 1h          # how long endpoints and callers are watched before alerting
//!   dedupe_window: 1h            # one finding per (detector, endpoint, caller) per window
//!   disabled: [xss]              # detectors by name (finding.kind)
//!   severity: { bola: critical }
//!   bola: { min_distinct_ids: { 1m: 15, 1h: 40, 1d: 60 } }
//!   auth: { failures: { 1m: 15, 1h: 60 }, min_distinct_credentials: 5 }
//!   rate: { sigmas: 6, ratio: 5 }
//!   cost: { max_page_size: 1000 }
//!   suppress:
//!     - detectors: [bola]
//!       endpoints: ["GET /api/v1/products/*"]
//!     - callers: ["10.0.0.7", "sync-job"]
//! ```
//!
//! Durations are seconds or `30s`, `10m`, `1h`, `2d`; window names are those of
//! `window::WINDOWS` (`10s`, `1m`, `10m`, `1h`, `1d`).

use std::{collections::BTreeMap, fmt, path::Path};

use serde::{de, Deserialize, Deserializer};
use thiserror::Error;

use super::{
    kind::Kind,
    window::{window_index, WINDOWS, WINDOW_COUNT},
};
use crate::{findings::Severity, sensitive::policy::glob};

/// Config files are small; a bound keeps a wrong path (a log file) from being read whole.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { path: String },
    #[error("config, detect section: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("config, detect section: unknown detector `{name}` (known: {known})")]
    UnknownDetector { name: String, known: String },
}

/// Seconds, written as a number or with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secs(pub u64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secs, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds, or a duration like 30s, 10m, 1h, 2d")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(Secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secs, E> {
                parse_duration(v).ok_or_else(|| E::custom(format!("`{v}` is not a duration")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn parse_duration(text: &str) -> Option<Secs> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    number.checked_mul(scale).map(Secs)
}

/// A limit per window; windows left out have none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowLimits(pub [Option<f64>; WINDOW_COUNT]);

impl WindowLimits {
    const fn new(limits: [Option<f64>; WINDOW_COUNT]) -> WindowLimits {
        WindowLimits(limits)
    }

    pub fn get(&self, window: usize) -> Option<f64> {
        self.0.get(window).copied().flatten()
    }
}

impl<'de> Deserialize<'de> for WindowLimits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WindowLimits, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(deserializer)?;
        let mut limits = [None; WINDOW_COUNT];
        for (name, limit) in map {
            let Some(i) = window_index(&name) else {
                let known: Vec<&str> = WINDOWS.iter().map(|w| w.name).collect();
                return Err(de::Error::custom(format!(
                    "unknown window `{name}` (windows are {})",
                    known.join(", ")
                )));
            };
            if !(limit.is_finite() && limit > 0.0) {
                return Err(de::Error::custom(format!(
                    "window `{name}`: a limit must be a positive number"
                )));
            }
            limits[i] = Some(limit);
        }
        Ok(WindowLimits(limits))
    }
}

/// The whole `detect:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Off: no detection at all (signatures included).
    pub enabled: bool,
    /// Endpoints and callers are watched this long (and for `learning_min_calls`) before the
    /// detectors that compare with a baseline alert about them. Signatures, weak tokens and
    /// failure bursts need no baseline and alert from the start.
    pub learning_period: Secs,
    pub learning_min_calls: u64,
    /// A caller first seen after the agent's own learning period has to be watched this long
    /// before its own history can excuse a rate the endpoint's other callers never reach: an
    /// attacker must not teach the baseline that attacking is normal.
    pub caller_probation: Secs,
    /// One finding per (detector, endpoint, caller) per this long; repeats are counted.
    pub dedupe_window: Secs,
    pub disabled: Vec<String>,
    pub severity: BTreeMap<String, Severity>,
    pub signatures: SignatureConfig,
    pub bola: BolaConfig,
    pub auth: AuthConfig,
    pub rate: RateConfig,
    pub cost: CostConfig,
    pub properties: PropertyConfig,
    pub admin: AdminConfig,
    pub suppress: Vec<Suppression>,
}

impl Default for DetectConfig {
    fn default() -> DetectConfig {
        DetectConfig {
            enabled: true,
            // An hour sees most of an API's endpoints and callers at work; a day would see
            // its daily rhythm too, at the cost of a day without behaviour findings.
            learning_period: Secs(3_600),
            learning_min_calls: 50,
            caller_probation: Secs(86_400),
            dedupe_window: Secs(3_600),
            disabled: Vec::new(),
            severity: BTreeMap::new(),
            signatures: SignatureConfig::default(),
            bola: BolaConfig::default(),
            auth: AuthConfig::default(),
            rate: RateConfig::default(),
            cost: CostConfig::default(),
            properties: PropertyConfig::default(),
            admin: AdminConfig::default(),
            suppress: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignatureConfig {
    /// Also look at request headers (User-Agent, Referer, custom ones; never credentials).
    pub scan_headers: bool,
    /// Parameters whose URLs are never fetched by the server, so loopback there is not SSRF:
    /// OAuth redirect URIs point at loopback by design for native apps (RFC 8252).
    pub ssrf_ignore_parameters: Vec<String>,
}

impl Default for SignatureConfig {
    fn default() -> SignatureConfig {
        SignatureConfig {
            scan_headers: true,
            ssrf_ignore_parameters: vec!["redirect_uri".into(), "post_logout_redirect_uri".into()],
        }
    }
}

/// BOLA: one caller walking many object ids on an `{id}` endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BolaConfig {
    /// Distinct ids per window below which nothing is reported, whatever the endpoint's other
    /// callers do.
    pub min_distinct_ids: WindowLimits,
    /// How far above the endpoint's callers (median + sigmas × MAD, and ratio × median).
    pub sigmas: f64,
    pub ratio: f64,
    /// Share of the ids that were refused (403, 404) that makes a walk a probe.
    pub denied_share: f64,
    /// Share of consecutive ids (numerically adjacent) that makes a walk an enumeration.
    pub sequential_share: f64,
    /// Without either sign, a walk must be this many times over the limit.
    pub plain_factor: f64,
}

impl Default for BolaConfig {
    fn default() -> BolaConfig {
        BolaConfig {
            // A user reads a handful of their own objects a minute; a catalog browser a few
            // dozen an hour. These floors sit above both.
            min_distinct_ids: WindowLimits::new([
                None,
                Some(15.0),
                Some(25.0),
                Some(40.0),
                Some(60.0),
            ]),
            sigmas: 6.0,
            ratio: 4.0,
            denied_share: 0.2,
            sequential_share: 0.5,
            plain_factor: 3.0,
        }
    }
}

/// Broken authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// 401/403 answers to one source per window at which a burst is reported (with enough
    /// distinct credentials tried).
    pub failures: WindowLimits,
    /// Distinct credentials (hashed, never kept) a burst must have tried: one client retrying
    /// one stale token is broken, not an attack.
    pub min_distinct_credentials: u32,
    /// A JWT this long expired and still accepted is a weak token.
    pub expired_grace: Secs,
    /// Successful calls an endpoint must have answered, all with credentials, before an
    /// unauthenticated success there is reported.
    pub min_authenticated_successes: u64,
    /// The share of an endpoint's successes that carried credentials for it to "require" them.
    pub authenticated_share: f64,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            failures: WindowLimits::new([None, Some(10.0), Some(20.0), Some(40.0), Some(80.0)]),
            min_distinct_credentials: 5,
            expired_grace: Secs(3_600),
            min_authenticated_successes: 50,
            authenticated_share: 0.995,
        }
    }
}

/// Unrestricted resource consumption: rates.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateConfig {
    /// Calls per window to one endpoint below which a caller's rate is never reported.
    pub floor: WindowLimits,
    pub sigmas: f64,
    pub ratio: f64,
}

impl Default for RateConfig {
    fn default() -> RateConfig {
        RateConfig {
            floor: WindowLimits::new([
                Some(40.0),
                Some(100.0),
                Some(250.0),
                Some(500.0),
                Some(1_500.0),
            ]),
            sigmas: 8.0,
            ratio: 6.0,
        }
    }
}

/// Unrestricted resource consumption: requests that make the server do far more than usual.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// A page size above this is reported on endpoints never seen asked for one that large...
    pub max_page_size: f64,
    /// ...and above this many times the largest the endpoint answered before.
    pub page_factor: f64,
    /// More parameter names that set a page size (added to the built-in ones).
    pub page_parameters: Vec<String>,
    /// A response this far above the endpoint's usual size or latency (deviations of their
    /// logarithms)...
    pub sigmas: f64,
    /// ...and at least this large or slow is reported.
    pub min_response_bytes: f64,
    pub min_latency_ms: f64,
}

impl Default for CostConfig {
    fn default() -> CostConfig {
        CostConfig {
            max_page_size: 1_000.0,
            page_factor: 10.0,
            page_parameters: Vec::new(),
            sigmas: 6.0,
            // A megabyte and two seconds: below that, a response costs too little to matter
            // whatever its endpoint usually does.
            min_response_bytes: 1_048_576.0,
            min_latency_ms: 2_000.0,
        }
    }
}

/// Broken object property level authorization.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PropertyConfig {
    /// More field names that grant privileges (added to the built-in ones).
    pub privileged_fields: Vec<String>,
    /// Write requests an endpoint must have had before a new field on it is reported.
    pub min_writes: u64,
}

impl Default for PropertyConfig {
    fn default() -> PropertyConfig {
        PropertyConfig {
            privileged_fields: Vec::new(),
            min_writes: 20,
        }
    }
}

/// Broken function level authorization.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// More path segments that make an endpoint administrative (added to the built-in ones).
    pub segments: Vec<String>,
}

/// Findings not to report. Every list that is given must match (an empty one matches all).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Suppression {
    /// Detector names.
    pub detectors: Vec<String>,
    /// `METHOD /path` or `/path`, `*` matching any characters, against the route.
    pub endpoints: Vec<String>,
    /// Client address, user (token subject), or the calling process's name.
    pub callers: Vec<String>,
    /// `address:port` or `:port` of the server.
    pub services: Vec<String>,
}

/// What a suppression is checked against.
pub struct Subject<'a> {
    pub kind: Kind,
    pub method: Option<&'a str>,
    pub route: Option<&'a str>,
    pub server_address: Option<&'a str>,
    pub server_port: Option<u16>,
    pub caller_address: Option<&'a str>,
    pub caller_user: Option<&'a str>,
    pub caller_process: Option<&'a str>,
}

impl Suppression {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let detector =
            self.detectors.is_empty() || self.detectors.iter().any(|d| d == s.kind.name());
        let endpoint = self.endpoints.is_empty()
            || self.endpoints.iter().any(|pattern| {
                let route = s.route.unwrap_or("");
                match pattern.split_once(' ') {
                    Some((method, path)) => {
                        s.method.is_some_and(|m| m.eq_ignore_ascii_case(method))
                            && glob(path.trim(), route)
                    }
                    None => glob(pattern, route),
                }
            });
        let caller = self.callers.is_empty()
            || self.callers.iter().any(|c| {
                [s.caller_address, s.caller_user, s.caller_process]
                    .into_iter()
                    .flatten()
                    .any(|v| v == c)
            });
        let service = self.services.is_empty()
            || self
                .services
                .iter()
                .any(|pattern| match pattern.rsplit_once(':') {
                    Some((address, port)) => {
                        (address.is_empty() || s.server_address == Some(address))
                            && s.server_port.is_some_and(|p| p.to_string() == port)
                    }
                    None => s.server_address == Some(pattern.as_str()),
                });
        detector && endpoint && caller && service
    }
}

/// The part of the config file this module reads; the rest belongs to other components.
#[derive(Deserialize)]
struct File {
    #[serde(default)]
    detect: Option<DetectConfig>,
}

impl DetectConfig {
    pub fn load(path: &Path) -> Result<DetectConfig, ConfigError> {
        let display = path.display().to_string();
        let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        if metadata.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: display });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display,
            source,
        })?;
        DetectConfig::parse(&text)
    }

    /// The `detect:` section of a config file's text (defaults without one).
    pub fn parse(text: &str) -> Result<DetectConfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(DetectConfig::default());
        }
        let file: File = serde_norway::from_str(text)?;
        let config = file.detect.unwrap_or_default();
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let names = self
            .disabled
            .iter()
            .chain(self.severity.keys())
            .chain(self.suppress.iter().flat_map(|s| s.detectors.iter()));
        for name in names {
            if Kind::from_name(name).is_none() {
                return Err(ConfigError::UnknownDetector {
                    name: name.clone(),
                    known: Kind::ALL.map(Kind::name).join(", "),
                });
            }
        }
        Ok(())
    }

    pub fn is_enabled(&self, kind: Kind) -> bool {
        self.enabled && !self.disabled.iter().any(|d| d == kind.name())
    }

    pub fn severity_of(&self, kind: Kind) -> Severity {
        self.severity
            .get(kind.name())
            .copied()
            .unwrap_or_else(|| kind.default_severity())
    }

    pub fn suppressed(&self, subject: &Subject<'_>) -> bool {
        self.suppress.iter().any(|s| s.matches(subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
severity: { email: low }        # the sensitive-data policy's keys are not ours
detect:
  learning_period: 1h
  dedupe_window: 30m
  disabled: [xss]
  severity: { bola: critical }
  bola: { min_distinct_ids: { 1m: 15, 1h: 40, 1d: 60 } }
  auth: { failures: { 1m: 15, 1h: 60 }, min_distinct_credentials: 5 }
  rate: { sigmas: 6, ratio: 5 }
  cost: { max_page_size: 1000 }
  suppress:
    - detectors: [bola]
      endpoints: ["GET /api/v1/products/*"]
    - callers: ["10.0.0.7", "sync-job"]
"#;
        let config = DetectConfig::parse(text).unwrap();
        assert_eq!(config.learning_period, Secs(3_600));
        assert_eq!(config.dedupe_window, Secs(1_800));
        assert!(!config.is_enabled(Kind::Xss));
        assert!(config.is_enabled(Kind::SqlInjection));
        assert_eq!(config.severity_of(Kind::Bola), Severity::Critical);
        assert_eq!(config.bola.min_distinct_ids.get(1), Some(15.0));
        assert_eq!(config.bola.min_distinct_ids.get(2), None);
        assert_eq!(config.auth.failures.get(3), Some(60.0));

        let subject = |kind, route, caller| Subject {
            kind,
            method: Some("GET"),
            route: Some(route),
            server_address: Some("10.0.0.1"),
            server_port: Some(8080),
            caller_address: Some(caller),
            caller_user: None,
            caller_process: None,
        };
        assert!(config.suppressed(&subject(Kind::Bola, "/api/v1/products/{id}", "1.2.3.4")));
        assert!(!config.suppressed(&subject(Kind::Bola, "/api/v1/users/{id}", "1.2.3.4")));
        assert!(config.suppressed(&subject(Kind::SqlInjection, "/x", "10.0.0.7")));
    }

    #[test]
    fn mistakes_are_refused_with_what_would_be_right() {
        let error = DetectConfig::parse("detect: { disabled: [bolla] }")
            .unwrap_err()
            .to_string();
        assert!(error.contains("bolla") && error.contains("bola"), "{error}");
        let error = DetectConfig::parse("detect: { bola: { min_distinct_ids: { 5m: 3 } } }")
            .unwrap_err()
            .to_string();
        assert!(error.contains("5m") && error.contains("1h"), "{error}");
        assert!(DetectConfig::parse("detect: { learnin_period: 1h }").is_err());
        assert!(DetectConfig::parse("detect: { learning_period: 1y }").is_err());
        assert!(DetectConfig::parse("detect: { auth: { failures: { 1m: -1 } } }").is_err());
    }

    #[test]
    fn no_section_means_the_defaults() {
        let config = DetectConfig::parse("rules: []").unwrap();
        assert!(config.enabled && config.disabled.is_empty());
        assert_eq!(
            DetectConfig::parse("").unwrap().learning_period,
            Secs(3_600)
        );
        assert_eq!(parse_duration("90"), Some(Secs(90)));
        assert_eq!(parse_duration("2d"), Some(Secs(172_800)));
    }

    #[test]
    fn endpoint_patterns_glob_like_the_sensitive_policy() {
        assert!(glob("/api/*/items", "/api/v1/items"));
        assert!(glob("*", ""));
        assert!(glob("/a*", "/a"));
        assert!(!glob("/a*b", "/a"));
        assert!(!glob("/x", "/xy"));
        assert!(glob("*{id}", "/users/{id}"));
    }
}
