//! The one SQLite connection the store and the queues share, and the schema.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow_core::error::{QueueError, StoreError};
use leadflow_core::model::{Lead, SalesStatus, Suppression};
use leadflow_core::ports::SuppressionPosition;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LocalError;

/// Bumped with every schema change; a file from a newer build is refused rather than misread.
/// 6: validate's queue moved to the intake file beside this one (an older build would never
/// handle what waits there). The local stack moves what an older build left here on start.
/// 5: `outgoing`, the emails and events of units of work not yet delivered (an older build
/// would never deliver what a crash left there).
/// 3: `leads.sla_due_at` with its partial index, `suppressions`, `documents`.
/// 4: activities keyed by (lead, id): an id is unique within its lead only. Later, at the same
/// version, [`LATE_INDEXES`] (`enrollments_by_campaign`, `leads_open_by_owner`,
/// `suppressions_by_time`): a build that does not know them still keeps them up to date, so a
/// file with them is still a version-4 file. `suppressions.at_ms` came with the last one: a build
/// that does not know the column leaves it NULL on the entries it adds, and every open fills in
/// what such a build left (see [`backfill_suppression_times`]).
const SCHEMA_VERSION: i64 = 6;

/// The intake file's own version (see [`Db::open_intake`]).
const INTAKE_SCHEMA_VERSION: i64 = 1;

/// Only another process (an admin command on the same file) can hold the write lock against
/// us; in-process writers queue on the mutex instead.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = r#"
-- A rowid table, not WITHOUT ROWID: a lead's document is 2-3 KB, past the ≈ 1 KB a WITHOUT
-- ROWID table keeps on its page, so every write of a lead there also rewrote an overflow
-- page (docs/performance.md, section 2). Files made before it are moved over when opened
-- (`migrate`); a build from before reads and writes either.
CREATE TABLE IF NOT EXISTS leads (
    id        TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    owner_rep TEXT,
    status    TEXT NOT NULL,
    doc       TEXT NOT NULL,
    -- When the owner's SLA runs out, in nanoseconds since the epoch; NULL unless the lead is
    -- valid, owned and still new, so that the partial index below holds only the leads the SLA
    -- scan may have to re-route. Set by every write of a lead. (Files from schema 2 gain this
    -- column by ALTER TABLE, hence its place after doc.)
    sla_due_at INTEGER
);
-- (sla_due_at, id): the SLA scan reads the ids in this order from the index alone.
CREATE INDEX IF NOT EXISTS leads_sla_due ON leads (sla_due_at, id)
    WHERE sla_due_at IS NOT NULL;
-- Open leads per rep, read on every routing decision. Counting the leads there grew with the
-- database (1.3 ms at 20,000 leads, docs/performance.md); triggers keep this count in the same
-- transaction as every write of a lead's owner or status, whoever writes it. The statements
-- set every column, so an update that changes neither takes one off and puts one back.
CREATE TABLE IF NOT EXISTS rep_loads (
    rep  TEXT PRIMARY KEY,
    open INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS rep_loads_on_insert AFTER INSERT ON leads
    WHEN NEW.owner_rep IS NOT NULL AND NEW.status NOT IN ('won', 'lost')
BEGIN
    INSERT INTO rep_loads (rep, open) VALUES (NEW.owner_rep, 1)
        ON CONFLICT (rep) DO UPDATE SET open = open + 1;
END;
CREATE TRIGGER IF NOT EXISTS rep_loads_on_update_old AFTER UPDATE OF owner_rep, status ON leads
    WHEN OLD.owner_rep IS NOT NULL AND OLD.status NOT IN ('won', 'lost')
BEGIN
    UPDATE rep_loads SET open = open - 1 WHERE rep = OLD.owner_rep;
END;
CREATE TRIGGER IF NOT EXISTS rep_loads_on_update_new AFTER UPDATE OF owner_rep, status ON leads
    WHEN NEW.owner_rep IS NOT NULL AND NEW.status NOT IN ('won', 'lost')
BEGIN
    INSERT INTO rep_loads (rep, open) VALUES (NEW.owner_rep, 1)
        ON CONFLICT (rep) DO UPDATE SET open = open + 1;
END;
CREATE TRIGGER IF NOT EXISTS rep_loads_on_delete AFTER DELETE ON leads
    WHEN OLD.owner_rep IS NOT NULL AND OLD.status NOT IN ('won', 'lost')
BEGIN
    UPDATE rep_loads SET open = open - 1 WHERE rep = OLD.owner_rep;
END;

CREATE TABLE IF NOT EXISTS email_keys (
    key     TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS aliases (
    alias   TEXT PRIMARY KEY,
    into_id TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key        TEXT PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A lead's trail. Ids are unique within a lead (`stage-mql`, `sent-<email key>`), so the key is
-- the pair; the rows of a lead lie together, and the few of them are put in time order on reading.
CREATE TABLE IF NOT EXISTS activities (
    lead_id TEXT NOT NULL,
    id      TEXT NOT NULL,
    at      INTEGER NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (lead_id, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS team_cursors (
    team_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL
) WITHOUT ROWID;

-- The suppression list, by email key (a hash of the address: the list holds no address). The
-- first entry, and its reason, stay. at_ms is the entry's `at` in milliseconds, for the list
-- newest first (the index `suppressions_by_time` in LATE_INDEXES); files from before it gain it
-- in `migrate`.
CREATE TABLE IF NOT EXISTS suppressions (
    email_key TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    doc       TEXT NOT NULL,
    at_ms     INTEGER
) WITHOUT ROWID;

-- Versioned configuration documents (campaigns, routing, scoring); a stored version never
-- changes, versions count up from 1 without gaps.
CREATE TABLE IF NOT EXISTS documents (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS effects (
    key         TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    lease_until INTEGER NOT NULL,
    detail      TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS enrollments (
    lead_id     TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    -- NULL unless the enrollment is active, so that the partial index below holds only the
    -- enrollments the nurture scan may have to send.
    next_due_at INTEGER,
    doc         TEXT NOT NULL,
    PRIMARY KEY (lead_id, campaign_id)
);
CREATE INDEX IF NOT EXISTS enrollments_due ON enrollments (next_due_at)
    WHERE next_due_at IS NOT NULL;

-- Emails and events a unit of work sent, delivered once it is committed (see outgoing.rs):
-- kind 'file' links the pending file named in body to target, 'lines' appends body to target.
CREATE TABLE IF NOT EXISTS outgoing (
    id     INTEGER PRIMARY KEY,
    kind   TEXT NOT NULL CHECK (kind IN ('file', 'lines')),
    target TEXT NOT NULL,
    body   BLOB NOT NULL
);
"#;

/// The stage queues: in the store's file for the stages after validate, and alone in the intake
/// file for validate's (see [`Db::open_intake`]).
const QUEUE_SCHEMA: &str = r#"
-- AUTOINCREMENT: a message id is never reused, so a late delete from a worker whose lease ran
-- out can never hit a newer message.
CREATE TABLE IF NOT EXISTS queue_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    stage         TEXT NOT NULL,
    body          TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    enqueued_at   INTEGER NOT NULL
);
-- (stage, id): receive walks a stage in arrival order and skips the few invisible ones; an
-- index led by visible_at would have to sort the whole backlog on every receive.
CREATE INDEX IF NOT EXISTS queue_messages_by_stage ON queue_messages (stage, id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY,
    stage         TEXT NOT NULL,
    body          TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    last_error    TEXT,
    dead_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_stage ON dead_letters (stage, id);
"#;

/// Open leads per rep, counted from the leads themselves (the triggers keep it after that).
const COUNT_REP_LOADS: &str = "DELETE FROM rep_loads; INSERT INTO rep_loads (rep, open) \
     SELECT owner_rep, COUNT(*) FROM leads WHERE owner_rep IS NOT NULL AND status NOT IN ('won', 'lost') \
     GROUP BY owner_rep;";

/// Indexes added after version 4 was released, without a new version: every open creates the
/// ones a file lacks (SCHEMA itself runs only when the version goes up). A build that does not
/// know them still keeps them up to date, as SQLite maintains every index on every write.
const LATE_INDEXES: &str = r#"
-- For paging over one campaign's enrollments (an admin migration, not the hot path).
CREATE INDEX IF NOT EXISTS enrollments_by_campaign ON enrollments (campaign_id, lead_id);
-- A rep's open leads, newest first (`open_leads_of`). owner_rep is NULL on an erased lead, so
-- the index holds exactly the leads someone still works on. The query repeats these WHERE
-- terms: SQLite uses a partial index only when the query's WHERE implies the index's.
CREATE INDEX IF NOT EXISTS leads_open_by_owner ON leads (owner_rep, id)
    WHERE owner_rep IS NOT NULL AND status NOT IN ('won', 'lost');
-- The suppression list newest first (`suppressions`), and the entries whose at_ms is still to be
-- filled in (NULL sorts first), found on every open without reading the list.
CREATE INDEX IF NOT EXISTS suppressions_by_time ON suppressions (at_ms, email_key);
"#;

/// What can go wrong inside a database call, before it is told in a port's error type.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    Poisoned,
    /// This thread's unit of work lost its uncommitted writes (a commit failed); nothing more
    /// is done in it, so that its batch comes back whole.
    UnitLost,
    Corrupt(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

pub(crate) struct Db {
    // One connection behind a mutex rather than a pool: SQLite admits one writer at a time
    // anyway, and waiting on a mutex wakes at once where SQLite's busy handler sleeps and polls.
    conn: Mutex<Held>,
    /// Threads waiting for the mutex: a unit of work commits as soon as anyone does, so that
    /// its deferred commit never keeps another thread waiting.
    waiting: AtomicUsize,
    path: PathBuf,
}

/// Whether a file's connection keeps its file locks for its life ([`Db::open`]) or shares the
/// file with a checkpoint connection ([`Db::open_intake`]).
enum Locking {
    Exclusive,
    Shared,
}

/// The connection and the units of work (see [`Db::begin_unit`]).
struct Held {
    conn: Connection,
    /// Threads with a unit of work, and whether it has lost its writes.
    units: Vec<(ThreadId, bool)>,
    /// The unit whose writes the connection's open transaction holds, not yet committed.
    open: Option<ThreadId>,
}

impl Held {
    /// Commits the open unit's writes, if there are any; a failure rolls them back and marks
    /// the unit lost.
    fn commit_open(&mut self) -> Result<(), DbError> {
        let Some(owner) = self.open.take() else { return Ok(()) };
        let committed = self.conn.execute_batch("COMMIT");
        if committed.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            if let Some(unit) = self.units.iter_mut().find(|(t, _)| *t == owner) {
                unit.1 = true;
            }
        }
        Ok(committed?)
    }

    fn unit_of(&self, thread: ThreadId) -> Option<bool> {
        self.units.iter().find(|(t, _)| *t == thread).map(|(_, lost)| *lost)
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the store's file: every table, the stages' queues after validate among them.
    pub(crate) fn open(path: &Path) -> Result<Arc<Db>, LocalError> {
        Self::open_with(path, migrate, Locking::Exclusive)
    }

    /// Opens an intake file: the queues alone, for capture's messages to validate. Capture
    /// writes there on a connection of its own, so it never waits for the stages' commits or for
    /// the checkpoints of the store's write-ahead log, which were most of its slowest answers
    /// (docs/performance.md, section 2).
    ///
    /// Its write-ahead log is checkpointed on a connection and thread of their own
    /// ([`crate::checkpoints`]); so this connection takes no exclusive lock on the file.
    pub(crate) fn open_intake(path: &Path) -> Result<Arc<Db>, LocalError> {
        Self::open_intake_restarting_at(path, crate::checkpoints::FRAMES_BEFORE_RESTART)
    }

    /// [`Db::open_intake`], its log started over past `frames` frames.
    pub(crate) fn open_intake_restarting_at(path: &Path, frames: i64) -> Result<Arc<Db>, LocalError> {
        let db = Self::open_with(path, migrate_intake, Locking::Shared)?;
        crate::checkpoints::start(&db, frames)?;
        Ok(db)
    }

    fn open_with(
        path: &Path,
        migrate: fn(&mut Connection, &Path) -> Result<(), LocalError>,
        locking: Locking,
    ) -> Result<Arc<Db>, LocalError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| LocalError::Io {
                action: "create the folder of the data file",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| LocalError::Open { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        // Before anything that locks: switching to WAL takes the write lock.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                journal_mode = %mode,
                path = %path.display(),
                "the data file could not be switched to WAL; writes will be slower"
            );
        }
        match locking {
            // One process owns the data folder (infra's data lock), so the file locks SQLite
            // takes and drops around every transaction (about 100 fcntl calls a lead, 39 % of
            // the server's samples in the kernel) guard against nobody: hold them for the
            // connection's life. The kernel drops them when the process dies, kill -9 included.
            Locking::Exclusive => {
                let mode: String =
                    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| r.get(0)).map_err(open_err)?;
                tracing::debug!(locking_mode = %mode, "data file locking");
            }
            // Whoever commits past the log's threshold checkpoints it; here nobody on this
            // connection does, the checkpoint connection does.
            Locking::Shared => conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(open_err)?,
        }
        // NORMAL in WAL mode loses nothing when the process is killed, only on power loss.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "OFF").map_err(open_err)?;
        // Statement journals (each savepoint of a unit of work, a multi-row statement inside a
        // transaction) in memory rather than in temporary files: they only ever undo part of a
        // live transaction, which a crash discards anyway. (Left to spill to a file past a
        // compiled-in threshold instead, each journal is one block up to it: at 256 KiB that
        // failed as "database or disk is full" when a journal spilled, since SQLite's Unix layer
        // writes at most 128 KiB a call and the block is written in one; at 124 KiB it was
        // slower than this. docs/performance.md, section 2.)
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(open_err)?;
        // Erasure must not leave a lead's personal data readable in free pages of the file.
        conn.pragma_update(None, "secure_delete", "ON").map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn, path)?;
        Ok(Arc::new(Db {
            conn: Mutex::new(Held { conn, units: Vec::new(), open: None }),
            waiting: AtomicUsize::new(0),
            path: path.to_path_buf(),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, with another thread's deferred writes committed first: what a thread
    /// reads is always committed, unless it is its own unit's.
    fn lock(&self) -> Result<(MutexGuard<'_, Held>, ThreadId), DbError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let locked = self.conn.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut held = locked.map_err(|_| DbError::Poisoned)?;
        let me = std::thread::current().id();
        if held.open.is_some_and(|owner| owner != me) {
            // Their failure is theirs: the owner's next call reports it.
            let _ = held.commit_open();
        }
        Ok((held, me))
    }

    /// Runs `f` while no thread of this process uses the connection (another thread's deferred
    /// writes are committed first): for work on a second connection to the same file that must
    /// not interleave with this one's transactions.
    pub(crate) fn while_idle<T>(&self, f: impl FnOnce() -> T) -> Result<T, DbError> {
        let (_held, _) = self.lock()?;
        Ok(f())
    }

    /// Commits this thread's open unit now if another thread waits for the connection.
    fn yield_to_waiters(&self, held: &mut Held, me: ThreadId) -> Result<(), DbError> {
        if held.open == Some(me) && self.waiting.load(Ordering::SeqCst) > 0 {
            held.commit_open()?;
        }
        Ok(())
    }

    /// Runs `f` on the connection outside any explicit transaction: for single statements.
    /// Inside this thread's unit of work, it sees the unit's writes.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let (mut held, me) = self.lock()?;
        let out = f(&held.conn)?;
        self.yield_to_waiters(&mut held, me)?;
        Ok(out)
    }

    /// Runs `f` in an IMMEDIATE transaction, committed when `f` succeeds and rolled back when it
    /// fails. IMMEDIATE takes the write lock up front, so a read-then-write cannot fail half way
    /// with SQLITE_BUSY when another process writes the file too.
    ///
    /// Inside this thread's unit of work, `f` runs in a savepoint of the unit's transaction
    /// instead, so a failing `f` still undoes only its own changes, and the commit waits for the
    /// unit (or for another thread to need the connection).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let (mut held, me) = self.lock()?;
        let (begin, keep, undo) = match held.unit_of(me) {
            None => ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"),
            Some(true) => return Err(DbError::UnitLost),
            Some(false) => {
                if held.open != Some(me) {
                    held.conn.execute_batch("BEGIN IMMEDIATE")?;
                    held.open = Some(me);
                }
                (
                    "SAVEPOINT leadflow_write",
                    "RELEASE leadflow_write",
                    "ROLLBACK TO leadflow_write; RELEASE leadflow_write",
                )
            }
        };
        let conn = &held.conn;
        conn.execute_batch(begin)?;
        let kept = f(conn).and_then(|out| conn.execute_batch(keep).map(|()| out).map_err(DbError::from));
        if kept.is_err() {
            // The first error is the one worth telling; a failed undo leaves nothing worse.
            let _ = conn.execute_batch(undo);
        }
        let out = kept?;
        self.yield_to_waiters(&mut held, me)?;
        Ok(out)
    }

    /// Whether this thread has a unit of work (see [`Db::begin_unit`]).
    pub(crate) fn in_unit(&self) -> Result<bool, DbError> {
        let (held, me) = self.lock()?;
        Ok(held.unit_of(me).is_some())
    }

    /// Starts a unit of work on this thread: its writes are committed together, at
    /// [`Db::end_unit`], or when another thread needs the connection,
    /// whichever comes first, instead of one commit each. The lock is still held per call.
    pub(crate) fn begin_unit(&self) -> Result<(), DbError> {
        let (mut held, me) = self.lock()?;
        if held.unit_of(me).is_none() {
            held.units.push((me, false));
        }
        Ok(())
    }

    /// Ends this thread's unit of work: commits its writes when `commit`, rolls back what is
    /// still uncommitted otherwise. An error if the unit lost writes on the way.
    pub(crate) fn end_unit(&self, commit: bool) -> Result<(), DbError> {
        let (mut held, me) = self.lock()?;
        let lost = held.unit_of(me) == Some(true);
        held.units.retain(|(t, _)| *t != me);
        if held.open == Some(me) {
            if commit && !lost {
                held.commit_open()?;
            } else {
                held.open = None;
                held.conn.execute_batch("ROLLBACK")?;
            }
        }
        if lost { Err(DbError::UnitLost) } else { Ok(()) }
    }

    pub(crate) fn store_error(&self, e: DbError) -> StoreError {
        match e {
            DbError::Corrupt(what) => StoreError::Corrupt(format!("data file {}: {what}", self.path.display())),
            other => StoreError::Unavailable(self.local_error(other).to_string()),
        }
    }

    pub(crate) fn queue_error(&self, e: DbError) -> QueueError {
        QueueError::Unavailable(self.local_error(e).to_string())
    }

    pub(crate) fn local_error(&self, e: DbError) -> LocalError {
        let path = self.path.clone();
        match e {
            DbError::Sqlite(source) => LocalError::Database { path, source },
            DbError::Poisoned => LocalError::Poisoned { path },
            DbError::UnitLost => LocalError::UnitLost { path },
            DbError::Corrupt(what) => LocalError::Corrupt { path, what },
        }
    }
}

/// The file's schema version, in an IMMEDIATE transaction for the migration to run in; a file a
/// newer build wrote (a version past `known`) is refused rather than misread.
fn begin_migration<'c>(
    conn: &'c mut Connection,
    path: &Path,
    known: i64,
) -> Result<(Transaction<'c>, i64), LocalError> {
    let db_err = |source| LocalError::Open { path: path.to_path_buf(), source };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    if found > known {
        return Err(LocalError::NewerSchema { path: path.to_path_buf(), found, known });
    }
    Ok((tx, found))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LocalError> {
    let db_err = |source| LocalError::Open { path: path.to_path_buf(), source };
    let (tx, found) = begin_migration(conn, path, SCHEMA_VERSION)?;
    if found < SCHEMA_VERSION {
        // Schema 2 → 3: the SLA column, before SCHEMA creates the index on it.
        if table_exists(&tx, "leads").map_err(db_err)? && !has_column(&tx, "leads", "sla_due_at").map_err(db_err)? {
            tx.execute_batch("ALTER TABLE leads ADD COLUMN sla_due_at INTEGER").map_err(db_err)?;
        }
        // Schema 3 → 4: activities keyed by their lead too. The old table steps aside, SCHEMA
        // makes the new one, and every row moves over; the entries that the old key dropped (a
        // second lead's `stage-mql`) were never stored and cannot be.
        let rekey = table_exists(&tx, "activities").map_err(db_err)?
            && !is_key_column(&tx, "activities", "lead_id").map_err(db_err)?;
        if rekey {
            tx.execute_batch("ALTER TABLE activities RENAME TO activities_v3").map_err(db_err)?;
        }
        tx.execute_batch(SCHEMA).map_err(db_err)?;
        tx.execute_batch(QUEUE_SCHEMA).map_err(db_err)?;
        if rekey {
            tx.execute_batch(
                "INSERT OR IGNORE INTO activities (lead_id, id, at, doc) \
                 SELECT lead_id, id, at, doc FROM activities_v3; DROP TABLE activities_v3;",
            )
            .map_err(db_err)?;
        }
        // A file from before the counters: count what it holds once.
        tx.execute_batch(COUNT_REP_LOADS).map_err(db_err)?;
        backfill_sla_due(&tx).map_err(db_err)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(db_err)?;
    }
    // Leads in a rowid table, once, whatever the version: the old table steps aside without its
    // triggers and indexes, SCHEMA makes the new one with them (LATE_INDEXES and the funnel's
    // `ensure` below make theirs), every row moves over, and the counters are counted again, as
    // the rows' inserts counted them once more.
    if is_without_rowid(&tx, "leads").map_err(db_err)? {
        set_aside(&tx, "leads", "leads_without_rowid").map_err(db_err)?;
        tx.execute_batch(SCHEMA).map_err(db_err)?;
        tx.execute_batch(
            "INSERT INTO leads (id, version, owner_rep, status, doc, sla_due_at) \
             SELECT id, version, owner_rep, status, doc, sla_due_at FROM leads_without_rowid; \
             DROP TABLE leads_without_rowid;",
        )
        .map_err(db_err)?;
        tx.execute_batch(COUNT_REP_LOADS).map_err(db_err)?;
    }
    // A version-4 file from before the suppression list was listed by time.
    if !has_column(&tx, "suppressions", "at_ms").map_err(db_err)? {
        tx.execute_batch("ALTER TABLE suppressions ADD COLUMN at_ms INTEGER").map_err(db_err)?;
    }
    // Builds an index once on the first open of a file that lacks it; a no-op after that.
    tx.execute_batch(LATE_INDEXES).map_err(db_err)?;
    // The funnel's side table, filled once on the first open of a file without it.
    crate::store::facts::ensure(&tx).map_err(db_err)?;
    backfill_suppression_times(&tx).map_err(db_err)?;
    tx.commit().map_err(db_err)
}

/// The intake file's schema: the queue tables alone, with a version of their own.
fn migrate_intake(conn: &mut Connection, path: &Path) -> Result<(), LocalError> {
    let db_err = |source| LocalError::Open { path: path.to_path_buf(), source };
    let (tx, found) = begin_migration(conn, path, INTAKE_SCHEMA_VERSION)?;
    if found < INTAKE_SCHEMA_VERSION {
        tx.execute_batch(QUEUE_SCHEMA).map_err(db_err)?;
        tx.pragma_update(None, "user_version", INTAKE_SCHEMA_VERSION).map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

/// Fills `suppressions.at_ms` from the entries' documents where it is NULL: every entry of a file
/// from before the column, then only those a build that does not know it added since (a search
/// of `suppressions_by_time`, where NULL sorts first, so nothing on most opens). A document that
/// cannot be read keeps NULL and stays out of the list; its email key (a hash) is logged.
fn backfill_suppression_times(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let missing: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT email_key, doc FROM suppressions WHERE at_ms IS NULL")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE suppressions SET at_ms = ?2 WHERE email_key = ?1")?;
    for (key, doc) in missing {
        match serde_json::from_str::<Suppression>(&doc) {
            Ok(entry) => {
                update.execute(rusqlite::params![key, suppression_at(&entry)])?;
            }
            Err(e) => tracing::warn!(
                email_key = %key,
                problem = %json_problem(&e),
                "a stored suppression could not be read while indexing its time; it is left out of the list"
            ),
        }
    }
    Ok(())
}

/// The `suppressions.at_ms` value of an entry: its place in the list, as every store orders it.
pub(crate) fn suppression_at(entry: &Suppression) -> i64 {
    SuppressionPosition::of(entry).at_ms
}

fn table_exists(c: &Connection, table: &str) -> rusqlite::Result<bool> {
    c.query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [table], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// Whether `table` exists and was made WITHOUT ROWID.
fn is_without_rowid(c: &Connection, table: &str) -> rusqlite::Result<bool> {
    let sql: Option<String> = c
        .query_row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
        .optional()?;
    Ok(sql.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID")))
}

/// Renames `table` to `to` and drops the triggers and indexes that went with it, so that the
/// schema can make them again, under their names, on a new `table`.
fn set_aside(c: &Connection, table: &str, to: &str) -> rusqlite::Result<()> {
    c.execute_batch(&format!("ALTER TABLE \"{table}\" RENAME TO \"{to}\""))?;
    let attached: Vec<(String, String)> = {
        let mut stmt = c.prepare(
            "SELECT type, name FROM sqlite_schema \
             WHERE tbl_name = ?1 AND type IN ('index', 'trigger') AND sql IS NOT NULL",
        )?;
        stmt.query_map([to], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    for (kind, name) in attached {
        let kind = if kind == "index" { "INDEX" } else { "TRIGGER" };
        c.execute_batch(&format!("DROP {kind} \"{name}\""))?;
    }
    Ok(())
}

/// Whether `column` is part of `table`'s primary key.
fn is_key_column(c: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    c.query_row("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2 AND pk > 0", [table, column], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

fn has_column(c: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    c.query_row("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2", [table, column], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// Fills `leads.sla_due_at` from the documents of a file written before the column: only owned,
/// new leads can have one. A document that cannot be read keeps NULL (reading that lead reports
/// it as corrupt anyway); the lead id, not its data, is logged.
fn backfill_sla_due(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let candidates: Vec<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT id, doc FROM leads WHERE owner_rep IS NOT NULL AND status = 'new' AND sla_due_at IS NULL",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE leads SET sla_due_at = ?2 WHERE id = ?1")?;
    for (id, doc) in candidates {
        match serde_json::from_str::<Lead>(&doc) {
            Ok(lead) => {
                if let Some(due) = sla_due_key(&lead) {
                    update.execute(rusqlite::params![id, due])?;
                }
            }
            Err(e) => tracing::warn!(
                lead_id = %id,
                problem = %json_problem(&e),
                "a stored lead could not be read while indexing SLA due times; it is left out of the SLA scan"
            ),
        }
    }
    Ok(())
}

/// The `leads.sla_due_at` value of a lead: its owner's SLA due time while the lead is valid,
/// owned and still new; `None` (out of the SLA index) otherwise.
pub(crate) fn sla_due_key(lead: &Lead) -> Option<i64> {
    match (&lead.owner, lead.status) {
        (Some(owner), SalesStatus::New) if lead.is_valid() => Some(nanos(owner.sla_due_at)),
        _ => None,
    }
}

/// Indexed times are integer milliseconds since the epoch, UTC.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Nanoseconds since the epoch, for times compared exactly (the SLA due time); saturating
/// outside the years 1677–2262, which keeps the order.
pub(crate) fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Versions and counts go into SQLite's signed integers. A value past `i64::MAX` cannot have been
/// stored, so saturating makes a comparison with it fail, which is the right answer.
pub(crate) fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql_u64(what: &str, v: i64) -> Result<u64, DbError> {
    u64::try_from(v).map_err(|_| DbError::Corrupt(format!("{what} has a negative number {v}")))
}

pub(crate) fn to_doc<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("{what} cannot be encoded as JSON: {}", json_problem(&e))))
}

pub(crate) fn from_doc<T: DeserializeOwned>(what: &str, doc: &str) -> Result<T, DbError> {
    serde_json::from_str(doc).map_err(|e| DbError::Corrupt(format!("{what}: {}", json_problem(&e))))
}

/// serde_json's own messages quote the offending value, which may be personal data; this says
/// where and what kind of problem only.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "malformed JSON",
        Category::Data => "JSON of the wrong shape",
        Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}
