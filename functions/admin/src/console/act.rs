//! `/console/act/{token}`: the assignment email's one-click actions ("I've contacted them", "Not
//! a fit"). GET shows what the link would do and changes nothing (mail scanners open links);
//! POST does it, once: a second POST finds the lead marked already and says so.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use leadflow_app::sales::{self, MarkError};
use leadflow_core::erasure::is_erased;
use leadflow_core::model::Lead;
use leadflow_core::ports::{Clock, Ports};
use leadflow_core::sales_link::{self, LinkError, SalesAction, SalesLink};
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::page;
use leadflow_core::ports::Leads;

/// The longest note a rep may leave with "Not a fit".
pub const MAX_NOTE_CHARS: usize = 2_000;

#[derive(Debug, Default, Deserialize)]
struct ActForm {
    #[serde(default)]
    note: String,
}

/// Why a link cannot be used, as a page.
fn refused(status: StatusCode, heading: &str, lines: &[&str]) -> Response {
    page(status, "message.html", json!({ "kind": "refused", "heading": heading, "lines": lines }))
}

fn link_refused(e: &LinkError) -> Response {
    match e {
        LinkError::Expired => refused(
            StatusCode::GONE,
            "This link has expired",
            &["Links in an assignment email work for seven days. Open the lead in the console to update it."],
        ),
        LinkError::Malformed | LinkError::BadSignature => refused(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            &["It may have been cut short or changed. Use the buttons in the assignment email as they came."],
        ),
        LinkError::NoSecret => unavailable(),
    }
}

fn unavailable() -> Response {
    refused(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment", &["Leadflow could not be reached just now."])
}

fn label(action: SalesAction) -> &'static str {
    match action {
        SalesAction::Contacted => "I've contacted them",
        SalesAction::NotAFit => "Not a fit",
    }
}

/// The link, checked, and the lead it names while it is still that rep's.
async fn lead_of<P: Ports>(ports: &P, token: &str) -> Result<(SalesLink, Lead), Response> {
    let secret = ports.config().settings.signing_keys.clone();
    let link = sales_link::verify(&secret, token, ports.clock().now()).map_err(|e| link_refused(&e))?;
    let lead = match ports.store().get_lead(link.lead_id).await {
        Ok(lead) => lead,
        Err(e) => {
            warn!(lead_id = %link.lead_id, error = %e, "a one-click action could not read its lead");
            return Err(unavailable());
        }
    };
    let Some(lead) = lead.filter(|l| !is_erased(l)) else {
        return Err(refused(StatusCode::GONE, "This lead is no longer here", &["It was erased."]));
    };
    if lead.owner.as_ref().is_none_or(|o| o.rep_id != link.rep_id) {
        return Err(refused(
            StatusCode::CONFLICT,
            "This lead is no longer yours",
            &["It went to another rep after this email was sent, so this link no longer acts on it."],
        ));
    }
    Ok((link, lead))
}

fn confirm_page(link: &SalesLink, lead: &Lead, note: &str, note_error: Option<&str>) -> Response {
    let question = match link.action {
        SalesAction::Contacted => "Mark this lead as contacted? Its SLA clock stops and it leaves the nurture emails.",
        SalesAction::NotAFit => "Mark this lead as lost, not a fit? Its nurture emails stop.",
    };
    let status = if note_error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    page(
        status,
        "act_confirm.html",
        json!({
            "lead_name": lead.display_name(),
            "lead_company": lead.contact.company,
            "action_label": label(link.action),
            "question": question,
            "with_note": link.action == SalesAction::NotAFit,
            "max_note": MAX_NOTE_CHARS,
            "note": note,
            "note_error": note_error,
        }),
    )
}

/// `GET /console/act/{token}`: what the link would do, with the button that does it.
pub async fn confirm<P: Ports>(State(ports): State<Arc<P>>, Path(token): Path<String>) -> Response {
    match lead_of(&*ports, &token).await {
        Ok((link, lead)) => confirm_page(&link, &lead, "", None),
        Err(page) => page,
    }
}

/// `POST /console/act/{token}`: marks the lead, once.
pub async fn perform<P: Ports>(State(ports): State<Arc<P>>, Path(token): Path<String>, body: Bytes) -> Response {
    let (link, lead) = match lead_of(&*ports, &token).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    // A one-click POST may come with no body at all.
    let form: ActForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let note = form.note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        let message = format!("A note may be at most {MAX_NOTE_CHARS} characters.");
        return confirm_page(&link, &lead, note, Some(&message));
    }
    let note = (!note.is_empty() && link.action == SalesAction::NotAFit).then(|| note.to_string());
    let name = lead.display_name();
    match sales::mark(&*ports, lead.id, link.action.status(), Some(link.rep_id.clone()), note).await {
        Ok(marked) if marked.changed => {
            let lines = match link.action {
                SalesAction::Contacted => vec![format!("{name} is marked contacted. The SLA clock has stopped.")],
                SalesAction::NotAFit => {
                    vec![format!("{name} is marked lost, not a fit. Their nurture emails have stopped.")]
                }
            };
            page(StatusCode::OK, "message.html", json!({ "kind": "notice", "heading": "Done", "lines": lines }))
        }
        Ok(_) => page(
            StatusCode::OK,
            "message.html",
            json!({ "kind": "notice", "heading": "Already done", "lines": [format!("{name} was marked {} before.", link.action.status().as_str())] }),
        ),
        Err(MarkError::NotFound | MarkError::Erased) => {
            refused(StatusCode::GONE, "This lead is no longer here", &["It was erased."])
        }
        Err(e @ MarkError::Refused { .. }) => {
            let why = e.to_string();
            refused(StatusCode::CONFLICT, "This cannot be done", &[why.as_str()])
        }
        Err(MarkError::Stage(e)) => {
            warn!(lead_id = %lead.id, error = %e, "a one-click action could not be saved");
            unavailable()
        }
    }
}
