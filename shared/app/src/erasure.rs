//! Erasing a lead's personal data on request (GDPR art. 17), keeping an anonymous tombstone so
//! that reports still count it.

use leadflow_core::erasure::{is_erased, tombstone};
use leadflow_core::model::{LeadId, Suppression, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Clock, DomainEvent, Mailer, Ports};
use serde_json::json;

use crate::optout::stop_enrollments;
use crate::{StageError, publish};
use leadflow_core::ports::{Leads, Suppressions};

/// What [`erase`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub lead_id: LeadId,
    /// `true` when the lead had been erased before this call.
    pub already: bool,
    /// Enrollments this call stopped.
    pub stopped: usize,
    /// Copies of emails the mailer deleted (the local outbox's files).
    pub emails_deleted: usize,
}

/// Erases the lead `lead_id`; `None` when there is no such lead.
///
/// In this order, so that a failure at any point leaves a state a retry finishes: the address's
/// email key goes on the suppression list as `erased` (a later submission with the same address
/// is accepted but never emailed), every enrollment is stopped, the mailer deletes its copies,
/// the store replaces the lead with its tombstone (dropping its email key and activities), and a
/// `lead.erased` event with only the id is published (at least once, like every event). Erasing
/// again is harmless: it repeats the mailer's deletion and the event, whose consumers drop the
/// repeat by its id.
pub async fn erase<P: Ports>(ports: &P, lead_id: LeadId) -> Result<Option<Erased>, StageError> {
    let store = ports.store();
    let now = ports.clock().now();
    let Some(lead) = store.get_lead(lead_id).await? else {
        return Ok(None);
    };
    let already = is_erased(&lead);
    // A tombstone has no address; an invalid lead may have kept one that did not normalize.
    let key = (!lead.contact.email.is_empty()).then(|| email_key(&lead.contact.email));
    let mut stopped = 0;
    if !already {
        if let Some(key) = &key {
            store
                .suppress(
                    &Suppression {
                        email_key: key.clone(),
                        reason: SuppressionReason::Erased,
                        at: now,
                        lead_id: Some(lead_id),
                        // Nothing to tell: the trail is deleted with the lead.
                    },
                    &[],
                )
                .await?;
        }
        stopped = stop_enrollments(ports, lead_id, "lead was erased", now).await?;
    }
    let emails_deleted = ports.mailer().erase(lead_id).await.map_err(|e| StageError::Retryable(e.to_string()))?;
    if !already {
        store.erase_lead(&tombstone(&lead, now), key.as_deref()).await?;
    }
    publish(
        ports,
        DomainEvent {
            id: format!("lead.erased-{lead_id}"),
            detail_type: "lead.erased".into(),
            at: now,
            detail: json!({ "lead_id": lead_id }),
        },
    )
    .await?;
    Ok(Some(Erased { lead_id, already, stopped, emails_deleted }))
}
