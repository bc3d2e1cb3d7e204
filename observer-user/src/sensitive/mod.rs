//! Sensitive data: personal data and secrets found in API traffic.
//!
//! ```text
//! ApiCall ─> fields (structure: headers, cookies, query, JSON paths, form) ─> scan (prefilter,
//!            patterns, validators, field-name hints) ─> findings, endpoint labels, redaction
//! ```
//!
//! The detectors sit in the analyzer stage (they see each call before redaction) and in
//! `redact`, which uses the same scanner to hide every value it recognises before anything is
//! serialized.

pub mod corpus;
pub mod fields;
pub mod hints;
pub mod json;
pub mod keyed;
pub mod mask;
pub mod scan;
pub mod types;
pub mod validate;
