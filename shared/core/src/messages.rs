//! What the stage queues carry. Messages are small: ids, and the submission where there is no
//! stored lead yet.

use serde::{Deserialize, Serialize};

use crate::model::{LeadId, Submission};

/// The validate queue carries the submission itself.
pub type ValidateMessage = Submission;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreMessage {
    pub lead_id: LeadId,
    /// Why the lead is being scored again (for the trail): `submission`, `merge`, `activity`.
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMessage {
    pub lead_id: LeadId,
}
