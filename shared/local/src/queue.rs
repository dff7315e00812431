//! Durable stage queues in the store's SQLite file, with SQS's delivery model: a received
//! message is hidden for a visibility timeout and comes back unless deleted, and one received
//! too often goes to its stage's dead letters with the last error recorded for it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow_core::dead_letters::{self, DeadLetterList, Redrive};
use leadflow_core::error::QueueError;
use leadflow_core::ports::{DeadLetters, Stage, StageQueue};
use rusqlite::params;

use crate::db::{Db, DbError, duration_millis, millis};
use crate::error::LocalError;
use crate::store::SqliteStore;

/// How many times a message is delivered before it goes to the dead letters (SQS's
/// `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// A message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message's row id; never empty, never reused.
    pub id: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

/// A message that kept failing, with why it failed last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
    /// `None` when every delivery ran out of time without the consumer reporting an error.
    pub last_error: Option<String>,
}

/// The stage queues. Get one from [`SqliteStore::queue`](crate::SqliteStore::queue); cloning is
/// cheap and shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: Arc<Db>,
    max_receives: u32,
}

type Candidate = (i64, String, i64, Option<String>);

/// No `LIMIT ?`: SQLite plans with a bound LIMIT's value, so a statement that has one is prepared
/// again every time it is run (its `RePrepare` status counts each). The rows come in index order
/// and are read only as far as the batch needs.
const SELECT_VISIBLE: &str = "SELECT id, body, receive_count, last_error FROM queue_messages \
     WHERE stage = ?1 AND id > ?2 AND visible_at <= ?3 ORDER BY id";

impl SqliteQueue {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db, max_receives: DEFAULT_MAX_RECEIVES }
    }

    /// Opens (creating it and its folder if need be) a file that holds stage queues alone, on a
    /// connection of its own: the local stack's intake, where capture's messages wait for
    /// validate. Its writers never wait on the store's connection, nor the store's on them.
    pub fn open_intake(path: impl AsRef<Path>) -> Result<Self, LocalError> {
        Ok(Self::new(Db::open_intake(path.as_ref())?))
    }

    /// Whether this queue lives in `store`'s file, on its connection: then acknowledging a
    /// message inside the store's unit of work commits with the writes it acknowledges.
    pub fn shares_file_with(&self, store: &SqliteStore) -> bool {
        Arc::ptr_eq(&self.db, store.db())
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Moves every message and dead letter of `stage` from this file to `to`'s; answers how
    /// many. For a file an older build wrote, whose queue for that stage now lives elsewhere.
    /// The two files share no transaction: a crash between the copy and the delete leaves a
    /// message in both, which is then handled twice, as any redelivery may be; none is lost.
    pub fn move_stage_to(&self, stage: Stage, to: &SqliteQueue) -> Result<u64, LocalError> {
        type Row = (String, i64, Option<String>, i64);
        let (waiting, dead): (Vec<Row>, Vec<Row>) = self
            .db
            .read(|c| {
                let rows = |sql: &str| -> Result<Vec<Row>, DbError> {
                    let mut stmt = c.prepare(sql)?;
                    let rows =
                        stmt.query_map([stage.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    Ok(rows.collect::<Result<_, _>>()?)
                };
                Ok((
                    rows(
                        "SELECT body, receive_count, last_error, enqueued_at FROM queue_messages \
                          WHERE stage = ?1 ORDER BY id",
                    )?,
                    rows(
                        "SELECT body, receive_count, last_error, dead_at FROM dead_letters \
                          WHERE stage = ?1 ORDER BY id",
                    )?,
                ))
            })
            .map_err(|e| self.db.local_error(e))?;
        if waiting.is_empty() && dead.is_empty() {
            return Ok(0);
        }
        to.db
            .write(|tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO queue_messages (stage, body, visible_at, receive_count, last_error, enqueued_at) \
                     VALUES (?1, ?2, 0, ?3, ?4, ?5)",
                )?;
                for (body, count, last_error, at) in &waiting {
                    insert.execute(params![stage.as_str(), body, count, last_error, at])?;
                }
                // A dead letter keeps its message's id, which a message that dies later replaces
                // by: each moved one takes an id from the queue's sequence, never handed out again.
                let mut bury = tx.prepare_cached(
                    "INSERT INTO dead_letters (id, stage, body, receive_count, last_error, dead_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (body, count, last_error, at) in &dead {
                    insert.execute(params![stage.as_str(), body, count, last_error, at])?;
                    let id = tx.last_insert_rowid();
                    tx.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")?.execute([id])?;
                    bury.execute(params![id, stage.as_str(), body, count, last_error, at])?;
                }
                Ok(())
            })
            .map_err(|e| to.db.local_error(e))?;
        self.db
            .write(|tx| {
                tx.execute("DELETE FROM queue_messages WHERE stage = ?1", [stage.as_str()])?;
                tx.execute("DELETE FROM dead_letters WHERE stage = ?1", [stage.as_str()])?;
                Ok(())
            })
            .map_err(|e| self.db.local_error(e))?;
        Ok(u64::try_from(waiting.len() + dead.len()).unwrap_or(u64::MAX))
    }

    /// Deliveries before a message is dead-lettered; at least 1.
    pub fn with_max_receives(self, max_receives: u32) -> Self {
        Self { max_receives: max_receives.max(1), ..self }
    }

    pub fn max_receives(&self) -> u32 {
        self.max_receives
    }

    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Takes up to `max` visible messages of `stage`, oldest first, and hides them until
    /// `now + visibility`. Messages delivered `max_receives` times already are moved to the dead
    /// letters instead.
    pub fn receive(
        &self,
        stage: Stage,
        max: usize,
        visibility: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<Received>, LocalError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = millis(now);
        let hidden_until = now.saturating_add(duration_millis(visibility));
        let max_receives = i64::from(self.max_receives);
        let stage = stage.as_str();
        self.db
            .write(|tx| {
                let mut out = Vec::new();
                let mut after = 0_i64;
                // Dead-lettering makes a round yield fewer than asked for; go on from where it
                // stopped until the batch is full or the stage has nothing visible left.
                while out.len() < max {
                    let batch: Vec<Candidate> = {
                        let mut stmt = tx.prepare_cached(SELECT_VISIBLE)?;
                        let rows = stmt.query_map(params![stage, after, now], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })?;
                        rows.take(max - out.len()).collect::<Result<_, _>>()?
                    };
                    if batch.is_empty() {
                        break;
                    }
                    for (id, body, count, last_error) in batch {
                        after = id;
                        if count >= max_receives {
                            tx.prepare_cached(
                                "INSERT OR REPLACE INTO dead_letters \
                                 (id, stage, body, receive_count, last_error, dead_at) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            )?
                            .execute(params![id, stage, body, count, last_error, now])?;
                            tx.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")?.execute([id])?;
                            tracing::warn!(stage, message_id = id, receive_count = count, "message dead-lettered");
                            continue;
                        }
                        tx.prepare_cached(
                            "UPDATE queue_messages SET visible_at = ?2, receive_count = receive_count + 1 \
                             WHERE id = ?1",
                        )?
                        .execute(params![id, hidden_until])?;
                        out.push(Received {
                            id: id.to_string(),
                            body,
                            receive_count: u32::try_from(count.saturating_add(1)).unwrap_or(u32::MAX),
                        });
                    }
                }
                Ok(out)
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Makes every hidden message visible at `now`; answers how many there were. Only for a
    /// process that knows it is the file's sole consumer, at start-up: what a killed predecessor
    /// held in flight is then delivered again at once instead of after its visibility timeout.
    pub fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<u64, LocalError> {
        let now = millis(now);
        self.db
            .write(|tx| {
                let n = tx
                    .prepare_cached("UPDATE queue_messages SET visible_at = ?1 WHERE visible_at > ?1")?
                    .execute([now])?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Acknowledges processed messages; answers how many were still there. Ids that name no
    /// message (deleted already, or not ids at all) are skipped.
    pub fn delete<I>(&self, stage: Stage, ids: I) -> Result<usize, LocalError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let ids: Vec<i64> = ids.into_iter().filter_map(|id| id.as_ref().parse().ok()).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.db
            .write(|tx| {
                let mut stmt = tx.prepare_cached("DELETE FROM queue_messages WHERE stage = ?1 AND id = ?2")?;
                let mut deleted = 0;
                for id in ids {
                    deleted += stmt.execute(params![stage.as_str(), id])?;
                }
                Ok(deleted)
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Gives a message back after a failure: it keeps `error` as its last error and becomes
    /// visible again at `now + retry_after`. `false` if there is no such message any more.
    pub fn release(
        &self,
        stage: Stage,
        id: &str,
        error: &str,
        retry_after: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, LocalError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let visible_at = millis(now).saturating_add(duration_millis(retry_after));
        self.db
            .read(|c| {
                let n = c
                    .prepare_cached(
                        "UPDATE queue_messages SET last_error = ?3, visible_at = ?4 \
                         WHERE stage = ?1 AND id = ?2",
                    )?
                    .execute(params![stage.as_str(), id, error, visible_at])?;
                Ok(n == 1)
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Messages waiting on the stage, visible or not, dead letters excluded: zero when the
    /// stage has nothing left to do.
    pub fn depth(&self, stage: Stage) -> Result<u64, LocalError> {
        self.count("SELECT COUNT(*) FROM queue_messages WHERE stage = ?1", stage, None)
    }

    /// Messages hidden at `now`: being processed, or released to be retried later.
    pub fn in_flight(&self, stage: Stage, now: DateTime<Utc>) -> Result<u64, LocalError> {
        self.count("SELECT COUNT(*) FROM queue_messages WHERE stage = ?1 AND visible_at > ?2", stage, Some(millis(now)))
    }

    pub fn dead_letters(&self, stage: Stage) -> Result<Vec<DeadLetter>, LocalError> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, body, receive_count, last_error FROM dead_letters \
                     WHERE stage = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([stage.as_str()], |r| {
                    Ok(DeadLetter {
                        id: r.get::<_, i64>(0)?.to_string(),
                        body: r.get(1)?,
                        receive_count: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                        last_error: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Up to `limit` of the stage's dead letters, oldest first, shown as operators see them
    /// (see [`leadflow_core::dead_letters`]), and how many there are in all.
    pub fn dead_letter_list(&self, stage: Stage, limit: usize) -> Result<DeadLetterList, LocalError> {
        let total = self.count("SELECT COUNT(*) FROM dead_letters WHERE stage = ?1", stage, None)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String, i64, Option<String>, i64)> = self
            .db
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, body, receive_count, last_error, dead_at FROM dead_letters \
                     WHERE stage = ?1 ORDER BY id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![stage.as_str(), limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .map_err(|e| self.db.local_error(e))?;
        let items = rows
            .into_iter()
            .map(|(id, body, count, last_error, dead_at)| {
                let (lead_id, kind) = dead_letters::describe(stage, &body);
                dead_letters::DeadLetter {
                    message_id: id.to_string(),
                    stage,
                    lead_id,
                    kind,
                    reason: last_error,
                    receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                    dead_at: DateTime::from_timestamp_millis(dead_at),
                }
            })
            .collect();
        Ok(DeadLetterList { stage, total, items })
    }

    /// Moves every dead letter of `stage` back onto its queue, due at once and with its
    /// deliveries counted from zero again; answers how many. Each gets a new id, as SQS gives a
    /// redriven message a new message id: a late delete from a worker that held the old one can
    /// then not remove the new one.
    pub fn redrive_dead_letters(&self, stage: Stage, now: DateTime<Utc>) -> Result<u64, LocalError> {
        let enqueued_at = millis(now);
        self.db
            .write(|tx| {
                let moved = tx
                    .prepare_cached(
                        "INSERT INTO queue_messages (stage, body, visible_at, receive_count, enqueued_at) \
                         SELECT stage, body, 0, 0, ?2 FROM dead_letters WHERE stage = ?1 ORDER BY id",
                    )?
                    .execute(params![stage.as_str(), enqueued_at])?;
                tx.prepare_cached("DELETE FROM dead_letters WHERE stage = ?1")?.execute([stage.as_str()])?;
                Ok(u64::try_from(moved).unwrap_or(0))
            })
            .map_err(|e| self.db.local_error(e))
    }

    fn count(&self, sql: &str, stage: Stage, now: Option<i64>) -> Result<u64, LocalError> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached(sql)?;
                let n: i64 = match now {
                    Some(now) => stmt.query_row(params![stage.as_str(), now], |r| r.get(0))?,
                    None => stmt.query_row([stage.as_str()], |r| r.get(0))?,
                };
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .map_err(|e| self.db.local_error(e))
    }

    fn send_now(&self, stage: Stage, bodies: &[String]) -> Result<(), DbError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let enqueued_at = millis(Utc::now());
        self.db.write(|tx| {
            // Visible from the epoch, so a new message is due whatever clock the consumer
            // reads: an accelerated demo clock and a test clock in the past both see it.
            let mut stmt = tx.prepare_cached(
                "INSERT INTO queue_messages (stage, body, visible_at, receive_count, enqueued_at) \
                 VALUES (?1, ?2, 0, 0, ?3)",
            )?;
            for body in bodies {
                stmt.execute(params![stage.as_str(), body, enqueued_at])?;
            }
            Ok(())
        })
    }
}

impl StageQueue for SqliteQueue {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        self.send_now(stage, bodies).map_err(|e| self.db.queue_error(e))
    }

    /// Every receive rewrites the message's row: a 2–3 KB lead copy made the rows a page each,
    /// and the local stack 25–30 % slower end to end (docs/performance.md, section 2), for a
    /// read of the same file saved.
    fn carries_leads(&self) -> bool {
        false
    }
}

impl DeadLetters for SqliteQueue {
    async fn list(&self, stage: Stage, limit: usize) -> Result<DeadLetterList, QueueError> {
        self.dead_letter_list(stage, limit).map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    async fn redrive(&self, stage: Stage) -> Result<Redrive, QueueError> {
        let messages =
            self.redrive_dead_letters(stage, Utc::now()).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        Ok(Redrive { stage, messages, done: true, task: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_walks_the_stage_index_in_id_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::SqliteStore::open(dir.path().join("plan.db")).unwrap_or_else(|e| panic!("{e}"));
        let queue = store.queue();
        let plan = queue
            .db
            .read(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {SELECT_VISIBLE}"))?;
                let rows = stmt.query_map(params!["validate", 0_i64, 0_i64], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .unwrap_or_else(|e| panic!("{}", queue.db.local_error(e)));
        assert!(
            plan.starts_with("SEARCH queue_messages USING INDEX queue_messages_by_stage (stage=? AND id>?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn receiving_runs_the_statement_prepared_once_not_again_each_batch() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = crate::SqliteStore::open(dir.path().join("q.db")).unwrap_or_else(|e| panic!("{e}"));
        let queue = store.queue();
        let bodies: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
        queue.send_now(Stage::Score, &bodies).unwrap_or_else(|e| panic!("{}", queue.db.local_error(e)));
        let now = Utc::now();
        let sizes: Vec<usize> = [2, 1, 3, 10]
            .into_iter()
            .map(|max| queue.receive(Stage::Score, max, Duration::from_secs(30), now).map_or(0, |r| r.len()))
            .collect();
        assert_eq!(sizes, [2, 1, 3, 1], "each receive takes at most what it asks for, in order, until none is left");
        let prepared_again = queue
            .db
            .read(|c| Ok(c.prepare_cached(SELECT_VISIBLE)?.get_status(rusqlite::StatementStatus::RePrepare)))
            .unwrap_or_else(|e| panic!("{}", queue.db.local_error(e)));
        assert_eq!(prepared_again, 0, "SQLite prepared the receive's statement again {prepared_again} times");
    }
}
