//! What a field's name says about its value: the context that confirms a weak match (nine
//! digits under `ssn`) or refutes one (sixteen digits under `order_id`).
//!
//! Names are split into lowercase words (`dateOfBirth`, `date_of_birth` and `Date-Of-Birth` all
//! read `date of birth`), then matched against words and joined phrases. Everything happens in a
//! fixed buffer, so a hostile name costs at most [`MAX_NAME_BYTES`] of work.

/// Bytes of a name looked at: real field names are short; the rest of a long one says nothing.
pub const MAX_NAME_BYTES: usize = 64;

/// Words a name can carry, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints(u32);

impl Hints {
    pub const PASSWORD: Hints = Hints(1 << 0);
    pub const SECRET: Hints = Hints(1 << 1);
    pub const SSN: Hints = Hints(1 << 2);
    pub const PHONE: Hints = Hints(1 << 3);
    pub const CARD: Hints = Hints(1 << 4);
    pub const ROUTING: Hints = Hints(1 << 5);
    pub const ACCOUNT: Hints = Hints(1 << 6);
    pub const BIRTH: Hints = Hints(1 << 7);
    pub const PASSPORT: Hints = Hints(1 << 8);
    pub const NATIONAL_ID: Hints = Hints(1 << 9);
    pub const IP: Hints = Hints(1 << 10);
    pub const SESSION: Hints = Hints(1 << 11);
    pub const SIGNATURE: Hints = Hints(1 << 12);
    /// The name says the value is something else: an order number, a timestamp, a version.
    pub const NOT_PERSONAL: Hints = Hints(1 << 13);
    /// The name describes a secret without holding one (`password_changed_at`).
    pub const ABOUT_SECRET: Hints = Hints(1 << 14);

    pub fn has(self, other: Hints) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets of hints: for asking whether a name carries any of several.
    pub const fn and(self, other: Hints) -> Hints {
        Hints(self.0 | other.0)
    }

    fn add(&mut self, other: Hints) {
        self.0 |= other.0;
    }
}

/// Hints from a name (`$.user.ssn`'s `ssn`, a header name, a cookie name), and from its
/// parent's name, which names generic members (`{"card": {"number": ...}}`).
///
/// APIs repeat the same few hundred names in every message, so results are remembered per
/// thread (up to [`MEMO_ENTRIES`] names, then forgotten all at once): most fields cost one hash.
pub fn hints(name: Option<&str>, parent: Option<&str>) -> Hints {
    let Some(name) = name else {
        return Hints::default();
    };
    let parent = parent.unwrap_or("");
    if name.len() + parent.len() > 2 * MAX_NAME_BYTES {
        return compute(name, parent);
    }
    // FNV-1a: names are short, and SipHash's setup costs more than the rest of a lookup.
    let mut key: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in name.as_bytes().iter().chain(b"\0").chain(parent.as_bytes()) {
        key = (key ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        // The names are kept and compared: FNV collisions can be made on purpose, and a forged
        // one must not lend a field another field's hints.
        if let Some((n, p, hints)) = memo.get(&key) {
            if **n == *name && **p == *parent {
                return *hints;
            }
        }
        if memo.len() >= MEMO_ENTRIES {
            memo.clear();
        }
        let hints = compute(name, parent);
        memo.insert(key, (name.into(), parent.into(), hints));
        hints
    })
}

/// A remembered name, its parent's name, and their hints.
type MemoEntry = (Box<str>, Box<str>, Hints);

/// Names remembered per thread: a few kilobytes, more than the field names of any real API.
pub const MEMO_ENTRIES: usize = 4096;

/// The memo's keys are already hashes: hashing them again would cost as much as the lookup.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Memo = std::collections::HashMap<u64, MemoEntry, std::hash::BuildHasherDefault<PassThrough>>;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
}

fn compute(name: &str, parent: &str) -> Hints {
    let mut hints = Hints::default();
    hints_of(name, &mut hints);
    if !parent.is_empty() {
        let mut from_parent = Hints::default();
        hints_of(parent, &mut from_parent);
        // A parent lends what it is about, not what it refutes: `orders[0].phone` is a phone.
        from_parent.0 &= !(Hints::NOT_PERSONAL.0 | Hints::ABOUT_SECRET.0);
        if !hints.has(Hints::NOT_PERSONAL) {
            hints.add(from_parent);
        }
    }
    hints
}

fn hints_of(name: &str, hints: &mut Hints) {
    // Lowercase words, split at non-alphanumerics and at lower-to-upper case changes.
    let mut buffer = [0u8; MAX_NAME_BYTES];
    let mut len = 0;
    let mut word_start = 0;
    let mut previous_lower = false;
    let mut in_word = false;
    for &byte in name.as_bytes().iter().take(MAX_NAME_BYTES) {
        if byte.is_ascii_alphanumeric() {
            if in_word && previous_lower && byte.is_ascii_uppercase() {
                word_hints(&buffer[word_start..len], hints);
                word_start = len;
            }
            if !in_word {
                word_start = len;
            }
            buffer[len] = byte.to_ascii_lowercase();
            len += 1;
            previous_lower = byte.is_ascii_lowercase() || byte.is_ascii_digit();
            in_word = true;
        } else {
            if in_word {
                word_hints(&buffer[word_start..len], hints);
            }
            in_word = false;
            previous_lower = false;
        }
    }
    if in_word {
        word_hints(&buffer[word_start..len], hints);
    }
    let joined = &buffer[..len];
    phrase_hints(joined, hints);
    // `key` alone names a secret; in `sort_key` or `idempotency_key` it does not.
    if joined == b"key" {
        hints.add(Hints::SECRET);
    }
}

/// Whole words that say something on their own (as fragments they are too common: `pin` in
/// `shipping`, `aba` in `database`, `ip` in `zip`).
fn word_hints(word: &[u8], hints: &mut Hints) {
    let Ok(word) = std::str::from_utf8(word) else {
        return;
    };
    let hint = match word {
        "password" | "passwd" | "pwd" | "pass" | "passphrase" | "pin" | "passcode" => {
            Hints::PASSWORD
        }
        "secret" | "token" | "apikey" | "credential" | "credentials" | "auth" | "jwt" | "otp"
        | "authorization" | "bearer" => Hints::SECRET,
        "ssn" | "sin" => Hints::SSN,
        "phone" | "mobile" | "tel" | "telephone" | "cell" | "fax" | "msisdn" | "whatsapp" => {
            Hints::PHONE
        }
        "card" | "cc" | "pan" | "ccnum" | "cardnumber" | "creditcard" => Hints::CARD,
        "routing" | "aba" | "rtn" => Hints::ROUTING,
        "account" | "acct" | "iban" | "bankaccount" => Hints::ACCOUNT,
        "dob" | "birth" | "birthday" | "birthdate" | "bday" => Hints::BIRTH,
        "passport" => Hints::PASSPORT,
        "cpf" | "dni" | "nie" | "aadhaar" | "nin" | "nino" | "nric" | "national" => {
            Hints::NATIONAL_ID
        }
        "ip" | "ipv4" | "ipv6" | "ipaddr" | "forwarded" | "remoteaddr" => Hints::IP,
        "session" | "sess" | "sid" | "sessionid" | "phpsessid" | "jsessionid" => Hints::SESSION,
        "signature" | "sig" => Hints::SIGNATURE,
        "order" | "invoice" | "tracking" | "timestamp" | "ts" | "epoch" | "time" | "created"
        | "updated" | "version" | "uuid" | "trace" | "request" | "sku" | "sequence" | "seq"
        | "count" | "total" | "amount" | "price" | "zip" | "postal" | "build" | "ref"
        | "reference" | "shipment" | "product" | "item" | "sha" | "hash" | "etag" | "nonce" => {
            Hints::NOT_PERSONAL
        }
        "policy" | "length" | "hint" | "reset" | "changed" | "expires" | "expiry" | "required"
        | "strength" | "type" | "at" | "enabled" | "rotated" | "url" | "uri" | "endpoint"
        | "ttl" | "name" | "format" | "scheme" => Hints::ABOUT_SECRET,
        _ => return,
    };
    hints.add(hint);
}

/// Phrases people write as one word or several (`access_key`, `accessKey`, `clientsecret`),
/// found in the name's letters run together.
const PHRASES: &[(&str, Hints)] = &[
    ("password", Hints::PASSWORD),
    ("passwd", Hints::PASSWORD),
    ("apikey", Hints::SECRET),
    ("accesskey", Hints::SECRET),
    ("secretkey", Hints::SECRET),
    ("privatekey", Hints::SECRET),
    ("clientsecret", Hints::SECRET),
    ("accesstoken", Hints::SECRET),
    ("refreshtoken", Hints::SECRET),
    ("authtoken", Hints::SECRET),
    ("socialsecurity", Hints::SSN),
    ("phonenumber", Hints::PHONE),
    ("cardnumber", Hints::CARD),
    ("creditcard", Hints::CARD),
    ("routingnumber", Hints::ROUTING),
    ("accountnumber", Hints::ACCOUNT),
    ("accountno", Hints::ACCOUNT),
    ("acctno", Hints::ACCOUNT),
    ("dateofbirth", Hints::BIRTH),
    ("birthdate", Hints::BIRTH),
    ("nationalid", Hints::NATIONAL_ID),
    ("taxid", Hints::NATIONAL_ID),
    ("ipaddress", Hints::IP),
    ("clientip", Hints::IP),
    ("remoteip", Hints::IP),
    ("realip", Hints::IP),
    ("sessionid", Hints::SESSION),
    ("sessid", Hints::SESSION),
    ("amzsignature", Hints::SIGNATURE),
    ("googsignature", Hints::SIGNATURE),
    ("orderid", Hints::NOT_PERSONAL),
    ("ordernumber", Hints::NOT_PERSONAL),
];

fn phrase_hints(joined: &[u8], hints: &mut Hints) {
    static PHRASE_AUTOMATON: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> =
        std::sync::OnceLock::new();
    if joined.len() < 3 {
        return;
    }
    let automaton = PHRASE_AUTOMATON.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(PHRASES.iter().map(|(phrase, _)| phrase))
            .ok()
    });
    let Some(automaton) = automaton else {
        return;
    };
    for m in automaton.find_overlapping_iter(joined) {
        if let Some((_, hint)) = PHRASES.get(m.pattern().as_usize()) {
            hints.add(*hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_case_style_give_the_same_hints() {
        for name in [
            "dateOfBirth",
            "date_of_birth",
            "Date-Of-Birth",
            "DOB",
            "birthdate",
        ] {
            assert!(hints(Some(name), None).has(Hints::BIRTH), "{name}");
        }
        for name in ["password", "newPassword", "user_pwd", "PIN"] {
            assert!(hints(Some(name), None).has(Hints::PASSWORD), "{name}");
        }
        for name in ["shipping", "database", "zip", "telemetry", "company"] {
            let h = hints(Some(name), None);
            assert!(
                !h.has(Hints::PASSWORD)
                    && !h.has(Hints::ROUTING)
                    && !h.has(Hints::IP)
                    && !h.has(Hints::PHONE)
                    && !h.has(Hints::CARD),
                "{name}: {h:?}"
            );
        }
        assert!(hints(Some("X-Forwarded-For"), None).has(Hints::IP));
        assert!(hints(Some("order_id"), None).has(Hints::NOT_PERSONAL));
        assert!(hints(Some("password_changed_at"), None).has(Hints::ABOUT_SECRET));
    }

    #[test]
    fn parents_name_generic_members() {
        assert!(hints(Some("number"), Some("card")).has(Hints::CARD));
        assert!(!hints(Some("order_id"), Some("card")).has(Hints::CARD));
    }
}
