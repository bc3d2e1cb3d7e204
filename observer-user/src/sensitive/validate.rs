//! Strict validators: the second half of every detector.
//!
//! A broad pattern (in `scan`) proposes a candidate; a validator here says whether it really is
//! one, with the check the data type defines where one exists: Luhn and issuer ranges for cards,
//! mod-97 and the country's length for IBANs, the ABA checksum for routing numbers, ISO 7064 and
//! Verhoeff for national ids, ICAO 9303 check digits for passports' machine-readable zones, and
//! structure rules where there is no checksum (SSNs, phone numbers, dates). Every function takes
//! text as found and never panics: candidates come from hostile traffic.

use super::bytes::{byte_table, count_marked};

/// The most digits a number any validator here accepts can have (an account id, at most 34
/// characters, has the most): [`digits_of`] keeps this many on the stack, and a text with more
/// is no number.
pub const MAX_DIGITS: usize = 40;

/// A number's digits as values 0-9, held in place: numbers are classified by the thousand in
/// every body, and a heap vector for each cost more than reading its digits.
#[derive(Debug, Clone, Copy)]
pub struct Digits {
    values: [u8; MAX_DIGITS],
    len: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.values[..self.len]
    }
}

/// `123e4567-e89b-12d3-a456-426614174000`: 32 hex digits and four dashes, here.
pub const UUID_BYTES: usize = 36;
const UUID_DASHES: [usize; 4] = [8, 13, 18, 23];

/// 1 for each hex digit, as a table counted with a load per byte.
const HEX_DIGITS: [u8; 256] = byte_table([(b"0123456789abcdefABCDEF", 1)]);

/// Whether `bytes` is a UUID in its canonical form (`8-4-4-4-12` hex digits, any version).
/// The dashes are checked at their places first, which turns most other values away after a
/// load or two; the hex digits are then counted without a branch per byte.
pub fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == UUID_BYTES
        && UUID_DASHES.iter().all(|&i| bytes[i] == b'-')
        && count_marked(&HEX_DIGITS, bytes) == UUID_BYTES - UUID_DASHES.len()
}

/// ASCII digits of `text` as values 0-9, ignoring the separators people put in numbers
/// (space, `-`, `.`, `/`, parentheses). `None` if anything else is there, or more than
/// [`MAX_DIGITS`] digits.
pub fn digits_of(text: &str) -> Option<Digits> {
    let mut digits = Digits {
        values: [0; MAX_DIGITS],
        len: 0,
    };
    for byte in text.bytes() {
        match byte {
            b'0'..=b'9' => {
                *digits.values.get_mut(digits.len)? = byte - b'0';
                digits.len += 1;
            }
            b' ' | b'-' | b'.' | b'/' | b'(' | b')' => {}
            _ => return None,
        }
    }
    Some(digits)
}

/// The Luhn (mod 10) check used by payment cards (ISO/IEC 7812-1).
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Card lengths: ISO/IEC 7812 numbers run from 12 (some Maestro) to 19 digits.
pub const CARD_LENGTHS: std::ops::RangeInclusive<usize> = 12..=19;

/// The card network a number's prefix and length belong to, from the networks' published
/// issuer identification number (IIN) ranges. `None` for numbers no network issues, which is
/// how order numbers and timestamps that happen to pass Luhn are told apart.
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    if !CARD_LENGTHS.contains(&len) {
        return None;
    }
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && (16..=19).contains(&len)
    {
        return Some("discover");
    }
    if (3528..=3589).contains(&p4) && (16..=19).contains(&len) {
        return Some("jcb");
    }
    if (p2 == 36 || (300..=305).contains(&p3) || p2 == 38 || p2 == 39) && (14..=19).contains(&len) {
        return Some("diners");
    }
    if p2 == 62 && (16..=19).contains(&len) {
        return Some("unionpay");
    }
    if (2200..=2204).contains(&p4) && (16..=19).contains(&len) {
        return Some("mir");
    }
    if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763) && len >= 12 {
        return Some("maestro");
    }
    None
}

/// A payment card number: a known network's prefix and length, and the Luhn check.
pub fn is_card_number(digits: &[u8]) -> bool {
    card_network(digits).is_some() && luhn(digits)
}

/// IBAN length per country (ISO 13616 registry, SWIFT release 2024).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// An IBAN (ISO 13616): a known country, that country's length, and the mod-97 check.
/// Spaces between groups are allowed; letters must be upper case, as the standard prints them.
pub fn is_iban(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|&b| b != b' ').collect();
    if compact.len() < 15
        || !compact
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let Some(length) = iban_length(&compact[..2]) else {
        return false;
    };
    if compact.len() != length || !compact[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Move the first four characters to the end; the result must be 1 mod 97.
    let rotated: Vec<u8> = compact[4..].iter().chain(&compact[..4]).copied().collect();
    mod97(&rotated) == 1
}

/// How many characters (spaces left out) the IBANs of `country` (two upper-case letters)
/// have, if it issues them.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_bytes() == country)
        .map(|&(_, length)| length)
}

/// The number that digits and upper-case letters (read as 10..35) spell, mod 97, taken digit
/// by digit so it never overflows (ISO 7064 MOD 97-10, as IBANs use it).
pub fn mod97(text: &[u8]) -> u32 {
    let mut remainder: u32 = 0;
    for &byte in text {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte.saturating_sub(b'A')) + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder
}

/// An ABA routing transit number: nine digits, a Federal Reserve prefix, and the checksum
/// 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
pub fn is_aba_routing(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let prefix = digits[0] * 10 + digits[1];
    // 00 (government), 01-12 (banks), 21-32 (thrifts), 61-72 (electronic), 80 (traveller's
    // cheques): the only prefixes the Federal Reserve assigns.
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let d: Vec<u32> = digits.iter().map(|&d| u32::from(d)).collect();
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10) && d.iter().any(|&x| x != 0)
}

/// A US Social Security number's structure (SSA rules since 2011): area not 000, 666 or
/// 900-999; group not 00; serial not 0000; and not one of the numbers the SSA voided after they
/// were printed in advertising. SSNs have no check digit: callers also want context.
pub fn is_ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    let voided = matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !voided
}

/// Where an SSN-shaped candidate came from: written `AAA-GG-SSSS` (or with spaces), the shape
/// SSNs are printed in, or nine bare digits, which only a field name can vouch for.
pub fn ssn_is_formatted(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 11
        && (bytes[3] == b'-' && bytes[6] == b'-' || bytes[3] == b' ' && bytes[6] == b' ')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 3 || i == 6 || b.is_ascii_digit())
}

/// Phone numbers (ITU-T E.164 and common national formats). `context` says a field name calls
/// the value a phone number; without it only shapes people write phone numbers in count, so
/// bare digit strings (ids, counters, timestamps) are not phone numbers.
pub fn is_phone(text: &str, context: bool) -> bool {
    let Some(digits) = digits_of(text.strip_prefix('+').unwrap_or(text)) else {
        return false;
    };
    if !(7..=15).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    if text.starts_with('+') {
        // E.164: a country code never starts with 0, and the whole number is 8-15 digits.
        return digits[0] != 0 && digits.len() >= 8;
    }
    if context {
        return true;
    }
    is_nanp_formatted(text) || is_grouped_national(text)
}

/// `(NXX) NXX-XXXX`, `NXX-NXX-XXXX`, `NXX.NXX.XXXX`, `NXX NXX XXXX`: the North American
/// numbering plan, whose area code and exchange never start with 0 or 1.
fn is_nanp_formatted(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (area, rest) = if bytes.first() == Some(&b'(') {
        if bytes.len() < 6 || bytes[4] != b')' {
            return false;
        }
        let rest = text[5..].trim_start_matches(' ');
        (&text[1..4], rest)
    } else {
        if bytes.len() != 12 || !matches!(bytes[3], b'-' | b'.' | b' ') {
            return false;
        }
        (&text[..3], &text[4..])
    };
    let rest = rest.as_bytes();
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    area.len() == 3
        && all_digits(area.as_bytes())
        && matches!(area.as_bytes()[0], b'2'..=b'9')
        && rest.len() == 8
        && matches!(rest[3], b'-' | b'.' | b' ')
        && all_digits(&rest[..3])
        && all_digits(&rest[4..])
        && matches!(rest[0], b'2'..=b'9')
}

/// National numbers with a trunk prefix `0` written in groups (`020 7946 0958`, `06 12 34 56
/// 78`): a leading 0 followed by 9-10 digits in two to five groups.
fn is_grouped_national(text: &str) -> bool {
    let groups: Vec<&str> = text.split([' ', '-']).collect();
    if !(2..=5).contains(&groups.len()) || !groups.iter().all(|g| !g.is_empty()) {
        return false;
    }
    let digits: usize = groups.iter().map(|g| g.len()).sum();
    text.starts_with('0')
        && !text.starts_with("00")
        && (10..=11).contains(&digits)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
}

/// An email address's shape beyond what the pattern checks: a local part of at most 64 bytes,
/// domain labels that neither start nor end with `-`, and a top-level domain that is not a file
/// extension (`logo@2x.png` is an image name, not an address).
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return false;
    }
    let tld = labels.last().copied().unwrap_or("").to_ascii_lowercase();
    const FILE_EXTENSIONS: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "ico", "bmp", "tif", "tiff",
    ];
    tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && !FILE_EXTENSIONS.contains(&tld.as_str())
}

/// An IPv4 address in dotted-quad form: four decimal octets of at most 255, without leading
/// zeros (which some parsers read as octal: `010.0.0.1` is ambiguous, not an address). Loopback
/// and unspecified addresses name no one and are not reported.
pub fn is_ipv4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4
        && parts[0] != "127"
        && text != "0.0.0.0"
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// An IPv6 address as the standard library reads it, with at least two groups written out, so
/// times (`12:30:00`) and MAC-like ids are not addresses.
pub fn is_ipv6(text: &str) -> bool {
    text.split(':').filter(|group| !group.is_empty()).count() >= 2
        && text
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// A calendar date as people write birth dates: `YYYY-MM-DD`, `YYYY/MM/DD`, `MM/DD/YYYY`,
/// `DD.MM.YYYY` or `DD/MM/YYYY`, with a year between 1900 and 2100 and a real day of the
/// month.
pub fn is_date(text: &str) -> bool {
    let fields: Vec<&str> = text.split(['-', '/', '.']).collect();
    if fields.len() != 3 || !fields.iter().all(|f| f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let numbers: Vec<u32> = fields.iter().filter_map(|f| f.parse().ok()).collect();
    if numbers.len() != 3 {
        return false;
    }
    let (year, month, day) = match (fields[0].len(), fields[1].len(), fields[2].len()) {
        (4, 1..=2, 1..=2) => (numbers[0], numbers[1], numbers[2]),
        // Day and month are ambiguous in `xx/xx/YYYY`: accept it if either reading is a date.
        (1..=2, 1..=2, 4) => {
            let (a, b, year) = (numbers[0], numbers[1], numbers[2]);
            return valid_ymd(year, a, b) || valid_ymd(year, b, a);
        }
        _ => return false,
    };
    valid_ymd(year, month, day)
}

fn valid_ymd(year: u32, month: u32, day: u32) -> bool {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2100).contains(&year) && (1..=days).contains(&day)
}

/// ICAO 9303 check digit: weights 7, 3, 1 repeating; digits count as themselves, letters A-Z as
/// 10-35, the filler `<` as 0.
pub fn mrz_check_digit(field: &str) -> Option<u8> {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let mut sum = 0u32;
    for (i, byte) in field.bytes().enumerate() {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            b'A'..=b'Z' => u32::from(byte - b'A') + 10,
            b'<' => 0,
            _ => return None,
        };
        sum += value * WEIGHTS[i % 3];
    }
    u8::try_from(sum % 10).ok()
}

/// The second line of a passport's machine-readable zone (ICAO 9303 TD3, 44 characters): the
/// document number, birth date and expiry date each followed by its check digit. Returns the
/// document number (fillers trimmed) when all three check digits agree.
pub fn passport_mrz_line(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    if bytes.len() != 44 {
        return None;
    }
    let check = |field: std::ops::Range<usize>, digit: usize| {
        let expected = bytes[digit].checked_sub(b'0')?;
        (mrz_check_digit(&line[field])? == expected).then_some(())
    };
    check(0..9, 9)?;
    check(13..19, 19)?;
    check(21..27, 27)?;
    Some(line[..9].trim_end_matches('<'))
}

/// A Brazilian CPF: eleven digits, two mod-11 check digits, not all the same digit.
pub fn is_cpf(digits: &[u8]) -> bool {
    if digits.len() != 11 || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let check = |len: usize| {
        let sum: u32 = digits[..len]
            .iter()
            .enumerate()
            .map(|(i, &d)| u32::from(d) * (len as u32 + 1 - i as u32))
            .sum();
        let r = (sum * 10) % 11;
        if r == 10 {
            0
        } else {
            r
        }
    };
    check(9) == u32::from(digits[9]) && check(10) == u32::from(digits[10])
}

/// A Spanish DNI (`12345678Z`) or NIE (`X1234567L`): the letter is the number mod 23, looked up
/// in the table the Ministry of the Interior publishes.
pub fn is_dni_or_nie(text: &str) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let bytes = text.as_bytes();
    if bytes.len() != 9 {
        return false;
    }
    let lead = match bytes[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        b'0'..=b'9' => u32::from(bytes[0] - b'0'),
        _ => return false,
    };
    if !bytes[1..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let number = bytes[1..8]
        .iter()
        .fold(lead, |acc, &b| acc * 10 + u32::from(b - b'0'));
    LETTERS.get((number % 23) as usize) == Some(&bytes[8])
}

/// Verhoeff's dihedral-group check, used by India's Aadhaar numbers.
pub fn verhoeff(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut check = 0u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        if d > 9 {
            return false;
        }
        check = D[usize::from(check)][usize::from(P[i % 8][usize::from(d)])];
    }
    !digits.is_empty() && check == 0
}

/// An Aadhaar number: twelve digits, not starting with 0 or 1, Verhoeff check.
pub fn is_aadhaar(digits: &[u8]) -> bool {
    digits.len() == 12 && digits[0] >= 2 && verhoeff(digits)
}

/// A Chinese resident identity card number (GB 11643-1999): six region digits, a birth date,
/// three sequence digits and an ISO 7064 MOD 11-2 check character (`0`-`9` or `X`).
pub fn is_china_resident_id(text: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let bytes = text.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let birth = &text[6..14];
    let (Ok(year), Ok(month), Ok(day)) = (
        birth[..4].parse::<u32>(),
        birth[4..6].parse::<u32>(),
        birth[6..].parse::<u32>(),
    ) else {
        return false;
    };
    if !valid_ymd(year, month, day) {
        return false;
    }
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize) == Some(&bytes[17].to_ascii_uppercase())
}

/// A national id with a checksum: CPF, DNI/NIE, Aadhaar or Chinese resident id.
pub fn is_national_id(text: &str) -> bool {
    if is_dni_or_nie(text) || is_china_resident_id(text) {
        return true;
    }
    digits_of(text).is_some_and(|digits| is_cpf(&digits) || is_aadhaar(&digits))
}

/// Whether a national id candidate is written in a shape specific enough to report without a
/// field name: a punctuated CPF (`529.982.247-25`), a DNI/NIE's trailing letter, a Chinese id's
/// eighteen characters with a date inside, or an Aadhaar in its printed `XXXX XXXX XXXX`
/// groups. Eleven or twelve bare digits pass their checks one time in ten or eleven, so alone
/// they are not enough.
pub fn national_id_is_distinctive(text: &str) -> bool {
    let bytes = text.as_bytes();
    let cpf_formatted =
        bytes.len() == 14 && bytes[3] == b'.' && bytes[7] == b'.' && bytes[11] == b'-';
    let aadhaar_formatted = bytes.len() == 14 && bytes[4] == b' ' && bytes[9] == b' ';
    cpf_formatted || aadhaar_formatted || is_dni_or_nie(text) || is_china_resident_id(text)
}

/// A passport number as countries print them: 6-9 letters and digits with at least 5 digits.
/// Passport numbers carry no check digit of their own (only the MRZ does), so this is for values
/// a field name already calls passport numbers.
pub fn is_passport_number(text: &str) -> bool {
    (6..=9).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && text.bytes().filter(u8::is_ascii_digit).count() >= 5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<u8> {
        digits_of(text).unwrap().to_vec()
    }

    #[test]
    fn digits_are_read_up_to_the_most_any_number_has() {
        assert_eq!(digits("(12) 3-4.5/6"), [1, 2, 3, 4, 5, 6]);
        assert!(digits_of("").is_some_and(|d| d.is_empty()));
        assert!(digits_of("12a").is_none());
        let most = "9".repeat(MAX_DIGITS);
        assert_eq!(digits(&format!(" {most} ")).len(), MAX_DIGITS);
        assert!(digits_of(&format!("{most}9")).is_none());
        assert!(digits_of(&format!("{most}x")).is_none());
    }

    #[test]
    fn published_test_card_numbers_pass() {
        // The networks' and processors' published test numbers.
        for (number, network) in [
            ("4111111111111111", "visa"),
            ("4012888888881881", "visa"),
            ("4222222222222", "visa"),
            ("5555555555554444", "mastercard"),
            ("5105105105105100", "mastercard"),
            ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"),
            ("371449635398431", "amex"),
            ("6011111111111117", "discover"),
            ("6011000990139424", "discover"),
            ("3530111333300000", "jcb"),
            ("3566002020360505", "jcb"),
            ("30569309025904", "diners"),
            ("38520000023237", "diners"),
            ("6200000000000005", "unionpay"),
            ("4111 1111 1111 1111", "visa"),
            ("4111-1111-1111-1111", "visa"),
        ] {
            let d = digits(number);
            assert_eq!(card_network(&d), Some(network), "{number}");
            assert!(is_card_number(&d), "{number}");
        }
    }

    #[test]
    fn look_alike_card_numbers_fail() {
        for number in [
            "4111111111111112",     // Luhn fails
            "5555555555554440",     // Luhn fails
            "1234567812345670",     // passes Luhn; no network issues numbers starting with 1
            "9111111111111111",     // no network
            "41111111111",          // too short
            "41111111111111111111", // too long
            "378282246310005000",   // Amex prefix, wrong length
            "0000000000000000",     // passes Luhn; no network
        ] {
            assert!(!is_card_number(&digits(number)), "{number}");
        }
    }

    #[test]
    fn ibans_from_the_registry_examples_pass() {
        for iban in [
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "DE89370400440532013000",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "NO9386011117947",
            "CH9300762011623852957",
            "MT84MALT011000012345MTLCAST001S",
        ] {
            assert!(is_iban(iban), "{iban}");
        }
        for iban in [
            "GB82WEST12345698765431", // check digits disagree
            "GB82WEST1234569876543",  // one short for GB
            "XX82WEST12345698765432", // no such country
            "gb82west12345698765432", // IBANs are printed in upper case
            "DE89 3704 0044 0532 0130 0",
        ] {
            assert!(!is_iban(iban), "{iban}");
        }
    }

    #[test]
    fn aba_routing_numbers() {
        for number in [
            "021000021",
            "011000015",
            "122105155",
            "026009593",
            "121000358",
        ] {
            assert!(is_aba_routing(&digits(number)), "{number}");
        }
        for number in [
            "021000022",
            "123456789",
            "000000000",
            "991000021",
            "12345678",
        ] {
            assert!(!is_aba_routing(&digits(number)), "{number}");
        }
    }

    #[test]
    fn ssn_structure_rules() {
        for ssn in ["123-45-6789", "001-01-0001", "899-99-9999", "665-12-3456"] {
            assert!(is_ssn(&digits(ssn)), "{ssn}");
        }
        for ssn in [
            "000-12-3456", // area 000
            "666-12-3456", // area 666
            "900-12-3456", // area 900-999
            "999-12-3456",
            "123-00-4567", // group 00
            "123-45-0000", // serial 0000
            "078-05-1120", // voided: printed in a wallet advertisement
            "219-09-9999", // voided: printed in an SSA pamphlet
            "123-45-678",
        ] {
            assert!(!is_ssn(&digits(ssn)), "{ssn}");
        }
        assert!(ssn_is_formatted("123-45-6789"));
        assert!(ssn_is_formatted("123 45 6789"));
        assert!(!ssn_is_formatted("123456789"));
        assert!(!ssn_is_formatted("123-456-789"));
    }

    #[test]
    fn phone_numbers_need_a_phone_shape_or_a_field_name() {
        for phone in [
            "+1 415 555 2671",
            "+44 20 7946 0958",
            "+4915123456789",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "020 7946 0958",
            "06 12 34 56 78",
        ] {
            assert!(is_phone(phone, false), "{phone}");
        }
        for not_phone in [
            "4155552671", // bare digits: an id as likely as a phone number
            "20240115",
            "+0 123 4567",
            "123-456-7890", // area codes never start with 1
            "1111111111",
            "+123",
        ] {
            assert!(!is_phone(not_phone, false), "{not_phone}");
        }
        assert!(is_phone("4155552671", true));
    }

    #[test]
    fn emails() {
        for email in [
            "ann@example.com",
            "a.b+tag@mail.example.co.uk",
            "x_y@sub-domain.io",
        ] {
            assert!(is_email(email), "{email}");
        }
        for not_email in [
            "logo@2x.png",
            "a@b",
            "@example.com",
            "a@-x.com",
            "a..b@example.com",
            "a@example.c0m",
        ] {
            assert!(!is_email(not_email), "{not_email}");
        }
    }

    #[test]
    fn ip_addresses() {
        assert!(is_ipv4("192.168.1.20"));
        assert!(is_ipv4("8.8.8.8"));
        assert!(!is_ipv4("256.1.1.1"));
        assert!(!is_ipv4("010.0.0.1"));
        assert!(!is_ipv4("1.2.3"));
        assert!(!is_ipv4("127.0.0.1"), "loopback names no one");
        assert!(is_ipv6("2001:db8::8a2e:370:7334"));
        assert!(is_ipv6("fe80::1"));
        assert!(!is_ipv6("12:30:00"));
        assert!(!is_ipv6("::"));
    }

    #[test]
    fn dates() {
        for date in [
            "1985-04-12",
            "1985/4/12",
            "04/12/1985",
            "31.12.1999",
            "2000-02-29",
        ] {
            assert!(is_date(date), "{date}");
        }
        for not_date in [
            "1985-13-12",
            "1999-02-29",
            "31.13.1999",
            "1800-01-01",
            "12-04",
            "1985-04-12T00:00",
        ] {
            assert!(!is_date(not_date), "{not_date}");
        }
    }

    #[test]
    fn passport_machine_readable_zone_from_icao_9303() {
        // The specimen passport in ICAO Doc 9303 part 4.
        let line = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";
        assert_eq!(mrz_check_digit("L898902C3"), Some(6));
        assert_eq!(mrz_check_digit("740812"), Some(2));
        assert_eq!(mrz_check_digit("120415"), Some(9));
        assert_eq!(passport_mrz_line(line), Some("L898902C3"));
        let broken = "L898902C35UTO7408122F1204159ZE184226B<<<<<10";
        assert_eq!(passport_mrz_line(broken), None);
        assert!(is_passport_number("L898902C3"));
        assert!(!is_passport_number("ABCDEFGH"));
    }

    #[test]
    fn national_ids_with_checksums() {
        assert!(is_cpf(&digits("529.982.247-25")));
        assert!(!is_cpf(&digits("529.982.247-26")));
        assert!(!is_cpf(&digits("111.111.111-11")));
        assert!(is_dni_or_nie("12345678Z"));
        assert!(is_dni_or_nie("X1234567L"));
        assert!(!is_dni_or_nie("12345678A"));
        assert!(is_aadhaar(&digits("2341 2341 2346")));
        assert!(is_aadhaar(&digits("499118665246")));
        assert!(!is_aadhaar(&digits("234123412347")));
        assert!(!is_aadhaar(&digits("123412341234")));
        assert!(is_china_resident_id("11010519491231002X"));
        assert!(!is_china_resident_id("110105194912310021"));
        assert!(!is_china_resident_id("11010519491331002X"));
        assert!(national_id_is_distinctive("529.982.247-25"));
        assert!(!national_id_is_distinctive("52998224725"));
    }
}
