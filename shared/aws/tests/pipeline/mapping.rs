//! Lambda's SQS event source mapping, acted out over moto's SQS, and the queue reads the tests
//! check it with.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use leadflow_app::{BatchItem, Failure};
use leadflow_aws::lambda::{AwsPorts, handle_sqs_event};
use leadflow_core::ports::Stage;
use serde_json::json;

/// What Lambda's SQS event source mapping does for one function, with
/// `FunctionResponseTypes: [ReportBatchItemFailures]`: receive up to ten messages, hand them to
/// the function as an `SqsEvent`, delete the ones the response does not name. A failed
/// invocation (an error instead of a response) deletes nothing. Its SQS client is its own, so
/// that its requests are counted apart from the functions'.
pub(crate) struct EventSourceMapping {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    /// The visibility timeout each receive asks for: how long a failed message stays away.
    visibility_timeout: i32,
}

/// One batch as the mapping handled it.
pub(crate) struct Batch {
    pub(crate) event: SqsEvent,
    /// Each invocation's answer (a test may invoke the function more than once on a batch).
    pub(crate) responses: Vec<Result<SqsBatchResponse, String>>,
    /// Message ids left on the queue: the failures the last invocation reported.
    pub(crate) failed: Vec<String>,
    /// Message ids deleted.
    pub(crate) deleted: Vec<String>,
}

impl Batch {
    pub(crate) fn ids(&self) -> Vec<String> {
        self.event.records.iter().filter_map(|r| r.message_id.clone()).collect()
    }

    pub(crate) fn receive_counts(&self) -> Vec<u32> {
        self.event
            .records
            .iter()
            .map(|r| r.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(0))
            .collect()
    }
}

impl EventSourceMapping {
    pub(crate) async fn new(
        sqs: aws_sdk_sqs::Client,
        setup: &aws_sdk_sqs::Client,
        queue_url: &str,
        visibility: i32,
    ) -> Self {
        let queue_arn = queue_arn(setup, queue_url).await;
        Self { sqs, queue_url: queue_url.to_string(), queue_arn, visibility_timeout: visibility }
    }

    /// One poll; `None` when the queue had nothing visible within `wait_seconds`. Otherwise the
    /// batch went through `handler` `invocations` times (more than once to act out Lambda
    /// invoking again on the same messages), and the last answer decided what was deleted.
    pub(crate) async fn deliver<F, Fut>(&self, handler: &F, invocations: usize, wait_seconds: i32) -> Option<Batch>
    where
        F: Fn(Vec<BatchItem>) -> Fut,
        Fut: Future<Output = Vec<Failure>>,
    {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(self.visibility_timeout)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let event = sqs_event(&messages, &self.queue_arn);
        let mut responses = Vec::with_capacity(invocations);
        for _ in 0..invocations.max(1) {
            responses.push(handle_sqs_event(handler, &event, None).await.map_err(|e| e.to_string()));
        }
        let failed: Vec<String> = match responses.last() {
            Some(Ok(response)) => response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect(),
            // A failed invocation: the whole batch comes back.
            _ => messages.iter().filter_map(|m| m.message_id.clone()).collect(),
        };
        let mut deleted = Vec::new();
        let mut entries = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let id = message.message_id().expect("SQS gives every message an id");
            if failed.iter().any(|f| f == id) {
                continue;
            }
            let handle = message.receipt_handle().expect("a received message has a receipt handle");
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("delete entry"),
            );
            deleted.push(id.to_string());
        }
        if !entries.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("DeleteMessageBatch");
            assert!(out.failed().is_empty(), "DeleteMessageBatch failed for {:?}", out.failed());
        }
        Some(Batch { event, responses, failed, deleted })
    }
}

/// The event Lambda hands the function for these messages, in Lambda's JSON shape.
fn sqs_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let records = crate::common::lambda_sqs_records(messages, Some(queue_arn));
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

pub(crate) async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().expect("queue ARN")
}

/// Visible + in flight: every message the queue holds.
pub(crate) async fn messages_held(sqs: &aws_sdk_sqs::Client, url: &str) -> u32 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    let n = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    n(QueueAttributeName::ApproximateNumberOfMessages) + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// The function behind each stage's queue.
pub(crate) async fn stage_function(ports: &AwsPorts, stage: Stage, items: Vec<BatchItem>) -> Vec<Failure> {
    match stage {
        Stage::Validate => leadflow_validate::handle_batch(ports, items).await,
        Stage::Score => leadflow_score::handle_batch(ports, items).await,
        Stage::Route => leadflow_route::handle_batch(ports, items).await,
    }
}
