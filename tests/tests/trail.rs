//! The audit trail holds every stage and every send, whatever moment the process dies.
//!
//! A scenario (a qualified lead routed and emailed, a lead below MQL enrolled and sent its first
//! drip, then unsubscribed, and the first lead moved to another rep when its SLA ran out) runs
//! once for every write it makes, with that one write failing:
//! either before it reaches the store, or after it was stored (a process killed right after its
//! commit). Messages that failed are delivered again, as the queue does, and the clock moves past
//! the effect lease, as it has by the time a dead worker's claim may be taken over. Then every
//! lead has its whole trail, one assignment, one email per key. On the in-memory store and on
//! SQLite, both.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_app::{BatchItem, EFFECT_LEASE};
use leadflow_core::model::{ActivityKind, EnrollmentState, LeadId, Lifecycle};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle, LeadStore, Stage};
use leadflow_core::ports::{Enrollments, Leads, Suppressions, Trails};
use leadflow_local::SqliteStore;
use leadflow_memory::{Crash, FaultyStore, MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use leadflow_unsubscribe::{Via, unsubscribe};
use serde_json::{Value, json};
use tower::ServiceExt;

type Ports<S> = Adapters<FaultyStore<S>, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

/// Rounds of redelivery before a scenario is declared stuck.
const ROUNDS: usize = 12;

fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn ports<S: LeadStore>(store: FaultyStore<S>) -> Arc<Ports<S>> {
    Arc::new(Adapters {
        store,
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(monday()),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    })
}

/// Posts the lead as a browser does: again, with the same idempotency key, until it is accepted.
async fn post<S: LeadStore>(ports: &Arc<Ports<S>>, body: &Value, key: &str) -> LeadId {
    for _ in 0..3 {
        let req = Request::post("/leads")
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap_or_default();
        let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
        if resp.status() == StatusCode::ACCEPTED {
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return v["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{v}"));
        }
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "a store failure is a 503, never another answer");
    }
    panic!("the lead was never accepted");
}

/// Delivers every queued message until none fails, each failed one again in the next round, as
/// SQS does. A round with failures ends with the clock past the effect lease.
async fn settle<S: LeadStore>(ports: &Arc<Ports<S>>) {
    let mut pending: Vec<(Stage, String)> = Vec::new();
    for _ in 0..ROUNDS {
        for stage in Stage::ALL {
            pending.extend(ports.queue.drain(stage).into_iter().map(|b| (stage, b)));
        }
        if pending.is_empty() {
            return;
        }
        let mut again = Vec::new();
        for stage in Stage::ALL {
            let bodies: Vec<String> = pending.iter().filter(|(s, _)| *s == stage).map(|(_, b)| b.clone()).collect();
            let batch: Vec<BatchItem> =
                bodies.iter().enumerate().map(|(i, b)| BatchItem { id: i.to_string(), body: b.clone() }).collect();
            let failed = match stage {
                Stage::Validate => leadflow_validate::handle_batch(&**ports, batch).await,
                Stage::Score => leadflow_score::handle_batch(&**ports, batch).await,
                Stage::Route => leadflow_route::handle_batch(&**ports, batch).await,
            };
            for f in failed {
                let i: usize = f.id.parse().unwrap_or_else(|_| panic!("batch ids are ours"));
                again.push((stage, bodies[i].clone()));
            }
        }
        if !again.is_empty() {
            ports.clock.advance(EFFECT_LEASE + Duration::seconds(1));
        }
        pending = again;
    }
    panic!("messages still failing after {ROUNDS} rounds: {pending:?}");
}

/// Runs nurture ticks until the lead's first drip is sent and its enrollment moved on.
async fn first_drip<S: LeadStore>(ports: &Arc<Ports<S>>, lead: LeadId) {
    for _ in 0..ROUNDS {
        // A failing step is left due and retried on a later tick, after its claim's lease.
        leadflow_nurture::tick(&**ports, 500).await.unwrap_or_else(|e| panic!("tick: {e}"));
        let enrollments = ports.store.enrollments(lead).await.unwrap_or_default();
        if enrollments.iter().any(|e| e.next_step >= 1) {
            return;
        }
        ports.clock.advance(EFFECT_LEASE + Duration::seconds(1));
    }
    panic!("the first drip never went out");
}

async fn unsubscribe_until_done<S: LeadStore>(ports: &Arc<Ports<S>>, lead: LeadId) {
    for _ in 0..3 {
        if unsubscribe(&**ports, lead, Via::OneClick).await.is_ok() {
            return;
        }
    }
    panic!("the unsubscribe never went through");
}

/// The scenario; answers the two lead ids.
async fn scenario<S: LeadStore>(ports: &Arc<Ports<S>>) -> (LeadId, LeadId) {
    let ana = json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
                     "job_title": "CTO", "country": "DE", "phone": "+49 30 901820"});
    let joe = json!({"email": "joe@gmail.com", "first_name": "Joe"});
    let ana = post(ports, &ana, "ana-1").await;
    let joe = post(ports, &joe, "joe-1").await;
    settle(ports).await;
    first_drip(ports, joe).await;
    unsubscribe_until_done(ports, joe).await;
    // The tick that finds the address suppressed stops what the unsubscribe did not.
    leadflow_nurture::tick(&**ports, 500).await.unwrap_or_else(|e| panic!("tick: {e}"));
    // Nobody contacted Ana: a day later the tick hands her to route, which moves her.
    ports.clock.advance(Duration::days(1));
    leadflow_nurture::tick(&**ports, 500).await.unwrap_or_else(|e| panic!("tick: {e}"));
    settle(ports).await;
    (ana, joe)
}

fn kinds(trail: &[leadflow_core::model::Activity]) -> Vec<&'static str> {
    trail.iter().map(|a| a.kind.name()).collect()
}

/// Everything a user would look for, after the scenario ran with `store`'s fault.
async fn check<S: LeadStore>(ports: &Arc<Ports<S>>, (ana, joe): (LeadId, LeadId), what: &str) {
    let store = &ports.store;
    let lead = store.get_lead(ana).await.unwrap().unwrap_or_else(|| panic!("{what}: Ana's lead is lost"));
    let owner = lead.owner.as_ref().unwrap_or_else(|| panic!("{what}: Ana was never assigned"));
    assert!(lead.lifecycle >= Lifecycle::Mql, "{what}");
    let trail = store.activities(ana).await.unwrap();
    let k = kinds(&trail);
    for want in ["form_submission", "stage_changed", "assigned", "email_sent", "sla_breached"] {
        assert!(k.contains(&want), "{what}: Ana's trail has no {want}: {k:?}");
    }
    let assigned: Vec<_> = trail
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::Assigned { rep_id, .. } => Some(rep_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(assigned.len(), 2, "{what}: assigned, then moved once: {assigned:?}");
    assert!(assigned[0] != assigned[1] && assigned[1] == owner.rep_id, "{what}: {assigned:?}, owner {owner:?}");
    let sends: Vec<&str> = trail
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::EmailSent { email, .. } => Some(email.as_str()),
            _ => None,
        })
        .collect();
    let to_first = format!("assignment-{ana}-{}", assigned[0]);
    let to_second = format!("assignment-{ana}-{}", assigned[1]);
    for want in [to_first.as_str(), to_second.as_str(), "sla-breach-"] {
        assert!(sends.iter().any(|s| s.starts_with(want)), "{what}: no {want} on the trail: {sends:?}");
    }

    let trail = store.activities(joe).await.unwrap();
    let k = kinds(&trail);
    for want in ["form_submission", "enrolled", "email_sent", "unsubscribed", "enrollment_ended"] {
        assert!(k.contains(&want), "{what}: Joe's trail has no {want}: {k:?}");
    }
    let lead = store.get_lead(joe).await.unwrap().unwrap_or_else(|| panic!("{what}: Joe's lead is lost"));
    assert!(store.suppression(&email_key(&lead.contact.email)).await.unwrap().is_some(), "{what}: Joe is suppressed");
    let enrollments = store.enrollments(joe).await.unwrap();
    assert_eq!(enrollments.len(), 1, "{what}");
    assert!(matches!(enrollments[0].state, EnrollmentState::Stopped { .. }), "{what}: {:?}", enrollments[0].state);
    assert_eq!(enrollments[0].next_step, 1, "{what}: the first step was taken once");

    // One email per key. The one window we accept (documented at `send_once`): the process dies
    // after the provider took the email and before its claim was marked done; after the lease
    // the email goes out again.
    let sent = ports.mailer.sent();
    let mut keys: Vec<&str> = sent.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    let resent = before - keys.len();
    let window = store.failed() == Some("finish_effect");
    assert!(resent == 0 || (window && resent == 1), "{what}: {resent} emails sent twice: {keys:?}");
    assert_eq!(keys.len(), 4, "{what}: two assignment emails, the first rep's note, the first drip: {keys:?}");
}

async fn crash_at_every_write<S: LeadStore>(open: impl Fn() -> S) {
    let counting = ports(FaultyStore::counting(open()));
    let ids = scenario(&counting).await;
    check(&counting, ids, "without a fault").await;
    let writes = counting.store.writes();
    assert!(writes > 10, "the scenario makes {writes} writes");
    for n in 1..=writes {
        for crash in [Crash::Before, Crash::After] {
            let ports = ports(FaultyStore::failing(open(), n, crash));
            let ids = scenario(&ports).await;
            let what = format!("write {n} ({}) failing {crash:?}", ports.store.failed().unwrap_or("none"));
            check(&ports, ids, &what).await;
        }
    }
}

#[tokio::test]
async fn on_the_memory_store_the_trail_is_whole_whichever_write_fails() {
    crash_at_every_write(MemoryStore::new).await;
}

#[tokio::test]
async fn on_sqlite_the_trail_is_whole_whichever_write_fails() {
    let dir = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicU32::new(0);
    crash_at_every_write(|| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        SqliteStore::open(dir.path().join(format!("run-{n}.db"))).unwrap()
    })
    .await;
}

/// Many leads at once, each with its whole trail: activity ids are unique per lead, not across
/// leads (`stage-mql` and `assigned-<rep>-<millis>` repeat from lead to lead).
async fn many_leads_each_with_its_trail<S: LeadStore>(store: S) {
    let ports = ports(FaultyStore::counting(store));
    let mut ids = Vec::new();
    for i in 0..40 {
        let body = json!({"email": format!("buyer{i}@firm{i}.example"), "first_name": format!("B{i}"),
                          "job_title": "Director", "company": format!("Firm {i}"), "country": "DE"});
        ids.push(post(&ports, &body, &format!("k{i}")).await);
    }
    // Every lead in the same millisecond, as in a burst.
    settle(&ports).await;
    for id in ids {
        let k = kinds(&ports.store.activities(id).await.unwrap());
        for want in ["form_submission", "stage_changed", "assigned", "email_sent"] {
            assert!(k.contains(&want), "lead {id} has no {want}: {k:?}");
        }
    }
    assert_eq!(ports.mailer.sent().len(), 40);
}

#[tokio::test]
async fn forty_leads_at_once_each_keep_their_whole_trail_in_memory() {
    many_leads_each_with_its_trail(MemoryStore::new()).await;
}

#[tokio::test]
async fn forty_leads_at_once_each_keep_their_whole_trail_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    many_leads_each_with_its_trail(SqliteStore::open(dir.path().join("leadflow.db")).unwrap()).await;
}
