//! Nurture: on every scheduler tick, first hands the leads whose owner let the SLA run out to
//! route, then finds the enrollments whose next step is due and runs the drip state machine on
//! each: stop (opt-out, bounce, complaint, won, lost, erasure, …), wait for the send window or
//! the frequency cap, take branches, or send the step once.
//!
//! A tick keeps to its time: under a [`Deadline`](leadflow_app::Deadline) (the Lambda
//! invocation's, or the local ticker's budget) it starts no step that would not end a margin
//! before it, so every step is either done (sent and recorded) or untouched and still due for the
//! next tick. Sends may be spaced out by a [`Pacer`] to the mail provider's rate.

pub mod drain;
pub mod pace;
pub mod sla;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow_app::metrics::{Metric, count};
use leadflow_app::{Sent, StageError, activity, current_deadline, live, send_once};
use leadflow_core::campaign::{CompiledCampaign, Control, Decision, Facts, stopped};
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{Activity, ActivityKind, Enrollment, Lead};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Clock, Ports, WriteOutcome};
use leadflow_core::unsubscribe;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use leadflow_core::ports::{Enrollments, Suppressions, Trails};
pub use pace::Pacer;

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
    /// Steps whose email can never go out (the mail service rejected it for good, or it cannot
    /// be rendered): recorded on the lead's trail and passed, the enrollment moving on.
    pub rejected: usize,
    /// Due steps the tick did not reach before its deadline: untouched, still due.
    pub unstarted: usize,
    /// Leads whose owner did not contact them within the SLA, handed to route to move.
    pub sla_breaches: usize,
}

impl TickReport {
    /// Adds another tick's figures (a run of several ticks). Destructured so that a field added
    /// to the report and not summed here does not compile: the run's summary once left three out.
    pub fn add(&mut self, other: &TickReport) {
        let TickReport { due, sent, stopped, completed, rescheduled, retry_later, rejected, unstarted, sla_breaches } =
            other;
        self.due += due;
        self.sent += sent;
        self.stopped += stopped;
        self.completed += completed;
        self.rescheduled += rescheduled;
        self.retry_later += retry_later;
        self.rejected += rejected;
        self.unstarted += unstarted;
        self.sla_breaches += sla_breaches;
    }
}

/// How many due enrollments one tick takes on; the rest wait for the next tick.
pub const TICK_LIMIT: usize = 500;

/// One scheduler tick, sending as fast as the mailer takes the emails.
pub async fn tick<P: Ports>(ports: &P, limit: usize) -> Result<TickReport, StageError> {
    tick_paced(ports, limit, None).await
}

/// One scheduler tick, each send waiting for its turn at `pacer`. Under a deadline (see
/// [`leadflow_app::within`]) it stops early, leaving the steps it did not reach due.
pub async fn tick_paced<P: Ports>(ports: &P, limit: usize, pacer: Option<&Pacer>) -> Result<TickReport, StageError> {
    let config = live::refresh(ports, false).await;
    let now = ports.clock().now();
    // First: a backlog of drips may take the whole budget, and a missed SLA is a lead waiting.
    let sla_breaches = sla::hand_over_due(ports, now, limit).await;
    let due = ports.store().due_enrollments(now, limit).await?;
    let mut report = TickReport { due: due.len(), sla_breaches, ..Default::default() };
    let deadline = current_deadline();
    // The longest step so far: what the next one is expected to take at most.
    let mut longest = Duration::ZERO;
    for (done, enrollment) in due.iter().enumerate() {
        let left = due.len() - done;
        if deadline.is_some_and(|d| !d.allows(longest)) {
            report.unstarted = left;
            break;
        }
        let started = Instant::now();
        let span = info_span!("enrollment", lead_id = %enrollment.lead_id, campaign = %enrollment.campaign_id);
        let due_step = Step { ports, config: &config, enrollment, now, pacer, expected: longest };
        match step(&due_step).instrument(span).await {
            Ok(Outcome::Sent) => report.sent += 1,
            Ok(Outcome::Stopped) => report.stopped += 1,
            Ok(Outcome::Completed) => report.completed += 1,
            Ok(Outcome::Rescheduled) => report.rescheduled += 1,
            Ok(Outcome::Rejected) => report.rejected += 1,
            Ok(Outcome::Nothing) => {}
            Ok(Outcome::Unstarted) => {
                report.unstarted = left;
                break;
            }
            Err(e) => {
                warn!(lead_id = %enrollment.lead_id, error = %e, "drip step not sent; retried on a later tick");
                report.retry_later += 1;
            }
        }
        longest = longest.max(started.elapsed());
    }
    if report.unstarted > 0 {
        info!(unstarted = report.unstarted, "tick stopped before its deadline; the rest stay due");
    }
    Ok(report)
}

enum Outcome {
    Sent,
    Stopped,
    Completed,
    Rescheduled,
    /// The email can never go out; recorded, and the enrollment moved past it.
    Rejected,
    /// Another worker moved the enrollment on first, or the step was sent before.
    Nothing,
    /// The deadline came near while waiting for a turn to send: nothing was written.
    Unstarted,
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

/// One due enrollment, and what its tick gives it.
struct Step<'a, P> {
    ports: &'a P,
    config: &'a CompiledConfig,
    enrollment: &'a Enrollment,
    now: DateTime<Utc>,
    pacer: Option<&'a Pacer>,
    /// How long the step may be expected to take (the tick's longest so far).
    expected: Duration,
}

async fn step<P: Ports>(s: &Step<'_, P>) -> Result<Outcome, StageError> {
    let Step { ports, config, enrollment, now, .. } = *s;
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
    // The trail comes with the lead (one request on DynamoDB): a branch may test it.
    let Some((lead, activities)) = store.lead_and_trail(enrollment.lead_id).await? else {
        return stop("lead no longer exists".into()).await;
    };
    // Pause and schedule are the campaign's, whatever version a lead is finishing.
    let latest = config.campaign(&enrollment.campaign_id).map_or(&campaign.campaign, |c| &c.campaign);
    let control = Control { status: latest.status, schedule: latest.schedule };
    let facts = facts(ports, &campaign, &lead, &activities).await?;
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
        Decision::Send { step, after } => send(s, &campaign, &lead, step, after).await,
    }
}

async fn send<P: Ports>(
    s: &Step<'_, P>,
    campaign: &CompiledCampaign,
    lead: &Lead,
    step: usize,
    after: Enrollment,
) -> Result<Outcome, StageError> {
    let Step { ports, config, enrollment, now, .. } = *s;
    let settings = &config.settings;
    // Without a secret there is no working unsubscribe link, and no marketing email may go out
    // without one: wait for the configuration to be fixed rather than send.
    let token = unsubscribe::sign(&settings.signing_keys, lead.id)
        .map_err(|e| StageError::Retryable(format!("cannot sign the unsubscribe link: {e}")))?;
    let url = format!("{}/u/{token}", settings.public_url.trim_end_matches('/'));
    let mut trail: Vec<Activity> =
        (after.state != enrollment.state).then(|| ended_entry(enrollment, "completed", now)).into_iter().collect();
    let email = match campaign.render(lead, step, settings, &url) {
        Ok(email) => email,
        Err(e) => {
            // No later tick renders it either: pass the step, on the trail, rather than retry
            // it every minute for ever.
            let key = campaign.email_key(lead, step);
            let reason = format!("the step could not be rendered: {e}");
            warn!(%reason, "drip email rejected");
            // Never sent, like an email the provider refused for good: the same alarm.
            count(Metric::EmailsRejected, 1);
            trail.push(leadflow_app::not_sent(lead.id, &key, &reason, now));
            return Ok(match ports.store().update_enrollment(&after, enrollment.version, &trail).await? {
                WriteOutcome::Written => Outcome::Rejected,
                WriteOutcome::VersionConflict => Outcome::Nothing,
            });
        }
    };
    if let Some(pacer) = s.pacer {
        pacer.wait().await;
        // The wait may have taken what was left: then leave the step untouched for the next tick.
        if current_deadline().is_some_and(|d| !d.allows(s.expected)) {
            return Ok(Outcome::Unstarted);
        }
    }
    let sent = send_once(ports, lead.id, &email).await?;
    match &sent {
        // Counted once the provider has it, whatever becomes of the enrollment's write.
        Sent::Now(_) => count(Metric::DripsSent, 1),
        Sent::Rejected(reason) => warn!(%reason, "drip email rejected"),
        Sent::Before(_) => {}
    }
    // Another tick may have advanced it already: then its write wins and ours is dropped. A
    // crash before this write leaves the step due: the next tick finds the email sent (its claim
    // is done) and only advances. A rejection is on the trail already, written with its claim.
    ports.store().update_enrollment(&after, enrollment.version, &trail).await?;
    match sent {
        Sent::Now(_) => {
            info!(step, "drip step sent");
            Ok(Outcome::Sent)
        }
        Sent::Rejected(_) => Ok(Outcome::Rejected),
        Sent::Before(_) => Ok(Outcome::Nothing),
    }
}

/// What the state machine needs from the lead's trail and the suppression list.
async fn facts<P: Ports>(
    ports: &P,
    campaign: &CompiledCampaign,
    lead: &Lead,
    activities: &[Activity],
) -> Result<Facts, StageError> {
    let suppressed = if lead.contact.email.is_empty() {
        None
    } else {
        ports.store().suppression(&email_key(&lead.contact.email)).await?.map(|s| s.reason.as_str().to_string())
    };
    Ok(facts_from(campaign, lead, activities, suppressed))
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

#[cfg(test)]
mod report_tests {
    use super::TickReport;

    #[test]
    fn a_run_sums_every_figure_of_its_ticks() {
        let one = TickReport {
            due: 1,
            sent: 2,
            stopped: 3,
            completed: 4,
            rescheduled: 5,
            retry_later: 6,
            rejected: 7,
            unstarted: 8,
            sla_breaches: 9,
        };
        let mut total = TickReport::default();
        total.add(&one);
        total.add(&one);
        let twice = TickReport {
            due: 2,
            sent: 4,
            stopped: 6,
            completed: 8,
            rescheduled: 10,
            retry_later: 12,
            rejected: 14,
            unstarted: 16,
            sla_breaches: 18,
        };
        assert_eq!(total, twice);
    }
}
