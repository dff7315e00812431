//! The adapter a function is given for a port its handler never uses.
//!
//! The handlers are generic over their ports, so a function that sends no email gets
//! [`Unwired`] as its mailer and its binary then links no SES client at all (likewise SQS and
//! EventBridge): each SDK client it leaves out is half a megabyte or more of the zip Lambda loads
//! at every cold start (docs/performance.md, "Function size and cold start"). Which function
//! uses which port is set in its entry point, `src/bin/<function>.rs`.
//!
//! Reaching it is a bug (a handler started to use a port its function was not given, or the
//! template wires a function differently from its entry point). It answers the retryable
//! error of the port, naming what is missing, instead of panicking: a release build aborts on a
//! panic, which would kill the execution environment rather than fail one message, and the
//! message then comes back and ends in its dead-letter queue, where an operator sees why.

use chrono::{DateTime, Utc};
use leadflow_core::error::{BusError, MailError, QueueError};
use leadflow_core::ports::{DomainEvent, EventBus, Mailer, OutgoingEmail, Stage, StageQueue};

/// A port this function has no AWS client for. See the module's documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unwired;

/// What every answer says; the function's name is in every log line already.
const WHY: &str = "this function was built without it (shared/aws/src/bin): a handler uses a port its function \
                   does not give it";

impl StageQueue for Unwired {
    async fn send(&self, stage: Stage, _bodies: &[String]) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(format!("no SQS client for the {} queue: {WHY}", stage.as_str())))
    }
}

impl Mailer for Unwired {
    async fn send(&self, email: &OutgoingEmail, _now: DateTime<Utc>) -> Result<String, MailError> {
        Err(MailError::Unavailable(format!("email {}: no SES client: {WHY}", email.key)))
    }

    // `erase` keeps the port's default (0 copies): SES keeps no copy of what it sent either, so
    // a function without a mail client (admin) erases exactly what one with it would.
}

impl EventBus for Unwired {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), BusError> {
        let first = events.first().map_or("none", |e| e.detail_type.as_str());
        Err(BusError::Unavailable(format!(
            "no EventBridge client for {} event(s) (first {first}): {WHY}",
            events.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_an_error_naming_the_missing_client() {
        let queue = StageQueue::send(&Unwired, Stage::Score, &["{}".to_string()]).await;
        assert!(matches!(&queue, Err(QueueError::Unavailable(m)) if m.contains("SQS") && m.contains("score")));
        let event = DomainEvent {
            id: "e1".into(),
            detail_type: "lead.assigned".into(),
            at: Utc::now(),
            detail: serde_json::Value::Null,
        };
        let bus = Unwired.publish(&[event]).await;
        assert!(
            matches!(&bus, Err(BusError::Unavailable(m)) if m.contains("EventBridge") && m.contains("lead.assigned"))
        );
    }
}
