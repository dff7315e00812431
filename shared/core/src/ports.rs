//! The ports: what the stage handlers need from the world, in domain verbs. Each has an AWS
//! adapter (`shared/aws`), an embedded one (`shared/local`) and an in-memory one
//! (`shared/memory`). The methods return futures so that network adapters fit; nothing in this
//! crate runs them.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CompiledConfig;
use crate::dead_letters::{DeadLetterList, Redrive};
use crate::error::{BusError, MailError, QueueError};
pub use crate::live_config::{ConfigHandle, LiveState, SettingsInForce};
pub use crate::messages::{Stage, StageMessage};
use crate::model::LeadId;
pub use crate::outgoing::{EmailCategory, Mailbox, OutgoingEmail};

mod store;

pub use store::*;

pub trait StageQueue: Send + Sync + 'static {
    /// Enqueues message bodies (JSON) on a stage's queue; all or none are accepted. Senders use
    /// [`Self::enqueue`], which takes the stage from the message's type; adapters implement this.
    fn send(&self, stage: Stage, bodies: &[String]) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Whether senders put the lead in the next stage's message (`messages`): on SQS the copy
    /// saves the reader a DynamoDB request. A queue that rewrites a message's row on every
    /// receive says no: there the copy's bytes cost more than the local read they save.
    fn carries_leads(&self) -> bool {
        true
    }

    /// Enqueues `messages` on their stage's queue; all or none are accepted.
    fn enqueue<M: StageMessage + Sync>(&self, messages: &[M]) -> impl Future<Output = Result<(), QueueError>> + Send {
        let bodies: Result<Vec<String>, QueueError> = messages
            .iter()
            .map(|m| serde_json::to_string(m).map_err(|e| QueueError::Unwritable(e.to_string())))
            .collect();
        async move { self.send(M::STAGE, &bodies?).await }
    }
}

/// The stages' dead letters, for operators: the local queue's, or the SQS dead-letter queues.
/// Kept apart from [`Ports`]: only the admin API uses it.
pub trait DeadLetters: Send + Sync + 'static {
    /// Up to `limit` of `stage`'s dead letters (oldest first where the queue keeps an order),
    /// each with the reason its last delivery failed.
    fn list(&self, stage: Stage, limit: usize) -> impl Future<Output = Result<DeadLetterList, QueueError>> + Send;

    /// Puts every dead letter of `stage` back on the stage's queue, to be handled again.
    fn redrive(&self, stage: Stage) -> impl Future<Output = Result<Redrive, QueueError>> + Send;
}

pub trait Mailer: Send + Sync + 'static {
    /// Sends the email; answers the provider's message id.
    fn send(&self, email: &OutgoingEmail, now: DateTime<Utc>)
    -> impl Future<Output = Result<String, MailError>> + Send;

    /// Erasure: deletes every copy the adapter keeps of emails whose key names `lead_id` (the
    /// outbox's files); answers how many. A provider that keeps none (SES) answers 0.
    fn erase(&self, lead_id: LeadId) -> impl Future<Output = Result<usize, MailError>> + Send {
        let _ = lead_id;
        async { Ok(0) }
    }
}

/// A domain event for other systems (`lead.assigned`, …). Events carry ids and figures, never
/// personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Deterministic, so that consumers can drop repeats.
    pub id: String,
    pub detail_type: String,
    pub at: DateTime<Utc>,
    pub detail: serde_json::Value,
}

pub trait EventBus: Send + Sync + 'static {
    fn publish(&self, events: &[DomainEvent]) -> impl Future<Output = Result<(), BusError>> + Send;
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Everything a handler is given at start-up.
pub trait Ports: Send + Sync + 'static {
    type Store: LeadStore;
    type Queue: StageQueue;
    type Mailer: Mailer;
    type Bus: EventBus;
    type Clock: Clock;
    fn store(&self) -> &Self::Store;
    fn queue(&self) -> &Self::Queue;
    fn mailer(&self) -> &Self::Mailer;
    fn bus(&self) -> &Self::Bus;
    fn clock(&self) -> &Self::Clock;
    fn config(&self) -> Arc<CompiledConfig>;
    fn config_handle(&self) -> &ConfigHandle;
    /// The settings alone: a function that reads nothing else then never compiles the rest.
    fn settings(&self) -> SettingsInForce {
        self.config_handle().settings()
    }
}

/// The usual way to hold a set of adapters.
pub struct Adapters<S, Q, M, B, C> {
    pub store: S,
    pub queue: Q,
    pub mailer: M,
    pub bus: B,
    pub clock: C,
    pub config: ConfigHandle,
}

impl<S: LeadStore, Q: StageQueue, M: Mailer, B: EventBus, C: Clock> Ports for Adapters<S, Q, M, B, C> {
    type Store = S;
    type Queue = Q;
    type Mailer = M;
    type Bus = B;
    type Clock = C;
    fn store(&self) -> &S {
        &self.store
    }
    fn queue(&self) -> &Q {
        &self.queue
    }
    fn mailer(&self) -> &M {
        &self.mailer
    }
    fn bus(&self) -> &B {
        &self.bus
    }
    fn clock(&self) -> &C {
        &self.clock
    }
    fn config(&self) -> Arc<CompiledConfig> {
        self.config.current()
    }
    fn config_handle(&self) -> &ConfigHandle {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_suppression_cursor_names_the_position_it_was_made_from(at_ms in any::<i64>(), key in "\\PC{1,80}") {
            let position = SuppressionPosition { at_ms, email_key: key };
            prop_assert_eq!(SuppressionPosition::parse(&position.cursor()), Some(position));
        }

        #[test]
        fn any_other_text_is_no_cursor_or_the_position_it_spells(text in "(-?[0-9]{0,3}#)?\\PC{0,40}") {
            // Never a panic; and what parses is exactly what it says.
            if let Some(position) = SuppressionPosition::parse(&text) {
                prop_assert_eq!(position.cursor(), text);
            }
        }
    }

    #[test]
    fn forged_suppression_cursors_are_refused() {
        for text in ["", "#", "12#", "#abc", "soon#abc", "+12#abc", "012#abc", "-0#abc", "12", "1.5#abc", " 12#abc"] {
            assert_eq!(SuppressionPosition::parse(text), None, "{text:?}");
        }
    }
}
