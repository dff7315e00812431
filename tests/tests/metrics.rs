//! What each stage counts for the dashboard and the alarms (`leadflow_app::metrics`), over the
//! in-memory fakes: each thing counted once, when it has happened, and redeliveries not again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_app::metrics::{Metric, counted};
use leadflow_core::error::MailError;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Adapters, ConfigHandle, Mailer, OutgoingEmail, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The recording mailer, which can also be told to refuse the next emails for good.
#[derive(Default)]
struct Mail {
    inner: RecordingMailer,
    reject_next: AtomicU32,
}

impl Mailer for Mail {
    async fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>) -> Result<String, MailError> {
        if self.reject_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(MailError::Rejected("MessageRejected: injected".into()));
        }
        self.inner.send(email, now).await
    }
}

type Ports = Adapters<MemoryStore, MemoryQueue, Mail, RecordingBus, SettableClock>;

fn ports() -> Arc<Ports> {
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: Mail::default(),
        bus: RecordingBus::new(),
        // A Monday morning, inside every send window.
        clock: SettableClock::at(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    })
}

/// Counts of one piece of work, as `(name, n)` for readable failures.
async fn counts_of<F: Future>(work: F) -> (F::Output, Vec<(&'static str, u64)>) {
    let (output, counts) = counted(work).await;
    (output, counts.nonzero().into_iter().map(|(m, n)| (m.name(), n)).collect())
}

async fn post(ports: &Arc<Ports>, body: Value) -> LeadId {
    let req = Request::post("/leads").header("content-type", "application/json").body(Body::from(body.to_string()));
    let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req.unwrap_or_default()).await.unwrap_or_default();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    serde_json::from_value(body["lead_id"].clone()).unwrap_or_else(|e| panic!("a lead id in {body}: {e}"))
}

/// Delivers what is queued for `stage` once; answers how many items failed.
async fn deliver(ports: &Arc<Ports>, stage: Stage, bodies: &[String]) -> usize {
    leadflow_tests::harness::deliver(&**ports, stage, bodies).await.len()
}

fn qualified() -> Value {
    json!({
        "email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
        "job_title": "CTO", "country": "DE", "phone": "+49 30 901820"
    })
}

#[tokio::test]
async fn a_qualified_lead_counts_captured_validated_assigned_and_its_email_once_each() {
    let ports = ports();
    let (_, captured) = counts_of(post(&ports, qualified())).await;
    assert_eq!(captured, [("LeadsCaptured", 1)]);

    let bodies = ports.queue.drain(Stage::Validate);
    let (_, validated) = counts_of(deliver(&ports, Stage::Validate, &bodies)).await;
    assert_eq!(validated, [("LeadsValidated", 1)]);
    let (_, again) = counts_of(deliver(&ports, Stage::Validate, &bodies)).await;
    assert_eq!(again, [], "a redelivery is no new lead");

    let scored = ports.queue.drain(Stage::Score);
    deliver(&ports, Stage::Score, &scored).await;
    let routed = ports.queue.drain(Stage::Route);
    assert!(!routed.is_empty(), "a CTO at a corporate domain in DE is routed");
    let (failed, assigned) = counts_of(deliver(&ports, Stage::Route, &routed)).await;
    assert_eq!(failed, 0);
    let sent = ports.mailer.inner.sent().len() as u64;
    assert!(sent >= 1);
    assert_eq!(assigned, [("LeadsAssigned", 1), ("EmailsSent", sent)]);
    let (_, again) = counts_of(deliver(&ports, Stage::Route, &routed)).await;
    assert_eq!(again, [], "assigned and emailed before: nothing new");
}

#[tokio::test]
async fn a_disposable_address_is_captured_but_not_counted_as_validated() {
    let ports = ports();
    post(&ports, json!({"email": "x@mailinator.com", "first_name": "X"})).await;
    let bodies = ports.queue.drain(Stage::Validate);
    let (_, counted) = counts_of(deliver(&ports, Stage::Validate, &bodies)).await;
    assert_eq!(counted, []);
}

/// Runs a qualified lead up to its route message; answers the route queue's bodies.
async fn up_to_route(ports: &Arc<Ports>) -> Vec<String> {
    post(ports, qualified()).await;
    for stage in [Stage::Validate, Stage::Score] {
        let bodies = ports.queue.drain(stage);
        deliver(ports, stage, &bodies).await;
    }
    ports.queue.drain(Stage::Route)
}

#[tokio::test]
async fn a_throttled_email_counts_as_retried_then_as_sent() {
    let ports = ports();
    let routed = up_to_route(&ports).await;
    ports.mailer.inner.throttle_next(1);
    let (failed, first) = counts_of(deliver(&ports, Stage::Route, &routed)).await;
    assert_eq!(failed, 1);
    assert_eq!(first, [("LeadsAssigned", 1), ("EmailsRetried", 1)]);
    let (_, second) = counts_of(deliver(&ports, Stage::Route, &routed)).await;
    assert_eq!(second, [("EmailsSent", 1)]);
}

#[tokio::test]
async fn an_email_refused_for_good_counts_as_rejected_and_not_as_sent() {
    let ports = ports();
    let routed = up_to_route(&ports).await;
    ports.mailer.reject_next.store(1, Ordering::SeqCst);
    let (failed, counted) = counts_of(deliver(&ports, Stage::Route, &routed)).await;
    assert_eq!(failed, 0, "a rejection is final");
    assert_eq!(counted, [("LeadsAssigned", 1), ("EmailsRejected", 1)]);
}

#[tokio::test]
async fn a_drip_counts_as_drip_and_email_sent_and_an_unsubscribe_as_one_opt_out() {
    let ports = ports();
    let id = post(&ports, json!({"email": "joe@gmail.com", "first_name": "Joe"})).await;
    for _ in 0..2 {
        for stage in Stage::ALL {
            let bodies = ports.queue.drain(stage);
            deliver(&ports, stage, &bodies).await;
        }
    }
    let (report, ticked) = counts_of(leadflow_nurture::tick(&*ports, 100)).await;
    assert_eq!(report.map(|r| r.sent).ok(), Some(1), "the first drip step is due at once");
    assert_eq!(ticked, [("EmailsSent", 1), ("DripsSent", 1)]);
    let (_, idle) = counts_of(leadflow_nurture::tick(&*ports, 100)).await;
    assert_eq!(idle, [], "nothing due: nothing counted");

    let via = leadflow_unsubscribe::Via::OneClick;
    let (done, opted_out) = counts_of(leadflow_unsubscribe::unsubscribe(&*ports, id, via)).await;
    assert!(matches!(done, Ok(leadflow_unsubscribe::Unsubscribed::Now(_))), "{done:?}");
    assert_eq!(opted_out, [("OptOuts", 1)]);
    let (_, repeated) = counts_of(leadflow_unsubscribe::unsubscribe(&*ports, id, via)).await;
    assert_eq!(repeated, [], "unsubscribing again is no new opt-out");
    assert!(Metric::ALL.contains(&Metric::OptOuts));
}

#[tokio::test]
async fn a_malformed_message_is_dropped_and_counted_not_redelivered() {
    let ports = ports();
    let good = up_to_route(&ports).await;
    let mut bodies = vec!["{\"lead_id\": 17".to_string(), "[]".to_string()];
    bodies.extend(good);
    let (failed, counted) = counts_of(deliver(&ports, Stage::Route, &bodies)).await;
    assert_eq!(failed, 0, "no retry can fix a malformed body: it is not given back");
    let dropped = counted.iter().find(|(name, _)| *name == "MessagesDropped").map(|(_, n)| *n);
    assert_eq!(dropped, Some(2), "{counted:?}");
    assert!(counted.iter().any(|(name, n)| *name == "LeadsAssigned" && *n == 1), "the good one went on: {counted:?}");
}
