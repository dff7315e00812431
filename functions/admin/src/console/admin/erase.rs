//! Erasing a lead from the console (GDPR art. 17), an admin's act with a confirmation: the GET
//! says what goes and what stays and changes nothing; the POST needs the lead's email address
//! typed again (the word ERASE for a lead without one) and then runs the same
//! `leadflow_app::erasure::erase` as `DELETE /admin/leads/{id}`. Erasing an erased lead is
//! harmless: it shows that it was erased.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use leadflow_core::erasure::{erased_at, is_erased};
use leadflow_core::local_time::in_words;
use leadflow_core::model::Lead;
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::json;
use tracing::warn;

use super::St;
use crate::console::leads::stored_lead;
use crate::console::session::Role;
use crate::console::{Signed, see_other};

/// What a lead without an email address is confirmed with.
pub const WORD: &str = "ERASE";
/// Most characters of a typed confirmation shown back on the page.
const MAX_SHOWN: usize = 320;

fn refused(signed: &Signed) -> Option<Response> {
    (signed.session.role != Role::Admin).then(|| {
        signed.forbidden(
            "Only admins erase leads",
            "Your role does not include erasing a lead's personal data. Ask an admin.",
        )
    })
}

fn not_found(signed: &Signed) -> Response {
    signed.refusal(StatusCode::NOT_FOUND, "No such lead", "No lead has this address.")
}

/// What the admin must type: the address, or the word for a lead that has none.
fn expected(lead: &Lead) -> &str {
    let email = lead.contact.email.trim();
    if email.is_empty() { WORD } else { email }
}

fn confirmed(lead: &Lead, typed: &str) -> bool {
    typed.trim().eq_ignore_ascii_case(expected(lead))
}

fn confirm_page(signed: &Signed, lead: &Lead, status: StatusCode, typed: &str, error: Option<&str>) -> Response {
    let has_email = !lead.contact.email.trim().is_empty();
    signed.page(
        status,
        "lead_erase.html",
        json!({
            "id": lead.id,
            "name": lead.display_name(),
            "company": lead.contact.company,
            "email": has_email.then(|| lead.contact.email.trim()),
            "word": WORD,
            "typed": typed.chars().take(MAX_SHOWN).collect::<String>(),
            "error": error,
            "max": MAX_SHOWN,
        }),
    )
}

fn erased_page(signed: &Signed, lead: &Lead) -> Response {
    signed.page(
        StatusCode::OK,
        "lead_erase.html",
        json!({
            "id": lead.id,
            "erased": erased_at(lead).map_or_else(|| "earlier".to_string(), |at| in_words(at, "UTC")),
        }),
    )
}

/// `GET /console/leads/{id}/erase`: what erasing removes and keeps, and the confirmation form;
/// for an erased lead, that it was erased.
pub async fn confirm<P: Ports>(
    axum::extract::State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    match stored_lead(&*console.ports, &signed, &raw, not_found).await {
        Ok(lead) if is_erased(&lead) => erased_page(&signed, &lead),
        Ok(lead) => confirm_page(&signed, &lead, StatusCode::OK, "", None),
        Err(page) => page,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /console/leads/{id}/erase`: erases the lead once the confirmation matches.
pub async fn erase<P: Ports>(
    axum::extract::State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    confirmed_erase(&*console.ports, &signed, &raw, &headers, &body).await.unwrap_or_else(|page| *page)
}

async fn confirmed_erase<P: Ports>(
    ports: &P,
    signed: &Signed,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Box<Response>> {
    let form: EraseForm = signed.form(ports, headers, body)?;
    if let Some(page) = refused(signed) {
        return Ok(page);
    }
    let lead = stored_lead(ports, signed, raw, not_found).await.map_err(Box::new)?;
    // An erased lead has no address left to type; erasing it again only repeats the harmless
    // parts (the mailer's deletion, the event), as the JSON API does.
    if !is_erased(&lead) && !confirmed(&lead, &form.confirm) {
        let error = match lead.contact.email.trim() {
            "" => format!("Type {WORD} to erase this lead."),
            _ => "Type the lead's email address exactly as shown above to erase it.".to_string(),
        };
        return Ok(confirm_page(signed, &lead, StatusCode::UNPROCESSABLE_ENTITY, &form.confirm, Some(&error)));
    }
    Ok(match leadflow_app::erasure::erase(ports, lead.id).await {
        Ok(Some(_)) => see_other(&format!("/console/leads/{}/erase", lead.id)),
        Ok(None) => not_found(signed),
        Err(e) => {
            warn!(lead_id = %lead.id, error = %e, "a lead could not be erased");
            signed.unavailable()
        }
    })
}

#[cfg(test)]
mod tests {
    use leadflow_core::model::Lead;

    use super::*;

    fn lead(email: &str) -> Lead {
        let mut lead = leadflow_memory::fixtures::lead(1, "someone@example.com");
        lead.contact.email = email.into();
        lead
    }

    #[test]
    fn the_confirmation_is_the_address_or_the_word() {
        let ana = lead("ana@acme.io");
        assert!(confirmed(&ana, " Ana@Acme.io "));
        assert!(!confirmed(&ana, "ana@acme"));
        assert!(!confirmed(&ana, WORD), "a lead with an address needs the address");
        assert!(!confirmed(&ana, ""));
        let nobody = lead("");
        assert!(confirmed(&nobody, "erase"));
        assert!(!confirmed(&nobody, ""));
    }
}
