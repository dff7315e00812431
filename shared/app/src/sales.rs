//! Sales marks a lead contacted, won or lost. Won and lost end its nurture at once.

use leadflow_core::erasure::is_erased;
use leadflow_core::model::{ActivityKind, Lead, LeadId, SalesStatus};
use leadflow_core::ports::{Clock, Ports, WriteOutcome};

use crate::optout::stop_enrollments;
use crate::{StageError, WRITE_ATTEMPTS, activity};
use leadflow_core::ports::Leads;

/// Why a status change was not made.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("no lead has this id")]
    NotFound,
    #[error("the lead was erased; its status can no longer change")]
    Erased,
    /// The change would take the lead backwards (a won lead back to new, …).
    #[error("a {from} lead cannot be marked {to}: {why}")]
    Refused { from: &'static str, to: &'static str, why: &'static str },
    #[error(transparent)]
    Stage(#[from] StageError),
}

impl From<leadflow_core::error::StoreError> for MarkError {
    fn from(e: leadflow_core::error::StoreError) -> Self {
        MarkError::Stage(e.into())
    }
}

/// What [`mark`] did.
#[derive(Debug, Clone)]
pub struct Marked {
    /// The lead as stored after the change.
    pub lead: Lead,
    /// Its status before.
    pub from: SalesStatus,
    /// `false` when the lead had this status already.
    pub changed: bool,
    /// Enrollments this call stopped.
    pub stopped: usize,
}

/// Whether `from` may become `to` (the core's rule, [`SalesStatus::may_become`]), as the error
/// [`mark`] answers.
fn transition(from: SalesStatus, to: SalesStatus) -> Result<(), MarkError> {
    from.may_become(to).map_err(|why| MarkError::Refused { from: from.as_str(), to: to.as_str(), why })
}

/// Marks the lead `status`, on behalf of `by`. Updates the lead optimistically (re-reading on a
/// version conflict) together with a `StatusChanged` trail entry, and, for won and lost, stops
/// every active enrollment.
///
/// Safe to repeat: the change and its entry are one write, so neither is kept without the other;
/// a repeat of a change already made records nothing and only makes sure the enrollments are
/// stopped.
pub async fn mark<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    status: SalesStatus,
    by: Option<String>,
    note: Option<String>,
) -> Result<Marked, MarkError> {
    let store = ports.store();
    for _ in 0..WRITE_ATTEMPTS {
        let now = ports.clock().now();
        let Some(lead) = store.get_lead(lead_id).await? else {
            return Err(MarkError::NotFound);
        };
        if is_erased(&lead) {
            return Err(MarkError::Erased);
        }
        let from = lead.status;
        transition(from, status)?;
        if from == status {
            let stopped = stop_if_closed(ports, lead_id, status, now).await?;
            return Ok(Marked { lead, from, changed: false, stopped });
        }
        let changed = activity(
            lead_id,
            format!("status-{}-{}", from.as_str(), status.as_str()),
            now,
            ActivityKind::StatusChanged { from, to: status, by: by.clone(), note: note.clone() },
        );
        let mut next = lead.clone();
        next.status = status;
        next.updated_at = now;
        match store.update_lead(&next, lead.version, &[changed]).await? {
            WriteOutcome::Written => {
                next.version = lead.version + 1;
                let stopped = stop_if_closed(ports, lead_id, status, now).await?;
                return Ok(Marked { lead: next, from, changed: true, stopped });
            }
            WriteOutcome::VersionConflict => continue,
        }
    }
    Err(StageError::Retryable("the lead kept changing while its status was being set".into()).into())
}

async fn stop_if_closed<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    status: SalesStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StageError> {
    match status {
        SalesStatus::Won => stop_enrollments(ports, lead_id, "lead was won", now).await,
        SalesStatus::Lost => stop_enrollments(ports, lead_id, "lead was lost", now).await,
        SalesStatus::New | SalesStatus::Contacted => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SalesStatus::*;

    #[test]
    fn leads_move_forward_only() {
        for (from, to, ok) in [
            (New, New, true),
            (New, Contacted, true),
            (New, Won, true),
            (New, Lost, true),
            (Contacted, Won, true),
            (Contacted, New, false),
            (Won, Won, true),
            (Won, Lost, true),
            (Lost, Won, true),
            (Won, New, false),
            (Lost, New, false),
            (Won, Contacted, false),
        ] {
            assert_eq!(transition(from, to).is_ok(), ok, "{from:?} -> {to:?}");
        }
    }
}
