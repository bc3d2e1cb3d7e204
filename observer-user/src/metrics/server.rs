//! The metrics endpoint's HTTP/1.1 responder: `GET /metrics` (and `HEAD`), 404 elsewhere.
//!
//! One thread of its own with a single-threaded tokio runtime, so a slow or hostile client
//! never touches the pipeline's thread. Each connection gets one response and is closed:
//! Prometheus opens a connection per scrape anyway, and it keeps this free of keep-alive state.
//! Requests are read with a size cap and a deadline and parsed with `httparse`; anything
//! malformed gets a 400, never a panic.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use thiserror::Error;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

use super::{render, text, Published, Snapshot, Uptime};

/// The request head is a request line and a few headers from a scraper; anything longer is
/// not one, and is refused rather than buffered.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Headers parsed per request: scrapers send fewer than ten.
const MAX_HEADERS: usize = 32;

/// From accepting a connection to the end of the response: a scraper on a healthy network
/// takes milliseconds; a client that trickles bytes is cut off rather than holding a slot.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// Connections served at once; more wait in the kernel's backlog. Prometheus scrapes with one,
/// so this only bounds what a flood of clients can make the agent hold.
const MAX_CONNECTIONS: usize = 16;

/// The one path served.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error(
        "cannot serve metrics on {addr}: {source} (is something else listening there? choose \
         another address with --metrics-listen, or leave the flag out)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the metrics endpoint's thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// A running endpoint. Dropping it leaves the thread serving the last snapshot until the
/// process exits.
pub struct MetricsServer {
    published: Published,
    local_addr: SocketAddr,
}

/// What every connection needs.
struct Shared {
    published: Published,
    started: Instant,
    started_unix: f64,
}

impl MetricsServer {
    /// Bind `addr` now (so a taken address is an error at startup, naming it), then serve on a
    /// thread of its own. `started` is when the agent started, for its uptime.
    pub fn start(addr: SocketAddr, started: Instant) -> Result<MetricsServer, MetricsError> {
        let bind_error = |source| MetricsError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(MetricsError::Thread)?;
        let published = Published::default();
        let shared = Arc::new(Shared {
            published: published.clone(),
            started,
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() - started.elapsed().as_secs_f64()),
        });
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, shared).await,
                        Err(error) => tracing::error!("the metrics endpoint stopped: {error}"),
                    }
                });
            })
            .map_err(MetricsError::Thread)?;
        Ok(MetricsServer {
            published,
            local_addr,
        })
    }

    /// Replace what scrapes see.
    pub fn publish(&self, snapshot: Snapshot) {
        self.published.publish(snapshot);
    }

    /// The address bound (the port chosen when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of fds, or the peer reset before accept: not the endpoint's end.
                tracing::debug!("metrics endpoint: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) =
                tokio::time::timeout(CONNECTION_DEADLINE, answer(stream, &shared)).await
            {
                tracing::debug!("metrics endpoint: a client took too long: {error}");
            }
        });
    }
}

/// Read one request head and write one response.
async fn answer(mut stream: TcpStream, shared: &Shared) {
    let mut buf = Vec::with_capacity(1024);
    let response = loop {
        let mut chunk = [0u8; 1024];
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match respond(&buf, || body(shared)) {
            Some(response) => break response,
            None if buf.len() >= MAX_REQUEST_HEAD => {
                break Response::plain(
                    431,
                    "Request Header Fields Too Large",
                    "request too large\n",
                )
            }
            None => continue,
        }
    };
    let _ = stream.write_all(&response.to_bytes()).await;
    let _ = stream.shutdown().await;
}

fn body(shared: &Shared) -> String {
    let snapshot = shared.published.latest();
    render(
        snapshot.as_deref(),
        Uptime {
            uptime: shared.started.elapsed(),
            started_unix: shared.started_unix,
        },
    )
}

/// A response, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub body: String,
    /// HEAD: the headers of the GET, no body.
    pub head_only: bool,
    pub allow: Option<&'static str>,
}

impl Response {
    fn plain(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            head_only: false,
            allow: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            out.push_str(&format!("Allow: {allow}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// The response to the request head at the start of `buf`, or `None` while the head is
/// incomplete. `metrics` renders the exposition, only when it is asked for.
pub fn respond(buf: &[u8], metrics: impl FnOnce() -> String) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let (method, path) = match request.parse(buf) {
        Ok(httparse::Status::Partial) => return None,
        Ok(httparse::Status::Complete(_)) => (
            request.method.unwrap_or_default(),
            request.path.unwrap_or_default(),
        ),
        Err(_) => return Some(Response::plain(400, "Bad Request", "bad request\n")),
    };
    // A query string changes nothing: Prometheus may add one for its own reasons.
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    if path != METRICS_PATH {
        return Some(Response::plain(
            404,
            "Not Found",
            "not found: the metrics are at /metrics\n",
        ));
    }
    match method {
        "GET" | "HEAD" => Some(Response {
            status: 200,
            reason: "OK",
            content_type: text::CONTENT_TYPE,
            body: metrics(),
            head_only: method == "HEAD",
            allow: None,
        }),
        _ => Some(Response {
            allow: Some("GET, HEAD"),
            ..Response::plain(405, "Method Not Allowed", "only GET and HEAD\n")
        }),
    }
}
