//! All leads page by page (`list_leads`): every lead once whatever the page size, as stored,
//! among whatever else the store keeps; a cursor the store did not hand out is refused.

use std::collections::BTreeSet;

use leadflow_core::FieldProblem;
use leadflow_core::error::StoreError;
use leadflow_core::model::{Activity, ActivityKind, Document, EnrollmentState, Lead, LeadId, Validity};
use leadflow_core::ports::{LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{enrollment, id, lead, owned_by, t};

use crate::support::{created, every_page, ok, stored, updated};

/// Leads of every kind, so that a listing cannot skip some: valid, invalid, owned.
fn assorted(n: u64) -> Lead {
    let mut l = lead(n, &format!("person{n}@example.com"));
    match n % 3 {
        0 => l = owned_by(l, "rep-1"),
        1 => l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("email", "invalid", "Not an email.")] },
        _ => {}
    }
    l
}

/// Every page of all leads with `limit`, and the number of pages.
async fn walk<S: LeadStore>(store: &S, limit: usize) -> (Vec<Lead>, usize) {
    every_page(limit, async |cursor| {
        let page = ok(store.list_leads(cursor, limit).await, "list leads");
        (page.leads, page.next)
    })
    .await
}

pub async fn lead_pages_cover_every_lead_exactly_once<S: LeadStore>(store: &S) {
    let empty = ok(store.list_leads(None, 10).await, "list leads");
    assert!(empty.leads.is_empty() && empty.next.is_none());

    // 30 leads, created out of id order, among their activities, enrollments, an alias, a
    // document: whatever else a store keeps beside them is not listed.
    for n in (1..=30_u64).map(|i| (i * 7) % 30 + 1) {
        created(store, &assorted(n)).await;
        let opened = Activity {
            id: "a".into(),
            lead_id: id(n),
            at: t(5),
            kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
        };
        ok(store.record_activity(&opened).await, "record activity");
        let e = enrollment(n, "c", Some(t(10)), EnrollmentState::Active);
        assert_eq!(store.enroll(&e, &[]).await.ok(), Some(true));
    }
    assert_eq!(store.record_alias(id(100), id(1)).await.ok(), Some(true));
    let routing = Document { name: "routing".into(), version: 1, body: "{}".into(), saved_at: t(1) };
    assert_eq!(store.put_document(&routing).await.ok(), Some(WriteOutcome::Written));
    // One lead moved on a version: the listing shows what `get_lead` shows.
    let mut moved = stored(store, id(5)).await;
    moved.submissions = 3;
    updated(store, &moved).await;
    moved.version = 1;

    let all: BTreeSet<LeadId> = (1..=30).map(id).collect();
    for limit in [0, 1, 7, 30, 1000] {
        let (seen, pages) = walk(store, limit).await;
        let ids: Vec<LeadId> = seen.iter().map(|l| l.id).collect();
        assert_eq!(ids.len(), 30, "limit {limit}: every lead once, over {pages} pages");
        assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), all, "limit {limit}");
    }
    let (_, pages) = walk(store, 7).await;
    assert!(pages >= 5, "30 leads in pages of at most 7: {pages} pages");
    let (whole, _) = walk(store, 1000).await;
    for n in [3, 4, 8] {
        let listed = whole.iter().find(|l| l.id == id(n));
        assert_eq!(listed, Some(&assorted(n)), "whole leads, as stored");
    }
    assert_eq!(whole.iter().find(|l| l.id == id(5)), Some(&moved), "the stored version");
}

pub async fn a_lead_listing_cursor_the_store_did_not_hand_out_is_refused<S: LeadStore>(store: &S) {
    for n in 1..=3 {
        created(store, &lead(n, &format!("p{n}@example.com"))).await;
    }
    let first = ok(store.list_leads(None, 1).await, "list leads");
    assert!(first.next.is_some(), "three leads do not fit a page of one");
    let long = "0".repeat(100_000);
    for forged in ["", "not a cursor", "🦀", "01ARZ3NDEKTSV4RRFFQ69G5FAVXXXXXX", "' OR 1=1 --", "abc", &long] {
        let answer = store.list_leads(Some(forged.to_string()), 10).await;
        assert!(matches!(answer, Err(StoreError::Corrupt(_))), "cursor {forged:.40}: {answer:?}");
    }
    // The cursor handed out still works after the refusals.
    let mut listed = first.leads.len();
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page = ok(store.list_leads(Some(c), 10).await, "list leads");
        listed += page.leads.len();
        cursor = page.next;
    }
    assert_eq!(listed, 3);
}
