//! What only the SQLite store has: a file that outlives the process (reopening, migrations, a
//! file that is not a database) and claims a killed run left. What every store must do is in
//! `shared/conformance`, run on this store by `tests/conformance.rs`.

mod common;

use common::{enrollment, id, lead, t};
use leadflow_conformance::support::assigned;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, LeadId};
use leadflow_core::ports::{Assignments, Effects, Enrollments, Leads, Listings, Trails};
use leadflow_core::ports::{CreateOutcome, EffectClaim};
use leadflow_local::SqliteStore;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("data").join("leadflow.db")).expect("open store");
    (dir, store)
}

#[tokio::test]
async fn everything_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
        store.record_alias(id(2), id(1)).await.unwrap();
        store.enroll(&enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
        store.claim_effect(id(1), "e", t(0), t(30)).await.unwrap();
        store.finish_effect(id(1), "e", "done-detail", &[]).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_leads().unwrap(), 1);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap(), lead(1, "ada@example.com"));
    assert_eq!(store.resolve_lead(id(2)).await.unwrap(), Some(id(1)));
    assert_eq!(store.create_lead(&lead(3, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(store.due_enrollments(t(10), 10).await.unwrap().len(), 1);
    assert_eq!(store.claim_effect(id(1), "e", t(0), t(30)).await.unwrap(), EffectClaim::Done("done-detail".into()));
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are not the leads you are looking for, not at all, no".repeat(100)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.starts_with("cannot open the data file"), "{err}");
    assert!(err.contains("notes.txt"), "{err}");
}

#[tokio::test]
async fn claims_a_killed_run_left_are_given_back_at_start_and_finished_effects_stay_done() {
    let (_dir, store) = open();
    let lease = t(120);
    assert_eq!(store.claim_effect(id(1), "email:left-hanging", t(0), lease).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(id(1), "email:done", t(0), lease).await.unwrap(), EffectClaim::Claimed);
    store.finish_effect(id(1), "email:done", "msg-1", &[]).await.unwrap();
    assert_eq!(store.claim_effect(id(1), "email:left-hanging", t(1), t(121)).await.unwrap(), EffectClaim::Busy);
    assert_eq!(store.release_dead_claims().unwrap(), 1);
    assert_eq!(store.claim_effect(id(1), "email:left-hanging", t(1), t(121)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(id(1), "email:done", t(1), t(121)).await.unwrap(), EffectClaim::Done("msg-1".into()));
}

/// The activities table as schemas 1 to 3 made it: one id across all leads.
const SCHEMA_3_ACTIVITIES: &str = "CREATE TABLE activities (
    id      TEXT PRIMARY KEY,
    lead_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX activities_by_lead ON activities (lead_id, at, id);
PRAGMA user_version = 3;";

#[tokio::test]
async fn a_schema_3_file_keeps_every_activity_and_then_takes_the_same_id_for_another_lead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let kept = [
        stage_changed(id(1), "stage-mql", 10),
        stage_changed(id(1), "submission-1", 5),
        stage_changed(id(2), "assigned-1750000000000", 20),
    ];
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_3_ACTIVITIES).unwrap();
        for a in &kept {
            c.execute(
                "INSERT INTO activities (id, lead_id, at, doc) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    a.id,
                    a.lead_id.to_string(),
                    a.at.timestamp_millis(),
                    serde_json::to_string(a).unwrap()
                ],
            )
            .unwrap();
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.activities(id(1)).await.unwrap(), vec![kept[1].clone(), kept[0].clone()]);
    assert_eq!(store.activities(id(2)).await.unwrap(), vec![kept[2].clone()]);
    // What the old key refused: the second lead's `stage-mql`.
    let second = stage_changed(id(2), "stage-mql", 30);
    store.record_activity(&second).await.unwrap();
    assert_eq!(store.activities(id(2)).await.unwrap(), vec![kept[2].clone(), second.clone()]);
    drop(store);

    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.activities(id(1)).await.unwrap().len(), 2, "opening again changes nothing");
}

/// Makes the file's `leads` table WITHOUT ROWID, as every build before 12-05 made it, with the
/// triggers and indexes it had: the rows move over, and what rides on the table is made again.
fn leads_without_rowid(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    let attached: Vec<String> = {
        let mut stmt = c
            .prepare("SELECT sql FROM sqlite_schema WHERE tbl_name = 'leads' AND type IN ('index', 'trigger') AND sql IS NOT NULL")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(attached.len(), 9, "the table's two indexes and seven triggers: {attached:?}");
    c.execute_batch(
        "ALTER TABLE leads RENAME TO leads_rowid;
         CREATE TABLE leads (id TEXT PRIMARY KEY, version INTEGER NOT NULL, owner_rep TEXT,
             status TEXT NOT NULL, doc TEXT NOT NULL, sla_due_at INTEGER) WITHOUT ROWID;
         INSERT INTO leads SELECT id, version, owner_rep, status, doc, sla_due_at FROM leads_rowid;
         DROP TABLE leads_rowid;",
    )
    .unwrap();
    for sql in attached {
        c.execute_batch(&sql).unwrap();
    }
}

fn leads_table_sql(path: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'leads'", [], |r| r.get(0)).unwrap()
}

/// A store in a file of its own holding leads 1 to `n`; the folder goes when its guard does.
async fn file_with_leads(n: u64) -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let store = SqliteStore::open(&path).unwrap();
    for n in 1..=n {
        store.create_lead(&lead(n, &format!("p{n}@example.com")), &[]).await.unwrap();
    }
    (dir, path, store)
}

/// The funnel's facts of every lead, by lead id.
async fn funnel(store: &SqliteStore) -> Vec<leadflow_core::funnel::LeadFacts> {
    let mut facts = store.funnel_facts(None, None, None, 100).await.unwrap().facts;
    facts.sort_by_key(|f| f.id);
    facts
}

#[tokio::test]
async fn leads_kept_without_rowid_move_to_a_rowid_table_with_their_counts_and_facts() {
    let (_dir, path, store) = file_with_leads(3).await;
    assigned(&store, id(1), "ana", t(100)).await;
    assigned(&store, id(2), "ana", t(100)).await;
    let mut leads = Vec::new();
    for n in 1..=3 {
        leads.push(store.get_lead(id(n)).await.unwrap().unwrap());
    }
    let facts = funnel(&store).await;
    assert_eq!(facts.len(), 3);
    drop(store);
    leads_without_rowid(&path);
    assert!(leads_table_sql(&path).contains("WITHOUT ROWID"));

    let store = SqliteStore::open(&path).unwrap();
    for l in &leads {
        assert_eq!(store.get_lead(l.id).await.unwrap().as_ref(), Some(l));
    }
    assert_eq!(store.rep_loads().await.unwrap().get("ana"), Some(&2), "counted once, not once more");
    assert_eq!(funnel(&store).await, facts);
    // The triggers ride on the new table: a third lead for the same rep is counted, and its
    // assignment is in its facts.
    assigned(&store, id(3), "ana", t(100)).await;
    assert_eq!(store.rep_loads().await.unwrap().get("ana"), Some(&3));
    let assigned = funnel(&store).await;
    assert_eq!(assigned.iter().filter(|f| f.assigned).count(), 3, "{assigned:?}");
    drop(store);
    let table = leads_table_sql(&path);
    assert!(!table.contains("WITHOUT ROWID"), "{table}");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.rep_loads().await.unwrap().get("ana"), Some(&3), "opening again changes nothing");
    assert_eq!(funnel(&store).await.len(), 3);
}

/// A migration of a thousand leads writes a statement journal of hundreds of KiB (the old
/// table's pages, zeroed by `secure_delete` as it is dropped). Kept in memory it completes; a
/// build whose journals spill to a file past 128 KiB or more of one block (SQLite compiled with
/// `SQLITE_STMTJRNL_SPILL=262144`, without `temp_store = MEMORY`) failed here as "database or
/// disk is full", and the file did not open.
#[tokio::test]
async fn a_move_with_a_journal_of_hundreds_of_kib_completes() {
    const LEADS: u64 = 1_000;
    let (_dir, path, store) = file_with_leads(LEADS).await;
    let pages: i64 = {
        drop(store);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("SELECT COUNT(*) FROM dbstat WHERE name = 'leads'", [], |r| r.get(0)).unwrap()
    };
    // The journal holds a page and its number for each of the table's pages.
    assert!(pages * 4_100 > 256 * 1024, "{pages} pages");
    leads_without_rowid(&path);

    let store = SqliteStore::open(&path).unwrap();
    for n in 1..=LEADS {
        assert!(store.get_lead(id(n)).await.unwrap().is_some(), "lead {n}");
    }
    drop(store);
    assert!(!leads_table_sql(&path).contains("WITHOUT ROWID"));
}

fn stage_changed(lead: LeadId, activity_id: &str, secs: i64) -> Activity {
    Activity {
        id: activity_id.to_string(),
        lead_id: lead,
        at: t(secs),
        kind: ActivityKind::StageChanged {
            from: leadflow_core::model::Lifecycle::Lead,
            to: leadflow_core::model::Lifecycle::Mql,
        },
    }
}
