use std::collections::{BTreeMap, BTreeSet};

use super::{
    server::{respond, METRICS_PATH},
    text::{is_valid_label_name, is_valid_name, CONTENT_TYPE},
    *,
};
use crate::{
    conn::Role, findings::Severity, inventory::InventoryStats, pipeline::InventoryTotals,
    sensitive::analyzer::SensitiveStats,
};

const UPTIME: Uptime = Uptime {
    uptime: Duration::from_millis(2500),
    started_unix: 1_700_000_000.25,
};

/// A snapshot with something in every part.
fn snapshot() -> Snapshot {
    let mut pipeline = PipelineStats {
        bytes_captured: 1234,
        api_calls: 5,
        api_calls_filtered: 2,
        segments_without_role: 1,
        ..PipelineStats::default()
    };
    pipeline.events.insert("data", 40);
    pipeline.events.insert("conn_open", 3);
    pipeline.decode_errors.insert("too_short", 2);
    pipeline.parse_errors.insert("invalid_head", 7);
    pipeline
        .api_calls_by_role
        .entry("client")
        .or_default()
        .insert("complete", 3);
    pipeline
        .api_calls_by_role
        .entry("server")
        .or_default()
        .insert("no_response", 2);
    pipeline
        .findings
        .entry("sql_injection")
        .or_default()
        .insert("high", 1);
    pipeline.connections.connections_opened = 3;
    pipeline.connections.connections_closed = 2;
    let mut sensitive = SensitiveStats::default();
    sensitive.values_by_type.insert("email".into(), 4);
    Snapshot {
        pipeline,
        connections_open: 1,
        kernel: None,
        analyzers: AnalyzerStats {
            inventory: Some(InventoryTotals {
                services: 2,
                endpoints: 9,
                stats: InventoryStats {
                    endpoints_capped: 6,
                    ..InventoryStats::default()
                },
            }),
            sensitive: Some(sensitive),
        },
        tls_processes: BTreeMap::from([(TlsStatus::Dark, 1), (TlsStatus::Decrypted, 3)]),
    }
}

/// `name{labels} value` lines as (name, labels, value).
fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            (name.to_string(), labels.to_string(), value.to_string())
        })
        .collect()
}

fn value(text: &str, name: &str, labels: &str) -> Option<String> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| v)
}

#[test]
fn every_family_has_one_help_and_type_before_its_samples() {
    let text = render(Some(&snapshot()), UPTIME);
    let mut declared: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_string();
            *declared.entry(name.clone()).or_default() += 1;
            current = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap_or_default();
            let kind = words.next().unwrap_or_default();
            assert_eq!(
                Some(name),
                current.as_deref(),
                "TYPE without its HELP: {line}"
            );
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "counters, and only counters, end in _total: {line}"
            );
        } else {
            let (name, labels, value) = &samples(line)[0];
            assert_eq!(
                Some(name.as_str()),
                current.as_deref(),
                "stray sample {line}"
            );
            assert!(value.parse::<f64>().is_ok(), "{line}");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (label, _) = pair.split_once('=').expect("label=value");
                assert!(is_valid_label_name(label), "{line}");
            }
        }
    }
    for (name, count) in &declared {
        assert!(name.starts_with("observer_"), "{name}");
        assert!(is_valid_name(name), "{name}");
        assert_eq!(*count, 1, "{name} declared {count} times");
    }
}

#[test]
fn counters_show_the_snapshot() {
    let text = render(Some(&snapshot()), UPTIME);
    let v = |name, labels| value(&text, name, labels);
    assert_eq!(
        v(
            "observer_api_calls_total",
            r#"role="client",status="complete""#
        )
        .as_deref(),
        Some("3")
    );
    assert_eq!(
        v(
            "observer_api_calls_total",
            r#"role="server",status="no_response""#
        )
        .as_deref(),
        Some("2")
    );
    // Every role and status is there, at zero until it counts.
    assert_eq!(
        v(
            "observer_api_calls_total",
            r#"role="unknown",status="no_request""#
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        samples(&text)
            .iter()
            .filter(|(n, _, _)| n == "observer_api_calls_total")
            .count(),
        9
    );
    assert_eq!(
        v("observer_captured_bytes_total", "").as_deref(),
        Some("1234")
    );
    assert_eq!(
        v("observer_events_received_total", r#"kind="data""#).as_deref(),
        Some("40")
    );
    assert_eq!(
        v("observer_events_received_total", r#"kind="process_exit""#).as_deref(),
        Some("0")
    );
    assert_eq!(
        v(
            "observer_events_lost_total",
            r#"side="agent",reason="undecodable_event""#
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        v("observer_parse_errors_total", r#"kind="invalid_head""#).as_deref(),
        Some("7")
    );
    assert_eq!(
        v(
            "observer_findings_total",
            r#"kind="sql_injection",severity="high""#
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        v("observer_sensitive_values_total", r#"type="email""#).as_deref(),
        Some("4")
    );
    assert_eq!(v("observer_inventory_endpoints", "").as_deref(), Some("9"));
    assert_eq!(v("observer_connections_open", "").as_deref(), Some("1"));
    assert_eq!(
        v("observer_inventory_cap_hits_total", r#"cap="endpoints""#).as_deref(),
        Some("6")
    );
    assert_eq!(
        v("observer_tls_processes", r#"status="dark""#).as_deref(),
        Some("1")
    );
    assert_eq!(v("observer_uptime_seconds", "").as_deref(), Some("2.5"));
    assert_eq!(
        v("observer_start_time_seconds", "").as_deref(),
        Some("1700000000.25")
    );
    // Without the kernel's counters (a failed read), its families are left out, not zeroed.
    assert_eq!(
        v("observer_kernel_events_attempted_total", r#"kind="data""#),
        None
    );
}

#[test]
fn label_values_come_from_fixed_sets() {
    let text = render(Some(&snapshot()), UPTIME);
    let allowed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::from([
        ("role", BTreeSet::from(ROLES)),
        (
            "status",
            ["complete", "no_response", "no_request"]
                .into_iter()
                .chain(["decrypted", "partial", "dark", "no_tls_seen"])
                .collect(),
        ),
        (
            "kind",
            EventKind::ALL
                .into_iter()
                .map(kind_name)
                .chain(["invalid_head", "sql_injection"])
                .collect(),
        ),
        ("side", BTreeSet::from(["kernel", "agent"])),
        (
            "outcome",
            BTreeSet::from(["echoed", "missing", "dropped", "left_at_close"]),
        ),
        (
            "reason",
            KERNEL_LOSSES
                .iter()
                .map(|(_, r)| *r)
                .chain([
                    "ring_buffer_full",
                    "undecodable_event",
                    "data_before_role",
                    "connection_over_limit",
                    "too_short",
                ])
                .collect(),
        ),
        ("severity", Severity::ALL.map(Severity::as_str).into()),
        ("type", BTreeSet::from(["email"])),
        (
            "cap",
            BTreeSet::from(["services", "endpoints", "path_segments", "labels"]),
        ),
        ("version", BTreeSet::from([env!("CARGO_PKG_VERSION")])),
    ]);
    for (name, labels, _) in samples(&text) {
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (label, value) = pair.split_once('=').expect("label=value");
            let value = value.trim_matches('"');
            let set = allowed
                .get(label)
                .unwrap_or_else(|| panic!("unexpected label {label} on {name}"));
            assert!(set.contains(value), "{name}: {label}={value}");
        }
    }
}

#[test]
fn before_the_first_snapshot_only_build_and_uptime_are_shown() {
    let text = render(None, UPTIME);
    let names: BTreeSet<String> = samples(&text).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "observer_build_info".to_string(),
            "observer_start_time_seconds".to_string(),
            "observer_uptime_seconds".to_string()
        ])
    );
}

#[test]
fn labels_are_spelled_as_the_output_spells_them() {
    for role in [Role::Client, Role::Server] {
        assert_eq!(
            serde_json::to_value(role).ok(),
            Some(serde_json::json!(role.as_str()))
        );
    }
    for status in CallStatus::ALL {
        assert_eq!(
            serde_json::to_value(status).ok(),
            Some(serde_json::json!(status.as_str()))
        );
    }
    for severity in Severity::ALL {
        assert_eq!(
            serde_json::to_value(severity).ok(),
            Some(serde_json::json!(severity.as_str()))
        );
    }
}

#[test]
fn published_snapshots_replace_each_other() {
    let published = Published::default();
    assert!(published.latest().is_none());
    published.publish(snapshot());
    let mut second = snapshot();
    second.connections_open = 42;
    published.publish(second);
    assert_eq!(published.latest().map(|s| s.connections_open), Some(42));
}

fn metrics() -> String {
    "observer_uptime_seconds 1\n".to_string()
}

#[test]
fn get_metrics_is_served_in_the_text_format() {
    let response = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", metrics).expect("complete");
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, CONTENT_TYPE);
    let bytes = String::from_utf8(response.to_bytes()).expect("utf-8");
    assert!(bytes.starts_with("HTTP/1.1 200 OK\r\n"), "{bytes}");
    assert!(bytes.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(bytes.contains("Content-Length: 26\r\n"));
    assert!(bytes.ends_with("\r\n\r\nobserver_uptime_seconds 1\n"));

    let query = respond(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", metrics).expect("complete");
    assert_eq!(query.status, 200);
    let head = respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", metrics).expect("complete");
    let bytes = String::from_utf8(head.to_bytes()).expect("utf-8");
    assert!(bytes.ends_with("Content-Length: 26\r\nConnection: close\r\n\r\n"));
}

#[test]
fn other_requests_are_refused_without_rendering() {
    let never = || -> String { panic!("rendered for a request that does not want metrics") };
    let status = |request: &[u8]| respond(request, never).map(|r| r.status);
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), Some(404));
    assert_eq!(status(b"GET /metricsx HTTP/1.1\r\n\r\n"), Some(404));
    assert_eq!(status(b"GET /metrics/ HTTP/1.1\r\n\r\n"), Some(404));
    assert_eq!(status(b"POST /metrics HTTP/1.1\r\n\r\n"), Some(405));
    assert_eq!(status(b"\x00\x01garbage\r\n\r\n"), Some(400));
    // Incomplete: wait for more.
    assert_eq!(status(b"GET /metrics HTTP/1.1\r\nHost"), None);
    assert_eq!(status(b""), None);
    assert!(METRICS_PATH.starts_with('/'));
}
