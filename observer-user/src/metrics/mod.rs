//! The Prometheus endpoint of `observer run --metrics-listen ADDR`: what the agent counts, as
//! metrics named `observer_*`, served at `GET /metrics`.
//!
//! ```text
//! pipeline thread ── about once a second ──> Snapshot ──> Published ──> metrics thread ──> scrape
//!   (counters it already keeps)             (a copy)     (Arc swap)     (renders, answers HTTP)
//! ```
//!
//! The pipeline never waits for a scrape: it copies its counters into a [`Snapshot`] and swaps
//! it in behind a mutex held only for the swap; the metrics thread renders a snapshot it took
//! out. Labels take values from fixed sets the agent (or its config file) defines: event kinds,
//! drop reasons, roles, detector names, sensitive-data types. Nothing from traffic (paths, hosts,
//! header values) becomes a label, since a label from traffic would both multiply series without
//! bound and carry secrets out.

pub mod server;
pub mod text;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use observer_common::{Counter, EventKind};

use self::text::{Encoder, MetricType};
use crate::{
    capture::{kind_name, KernelCounters},
    coverage::report::Status as TlsStatus,
    model::CallStatus,
    pipeline::{AnalyzerStats, Pipeline, PipelineStats},
};

pub use server::{MetricsError, MetricsServer};

/// How often the live loop publishes a snapshot: Prometheus scrapes every 15 s or so, so a
/// second's staleness is invisible, and copying the counters once a second costs the pipeline
/// thread a few microseconds.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the metrics show, copied from the pipeline at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pipeline: PipelineStats,
    pub connections_open: u64,
    /// `None` when the kernel's counters could not be read this time.
    pub kernel: Option<KernelCounters>,
    pub analyzers: AnalyzerStats,
    /// Running processes by where their TLS stands.
    pub tls_processes: BTreeMap<TlsStatus, u64>,
}

impl Snapshot {
    pub fn take(pipeline: &mut Pipeline, kernel: Option<KernelCounters>) -> Snapshot {
        Snapshot {
            pipeline: pipeline.stats(),
            connections_open: pipeline.connections() as u64,
            kernel,
            analyzers: pipeline.analyzer_stats(),
            tls_processes: pipeline.coverage().running_by_status(),
        }
    }
}

/// The latest snapshot, shared between the pipeline's thread and the metrics thread.
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<Mutex<Option<Arc<Snapshot>>>>);

impl Published {
    pub fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        // Held for a pointer swap; the old snapshot is freed after the lock is released.
        let old = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(snapshot);
        drop(old);
    }

    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// How long the agent has been up, and when it started.
#[derive(Debug, Clone, Copy)]
pub struct Uptime {
    pub uptime: Duration,
    /// Seconds since the epoch.
    pub started_unix: f64,
}

/// Roles as calls carry them, and `unknown` for a call whose connection never said.
const ROLES: [&str; 3] = ["client", "server", "unknown"];

/// Kernel counters that count something lost, with the reason label each gets.
const KERNEL_LOSSES: [(Counter, &str); 4] = [
    (Counter::DropReadUserFailed, "read_user_failed"),
    (Counter::DropArgsTableFull, "args_table_full"),
    (Counter::DropConnTableFull, "conn_table_full"),
    (Counter::TlsWithoutFd, "tls_without_fd"),
];

/// The exposition of `snapshot` (`None` before the first one: build information and uptime
/// only).
pub fn render(snapshot: Option<&Snapshot>, uptime: Uptime) -> String {
    let mut e = Encoder::default();
    e.family(
        "observer_build_info",
        MetricType::Gauge,
        "Always 1; the agent's version is in the label.",
    );
    e.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    e.single(
        "observer_start_time_seconds",
        MetricType::Gauge,
        "When the agent started, in seconds since the Unix epoch.",
        uptime.started_unix,
    );
    e.single(
        "observer_uptime_seconds",
        MetricType::Gauge,
        "Seconds since the agent started.",
        uptime.uptime.as_secs_f64(),
    );
    if let Some(snapshot) = snapshot {
        calls(&mut e, snapshot);
        events(&mut e, snapshot);
        errors(&mut e, &snapshot.pipeline);
        analyzers(&mut e, snapshot);
    }
    e.finish()
}

fn calls(e: &mut Encoder, snapshot: &Snapshot) {
    let p = &snapshot.pipeline;
    e.family(
        "observer_api_calls_total",
        MetricType::Counter,
        "API calls reported, by the observed process's role and how much of the exchange was \
         seen.",
    );
    for role in ROLES {
        let by_status = p.api_calls_by_role.get(role);
        for status in CallStatus::ALL {
            let n = by_status
                .and_then(|s| s.get(status.as_str()))
                .copied()
                .unwrap_or(0);
            e.sample(&[("role", role), ("status", status.as_str())], n);
        }
    }
    e.single(
        "observer_api_calls_filtered_total",
        MetricType::Counter,
        "API calls left out by --pid, --port or --comm.",
        p.api_calls_filtered,
    );
    e.single(
        "observer_calls_bodies_shed_total",
        MetricType::Counter,
        "API calls reported without their bodies because the agent was falling behind the kernel (its ring buffer half full).",
        p.calls_bodies_shed,
    );
    e.single(
        "observer_captured_bytes_total",
        MetricType::Counter,
        "Payload bytes received from the kernel.",
        p.bytes_captured,
    );
    e.single(
        "observer_connections_opened_total",
        MetricType::Counter,
        "Connections the agent started tracking.",
        p.connections.connections_opened,
    );
    e.single(
        "observer_connections_closed_total",
        MetricType::Counter,
        "Connections the agent stopped tracking (closed, idle, or their process exited).",
        p.connections.connections_closed,
    );
    e.single(
        "observer_connections_open",
        MetricType::Gauge,
        "Connections tracked now.",
        snapshot.connections_open,
    );
    e.single(
        "observer_stream_gaps_total",
        MetricType::Counter,
        "Holes in connections' byte streams (bytes lost before they reached the parser).",
        p.connections.gaps,
    );
    e.single(
        "observer_stream_gap_bytes_total",
        MetricType::Counter,
        "Bytes missing in those holes.",
        p.connections.gap_bytes,
    );
    e.family(
        "observer_echo_bytes_total",
        MetricType::Counter,
        "Bytes of host-local connections shipped by the writing end only: taken by the reading \
         end's echo, missing when it came, dropped unread, or left when the writer closed (its \
         reader then ships them itself).",
    );
    for (outcome, n) in [
        ("echoed", p.echo.bytes_echoed),
        ("missing", p.echo.bytes_missing),
        ("dropped", p.echo.bytes_dropped),
        ("left_at_close", p.echo.bytes_left_at_close),
    ] {
        e.sample(&[("outcome", outcome)], n);
    }
    e.single(
        "observer_echo_unread_bytes_total",
        MetricType::Counter,
        "Of the echoed bytes, those the reading end's parse passes over unread (body past the \
         capture limit): only their length was kept for it.",
        p.echo.bytes_unread,
    );
}

fn events(e: &mut Encoder, snapshot: &Snapshot) {
    let p = &snapshot.pipeline;
    e.family(
        "observer_events_received_total",
        MetricType::Counter,
        "Ring-buffer events the agent received and decoded, by kind.",
    );
    for kind in EventKind::ALL {
        e.sample(&[("kind", kind_name(kind))], p.event_count(kind));
    }
    if let Some(kernel) = &snapshot.kernel {
        e.family(
            "observer_kernel_events_attempted_total",
            MetricType::Counter,
            "Events the eBPF programs tried to send, by kind (attempted minus received is what \
             was lost or is still in the ring buffer).",
        );
        for kind in EventKind::ALL {
            e.sample(&[("kind", kind_name(kind))], kernel.attempted(kind));
        }
        e.family(
            "observer_kernel_ring_buffer_full_total",
            MetricType::Counter,
            "Events dropped in the kernel because the ring buffer was full, by kind.",
        );
        for kind in EventKind::ALL {
            e.sample(&[("kind", kind_name(kind))], kernel.ring_full(kind));
        }
        e.single(
            "observer_kernel_truncated_calls_total",
            MetricType::Counter,
            "Reads and writes larger than --max-bytes-per-call: their bytes past it are \
             counted, not copied.",
            kernel.get(Counter::CallsTruncated),
        );
        e.single(
            "observer_kernel_truncated_bytes_total",
            MetricType::Counter,
            "Bytes not copied because of --max-bytes-per-call.",
            kernel.get(Counter::BytesTruncated),
        );
    }
    e.family(
        "observer_events_lost_total",
        MetricType::Counter,
        "What was lost, where (kernel or agent) and why.",
    );
    if let Some(kernel) = &snapshot.kernel {
        let ring_full: u64 = EventKind::ALL.iter().map(|k| kernel.ring_full(*k)).sum();
        e.sample(
            &[("side", "kernel"), ("reason", "ring_buffer_full")],
            ring_full,
        );
        for (counter, reason) in KERNEL_LOSSES {
            e.sample(
                &[("side", "kernel"), ("reason", reason)],
                kernel.get(counter),
            );
        }
    }
    let decode_errors: u64 = p.decode_errors.values().sum();
    for (reason, n) in [
        ("undecodable_event", decode_errors),
        ("data_before_role", p.segments_without_role),
        (
            "connection_over_limit",
            p.connections.connections_over_limit,
        ),
    ] {
        e.sample(&[("side", "agent"), ("reason", reason)], n);
    }
}

fn errors(e: &mut Encoder, p: &PipelineStats) {
    e.family(
        "observer_decode_errors_total",
        MetricType::Counter,
        "Ring-buffer entries the agent could not decode, by reason.",
    );
    for (reason, n) in &p.decode_errors {
        e.sample(&[("reason", reason)], *n);
    }
    e.family(
        "observer_parse_errors_total",
        MetricType::Counter,
        "HTTP parse errors, by kind (the connection resyncs at the next message).",
    );
    for (kind, n) in &p.parse_errors {
        e.sample(&[("kind", kind)], *n);
    }
    e.family(
        "observer_bodies_decoded_total",
        MetricType::Counter,
        "Message bodies read through their content coding, by coding.",
    );
    for (coding, n) in &p.bodies_decoded {
        e.sample(&[("coding", coding)], *n);
    }
    e.family(
        "observer_bodies_not_decoded_total",
        MetricType::Counter,
        "Message bodies in a content coding left as sent (and unread), by reason.",
    );
    for (reason, n) in &p.bodies_not_decoded {
        e.sample(&[("reason", reason)], *n);
    }
    e.family(
        "observer_findings_total",
        MetricType::Counter,
        "Findings reported (attacks, anomalies, sensitive data), by detector and severity.",
    );
    for (kind, by_severity) in &p.findings {
        for (severity, n) in by_severity {
            e.sample(&[("kind", kind), ("severity", severity)], *n);
        }
    }
}

fn analyzers(e: &mut Encoder, snapshot: &Snapshot) {
    let AnalyzerStats {
        inventory,
        sensitive,
    } = &snapshot.analyzers;
    if let Some(sensitive) = sensitive {
        e.family(
            "observer_sensitive_values_total",
            MetricType::Counter,
            "Sensitive values found in calls (before the policy decides what to report), by \
             type.",
        );
        for (data_type, n) in &sensitive.values_by_type {
            e.sample(&[("type", data_type)], *n);
        }
    }
    if let Some(inventory) = inventory {
        e.single(
            "observer_inventory_services",
            MetricType::Gauge,
            "Services in the API inventory.",
            inventory.services,
        );
        e.single(
            "observer_inventory_endpoints",
            MetricType::Gauge,
            "Endpoints in the API inventory.",
            inventory.endpoints,
        );
        let stats = &inventory.stats;
        e.family(
            "observer_inventory_cap_hits_total",
            MetricType::Counter,
            "Calls or labels the inventory counted but did not keep because a cap was reached.",
        );
        for (cap, n) in [
            ("services", stats.services_capped),
            ("endpoints", stats.endpoints_capped),
            ("path_segments", stats.tree_capped),
            ("labels", stats.labels_dropped),
        ] {
            e.sample(&[("cap", cap)], n);
        }
        e.single(
            "observer_inventory_flush_errors_total",
            MetricType::Counter,
            "Failed writes of the inventory to the state directory.",
            stats.flush_errors,
        );
    }
    e.family(
        "observer_tls_processes",
        MetricType::Gauge,
        "Running processes by TLS coverage: decrypted, partial, dark (TLS the agent cannot \
         read; `observer coverage` says why), or no TLS seen.",
    );
    for status in [
        TlsStatus::Decrypted,
        TlsStatus::Partial,
        TlsStatus::Dark,
        TlsStatus::NoTlsSeen,
    ] {
        let n = snapshot.tls_processes.get(&status).copied().unwrap_or(0);
        e.sample(&[("status", status.label())], n);
    }
}

#[cfg(test)]
mod tests;
