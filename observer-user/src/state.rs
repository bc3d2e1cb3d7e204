//! The state directory: what users rely on across restarts (inventory, findings, baselines), in
//! one embedded SQLite database.
//!
//! Each component owns its tables and migrates them itself (`State::migrate`), so components
//! evolve independently; the database is in WAL mode, so the CLI commands read while the agent
//! writes. Writers batch their changes and commit every few seconds: a crash loses at most the
//! last batch.

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

/// Where `observer run` keeps its state unless told otherwise (`--state-dir`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/observer";

/// The database file inside the state directory.
pub const DATABASE_FILE: &str = "observer.db";

/// How long a connection waits for another writer before giving up: the agent commits small
/// batches, so a reader or a second writer never waits long.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum StateError {
    #[error(
        "cannot create the state directory {path}: {source} (choose another with --state-dir)"
    )]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the state database was written by a newer observer ({component} schema {found}, this \
         one knows up to {known}): upgrade observer or use another --state-dir"
    )]
    TooNew {
        component: String,
        found: u32,
        known: u32,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// An open connection to the state database.
pub struct State {
    connection: Connection,
    path: Option<PathBuf>,
}

impl State {
    /// Open (creating if needed) the database in `dir`, readable by root only: it holds what the
    /// agent learnt about every API on the host.
    pub fn open(dir: &Path) -> Result<State, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        let path = dir.join(DATABASE_FILE);
        let connection = Connection::open(&path).map_err(|source| StateError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
        State::configure(connection, Some(path))
    }

    /// A private database in memory: for replays without a state directory, and for tests.
    pub fn in_memory() -> Result<State, StateError> {
        let connection = Connection::open_in_memory().map_err(|source| StateError::Open {
            path: ":memory:".into(),
            source,
        })?;
        State::configure(connection, None)
    }

    fn configure(connection: Connection, path: Option<PathBuf>) -> Result<State, StateError> {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer. NORMAL sync: a crash can lose the last commit
        // but never corrupt the database, which is the trade the agent wants.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_versions (
                component TEXT PRIMARY KEY,
                version INTEGER NOT NULL
            )",
        )?;
        Ok(State { connection, path })
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }

    /// Bring `component`'s tables up to date: run the migrations after the recorded version, in
    /// one transaction each. Migrations are append-only: never edit one that has shipped.
    pub fn migrate(&mut self, component: &str, migrations: &[&str]) -> Result<(), StateError> {
        let known = migrations.len() as u32;
        let current: u32 = self
            .connection
            .query_row(
                "SELECT version FROM schema_versions WHERE component = ?1",
                params![component],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if current > known {
            return Err(StateError::TooNew {
                component: component.to_string(),
                found: current,
                known,
            });
        }
        for (index, migration) in migrations.iter().enumerate().skip(current as usize) {
            let transaction = self.connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                params![component, index as u32 + 1],
            )?;
            transaction.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[&str] = &[
        "CREATE TABLE things (name TEXT PRIMARY KEY)",
        "ALTER TABLE things ADD COLUMN seen INTEGER NOT NULL DEFAULT 0",
    ];

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("observer-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn migrations_run_once_and_survive_reopening() {
        let dir = temp_dir("migrate");
        {
            let mut state = State::open(&dir).unwrap();
            state.migrate("things", &MIGRATIONS[..1]).unwrap();
            state
                .connection()
                .execute("INSERT INTO things (name) VALUES ('a')", [])
                .unwrap();
        }
        // A newer agent adds a migration; the data stays.
        let mut state = State::open(&dir).unwrap();
        state.migrate("things", MIGRATIONS).unwrap();
        state.migrate("things", MIGRATIONS).unwrap();
        let seen: i64 = state
            .connection()
            .query_row("SELECT seen FROM things WHERE name = 'a'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 0);
        let mode = fs::metadata(dir.join(DATABASE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_database_from_a_newer_agent_is_refused_with_a_way_out() {
        let mut state = State::in_memory().unwrap();
        state.migrate("things", MIGRATIONS).unwrap();
        let error = state
            .migrate("things", &MIGRATIONS[..1])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("newer observer") && error.contains("--state-dir"),
            "{error}"
        );
    }
}
