//! The Lambda glue's counts: a lead captured through the HTTP function, a lead validated by the
//! SQS stage, and records that fail on their last allowed receive, which SQS then moves to the
//! dead-letter queue. Over the in-memory adapters; needs no moto.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use chrono::Utc;
use lambda_http::http::{Request, StatusCode};
use leadflow_app::metrics::{Counts, Metric, counted};
use leadflow_aws::lambda::{SystemClock, handle_sqs_counted, max_receives};
use leadflow_aws::metrics::{Emf, Metered};
use leadflow_core::ports::{Adapters, ConfigHandle, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer};
use serde_json::{Value, json};
use tower::ServiceExt;

type Ports = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SystemClock>;

fn ports() -> Arc<Ports> {
    let config = leadflow_core::config::CompiledConfig::compile(&leadflow_app::config_files::sample())
        .expect("the sample configuration");
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SystemClock,
        config: ConfigHandle::new(config),
    })
}

/// Posts a lead the way API Gateway hands capture a request, through the function's metered
/// service; answers the status and what was counted.
async fn capture(ports: &Arc<Ports>, body: Value) -> (StatusCode, Arc<Counts>) {
    let request = Request::post("/leads")
        .header("content-type", "application/json")
        .body(lambda_http::Body::from(body.to_string()))
        .expect("a request");
    // Off: the counts are read here rather than from stdout.
    let service = Metered::new(leadflow_capture::router(Arc::clone(ports)), Emf::off());
    let (response, counts) = counted(service.oneshot(request)).await;
    (response.expect("the router is infallible").status(), counts)
}

fn lead(n: u32) -> Value {
    json!({ "email": format!("person{n}@acme-industries.example"), "first_name": "Pat", "company": "Acme" })
}

/// An SQS event as Lambda delivers it: `(message id, body, ApproximateReceiveCount)` per record.
fn sqs_event(records: &[(Option<&str>, &str, u32)]) -> SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body, receives)| {
            json!({ "messageId": id, "body": body, "attributes": { "ApproximateReceiveCount": receives.to_string() } })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

#[tokio::test]
async fn a_lead_captured_counts_once_and_a_refused_post_not_at_all() {
    let ports = ports();
    let (status, counts) = capture(&ports, lead(1)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(counts.nonzero(), [(Metric::LeadsCaptured, 1)]);

    let (status, counts) = capture(&ports, json!({ "first_name": "no address" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(counts.nonzero().is_empty(), "{:?}", counts.nonzero());

    ports.queue.fail_next(1);
    let (status, counts) = capture(&ports, lead(2)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the queue refused it");
    assert!(counts.nonzero().is_empty(), "not captured when it was not queued: {:?}", counts.nonzero());
}

#[tokio::test]
async fn records_failing_on_their_last_receive_are_counted_as_dead_lettered() {
    let ports = ports();
    for n in 1..=3 {
        assert_eq!(capture(&ports, lead(n)).await.0, StatusCode::ACCEPTED);
    }
    let bodies = ports.queue.drain(Stage::Validate);
    let handler = |items| leadflow_validate::handle_batch(&*ports, items);
    let max = max_receives(|_| Some("5".into()));
    assert_eq!(max, Some(5));

    // The hand-off to scoring fails for the first two: they come back, and the one on its
    // fifth receive goes to the dead-letter queue. The third goes through.
    ports.queue.fail_next(2);
    let event = sqs_event(&[(Some("a"), &bodies[0], 5), (Some("b"), &bodies[1], 4), (Some("c"), &bodies[2], 5)]);
    let (answer, counts) = counted(handle_sqs_counted(&handler, &event, None, max)).await;
    let failed: Vec<String> =
        answer.expect("a partial batch answer").batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
    assert_eq!(failed, ["a", "b"]);
    assert_eq!(counts.get(Metric::DeadLettered), 1, "only a, failed on its last receive");
    assert_eq!(counts.get(Metric::LeadsValidated), 3, "each lead was stored before its hand-off failed");

    // Delivered again, the stored leads are not counted again.
    let event = sqs_event(&[(Some("b"), &bodies[1], 5)]);
    let (answer, counts) = counted(handle_sqs_counted(&handler, &event, None, max)).await;
    assert!(answer.expect("an answer").batch_item_failures.is_empty());
    assert!(counts.nonzero().is_empty(), "{:?}", counts.nonzero());

    // Without the queue's receive count nothing can be told: nothing is counted.
    ports.queue.fail_next(1);
    let event = sqs_event(&[(Some("a"), &bodies[0], 9)]);
    let (_, counts) = counted(handle_sqs_counted(&handler, &event, None, None)).await;
    assert_eq!(counts.get(Metric::DeadLettered), 0);
}

#[tokio::test]
async fn a_whole_batch_failed_counts_every_record_on_its_last_receive() {
    let ports = ports();
    assert_eq!(capture(&ports, lead(1)).await.0, StatusCode::ACCEPTED);
    let bodies = ports.queue.drain(Stage::Validate);
    let handler = |items| leadflow_validate::handle_batch(&*ports, items);
    // A record without a message id fails the invocation: every record comes back.
    let event = sqs_event(&[(Some("a"), &bodies[0], 5), (None, "{}", 5), (Some("c"), "{}", 2)]);
    let (answer, counts) = counted(handle_sqs_counted(&handler, &event, None, Some(5))).await;
    assert!(answer.is_err());
    assert_eq!(counts.get(Metric::DeadLettered), 2);
}

#[test]
fn an_unusable_max_receives_counts_no_dead_letters() {
    for given in [None, Some(""), Some("five"), Some("0"), Some("-1")] {
        assert_eq!(max_receives(|_| given.map(str::to_string)), None, "{given:?}");
    }
    assert_eq!(max_receives(|_| Some(" 3 ".into())), Some(3));
}

#[tokio::test]
async fn the_line_of_a_counted_invocation_carries_its_counts() {
    let ports = ports();
    let (_, counts) = capture(&ports, lead(1)).await;
    let line = Emf::new("Leadflow/test").line(&counts, Utc::now()).expect("a line");
    let doc: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(doc["LeadsCaptured"], 1);
    assert!(!line.contains("acme-industries"), "no address in a metric line: {line}");
}
