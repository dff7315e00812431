//! SLA: a lead assigned but not marked contacted within the SLA (counted in the owner's working
//! hours) goes to another rep of the team; the breach is recorded and both reps are told.

use chrono::{DateTime, Utc};
use leadflow_core::config::CompiledConfig;
use leadflow_core::email::sla_breach_email;
use leadflow_core::erasure::is_erased;
use leadflow_core::model::{ActivityKind, Assignment, LeadId, SalesStatus};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, LeadStore, Ports};
use leadflow_stage::{StageError, WRITE_ATTEMPTS, activity, send_once};
use tracing::{info, warn};

/// Re-routes up to `limit` leads whose SLA ran out by `now`; answers how many moved.
pub async fn reroute_due<P: Ports>(
    ports: &P,
    config: &CompiledConfig,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StageError> {
    let due = match ports.store().due_slas(now, limit).await {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "SLA breaches not checked; tried again on the next tick");
            return Ok(0);
        }
    };
    let mut moved = 0;
    for lead_id in due {
        match reroute(ports, config, lead_id, now).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => warn!(%lead_id, error = %e, "SLA breach not handled; tried again on the next tick"),
        }
    }
    Ok(moved)
}

async fn reroute<P: Ports>(
    ports: &P,
    config: &CompiledConfig,
    lead_id: LeadId,
    now: DateTime<Utc>,
) -> Result<bool, StageError> {
    let store = ports.store();
    let routing = &config.routing;
    for _ in 0..WRITE_ATTEMPTS {
        let Some(mut lead) = store.get_lead(lead_id).await? else { return Ok(false) };
        let Some(owner) = lead.owner.clone() else { return Ok(false) };
        if lead.status != SalesStatus::New || !lead.is_valid() || owner.sla_due_at > now || is_erased(&lead) {
            // Contacted, won or lost in the meantime, or the index was behind the lead.
            return Ok(false);
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
        let breach = activity(
            lead.id,
            format!("sla-breach-{}-{}", owner.rep_id, owner.sla_due_at.timestamp_millis()),
            now,
            ActivityKind::SlaBreached {
                rep_id: owner.rep_id.clone(),
                rerouted_to: rerouted.then(|| decision.rep_id.clone()),
            },
        );
        let assigned = activity(
            lead.id,
            leadflow_route::assigned_id(&decision.rep_id, now),
            now,
            ActivityKind::Assigned { rep_id: decision.rep_id.clone(), team_id: decision.team_id.clone(), explanation },
        );
        let write = AssignmentWrite {
            lead: lead.clone(),
            expected_lead_version: version,
            team_cursor: decision.cursor.clone().filter(|_| rerouted),
            trail: vec![breach, assigned],
        };
        if store.assign(&write).await? == AssignOutcome::Conflict {
            continue;
        }
        lead.version = version + 1;
        info!(lead_id = %lead.id, from = %owner.rep_id, to = %decision.rep_id, "SLA breached; lead re-routed");
        if let Some(rep) = routing.rep(&owner.rep_id).filter(|_| rerouted) {
            let new_name = routing.rep(&decision.rep_id).map_or(decision.rep_id.clone(), |r| r.name.clone());
            let email = sla_breach_email(&lead, rep, &new_name, &config.settings, owner.sla_due_at)
                .map_err(|e| StageError::Permanent(e.to_string()))?;
            send_once(ports, lead.id, &email).await?;
        }
        leadflow_route::notify(ports, &lead).await?;
        return Ok(true);
    }
    Err(StageError::Retryable("the lead kept changing while re-routing it".into()))
}
