//! The inventory on captures of three real APIs, without root: the pcap files under
//! `fixtures/inventory/captures/` were recorded with tcpdump from the apps in
//! `fixtures/inventory/apps/` (Flask, FastAPI on uvicorn, Go net/http) while `client.py`
//! exercised every route; `*.routes.json` is what each framework declares (`--routes`).
//!
//! Each capture is replayed through the same pipeline `observer replay` runs, and the
//! inventory's templates must be exactly the declared routes (precision and recall are
//! printed). The FastAPI app's OpenAPI export is also a golden file: on a mismatch the actual
//! document is written beside it (`*.actual.yaml`) to compare or adopt.
//!
//! `tests/tests/inventory_real_apis.rs` (privileged) records fresh captures of the same apps and
//! checks the export with the real OpenAPI validator and the diff categories.

use std::{
    cell::RefCell,
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    rc::Rc,
};

use observer::{
    inventory::{openapi, Inventory},
    model::ApiCall,
    output::{ChangeKind, Output},
    pcap,
    pipeline::{Analyzer, Pipeline, PipelineConfig},
};

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory/captures")
}

/// The inventory, shared with the pipeline that owns its analyzer box.
struct Shared(Rc<RefCell<Inventory>>);

impl Analyzer for Shared {
    fn analyze(&mut self, call: &mut ApiCall, out: &mut Vec<Output>) {
        self.0.borrow_mut().analyze(call, out);
    }

    fn tick(&mut self, now_ns: u64, out: &mut Vec<Output>) {
        self.0.borrow_mut().tick(now_ns, out);
    }

    fn finish(&mut self, out: &mut Vec<Output>) {
        self.0.borrow_mut().finish(out);
    }
}

/// Replay a capture; the inventory and every output it produced.
fn replay(name: &str) -> (Rc<RefCell<Inventory>>, Vec<Output>) {
    let inventory = Rc::new(RefCell::new(Inventory::in_memory()));
    let mut pipeline = Pipeline::new(PipelineConfig::default());
    pipeline.add_analyzer(Box::new(Shared(inventory.clone())));
    let mut outputs = Vec::new();
    pcap::replay(
        &captures().join(format!("{name}.pcap")),
        &mut pipeline,
        |p| {
            outputs.extend(p.take_outputs());
            Ok(())
        },
    )
    .expect("the capture replays");
    pipeline.finish();
    outputs.extend(pipeline.take_outputs());
    (inventory, outputs)
}

fn normalize(route: &str) -> String {
    route
        .split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn check(name: &str) {
    let declared: BTreeSet<(String, String)> = serde_json::from_str::<Vec<(String, String)>>(
        &fs::read_to_string(captures().join(format!("{name}.routes.json")))
            .expect("the declared routes fixture"),
    )
    .expect("declared routes are [method, path] pairs")
    .into_iter()
    .collect();
    let (inventory, outputs) = replay(name);
    let inventory = inventory.borrow();
    assert_eq!(inventory.services().len(), 1, "one service");
    let observed: BTreeSet<(String, String)> = inventory.services()[0]
        .endpoints()
        .iter()
        .map(|e| (e.method.to_string(), normalize(&e.route)))
        .collect();
    let right = observed.intersection(&declared).count() as f64;
    println!(
        "{name}: template precision {:.3}, recall {:.3}",
        right / observed.len() as f64,
        right / declared.len() as f64
    );
    assert_eq!(
        observed, declared,
        "{name}: templates against declared routes"
    );

    // Calls whose request was seen (a capture may miss the start of a connection).
    let calls = outputs
        .iter()
        .filter(|o| matches!(o, Output::Call(call) if call.method.is_some()))
        .count();
    let counted: u64 = inventory.services()[0]
        .endpoints()
        .iter()
        .map(|e| e.facts.calls)
        .sum();
    assert_eq!(counted, calls as u64, "every call counted once");
    // Every call carries its route, and every endpoint was announced.
    assert!(outputs.iter().all(|o| match o {
        Output::Call(call) => call.route.is_some(),
        _ => true,
    }));
    let new_endpoints = outputs
        .iter()
        .filter(|o| matches!(o, Output::Inventory(c) if c.change == ChangeKind::NewEndpoint))
        .count();
    assert!(new_endpoints >= observed.len());
}

#[test]
fn flask_bookstore_capture() {
    check("flask");
}

#[test]
fn fastapi_users_capture() {
    check("fastapi");
}

#[test]
fn go_key_value_capture() {
    check("go");
}

#[test]
fn fastapi_openapi_export_is_stable() {
    let (inventory, _) = replay("fastapi");
    let inventory = inventory.borrow();
    let document = openapi::document(&inventory.services()[0]);
    let actual = serde_norway::to_string(&document).unwrap();
    let golden = captures().join("fastapi.openapi.yaml");
    let expected = fs::read_to_string(&golden).unwrap_or_default();
    if actual != expected {
        let written = captures().join("fastapi.openapi.actual.yaml");
        fs::write(&written, &actual).unwrap();
        panic!(
            "the export differs from {}: the actual document is in {}",
            golden.display(),
            written.display()
        );
    }
    // What the golden file shows, in words: the JWT scheme, typed parameters, body schemas.
    assert!(actual.contains("bearerFormat: JWT"));
    assert!(actual.contains("/users/{id}/sessions/{sessionId}:"));
    assert!(actual.contains("format: email"));
}
