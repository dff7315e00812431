//! Nurture: on every scheduler tick, finds the enrollments whose next step is due, stops those
//! whose lead must not be emailed any more, and sends the rest their step, once each.

use leadflow_core::campaign::{CampaignStatus, stop_reason, stopped};
use leadflow_core::model::{ActivityKind, Enrollment};
use leadflow_core::ports::{Clock, LeadStore, Ports, WriteOutcome};
use leadflow_stage::{Sent, StageError, activity, send_once};
use tracing::{Instrument, info, info_span, warn};

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub due: usize,
    pub sent: usize,
    pub stopped: usize,
    /// Steps left due, to be tried on a later tick (throttling, a store hiccup).
    pub retry_later: usize,
}

/// How many due enrollments one tick takes on; the rest wait for the next tick.
pub const TICK_LIMIT: usize = 500;

/// One scheduler tick.
pub async fn tick<P: Ports>(ports: &P, limit: usize) -> Result<TickReport, StageError> {
    let now = ports.clock().now();
    let due = ports.store().due_enrollments(now, limit).await?;
    let mut report = TickReport { due: due.len(), ..Default::default() };
    for enrollment in due {
        let span = info_span!("enrollment", lead_id = %enrollment.lead_id, campaign = %enrollment.campaign_id);
        match step(ports, &enrollment).instrument(span).await {
            Ok(StepOutcome::Sent) => report.sent += 1,
            Ok(StepOutcome::Stopped) => report.stopped += 1,
            Ok(StepOutcome::Waiting) => {}
            Err(e) => {
                warn!(lead_id = %enrollment.lead_id, error = %e, "drip step not sent; retried on a later tick");
                report.retry_later += 1;
            }
        }
    }
    Ok(report)
}

enum StepOutcome {
    Sent,
    Stopped,
    Waiting,
}

async fn step<P: Ports>(ports: &P, enrollment: &Enrollment) -> Result<StepOutcome, StageError> {
    let store = ports.store();
    let config = ports.config();
    let now = ports.clock().now();
    let stop = |reason: &str| {
        let e = stopped(enrollment, reason);
        let reason = reason.to_string();
        async move {
            if store.update_enrollment(&e, enrollment.version).await? == WriteOutcome::Written {
                store
                    .record_activity(&activity(
                        e.lead_id,
                        format!("enrollment-ended-{}", e.campaign_id),
                        now,
                        ActivityKind::EnrollmentEnded { campaign_id: e.campaign_id.clone(), reason },
                    ))
                    .await?;
            }
            Ok::<_, StageError>(StepOutcome::Stopped)
        }
    };
    let Some(campaign) = config.campaign(&enrollment.campaign_id) else {
        return stop("campaign was removed").await;
    };
    let Some(lead) = store.get_lead(enrollment.lead_id).await? else {
        return stop("lead no longer exists").await;
    };
    if let Some(reason) = stop_reason(&lead) {
        return stop(reason).await;
    }
    if campaign.campaign.status == CampaignStatus::Paused {
        // Paused campaigns keep their place; look again in an hour so they do not crowd the
        // head of the due list.
        let mut later = enrollment.clone();
        later.next_due_at = Some(now + chrono::Duration::hours(1));
        store.update_enrollment(&later, enrollment.version).await?;
        return Ok(StepOutcome::Waiting);
    }
    let index = enrollment.next_step as usize;
    if index >= campaign.campaign.steps.len() {
        return stop("campaign has no such step any more").await;
    }
    let email = config
        .templates
        .drip_email(&lead, campaign, index, &config.settings)
        .map_err(|e| StageError::Permanent(e.to_string()))?;
    let sent = send_once(ports, lead.id, &email).await?;
    if let Sent::Rejected(reason) = &sent {
        warn!(%reason, "drip email rejected");
    }
    // Another tick may have advanced it already: then its write wins and ours is dropped.
    let advanced = campaign.advance(enrollment, now);
    store.update_enrollment(&advanced, enrollment.version).await?;
    if matches!(sent, Sent::Now(_)) {
        info!(step = index, "drip step sent");
        Ok(StepOutcome::Sent)
    } else {
        Ok(StepOutcome::Waiting)
    }
}
