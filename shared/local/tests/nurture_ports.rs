//! What only the SQLite store has around the nurture, erasure and admin ports: suppressions,
//! documents and the SLA index in a file that outlives the process, the schema 2 migration,
//! `enroll_many`, and full lead pages. What every store must do is in `shared/conformance`, run
//! on this store by `tests/conformance.rs`.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::{enrollment, id, lead, owned_by, t};
use leadflow_core::erasure::tombstone;
use leadflow_core::model::{
    Activity, ActivityKind, Document, EnrollmentState, Lead, LeadId, SalesStatus, Suppression, SuppressionReason,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::WriteOutcome;
use leadflow_core::ports::{Assignments, Documents, Enrollments, Leads, Listings, Suppressions, Trails};
use leadflow_local::SqliteStore;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("leadflow.db")).expect("open store");
    (dir, store)
}

fn suppression(key: &str, reason: SuppressionReason, secs: i64) -> Suppression {
    Suppression { email_key: key.to_string(), reason, at: t(secs), lead_id: Some(id(1)) }
}

fn doc(name: &str, version: u32, body: &str) -> Document {
    Document { name: name.to_string(), version, body: body.to_string(), saved_at: t(i64::from(version)) }
}

async fn put_versions(store: &SqliteStore, name: &str, versions: u32) {
    for v in 1..=versions {
        assert_eq!(store.put_document(&doc(name, v, "{}")).await.unwrap(), WriteOutcome::Written, "{name} v{v}");
    }
}

fn owned_due(n: u64, rep: &str, due: DateTime<Utc>) -> Lead {
    let mut l = owned_by(lead(n, &format!("p{n}@example.com")), rep);
    if let Some(owner) = l.owner.as_mut() {
        owner.sla_due_at = due;
    }
    l
}

fn activity(aid: &str, lead: LeadId, secs: i64) -> Activity {
    Activity {
        id: aid.to_string(),
        lead_id: lead,
        at: t(secs),
        kind: ActivityKind::EmailSent { email: "drip-x".into(), message_id: "m".into(), subject: "Hi Ada".into() },
    }
}

/// Not promised by the port (DynamoDB's scan pages may be short, even empty): SQLite's pages are
/// full but the last, and a lead created while the pages are read still comes, in a later page.
#[tokio::test]
async fn lead_pages_are_full_and_a_lead_created_meanwhile_comes_later() {
    let (_dir, store) = open();
    for n in 1..=23 {
        store.create_lead(&lead(n, &format!("p{n}@example.com")), &[]).await.unwrap();
    }
    let mut sizes = Vec::new();
    let mut cursor = None;
    let mut created_meanwhile = false;
    loop {
        let page = store.list_leads(cursor, 5).await.unwrap();
        sizes.push(page.leads.len());
        if !created_meanwhile {
            store.create_lead(&lead(50, "late@example.com"), &[]).await.unwrap();
            created_meanwhile = true;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [5, 5, 5, 5, 4], "23 leads and the one created after the first page");
}

#[tokio::test]
async fn suppressions_documents_and_the_sla_index_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let entry = suppression(&email_key("ada@example.com"), SuppressionReason::Complained, 3);
    {
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.suppress(&entry, &[]).await.unwrap());
        put_versions(&store, "campaign:welcome", 2).await;
        store.create_lead(&owned_due(1, "rep-1", t(100)), &[]).await.unwrap();
        store.create_lead(&owned_due(2, "rep-1", t(50)), &[]).await.unwrap();
        store.create_lead(&lead(3, "c@example.com"), &[]).await.unwrap();
        store.record_activity(&activity("a1", id(3), 1)).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.suppression(&entry.email_key).await.unwrap(), Some(entry.clone()));
    assert!(!store.suppress(&suppression(&entry.email_key, SuppressionReason::Bounced, 9), &[]).await.unwrap());
    assert_eq!(store.document("campaign:welcome", None).await.unwrap().map(|d| d.version), Some(2));
    assert_eq!(
        store.put_document(&doc("campaign:welcome", 2, "{}")).await.unwrap(),
        WriteOutcome::VersionConflict,
        "the version count survives too"
    );
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), vec![id(2), id(1)]);
    let page = store.list_leads(None, 2).await.unwrap();
    let rest = store.list_leads(page.next.clone(), 2).await.unwrap();
    assert_eq!((page.leads.len(), rest.leads.len(), rest.next), (2, 1, None));

    // An erasure survives too.
    let three = store.get_lead(id(3)).await.unwrap().unwrap();
    store.erase_lead(&tombstone(&three, t(500)), Some(&email_key("c@example.com"))).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_lead(id(3)).await.unwrap(), Some(tombstone(&three, t(500))));
    assert_eq!(store.find_by_email_key(&email_key("c@example.com")).await.unwrap(), None);
    assert!(store.activities(id(3)).await.unwrap().is_empty());
}

/// The leads table as schema 2 made it, before `sla_due_at`.
const SCHEMA_2_LEADS: &str = "CREATE TABLE leads (
    id        TEXT PRIMARY KEY,
    version   INTEGER NOT NULL,
    owner_rep TEXT,
    status    TEXT NOT NULL,
    doc       TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE email_keys (key TEXT PRIMARY KEY, lead_id TEXT NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 2;";

#[tokio::test]
async fn a_schema_2_file_is_migrated_and_its_owned_leads_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leadflow.db");
    let mut won = owned_due(3, "rep-2", t(10));
    won.status = SalesStatus::Won;
    let rows = [
        (owned_due(1, "rep-1", t(100)), "rep-1", "new"),
        (owned_due(2, "rep-1", t(50)), "rep-1", "new"),
        (won, "rep-2", "won"),
        (lead(5, "e@example.com"), "", "new"),
    ];
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_2_LEADS).unwrap();
        for (l, rep, status) in &rows {
            let owner = (!rep.is_empty()).then_some(*rep);
            c.execute(
                "INSERT INTO leads (id, version, owner_rep, status, doc) VALUES (?1, 0, ?2, ?3, ?4)",
                rusqlite::params![l.id.to_string(), owner, status, serde_json::to_string(l).unwrap()],
            )
            .unwrap();
        }
        // A lead whose document cannot be read does not stop the migration.
        c.execute(
            "INSERT INTO leads (id, version, owner_rep, status, doc) VALUES (?1, 0, 'rep-2', 'new', '{not json')",
            [id(4).to_string()],
        )
        .unwrap();
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), vec![id(2), id(1)]);
    assert_eq!(store.get_lead(id(1)).await.unwrap(), Some(rows[0].0.clone()));
    assert_eq!(
        store.rep_loads().await.unwrap(),
        BTreeMap::from([("rep-1".to_string(), 2), ("rep-2".to_string(), 1)]),
        "counted once on migration"
    );
    // The new tables are there, and new writes index their leads.
    assert!(store.suppress(&suppression("k", SuppressionReason::Bounced, 1), &[]).await.unwrap());
    put_versions(&store, "routing", 1).await;
    store.create_lead(&owned_due(6, "rep-1", t(1)), &[]).await.unwrap();
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), vec![id(6), id(2), id(1)]);
    drop(store);

    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 6);
    // Opening a migrated file again changes nothing.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), vec![id(6), id(2), id(1)]);
    assert_eq!(store.count_leads().unwrap(), 6);
}

#[tokio::test]
async fn enroll_many_creates_the_new_enrollments_in_one_go() {
    let (_dir, store) = open();
    let before = enrollment(3, "welcome", Some(t(2_500)), EnrollmentState::Active);
    assert!(store.enroll(&before, &[]).await.unwrap());
    let batch: Vec<_> = (1..=2_000)
        .map(|n| {
            let state = if n % 4 == 0 { EnrollmentState::Completed } else { EnrollmentState::Active };
            enrollment(n, "welcome", Some(t(i64::try_from(n).unwrap())), state)
        })
        .collect();
    // Lead 3 was enrolled already: it is skipped, and keeps its own enrollment.
    assert_eq!(store.enroll_many(&batch).unwrap(), 1_999);
    assert_eq!(store.enroll_many(&batch).unwrap(), 0, "a repeat creates nothing");
    assert_eq!(store.enroll_many(&[]).unwrap(), 0);

    let due = store.due_enrollments(t(10), 100).await.unwrap();
    let due_leads: Vec<LeadId> = due.iter().map(|e| e.lead_id).collect();
    assert_eq!(due_leads, [1, 2, 5, 6, 7, 9, 10].map(id));
    assert_eq!(store.enrollments(id(7)).await.unwrap(), vec![batch[6].clone()]);
    assert_eq!(store.enrollments(id(3)).await.unwrap(), vec![before]);
    assert_eq!(store.due_enrollments(t(5_000), 5_000).await.unwrap().len(), 1_500);
}
