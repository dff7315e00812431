//! What operators see of a stage's dead letters, and what a redrive did. The port itself is
//! [`DeadLetters`](crate::ports::DeadLetters).
//!
//! A dead letter is shown by the lead it is about and the kind of message, never by its body: a
//! validate message is the whole submission, email address and name included, and the admin API
//! shows no more personal data than a lead id elsewhere either.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::messages::Stage;
use crate::model::LeadId;

/// The most dead letters one listing returns; the admin API's `limit` is bounded by it.
pub const MAX_LIST: usize = 100;

/// One message that kept failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The queue's id of the message (SQS keeps it when it moves a message to the DLQ).
    pub message_id: String,
    pub stage: Stage,
    /// The lead the message is about; `None` when the body names none that can be read.
    pub lead_id: Option<LeadId>,
    /// What the message asked for (see [`describe`]).
    pub kind: String,
    /// The last failure's reason; `None` when none was recorded (every delivery ran out of time,
    /// or the record has expired).
    pub reason: Option<String>,
    /// Deliveries before it was set aside.
    pub receive_count: u32,
    /// When it was set aside, where the queue tells.
    pub dead_at: Option<DateTime<Utc>>,
}

/// A page of one stage's dead letters, oldest first, and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterList {
    pub stage: Stage,
    /// Every dead letter of the stage (approximate on SQS).
    pub total: u64,
    pub items: Vec<DeadLetter>,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redrive {
    pub stage: Stage,
    /// Messages moved back (locally), or to be moved by the task (approximate, on SQS).
    pub messages: u64,
    /// `true` when the messages are back on the stage's queue already; `false` while a move task
    /// (SQS `StartMessageMoveTask`) is moving them.
    pub done: bool,
    /// The move task's handle, on SQS.
    pub task: Option<String>,
}

/// The lead a message body is about and the kind of message, read from the JSON without
/// trusting it: the body may be why the message failed. Any field other than these two is
/// ignored, so nothing personal is copied out of a submission.
pub fn describe(stage: Stage, body: &str) -> (Option<LeadId>, String) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return (None, "unreadable".into());
    };
    let lead_id = value.get("lead_id").and_then(|v| v.as_str()).and_then(|s| s.parse().ok());
    let kind = match stage {
        Stage::Validate => "submission".to_string(),
        Stage::Score => {
            // The cause is one of a few words the stages write; anything else is not echoed.
            let cause = value.get("cause").and_then(|c| c.as_str()).filter(|c| {
                !c.is_empty() && c.len() <= 32 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-')
            });
            cause.map_or_else(|| "score".to_string(), |c| format!("score:{c}"))
        }
        Stage::Route => {
            if value.get("sla_breach").is_some_and(|b| !b.is_null()) {
                "sla_breach".into()
            } else if value.get("confirm").and_then(|c| c.as_bool()) == Some(true) {
                "confirmation".into()
            } else {
                "route".into()
            }
        }
    };
    (lead_id, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAD: &str = "01KA0000000000000000000000";

    #[test]
    fn a_submission_shows_its_lead_id_and_nothing_it_carries() {
        let body = format!(r#"{{"lead_id":"{LEAD}","email":"ana@acme.io","first_name":"Ana"}}"#);
        let (lead, kind) = describe(Stage::Validate, &body);
        assert_eq!(lead.map(|l| l.to_string()).as_deref(), Some(LEAD));
        assert_eq!(kind, "submission");
    }

    #[test]
    fn route_messages_are_told_apart() {
        let sla =
            format!(r#"{{"lead_id":"{LEAD}","sla_breach":{{"rep_id":"r","sla_due_at":"2026-01-01T00:00:00Z"}}}}"#);
        assert_eq!(describe(Stage::Route, &sla).1, "sla_breach");
        assert_eq!(describe(Stage::Route, &format!(r#"{{"lead_id":"{LEAD}","confirm":true}}"#)).1, "confirmation");
        assert_eq!(describe(Stage::Route, &format!(r#"{{"lead_id":"{LEAD}"}}"#)).1, "route");
    }

    #[test]
    fn a_score_cause_is_shown_only_when_it_is_a_plain_word() {
        assert_eq!(describe(Stage::Score, &format!(r#"{{"lead_id":"{LEAD}","cause":"merge"}}"#)).1, "score:merge");
        assert_eq!(describe(Stage::Score, r#"{"lead_id":"x","cause":"ana@acme.io"}"#), (None, "score".to_string()));
    }

    #[test]
    fn a_body_that_is_not_json_is_unreadable() {
        assert_eq!(describe(Stage::Validate, "ana@acme.io"), (None, "unreadable".to_string()));
    }
}
