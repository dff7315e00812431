//! The whole pipeline on moto (`LEADFLOW_MOTO_ENDPOINT`), through the real SQS, DynamoDB, SES v2
//! and EventBridge APIs, with the real handlers run the way Lambda runs them:
//!
//! - capture gets an API Gateway HTTP API (payload 2.0) event through `lambda_http`;
//! - validate, score and route get `SqsEvent`s built from messages really received from their
//!   queues, by [`EventSourceMapping`], which does what Lambda's SQS event source mapping does
//!   with `ReportBatchItemFailures`: receive a batch, invoke, delete the records the response
//!   does not name, leave the others to come back after the visibility timeout (and, after
//!   `maxReceiveCount` receives, to go to the DLQ).
//!
//! Every test provisions its own table and queues from template.yaml under a unique prefix,
//! verifies its own sender and taps the default event bus with its own rule and queue, so the
//! tests run in parallel in one moto. Nothing waits a fixed time: every wait is a poll with a
//! deadline.
//!
//! The scenarios are here; the harness they drive is in the modules: `deployment` (provisioning
//! and the test's handles on it), `mapping` (Lambda's event source mapping), `observe` (events
//! and emails as they come out) and `counting` (requests per operation).

#[path = "../common/mod.rs"]
mod common;
mod counting;
mod deployment;
mod mapping;
mod observe;
mod write_units;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use leadflow_core::model::LeadId;
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Assignments, Leads, Stage, Trails};
use serde_json::{Value, json};

use counting::{table_of, total};
use deployment::Pipeline;
use mapping::messages_held;

/// The page the fixture's requests come from; the tests' configuration allows it.
const ORIGIN: &str = "https://www.acme.example";
/// How long any one wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Routing for the tests: the sample's teams, reps without working hours (so that who gets a
/// lead does not depend on when the tests run), one rep in EMEA (so that who gets it is known).
const ROUTING: &str = r#"
fallback_owner = "desk"
sla_hours = 4

[[reps]]
id = "anna"
name = "Anna Schmidt"
email = "anna@acme.example"
time_zone = "Europe/Berlin"

[[reps]]
id = "carla"
name = "Carla Diaz"
email = "carla@acme.example"
time_zone = "America/New_York"

[[reps]]
id = "desk"
name = "Sales Desk"
email = "desk@acme.example"

[[teams]]
id = "emea"
name = "EMEA"
when = [{ field = "country", in = ["DE", "AT", "CH", "FR", "GB"] }]
members = [{ rep = "anna", weight = 1 }]

[[teams]]
id = "americas"
name = "Americas"
when = [{ field = "country", in = ["US", "CA"] }]
members = [{ rep = "carla", weight = 1 }]
"#;
const EMEA_REP: &str = "anna";
const EMEA_REP_EMAIL: &str = "anna@acme.example";

/// A lead the sample scoring qualifies (corporate address, senior title, company, target
/// country, one form submission) and the test routing sends to EMEA.
fn qualified_lead() -> Value {
    json!({"email": "ana@acme.io", "first_name": "Ana", "job_title": "CTO", "company": "Acme", "country": "DE"})
}

fn deadline() -> Instant {
    Instant::now() + PATIENCE
}

#[tokio::test]
async fn a_qualified_lead_goes_from_the_http_api_to_its_rep_and_the_event_bus() {
    let p = Pipeline::new("flow", 30).await;
    let lead_id = p.capture_accepted(&qualified_lead()).await;

    let handled = p.settle(false).await;
    let stages: Vec<&str> = handled.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["validate", "score", "route"], "one batch per stage");

    let lead = p.lead(lead_id).await;
    let owner = lead.owner.clone().expect("the lead has an owner");
    assert_eq!((owner.rep_id.as_str(), owner.team_id.as_deref()), (EMEA_REP, Some("emea")));
    assert!(!owner.via_fallback);
    let score = lead.score.clone().expect("the lead is scored");
    assert!(!score.reasons.is_empty());

    let emails = p.emails_sent(1).await;
    assert_eq!(emails.len(), 1, "one assignment email");
    let email = &emails[0];
    assert!(email.destinations.iter().any(|d| d.contains(EMEA_REP_EMAIL)), "{:?}", email.destinations);
    assert!(email.subject.contains("Ana") && email.subject.contains("Acme"), "{}", email.subject);
    for part in [&email.text, &email.html] {
        assert!(part.contains("Ana") && part.contains("Acme") && part.contains("CTO"), "{part}");
    }
    for reason in &score.reasons {
        assert!(
            email.text.contains(&reason.explanation),
            "score reason {:?} missing:\n{}",
            reason.explanation,
            email.text
        );
    }
    assert!(owner.explanation.iter().any(|l| l.contains("Team EMEA matched")), "{:?}", owner.explanation);
    for line in &owner.explanation {
        assert!(email.text.contains(line.as_str()), "routing explanation {line:?} missing:\n{}", email.text);
    }

    // The whole trail, each entry written with the change it tells.
    let trail = p.inspect().activities(lead_id).await.expect("the trail");
    let kinds: Vec<&str> = trail.iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["form_submission", "stage_changed", "assigned", "email_sent"], "{trail:?}");

    let events = p.tap.events_for(&p.setup.sqs, lead_id, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["source"], "leadflow");
    assert_eq!(event["detail-type"], "lead.assigned");
    assert_eq!(event["detail"]["rep_id"], EMEA_REP);
    assert_eq!(event["detail"]["team_id"], "emea");
    assert_eq!(event["detail"]["lifecycle"], serde_json::to_value(lead.lifecycle).unwrap());
    p.clean_up().await;
}

#[tokio::test]
async fn every_message_delivered_twice_at_every_stage_changes_nothing_twice() {
    let p = Pipeline::new("twice", 30).await;
    let lead_id = p.capture_accepted(&qualified_lead()).await;

    let handled = p.settle(true).await;
    for stage in Stage::ALL {
        let messages: usize = handled.iter().filter(|(s, _)| *s == stage).map(|(_, b)| b.event.records.len()).sum();
        // Each stage saw its input at least twice over (the copy), each batch invoked twice.
        assert!(messages >= 2, "{} saw {messages} message(s)", stage.as_str());
        assert!(handled.iter().filter(|(s, _)| *s == stage).all(|(_, b)| b.responses.len() == 2));
    }

    let leads = p.lead_items().await;
    assert_eq!(leads.len(), 1, "one lead item: {:?}", leads.iter().map(|l| l.id).collect::<Vec<_>>());
    assert_eq!(leads[0].id, lead_id);
    assert_eq!(leads[0].submissions, 1, "the copies of the submission were not merged into it");
    assert_eq!(leads[0].owner.as_ref().map(|o| o.rep_id.as_str()), Some(EMEA_REP));

    let emails = p.emails_sent(1).await;
    assert_eq!(
        emails.len(),
        1,
        "one assignment email, to {:?}",
        emails.iter().map(|e| &e.destinations).collect::<Vec<_>>()
    );
    // Events are published at least once: the redelivered route message published it again,
    // under the same id, which is what consumers drop repeats by.
    let events = p.tap.events_for(&p.setup.sqs, lead_id, 1).await;
    let ids: std::collections::BTreeSet<&str> = events.iter().filter_map(|e| e["detail"]["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one lead.assigned event id: {events:?}");
    assert!(events.iter().all(|e| e["detail"]["id"].is_string()), "every event carries its id: {events:?}");
    let loads = p.inspect().rep_loads().await.expect("rep loads");
    assert_eq!(loads, BTreeMap::from([(EMEA_REP.to_string(), 1)]), "the rep-load counter");
    for stage in Stage::ALL {
        assert_eq!(messages_held(&p.setup.sqs, p.made.dlq_urls.url(stage)).await, 0, "{} DLQ", stage.as_str());
    }
    p.clean_up().await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_fails_alone_and_ends_in_the_dlq_after_five_receives() {
    // Failed messages come back after one second.
    let p = Pipeline::new("poison", 1).await;
    // The poison: an address whose email key names a lead that cannot be read. Validation
    // finds the address taken, cannot read the lead it is taken by, and asks for a retry
    // (StageError::Retryable, "not readable yet"): a genuinely retryable failure, not a
    // malformed body, which would be dropped.
    let poison_email = "poison@acme.io";
    let ghost = LeadId(ulid::Ulid::new());
    p.setup
        .ddb
        .put_item()
        .table_name(&p.made.table)
        .item("PK", AttributeValue::S(format!("EMAIL#{}", email_key(poison_email))))
        .item("SK", AttributeValue::S("LEAD".into()))
        .item("lead_id", AttributeValue::S(ghost.to_string()))
        .send()
        .await
        .expect("PutItem (the ghost's email key)");

    let good = [
        json!({"email": "ana@acme.io", "first_name": "Ana", "company": "Acme", "country": "DE"}),
        json!({"email": "ben@globex.example", "first_name": "Ben", "company": "Globex", "country": "GB"}),
        json!({"email": "chloe@initech.example", "first_name": "Chloe", "company": "Initech", "country": "FR"}),
    ];
    for lead in &good[..2] {
        p.capture_accepted(lead).await;
    }
    p.capture_accepted(&json!({"email": poison_email, "first_name": "Poison", "country": "DE"})).await;
    p.capture_accepted(&good[2]).await;

    let validate = Stage::Validate;
    let first = p.deliver(validate, 1, 1).await.expect("the first batch");
    assert_eq!(first.event.records.len(), 4, "the four submissions in one batch");
    let poison_record = first
        .event
        .records
        .iter()
        .find(|r| r.body.as_deref().is_some_and(|b| b.contains(poison_email)))
        .expect("the poison is in the batch");
    let poison_id = poison_record.message_id.clone().expect("message id");
    let poison_body = poison_record.body.clone().expect("body");
    let reported: Vec<String> = match first.responses.as_slice() {
        [Ok(response)] => response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect(),
        other => panic!("one response expected: {other:?}"),
    };
    assert_eq!(reported, [poison_id.as_str()], "only the poison is reported");
    assert_eq!(first.failed, [poison_id.as_str()]);
    assert_eq!(first.deleted.len(), 3);
    assert!(!first.deleted.contains(&poison_id));
    assert_eq!(first.receive_counts(), [1, 1, 1, 1]);
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.validate).await, 1, "only the poison is left");
    let mut stored: Vec<String> = p.lead_items().await.iter().map(|l| l.contact.email.clone()).collect();
    stored.sort();
    assert_eq!(stored, ["ana@acme.io", "ben@globex.example", "chloe@initech.example"]);
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.score).await, 3, "the neighbours moved on");

    // Lambda polls again and again; the poison comes back after each visibility timeout, fails
    // each time, and after maxReceiveCount (5) receives SQS moves it to the DLQ on the next
    // receive.
    let dlq = &p.made.dlq_urls.validate;
    let mut receives = vec![1];
    let until = deadline();
    while messages_held(&p.setup.sqs, dlq).await == 0 {
        assert!(Instant::now() < until, "the poison did not reach the DLQ; receives so far {receives:?}");
        let Some(batch) = p.deliver(validate, 1, 2).await else { continue };
        assert_eq!(batch.ids(), [poison_id.as_str()]);
        assert_eq!(batch.failed, [poison_id.as_str()], "{:?}", batch.responses);
        receives.extend(batch.receive_counts());
    }
    assert_eq!(receives, [1, 2, 3, 4, 5], "ApproximateReceiveCount of each delivery");
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.validate).await, 0, "moved, not copied");

    let dead = p
        .setup
        .sqs
        .receive_message()
        .queue_url(dlq)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage (DLQ)")
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id(), Some(poison_id.as_str()));
    assert_eq!(dead[0].body(), Some(poison_body.as_str()));
    assert_eq!(p.inspect().get_lead(ghost).await.expect("get lead"), None);
    p.clean_up().await;
}

/// What a lead costs in AWS requests from capture to assignment, the functions' own and
/// Lambda's polling apart: the first lead of a new deployment, then the next one.
#[tokio::test]
async fn requests_per_lead_from_capture_to_assignment() {
    let p = Pipeline::new("cost", 30).await;
    p.functions.take();
    p.lambda.take();

    p.write_units.take();
    let (first_id, first, first_lambda, _) = counted_lead(&p, &qualified_lead()).await;
    let second_lead =
        json!({"email": "li@acme.io", "first_name": "Li", "job_title": "CTO", "company": "Acme", "country": "DE"});
    let (second_id, mut second, second_lambda, units) = counted_lead(&p, &second_lead).await;

    for id in [first_id, second_id] {
        let owner = p.lead(id).await.owner.unwrap_or_else(|| panic!("lead {id} was not assigned"));
        assert_eq!(owner.team_id.as_deref(), Some("emea"));
        assert_eq!(p.tap.events_for(&p.setup.sqs, id, 1).await.len(), 1);
    }
    assert_eq!(p.emails_sent(2).await.len(), 2);

    let sum = |steps: &[(&str, BTreeMap<String, u32>)]| steps.iter().map(|(_, c)| total(c)).sum::<u32>();
    let per_function = |steps: &[(&'static str, BTreeMap<String, u32>)]| {
        steps.iter().map(|(name, c)| (*name, total(c))).collect::<Vec<_>>()
    };
    for (title, functions, lambda) in
        [("the first lead of a new deployment", &first, &first_lambda), ("the next lead", &second, &second_lambda)]
    {
        println!(
            "\nAWS requests for {title}, capture to assignment\n\n{}\n{}\nall together: {}\n",
            table_of("The functions' own requests (their SDK clients):", functions),
            table_of("Lambda's SQS event source mappings (polling the stage queues):", lambda),
            sum(functions) + sum(lambda)
        );
    }
    // Measured on moto with this code; a measurement, not a target. A change here is a change
    // in what every lead costs: read the tables printed above (--nocapture) and update the
    // numbers knowingly. Per function, for the next lead: capture 1 (SendMessage); validate 2
    // (create with the email key, the alias check and the trail, with no read before it;
    // hand-off carrying the lead and its trail); score 2 (the rescore with its trail entry over
    // the version validate carried, scored from the trail validate carried; hand-off carrying
    // the lead); route 5 (the team cursor and the rep loads in one Query, the assignment over
    // the version score carried with its trail entry and the email's claim, send, the email's
    // record with its email_sent entry (a PutItem), and the event's PutEvents: events keep no
    // claim or record).
    // The configuration's refresh is once per cache period (30 s) and the run may take longer:
    // counted apart, and left out of the next lead's figures.
    for (_, counts) in &mut second {
        counts.retain(|operation, _| !operation.ends_with("(configuration)"));
    }
    assert_eq!(per_function(&second), [("capture", 1), ("validate", 2), ("score", 2), ("route", 5)], "{second:#?}");
    assert_eq!(sum(&second), 10, "the functions' requests per lead");
    // The first lead also refreshes the configuration (score's Query of the documents applied
    // through the admin API; the stages share one cache here) and looks for its team's cursor
    // where versions before 12-03 kept it (route's GetItem): a new team has none yet.
    assert_eq!(per_function(&first), [("capture", 1), ("validate", 2), ("score", 3), ("route", 6)], "{first:#?}");
    assert_eq!(sum(&first), 12, "the first lead's requests");
    // One ReceiveMessage that finds the message and one DeleteMessageBatch per stage; on AWS
    // the pollers' empty long polls come on top, per queue and not per lead.
    for lambda in [&first_lambda, &second_lambda] {
        assert_eq!(sum(lambda), 6, "the event source mappings' requests per lead: {lambda:#?}");
    }
    // DynamoDB write units, four fifths of a lead's cost (docs/performance.md, "Dollar cost"):
    // per function, the next lead. Validate 6: the lead with its trail entry inside it, the
    // email key and the alias check, each 1 KB in a transaction (2). Score 1: the lead with its
    // entry, one conditional update. Route 9: the assignment (the lead with its entry, the
    // email's claim, the rep's load, the team's cursor: 8) and the email's record with its
    // entry in the lead's partition, one PutItem (1). A lead item over 1 KB shows here.
    println!("DynamoDB write units for the next lead: {units:?}");
    assert_eq!(units, [("capture", 0), ("validate", 6), ("score", 1), ("route", 9)], "write units per function");

    // A lead that ticks consent on a form with double opt-in: route also sends the confirmation
    // email, which score found due and put in the message, so route does not read the trail.
    let consenting = json!({"email": "mo@acme.io", "first_name": "Mo", "job_title": "CTO", "company": "Acme",
        "country": "DE", "consent": true, "consent_text": "Email me."});
    let (consenting_id, mut counts, _, _) = counted_lead(&p, &consenting).await;
    for (_, c) in &mut counts {
        c.retain(|operation, _| !operation.ends_with("(configuration)"));
    }
    println!("{}", table_of("The functions' own requests, a lead under double opt-in:", &counts));
    assert_eq!(p.emails_sent(4).await.len(), 4, "the assignment email and the confirmation");
    assert!(p.lead(consenting_id).await.owner.is_some());
    // Route 9: the next lead's 5, then the suppression list's GetItem, the confirmation's claim,
    // send, and record with its `confirmation_sent` entry inside (PutItem, SendEmail, PutItem); 10
    // with that entry as an item of its own, 11 with the trail's Query before score put the email
    // in the message.
    assert_eq!(per_function(&counts), [("capture", 1), ("validate", 2), ("score", 2), ("route", 9)], "{counts:#?}");
    let route = counts.iter().find(|(name, _)| *name == "route").map(|(_, c)| c.clone()).unwrap_or_default();
    assert_eq!(route.get("dynamodb Query"), Some(&1), "the routing state's Query, and no read of the trail: {route:?}");
    p.clean_up().await;
}

type StepCounts = Vec<(&'static str, BTreeMap<String, u32>)>;

/// Captures `body` and delivers it through every stage, one message a batch; answers the lead
/// and the requests of each step: the functions' own, and the event source mappings'; and the
/// DynamoDB write units of each step.
async fn counted_lead(p: &Pipeline, body: &Value) -> (LeadId, StepCounts, StepCounts, Vec<(&'static str, u32)>) {
    let lead_id = p.capture_accepted(body).await;
    let mut functions = vec![("capture", p.functions.take())];
    let mut units = vec![("capture", p.write_units.take())];
    let mut lambda = Vec::new();
    for stage in Stage::ALL {
        let batch = p.deliver(stage, 1, 1).await.unwrap_or_else(|| panic!("nothing on the {} queue", stage.as_str()));
        assert_eq!(batch.event.records.len(), 1);
        assert!(batch.failed.is_empty(), "{:?}", batch.responses);
        functions.push((stage.as_str(), p.functions.take()));
        units.push((stage.as_str(), p.write_units.take()));
        lambda.push((stage.as_str(), p.lambda.take()));
    }
    (lead_id, functions, lambda, units)
}
