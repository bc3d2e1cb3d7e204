//! Scraping the agent's metrics endpoint (`observer run --metrics-listen ADDR`) the way
//! Prometheus does: one plain HTTP/1.1 GET per scrape, and the text exposition read back.
//!
//! A plain socket rather than curl: the agent observes curl's calls, and the tests count calls.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{bail, Context};

/// A scrape of a local endpoint answers in milliseconds; this is slack for a loaded machine.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the agent publishes what scrapes see (`metrics::PUBLISH_INTERVAL`).
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// The exposition's content type, as the endpoint must announce it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// One HTTP response, read to its end (the endpoint closes each connection).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The head, headers included, as text.
    pub head: String,
    pub body: String,
}

/// The loopback address of a metrics endpoint on `port`.
pub fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `GET path` on the endpoint; any status.
pub fn get(port: u16, path: &str) -> anyhow::Result<Response> {
    request(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {CONTENT_TYPE}\r\n\r\n")
            .as_bytes(),
    )
}

/// Send `bytes` as they are and read the answer.
pub fn request(port: u16, bytes: &[u8]) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&address(port), SCRAPE_TIMEOUT)
        .with_context(|| format!("cannot connect to the metrics endpoint on port {port}"))?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .context("reading the metrics endpoint's answer")?;
    let text = String::from_utf8(raw).context("the metrics endpoint answered in non-UTF-8")?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("the metrics endpoint's answer has no end of head: {text:?}");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok(Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// `GET /metrics`, which must answer 200 in the text format; the exposition.
pub fn scrape(port: u16) -> anyhow::Result<String> {
    let response = get(port, "/metrics")?;
    if response.status != 200 || !response.head.contains(CONTENT_TYPE) {
        bail!(
            "GET /metrics answered {} without content type {CONTENT_TYPE:?}:\n{}",
            response.status,
            response.head
        );
    }
    Ok(response.body)
}

/// The value of the sample `series` (`name` or `name{label="value",...}`, labels in the order
/// the agent writes them), if the exposition has it.
pub fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}
