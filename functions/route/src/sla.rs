//! SLA breaches: a lead assigned but not marked contacted within the SLA (counted in the
//! owner's working hours) goes to another rep of the team; the breach is recorded and both reps
//! are told.
//!
//! The nurture stage's scan finds the breaches and sends each here as a route message, so that
//! the move and its emails have the queue's retries: a crash or an SES hiccup after the move is
//! finished by the redelivery, never lost.

use leadflow_app::{Sent, StageError, WRITE_ATTEMPTS, activity, send_once};
use leadflow_core::email::sla_breach_email;
use leadflow_core::erasure::is_erased;
use leadflow_core::messages::SlaBreach;
use leadflow_core::model::{Activity, ActivityKind, Assignment, Lead, LeadId, SalesStatus};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, Clock, Ports};
use tracing::{info, warn};

use crate::{assigned_entry, notify};
use leadflow_core::ports::{Assignments, Leads, Trails};

/// Moves the lead away from the rep who let `breach` run out, unless it moved already or was
/// contacted, won or lost meanwhile; then tells both reps (each email once).
pub async fn handle_breach<P: Ports>(ports: &P, lead_id: LeadId, breach: &SlaBreach) -> Result<(), StageError> {
    let Some(lead) = reroute(ports, lead_id, breach).await? else { return Ok(()) };
    // What this breach did, from the trail: the move and its trail entry were one write, so a
    // redelivery after a crash finds it there and sends what is still unsent.
    let trail = ports.store().activities(lead.id).await?;
    let Some(entry) = trail.iter().find(|a| a.id == breach_id(breach)) else { return Ok(()) };
    let ActivityKind::SlaBreached { rerouted_to: Some(new_rep), .. } = &entry.kind else {
        // Nobody else could take it: the same rep got a fresh SLA, and nothing to tell.
        return Ok(());
    };
    let config = ports.config();
    let routing = &config.routing;
    if let Some(rep) = routing.rep(&breach.rep_id) {
        let new_name = routing.rep(new_rep).map_or(new_rep.clone(), |r| r.name.clone());
        let email = sla_breach_email(&lead, rep, &new_name, &config.settings, breach.sla_due_at)
            .map_err(|e| StageError::Permanent(e.to_string()))?;
        // The words the rejection alarm's metric filter counts (template.yaml).
        if let Sent::Rejected(reason) = send_once(ports, lead.id, &email).await? {
            warn!(lead_id = %lead.id, rep = %rep.id, %reason, "assignment email rejected");
        }
    }
    if lead.owner.as_ref().is_some_and(|o| o.rep_id == *new_rep) {
        notify(ports, &lead, None).await?;
    }
    Ok(())
}

/// The trail id of a breach: one per owner and SLA.
fn breach_id(breach: &SlaBreach) -> String {
    format!("sla-breach-{}-{}", breach.rep_id, breach.sla_due_at.timestamp_millis())
}

/// Re-assigns the lead if `breach` still describes it; answers the lead as stored after (`None`
/// when it is gone).
async fn reroute<P: Ports>(ports: &P, lead_id: LeadId, breach: &SlaBreach) -> Result<Option<Lead>, StageError> {
    let store = ports.store();
    let config = ports.config();
    let routing = &config.routing;
    for _ in 0..WRITE_ATTEMPTS {
        let Some(mut lead) = store.get_lead(lead_id).await? else { return Ok(None) };
        let now = ports.clock().now();
        let Some(owner) = lead.owner.clone() else { return Ok(Some(lead)) };
        let still_breached = owner.rep_id == breach.rep_id
            && owner.sla_due_at == breach.sla_due_at
            && owner.sla_due_at <= now
            && lead.status == SalesStatus::New
            && lead.is_valid()
            && !is_erased(&lead);
        if !still_breached {
            // Handled by an earlier delivery, or contacted, won, lost or erased in the meantime.
            return Ok(Some(lead));
        }
        let cursor = match routing.match_team(&lead) {
            Some(team) => store.team_cursor(&team.id).await?,
            None => Default::default(),
        };
        let loads = store.rep_loads().await?;
        let decision = routing.decide_except(&lead, &cursor, &loads, now, Some(&owner.rep_id));
        let old_name = routing.rep(&owner.rep_id).map_or(owner.rep_id.clone(), |r| r.name.clone());
        let mut explanation =
            vec![format!("{old_name} did not mark the lead contacted by {} (the SLA).", owner.sla_due_at.to_rfc3339())];
        explanation.extend(decision.explanation.iter().cloned());
        let version = lead.version;
        let rerouted = decision.rep_id != owner.rep_id;
        lead.owner = Some(Assignment {
            rep_id: decision.rep_id.clone(),
            team_id: decision.team_id.clone(),
            assigned_at: now,
            // Nobody else can take it: the same rep gets a new SLA rather than a breach every tick.
            sla_due_at: routing.sla_due(&decision.rep_id, now),
            explanation: explanation.clone(),
            via_fallback: decision.via_fallback,
        });
        lead.updated_at = now;
        let trail: Vec<Activity> = vec![
            activity(
                lead.id,
                breach_id(breach),
                now,
                ActivityKind::SlaBreached {
                    rep_id: owner.rep_id.clone(),
                    rerouted_to: rerouted.then(|| decision.rep_id.clone()),
                },
            ),
            assigned_entry(lead.id, &decision, explanation, now),
        ];
        let write = AssignmentWrite {
            lead: lead.clone(),
            expected_lead_version: version,
            team_cursor: decision.cursor.clone().filter(|_| rerouted),
            trail,
            claim: None,
        };
        if store.assign(&write).await? == AssignOutcome::Conflict {
            continue;
        }
        lead.version = version + 1;
        info!(lead_id = %lead.id, from = %owner.rep_id, to = %decision.rep_id, "SLA breached; lead re-routed");
        return Ok(Some(lead));
    }
    Err(StageError::Retryable("the lead kept changing while re-routing it".into()))
}
