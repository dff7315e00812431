//! What the stage queues carry: ids, the submission where there is no stored lead yet, and the
//! lead as the sender stored it, which saves the next stage reading it back.
//!
//! A carried lead is a hint, never the truth: a message can be redelivered or redriven from a
//! dead-letter queue long after it was sent. A stage trusts it only for a write that checks the
//! lead's version (a stale copy loses that write and the stage reads the lead); a decision it
//! makes without writing reads the stored lead.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::confirmation::Due;
use crate::model::{Activity, Lead, LeadId, RepId, Submission};

/// A message of one stage's queue: its type names the queue it goes on and the stage that reads
/// it, so a sender cannot put it on another queue and a reader cannot expect another shape
/// (`StageQueue::enqueue`, `leadflow_app::process_batch`).
pub trait StageMessage: Serialize + DeserializeOwned {
    const STAGE: Stage;
}

/// The validate queue carries the submission itself.
pub type ValidateMessage = Submission;

impl StageMessage for ValidateMessage {
    const STAGE: Stage = Stage::Validate;
}

impl StageMessage for ScoreMessage {
    const STAGE: Stage = Stage::Score;
}

impl StageMessage for RouteMessage {
    const STAGE: Stage = Stage::Route;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreMessage {
    pub lead_id: LeadId,
    /// Why the lead is being scored again (for the trail): `submission`, `activity`,
    /// `consent_confirmed`.
    pub cause: String,
    /// The lead as validate stored it (a hint: see the module's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Box<Lead>>,
    /// A lead validate created: the whole trail it wrote with it, which saves score reading the
    /// trail back. Trusted only with `lead`, and only as far as `lead` is: when the versioned
    /// write over that copy succeeds, nothing has touched the new lead since (scoring's first
    /// write comes before any email that could add to its trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail: Option<Vec<Activity>>,
}

impl ScoreMessage {
    /// A message that carries nothing but the lead's id: score reads the lead and its trail.
    pub fn rescore(lead_id: LeadId, cause: &str) -> Self {
        Self { lead_id, cause: cause.to_string(), lead: None, trail: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteMessage {
    pub lead_id: LeadId,
    /// The lead as score stored it (a hint: see the module's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Box<Lead>>,
    /// Set by the nurture stage's SLA scan: the lead's owner let its SLA run out, so route moves
    /// it to another rep of the team (unless that happened already) and tells both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_breach: Option<SlaBreach>,
    /// Set by the score stage when the lead is due double opt-in's confirmation email, which
    /// route sends (it has the mailer). Set with `confirmation` for a route of a version before
    /// it, which reads the lead's trail for the email; alone (a message from such a version),
    /// the route of today reads the trail too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,
    /// The confirmation email score found due in the trail it scored from, so route sends it
    /// without reading the trail again. A hint like the lead: route checks what can have changed
    /// since (`Due::still_due`, the suppression list), and the email's key is sent once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Due>,
}

impl RouteMessage {
    /// A message that carries nothing but the lead's id: route reads the lead.
    pub fn route(lead_id: LeadId) -> Self {
        Self { lead_id, lead: None, sla_breach: None, confirm: false, confirmation: None }
    }
}

/// Which owner let which SLA run out: a breach is handled once, however often it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreach {
    pub rep_id: RepId,
    pub sla_due_at: DateTime<Utc>,
}

/// The three stage queues between the pipeline's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Validate,
    Score,
    Route,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Validate, Stage::Score, Stage::Route];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Score => "score",
            Stage::Route => "route",
        }
    }
}
