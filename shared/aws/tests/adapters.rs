//! The AWS adapters against a moto server (`LEADFLOW_MOTO_ENDPOINT`). Every test makes its own
//! table, queues or bus under a unique name, so the tests run in parallel in one moto.

mod common;
// A folder of its own: a file beside this one would be a test binary of its own.
#[path = "adapters/console_reads.rs"]
mod console_reads;
#[path = "adapters/lead_items.rs"]
mod lead_items;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{enrollment, id, lead, owned_by, t, table, unique};
use leadflow_aws::store::{DynamoStore, due_shard};
use leadflow_core::erasure::tombstone;
use leadflow_core::error::StoreError;
use leadflow_core::model::{
    Activity, ActivityKind, Document, EnrollmentState, Lead, LeadId, SalesStatus, Suppression, SuppressionReason,
    TeamCursor, Validity,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, IdempotencyClaim, WriteOutcome,
};
use leadflow_core::ports::{Assignments, Documents, Effects, Enrollments, Leads, Listings, Suppressions, Trails};

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
        let lead: Lead = leadflow_aws::store::lead_of(item).expect("lead item");
        if let Some(owner) = &lead.owner
            && !matches!(lead.status, SalesStatus::Won | SalesStatus::Lost)
        {
            *counts.entry(owner.rep_id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

fn doc(name: &str, version: u32, body: &str) -> Document {
    Document { name: name.to_string(), version, body: body.to_string(), saved_at: t(i64::from(version)) }
}

fn opened(lead_id: LeadId, activity: &str) -> Activity {
    Activity {
        id: activity.to_string(),
        lead_id,
        at: t(5),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    }
}

async fn item(db: &common::Table, pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    let got = db.client.get_item().table_name(&db.name).key("PK", AttributeValue::S(pk));
    got.key("SK", AttributeValue::S(sk.into())).send().await.unwrap().item.expect("item")
}

/// The due index's attributes of an item: set only while it is due-indexed.
async fn index_attributes(db: &common::Table, lead_id: LeadId, sk: &str) -> (Option<String>, Option<String>) {
    let item = item(db, format!("LEAD#{lead_id}"), sk).await;
    let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    (attr("GSI1PK"), attr("GSI1SK"))
}

// ---------------------------------------------------------------------------------------------
// DynamoDB store: what every store must do is in `shared/conformance` (`tests/conformance.rs`);
// here, what only this one has: items, indexes, counters, TTLs and the requests they cost.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_idempotency_key_carries_a_ttl_in_epoch_seconds() {
    let db = table().await;
    assert_eq!(db.store.claim_idempotency_key("k", id(1), t(0), t(200)).await.unwrap(), IdempotencyClaim::Claimed);
    let item = item(&db, "IDEM#k".into(), "-").await;
    let ttl = item.get("expires_at").and_then(|v| v.as_n().ok()).expect("TTL attribute");
    assert_eq!(ttl, &t(200).timestamp().to_string(), "TTL in epoch seconds");
}

/// The open-lead counters are items of their own, moved by each write; after every conformance
/// scenario that moves them they must say what the lead items say.
#[tokio::test]
async fn the_load_counters_agree_with_the_lead_items_after_every_kind_of_write() {
    use leadflow_conformance::{assignments, leads};
    for scenario in 0..3 {
        let db = table().await;
        match scenario {
            0 => assignments::an_assignment_moves_lead_cursor_and_load_together_or_not_at_all(&db.store).await,
            1 => assignments::rep_loads_follow_assignments_status_changes_and_redeliveries(&db.store).await,
            _ => leads::erasure_replaces_the_lead_and_deletes_its_key_and_activities(&db.store).await,
        }
        let counted = db.store.rep_loads().await.unwrap();
        assert_eq!(counted, true_loads(&db.client, &db.name).await, "scenario {scenario}");
    }
}

#[tokio::test]
async fn a_change_of_open_owner_costs_a_transaction_and_any_other_lead_update_one_update() {
    let db = table().await;
    let store = &db.store;
    store.create_lead(&owned_by(lead(1, "p1@example.com"), "rep-1"), &[]).await.unwrap();
    // Won: the first guess (owner unchanged) misses, so a failed update and then the transaction.
    let mut won = store.get_lead(id(1)).await.unwrap().unwrap();
    won.status = SalesStatus::Won;
    db.requests.take();
    assert_eq!(store.update_lead(&won, won.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["UpdateItem", "TransactWriteItems"]);
    assert_eq!(store.update_lead(&won, won.version, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(db.requests.take(), ["UpdateItem"], "redelivered");
    let mut rescored = store.get_lead(id(1)).await.unwrap().unwrap();
    rescored.submissions += 1;
    db.requests.take();
    assert_eq!(store.update_lead(&rescored, rescored.version, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(db.requests.take(), ["UpdateItem"], "no owner change: one plain conditional update");
    // Re-routed: the old guess misses, then the transaction that moves the count.
    let mut reopened = store.get_lead(id(1)).await.unwrap().unwrap();
    reopened.status = SalesStatus::Contacted;
    store.update_lead(&reopened, reopened.version, &[]).await.unwrap();
    let before = store.get_lead(id(1)).await.unwrap().unwrap();
    let reroute = AssignmentWrite {
        lead: owned_by(before.clone(), "rep-2"),
        expected_lead_version: before.version,
        team_cursor: None,
        trail: Vec::new(),
        claim: None,
    };
    db.requests.take();
    assert_eq!(store.assign(&reroute).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(db.requests.take(), ["TransactWriteItems", "TransactWriteItems"]);
}

#[tokio::test]
async fn the_due_index_attributes_are_set_only_on_what_is_due_indexed() {
    let db = table().await;
    let store = &db.store;
    let mut owned = owned_by(lead(1, "p1@example.com"), "rep-1");
    if let Some(o) = owned.owner.as_mut() {
        o.sla_due_at = t(100);
    }
    store.create_lead(&owned, &[]).await.unwrap();
    let mut invalid = owned_by(lead(7, "bad"), "rep-2");
    invalid.validity = Validity::Invalid { reasons: Vec::new() };
    store.create_lead(&invalid, &[]).await.unwrap();
    store.create_lead(&lead(8, "unowned@example.com"), &[]).await.unwrap();
    let (pk, sk) = index_attributes(&db, id(1), "PROFILE").await;
    assert_eq!(pk, Some(format!("SLA#{}", due_shard(id(1)))));
    assert_eq!(sk, Some(format!("{:015}#{}", t(100).timestamp_millis(), id(1))));
    assert_eq!(index_attributes(&db, id(8), "PROFILE").await, (None, None), "an unowned lead is not indexed");
    assert_eq!(index_attributes(&db, id(7), "PROFILE").await, (None, None), "an invalid lead is not indexed");
    let mut contacted = store.get_lead(id(1)).await.unwrap().unwrap();
    contacted.status = SalesStatus::Contacted;
    store.update_lead(&contacted, contacted.version, &[]).await.unwrap();
    assert_eq!(index_attributes(&db, id(1), "PROFILE").await, (None, None), "a met SLA leaves the index");

    let mut e = enrollment(2, "c", Some(t(10)), EnrollmentState::Active);
    store.enroll(&e, &[]).await.unwrap();
    assert!(index_attributes(&db, id(2), "ENR#c").await.0.is_some());
    e.state = EnrollmentState::Stopped { reason: "bounced".into() };
    store.update_enrollment(&e, 0, &[]).await.unwrap();
    assert_eq!(index_attributes(&db, id(2), "ENR#c").await, (None, None), "a stopped enrollment leaves it");
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
    assert_eq!(r.take(), ["TransactWriteItems"], "create_lead, invalid and unowned (the alias is checked)");

    let mut l = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!(r.take(), ["GetItem"], "get_lead");
    l.submissions = 2;
    store.update_lead(&l, 0, &[]).await.unwrap();
    assert_eq!(r.take(), ["UpdateItem"], "update_lead");
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
    assert!(store.lead_and_trail(id(1)).await.unwrap().is_some());
    assert_eq!(r.take(), ["Query"], "lead_and_trail: the lead item is in the trail's Query");
    store.team_cursor("emea").await.unwrap();
    assert_eq!(r.take(), ["GetItem", "GetItem"], "team_cursor, with none yet: its place, then the place before 12-03");
    store.rep_loads().await.unwrap();
    assert_eq!(r.take(), ["Query"], "rep_loads");
    let write = AssignmentWrite {
        lead: owned_by(l.clone(), "rep-1"),
        expected_lead_version: 1,
        team_cursor: Some(("emea".into(), TeamCursor::default())),
        trail: Vec::new(),
        claim: None,
    };
    store.assign(&write).await.unwrap();
    assert_eq!(r.take(), ["TransactWriteItems"], "assign");
    assert_eq!(store.routing_state(Some("emea")).await.unwrap().0.version, 1);
    assert_eq!(r.take(), ["Query"], "routing_state: the cursor and the loads in one partition");
    store.claim_effect(id(1), "e", t(0), t(30)).await.unwrap();
    store.claim_effect(id(1), "e", t(1), t(31)).await.unwrap();
    assert_eq!(
        r.take(),
        ["PutItem", "PutItem", "GetItem"],
        "claim_effect: the second reads the record it did not find"
    );
    store.finish_effect(id(1), "e", "d", &[]).await.unwrap();
    assert_eq!(r.take(), ["PutItem"], "finish_effect");
    store.release_effect("e", t(30)).await.unwrap();
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
    store.erase_lead(&tombstone(&stored, t(500)), Some(&email_key("ada@example.com"))).await.unwrap();
    assert_eq!(r.take(), ["GetItem", "TransactWriteItems", "Query", "BatchWriteItem"], "erase_lead");
}

#[tokio::test]
async fn suppression_items_hold_email_keys_never_addresses() {
    let db = table().await;
    let key = email_key("ada@example.com");
    let entry =
        Suppression { email_key: key.clone(), reason: SuppressionReason::Unsubscribed, at: t(1), lead_id: None };
    assert!(db.store.suppress(&entry, &[]).await.unwrap());
    let text = format!("{:?}", db.client.scan().table_name(&db.name).send().await.unwrap().items());
    assert!(text.contains(&format!("SUPPRESS#{key}")) && !text.contains("ada@"), "{text}");
}

/// SQLite and the in-memory fake store a document named "" (a key may not be empty here).
#[tokio::test]
async fn a_document_needs_a_name() {
    let db = table().await;
    assert!(db.store.put_document(&doc("", 1, "{}")).await.is_err());
    assert_eq!(db.store.document("", None).await.unwrap(), None);
}

/// Cursors are the scan's last key, hex-encoded: whatever else decodes is refused as such.
#[tokio::test]
async fn a_forged_scan_cursor_is_corrupt_and_says_so() {
    let db = table().await;
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for bad in [
        hex("{}"),
        hex(r#"{"PK":"LEAD#x"}"#),
        hex(r#"{"PK":"LEAD#x","SK":""}"#),
        hex(r#"{"PK":"LEAD#x","SK":"PROFILE","X":"y"}"#),
        hex("[1, 2]"),
    ] {
        for answer in [
            db.store.list_leads(Some(bad.clone()), 10).await.map(|_| ()),
            db.store.campaign_enrollments("welcome", Some(bad.clone()), 3).await.map(|_| ()),
        ] {
            match answer {
                Err(StoreError::Corrupt(message)) => assert!(message.contains("cursor"), "{message}"),
                other => panic!("cursor {bad:.40}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn erasure_deletes_in_batches_and_leaves_no_address() {
    let db = table().await;
    let store = &db.store;
    store.create_lead(&owned_by(lead(1, "ada@example.com"), "rep-1"), &[]).await.unwrap();
    store.create_lead(&owned_by(lead(2, "bob@example.com"), "rep-1"), &[]).await.unwrap();
    for n in 0..30 {
        store.record_activity(&opened(id(1), &format!("a{n:02}"))).await.unwrap();
    }
    let gone = tombstone(&store.get_lead(id(1)).await.unwrap().unwrap(), t(500));
    db.requests.take();
    store.erase_lead(&gone, Some(&email_key("ada@example.com"))).await.unwrap();
    assert_eq!(
        db.requests.take(),
        ["GetItem", "TransactWriteItems", "Query", "BatchWriteItem", "BatchWriteItem"],
        "30 activities in two batches"
    );
    let text = format!("{:?}", db.client.scan().table_name(&db.name).send().await.unwrap().items());
    assert!(!text.contains("ada@example.com"), "the address is gone from the table: {text}");
    assert_eq!(index_attributes(&db, id(1), "PROFILE").await, (None, None));
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

/// A deployment from before 12-03 kept each team's cursor in an item of its own
/// (`TEAM#<id>`, `CURSOR`); after the upgrade routing goes on from that cursor, moves it beside
/// the rep loads with the next assignment, and a writer still holding the old version loses.
#[tokio::test]
async fn a_team_cursor_kept_where_versions_before_12_03_kept_it_is_carried_on() {
    let tbl = table().await;
    let store = &tbl.store;
    let before =
        TeamCursor { credit: BTreeMap::from([("rep-1".to_string(), -2), ("rep-2".to_string(), 2)]), version: 0 };
    tbl.client
        .put_item()
        .table_name(&tbl.name)
        .item("PK", AttributeValue::S("TEAM#emea".into()))
        .item("SK", AttributeValue::S("CURSOR".into()))
        .item("doc", AttributeValue::S(serde_json::to_string(&before).expect("json")))
        .item("version", AttributeValue::N("3".into()))
        .send()
        .await
        .expect("the old cursor item");
    let old = TeamCursor { version: 3, ..before.clone() };
    assert_eq!(store.team_cursor("emea").await.expect("cursor"), old);
    assert_eq!(store.routing_state(Some("emea")).await.expect("routing state").0, old);

    for n in [1, 2] {
        assert_eq!(
            store.create_lead(&lead(n, &format!("l{n}@example.com")), &[]).await.ok(),
            Some(CreateOutcome::Created)
        );
    }
    let next =
        TeamCursor { credit: BTreeMap::from([("rep-1".to_string(), 1), ("rep-2".to_string(), -1)]), ..old.clone() };
    let write = |n, cursor: &TeamCursor| AssignmentWrite {
        lead: owned_by(lead(n, &format!("l{n}@example.com")), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), cursor.clone())),
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write(1, &next)).await.ok(), Some(AssignOutcome::Assigned));
    let moved = TeamCursor { version: 4, ..next.clone() };
    assert_eq!(store.team_cursor("emea").await.expect("cursor"), moved);
    assert_eq!(store.routing_state(Some("emea")).await.expect("routing state").0, moved);
    // Routed from the cursor as it was before lead 1 took its turn: stale.
    assert_eq!(store.assign(&write(2, &next)).await.ok(), Some(AssignOutcome::Conflict));
    assert_eq!(store.rep_loads().await.expect("loads"), BTreeMap::from([("rep-1".to_string(), 1)]));
}

/// Effects claimed before 2026-12-05 kept their `done` state in the claim item itself; a
/// redelivery after the upgrade must still find them done, and one whose claimant died is taken
/// over as before.
#[tokio::test]
async fn effects_claimed_and_finished_where_versions_before_12_05_kept_them_stay_done() {
    let tbl = table().await;
    let store = &tbl.store;
    let old_claim = |key: &str, state: &str, lease: i64, detail: Option<&str>| {
        let mut put = tbl
            .client
            .put_item()
            .table_name(&tbl.name)
            .item("PK", AttributeValue::S(format!("EFFECT#{key}")))
            .item("SK", AttributeValue::S("-".into()))
            .item("state", AttributeValue::S(state.into()))
            .item("lease_until", AttributeValue::N(lease.to_string()));
        if let Some(detail) = detail {
            put = put.item("detail", AttributeValue::S(detail.into()));
        }
        put.send()
    };
    old_claim("email:sent-before", "done", 0, Some("m-old")).await.expect("the old finished claim");
    old_claim("email:died-before", "claimed", t(30).timestamp_millis(), None).await.expect("the old live claim");

    let claim = |key: &'static str, now: i64| store.claim_effect(id(1), key, t(now), t(now + 120));
    assert_eq!(claim("email:sent-before", 500).await.ok(), Some(EffectClaim::Done("m-old".into())));
    assert_eq!(claim("email:died-before", 10).await.ok(), Some(EffectClaim::Busy));
    assert_eq!(claim("email:died-before", 31).await.ok(), Some(EffectClaim::Claimed), "after its lease");
    assert!(store.finish_effect(id(1), "email:died-before", "m-new", &[]).await.is_ok());
    assert_eq!(claim("email:died-before", 32).await.ok(), Some(EffectClaim::Done("m-new".into())));
}
