//! The API calls the agent reported, and expectations about them with failure messages that
//! say what was seen instead.
//!
//! A call is kept as the JSON the agent wrote (observer-user's `model::ApiCall`), read through
//! accessors named after its fields, so these tests read the same output a user does.

use std::fmt;

use anyhow::{bail, Context};
use serde_json::Value;

/// One line of the agent's JSON output.
#[derive(Debug, Clone, PartialEq)]
pub struct Call(pub Value);

/// The side of a call: which end of the connection the reporting process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// Parse the agent's output: one JSON object per line, keeping the API calls (`event.name`
/// `api.call`; findings and inventory changes share the stream). A line that is not complete
/// yet (the agent is still writing it) is left for the next read.
pub fn parse_calls(text: &str) -> anyhow::Result<Vec<Call>> {
    Ok(parse_events(text)?
        .into_iter()
        .filter(|event| event.str("event.name") == Some("api.call"))
        .collect())
}

/// Every object of the output stream, whatever its `event.name`.
pub fn parse_events(text: &str) -> anyhow::Result<Vec<Call>> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("output line {} is not JSON: {line}", i + 1))?;
            if !value.is_object() {
                bail!("output line {} is not a JSON object: {line}", i + 1);
            }
            Ok(Call(value))
        })
        .collect()
}

impl Call {
    pub fn str(&self, field: &str) -> Option<&str> {
        self.0.get(field)?.as_str()
    }

    pub fn u64(&self, field: &str) -> Option<u64> {
        self.0.get(field)?.as_u64()
    }

    pub fn role(&self) -> Option<&str> {
        self.str("role")
    }

    pub fn method(&self) -> Option<&str> {
        self.str("http.request.method")
    }

    pub fn path(&self) -> Option<&str> {
        self.str("url.path")
    }

    pub fn status_code(&self) -> Option<u64> {
        self.u64("http.response.status_code")
    }

    pub fn observer_status(&self) -> Option<&str> {
        self.str("observer.status")
    }

    pub fn pid(&self) -> Option<u64> {
        self.u64("process.pid")
    }

    pub fn executable_name(&self) -> Option<&str> {
        self.str("process.executable.name")
    }

    pub fn connection(&self) -> Option<&str> {
        self.str("observer.connection")
    }

    pub fn tls(&self) -> Option<bool> {
        self.0.get("tls")?.as_bool()
    }

    pub fn tls_library(&self) -> Option<&str> {
        self.str("tls.library")
    }

    pub fn server_port(&self) -> Option<u64> {
        self.u64("server.port")
    }

    pub fn client_port(&self) -> Option<u64> {
        self.u64("client.port")
    }

    /// `http.response.body.size`.
    pub fn response_body_size(&self) -> Option<u64> {
        self.0.get("http.response.body")?.get("size")?.as_u64()
    }

    /// `http.response.body.preview`.
    pub fn response_body_preview(&self) -> Option<&str> {
        self.0.get("http.response.body")?.get("preview")?.as_str()
    }

    /// `http.response.body.truncated`.
    pub fn response_body_truncated(&self) -> Option<bool> {
        self.0
            .get("http.response.body")?
            .get("truncated")?
            .as_bool()
    }

    /// The values of response header `name` (lowercase).
    pub fn response_header(&self, name: &str) -> Vec<&str> {
        header(&self.0, "http.response.header", name)
    }

    /// The values of request header `name` (lowercase).
    pub fn request_header(&self, name: &str) -> Vec<&str> {
        header(&self.0, "http.request.header", name)
    }

    /// What the call was, for comparing a replay with the live run.
    pub fn identity(&self) -> CallIdentity {
        let owned = |s: Option<&str>| s.map(str::to_string);
        CallIdentity {
            method: owned(self.method()),
            path: owned(self.path()),
            status_code: self.status_code(),
            role: owned(self.role()),
            pid: self.pid(),
        }
    }
}

/// Method, path, status, role and pid: what a call was, whatever its timing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallIdentity {
    pub method: Option<String>,
    pub path: Option<String>,
    pub status_code: Option<u64>,
    pub role: Option<String>,
    pub pid: Option<u64>,
}

fn header<'a>(call: &'a Value, map: &str, name: &str) -> Vec<&'a str> {
    call.get(map)
        .and_then(|headers| headers.get(name))
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// One line per call: enough to see at a glance what the agent reported.
impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |v: Option<&str>| v.unwrap_or("?").to_string();
        let num = |v: Option<u64>| v.map_or("?".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {} pid {} {} {} -> {} [{}] {}:{} conn {}",
            or(self.role()),
            or(self.executable_name()),
            num(self.pid()),
            or(self.method()),
            or(self.path()),
            num(self.status_code()),
            or(self.observer_status()),
            num(self.client_port()),
            num(self.server_port()),
            or(self.connection()),
        )?;
        if self.tls() == Some(true) {
            write!(f, " tls {}", or(self.tls_library()))?;
        }
        if let Some(size) = self.response_body_size() {
            let preview: String = self
                .response_body_preview()
                .unwrap_or("")
                .chars()
                .take(40)
                .collect();
            write!(f, " body {size} B {preview:?}")?;
            if self.response_body_truncated() == Some(true) {
                write!(f, " (truncated)")?;
            }
        }
        if let Some(incomplete) = self.0.get("observer.incomplete") {
            write!(f, " incomplete {incomplete}")?;
        }
        Ok(())
    }
}

/// Every call, numbered, one per line: the body of every failure message.
pub fn list(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "  (no calls at all)\n".to_string();
    }
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| format!("  #{i} {c}\n"))
        .collect()
}

/// The calls process `pid` made as a client.
pub fn client_calls_of(calls: &[Call], pid: u32) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.role() == Some("client") && c.pid() == Some(u64::from(pid)))
        .collect()
}

/// The first call `matches` accepts; the error names `what` was looked for and lists every
/// call seen.
pub fn find_call<'a>(
    calls: &'a [Call],
    what: &str,
    matches: impl Fn(&Call) -> bool,
) -> anyhow::Result<&'a Call> {
    match calls.iter().find(|c| matches(c)) {
        Some(call) => Ok(call),
        None => bail!(
            "no call is {what}; the {} calls seen:\n{}",
            calls.len(),
            list(calls)
        ),
    }
}

/// What a test expects of one call. Every field left unset matches anything; the observer
/// status must be `complete` unless said otherwise.
#[derive(Debug, Clone)]
pub struct Expect {
    role: Role,
    method: Option<String>,
    path: Option<String>,
    status_code: Option<u64>,
    observer_status: Option<String>,
    executable_name: Option<String>,
    pid: Option<u32>,
    body_prefix: Option<String>,
    body_size: Option<u64>,
    body_truncated: Option<bool>,
    tls_library: Option<Option<String>>,
    server_port: Option<u16>,
    client_port: Option<u16>,
    connection: Option<String>,
}

impl Expect {
    pub fn client() -> Expect {
        Expect::new(Role::Client)
    }

    pub fn server() -> Expect {
        Expect::new(Role::Server)
    }

    fn new(role: Role) -> Expect {
        Expect {
            role,
            method: None,
            path: None,
            status_code: None,
            observer_status: Some("complete".to_string()),
            executable_name: None,
            pid: None,
            body_prefix: None,
            body_size: None,
            body_truncated: None,
            tls_library: None,
            server_port: None,
            client_port: None,
            connection: None,
        }
    }

    /// `GET /path -> 200`.
    pub fn get(self, path: &str, status: u16) -> Expect {
        Expect {
            method: Some("GET".into()),
            path: Some(path.into()),
            status_code: Some(u64::from(status)),
            ..self
        }
    }

    /// Made by this process: its executable name and pid.
    pub fn process(self, executable_name: &str, pid: u32) -> Expect {
        Expect {
            executable_name: Some(executable_name.into()),
            pid: Some(pid),
            ..self
        }
    }

    pub fn body_prefix(self, prefix: &str) -> Expect {
        Expect {
            body_prefix: Some(prefix.into()),
            ..self
        }
    }

    pub fn body_size(self, size: u64) -> Expect {
        Expect {
            body_size: Some(size),
            ..self
        }
    }

    pub fn body_truncated(self, truncated: bool) -> Expect {
        Expect {
            body_truncated: Some(truncated),
            ..self
        }
    }

    /// Over TLS by this library (`tls: true`, `tls.library`).
    pub fn tls(self, library: &str) -> Expect {
        Expect {
            tls_library: Some(Some(library.into())),
            ..self
        }
    }

    /// In plaintext (`tls: false`).
    pub fn plaintext(self) -> Expect {
        Expect {
            tls_library: Some(None),
            ..self
        }
    }

    pub fn server_port(self, port: u16) -> Expect {
        Expect {
            server_port: Some(port),
            ..self
        }
    }

    pub fn client_port(self, port: u16) -> Expect {
        Expect {
            client_port: Some(port),
            ..self
        }
    }

    pub fn connection(self, connection: &str) -> Expect {
        Expect {
            connection: Some(connection.into()),
            ..self
        }
    }

    /// What differs between this expectation and `call`, one entry per field; empty if it
    /// matches.
    pub fn mismatches(&self, call: &Call) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |field: &str, wanted: String, got: String| {
            if wanted != got {
                out.push(format!("{field} is {got}, not {wanted}"));
            }
        };
        let show = |v: Option<&str>| v.map_or("missing".to_string(), |s| format!("{s:?}"));
        let show_n = |v: Option<u64>| v.map_or("missing".to_string(), |n| n.to_string());
        check(
            "role",
            format!("{:?}", self.role.as_str()),
            show(call.role()),
        );
        if let Some(method) = &self.method {
            check(
                "http.request.method",
                format!("{method:?}"),
                show(call.method()),
            );
        }
        if let Some(path) = &self.path {
            check("url.path", format!("{path:?}"), show(call.path()));
        }
        if let Some(status) = self.status_code {
            check(
                "http.response.status_code",
                status.to_string(),
                show_n(call.status_code()),
            );
        }
        if let Some(status) = &self.observer_status {
            check(
                "observer.status",
                format!("{status:?}"),
                show(call.observer_status()),
            );
        }
        if let Some(name) = &self.executable_name {
            check(
                "process.executable.name",
                format!("{name:?}"),
                show(call.executable_name()),
            );
        }
        if let Some(pid) = self.pid {
            check("process.pid", pid.to_string(), show_n(call.pid()));
        }
        if let Some(size) = self.body_size {
            check(
                "http.response.body.size",
                size.to_string(),
                show_n(call.response_body_size()),
            );
        }
        if let Some(truncated) = self.body_truncated {
            check(
                "http.response.body.truncated",
                truncated.to_string(),
                call.response_body_truncated()
                    .map_or("missing".into(), |t| t.to_string()),
            );
        }
        if let Some(library) = &self.tls_library {
            let tls = call.tls().map_or("missing".into(), |t| t.to_string());
            check("tls", library.is_some().to_string(), tls);
            if let Some(library) = library {
                check(
                    "tls.library",
                    format!("{library:?}"),
                    show(call.tls_library()),
                );
            }
        }
        if let Some(port) = self.server_port {
            check("server.port", port.to_string(), show_n(call.server_port()));
        }
        if let Some(port) = self.client_port {
            check("client.port", port.to_string(), show_n(call.client_port()));
        }
        if let Some(connection) = &self.connection {
            check(
                "observer.connection",
                format!("{connection:?}"),
                show(call.connection()),
            );
        }
        if let Some(prefix) = &self.body_prefix {
            let preview = call.response_body_preview();
            if !preview.is_some_and(|p| p.starts_with(prefix.as_str())) {
                let shown = preview.map_or("missing".to_string(), |p| {
                    format!(
                        "{:?}",
                        p.chars()
                            .take(prefix.chars().count() + 20)
                            .collect::<String>()
                    )
                });
                out.push(format!(
                    "http.response.body.preview starts {shown}, not {prefix:?}"
                ));
            }
        }
        out
    }

    pub fn matches(&self, call: &Call) -> bool {
        self.mismatches(call).is_empty()
    }

    /// The first call that matches. The error lists every call seen, each with what differs
    /// from this expectation.
    pub fn find<'a>(&self, calls: &'a [Call]) -> anyhow::Result<&'a Call> {
        if let Some(call) = calls.iter().find(|c| self.matches(c)) {
            return Ok(call);
        }
        let mut report = String::new();
        for (i, call) in calls.iter().enumerate() {
            report.push_str(&format!(
                "  #{i} {call}\n      differs: {}\n",
                self.mismatches(call).join("; ")
            ));
        }
        if calls.is_empty() {
            report.push_str("  (no calls at all)\n");
        }
        bail!(
            "expected {self}\nbut no call matches; the {} calls seen:\n{report}",
            calls.len()
        )
    }

    /// Every call that matches, in output order.
    pub fn find_all<'a>(&self, calls: &'a [Call]) -> Vec<&'a Call> {
        calls.iter().filter(|c| self.matches(c)).collect()
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} call", self.role.as_str())?;
        if let Some(method) = &self.method {
            write!(f, " {method}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " {path}")?;
        }
        if let Some(status) = self.status_code {
            write!(f, " -> {status}")?;
        }
        if let Some(status) = &self.observer_status {
            write!(f, " [{status}]")?;
        }
        if let (Some(name), Some(pid)) = (&self.executable_name, self.pid) {
            write!(f, " from {name} (pid {pid})")?;
        }
        match &self.tls_library {
            Some(Some(library)) => write!(f, " over TLS ({library})")?,
            Some(None) => write!(f, " in plaintext")?,
            None => {}
        }
        if let Some(prefix) = &self.body_prefix {
            write!(f, ", response body starting {prefix:?}")?;
        }
        if let Some(size) = self.body_size {
            write!(f, ", response body of {size} bytes")?;
        }
        if let Some(truncated) = self.body_truncated {
            write!(f, " (preview truncated: {truncated})")?;
        }
        if let Some(port) = self.server_port {
            write!(f, ", server port {port}")?;
        }
        if let Some(port) = self.client_port {
            write!(f, ", client port {port}")?;
        }
        if let Some(connection) = &self.connection {
            write!(f, ", on connection {connection}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(json: &str) -> Call {
        Call(serde_json::from_str(json).expect("test JSON"))
    }

    #[test]
    fn a_partial_last_line_waits_for_the_next_read() {
        let text = "{\"event.name\":\"api.call\",\"role\":\"client\"}\n{\"event.name\":\"api.call\",\"role\":\"ser";
        assert_eq!(parse_calls(text).expect("parses").len(), 1);
    }

    #[test]
    fn only_api_calls_are_calls() {
        let text = "{\"event.name\":\"api.inventory.change\"}\n{\"event.name\":\"api.call\"}\n";
        assert_eq!(parse_calls(text).expect("parses").len(), 1);
        assert_eq!(parse_events(text).expect("parses").len(), 2);
    }

    #[test]
    fn mismatches_name_each_field_that_differs() {
        let c = call(
            r#"{"role":"client","http.request.method":"GET","url.path":"/a","http.response.status_code":404,
                "observer.status":"complete","process.pid":7,"process.executable.name":"curl","tls":false,
                "http.response.body":{"size":5,"preview":"nope\n","truncated":false}}"#,
        );
        let expect = Expect::client()
            .get("/a", 200)
            .process("curl", 7)
            .body_prefix("yes")
            .plaintext();
        let mismatches = expect.mismatches(&c);
        assert_eq!(mismatches.len(), 2, "{mismatches:?}");
        assert!(
            mismatches[0].contains("status_code is 404, not 200"),
            "{mismatches:?}"
        );
        assert!(
            mismatches[1].contains("preview starts \"nope\\n\""),
            "{mismatches:?}"
        );
        let error = expect
            .find(std::slice::from_ref(&c))
            .expect_err("must not match")
            .to_string();
        assert!(
            error.contains("#0 client curl pid 7 GET /a -> 404"),
            "{error}"
        );
        assert!(Expect::client()
            .get("/a", 404)
            .body_prefix("nope")
            .matches(&c));
        assert!(!Expect::server().matches(&c));
    }
}
