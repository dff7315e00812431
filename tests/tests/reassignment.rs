//! Issue 9, finding 11: a lead the SLA moves from one rep to the other and back tells the first
//! rep again, since the assignment email is one per assignment, not one per rep; a redelivered
//! message of an assignment still sends nothing more.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::LeadId;
use leadflow_core::ports::Leads;
use leadflow_core::ports::{Stage, StageQueue};
use leadflow_tests::harness::{MemPorts, capture, memory_ports, pipeline};
use serde_json::json;

/// A Monday morning; the test reps work around the clock, so the SLA is four plain hours.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

async fn owner(ports: &Arc<MemPorts>, id: LeadId) -> String {
    let lead = ports.store.get_lead(id).await.ok().flatten();
    lead.and_then(|l| l.owner).map(|o| o.rep_id).unwrap_or_default()
}

/// The keys of the assignment emails each rep got about the lead, oldest first.
fn assignment_emails(ports: &Arc<MemPorts>, id: LeadId, rep: &str) -> Vec<String> {
    let to = format!("{rep}@acme.example");
    let prefix = format!("assignment-{id}-");
    ports.mailer.sent().into_iter().filter(|e| e.to.email == to && e.key.starts_with(&prefix)).map(|e| e.key).collect()
}

/// Lets the owner's SLA run out, and has the nurture tick hand the breach to route; answers the
/// route messages the tick queued (delivered by the caller).
async fn breach(ports: &Arc<MemPorts>) -> Vec<String> {
    ports.clock.advance(Duration::hours(4) + Duration::minutes(1));
    let report = leadflow_nurture::tick(&**ports, 500).await.unwrap_or_else(|e| panic!("tick: {e}"));
    assert_eq!(report.sla_breaches, 1, "{report:?}");
    ports.queue.drain(Stage::Route)
}

async fn redeliver(ports: &Arc<MemPorts>, bodies: &[String]) {
    ports.queue.send(Stage::Route, bodies).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(ports).await;
}

#[tokio::test]
async fn a_lead_rerouted_back_to_a_rep_emails_that_rep_again_and_a_redelivery_sends_nothing_more() {
    let ports = memory_ports(monday());
    let lead = json!({"email": "vera@globex.example", "first_name": "Vera", "job_title": "VP Sales",
                      "company": "Globex", "country": "DE"});
    let id = capture(&ports, lead).await;
    pipeline(&ports).await;
    let first = owner(&ports, id).await;
    let second = if first == "anna" { "ben".to_string() } else { "anna".to_string() };
    assert!(["anna", "ben"].contains(&first.as_str()), "EMEA owns it: {first}");
    assert_eq!(assignment_emails(&ports, id, &first).len(), 1);

    // The first rep lets the SLA run out: the lead goes to the other EMEA rep.
    let to_second = breach(&ports).await;
    redeliver(&ports, &to_second).await;
    assert_eq!(owner(&ports, id).await, second);
    assert_eq!(assignment_emails(&ports, id, &second).len(), 1);

    // So does the second: the lead comes back to the first, who is told again.
    let back = breach(&ports).await;
    redeliver(&ports, &back).await;
    assert_eq!(owner(&ports, id).await, first);
    let told = assignment_emails(&ports, id, &first);
    assert_eq!(told.len(), 2, "the first rep gets the lead back and an email about it: {told:?}");
    assert_ne!(told[0], told[1]);

    // Every message of these assignments delivered again (the queue's at-least-once), and a
    // plain route message for the lead: no email goes out twice.
    let sent = ports.mailer.sent().len();
    redeliver(&ports, &to_second).await;
    redeliver(&ports, &back).await;
    redeliver(&ports, &back).await;
    let route = serde_json::to_string(&RouteMessage::route(id)).unwrap_or_default();
    redeliver(&ports, &[route.clone(), route]).await;
    assert_eq!(ports.mailer.sent().len(), sent, "{:?}", ports.mailer.sent().iter().map(|e| &e.key).collect::<Vec<_>>());
    assert_eq!(owner(&ports, id).await, first, "and the lead stays where it is");
}
