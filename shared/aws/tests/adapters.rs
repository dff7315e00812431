//! The AWS adapters against a moto server (`LEADFLOW_MOTO_ENDPOINT`). Every test makes its own
//! table, queues or bus under a unique name, so the tests run in parallel in one moto.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{enrollment, id, lead, owned_by, t, table, unique};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::queue::{SqsQueue, StageUrls};
use leadflow_aws::store::{DynamoStore, due_shard};
use leadflow_core::FieldProblem;
use leadflow_core::error::{MailError, StoreError};
use leadflow_core::model::{
    Activity, ActivityKind, Enrollment, EnrollmentState, Lead, LeadId, SalesStatus, TeamCursor, Validity,
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
async fn true_loads(client: &aws_sdk_dynamodb::Client, table: &str) -> BTreeMap<String, u32> {
    let out = client.scan().table_name(table).consistent_read(true).send().await.expect("scan");
    let mut counts = BTreeMap::new();
    for item in out.items() {
        if item.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) != Some("PROFILE") {
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
    assert_eq!(store.create_lead(&first).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_lead(&first).await.unwrap(), CreateOutcome::AlreadyExists);

    let same_person = lead(2, "ada@example.com");
    assert_eq!(store.create_lead(&same_person).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
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
    assert_eq!(store.create_lead(&invalid).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_lead(&invalid).await.unwrap(), CreateOutcome::AlreadyExists);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), None);
    assert_eq!(store.create_lead(&lead(2, "ada@example.com")).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), Some(id(2)));
    assert_eq!(store.get_lead(id(1)).await.unwrap(), Some(invalid));
}

#[tokio::test]
async fn updates_are_conditional_on_the_version_read() {
    let db = table().await;
    let store = &db.store;
    let mut l = lead(1, "ada@example.com");
    store.create_lead(&l).await.unwrap();

    l.submissions = 2;
    assert_eq!(store.update_lead(&l, 0).await.unwrap(), WriteOutcome::Written);
    let stored = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.submissions), (1, 2));

    l.submissions = 99;
    assert_eq!(store.update_lead(&l, 0).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().submissions, 2);

    assert_eq!(
        store.update_lead(&lead(7, "x@example.com"), 0).await.unwrap(),
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
    store.create_lead(&lead(1, "ada@example.com")).await.unwrap();
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
    store.create_lead(&lead(1, "ada@example.com")).await.unwrap();
    store.enroll(&enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active)).await.unwrap();
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
    store.create_lead(&lead(1, "a@example.com")).await.unwrap();
    store.create_lead(&lead(2, "b@example.com")).await.unwrap();

    let cursor = store.team_cursor("emea").await.unwrap();
    assert_eq!(cursor, TeamCursor::default());
    let advanced =
        TeamCursor { credit: BTreeMap::from([("rep-1".to_string(), -1), ("rep-2".to_string(), 1)]), ..cursor };
    let write = AssignmentWrite {
        lead: owned_by(lead(1, "a@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), advanced.clone())),
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
    };
    assert_eq!(store.assign(&fresh).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.team_cursor("emea").await.unwrap().version, 2);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1)], "after the second assignment").await;

    // The same assignment redelivered: a conflict, and no second count.
    assert_eq!(store.assign(&fresh).await.unwrap(), AssignOutcome::Conflict);
    assert_loads(&db, &[("rep-1", 1), ("rep-2", 1)], "after a redelivered assignment").await;

    // An assignment without a team (fallback owner) and a missing lead.
    store.create_lead(&lead(3, "c@example.com")).await.unwrap();
    let fallback = AssignmentWrite {
        lead: owned_by(lead(3, "c@example.com"), "rep-3"),
        expected_lead_version: 0,
        team_cursor: None,
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
        store.create_lead(&lead(n, &format!("p{n}@example.com"))).await.unwrap();
    }
    // Born owned (an import): counted from the start.
    store.create_lead(&owned_by(lead(4, "p4@example.com"), "rep-2")).await.unwrap();
    store.create_lead(&lead(5, "unowned@example.com")).await.unwrap();
    assert_loads(&db, &[("rep-2", 1)], "after creating").await;

    for n in 1..=3 {
        let write = AssignmentWrite {
            lead: owned_by(lead(n, &format!("p{n}@example.com")), "rep-1"),
            expected_lead_version: 0,
            team_cursor: None,
        };
        assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    }
    assert_loads(&db, &[("rep-1", 3), ("rep-2", 1)], "after assigning").await;

    // Won: closes the lead, one count less. The first guess (owner unchanged) misses, so it is
    // a failed put and then the transaction.
    let mut won = store.get_lead(id(1)).await.unwrap().unwrap();
    won.status = SalesStatus::Won;
    db.requests.take();
    assert_eq!(store.update_lead(&won, won.version).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["PutItem", "TransactWriteItems"]);
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after won").await;

    // The same update redelivered: a version conflict, no second decrement.
    db.requests.take();
    assert_eq!(store.update_lead(&won, won.version).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(db.requests.take(), ["PutItem"]);
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after a redelivered won").await;

    // Updating a won lead again (a late click rescoring it) changes no count.
    let mut rescored = store.get_lead(id(1)).await.unwrap().unwrap();
    rescored.submissions += 1;
    db.requests.take();
    assert_eq!(store.update_lead(&rescored, rescored.version).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["PutItem"], "no owner change: one plain put");
    assert_loads(&db, &[("rep-1", 2), ("rep-2", 1)], "after updating a won lead").await;

    // Contacted keeps it open; lost closes it.
    let mut contacted = store.get_lead(id(2)).await.unwrap().unwrap();
    contacted.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&contacted, contacted.version).await.unwrap(), WriteOutcome::Written);
    let mut lost = store.get_lead(id(4)).await.unwrap().unwrap();
    lost.status = SalesStatus::Lost;
    assert_eq!(store.update_lead(&lost, lost.version).await.unwrap(), WriteOutcome::Written);
    assert_loads(&db, &[("rep-1", 2)], "after contacted and lost").await;

    // Reopened (a won lead back to contacted): counted again.
    let mut reopened = store.get_lead(id(1)).await.unwrap().unwrap();
    reopened.status = SalesStatus::Contacted;
    assert_eq!(store.update_lead(&reopened, reopened.version).await.unwrap(), WriteOutcome::Written);
    assert_loads(&db, &[("rep-1", 3)], "after reopening").await;

    // Re-routed after an expired SLA: the count moves from the old rep to the new one.
    let before = store.get_lead(id(3)).await.unwrap().unwrap();
    let reroute = AssignmentWrite {
        lead: owned_by(before.clone(), "rep-2"),
        expected_lead_version: before.version,
        team_cursor: None,
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
    assert_eq!(store.update_lead(&unowned, unowned.version).await.unwrap(), WriteOutcome::Written);
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
    store.finish_effect(key, "msg-1@leadflow").await.unwrap();
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
    assert!(store.enroll(&e).await.unwrap());
    assert!(!store.enroll(&e).await.unwrap(), "enrolled already");
    assert!(store.enroll(&enrollment(1, "webinar", Some(t(100)), EnrollmentState::Active)).await.unwrap());
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
    assert_eq!(store.update_enrollment(&next, 0).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.update_enrollment(&next, 0).await.unwrap(), WriteOutcome::VersionConflict);
    let stored = store.enrollments(id(1)).await.unwrap().into_iter().find(|e| e.campaign_id == "welcome").unwrap();
    assert_eq!((stored.version, stored.next_step, stored.next_due_at), (1, 1, Some(t(200))));
    let missing = enrollment(2, "welcome", Some(t(100)), EnrollmentState::Active);
    assert_eq!(store.update_enrollment(&missing, 0).await.unwrap(), WriteOutcome::VersionConflict);
}

async fn due_ids(store: &DynamoStore, limit: usize) -> Vec<LeadId> {
    store.due_enrollments(t(100), limit).await.unwrap().into_iter().map(|e| e.lead_id).collect()
}

#[tokio::test]
async fn due_enrollments_are_the_active_due_ones_oldest_due_first() {
    let db = table().await;
    let store = &db.store;
    store.enroll(&enrollment(1, "c", Some(t(30)), EnrollmentState::Active)).await.unwrap();
    store.enroll(&enrollment(2, "c", Some(t(10)), EnrollmentState::Active)).await.unwrap();
    store.enroll(&enrollment(3, "c", Some(t(20)), EnrollmentState::Active)).await.unwrap();
    store.enroll(&enrollment(3, "d", Some(t(100)), EnrollmentState::Active)).await.unwrap(); // due at `now` exactly
    store.enroll(&enrollment(4, "c", Some(t(500)), EnrollmentState::Active)).await.unwrap(); // not due yet
    store
        .enroll(&enrollment(5, "c", Some(t(5)), EnrollmentState::Stopped { reason: "unsubscribed".into() }))
        .await
        .unwrap();
    store.enroll(&enrollment(6, "c", Some(t(5)), EnrollmentState::Completed)).await.unwrap();
    store.enroll(&enrollment(7, "c", None, EnrollmentState::Active)).await.unwrap();

    assert_eq!(due_ids(store, 10).await, vec![id(2), id(3), id(1), id(3)]);
    assert_eq!(due_ids(store, 2).await, vec![id(2), id(3)]);
    assert_eq!(due_ids(store, 0).await, Vec::<LeadId>::new());
    let due = store.due_enrollments(t(100), 10).await.unwrap();
    assert_eq!(due[0], enrollment(2, "c", Some(t(10)), EnrollmentState::Active), "the whole enrollment comes back");

    // Stopping an enrollment takes it out of the index even though its document keeps a time.
    let mut stopping = store.enrollments(id(2)).await.unwrap().remove(0);
    stopping.state = EnrollmentState::Stopped { reason: "bounced".into() };
    store.update_enrollment(&stopping, stopping.version).await.unwrap();
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
    store.update_enrollment(&advanced, advanced.version).await.unwrap();
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
        tasks.spawn(async move { store.enroll(&enrollment(n + 1, "drip", Some(due), EnrollmentState::Active)).await });
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

    store.create_lead(&lead(1, "ada@example.com")).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "create_lead");
    assert_eq!(store.create_lead(&lead(2, "ada@example.com")).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(r.take(), ["TransactWriteItems"], "create_lead, email taken");
    let mut invalid = lead(3, "bad");
    invalid.validity = Validity::Invalid { reasons: Vec::new() };
    store.create_lead(&invalid).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "create_lead, invalid and unowned");

    let mut l = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!(r.take(), ["GetItem"], "get_lead");
    l.submissions = 2;
    store.update_lead(&l, 0).await.unwrap();
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
    };
    store.assign(&write).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "assign");
    store.claim_effect("e", t(0), t(30)).await.unwrap();
    store.claim_effect("e", t(1), t(31)).await.unwrap();
    assert_eq!(r.take(), ["PutItem", "PutItem"], "claim_effect");
    store.finish_effect("e", "d").await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "finish_effect");
    store.release_effect("e").await.unwrap();
    assert_eq!(r.take(), ["DeleteItem"], "release_effect");
    let e = enrollment(1, "c", Some(t(5)), EnrollmentState::Active);
    store.enroll(&e).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "enroll");
    store.enrollments(id(1)).await.unwrap();
    assert_eq!(r.take(), ["Query"], "enrollments");
    store.due_enrollments(t(10), 10).await.unwrap();
    assert_eq!(r.take(), vec!["Query"; 8], "due_enrollments");
    store.update_enrollment(&e, 0).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "update_enrollment");
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
    store.create_lead(&lead(1, "ada@example.com")).await.unwrap();
    let write = AssignmentWrite {
        lead: owned_by(lead(1, "ada@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), TeamCursor::default())),
    };
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.rep_loads().await.unwrap(), loads(&[("rep-1", 1)]));
    store.enroll(&enrollment(1, "c", Some(t(10)), EnrollmentState::Active)).await.unwrap();
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
    let url = format!("{}/moto-api/data.json", common::endpoint());
    let mut last = String::new();
    // moto builds data.json by walking live objects: a test creating resources at the same
    // moment can make that walk fail (a 500), so a failed read is retried.
    for _ in 0..20 {
        let response = reqwest::get(&url).await.expect("moto data");
        let status = response.status();
        let text = response.text().await.expect("moto data body");
        if let Ok(data) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(found) =
                data["ses"]["RawMessage"].as_array().and_then(|all| all.iter().find(|m| m["id"] == message_id).cloned())
        {
            return found;
        }
        last = format!("{status}: {}", text.chars().take(300).collect::<String>());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("message {message_id} is not listed under ses.RawMessage in {url}; last answer {last}");
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
