//! The store methods nurture, erasure and the admin API need: suppression, versioned documents,
//! lead listing, the SLA index and erasure. Each behaviour is checked on the SQLite store and on
//! the in-memory fake alike, so that handler tests on the fake mean the same thing.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use common::{enrollment, id, lead, owned_by, t};
use leadflow_core::FieldProblem;
use leadflow_core::model::{
    Activity, ActivityKind, Contact, Document, DomainKind, Enrollment, EnrollmentState, Lead, LeadId, SalesStatus,
    Suppression, SuppressionReason, Validity,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, LeadStore, WriteOutcome};
use leadflow_local::SqliteStore;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("leadflow.db")).expect("open store");
    (dir, store)
}

/// Runs one check on a fresh SQLite store and on a fresh in-memory store.
macro_rules! on_both_stores {
    ($($name:ident => $check:ident;)*) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, store) = super::open();
                    super::$check(&store).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$check(&leadflow_memory::MemoryStore::new()).await;
                }
            )*
        }
    };
}

on_both_stores! {
    suppression_keeps_the_first_entry_and_its_reason => check_suppression_first_entry_wins;
    documents_are_written_only_as_the_next_version => check_document_versions;
    latest_documents_are_the_newest_version_of_each_name_with_the_prefix => check_latest_documents;
    lead_pages_cover_every_lead_exactly_once => check_list_leads_pages;
    a_garbage_listing_cursor_is_an_error => check_garbage_cursor;
    due_slas_are_owned_valid_new_leads_past_due_oldest_first => check_due_slas;
    erasure_replaces_the_lead_and_deletes_its_key_and_activities => check_erase_lead;
    erasure_wins_over_a_write_that_came_in_since_the_tombstone_was_made => check_erase_after_concurrent_write;
    campaign_enrollments_pages_cover_every_enrollment_of_the_campaign_once => check_campaign_enrollments_pages;
}

fn suppression(key: &str, reason: SuppressionReason, secs: i64) -> Suppression {
    Suppression { email_key: key.to_string(), reason, at: t(secs), lead_id: Some(id(1)) }
}

async fn check_suppression_first_entry_wins(store: &impl LeadStore) {
    let key = email_key("ada@example.com");
    assert_eq!(store.suppression(&key).await.unwrap(), None);

    let first = suppression(&key, SuppressionReason::Bounced, 10);
    assert!(store.suppress(&first, &[]).await.unwrap());
    assert!(!store.suppress(&suppression(&key, SuppressionReason::Unsubscribed, 20), &[]).await.unwrap());
    assert!(!store.suppress(&first, &[]).await.unwrap(), "a repeat is no new entry");
    assert_eq!(store.suppression(&key).await.unwrap(), Some(first));

    // Another address is its own entry.
    let other =
        Suppression { lead_id: None, ..suppression(&email_key("bob@example.com"), SuppressionReason::Erased, 5) };
    assert!(store.suppress(&other, &[]).await.unwrap());
    assert_eq!(store.suppression(&other.email_key).await.unwrap(), Some(other));
    assert_eq!(store.suppression(&email_key("carol@example.com")).await.unwrap(), None);
}

fn doc(name: &str, version: u32, body: &str) -> Document {
    // Sub-second times must come back exactly.
    let saved_at = t(i64::from(version)) + TimeDelta::nanoseconds(123_456_789);
    Document { name: name.to_string(), version, body: body.to_string(), saved_at }
}

async fn check_document_versions(store: &impl LeadStore) {
    assert_eq!(store.document("routing", None).await.unwrap(), None);
    assert_eq!(store.put_document(&doc("routing", 0, "{}")).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.put_document(&doc("routing", 2, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "gap");
    assert_eq!(store.document("routing", None).await.unwrap(), None, "conflicts write nothing");

    let v1 = doc("routing", 1, r#"{"teams":[]}"#);
    assert_eq!(store.put_document(&v1).await.unwrap(), WriteOutcome::Written);
    // Two admins both read "no document" and save version 1: the second loses.
    let rival = doc("routing", 1, r#"{"teams":["rival"]}"#);
    assert_eq!(store.put_document(&rival).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.document("routing", Some(1)).await.unwrap(), Some(v1.clone()), "a stored version never changes");
    assert_eq!(store.put_document(&doc("routing", 3, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "gap");

    let v2 = doc("routing", 2, r#"{"teams":["emea"]}"#);
    assert_eq!(store.put_document(&v2).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.put_document(&v2).await.unwrap(), WriteOutcome::VersionConflict, "a retry");
    assert_eq!(store.put_document(&doc("routing", 1, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "stale");

    assert_eq!(store.document("routing", None).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.document("routing", Some(2)).await.unwrap(), Some(v2));
    assert_eq!(store.document("routing", Some(1)).await.unwrap(), Some(v1));
    assert_eq!(store.document("routing", Some(3)).await.unwrap(), None);

    // Versions count per name.
    assert_eq!(store.put_document(&doc("scoring", 2, "{}")).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.put_document(&doc("scoring", 1, "{}")).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.document("scoring", None).await.unwrap().map(|d| d.version), Some(1));
}

async fn put_versions(store: &impl LeadStore, name: &str, versions: u32) {
    for v in 1..=versions {
        let body = format!(r#"{{"name":"{name}","v":{v}}}"#);
        assert_eq!(store.put_document(&doc(name, v, &body)).await.unwrap(), WriteOutcome::Written, "{name} v{v}");
    }
}

async fn check_latest_documents(store: &impl LeadStore) {
    // Written out of name order; `campaign;` sorts right after every `campaign:` name and
    // `campaign` right before them.
    put_versions(store, "campaign:webinar", 1).await;
    put_versions(store, "campaign;", 1).await;
    put_versions(store, "campaign:welcome", 3).await;
    put_versions(store, "campaign", 1).await;
    put_versions(store, "campaign:welcome-b", 2).await;
    put_versions(store, "routing", 2).await;
    put_versions(store, "scoring", 1).await;

    let latest = |docs: Vec<Document>| docs.into_iter().map(|d| (d.name, d.version)).collect::<Vec<_>>();
    let named = |pairs: &[(&str, u32)]| pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>();

    assert_eq!(
        latest(store.latest_documents("campaign:").await.unwrap()),
        named(&[("campaign:webinar", 1), ("campaign:welcome", 3), ("campaign:welcome-b", 2)])
    );
    assert_eq!(
        latest(store.latest_documents("campaign:welcome").await.unwrap()),
        named(&[("campaign:welcome", 3), ("campaign:welcome-b", 2)])
    );
    assert_eq!(latest(store.latest_documents("routing").await.unwrap()), named(&[("routing", 2)]));
    assert_eq!(latest(store.latest_documents("zzz").await.unwrap()), named(&[]));
    assert_eq!(
        latest(store.latest_documents("").await.unwrap()),
        named(&[
            ("campaign", 1),
            ("campaign:webinar", 1),
            ("campaign:welcome", 3),
            ("campaign:welcome-b", 2),
            ("campaign;", 1),
            ("routing", 2),
            ("scoring", 1),
        ])
    );
    // The documents themselves, not only their names.
    let welcome = store.latest_documents("campaign:welcome").await.unwrap().remove(0);
    assert_eq!(welcome, doc("campaign:welcome", 3, r#"{"name":"campaign:welcome","v":3}"#));
}

/// Leads of every kind, so that a listing cannot skip some: valid, invalid, owned.
fn assorted_lead(n: u64) -> Lead {
    let mut l = lead(n, &format!("person{n}@example.com"));
    match n % 3 {
        0 => l = owned_by(l, "rep-1"),
        1 => l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("email", "invalid", "Not an email.")] },
        _ => {}
    }
    l
}

async fn all_pages(store: &impl LeadStore, limit: usize) -> Vec<Vec<Lead>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_leads(cursor, limit).await.unwrap();
        assert!(page.leads.len() <= limit, "a page of {} with limit {limit}", page.leads.len());
        pages.push(page.leads);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() <= 1000, "the listing does not end");
    }
}

async fn check_list_leads_pages(store: &impl LeadStore) {
    let empty = store.list_leads(None, 10).await.unwrap();
    assert!(empty.leads.is_empty() && empty.next.is_none());

    // Created out of id order.
    let ns: Vec<u64> = (1..=23).map(|i| (i * 7) % 23 + 1).collect();
    assert_eq!(ns.iter().collect::<BTreeSet<_>>().len(), 23);
    for &n in &ns {
        assert_eq!(store.create_lead(&assorted_lead(n), &[]).await.unwrap(), CreateOutcome::Created);
    }
    // One lead moved on a version: the listing shows what get_lead shows.
    let mut updated = store.get_lead(id(5)).await.unwrap().unwrap();
    updated.submissions = 3;
    assert_eq!(store.update_lead(&updated, 0, &[]).await.unwrap(), WriteOutcome::Written);

    for limit in [1, 5, 7, 23, 100] {
        let pages = all_pages(store, limit).await;
        let listed: Vec<LeadId> = pages.iter().flatten().map(|l| l.id).collect();
        let unique: BTreeSet<LeadId> = listed.iter().copied().collect();
        assert_eq!(listed.len(), 23, "limit {limit}: every lead once");
        assert_eq!(unique, (1..=23).map(id).collect(), "limit {limit}");
        // Full pages all but the last, and no empty page after an exact fit.
        assert_eq!(pages.len(), 23usize.div_ceil(limit), "limit {limit}");
        assert!(pages.iter().all(|p| !p.is_empty()), "limit {limit}");
        for l in pages.iter().flatten() {
            assert_eq!(Some(l), store.get_lead(l.id).await.unwrap().as_ref(), "limit {limit}");
        }
    }

    // Leads created after the first page was read still come, in a later page.
    let first = store.list_leads(None, 10).await.unwrap();
    store.create_lead(&assorted_lead(50), &[]).await.unwrap();
    let mut seen: Vec<LeadId> = first.leads.iter().map(|l| l.id).collect();
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page = store.list_leads(Some(c), 10).await.unwrap();
        seen.extend(page.leads.iter().map(|l| l.id));
        cursor = page.next;
    }
    assert_eq!(seen.len(), 24);
    assert!(seen.contains(&id(50)));
}

async fn check_garbage_cursor(store: &impl LeadStore) {
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    for garbage in ["", "not a cursor", "🦀", "01ARZ3NDEKTSV4RRFFQ69G5FAVXXXXXX", "' OR 1=1 --"] {
        assert!(store.list_leads(Some(garbage.to_string()), 10).await.is_err(), "{garbage:?}");
    }
    // A cursor the store handed out works.
    let page = store.list_leads(None, 1).await.unwrap();
    assert_eq!(page.leads.len(), 1);
    assert!(page.next.is_none());
}

fn owned_due(n: u64, rep: &str, due: DateTime<Utc>) -> Lead {
    let mut l = owned_by(lead(n, &format!("p{n}@example.com")), rep);
    if let Some(owner) = l.owner.as_mut() {
        owner.sla_due_at = due;
    }
    l
}

async fn check_due_slas(store: &impl LeadStore) {
    let now = t(200);
    assert!(store.due_slas(now, 10).await.unwrap().is_empty());

    store.create_lead(&owned_due(1, "rep-1", t(100)), &[]).await.unwrap();
    store.create_lead(&owned_due(2, "rep-1", t(50)), &[]).await.unwrap();
    let mut contacted = owned_due(3, "rep-1", t(10));
    contacted.status = SalesStatus::Contacted;
    store.create_lead(&contacted, &[]).await.unwrap();
    let mut won = owned_due(4, "rep-2", t(10));
    won.status = SalesStatus::Won;
    store.create_lead(&won, &[]).await.unwrap();
    let mut lost = owned_due(5, "rep-2", t(10));
    lost.status = SalesStatus::Lost;
    store.create_lead(&lost, &[]).await.unwrap();
    store.create_lead(&owned_due(6, "rep-2", t(500)), &[]).await.unwrap(); // not due yet
    store.create_lead(&owned_due(6_000, "rep-2", now + TimeDelta::nanoseconds(1)), &[]).await.unwrap(); // nor this
    store.create_lead(&lead(7, "p7@example.com"), &[]).await.unwrap(); // unowned
    let mut invalid = owned_due(8, "rep-2", t(10));
    invalid.validity = Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Required.")] };
    store.create_lead(&invalid, &[]).await.unwrap();
    store.create_lead(&owned_due(9, "rep-1", now), &[]).await.unwrap(); // due exactly now

    assert_eq!(store.due_slas(now, 10).await.unwrap(), vec![id(2), id(1), id(9)]);
    assert_eq!(store.due_slas(now, 2).await.unwrap(), vec![id(2), id(1)]);
    assert_eq!(store.due_slas(now, 0).await.unwrap(), Vec::<LeadId>::new());
    assert_eq!(store.due_slas(t(99), 10).await.unwrap(), vec![id(2)]);
    assert_eq!(store.due_slas(t(1000), 10).await.unwrap(), vec![id(2), id(1), id(9), id(6_000), id(6)]);

    // The index follows every write of a lead. update_lead: contacted, out.
    let mut two = store.get_lead(id(2)).await.unwrap().unwrap();
    two.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&two, two.version, &[]).await.unwrap(), WriteOutcome::Written);
    // update_lead: a later SLA moves the lead back in the order.
    let mut one = store.get_lead(id(1)).await.unwrap().unwrap();
    if let Some(owner) = one.owner.as_mut() {
        owner.sla_due_at = t(150);
    }
    assert_eq!(store.update_lead(&one, one.version, &[]).await.unwrap(), WriteOutcome::Written);
    // update_lead: contacted back to new (sales undid it), in again.
    let mut three = store.get_lead(id(3)).await.unwrap().unwrap();
    three.status = SalesStatus::New;
    assert_eq!(store.update_lead(&three, three.version, &[]).await.unwrap(), WriteOutcome::Written);
    // assign: the unowned lead gets an owner whose SLA has passed.
    let seven = store.get_lead(id(7)).await.unwrap().unwrap();
    let write = AssignmentWrite {
        lead: Lead { owner: owned_due(7, "rep-3", t(20)).owner, ..seven },
        expected_lead_version: 0,
        team_cursor: None,
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.due_slas(now, 10).await.unwrap(), vec![id(3), id(7), id(1), id(9)]);

    // A conflicting write changes nothing in the index.
    let mut stale = store.get_lead(id(9)).await.unwrap().unwrap();
    stale.status = SalesStatus::Won;
    assert_eq!(store.update_lead(&stale, stale.version + 5, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    // erase_lead: the tombstone has no owner.
    let one = store.get_lead(id(1)).await.unwrap().unwrap();
    store.erase_lead(&tombstone_of(&one), None).await.unwrap();
    assert_eq!(store.due_slas(now, 10).await.unwrap(), vec![id(3), id(7), id(9)]);
}

/// What the admin API makes of a lead it erases: no personal data, no owner, one version on.
fn tombstone_of(l: &Lead) -> Lead {
    Lead {
        version: l.version + 1,
        contact: Contact {
            email: String::new(),
            email_domain: String::new(),
            domain_kind: DomainKind::Corporate,
            role_address: false,
            first_name: None,
            last_name: None,
            phone: None,
            company: None,
            job_title: None,
            country: None,
            time_zone: None,
        },
        custom: BTreeMap::new(),
        consent: None,
        owner: None,
        score: None,
        ..l.clone()
    }
}

fn activity(aid: &str, lead: LeadId, secs: i64) -> Activity {
    Activity {
        id: aid.to_string(),
        lead_id: lead,
        at: t(secs),
        kind: ActivityKind::EmailSent { email: "drip-x".into(), message_id: "m".into(), subject: "Hi Ada".into() },
    }
}

async fn check_erase_lead(store: &impl LeadStore) {
    let ada = owned_by(lead(1, "ada@example.com"), "rep-1");
    store.create_lead(&ada, &[]).await.unwrap();
    store.create_lead(&owned_by(lead(2, "bob@example.com"), "rep-1"), &[]).await.unwrap();
    let mut invalid = lead(3, "bob@example.com");
    invalid.validity = Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Required.")] };
    store.create_lead(&invalid, &[]).await.unwrap();
    for (aid, secs) in [("a1", 1), ("a2", 2), ("a3", 3)] {
        store.record_activity(&activity(aid, id(1), secs)).await.unwrap();
    }
    store.record_activity(&activity("b1", id(2), 1)).await.unwrap();
    let mut ada = store.get_lead(id(1)).await.unwrap().unwrap();
    ada.submissions = 2;
    store.update_lead(&ada, 0, &[]).await.unwrap();
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 2)]));

    let stored = store.get_lead(id(1)).await.unwrap().unwrap();
    let tombstone = tombstone_of(&stored);
    let key = email_key("ada@example.com");
    store.erase_lead(&tombstone, Some(&key)).await.unwrap();

    let after = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!(after, tombstone);
    assert_eq!(after.version, 2);
    assert_eq!(store.find_by_email_key(&key).await.unwrap(), None);
    assert!(store.activities(id(1)).await.unwrap().is_empty());
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 1)]));
    // Other leads keep theirs.
    assert_eq!(store.activities(id(2)).await.unwrap(), vec![activity("b1", id(2), 1)]);
    assert_eq!(store.find_by_email_key(&email_key("bob@example.com")).await.unwrap(), Some(id(2)));
    // The listing shows the tombstone, not the lead.
    let listed = store.list_leads(None, 100).await.unwrap().leads;
    assert!(listed.iter().all(|l| l.contact.email != "ada@example.com"));
    // A writer that read the lead before the erasure cannot bring the data back.
    assert_eq!(store.update_lead(&stored, stored.version, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    // The address is free: the person may sign up again as a new lead.
    assert_eq!(store.create_lead(&lead(4, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::Created);

    // An email key that belongs to another lead is not deleted with this one.
    let stored3 = store.get_lead(id(3)).await.unwrap().unwrap();
    store.erase_lead(&tombstone_of(&stored3), Some(&email_key("bob@example.com"))).await.unwrap();
    assert_eq!(store.find_by_email_key(&email_key("bob@example.com")).await.unwrap(), Some(id(2)));
    assert_eq!(store.get_lead(id(3)).await.unwrap().map(|l| l.version), Some(1));

    // Erasing again (a retried request) moves one version on and keeps everything erased.
    store.erase_lead(&tombstone_of(&after), Some(&key)).await.unwrap();
    assert_eq!(store.get_lead(id(1)).await.unwrap().map(|l| l.version), Some(3));
    assert_eq!(store.find_by_email_key(&key).await.unwrap(), Some(id(4)), "the new lead's key is not this lead's");
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 1)]));

    // A lead that is not there is not created by erasing it.
    store.erase_lead(&lead(99, "x@example.com"), None).await.unwrap();
    assert_eq!(store.get_lead(id(99)).await.unwrap(), None);
}

async fn check_erase_after_concurrent_write(store: &impl LeadStore) {
    let ada = owned_by(lead(1, "ada@example.com"), "rep-1");
    store.create_lead(&ada, &[]).await.unwrap();
    let read = store.get_lead(id(1)).await.unwrap().unwrap();
    let tombstone = tombstone_of(&read); // version 1
    // A merge writes version 1 between the admin's read and the erasure.
    let mut merged = read.clone();
    merged.submissions = 2;
    assert_eq!(store.update_lead(&merged, 0, &[]).await.unwrap(), WriteOutcome::Written);

    store.erase_lead(&tombstone, Some(&email_key("ada@example.com"))).await.unwrap();
    let after = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!(after, Lead { version: 2, ..tombstone });
    // The merge's next write, based on version 1, fails rather than restoring the data.
    assert_eq!(store.update_lead(&merged, 1, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::new(), "the erased lead counts for nobody");
}

// SQLite only: the file.

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
    store.erase_lead(&tombstone_of(&three), Some(&email_key("c@example.com"))).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_lead(id(3)).await.unwrap(), Some(tombstone_of(&three)));
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
    assert_eq!(version, 4);
    // Opening a migrated file again changes nothing.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), vec![id(6), id(2), id(1)]);
    assert_eq!(store.count_leads().unwrap(), 6);
}

#[tokio::test]
async fn won_and_lost_leads_stop_counting_and_reopened_ones_count_again() {
    let (_dir, store) = open();
    store.create_lead(&owned_by(lead(1, "a@example.com"), "rep-1"), &[]).await.unwrap();
    store.create_lead(&owned_by(lead(2, "b@example.com"), "rep-1"), &[]).await.unwrap();
    let loads = |n: u32| BTreeMap::from([("rep-1".to_string(), n)]);
    assert_eq!(store.rep_loads().await.unwrap(), loads(2));

    let mut one = store.get_lead(id(1)).await.unwrap().unwrap();
    one.status = SalesStatus::Won;
    store.update_lead(&one, 0, &[]).await.unwrap();
    assert_eq!(store.rep_loads().await.unwrap(), loads(1));
    // An unrelated write of a won lead does not count it again.
    one.submissions = 5;
    store.update_lead(&one, 1, &[]).await.unwrap();
    assert_eq!(store.rep_loads().await.unwrap(), loads(1));
    // Sales reopens it.
    one.status = SalesStatus::Contacted;
    store.update_lead(&one, 2, &[]).await.unwrap();
    assert_eq!(store.rep_loads().await.unwrap(), loads(2));

    let mut two = store.get_lead(id(2)).await.unwrap().unwrap();
    two.status = SalesStatus::Lost;
    store.update_lead(&two, 0, &[]).await.unwrap();
    // A lost lead reassigned to another rep counts for nobody.
    let reassigned = AssignmentWrite {
        lead: owned_by(Lead { status: SalesStatus::Lost, ..lead(2, "b@example.com") }, "rep-2"),
        expected_lead_version: 1,
        team_cursor: None,
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&reassigned).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.rep_loads().await.unwrap(), loads(1));
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

/// Every enrollment of the campaign, page by page, as (lead, campaign version, enrollment version).
async fn campaign_pages(store: &impl LeadStore, campaign: &str, limit: usize) -> Vec<Vec<Enrollment>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.campaign_enrollments(campaign, cursor, limit).await.unwrap();
        assert!(page.enrollments.len() <= limit.max(1), "a page of {} with limit {limit}", page.enrollments.len());
        pages.push(page.enrollments);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() <= 1000, "the paging does not end");
    }
}

async fn check_campaign_enrollments_pages(store: &impl LeadStore) {
    let empty = store.campaign_enrollments("welcome", None, 3).await.unwrap();
    assert!(empty.enrollments.is_empty() && empty.next.is_none());

    // Leads 1..=10 in "welcome", in every state and on two campaign versions; the odd ones also
    // in "winback"; enrolled out of id order.
    let mut expected = BTreeMap::new();
    for n in (1..=10u64).map(|i| (i * 3) % 10 + 1) {
        let state = match n % 3 {
            0 => EnrollmentState::Active,
            1 => EnrollmentState::Completed,
            _ => EnrollmentState::Stopped { reason: "unsubscribed".into() },
        };
        let due = (state == EnrollmentState::Active).then(|| t(i64::try_from(n).unwrap()));
        let mut e = enrollment(n, "welcome", due, state);
        e.campaign_version = if n <= 5 { 1 } else { 2 };
        assert!(store.enroll(&e, &[]).await.unwrap());
        expected.insert(e.lead_id, e);
        if n % 2 == 1 {
            assert!(store.enroll(&enrollment(n, "winback", Some(t(1)), EnrollmentState::Active), &[]).await.unwrap());
        }
    }
    // Lead 11 only in "winback", and an enrollment moved on a version.
    assert!(store.enroll(&enrollment(11, "winback", Some(t(1)), EnrollmentState::Active), &[]).await.unwrap());
    let mut moved = expected[&id(3)].clone();
    moved.next_step = 1;
    assert_eq!(store.update_enrollment(&moved, 0, &[]).await.unwrap(), WriteOutcome::Written);
    moved.version = 1;
    expected.insert(moved.lead_id, moved);

    for limit in [0, 1, 3, 10, 100] {
        let pages = campaign_pages(store, "welcome", limit).await;
        let listed: Vec<&Enrollment> = pages.iter().flatten().collect();
        assert_eq!(listed.len(), 10, "limit {limit}: each enrollment of the campaign once");
        let by_lead: BTreeMap<LeadId, Enrollment> = listed.iter().map(|e| (e.lead_id, (*e).clone())).collect();
        assert_eq!(by_lead, expected, "limit {limit}: those of the campaign, as stored, none of another");
    }
    // Pages of 3: full pages and one short last one.
    let pages = campaign_pages(store, "welcome", 3).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);

    let winback: Vec<LeadId> = campaign_pages(store, "winback", 3).await.iter().flatten().map(|e| e.lead_id).collect();
    assert_eq!(winback.iter().copied().collect::<BTreeSet<_>>(), [1, 3, 5, 7, 9, 11].map(id).into_iter().collect());
    assert_eq!(winback.len(), 6);
    let none = store.campaign_enrollments("nobody", None, 3).await.unwrap();
    assert!(none.enrollments.is_empty() && none.next.is_none());

    for garbage in ["", "not a cursor", "🦀", "01ARZ3NDEKTSV4RRFFQ69G5FAVXXXXXX", "' OR 1=1 --"] {
        assert!(store.campaign_enrollments("welcome", Some(garbage.to_string()), 3).await.is_err(), "{garbage:?}");
    }
}
