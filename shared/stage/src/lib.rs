//! What every stage handler shares, on Lambda and in the local stack alike: processing a batch
//! so that one bad message fails alone, and performing side effects (emails, events) once under
//! at-least-once delivery.

pub mod config_files;
pub mod erasure;
pub mod live;
pub mod optout;
pub mod sales;

use chrono::{DateTime, Duration, Utc};
use leadflow_core::error::{MailError, StoreError};
use leadflow_core::model::{Activity, ActivityKind, LeadId};
use leadflow_core::ports::{Clock, DomainEvent, EffectClaim, EventBus, LeadStore, Mailer, OutgoingEmail, Ports};
use serde::de::DeserializeOwned;
use tracing::{Instrument, info_span, warn};

/// How long a claimed effect is presumed in progress before another worker may take it over.
/// Longer than any send takes; short enough that a crashed worker's email goes out soon after.
pub const EFFECT_LEASE: Duration = Duration::seconds(120);

/// Why a message could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A retry may succeed (a store or service was unavailable, a write raced): fail the item so
    /// the queue delivers it again, and after enough tries puts it in the dead-letter queue.
    #[error("retryable: {0}")]
    Retryable(String),
    /// No retry can fix it (the message is malformed, the lead is gone): the item succeeds and
    /// the reason is logged and, where there is a lead, recorded on it.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => StageError::Retryable(m),
            StoreError::Corrupt(m) => StageError::Permanent(m),
        }
    }
}

impl From<leadflow_core::error::QueueError> for StageError {
    fn from(e: leadflow_core::error::QueueError) -> Self {
        StageError::Retryable(e.to_string())
    }
}

/// One message of a batch: the queue's message id (never empty) and its body.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub id: String,
    pub body: String,
}

/// An item of a batch that must be delivered again, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub id: String,
    pub reason: String,
}

/// Handles every item of a batch with `handle` and answers the items that must be delivered
/// again. Malformed bodies are permanent failures: logged, not redelivered.
pub async fn process_batch<M, F, Fut>(stage: &str, items: Vec<BatchItem>, handle: F) -> Vec<Failure>
where
    M: DeserializeOwned,
    F: Fn(M) -> Fut,
    Fut: Future<Output = Result<(), StageError>>,
{
    let mut failed = Vec::new();
    for item in items {
        let span = info_span!("message", stage, message_id = %item.id);
        let outcome = async {
            match serde_json::from_str::<M>(&item.body) {
                Ok(msg) => handle(msg).await,
                Err(e) => Err(StageError::Permanent(format!("malformed message: {e}"))),
            }
        }
        .instrument(span.clone())
        .await;
        let _guard = span.enter();
        match outcome {
            Ok(()) => {}
            Err(StageError::Permanent(reason)) => warn!(%reason, "message dropped: no retry can fix it"),
            Err(StageError::Retryable(reason)) => {
                warn!(%reason, "message failed; it will be delivered again");
                failed.push(Failure { id: item.id, reason });
            }
        }
    }
    failed
}

/// What became of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Sent now, with the provider's message id.
    Now(String),
    /// It had been sent before; its message id then.
    Before(String),
    /// The provider refused it for good; it will not be tried again.
    Rejected(String),
}

/// Sends `email` unless it was sent already, recording the send on the lead's trail.
///
/// The claim is written before the send; the message id and the trail's `email_sent` entry
/// after it, in one write, so a send that is done is always on the trail. The window that
/// remains is a crash between the provider accepting the message and `finish_effect`: after the
/// lease runs out the email is sent again. We chose that side (at least once) because a lost
/// assignment email loses a lead; the outbox adapter closes the window entirely by naming files
/// after the email's key.
pub async fn send_once<P: Ports>(ports: &P, lead_id: LeadId, email: &OutgoingEmail) -> Result<Sent, StageError> {
    let now = ports.clock().now();
    let store = ports.store();
    let key = format!("email:{}", email.key);
    match store.claim_effect(&key, now, now + EFFECT_LEASE).await? {
        EffectClaim::Done(detail) => return Ok(Sent::Before(detail)),
        EffectClaim::Busy => return Err(StageError::Retryable("the email is being sent by another worker".into())),
        EffectClaim::Claimed => {}
    }
    match ports.mailer().send(email, now).await {
        Ok(message_id) => {
            let sent = activity(
                lead_id,
                format!("sent-{}", email.key),
                now,
                ActivityKind::EmailSent {
                    email: email.key.clone(),
                    message_id: message_id.clone(),
                    subject: email.subject.clone(),
                },
            );
            store.finish_effect(&key, &message_id, &[sent]).await?;
            Ok(Sent::Now(message_id))
        }
        Err(MailError::Rejected(reason)) => {
            store.finish_effect(&key, &format!("rejected: {reason}"), &[]).await?;
            Ok(Sent::Rejected(reason))
        }
        Err(e @ (MailError::Throttled(_) | MailError::Unavailable(_))) => {
            // Not sent: give the claim back so the retry can send at once.
            store.release_effect(&key).await?;
            Err(StageError::Retryable(e.to_string()))
        }
    }
}

/// Publishes `event` unless it was published already.
pub async fn publish_once<P: Ports>(ports: &P, event: DomainEvent) -> Result<(), StageError> {
    let now = ports.clock().now();
    let key = format!("event:{}", event.id);
    match ports.store().claim_effect(&key, now, now + EFFECT_LEASE).await? {
        EffectClaim::Done(_) => Ok(()),
        EffectClaim::Busy => Err(StageError::Retryable("the event is being published by another worker".into())),
        EffectClaim::Claimed => match ports.bus().publish(std::slice::from_ref(&event)).await {
            Ok(()) => Ok(ports.store().finish_effect(&key, "published", &[]).await?),
            Err(e) => {
                ports.store().release_effect(&key).await?;
                Err(StageError::Retryable(e.to_string()))
            }
        },
    }
}

pub fn activity(lead_id: LeadId, id: String, at: DateTime<Utc>, kind: ActivityKind) -> Activity {
    Activity { id, lead_id, at, kind }
}

/// How many times a handler re-reads and retries a write that lost an optimistic-locking race
/// before it gives the message back to the queue.
pub const WRITE_ATTEMPTS: usize = 8;
