//! Stopping a lead's nurture at once: on unsubscribe, bounce, complaint, won or lost, erasure.
//! The nurture stage checks again before every send, so a stop that loses a race with a tick
//! still takes effect before the next step.

use chrono::{DateTime, Utc};
use leadflow_core::campaign::stopped;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, Lead, LeadId, Suppression, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Ports, WriteOutcome};

use crate::metrics::{Metric, count};
use crate::{StageError, WRITE_ATTEMPTS, activity};
use leadflow_core::ports::{Enrollments, Suppressions};

/// Stops every active enrollment of the lead, recording why on its trail; answers how many
/// enrollments this call stopped.
pub async fn stop_enrollments<P: Ports>(
    ports: &P,
    lead_id: LeadId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StageError> {
    let store = ports.store();
    let mut stopped_now = 0;
    for _ in 0..WRITE_ATTEMPTS {
        let active: Vec<_> =
            store.enrollments(lead_id).await?.into_iter().filter(|e| e.state == EnrollmentState::Active).collect();
        if active.is_empty() {
            return Ok(stopped_now);
        }
        let mut raced = false;
        for e in active {
            let done = stopped(&e, reason);
            let ended = activity(
                lead_id,
                format!("enrollment-ended-{}", e.campaign_id),
                now,
                ActivityKind::EnrollmentEnded { campaign_id: e.campaign_id.clone(), reason: reason.into() },
            );
            match store.update_enrollment(&done, e.version, &[ended]).await? {
                WriteOutcome::Written => stopped_now += 1,
                WriteOutcome::VersionConflict => raced = true,
            }
        }
        if !raced {
            return Ok(stopped_now);
        }
    }
    Err(StageError::Retryable("the lead's enrollments kept changing while being stopped".into()))
}

/// Puts the lead's address on the suppression list, with `trail` (what made it opt out) in the
/// same write, then stops its enrollments. Answers whether the address was newly suppressed.
///
/// Should the process die before the enrollments are stopped, the nurture stage stops them at
/// their next step, as it finds the address suppressed.
pub async fn suppress_lead<P: Ports>(
    ports: &P,
    lead: &Lead,
    reason: SuppressionReason,
    trail: &[Activity],
    now: DateTime<Utc>,
) -> Result<bool, StageError> {
    let entry = Suppression { email_key: email_key(&lead.contact.email), reason, at: now, lead_id: Some(lead.id) };
    let fresh = ports.store().suppress(&entry, trail).await?;
    if fresh && reason == SuppressionReason::Unsubscribed {
        count(Metric::OptOuts, 1);
    }
    stop_enrollments(ports, lead.id, reason.as_str(), now).await?;
    Ok(fresh)
}

/// Whether marketing email may go to this lead's address.
pub async fn is_suppressed<P: Ports>(ports: &P, lead: &Lead) -> Result<bool, StageError> {
    Ok(ports.store().suppression(&email_key(&lead.contact.email)).await?.is_some())
}
