mod common;

use std::collections::BTreeMap;

use common::{enrollment, id, lead, owned_by, t};
use leadflow_core::FieldProblem;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, LeadId, SalesStatus, TeamCursor, Validity};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, IdempotencyClaim, LeadStore, WriteOutcome,
};
use leadflow_local::SqliteStore;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("data").join("leadflow.db")).expect("open store");
    (dir, store)
}

#[tokio::test]
async fn a_redelivered_create_is_already_exists_and_a_second_lead_with_the_email_is_email_taken() {
    let (_dir, store) = open();
    let first = lead(1, "ada@example.com");
    assert_eq!(store.create_lead(&first, &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_lead(&first, &[]).await.unwrap(), CreateOutcome::AlreadyExists);

    let same_person = lead(2, "ada@example.com");
    assert_eq!(store.create_lead(&same_person, &[]).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(store.get_lead(id(2)).await.unwrap(), None, "a lead whose email is taken is not stored");
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), Some(id(1)));
    assert_eq!(store.count_leads().unwrap(), 1);

    let stored = store.get_lead(id(1)).await.unwrap().expect("stored lead");
    assert_eq!(stored, first);
}

#[tokio::test]
async fn invalid_leads_are_kept_without_claiming_their_email() {
    let (_dir, store) = open();
    let mut invalid = lead(1, "ada@example.com");
    invalid.validity =
        Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Consent is required.")] };
    assert_eq!(store.create_lead(&invalid, &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), None);
    // The valid resubmission gets the email.
    assert_eq!(store.create_lead(&lead(2, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.find_by_email_key(&email_key("ada@example.com")).await.unwrap(), Some(id(2)));
}

#[tokio::test]
async fn updates_are_conditional_on_the_version_read() {
    let (_dir, store) = open();
    let mut l = lead(1, "ada@example.com");
    store.create_lead(&l, &[]).await.unwrap();

    l.submissions = 2;
    assert_eq!(store.update_lead(&l, 0, &[]).await.unwrap(), WriteOutcome::Written);
    let stored = store.get_lead(id(1)).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.submissions), (1, 2));

    // A writer that read version 0 too has lost the race.
    l.submissions = 99;
    assert_eq!(store.update_lead(&l, 0, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().submissions, 2);

    assert_eq!(
        store.update_lead(&lead(7, "x@example.com"), 0, &[]).await.unwrap(),
        WriteOutcome::VersionConflict,
        "missing lead"
    );
}

#[tokio::test]
async fn idempotency_keys_bind_until_they_expire() {
    let (_dir, store) = open();
    assert_eq!(store.claim_idempotency_key("k", id(1), t(0), t(100)).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim_idempotency_key("k", id(2), t(50), t(150)).await.unwrap(), IdempotencyClaim::Seen(id(1)));
    assert_eq!(store.claim_idempotency_key("k", id(3), t(101), t(200)).await.unwrap(), IdempotencyClaim::Claimed);
    assert_eq!(store.claim_idempotency_key("k", id(4), t(102), t(300)).await.unwrap(), IdempotencyClaim::Seen(id(3)));
}

#[tokio::test]
async fn aliases_resolve_to_the_lead_merged_into() {
    let (_dir, store) = open();
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    assert!(store.record_alias(id(2), id(1)).await.unwrap());
    assert!(!store.record_alias(id(2), id(1)).await.unwrap(), "recorded already");
    assert_eq!(store.resolve_lead(id(1)).await.unwrap(), Some(id(1)));
    assert_eq!(store.resolve_lead(id(2)).await.unwrap(), Some(id(1)));
    assert_eq!(store.resolve_lead(id(3)).await.unwrap(), None);
}

#[tokio::test]
async fn activities_are_stored_once_and_read_oldest_first() {
    let (_dir, store) = open();
    let act = |aid: &str, secs| Activity {
        id: aid.to_string(),
        lead_id: id(1),
        at: t(secs),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    };
    store.record_activity(&act("late", 30)).await.unwrap();
    store.record_activity(&act("b-early", 10)).await.unwrap();
    store.record_activity(&act("a-early", 10)).await.unwrap();
    store.record_activity(&act("late", 99)).await.unwrap(); // same id: ignored
    let other = Activity { lead_id: id(2), ..act("other", 0) };
    store.record_activity(&other).await.unwrap();

    let got: Vec<_> = store.activities(id(1)).await.unwrap().into_iter().map(|a| (a.id, a.at)).collect();
    assert_eq!(got, vec![("a-early".into(), t(10)), ("b-early".into(), t(10)), ("late".into(), t(30))]);
}

#[tokio::test]
async fn assign_moves_lead_and_cursor_together_or_not_at_all() {
    let (_dir, store) = open();
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
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    let stored_cursor = store.team_cursor("emea").await.unwrap();
    assert_eq!(stored_cursor, TeamCursor { version: 1, ..advanced.clone() });
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap().version, 1);
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 1)]));

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
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 1)]));

    // A stale lead version with a fresh cursor conflicts too, and leaves the cursor alone.
    let stale_lead = AssignmentWrite {
        lead: owned_by(lead(1, "a@example.com"), "rep-2"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), stored_cursor.clone())),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&stale_lead).await.unwrap(), AssignOutcome::Conflict);
    assert_eq!(store.team_cursor("emea").await.unwrap(), stored_cursor);

    // Fresh on both counts: assigned.
    let fresh = AssignmentWrite {
        lead: owned_by(lead(2, "b@example.com"), "rep-2"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), stored_cursor)),
        trail: Vec::new(),
    };
    assert_eq!(store.assign(&fresh).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.team_cursor("emea").await.unwrap().version, 2);
}

#[tokio::test]
async fn rep_loads_count_open_owned_leads_and_follow_status_changes() {
    let (_dir, store) = open();
    for (n, rep) in [(1, "rep-1"), (2, "rep-1"), (3, "rep-2")] {
        let l = owned_by(lead(n, &format!("p{n}@example.com")), rep);
        store.create_lead(&l, &[]).await.unwrap();
    }
    store.create_lead(&lead(4, "unowned@example.com"), &[]).await.unwrap();
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".into(), 2), ("rep-2".into(), 1)]));

    let mut won = store.get_lead(id(1)).await.unwrap().unwrap();
    won.status = SalesStatus::Won;
    assert_eq!(store.update_lead(&won, won.version, &[]).await.unwrap(), WriteOutcome::Written);
    let mut lost = store.get_lead(id(3)).await.unwrap().unwrap();
    lost.status = SalesStatus::Lost;
    store.update_lead(&lost, lost.version, &[]).await.unwrap();
    let mut contacted = store.get_lead(id(2)).await.unwrap().unwrap();
    contacted.status = SalesStatus::Contacted;
    store.update_lead(&contacted, contacted.version, &[]).await.unwrap();

    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".into(), 1)]));
}

#[tokio::test]
async fn effects_are_claimed_once_busy_while_leased_taken_over_after_and_remembered_when_done() {
    let (_dir, store) = open();
    let key = "email:assignment-1";
    assert_eq!(store.claim_effect(key, t(0), t(30)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(key, t(10), t(40)).await.unwrap(), EffectClaim::Busy);
    // The first claimant died: after its lease another takes over.
    assert_eq!(store.claim_effect(key, t(31), t(61)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect(key, t(32), t(62)).await.unwrap(), EffectClaim::Busy);
    store.finish_effect(key, "msg-1@leadflow.local", &[]).await.unwrap();
    assert_eq!(
        store.claim_effect(key, t(1000), t(1030)).await.unwrap(),
        EffectClaim::Done("msg-1@leadflow.local".into())
    );
    // Releasing a finished effect does not forget it.
    store.release_effect(key).await.unwrap();
    assert_eq!(
        store.claim_effect(key, t(1000), t(1030)).await.unwrap(),
        EffectClaim::Done("msg-1@leadflow.local".into())
    );

    // A failed attempt gives its claim back: the retry need not wait for the lease.
    assert_eq!(store.claim_effect("other", t(0), t(30)).await.unwrap(), EffectClaim::Claimed);
    store.release_effect("other").await.unwrap();
    assert_eq!(store.claim_effect("other", t(1), t(31)).await.unwrap(), EffectClaim::Claimed);
}

#[tokio::test]
async fn enrollments_are_created_once_and_updated_conditionally() {
    let (_dir, store) = open();
    let e = enrollment(1, "welcome", Some(t(100)), EnrollmentState::Active);
    assert!(store.enroll(&e, &[]).await.unwrap());
    assert!(!store.enroll(&e, &[]).await.unwrap(), "enrolled already");
    assert!(store.enroll(&enrollment(1, "webinar", Some(t(100)), EnrollmentState::Active), &[]).await.unwrap());
    let campaigns: Vec<_> = store.enrollments(id(1)).await.unwrap().into_iter().map(|e| e.campaign_id).collect();
    assert_eq!(campaigns, vec!["webinar".to_string(), "welcome".to_string()]);

    let next = leadflow_core::model::Enrollment { next_step: 1, next_due_at: Some(t(200)), ..e.clone() };
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.unwrap(), WriteOutcome::Written);
    assert_eq!(store.update_enrollment(&next, 0, &[]).await.unwrap(), WriteOutcome::VersionConflict);
    let stored = store.enrollments(id(1)).await.unwrap().into_iter().find(|e| e.campaign_id == "welcome").unwrap();
    assert_eq!((stored.version, stored.next_step, stored.next_due_at), (1, 1, Some(t(200))));
}

#[tokio::test]
async fn due_enrollments_are_the_active_due_ones_oldest_due_first() {
    let (_dir, store) = open();
    store.enroll(&enrollment(1, "c", Some(t(30)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(2, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(3, "c", Some(t(20)), EnrollmentState::Active), &[]).await.unwrap();
    store.enroll(&enrollment(4, "c", Some(t(500)), EnrollmentState::Active), &[]).await.unwrap(); // not due yet
    store
        .enroll(&enrollment(5, "c", Some(t(5)), EnrollmentState::Stopped { reason: "unsubscribed".into() }), &[])
        .await
        .unwrap();
    store.enroll(&enrollment(6, "c", Some(t(5)), EnrollmentState::Completed), &[]).await.unwrap();
    store.enroll(&enrollment(7, "c", None, EnrollmentState::Active), &[]).await.unwrap();

    assert_eq!(due_ids(&store, 10).await, vec![id(2), id(3), id(1)]);
    assert_eq!(due_ids(&store, 2).await, vec![id(2), id(3)]);

    // Stopping an enrollment takes it out of the scan even though its document keeps a time.
    let mut stopping = store.enrollments(id(2)).await.unwrap().remove(0);
    stopping.state = EnrollmentState::Stopped { reason: "bounced".into() };
    store.update_enrollment(&stopping, stopping.version, &[]).await.unwrap();
    assert_eq!(due_ids(&store, 10).await, vec![id(3), id(1)]);
}

async fn due_ids(store: &SqliteStore, limit: usize) -> Vec<LeadId> {
    store.due_enrollments(t(100), limit).await.unwrap().into_iter().map(|e| e.lead_id).collect()
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
        store.claim_effect("e", t(0), t(30)).await.unwrap();
        store.finish_effect("e", "done-detail", &[]).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.count_leads().unwrap(), 1);
    assert_eq!(store.get_lead(id(1)).await.unwrap().unwrap(), lead(1, "ada@example.com"));
    assert_eq!(store.resolve_lead(id(2)).await.unwrap(), Some(id(1)));
    assert_eq!(store.create_lead(&lead(3, "ada@example.com"), &[]).await.unwrap(), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(store.due_enrollments(t(10), 10).await.unwrap().len(), 1);
    assert_eq!(store.claim_effect("e", t(0), t(30)).await.unwrap(), EffectClaim::Done("done-detail".into()));
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
    assert_eq!(store.claim_effect("email:left-hanging", t(0), lease).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect("email:done", t(0), lease).await.unwrap(), EffectClaim::Claimed);
    store.finish_effect("email:done", "msg-1", &[]).await.unwrap();
    assert_eq!(store.claim_effect("email:left-hanging", t(1), t(121)).await.unwrap(), EffectClaim::Busy);
    assert_eq!(store.release_dead_claims().unwrap(), 1);
    assert_eq!(store.claim_effect("email:left-hanging", t(1), t(121)).await.unwrap(), EffectClaim::Claimed);
    assert_eq!(store.claim_effect("email:done", t(1), t(121)).await.unwrap(), EffectClaim::Done("msg-1".into()));
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
    assert_eq!(version, 4);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.activities(id(1)).await.unwrap().len(), 2, "opening again changes nothing");
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
