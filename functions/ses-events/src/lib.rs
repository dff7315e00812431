//! SES events: bounces, complaints, deliveries, opens and clicks from the configuration set.
//!
//! - A permanent bounce or a complaint puts the address on the suppression list (whether or not
//!   a lead has it) and stops every active nurture enrollment of the lead that has it.
//! - A transient bounce is only recorded on the lead: the address may work tomorrow.
//! - Deliveries, opens and clicks are recorded on the lead; opens and clicks then ask the score
//!   stage to score the lead again (behaviour rules count them, with decay). A click on the
//!   lead's unsubscribe link (an email sent before that link was left out of click tracking, or
//!   a mail scanner) is recorded for the trail but scores nothing, so it asks for no rescore.
//!
//! The lead is the one the email's `lead_id` tag names, provided the event's recipient is that
//! lead's address; else the lead with the recipient's address. So an assignment email, which
//! carries the lead's tag but goes to a rep, never counts as the lead's engagement.
//!
//! Every write is idempotent: activity ids are made from the message id, the event type, the
//! event's time (and the link), so a redelivered event records nothing twice, and suppression
//! keeps its first entry.

pub mod event;

use leadflow_app::optout::suppress_lead;
use leadflow_app::{StageError, activity};
use leadflow_core::messages::ScoreMessage;
use leadflow_core::model::{ActivityKind, Lead, LeadId, Suppression, SuppressionReason};
use leadflow_core::normalize::{email_key, normalize_email};
use leadflow_core::ports::{Clock, Ports, StageQueue};
use leadflow_core::scoring::is_unsubscribe_click;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::event::{BounceType, Mail, Parsed, SesEvent, parse};
use leadflow_core::ports::{Leads, Suppressions, Trails};

/// Why the score stage is asked to score a lead again.
pub const RESCORE_CAUSE: &str = "activity";

/// What handling an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not an event Leadflow acts on (another type or source), and why.
    Ignored(String),
    Handled(Report),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `bounce`, `complaint`, `delivery`, `open` or `click`.
    pub event: &'static str,
    pub message_id: String,
    /// The leads the event was recorded on (none when no lead has the recipient's address).
    pub leads: Vec<LeadId>,
    /// Addresses this event put on the suppression list (0 when they were there already).
    pub newly_suppressed: usize,
    /// Whether the leads were sent to the score stage again.
    pub rescored: bool,
}

/// Handles one event as EventBridge delivers it (see [`event`]).
///
/// Errors: `StageError::Permanent` for an event that cannot be read (no retry can fix it);
/// `StageError::Retryable` when the store or the queue failed (a retry will redo only what is
/// missing).
pub async fn handle_event<P: Ports>(ports: &P, event: &Value) -> Result<Outcome, StageError> {
    let event = match parse(event).map_err(|e| StageError::Permanent(e.to_string()))? {
        Parsed::Ignored(reason) => return Ok(Outcome::Ignored(reason)),
        Parsed::Event(event) => event,
    };
    let mail = event.mail();
    let mut report = Report {
        event: event.name(),
        message_id: mail.message_id.clone(),
        leads: Vec::new(),
        newly_suppressed: 0,
        rescored: false,
    };
    let tagged = tagged_lead(ports, mail).await?;
    match &event {
        SesEvent::Bounce { bounce_type: BounceType::Permanent, recipients, .. } => {
            for recipient in recipients {
                let kind = ActivityKind::EmailBounced { message_id: mail.message_id.clone(), permanent: true };
                opt_out(ports, &mut report, tagged.as_ref(), &event, recipient, SuppressionReason::Bounced, kind)
                    .await?;
            }
        }
        SesEvent::Bounce { recipients, .. } => {
            // Transient or undetermined: counted on the lead, never suppressed.
            for recipient in recipients {
                if let Some(lead) = lead_for(ports, tagged.as_ref(), &address_key(recipient)).await? {
                    let kind = ActivityKind::EmailBounced { message_id: mail.message_id.clone(), permanent: false };
                    record(ports, &mut report, &lead, &event, kind).await?;
                }
            }
        }
        SesEvent::Complaint { recipients, .. } => {
            for recipient in recipients {
                let kind = ActivityKind::EmailComplained { message_id: mail.message_id.clone() };
                opt_out(ports, &mut report, tagged.as_ref(), &event, recipient, SuppressionReason::Complained, kind)
                    .await?;
            }
        }
        SesEvent::Delivery { recipients, .. } => {
            if let Some(lead) = engaged_lead(ports, tagged.as_ref(), mail, recipients).await? {
                let kind = ActivityKind::EmailDelivered { message_id: mail.message_id.clone() };
                record(ports, &mut report, &lead, &event, kind).await?;
            }
        }
        SesEvent::Open { .. } => {
            if let Some(lead) = engaged_lead(ports, tagged.as_ref(), mail, &mail.destination).await? {
                let kind = ActivityKind::EmailOpened {
                    message_id: mail.message_id.clone(),
                    email: mail.email_key().map(str::to_string),
                };
                record(ports, &mut report, &lead, &event, kind).await?;
                rescore(ports, &mut report, lead.id).await?;
            }
        }
        SesEvent::Click { link, .. } => {
            if let Some(lead) = engaged_lead(ports, tagged.as_ref(), mail, &mail.destination).await? {
                let kind = ActivityKind::EmailClicked {
                    message_id: mail.message_id.clone(),
                    email: mail.email_key().map(str::to_string),
                    url: link.clone(),
                };
                let scores = !is_unsubscribe_click(&kind);
                record(ports, &mut report, &lead, &event, kind).await?;
                if scores {
                    rescore(ports, &mut report, lead.id).await?;
                }
            }
        }
    }
    info!(
        event = report.event,
        message_id = %report.message_id,
        leads = ?report.leads.iter().map(ToString::to_string).collect::<Vec<_>>(),
        newly_suppressed = report.newly_suppressed,
        rescored = report.rescored,
        "SES event handled"
    );
    Ok(Outcome::Handled(report))
}

/// The deterministic id of the activity an event records: the same event delivered again gets
/// the same id, and two opens of one email at different times get two.
pub fn activity_id(event: &SesEvent) -> String {
    let at = event.at().timestamp_millis();
    let message_id = &event.mail().message_id;
    match event {
        SesEvent::Click { link, .. } => {
            let digest = Sha256::digest(link.as_deref().unwrap_or_default().as_bytes());
            let link: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("ses-click-{message_id}-{at}-{link}")
        }
        other => format!("ses-{}-{message_id}-{at}", other.name()),
    }
}

/// The suppression key of a recipient address as SES reports it.
fn address_key(raw: &str) -> String {
    let bare = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(open), Some(close)) if open < close => &raw[open + 1..close],
        _ => raw,
    };
    match normalize_email(bare) {
        Ok(normalized) => email_key(&normalized.address),
        // SES sent to it, so it is an address; keep the key of its plain lower-case form.
        Err(_) => email_key(&bare.trim().to_ascii_lowercase()),
    }
}

/// The lead the email's `lead_id` tag names (after merges), if it still exists.
async fn tagged_lead<P: Ports>(ports: &P, mail: &Mail) -> Result<Option<Lead>, StageError> {
    let Some(id) = mail.lead_id() else {
        return Ok(None);
    };
    let store = ports.store();
    let Some(resolved) = store.resolve_lead(id).await? else {
        return Ok(None);
    };
    Ok(store.get_lead(resolved).await?)
}

/// The lead whose address has `key`: the tagged lead when it is that lead's address, else the
/// lead the store finds for the key.
async fn lead_for<P: Ports>(ports: &P, tagged: Option<&Lead>, key: &str) -> Result<Option<Lead>, StageError> {
    if let Some(lead) = tagged
        && email_key(&lead.contact.email) == key
    {
        return Ok(Some(lead.clone()));
    }
    let store = ports.store();
    match store.find_by_email_key(key).await? {
        Some(id) => Ok(store.get_lead(id).await?),
        None => Ok(None),
    }
}

/// The lead a delivery, open or click counts for. An assignment email is a rep's mail, never
/// the lead's engagement, whoever it went to.
async fn engaged_lead<P: Ports>(
    ports: &P,
    tagged: Option<&Lead>,
    mail: &Mail,
    recipients: &[String],
) -> Result<Option<Lead>, StageError> {
    if mail.email_key().is_some_and(|key| key.starts_with("assignment-")) {
        return Ok(None);
    }
    if recipients.is_empty() {
        // Nothing to check the tag against: trust it.
        return Ok(tagged.cloned());
    }
    for recipient in recipients {
        if let Some(lead) = lead_for(ports, tagged, &address_key(recipient)).await? {
            return Ok(Some(lead));
        }
    }
    Ok(None)
}

/// A permanent bounce or a complaint for one recipient: the address is suppressed, and the lead
/// that has it (if any) stops every enrollment and gets the activity.
async fn opt_out<P: Ports>(
    ports: &P,
    report: &mut Report,
    tagged: Option<&Lead>,
    event: &SesEvent,
    recipient: &str,
    reason: SuppressionReason,
    kind: ActivityKind,
) -> Result<(), StageError> {
    let key = address_key(recipient);
    let now = ports.clock().now();
    match lead_for(ports, tagged, &key).await? {
        Some(lead) => {
            // The opt-out and the bounce or complaint on the trail are one write, at the
            // event's time.
            let told = activity(lead.id, activity_id(event), event.at(), kind);
            if suppress_lead(ports, &lead, reason, &[told], now).await? {
                report.newly_suppressed += 1;
            }
            push_lead(report, lead.id);
        }
        None => {
            let entry = Suppression { email_key: key, reason, at: now, lead_id: None };
            if ports.store().suppress(&entry, &[]).await? {
                report.newly_suppressed += 1;
            }
        }
    }
    Ok(())
}

async fn record<P: Ports>(
    ports: &P,
    report: &mut Report,
    lead: &Lead,
    event: &SesEvent,
    kind: ActivityKind,
) -> Result<(), StageError> {
    // At the event's time, not now: behaviour scoring decays with the age of the fact.
    ports.store().record_activity(&activity(lead.id, activity_id(event), event.at(), kind)).await?;
    push_lead(report, lead.id);
    Ok(())
}

fn push_lead(report: &mut Report, id: LeadId) {
    if !report.leads.contains(&id) {
        report.leads.push(id);
    }
}

/// Asks the score stage to score the lead again. A repeat is harmless: scoring is computed from
/// the lead's activities, which hold each fact once.
async fn rescore<P: Ports>(ports: &P, report: &mut Report, lead_id: LeadId) -> Result<(), StageError> {
    ports.queue().enqueue(&[ScoreMessage::rescore(lead_id, RESCORE_CAUSE)]).await?;
    report.rescored = true;
    Ok(())
}
