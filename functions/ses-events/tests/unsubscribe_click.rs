//! Issue 9, finding 9: a click on the lead's unsubscribe link (a mail scanner opening every link
//! of an email sent before the link was left out of click tracking) stays on the trail but adds
//! no points, while a click on any other link still does. The score stage scores what the
//! events recorded, over the in-memory adapters.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use leadflow_core::config::CompiledConfig;
use leadflow_core::messages::ScoreMessage;
use leadflow_core::model::ActivityKind;
use leadflow_core::ports::{Adapters, ConfigHandle, Stage};
use leadflow_core::ports::{Leads, Trails};
use leadflow_core::unsubscribe;
use leadflow_memory::fixtures::{id, lead};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use leadflow_ses_events::{Outcome, Report, handle_event};
use serde_json::{Value, json};

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const ADA: &str = "ada@example.com";
const SECRET: &str = "the-deployment-s-unsubscribe-secret";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).single().unwrap_or_default()
}

async fn ports() -> Arc<MemPorts> {
    let compiled = CompiledConfig::compile(&leadflow_app::config_files::sample());
    let Ok(mut config) = compiled else { unreachable!("the sample configuration compiles: {compiled:?}") };
    config.settings.signing_keys = SECRET.into();
    let ports = Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(now()),
        config: ConfigHandle::new(config),
    });
    assert!(ports.store.create_lead(&lead(1, ADA), &[]).await.is_ok());
    ports
}

/// The fixture's click on a drip email to Ada, on `link`, at `at`.
fn click_on(link: &str, at: &str) -> Value {
    let text = include_str!("fixtures/click.json");
    let mut event: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    event["detail"]["click"]["link"] = json!(link);
    event["detail"]["click"]["timestamp"] = json!(at);
    event
}

/// Ada's unsubscribe link as nurture writes it into her emails.
fn unsubscribe_link() -> String {
    let token = unsubscribe::sign(&SECRET.into(), id(1)).unwrap_or_default();
    format!("https://leads.acme.example.com/u/{token}")
}

async fn handle(ports: &Arc<MemPorts>, event: &Value) -> Report {
    match handle_event(&**ports, event).await {
        Ok(Outcome::Handled(report)) => report,
        other => unreachable!("expected a handled event, got {other:?}"),
    }
}

/// Ada's behaviour points once the score stage has scored her.
async fn behaviour_points(ports: &Arc<MemPorts>) -> f64 {
    let message = ScoreMessage::rescore(id(1), "test");
    let scored = leadflow_score::rescore(&**ports, &message).await;
    let lead = scored.ok().flatten().unwrap_or_else(|| unreachable!("Ada is scored"));
    lead.score.map(|s| s.behaviour).unwrap_or_default()
}

async fn clicked_links(ports: &Arc<MemPorts>) -> Vec<Option<String>> {
    let trail = ports.store.activities(id(1)).await.unwrap_or_default();
    trail
        .into_iter()
        .filter_map(|a| match a.kind {
            ActivityKind::EmailClicked { url, .. } => Some(url),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_click_on_the_unsubscribe_link_adds_no_points_and_another_click_still_does() {
    let ports = ports().await;
    let before = behaviour_points(&ports).await;

    let report = handle(&ports, &click_on(&unsubscribe_link(), "2026-03-02T10:43:01.905Z")).await;
    assert_eq!(report.leads, vec![id(1)], "recorded on Ada");
    assert!(!report.rescored, "nothing to score again");
    assert!(ports.queue.drain(Stage::Score).is_empty());
    assert_eq!(clicked_links(&ports).await, vec![Some(unsubscribe_link())], "on the trail as it happened");
    assert_eq!(behaviour_points(&ports).await, before, "and worth nothing");

    let pricing = "https://www.acme.example.com/pricing";
    let report = handle(&ports, &click_on(pricing, "2026-03-02T10:44:00.000Z")).await;
    assert!(report.rescored);
    assert_eq!(ports.queue.drain(Stage::Score).len(), 1);
    let after = behaviour_points(&ports).await;
    // The sample's click rule: 8 points, half-life 10 days; the click is 76 minutes old.
    assert!(after - before > 7.9 && after - before <= 8.0, "one click counted: {before} → {after}");
    assert_eq!(clicked_links(&ports).await.len(), 2);
}
