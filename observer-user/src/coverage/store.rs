//! The coverage section of the state directory: the live agent's rows, one per process, kept
//! current every few seconds, for `observer coverage` to read while the agent runs or after.
//!
//! Each run of the agent writes under its own run id (its start time), and readers show the
//! newest run: pids are reused across runs and boots, so rows of different runs never merge.
//! Rows are the tracker's [`ProcessCoverage`] as JSON, so a new field is a default, not a
//! migration. Schema changes are migrations appended to [`MIGRATIONS`].

use std::path::Path;

use rusqlite::params;
use thiserror::Error;

use super::ProcessCoverage;
use crate::state::{State, StateError};

/// This component's name in `schema_versions`.
pub const COMPONENT: &str = "coverage";

pub const MIGRATIONS: &[&str] = &["
    CREATE TABLE tls_coverage (
        run INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        row TEXT NOT NULL,
        PRIMARY KEY (run, pid)
    );
"];

/// Runs kept in the table: the newest is what readers show, a few older ones stay for
/// comparison by hand; older ones are deleted when a run starts.
const RUNS_KEPT: i64 = 5;

#[derive(Debug, Error)]
pub enum CoverageStoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot encode a coverage row: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "no TLS coverage in {0}: the agent writes it while it runs (`observer run --state-dir DIR`)"
    )]
    Empty(String),
}

impl From<rusqlite::Error> for CoverageStoreError {
    fn from(error: rusqlite::Error) -> Self {
        CoverageStoreError::State(StateError::Sql(error))
    }
}

/// The live agent's writer.
pub struct CoverageStore {
    state: State,
    run: i64,
}

impl CoverageStore {
    /// Take over the state database for run `run` (the agent's start, in wall-clock ns).
    pub fn open(mut state: State, run: i64) -> Result<CoverageStore, CoverageStoreError> {
        state.migrate(COMPONENT, MIGRATIONS)?;
        state.connection().execute(
            "DELETE FROM tls_coverage WHERE run NOT IN
                 (SELECT DISTINCT run FROM tls_coverage ORDER BY run DESC LIMIT ?1)",
            params![RUNS_KEPT - 1],
        )?;
        Ok(CoverageStore { state, run })
    }

    /// Replace this run's rows with `rows`, in one transaction.
    pub fn save(&mut self, rows: &[ProcessCoverage]) -> Result<(), CoverageStoreError> {
        let run = self.run;
        let transaction = self.state.connection_mut().transaction()?;
        transaction.execute("DELETE FROM tls_coverage WHERE run = ?1", params![run])?;
        {
            let mut insert = transaction
                .prepare_cached("INSERT INTO tls_coverage (run, pid, row) VALUES (?1, ?2, ?3)")?;
            for row in rows {
                let json = serde_json::to_string(row).map_err(CoverageStoreError::Encode)?;
                insert.execute(params![run, row.pid, json])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

/// The newest run's rows in the state directory `dir`. Rows that do not decode are skipped.
pub fn load(dir: &Path) -> Result<Vec<ProcessCoverage>, CoverageStoreError> {
    let mut state = State::open(dir)?;
    state.migrate(COMPONENT, MIGRATIONS)?;
    let connection = state.connection();
    let mut statement = connection.prepare(
        "SELECT row FROM tls_coverage WHERE run = (SELECT MAX(run) FROM tls_coverage)
         ORDER BY pid",
    )?;
    let rows: Vec<ProcessCoverage> = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .filter_map(|json| {
            let json = json.ok()?;
            serde_json::from_str(&json)
                .inspect_err(|error| tracing::warn!("skipping a coverage row: {error}"))
                .ok()
        })
        .collect();
    if rows.is_empty() {
        return Err(CoverageStoreError::Empty(dir.display().to_string()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_run_is_what_readers_see() {
        let dir = crate::state::test_dir("coverage-runs");
        let row = |pid| ProcessCoverage {
            pid,
            tls_connections: 1,
            ..ProcessCoverage::default()
        };
        let mut old = CoverageStore::open(State::open(&dir).unwrap(), 1).unwrap();
        old.save(&[row(10), row(11)]).unwrap();
        let mut new = CoverageStore::open(State::open(&dir).unwrap(), 2).unwrap();
        new.save(&[row(20)]).unwrap();
        new.save(&[row(20), row(21)]).unwrap();
        let pids: Vec<u32> = load(&dir).unwrap().iter().map(|r| r.pid).collect();
        assert_eq!(pids, [20, 21]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_empty_state_directory_says_how_to_fill_it() {
        let dir = crate::state::test_dir("coverage-empty");
        let error = load(&dir).unwrap_err().to_string();
        assert!(error.contains("observer run"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
