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

pub mod analyzer;
pub mod bytes;
pub mod corpus;
pub mod delimited;
pub mod fields;
pub mod hints;
pub mod json;
pub mod keyed;
pub mod labels;
pub mod markup;
pub mod mask;
pub mod policy;
pub mod recent;
pub mod scan;
pub mod types;
pub mod validate;

use std::{path::Path, sync::Arc};

use thiserror::Error;

use self::{
    analyzer::SensitiveAnalyzer,
    keyed::{HashKey, KeyError},
    policy::{Policy, PolicyError},
    scan::{Scanner, ScannerError},
};
use crate::{
    redact::{RedactionMode, Redactor},
    state::{State, StateError},
};

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Scanner(#[from] ScannerError),
}

/// The two halves of sensitive-data handling, sharing one policy, scanner and key.
pub struct Detectors {
    /// Hides recognised values in every call before it is serialized.
    pub redactor: Redactor,
    /// Reports findings and endpoint labels (an analyzer, added to the pipeline).
    pub analyzer: SensitiveAnalyzer,
    /// The installation's key (or this run's), for other analyzers that key what they keep
    /// of credentials the same way (attack detection's principals).
    pub key: HashKey,
}

/// Builds the detectors: the policy from `policy_path` (built-in rules alone without one), the
/// hashing key from `state_dir` (made on first use; a key for this run only without one), and
/// the findings store in `state_dir`'s database (in memory without one).
pub fn detectors(
    policy_path: Option<&Path>,
    state_dir: Option<&Path>,
    mode: RedactionMode,
) -> Result<Detectors, SetupError> {
    let policy = match policy_path {
        Some(path) => Policy::load(path)?,
        None => Policy::default(),
    };
    let scanner = if policy.custom_types().is_empty() {
        Scanner::builtin()
    } else {
        Arc::new(Scanner::new(policy.custom_types())?)
    };
    let (state, key) = match state_dir {
        Some(dir) => {
            let state = State::open(dir)?;
            (Some(state), HashKey::load_or_create(dir)?)
        }
        None => (None, HashKey::random()?),
    };
    let redactor = Redactor::with_detectors(mode, scanner.clone(), key.clone());
    let analyzer = SensitiveAnalyzer::new(scanner, Arc::new(policy), key.clone(), state)?;
    Ok(Detectors {
        redactor,
        analyzer,
        key,
    })
}
