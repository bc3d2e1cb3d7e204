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
    sync::mpsc::{self, RecvTimeoutError},
    thread,
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

/// How often a database on disk has its write-ahead log copied back into it, off the thread
/// that writes: SQLite's own checkpoints run inside the commit that crosses the log's limit,
/// and took 40-60 ms there (the fsync of a few MB), on the agent's thread that reads the ring
/// buffer, which fills in ~30 ms at this machine's saturation.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The log's size, in pages, past which a commit checkpoints anyway: only if the background
/// checkpoints cannot keep up (a reader holding an old snapshot), so the log stays bounded
/// (64 MiB of 4 KiB pages).
const WAL_LIMIT_PAGES: u32 = 16_384;

/// An open connection to the state database.
pub struct State {
    connection: Connection,
    path: Option<PathBuf>,
    /// Checkpoints the log in the background while the state is open (databases on disk).
    checkpoints: Option<Checkpoints>,
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
        let mut state = State::configure(connection, Some(path.clone()))?;
        state
            .connection
            .pragma_update(None, "wal_autocheckpoint", WAL_LIMIT_PAGES)?;
        state.checkpoints = Checkpoints::start(&path);
        Ok(state)
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
        Ok(State {
            connection,
            path,
            checkpoints: None,
        })
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

/// A thread that checkpoints a database's log every [`CHECKPOINT_INTERVAL`] on its own
/// connection, until dropped. Passive checkpoints: they copy what no reader still needs and
/// never make a writer wait.
struct Checkpoints {
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checkpoints {
    /// `None` when the thread or its connection cannot be had: commits then checkpoint as
    /// SQLite does by default, past [`WAL_LIMIT_PAGES`].
    fn start(path: &Path) -> Option<Checkpoints> {
        let connection = Connection::open(path).ok()?;
        connection.busy_timeout(BUSY_TIMEOUT).ok()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("observer-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    if let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!("state database: checkpoint: {error}");
                    }
                }
            })
            .ok()?;
        Some(Checkpoints {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A fresh directory for a test's state, `observer-{name}-{pid}` under the system's temporary
/// directory, emptied of what an earlier run left.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("observer-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[&str] = &[
        "CREATE TABLE things (name TEXT PRIMARY KEY)",
        "ALTER TABLE things ADD COLUMN seen INTEGER NOT NULL DEFAULT 0",
    ];

    #[test]
    fn migrations_run_once_and_survive_reopening() {
        let dir = test_dir("state-migrate");
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
    fn the_log_is_checkpointed_in_the_background() {
        let dir = test_dir("state-checkpoint");
        let mut state = State::open(&dir).unwrap();
        state.migrate("things", MIGRATIONS).unwrap();
        let limit: u32 = state
            .connection()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(limit, WAL_LIMIT_PAGES);
        // 400 KB of rows: about 100 pages, far under the log's limit.
        let (rows, row_bytes) = (2_000u64, 200usize);
        let transaction = state.connection_mut().transaction().unwrap();
        for i in 0..rows {
            transaction
                .execute(
                    "INSERT INTO things (name) VALUES (?1)",
                    params![format!("{i:0>row_bytes$}")],
                )
                .unwrap();
        }
        transaction.commit().unwrap();
        // The rows are in the log, under its limit: only a checkpoint moves them into the
        // database file, and this test makes none.
        let file = dir.join(DATABASE_FILE);
        let size = || fs::metadata(&file).unwrap().len();
        let before = size();
        let waited = std::time::Instant::now();
        while size() < before + rows * row_bytes as u64 {
            assert!(
                waited.elapsed() < CHECKPOINT_INTERVAL * 10,
                "{} bytes, still",
                size()
            );
            thread::sleep(CHECKPOINT_INTERVAL / 4);
        }
        drop(state);
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
