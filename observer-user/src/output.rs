//! What the agent writes, in one stream: API calls, findings, inventory changes.
//!
//! Every item is a JSON object with an `event.name` (`api.call`, `api.finding`,
//! `api.inventory.change`), so one consumer can read the whole stream and tell them apart.

use serde::{Deserialize, Serialize};

use crate::{findings::Finding, model::ApiCall};

/// One item of the output stream.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "calls are nearly every item; boxing them would allocate per call to save space on rare findings"
)]
pub enum Output {
    Call(ApiCall),
    Finding(Finding),
    Inventory(InventoryChange),
}

impl Serialize for Output {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Output::Call(call) => call.serialize(serializer),
            Output::Finding(finding) => finding.serialize(serializer),
            Output::Inventory(change) => change.serialize(serializer),
        }
    }
}

/// A change to the API inventory, reported the moment it is seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryChange {
    /// Always `api.inventory.change`.
    #[serde(rename = "event.name")]
    pub event_name: String,
    pub timestamp: String,
    /// `new_service`, `new_endpoint`, `changed_endpoint`, ...
    #[serde(rename = "inventory.change")]
    pub change: String,
    #[serde(rename = "service.name")]
    pub service: String,
    #[serde(
        rename = "http.request.method",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub method: Option<String>,
    #[serde(
        rename = "http.route",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub route: Option<String>,
    /// What changed, in words ("new query parameter `page` (integer)").
    #[serde(
        rename = "inventory.details",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub details: Vec<String>,
}
