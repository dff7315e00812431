//! The messaging adapters on moto: the stage queues (SQS), the mailer (SES v2) and the event
//! bus (EventBridge), each against the requests it should send.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{enrollment, id, lead, owned_by, t, unique};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::queue::{SqsQueue, StageUrls};
use leadflow_aws::store::DynamoStore;
use leadflow_core::error::MailError;
use leadflow_core::model::{EnrollmentState, TeamCursor};
use leadflow_core::ports::{
    AssignOutcome, AssignmentWrite, DomainEvent, EmailCategory, EventBus, IdempotencyClaim, Mailbox, Mailer,
    OutgoingEmail, Stage, StageQueue,
};
use leadflow_core::ports::{Assignments, Enrollments, Leads};

/// The store and the queues on what template.yaml defines (through the provisioner), not only
/// on the test's own copy of the table definition: the two cannot drift apart unnoticed.
#[tokio::test]
async fn the_adapters_work_on_the_resources_the_template_defines() {
    let config = common::sdk_config().await;
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .expect("template.yaml at the workspace root");
    let made = leadflow_aws::provision::create_from_template(&config, &template, &unique("tpl"))
        .await
        .expect("provision from the template");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &made.table);
    store.create_lead(&lead(1, "ada@example.com"), &[]).await.unwrap();
    let write = AssignmentWrite {
        lead: owned_by(lead(1, "ada@example.com"), "rep-1"),
        expected_lead_version: 0,
        team_cursor: Some(("emea".into(), TeamCursor::default())),
        trail: Vec::new(),
        claim: None,
    };
    assert_eq!(store.assign(&write).await.unwrap(), AssignOutcome::Assigned);
    assert_eq!(store.rep_loads().await.unwrap(), BTreeMap::from([("rep-1".to_string(), 1)]));
    store.enroll(&enrollment(1, "c", Some(t(10)), EnrollmentState::Active), &[]).await.unwrap();
    let due = store.due_enrollments(t(100), 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.lead_id).collect::<Vec<_>>(), vec![id(1)]);
    assert_eq!(store.claim_idempotency_key("k", id(1), t(0), t(10)).await.unwrap(), IdempotencyClaim::Claimed);

    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = SqsQueue::new(sqs.clone(), made.stage_urls.clone());
    queue.send(Stage::Route, &["a".to_string(), "b".to_string()]).await.unwrap();
    assert_eq!(receive_all(&sqs, &made.stage_urls.route, 2).await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// SQS
// ---------------------------------------------------------------------------------------------

async fn queues(client: &aws_sdk_sqs::Client) -> StageUrls {
    let mut urls = Vec::new();
    for stage in Stage::ALL {
        let out = client.create_queue().queue_name(unique(stage.as_str())).send().await.expect("create queue");
        urls.push(out.queue_url.expect("queue url"));
    }
    StageUrls { validate: urls[0].clone(), score: urls[1].clone(), route: urls[2].clone() }
}

async fn receive_all(client: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..20 {
        if bodies.len() >= expected {
            break;
        }
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        bodies.extend(out.messages().iter().filter_map(|m| m.body().map(str::to_string)));
    }
    bodies
}

#[tokio::test]
async fn a_send_of_25_bodies_arrives_whole_on_the_stage_queue() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = queues(&client).await;
    let queue = SqsQueue::new(client.clone(), urls.clone());

    let bodies: Vec<String> = (0..25).map(|i| format!(r#"{{"lead_id":"{}","n":{i}}}"#, id(i))).collect();
    queue.send(Stage::Score, &bodies).await.unwrap();
    let mut got = receive_all(&client, &urls.score, 25).await;
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(got, want);
    for other in [&urls.validate, &urls.route] {
        let out = client.receive_message().queue_url(other).wait_time_seconds(1).send().await.expect("receive");
        assert!(out.messages().is_empty(), "nothing on the other stages");
    }

    queue.send(Stage::Route, &[r#"{"one":true}"#.to_string()]).await.unwrap();
    assert_eq!(receive_all(&client, &urls.route, 1).await, vec![r#"{"one":true}"#.to_string()]);
    queue.send(Stage::Validate, &[]).await.unwrap();
}

#[tokio::test]
async fn bodies_over_256_kib_together_are_split_into_several_batches() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sqs::Client::new(&config);
    let urls = queues(&client).await;
    let queue = SqsQueue::new(client.clone(), urls.clone());
    let bodies: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(100 * 1024))).collect();
    queue.send(Stage::Validate, &bodies).await.unwrap();
    assert_eq!(receive_all(&client, &urls.validate, 4).await.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// SES
// ---------------------------------------------------------------------------------------------

fn email(key: &str, from: &str) -> OutgoingEmail {
    OutgoingEmail {
        key: key.to_string(),
        category: EmailCategory::Marketing,
        from: Mailbox { name: Some("Leadflow".into()), email: from.to_string() },
        to: Mailbox { name: Some("Ada Lovelace".into()), email: "ada@example.org".into() },
        subject: "Your engine awaits".into(),
        text: "Hello Ada, this is the plain part.".into(),
        html: "<p>Hello <b>Ada</b>, this is the HTML part.</p>".into(),
        headers: vec![("List-Unsubscribe".into(), "<https://leadflow.test/u/token>".into())],
        tags: Vec::new(),
    }
}

/// moto's record of a raw message SES sent, found by the message id SES answered.
async fn sent_raw_message(message_id: &str) -> serde_json::Value {
    let read = common::moto_data_until(std::time::Duration::from_secs(4), |data| {
        common::ses_raw_messages(data).find(|m| m["id"] == message_id).cloned()
    });
    read.await.unwrap_or_else(|last| panic!("message {message_id} is not listed under ses.RawMessage: {last}"))
}

#[tokio::test]
async fn an_email_is_sent_as_raw_mime_with_both_parts() {
    let config = common::sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&config);
    let sender = format!("{}@leadflow.test", unique("sender"));
    client.create_email_identity().email_identity(&sender).send().await.expect("verify sender");
    let set = unique("set");
    client.create_configuration_set().configuration_set_name(&set).send().await.expect("configuration set");
    let mailer = SesMailer::new(client, Some(set));

    let key = format!("drip-{}", unique("k"));
    let message_id = mailer.send(&email(&key, &sender), t(0)).await.unwrap();
    assert!(!message_id.is_empty());

    let raw = sent_raw_message(&message_id).await;
    let mime = raw["raw_data"].as_str().expect("raw_data");
    assert!(mime.contains("Subject: Your engine awaits"), "{mime}");
    assert!(mime.contains("Hello Ada, this is the plain part."), "{mime}");
    assert!(mime.contains("<p>Hello <b>Ada</b>, this is the HTML part.</p>"), "{mime}");
    assert!(mime.contains("multipart/alternative"), "{mime}");
    assert!(mime.contains(&format!("Message-ID: <{}>", SesMailer::message_id_for(&key))), "{mime}");
    assert!(mime.contains("List-Unsubscribe: <https://leadflow.test/u/token>"), "{mime}");
}

#[tokio::test]
async fn an_email_carries_its_tags_and_the_configuration_set() {
    let config = common::sdk_config().await;
    let plain = aws_sdk_sesv2::Client::new(&config);
    let sender = format!("{}@leadflow.test", unique("sender"));
    plain.create_email_identity().email_identity(&sender).send().await.expect("verify sender");
    let set = unique("set");
    plain.create_configuration_set().configuration_set_name(&set).send().await.expect("configuration set");
    // The JSON bodies the SES client sent, as they went over the wire to moto.
    let sent = common::Recorder::new(|request| {
        request.body().bytes().and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
    });
    let logged = aws_sdk_sesv2::config::Builder::from(&config).interceptor(sent.clone()).build();
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::from_conf(logged), Some(set.clone()));

    let key = format!("drip-{}", unique("k"));
    let mut tagged = email(&key, &sender);
    tagged.tags = vec![("lead_id".into(), id(1).to_string()), ("email".into(), key.clone())];
    let message_id = mailer.send(&tagged, t(0)).await.unwrap();
    sent_raw_message(&message_id).await;

    let bodies = sent.take();
    let [body] = bodies.as_slice() else { panic!("one SendEmail request: {bodies:?}") };
    assert_eq!(body["ConfigurationSetName"], set.as_str());
    let tags: Vec<(String, String)> = body["EmailTags"]
        .as_array()
        .expect("EmailTags")
        .iter()
        .map(|t| (t["Name"].as_str().unwrap().to_string(), t["Value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        tags,
        [
            ("category".to_string(), "marketing".to_string()),
            ("lead_id".to_string(), id(1).to_string()),
            ("email".to_string(), key.clone()),
        ]
    );
}

#[tokio::test]
async fn a_rejected_send_is_rejected_without_the_address_in_the_error() {
    let config = common::sdk_config().await;
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), None);
    let sender = format!("{}@leadflow.test", unique("unverified"));
    let err = mailer.send(&email("k", &sender), t(0)).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err}");
    let text = err.to_string();
    assert!(!text.contains('@') && !text.contains("ada"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// EventBridge
// ---------------------------------------------------------------------------------------------

fn event(n: usize) -> DomainEvent {
    DomainEvent {
        id: format!("lead.assigned:{}:{n}", id(1)),
        detail_type: "lead.assigned".into(),
        at: t(i64::try_from(n).unwrap()),
        detail: serde_json::json!({"lead_id": id(1), "rep_id": "rep-1", "n": n}),
    }
}

#[tokio::test]
async fn events_are_published_in_batches_with_our_id_in_the_detail() {
    let config = common::sdk_config().await;
    let events_client = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus_name = unique("bus");
    events_client.create_event_bus().name(&bus_name).send().await.expect("create bus");
    // A rule that forwards our events to a queue, so that what was published can be read back.
    let queue_url = sqs.create_queue().queue_name(unique("events")).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).unwrap();
    let rule = unique("rule");
    events_client
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus_name)
        .event_pattern(r#"{"source":["leadflow"]}"#)
        .send()
        .await
        .expect("rule");
    events_client
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus_name)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .expect("target");

    let bus = EventBridgeBus::new(events_client, &bus_name);
    let events: Vec<DomainEvent> = (0..12).map(event).collect();
    bus.publish(&events).await.unwrap();
    bus.publish(&[]).await.unwrap();

    let delivered = receive_all(&sqs, &queue_url, 12).await;
    assert_eq!(delivered.len(), 12, "{delivered:?}");
    let mut ids = BTreeSet::new();
    for body in &delivered {
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["source"], "leadflow");
        assert_eq!(envelope["detail-type"], "lead.assigned");
        assert_eq!(envelope["detail"]["rep_id"], "rep-1");
        let n = envelope["detail"]["n"].as_u64().unwrap() as usize;
        assert_eq!(envelope["detail"]["at"], serde_json::to_value(t(i64::try_from(n).unwrap())).unwrap());
        ids.insert(envelope["detail"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids, events.iter().map(|e| e.id.clone()).collect::<BTreeSet<_>>());
}

#[tokio::test]
async fn a_failed_entry_is_an_error() {
    let config = common::sdk_config().await;
    let client = aws_sdk_eventbridge::Client::new(&config);
    let bus_name = unique("bus");
    client.create_event_bus().name(&bus_name).send().await.expect("create bus");
    let bus = EventBridgeBus::new(client, &bus_name);
    // moto fails an entry without a detail type, as EventBridge does.
    let bad = DomainEvent { detail_type: String::new(), ..event(1) };
    let err = bus.publish(&[event(0), bad]).await.unwrap_err().to_string();
    assert!(err.contains("1 of 2 events were not accepted"), "{err}");
}
