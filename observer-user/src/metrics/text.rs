//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines, then one
//! line per sample, `name{label="value",...} value`.
//!
//! Small enough to write by hand, and written here so that every byte the endpoint serves is
//! visible in one place: names and label names are the agent's own constants (checked in debug
//! builds and by the tests), label values are escaped.

use std::fmt::Write as _;

/// Content type of the format, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// A sample's value: counts are exact integers, times are seconds with a fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

/// Writes one exposition. Call [`Encoder::family`] once per metric, then [`Encoder::sample`]
/// for each of its samples, before the next family.
#[derive(Debug, Default)]
pub struct Encoder {
    out: String,
    /// The family being written, to check samples belong to it.
    current: Option<&'static str>,
}

impl Encoder {
    /// Start a metric: its HELP and TYPE lines.
    pub fn family(&mut self, name: &'static str, kind: MetricType, help: &str) {
        debug_assert!(is_valid_name(name), "bad metric name {name:?}");
        self.current = Some(name);
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the current family.
    pub fn sample(&mut self, labels: &[(&'static str, &str)], value: impl Into<Value>) {
        let name = self.current.unwrap_or("observer_unnamed");
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                debug_assert!(is_valid_label_name(label), "bad label name {label:?}");
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(value));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Float(x) => self.out.push_str(&float(x)),
        }
        self.out.push('\n');
    }

    /// A family with one unlabelled sample.
    pub fn single(
        &mut self,
        name: &'static str,
        kind: MetricType,
        help: &str,
        value: impl Into<Value>,
    ) {
        self.family(name, kind, help);
        self.sample(&[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// Label values: backslash, double quote and line feed escaped.
fn escape_label_value(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// Go's `strconv.FormatFloat(x, 'g', -1, 64)` spellings for the special values; Rust's
/// shortest round-trip form otherwise.
fn float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{x}")
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with `__` (reserved by Prometheus).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_has_help_type_and_samples() {
        let mut encoder = Encoder::default();
        encoder.family(
            "observer_api_calls_total",
            MetricType::Counter,
            "API calls reported.",
        );
        encoder.sample(&[("role", "client"), ("status", "complete")], 3u64);
        encoder.sample(&[("role", "server"), ("status", "complete")], 4u64);
        encoder.single(
            "observer_uptime_seconds",
            MetricType::Gauge,
            "Since the agent started.",
            1.5,
        );
        assert_eq!(
            encoder.finish(),
            "# HELP observer_api_calls_total API calls reported.\n\
             # TYPE observer_api_calls_total counter\n\
             observer_api_calls_total{role=\"client\",status=\"complete\"} 3\n\
             observer_api_calls_total{role=\"server\",status=\"complete\"} 4\n\
             # HELP observer_uptime_seconds Since the agent started.\n\
             # TYPE observer_uptime_seconds gauge\n\
             observer_uptime_seconds 1.5\n"
        );
    }

    #[test]
    fn help_and_label_values_are_escaped() {
        let mut encoder = Encoder::default();
        encoder.family(
            "observer_x",
            MetricType::Gauge,
            "a \\ backslash\nand a line feed",
        );
        encoder.sample(&[("type", "a\"b\\c\nd")], 1u64);
        let text = encoder.finish();
        assert!(text.contains("# HELP observer_x a \\\\ backslash\\nand a line feed\n"));
        assert!(text.contains("observer_x{type=\"a\\\"b\\\\c\\nd\"} 1\n"));
        // Every line is one line: nothing from a value can start another.
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn special_floats_are_spelled_as_prometheus_reads_them() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(0.25), "0.25");
        assert_eq!(float(3.0), "3");
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name("observer_events_lost_total"));
        assert!(is_valid_name("ns:metric_1"));
        assert!(!is_valid_name("1metric"));
        assert!(!is_valid_name("observer-events"));
        assert!(!is_valid_name(""));
        assert!(is_valid_label_name("reason"));
        assert!(!is_valid_label_name("__name__"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("1a"));
    }
}
