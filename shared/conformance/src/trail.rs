//! Trails: a lead's activities are keyed by lead and id, and a write that changes something
//! stores the entries that tell it in the same transaction, or not at all.

use chrono::{DateTime, Utc};
use leadflow_core::model::{
    Activity, ActivityKind, EnrollmentState, Lead, LeadId, Lifecycle, Suppression, SuppressionReason,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, CreateOutcome, EffectClaim, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{enrollment, id, lead, owned_by, t};

fn entry(lead: LeadId, id: &str, at: DateTime<Utc>) -> Activity {
    Activity {
        id: id.to_string(),
        lead_id: lead,
        at,
        kind: ActivityKind::StageChanged { from: Lifecycle::Lead, to: Lifecycle::Mql },
    }
}

fn sent(lead: LeadId, id: &str, message_id: &str) -> Activity {
    Activity {
        id: id.to_string(),
        lead_id: lead,
        at: t(5),
        kind: ActivityKind::EmailSent {
            email: "assignment".into(),
            message_id: message_id.into(),
            subject: "New lead".into(),
        },
    }
}

async fn ids<S: LeadStore>(store: &S, lead: LeadId) -> Vec<String> {
    match store.activities(lead).await {
        Ok(trail) => trail.into_iter().map(|a| a.id).collect(),
        Err(e) => panic!("the trail of {lead} cannot be read: {e}"),
    }
}

async fn created<S: LeadStore>(store: &S, l: &Lead) {
    assert_eq!(store.create_lead(l, &[]).await.ok(), Some(CreateOutcome::Created));
}

pub async fn activity_ids_are_unique_per_lead_and_the_first_is_kept<S: LeadStore>(store: &S) {
    let (a, b) = (lead(1, "a@x.example"), lead(2, "b@x.example"));
    created(store, &a).await;
    created(store, &b).await;
    // The same id on two leads: both are kept (`stage-mql` is every qualified lead's).
    for l in [a.id, b.id] {
        assert!(store.record_activity(&entry(l, "stage-mql", t(1))).await.is_ok());
    }
    assert_eq!(ids(store, a.id).await, ["stage-mql"]);
    assert_eq!(ids(store, b.id).await, ["stage-mql"]);
    // A repeat on one lead (a redelivered event) is stored once, as first recorded.
    assert!(store.record_activity(&entry(a.id, "stage-mql", t(9))).await.is_ok());
    let trail = store.activities(a.id).await.unwrap_or_default();
    assert_eq!(trail.iter().map(|x| x.at).collect::<Vec<_>>(), [t(1)]);
    // Oldest first, whatever order they came in.
    assert!(store.record_activity(&entry(a.id, "z-earlier", t(0))).await.is_ok());
    assert_eq!(ids(store, a.id).await, ["z-earlier", "stage-mql"]);
    // At the same instant, by id.
    for name in ["b-same", "a-same"] {
        assert!(store.record_activity(&entry(a.id, name, t(3))).await.is_ok());
    }
    assert_eq!(ids(store, a.id).await, ["z-earlier", "stage-mql", "a-same", "b-same"]);
    assert_eq!(ids(store, id(3)).await, Vec::<String>::new(), "a lead without activities");
}

pub async fn a_created_lead_has_its_trail_and_a_refused_create_writes_none<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    let trail = [entry(a.id, "submission-1", t(0)), entry(a.id, "validation-failed", t(0))];
    assert_eq!(store.create_lead(&a, &trail).await.ok(), Some(CreateOutcome::Created));
    assert_eq!(ids(store, a.id).await, ["submission-1", "validation-failed"]);
    // Redelivered: nothing more.
    assert_eq!(store.create_lead(&a, &[entry(a.id, "again", t(1))]).await.ok(), Some(CreateOutcome::AlreadyExists));
    // Another lead with the address: neither the lead nor its trail is stored.
    let same = lead(2, "a@x.example");
    assert_eq!(
        store.create_lead(&same, &[entry(same.id, "submission-2", t(1))]).await.ok(),
        Some(CreateOutcome::EmailTaken(a.id))
    );
    assert_eq!(ids(store, a.id).await, ["submission-1", "validation-failed"]);
    assert_eq!(ids(store, same.id).await, Vec::<String>::new());
}

pub async fn many_trails_are_read_in_the_order_asked_each_oldest_first<S: LeadStore>(store: &S) {
    let (a, b) = (lead(1, "a@x.example"), lead(2, "b@x.example"));
    created(store, &a).await;
    created(store, &b).await;
    for (l, name, at) in [(a.id, "a-late", t(5)), (b.id, "b-only", t(1)), (a.id, "a-early", t(0))] {
        assert!(store.record_activity(&entry(l, name, at)).await.is_ok());
    }
    let unknown = id(99);
    let trails = match store.trails(&[b.id, unknown, a.id, b.id]).await {
        Ok(trails) => trails,
        Err(e) => panic!("the trails cannot be read: {e}"),
    };
    let names: Vec<Vec<&str>> = trails.iter().map(|t| t.iter().map(|x| x.id.as_str()).collect()).collect();
    assert_eq!(names, [vec!["b-only"], vec![], vec!["a-early", "a-late"], vec!["b-only"]]);
    assert_eq!(store.trails(&[]).await.ok(), Some(vec![]));
}

pub async fn an_update_writes_its_trail_only_when_it_is_written<S: LeadStore>(store: &S) {
    let mut a = lead(1, "a@x.example");
    created(store, &a).await;
    a.lifecycle = Lifecycle::Mql;
    assert_eq!(store.update_lead(&a, 0, &[entry(a.id, "stage-mql", t(1))]).await.ok(), Some(WriteOutcome::Written));
    // Based on a stale version: refused, and its entry with it.
    assert_eq!(
        store.update_lead(&a, 0, &[entry(a.id, "stage-sql", t(2))]).await.ok(),
        Some(WriteOutcome::VersionConflict)
    );
    assert_eq!(ids(store, a.id).await, ["stage-mql"]);
    assert_eq!(store.get_lead(a.id).await.ok().flatten().map(|l| (l.version, l.lifecycle)), Some((1, Lifecycle::Mql)));
}

pub async fn an_assignment_writes_its_trail_only_when_it_is_made<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    created(store, &a).await;
    let write = |rep: &str, at| AssignmentWrite {
        lead: owned_by(a.clone(), rep),
        expected_lead_version: 0,
        team_cursor: None,
        trail: vec![entry(a.id, &format!("assigned-{rep}"), at)],
        claim: None,
    };
    assert_eq!(store.assign(&write("ben", t(1))).await.ok(), Some(AssignOutcome::Assigned));
    // A second worker that read the same version loses, and leaves no entry.
    assert_eq!(store.assign(&write("ana", t(2))).await.ok(), Some(AssignOutcome::Conflict));
    assert_eq!(ids(store, a.id).await, ["assigned-ben"]);
    let owner = store.get_lead(a.id).await.ok().flatten().and_then(|l| l.owner).map(|o| o.rep_id);
    assert_eq!(owner.as_deref(), Some("ben"));
}

pub async fn a_finished_effect_has_its_trail_and_a_second_finish_replaces_it<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    created(store, &a).await;
    let key = "email:assignment-1-ben";
    assert_eq!(store.claim_effect(a.id, key, t(0), t(120)).await.ok(), Some(EffectClaim::Claimed));
    assert!(store.finish_effect(a.id, key, "m-1", &[sent(a.id, "sent-assignment", "m-1")]).await.is_ok());
    assert_eq!(store.claim_effect(a.id, key, t(1), t(121)).await.ok(), Some(EffectClaim::Done("m-1".into())));
    assert_eq!(ids(store, a.id).await, ["sent-assignment"]);
    // Sent again after the first claimant's lease ran out: the trail tells the last send, once.
    assert!(store.finish_effect(a.id, key, "m-2", &[sent(a.id, "sent-assignment", "m-2")]).await.is_ok());
    let trail = store.activities(a.id).await.unwrap_or_default();
    assert_eq!(trail.len(), 1);
    assert!(matches!(&trail[0].kind, ActivityKind::EmailSent { message_id, .. } if message_id == "m-2"), "{trail:?}");
}

pub async fn an_enrollment_writes_its_trail_only_when_created<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    created(store, &a).await;
    let e = enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active);
    assert_eq!(store.enroll(&e, &[entry(id(1), "enrolled-welcome", t(1))]).await.ok(), Some(true));
    assert_eq!(store.enroll(&e, &[entry(id(1), "enrolled-again", t(2))]).await.ok(), Some(false));
    assert_eq!(ids(store, id(1)).await, ["enrolled-welcome"]);
}

pub async fn an_enrollment_update_writes_its_trail_only_when_written<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    created(store, &a).await;
    let e = enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active);
    assert_eq!(store.enroll(&e, &[]).await.ok(), Some(true));
    let ended = leadflow_core::model::Enrollment { state: EnrollmentState::Completed, next_due_at: None, ..e.clone() };
    let trail = [entry(id(1), "enrollment-ended-welcome", t(11))];
    assert_eq!(store.update_enrollment(&ended, 0, &trail).await.ok(), Some(WriteOutcome::Written));
    let late = [entry(id(1), "enrollment-ended-late", t(12))];
    assert_eq!(store.update_enrollment(&ended, 0, &late).await.ok(), Some(WriteOutcome::VersionConflict));
    assert_eq!(ids(store, id(1)).await, ["enrollment-ended-welcome"]);
    let due = store.due_enrollments(t(100), 10).await.unwrap_or_default();
    assert!(due.is_empty(), "an ended enrollment is never due: {due:?}");
}

pub async fn a_suppression_writes_its_trail_whether_or_not_the_address_was_new<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    created(store, &a).await;
    let key = email_key(&a.contact.email);
    let entry_of = |reason, secs| Suppression { email_key: key.clone(), reason, at: t(secs), lead_id: Some(a.id) };
    let bounced = [entry(a.id, "ses-bounce", t(1))];
    assert_eq!(store.suppress(&entry_of(SuppressionReason::Bounced, 1), &bounced).await.ok(), Some(true));
    // The person unsubscribes later: the list keeps the first reason, the trail tells both.
    let unsubscribed = [entry(a.id, "unsubscribed", t(2))];
    assert_eq!(store.suppress(&entry_of(SuppressionReason::Unsubscribed, 2), &unsubscribed).await.ok(), Some(false));
    assert_eq!(ids(store, a.id).await, ["ses-bounce", "unsubscribed"]);
    // The same opt-out again (a replayed one-click): the trail keeps the first telling of it.
    let replay = [entry(a.id, "unsubscribed", t(3))];
    assert_eq!(store.suppress(&entry_of(SuppressionReason::Unsubscribed, 3), &replay).await.ok(), Some(false));
    let trail = store.activities(a.id).await.unwrap_or_default();
    assert_eq!(trail.iter().map(|x| x.at).collect::<Vec<_>>(), [t(1), t(2)]);
    let kept = store.suppression(&key).await.ok().flatten().map(|s| s.reason);
    assert_eq!(kept, Some(SuppressionReason::Bounced));
}

pub async fn a_lead_and_its_trail_read_together_as_they_read_apart<S: LeadStore>(store: &S) {
    let a = lead(1, "a@x.example");
    assert_eq!(store.create_lead(&a, &[entry(a.id, "submission-1", t(0))]).await.ok(), Some(CreateOutcome::Created));
    let scored = Lead { lifecycle: Lifecycle::Mql, version: 1, ..a.clone() };
    assert_eq!(
        store.update_lead(&scored, 0, &[entry(a.id, "stage-mql", t(1))]).await.ok(),
        Some(WriteOutcome::Written)
    );
    assert!(store.record_activity(&sent(a.id, "sent-welcome", "m-1")).await.is_ok());
    let e = enrollment(1, "welcome", Some(t(10)), EnrollmentState::Active);
    assert_eq!(store.enroll(&e, &[entry(a.id, "enrolled-welcome", t(2))]).await.ok(), Some(true));
    let together = match store.lead_and_trail(a.id).await {
        Ok(Some(both)) => both,
        other => panic!("the lead and its trail: {other:?}"),
    };
    let apart = (store.get_lead(a.id).await.ok().flatten(), store.activities(a.id).await.ok());
    assert_eq!((Some(together.0.clone()), Some(together.1.clone())), apart);
    assert_eq!(together.0.version, 1);
    let names: Vec<&str> = together.1.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(names, ["submission-1", "stage-mql", "enrolled-welcome", "sent-welcome"]);
    assert_eq!(store.lead_and_trail(id(2)).await.ok(), Some(None), "no lead, nothing");
    // A merged submission's alias is no lead of its own.
    assert_eq!(store.record_alias(id(3), a.id).await.ok(), Some(true));
    assert_eq!(store.lead_and_trail(id(3)).await.ok(), Some(None));
}
