//! The API call: the one record every consumer reads (export, inventory, detection).
//!
//! Built from a paired exchange plus what `conn` and the facts know about the connection and
//! its process. Field names follow the OpenTelemetry HTTP semantic conventions where one exists
//! (`http.request.method`, `url.path`, `server.address`, ...); the rest are observer's own.
//! Header and body values may hold secrets: `redact` runs over every call before anything is
//! serialized.

use std::{
    borrow::Cow,
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use observer_common::TlsLibrary;
use serde::Serialize;

use crate::{
    conn::{ConnInfo, Role},
    facts::{ClockSync, ProcessInfo},
    pairing::{ExchangeStatus, HttpExchange},
    protocol::{
        coding::{self, CodingError},
        http1::{Body, BodyFraming, Headers, Version},
    },
};

mod header_map;

pub use header_map::HeaderMap;

/// Default bytes of each body shown in an API call (the parser may have kept more, for analysis).
pub const DEFAULT_BODY_PREVIEW_BYTES: usize = 1024;

/// How much of an exchange the call covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Request and response both seen.
    Complete,
    /// No response: the connection closed or went idle, or the answer was lost.
    NoResponse,
    /// The request was not seen (lost, or sent before the agent started).
    NoRequest,
}

impl CallStatus {
    pub const ALL: [CallStatus; 3] = [
        CallStatus::Complete,
        CallStatus::NoResponse,
        CallStatus::NoRequest,
    ];

    /// As the output (`observer.status`) and the metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Complete => "complete",
            CallStatus::NoResponse => "no_response",
            CallStatus::NoRequest => "no_request",
        }
    }
}

/// One API call, as observed from one process.
///
/// Its `Serialize` defines the call's JSON line; `export::call_json` writes the same bytes by
/// hand, faster, and its tests hold the two equal: a field added here is added there too.
#[derive(Clone, PartialEq, Serialize)]
pub struct ApiCall {
    #[serde(rename = "event.name")]
    pub event_name: &'static str,
    /// Wall-clock time of the call's first byte (RFC 3339).
    pub timestamp: String,
    #[serde(rename = "observer.status")]
    pub status: CallStatus,
    pub role: Option<Role>,

    #[serde(
        rename = "http.request.method",
        skip_serializing_if = "Option::is_none"
    )]
    pub method: Option<String>,
    #[serde(rename = "url.path", skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(rename = "url.query", skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The templated route (`/users/{id}`), filled in by the inventory.
    #[serde(rename = "http.route", skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(
        rename = "http.response.status_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_code: Option<u16>,
    /// Interim (1xx) statuses before the final one.
    #[serde(
        rename = "http.response.interim_status_codes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interim_status_codes: Vec<u16>,
    #[serde(rename = "network.protocol.name")]
    pub protocol_name: &'static str,
    #[serde(
        rename = "network.protocol.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol_version: Option<&'static str>,
    #[serde(rename = "network.transport")]
    pub transport: &'static str,

    #[serde(rename = "server.address", skip_serializing_if = "Option::is_none")]
    pub server_address: Option<String>,
    #[serde(rename = "server.port", skip_serializing_if = "Option::is_none")]
    pub server_port: Option<u16>,
    #[serde(rename = "client.address", skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    #[serde(rename = "client.port", skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,

    pub tls: bool,
    #[serde(rename = "tls.library", skip_serializing_if = "Option::is_none")]
    pub tls_library: Option<&'static str>,

    /// From the request's first byte to the response's last byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// From the request's last byte to the response's first byte: the server's think time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,

    #[serde(rename = "process.pid")]
    pub pid: u32,
    #[serde(
        rename = "process.executable.name",
        skip_serializing_if = "Option::is_none"
    )]
    pub executable_name: Option<String>,
    #[serde(
        rename = "process.executable.path",
        skip_serializing_if = "Option::is_none"
    )]
    pub executable_path: Option<String>,
    /// The process's, shared with every other call it makes (redaction swaps in a shared
    /// redacted copy), so that a call costs no copy of its command line.
    #[serde(
        rename = "process.command_args",
        skip_serializing_if = "crate::facts::no_args"
    )]
    pub command_args: Arc<[String]>,
    #[serde(rename = "container.id", skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(rename = "k8s.pod.uid", skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,

    #[serde(
        rename = "http.request.header",
        skip_serializing_if = "HeaderMap::is_empty"
    )]
    pub request_headers: HeaderMap,
    #[serde(
        rename = "http.response.header",
        skip_serializing_if = "HeaderMap::is_empty"
    )]
    pub response_headers: HeaderMap,
    #[serde(rename = "http.request.body", skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BodyView>,
    #[serde(rename = "http.response.body", skip_serializing_if = "Option::is_none")]
    pub response_body: Option<BodyView>,

    /// Why the call may be missing parts (bytes lost, message cut short...).
    #[serde(rename = "observer.incomplete", skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<&'static str>,
    /// `pid:fd:generation` of the connection, to tie calls of one connection together.
    #[serde(rename = "observer.connection")]
    pub connection: String,
    /// Kernel time of the first byte, for ordering and for consumers that window by time.
    #[serde(skip)]
    pub start_ns: u64,
    /// `timestamp` as a number: nanoseconds since the epoch, to the microsecond the text shows,
    /// for the stages that compute with the time (inventory, detection, the scanner's recall),
    /// which had each parsed the text back.
    #[serde(skip)]
    pub realtime_ns: u64,
    /// The bodies as the parser kept them (up to its capture limit), for analysis stages;
    /// never serialized.
    #[serde(skip)]
    pub request_body_bytes: Vec<u8>,
    #[serde(skip)]
    pub response_body_bytes: Vec<u8>,
}

/// A body as shown in an API call: its size and a preview.
#[derive(Clone, PartialEq, Serialize)]
pub struct BodyView {
    /// Body bytes the message carried (including bytes that were not captured).
    pub size: u64,
    /// The first bytes, as text (invalid UTF-8 replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// The preview is shorter than the body.
    pub truncated: bool,
    /// The content coding (`Content-Encoding`) the preview and the analyses read the body
    /// through: the preview is the decoded text, `size` stays what the wire carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_from: Option<&'static str>,
    /// Why the body, in a content coding, was left as sent (and so read by nothing).
    #[serde(skip)]
    pub not_decoded: Option<CodingError>,
    /// The capture stopped before the body's end (bytes were lost, or the message was cut
    /// short), so its last bytes may be the start of a value rather than a value: redaction
    /// hides them when the preview shows that end.
    #[serde(skip)]
    pub capture_ends_early: bool,
}

/// `Debug` shows what a call is (who, where, when, how it went) but no value it carried: the
/// path and query, header values, bodies and command line appear by size only, whether or not the call
/// has been redacted yet, since `Debug` output ends up in logs and test failures.
impl fmt::Debug for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiCall")
            .field("timestamp", &self.timestamp)
            .field("status", &self.status)
            .field("role", &self.role)
            .field("method", &self.method)
            .field("path_bytes", &self.path.as_ref().map(String::len))
            .field("query_bytes", &self.query.as_ref().map(String::len))
            .field("route", &self.route)
            .field("status_code", &self.status_code)
            .field("server", &(&self.server_address, self.server_port))
            .field("client", &(&self.client_address, self.client_port))
            .field("tls", &self.tls)
            .field("pid", &self.pid)
            .field("executable_name", &self.executable_name)
            .field("command_args", &self.command_args.len())
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("request_body", &self.request_body)
            .field("response_body", &self.response_body)
            .field("request_body_bytes", &self.request_body_bytes.len())
            .field("response_body_bytes", &self.response_body_bytes.len())
            .field("incomplete", &self.incomplete)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// Size and whether it was cut; never the preview.
impl fmt::Debug for BodyView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyView")
            .field("size", &self.size)
            .field("preview_bytes", &self.preview.as_ref().map(String::len))
            .field("truncated", &self.truncated)
            .field("decoded_from", &self.decoded_from)
            .field("not_decoded", &self.not_decoded)
            .field("capture_ends_early", &self.capture_ends_early)
            .finish()
    }
}

/// What a call is built from besides the exchange.
pub struct CallContext<'a> {
    pub conn: &'a ConnInfo,
    /// The observed process's side: from the kernel, or from which way requests went.
    pub role: Option<Role>,
    pub process: Option<&'a ProcessInfo>,
    pub clock: Option<&'a ClockSync>,
    pub body_preview_bytes: usize,
    /// The parser's body capture limit, which a decoded body is kept to as well.
    pub body_capture_bytes: usize,
}

const AF_UNIX: u16 = 1;

impl ApiCall {
    /// The request body as captured, as text ([`lossy_text`]).
    pub fn request_body_text(&self) -> Cow<'_, str> {
        body_text(&self.request_body_bytes, self.request_body.as_ref())
    }

    /// The response body as captured, as text ([`lossy_text`]).
    pub fn response_body_text(&self) -> Cow<'_, str> {
        body_text(&self.response_body_bytes, self.response_body.as_ref())
    }

    pub fn from_exchange(exchange: HttpExchange, context: &CallContext<'_>) -> ApiCall {
        let HttpExchange {
            mut request,
            interim,
            mut response,
            status,
        } = exchange;
        let conn = context.conn;
        let start_ns = request
            .as_ref()
            .map(|r| r.first_byte_ts_ns)
            .or(response.as_ref().map(|r| r.first_byte_ts_ns))
            .unwrap_or(conn.opened_ns);
        let realtime_ns = context
            .clock
            .map_or(start_ns, |clock| clock.to_realtime_ns(start_ns));
        let (timestamp, realtime_ns) = call_time(realtime_ns);

        let (server, client) = match context.role {
            Some(Role::Server) => (conn.local, conn.remote),
            Some(Role::Client) | None => (conn.remote, conn.local),
        };
        let mut incomplete = Vec::new();
        if request.as_ref().is_some_and(|r| !r.complete) {
            incomplete.push("request_cut_short");
        }
        if response.as_ref().is_some_and(|r| !r.complete) {
            incomplete.push("response_cut_short");
        }
        if request.as_ref().is_some_and(|r| r.body.lost > 0) {
            incomplete.push("request_bytes_lost");
        }
        if response.as_ref().is_some_and(|r| r.body.lost > 0) {
            incomplete.push("response_bytes_lost");
        }
        let (path, query) = request
            .as_ref()
            .map(|r| split_target(&r.head.target))
            .unwrap_or((None, None));
        let version = request
            .as_ref()
            .map(|r| r.head.version)
            .or(response.as_ref().map(|r| r.head.version));
        let duration_ms = match (&request, &response) {
            (Some(req), Some(resp)) => resp
                .last_byte_ts_ns
                .checked_sub(req.first_byte_ts_ns)
                .map(ms),
            _ => None,
        };
        let latency_ms = match (&request, &response) {
            (Some(req), Some(resp)) => resp
                .first_byte_ts_ns
                .checked_sub(req.last_byte_ts_ns)
                .map(ms),
            _ => None,
        };
        let process = context.process;
        let request_body = request
            .as_ref()
            .map(|r| ReadBody::of(&r.head.headers, &r.body, r.complete, context));
        let response_body = response
            .as_ref()
            .map(|r| ReadBody::of(&r.head.headers, &r.body, r.complete, context));
        for (body, label) in [
            (&request_body, "request_body_not_decoded"),
            (&response_body, "response_body_not_decoded"),
        ] {
            if body
                .as_ref()
                .and_then(|b| b.view.as_ref())
                .is_some_and(|view| view.not_decoded.is_some())
            {
                incomplete.push(label);
            }
        }
        let (request_body_bytes, request_body) =
            ReadBody::split(request_body, request.as_mut().map(|r| &mut r.body));
        let (response_body_bytes, response_body) =
            ReadBody::split(response_body, response.as_mut().map(|r| &mut r.body));

        ApiCall {
            event_name: "api.call",
            timestamp,
            status: match status {
                ExchangeStatus::Complete => CallStatus::Complete,
                ExchangeStatus::RequestOnly => CallStatus::NoResponse,
                ExchangeStatus::ResponseOnly => CallStatus::NoRequest,
            },
            role: context.role,
            method: request.as_ref().map(|r| r.head.method.as_str().to_string()),
            path,
            query,
            route: None,
            status_code: response.as_ref().map(|r| r.head.status),
            interim_status_codes: interim,
            protocol_name: "http",
            protocol_version: version.map(|v| match v {
                Version::Http10 => "1.0",
                Version::Http11 => "1.1",
            }),
            transport: if conn.family == AF_UNIX {
                "unix"
            } else {
                "tcp"
            },
            server_address: server.map(|a| address_text(a.ip())),
            server_port: server.map(|a: SocketAddr| a.port()),
            client_address: client.map(|a| address_text(a.ip())),
            client_port: client.map(|a| a.port()),
            tls: conn.tls_library.is_some(),
            tls_library: conn.tls_library.map(tls_library_name),
            duration_ms,
            latency_ms,
            pid: conn.id.tgid,
            executable_name: process
                .map(|p| p.executable_name().to_string())
                .or_else(|| (!conn.comm.is_empty()).then(|| conn.comm.clone())),
            executable_path: process.and_then(|p| p.exe.clone()),
            command_args: process.map(|p| p.cmdline.clone()).unwrap_or_default(),
            container_id: process.and_then(|p| p.container_id.clone()),
            pod_uid: process.and_then(|p| p.pod_uid.clone()),
            request_headers: request
                .as_ref()
                .map(|r| HeaderMap::from_headers(&r.head.headers))
                .unwrap_or_default(),
            response_headers: response
                .as_ref()
                .map(|r| HeaderMap::from_headers(&r.head.headers))
                .unwrap_or_default(),
            request_body,
            response_body,
            incomplete,
            connection: connection_text(conn.id.tgid, conn.id.fd, conn.id.generation),
            start_ns,
            realtime_ns,
            request_body_bytes,
            response_body_bytes,
        }
    }
}

/// A message's body as every stage after reads it: its view, and its bytes when they are not
/// the captured ones (a decoded body).
struct ReadBody {
    view: Option<BodyView>,
    decoded: Option<Vec<u8>>,
}

impl ReadBody {
    fn of(headers: &Headers, body: &Body, complete: bool, context: &CallContext<'_>) -> ReadBody {
        let capture_ends_early = !complete || body.lost > 0;
        // An empty body (a HEAD's answer, a 304) has nothing to decode, whatever its coding.
        let coding = if body.captured.is_empty() {
            Ok(None)
        } else {
            coding::coding_of(headers)
        };
        let coding = match coding {
            Ok(Some(coding)) => coding,
            Ok(None) => {
                return ReadBody {
                    view: body_view(body, capture_ends_early, context.body_preview_bytes),
                    decoded: None,
                }
            }
            Err(error) => return ReadBody::not_decoded(body, capture_ends_early, error, context),
        };
        let encoded_whole = body.captured.len() as u64 == body.size && body.lost == 0 && complete;
        match coding::decode(
            coding,
            &body.captured,
            encoded_whole,
            context.body_capture_bytes,
        ) {
            Ok(decoded) => {
                let shown = &decoded.bytes[..decoded.bytes.len().min(context.body_preview_bytes)];
                let view = BodyView {
                    size: body.size,
                    preview: (!shown.is_empty()).then(|| lossy_text(shown).into_owned()),
                    truncated: shown.len() < decoded.bytes.len() || !decoded.whole,
                    decoded_from: Some(coding.as_str()),
                    not_decoded: None,
                    // Decoding that stopped inside the stream ends where a value may start.
                    capture_ends_early: capture_ends_early || !decoded.whole,
                };
                ReadBody {
                    view: Some(view),
                    decoded: Some(decoded.bytes),
                }
            }
            Err(error) => ReadBody::not_decoded(body, capture_ends_early, error, context),
        }
    }

    /// A body left as sent: sized, without a preview (its bytes are no text anyone reads).
    fn not_decoded(
        body: &Body,
        capture_ends_early: bool,
        error: CodingError,
        context: &CallContext<'_>,
    ) -> ReadBody {
        let view =
            body_view(body, capture_ends_early, context.body_preview_bytes).map(|view| BodyView {
                preview: None,
                truncated: body.size > 0,
                not_decoded: Some(error),
                ..view
            });
        ReadBody {
            view,
            decoded: None,
        }
    }

    /// The view and the bytes the stages read: the decoded ones, else the captured ones taken
    /// from `body`.
    fn split(read: Option<ReadBody>, body: Option<&mut Body>) -> (Vec<u8>, Option<BodyView>) {
        let Some(read) = read else {
            return (Vec::new(), None);
        };
        let bytes = match (read.decoded, read.view.as_ref()) {
            (Some(decoded), _) => decoded,
            // A body left in its coding is no text: the stages get nothing to misread.
            (None, Some(view)) if view.not_decoded.is_some() => Vec::new(),
            (None, _) => body
                .map(|b| std::mem::take(&mut b.captured))
                .unwrap_or_default(),
        };
        (bytes, read.view)
    }
}

pub fn tls_library_name(library: TlsLibrary) -> &'static str {
    match library {
        TlsLibrary::None => "none",
        TlsLibrary::OpenSsl => "openssl",
        TlsLibrary::Go => "go",
        TlsLibrary::GnuTls => "gnutls",
        TlsLibrary::Nss => "nss",
        TlsLibrary::BoringSsl => "boringssl",
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

/// Path and query of a request target. Absolute-form targets (proxies) keep only their path.
fn split_target(target: &str) -> (Option<String>, Option<String>) {
    let without_scheme = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => target,
    };
    let (path, query) = match without_scheme.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (without_scheme, None),
    };
    (Some(path.to_string()), query)
}

/// `bytes` as text, invalid UTF-8 replaced, like `String::from_utf8_lossy`, whose byte-at-a-time
/// walk showed in profiles: valid text (nearly all of it) is checked word by word first.
pub fn lossy_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` as [`lossy_text`] reads them, taken from the preview when it holds exactly these
/// bytes: they were checked as UTF-8 when the preview was made, and comparing them costs a
/// fraction of checking them again.
fn body_text<'a>(bytes: &'a [u8], view: Option<&'a BodyView>) -> Cow<'a, str> {
    match view.and_then(|view| view.preview.as_deref()) {
        Some(preview) if preview.as_bytes() == bytes => Cow::Borrowed(preview),
        _ => lossy_text(bytes),
    }
}

fn body_view(body: &Body, capture_ends_early: bool, preview_bytes: usize) -> Option<BodyView> {
    if body.framing == BodyFraming::NoBody && body.size == 0 {
        return None;
    }
    let shown = &body.captured[..body.captured.len().min(preview_bytes)];
    Some(BodyView {
        size: body.size,
        preview: (!shown.is_empty()).then(|| lossy_text(shown).into_owned()),
        truncated: (shown.len() as u64) < body.size,
        decoded_from: None,
        not_decoded: None,
        capture_ends_early,
    })
}

/// RFC 3339 with microseconds, UTC, for nanoseconds since the Unix epoch.
/// A call's wall-clock time as it carries it: the RFC 3339 text and the same instant as a
/// number, both to the microsecond (see `ApiCall::realtime_ns`).
pub fn call_time(realtime_ns: u64) -> (String, u64) {
    (rfc3339(realtime_ns), realtime_ns - realtime_ns % 1_000)
}

pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    // Digits written into a fixed template rather than through `format!` or a digit-at-a-time
    // push: every call is stamped, and each way was a few percent of the whole pipeline.
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut text[0..4], u64::try_from(year).unwrap_or(0));
    put_digits(&mut text[5..7], month.into());
    put_digits(&mut text[8..10], day.into());
    put_digits(&mut text[11..13], rem / 3600);
    put_digits(&mut text[14..16], (rem % 3600) / 60);
    put_digits(&mut text[17..19], rem % 60);
    put_digits(&mut text[20..26], micros);
    // Only ASCII digits and separators went in: this never falls back.
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// The last `slot.len()` decimal digits of `value` into `slot`, zero-padded.
fn put_digits(slot: &mut [u8], mut value: u64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// An address as `Display` writes it. IPv4 by hand: every call carries two, and the formatting
/// machinery spent ~1,300 instructions on each, as much as writing the whole call's JSON line.
fn address_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity("255.255.255.255".len());
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(&mut out, octet.into());
            }
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `pid:fd:generation`, by hand for the same reason as [`address_text`].
fn connection_text(pid: u32, fd: u32, generation: u64) -> String {
    let mut out = String::with_capacity("4294967295:4294967295:18446744073709551615".len());
    push_decimal(&mut out, pid.into());
    out.push(':');
    push_decimal(&mut out, fd.into());
    out.push(':');
    push_decimal(&mut out, generation);
    out
}

/// `value` in decimal, by `itoa` (two digits per step from a table): a digit at a time pushed
/// as chars had cost ~240 instructions per number, and every call carries six or more.
fn push_decimal(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_reads_as_the_text_of_its_bytes_whatever_its_preview_holds() {
        let view = |preview: &str| {
            Some(BodyView {
                size: 0,
                preview: Some(preview.to_string()),
                truncated: false,
                decoded_from: None,
                not_decoded: None,
                capture_ends_early: false,
            })
        };
        let bytes = "caf\u{e9} {\"a\":1}".as_bytes();
        let whole = view("caf\u{e9} {\"a\":1}");
        let preview = whole.as_ref().and_then(|view| view.preview.as_deref());
        let text = body_text(bytes, whole.as_ref());
        assert!(
            matches!(text, Cow::Borrowed(t) if preview.is_some_and(|p| std::ptr::eq(t, p))),
            "the preview itself"
        );
        for other in [
            None,
            view("caf\u{e9}"),
            view("caf\u{e9} {\"a\":2}"),
            view(""),
        ] {
            assert_eq!(body_text(bytes, other.as_ref()), lossy_text(bytes));
        }
        let broken = b"a\xffb";
        assert_eq!(body_text(broken, view("a\u{fffd}b").as_ref()), "a\u{fffd}b");
        assert_eq!(body_text(b"", None), "");
    }

    #[test]
    fn addresses_and_connections_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "127.0.10.200",
            "::1",
            "::ffff:10.0.0.1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(address_text(ip), ip.to_string());
        }
        for (pid, fd, generation) in [
            (0, 0, 0),
            (9167, 5, 27_469_790_762_620),
            (u32::MAX, 1, u64::MAX),
        ] {
            assert_eq!(
                connection_text(pid, fd, generation),
                format!("{pid}:{fd}:{generation}")
            );
        }
    }

    #[test]
    fn lossy_text_borrows_valid_text_and_replaces_what_is_not() {
        assert!(matches!(
            lossy_text("héllo".as_bytes()),
            Cow::Borrowed("héllo")
        ));
        assert_eq!(lossy_text(b"a\xffb\xc3"), "a\u{fffd}b\u{fffd}");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_795_000_000_123_456_789),
            "2026-11-18T11:06:40.123456Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339(u64::MAX), "2554-07-21T23:34:33.709551Z");
        assert_eq!(rfc3339(1_000), "1970-01-01T00:00:00.000001Z");
    }

    #[test]
    fn a_calls_time_as_text_and_number_agree() {
        for ns in [
            0,
            999,
            1_000,
            1_795_000_000_123_456_789,
            951_782_400_000_000_000,
        ] {
            let (text, number) = call_time(ns);
            assert_eq!(text, rfc3339(ns));
            assert_eq!(crate::inventory::parse_rfc3339(&text), Some(number), "{ns}");
        }
    }

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(
            split_target("/a/b?x=1&y"),
            (Some("/a/b".into()), Some("x=1&y".into()))
        );
        assert_eq!(split_target("/"), (Some("/".into()), None));
        assert_eq!(
            split_target("http://h:8080/p?q"),
            (Some("/p".into()), Some("q".into()))
        );
        assert_eq!(split_target("http://h"), (Some("/".into()), None));
        assert_eq!(
            split_target("example.com:443"),
            (Some("example.com:443".into()), None)
        );
    }
}
