//! Server-side request forgery: a URL in a parameter that points the server at itself, at its
//! link-local neighbours, or at the cloud's metadata service.
//!
//! Regexes are the wrong tool here: `http://2130706433/`, `http://0x7f.1/`, `http://[::ffff:7f00:1]/`
//! and `http://user@127.0.0.1:80@evil/` all reach loopback, and attackers send exactly those to
//! get past filters that look for `127.0.0.1`. So the URL's authority is taken apart the way
//! URL libraries and `inet_aton` read it, and the address it names is classified. Only values
//! that *are* URLs count (a sentence mentioning `http://localhost:3000` is not a request for
//! the server to fetch it), and URLs nested in them are followed (open-redirect chains).

use std::net::{Ipv4Addr, Ipv6Addr};

/// What a URL reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Loopback,
    LinkLocal,
    CloudMetadata,
    /// A scheme servers should never fetch on a user's behalf (`gopher:`, `file:`, `dict:`).
    DangerousScheme,
}

impl Target {
    /// The rule name a finding gives.
    pub fn rule(self) -> &'static str {
        match self {
            Target::Loopback => "loopback_url",
            Target::LinkLocal => "link_local_url",
            Target::CloudMetadata => "cloud_metadata_url",
            Target::DangerousScheme => "dangerous_scheme",
        }
    }
}

/// URLs looked at in one value: a value is one URL, or a few nested in each other.
const MAX_URLS_PER_VALUE: usize = 8;

/// Schemes that make a server read files or speak raw protocols to internal services.
const DANGEROUS_SCHEMES: &[&str] = &[
    "gopher", "dict", "file", "ldap", "ldaps", "tftp", "jar", "netdoc", "phar", "expect",
];

/// Names of the cloud metadata services.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata",
    "metadata.azure.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// Public names that resolve to loopback, used to dodge address filters.
const LOOPBACK_NAMES: &[&str] = &["localhost", "localtest.me", "lvh.me", "ip6-localhost"];

/// Wildcard DNS services that resolve `<address>.nip.io` to `<address>`.
const WILDCARD_DNS: &[&str] = &["nip.io", "sslip.io", "xip.io"];

/// The worst target among the URLs `value` is or holds; `None` for values that are not URLs or
/// reach only ordinary hosts.
pub fn classify(value: &str) -> Option<(Target, &str)> {
    let value = value.trim();
    if !starts_with_url(value) {
        return None;
    }
    let mut worst: Option<(Target, &str)> = None;
    if value.starts_with("//") {
        // Scheme-relative: the server fills in its own scheme.
        worst = classify_url(value).map(|t| (t, value));
    }
    let mut rest = value;
    for _ in 0..MAX_URLS_PER_VALUE {
        let Some(url) = next_url(rest) else {
            break;
        };
        if let Some(target) = classify_url(url) {
            let rank = |t: Target| match t {
                Target::CloudMetadata => 3,
                Target::DangerousScheme => 2,
                Target::Loopback | Target::LinkLocal => 1,
            };
            if worst.is_none_or(|(w, _)| rank(target) > rank(w)) {
                worst = Some((target, url));
            }
        }
        // Past this URL's scheme: a nested one may follow in its path or query.
        let Some(at) = rest.find("://") else {
            break;
        };
        rest = &rest[at + 3..];
    }
    worst
}

fn starts_with_url(value: &str) -> bool {
    if value.starts_with("//") {
        return true;
    }
    let Some(colon) = value.find(':') else {
        return false;
    };
    let scheme = &value[..colon];
    (1..=16).contains(&scheme.len())
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && (value[colon..].starts_with("://")
            || DANGEROUS_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// The first URL in `text`: from its scheme (or `//`) to the end of its authority and path.
fn next_url(text: &str) -> Option<&str> {
    let at = text.find("://")?;
    let scheme_start = text[..at]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1);
    let end = text[at + 3..]
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
        .map_or(text.len(), |i| at + 3 + i);
    Some(&text[scheme_start..end])
}

fn classify_url(url: &str) -> Option<Target> {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or(("", url.trim_start_matches('/')));
    let scheme = scheme.to_ascii_lowercase();
    if DANGEROUS_SCHEMES.contains(&scheme.as_str()) {
        return Some(Target::DangerousScheme);
    }
    let authority_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Userinfo ends at the last `@`: `http://a@b@127.0.0.1/` reaches 127.0.0.1.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        // Without the zone (`fe80::1%25eth0`), which names an interface, not an address.
        let address = v6.split(']').next().unwrap_or("");
        address.split('%').next().unwrap_or(address)
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    classify_host(&host.trim_end_matches('.').to_ascii_lowercase())
}

/// What a host name or address reaches.
pub fn classify_host(host: &str) -> Option<Target> {
    if host.is_empty() {
        return None;
    }
    if METADATA_HOSTS.contains(&host) {
        return Some(Target::CloudMetadata);
    }
    if LOOPBACK_NAMES.contains(&host)
        || host.ends_with(".localhost")
        || host.ends_with(".localtest.me")
        || host.ends_with(".lvh.me")
    {
        return Some(Target::Loopback);
    }
    for service in WILDCARD_DNS {
        if let Some(prefix) = host.strip_suffix(service).and_then(|h| h.strip_suffix('.')) {
            // `app.127.0.0.1.nip.io` and `127-0-0-1.nip.io` both name 127.0.0.1.
            let candidate = prefix.rsplit('.').take(4).collect::<Vec<_>>();
            let dotted: String = candidate
                .iter()
                .rev()
                .copied()
                .collect::<Vec<_>>()
                .join(".");
            let dashed = prefix.rsplit('.').next().unwrap_or("").replace('-', ".");
            return [dotted, dashed]
                .iter()
                .filter_map(|a| a.parse::<Ipv4Addr>().ok())
                .find_map(classify_v4);
        }
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return classify_v6(v6);
    }
    lenient_ipv4(host).and_then(classify_v4)
}

fn classify_v4(address: Ipv4Addr) -> Option<Target> {
    let [a, b, c, d] = address.octets();
    match (a, b, c, d) {
        (169, 254, 169, 254) | (100, 100, 100, 200) | (169, 254, 170, 2) => {
            Some(Target::CloudMetadata)
        }
        (127, ..) | (0, ..) => Some(Target::Loopback),
        (169, 254, ..) => Some(Target::LinkLocal),
        _ => None,
    }
}

fn classify_v6(address: Ipv6Addr) -> Option<Target> {
    if let Some(v4) = address.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = address.segments();
    if address.is_loopback() || address.is_unspecified() {
        Some(Target::Loopback)
    } else if segments == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        // AWS's IPv6 instance metadata endpoint.
        Some(Target::CloudMetadata)
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some(Target::LinkLocal)
    } else {
        None
    }
}

/// An IPv4 address as `inet_aton` reads it: one to four parts, each decimal, octal (leading
/// 0) or hex (0x), the last filling the remaining bytes (`127.1`, `2130706433`, `0x7f.0.0.1`).
fn lenient_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (*part, 10)
        };
        if digits.is_empty() && radix != 16 {
            return None;
        }
        let value = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        values.push(value);
    }
    let (last, leading) = values.split_last()?;
    let mut address: u64 = 0;
    for (i, value) in leading.iter().enumerate() {
        if *value > 255 {
            return None;
        }
        address |= value << (24 - 8 * i);
    }
    let remaining_bits = 32 - 8 * leading.len();
    if *last >= 1u64 << remaining_bits {
        return None;
    }
    address |= last;
    u32::try_from(address).ok().map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(value: &str) -> Option<Target> {
        classify(value).map(|(t, _)| t)
    }

    #[test]
    fn loopback_in_every_spelling() {
        for url in [
            "http://127.0.0.1/admin",
            "http://localhost:8080/",
            "https://LOCALHOST./x",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://[::1]:80/",
            "http://[::ffff:127.0.0.1]/",
            "http://user:pw@127.0.0.1/",
            "http://good.com@127.0.0.1/",
            "http://app.127.0.0.1.nip.io/",
            "http://127-0-0-1.sslip.io/",
            "//localhost/x",
            "http://foo.localhost/",
        ] {
            assert_eq!(target(url), Some(Target::Loopback), "{url}");
        }
    }

    #[test]
    fn metadata_and_link_local() {
        assert_eq!(
            target("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
            Some(Target::CloudMetadata)
        );
        assert_eq!(
            target("http://metadata.google.internal/computeMetadata/v1/"),
            Some(Target::CloudMetadata)
        );
        assert_eq!(
            target("http://[fd00:ec2::254]/"),
            Some(Target::CloudMetadata)
        );
        assert_eq!(target("http://0xa9fea9fe/"), Some(Target::CloudMetadata));
        assert_eq!(target("http://169.254.10.1/"), Some(Target::LinkLocal));
        assert_eq!(target("http://[fe80::1%25eth0]/"), Some(Target::LinkLocal));
        assert_eq!(target("http://[fe80::1]/"), Some(Target::LinkLocal));
    }

    #[test]
    fn dangerous_schemes_and_nested_urls() {
        assert_eq!(
            target("gopher://10.0.0.1:6379/_FLUSHALL"),
            Some(Target::DangerousScheme)
        );
        assert_eq!(target("file:///etc/passwd"), Some(Target::DangerousScheme));
        assert_eq!(
            target("https://partner.example.com/redirect?to=http://169.254.169.254/"),
            Some(Target::CloudMetadata)
        );
    }

    #[test]
    fn ordinary_urls_and_text_are_not_ssrf() {
        for value in [
            "https://hooks.example.com/services/T000/B000",
            "https://api.github.com/repos/x/y",
            "http://10.0.0.5:8080/internal",
            "http://192.168.1.20/",
            "https://127.example.com/",
            "http://1.2.3.4/",
            "see http://localhost:3000 for the dev server",
            "localhost",
            "mailto:someone@example.com",
            "urn:isbn:0451450523",
            "12:30",
            "http://",
        ] {
            assert_eq!(target(value), None, "{value}");
        }
    }

    #[test]
    fn lenient_ipv4_forms() {
        assert_eq!(lenient_ipv4("127.0.0.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(lenient_ipv4("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(lenient_ipv4("256.1.1.1"), None);
        assert_eq!(lenient_ipv4("1.2.3.4.5"), None);
        assert_eq!(lenient_ipv4("example"), None);
        assert_eq!(lenient_ipv4("0x"), Some(Ipv4Addr::new(0, 0, 0, 0)));
        assert_eq!(lenient_ipv4("09"), None);
    }
}
