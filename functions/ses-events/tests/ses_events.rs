//! SES events over the in-memory adapters, with realistic EventBridge fixtures: bounces and
//! complaints suppress and stop, engagement is recorded and rescored, repeats change nothing.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use leadflow_app::StageError;
use leadflow_core::config::CompiledConfig;
use leadflow_core::messages::ScoreMessage;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle, Stage};
use leadflow_core::ports::{Enrollments, Leads, Suppressions, Trails};
use leadflow_memory::fixtures::{enrollment, id, lead, t};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use leadflow_ses_events::event::{BounceType, Parsed, SesEvent, parse};
use leadflow_ses_events::{Outcome, Report, handle_event};
use serde_json::{Value, json};

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const ADA: &str = "ada@example.com";
const MESSAGE_ID: &str = "010f018e0b5c7d2a-6f1f4f3e-6a43-4f0e-9d6b-2b8c3f1e7a55-000000";

fn fixture(name: &str) -> Value {
    let text = match name {
        "bounce-permanent" => include_str!("fixtures/bounce-permanent.json"),
        "bounce-transient" => include_str!("fixtures/bounce-transient.json"),
        "complaint" => include_str!("fixtures/complaint.json"),
        "delivery" => include_str!("fixtures/delivery.json"),
        "open" => include_str!("fixtures/open.json"),
        "click" => include_str!("fixtures/click.json"),
        "send" => include_str!("fixtures/send.json"),
        other => unreachable!("no fixture {other}"),
    };
    let value = serde_json::from_str(text);
    assert!(value.is_ok(), "{name}.json is JSON: {:?}", value.as_ref().err());
    value.unwrap_or(Value::Null)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).single().unwrap_or_default()
}

fn ports() -> Arc<MemPorts> {
    let compiled = CompiledConfig::compile(&leadflow_app::config_files::sample());
    assert!(compiled.is_ok(), "the sample configuration compiles: {:?}", compiled.as_ref().err());
    let Ok(config) = compiled else { unreachable!() };
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(now()),
        config: ConfigHandle::new(config),
    })
}

/// Lead 1 (Ada, the fixtures' `lead_id` tag), in an active and a completed enrollment.
async fn with_ada() -> Arc<MemPorts> {
    let ports = ports();
    let store = &ports.store;
    assert!(store.create_lead(&lead(1, ADA), &[]).await.is_ok());
    assert_eq!(
        store.enroll(&enrollment(1, "welcome", Some(t(3600)), EnrollmentState::Active), &[]).await.ok(),
        Some(true)
    );
    assert_eq!(store.enroll(&enrollment(1, "old", None, EnrollmentState::Completed), &[]).await.ok(), Some(true));
    ports
}

async fn handle(ports: &Arc<MemPorts>, event: &Value) -> Report {
    match handle_event(&**ports, event).await {
        Ok(Outcome::Handled(report)) => report,
        other => unreachable!("expected a handled event, got {other:?}"),
    }
}

async fn activities(ports: &Arc<MemPorts>) -> Vec<Activity> {
    ports.store.activities(id(1)).await.unwrap_or_default()
}

async fn kinds(ports: &Arc<MemPorts>, name: &str) -> Vec<ActivityKind> {
    activities(ports).await.into_iter().map(|a| a.kind).filter(|k| k.name() == name).collect()
}

async fn suppression(ports: &Arc<MemPorts>, address: &str) -> Option<(SuppressionReason, Option<String>)> {
    let entry = ports.store.suppression(&email_key(address)).await;
    assert!(entry.is_ok(), "the store answers suppression lookups: {:?}", entry.as_ref().err());
    entry.ok().flatten().map(|s| (s.reason, s.lead_id.map(|l| l.to_string())))
}

async fn welcome_state(ports: &Arc<MemPorts>) -> Option<EnrollmentState> {
    let enrollments = ports.store.enrollments(id(1)).await.unwrap_or_default();
    enrollments.into_iter().find(|e| e.campaign_id == "welcome").map(|e| e.state)
}

async fn old_state(ports: &Arc<MemPorts>) -> Option<EnrollmentState> {
    let enrollments = ports.store.enrollments(id(1)).await.unwrap_or_default();
    enrollments.into_iter().find(|e| e.campaign_id == "old").map(|e| e.state)
}

fn score_messages(ports: &Arc<MemPorts>) -> Vec<ScoreMessage> {
    ports.queue.drain(Stage::Score).iter().filter_map(|b| serde_json::from_str(b).ok()).collect()
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_default()
}

/// The event as an email to `address` with no Leadflow tags (sent outside Leadflow, or by a
/// version that did not tag).
fn untagged_to(mut event: Value, address: &str) -> Value {
    let detail = &mut event["detail"];
    detail["mail"]["tags"] = json!({ "ses:configuration-set": ["leadflow"] });
    detail["mail"]["destination"] = json!([address]);
    for (part, list) in [("bounce", "bouncedRecipients"), ("complaint", "complainedRecipients")] {
        if detail[part].is_object() {
            detail[part][list] = json!([{ "emailAddress": address }]);
        }
    }
    if detail["delivery"].is_object() {
        detail["delivery"]["recipients"] = json!([address]);
    }
    event
}

// --- parsing -------------------------------------------------------------------------------

#[test]
fn every_fixture_parses_to_its_event() {
    let parsed = |name: &str| match parse(&fixture(name)) {
        Ok(Parsed::Event(e)) => e,
        other => unreachable!("{name}: {other:?}"),
    };
    let bounce = parsed("bounce-permanent");
    assert!(
        matches!(&bounce, SesEvent::Bounce { bounce_type: BounceType::Permanent, recipients, .. } if recipients == &[ADA])
    );
    assert_eq!(bounce.at(), at("2026-03-02T09:00:01.874Z"));
    assert_eq!(bounce.mail().message_id, MESSAGE_ID);
    assert_eq!(bounce.mail().lead_id(), Some(id(1)));
    assert_eq!(bounce.mail().email_key(), Some(format!("drip-{}-welcome-v1-intro", id(1)).as_str()));
    assert!(matches!(parsed("bounce-transient"), SesEvent::Bounce { bounce_type: BounceType::Transient, .. }));
    assert!(matches!(parsed("complaint"), SesEvent::Complaint { recipients, .. } if recipients == [ADA]));
    assert!(matches!(parsed("delivery"), SesEvent::Delivery { recipients, .. } if recipients == [ADA]));
    assert_eq!(parsed("open").at(), at("2026-03-02T10:42:17.391Z"));
    assert!(matches!(
        parsed("click"),
        SesEvent::Click { link: Some(l), .. } if l.starts_with("https://www.acme.example.com/pricing")
    ));
}

#[test]
fn a_bare_record_without_the_eventbridge_envelope_parses() {
    let record = fixture("open")["detail"].clone();
    assert!(matches!(parse(&record), Ok(Parsed::Event(SesEvent::Open { .. }))));
}

#[test]
fn a_record_without_event_type_is_read_by_its_detail_type() {
    let mut event = fixture("bounce-permanent");
    if let Some(detail) = event["detail"].as_object_mut() {
        detail.remove("eventType");
    }
    assert!(matches!(parse(&event), Ok(Parsed::Event(SesEvent::Bounce { .. }))));
}

// --- bounces and complaints ----------------------------------------------------------------

#[tokio::test]
async fn a_permanent_bounce_suppresses_the_address_and_stops_the_leads_enrollments() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("bounce-permanent")).await;
    assert_eq!(report.event, "bounce");
    assert_eq!(report.leads, vec![id(1)]);
    assert_eq!(report.newly_suppressed, 1);
    assert!(!report.rescored);

    assert_eq!(suppression(&ports, ADA).await, Some((SuppressionReason::Bounced, Some(id(1).to_string()))));
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Stopped { reason: "bounced".into() }));
    assert_eq!(old_state(&ports).await, Some(EnrollmentState::Completed));
    let bounces = activities(&ports).await.into_iter().filter(|a| a.kind.name() == "email_bounce").collect::<Vec<_>>();
    assert_eq!(bounces.len(), 1);
    assert_eq!(bounces[0].kind, ActivityKind::EmailBounced { message_id: MESSAGE_ID.into(), permanent: true });
    assert_eq!(bounces[0].at, at("2026-03-02T09:00:01.874Z"), "recorded at the bounce's time");
    assert!(score_messages(&ports).is_empty());
}

#[tokio::test]
async fn a_complaint_suppresses_the_address_and_stops_the_leads_enrollments() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("complaint")).await;
    assert_eq!((report.event, report.newly_suppressed), ("complaint", 1));
    assert_eq!(suppression(&ports, ADA).await, Some((SuppressionReason::Complained, Some(id(1).to_string()))));
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Stopped { reason: "complained".into() }));
    assert_eq!(
        kinds(&ports, "email_complaint").await,
        vec![ActivityKind::EmailComplained { message_id: MESSAGE_ID.into() }]
    );
}

#[tokio::test]
async fn a_transient_bounce_is_recorded_but_does_not_suppress() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("bounce-transient")).await;
    assert_eq!((report.newly_suppressed, report.leads.clone()), (0, vec![id(1)]));
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
    assert_eq!(
        kinds(&ports, "email_bounce").await,
        vec![ActivityKind::EmailBounced { message_id: MESSAGE_ID.into(), permanent: false }]
    );
}

#[tokio::test]
async fn an_undetermined_bounce_does_not_suppress() {
    let ports = with_ada().await;
    let mut event = fixture("bounce-permanent");
    event["detail"]["bounce"]["bounceType"] = json!("Undetermined");
    handle(&ports, &event).await;
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
}

#[tokio::test]
async fn a_permanent_bounce_for_an_unknown_address_still_suppresses_it() {
    let ports = with_ada().await;
    let report = handle(&ports, &untagged_to(fixture("bounce-permanent"), "nobody@example.test")).await;
    assert_eq!((report.newly_suppressed, report.leads.clone()), (1, vec![]));
    assert_eq!(suppression(&ports, "nobody@example.test").await, Some((SuppressionReason::Bounced, None)));
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
}

#[tokio::test]
async fn a_complaint_for_an_unknown_address_still_suppresses_it() {
    let ports = ports();
    let report = handle(&ports, &fixture("complaint")).await;
    assert_eq!(report.newly_suppressed, 1);
    assert_eq!(suppression(&ports, ADA).await, Some((SuppressionReason::Complained, None)));
}

#[tokio::test]
async fn without_a_tag_the_lead_is_found_by_the_recipients_address() {
    let ports = with_ada().await;
    // SES reports the address as it was sent; the match is on the normalized form.
    let report = handle(&ports, &untagged_to(fixture("bounce-permanent"), "Ada@EXAMPLE.com")).await;
    assert_eq!(report.leads, vec![id(1)]);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Stopped { reason: "bounced".into() }));
}

#[tokio::test]
async fn a_tag_naming_a_merged_capture_id_finds_the_lead_it_was_merged_into() {
    let ports = with_ada().await;
    assert_eq!(ports.store.record_alias(id(7), id(1)).await.ok(), Some(true));
    let mut event = fixture("open");
    event["detail"]["mail"]["tags"]["lead_id"] = json!([id(7).to_string()]);
    event["detail"]["mail"]["destination"] = json!([]);
    let report = handle(&ports, &event).await;
    assert_eq!(report.leads, vec![id(1)]);
}

/// An assignment email carries the lead's tag but goes to the rep: its bounce is the rep's.
#[tokio::test]
async fn a_bounced_assignment_email_suppresses_the_rep_and_leaves_the_lead_alone() {
    let ports = with_ada().await;
    let mut event = fixture("bounce-permanent");
    let rep = "rep.one@example.test";
    event["detail"]["mail"]["destination"] = json!([rep]);
    event["detail"]["mail"]["tags"]["email"] = json!([format!("assignment-{}-rep1", id(1))]);
    event["detail"]["bounce"]["bouncedRecipients"] = json!([{ "emailAddress": rep, "status": "5.1.1" }]);
    let report = handle(&ports, &event).await;
    assert!(report.leads.is_empty());
    assert_eq!(suppression(&ports, rep).await, Some((SuppressionReason::Bounced, None)));
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
    assert!(kinds(&ports, "email_bounce").await.is_empty());
}

#[tokio::test]
async fn an_opened_assignment_email_is_not_the_leads_engagement() {
    let ports = with_ada().await;
    let mut event = fixture("open");
    event["detail"]["mail"]["destination"] = json!(["rep.one@example.test"]);
    event["detail"]["mail"]["tags"]["email"] = json!([format!("assignment-{}-rep1", id(1))]);
    let report = handle(&ports, &event).await;
    assert!(report.leads.is_empty());
    assert!(!report.rescored);
    assert!(kinds(&ports, "email_open").await.is_empty());
    assert!(score_messages(&ports).is_empty());
}

// --- engagement ----------------------------------------------------------------------------

#[tokio::test]
async fn an_open_is_recorded_and_the_lead_is_scored_again() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("open")).await;
    assert_eq!((report.event, report.leads.clone(), report.rescored), ("open", vec![id(1)], true));
    let opens = activities(&ports).await.into_iter().filter(|a| a.kind.name() == "email_open").collect::<Vec<_>>();
    assert_eq!(opens.len(), 1);
    assert_eq!(
        opens[0].kind,
        ActivityKind::EmailOpened {
            message_id: MESSAGE_ID.into(),
            email: Some(format!("drip-{}-welcome-v1-intro", id(1))),
        }
    );
    assert_eq!(opens[0].at, at("2026-03-02T10:42:17.391Z"));
    assert_eq!(score_messages(&ports), vec![ScoreMessage::rescore(id(1), "activity")]);
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
}

#[tokio::test]
async fn a_click_is_recorded_with_its_link_and_the_lead_is_scored_again() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("click")).await;
    assert!(report.rescored);
    assert_eq!(
        kinds(&ports, "email_click").await,
        vec![ActivityKind::EmailClicked {
            message_id: MESSAGE_ID.into(),
            email: Some(format!("drip-{}-welcome-v1-intro", id(1))),
            url: Some(
                "https://www.acme.example.com/pricing?utm_source=leadflow&utm_medium=email&utm_campaign=welcome".into()
            ),
        }]
    );
    assert_eq!(score_messages(&ports), vec![ScoreMessage::rescore(id(1), "activity")]);
}

#[tokio::test]
async fn a_delivery_is_recorded_without_rescoring() {
    let ports = with_ada().await;
    let report = handle(&ports, &fixture("delivery")).await;
    assert!(!report.rescored);
    assert_eq!(
        kinds(&ports, "email_delivered").await,
        vec![ActivityKind::EmailDelivered { message_id: MESSAGE_ID.into() }]
    );
    assert!(score_messages(&ports).is_empty());
}

#[tokio::test]
async fn engagement_for_an_unknown_address_records_nothing() {
    let ports = with_ada().await;
    let report = handle(&ports, &untagged_to(fixture("open"), "nobody@example.test")).await;
    assert!(report.leads.is_empty() && !report.rescored);
    assert!(kinds(&ports, "email_open").await.is_empty());
    assert!(score_messages(&ports).is_empty());
}

#[tokio::test]
async fn two_opens_at_different_times_are_two_activities() {
    let ports = with_ada().await;
    let first = fixture("open");
    let mut second = fixture("open");
    second["detail"]["open"]["timestamp"] = json!("2026-03-03T08:01:00.000Z");
    handle(&ports, &first).await;
    handle(&ports, &second).await;
    assert_eq!(kinds(&ports, "email_open").await.len(), 2);
}

#[tokio::test]
async fn two_clicks_on_different_links_at_the_same_time_are_two_activities() {
    let ports = with_ada().await;
    let first = fixture("click");
    let mut second = fixture("click");
    second["detail"]["click"]["link"] = json!("https://www.acme.example.com/demo");
    handle(&ports, &first).await;
    handle(&ports, &second).await;
    assert_eq!(kinds(&ports, "email_click").await.len(), 2);
}

// --- idempotency ---------------------------------------------------------------------------

#[tokio::test]
async fn the_same_event_twice_records_once_and_suppresses_once() {
    for name in ["bounce-permanent", "bounce-transient", "complaint", "delivery", "open", "click"] {
        let ports = with_ada().await;
        let event = fixture(name);
        let first = handle(&ports, &event).await;
        let trail = activities(&ports).await;
        let second = handle(&ports, &event).await;
        assert_eq!(activities(&ports).await, trail, "{name}: the trail did not grow");
        assert!(first.newly_suppressed <= 1, "{name}");
        assert_eq!(second.newly_suppressed, 0, "{name}: suppressed once");
        assert_eq!(first.leads, second.leads, "{name}");
        let stopped = trail.iter().filter(|a| a.kind.name() == "enrollment_ended").count();
        assert!(stopped <= 1, "{name}: one enrollment stopped once");
    }
}

// --- ignored and malformed events ----------------------------------------------------------

#[tokio::test]
async fn event_types_not_used_are_ignored() {
    let ports = with_ada().await;
    let mut unknown_detail_type = fixture("send");
    unknown_detail_type["detail-type"] = json!("Email Rendering Failed");
    if let Some(detail) = unknown_detail_type["detail"].as_object_mut() {
        detail.remove("eventType");
    }
    let mut other_source = fixture("open");
    other_source["source"] = json!("aws.s3");
    let scheduled = json!({
        "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "time": "2026-03-02T12:00:00Z", "detail": {}
    });
    for event in [fixture("send"), unknown_detail_type, other_source, scheduled] {
        let outcome = handle_event(&*ports, &event).await;
        assert!(matches!(outcome, Ok(Outcome::Ignored(_))), "{outcome:?} for {event}");
    }
    assert_eq!(activities(&ports).await.len(), 0);
    assert!(score_messages(&ports).is_empty());
}

#[tokio::test]
async fn malformed_events_are_permanent_errors_that_name_no_address() {
    let ports = with_ada().await;
    let mut no_mail = fixture("bounce-permanent");
    if let Some(detail) = no_mail["detail"].as_object_mut() {
        detail.remove("mail");
    }
    let mut no_message_id = fixture("open");
    no_message_id["detail"]["mail"]["messageId"] = json!("");
    let mut bad_bounce_type = fixture("bounce-permanent");
    bad_bounce_type["detail"]["bounce"]["bounceType"] = json!("Sideways");
    let mut no_bounce = fixture("bounce-permanent");
    if let Some(detail) = no_bounce["detail"].as_object_mut() {
        detail.remove("bounce");
    }
    let mut destination_not_a_list = fixture("complaint");
    destination_not_a_list["detail"]["mail"]["destination"] = json!(ADA);
    let mut bad_time = fixture("click");
    bad_time["detail"]["click"]["timestamp"] = json!("yesterday");
    let mut detail_not_object = fixture("open");
    detail_not_object["detail"] = json!("ada@example.com");
    let cases = [
        json!("not an object"),
        json!([1, 2, 3]),
        json!({ "hello": "world" }),
        no_mail,
        no_message_id,
        bad_bounce_type,
        no_bounce,
        destination_not_a_list,
        bad_time,
        detail_not_object,
    ];
    for event in cases {
        match handle_event(&*ports, &event).await {
            Err(StageError::Permanent(reason)) => {
                assert!(!reason.contains(ADA), "{reason}");
                assert!(!reason.is_empty());
            }
            other => unreachable!("expected a permanent error for {event}, got {other:?}"),
        }
    }
    assert_eq!(suppression(&ports, ADA).await, None);
    assert_eq!(welcome_state(&ports).await, Some(EnrollmentState::Active));
}

#[tokio::test]
async fn a_queue_failure_is_retryable_and_the_retry_records_nothing_twice() {
    let ports = with_ada().await;
    ports.queue.fail_next(1);
    let failed = handle_event(&*ports, &fixture("click")).await;
    assert!(matches!(failed, Err(StageError::Retryable(_))), "{failed:?}");
    let retried = handle(&ports, &fixture("click")).await;
    assert!(retried.rescored);
    assert_eq!(kinds(&ports, "email_click").await.len(), 1);
    assert_eq!(score_messages(&ports).len(), 1);
}
