//! What a field's name says about its value: the context that confirms a weak match (nine
//! digits under `ssn`) or refutes one (sixteen digits under `order_id`).
//!
//! Names are split into lowercase words (`dateOfBirth`, `date_of_birth` and `Date-Of-Birth` all
//! read `date of birth`), then matched against words and joined phrases. Everything happens in a
//! fixed buffer, so a hostile name costs at most [`MAX_NAME_BYTES`] of work.

use super::bytes::le_word;

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
    /// The name, whole and as written, is one a JSON Web Key gives its private parts.
    pub const KEY_MEMBER: Hints = Hints(1 << 15);
    /// The name says its value is a secret to hide wherever it is shown (a preview, a report,
    /// a command line): broader than the scanner's hints, since hiding a value that was no
    /// secret costs a reader less than showing one that was. Told of the name alone.
    pub const SECRET_NAME: Hints = Hints(1 << 16);

    /// Hints that make a name a [`Hints::SECRET_NAME`] when its own words carry them.
    const HIDDEN_BY_WORD: Hints = Hints::PASSWORD
        .union(Hints::SECRET)
        .union(Hints::SESSION)
        .union(Hints::SIGNATURE);

    pub fn has(self, other: Hints) -> bool {
        self.0 & other.0 != 0
    }

    /// The hints of either set: for asking (with [`Hints::has`]) whether a name carries any of
    /// several.
    pub const fn union(self, other: Hints) -> Hints {
        Hints(self.0 | other.0)
    }

    fn add(&mut self, other: Hints) {
        *self = self.union(other);
    }
}

/// Hints from a name (`$.user.ssn`'s `ssn`, a header name, a cookie name), and from its
/// parent's name, which names generic members (`{"card": {"number": ...}}`). For one lookup;
/// a scan, which looks up every field's names, borrows the memo once with [`with_memo`].
pub fn hints(name: Option<&str>, parent: Option<&str>) -> Hints {
    with_memo(|memo| memo.hints(name, parent))
}

/// Runs `scope` with this thread's memo of hints, reached once for all its lookups (reaching a
/// thread-local and borrowing it cost a fifth of a lookup). A scope opened inside another finds
/// the memo taken and computes its hints instead, which gives the same hints.
pub fn with_memo<R>(scope: impl FnOnce(&mut HintMemo<'_>) -> R) -> R {
    MEMO.with(|memo| {
        let mut slots = memo.try_borrow_mut().ok();
        if let Some(slots) = slots.as_mut().filter(|slots| slots.is_empty()) {
            slots.resize(MEMO_ENTRIES, MemoSlot::default());
        }
        scope(&mut HintMemo {
            slots: slots.as_deref_mut().map(Vec::as_mut_slice),
        })
    })
}

/// A thread's memo of hints, borrowed by [`with_memo`].
///
/// APIs repeat the same few hundred names in every message, so results are remembered per
/// thread, in [`MEMO_ENTRIES`] slots chosen by a hash of the names (a name takes its slot from
/// whatever was there): most fields cost one hash and one compare.
pub struct HintMemo<'m> {
    /// `None` when an enclosing scope holds the memo.
    slots: Option<&'m mut [MemoSlot]>,
}

impl HintMemo<'_> {
    /// [`hints`], remembered.
    pub fn hints(&mut self, name: Option<&str>, parent: Option<&str>) -> Hints {
        let Some(name) = name else {
            return Hints::default();
        };
        let parent = parent.unwrap_or("");
        if name.len() <= WORD_BYTES && parent.len() <= WORD_BYTES {
            return self.short_hints(name, parent);
        }
        let Some(names) = PackedNames::new(name, parent) else {
            return compute(name, parent);
        };
        let Some(slot) = self
            .slots
            .as_deref_mut()
            .and_then(|slots| slots.get_mut(names.slot()))
        else {
            return compute(name, parent);
        };
        // The names are kept and compared whole: a hash collision, even a forged one, only
        // costs a recomputation and never lends a field another field's hints.
        if slot.names != names {
            *slot = MemoSlot {
                names,
                hints: compute(name, parent),
            };
        }
        slot.hints
    }

    /// [`HintMemo::hints`] of names that each fit a word, as most JSON keys and their parents
    /// do: the pack of such names is its two first words and the lengths (every other word is
    /// zero, in this pack and in any kept pack with the same lengths), so only those are read,
    /// hashed and compared. Same slot, same pack as the general path.
    fn short_hints(&mut self, name: &str, parent: &str) -> Hints {
        let lengths = PackedNames::lengths(name, parent);
        let (name_word, parent_word) = (le_word(name.as_bytes()), le_word(parent.as_bytes()));
        let index = PackedNames::fold_to_slot(
            u64::from(lengths)
                ^ name_word.rotate_left(SLOT_TURNS[NAME_FIRST])
                ^ parent_word.rotate_left(SLOT_TURNS[PARENT_FIRST]),
        );
        let Some(slot) = self
            .slots
            .as_deref_mut()
            .and_then(|slots| slots.get_mut(index))
        else {
            return compute(name, parent);
        };
        let kept = &slot.names;
        if kept.lengths != lengths
            || kept.ends[NAME_FIRST] != name_word
            || kept.ends[PARENT_FIRST] != parent_word
        {
            let mut ends = [0; 4];
            ends[NAME_FIRST] = name_word;
            ends[PARENT_FIRST] = parent_word;
            *slot = MemoSlot {
                names: PackedNames {
                    ends,
                    middles: [0; NAME_MIDDLE_WORDS + PARENT_MIDDLE_WORDS],
                    lengths,
                },
                hints: compute(name, parent),
            };
        }
        slot.hints
    }
}

/// Slots in each thread's memo: more than the field names of any real API, in 256 KiB (one
/// 64-byte slot each), allocated on first use.
pub const MEMO_ENTRIES: usize = 4096;

/// Bytes of a name kept in a slot: real names fit; longer ones are rare and computed each
/// time (at most `2 * MAX_NAME_BYTES` of work).
const MEMO_NAME_BYTES: usize = 32;

/// Bytes of the parent's name kept in a slot, with the same fallback.
const MEMO_PARENT_BYTES: usize = 24;

/// How far [`PackedNames::slot`] turns each word of a pack, in [`PackedNames::words`]' order.
const SLOT_TURNS: [u32; 4 + NAME_MIDDLE_WORDS + PARENT_MIDDLE_WORDS] = [0, 23, 41, 7, 53, 31, 13];

/// Where each name's first word is in [`PackedNames::ends`].
const NAME_FIRST: usize = 0;
const PARENT_FIRST: usize = 2;

/// Bytes in a word of a pack: names this short are packed in one.
const WORD_BYTES: usize = 8;

/// Words between a kept name's first and last (see [`ends_and_middle`]), and the parent's.
const NAME_MIDDLE_WORDS: usize = (MEMO_NAME_BYTES - 16) / 8;
const PARENT_MIDDLE_WORDS: usize = (MEMO_PARENT_BYTES - 16) / 8;

/// A name and its parent's name, each as the words [`ends_and_middle`] reads, with both
/// lengths: equal packs are equal pairs.
#[derive(Debug, Clone, Copy, Default)]
struct PackedNames {
    /// Each name's first and last word.
    ends: [u64; 4],
    /// The name's middle words, then the parent's.
    middles: [u64; NAME_MIDDLE_WORDS + PARENT_MIDDLE_WORDS],
    /// The name's length, then the parent's, a byte each (a `u16` keeps a slot to 64 bytes).
    lengths: u16,
}

impl PackedNames {
    fn new(name: &str, parent: &str) -> Option<PackedNames> {
        if name.len() > MEMO_NAME_BYTES || parent.len() > MEMO_PARENT_BYTES {
            return None;
        }
        let ([name_first, name_last], name_middles) =
            ends_and_middle::<NAME_MIDDLE_WORDS>(name.as_bytes());
        let ([parent_first, parent_last], parent_middles) =
            ends_and_middle::<PARENT_MIDDLE_WORDS>(parent.as_bytes());
        let mut middles = [0; NAME_MIDDLE_WORDS + PARENT_MIDDLE_WORDS];
        middles[..NAME_MIDDLE_WORDS].copy_from_slice(&name_middles);
        middles[NAME_MIDDLE_WORDS..].copy_from_slice(&parent_middles);
        Some(PackedNames {
            ends: [name_first, name_last, parent_first, parent_last],
            middles,
            lengths: PackedNames::lengths(name, parent),
        })
    }

    /// Both lengths in one `u16`, for names that fit a slot.
    fn lengths(name: &str, parent: &str) -> u16 {
        (name.len() as u16) << 8 | parent.len() as u16
    }

    fn words(&self) -> impl Iterator<Item = u64> + '_ {
        self.ends.iter().chain(&self.middles).copied()
    }

    /// The memo slot of these names: the words, each turned by its own amount so that equal
    /// words in different places do not cancel, folded into one and multiplied once (the high
    /// bits of a product depend on all of its inputs' bits). A collision only costs a
    /// recomputation.
    fn slot(&self) -> usize {
        PackedNames::fold_to_slot(
            self.words()
                .zip(SLOT_TURNS)
                .fold(u64::from(self.lengths), |folded, (word, turn)| {
                    folded ^ word.rotate_left(turn)
                }),
        )
    }

    fn fold_to_slot(folded: u64) -> usize {
        let mixed = (folded ^ (folded >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> (u64::BITS - MEMO_SLOT_BITS)) as usize
    }
}

impl PartialEq for PackedNames {
    /// Every word compared without a branch or a call: most lookups find their names.
    fn eq(&self, other: &PackedNames) -> bool {
        let differences = self.words().zip(other.words()).fold(
            u64::from(self.lengths ^ other.lengths),
            |differences, (a, b)| differences | (a ^ b),
        );
        differences == 0
    }
}

/// Words that, with its length, tell `bytes` (at most `16 + 8 * M` of them) from any other
/// text: its first 8 bytes (all of a shorter text) and its last 8 when it is longer than 8
/// (overlapping the first when shorter than 16), each one load; then the bytes between those
/// two, 8 to a word, for the rare text longer than 16. Zero-padded. Reading a name's words at
/// fixed places, rather than chunk by chunk, keeps a lookup of the usual short name to a few
/// loads.
fn ends_and_middle<const M: usize>(bytes: &[u8]) -> ([u64; 2], [u64; M]) {
    let len = bytes.len();
    let first = le_word(bytes);
    let mut middles = [0u64; M];
    if len <= 8 {
        return ([first, 0], middles);
    }
    let last = le_word(&bytes[len - 8..]);
    if len > 16 {
        let mut middle = &bytes[8..len - 8];
        for word in &mut middles {
            *word = le_word(middle);
            middle = middle.get(8..).unwrap_or_default();
        }
    }
    ([first, last], middles)
}

/// `MEMO_ENTRIES` is `1 << MEMO_SLOT_BITS`, so a slot index is the top bits of a hash.
const MEMO_SLOT_BITS: u32 = MEMO_ENTRIES.trailing_zeros();

/// A remembered pair of names and their hints. An unused slot holds the empty pair with no
/// hints, which is what the empty pair's hints are.
#[derive(Debug, Clone, Copy, Default)]
struct MemoSlot {
    names: PackedNames,
    hints: Hints,
}

thread_local! {
    static MEMO: std::cell::RefCell<Vec<MemoSlot>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The members of a JSON Web Key that hold its private part (RFC 7518, section 6): an RSA
/// key's private exponent, primes and their CRT values, an elliptic-curve key's `d`, a
/// symmetric key's `k`. Told here, where names are remembered, so that a field pays one bit's
/// test for them.
const KEY_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "k"];

fn compute(name: &str, parent: &str) -> Hints {
    let mut hints = Hints::default();
    if KEY_MEMBERS.contains(&name) {
        hints.add(Hints::KEY_MEMBER);
    }
    hints_of(name, &mut hints);
    if !parent.is_empty() {
        let mut from_parent = Hints::default();
        hints_of(parent, &mut from_parent);
        // A parent lends what it is about, not what it refutes: `orders[0].phone` is a phone.
        // Key members and secret names are told of the name alone: a parent named `d` or
        // `session` lends nothing.
        from_parent.0 &= !(Hints::NOT_PERSONAL.0 | Hints::ABOUT_SECRET.0 | Hints::SECRET_NAME.0);
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
    // A long name says what it is at its end (`spring.datasource.hikari.password`).
    let name = name.as_bytes();
    for &byte in &name[name.len().saturating_sub(MAX_NAME_BYTES)..] {
        // Bytes of other scripts are letters too: `contraseña` and `пароль` are one word each.
        if byte.is_ascii_alphanumeric() || !byte.is_ascii() {
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
    // `key` alone names a secret; in `sort_key` or `idempotency_key` it does not.
    if joined == b"key" {
        hints.add(Hints::SECRET);
    }
    let by_word = *hints;
    let mut by_phrase = Hints::default();
    phrase_hints(joined, &mut by_phrase);
    hints.add(by_phrase);
    // A phrase hides wherever it is (`password_changed_at` too); a word, unless another word
    // says the value is about the secret (`otp_status`, `token_type` keeps its phrase). An
    // OAuth `code` is a secret only as the whole name: `country_code` and `status_code` are not.
    if by_phrase.has(Hints::HIDDEN_BY_WORD.union(Hints::SECRET_NAME))
        || (by_word.has(Hints::HIDDEN_BY_WORD) && !by_word.has(Hints::ABOUT_SECRET))
        || joined == b"code"
    {
        hints.add(Hints::SECRET_NAME);
    }
}

/// Whole words that say something on their own (as fragments they are too common: `pin` in
/// `shipping`, `aba` in `database`, `ip` in `zip`).
fn word_hints(word: &[u8], hints: &mut Hints) {
    let Ok(word) = std::str::from_utf8(word) else {
        return;
    };
    let hint = match word {
        // A card's security code is kept nowhere, like a password, a one-time code logs in as
        // one until it expires, and a wallet's mnemonic restores it: hidden whatever their
        // shape (six digits, most often).
        "password" | "passwd" | "pwd" | "pw" | "pass" | "pin" | "passcode" | "cvv" | "cvc"
        | "cvv2" | "cvc2" | "csc" | "otp" | "totp" | "hotp" | "mnemonic" => Hints::PASSWORD,
        // The word in other languages, where it is too short to be found inside others
        // (the longer ones are phrases).
        "senha" | "hasło" | "haslo" | "heslo" => Hints::PASSWORD,
        "secret" | "token" | "apikey" | "credential" | "credentials" | "auth" | "jwt"
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
        | "ttl" | "name" | "format" | "scheme" | "status" | "method" | "channel" | "sent"
        | "verified" | "attempts" => Hints::ABOUT_SECRET,
        _ => return,
    };
    hints.add(hint);
}

/// Phrases people write as one word or several (`access_key`, `accessKey`, `clientsecret`),
/// found in the name's letters run together.
const PHRASES: &[(&str, Hints)] = &[
    ("password", Hints::PASSWORD),
    ("passwd", Hints::PASSWORD),
    ("passphrase", Hints::PASSWORD),
    // The word in the languages APIs are most often written in besides English, found inside
    // compounds (`Benutzerpasswort`); `contrase` stands for `contraseña` and `contrasena`,
    // `senord` for `lösenord` and `losenord`.
    ("passwort", Hints::PASSWORD),
    ("kennwort", Hints::PASSWORD),
    ("contrase", Hints::PASSWORD),
    ("wachtwoord", Hints::PASSWORD),
    ("senord", Hints::PASSWORD),
    ("passord", Hints::PASSWORD),
    ("adgangskode", Hints::PASSWORD),
    ("salasana", Hints::PASSWORD),
    ("jelszo", Hints::PASSWORD),
    ("jelszó", Hints::PASSWORD),
    ("motdepasse", Hints::PASSWORD),
    ("пароль", Hints::PASSWORD),
    ("密码", Hints::PASSWORD),
    ("パスワード", Hints::PASSWORD),
    ("비밀번호", Hints::PASSWORD),
    ("mfacode", Hints::PASSWORD),
    ("twofactorcode", Hints::PASSWORD),
    ("verificationcode", Hints::PASSWORD),
    ("securityanswer", Hints::PASSWORD),
    // Codes that stand in for a second factor, and the words that restore a wallet.
    ("recoverycode", Hints::PASSWORD),
    ("backupcode", Hints::PASSWORD),
    ("seedphrase", Hints::PASSWORD),
    ("recoveryphrase", Hints::PASSWORD),
    ("apikey", Hints::SECRET),
    ("accesskey", Hints::SECRET),
    ("secretkey", Hints::SECRET),
    ("privatekey", Hints::SECRET),
    ("encryptionkey", Hints::SECRET),
    ("signingkey", Hints::SECRET),
    ("masterkey", Hints::SECRET),
    ("hmackey", Hints::SECRET),
    // Azure API Management's key header, `Ocp-Apim-Subscription-Key`.
    ("subscriptionkey", Hints::SECRET),
    // Keys named by what they open: an application's (`DD-APPLICATION-KEY`, `appKey`), a
    // function's (Azure's `x-functions-key`), a storage account's (`AccountKey=` in its
    // connection string), a server's (Firebase's `serverKey`), a licence, a shared key.
    ("appkey", Hints::SECRET),
    ("applicationkey", Hints::SECRET),
    ("functionskey", Hints::SECRET),
    ("accountkey", Hints::SECRET),
    ("serverkey", Hints::SECRET),
    ("licensekey", Hints::SECRET),
    ("sharedkey", Hints::SECRET),
    ("authkey", Hints::SECRET),
    // A client's signed proof of itself (OAuth's `client_assertion`) and a SAML assertion
    // posted back to sign in (`SAMLResponse`): both sign in whoever replays them.
    ("clientassertion", Hints::SECRET),
    ("samlresponse", Hints::SECRET),
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
    // Sign-in cookies whose names do not say session: ASP.NET's and ASP.NET Core's,
    // Keycloak's, oauth2-proxy's, WordPress's, Cloudflare's clearance, "remember me".
    ("aspxauth", Hints::SESSION),
    ("aspnetcorecookies", Hints::SESSION),
    ("keycloakidentity", Hints::SESSION),
    ("oauth2proxy", Hints::SESSION),
    ("wordpressloggedin", Hints::SESSION),
    ("cfclearance", Hints::SESSION),
    ("rememberme", Hints::SESSION),
    ("amzsignature", Hints::SIGNATURE),
    ("googsignature", Hints::SIGNATURE),
    ("orderid", Hints::NOT_PERSONAL),
    ("ordernumber", Hints::NOT_PERSONAL),
    // Fragments too common to tell the scanner what a value is, which still say to hide it
    // wherever they are in a name (`xsrftoken`, `mysecret`, `session_count`).
    ("secret", Hints::SECRET_NAME),
    ("token", Hints::SECRET_NAME),
    ("credential", Hints::SECRET_NAME),
    ("session", Hints::SECRET_NAME),
    ("signature", Hints::SECRET_NAME),
    ("authorization", Hints::SECRET_NAME),
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
        for name in [
            "password",
            "newPassword",
            "user_pwd",
            "PIN",
            "otp",
            "totp_code",
            "mfaCode",
            "verification_code",
            "securityAnswer",
            "recovery_codes",
            "backupCodes",
            "seed_phrase",
            "mnemonic",
            "user_pw",
            "Passwort",
            "contraseña",
            "mot_de_passe",
            "motDePasse",
            "senha",
            "hasło",
            "пароль",
            "密码",
            "Benutzerpasswort",
            // Longer than the bytes read of a name: its end is read.
            "com.example.service.configuration.datasource.connection.primary.password",
        ] {
            assert!(hints(Some(name), None).has(Hints::PASSWORD), "{name}");
        }
        for name in [
            "encryption_key",
            "signingKey",
            "master_key",
            "hmac_key",
            "Ocp-Apim-Subscription-Key",
            "x-functions-key",
            "DD-APPLICATION-KEY",
            "appKey",
            "AccountKey",
            "serverKey",
            "license_key",
            "authkey",
            "client_assertion",
            "SAMLResponse",
        ] {
            assert!(hints(Some(name), None).has(Hints::SECRET), "{name}");
        }
        for name in ["otp_status", "mfa_method", "otpSent", "totp_verified"] {
            assert!(hints(Some(name), None).has(Hints::ABOUT_SECRET), "{name}");
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
        for name in [
            ".ASPXAUTH",
            ".AspNetCore.Cookies",
            "KEYCLOAK_IDENTITY",
            "_oauth2_proxy",
            "wordpress_logged_in_5c1a",
            "cf_clearance",
            "rememberMe",
        ] {
            assert!(hints(Some(name), None).has(Hints::SESSION), "{name}");
        }
        assert!(hints(Some("X-Forwarded-For"), None).has(Hints::IP));
        assert!(hints(Some("order_id"), None).has(Hints::NOT_PERSONAL));
        assert!(hints(Some("password_changed_at"), None).has(Hints::ABOUT_SECRET));
    }

    #[test]
    fn remembered_hints_are_the_computed_ones() {
        // Twice each: the first lookup fills a slot, the second reads it; names too long for
        // a slot are never kept, and pairs that differ only in where the name ends stay apart.
        let long = "a_name_longer_than_the_thirty_two_bytes_a_slot_holds";
        for (name, parent) in [
            ("", ""),
            ("number", "card"),
            ("numbercard", ""),
            ("number", "cardx"),
            ("ssn", ""),
            ("ss", "n"),
            ("number_of_the_card_in_the_wallet", ""),
            ("number_of_the_card_in_the_walle", "t"),
            (long, "password"),
            ("password", long),
        ] {
            for _ in 0..2 {
                assert_eq!(
                    hints(Some(name), Some(parent)),
                    compute(name, parent),
                    "{name:?} under {parent:?}"
                );
            }
        }
    }

    #[test]
    fn short_names_fill_the_slot_the_general_path_reads() {
        for (name, parent) in [
            ("", ""),
            ("id", ""),
            ("number", "card"),
            ("12345678", "abcdefgh"),
            ("a", "items"),
        ] {
            let packed = PackedNames::new(name, parent).unwrap();
            with_memo(|memo| {
                assert_eq!(memo.short_hints(name, parent), compute(name, parent));
                let slots = memo.slots.as_deref().unwrap();
                assert!(
                    slots[packed.slot()].names == packed,
                    "{name:?} under {parent:?}"
                );
            });
        }
    }

    #[test]
    fn packed_names_differ_wherever_the_names_do() {
        // Every length a slot keeps, for the name and for the parent, with one byte changed in
        // each place: the ends, the overlap of the last word with the first, and the middles.
        let text: String = ('a'..='z').chain('A'..='Z').collect();
        for len in 0..=MEMO_NAME_BYTES {
            let name = &text[..len];
            let parent = &text[..len.min(MEMO_PARENT_BYTES)];
            let packed = PackedNames::new(name, parent).unwrap_or_default();
            assert!(packed == PackedNames::new(name, parent).unwrap_or_default());
            for at in 0..len {
                let mut changed = name.to_string();
                changed.replace_range(at..=at, "_");
                let other = PackedNames::new(&changed, parent).unwrap_or_default();
                assert!(packed != other, "name of {len} bytes, byte {at}");
                if at < parent.len() {
                    let other = PackedNames::new(name, &changed[..parent.len()]);
                    assert!(packed != other.unwrap_or_default(), "parent, byte {at}");
                }
            }
        }
        assert!(PackedNames::new(&text[..MEMO_NAME_BYTES + 1], "").is_none());
        assert!(PackedNames::new("", &text[..MEMO_PARENT_BYTES + 1]).is_none());
    }

    #[test]
    fn a_memo_borrowed_inside_another_computes_the_same_hints() {
        with_memo(|outer| {
            let names = [(Some("card_number"), None), (Some("number"), Some("card"))];
            for (name, parent) in names {
                let nested = with_memo(|inner| inner.hints(name, parent));
                assert_eq!(nested, outer.hints(name, parent));
                assert_eq!(nested, hints(name, parent));
                assert!(nested.has(Hints::CARD));
            }
        });
    }

    #[test]
    fn parents_name_generic_members() {
        assert!(hints(Some("number"), Some("card")).has(Hints::CARD));
        assert!(!hints(Some("order_id"), Some("card")).has(Hints::CARD));
    }
}
