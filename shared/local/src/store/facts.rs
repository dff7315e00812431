//! The funnel's facts of every lead (`Listings::funnel_facts`), kept in the side table
//! `lead_facts` by triggers on `leads`, so that a report reads a few small columns in time order
//! instead of parsing every lead's document.
//!
//! Triggers rather than the store's write path: they live in the file, so every writer keeps the
//! table up to date in the same transaction as the lead, a build that does not know the table
//! included (as with `rep_loads`). What they extract mirrors `LeadFacts::of`; the conformance
//! check compares the two for every kind of write.
//!
//! The table is ordered by `created_s`, the capture time in whole seconds as SQLite reads the
//! document's `created_at` (it rounds to the millisecond first, so it may be a second past the
//! floor). A range is searched one second wider on each side and then decided exactly on
//! `created_at`, which the table keeps as written.

use chrono::{DateTime, Utc};
use leadflow_core::funnel::LeadFacts;
use leadflow_core::model::{LeadId, Lifecycle, SalesStatus};
use leadflow_core::ports::FactsPage;
use rusqlite::{Transaction, params};

use crate::db::DbError;

/// The capture second of a lead document `d`, as the table is keyed; NULL if it is not JSON.
macro_rules! created_s {
    ($d:literal) => {
        concat!("CASE WHEN json_valid(", $d, ") THEN unixepoch(json_extract(", $d, ", '$.created_at')) END")
    };
}

/// The row of a lead document `d` with id `i`.
macro_rules! facts_row {
    ($i:literal, $d:literal) => {
        concat!(
            "INSERT OR REPLACE INTO lead_facts \
             (created_s, id, created_at, valid, lifecycle, assigned, status, source) VALUES (",
            created_s!($d),
            ", ",
            $i,
            ", json_extract(",
            $d,
            ", '$.created_at'), json_extract(",
            $d,
            ", '$.validity.state') = 'valid', json_extract(",
            $d,
            ", '$.lifecycle'), json_extract(",
            $d,
            ", '$.owner') IS NOT NULL, json_extract(",
            $d,
            ", '$.status'), NULLIF(json_extract(",
            $d,
            ", '$.attribution.first_touch.utm.source'), ''))"
        )
    };
}

/// Deleting the row of lead document `d` with id `i`; nothing when the document is not JSON.
macro_rules! drop_row {
    ($i:literal, $d:literal) => {
        concat!("DELETE FROM lead_facts WHERE created_s = ", created_s!($d), " AND id = ", $i)
    };
}

/// The table and its triggers; each statement a no-op when it exists already.
const SCHEMA: &str = concat!(
    "CREATE TABLE IF NOT EXISTS lead_facts (
        created_s  INTEGER NOT NULL,
        id         TEXT NOT NULL,
        created_at TEXT NOT NULL,
        valid      INTEGER NOT NULL,
        lifecycle  TEXT NOT NULL,
        assigned   INTEGER NOT NULL,
        status     TEXT NOT NULL,
        source     TEXT,
        PRIMARY KEY (created_s, id)
    ) WITHOUT ROWID;
    CREATE TRIGGER IF NOT EXISTS lead_facts_on_insert AFTER INSERT ON leads BEGIN ",
    facts_row!("NEW.id", "NEW.doc"),
    "; END;
    CREATE TRIGGER IF NOT EXISTS lead_facts_on_update AFTER UPDATE OF doc ON leads BEGIN ",
    drop_row!("OLD.id", "OLD.doc"),
    "; ",
    facts_row!("NEW.id", "NEW.doc"),
    "; END;
    CREATE TRIGGER IF NOT EXISTS lead_facts_on_delete AFTER DELETE ON leads BEGIN ",
    drop_row!("OLD.id", "OLD.doc"),
    "; END;"
);

/// Fills the table from the leads the file holds, in the same statements as the triggers.
const BACKFILL: &str = "INSERT OR IGNORE INTO lead_facts \
     (created_s, id, created_at, valid, lifecycle, assigned, status, source) \
     SELECT unixepoch(json_extract(doc, '$.created_at')), id, json_extract(doc, '$.created_at'), \
            json_extract(doc, '$.validity.state') = 'valid', json_extract(doc, '$.lifecycle'), \
            json_extract(doc, '$.owner') IS NOT NULL, json_extract(doc, '$.status'), \
            NULLIF(json_extract(doc, '$.attribution.first_touch.utm.source'), '') \
     FROM leads WHERE json_valid(doc)";

/// The rows of a (widened) range after a position, in key order: the table's own order. No LIMIT:
/// the caller steps rows until its page is full, passing over the few just outside the range.
pub(super) const SELECT_FACTS: &str = "SELECT created_s, id, created_at, valid, lifecycle, assigned, status, source \
     FROM lead_facts WHERE created_s >= ?1 AND created_s <= ?2 AND (created_s, id) > (?3, ?4) \
     ORDER BY created_s, id";

/// Creates the table and its triggers on a file that lacks them, and fills it from the leads
/// there. A document that is not JSON, or has no readable `created_at`, is left out (reading that
/// lead reports it as corrupt anyway).
pub(crate) fn ensure(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let exists: bool =
        tx.query_row("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'lead_facts'", [], |r| {
            r.get::<_, i64>(0).map(|n| n > 0)
        })?;
    tx.execute_batch(SCHEMA)?;
    if !exists {
        let filled = tx.execute(BACKFILL, [])?;
        tracing::info!(leads = filled, "filled the funnel's facts of the leads in the file");
    }
    Ok(())
}

/// Where a page resumes: after this key.
fn parse_cursor(text: &str) -> Option<(i64, String)> {
    let (secs, id) = text.split_once('#')?;
    let secs: i64 = secs.parse().ok()?;
    let id: LeadId = id.parse().ok()?;
    (format!("{secs}#{id}") == text).then(|| (secs, id.to_string()))
}

pub(super) fn page(
    c: &rusqlite::Connection,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: usize,
) -> Result<FactsPage, DbError> {
    let (after_s, after_id) = match cursor {
        None => (i64::MIN, String::new()),
        Some(c) => parse_cursor(&c)
            .ok_or_else(|| DbError::Corrupt("the funnel cursor is not one this store handed out".into()))?,
    };
    let low = since.map_or(i64::MIN, |s| s.timestamp().saturating_sub(1));
    let high = until.map_or(i64::MAX, |u| u.timestamp().saturating_add(1));
    let limit = limit.max(1);
    let mut stmt = c.prepare_cached(SELECT_FACTS)?;
    let mut rows = stmt.query(params![low, high, after_s, after_id])?;
    let mut facts = Vec::new();
    let mut last = None;
    while let Some(row) = rows.next()? {
        let secs: i64 = row.get(0)?;
        let id: String = row.get(1)?;
        if facts.len() >= limit {
            // Another row follows: the next page resumes after the last one read.
            return Ok(FactsPage { facts, next: last.map(|(s, i): (i64, String)| format!("{s}#{i}")) });
        }
        let f = read(&id, row)?;
        last = Some((secs, id));
        if f.in_range(since, until) {
            facts.push(f);
        }
    }
    Ok(FactsPage { facts, next: None })
}

fn read(id: &str, row: &rusqlite::Row<'_>) -> Result<LeadFacts, DbError> {
    let corrupt = |what: &str| DbError::Corrupt(format!("the funnel's facts of lead {id}: {what}"));
    let created: String = row.get(2)?;
    let lifecycle: String = row.get(4)?;
    let status: String = row.get(6)?;
    Ok(LeadFacts {
        id: id.parse().map_err(|_| corrupt("the id is not a lead id"))?,
        created_at: DateTime::parse_from_rfc3339(&created)
            .map_err(|_| corrupt("created_at is not an RFC 3339 time"))?
            .with_timezone(&Utc),
        valid: row.get(3)?,
        lifecycle: match lifecycle.as_str() {
            "lead" => Lifecycle::Lead,
            "mql" => Lifecycle::Mql,
            "sql" => Lifecycle::Sql,
            _ => return Err(corrupt("unknown lifecycle")),
        },
        assigned: row.get(5)?,
        status: SalesStatus::parse(&status).ok_or_else(|| corrupt("unknown status"))?,
        source: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crate::store::tests::{open, plan, run};
    use leadflow_core::ports::{Leads, Listings};
    use leadflow_memory::fixtures::{lead, t};

    #[test]
    fn a_page_of_facts_walks_the_side_tables_key_over_the_range() {
        let plan = plan(SELECT_FACTS, params![0_i64, 10_i64, 0_i64, ""]);
        // The table's own key, searched from the range's start: no lead document, no sort.
        assert!(plan.starts_with("SEARCH lead_facts USING PRIMARY KEY (created_s>? AND created_s<?)"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[tokio::test]
    async fn a_file_from_before_the_facts_has_them_once_opened_and_keeps_them_after() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        let store = open(&path);
        for n in 1..=3_u64 {
            let l = lead(n, &format!("lead{n}@x.example"));
            assert!(store.create_lead(&l, &[]).await.is_ok());
        }
        // A file from before the side table: its leads and nothing else.
        run(&store, |c| {
            c.execute_batch(
                "DROP TRIGGER lead_facts_on_insert; DROP TRIGGER lead_facts_on_update; \
                 DROP TRIGGER lead_facts_on_delete; DROP TABLE lead_facts;",
            )?;
            Ok(())
        });
        drop(store);
        let store = open(&path);
        async fn facts(store: &SqliteStore) -> Vec<(LeadId, SalesStatus)> {
            let page = store.funnel_facts(None, None, None, 10).await.unwrap_or_else(|e| panic!("{e}"));
            page.facts.iter().map(|f| (f.id, f.status)).collect()
        }
        let ids: Vec<_> = (1..=3).map(|n| (leadflow_memory::fixtures::id(n), SalesStatus::New)).collect();
        assert_eq!(facts(&store).await, ids);
        // The triggers are back: a later write is seen, and a second open adds nothing twice.
        let mut one = store.get_lead(ids[0].0).await.ok().flatten().unwrap_or_else(|| panic!("lead 1 is gone"));
        let v = one.version;
        one.status = SalesStatus::Won;
        one.updated_at = t(5);
        assert!(store.update_lead(&one, v, &[]).await.is_ok());
        drop(store);
        let store = open(&path);
        assert_eq!(facts(&store).await[0], (ids[0].0, SalesStatus::Won));
        assert_eq!(facts(&store).await.len(), 3);
    }
}
