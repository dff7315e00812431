//! Double opt-in's links: `/confirm/{token}` from the confirmation email
//! (`leadflow_core::confirmation`).
//!
//! - `GET` shows what would be confirmed and a button, and changes nothing: mail scanners and
//!   link previews open links, and must not subscribe anyone.
//! - `POST` (the button) records the consent on the lead — when, on which form, to what words —
//!   with a `consent_confirmed` entry, then hands the lead to the score stage, which enrolls it
//!   in the nurture campaigns that admit it. Pressing it again changes nothing and answers the
//!   same, and hands the lead over again (so a hand-off lost to a crash is made up).
//!
//! Like the unsubscribe pages, these show nothing about the person, not even the address: only
//! the words of the request, which are the form's.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use leadflow_app::{StageError, WRITE_ATTEMPTS, optout};
use leadflow_core::confirmation::{self, ConfirmLink, Confirmable, LinkError, Outcome};
use leadflow_core::messages::ScoreMessage;
use leadflow_core::model::{Activity, Lead};
use leadflow_core::ports::{Clock, Ports, StageQueue, WriteOutcome};
use tracing::{error, info, warn};

use super::{escape_html, from_whom, html_page, page, sender_name};
use leadflow_core::ports::{Leads, Trails};

/// The route, under the public URL: the path the confirmation email links to.
pub const ROUTE: &str = "/confirm/{token}";

/// Where a link's lead stands, as both pages need it.
enum Found {
    /// The request the link was sent for, still to confirm; the lead and its trail.
    Pending(Box<Lead>, Confirmable, Vec<Activity>),
    /// Consent is recorded already.
    Confirmed(Box<Lead>),
    /// The address is on the suppression list: no marketing email will go to it.
    Suppressed,
    /// Nothing to confirm: the lead is gone (erased) or this link was never sent to it.
    Nothing,
}

async fn find<P: Ports>(ports: &P, link: &ConfirmLink) -> Result<Found, StageError> {
    let store = ports.store();
    let Some(id) = store.resolve_lead(link.lead_id).await? else { return Ok(Found::Nothing) };
    let Some(lead) = store.get_lead(id).await? else { return Ok(Found::Nothing) };
    if lead.contact.email.trim().is_empty() {
        return Ok(Found::Nothing);
    }
    if lead.consent.as_ref().is_some_and(|c| c.given) {
        return Ok(Found::Confirmed(Box::new(lead)));
    }
    let trail = store.activities(lead.id).await?;
    let Some(what) = confirmation::confirmable(&trail, link) else { return Ok(Found::Nothing) };
    if optout::is_suppressed(ports, &lead).await? {
        return Ok(Found::Suppressed);
    }
    Ok(Found::Pending(Box::new(lead), what, trail))
}

fn link_of<P: Ports>(ports: &P, path: Result<Path<String>, PathRejection>) -> Result<ConfirmLink, LinkError> {
    let Ok(Path(token)) = path else { return Err(LinkError::Malformed) };
    confirmation::verify(&ports.settings().signing_keys, &token, ports.clock().now())
}

/// `GET /confirm/{token}`: reads, never writes.
pub async fn page_get<P: Ports>(State(ports): State<Arc<P>>, path: Result<Path<String>, PathRejection>) -> Response {
    let link = match link_of(&*ports, path) {
        Ok(link) => link,
        Err(e) => return refused(&e),
    };
    let sender = sender_name(&*ports);
    match find(&*ports, &link).await {
        Ok(Found::Pending(_, what, _)) => html_page(StatusCode::OK, &ask_html(&sender, &what)),
        Ok(Found::Confirmed(_)) => html_page(StatusCode::OK, &done_html(&sender)),
        Ok(Found::Suppressed) => html_page(StatusCode::OK, &suppressed_html(&sender)),
        Ok(Found::Nothing) => html_page(StatusCode::NOT_FOUND, &nothing_html()),
        Err(e) => {
            error!(lead_id = %link.lead_id, error = %e, "confirmation page failed");
            unavailable()
        }
    }
}

/// `POST /confirm/{token}`: records the consent, once.
pub async fn page_post<P: Ports>(State(ports): State<Arc<P>>, path: Result<Path<String>, PathRejection>) -> Response {
    let link = match link_of(&*ports, path) {
        Ok(link) => link,
        Err(e) => return refused(&e),
    };
    let sender = sender_name(&*ports);
    match record(&*ports, &link).await {
        Ok(Recorded::Yes) => html_page(StatusCode::OK, &done_html(&sender)),
        Ok(Recorded::Suppressed) => html_page(StatusCode::OK, &suppressed_html(&sender)),
        Ok(Recorded::Nothing) => html_page(StatusCode::NOT_FOUND, &nothing_html()),
        Err(e) => {
            error!(lead_id = %link.lead_id, error = %e, "confirmation failed");
            unavailable()
        }
    }
}

enum Recorded {
    /// Consent is recorded (now, or before) and the lead is on its way to scoring.
    Yes,
    Suppressed,
    Nothing,
}

/// Records the consent `link` confirms and hands the lead to scoring, which enrolls it.
async fn record<P: Ports>(ports: &P, link: &ConfirmLink) -> Result<Recorded, StageError> {
    let store = ports.store();
    for _ in 0..WRITE_ATTEMPTS {
        let (lead, trail) = match find(ports, link).await? {
            Found::Pending(lead, _, trail) => (lead, trail),
            Found::Confirmed(lead) => return rescore(ports, &lead).await.map(|()| Recorded::Yes),
            Found::Suppressed => return Ok(Recorded::Suppressed),
            Found::Nothing => return Ok(Recorded::Nothing),
        };
        let now = ports.clock().now();
        let (confirmed, entry) = match confirmation::confirm(&lead, &trail, link, now) {
            Outcome::Confirm { lead, entry } => (lead, *entry),
            Outcome::Already => return rescore(ports, &lead).await.map(|()| Recorded::Yes),
            Outcome::Unknown => return Ok(Recorded::Nothing),
        };
        // The consent and its trail entry are one write.
        if store.update_lead(&confirmed, lead.version, &[entry]).await? == WriteOutcome::VersionConflict {
            continue;
        }
        info!(lead_id = %lead.id, "consent confirmed");
        rescore(ports, &confirmed).await?;
        return Ok(Recorded::Yes);
    }
    Err(StageError::Retryable("the lead kept changing while its consent was recorded".into()))
}

/// Hands the lead to the score stage: rescored with its consent, and enrolled where admitted.
async fn rescore<P: Ports>(ports: &P, lead: &Lead) -> Result<(), StageError> {
    ports.queue().enqueue(&[ScoreMessage::rescore(lead.id, "consent_confirmed")]).await?;
    Ok(())
}

fn refused(e: &LinkError) -> Response {
    match e {
        LinkError::Malformed => html_page(
            StatusCode::BAD_REQUEST,
            &message_html(
                "This confirmation link is incomplete. Open the whole link from the email, or copy all of it into \
                 the address bar.",
            ),
        ),
        LinkError::BadSignature => {
            warn!("confirmation link with a signature that does not match");
            html_page(
                StatusCode::FORBIDDEN,
                &message_html("This confirmation link is not valid. Use the link from the email you received."),
            )
        }
        LinkError::Expired => html_page(
            StatusCode::GONE,
            &message_html(
                "This confirmation link has expired, so nothing was confirmed. To subscribe, fill in the form \
                 on our website again: we will send you a new link.",
            ),
        ),
        LinkError::NoSecret => {
            error!("no signing key is configured; no confirmation link can be verified");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    let mut response = html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        &message_html("Confirming is temporarily unavailable. Please open the link again in a few minutes."),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

const TITLE: &str = "Confirm your subscription";

fn ask_html(sender: &str, what: &Confirmable) -> String {
    let words = match &what.wording {
        Some(w) => format!(
            "<p>The form said:</p><blockquote style=\"margin:1rem 0;padding:.25rem 1rem;border-left:3px solid \
             #d6d3d1;color:#44403c;overflow-wrap:anywhere\">{}</blockquote>",
            escape_html(w).replace('\n', "<br>")
        ),
        None => String::new(),
    };
    page(
        TITLE,
        &format!(
            "<h1>{TITLE}</h1><p>Receive email{} about {}?</p>{words}\
             <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
             <button type=\"submit\">Confirm my subscription</button></form>\
             <p style=\"color:#57534e;font-size:.875rem\">Not you? Close this page: nothing happens without the button.</p>",
            from_whom(sender),
            escape_html(&what.purpose),
        ),
    )
}

fn done_html(sender: &str) -> String {
    page(
        "You are subscribed",
        &format!(
            "<h1>You are subscribed</h1><p>Thank you: you will receive email{}. Every email has a link to \
             unsubscribe. You can close this page.</p>",
            from_whom(sender)
        ),
    )
}

fn suppressed_html(sender: &str) -> String {
    page(
        TITLE,
        &format!(
            "<h1>{TITLE}</h1><p>This address unsubscribed from email{} (or its mail bounced), so none will \
             be sent to it and nothing was changed.</p>",
            from_whom(sender)
        ),
    )
}

fn nothing_html() -> String {
    message_html("There is nothing to confirm with this link any more. You can close this page.")
}

fn message_html(message: &str) -> String {
    page(TITLE, &format!("<h1>{TITLE}</h1><p>{}</p>", escape_html(message)))
}
