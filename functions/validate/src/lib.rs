//! Validate: normalizes and validates a captured submission, dedupes it by email (a repeat
//! submission merges into the lead that has the address), stores it and passes it to scoring.

use leadflow_app::metrics::{Metric, count};
use leadflow_app::{BatchItem, Failure, StageError, WRITE_ATTEMPTS, activity, process_batch};
use leadflow_core::confirmation::{hold_consent, merge_repeat};
use leadflow_core::messages::{ScoreMessage, ValidateMessage};
use leadflow_core::model::{Activity, ActivityKind, Lead, LeadId, Submission, Validity};
use leadflow_core::ports::{Clock, CreateOutcome, Ports, StageQueue, WriteOutcome};
use leadflow_core::ports::{Leads, Trails};
use leadflow_core::validate::build_lead;
use tracing::info;

/// Handles a batch from the validate queue; answers the ids to deliver again.
pub async fn handle_batch<P: Ports>(ports: &P, items: Vec<BatchItem>) -> Vec<Failure> {
    process_batch(items, |sub: ValidateMessage| handle(ports, sub)).await
}

/// What became of a submission. `Created` and `Merged` carry the lead as this delivery stored
/// it, for the score message; a redelivery that found the work done has none.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created(LeadId, Option<Box<NewLead>>),
    Merged(LeadId, Option<Box<Lead>>),
    Invalid(LeadId),
}

/// A lead this delivery created, with the whole trail it was created with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    pub lead: Lead,
    pub trail: Vec<Activity>,
}

pub async fn handle<P: Ports>(ports: &P, sub: Submission) -> Result<(), StageError> {
    let outcome = validate(ports, &sub).await?;
    let (lead_id, lead, trail) = match outcome {
        Outcome::Created(id, Some(new)) => {
            let NewLead { lead, trail } = *new;
            (id, Some(Box::new(lead)), Some(trail))
        }
        Outcome::Created(id, None) => (id, None, None),
        Outcome::Merged(id, stored) => (id, stored, None),
        Outcome::Invalid(id) => {
            info!(lead_id = %id, "lead stored as invalid");
            return Ok(());
        }
    };
    // Sent on every delivery, redeliveries too: scoring is idempotent, and a crash between the
    // store write and this send must not strand the lead.
    let carries = ports.queue().carries_leads();
    let (lead, trail) = if carries { (lead, trail) } else { (None, None) };
    ports.queue().enqueue(&[ScoreMessage { lead_id, cause: "submission".into(), lead, trail }]).await?;
    Ok(())
}

/// The store work of validation, without the hand-off to scoring.
pub async fn validate<P: Ports>(ports: &P, sub: &Submission) -> Result<Outcome, StageError> {
    let store = ports.store();
    // The settings alone: validation compiles no rules, campaigns or templates.
    let settings = ports.settings();
    let now = ports.clock().now();
    let submitted = |lead_id| {
        activity(
            lead_id,
            format!("submission-{}", sub.lead_id),
            sub.received_at,
            ActivityKind::FormSubmission { submission_id: sub.lead_id, form: sub.form.clone() },
        )
    };

    // No read before the write: `create_lead` answers `AlreadyExists` for an id that is a lead
    // or a merged submission's alias, and only then is the id resolved.
    let incoming = build_lead(sub, &settings.validation);
    // The lead and its first entries are one write: a redelivery after a crash finds the lead
    // with its whole trail, or no lead at all.
    let mut trail = vec![submitted(incoming.id)];
    if let Validity::Invalid { reasons } = &incoming.validity {
        trail.push(activity(
            incoming.id,
            "validation-failed".into(),
            sub.received_at,
            ActivityKind::ValidationFailed { reasons: reasons.clone() },
        ));
    }
    // Double opt-in: consent waits for the person's confirmation. `incoming` keeps it as
    // posted, for a merge to weigh.
    let mut fresh = incoming.clone();
    trail.extend(hold_consent(&mut fresh, &settings, sub.lead_id));
    match store.create_lead(&fresh, &trail).await? {
        CreateOutcome::Created if incoming.is_valid() => {
            count(Metric::LeadsValidated, 1);
            info!(lead_id = %incoming.id, "lead created");
            Ok(Outcome::Created(fresh.id, Some(Box::new(NewLead { lead: fresh, trail }))))
        }
        CreateOutcome::Created => Ok(Outcome::Invalid(incoming.id)),
        CreateOutcome::AlreadyExists => match store.resolve_lead(sub.lead_id).await? {
            Some(known) => redelivered(ports, known, sub).await,
            None => Err(StageError::Retryable("the lead is not readable yet".into())),
        },
        CreateOutcome::EmailTaken(existing_id) => {
            let marker = format!("submission-{}", sub.lead_id);
            for _ in 0..WRITE_ATTEMPTS {
                let Some(existing) = store.get_lead(existing_id).await? else {
                    return Err(StageError::Retryable("the lead with this email is not readable yet".into()));
                };
                // The merge and its trail entry are one write; a crash after it but before the
                // alias was written leaves the entry behind: the merge happened, do not count it
                // twice.
                let merged_before = store.activities(existing_id).await?.iter().any(|a| a.id == marker);
                let mut stored = None;
                if !merged_before {
                    // A repeat cannot rewrite who the lead is: what it would change is held on
                    // the trail for a person to review.
                    let (merged, held) = merge_repeat(&existing, &incoming, sub.lead_id, now);
                    let mut trail = vec![submitted(existing_id)];
                    trail.extend(held);
                    if store.update_lead(&merged, existing.version, &trail).await? == WriteOutcome::VersionConflict {
                        continue;
                    }
                    stored = Some(Box::new(Lead { version: existing.version + 1, ..merged }));
                }
                store.record_alias(sub.lead_id, existing_id).await?;
                info!(lead_id = %existing_id, submission = %sub.lead_id, "repeat submission merged");
                return Ok(Outcome::Merged(existing_id, stored));
            }
            Err(StageError::Retryable("the lead kept changing while merging".into()))
        }
    }
}

/// A submission seen before: the lead it made (or merged into) is `known`.
async fn redelivered<P: Ports>(ports: &P, known: LeadId, sub: &Submission) -> Result<Outcome, StageError> {
    let lead = ports.store().get_lead(known).await?;
    Ok(match lead {
        Some(l) if !l.is_valid() => Outcome::Invalid(known),
        Some(_) if known != sub.lead_id => Outcome::Merged(known, None),
        Some(_) => Outcome::Created(known, None),
        None => return Err(StageError::Retryable("the lead is not readable yet".into())),
    })
}
