//! The stages' dead letters on AWS: why each message failed, and the admin's view of the SQS
//! dead-letter queues.
//!
//! SQS moves a message that was received `maxReceiveCount` times to the DLQ as it is: no reason
//! comes with it. It keeps the message id, though (a redrive out of the DLQ gives a new one), so
//! the stage functions record the reason of every failed record by message id
//! ([`ReasonLog::record_failures`]) in the table, as a small item that expires with the DLQ's retention:
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | failure reason | `DEADLETTER#<message id>` | `-` | `reason`, `receive_count`, `at` (ms), `queue` (ARN), `expires_at` (s, the table's TTL) |
//!
//! Every failure is recorded, not only the last one before the DLQ: the function does not know
//! the queue's `maxReceiveCount`, failures are rare, and the last write is the one the listing
//! shows. The item holds no personal data: reasons are error messages, with any word holding an
//! `@` taken out.
//!
//! [`SqsDeadLetters`] lists a DLQ by receiving its messages for a moment (peeking: they are made
//! visible again at once) and redrives it with `StartMessageMoveTask` back to the queue each
//! message came from.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Utc};
use leadflow_app::Failure;
use leadflow_core::dead_letters::{self, DeadLetter, DeadLetterList, Redrive};
use leadflow_core::error::QueueError;
use leadflow_core::ports::{DeadLetters, Stage};
use tracing::warn;

use crate::env::{self as lf_env, MissingVar};
use crate::queue::StageUrls;
use crate::store::{describe_sdk_error, redact};

use crate::env::{ROUTE_DLQ_URL, SCORE_DLQ_URL, VALIDATE_DLQ_URL};

/// How long a reason is kept: the DLQs' retention (14 days, template.yaml), after which SQS has
/// dropped the message it explains.
pub const REASON_TTL: chrono::Duration = chrono::Duration::days(14);

/// The longest reason kept; error messages are a line or two.
const MAX_REASON_CHARS: usize = 1000;

/// How long recording a batch's reasons may hold up its answer. The batch keeps
/// [`BATCH_MARGIN`](crate::lambda::BATCH_MARGIN) (1 s) free for answering; a DynamoDB write takes
/// milliseconds, and a reason that cannot be written in time is only missing from the listing.
const RECORD_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a peeked message stays hidden: long enough that the next receive of one listing
/// brings other messages, and it is made visible again right after anyway.
const PEEK_VISIBILITY_SECONDS: i32 = 5;

const PK: &str = "PK";
const SK: &str = "SK";

fn key_of(message_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(format!("DEADLETTER#{message_id}"))),
        (SK.to_string(), AttributeValue::S("-".into())),
    ])
}

/// A failure reason as it is kept: addresses out, at most [`MAX_REASON_CHARS`].
fn kept_reason(reason: &str) -> String {
    redact(reason).chars().take(MAX_REASON_CHARS).collect()
}

/// Writes the failure reasons of a batch's records.
#[derive(Debug, Clone)]
pub struct ReasonLog {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl ReasonLog {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Records why each failed record failed, keyed by its message id, as of `now`. Failures
    /// that name no record of `records` are skipped.
    pub async fn record(&self, records: &[SqsMessage], failures: &[Failure], now: DateTime<Utc>) -> Result<(), String> {
        let expires_at = (now + REASON_TTL).timestamp();
        let mut writes = Vec::new();
        for failure in failures {
            let Some(record) = records.iter().find(|r| r.message_id.as_deref() == Some(failure.id.as_str())) else {
                continue;
            };
            let mut item = key_of(&failure.id);
            item.insert("reason".into(), AttributeValue::S(kept_reason(&failure.reason)));
            let count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse::<u32>().ok());
            if let Some(count) = count {
                item.insert("receive_count".into(), AttributeValue::N(count.to_string()));
            }
            item.insert("at".into(), AttributeValue::N(now.timestamp_millis().to_string()));
            if let Some(queue) = &record.event_source_arn {
                item.insert("queue".into(), AttributeValue::S(queue.clone()));
            }
            item.insert("expires_at".into(), AttributeValue::N(expires_at.to_string()));
            let put = PutRequest::builder().set_item(Some(item)).build().map_err(|e| e.to_string())?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        // A batch has at most ten records; BatchWriteItem takes 25.
        for chunk in writes.chunks(25) {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, chunk.to_vec())
                .send()
                .await
                .map_err(|e| describe_sdk_error(&e))?;
            let left = out.unprocessed_items().and_then(|u| u.get(&self.table)).map_or(0, Vec::len);
            if left > 0 {
                return Err(format!("DynamoDB left {left} reason(s) unwritten (throttled)"));
            }
        }
        Ok(())
    }

    /// The recorded reasons of `message_ids`: `(reason, receive count, when)` by message id.
    pub async fn reasons(&self, message_ids: &[String]) -> Result<HashMap<String, Recorded>, String> {
        let mut out = HashMap::new();
        for chunk in message_ids.chunks(100) {
            let mut keys: Vec<_> = chunk.iter().map(|id| key_of(id)).collect();
            // Unprocessed keys (throttling) are asked for again, a few times.
            for _ in 0..3 {
                if keys.is_empty() {
                    break;
                }
                let wanted = KeysAndAttributes::builder().set_keys(Some(keys)).build().map_err(|e| e.to_string())?;
                let got = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(|e| describe_sdk_error(&e))?;
                for item in got.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some((id, recorded)) = Recorded::of(item) {
                        out.insert(id, recorded);
                    }
                }
                keys = got
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
            }
        }
        Ok(out)
    }
}

/// A recorded failure reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub reason: String,
    pub receive_count: Option<u32>,
    pub at: Option<DateTime<Utc>>,
}

impl Recorded {
    fn of(item: &HashMap<String, AttributeValue>) -> Option<(String, Recorded)> {
        let id = item.get(PK)?.as_s().ok()?.strip_prefix("DEADLETTER#")?.to_string();
        let reason = item.get("reason")?.as_s().ok()?.clone();
        let num = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
        let receive_count = num("receive_count").and_then(|c| u32::try_from(c).ok());
        let at = num("at").and_then(DateTime::from_timestamp_millis);
        Some((id, Recorded { reason, receive_count, at }))
    }
}

impl ReasonLog {
    /// The reason log in the store's table, over the store's client: a stage function writes
    /// its reasons where its leads are, with no second client or configuration to load.
    pub fn of_store(store: &crate::store::DynamoStore) -> Self {
        Self::new(store.client().clone(), store.table())
    }

    /// Records why the failed records of an SQS batch failed (see the module's documentation).
    /// Never fails the batch: a reason that cannot be written is logged and only missing from
    /// the dead-letter listing. Does nothing when nothing failed.
    pub async fn record_failures(&self, records: &[SqsMessage], failures: &[Failure]) {
        if failures.is_empty() {
            return;
        }
        match tokio::time::timeout(RECORD_TIMEOUT, self.record(records, failures, Utc::now())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, failed = failures.len(), "cannot record why messages failed"),
            Err(_) => warn!(failed = failures.len(), "recording why messages failed took too long; skipped"),
        }
    }
}

/// The DLQ URL of each stage: the same shape as the stage queues' own.
pub type DlqUrls = StageUrls;

impl DlqUrls {
    /// The DLQs' URLs from the admin function's environment.
    pub fn dlqs_from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MissingVar> {
        let get = |name: &'static str| {
            lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).ok_or(MissingVar(name))
        };
        Ok(Self { validate: get(VALIDATE_DLQ_URL)?, score: get(SCORE_DLQ_URL)?, route: get(ROUTE_DLQ_URL)? })
    }
}

/// The admin's view of the SQS dead-letter queues.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    sqs: aws_sdk_sqs::Client,
    reasons: ReasonLog,
    urls: DlqUrls,
}

struct DlqState {
    arn: String,
    /// Visible and in flight.
    messages: u64,
}

impl SqsDeadLetters {
    pub fn new(sqs: aws_sdk_sqs::Client, reasons: ReasonLog, urls: DlqUrls) -> Self {
        Self { sqs, reasons, urls }
    }

    /// From the admin function's environment: the DLQ URLs and `LEADFLOW_TABLE`.
    pub async fn from_env() -> Result<Self, MissingVar> {
        let urls = DlqUrls::dlqs_from_env(|name| std::env::var(name).ok())?;
        let table = lf_env::required(lf_env::TABLE)?;
        let sdk = crate::lambda::sdk_config().await;
        let reasons = ReasonLog::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        Ok(Self::new(aws_sdk_sqs::Client::new(&sdk), reasons, urls))
    }

    fn unavailable(stage: Stage, what: &str) -> QueueError {
        QueueError::Unavailable(format!("{} dead-letter queue: {what}", stage.as_str()))
    }

    async fn state(&self, stage: Stage) -> Result<DlqState, QueueError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(self.urls.url(stage))
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| Self::unavailable(stage, &describe_sdk_error(&e)))?;
        let attrs = out.attributes();
        let count = |name: QueueAttributeName| {
            attrs.and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        let arn = attrs
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| Self::unavailable(stage, "SQS answered no QueueArn"))?;
        Ok(DlqState {
            arn,
            messages: count(QueueAttributeName::ApproximateNumberOfMessages)
                + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// Up to `limit` messages of the DLQ, received for a moment and made visible again.
    ///
    /// Long polls (a second at most): a short poll asks only some of SQS's servers and may come
    /// back empty while the queue holds messages. It stops once it holds `limit` or all the
    /// queue holds, so the wait is only paid when SQS has fewer to give than it counted.
    async fn peek(&self, stage: Stage, limit: usize) -> Result<Vec<aws_sdk_sqs::types::Message>, QueueError> {
        let url = self.urls.url(stage);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        // Each receive takes up to ten; two more rounds than needed for SQS's sampling.
        for _ in 0..limit.div_ceil(10) + 2 {
            if out.len() >= limit {
                break;
            }
            let want = i32::try_from((limit - out.len()).min(10)).unwrap_or(10);
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(want)
                .visibility_timeout(PEEK_VISIBILITY_SECONDS)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| Self::unavailable(stage, &describe_sdk_error(&e)))?;
            let fresh: Vec<_> = got
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.message_id().is_some_and(|id| seen.insert(id.to_string())))
                .collect();
            if fresh.is_empty() {
                break;
            }
            out.extend(fresh);
        }
        out.truncate(limit);
        self.unhide(stage, &out).await;
        Ok(out)
    }

    /// Makes peeked messages visible again at once, so that a redrive right after a listing
    /// moves them too. Best effort: otherwise they come back after [`PEEK_VISIBILITY_SECONDS`].
    async fn unhide(&self, stage: Stage, messages: &[aws_sdk_sqs::types::Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let sent = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(self.urls.url(stage))
                .set_entries(Some(entries))
                .send()
                .await;
            if let Err(e) = sent {
                warn!(stage = stage.as_str(), error = %describe_sdk_error(&e), "peeked dead letters stay hidden a few seconds");
            }
        }
    }
}

impl DeadLetters for SqsDeadLetters {
    async fn list(&self, stage: Stage, limit: usize) -> Result<DeadLetterList, QueueError> {
        let state = self.state(stage).await?;
        let wanted = usize::try_from(state.messages).unwrap_or(usize::MAX).min(limit);
        let messages = if wanted == 0 { Vec::new() } else { self.peek(stage, wanted).await? };
        let ids: Vec<String> = messages.iter().filter_map(|m| m.message_id().map(str::to_string)).collect();
        let recorded = self.reasons.reasons(&ids).await.map_err(|e| Self::unavailable(stage, &e))?;
        let items = messages
            .iter()
            .filter_map(|m| {
                let id = m.message_id()?.to_string();
                let (lead_id, kind) = dead_letters::describe(stage, m.body().unwrap_or_default());
                let found = recorded.get(&id);
                // The count the stage saw at its last failure: peeks count as receives on the DLQ.
                let sqs_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse::<u32>().ok())
                    .unwrap_or(0);
                Some(DeadLetter {
                    message_id: id,
                    stage,
                    lead_id,
                    kind,
                    reason: found.map(|r| r.reason.clone()),
                    receive_count: found.and_then(|r| r.receive_count).unwrap_or(sqs_count),
                    dead_at: found.and_then(|r| r.at),
                })
            })
            .collect();
        Ok(DeadLetterList { stage, total: state.messages.max(ids.len() as u64), items })
    }

    async fn redrive(&self, stage: Stage) -> Result<Redrive, QueueError> {
        let state = self.state(stage).await?;
        if state.messages == 0 {
            return Ok(Redrive { stage, messages: 0, done: true, task: None });
        }
        // No destination: each message goes back to the queue it was dead-lettered from.
        let out = self
            .sqs
            .start_message_move_task()
            .source_arn(&state.arn)
            .send()
            .await
            .map_err(|e| Self::unavailable(stage, &describe_sdk_error(&e)))?;
        Ok(Redrive { stage, messages: state.messages, done: false, task: out.task_handle().map(str::to_string) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_reason_has_no_address_and_a_bound() {
        assert_eq!(kept_reason("SES refused ana@acme.io for good"), "SES refused <redacted> for good");
        assert_eq!(kept_reason(&"x".repeat(5000)).chars().count(), MAX_REASON_CHARS);
    }
}
