//! The stage queues over SQS.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use leadflow_core::error::QueueError;
use leadflow_core::ports::{Stage, StageQueue};

use crate::store::describe_sdk_error;

/// SQS takes at most ten messages per batch…
const BATCH_ENTRIES: usize = 10;
/// …and at most 256 KiB in one batch request, all bodies together.
const BATCH_BYTES: usize = 256 * 1024;

/// The queue URL of each stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageUrls {
    pub validate: String,
    pub score: String,
    pub route: String,
}

impl StageUrls {
    pub fn url(&self, stage: Stage) -> &str {
        match stage {
            Stage::Validate => &self.validate,
            Stage::Score => &self.score,
            Stage::Route => &self.route,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    urls: StageUrls,
}

impl SqsQueue {
    pub fn new(client: Client, urls: StageUrls) -> Self {
        Self { client, urls }
    }

    pub fn urls(&self) -> &StageUrls {
        &self.urls
    }

    async fn send_batch(&self, stage: Stage, url: &str, chunk: &[String]) -> Result<(), QueueError> {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, body) in chunk.iter().enumerate() {
            let entry =
                SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().map_err(|e| {
                    QueueError::Unavailable(format!("{} queue: a batch entry could not be built: {e}", stage.as_str()))
                })?;
            entries.push(entry);
        }
        let out =
            self.client.send_message_batch().queue_url(url).set_entries(Some(entries)).send().await.map_err(|e| {
                QueueError::Unavailable(format!("{} queue: {}", stage.as_str(), describe_sdk_error(&e)))
            })?;
        let failed = out.failed();
        if failed.is_empty() {
            return Ok(());
        }
        // Some went in and some did not: the caller resends all of them, and the consumers are
        // idempotent, so the duplicates this makes are harmless.
        let mut codes: Vec<&str> = failed.iter().map(|f| f.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        Err(QueueError::Unavailable(format!(
            "{} queue: {} of {} messages were not accepted ({})",
            stage.as_str(),
            failed.len(),
            chunk.len(),
            codes.join(", ")
        )))
    }
}

/// Consecutive runs of bodies that fit one batch request each.
fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + body.len() > BATCH_BYTES) {
            out.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

impl StageQueue for SqsQueue {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        let url = self.urls.url(stage);
        if let [body] = bodies {
            self.client.send_message().queue_url(url).message_body(body).send().await.map_err(|e| {
                QueueError::Unavailable(format!("{} queue: {}", stage.as_str(), describe_sdk_error(&e)))
            })?;
            return Ok(());
        }
        for chunk in batches(bodies) {
            self.send_batch(stage, url, chunk).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_ten_bodies_or_256_kib_at_most() {
        let small: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![10, 10, 5]);

        let big: Vec<String> = (0..4).map(|_| "x".repeat(100 * 1024)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![2, 2]);

        assert!(batches(&[]).is_empty());
    }
}
