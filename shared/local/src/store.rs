//! The lead store over SQLite: documents as JSON text, plus the columns that are looked up,
//! counted or compared in conditional writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use leadflow_core::erasure::is_erased;
use leadflow_core::error::StoreError;
use leadflow_core::model::{
    Activity, Document, Enrollment, EnrollmentState, Lead, LeadId, RepId, Suppression, TeamCursor,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, EnrollmentPage, FactsPage, IdempotencyClaim, LeadPage,
    SuppressionPage, SuppressionPosition, WriteOutcome,
};
use rusqlite::{Connection, OptionalExtension, params};

mod assignments;
mod documents;
mod effects;
mod enrollments;
pub(crate) mod facts;
mod leads;
mod listings;
mod suppressions;
mod trails;

use crate::db::{Db, DbError, from_doc, from_sql_u64, millis, nanos, sla_due_key, suppression_at, to_doc, to_sql_int};
use crate::error::LocalError;
use crate::queue::SqliteQueue;

/// The lead store in one SQLite file. Cloning is cheap and shares the connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
}

const SELECT_DUE: &str = "SELECT version, doc FROM enrollments \
     WHERE next_due_at IS NOT NULL AND next_due_at <= ?1 \
     ORDER BY next_due_at, rowid LIMIT ?2";

/// Reads the partial index `leads_sla_due` only (it covers `id`), in due order.
const SELECT_DUE_SLAS: &str = "SELECT id FROM leads \
     WHERE sla_due_at IS NOT NULL AND sla_due_at <= ?1 \
     ORDER BY sla_due_at, id LIMIT ?2";

/// One page of leads after a cursor (`''` before the first page), in id order.
const SELECT_LEAD_PAGE: &str = "SELECT id, version, doc FROM leads WHERE id > ?1 ORDER BY id LIMIT ?2";

/// One page of a rep's open leads before a cursor, newest (highest id) first: a search of the
/// partial index `leads_open_by_owner`, whose WHERE terms this repeats so that SQLite may use it.
/// Before the first page the cursor is [`NO_OPEN_LEAD_CURSOR`].
const SELECT_OPEN_LEAD_PAGE: &str = "SELECT id, version, doc FROM leads \
     WHERE owner_rep = ?1 AND status NOT IN ('won', 'lost') AND id < ?2 \
     ORDER BY id DESC LIMIT ?3";

/// Sorts after every lead id: a ULID is Crockford base32, digits and capital letters.
const NO_OPEN_LEAD_CURSOR: &str = "~";

/// The leads before a cursor ([`NO_OPEN_LEAD_CURSOR`] before the first page), newest first: the
/// primary key walked backwards. No LIMIT: the caller steps rows until its page is full, passing
/// over tombstones (an erased lead is told by its document, see `leadflow_core::erasure`, and
/// erasures are rare), so the work is the page plus the erased leads within it.
const SELECT_RECENT_LEADS: &str = "SELECT id, version, doc FROM leads WHERE id < ?1 ORDER BY id DESC";

/// The first page of the suppression list, newest first: `suppressions_by_time` walked backwards.
const SELECT_SUPPRESSIONS: &str = "SELECT at_ms, email_key, doc FROM suppressions \
     WHERE at_ms IS NOT NULL ORDER BY at_ms DESC, email_key DESC LIMIT ?1";

/// A later page: the entries after the cursor's (time, email key) in that order.
const SELECT_SUPPRESSIONS_AFTER: &str = "SELECT at_ms, email_key, doc FROM suppressions \
     WHERE at_ms IS NOT NULL AND (at_ms, email_key) < (?1, ?2) \
     ORDER BY at_ms DESC, email_key DESC LIMIT ?3";

/// One page of a campaign's enrollments after a cursor (`''` before the first page), in lead id
/// order: a search of `enrollments_by_campaign`.
const SELECT_CAMPAIGN_ENROLLMENT_PAGE: &str = "SELECT lead_id, version, doc FROM enrollments \
     WHERE campaign_id = ?1 AND lead_id > ?2 ORDER BY lead_id LIMIT ?3";

/// A lead's trail: its own range of the primary key, put in time order (a lead has few entries).
const SELECT_TRAIL: &str = "SELECT id, doc FROM activities WHERE lead_id = ?1 ORDER BY at, id";

const SELECT_REP_LOADS: &str = "SELECT rep, open FROM rep_loads WHERE open > 0";

/// A lead's activities, oldest first.
fn read_trail(c: &Connection, lead_id: LeadId) -> Result<Vec<Activity>, DbError> {
    let mut stmt = c.prepare_cached(SELECT_TRAIL)?;
    let mut rows = stmt.query([lead_id.to_string()])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let doc = row.get_ref(1)?.as_str().map_err(|_| DbError::Corrupt("an activity is not stored as text".into()))?;
        match serde_json::from_str(doc) {
            Ok(activity) => out.push(activity),
            // The id only when it is needed: a trail of a thousand leads is read in one go.
            Err(_) => out.push(from_doc(&format!("activity {}", row.get::<_, String>(0)?), doc)?),
        }
    }
    Ok(out)
}

impl SqliteStore {
    /// Opens (creating it and its folder if need be) the data file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LocalError> {
        Ok(Self { db: Db::open(path.as_ref())? })
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The stage queues in the same file, over the same connection, with the default
    /// [`DEFAULT_MAX_RECEIVES`](crate::DEFAULT_MAX_RECEIVES).
    pub fn queue(&self) -> SqliteQueue {
        SqliteQueue::new(Arc::clone(&self.db))
    }

    pub fn count_leads(&self) -> Result<u64, LocalError> {
        self.db
            .read(|c| {
                let n: i64 = c.prepare_cached("SELECT COUNT(*) FROM leads")?.query_row([], |r| r.get(0))?;
                from_sql_u64("lead count", n)
            })
            .map_err(|e| self.db.local_error(e))
    }

    /// Gives back every effect claimed and never finished: for a process that is the only user
    /// of the file, at start, when those claims can only be a killed predecessor's. Without it
    /// they would stay busy for their whole lease, longer than the queue retries a message.
    /// Answers how many were given back.
    pub fn release_dead_claims(&self) -> Result<usize, StoreError> {
        self.db
            .read(|c| Ok(c.prepare_cached("DELETE FROM effects WHERE state = 'claimed'")?.execute([])?))
            .map_err(|e| self.db.store_error(e))
    }

    /// Enrolls every enrollment not enrolled yet, in one transaction; answers how many were
    /// created. For set-up and imports (a benchmark's million enrollments): it holds the
    /// connection for the whole batch, so handlers use [`Enrollments::enroll`].
    pub fn enroll_many(&self, enrollments: &[Enrollment]) -> Result<usize, StoreError> {
        self.db
            .write(|tx| {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO enrollments \
                     (lead_id, campaign_id, version, next_due_at, doc) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut created = 0;
                for enrollment in enrollments {
                    // Encoded one at a time, so a large batch is never held twice in memory.
                    let row = EnrollmentRow::of(enrollment, enrollment.version)
                        .map_err(|e| DbError::Corrupt(e.to_string()))?;
                    created += stmt.execute(params![
                        row.lead_id,
                        enrollment.campaign_id,
                        row.version,
                        row.next_due_at,
                        row.doc
                    ])?;
                }
                Ok(created)
            })
            .map_err(|e| self.db.store_error(e))
    }
}

/// A lead-id cursor as the queries compare it: `first` before the first page. The cursor is the
/// id of the last lead handed out, so anything else was not made here.
fn lead_cursor(cursor: Option<String>, first: &str, what: &str) -> Result<String, StoreError> {
    match cursor {
        None => Ok(first.to_string()),
        Some(c) => c
            .parse::<LeadId>()
            .map(|id| id.to_string())
            .map_err(|_| StoreError::Corrupt(format!("the {what} cursor is not one this store handed out"))),
    }
}

/// The page to serve for a caller's `limit`, and the rows to fetch for it. A page of none would
/// hand back the same cursor for ever; one row more than the page tells whether another page
/// follows without reading it.
fn page_size(limit: usize) -> (usize, i64) {
    let limit = limit.max(1);
    (limit, i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1))
}

/// Cuts `page` (read one past `limit`) to `limit`; the cursor of its last item when more follow.
fn cut_page<T>(page: &mut Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Option<String> {
    if page.len() > limit {
        page.truncate(limit);
        page.last().map(cursor)
    } else {
        None
    }
}

/// A page of leads from `rows` of (id, version, doc), newest or oldest first as the query orders
/// them: the leads `keep` holds for, stepping rows until the page and one more are read.
fn read_lead_page(
    mut rows: rusqlite::Rows<'_>,
    limit: usize,
    keep: impl Fn(&Lead) -> bool,
) -> Result<LeadPage, DbError> {
    let mut leads = Vec::new();
    while leads.len() <= limit {
        let Some(row) = rows.next()? else { break };
        let (id, version, doc): (String, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let lead = lead_from_row(&id, version, &doc)?;
        if keep(&lead) {
            leads.push(lead);
        }
    }
    let next = cut_page(&mut leads, limit, |l| l.id.to_string());
    Ok(LeadPage { leads, next })
}

/// A lead as read from its row: the version column is what conditional writes compare against,
/// so it is the truth, whatever the document says.
fn lead_from_row(id: &str, version: i64, doc: &str) -> Result<Lead, DbError> {
    let what = format!("lead {id}");
    let mut lead: Lead = from_doc(&what, doc)?;
    lead.version = from_sql_u64(&what, version)?;
    Ok(lead)
}

/// A lead as stored: the document carries the version it is stored under.
struct LeadRow {
    id: String,
    version: i64,
    owner_rep: Option<String>,
    status: &'static str,
    doc: String,
    sla_due_at: Option<i64>,
}

impl LeadRow {
    fn of(lead: &Lead, version: u64) -> Result<Self, StoreError> {
        let id = lead.id.to_string();
        let doc = if lead.version == version {
            to_doc("lead", lead)?
        } else {
            to_doc("lead", &Lead { version, ..lead.clone() })?
        };
        Ok(Self {
            id,
            version: to_sql_int(version),
            // An erased lead keeps its owner for the reports, but is nobody's open lead and has
            // no SLA running.
            owner_rep: lead.owner.as_ref().filter(|_| !is_erased(lead)).map(|o| o.rep_id.clone()),
            status: lead.status.as_str(),
            doc,
            sla_due_at: sla_due_key(lead).filter(|_| !is_erased(lead)),
        })
    }
}

/// An activity as stored: keyed by its lead and its id, which is unique within the lead only.
struct ActivityRow {
    lead_id: String,
    id: String,
    at: i64,
    doc: String,
}

impl ActivityRow {
    fn of(activity: &Activity) -> Result<Self, StoreError> {
        Ok(Self {
            lead_id: activity.lead_id.to_string(),
            id: activity.id.clone(),
            at: millis(activity.at),
            doc: to_doc("activity", activity)?,
        })
    }

    fn all(trail: &[Activity]) -> Result<Vec<Self>, StoreError> {
        trail.iter().map(Self::of).collect()
    }
}

/// What storing an activity does to one of the same lead and id.
#[derive(Clone, Copy)]
enum OnSameId {
    /// A trail written with its change: the newer telling replaces (see `LeadStore` on trails).
    Replace,
    /// A fact recorded on its own, or a repeated opt-out: the first telling stays.
    KeepFirst,
}

/// Stores activities in whatever transaction `c` is in.
fn write_activities(c: &Connection, rows: &[ActivityRow], on_same_id: OnSameId) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = c.prepare_cached(match on_same_id {
        OnSameId::Replace => "INSERT OR REPLACE INTO activities (lead_id, id, at, doc) VALUES (?1, ?2, ?3, ?4)",
        OnSameId::KeepFirst => "INSERT OR IGNORE INTO activities (lead_id, id, at, doc) VALUES (?1, ?2, ?3, ?4)",
    })?;
    for row in rows {
        stmt.execute(params![row.lead_id, row.id, row.at, row.doc])?;
    }
    Ok(())
}

fn update_lead_row(c: &Connection, row: &LeadRow, expected_version: u64) -> Result<usize, DbError> {
    let expected = to_sql_int(expected_version);
    let mut stmt = c.prepare_cached(
        "UPDATE leads SET version = ?2, owner_rep = ?3, status = ?4, doc = ?5, sla_due_at = ?7 \
         WHERE id = ?1 AND version = ?6",
    )?;
    Ok(stmt.execute(params![row.id, row.version, row.owner_rep, row.status, row.doc, expected, row.sla_due_at])?)
}

struct EnrollmentRow {
    lead_id: String,
    version: i64,
    next_due_at: Option<i64>,
    doc: String,
}

impl EnrollmentRow {
    fn of(enrollment: &Enrollment, version: u64) -> Result<Self, StoreError> {
        let doc = if enrollment.version == version {
            to_doc("enrollment", enrollment)?
        } else {
            to_doc("enrollment", &Enrollment { version, ..enrollment.clone() })?
        };
        // Only active enrollments are in the due index, whatever time the document still holds.
        let next_due_at = match enrollment.state {
            EnrollmentState::Active => enrollment.next_due_at.map(millis),
            EnrollmentState::Completed | EnrollmentState::Stopped { .. } => None,
        };
        Ok(Self { lead_id: enrollment.lead_id.to_string(), version: to_sql_int(version), next_due_at, doc })
    }
}

fn enrollment_cols(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn read_enrollments(rows: impl Iterator<Item = rusqlite::Result<(i64, String)>>) -> Result<Vec<Enrollment>, DbError> {
    let mut out = Vec::new();
    for row in rows {
        let (version, doc) = row?;
        let mut e: Enrollment = from_doc("enrollment", &doc)?;
        e.version = from_sql_u64("enrollment", version)?;
        out.push(e);
    }
    Ok(out)
}

fn parse_lead_id(what: &str, text: &str) -> Result<LeadId, DbError> {
    text.parse().map_err(|_| DbError::Corrupt(format!("{what} points at a malformed lead id")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::ports::Suppressions;

    /// A fresh store at `path` (a test's temporary folder).
    pub(super) fn open(path: &Path) -> SqliteStore {
        SqliteStore::open(path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `f` on the store's connection, as a test reaches under the store's API.
    pub(super) fn run<T>(store: &SqliteStore, f: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError>) -> T {
        store.db.read(f).unwrap_or_else(|e| panic!("{}", store.db.local_error(e)))
    }

    /// SQLite's plan for `sql` on a fresh store.
    pub(super) fn plan(sql: &str, params: impl rusqlite::Params) -> String {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = open(&dir.path().join("plan.db"));
        run(&store, |c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = stmt.query_map(params, |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
        })
    }

    #[test]
    fn the_due_scan_searches_the_partial_index_in_due_order() {
        let plan = plan(SELECT_DUE, params![0_i64, 10_i64]);
        assert!(plan.starts_with("SEARCH enrollments USING INDEX enrollments_due (next_due_at"), "{plan}");
        // Reading the index in order is what lets LIMIT stop early: no sort of all due rows.
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn the_sla_scan_reads_only_the_partial_index_in_due_order() {
        let plan = plan(SELECT_DUE_SLAS, params![0_i64, 10_i64]);
        assert!(plan.starts_with("SEARCH leads USING COVERING INDEX leads_sla_due (sla_due_at"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_lead_page_walks_the_primary_key() {
        let plan = plan(SELECT_LEAD_PAGE, params!["", 10_i64]);
        assert!(plan.starts_with("SEARCH leads USING INDEX sqlite_autoindex_leads_1 (id>?)"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_campaign_enrollment_page_searches_the_campaign_index() {
        let plan = plan(SELECT_CAMPAIGN_ENROLLMENT_PAGE, params!["welcome", "", 10_i64]);
        assert!(
            plan.starts_with("SEARCH enrollments USING INDEX enrollments_by_campaign (campaign_id=? AND lead_id>?)"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_reps_open_leads_are_read_from_the_partial_index_newest_first() {
        let plan = plan(SELECT_OPEN_LEAD_PAGE, params!["ana", NO_OPEN_LEAD_CURSOR, 10_i64]);
        assert!(plan.starts_with("SEARCH leads USING INDEX leads_open_by_owner (owner_rep=? AND id<?)"), "{plan}");
        // Walked backwards in index order: LIMIT stops after the page, no sort of all the rep's leads.
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn a_file_without_the_late_indexes_gains_them_when_opened() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        let store = open(&path);
        // A version-4 file from before the indexes.
        run(&store, |c| {
            c.execute_batch(
                "DROP INDEX leads_open_by_owner; DROP INDEX enrollments_by_campaign; \
                 DROP INDEX suppressions_by_time;",
            )?;
            Ok(())
        });
        drop(store);
        let store = open(&path);
        let indexes = run(&store, |c| {
            let mut stmt = c.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' \
                 AND name IN ('leads_open_by_owner', 'enrollments_by_campaign', 'suppressions_by_time') \
                 ORDER BY name",
            )?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(names.collect::<Result<Vec<_>, _>>()?)
        });
        assert_eq!(indexes, ["enrollments_by_campaign", "leads_open_by_owner", "suppressions_by_time"]);
    }

    #[test]
    fn recent_leads_walk_the_primary_key_backwards() {
        let plan = plan(SELECT_RECENT_LEADS, params![NO_OPEN_LEAD_CURSOR]);
        assert!(plan.starts_with("SEARCH leads USING INDEX sqlite_autoindex_leads_1 (id<?)"), "{plan}");
        // In key order: stepping stops after the page, no sort of all the leads.
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn the_suppression_list_is_read_from_its_time_index_newest_first() {
        let first = plan(SELECT_SUPPRESSIONS, params![10_i64]);
        assert!(first.starts_with("SEARCH suppressions USING INDEX suppressions_by_time (at_ms>?)"), "{first}");
        assert!(!first.contains("TEMP B-TREE"), "{first}");
        let later = plan(SELECT_SUPPRESSIONS_AFTER, params![0_i64, "k", 10_i64]);
        // The cursor bounds the search itself (a row-value range), not a filter over the list.
        assert!(
            later.starts_with(
                "SEARCH suppressions USING INDEX suppressions_by_time (at_ms>? AND (at_ms,email_key)<(?,?))"
            ),
            "{later}"
        );
        assert!(!later.contains("TEMP B-TREE"), "{later}");
    }

    #[tokio::test]
    async fn a_file_from_before_the_suppression_times_lists_its_entries_once_opened() {
        use leadflow_core::model::SuppressionReason;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        let at = |s: i64| DateTime::<Utc>::from_timestamp(1_750_000_000 + s, 0).unwrap_or_default();
        let entry = |key: &str, s: i64| Suppression {
            email_key: key.to_string(),
            reason: SuppressionReason::Bounced,
            at: at(s),
            lead_id: None,
        };
        let store = open(&path);
        // A version-4 file from before the column: its entries, and the table as it was then.
        run(&store, |c| {
            c.execute_batch(
                "DROP INDEX suppressions_by_time; DROP TABLE suppressions; \
                 CREATE TABLE suppressions (email_key TEXT PRIMARY KEY, reason TEXT NOT NULL, \
                 doc TEXT NOT NULL) WITHOUT ROWID;",
            )?;
            for (key, s) in [("k1", 1), ("k3", 3), ("k2", 2)] {
                let doc = serde_json::to_string(&entry(key, s)).map_err(|e| DbError::Corrupt(e.to_string()))?;
                c.execute(
                    "INSERT INTO suppressions (email_key, reason, doc) VALUES (?1, 'bounced', ?2)",
                    params![key, doc],
                )?;
            }
            Ok(())
        });
        drop(store);
        let store = open(&path);
        assert!(store.suppress(&entry("k4", 4), &[]).await.unwrap_or_else(|e| panic!("{e}")));
        // An entry a build that does not know the column adds: filled in on the next open.
        run(&store, |c| {
            let doc = serde_json::to_string(&entry("k0", 0)).map_err(|e| DbError::Corrupt(e.to_string()))?;
            c.execute("INSERT INTO suppressions (email_key, reason, doc) VALUES ('k0', 'bounced', ?1)", [doc])?;
            Ok(())
        });
        drop(store);
        let store = open(&path);
        let page = store.suppressions(None, 10).await.unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = page.entries.iter().map(|e| e.email_key.as_str()).collect();
        assert_eq!(keys, ["k4", "k3", "k2", "k1", "k0"]);
    }

    #[test]
    fn a_trail_is_read_from_its_leads_range_of_the_key() {
        let plan = plan(SELECT_TRAIL, params!["01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
        assert!(plan.starts_with("SEARCH activities USING PRIMARY KEY (lead_id=?)"), "{plan}");
    }

    #[test]
    fn rep_loads_read_the_counters_not_the_leads() {
        let plan = plan(SELECT_REP_LOADS, []);
        assert!(plan.contains("rep_loads") && !plan.contains("leads_owner_status"), "{plan}");
    }
}
