//! The suppression list for marketing: the addresses that get no more marketing email, newest
//! first, each with why and the lead it came from; and "is this address suppressed?".
//!
//! The list holds the hash of each normalized address (its email key), never the address, so it
//! cannot be read back as a list of addresses; the check hashes the address typed the way the
//! store does. The address typed is shown back to the person who typed it and never logged.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{StreamExt, stream};
use leadflow_core::erasure::is_erased;
use leadflow_core::error::StoreError;
use leadflow_core::local_time::in_words;
use leadflow_core::model::{Lead, Suppression, SuppressionReason};
use leadflow_core::normalize::{email_key, normalize_email};
use leadflow_core::ports::{LeadStore, Ports, SuppressionPosition};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::session::Role;
use super::{Console, Signed, query};
use leadflow_core::ports::Suppressions;

/// Entries on one page.
pub const PAGE_SIZE: usize = 25;
/// Most characters read of the address to check (an address has at most 254).
const MAX_EMAIL_CHARS: usize = 320;

#[derive(Debug, Default, Deserialize)]
struct SuppressionQuery {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Why an address is on the list, in words.
fn reason_words(r: SuppressionReason) -> &'static str {
    match r {
        SuppressionReason::Unsubscribed => "Unsubscribed",
        SuppressionReason::Bounced => "Bounced (mail to it failed for good)",
        SuppressionReason::Complained => "Complained (marked an email as spam)",
        SuppressionReason::Erased => "Erased (their data was deleted on request)",
    }
}

/// The lead an entry came from, as the page links it: `None` when it no longer exists (erased).
fn lead_of(lead: Option<&Lead>) -> Option<Value> {
    lead.filter(|l| !is_erased(l)).map(|l| json!({ "id": l.id, "name": l.display_name() }))
}

/// An entry as the page shows it, with its lead as read now.
fn entry(s: &Suppression, lead: Option<&Lead>) -> Value {
    json!({
        "at": in_words(s.at, "UTC"),
        "reason": reason_words(s.reason),
        "had_lead": s.lead_id.is_some(),
        "lead": lead_of(lead),
    })
}

/// The leads of `entries`, in their order (`None` for an entry without one).
async fn leads_of<S: LeadStore>(store: &S, entries: &[Suppression]) -> Result<Vec<Option<Lead>>, StoreError> {
    let ids: Vec<_> = entries.iter().map(|e| e.lead_id).collect();
    let reads: Vec<Result<Option<Lead>, StoreError>> = stream::iter(ids.into_iter().map(|id| async move {
        match id {
            Some(id) => store.get_lead(id).await,
            None => Ok(None),
        }
    }))
    .buffered(8)
    .collect()
    .await;
    reads.into_iter().collect()
}

/// `GET /console/suppressions?cursor=&email=`: for marketing and admins.
pub async fn page<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if signed.session.role == Role::Sales {
        return signed
            .forbidden("The suppression list is marketing's", "Your role does not include the suppression list.");
    }
    let store = console.ports.store();
    let mut errors = Map::new();
    let q = serde_urlencoded::from_str::<SuppressionQuery>(raw.as_deref().unwrap_or_default()).unwrap_or_else(|_| {
        errors.insert("query".into(), json!("This address could not be read. Start again from the list."));
        SuppressionQuery::default()
    });
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) if SuppressionPosition::parse(c).is_some() => Some(c.to_string()),
        Some(_) => {
            errors.insert(
                "cursor".into(),
                json!(
                    "This link's place in the list is not one Leadflow made, so the list below starts from the newest."
                ),
            );
            None
        }
        None => None,
    };
    let typed = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(str::to_string);
    let mut check = Value::Null;
    if let Some(email) = &typed {
        let normalized = if email.chars().count() > MAX_EMAIL_CHARS {
            Err("The email address is longer than 254 characters.".to_string())
        } else {
            normalize_email(email).map_err(|p| p.message)
        };
        match normalized {
            Err(message) => {
                errors.insert("email".into(), json!(message));
            }
            Ok(n) => {
                let found = match store.suppression(&email_key(&n.address)).await {
                    Ok(Some(s)) => leads_of(store, std::slice::from_ref(&s))
                        .await
                        .map(|leads| Some(entry(&s, leads.first().and_then(Option::as_ref)))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                match found {
                    Ok(found) => check = json!({ "address": n.address, "entry": found }),
                    Err(e) => {
                        warn!(error = %e, "the suppression check could not read the list");
                        return signed.unavailable();
                    }
                }
            }
        }
    }
    let page = match store.suppressions(cursor.clone(), PAGE_SIZE).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "the suppression list could not be read");
            return signed.unavailable();
        }
    };
    let entries = match leads_of(store, &page.entries).await {
        Ok(leads) => page.entries.iter().zip(&leads).map(|(s, l)| entry(s, l.as_ref())).collect::<Vec<_>>(),
        Err(e) => {
            warn!(error = %e, "the suppression list could not read its leads");
            return signed.unavailable();
        }
    };
    // The address typed stays out of the paging links: an address in a URL travels further.
    let next = page.next.map(|c| format!("/console/suppressions?{}", query(&[("cursor", &c)])));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    signed.page(
        status,
        "suppressions.html",
        json!({
            "email": typed.unwrap_or_default(),
            "errors": errors,
            "check": check,
            "entries": entries,
            "next": next,
            "first": cursor.is_some(),
        }),
    )
}
