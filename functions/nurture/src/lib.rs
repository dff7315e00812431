//! Nurture: on every scheduler tick, finds the enrollments whose next step is due and runs the
//! drip state machine on each: stop (opt-out, bounce, complaint, won, lost, erasure, …), wait
//! for the send window or the frequency cap, take branches, or send the step once. Then it
//! hands the leads whose owner let the SLA run out to route.

pub mod sla;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use leadflow_core::campaign::{CompiledCampaign, Control, Decision, Facts, stopped};
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{Activity, ActivityKind, Enrollment, Lead};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Clock, LeadStore, Ports, WriteOutcome};
use leadflow_core::unsubscribe;
use leadflow_stage::{Sent, StageError, activity, live, send_once};
use tracing::{Instrument, info, info_span, warn};

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub due: usize,
    pub sent: usize,
    pub stopped: usize,
    pub completed: usize,
    /// Moved to a later time: send window, frequency cap, pause, schedule, waits.
    pub rescheduled: usize,
    /// Steps left due, to be tried on a later tick (throttling, a store hiccup).
    pub retry_later: usize,
    /// Leads whose owner did not contact them within the SLA, handed to route to move.
    pub sla_breaches: usize,
}

impl TickReport {
    pub fn add(&mut self, other: &TickReport) {
        self.due += other.due;
        self.sent += other.sent;
        self.stopped += other.stopped;
        self.completed += other.completed;
        self.rescheduled += other.rescheduled;
        self.retry_later += other.retry_later;
        self.sla_breaches += other.sla_breaches;
    }
}

/// How many due enrollments one tick takes on; the rest wait for the next tick.
pub const TICK_LIMIT: usize = 500;

/// One scheduler tick.
pub async fn tick<P: Ports>(ports: &P, limit: usize) -> Result<TickReport, StageError> {
    let config = live::refresh(ports, false).await;
    let now = ports.clock().now();
    let due = ports.store().due_enrollments(now, limit).await?;
    let mut report = TickReport { due: due.len(), ..Default::default() };
    for enrollment in due {
        let span = info_span!("enrollment", lead_id = %enrollment.lead_id, campaign = %enrollment.campaign_id);
        match step(ports, &config, &enrollment, now).instrument(span).await {
            Ok(Outcome::Sent) => report.sent += 1,
            Ok(Outcome::Stopped) => report.stopped += 1,
            Ok(Outcome::Completed) => report.completed += 1,
            Ok(Outcome::Rescheduled) => report.rescheduled += 1,
            Ok(Outcome::Nothing) => {}
            Err(e) => {
                warn!(lead_id = %enrollment.lead_id, error = %e, "drip step not sent; retried on a later tick");
                report.retry_later += 1;
            }
        }
    }
    report.sla_breaches = sla::hand_over_due(ports, now, limit).await;
    Ok(report)
}

enum Outcome {
    Sent,
    Stopped,
    Completed,
    Rescheduled,
    /// Another worker moved the enrollment on first, or the step was sent before.
    Nothing,
}

async fn end<P: Ports>(
    ports: &P,
    enrollment: &Enrollment,
    ended: &Enrollment,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StageError> {
    let trail = [ended_entry(enrollment, reason, now)];
    Ok(ports.store().update_enrollment(ended, enrollment.version, &trail).await? == WriteOutcome::Written)
}

/// The trail entry of an enrollment's end, written with the enrollment write that ends it.
fn ended_entry(enrollment: &Enrollment, reason: &str, now: DateTime<Utc>) -> Activity {
    let kind = ActivityKind::EnrollmentEnded { campaign_id: enrollment.campaign_id.clone(), reason: reason.into() };
    activity(enrollment.lead_id, format!("enrollment-ended-{}", enrollment.campaign_id), now, kind)
}

async fn step<P: Ports>(
    ports: &P,
    config: &CompiledConfig,
    enrollment: &Enrollment,
    now: DateTime<Utc>,
) -> Result<Outcome, StageError> {
    let store = ports.store();
    let stop = |reason: String| async move {
        let done = end(ports, enrollment, &stopped(enrollment, &reason), &reason, now).await?;
        Ok::<_, StageError>(if done { Outcome::Stopped } else { Outcome::Nothing })
    };
    let Some(campaign) =
        live::campaign_version(ports, config, &enrollment.campaign_id, enrollment.campaign_version).await?
    else {
        return stop("campaign was removed".into()).await;
    };
    let Some(lead) = store.get_lead(enrollment.lead_id).await? else {
        return stop("lead no longer exists".into()).await;
    };
    // Pause and schedule are the campaign's, whatever version a lead is finishing.
    let latest = config.campaign(&enrollment.campaign_id).map_or(&campaign.campaign, |c| &c.campaign);
    let control = Control { status: latest.status, schedule: latest.schedule };
    let facts = facts(ports, &campaign, &lead).await?;
    let decision = campaign.decide(enrollment, &lead, &facts, control, config.settings.nurture.frequency_cap, now);
    match decision {
        Decision::Stop(reason) => stop(reason).await,
        Decision::Complete(done) => Ok(if end(ports, enrollment, &done, "completed", now).await? {
            Outcome::Completed
        } else {
            Outcome::Nothing
        }),
        Decision::Wait(later) => {
            if later == *enrollment {
                return Ok(Outcome::Nothing);
            }
            Ok(match store.update_enrollment(&later, enrollment.version, &[]).await? {
                WriteOutcome::Written => Outcome::Rescheduled,
                WriteOutcome::VersionConflict => Outcome::Nothing,
            })
        }
        Decision::Send { step, after } => send(ports, config, &campaign, enrollment, &lead, step, after, now).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn send<P: Ports>(
    ports: &P,
    config: &CompiledConfig,
    campaign: &CompiledCampaign,
    enrollment: &Enrollment,
    lead: &Lead,
    step: usize,
    after: Enrollment,
    now: DateTime<Utc>,
) -> Result<Outcome, StageError> {
    let settings = &config.settings;
    // Without a secret there is no working unsubscribe link, and no marketing email may go out
    // without one: wait for the configuration to be fixed rather than send.
    let token = unsubscribe::sign(&settings.unsubscribe_secret, lead.id)
        .map_err(|e| StageError::Retryable(format!("cannot sign the unsubscribe link: {e}")))?;
    let url = format!("{}/u/{token}", settings.public_url.trim_end_matches('/'));
    let email = campaign.render(lead, step, settings, &url).map_err(|e| StageError::Permanent(e.to_string()))?;
    let sent = send_once(ports, lead.id, &email).await?;
    if let Sent::Rejected(reason) = &sent {
        warn!(%reason, "drip email rejected");
    }
    // Another tick may have advanced it already: then its write wins and ours is dropped. A
    // crash before this write leaves the step due: the next tick finds the email sent (its claim
    // is done) and only advances.
    let trail: Vec<Activity> =
        (after.state != enrollment.state).then(|| ended_entry(enrollment, "completed", now)).into_iter().collect();
    ports.store().update_enrollment(&after, enrollment.version, &trail).await?;
    match sent {
        Sent::Now(_) => {
            info!(step, "drip step sent");
            Ok(Outcome::Sent)
        }
        Sent::Before(_) | Sent::Rejected(_) => Ok(Outcome::Nothing),
    }
}

/// What the state machine needs from the lead's trail and the suppression list.
async fn facts<P: Ports>(ports: &P, campaign: &CompiledCampaign, lead: &Lead) -> Result<Facts, StageError> {
    let store = ports.store();
    let suppressed = if lead.contact.email.is_empty() {
        None
    } else {
        store.suppression(&email_key(&lead.contact.email)).await?.map(|s| s.reason.as_str().to_string())
    };
    let activities = store.activities(lead.id).await?;
    Ok(facts_from(campaign, lead, &activities, suppressed))
}

fn facts_from(campaign: &CompiledCampaign, lead: &Lead, activities: &[Activity], suppressed: Option<String>) -> Facts {
    // Email keys of this campaign version's steps, and which step each message id was.
    let prefix = format!("drip-{}-{}-v{}-", lead.id, campaign.campaign.id, campaign.campaign.version);
    let step_of_key = |key: &str| key.strip_prefix(&prefix).map(str::to_string);
    let mut step_of_message = std::collections::HashMap::new();
    let mut marketing_sends = Vec::new();
    for a in activities {
        if let ActivityKind::EmailSent { email, message_id, .. } = &a.kind {
            if email.starts_with("drip-") {
                marketing_sends.push(a.at);
            }
            if let Some(step) = step_of_key(email) {
                step_of_message.insert(message_id.clone(), step);
            }
        }
    }
    let mut opened = BTreeSet::new();
    let mut clicked = BTreeSet::new();
    for a in activities {
        let (message_id, email, set) = match &a.kind {
            ActivityKind::EmailOpened { message_id, email } => (message_id, email, &mut opened),
            // A link scanner following the unsubscribe link is not interest in the step.
            ActivityKind::EmailClicked { .. } if leadflow_core::scoring::is_unsubscribe_click(&a.kind) => continue,
            ActivityKind::EmailClicked { message_id, email, .. } => (message_id, email, &mut clicked),
            _ => continue,
        };
        let step = email.as_deref().and_then(step_of_key).or_else(|| step_of_message.get(message_id).cloned());
        if let Some(step) = step {
            set.insert(step);
        }
    }
    Facts { opened, clicked, marketing_sends, suppressed }
}
