//! Group commit for the local stack's stage workers. Every commit writes each page it changed to
//! the write-ahead log again, and a lead's trip through validate, score and route took about ten
//! commits that touch the same few pages: commits were a quarter of the stack's CPU time
//! (docs/performance.md, section 2). A unit of work lets a worker's batch share them.

use std::sync::Arc;

use crate::db::Db;
use crate::error::LocalError;
use crate::queue::SqliteQueue;
use crate::store::SqliteStore;

/// While it lasts, the writes this thread makes to the data file, through any store or queue of
/// it, are committed together rather than one by one. They are committed:
/// - by [`commit`](Self::commit), at the end of the batch;
/// - as soon as another thread needs the connection (so nobody waits on a deferred commit, and
///   no other thread ever reads them uncommitted);
/// - before an email or event leaves, when the outbox or bus was made with
///   `commits_units_of`: nothing goes out about a write that a crash could still undo.
///
/// Each write still runs in a savepoint of its own, so one that fails undoes only itself. What
/// is not yet committed is lost in a crash: the batch's messages are then delivered again and
/// handled from the start, which the handlers' idempotency allows for. If a deferred commit
/// fails, every later write in the unit fails too, and so does `commit`: the batch comes back
/// whole. Dropped without `commit`, the uncommitted writes are rolled back.
pub struct UnitOfWork<'a> {
    db: &'a Arc<Db>,
    ended: bool,
}

impl UnitOfWork<'_> {
    /// Commits the unit's writes and ends it.
    pub fn commit(mut self) -> Result<(), LocalError> {
        self.ended = true;
        self.db.end_unit(true).map_err(|e| self.db.local_error(e))
    }
}

impl Drop for UnitOfWork<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.db.end_unit(false);
        }
    }
}

fn begin(db: &Arc<Db>) -> Result<UnitOfWork<'_>, LocalError> {
    db.begin_unit().map_err(|e| db.local_error(e))?;
    Ok(UnitOfWork { db, ended: false })
}

impl SqliteQueue {
    /// Starts a unit of work on this thread (see [`UnitOfWork`]).
    pub fn begin_unit(&self) -> Result<UnitOfWork<'_>, LocalError> {
        begin(self.db())
    }
}

impl SqliteStore {
    /// Starts a unit of work on this thread (see [`UnitOfWork`]).
    pub fn begin_unit(&self) -> Result<UnitOfWork<'_>, LocalError> {
        begin(self.db())
    }
}

/// What an outbox or bus holds to commit the sending thread's unit of work first.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommitsFirst(Option<Arc<Db>>);

impl CommitsFirst {
    pub(crate) fn of(store: &SqliteStore) -> Self {
        Self(Some(Arc::clone(store.db())))
    }

    /// Commits the calling thread's unit of work, if it has one; the error says why not.
    pub(crate) fn commit(&self) -> Result<(), String> {
        match &self.0 {
            Some(db) => db.commit_unit().map_err(|e| db.local_error(e).to_string()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::DbError;

    fn count(store: &crate::SqliteStore) -> i64 {
        store
            .db()
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM email_keys", [], |r| r.get(0))?))
            .unwrap_or_else(|e| panic!("{}", store.db().local_error(e)))
    }

    fn insert(c: &rusqlite::Connection, key: &str) -> Result<(), DbError> {
        c.execute("INSERT INTO email_keys (key, lead_id) VALUES (?1, 'L')", [key])?;
        Ok(())
    }

    #[test]
    fn a_write_that_fails_inside_a_unit_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("{e}"));
        let unit = store.begin_unit().unwrap_or_else(|e| panic!("{e}"));
        assert!(store.db().write(|c| insert(c, "kept")).is_ok());
        let failed = store.db().write(|c| {
            insert(c, "half-way")?;
            Err::<(), _>(DbError::Corrupt("a check after the first statement failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(count(&store), 1, "the failed write's own insert is undone, the earlier one is not");
        unit.commit().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&store), 1);
    }
}
