//! Writing API calls out: JSON lines for machines, one compact line per call for people.
//!
//! The last stage. Calls arrive already redacted; a sink only formats and writes.

mod call_json;

use std::io::{self, Write};

use crate::{conn::Role, model::ApiCall, output::Output};

/// Where the output stream goes.
pub trait Sink {
    fn write(&mut self, output: &Output) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// Output formats of `observer run` and `observer replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Json,
    /// One short human-readable line per call.
    Pretty,
}

/// JSON lines: one object per call, `event.name` first.
pub struct JsonLines<W: Write> {
    out: W,
    /// The line being written, reused. serde_json writes a line in dozens of small pieces (each
    /// quote, colon and comma): appending them to a Vec is an inlined copy, where a `BufWriter`
    /// costs a call and a capacity check each (a tenth of replay time went there).
    line: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines {
            out,
            line: Vec::new(),
        }
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn write(&mut self, output: &Output) -> io::Result<()> {
        self.line.clear();
        match output {
            Output::Call(call) => call_json::write_call(call, &mut self.line)?,
            other => serde_json::to_writer(&mut self.line, other).map_err(io::Error::other)?,
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `18:02:11.104 server nginx[812] 127.0.0.1:53122 -> 127.0.0.1:80 GET /api/v1/users?page=2 200 1.2ms tls`
pub struct Pretty<W: Write> {
    out: W,
}

impl<W: Write> Pretty<W> {
    pub fn new(out: W) -> Pretty<W> {
        Pretty { out }
    }
}

/// One line for a call, without a trailing newline.
pub fn pretty_line(call: &ApiCall) -> String {
    let time = call.timestamp.get(11..23).unwrap_or(&call.timestamp);
    let role = match call.role {
        Some(Role::Client) => "client",
        Some(Role::Server) => "server",
        None => "?",
    };
    let endpoint = |address: &Option<String>, port: Option<u16>| match (address, port) {
        (Some(address), Some(port)) if address.contains(':') => format!("[{address}]:{port}"),
        (Some(address), Some(port)) => format!("{address}:{port}"),
        (Some(address), None) => address.clone(),
        (None, Some(port)) => format!(":{port}"),
        (None, None) => "-".to_string(),
    };
    let mut line = format!(
        "{time} {role} {}[{}] {} -> {} {} {}",
        call.executable_name.as_deref().unwrap_or("?"),
        call.pid,
        endpoint(&call.client_address, call.client_port),
        endpoint(&call.server_address, call.server_port),
        call.method.as_deref().unwrap_or("?"),
        call.path.as_deref().unwrap_or("?"),
    );
    if let Some(route) = call
        .route
        .as_deref()
        .filter(|r| Some(*r) != call.path.as_deref())
    {
        line.push_str(&format!(" [{route}]"));
    }
    if let Some(query) = &call.query {
        line.push('?');
        line.push_str(query);
    }
    match call.status_code {
        Some(status) => line.push_str(&format!(" {status}")),
        None => line.push_str(" (no response)"),
    }
    if let Some(duration) = call.duration_ms {
        line.push_str(&format!(" {duration}ms"));
    }
    if call.tls {
        line.push_str(" tls");
    }
    if !call.incomplete.is_empty() {
        line.push_str(&format!(" incomplete:{}", call.incomplete.join(",")));
    }
    line
}

impl<W: Write> Sink for Pretty<W> {
    fn write(&mut self, output: &Output) -> io::Result<()> {
        match output {
            Output::Call(call) => writeln!(self.out, "{}", pretty_line(call)),
            Output::Finding(finding) => writeln!(
                self.out,
                "{} FINDING {:?} {}{} {} {}: {}",
                finding.timestamp.get(11..23).unwrap_or(&finding.timestamp),
                finding.severity,
                finding.kind,
                finding
                    .owasp_category
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                finding.endpoint.method.as_deref().unwrap_or("?"),
                finding.endpoint.route.as_deref().unwrap_or("?"),
                finding.reason
            ),
            Output::Inventory(change) => writeln!(
                self.out,
                "{} INVENTORY {} {} {} {}{}",
                change.timestamp.get(11..23).unwrap_or(&change.timestamp),
                change.change,
                change.service,
                change.endpoint.method.as_deref().unwrap_or(""),
                change.endpoint.route.as_deref().unwrap_or(""),
                if change.details.is_empty() {
                    String::new()
                } else {
                    format!(": {}", change.details.join("; "))
                }
            ),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A sink for the format asked for, over any writer.
pub fn sink(format: Format, out: Box<dyn Write + Send>) -> Box<dyn Sink + Send> {
    match format {
        Format::Json => Box::new(JsonLines::new(out)),
        Format::Pretty => Box::new(Pretty::new(out)),
    }
}
