//! Group commit for the local stack's stage workers. Every commit writes each page it changed to
//! the write-ahead log again, and a lead's trip through validate, score and route took about ten
//! commits that touch the same few pages: commits were a quarter of the stack's CPU time
//! (docs/performance.md, section 2). A unit of work lets a worker's batch share them.

use std::sync::Arc;

use crate::db::Db;
use crate::error::LocalError;
use crate::outgoing::Parcel;
use crate::queue::SqliteQueue;
use crate::store::SqliteStore;

/// While it lasts, the writes this thread makes to the data file, through any store or queue of
/// it, are committed together rather than one by one. They are committed:
/// - by [`commit`](Self::commit), at the end of the batch;
/// - as soon as another thread needs the connection (so nobody waits on a deferred commit, and
///   no other thread ever reads them uncommitted).
///
/// Emails and events sent meanwhile through an outbox or bus made with `joins_units_of` are
/// part of the unit: they leave once its writes are committed, when the unit ends, so that
/// nothing goes out about a write a crash could still undo (see `outgoing.rs`).
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
    /// Commits the unit's writes and ends it; then its emails and events leave.
    pub fn commit(mut self) -> Result<(), LocalError> {
        self.ended = true;
        let committed = self.db.end_unit(true).map_err(|e| self.db.local_error(e));
        deliver(self.db);
        committed
    }
}

impl Drop for UnitOfWork<'_> {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.db.end_unit(false);
            // What another thread's need for the connection committed earlier stands.
            deliver(self.db);
        }
    }
}

/// The unit's writes are committed whatever happens here: a parcel not delivered now is
/// delivered after the next unit, or on the next start.
fn deliver(db: &Db) {
    if let Err(e) = db.deliver_parcels() {
        tracing::warn!(error = %e, "emails or events of committed writes could not be delivered yet; tried again later");
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

/// What an outbox or bus holds to send inside the sending thread's unit of work.
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinsUnits(Option<Arc<Db>>);

impl JoinsUnits {
    /// Joins the units of `store`'s threads, after delivering what a crash left undelivered.
    pub(crate) fn of(store: &SqliteStore) -> Result<Self, LocalError> {
        store.db().deliver_parcels()?;
        Ok(Self(Some(Arc::clone(store.db()))))
    }

    /// Whether the calling thread has a unit of work of that store to send in.
    pub(crate) fn in_unit(&self) -> Result<bool, String> {
        match &self.0 {
            Some(db) => db.in_unit().map_err(|e| db.local_error(e).to_string()),
            None => Ok(false),
        }
    }

    /// Records `parcel` in the calling thread's unit of work (see [`Self::in_unit`]).
    pub(crate) fn hold(&self, parcel: &Parcel) -> Result<(), String> {
        match &self.0 {
            Some(db) => db.hold(parcel).map_err(|e| db.local_error(e).to_string()),
            None => Err("no unit of work to send in".into()),
        }
    }

    pub(crate) fn db(&self) -> Option<&Arc<Db>> {
        self.0.as_ref()
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
