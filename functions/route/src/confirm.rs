//! Double opt-in's email: the link that asks a person to confirm the consent a form gave in
//! their name (`leadflow_core::confirmation`). Sent from this stage because it has the mailer;
//! the score stage sends the lead here when [`confirmation::standing`] says an email is due.

use leadflow_app::{Sent, StageError, activity, optout, send_once_with_trail};
use leadflow_core::confirmation::{self, Due};
use leadflow_core::model::{ActivityKind, Lead};
use leadflow_core::ports::Trails;
use leadflow_core::ports::{Clock, Ports};
use tracing::{info, warn};

/// Sends the confirmation email the lead is due, once per email (the key [`confirmation::standing`]
/// names), and records what its link confirms. Nothing to do for a lead that consented already,
/// asked for nothing, was sent a link that still works, or whose address is suppressed. `carried`
/// is the email score found due (its message's hint): checked again for what can have changed,
/// and the trail is read only without it (a message from a version before it).
pub async fn send_if_due<P: Ports>(ports: &P, lead: &Lead, carried: Option<&Due>) -> Result<(), StageError> {
    let store = ports.store();
    if lead.consent.as_ref().is_some_and(|c| c.given) {
        return Ok(());
    }
    let now = ports.clock().now();
    let due = match carried {
        Some(due) => due.still_due(lead, now).then(|| due.clone()),
        None => confirmation::standing(lead, &store.activities(lead.id).await?, now).due,
    };
    let Some(due) = due else {
        return Ok(());
    };
    if optout::is_suppressed(ports, lead).await? {
        info!(lead_id = %lead.id, "no confirmation email: the address is suppressed");
        return Ok(());
    }
    let config = ports.config();
    let (email, expires_at) =
        confirmation::email(lead, &due, &config.settings).map_err(|e| StageError::Permanent(e.to_string()))?;
    // What the link confirms goes on the trail with the send's own record (one write); an email
    // sent before, by a version that wrote it apart or by a run that crashed before it, gets it
    // written now (the same id, so once).
    let sent = |message_id: &str| {
        activity(
            lead.id,
            format!("confirmation-sent-{}", email.key),
            ports.clock().now(),
            ActivityKind::ConfirmationSent {
                email: email.key.clone(),
                message_id: message_id.to_string(),
                expires_at,
                form: due.request.form.clone(),
                purpose: due.request.purpose.clone(),
                wording: due.request.wording.clone(),
            },
        )
    };
    match send_once_with_trail(ports, lead.id, &email, |id| vec![sent(id)]).await? {
        Sent::Now(_) => {}
        // A refusal is recorded as "rejected: <reason>"; that email never went out.
        Sent::Before(detail) if detail.starts_with("rejected: ") => return Ok(()),
        Sent::Before(id) => store.record_activity(&sent(&id)).await?,
        Sent::Rejected(reason) => {
            warn!(lead_id = %lead.id, %reason, "confirmation email rejected");
            return Ok(());
        }
    }
    info!(lead_id = %lead.id, "confirmation email sent");
    Ok(())
}
