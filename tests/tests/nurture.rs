//! Nurture over the local stack's own adapters (SQLite store, `.eml` outbox) with a settable
//! clock: campaigns applied as documents, send windows in each lead's zone across a DST change,
//! racing scheduler runs, and every stop condition.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use leadflow_admin::AdminAuth;
use leadflow_core::model::{ActivityKind, EnrollmentState, LeadId, SalesStatus};
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, Stage, StageQueue};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_local::{OutboxMailer, SqliteStore};
use leadflow_memory::{MemoryQueue, RecordingBus, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

type LocalPorts = Adapters<SqliteStore, MemoryQueue, OutboxMailer, RecordingBus, SettableClock>;

struct Stack {
    ports: Arc<LocalPorts>,
    _dir: tempfile::TempDir,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn stack(now: DateTime<Utc>) -> Stack {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("store: {e}"));
    let mailer = OutboxMailer::open(dir.path().join("outbox")).unwrap_or_else(|e| panic!("outbox: {e}"));
    let ports = Arc::new(Adapters {
        store,
        queue: MemoryQueue::new(),
        mailer,
        bus: RecordingBus::new(),
        clock: SettableClock::at(now),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    });
    Stack { ports, _dir: dir }
}

/// Marketing's campaign: three steps two days apart, weekdays 09:00–17:00 in the lead's zone.
/// Applied as version 2 of `welcome`, it replaces the sample file's version 1.
const OFFICE_HOURS: &str = r#"
id: welcome
name: Welcome, in office hours
send_window: { days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00" }
entry: { lifecycle: lead }
steps:
  - { id: hello, subject: "Hi {{ lead.first_name }}", text: "Hi {{ lead.first_name }}", html: "<p>Hi {{ lead.first_name }}</p>" }
  - { id: case-study, wait: 2d, subject: "A case study", text: "Story", html: "<p>Story</p>" }
  - { id: demo, wait: 2d, subject: "A demo?", text: "Demo?", html: "<p>Demo?</p>" }
"#;

/// Applies a campaign as marketing does: YAML posted to the admin API.
async fn apply(ports: &Arc<LocalPorts>, yaml: &str, version: u32) {
    for want_unchanged in [false, true] {
        let req = Request::post("/admin/campaigns")
            .header("content-type", "application/yaml")
            .body(Body::from(yaml.to_string()))
            .unwrap_or_default();
        let resp =
            leadflow_admin::router(Arc::clone(ports), AdminAuth::Upstream).oneshot(req).await.unwrap_or_default();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status.is_success(), "{status}: {v}");
        // Applying the same text again changes nothing.
        assert_eq!((v["version"].as_u64(), v["unchanged"].as_bool()), (Some(u64::from(version)), Some(want_unchanged)));
    }
}

async fn capture(ports: &Arc<LocalPorts>, body: Value) -> LeadId {
    leadflow_tests::harness::capture(ports, body).await
}

async fn pipeline(ports: &Arc<LocalPorts>) {
    leadflow_tests::harness::pipeline(ports).await
}

/// When each drip email went to the lead, from its trail.
async fn drip_times(ports: &LocalPorts, id: LeadId) -> Vec<(String, DateTime<Utc>)> {
    let acts = ports.store.activities(id).await.unwrap_or_default();
    acts.into_iter()
        .filter_map(|a| match a.kind {
            ActivityKind::EmailSent { email, .. } if email.starts_with("drip-") => {
                Some((email.rsplit('-').next().unwrap_or_default().to_string(), a.at))
            }
            _ => None,
        })
        .collect()
}

/// Ticks every 15 minutes of clock time until `until`.
async fn run_until(ports: &Arc<LocalPorts>, until: DateTime<Utc>) {
    while ports.clock.now() < until {
        ports.clock.advance(Duration::minutes(15));
        leadflow_nurture::tick(&**ports, 500).await.unwrap_or_else(|e| panic!("tick: {e}"));
    }
}

fn lead_in(zone: &str, name: &str) -> Value {
    json!({"email": format!("{}@gmail.com", name.to_lowercase()), "first_name": name, "time_zone": zone})
}

#[tokio::test]
async fn each_step_goes_out_in_the_leads_office_hours_across_the_dst_change() {
    // Friday 2025-03-07 20:00 UTC: 15:00 in New York, 21:00 in Berlin, 01:30 Saturday in
    // Kolkata. The US changes to summer time on Sunday 9 March.
    let s = stack(at("2025-03-07T20:00:00Z"));
    apply(&s.ports, OFFICE_HOURS, 2).await;
    let ny = capture(&s.ports, lead_in("America/New_York", "Nia")).await;
    let berlin = capture(&s.ports, lead_in("Europe/Berlin", "Ben")).await;
    let kolkata = capture(&s.ports, lead_in("Asia/Kolkata", "Kavya")).await;
    pipeline(&s.ports).await;
    leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    run_until(&s.ports, at("2025-03-20T00:00:00Z")).await;
    let want = |list: &[(&str, &str)]| list.iter().map(|(s, t)| (s.to_string(), at(t))).collect::<Vec<_>>();
    // New York: at once (15:00 EST); +2d is Sunday → Monday 09:00 EDT = 13:00 UTC (one hour
    // earlier in UTC than before the change); +2d = Wednesday 13:00 UTC.
    assert_eq!(
        drip_times(&s.ports, ny).await,
        want(&[("hello", "2025-03-07T20:00:00Z"), ("study", "2025-03-10T13:00:00Z"), ("demo", "2025-03-12T13:00:00Z")])
    );
    // Berlin: Friday evening → Monday 09:00 CET = 08:00 UTC; then Wednesday and Friday.
    assert_eq!(
        drip_times(&s.ports, berlin).await,
        want(&[("hello", "2025-03-10T08:00:00Z"), ("study", "2025-03-12T08:00:00Z"), ("demo", "2025-03-14T08:00:00Z")])
    );
    // Kolkata: Saturday → Monday 09:00 IST = 03:30 UTC; then Wednesday and Friday.
    assert_eq!(
        drip_times(&s.ports, kolkata).await,
        want(&[("hello", "2025-03-10T03:30:00Z"), ("study", "2025-03-12T03:30:00Z"), ("demo", "2025-03-14T03:30:00Z")])
    );
    let files = std::fs::read_dir(s._dir.path().join("outbox")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 9, "nine emails, one file each");
}

#[tokio::test]
async fn enrolled_leads_finish_the_version_they_started() {
    let s = stack(at("2025-03-03T10:00:00Z"));
    apply(&s.ports, OFFICE_HOURS, 2).await;
    let first = capture(&s.ports, json!({"email": "first@gmail.com", "time_zone": "Europe/Berlin"})).await;
    pipeline(&s.ports).await;
    leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    // Marketing rewrites the campaign: one step only, new subject.
    apply(
        &s.ports,
        "id: welcome\nname: Short\nentry: { lifecycle: lead }\nsteps:\n  - { id: only, subject: New, text: New, html: New }\n",
        3,
    )
    .await;
    let second = capture(&s.ports, json!({"email": "second@gmail.com", "time_zone": "Europe/Berlin"})).await;
    pipeline(&s.ports).await;
    run_until(&s.ports, at("2025-03-12T00:00:00Z")).await;
    let steps = |v: Vec<(String, DateTime<Utc>)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(steps(drip_times(&s.ports, first).await), vec!["hello", "study", "demo"], "v2 to its end");
    assert_eq!(steps(drip_times(&s.ports, second).await), vec!["only"], "v3 for the newcomer");
    let e = s.ports.store.enrollments(second).await.unwrap_or_default();
    assert_eq!((e[0].campaign_version, e[0].state.clone()), (3, EnrollmentState::Completed));
}

#[tokio::test]
async fn two_scheduler_runs_racing_over_the_same_due_steps_send_each_once() {
    let s = stack(at("2025-03-03T10:00:00Z"));
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(capture(&s.ports, json!({"email": format!("racer{i}@gmail.com"), "first_name": "R"})).await);
    }
    pipeline(&s.ports).await;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            tokio::spawn({
                let p = Arc::clone(&s.ports);
                async move { leadflow_nurture::tick(&*p, 500).await.map(|r| r.sent).unwrap_or(0) }
            }),
            tokio::spawn({
                let p = Arc::clone(&s.ports);
                async move { leadflow_nurture::tick(&*p, 500).await.map(|r| r.sent).unwrap_or(0) }
            }),
        );
        let _ = (a, b);
        s.ports.clock.advance(Duration::days(3));
    }
    for id in ids {
        let sent = drip_times(&s.ports, id).await;
        let mut steps: Vec<_> = sent.iter().map(|(s, _)| s.clone()).collect();
        let all = steps.len();
        steps.dedup();
        assert_eq!(all, steps.len(), "no step twice");
        assert_eq!(steps, vec!["hello", "study", "demo"]);
    }
    let files = std::fs::read_dir(s._dir.path().join("outbox")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 60);
}

#[tokio::test]
async fn marking_a_lead_won_stops_its_remaining_steps() {
    let s = stack(at("2025-03-03T10:00:00Z"));
    let id = capture(&s.ports, json!({"email": "winner@gmail.com", "first_name": "Win"})).await;
    pipeline(&s.ports).await;
    leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(drip_times(&s.ports, id).await.len(), 1);
    leadflow_app::sales::mark(&*s.ports, id, SalesStatus::Won, Some("anna".into()), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = s.ports.store.enrollments(id).await.unwrap_or_default();
    assert!(matches!(&e[0].state, EnrollmentState::Stopped { reason } if reason.contains("won")), "{e:?}");
    run_until(&s.ports, at("2025-03-12T00:00:00Z")).await;
    assert_eq!(drip_times(&s.ports, id).await.len(), 1, "nothing after won");
}

// ---- opt-outs, SES events ------------------------------------------------------------------

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/ses-events/tests/fixtures/");

/// A fixture of functions/ses-events, addressed to `email`.
fn ses_event(name: &str, email: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}{name}.json")).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text.replace("ada@example.com", email)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn http(ports: &Arc<LocalPorts>, req: Request<Body>) -> (StatusCode, String) {
    let resp = leadflow_unsubscribe::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The unsubscribe link of the last drip email the lead got, from its `List-Unsubscribe` header.
fn unsubscribe_path(dir: &std::path::Path, email: &str) -> String {
    let mut found = None;
    for entry in std::fs::read_dir(dir.join("outbox")).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let Some(m) = mail_parser::MessageParser::default().parse(&bytes) else { continue };
        let to = m.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_string();
        if to == email
            && let Some(h) = m.header_raw("List-Unsubscribe")
        {
            assert_eq!(m.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));
            let url = h.trim().trim_start_matches('<').trim_end_matches('>').to_string();
            found = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()));
        }
    }
    found.unwrap_or_else(|| panic!("no drip email with List-Unsubscribe to {email}"))
}

#[tokio::test]
async fn unsubscribe_bounce_complaint_and_won_each_stop_the_remaining_steps() {
    let s = stack(at("2026-03-02T10:00:00Z"));
    let names = ["getpost", "oneclick", "bounce", "complaint", "won", "stays"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(capture(&s.ports, json!({"email": format!("{n}@gmail.com"), "first_name": n})).await);
    }
    pipeline(&s.ports).await;
    leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    for id in &ids {
        assert_eq!(drip_times(&s.ports, *id).await.len(), 1, "the first step went to everyone");
    }
    // GET shows a page and changes nothing; the page's POST unsubscribes.
    let path = unsubscribe_path(s._dir.path(), "getpost@gmail.com");
    let (status, page) = http(&s.ports, Request::get(&path).body(Body::empty()).unwrap_or_default()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<form"), "{page}");
    assert!(s.ports.store.enrollments(ids[0]).await.unwrap_or_default()[0].state == EnrollmentState::Active);
    let (status, _) = http(&s.ports, Request::post(&path).body(Body::empty()).unwrap_or_default()).await;
    assert_eq!(status, StatusCode::OK);
    // RFC 8058 one-click: a POST alone, as a mail client sends it.
    let path = unsubscribe_path(s._dir.path(), "oneclick@gmail.com");
    let one_click = Request::post(&path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .unwrap_or_default();
    assert_eq!(http(&s.ports, one_click).await.0, StatusCode::OK);
    // A forged token: the lead's id with another MAC.
    let forged = format!("/u/{}.{}", ids[5], "0".repeat(32));
    assert_eq!(
        http(&s.ports, Request::post(&forged).body(Body::empty()).unwrap_or_default()).await.0,
        StatusCode::FORBIDDEN
    );
    // SES tells of a permanent bounce and a complaint.
    for (event, email) in [("bounce-permanent", "bounce@gmail.com"), ("complaint", "complaint@gmail.com")] {
        leadflow_ses_events::handle_event(&*s.ports, &ses_event(event, email)).await.unwrap_or_else(|e| panic!("{e}"));
    }
    leadflow_app::sales::mark(&*s.ports, ids[4], SalesStatus::Won, None, None).await.unwrap_or_else(|e| panic!("{e}"));

    run_until(&s.ports, at("2026-03-12T00:00:00Z")).await;
    for (n, id) in names.iter().zip(&ids) {
        let sent = drip_times(&s.ports, *id).await.len();
        let state = s.ports.store.enrollments(*id).await.unwrap_or_default()[0].state.clone();
        if *n == "stays" {
            assert_eq!((sent, state), (3, EnrollmentState::Completed), "the forged token stopped nothing");
        } else {
            assert_eq!(sent, 1, "{n}: nothing after the opt-out");
            assert!(matches!(state, EnrollmentState::Stopped { .. }), "{n}: {state:?}");
        }
    }
}

#[tokio::test]
async fn an_open_and_a_click_raise_the_score_with_decay_and_a_click_over_mql_routes_the_lead() {
    let s = stack(at("2026-03-02T09:00:00Z"));
    // Corporate address (15) and a company (5), plus the form submission (10): 30, below MQL (40).
    let id = capture(&s.ports, json!({"email": "ada@globex.example", "first_name": "Ada", "company": "Globex"})).await;
    pipeline(&s.ports).await;
    let total = |l: Option<leadflow_core::model::Lead>| l.and_then(|l| l.score).map_or(0.0, |s| s.total);
    let before = total(s.ports.store.get_lead(id).await.ok().flatten());
    assert!(before < 40.0, "{before}");
    leadflow_ses_events::handle_event(&*s.ports, &ses_event("open", "ada@globex.example"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.ports.clock.advance(Duration::minutes(45)); // the open happened at 10:42
    pipeline(&s.ports).await;
    let lead = s.ports.store.get_lead(id).await.ok().flatten();
    let opened = total(lead.clone());
    let open_points = lead
        .and_then(|l| l.score)
        .and_then(|s| s.reasons.into_iter().find(|r| r.rule == "email_opens"))
        .map_or(0.0, |r| r.points);
    assert!((open_points - 2.0).abs() < 0.01, "an open is worth 2 points at first: {open_points}");
    assert!(opened > before);
    // A week later (the open's half-life) it is worth half as much.
    s.ports.clock.advance(Duration::days(7));
    let body = json!({"lead_id": id, "cause": "decay"}).to_string();
    s.ports.queue.send(Stage::Score, &[body]).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&s.ports).await;
    let decayed = s
        .ports
        .store
        .get_lead(id)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.score)
        .and_then(|s| s.reasons.into_iter().find(|r| r.rule == "email_opens"))
        .map_or(0.0, |r| r.points);
    assert!((decayed - 1.0).abs() < 0.01, "half after one half-life: {decayed}");
    // A fresh form submission and a click push it over MQL: it is routed.
    capture(&s.ports, json!({"email": "ada@globex.example", "first_name": "Ada", "company": "Globex"})).await;
    let mut click = ses_event("click", "ada@globex.example");
    click["detail"]["click"]["timestamp"] = json!(s.ports.clock.now().to_rfc3339());
    leadflow_ses_events::handle_event(&*s.ports, &click).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&s.ports).await;
    let lead = s.ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead"));
    assert!(lead.lifecycle >= leadflow_core::model::Lifecycle::Mql, "{:?}", lead.score);
    assert!(lead.owner.is_some(), "an MQL is routed");
}

// ---- SLA ------------------------------------------------------------------------------------

/// Emails the outbox holds for `to`, by subject.
fn subjects_to(dir: &std::path::Path, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("outbox")).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let Some(m) = mail_parser::MessageParser::default().parse(&bytes) else { continue };
        if m.to().and_then(|a| a.first()).and_then(|a| a.address()) == Some(to) {
            out.push(m.subject().unwrap_or_default().to_string());
        }
    }
    out
}

fn qualified(email: &str) -> Value {
    json!({"email": email, "first_name": "Vera", "job_title": "VP Sales", "company": "Globex", "country": "DE"})
}

#[tokio::test]
async fn a_lead_not_contacted_within_the_sla_goes_to_another_rep_and_both_are_told() {
    let s = stack(at("2026-03-02T10:00:00Z"));
    let late = capture(&s.ports, qualified("vera@globex.example")).await;
    let on_time = capture(&s.ports, qualified("otto@initech.example")).await;
    pipeline(&s.ports).await;
    let owner = |id| {
        let ports = Arc::clone(&s.ports);
        async move {
            ports.store.get_lead(id).await.ok().flatten().and_then(|l| l.owner).map(|o| o.rep_id).unwrap_or_default()
        }
    };
    let first = owner(late).await;
    assert!(["anna", "ben"].contains(&first.as_str()), "EMEA owns it: {first}");
    leadflow_app::sales::mark(&*s.ports, on_time, SalesStatus::Contacted, None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let on_time_owner = owner(on_time).await;

    // Three hours: within the four-hour SLA, nothing moves.
    s.ports.clock.advance(Duration::hours(3));
    let report = leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&s.ports).await;
    assert_eq!((report.sla_breaches, owner(late).await), (0, first.clone()));
    // Past it: the tick hands the breach to route, where the other EMEA rep gets the lead and
    // the breach goes on the trail. Delivered twice, it moves the lead once.
    s.ports.clock.advance(Duration::hours(1) + Duration::minutes(1));
    let report = leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.sla_breaches, 1, "only the lead nobody contacted");
    let handed = s.ports.queue.drain(Stage::Route);
    for body in handed.iter().chain(&handed) {
        s.ports.queue.send(Stage::Route, std::slice::from_ref(body)).await.unwrap_or_else(|e| panic!("{e}"));
    }
    pipeline(&s.ports).await;
    let second = owner(late).await;
    assert!(["anna", "ben"].contains(&second.as_str()) && second != first, "{first} → {second}");
    assert_eq!(owner(on_time).await, on_time_owner, "a contacted lead stays");
    let trail = s.ports.store.activities(late).await.unwrap_or_default();
    assert!(trail.iter().any(|a| matches!(&a.kind,
        ActivityKind::SlaBreached { rep_id, rerouted_to } if *rep_id == first && rerouted_to.as_deref() == Some(second.as_str()))));
    // Both reps are told, once: the new owner gets the assignment, the first a note.
    let mail = |rep: &str| subjects_to(s._dir.path(), &format!("{rep}@acme.example"));
    assert_eq!(mail(&first).iter().filter(|s| s.contains("reassigned")).count(), 1, "{:?}", mail(&first));
    assert!(!mail(&second).is_empty(), "the new owner's assignment email");
    let again = leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.sla_breaches, 0, "the new owner has a fresh SLA");
}

#[tokio::test]
async fn marketing_can_migrate_enrolled_leads_to_the_new_version_on_purpose() {
    let s = stack(at("2025-03-03T10:00:00Z"));
    apply(&s.ports, OFFICE_HOURS, 2).await;
    let id = capture(&s.ports, json!({"email": "mira@gmail.com", "time_zone": "Europe/Berlin"})).await;
    pipeline(&s.ports).await;
    leadflow_nurture::tick(&*s.ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    // v3 rewrites the case study and drops the demo.
    let v3 = OFFICE_HOURS
        .replace("subject: \"A case study\"", "subject: \"A better case study\"")
        .replace("  - { id: demo, wait: 2d, subject: \"A demo?\", text: \"Demo?\", html: \"<p>Demo?</p>\" }\n", "");
    apply(&s.ports, &v3, 3).await;
    let req = Request::post("/admin/campaigns/welcome/migrate")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap_or_default();
    let resp = leadflow_admin::router(Arc::clone(&s.ports), AdminAuth::Upstream).oneshot(req).await.unwrap_or_default();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!((answer["migrated"].as_u64(), answer["to_version"].as_u64()), (Some(1), Some(3)), "{answer}");
    let e = s.ports.store.enrollments(id).await.unwrap_or_default();
    assert_eq!((e[0].campaign_version, e[0].next_step), (3, 1), "at the case study, in v3");
    run_until(&s.ports, at("2025-03-12T00:00:00Z")).await;
    let sent: Vec<_> = drip_times(&s.ports, id).await.into_iter().map(|(step, _)| step).collect();
    assert_eq!(sent, vec!["hello", "study"], "v3's steps from where the lead was; no demo");
    let subjects = subjects_to(s._dir.path(), "mira@gmail.com");
    assert!(subjects.iter().any(|s| s == "A better case study"), "{subjects:?}");
}
