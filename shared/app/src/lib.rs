//! What every stage handler shares, on Lambda and in the local stack alike: processing a batch
//! so that one bad message fails alone and stops before the invocation's deadline, and
//! performing side effects (emails, events) once under at-least-once delivery.

pub mod api_error;
pub mod config_files;
pub mod erasure;
pub mod live;
pub mod metrics;
pub mod migrate;
pub mod optout;
pub mod sales;

use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, Duration, Utc};
use leadflow_core::error::{MailError, QueueError, StoreError};
use leadflow_core::model::{Activity, ActivityKind, LeadId};
use leadflow_core::ports::{
    Clock, DomainEvent, EffectClaim, EffectLease, Effects, EventBus, Mailer, OutgoingEmail, Ports, StageMessage,
};

use crate::metrics::{Metric, count};
use tokio::time::Instant;
use tracing::{Instrument, info_span, warn};

/// How long a claimed effect is presumed in progress before another worker may take it over,
/// where no invocation deadline says when its worker is stopped (the local stack, which also
/// releases a dead run's claims when it starts, and functions not run under [`within`]). Longer
/// than any send takes (the AWS clients give up on a call after 8 s); short enough that a
/// crashed worker's email goes out soon after.
pub const EFFECT_LEASE: Duration = Duration::seconds(120);

/// Added to an invocation's time left to make a claim's lease: the claim is compared with the
/// clock of whichever worker looks at it next, and hosts' clocks differ by a little.
pub const LEASE_SKEW: StdDuration = StdDuration::from_secs(2);

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

impl From<QueueError> for StageError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(_) => StageError::Retryable(e.to_string()),
            QueueError::Unwritable(_) => StageError::Permanent(e.to_string()),
        }
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

/// When the work in hand must stop: a Lambda invocation's deadline, or a budget the caller gives
/// (the local stack's nurture ticker). Measured on tokio's clock, so tests may pause it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    /// Kept free before `at`: answering the invocation, flushing the logs.
    margin: StdDuration,
    /// Whether the worker is stopped at `at` (Lambda ends the invocation there). Only then may
    /// a claim's lease end with it: a budget's worker lives on and may still be sending.
    hard: bool,
}

impl Deadline {
    /// A Lambda invocation's deadline (`Context::deadline()`, wall clock). A deadline already
    /// past leaves no time.
    pub fn invocation(deadline: SystemTime, margin: StdDuration) -> Self {
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(StdDuration::ZERO);
        Self { at: Instant::now() + left, margin, hard: true }
    }

    /// A budget of `time` from now, of which `margin` is kept free; the worker is not stopped
    /// when it runs out, it only starts nothing new.
    pub fn budget(time: StdDuration, margin: StdDuration) -> Self {
        Self { at: Instant::now() + time, margin, hard: false }
    }

    /// The time left until the deadline itself (the margin included).
    pub fn remaining(&self) -> StdDuration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether work expected to take `expected` (the longest such piece so far is a fair guess)
    /// may start now and still end a margin before the deadline.
    pub fn allows(&self, expected: StdDuration) -> bool {
        self.remaining() > self.margin.saturating_add(expected)
    }
}

tokio::task_local! {
    static DEADLINE: Deadline;
}

/// Runs `work` under `deadline`: [`process_batch`] and the nurture tick start no new item once
/// it is near, and [`send_once`] leases its claims until it (see
/// [`lease_until`]). The Lambda glue wraps each invocation in this; without it nothing stops
/// early and leases are [`EFFECT_LEASE`].
pub async fn within<F: Future>(deadline: Deadline, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline the current task runs under, if any (see [`within`]).
pub fn current_deadline() -> Option<Deadline> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Until when a claim taken `now` is presumed alive. Under an invocation's deadline: until that
/// deadline and [`LEASE_SKEW`], since Lambda stops the claimant there; so a crashed invocation's
/// claims have expired before SQS delivers its messages again (a queue's visibility timeout is
/// six times its consumer's timeout) and before the next nurture tick. Elsewhere:
/// [`EFFECT_LEASE`].
pub fn lease_until(now: DateTime<Utc>) -> DateTime<Utc> {
    let left = current_deadline().filter(|d| d.hard).map(|d| d.remaining().saturating_add(LEASE_SKEW));
    left.and_then(|l| Duration::from_std(l).ok()).map_or(now + EFFECT_LEASE, |l| now + l)
}

/// Why an item of a batch was given back without being tried.
pub const NOT_STARTED: &str = "not started: the invocation's deadline was near";

/// Handles every item of a batch with `handle` and answers the items that must be delivered
/// again. Malformed bodies are permanent failures: logged and counted, not redelivered.
///
/// Under a [`Deadline`] no item is started unless the longest one so far still fits before it:
/// the rest are answered as failures without being touched, so SQS delivers them again, rather
/// than the invocation timing out and the whole batch, done items included, coming back.
pub async fn process_batch<M, F, Fut>(items: Vec<BatchItem>, handle: F) -> Vec<Failure>
where
    M: StageMessage,
    F: Fn(M) -> Fut,
    Fut: Future<Output = Result<(), StageError>>,
{
    let stage = M::STAGE.as_str();
    let deadline = current_deadline();
    let mut failed = Vec::new();
    let mut longest = StdDuration::ZERO;
    let mut items = items.into_iter();
    while let Some(item) = items.next() {
        if deadline.is_some_and(|d| !d.allows(longest)) {
            let given_back = failed.len();
            for item in std::iter::once(item).chain(items.by_ref()) {
                failed.push(Failure { id: item.id, reason: NOT_STARTED.to_string() });
            }
            warn!(
                stage,
                not_started = failed.len() - given_back,
                "batch stopped before the deadline; the rest come back"
            );
            break;
        }
        let started = Instant::now();
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
            Err(StageError::Permanent(reason)) => {
                // Not silent: the count raises MessagesDroppedAlarm, the line says which and why.
                count(Metric::MessagesDropped, 1);
                warn!(%reason, "message dropped: no retry can fix it");
            }
            Err(StageError::Retryable(reason)) => {
                warn!(%reason, "message failed; it will be delivered again");
                failed.push(Failure { id: item.id, reason });
            }
        }
        longest = longest.max(started.elapsed());
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
    send_once_with_trail(ports, lead_id, email, |_| Vec::new()).await
}

/// [`send_once`], with more trail entries of the send in the same write as its record: `also`
/// builds them from the provider's message id, and runs only when the email goes out now.
pub async fn send_once_with_trail<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    email: &OutgoingEmail,
    also: impl FnOnce(&str) -> Vec<Activity>,
) -> Result<Sent, StageError> {
    let now = ports.clock().now();
    let claim = email_claim(email, now);
    match ports.store().claim_effect(lead_id, &claim.key, now, claim.lease_until).await? {
        EffectClaim::Done(detail) => return Ok(Sent::Before(detail)),
        EffectClaim::Busy => return Err(StageError::Retryable("the email is being sent by another worker".into())),
        EffectClaim::Claimed => {}
    }
    send_claimed_with_trail(ports, lead_id, email, &claim, also).await
}

/// The claim [`send_once`] takes for `email`, for a write that takes it instead
/// ([`EffectLease`]): the assignment's.
pub fn email_claim(email: &OutgoingEmail, now: DateTime<Utc>) -> EffectLease {
    EffectLease { key: email_effect_key(email), lease_until: lease_until(now) }
}

fn email_effect_key(email: &OutgoingEmail) -> String {
    format!("email:{}", email.key)
}

/// The rest of [`send_once`], for an email whose claim ([`email_claim`]) this worker holds:
/// sends it, then finishes the claim with the trail's entry, or gives it back to be retried.
pub async fn send_claimed<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    email: &OutgoingEmail,
    claim: &EffectLease,
) -> Result<Sent, StageError> {
    send_claimed_with_trail(ports, lead_id, email, claim, |_| Vec::new()).await
}

async fn send_claimed_with_trail<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    email: &OutgoingEmail,
    claim: &EffectLease,
    also: impl FnOnce(&str) -> Vec<Activity>,
) -> Result<Sent, StageError> {
    let now = ports.clock().now();
    let store = ports.store();
    let key = &claim.key;
    match ports.mailer().send(email, now).await {
        Ok(message_id) => {
            count(Metric::EmailsSent, 1);
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
            let mut trail = vec![sent];
            trail.extend(also(&message_id));
            store.finish_effect(lead_id, key, &message_id, &trail).await?;
            Ok(Sent::Now(message_id))
        }
        Err(MailError::Rejected(reason)) => {
            count(Metric::EmailsRejected, 1);
            // On the lead's trail, with the claim's end: nobody retries it, so a person must see it.
            let trail = [not_sent(lead_id, &email.key, &reason, now)];
            store.finish_effect(lead_id, key, &format!("rejected: {reason}"), &trail).await?;
            Ok(Sent::Rejected(reason))
        }
        Err(e @ (MailError::Throttled(_) | MailError::Unavailable(_))) => {
            count(Metric::EmailsRetried, 1);
            // Not sent: give the claim back so the retry can send at once.
            store.release_effect(key, claim.lease_until).await?;
            Err(StageError::Retryable(e.to_string()))
        }
    }
}

/// Publishes `event`, at least once: a redelivered message publishes it again.
///
/// No claim and no record, unlike [`send_once`]: EventBridge delivers each event to its targets
/// at least once anyway, so consumers must drop repeats by the event's deterministic `id` (in the
/// detail) whatever we do, and skipping the claim and the record saves two writes an event.
pub async fn publish<P: Ports>(ports: &P, event: DomainEvent) -> Result<(), StageError> {
    ports.bus().publish(std::slice::from_ref(&event)).await.map_err(|e| StageError::Retryable(e.to_string()))
}

pub fn activity(lead_id: LeadId, id: String, at: DateTime<Utc>, kind: ActivityKind) -> Activity {
    Activity { id, lead_id, at, kind }
}

/// The trail entry of the email `key` that will never go out, and why (no address in `reason`).
pub fn not_sent(lead_id: LeadId, key: &str, reason: &str, at: DateTime<Utc>) -> Activity {
    let kind = ActivityKind::EmailNotSent { email: key.to_string(), reason: reason.to_string() };
    activity(lead_id, format!("not-sent-{key}"), at, kind)
}

/// How many times a handler re-reads and retries a write that lost an optimistic-locking race
/// before it gives the message back to the queue.
pub const WRITE_ATTEMPTS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::ports::Stage;

    const MS: fn(u64) -> StdDuration = StdDuration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_allows_work_that_ends_a_margin_before_it() {
        let d = Deadline::budget(MS(1_000), MS(100));
        assert!(d.allows(MS(899)));
        assert!(!d.allows(MS(900)));
        tokio::time::sleep(MS(600)).await;
        assert_eq!(d.remaining(), MS(400));
        assert!(d.allows(MS(299)) && !d.allows(MS(300)));
        tokio::time::sleep(MS(600)).await;
        assert_eq!(d.remaining(), StdDuration::ZERO);
        assert!(!d.allows(StdDuration::ZERO));
        // Lambda's deadline in the past (a hand-made context says 0) leaves no time.
        assert!(!Deadline::invocation(SystemTime::UNIX_EPOCH, MS(0)).allows(StdDuration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_the_current_tasks_only_inside_within() {
        assert!(current_deadline().is_none());
        let inside = within(Deadline::budget(MS(50), MS(0)), async { current_deadline().map(|d| d.remaining()) }).await;
        assert_eq!(inside, Some(MS(50)));
        assert!(current_deadline().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn leases_end_with_an_invocation_and_are_the_default_elsewhere() {
        let now = Utc::now();
        assert_eq!(lease_until(now), now + EFFECT_LEASE);
        let deadline = Deadline::invocation(SystemTime::now() + StdDuration::from_secs(10), MS(1_000));
        let lease = within(deadline, async { lease_until(now) }).await;
        let expected = now + Duration::from_std(StdDuration::from_secs(10) + LEASE_SKEW).unwrap_or(EFFECT_LEASE);
        // The wall clock moved a little between building the deadline and reading it.
        assert!(lease <= expected && lease > expected - Duration::milliseconds(50), "{lease} vs {expected}");
        let budget = within(Deadline::budget(StdDuration::from_secs(10), MS(0)), async { lease_until(now) }).await;
        assert_eq!(budget, now + EFFECT_LEASE, "a budget's worker is not stopped at its end");
    }

    /// A message of no real stage's shape: a number.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Probe(u32);

    impl StageMessage for Probe {
        const STAGE: Stage = Stage::Score;
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_under_a_deadline_gives_back_the_items_it_did_not_start_untouched() {
        let items: Vec<BatchItem> = (1..=10).map(|n| BatchItem { id: format!("m{n}"), body: n.to_string() }).collect();
        let handled = std::sync::Mutex::new(Vec::new());
        let handle = |Probe(n): Probe| {
            let handled = &handled;
            async move {
                tokio::time::sleep(MS(100)).await;
                handled.lock().map(|mut h| h.push(n)).map_err(|_| StageError::Retryable("lock".into()))
            }
        };
        // 100 ms an item, 1 s with a 300 ms margin: items start at 0, 100, …, 500 ms (600 would
        // end at 700, inside the margin).
        let failed = within(Deadline::budget(MS(1_000), MS(300)), process_batch(items.clone(), handle)).await;
        let handled_now = handled.lock().map(|h| h.clone()).unwrap_or_default();
        assert_eq!(handled_now, [1, 2, 3, 4, 5, 6]);
        let ids: Vec<&str> = failed.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["m7", "m8", "m9", "m10"]);
        assert!(failed.iter().all(|f| f.reason == NOT_STARTED));

        // Without a deadline every item is handled.
        handled.lock().map(|mut h| h.clear()).unwrap_or_default();
        assert!(process_batch(items, handle).await.is_empty());
        assert_eq!(handled.lock().map(|h| h.len()).unwrap_or_default(), 10);
    }
}
