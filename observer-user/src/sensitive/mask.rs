//! How a recognised value is shown once hidden: the one place that decides, for redaction and
//! for findings' evidence alike.
//!
//! Card numbers keep at most their first six and last four digits (what PCI DSS allows to be
//! displayed: the issuer and the digits on a receipt). Everything else becomes
//! `[REDACTED:<type>:<tag>]`, where the tag is a keyed hash of the value (`keyed`), so the same
//! value can be followed across calls without being shown.

use super::{
    keyed::HashKey,
    types::{DataType, TypeRef},
};

/// Shortest card number shown with its first six digits: below this, six plus four would show
/// all but a couple of digits, so only the last four are kept.
const MIN_DIGITS_FOR_FIRST_SIX: usize = 15;

/// What a recognised value is replaced with.
pub fn mask(key: &HashKey, kind: TypeRef, type_name: &str, value: &str) -> String {
    if kind == TypeRef::Builtin(DataType::CardNumber) {
        return mask_card(value);
    }
    format!(
        "[REDACTED:{type_name}:{}]",
        key.tag(type_name, &normalize(kind, value))
    )
}

/// `4111 1111 1111 1111` → `411111******1111`.
pub fn mask_card(value: &str) -> String {
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n < 4 {
        return "*".repeat(n);
    }
    let shown_first = if n >= MIN_DIGITS_FOR_FIRST_SIX { 6 } else { 0 };
    let mut out = String::with_capacity(n);
    out.extend(&digits[..shown_first]);
    out.extend(std::iter::repeat_n('*', n - shown_first - 4));
    out.extend(&digits[n - 4..]);
    out
}

/// One spelling per value, so the same value written two ways gets one tag.
fn normalize(kind: TypeRef, value: &str) -> String {
    match kind {
        TypeRef::Builtin(
            DataType::Phone
            | DataType::Ssn
            | DataType::RoutingNumber
            | DataType::NationalId
            | DataType::AccountId,
        ) => value
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_uppercase(),
        TypeRef::Builtin(DataType::Email | DataType::Iban) => value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_keep_at_most_first_six_and_last_four() {
        assert_eq!(mask_card("4111 1111 1111 1111"), "411111******1111");
        assert_eq!(mask_card("378282246310005"), "378282*****0005");
        assert_eq!(mask_card("4222222222222"), "*********2222");
    }

    #[test]
    fn other_values_become_tags_that_follow_the_value() {
        let key = HashKey::from_bytes([7; 32]);
        let email = TypeRef::Builtin(DataType::Email);
        let a = mask(&key, email, "email", "Ann@Example.com");
        assert!(
            a.starts_with("[REDACTED:email:") && !a.contains("Ann"),
            "{a}"
        );
        assert_eq!(a, mask(&key, email, "email", "ann@example.com"));
        let ssn = TypeRef::Builtin(DataType::Ssn);
        assert_eq!(
            mask(&key, ssn, "ssn", "123-45-6789"),
            mask(&key, ssn, "ssn", "123456789")
        );
    }
}
