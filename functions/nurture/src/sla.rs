//! The SLA scan: finds the leads whose owner did not mark them contacted within the SLA and hands
//! each to route, which moves it to another rep and tells both (`leadflow_route::sla`). Through
//! the queue, so that the move and its emails are retried until done, whatever fails after it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow_app::current_deadline;
use leadflow_core::messages::{RouteMessage, SlaBreach};
use leadflow_core::ports::{Assignments, Leads};
use leadflow_core::ports::{Ports, StageQueue};
use tracing::warn;

/// Hands up to `limit` leads whose SLA ran out by `now` to route; answers how many. A lead stays
/// in the SLA index until route has moved it, so one that could not be handed over now is
/// handed over by a later tick (and one handed over twice is moved once). Under a deadline it
/// reads no more leads once the deadline is near, and hands over those it has.
pub async fn hand_over_due<P: Ports>(ports: &P, now: DateTime<Utc>, limit: usize) -> usize {
    let store = ports.store();
    let due = match store.due_slas(now, limit).await {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "SLA breaches not checked; tried again on the next tick");
            return 0;
        }
    };
    let deadline = current_deadline();
    let mut breaches = Vec::with_capacity(due.len());
    for lead_id in due {
        if deadline.is_some_and(|d| !d.allows(Duration::ZERO)) {
            warn!("SLA breaches left for the next tick: the deadline is near");
            break;
        }
        let owner = match store.get_lead(lead_id).await {
            Ok(lead) => lead.and_then(|l| l.owner),
            Err(e) => {
                warn!(%lead_id, error = %e, "SLA breach not handed to route; tried again on the next tick");
                continue;
            }
        };
        let Some(owner) = owner else { continue };
        let breach = SlaBreach { rep_id: owner.rep_id, sla_due_at: owner.sla_due_at };
        breaches.push(RouteMessage { sla_breach: Some(breach), ..RouteMessage::route(lead_id) });
    }
    if breaches.is_empty() {
        return 0;
    }
    match ports.queue().enqueue(&breaches).await {
        Ok(()) => breaches.len(),
        Err(e) => {
            warn!(error = %e, "SLA breaches not handed to route; tried again on the next tick");
            0
        }
    }
}
