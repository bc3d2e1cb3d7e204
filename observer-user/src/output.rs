//! What the agent writes, in one stream: API calls, findings, inventory changes.
//!
//! Every item is a JSON object with an `event.name` (`api.call`, `api.finding`,
//! `api.inventory.change`), so one consumer can read the whole stream and tell them apart.

use serde::{Deserialize, Serialize};

use crate::{
    findings::{EndpointRef, Finding},
    model::ApiCall,
};

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
    #[serde(rename = "inventory.change")]
    pub change: ChangeKind,
    #[serde(rename = "service.name")]
    pub service: String,
    /// The service's address and port, and the endpoint when the change is about one.
    #[serde(flatten)]
    pub endpoint: EndpointRef,
    /// What changed, in words ("new query parameter `page` (integer)").
    #[serde(
        rename = "inventory.details",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub details: Vec<String>,
}

/// What an inventory change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    NewService,
    NewEndpoint,
    /// A query or header parameter not seen on the endpoint before.
    NewParameter,
    /// A JSON body field not seen on the endpoint before.
    NewField,
    NewStatusCode,
    NewCaller,
    /// Against a spec loaded with `run --spec`: an endpoint the spec does not declare.
    ShadowEndpoint,
    /// Against a spec: a deprecated operation called, or an older version still answering.
    ZombieEndpoint,
    /// Against a spec: traffic disagrees with the operation (parameter, field, status, content
    /// type, auth).
    Drift,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::NewService => "new_service",
            ChangeKind::NewEndpoint => "new_endpoint",
            ChangeKind::NewParameter => "new_parameter",
            ChangeKind::NewField => "new_field",
            ChangeKind::NewStatusCode => "new_status_code",
            ChangeKind::NewCaller => "new_caller",
            ChangeKind::ShadowEndpoint => "shadow_endpoint",
            ChangeKind::ZombieEndpoint => "zombie_endpoint",
            ChangeKind::Drift => "drift",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
