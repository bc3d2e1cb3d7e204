//! The fuzz stage: a short libFuzzer run of every cargo-fuzz target in `fuzz/`.
//!
//! Short on purpose: it catches shallow crashes on every change; long runs are done by hand (see
//! `fuzz/README.md`). A target gets the dictionary of its family when `fuzz/` has one.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{
    build::{cargo, Built},
    cmd, host,
    toolchain::NIGHTLY,
};

/// How long each fuzz target runs: enough to shake out shallow crashes on every change while
/// keeping the whole test run well under 30 minutes.
const FUZZ_SECONDS: u64 = 20;

/// libFuzzer's limit for one input (its default, 1200 s, is longer than the whole run): a parser
/// that spends this long on one input is hung, and should fail as such.
const FUZZ_INPUT_TIMEOUT_SECONDS: u64 = 10;

/// The fuzz crate's directory, relative to the repository root (cargo-fuzz's default layout).
const FUZZ_DIR: &str = "fuzz";

/// Runs every target; the `Ok` string is a note for the summary.
pub fn run(built: &Built) -> Result<String> {
    let root = host::repo_root();
    let fuzz_dir = root.join(FUZZ_DIR);
    if !fuzz_dir.join("Cargo.toml").is_file() {
        return Ok(format!("no {FUZZ_DIR}/ crate, nothing to fuzz"));
    }
    // cargo-fuzz needs nightly for the sanitizer and coverage flags it passes to rustc.
    let cargo_fuzz = || {
        let mut cargo = cargo(root, built);
        cargo.arg(format!("+{NIGHTLY}")).arg("fuzz");
        cargo
    };
    let targets = cmd::stdout_of(cargo_fuzz().arg("list"))?;
    let targets: Vec<&str> = targets.split_whitespace().collect();
    if targets.is_empty() {
        return Ok("no fuzz targets".to_owned());
    }
    let dictionaries = dictionaries(&fuzz_dir)?;
    // One build for all targets, so each run below starts fuzzing at once.
    cmd::run(cargo_fuzz().arg("build"))?;
    for target in &targets {
        let mut run = cargo_fuzz();
        run.args(["run", target, "--"]).args([
            format!("-max_total_time={FUZZ_SECONDS}"),
            format!("-timeout={FUZZ_INPUT_TIMEOUT_SECONDS}"),
        ]);
        if let Some(dictionary) = dictionary_for(target, &dictionaries) {
            run.arg(format!("-dict={}", dictionary.display()));
        }
        cmd::run(&mut run)?;
    }
    Ok(format!("{} targets, {FUZZ_SECONDS} s each", targets.len()))
}

/// The libFuzzer dictionaries (`*.dict`) at the top of the fuzz crate.
fn dictionaries(fuzz_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(fuzz_dir)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "dict")
        {
            found.push(path);
        }
    }
    Ok(found)
}

/// The dictionary for `target`: the one whose name is the longest prefix of the target's, so
/// `http1.dict` serves `http1_session` and every other `http1_*` target.
fn dictionary_for<'a>(target: &str, dictionaries: &'a [PathBuf]) -> Option<&'a PathBuf> {
    dictionaries
        .iter()
        .filter_map(|path| Some((path, path.file_stem()?.to_str()?)))
        .filter(|(_, stem)| target.starts_with(stem))
        .max_by_key(|(_, stem)| stem.len())
        .map(|(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_gets_the_dictionary_of_its_family() {
        let dictionaries = [
            PathBuf::from("fuzz/http1.dict"),
            PathBuf::from("fuzz/http1_session.dict"),
        ];
        let pick = |target| dictionary_for(target, &dictionaries).and_then(|path| path.to_str());
        assert_eq!(pick("http1_request_parser"), Some("fuzz/http1.dict"));
        assert_eq!(pick("http1_session"), Some("fuzz/http1_session.dict"));
        assert_eq!(pick("grpc_frames"), None);
    }
}
