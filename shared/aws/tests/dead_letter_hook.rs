//! The stage functions' SQS glue records why each failed record failed: `handle_sqs_event`,
//! with the reason log `run_sqs_stage` gives it on Lambda (the store's table and client),
//! writes the reason by message id, and records nothing for the records that succeeded.

mod common;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use leadflow_app::{BatchItem, Failure};
use leadflow_aws::dead_letters::ReasonLog;
use leadflow_aws::lambda::handle_sqs_event;

fn record(id: &str) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = Some(id.into());
    r.body = Some("{}".into());
    r.event_source_arn = Some("arn:aws:sqs:us-east-1:123456789012:lf-RouteQueue".into());
    r.attributes.insert("ApproximateReceiveCount".into(), "2".into());
    r
}

#[test]
fn a_failed_record_has_its_reason_recorded_and_a_handled_one_has_none() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let table = runtime.block_on(common::table());
    let mut event = SqsEvent::default();
    event.records = vec![record("ok-1"), record("bad-1")];
    let handler = |items: Vec<BatchItem>| async move {
        items
            .into_iter()
            .filter(|i| i.id.starts_with("bad"))
            .map(|i| Failure { id: i.id, reason: "the lead kept changing while routing".into() })
            .collect::<Vec<_>>()
    };
    let response = runtime
        .block_on(handle_sqs_event(&handler, &event, Some(&ReasonLog::of_store(&table.store))))
        .expect("a batch response");
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["bad-1"]);

    let log = runtime
        .block_on(async { ReasonLog::new(aws_sdk_dynamodb::Client::new(&common::sdk_config().await), &table.name) });
    let found =
        runtime.block_on(log.reasons(&["ok-1".to_string(), "bad-1".to_string()])).expect("the reasons are readable");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found["bad-1"].reason, "the lead kept changing while routing");
    assert_eq!(found["bad-1"].receive_count, Some(2));
}
