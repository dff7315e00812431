//! Route: picks the team and the rep for a qualified lead, records the decision with its
//! explanation, emails the rep and announces `lead.assigned`. It also moves the leads whose
//! owner let the SLA run out (`sla`), and sends double opt-in's confirmation emails (`confirm`).

pub mod confirm;
pub mod sla;

use leadflow_app::metrics::{Metric, count};
use leadflow_app::{
    BatchItem, Failure, Sent, StageError, WRITE_ATTEMPTS, activity, email_claim, live, process_batch, publish,
    send_claimed, send_once,
};
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{Activity, ActivityKind, Assignment, Lead, LeadId, Lifecycle};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, Clock, DomainEvent, EffectLease, OutgoingEmail, Ports};
use leadflow_core::ports::{Assignments, Leads};
use leadflow_core::routing::RoutingDecision;
use tracing::{info, warn};

pub async fn handle_batch<P: Ports>(ports: &P, items: Vec<BatchItem>) -> Vec<Failure> {
    process_batch(items, |msg: RouteMessage| handle(ports, msg)).await
}

pub async fn handle<P: Ports>(ports: &P, msg: RouteMessage) -> Result<(), StageError> {
    // Picks up reps, teams and routing rules changed through the admin API.
    live::refresh(ports, false).await;
    if let Some(breach) = &msg.sla_breach {
        return sla::handle_breach(ports, msg.lead_id, breach).await;
    }
    // The score stage sends a lead here to be routed, to have its confirmation email sent, or
    // both; each part does nothing when there is nothing to do.
    let routed = assign(ports, &msg).await?;
    if routed.lead.owner.is_some() {
        notify(ports, &routed.lead, routed.claimed).await?;
    }
    if msg.confirm || msg.confirmation.is_some() {
        // The lead as the assignment wrote it or as it was read: no second read for the email.
        confirm::send_if_due(ports, &routed.lead, msg.confirmation.as_ref()).await?;
    }
    Ok(())
}

/// The lead as routing left it: with its owner unless it is not qualified, and the assignment
/// email with its claim when this delivery took the claim with the assignment (one write for
/// both: the email is then sent without a claim of its own).
pub struct Routed {
    pub lead: Lead,
    pub claimed: Option<(OutgoingEmail, EffectLease)>,
}

/// Assigns the lead unless it has an owner or is not qualified; answers the lead as it stands.
pub async fn assign<P: Ports>(ports: &P, msg: &RouteMessage) -> Result<Routed, StageError> {
    let store = ports.store();
    let config = ports.config();
    // The lead score carried saves the read when it is one to assign: the assignment's versioned
    // write checks it. Anything else (owned, unqualified) is decided on the stored lead.
    let mut carried = msg
        .lead
        .clone()
        .filter(|l| l.id == msg.lead_id && l.owner.is_none() && l.is_valid() && l.lifecycle >= Lifecycle::Mql);
    for _ in 0..WRITE_ATTEMPTS {
        let read = match carried.take() {
            Some(lead) => Some(*lead),
            None => store.get_lead(msg.lead_id).await?,
        };
        let Some(mut lead) = read else {
            return Err(StageError::Permanent(format!("lead {} does not exist", msg.lead_id)));
        };
        if lead.owner.is_some() {
            // A redelivery, or a race another worker won: the assignment stands as it is.
            return Ok(Routed { lead, claimed: None });
        }
        if !lead.is_valid() || lead.lifecycle < Lifecycle::Mql {
            // Sent here for its confirmation email only.
            info!(lead_id = %lead.id, "not routed: the lead is not qualified");
            return Ok(Routed { lead, claimed: None });
        }
        let now = ports.clock().now();
        let team = config.routing.match_team(&lead).map(|t| t.id.as_str());
        let (cursor, loads) = store.routing_state(team).await?;
        let decision = config.routing.decide(&lead, &cursor, &loads, now);
        let version = lead.version;
        lead.owner = Some(Assignment {
            rep_id: decision.rep_id.clone(),
            team_id: decision.team_id.clone(),
            assigned_at: now,
            sla_due_at: decision.sla_due_at,
            explanation: decision.explanation.clone(),
            via_fallback: decision.via_fallback,
        });
        lead.updated_at = now;
        let assigned = assigned_entry(lead.id, &decision, decision.explanation.clone(), now);
        let email = assignment_email(ports, &lead)?;
        let claim = email_claim(&email, now);
        let write = AssignmentWrite {
            lead: lead.clone(),
            expected_lead_version: version,
            team_cursor: decision.cursor.clone(),
            trail: vec![assigned],
            claim: Some(claim.clone()),
        };
        match store.assign(&write).await? {
            AssignOutcome::Conflict => continue,
            AssignOutcome::Assigned => {
                count(Metric::LeadsAssigned, 1);
                lead.version = version + 1;
                info!(lead_id = %lead.id, rep = %decision.rep_id, "lead assigned");
                return Ok(Routed { lead, claimed: Some((email, claim)) });
            }
        }
    }
    Err(StageError::Retryable("the lead or its team kept changing while routing".into()))
}

/// The trail entry of an assignment, written with it. Its id is one per rep and moment, so a
/// re-assignment (an SLA breach) adds an entry instead of replacing the first.
fn assigned_entry(
    lead_id: LeadId,
    decision: &RoutingDecision,
    explanation: Vec<String>,
    at: chrono::DateTime<chrono::Utc>,
) -> Activity {
    activity(
        lead_id,
        format!("assigned-{}-{}", decision.rep_id, at.timestamp_millis()),
        at,
        ActivityKind::Assigned { rep_id: decision.rep_id.clone(), team_id: decision.team_id.clone(), explanation },
    )
}

/// The email that tells the lead's owner about it.
fn assignment_email<P: Ports>(ports: &P, lead: &Lead) -> Result<OutgoingEmail, StageError> {
    let config = ports.config();
    let Some(owner) = &lead.owner else {
        return Err(StageError::Permanent(format!("lead {} has no owner to tell", lead.id)));
    };
    let Some(rep) = config.routing.rep(&owner.rep_id) else {
        return Err(StageError::Permanent(format!("rep {} is no longer configured", owner.rep_id)));
    };
    config
        .templates
        .assignment_email(lead, rep, owner, &config.settings)
        .map_err(|e| StageError::Permanent(e.to_string()))
}

/// Emails the owner once per assignment and publishes `lead.assigned` (at least once: consumers
/// drop a repeat by its id). `claimed`: the email and its claim, when the claim was taken with the
/// assignment.
pub async fn notify<P: Ports>(
    ports: &P,
    lead: &Lead,
    claimed: Option<(OutgoingEmail, EffectLease)>,
) -> Result<(), StageError> {
    let Some(owner) = &lead.owner else { return Ok(()) };
    let sent = match claimed {
        Some((email, claim)) => send_claimed(ports, lead.id, &email, &claim).await?,
        None => send_once(ports, lead.id, &assignment_email(ports, lead)?).await?,
    };
    if let Sent::Rejected(reason) = sent {
        warn!(lead_id = %lead.id, rep = %owner.rep_id, %reason, "assignment email rejected");
    }
    let score = lead.score.as_ref();
    publish(
        ports,
        DomainEvent {
            id: format!("lead.assigned:{}:{}", lead.id, owner.assigned_at.timestamp_millis()),
            detail_type: "lead.assigned".into(),
            at: owner.assigned_at,
            detail: serde_json::json!({
                "lead_id": lead.id,
                "rep_id": owner.rep_id,
                "team_id": owner.team_id,
                "via_fallback": owner.via_fallback,
                "score": score.map(|s| s.total),
                "grade": score.map(|s| s.grade),
                "lifecycle": lead.lifecycle,
                "sla_due_at": owner.sla_due_at,
            }),
        },
    )
    .await
}
