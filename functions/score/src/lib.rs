//! Score: fit and behaviour scoring with decay, grade and lifecycle stage. A lead that reaches
//! MQL goes to routing; one below it is enrolled in the nurture campaign that admits it, unless
//! its consent awaits confirmation (double opt-in: the route stage sends that email).

use leadflow_app::{BatchItem, Failure, StageError, WRITE_ATTEMPTS, activity, live, optout, process_batch};
use leadflow_core::confirmation;
use leadflow_core::messages::{RouteMessage, ScoreMessage};
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, Lead, Lifecycle};
use leadflow_core::ports::{Clock, Ports, StageQueue, WriteOutcome};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use tracing::info;

pub async fn handle_batch<P: Ports>(ports: &P, items: Vec<BatchItem>) -> Vec<Failure> {
    process_batch(items, |msg: ScoreMessage| handle(ports, msg)).await
}

pub async fn handle<P: Ports>(ports: &P, msg: ScoreMessage) -> Result<(), StageError> {
    // Picks up scoring rules and campaigns applied through the admin API.
    live::refresh(ports, false).await;
    let Some((lead, trail)) = rescore_with_trail(ports, &msg).await? else {
        return Ok(());
    };
    // Double opt-in: the route stage sends the confirmation email (it has the mailer), and a
    // lead whose consent is awaited enters no campaign until it is confirmed.
    let consent = confirmation::standing(&lead, &trail, ports.clock().now());
    let unrouted = lead.lifecycle >= Lifecycle::Mql && lead.owner.is_none();
    let confirm = consent.due.is_some();
    if unrouted || confirm {
        let carried = (unrouted && ports.queue().carries_leads()).then(|| Box::new(lead.clone()));
        // The email found due travels with the message, on every queue (a key and the request's
        // few words, where the trail read it saves is a query and every entry parsed).
        let msg =
            RouteMessage { lead_id: lead.id, lead: carried, sla_breach: None, confirm, confirmation: consent.due };
        ports.queue().enqueue(&[msg]).await?;
    }
    if lead.lifecycle >= Lifecycle::Mql || consent.awaiting {
        return Ok(());
    }
    enroll(ports, &lead).await
}

/// Scores the lead and stores the result; answers the stored lead (`None` when there is nothing
/// to score: unknown or invalid lead).
pub async fn rescore<P: Ports>(ports: &P, msg: &ScoreMessage) -> Result<Option<Lead>, StageError> {
    Ok(rescore_with_trail(ports, msg).await?.map(|(lead, _)| lead))
}

/// [`rescore`], also answering the trail the score was computed from (read once per attempt:
/// the consent's standing is read from it too).
async fn rescore_with_trail<P: Ports>(
    ports: &P,
    msg: &ScoreMessage,
) -> Result<Option<(Lead, Vec<Activity>)>, StageError> {
    let store = ports.store();
    let config = ports.config();
    // The lead validate carried saves the first read; only the versioned write below trusts it.
    // So does the new lead's trail, trusted exactly as far as the copy: on that attempt only.
    let mut carried = msg.lead.clone().filter(|l| l.id == msg.lead_id);
    let mut carried_trail = msg.trail.clone().filter(|t| t.iter().all(|a| a.lead_id == msg.lead_id));
    for _ in 0..WRITE_ATTEMPTS {
        let from_message = carried.is_some();
        let (read, trail_copy) = match carried.take() {
            Some(lead) => (Some(*lead), carried_trail.take()),
            None => (store.get_lead(msg.lead_id).await?, None),
        };
        let Some(mut lead) = read else {
            return Err(StageError::Permanent(format!("lead {} does not exist", msg.lead_id)));
        };
        if !lead.is_valid() {
            if from_message {
                continue;
            }
            return Ok(None);
        }
        let now = ports.clock().now();
        let activities = match trail_copy {
            Some(trail) => trail,
            None => store.activities(lead.id).await?,
        };
        let score = config.scoring.score(&lead, &activities, now);
        let stage = config.scoring.lifecycle_after(lead.lifecycle, score.total);
        let unchanged = lead
            .score
            .as_ref()
            .is_some_and(|s| s.total == score.total && s.grade == score.grade && s.reasons == score.reasons)
            && stage == lead.lifecycle;
        if unchanged {
            // Nothing to write, so nothing checks a carried copy: decide on the stored lead.
            if from_message {
                continue;
            }
            return Ok(Some((lead, activities)));
        }
        let before = lead.lifecycle;
        let version = lead.version;
        lead.score = Some(score);
        lead.lifecycle = stage;
        lead.updated_at = now;
        // The stage change and its trail entry are one write: a crash cannot keep one alone.
        let trail: Vec<_> = (stage != before)
            .then(|| {
                activity(
                    lead.id,
                    format!("stage-{}", stage.as_str()),
                    now,
                    ActivityKind::StageChanged { from: before, to: stage },
                )
            })
            .into_iter()
            .collect();
        if store.update_lead(&lead, version, &trail).await? == WriteOutcome::VersionConflict {
            continue;
        }
        lead.version = version + 1;
        if stage != before {
            info!(lead_id = %lead.id, stage = stage.as_str(), "lifecycle stage changed");
        }
        return Ok(Some((lead, activities)));
    }
    Err(StageError::Retryable("the lead kept changing while scoring".into()))
}

/// Enrolls a lead below MQL in the first campaign that admits it, unless it is in one already
/// or its address is suppressed.
async fn enroll<P: Ports>(ports: &P, lead: &Lead) -> Result<(), StageError> {
    let config = ports.config();
    let now = ports.clock().now();
    let Some(campaign) = config.campaigns.iter().find(|c| c.admits(lead, now)) else {
        return Ok(());
    };
    if ports.store().enrollments(lead.id).await?.iter().any(|e| e.state == EnrollmentState::Active) {
        return Ok(());
    }
    if optout::is_suppressed(ports, lead).await? {
        return Ok(());
    }
    let enrollment = campaign.enroll(lead, now);
    let enrolled = activity(
        lead.id,
        format!("enrolled-{}", campaign.campaign.id),
        now,
        ActivityKind::Enrolled { campaign_id: campaign.campaign.id.clone(), version: campaign.campaign.version },
    );
    if ports.store().enroll(&enrollment, &[enrolled]).await? {
        info!(lead_id = %lead.id, campaign = %campaign.campaign.id, "enrolled in nurture");
    }
    Ok(())
}
