//! A labelled corpus of HTTP-shaped text, generated from a seed: what the detectors are
//! measured on (`benches/sensitive.rs` prints precision, recall and F1 per type; a test holds
//! them above the targets).
//!
//! Every sample is one message part as the scanner reads it (a JSON body, a form body, a query
//! string, a header), labelled with the sensitive values it holds. Positives come in the shapes
//! traffic carries them (formatted and bare, under telling field names and in free text);
//! negatives are look-alikes: order numbers, timestamps, UUIDs, phone-like ids, version strings,
//! hashes, numbers that fail a checksum. Generation is deterministic (SplitMix64), so a seed is
//! a corpus.

use std::fmt::Write;

use base64::Engine;

use super::{
    fields::Source,
    scan::Scanner,
    types::{Category, DataType, TypeRef},
};

/// SplitMix64: small, fast, and the same sequence on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    pub fn from_alphabet(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }

    pub fn alnum(&mut self, n: usize) -> String {
        self.from_alphabet(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }

    pub fn hex(&mut self, n: usize) -> String {
        self.from_alphabet(b"0123456789abcdef", n)
    }
}

/// What kind of text a sample is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleKind {
    Json,
    Form,
    Query,
    Header(String),
    Text,
}

/// One labelled sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: SampleKind,
    pub text: String,
    /// The sensitive values the text holds, as the scanner should report them.
    pub labels: Vec<(DataType, String)>,
}

impl Sample {
    pub fn source(&self) -> Source<'_> {
        match &self.kind {
            SampleKind::Json => Source::Body(Some("application/json")),
            SampleKind::Form => Source::Body(Some("application/x-www-form-urlencoded")),
            SampleKind::Query => Source::Query,
            SampleKind::Header(name) => Source::Header(name),
            SampleKind::Text => Source::Body(Some("text/plain")),
        }
    }
}

/// A value to place: its label (if sensitive), the field names that suit it, and whether it can
/// stand in free text.
struct Value {
    label: Option<DataType>,
    value: String,
    keys: &'static [&'static str],
    in_text: bool,
    /// Data only JSON holds (a JSON Web Key's member): left out of queries and forms.
    json_only: bool,
}

fn positive(
    data_type: DataType,
    value: String,
    keys: &'static [&'static str],
    in_text: bool,
) -> Value {
    Value {
        label: Some(data_type),
        value,
        keys,
        in_text,
        json_only: false,
    }
}

fn negative(value: String, keys: &'static [&'static str], in_text: bool) -> Value {
    Value {
        label: None,
        value,
        keys,
        in_text,
        json_only: false,
    }
}

const FIRST: &[&str] = &[
    "ann", "bob", "chen", "dara", "eli", "fatima", "goran", "hana", "ivan", "jo",
];
const LAST: &[&str] = &[
    "smith", "lee", "okafor", "garcia", "muller", "tanaka", "rossi", "khan",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "example.co.uk",
    "shop.example.io",
];
const WORDS: &[&str] = &[
    "the", "order", "was", "shipped", "please", "contact", "support", "about", "your", "account",
    "invoice", "for", "review", "status", "pending", "thanks", "note", "customer", "update",
];

fn luhn_complete(rng: &mut Rng, prefix: &str, len: usize) -> String {
    let mut digits: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
    while digits.len() < len - 1 {
        digits.push(rng.below(10) as u8);
    }
    for check in 0..10u8 {
        let mut candidate = digits.clone();
        candidate.push(check);
        if super::validate::luhn(&candidate) {
            return candidate.iter().map(|d| char::from(b'0' + d)).collect();
        }
    }
    String::new()
}

fn card(rng: &mut Rng) -> String {
    let (prefix, len) = *rng.pick(&[
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("3528", 16),
        ("4", 19),
    ]);
    let number = luhn_complete(rng, prefix, len);
    match rng.below(3) {
        0 => number,
        1 if len == 16 => number
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" "),
        2 if len == 16 => number
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("-"),
        _ => number,
    }
}

fn iban(rng: &mut Rng) -> String {
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let (country, bban) = match rng.below(5) {
        0 => (
            "GB",
            format!("{}{}", rng.from_alphabet(upper, 4), rng.digits(14)),
        ),
        1 => ("DE", rng.digits(18)),
        2 => (
            "FR",
            format!(
                "{}{}{}",
                rng.digits(10),
                rng.from_alphabet(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", 11),
                rng.digits(2)
            ),
        ),
        3 => (
            "NL",
            format!("{}{}", rng.from_alphabet(upper, 4), rng.digits(10)),
        ),
        _ => ("ES", rng.digits(20)),
    };
    let remainder = super::validate::mod97(format!("{bban}{country}00").as_bytes());
    let iban = format!("{country}{:02}{bban}", 98 - remainder);
    if rng.chance(30) {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        iban
    }
}

fn aba(rng: &mut Rng) -> String {
    loop {
        let prefix = *rng.pick(&[
            "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "21", "22",
            "26", "31", "32",
        ]);
        let body = format!("{prefix}{}", rng.digits(6));
        for check in 0..10 {
            let candidate = format!("{body}{check}");
            let digits: Vec<u8> = candidate.bytes().map(|b| b - b'0').collect();
            if super::validate::is_aba_routing(&digits) {
                return candidate;
            }
        }
    }
}

fn ssn(rng: &mut Rng) -> (String, String) {
    let area = loop {
        let a = 1 + rng.below(899);
        if a != 666 {
            break a;
        }
    };
    let group = 1 + rng.below(99);
    let serial = 1 + rng.below(9999);
    (
        format!("{area:03}-{group:02}-{serial:04}"),
        format!("{area:03}{group:02}{serial:04}"),
    )
}

fn phone(rng: &mut Rng) -> String {
    let area = 200 + rng.below(800);
    let exchange = 200 + rng.below(800);
    let line = rng.below(10_000);
    match rng.below(6) {
        0 => format!("+1 {area} {exchange} {line:04}"),
        1 => format!("({area}) {exchange}-{line:04}"),
        2 => format!("{area}-{exchange}-{line:04}"),
        3 => format!("{area}.{exchange}.{line:04}"),
        4 => format!("+44 20 {} {}", rng.digits(4), rng.digits(4)),
        _ => format!("+49{}", 1 + rng.below(9)).to_string() + &rng.digits(10),
    }
}

fn cpf(rng: &mut Rng) -> String {
    loop {
        let base: Vec<u8> = (0..9).map(|_| rng.below(10) as u8).collect();
        let check = |digits: &[u8]| {
            let len = digits.len() as u32;
            let sum: u32 = digits
                .iter()
                .enumerate()
                .map(|(i, &d)| u32::from(d) * (len + 1 - i as u32))
                .sum();
            let r = (sum * 10) % 11;
            if r == 10 {
                0
            } else {
                r as u8
            }
        };
        let mut digits = base.clone();
        digits.push(check(&digits));
        let d = check(&digits);
        digits.push(d);
        if super::validate::is_cpf(&digits) {
            let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            return format!("{}.{}.{}-{}", &s[..3], &s[3..6], &s[6..9], &s[9..]);
        }
    }
}

fn dni(rng: &mut Rng) -> String {
    let number = rng.below(100_000_000);
    let letter = b"TRWAGMYFPDXBNJZSQVHLCKE"[(number % 23) as usize];
    format!("{number:08}{}", char::from(letter))
}

fn mrz_line(rng: &mut Rng) -> (String, String) {
    let check = |s: &str| super::validate::mrz_check_digit(s).unwrap_or(0);
    let number = format!(
        "{}{}",
        rng.from_alphabet(b"ABCDEFGHJKLMNPRSTUVWXYZ", 1),
        rng.digits(8)
    );
    let birth = format!(
        "{:02}{:02}{:02}",
        50 + rng.below(49),
        1 + rng.below(12),
        1 + rng.below(28)
    );
    let expiry = format!(
        "{:02}{:02}{:02}",
        26 + rng.below(9),
        1 + rng.below(12),
        1 + rng.below(28)
    );
    let line = format!(
        "{number}{}UTO{birth}{}F{expiry}{}<<<<<<<<<<<<<<02",
        check(&number),
        check(&birth),
        check(&expiry)
    );
    (line, number)
}

fn jwt(rng: &mut Rng) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg = *rng.pick(&["HS256", "RS256", "ES256", "none"]);
    let header = engine.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let payload = engine.encode(format!(
        r#"{{"sub":"{}","exp":{},"iat":1700000000}}"#,
        rng.digits(8),
        1_700_000_000 + rng.below(200_000_000)
    ));
    let signature = if alg == "none" {
        String::new()
    } else {
        rng.from_alphabet(BASE64URL, 43)
    };
    format!("{header}.{payload}.{signature}")
}

/// The base64url alphabet (RFC 4648, section 5), as JSON Web Keys write their numbers.
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn private_key(rng: &mut Rng) -> String {
    // OpenPGP's armour ends its label with `BLOCK`.
    let (kind, block) = *rng.pick(&[
        ("RSA ", ""),
        ("EC ", ""),
        ("", ""),
        ("OPENSSH ", ""),
        ("PGP ", " BLOCK"),
    ]);
    let body: Vec<String> = (0..3).map(|_| rng.alnum(64)).collect();
    format!(
        "-----BEGIN {kind}PRIVATE KEY{block}-----\n{}\n-----END {kind}PRIVATE KEY{block}-----",
        body.join("\n")
    )
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(3),
        rng.hex(3),
        rng.hex(12)
    )
}

/// One sensitive value of `data_type`, with the names that fit it.
fn positive_of(rng: &mut Rng, data_type: DataType) -> Value {
    let name = format!("{}.{}", rng.pick(FIRST), rng.pick(LAST));
    match data_type {
        DataType::Email => positive(
            data_type,
            format!("{name}@{}", rng.pick(DOMAINS)),
            &["email", "contact", "user_email", "to", "note"],
            true,
        ),
        DataType::Phone => {
            if rng.chance(25) {
                positive(
                    data_type,
                    format!("{}{}", 2 + rng.below(8), rng.digits(9)),
                    &["phone", "mobile", "phone_number", "tel"],
                    false,
                )
            } else {
                positive(
                    data_type,
                    phone(rng),
                    &["phone", "mobile", "contact", "note"],
                    true,
                )
            }
        }
        DataType::Ssn => {
            let (formatted, bare) = ssn(rng);
            if rng.chance(30) {
                positive(data_type, bare, &["ssn", "social_security_number"], false)
            } else {
                positive(data_type, formatted, &["ssn", "social", "note"], true)
            }
        }
        DataType::CardNumber => positive(
            data_type,
            card(rng),
            &["card_number", "pan", "cc", "payment", "note"],
            true,
        ),
        DataType::Iban => positive(
            data_type,
            iban(rng),
            &["iban", "payout", "bank", "note"],
            true,
        ),
        DataType::RoutingNumber => positive(
            data_type,
            aba(rng),
            &["routing_number", "aba", "routingNumber"],
            false,
        ),
        DataType::IpAddress => {
            let ip = if rng.chance(20) {
                format!("2001:db8:{}::{}", rng.hex(4), rng.hex(3))
            } else {
                format!(
                    "{}.{}.{}.{}",
                    // Public-looking first octets: never 127 (loopback names no one).
                    rng.pick(&[23, 45, 81, 93, 104, 151, 185, 203]),
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                )
            };
            positive(
                data_type,
                ip,
                &["client_ip", "ip", "remote_addr", "note"],
                true,
            )
        }
        DataType::DateOfBirth => {
            let (y, m, d) = (1940 + rng.below(65), 1 + rng.below(12), 1 + rng.below(28));
            let value = match rng.below(3) {
                0 => format!("{y}-{m:02}-{d:02}"),
                1 => format!("{m:02}/{d:02}/{y}"),
                _ => format!("{d:02}.{m:02}.{y}"),
            };
            positive(
                data_type,
                value,
                &["dob", "date_of_birth", "birthDate", "birthday"],
                false,
            )
        }
        DataType::Passport => {
            if rng.chance(40) {
                let (line, _) = mrz_line(rng);
                positive(data_type, line, &["mrz", "note", "document"], true)
            } else {
                let number = format!(
                    "{}{}",
                    rng.from_alphabet(b"ABCDEFGHJKLMNPRSTUVWXYZ", 1),
                    rng.digits(8)
                );
                positive(
                    data_type,
                    number,
                    &["passport", "passport_number", "passportNo"],
                    false,
                )
            }
        }
        DataType::NationalId => match rng.below(3) {
            0 => positive(data_type, cpf(rng), &["cpf", "tax_id", "note"], true),
            1 => positive(data_type, dni(rng), &["dni", "national_id", "note"], true),
            _ => positive(
                data_type,
                "11010519491231002X".to_string(),
                &["national_id", "id_card"],
                true,
            ),
        },
        DataType::AccountId => {
            let len = 8 + rng.below(5) as usize;
            positive(
                data_type,
                rng.digits(len),
                &["account_number", "accountNo", "acct_no", "bank_account"],
                false,
            )
        }
        DataType::BasicAuth => {
            let credentials = base64::engine::general_purpose::STANDARD
                .encode(format!("{name}:{}", rng.alnum(12)));
            positive(data_type, credentials, &[], false)
        }
        DataType::BearerToken => positive(data_type, rng.alnum(40), &[], false),
        DataType::Jwt => positive(
            data_type,
            jwt(rng),
            &["token", "id_token", "note", "assertion"],
            true,
        ),
        DataType::AwsAccessKey => positive(
            data_type,
            format!(
                "AKIA{}",
                rng.from_alphabet(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
            ),
            &["aws_key", "key_id", "note"],
            true,
        ),
        DataType::GithubToken => positive(
            data_type,
            format!("ghp_{}", rng.alnum(36)),
            &["github", "gh", "note"],
            true,
        ),
        DataType::GitlabToken => positive(
            data_type,
            format!("glpat-{}", rng.alnum(20)),
            &["gitlab", "note"],
            true,
        ),
        DataType::SlackToken => positive(
            data_type,
            format!(
                "xoxb-{}-{}-{}",
                rng.digits(12),
                rng.digits(13),
                rng.alnum(24)
            ),
            &["slack", "note"],
            true,
        ),
        DataType::StripeKey => positive(
            data_type,
            format!("sk_live_{}", rng.alnum(24)),
            &["stripe", "note"],
            true,
        ),
        DataType::GoogleApiKey => positive(
            data_type,
            format!("AIza{}", rng.from_alphabet(BASE64URL, 35)),
            &["maps", "note"],
            true,
        ),
        // A JSON Web Key's private member: 256 bits (an elliptic-curve `d`, an HMAC `k`) to
        // an RSA prime's 1,024.
        DataType::PrivateKey if rng.chance(25) => {
            let len = 43 + rng.below(129) as usize;
            let member = rng.from_alphabet(BASE64URL, len);
            Value {
                json_only: true,
                ..positive(data_type, member, &["d", "k", "p"], false)
            }
        }
        DataType::PrivateKey => positive(
            data_type,
            private_key(rng),
            &["pem", "key_material", "note"],
            true,
        ),
        DataType::Password if rng.chance(20) => positive(
            data_type,
            rng.digits(6),
            &["otp", "mfa_code", "totp", "verification_code"],
            false,
        ),
        DataType::Password => {
            let len = 6 + rng.below(10) as usize;
            positive(
                data_type,
                rng.alnum(len),
                &["password", "pwd", "new_password", "passwd"],
                false,
            )
        }
        DataType::SecretField => positive(
            data_type,
            rng.hex(32),
            &["api_key", "client_secret", "secret", "access_token"],
            false,
        ),
        DataType::SessionCookie => positive(data_type, rng.hex(32), &[], false),
        DataType::UrlCredentials => {
            let url = match rng.below(4) {
                0 => format!(
                    "https://{}:{}@api.example.com",
                    rng.pick(FIRST),
                    rng.alnum(10)
                ),
                1 => format!("postgres://app:{}@db.internal:5432", rng.alnum(14)),
                // No user: Redis takes a password alone.
                2 => format!("redis://:{}@cache.internal:6379", rng.alnum(12)),
                _ => format!(
                    "ftp://{}:{}@files.example.org",
                    rng.pick(LAST),
                    rng.alnum(8)
                ),
            };
            positive(data_type, url, &["callback", "dsn", "note"], true)
        }
        DataType::SignedUrl => positive(data_type, rng.hex(64), &[], false),
    }
}

/// A look-alike that is not sensitive.
fn negative_value(rng: &mut Rng) -> Value {
    match rng.below(18) {
        0 => negative(
            rng.digits(16),
            &["order_id", "order_number", "invoice"],
            false,
        ),
        1 => negative(
            format!("17{}", rng.digits(11)),
            &["created_at", "ts", "timestamp"],
            true,
        ),
        2 => negative(
            format!(
                "2024-{:02}-{:02}T{:02}:{:02}:00Z",
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60)
            ),
            &["created_at", "updated"],
            true,
        ),
        3 => negative(uuid(rng), &["request_id", "trace", "id"], true),
        4 => negative(
            format!("{}{}", 2 + rng.below(8), rng.digits(9)),
            &["id", "user_id", "ref"],
            true,
        ),
        5 => negative(
            format!(
                "{}.{}.{}.{}",
                rng.below(20),
                rng.below(20),
                rng.below(20),
                rng.below(200)
            ),
            &["version", "build"],
            false,
        ),
        6 => negative(rng.hex(40), &["sha", "etag", "commit"], true),
        7 => negative(
            format!("logo@{}x.png", 2 + rng.below(2)),
            &["avatar", "icon"],
            true,
        ),
        8 => negative(
            format!(
                "{}-{}-{}",
                900 + rng.below(100),
                rng.digits(2),
                rng.digits(4)
            ),
            &["ref", "note"],
            true,
        ),
        9 => {
            // A card-shaped number failing Luhn.
            let good = luhn_complete(rng, "4", 16);
            let last = (good.as_bytes()[15] - b'0' + 1) % 10;
            negative(format!("{}{}", &good[..15], last), &["ref", "note"], true)
        }
        10 => negative(
            format!(
                "1Z{}{}",
                rng.from_alphabet(b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789", 6),
                rng.digits(10)
            ),
            &["tracking_number"],
            true,
        ),
        11 => negative(rng.digits(5), &["zip", "postal_code", "count"], true),
        12 => negative(
            format!("{}.{:02}", rng.below(10_000), rng.below(100)),
            &["amount", "total", "price"],
            true,
        ),
        13 => negative(format!("eyJ{}", rng.alnum(30)), &["data", "blob"], true),
        14 => negative(
            format!("SKU-{}-{}", rng.digits(6), rng.digits(4)),
            &["sku", "product"],
            true,
        ),
        // A JSON Web Key's public parts: a curve point's coordinates, an RSA modulus.
        15 => negative(rng.from_alphabet(BASE64URL, 43), &["x", "y", "n"], false),
        // What is said of a one-time code, not the code.
        16 => negative(
            (*rng.pick(&["sent", "sms", "totp", "verified"])).to_string(),
            &["otp_status", "mfa_method"],
            false,
        ),
        _ => negative(
            format!("v{}.{}.{}", rng.below(10), rng.below(30), rng.below(100)),
            &["version"],
            true,
        ),
    }
}

/// Plain words, sometimes with a number that is nothing in particular.
fn noise_value(rng: &mut Rng) -> (String, String) {
    let key = (*rng.pick(&[
        "name", "city", "status", "comment", "title", "page", "limit", "lang", "currency", "qty",
        "color",
    ]))
    .to_string();
    let value = match rng.below(4) {
        0 => rng.below(100).to_string(),
        1 => (*rng.pick(FIRST)).to_string(),
        _ => (0..1 + rng.below(6))
            .map(|_| *rng.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" "),
    };
    (key, value)
}

/// Types that live in headers, cookies or queries rather than in bodies.
fn header_only(data_type: DataType) -> bool {
    matches!(
        data_type,
        DataType::BasicAuth | DataType::BearerToken | DataType::SessionCookie | DataType::SignedUrl
    )
}

/// `count` samples from `seed`, covering every built-in type.
pub fn generate(seed: u64, count: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let data_type = DataType::ALL[i % DataType::ALL.len()];
            sample(&mut rng, data_type)
        })
        .collect()
}

fn sample(rng: &mut Rng, data_type: DataType) -> Sample {
    if header_only(data_type) {
        return header_sample(rng, data_type);
    }
    // Most samples hold one sensitive value among noise and look-alikes; some hold none.
    let value = (!rng.chance(10)).then(|| positive_of(rng, data_type));
    let mut negatives: Vec<Value> = (0..rng.below(4)).map(|_| negative_value(rng)).collect();
    match rng.below(10) {
        0..=5 => json_sample(rng, value, &mut negatives),
        6..=7 => pairs_sample(rng, value, &mut negatives, true),
        8 => pairs_sample(rng, value, &mut negatives, false),
        _ => text_sample(rng, value, &mut negatives),
    }
}

fn header_sample(rng: &mut Rng, data_type: DataType) -> Sample {
    let value = positive_of(rng, data_type);
    let v = value.value.clone();
    let (kind, text) = match data_type {
        DataType::BasicAuth => (
            SampleKind::Header("authorization".into()),
            format!("Basic {v}"),
        ),
        DataType::BearerToken => (
            SampleKind::Header("authorization".into()),
            format!("Bearer {v}"),
        ),
        DataType::SessionCookie => {
            let name = *rng.pick(&[
                "session_id",
                "sid",
                "JSESSIONID",
                "PHPSESSID",
                "connect.sid",
            ]);
            (
                SampleKind::Header("cookie".into()),
                format!("theme=dark; {name}={v}; lang=en"),
            )
        }
        _ => {
            let name = *rng.pick(&["X-Amz-Signature", "X-Goog-Signature", "sig"]);
            (
                SampleKind::Query,
                format!("X-Amz-Date=20240101T000000Z&{name}={v}&page=2"),
            )
        }
    };
    Sample {
        kind,
        text,
        labels: vec![(data_type, v)],
    }
}

fn choose_key(rng: &mut Rng, value: &Value) -> String {
    if value.keys.is_empty() {
        return "value".to_string();
    }
    (*rng.pick(value.keys)).to_string()
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn json_sample(rng: &mut Rng, value: Option<Value>, negatives: &mut Vec<Value>) -> Sample {
    let mut members: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..2 + rng.below(6) {
        let (key, text) = noise_value(rng);
        members.push(format!(r#""{key}":"{}""#, json_escape(&text)));
    }
    for negative in negatives.drain(..) {
        let key = choose_key(rng, &negative);
        members.push(format!(r#""{key}":"{}""#, json_escape(&negative.value)));
    }
    if let Some(value) = value {
        let key = choose_key(rng, &value);
        let shown = if key == "note" {
            format!("{} {} {}", rng.pick(WORDS), value.value, rng.pick(WORDS))
        } else {
            value.value.clone()
        };
        let numeric = shown.bytes().all(|b| b.is_ascii_digit()) && !shown.starts_with('0');
        if numeric && rng.chance(50) {
            members.push(format!(r#""{key}":{shown}"#));
        } else {
            members.push(format!(r#""{key}":"{}""#, json_escape(&shown)));
        }
        labels.extend(value.label.map(|t| (t, value.value)));
    }
    // Shuffle members, then nest some under an object.
    for i in (1..members.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        members.swap(i, j);
    }
    let text = if rng.chance(40) && members.len() > 2 {
        let inner = members.split_off(members.len() / 2);
        format!(
            r#"{{{},"data":{{{}}}}}"#,
            members.join(","),
            inner.join(",")
        )
    } else {
        format!("{{{}}}", members.join(","))
    };
    Sample {
        kind: SampleKind::Json,
        text,
        labels,
    }
}

fn pairs_sample(
    rng: &mut Rng,
    value: Option<Value>,
    negatives: &mut Vec<Value>,
    form: bool,
) -> Sample {
    let mut pairs: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let (key, text) = noise_value(rng);
        pairs.push(format!("{key}={}", text.replace(' ', "+")));
    }
    for negative in negatives.drain(..) {
        if negative.value.contains([' ', '&', '+', '=', '%']) {
            continue;
        }
        let key = choose_key(rng, &negative);
        pairs.push(format!("{key}={}", negative.value));
    }
    if let Some(value) = value {
        if !value.json_only && !value.value.contains(['&', '=', '%', '+', '\n', ' ']) {
            let key = choose_key(rng, &value);
            let key = if key == "note" { "q".to_string() } else { key };
            pairs.push(format!("{key}={}", value.value));
            labels.extend(value.label.map(|t| (t, value.value)));
        }
    }
    for i in (1..pairs.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        pairs.swap(i, j);
    }
    Sample {
        kind: if form {
            SampleKind::Form
        } else {
            SampleKind::Query
        },
        text: pairs.join("&"),
        labels,
    }
}

fn text_sample(rng: &mut Rng, value: Option<Value>, negatives: &mut Vec<Value>) -> Sample {
    let mut words: Vec<String> = (0..3 + rng.below(8))
        .map(|_| (*rng.pick(WORDS)).to_string())
        .collect();
    let mut labels = Vec::new();
    for negative in negatives.drain(..) {
        if negative.in_text {
            let at = rng.below(words.len() as u64 + 1) as usize;
            words.insert(at, negative.value);
        }
    }
    if let Some(value) = value {
        if value.in_text {
            let at = rng.below(words.len() as u64 + 1) as usize;
            words.insert(at, value.value.clone());
            labels.extend(value.label.map(|t| (t, value.value)));
        }
    }
    Sample {
        kind: SampleKind::Text,
        text: words.join(" "),
        labels,
    }
}

/// Precision, recall and F1 of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
}

impl Score {
    pub fn precision(&self) -> f64 {
        let found = self.true_positives + self.false_positives;
        if found == 0 {
            1.0
        } else {
            self.true_positives as f64 / found as f64
        }
    }

    pub fn recall(&self) -> f64 {
        let expected = self.true_positives + self.false_negatives;
        if expected == 0 {
            1.0
        } else {
            self.true_positives as f64 / expected as f64
        }
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Scores per type of `scanner` on `samples`: a found value counts when its type and text
/// match a label exactly. Also returns up to `max_examples` mistakes, for the report.
pub fn evaluate(
    scanner: &Scanner,
    samples: &[Sample],
    max_examples: usize,
) -> (Vec<(DataType, Score)>, Vec<String>) {
    let mut scores: Vec<(DataType, Score)> = DataType::ALL
        .iter()
        .map(|t| (*t, Score::default()))
        .collect();
    let mut mistakes = Vec::new();
    let mut found = Vec::new();
    for sample in samples {
        found.clear();
        scanner.scan_source(sample.source(), &sample.text, SCAN_NOW_SECS, &mut found);
        let mut expected: Vec<(DataType, &str)> = sample
            .labels
            .iter()
            .map(|(t, v)| (*t, v.as_str()))
            .collect();
        for f in &found {
            let TypeRef::Builtin(data_type) = f.kind else {
                continue;
            };
            let Some(score) = scores
                .iter_mut()
                .find(|(t, _)| *t == data_type)
                .map(|(_, s)| s)
            else {
                continue;
            };
            if let Some(i) = expected
                .iter()
                .position(|(t, v)| *t == data_type && *v == f.value)
            {
                expected.swap_remove(i);
                score.true_positives += 1;
            } else {
                score.false_positives += 1;
                if mistakes.len() < max_examples {
                    let mut line = String::new();
                    let _ = write!(line, "false {data_type} {:?} in {:?}", f.value, sample.text);
                    mistakes.push(line);
                }
            }
        }
        for (data_type, value) in expected {
            if let Some((_, score)) = scores.iter_mut().find(|(t, _)| *t == data_type) {
                score.false_negatives += 1;
            }
            if mistakes.len() < max_examples {
                mistakes.push(format!("missed {data_type} {value:?} in {:?}", sample.text));
            }
        }
    }
    (scores, mistakes)
}

/// Whether a type is held to the stricter precision target for secrets.
pub fn is_secret(data_type: DataType) -> bool {
    data_type.category() == Category::Secret
}

/// The clock samples and bodies are scanned at (2027-01-15): the generated tokens expire
/// between 2023-11 and 2030-03, so at this clock some have expired and some not, the same ones
/// whatever the day a benchmark runs.
pub const SCAN_NOW_SECS: u64 = 1_800_000_000;

/// The seed the benchmarks draw their samples and bodies from, so every run scans the same.
pub const BENCH_SEED: u64 = 0x5EED_0B5E;
/// The bodies scanning throughput is measured on (the sensitive bench, `cargo xtask
/// compare-scanner`): the issue's mixed 1 KiB JSON bodies, enough of them that a round's
/// fields do not fit the caches.
pub const BENCH_BODIES: usize = 4_096;
pub const BENCH_BODY_BYTES: usize = 1024;
/// Share of the benchmarks' API-like bodies that hold a sensitive value.
pub const BENCH_SENSITIVE_PERCENT: u64 = 10;

/// Mixed JSON bodies of about `size` bytes each, for throughput: the corpus's JSON samples
/// (with and without sensitive values) merged until each body is large enough.
pub fn json_bodies(seed: u64, count: usize, size: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut bodies = Vec::with_capacity(count);
    let mut i = 0usize;
    while bodies.len() < count {
        let mut members = Vec::new();
        let mut length = 2;
        while length < size {
            let data_type = DataType::ALL[i % DataType::ALL.len()];
            i += 1;
            let sample = sample(&mut rng, data_type);
            if sample.kind != SampleKind::Json {
                continue;
            }
            let inner = sample
                .text
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_string();
            length += inner.len() + 1;
            members.push(inner);
        }
        bodies.push(format!("{{{}}}", members.join(",")));
    }
    bodies
}

/// API-like JSON bodies of about `size` bytes each: lists of records (ids, names, statuses,
/// timestamps, prices, URLs, descriptions), with a sensitive value (an email, a phone number, a
/// token) in `sensitive_percent` of the bodies. What a scanner sees on a typical host, where
/// most calls carry no personal data at all.
pub fn api_bodies(seed: u64, count: usize, size: usize, sensitive_percent: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let sensitive = rng.chance(sensitive_percent);
            let mut records = Vec::new();
            let mut length = 12;
            while length < size {
                let id = 1000 + rng.below(1_000_000);
                let mut record = format!(
                    r#"{{"id":{id},"uuid":"{}","name":"{} {}","status":"{}","created_at":"2024-{:02}-{:02}T{:02}:{:02}:{:02}Z","price":{}.{:02},"currency":"USD","url":"https://api.example.com/v1/items/{id}","tags":["{}","{}"],"description":"{}","active":{},"owner":{{"id":{},"name":"{}"}}"#,
                    uuid(&mut rng),
                    rng.pick(FIRST),
                    rng.pick(LAST),
                    rng.pick(&["active", "pending", "shipped", "closed"]),
                    1 + rng.below(12),
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60),
                    rng.below(500),
                    rng.below(100),
                    rng.pick(WORDS),
                    rng.pick(WORDS),
                    (0..4 + rng.below(8)).map(|_| *rng.pick(WORDS)).collect::<Vec<_>>().join(" "),
                    rng.chance(50),
                    rng.below(10_000),
                    rng.pick(FIRST),
                );
                if sensitive && records.is_empty() {
                    let value = match rng.below(3) {
                        0 => format!(r#","email":"{}@{}""#, rng.pick(FIRST), rng.pick(DOMAINS)),
                        1 => format!(r#","phone":"{}""#, phone(&mut rng)),
                        _ => format!(r#","token":"{}""#, jwt(&mut rng)),
                    };
                    record.push_str(&value);
                }
                record.push('}');
                length += record.len() + 1;
                records.push(record);
            }
            format!(r#"{{"items":[{}],"page":1}}"#, records.join(","))
        })
        .collect()
}
