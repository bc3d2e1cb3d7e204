//! Bodies sent in a content coding (gzip), through the whole pipeline from kernel events: the
//! inventory learns a compressed answer's schema, and attack detection reads a compressed
//! request's payload, which a scanner of the bytes as sent would never see (compressing a
//! request body is a way past filters that read bodies as sent).

use std::{cell::RefCell, rc::Rc};

mod common;

use common::{call_events_in_pieces, gzip};
use observer::{
    detect::{config::DetectConfig, Detector},
    inventory::{openapi, Inventory},
    model::ApiCall,
    output::Output,
    pipeline::{Analyzer, Pipeline, PipelineConfig},
    sensitive::keyed::HashKey,
};
use observer_common::ConnId;

const CLIENT: ConnId = ConnId {
    tgid: 410,
    fd: 7,
    generation: 3,
};

/// `head` (without its blank line) and `body`, with the body's length.
fn message(head: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The kernel events of a client's calls, one connection each.
fn events(calls: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<u8>> {
    calls
        .iter()
        .zip(0..)
        .flat_map(|((request, response), i)| {
            let conn = ConnId {
                fd: CLIENT.fd + i,
                ..CLIENT
            };
            call_events_in_pieces(conn, request, &[(0, response)])
        })
        .collect()
}

/// The inventory, shared with the pipeline that owns its analyzer box.
struct Shared(Rc<RefCell<Inventory>>);

impl Analyzer for Shared {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) {
        self.0.borrow_mut().analyze(call, out);
    }
}

#[test]
fn compressed_bodies_are_read_by_the_inventory_and_detection() {
    // Filters enough for the compressor to code the payload's letters (a short body may be
    // stored as it is, and readable without decoding).
    let filters = (0..40)
        .map(|i| format!(r#"{{"field":"tag","value":"t{i}"}}"#))
        .collect::<Vec<_>>()
        .join(",");
    let probe = format!(
        r#"{{"filters":[{filters}],"q":"1' UNION SELECT username, password FROM users--"}}"#
    );
    let compressed_probe = gzip(probe.as_bytes());
    assert!(
        !compressed_probe.windows(5).any(|w| w == b"UNION"),
        "the payload is readable as compressed"
    );
    let answer = br#"{"id":7,"display_name":"Ann","plan":{"tier":"pro","seats":12}}"#;
    let calls = [
        (
            message(
                "POST /api/search HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n\
                 Content-Encoding: gzip",
                &compressed_probe,
            ),
            message("HTTP/1.1 200 OK\r\nContent-Type: application/json", b"[]"),
        ),
        (
            message("GET /api/accounts/7 HTTP/1.1\r\nHost: shop", b""),
            message(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip",
                &gzip(answer),
            ),
        ),
    ];
    let inventory = Rc::new(RefCell::new(Inventory::in_memory()));
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    pipeline.add_analyzer(Box::new(Shared(inventory.clone())));
    let detector = Detector::new(DetectConfig::default(), HashKey::from_clock(), None, None)
        .expect("the detector");
    pipeline.add_analyzer(Box::new(detector));
    let mut outputs = Vec::new();
    for event in events(&calls) {
        pipeline.push_kernel_event(&event);
        outputs.extend(pipeline.take_outputs());
    }
    pipeline.finish();
    outputs.extend(pipeline.take_outputs());
    let shown: Vec<String> = outputs
        .iter()
        .map(|o| serde_json::to_string(o).expect("json"))
        .collect();

    assert!(
        shown
            .iter()
            .any(|line| line.contains(r#""finding.kind":"sql_injection""#)
                && line.contains("/api/search")),
        "no SQL injection found in the compressed request:\n{}",
        shown.join("\n")
    );
    let inventory = inventory.borrow();
    let document =
        serde_json::to_string(&openapi::document(&inventory.services()[0])).expect("json");
    for property in ["display_name", "tier", "seats"] {
        assert!(
            document.contains(&format!("\"{property}\"")),
            "{property} is not in the compressed answer's schema: {document}"
        );
    }
}
