//! The intake file's write-ahead log, copied into the file off capture's path.
//!
//! SQLite checkpoints a log on the connection whose commit takes it past its threshold. On the
//! intake's one connection that was capture's: it held the connection while SQLite synced both
//! files, and every request behind it waited (most of capture's slowest answers,
//! docs/performance.md section 2). Here a thread checkpoints on a second connection, which SQLite
//! lets run beside the writers. A log that writers keep adding to is never started over, though:
//! SQLite restarts it only when a writer finds every frame copied. So once the log holds
//! [`FRAMES_BEFORE_RESTART`] frames, the few added during the last checkpoint are copied while
//! the intake's connection is idle, and the next write starts the log from the beginning.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::Connection;

use crate::db::Db;
use crate::error::LocalError;

/// How often the log is copied: small copies, each far from the requests' way.
const PAUSE: Duration = Duration::from_millis(50);

/// About 31 MiB of 4 KiB frames: two seconds of capture at 1,000 requests a second. The
/// restart is the one step capture may wait for; this keeps it rare.
pub(crate) const FRAMES_BEFORE_RESTART: i64 = 8_000;

/// Starts checkpointing `db`'s file, the log started over once it holds `restart_at` frames;
/// the thread ends once `db` is dropped.
pub(crate) fn start(db: &Arc<Db>, restart_at: i64) -> Result<(), LocalError> {
    let path = db.path().to_path_buf();
    let open_err = |source| LocalError::Open { path: path.clone(), source };
    let conn = Connection::open(&path).map_err(open_err)?;
    conn.busy_timeout(crate::db::BUSY_TIMEOUT).map_err(open_err)?;
    // A checkpoint syncs the log before copying it and the file after, as on the intake's own
    // connection: no power loss can leave the file half copied from a log already overwritten.
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
    let db = Arc::downgrade(db);
    std::thread::Builder::new()
        .name("intake-checkpoints".into())
        .spawn(move || run(&conn, &db, restart_at))
        .map_err(|source| LocalError::Io { action: "start the intake's checkpoints", path, source })?;
    Ok(())
}

fn run(conn: &Connection, db: &Weak<Db>, restart_at: i64) {
    loop {
        std::thread::sleep(PAUSE);
        let Some(db) = db.upgrade() else { return };
        // What a checkpoint reports is the log as it found it: frames added while it copied are
        // not counted, so "all copied" does not mean the next writer starts the log over.
        if checkpoint(conn).is_some_and(|frames| frames >= restart_at) {
            // Failures are logged inside; a poisoned connection is the intake's own to report.
            let _ = db.while_idle(|| checkpoint(conn));
        }
    }
}

/// One checkpoint that waits for nobody (SQLite's PASSIVE); the frames the log held when it
/// began.
fn checkpoint(conn: &Connection) -> Option<i64> {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)) {
        Ok(frames) => Some(frames),
        Err(error) => {
            tracing::warn!(%error, "the intake's log could not be copied into its file; retrying");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    /// The log's size in frames of 4 KiB pages, from its file's size (32 bytes of header, then
    /// 24 bytes of header and the page per frame).
    fn frames_in(log: &Path) -> u64 {
        std::fs::metadata(log).map_or(0, |m| m.len().saturating_sub(32) / (24 + 4096))
    }

    /// A writer that never stops for long, as capture under load: the copies beside it never
    /// catch up on their own, and without the restart the log grows with every message.
    #[test]
    fn the_log_starts_over_while_writers_keep_adding_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.db");
        let restart_at = 200;
        let db = Db::open_intake_restarting_at(&path, restart_at).unwrap();
        let log = dir.path().join("intake.db-wal");
        let body = "x".repeat(600);
        // Each message takes at least one frame, most take three or four: a log that never
        // starts over ends with at least as many frames as messages. One that does holds what
        // came between two checkpoints past the threshold, a few hundred frames; half the
        // messages leaves room for checkpoints that a busy machine runs late.
        let messages = 20 * restart_at;
        let mut largest = 0;
        for _ in 0..messages {
            db.write(|c| {
                c.execute(
                    "INSERT INTO queue_messages (stage, body, visible_at, receive_count, enqueued_at) \
                     VALUES ('validate', ?1, 0, 0, 0)",
                    [&body],
                )?;
                Ok(())
            })
            .unwrap();
            largest = largest.max(frames_in(&log));
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(largest < messages as u64 / 2, "the log grew to {largest} frames for {messages} messages");
        assert!(frames_in(&log) > 0, "nothing was written to the log");
    }
}
