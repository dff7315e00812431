//! The stage handlers over in-memory fakes: every message delivered twice, races, retries.
//! One lead, one assignment, one email — whatever the queue does.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_app::BatchItem;
use leadflow_core::messages::ScoreMessage;
use leadflow_core::model::{EnrollmentState, LeadId, Lifecycle, Validity};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle, Stage, StageQueue, WriteOutcome};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

/// A Monday morning, so nothing depends on the day the tests run.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn ports() -> Arc<MemPorts> {
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(monday()),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    })
}

async fn post(ports: &Arc<MemPorts>, body: Value, idempotency_key: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::post("/leads").header("content-type", "application/json");
    if let Some(k) = idempotency_key {
        req = req.header("idempotency-key", k);
    }
    let req = req.body(Body::from(body.to_string())).unwrap_or_default();
    let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Delivers everything queued for `stage` `times` times over (a redelivering queue), and
/// answers how many deliveries failed.
async fn deliver(ports: &Arc<MemPorts>, stage: Stage, times: usize) -> usize {
    let bodies = ports.queue.drain(stage);
    let mut failures = 0;
    for _ in 0..times {
        failures += leadflow_tests::harness::deliver(&**ports, stage, &bodies).await.len();
    }
    failures
}

/// Runs the queued work through every stage, each message delivered `times` times.
async fn pipeline(ports: &Arc<MemPorts>, times: usize) -> usize {
    let mut failures = 0;
    for _ in 0..3 {
        for stage in Stage::ALL {
            failures += deliver(ports, stage, times).await;
        }
    }
    failures
}

fn ana() -> Value {
    json!({
        "email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
        "job_title": "CTO", "country": "DE", "phone": "+49 30 901820", "utm_source": "google"
    })
}

fn lead_id(body: &Value) -> LeadId {
    body["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

#[tokio::test]
async fn a_qualified_lead_is_assigned_once_when_every_message_is_delivered_three_times() {
    let ports = ports();
    let (status, body) = post(&ports, ana(), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = lead_id(&body);

    assert_eq!(pipeline(&ports, 3).await, 0);

    assert_eq!(ports.store.lead_count(), 1);
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead {id} not stored"));
    assert!(lead.lifecycle >= Lifecycle::Mql, "a CTO at a corporate domain in DE qualifies: {:?}", lead.score);
    let owner = lead.owner.as_ref().unwrap_or_else(|| panic!("lead not assigned"));
    assert!(["anna", "ben"].contains(&owner.rep_id.as_str()), "EMEA lead went to {}", owner.rep_id);
    assert!(owner.explanation.iter().any(|l| l.contains("EMEA")), "{:?}", owner.explanation);

    let sent = ports.mailer.sent();
    assert_eq!(sent.len(), 1, "exactly one assignment email: {sent:?}");
    let rep_email = if owner.rep_id == "anna" { "anna@acme.example" } else { "ben@acme.example" };
    assert_eq!(sent[0].to.email, rep_email);
    assert!(sent[0].text.contains("Ana Lima") && sent[0].text.contains("Acme"));
    assert!(sent[0].headers.iter().all(|(h, _)| !h.eq_ignore_ascii_case("List-Unsubscribe")));

    let events = ports.bus.events();
    // At least once, each copy under the one id consumers drop repeats by.
    let assigned: std::collections::BTreeSet<&str> =
        events.iter().filter(|e| e.detail_type == "lead.assigned").map(|e| e.id.as_str()).collect();
    assert_eq!(assigned.len(), 1, "{events:?}");
    let event_text = serde_json::to_string(&events).unwrap_or_default();
    assert!(!event_text.contains("ana@acme.io"), "events carry no personal data");

    // The score explains itself: the reasons add up to the total.
    let score = lead.score.unwrap_or_else(|| panic!("no score"));
    let sum: f64 = score.reasons.iter().map(|r| r.points).sum();
    assert!((sum - score.total).abs() < 1e-9);
    assert!(score.reasons.iter().any(|r| r.rule == "senior_title"));
}

#[tokio::test]
async fn a_repeat_submission_merges_into_the_existing_lead() {
    let ports = ports();
    let (_, first) = post(&ports, ana(), None).await;
    pipeline(&ports, 1).await;
    let mut again = ana();
    again["email"] = json!("  ANA@Acme.IO ");
    again["job_title"] = json!("Chief Technology Officer");
    let (status, second) = post(&ports, again, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "a known email gets the same answer as a new one");
    assert_ne!(lead_id(&first), lead_id(&second));
    assert_eq!(pipeline(&ports, 2).await, 0);

    assert_eq!(ports.store.lead_count(), 1, "one person, one lead");
    let first_id = lead_id(&first);
    assert_eq!(ports.store.resolve_lead(lead_id(&second)).await.ok().flatten(), Some(first_id));
    let lead = ports.store.get_lead(first_id).await.ok().flatten().unwrap_or_else(|| panic!("lead gone"));
    assert_eq!(lead.submissions, 2, "the merge counted once although delivered twice");
    assert_eq!(lead.contact.job_title.as_deref(), Some("CTO"), "a repeat does not rewrite the lead");
    let trail = ports.store.activities(first_id).await.unwrap_or_default();
    assert_eq!(trail.iter().filter(|a| a.kind.name() == "form_submission").count(), 2);
    assert_eq!(trail.iter().filter(|a| a.kind.name() == "changes_held").count(), 1, "held once for review");
    assert_eq!(ports.mailer.sent().len(), 1, "still one owner and one assignment email");
}

#[tokio::test]
async fn a_merged_submission_redriven_after_its_lead_was_erased_does_not_bring_the_person_back() {
    let ports = ports();
    let (_, first) = post(&ports, ana(), None).await;
    pipeline(&ports, 1).await;
    let (_, second) = post(&ports, ana(), None).await;
    let kept = ports.queue.drain(Stage::Validate);
    ports.queue.send(Stage::Validate, &kept).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&ports, 1).await;
    let first_id = lead_id(&first);
    assert_eq!(ports.store.resolve_lead(lead_id(&second)).await.ok().flatten(), Some(first_id), "merged");
    assert_eq!(ports.mailer.sent().len(), 1, "one assignment email");

    // The person asks to be forgotten; later the repeat's message comes back from a dead-letter
    // queue. Its address is free again, but its id stands for the erased lead.
    let erased = leadflow_app::erasure::erase(&*ports, first_id).await;
    assert!(matches!(erased, Ok(Some(_))), "{erased:?}");
    ports.queue.send(Stage::Validate, &kept).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&ports, 1).await;

    assert_eq!(ports.store.lead_count(), 1, "only the tombstone");
    assert_eq!(ports.store.get_lead(lead_id(&second)).await.ok(), Some(None), "no lead under the repeat's id");
    assert_eq!(ports.store.find_by_email_key(&email_key("ana@acme.io")).await.ok(), Some(None));
    // The erasure deleted the mailer's copy of the assignment email; nothing was sent since.
    assert_eq!(ports.mailer.sent(), [], "no email after the erasure");
}

#[tokio::test]
async fn an_idempotent_retry_is_one_lead_with_the_same_id() {
    let ports = ports();
    let (_, a) = post(&ports, ana(), Some("click-1")).await;
    let (_, b) = post(&ports, ana(), Some("click-1")).await;
    assert_eq!(lead_id(&a), lead_id(&b));
    pipeline(&ports, 1).await;
    assert_eq!(ports.store.lead_count(), 1);
    let lead = ports.store.get_lead(lead_id(&a)).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    assert_eq!(lead.submissions, 1, "a double click is not a repeat submission");
}

#[tokio::test]
async fn a_filled_honeypot_gets_the_normal_answer_and_stores_nothing() {
    let ports = ports();
    let mut bot = ana();
    bot["_gotcha"] = json!("http://spam.example");
    let (status, body) = post(&ports, bot, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(body["lead_id"].is_string());
    pipeline(&ports, 1).await;
    assert_eq!(ports.store.lead_count(), 0);
    assert!(ports.mailer.sent().is_empty());
}

#[tokio::test]
async fn a_disposable_address_is_kept_as_invalid_and_never_routed_or_emailed() {
    let ports = ports();
    let (status, body) =
        post(&ports, json!({"email": "x@mailinator.com", "job_title": "CEO", "country": "DE"}), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    pipeline(&ports, 2).await;
    let lead =
        ports.store.get_lead(lead_id(&body)).await.ok().flatten().unwrap_or_else(|| panic!("invalid lead not kept"));
    match &lead.validity {
        Validity::Invalid { reasons } => assert!(reasons.iter().any(|r| r.code == "disposable_email"), "{reasons:?}"),
        Validity::Valid => panic!("a disposable address must not be valid"),
    }
    assert!(lead.owner.is_none());
    assert!(ports.mailer.sent().is_empty());
}

#[tokio::test]
async fn weighted_round_robin_splits_a_bulk_of_emea_leads_evenly() {
    let ports = ports();
    for i in 0..40 {
        let mut l = ana();
        l["email"] = json!(format!("buyer{i}@corp{i}.example"));
        post(&ports, l, None).await;
    }
    assert_eq!(pipeline(&ports, 2).await, 0);
    let leads = ports.store.all_leads();
    let to = |rep: &str| leads.iter().filter(|l| l.owner.as_ref().is_some_and(|o| o.rep_id == rep)).count();
    assert_eq!(to("anna") + to("ben"), 40);
    assert!(to("anna").abs_diff(to("ben")) <= 1, "anna {} ben {}", to("anna"), to("ben"));
    assert_eq!(ports.mailer.sent().len(), 40);
}

#[tokio::test]
async fn a_throttled_assignment_email_is_retried_and_sent_once() {
    let ports = ports();
    post(&ports, ana(), None).await;
    deliver(&ports, Stage::Validate, 1).await;
    deliver(&ports, Stage::Score, 1).await;
    ports.mailer.throttle_next(1);
    let bodies = ports.queue.drain(Stage::Route);
    let batch =
        |bodies: &[String]| bodies.iter().map(|b| BatchItem { id: "r1".into(), body: b.clone() }).collect::<Vec<_>>();
    let failed = leadflow_route::handle_batch(&*ports, batch(&bodies)).await;
    assert_eq!(failed.len(), 1, "throttling fails the item so the queue retries it");
    assert!(failed[0].reason.contains("throttl"), "{}", failed[0].reason);
    assert!(ports.mailer.sent().is_empty());
    let failed = leadflow_route::handle_batch(&*ports, batch(&bodies)).await;
    assert!(failed.is_empty());
    let failed = leadflow_route::handle_batch(&*ports, batch(&bodies)).await;
    assert!(failed.is_empty());
    assert_eq!(ports.mailer.sent().len(), 1);
}

#[tokio::test]
async fn one_poison_message_does_not_fail_its_neighbours() {
    let ports = ports();
    post(&ports, ana(), None).await;
    let mut bodies = ports.queue.drain(Stage::Validate);
    bodies.insert(0, "{not json".into());
    let batch: Vec<BatchItem> =
        bodies.iter().enumerate().map(|(i, b)| BatchItem { id: format!("m{i}"), body: b.clone() }).collect();
    let failed = leadflow_validate::handle_batch(&*ports, batch.clone()).await;
    assert!(failed.is_empty(), "a malformed body can never succeed: it is dropped, not retried");
    assert_eq!(ports.store.lead_count(), 1);

    // A failure a retry can fix fails only its own item.
    ports.queue.fail_next(1);
    let failed = leadflow_validate::handle_batch(&*ports, batch).await;
    assert_eq!(failed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), vec!["m1"]);
}

#[tokio::test]
async fn a_lead_below_mql_gets_each_drip_step_once_at_its_time() {
    let ports = ports();
    let (_, body) = post(&ports, json!({"email": "joe@gmail.com", "first_name": "Joe"}), None).await;
    let id = lead_id(&body);
    pipeline(&ports, 2).await;
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    assert_eq!(lead.lifecycle, Lifecycle::Lead, "{:?}", lead.score);
    assert!(lead.owner.is_none());
    let enrollments = ports.store.enrollments(id).await.unwrap_or_default();
    assert_eq!(enrollments.len(), 1);

    // Two scheduler runs racing over the same due step send it once.
    let (a, b) = tokio::join!(leadflow_nurture::tick(&*ports, 100), leadflow_nurture::tick(&*ports, 100));
    assert!(a.is_ok() && b.is_ok());
    let drips = || ports.mailer.sent().into_iter().filter(|e| e.to.email == "joe@gmail.com").collect::<Vec<_>>();
    assert_eq!(drips().len(), 1);
    assert!(drips()[0].subject.contains("Joe"));

    // The second step waits two days.
    ports.clock.advance(Duration::hours(47));
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    assert_eq!(drips().len(), 1, "not before its time");
    ports.clock.advance(Duration::hours(1));
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    assert_eq!(drips().len(), 2);
    ports.clock.advance(Duration::days(3));
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    ports.clock.advance(Duration::days(30));
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    assert_eq!(drips().len(), 3, "three steps, each once");
    let e = ports.store.enrollments(id).await.unwrap_or_default();
    assert_eq!(e[0].state, EnrollmentState::Completed);
}

#[tokio::test]
async fn a_lead_that_qualifies_later_leaves_nurture_and_is_routed() {
    let ports = ports();
    let (_, body) = post(&ports, json!({"email": "kim@globex.example", "first_name": "Kim"}), None).await;
    let id = lead_id(&body);
    pipeline(&ports, 1).await;
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    let before = ports.mailer.sent().len();
    assert_eq!(before, 1, "first drip step");
    // Kim turns out to be a VP in Germany, and a person corrects the record (a repeat
    // submission no longer rewrites a lead by itself): Kim qualifies and is routed.
    let mut kim = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    kim.contact.job_title = Some("VP Sales".into());
    kim.contact.country = Some("DE".into());
    kim.contact.company = Some("Globex".into());
    let written = ports.store.update_lead(&kim, kim.version, &[]).await;
    assert_eq!(written.ok(), Some(WriteOutcome::Written));
    let rescore = serde_json::to_string(&ScoreMessage::rescore(id, "edited")).unwrap_or_default();
    ports.queue.send(Stage::Score, &[rescore]).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&ports, 1).await;
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    assert!(lead.owner.is_some(), "{:?}", lead.score);
    ports.clock.advance(Duration::days(10));
    let _ = leadflow_nurture::tick(&*ports, 100).await;
    let drips = ports.mailer.sent().into_iter().filter(|e| e.to.email == "kim@globex.example").count();
    assert_eq!(drips, 1, "no more drips once sales owns the lead");
    let e = ports.store.enrollments(id).await.unwrap_or_default();
    assert!(matches!(&e[0].state, EnrollmentState::Stopped { reason } if reason.contains("assigned")), "{e:?}");
}

#[tokio::test]
async fn a_drip_step_throttled_by_the_mail_service_is_retried_later_never_recorded_as_sent() {
    let ports = ports();
    let (_, body) = post(&ports, json!({"email": "tia@gmail.com", "first_name": "Tia"}), None).await;
    let id = lead_id(&body);
    pipeline(&ports, 1).await;
    ports.mailer.throttle_next(1);
    let report = leadflow_nurture::tick(&*ports, 100).await.unwrap_or_default();
    assert_eq!((report.sent, report.retry_later), (0, 1));
    assert!(ports.mailer.sent().is_empty());
    let trail = ports.store.activities(id).await.unwrap_or_default();
    assert!(!trail.iter().any(|a| a.kind.name() == "email_sent"), "a throttled send is not on the trail");
    let e = ports.store.enrollments(id).await.unwrap_or_default();
    assert_eq!(e[0].next_step, 0, "the step stays due");
    // The next tick sends it, once.
    let report = leadflow_nurture::tick(&*ports, 100).await.unwrap_or_default();
    assert_eq!(report.sent, 1);
    assert_eq!(ports.mailer.sent().len(), 1);
    assert_eq!(ports.store.enrollments(id).await.unwrap_or_default()[0].next_step, 1);
}

#[tokio::test]
async fn stale_lead_copies_in_redriven_messages_overwrite_nothing_and_send_nothing_again() {
    let ports = ports();
    let (_, body) = post(&ports, ana(), None).await;
    let id = lead_id(&body);
    // Keep the score and route messages as sent: each carries the lead as its sender stored it.
    let mut kept = Vec::new();
    for stage in Stage::ALL {
        deliver(&ports, stage, 1).await;
        let next = match stage {
            Stage::Validate => Some(Stage::Score),
            Stage::Score => Some(Stage::Route),
            Stage::Route => None,
        };
        if let Some(next) = next {
            let bodies = ports.queue.drain(next);
            assert!(bodies.iter().all(|b| b.contains("\"lead\":")), "{next:?} messages carry the lead: {bodies:?}");
            ports.queue.send(next, &bodies).await.unwrap_or_else(|e| panic!("{e}"));
            kept.push((next, bodies));
        }
    }
    let assigned = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    assert!(assigned.owner.is_some(), "{:?}", assigned.score);
    assert_eq!(ports.mailer.sent().len(), 1);

    // A person corrects the record; then both messages come back from a dead-letter queue.
    let mut edited = assigned.clone();
    edited.contact.company = Some("Acme Holding".into());
    assert_eq!(ports.store.update_lead(&edited, edited.version, &[]).await.ok(), Some(WriteOutcome::Written));
    for (stage, bodies) in &kept {
        ports.queue.send(*stage, bodies).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(deliver(&ports, *stage, 1).await, 0, "{stage:?}");
    }
    pipeline(&ports, 1).await;

    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead missing"));
    assert_eq!(lead.contact.company.as_deref(), Some("Acme Holding"), "a stale copy wrote over the correction");
    assert_eq!(lead.owner.as_ref().map(|o| &o.rep_id), assigned.owner.as_ref().map(|o| &o.rep_id));
    assert_eq!(lead.owner.as_ref().map(|o| o.assigned_at), assigned.owner.as_ref().map(|o| o.assigned_at));
    assert_eq!(ports.mailer.sent().len(), 1, "one assignment email: {:?}", ports.mailer.sent());
}
