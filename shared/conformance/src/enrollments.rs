//! Drip enrollments (`Enrollments`): created once per lead and campaign, advanced under versions,
//! found when due, oldest due first, and paged per campaign for migrations.

use std::collections::{BTreeMap, BTreeSet};

use leadflow_core::error::StoreError;
use leadflow_core::model::{Enrollment, EnrollmentState, LeadId};
use leadflow_core::ports::{LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{enrollment, id, lead, t};

use crate::support::{created, every_page, ok};

async fn enrolled<S: LeadStore>(store: &S, e: &Enrollment) -> bool {
    ok(store.enroll(e, &[]).await, "enroll")
}

async fn of<S: LeadStore>(store: &S, lead: LeadId) -> Vec<Enrollment> {
    ok(store.enrollments(lead).await, "enrollments")
}

pub async fn enrollments_are_created_once_and_updated_conditionally<S: LeadStore>(store: &S) {
    let e = enrollment(1, "welcome", Some(t(100)), EnrollmentState::Active);
    assert!(enrolled(store, &e).await);
    assert!(!enrolled(store, &e).await, "enrolled already");
    assert!(enrolled(store, &enrollment(1, "webinar", Some(t(100)), EnrollmentState::Active)).await);
    let campaigns: Vec<_> = of(store, id(1)).await.into_iter().map(|e| e.campaign_id).collect();
    assert_eq!(campaigns, ["webinar", "welcome"]);
    assert_eq!(of(store, id(2)).await, Vec::new());

    let next = Enrollment { next_step: 1, next_due_at: Some(t(200)), ..e.clone() };
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.ok(), Some(WriteOutcome::Written));
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    let stored = of(store, id(1)).await.into_iter().find(|e| e.campaign_id == "welcome");
    assert_eq!(stored.map(|e| (e.version, e.next_step, e.next_due_at)), Some((1, 1, Some(t(200)))));
    let missing = enrollment(2, "welcome", Some(t(100)), EnrollmentState::Active);
    assert_eq!(store.update_enrollment(&missing, 0, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    assert_eq!(of(store, id(2)).await, Vec::new(), "a conflicting update creates nothing");
}

async fn due_ids<S: LeadStore>(store: &S, limit: usize) -> Vec<LeadId> {
    ok(store.due_enrollments(t(100), limit).await, "due enrollments").into_iter().map(|e| e.lead_id).collect()
}

pub async fn due_enrollments_are_the_active_due_ones_oldest_due_first<S: LeadStore>(store: &S) {
    assert_eq!(due_ids(store, 10).await, Vec::new());
    let active = |n, campaign, secs| enrollment(n, campaign, Some(t(secs)), EnrollmentState::Active);
    for e in [active(1, "c", 30), active(2, "c", 10), active(3, "c", 20), active(3, "d", 100), active(4, "c", 500)] {
        assert!(enrolled(store, &e).await);
    }
    let stopped = EnrollmentState::Stopped { reason: "unsubscribed".into() };
    assert!(enrolled(store, &enrollment(5, "c", Some(t(5)), stopped)).await);
    assert!(enrolled(store, &enrollment(6, "c", Some(t(5)), EnrollmentState::Completed)).await);
    assert!(enrolled(store, &enrollment(7, "c", None, EnrollmentState::Active)).await);

    // Lead 3's "d" is due at `now` exactly; lead 4 not yet.
    assert_eq!(due_ids(store, 10).await, [id(2), id(3), id(1), id(3)]);
    assert_eq!(due_ids(store, 2).await, [id(2), id(3)]);
    assert_eq!(due_ids(store, 0).await, Vec::new());
    let due = ok(store.due_enrollments(t(100), 10).await, "due enrollments");
    assert_eq!(due.first(), Some(&active(2, "c", 10)), "the whole enrollment comes back");

    // Stopping an enrollment takes it out even though it keeps a time.
    let mut stopping = of(store, id(2)).await.remove(0);
    stopping.state = EnrollmentState::Stopped { reason: "bounced".into() };
    assert_eq!(store.update_enrollment(&stopping, 0, &[]).await.ok(), Some(WriteOutcome::Written));
    assert_eq!(due_ids(store, 10).await, [id(3), id(1), id(3)]);
    // Advancing one moves it in the order.
    let mut advanced = of(store, id(1)).await.remove(0);
    advanced.next_due_at = Some(t(1));
    assert_eq!(store.update_enrollment(&advanced, 0, &[]).await.ok(), Some(WriteOutcome::Written));
    assert_eq!(due_ids(store, 10).await, [id(1), id(3), id(3)]);
}

/// Every page of the campaign's enrollments with `limit`, and the number of pages.
async fn walk<S: LeadStore>(store: &S, campaign: &str, limit: usize) -> (Vec<Enrollment>, usize) {
    every_page(limit, async |cursor| {
        let page = ok(store.campaign_enrollments(campaign, cursor, limit).await, "campaign enrollments");
        (page.enrollments, page.next)
    })
    .await
}

pub async fn campaign_enrollments_pages_cover_every_enrollment_of_the_campaign_once<S: LeadStore>(store: &S) {
    let empty = ok(store.campaign_enrollments("welcome", None, 3).await, "campaign enrollments");
    assert!(empty.enrollments.is_empty() && empty.next.is_none());

    // Leads 1..=20 in "welcome" (every state, two campaign versions), enrolled out of id order
    // and among their profiles and activities; the odd ones also in "winback" and in
    // "welcome-back" (a campaign whose id "welcome" is a prefix of).
    let mut expected = BTreeMap::new();
    for n in (1..=20_u64).map(|i| (i * 7) % 20 + 1) {
        created(store, &lead(n, &format!("p{n}@example.com"))).await;
        let state = match n % 3 {
            0 => EnrollmentState::Active,
            1 => EnrollmentState::Completed,
            _ => EnrollmentState::Stopped { reason: "unsubscribed".into() },
        };
        let due = (state == EnrollmentState::Active).then(|| t(i64::try_from(n).unwrap_or_default()));
        let mut e = enrollment(n, "welcome", due, state);
        e.campaign_version = if n <= 10 { 1 } else { 2 };
        assert!(enrolled(store, &e).await);
        expected.insert(e.lead_id, e);
        if n % 2 == 1 {
            assert!(enrolled(store, &enrollment(n, "winback", Some(t(1)), EnrollmentState::Active)).await);
            assert!(enrolled(store, &enrollment(n, "welcome-back", Some(t(1)), EnrollmentState::Active)).await);
        }
    }
    // An enrollment moved on a version comes as stored.
    let mut moved = expected[&id(3)].clone();
    moved.next_step = 1;
    assert_eq!(store.update_enrollment(&moved, 0, &[]).await.ok(), Some(WriteOutcome::Written));
    moved.version = 1;
    expected.insert(moved.lead_id, moved);

    for limit in [0, 1, 3, 20, 1000] {
        let (seen, pages) = walk(store, "welcome", limit).await;
        assert_eq!(seen.len(), 20, "limit {limit}: each enrollment of the campaign once, over {pages} pages");
        let by_lead: BTreeMap<LeadId, Enrollment> = seen.into_iter().map(|e| (e.lead_id, e)).collect();
        assert_eq!(by_lead, expected, "limit {limit}: those of the campaign, as stored, none of another");
    }
    let (_, pages) = walk(store, "welcome", 3).await;
    assert!(pages >= 7, "20 enrollments in pages of at most 3: {pages} pages");
    let (winback, _) = walk(store, "winback", 3).await;
    let winback: Vec<LeadId> = winback.iter().map(|e| e.lead_id).collect();
    assert_eq!(winback.len(), 10);
    assert_eq!(winback.into_iter().collect::<BTreeSet<_>>(), (1..=20).step_by(2).map(id).collect());
    let none = ok(store.campaign_enrollments("nobody", None, 3).await, "campaign enrollments");
    assert!(none.enrollments.is_empty() && none.next.is_none());
}

pub async fn a_campaign_enrollments_cursor_the_store_did_not_hand_out_is_refused<S: LeadStore>(store: &S) {
    for n in 1..=3 {
        assert!(enrolled(store, &enrollment(n, "welcome", Some(t(1)), EnrollmentState::Active)).await);
    }
    let first = ok(store.campaign_enrollments("welcome", None, 1).await, "campaign enrollments");
    assert!(first.next.is_some(), "three enrollments do not fit a page of one");
    let long = "0".repeat(100_000);
    for forged in ["", "not a cursor", "🦀", "01ARZ3NDEKTSV4RRFFQ69G5FAVXXXXXX", "' OR 1=1 --", "abc", &long] {
        let answer = store.campaign_enrollments("welcome", Some(forged.to_string()), 3).await;
        assert!(matches!(answer, Err(StoreError::Corrupt(_))), "cursor {forged:.40}: {answer:?}");
    }
    // The cursor handed out still works after the refusals.
    let mut rest = Vec::new();
    let mut cursor = first.next;
    while let Some(c) = cursor {
        let page = ok(store.campaign_enrollments("welcome", Some(c), 1).await, "campaign enrollments");
        rest.extend(page.enrollments);
        cursor = page.next;
    }
    assert_eq!(rest.len() + first.enrollments.len(), 3);
}
