//! How bad a finding is. In a file of its own, free of the rest of `findings`, so the sensitive
//! scanner (which names a default severity per type) builds alone in the fuzz crate.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}
