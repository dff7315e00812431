//! The AWS adapters against a moto server (`LEADFLOW_MOTO_ENDPOINT`). Every test makes its own
//! table, queues or bus under a unique name, so the tests run in parallel in one moto.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sesv2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sesv2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sesv2::error::BoxError;
use chrono::{DateTime, Utc};
use common::{enrollment, id, lead, owned_by, t, table, unique};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::queue::{SqsQueue, StageUrls};
use leadflow_aws::store::{DynamoStore, due_shard};
use leadflow_core::FieldProblem;
use leadflow_core::error::{MailError, StoreError};
use leadflow_core::model::{
    Activity, ActivityKind, Document, Enrollment, EnrollmentState, Lead, LeadId, SalesStatus, Suppression,
    SuppressionReason, TeamCursor, Validity,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, DomainEvent, EffectClaim, EmailCategory, EventBus, IdempotencyClaim,
    LeadStore, Mailbox, Mailer, OutgoingEmail, Stage, StageQueue, WriteOutcome,
};

fn loads(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(rep, n)| (rep.to_string(), *n)).collect()
}

/// Open owned leads per rep, counted from the lead items themselves: what the counters must say.
/// A tombstone (an erased lead) is closed, whatever its document still says.
async fn true_loads(client: &aws_sdk_dynamodb::Client, table: &str) -> BTreeMap<String, u32> {
    let out = client.scan().table_name(table).consistent_read(true).send().await.expect("scan");
    let mut counts = BTreeMap::new();
    for item in out.items() {
        if item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) != Some("PROFILE") {
            continue;
        }
        if item.get("erased").is_some_and(|v| v.as_bool() == Ok(&true)) {
            continue;
        }
        let doc = item.get("doc").and_then(|v| v.as_s().ok()).expect("doc");
        let lead: Lead = serde_json::from_str(doc).expect("lead doc");
        if let Some(owner) = &lead.owner
            && !matches!(lead.status, SalesStatus::Won | SalesStatus::Lost)
        {
            *counts.entry(owner.rep_id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

async fn assert_loads(db: &common::Table, expected: &[(&str, u32)], when: &str) {
    let counted = db.store.rep_loads().await.expect("rep loads");
    assert_eq!(counted, loads(expected), "counters {when}");
    assert_eq!(true_loads(&db.client, &db.name).await, loads(expected), "lead items {when}");
}

// ---------------------------------------------------------------------------------------------
// DynamoDB store
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redelivered_create_is_already_exists_and_a_second_lead_with_the_email_is_email_taken() {
    let db = table().await;
    let store = &db.store;
    let first = lead(1, "ada@example.com");
    assert_eq!(store.create_lead(&first, &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_lead(&first, &[]).await.unwrap(), CreateOutcome::AlreadyExists);

    let same_person = lead(2, "ada@example.com");
    assert_eq!(store.create_lead(&same_person, &[]).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(store.get_lead(id(2)).await.unwrap(), None, "a lead whose email is taken is not stored");
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), Some(id(1)));
    assert_eq!(store.find_by_email_key(&email_key("nobody@example.com")).await.unwrap(), None);

    let stored = store.get_lead(id(1)).await.unwrap().expect("stored lead");
    assert_eq!(stored, first);
}

#[tokio::test]
async fn invalid_leads_are_kept_without_claiming_their_email() {
    let db = table().await;
    let store = &db.store;
    let mut invalid = lead(1, "ada@example.com");
    invalid.validity =
        Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Consent is required.")] };
    assert_eq!(store.create_lead(&invalid, &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_lead(&invalid, &[]).await.unwrap(), CreateOutcome::AlreadyExists);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), None);
    assert_eq!(store.create_lead(&lead(2, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), Some(id(2)));
    assert_eq!(store.get_lead(id(1)).await.unwrap(), Some(invalid));
}

#[tokio::test]
async fn updates_are_conditional_on_the_version_read() {
    let db = table().await;
    let store = &db.store;
    let mut l = lead(1, "ada@example.com");
    store.create_lead(&l, &[]).await.unwrap();

    l.submissions = 2;
    assert_eq!(store.update_lead(&l, 0, &[]).await.unwrap(), WriteOutcome::Written);
    let stored = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.submissions), (1, 2));

    l.submissions = 99;
    assert_eq!(store.update_lead(&l, 0, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().submissions, 2);

    assert_eq!(
        store.update_lead(&lead(7, "x@example.com"), 0, &[]).await.unwrap(),
        WriteOutcome::VersionConflict,
        "missing lead"
    );
    assert_eq!(store.get_lead(id(7)).await.unwrap(), None, "a conflicting update creates nothing");
}

#[tokio::test]
async fn idempotency_keys_bind_until_they_expire_and_carry_a_ttl() {
    let db = table().await;
    let store = &db.store;
    assert_eq!(store.claim_idempotency_key("k", id(1), t(0), t(100)).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim_idempotency_key("k", id(2), t(50), t(150)).await.unwrap(), IdempotencyClaim::Seen(id(1)));
    // Expiring at 100 means still bound at 100…
    assert_eq!(store.claim_idempotency_key("k", id(2), t(100), t(150)).await.unwrap(), IdempotencyClaim::Seen(id(1)));
    // …and free after, though TTL has not deleted the item (moto never does, DynamoDB late).
    assert_eq!(store.claim_idempotency_key("k", id(3), t(101), t(200)).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim_idempotency_key("k", id(4), t(102), t(300)).await.unwrap(), IdempotencyClaim::Seen(id(3)));
    assert_eq!(store.claim_idempotency_key("other", id(5), t(102), t(300)).await.unwrap(), IdempotencyClaim::Claimed);

    let item = db
        .client
        .get_item()
        .table_name(&db.name)
        .key("PK", AttributeValue::S("IDEM#k".into()))
        .key("SK", AttributeValue::S("-".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("idempotency item");
    let ttl = item.get("expires_at").and_then(|v| v.as_n().ok()).expect("TTL attribute");
    assert_eq!(ttl, &t(200).timestamp().to_string(), "TTL in epoch seconds");
}

#[tokio::test]
async fn aliases_resolve_to_the_lead_merged_into() {
    let db = table().await;
    let store = &db.store;
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    assert!(store.record_alias(id(2), id(1)).await.unwrap());
    assert!(!store.record_alias(id(2), id(1)).await.unwrap(), "recorded already");
    assert_eq!(store.resolve_lead(id(1)).await.unwrap(), Some(id(1)));
    assert_eq!(store.resolve_lead(id(2)).await.unwrap(), Some(id(1)));
    assert_eq!(store.resolve_lead(id(3)).await.unwrap(), None);
    assert_eq!(store.get_lead(id(2)).await.unwrap(), None, "an alias is not a lead");
}

#[tokio::test]
async fn activities_are_stored_once_and_read_oldest_first() {
    let db = table().await;
    let store = &db.store;
    let act = |aid: &str, secs| Activity {
        id: aid.to_string(),
        lead_id: id(1),
        at: t(secs),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    };
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    store.enroll(&enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
    store.record_activity(&act("late", 30)).await.unwrap();
    store.record_activity(&act("b-early", 10)).await.unwrap();
    store.record_activity(&act("a-early", 10)).await.unwrap();
    store.record_activity(&act("late", 99)).await.unwrap(); // same id, redelivered later: ignored
    store.record_activity(&Activity { lead_id: id(2), ..act("other", 0) }).await.unwrap();

    let got: Vec<_> = store.activities(id(1)).await.unwrap().into_iter().map(|a| (a.id, a.at)).collect();
    assert_eq!(got, vec![("a-early".into(), t(10)), ("b-early".into(), t(10)), ("late".into(), t(30))]);
    assert_eq!(store.activities(id(3)).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn assign_moves_lead_cursor_and_counter_together_or_not_at_all() {
    let db = table().await;
    let store = &db.store;
    store.create_lead(&lead(1, "a@example.com"), &[]).await.unwrap();
    store.create_lead(&lead(2, "b@example.com"), &[]).await.unwrap();

    let cursor = store.team_cursor("emea").await.unwrap();
    assert_eq!(cursor, TeamCursor::default());
    let advanced =
        TeamCursor { credit: BTreeMap::from([("rep-1".to_string(), -1), ("rep-2".to_string(), 1)]), ..cursor };
    let write = AssignmentWrite {
        lead: owned_by(lead(1, "a@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), advanced.clone())),
        trail: Vec::new(),
    };
    db.requests.take();
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(db.requests.take(), ["TransactWriteItems"], "one transaction");
    let stored_cursor = store.team_cursor("emea").await.unwrap();
    assert_eq!(stored_cursor, TeamCursor { version: 1, ..advanced.clone() });
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().version, 1);
    assert_loads(&db, &[("rep-1", 1)], "after the first assignment").await;

    // Lead 2 routed from the cursor as it was before lead 1 took its turn: stale.
    let stale = AssignmentWrite {
        lead: owned_by(lead(2, "b@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), advanced)),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&stale).await.unwrap(), AssignOutcome::Conflict);
    let untouched = store.get_lead(id(2)).await.unwrap().unwrap();
    assert_eq!((untouched.version, untouched.owner), (0, None), "the conflict wrote nothing");
    assert_eq!(store.team_cursor("emea").await.unwrap(), stored_cursor);
    assert_loads(&db, &[("rep-1", 1)], "after a stale cursor").await;

    // A stale lead version with a fresh cursor conflicts too, and leaves the cursor alone.
    let stale_lead = AssignmentWrite {
        lead: owned_by(lead(1, "a@example.com"), "rep-2"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), stored_cursor.clone())),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&stale_lead).await.unwrap(), AssignOutcome::Conflict);
    assert_eq!(store.team_cursor("emea").await.unwrap(), stored_cursor);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().owner.map(|o| o.rep_id), Some("rep-1".into()));
    assert_loads(&db, &[("rep-1", 1)], "after a stale lead").await;

    // Fresh on both counts: assigned.
    let fresh = AssignmentWrite {
        lead: owned_by(lead(2, "b@example.com"), "rep-2"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), stored_cursor)),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&fresh).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.team_cursor("emea").await.unwrap().version, 2);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1)], "after the second assignment").await;

    // The same assignment redelivered: a conflict, and no second count.
    assert_eq!(store.assign(&fresh).await.unwrap(), AssignOutcome::Conflict);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1)], "after a redelivered assignment").await;

    // An assignment without a team (fallback owner) and a missing lead.
    store.create_lead(&lead(3, "c@example.com"), &[]).await.unwrap();
    let fallback = AssignmentWrite {
        lead: owned_by(lead(3, "c@example.com"), "rep-3"),
        expected_lead_version: 0,
        team_cursor: None,
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&fallback).await.unwrap(), AssignOutcome::Assigned);
    let missing = AssignmentWrite { lead: owned_by(lead(9, "z@example.com"), "rep-3"), ..fallback };
    assert_eq!(store.assign(&missing).await.unwrap(), AssignOutcome::Conflict);
    assert_eq!(store.get_lead(id(9)).await.unwrap(), None);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1), ("rep-3", 1)], "after a fallback assignment").await;
}

#[tokio::test]
async fn rep_load_counters_follow_assignments_status_changes_and_redeliveries() {
    let db = table().await;
    let store = &db.store;
    for n in 1..=3 {
        store.create_lead(&lead(n, &format!("p{n}@example.com")), &[]).await.unwrap();
    }
    // Born owned (an import): counted from the start.
    store.create_lead(&owned_by(lead(4, "p4@example.com"), "rep-2"), &[]).await.unwrap();
    store.create_lead(&lead(5, "unowned@example.com"), &[]).await.unwrap();
    assert_loads(&db, &[("rep-2", 1)], "after creating").await;

    for n in 1..=3 {
        let write = AssignmentWrite {
            lead: owned_by(lead(n, &format!("p{n}@example.com")), "rep-1"),
            expected_lead_version: 0,
            team_cursor: None,
            trail: Vec::new(),
        };
        assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    }
    assert_loads(&db, &[("rep-1", 3), ("rep-2", 1)], "after assigning").await;

    // Won: closes the lead, one count less. The first guess (owner unchanged) misses, so it is
    // a failed put and then the transaction.
    let mut won = store.get_lead(id(1)).await.unwrap().unwrap();
    won.status = SalesStatus::Won;
    db.requests.take();
    assert_eq!(store.update_lead(&won, won.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["PutItem", "TransactWriteItems"]);
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after won").await;

    // The same update redelivered: a version conflict, no second decrement.
    db.requests.take();
    assert_eq!(store.update_lead(&won, won.version, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(db.requests.take(), ["PutItem"]);
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after a redelivered won").await;

    // Updating a won lead again (a late click rescoring it) changes no count.
    let mut rescored = store.get_lead(id(1)).await.unwrap().unwrap();
    rescored.submissions += 1;
    db.requests.take();
    assert_eq!(store.update_lead(&rescored, rescored.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["PutItem"], "no owner change: one plain put");
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after updating a won lead").await;

    // Contacted keeps it open; lost closes it.
    let mut contacted = store.get_lead(id(2)).await.unwrap().unwrap();
    contacted.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&contacted, contacted.version, &[]).await.unwrap(), WriteOutcome::Written);
    let mut lost = store.get_lead(id(4)).await.unwrap().unwrap();
    lost.status = SalesStatus::Lost;
    assert_eq!(store.update_lead(&lost, lost.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_loads(&db, &[("rep-1", 2)], "after contacted and lost").await;

    // Reopened (a won lead back to contacted): counted again.
    let mut reopened = store.get_lead(id(1)).await.unwrap().unwrap();
    reopened.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&reopened, reopened.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_loads(&db, &[("rep-1", 3)], "after reopening").await;

    // Re-routed after an expired SLA: the count moves from the old rep to the new one.
    let before = store.get_lead(id(3)).await.unwrap().unwrap();
    let reroute = AssignmentWrite {
        lead: owned_by(before.clone(), "rep-2"),
        expected_lead_version: before.version,
        team_cursor: None,
        trail: Vec::new(),
    };
    db.requests.take();
    assert_eq!(store.assign(&reroute).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(db.requests.take(), ["TransactWriteItems", "TransactWriteItems"]);
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after re-routing").await;
    assert_eq!(store.assign(&reroute).await.unwrap(), AssignOutcome::Conflict, "redelivered re-route");
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after a redelivered re-route").await;

    // An owner removed by an update (an admin unassigning): uncounted.
    let mut unowned = store.get_lead(id(2)).await.unwrap().unwrap();
    unowned.owner = None;
    assert_eq!(store.update_lead(&unowned, unowned.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1)], "after unassigning").await;
}

#[tokio::test]
async fn effects_are_claimed_once_busy_while_leased_taken_over_after_and_remembered_when_done() {
    let db = table().await;
    let store = &db.store;
    let key = "email:assignment-1";
    assert_eq!(store.claim_effect(key, t(0), t(30)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(key, t(10), t(40)).await.unwrap(), EffectClaim::Busy);
    // The first claimant died: after its lease another takes over.
    assert_eq!(store.claim_effect(key, t(31), t(61)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(key, t(32), t(62)).await.unwrap(), EffectClaim::Busy);
    store.finish_effect(key, "msg-1@leadflow", &[]).await.unwrap();
    assert_eq!(store.claim_effect(key, t(1000), t(1030)).await.unwrap(), EffectClaim::Done("msg-1@leadflow".into()));
    // Releasing a finished effect does not forget it.
    store.release_effect(key).await.unwrap();
    assert_eq!(store.claim_effect(key, t(1000), t(1030)).await.unwrap(), EffectClaim::Done("msg-1@leadflow".into()));

    // A failed attempt gives its claim back: the retry need not wait for the lease.
    assert_eq!(store.claim_effect("other", t(0), t(30)).await.unwrap(), EffectClaim::Claimed);
    store.release_effect("other").await.unwrap();
    assert_eq!(store.claim_effect("other", t(1), t(31)).await.unwrap(), EffectClaim::Claimed);
    // Releasing what was never claimed is harmless.
    store.release_effect("never").await.unwrap();
}

#[tokio::test]
async fn enrollments_are_created_once_and_updated_conditionally() {
    let db = table().await;
    let store = &db.store;
    let e = enrollment(1, "welcome", Some(t(100)), EnrollmentState::Active);
    assert!(store.enroll(&e, &[]).await.unwrap());
    assert!(!store.enroll(&e, &[]).await.unwrap(), "enrolled already");
    assert!(store.enroll(&enrollment(1, "webinar", Some(t(100)), EnrollmentState::Active), &[]).await.unwrap());
    store
        .record_activity(&Activity {
            id: "a".into(),
            lead_id: id(1),
            at: t(1),
            kind: ActivityKind::Enrolled { campaign_id: "welcome".into(), version: 1 },
        })
        .await
        .unwrap();
    let campaigns: Vec<_> = store.enrollments(id(1)).await.unwrap().into_iter().map(|e| e.campaign_id).collect();
    assert_eq!(campaigns, vec!["webinar".to_string(), "welcome".to_string()]);

    let next = Enrollment { next_step: 1, next_due_at: Some(t(200)), ..e.clone() };
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    let stored = store.enrollments(id(1)).await.unwrap().into_iter().find(|e| e.campaign_id == "welcome").unwrap();
    assert_eq!((stored.version, stored.next_step, stored.next_due_at), (1, 1, Some(t(200))));
    let missing = enrollment(2, "welcome", Some(t(100)), EnrollmentState::Active);
    assert_eq!(store.update_enrollment(&missing, 0, &[]).await.unwrap(), WriteOutcome::VersionConflict);
}

async fn due_ids(store: &DynamoStore, limit: usize) -> Vec<LeadId> {
    store.due_enrollments(t(100), limit).await.unwrap().into_iter().map(|e| e.lead_id).collect()
}

#[tokio::test]
async fn due_enrollments_are_the_active_due_ones_oldest_due_first() {
    let db = table().await;
    let store = &db.store;
    store.enroll(&enrollment(1, "c", Some(t(30)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(2, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(3, "c", Some(t(20)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(3, "d", Some(t(100)), EnrollmentState::Active), &[]).await.unwrap(); // due at `now` exactly
    store.enroll(&enrollment(4, "c", Some(t(500)), EnrollmentState::Active), &[]).await.unwrap(); // not due yet
    store
        .enroll(&enrollment(5, "c", Some(t(5)), EnrollmentState::Stopped { reason: "unsubscribed".into() }), &[])
        .await
        .unwrap();
    store.enroll(&enrollment(6, "c", Some(t(5)), EnrollmentState::Completed), &[]).await.unwrap();
    store.enroll(&enrollment(7, "c", None, EnrollmentState::Active), &[]).await.unwrap();

    assert_eq!(due_ids(store, 10).await, vec![id(2), id(3), id(1), id(3)]);
    assert_eq!(due_ids(store, 2).await, vec![id(2), id(3)]);
    assert_eq!(due_ids(store, 0).await, Vec::<LeadId>::new());
    let due = store.due_enrollments(t(100), 10).await.unwrap();
    assert_eq!(due[0], enrollment(2, "c", Some(t(10)), EnrollmentState::Active), "the whole enrollment comes back");

    // Stopping an enrollment takes it out of the index even though its document keeps a time.
    let mut stopping = store.enrollments(id(2)).await.unwrap().remove(0);
    stopping.state = EnrollmentState::Stopped { reason: "bounced".into() };
    store.update_enrollment(&stopping, stopping.version, &[]).await.unwrap();
    assert_eq!(due_ids(store, 10).await, vec![id(3), id(1), id(3)]);
    let item = db
        .client
        .get_item()
        .table_name(&db.name)
        .key("PK", AttributeValue::S(format!("LEAD#{}", id(2))))
        .key("SK", AttributeValue::S("ENR#c".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"), "index attributes removed");

    // Advancing one moves it in the order.
    let mut advanced = store.enrollments(id(1)).await.unwrap().remove(0);
    advanced.next_due_at = Some(t(1));
    store.update_enrollment(&advanced, advanced.version, &[]).await.unwrap();
    assert_eq!(due_ids(store, 10).await, vec![id(1), id(3), id(3)]);
}

#[tokio::test]
async fn the_due_query_reads_only_the_due_enrollments() {
    let db = table().await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200_u64 {
        let store = db.store.clone();
        // Five due (at 0..4 s), the other 195 due in the future.
        let due = if n % 40 == 0 { t(i64::try_from(n / 40).unwrap()) } else { t(1000 + i64::try_from(n).unwrap()) };
        tasks.spawn(
            async move { store.enroll(&enrollment(n + 1, "drip", Some(due), EnrollmentState::Active), &[]).await },
        );
        if tasks.len() >= 16 {
            assert!(tasks.join_next().await.unwrap().unwrap().unwrap());
        }
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.unwrap().unwrap());
    }
    let shards: BTreeSet<u32> = (1..=200).map(|n| due_shard(id(n))).collect();
    assert_eq!(shards.len(), 8, "200 leads spread over every shard");

    let scan = db.store.due_scan(t(100), 50).await.unwrap();
    let got: Vec<LeadId> = scan.enrollments.iter().map(|e| e.lead_id).collect();
    assert_eq!(got, vec![id(1), id(41), id(81), id(121), id(161)]);
    assert_eq!(scan.queries, 8, "one query per shard");
    assert_eq!(scan.scanned, 5, "DynamoDB read the due items only");
    assert_eq!(scan.returned, 5);

    let limited = db.store.due_scan(t(100), 2).await.unwrap();
    assert_eq!(limited.enrollments.iter().map(|e| e.lead_id).collect::<Vec<_>>(), vec![id(1), id(41)]);
    assert!(limited.scanned <= 5);
}

#[tokio::test]
async fn every_store_method_makes_the_requests_it_should() {
    let db = table().await;
    let store = &db.store;
    let r = &db.requests;
    r.take();
    store.claim_idempotency_key("k", id(1), t(0), t(100)).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "claim_idempotency_key");
    assert_eq!(store.claim_idempotency_key("k", id(2), t(1), t(100)).await.unwrap(), IdempotencyClaim::Seen(id(1)));
    assert_eq!(r.take(), ["PutItem"], "claim_idempotency_key, seen (the old item comes with the failure)");

    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "create_lead");
    assert_eq!(store.create_lead(&lead(2, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(r.take(), ["TransactWriteItems"], "create_lead, email taken");
    let mut invalid = lead(3, "bad");
    invalid.validity = Validity::Invalid { reasons: Vec::new() };
    store.create_lead(&invalid, &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "create_lead, invalid and unowned");

    let mut l = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!(r.take(), ["GetItem"], "get_lead");
    l.submissions = 2;
    store.update_lead(&l, 0, &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "update_lead");
    store.record_alias(id(9), id(1)).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "record_alias");
    assert_eq!(store.resolve_lead(id(9)).await.unwrap(), Some(id(1)));
    assert_eq!(r.take(), ["BatchGetItem"], "resolve_lead");
    store.find_by_email_key(&email_key("ada@example.com")).await.unwrap();
    assert_eq!(r.take(), ["GetItem"], "find_by_email_key");
    let act = Activity {
        id: "x".into(),
        lead_id: id(1),
        at: t(1),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    };
    store.record_activity(&act).await.unwrap();
    store.record_activity(&act).await.unwrap();
    assert_eq!(r.take(), ["PutItem", "PutItem"], "record_activity");
    store.activities(id(1)).await.unwrap();
    assert_eq!(r.take(), ["Query"], "activities");
    store.team_cursor("emea").await.unwrap();
    assert_eq!(r.take(), ["GetItem"], "team_cursor");
    store.rep_loads().await.unwrap();
    assert_eq!(r.take(), ["Query"], "rep_loads");
    let write = AssignmentWrite {
        lead: owned_by(l.clone(), "rep-1"),
        expected_lead_version: 1,
        team_cursor: Some(("emea".into(), TeamCursor::default())),
        trail: Vec::new(),
    };
    store.assign(&write).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "assign");
    store.claim_effect("e", t(0), t(30)).await.unwrap();
    store.claim_effect("e", t(1), t(31)).await.unwrap();
    assert_eq!(r.take(), ["PutItem", "PutItem"], "claim_effect");
    store.finish_effect("e", "d", &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "finish_effect");
    store.release_effect("e").await.unwrap();
    assert_eq!(r.take(), ["DeleteItem"], "release_effect");
    let e = enrollment(1, "c", Some(t(5)), EnrollmentState::Active);
    store.enroll(&e, &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "enroll");
    store.enrollments(id(1)).await.unwrap();
    assert_eq!(r.take(), ["Query"], "enrollments");
    store.due_enrollments(t(10), 10).await.unwrap();
    assert_eq!(r.take(), vec!["Query"; 8], "due_enrollments");
    store.update_enrollment(&e, 0, &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "update_enrollment");

    let entry = Suppression {
        email_key: email_key("ada@example.com"),
        reason: SuppressionReason::Bounced,
        at: t(1),
        lead_id: Some(id(1)),
    };
    store.suppress(&entry, &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "suppress");
    store.suppression(&entry.email_key).await.unwrap();
    assert_eq!(r.take(), ["GetItem"], "suppression");
    store.put_document(&doc("routing", 1, "{}")).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "put_document");
    store.document("routing", None).await.unwrap();
    store.document("routing", Some(1)).await.unwrap();
    assert_eq!(r.take(), ["GetItem", "GetItem"], "document");
    store.latest_documents("").await.unwrap();
    assert_eq!(r.take(), ["Query"], "latest_documents");
    store.list_leads(None, 10).await.unwrap();
    assert_eq!(r.take(), ["Scan"], "list_leads");
    store.campaign_enrollments("c", None, 10).await.unwrap();
    assert_eq!(r.take(), ["Scan"], "campaign_enrollments");
    store.due_slas(t(10), 10).await.unwrap();
    assert_eq!(r.take(), vec!["Query"; 8], "due_slas");
    let stored = store.get_lead(id(1)).await.unwrap().unwrap();
    r.take();
    store.erase_lead(&tombstone_of(&stored), Some(&email_key("ada@example.com"))).await.unwrap();
    assert_eq!(r.take(), ["GetItem", "TransactWriteItems", "Query", "BatchWriteItem"], "erase_lead");
}

// ---------------------------------------------------------------------------------------------
// Suppression, documents, lead listing, SLAs, erasure
// ---------------------------------------------------------------------------------------------

fn doc(name: &str, version: u32, body: &str) -> Document {
    Document { name: name.to_string(), version, body: body.to_string(), saved_at: t(i64::from(version)) }
}

/// The lead owned by `rep`, whose SLA expires at `due`.
fn owned_until(lead: Lead, rep: &str, due: DateTime<Utc>) -> Lead {
    let mut owned = owned_by(lead, rep);
    if let Some(owner) = owned.owner.as_mut() {
        owner.sla_due_at = due;
    }
    owned
}

/// What an erasure leaves of a lead: no personal data, the next version; owner and status are
/// kept (the store closes the lead whatever they say).
fn tombstone_of(stored: &Lead) -> Lead {
    let mut tombstone = stored.clone();
    tombstone.version = stored.version + 1;
    tombstone.contact.email = "erased".into();
    tombstone.contact.email_domain = String::new();
    tombstone.contact.first_name = None;
    tombstone.contact.last_name = None;
    tombstone.contact.phone = None;
    tombstone.contact.company = None;
    tombstone.custom.clear();
    tombstone
}

fn opened(lead_id: LeadId, activity: &str) -> Activity {
    Activity {
        id: activity.to_string(),
        lead_id,
        at: t(5),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    }
}

async fn index_attributes(db: &common::Table, lead_id: LeadId) -> (Option<String>, Option<String>) {
    let item = db
        .client
        .get_item()
        .table_name(&db.name)
        .key("PK", AttributeValue::S(format!("LEAD#{lead_id}")))
        .key("SK", AttributeValue::S("PROFILE".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("lead item");
    let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    (attr("GSI1PK"), attr("GSI1SK"))
}

#[tokio::test]
async fn suppression_keeps_the_first_entry_and_its_reason() {
    let db = table().await;
    let store = &db.store;
    let key = email_key("ada@example.com");
    let first =
        Suppression { email_key: key.clone(), reason: SuppressionReason::Unsubscribed, at: t(1), lead_id: Some(id(1)) };
    assert_eq!(store.suppression(&key).await.unwrap(), None);
    assert!(store.suppress(&first, &[]).await.unwrap());
    let later = Suppression { reason: SuppressionReason::Bounced, at: t(2), lead_id: None, ..first.clone() };
    assert!(!store.suppress(&later, &[]).await.unwrap(), "suppressed already");
    assert_eq!(store.suppression(&key).await.unwrap(), Some(first));
    assert_eq!(store.suppression(&email_key("bob@example.com")).await.unwrap(), None);

    // The list holds keys, never addresses.
    let out = db.client.scan().table_name(&db.name).send().await.unwrap();
    let text = format!("{:?}", out.items());
    assert!(text.contains(&format!("SUPPRESS#{key}")) && !text.contains("ada@"), "{text}");
}

#[tokio::test]
async fn documents_count_up_from_one_without_gaps_and_the_latest_is_indexed() {
    let db = table().await;
    let store = &db.store;
    let name = "campaign:welcome";
    assert_eq!(store.document(name, None).await.unwrap(), None);
    assert_eq!(store.put_document(&doc(name, 0, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "no version 0");
    assert_eq!(store.put_document(&doc(name, 2, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "a gap");
    assert_eq!(store.put_document(&doc(name, 1, r#"{"v":1}"#)).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.put_document(&doc(name, 1, r#"{"v":"other"}"#)).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.put_document(&doc(name, 3, "{}")).await.unwrap(), WriteOutcome::VersionConflict, "a gap");
    assert_eq!(store.put_document(&doc(name, 2, r#"{"v":2}"#)).await.unwrap(), WriteOutcome::Written);

    assert_eq!(store.document(name, None).await.unwrap(), Some(doc(name, 2, r#"{"v":2}"#)));
    assert_eq!(store.document(name, Some(1)).await.unwrap(), Some(doc(name, 1, r#"{"v":1}"#)), "kept unchanged");
    assert_eq!(store.document(name, Some(2)).await.unwrap(), Some(doc(name, 2, r#"{"v":2}"#)));
    assert_eq!(store.document(name, Some(3)).await.unwrap(), None);
    assert_eq!(store.document("campaign:other", None).await.unwrap(), None);
    assert_eq!(store.document("", None).await.unwrap(), None);
    assert!(store.put_document(&doc("", 1, "{}")).await.is_err(), "a document needs a name");

    // Two writers of the same next version: exactly one wins.
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..4 {
        let store = store.clone();
        racers.spawn(async move { store.put_document(&doc(name, 3, &format!(r#"{{"writer":{n}}}"#))).await });
    }
    let mut written = 0;
    while let Some(done) = racers.join_next().await {
        if done.unwrap().unwrap() == WriteOutcome::Written {
            written += 1;
        }
    }
    assert_eq!(written, 1, "one writer of version 3");
    let latest = store.document(name, None).await.unwrap().unwrap();
    assert_eq!(latest.version, 3);
    assert_eq!(
        store.document(name, Some(3)).await.unwrap(),
        Some(latest.clone()),
        "the index holds the stored version"
    );

    store.put_document(&doc("campaign:alpha", 1, "{}")).await.unwrap();
    store.put_document(&doc("routing", 1, "{}")).await.unwrap();
    store.put_document(&doc("scoring", 1, "{}")).await.unwrap();
    store.put_document(&doc("scoring", 2, r#"{"s":2}"#)).await.unwrap();
    let names = |docs: Vec<Document>| docs.into_iter().map(|d| (d.name, d.version)).collect::<Vec<_>>();
    assert_eq!(
        names(store.latest_documents("campaign:").await.unwrap()),
        [("campaign:alpha".to_string(), 1), (name.to_string(), 3)]
    );
    let everything = store.latest_documents("").await.unwrap();
    assert_eq!(everything.len(), 4);
    assert_eq!(everything.last(), Some(&doc("scoring", 2, r#"{"s":2}"#)), "the latest version with its body");
    assert_eq!(names(store.latest_documents("routing").await.unwrap()), [("routing".to_string(), 1)]);
    assert!(store.latest_documents("nothing:").await.unwrap().is_empty());
}

/// Pages of `list_leads` with `limit` until the last: the ids in the order seen, and the pages.
async fn all_pages(store: &DynamoStore, limit: usize) -> (Vec<LeadId>, usize) {
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list_leads(cursor.take(), limit).await.unwrap();
        assert!(page.leads.len() <= limit.max(1), "a page of {} for limit {limit}", page.leads.len());
        seen.extend(page.leads.iter().map(|l| l.id));
        pages += 1;
        assert!(pages <= 1000, "list_leads does not end");
        match page.next {
            Some(next) => {
                assert!(!next.contains("example") && !next.is_empty(), "{next}");
                cursor = Some(next);
            }
            None => return (seen, pages),
        }
    }
}

#[tokio::test]
async fn list_leads_pages_cover_every_lead_exactly_once() {
    let db = table().await;
    let store = &db.store;
    let empty = store.list_leads(None, 10).await.unwrap();
    assert!(empty.leads.is_empty() && empty.next.is_none());

    // 60 leads among 180 other items (email keys, activities, enrollments, an alias, counters,
    // documents): the scan's pages are mostly not leads.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=60_u64 {
        let store = store.clone();
        tasks.spawn(async move {
            let l = if n % 3 == 0 {
                owned_by(lead(n, &format!("p{n}@example.com")), "rep-1")
            } else {
                lead(n, &format!("p{n}@example.com"))
            };
            assert_eq!(store.create_lead(&l, &[]).await.unwrap(), CreateOutcome::Created);
            store.record_activity(&opened(id(n), "a")).await.unwrap();
            assert!(store.enroll(&enrollment(n, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap());
        });
        if tasks.len() >= 8 {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    store.record_alias(id(100), id(1)).await.unwrap();
    store.put_document(&doc("routing", 1, "{}")).await.unwrap();
    let all: Vec<LeadId> = (1..=60).map(id).collect();

    for limit in [0, 1, 7, 60, 1000] {
        let (mut seen, pages) = all_pages(store, limit).await;
        seen.sort();
        assert_eq!(seen, all, "limit {limit}: every lead once, over {pages} pages");
    }
    let (_, pages) = all_pages(store, 7).await;
    assert!(pages >= 9, "60 leads in pages of at most 7: {pages} pages");
    let whole = store.list_leads(None, 1000).await.unwrap();
    assert_eq!((whole.leads.len(), whole.next), (60, None));
    let third = whole.leads.iter().find(|l| l.id == id(3)).unwrap();
    assert_eq!(third, &owned_by(lead(3, "p3@example.com"), "rep-1"), "whole leads, with their version");

    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for bad in [
        "not a cursor".to_string(),
        "abc".to_string(),
        hex("{}"),
        hex(r#"{"PK":"LEAD#x"}"#),
        hex(r#"{"PK":"LEAD#x","SK":""}"#),
        hex(r#"{"PK":"LEAD#x","SK":"PROFILE","X":"y"}"#),
        hex("[1, 2]"),
        "0".repeat(100_000),
    ] {
        match store.list_leads(Some(bad.clone()), 10).await {
            Err(StoreError::Corrupt(message)) => assert!(message.contains("cursor"), "{message}"),
            other => panic!("cursor {bad:.40}: {other:?}"),
        }
    }
}

/// Pages of `campaign_enrollments` with `limit` until the last: the enrollments in the order
/// seen, and the number of pages.
async fn all_enrollment_pages(store: &DynamoStore, campaign: &str, limit: usize) -> (Vec<Enrollment>, usize) {
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.campaign_enrollments(campaign, cursor.take(), limit).await.unwrap();
        assert!(page.enrollments.len() <= limit.max(1), "a page of {} for limit {limit}", page.enrollments.len());
        seen.extend(page.enrollments);
        pages += 1;
        assert!(pages <= 1000, "campaign_enrollments does not end");
        match page.next {
            Some(next) => {
                assert!(!next.contains("example") && !next.is_empty(), "{next}");
                cursor = Some(next);
            }
            None => return (seen, pages),
        }
    }
}

#[tokio::test]
async fn campaign_enrollments_pages_cover_every_enrollment_of_the_campaign_once() {
    let db = table().await;
    let store = &db.store;
    let empty = store.campaign_enrollments("welcome", None, 3).await.unwrap();
    assert!(empty.enrollments.is_empty() && empty.next.is_none());

    // Leads 1..=20 in "welcome" (every state, two campaign versions), the odd ones also in
    // "winback" (a sort key that "welcome" is no prefix of, and one it shares a prefix with:
    // "welcome-back"), among their profiles, email keys and activities.
    let mut expected = BTreeMap::new();
    for n in 1..=20_u64 {
        assert_eq!(
            store.create_lead(&lead(n, &format!("p{n}@example.com")), &[]).await.unwrap(),
            CreateOutcome::Created
        );
        store.record_activity(&opened(id(n), "a")).await.unwrap();
        let state = match n % 3 {
            0 => EnrollmentState::Active,
            1 => EnrollmentState::Completed,
            _ => EnrollmentState::Stopped { reason: "unsubscribed".into() },
        };
        let due = (state == EnrollmentState::Active).then(|| t(i64::try_from(n).unwrap()));
        let mut e = enrollment(n, "welcome", due, state);
        e.campaign_version = if n <= 10 { 1 } else { 2 };
        assert!(store.enroll(&e, &[]).await.unwrap());
        expected.insert(e.lead_id, e);
        if n % 2 == 1 {
            assert!(store.enroll(&enrollment(n, "winback", Some(t(1)), EnrollmentState::Active), &[]).await.unwrap());
            assert!(
                store.enroll(&enrollment(n, "welcome-back", Some(t(1)), EnrollmentState::Active), &[]).await.unwrap()
            );
        }
    }
    // An enrollment moved on a version comes as stored.
    let mut moved = expected[&id(3)].clone();
    moved.next_step = 1;
    assert_eq!(store.update_enrollment(&moved, 0, &[]).await.unwrap(), WriteOutcome::Written);
    moved.version = 1;
    expected.insert(moved.lead_id, moved);

    for limit in [0, 1, 3, 20, 1000] {
        let (seen, pages) = all_enrollment_pages(store, "welcome", limit).await;
        assert_eq!(seen.len(), 20, "limit {limit}: each enrollment of the campaign once, over {pages} pages");
        let by_lead: BTreeMap<LeadId, Enrollment> = seen.into_iter().map(|e| (e.lead_id, e)).collect();
        assert_eq!(by_lead, expected, "limit {limit}: those of the campaign, as stored, none of another");
    }
    let (_, pages) = all_enrollment_pages(store, "welcome", 3).await;
    assert!(pages >= 7, "20 enrollments in pages of at most 3: {pages} pages");
    let (winback, _) = all_enrollment_pages(store, "winback", 3).await;
    let winback: Vec<LeadId> = winback.iter().map(|e| e.lead_id).collect();
    assert_eq!(winback.len(), 10);
    assert_eq!(winback.into_iter().collect::<BTreeSet<_>>(), (1..=20).step_by(2).map(id).collect());
    let none = store.campaign_enrollments("nobody", None, 3).await.unwrap();
    assert!(none.enrollments.is_empty() && none.next.is_none());

    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for bad in [
        "not a cursor".to_string(),
        "abc".to_string(),
        hex("{}"),
        hex(r#"{"PK":"LEAD#x"}"#),
        hex(r#"{"PK":"LEAD#x","SK":""}"#),
        hex("[1, 2]"),
        "0".repeat(100_000),
    ] {
        match store.campaign_enrollments("welcome", Some(bad.clone()), 3).await {
            Err(StoreError::Corrupt(message)) => assert!(message.contains("cursor"), "{message}"),
            other => panic!("cursor {bad:.40}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn due_slas_are_the_owned_new_valid_leads_whose_sla_expired_oldest_first() {
    let db = table().await;
    let store = &db.store;
    // Born owned: in the index from the start.
    store.create_lead(&owned_until(lead(1, "p1@example.com"), "rep-1", t(100)), &[]).await.unwrap();
    for (n, due) in [(2, t(50)), (3, t(3600)), (4, t(60)), (5, t(70)), (6, t(80))] {
        let email = format!("p{n}@example.com");
        store.create_lead(&lead(n, &email), &[]).await.unwrap();
        let write = AssignmentWrite {
            lead: owned_until(lead(n, &email), "rep-1", due),
            expected_lead_version: 0,
            team_cursor: None,
            trail: Vec::new(),
        };
        assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    }
    let mut invalid = owned_until(lead(7, "bad"), "rep-2", t(10));
    invalid.validity = Validity::Invalid { reasons: Vec::new() };
    store.create_lead(&invalid, &[]).await.unwrap();
    store.create_lead(&lead(8, "unowned@example.com"), &[]).await.unwrap();
    // A due enrollment lives in the same index, in other partitions.
    store.enroll(&enrollment(8, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();

    db.requests.take();
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), [id(2), id(4), id(5), id(6), id(1)]);
    assert_eq!(db.requests.take(), vec!["Query"; 8], "one query per shard");
    assert_eq!(store.due_slas(t(200), 2).await.unwrap(), [id(2), id(4)]);
    assert_eq!(store.due_slas(t(60), 10).await.unwrap(), [id(2), id(4)], "due at `now` exactly");
    assert_eq!(store.due_slas(t(49), 10).await.unwrap(), Vec::<LeadId>::new());
    assert_eq!(store.due_slas(t(200), 0).await.unwrap(), Vec::<LeadId>::new());
    assert_eq!(due_ids(store, 10).await, [id(8)], "no lead among the due enrollments");
    assert_eq!(index_attributes(&db, id(8)).await, (None, None), "an unowned lead is not indexed");
    assert_eq!(index_attributes(&db, id(7)).await, (None, None), "an invalid lead is not indexed");
    let (pk, sk) = index_attributes(&db, id(1)).await;
    assert_eq!(pk, Some(format!("SLA#{}", due_shard(id(1)))));
    assert_eq!(sk, Some(format!("{:015}#{}", t(100).timestamp_millis(), id(1))));

    // Contacted: the SLA is met. Won and lost: closed, and off their rep's count.
    for (n, status) in [(4, SalesStatus::Contacted), (5, SalesStatus::Won), (6, SalesStatus::Lost)] {
        let mut changed = store.get_lead(id(n)).await.unwrap().unwrap();
        changed.status = status;
        assert_eq!(store.update_lead(&changed, changed.version, &[]).await.unwrap(), WriteOutcome::Written);
        assert_eq!(index_attributes(&db, id(n)).await, (None, None), "{status:?} leaves the index");
    }
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), [id(2), id(1)]);
    assert_loads(&db, &[("rep-1", 4), ("rep-2", 1)], "after contacted, won and lost").await;

    // A merge (any update that keeps owner and status) keeps the SLA running.
    let mut merged = store.get_lead(id(1)).await.unwrap().unwrap();
    merged.submissions += 1;
    assert_eq!(store.update_lead(&merged, merged.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), [id(2), id(1)]);

    // Re-routed after the breach: another rep, a new SLA.
    let breached = store.get_lead(id(2)).await.unwrap().unwrap();
    let reroute = AssignmentWrite {
        lead: owned_until(breached.clone(), "rep-2", t(5000)),
        expected_lead_version: breached.version,
        team_cursor: None,
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&reroute).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), [id(1)]);
    assert_eq!(store.due_slas(t(6000), 10).await.unwrap(), [id(1), id(3), id(2)]);
    assert_loads(&db, &[("rep-1", 3), ("rep-2", 2)], "after re-routing").await;
}

#[tokio::test]
async fn erase_lead_leaves_a_tombstone_and_no_email_key_trail_open_count_or_sla() {
    let db = table().await;
    let store = &db.store;
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    let write = AssignmentWrite {
        lead: owned_until(lead(1, "ada@example.com"), "rep-1", t(100)),
        expected_lead_version: 0,
        team_cursor: None,
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    store.create_lead(&owned_by(lead(2, "bob@example.com"), "rep-1"), &[]).await.unwrap();
    for n in 0..30 {
        store.record_activity(&opened(id(1), &format!("a{n:02}"))).await.unwrap();
    }
    store.record_activity(&opened(id(2), "kept")).await.unwrap();
    let stopped = enrollment(1, "c", None, EnrollmentState::Stopped { reason: "erased".into() });
    store.enroll(&stopped, &[]).await.unwrap();
    assert_loads(&db, &[("rep-1", 2)], "before").await;
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), [id(1)]);

    let tombstone = tombstone_of(&store.get_lead(id(1)).await.unwrap().unwrap());
    assert_eq!((tombstone.version, tombstone.status), (2, SalesStatus::New));
    db.requests.take();
    store.erase_lead(&tombstone, Some(&email_key("ada@example.com"))).await.unwrap();
    assert_eq!(
        db.requests.take(),
        ["GetItem", "TransactWriteItems", "Query", "BatchWriteItem", "BatchWriteItem"],
        "30 activities in two batches"
    );
    assert_eq!(store.get_lead(id(1)).await.unwrap(), Some(tombstone.clone()));
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), None);
    assert!(store.activities(id(1)).await.unwrap().is_empty());
    assert_eq!(store.activities(id(2)).await.unwrap().len(), 1, "other leads keep theirs");
    assert_eq!(store.enrollments(id(1)).await.unwrap(), [stopped], "enrollments are kept");
    assert_loads(&db, &[("rep-1", 1)], "after erasing an owned open lead").await;
    assert_eq!(store.due_slas(t(200), 10).await.unwrap(), Vec::<LeadId>::new());
    assert_eq!(index_attributes(&db, id(1)).await, (None, None));
    let listed = store.list_leads(None, 100).await.unwrap();
    assert!(listed.leads.contains(&tombstone) && !listed.leads.iter().any(|l| l.contact.email == "ada@example.com"));
    let text = format!("{:?}", db.client.scan().table_name(&db.name).send().await.unwrap().items());
    assert!(!text.contains("ada@example.com"), "the address is gone from the table: {text}");

    // Redelivered: finishes quietly, counts nothing twice.
    store.erase_lead(&tombstone, Some(&email_key("ada@example.com"))).await.unwrap();
    assert_eq!(store.get_lead(id(1)).await.unwrap(), Some(tombstone));
    assert_loads(&db, &[("rep-1", 1)], "after a redelivered erasure").await;

    // A tombstone built from a stale read is refused, and nothing changes.
    let current = store.get_lead(id(2)).await.unwrap().unwrap();
    let stale = Lead { version: current.version + 5, ..tombstone_of(&current) };
    assert!(matches!(store.erase_lead(&stale, None).await, Err(StoreError::Unavailable(_))));
    assert_eq!(store.get_lead(id(2)).await.unwrap(), Some(current.clone()));
    assert_eq!(store.activities(id(2)).await.unwrap().len(), 1);
    assert!(
        store.erase_lead(&Lead { version: 0, ..current.clone() }, None).await.is_err(),
        "version 0 follows nothing"
    );

    // The key given belongs to another lead (the address was merged away): it stays.
    store.create_lead(&lead(3, "carol@example.com"), &[]).await.unwrap();
    store.erase_lead(&tombstone_of(&current), Some(&email_key("carol@example.com"))).await.unwrap();
    assert_eq!(store.find_by_email_key(&email_key("carol@example.com")).await.unwrap(), Some(id(3)));
    assert_eq!(store.find_by_email_key(&email_key("bob@example.com")).await.unwrap(), Some(id(2)), "not given");
    assert_eq!(store.get_lead(id(2)).await.unwrap().map(|l| l.contact.email), Some("erased".to_string()));
    assert!(store.activities(id(2)).await.unwrap().is_empty());
    assert_loads(&db, &[], "after erasing the last open lead").await;

    // A won lead's erasure counts nothing; a missing lead is nothing to erase.
    let mut won = store.get_lead(id(3)).await.unwrap().unwrap();
    won.status = SalesStatus::Won;
    won.owner = owned_by(won.clone(), "rep-9").owner;
    store.update_lead(&won, won.version, &[]).await.unwrap();
    let won = store.get_lead(id(3)).await.unwrap().unwrap();
    store.erase_lead(&tombstone_of(&won), Some(&email_key("carol@example.com"))).await.unwrap();
    assert_eq!(store.find_by_email_key(&email_key("carol@example.com")).await.unwrap(), None);
    assert_loads(&db, &[], "after erasing a won lead").await;
    store
        .erase_lead(&tombstone_of(&lead(9, "nobody@example.com")), Some(&email_key("nobody@example.com")))
        .await
        .unwrap();
    assert_eq!(store.get_lead(id(9)).await.unwrap(), None, "erasing creates no lead");
}

#[tokio::test]
async fn undecodable_items_are_corrupt_without_personal_data_in_the_message() {
    let db = table().await;
    let put = |sk: &str, doc: &str| {
        db.client
            .put_item()
            .table_name(&db.name)
            .item("PK", AttributeValue::S(format!("LEAD#{}", id(1))))
            .item("SK", AttributeValue::S(sk.into()))
            .item("doc", AttributeValue::S(doc.into()))
            .item("version", AttributeValue::N("0".into()))
            .send()
    };
    put("PROFILE", r#"{"id": 7, "contact": {"email": "ada@example.com"}}"#).await.unwrap();
    let err = db.store.get_lead(id(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    put("PROFILE", r#"{"id": "ada@example.com"}"#).await.unwrap();
    let err = db.store.get_lead(id(1)).await.unwrap_err().to_string();
    assert!(!err.contains("ada@") && !err.contains("example.com"), "{err}");
    put("ENR#c", "not json, ada@example.com").await.unwrap();
    let err = db.store.enrollments(id(1)).await.unwrap_err().to_string();
    assert!(err.contains("corrupt") && !err.contains("ada@"), "{err}");
}

#[tokio::test]
async fn a_missing_table_is_unavailable() {
    let config = common::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), unique("no-such-table"));
    let err = store.get_lead(id(1)).await.unwrap_err();
    assert!(matches!(&err, StoreError::Unavailable(m) if m.contains("ResourceNotFoundException")), "{err}");
}

/// The store and the queues on what template.yaml defines (through the provisioner), not only
/// on the test's own copy of the table definition: the two cannot drift apart unnoticed.
#[tokio::test]
async fn the_adapters_work_on_the_resources_the_template_defines() {
    let config = common::sdk_config().await;
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .expect("template.yaml at the workspace root");
    let made = leadflow_aws::provision::create_from_template(&config, &template, &unique("tpl"))
        .await
        .expect("provision from the template");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &made.table);
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    let write = AssignmentWrite {
        lead: owned_by(lead(1, "ada@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), TeamCursor::default())),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.rep_loads().await.unwrap(), loads(&[("rep-1", 1)]));
    store.enroll(&enrollment(1, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
    assert_eq!(due_ids(&store, 10).await, vec![id(1)]);
    assert_eq!(store.claim_idempotency_key("k", id(1), t(0), t(10)).await.unwrap(), IdempotencyClaim::Claimed);

    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = SqsQueue::new(sqs.clone(), made.stage_urls.clone());
    queue.send(Stage::Route, &["a".to_string(), "b".to_string()]).await.unwrap();
    assert_eq!(receive_all(&sqs, &made.stage_urls.route, 2).await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------------

async fn queues(client: &aws_sdk_sqs::Client) -> StageUrls {
    let mut urls = Vec::new();
    for stage in Stage::ALL {
        let out = client.create_queue().queue_name(unique(stage.as_str())).send().await.expect("create queue");
        urls.push(out.queue_url.expect("queue url"));
    }
    StageUrls { validate: urls[0].clone(), score: urls[1].clone(), route: urls[2].clone() }
}

async fn receive_all(client: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..20 {
        if bodies.len() >= expected {
            break;
        }
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        bodies.extend(out.messages().iter().filter_map(|m| m.body().map(str::to_string)));
    }
    bodies
}

#[tokio::test]
async fn a_send_of_25_bodies_arrives_whole_on_the_stage_queue() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = queues(&client).await;
    let queue = SqsQueue::new(client.clone(), urls.clone());

    let bodies: Vec<String> = (0..25).map(|i| format!(r#"{{"lead_id":"{}","n":{i}}}"#, id(i))).collect();
    queue.send(Stage::Score, &bodies).await.unwrap();
    let mut got = receive_all(&client, &urls.score, 25).await;
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(got, want);
    for other in [&urls.validate, &urls.route] {
        let out = client.receive_message().queue_url(other).wait_time_seconds(1).send().await.expect("receive");
        assert!(out.messages().is_empty(), "nothing on the other stages");
    }

    queue.send(Stage::Route, &[r#"{"one":true}"#.to_string()]).await.unwrap();
    assert_eq!(receive_all(&client, &urls.route, 1).await, vec![r#"{"one":true}"#.to_string()]);
    queue.send(Stage::Validate, &[]).await.unwrap();
}

#[tokio::test]
async fn bodies_over_256_kib_together_are_split_into_several_batches() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = queues(&client).await;
    let queue = SqsQueue::new(client.clone(), urls.clone());
    let bodies: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(100 * 1024))).collect();
    queue.send(Stage::Validate, &bodies).await.unwrap();
    assert_eq!(receive_all(&client, &urls.validate, 4).await.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// SES
// ---------------------------------------------------------------------------------------------

fn email(key: &str, from: &str) -> OutgoingEmail {
    OutgoingEmail {
        key: key.to_string(),
        category: EmailCategory::Marketing,
        from: Mailbox { name: Some("Leadflow".into()), email: from.to_string() },
        to: Mailbox { name: Some("Ada Lovelace".into()), email: "ada@example.org".into() },
        subject: "Your engine awaits".into(),
        text: "Hello Ada, this is the plain part.".into(),
        html: "<p>Hello <b>Ada</b>, this is the HTML part.</p>".into(),
        headers: vec![("List-Unsubscribe".into(), "<https://leadflow.test/u/token>".into())],
        tags: Vec::new(),
    }
}

/// moto's record of a raw message SES sent, found by the message id SES answered.
async fn sent_raw_message(message_id: &str) -> serde_json::Value {
    let read = common::moto_data_until(std::time::Duration::from_secs(4), |data| {
        common::ses_raw_messages(data).find(|m| m["id"] == message_id).cloned()
    });
    read.await.unwrap_or_else(|last| panic!("message {message_id} is not listed under ses.RawMessage: {last}"))
}

#[tokio::test]
async fn an_email_is_sent_as_raw_mime_with_both_parts() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&config);
    let sender = format!("{}@leadflow.test", unique("sender"));
    client.create_email_identity().email_identity(&sender).send().await.expect("verify sender");
    let set = unique("set");
    client.create_configuration_set().configuration_set_name(&set).send().await.expect("configuration set");
    let mailer = SesMailer::new(client, Some(set));

    let key = format!("drip-{}", unique("k"));
    let message_id = mailer.send(&email(&key, &sender), t(0)).await.unwrap();
    assert!(!message_id.is_empty());

    let raw = sent_raw_message(&message_id).await;
    let mime = raw["raw_data"].as_str().expect("raw_data");
    assert!(mime.contains("Subject: Your engine awaits"), "{mime}");
    assert!(mime.contains("Hello Ada, this is the plain part."), "{mime}");
    assert!(mime.contains("<p>Hello <b>Ada</b>, this is the HTML part.</p>"), "{mime}");
    assert!(mime.contains("multipart/alternative"), "{mime}");
    assert!(mime.contains(&format!("Message-ID: <{}>", SesMailer::message_id_for(&key))), "{mime}");
    assert!(mime.contains("List-Unsubscribe: <https://leadflow.test/u/token>"), "{mime}");
}

/// The JSON bodies an SES client sent, as they went over the wire to moto.
#[derive(Debug, Clone, Default)]
struct SentBodies(Arc<Mutex<Vec<serde_json::Value>>>);

impl SentBodies {
    fn take(&self) -> Vec<serde_json::Value> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

impl Intercept for SentBodies {
    fn name(&self) -> &'static str {
        "SentBodies"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(body) = context.request().body().bytes().and_then(|b| serde_json::from_slice(b).ok())
            && let Ok(mut sent) = self.0.lock()
        {
            sent.push(body);
        }
        Ok(())
    }
}

/// moto keeps neither the tags nor the configuration set of a raw send (its `RawMessage` has
/// the id, source, destinations and MIME only), so they are read from the request the SDK sent
/// to moto, which moto then accepted.
#[tokio::test]
async fn an_email_carries_its_tags_and_the_configuration_set() {
    let config = common::sdk_config().await;
    let plain = aws_sdk_sesv2::Client::new(&config);
    let sender = format!("{}@leadflow.test", unique("sender"));
    plain.create_email_identity().email_identity(&sender).send().await.expect("verify sender");
    let set = unique("set");
    plain.create_configuration_set().configuration_set_name(&set).send().await.expect("configuration set");
    let sent = SentBodies::default();
    let logged = aws_sdk_sesv2::config::Builder::from(&config).interceptor(sent.clone()).build();
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::from_conf(logged), Some(set.clone()));

    let key = format!("drip-{}", unique("k"));
    let mut tagged = email(&key, &sender);
    tagged.tags = vec![("lead_id".into(), id(1).to_string()), ("email".into(), key.clone())];
    let message_id = mailer.send(&tagged, t(0)).await.unwrap();
    sent_raw_message(&message_id).await;

    let bodies = sent.take();
    let [body] = bodies.as_slice() else { panic!("one SendEmail request: {bodies:?}") };
    assert_eq!(body["ConfigurationSetName"], set.as_str());
    let tags: Vec<(String, String)> = body["EmailTags"]
        .as_array()
        .expect("EmailTags")
        .iter()
        .map(|t| (t["Name"].as_str().unwrap().to_string(), t["Value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        tags,
        [
            ("category".to_string(), "marketing".to_string()),
            ("lead_id".to_string(), id(1).to_string()),
            ("email".to_string(), key.clone()),
        ]
    );
}

#[tokio::test]
async fn a_rejected_send_is_rejected_without_the_address_in_the_error() {
    let config = common::sdk_config().await;
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), None);
    let sender = format!("{}@leadflow.test", unique("unverified"));
    let err = mailer.send(&email("k", &sender), t(0)).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err}");
    let text = err.to_string();
    assert!(!text.contains('@') && !text.contains("ada"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

fn event(n: usize) -> DomainEvent {
    DomainEvent {
        id: format!("lead.assigned:{}:{n}", id(1)),
        detail_type: "lead.assigned".into(),
        at: t(i64::try_from(n).unwrap()),
        detail: serde_json::json!({"lead_id": id(1), "rep_id": "rep-1", "n": n}),
    }
}

#[tokio::test]
async fn events_are_published_in_batches_with_our_id_in_the_detail() {
    let config = common::sdk_config().await;
    let events_client = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus_name = unique("bus");
    events_client.create_event_bus().name(&bus_name).send().await.expect("create bus");
    // A rule that forwards our events to a queue, so that what was published can be read back.
    let queue_url = sqs.create_queue().queue_name(unique("events")).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).unwrap();
    let rule = unique("rule");
    events_client
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus_name)
        .event_pattern(r#"{"source":["leadflow"]}"#)
        .send()
        .await
        .expect("rule");
    events_client
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus_name)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .expect("target");

    let bus = EventBridgeBus::new(events_client, &bus_name);
    let events: Vec<DomainEvent> = (0..12).map(event).collect();
    bus.publish(&events).await.unwrap();
    bus.publish(&[]).await.unwrap();

    let delivered = receive_all(&sqs, &queue_url, 12).await;
    assert_eq!(delivered.len(), 12, "{delivered:?}");
    let mut ids = BTreeSet::new();
    for body in &delivered {
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["source"], "leadflow");
        assert_eq!(envelope["detail-type"], "lead.assigned");
        assert_eq!(envelope["detail"]["rep_id"], "rep-1");
        let n = envelope["detail"]["n"].as_u64().unwrap() as usize;
        assert_eq!(envelope["detail"]["at"], serde_json::to_value(t(i64::try_from(n).unwrap())).unwrap());
        ids.insert(envelope["detail"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids, events.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn a_failed_entry_is_an_error() {
    let config = common::sdk_config().await;
    let client = aws_sdk_eventbridge::Client::new(&config);
    let bus_name = unique("bus");
    client.create_event_bus().name(&bus_name).send().await.expect("create bus");
    let bus = EventBridgeBus::new(client, &bus_name);
    // moto fails an entry without a detail type, as EventBridge does.
    let bad = DomainEvent { detail_type: String::new(), ..event(1) };
    let err = bus.publish(&[event(0), bad]).await.unwrap_err().to_string();
    assert!(err.contains("1 of 2 events were not accepted"), "{err}");
}
