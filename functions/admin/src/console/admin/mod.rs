//! The admin's pages: reps and teams (here; what their forms share in `entry`), the scoring and
//! routing rule editors (`rules*`), and erasing a lead with a confirmation. Only admins reach
//! them: marketing and sales get a 403 page, a signed-out browser goes to sign-in and back.
//!
//! Every change goes through the JSON admin API's own code: `crate::config_docs::save` stores
//! the next routing version after `rep_problems`/`team_problems` and the whole routing's
//! compile accepted it (as `PUT /admin/reps/{id}` does), and erasure is
//! `leadflow_app::erasure::erase` (as `DELETE /admin/leads/{id}`). A refusal names its field;
//! [`Errors`] puts each message next to the form's field for it.

pub mod entry;
pub mod erase;
pub mod reps;
mod reps_form;
pub mod rules;
pub mod rules_toml;
mod team_rows;
pub mod teams;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use leadflow_core::ports::Ports;
use leadflow_core::routing::RoutingConfig;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::session::Role;
use super::{Console, Signed};
use crate::config_docs::{self, Effective};
use crate::error::ApiError;

pub(crate) type St<P> = State<Arc<Console<P>>>;

/// A form as its fields were posted, by name (rows and per-rep fields have names made at
/// runtime, so no struct can list them).
pub(crate) type Fields = BTreeMap<String, String>;

/// The page for a person who is not an admin, if this one is not.
pub(crate) fn refused(signed: &Signed) -> Option<Response> {
    (signed.session.role != Role::Admin).then(|| {
        signed.forbidden(
            "Only admins change reps, teams and routing",
            "Your role does not include this page. Ask an admin to make the change.",
        )
    })
}

/// What every admin POST checks first: the form (CSRF token and origin), then the role.
pub(crate) fn posted<P: Ports>(
    ports: &P,
    signed: &Signed,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Fields, Box<Response>> {
    let form: Fields = signed.form(ports, headers, body)?;
    match refused(signed) {
        Some(page) => Err(Box::new(page)),
        None => Ok(form),
    }
}

/// The routing in force, or the page that says it cannot be read.
pub(crate) async fn routing<P: Ports>(ports: &P, signed: &Signed) -> Result<Effective<RoutingConfig>, Box<Response>> {
    config_docs::effective::<P, RoutingConfig>(ports).await.map_err(|e| {
        warn!(error = %e.message, "an admin page could not read the routing");
        Box::new(signed.unavailable())
    })
}

/// What every admin page checks first: the role, then the routing in force.
pub(crate) async fn admin_routing<P: Ports>(
    ports: &P,
    signed: &Signed,
) -> Result<Effective<RoutingConfig>, Box<Response>> {
    if let Some(page) = refused(signed) {
        return Err(Box::new(page));
    }
    routing(ports, signed).await
}

/// Where the routing in force came from, in words.
pub(crate) fn version_words(routing: &Effective<RoutingConfig>) -> String {
    match (routing.version, routing.saved_at) {
        (Some(v), Some(at)) => {
            format!("Routing version {v}, saved {}.", leadflow_core::local_time::in_words(at, "UTC"))
        }
        (Some(v), None) => format!("Routing version {v}."),
        _ => "The routing as deployed (routing.toml); the first save makes version 1.".to_string(),
    }
}

/// What a save sends the browser back with: `?done=saved|unchanged&v=<version>`. Read as text,
/// so that an edited address shows the page without the notice rather than an error.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    v: Option<String>,
}

/// The notice after a save.
pub(crate) fn saved_notice(done: &Done) -> Option<String> {
    match (done.done.as_deref(), done.v.as_deref().and_then(|v| v.parse::<u32>().ok())) {
        (Some("saved"), Some(v)) => Some(format!("Saved as routing version {v}.")),
        (Some("unchanged"), Some(v)) => Some(format!("Nothing changed: still routing version {v}.")),
        _ => None,
    }
}

/// Messages by form field; the first message for a field is the one shown.
#[derive(Debug, Default, Clone)]
pub(crate) struct Errors(BTreeMap<String, String>);

impl Errors {
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// An API error at the form field `map` names for its path; one it cannot place goes to the
    /// top of the form, with its path, so that nothing is silently dropped.
    pub(crate) fn add_api(&mut self, e: &ApiError, map: impl Fn(&str) -> Option<String>) {
        match e.field.as_deref().and_then(&map) {
            Some(field) => self.add(field, e.message.clone()),
            None => match &e.field {
                Some(path) => self.add("form", format!("{path}: {}", e.message)),
                None => self.add("form", e.message.clone()),
            },
        }
    }

    pub(crate) fn json(&self) -> Value {
        json!(self.0)
    }
}

/// A save the API's rules refused, placed on the form; `Err` when it is no form's business
/// (the store failed: the "try again" page).
pub(crate) fn refusal_status(signed: &Signed, e: &ApiError) -> Result<StatusCode, Box<Response>> {
    if e.is_server_error() {
        warn!(error = %e.message, "an admin change could not be stored");
        return Err(Box::new(signed.unavailable()));
    }
    Ok(e.status_code())
}

/// A trimmed field of the form ("" when it was not sent).
pub(crate) fn field<'a>(form: &'a Fields, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

/// Whether the form sent a field of this name at all (a checkbox or a row the page showed).
pub(crate) fn sent(form: &Fields, name: &str) -> bool {
    form.contains_key(name)
}

/// IANA zone names to offer while typing one (any valid name is accepted): the `Area/City`
/// names, without the legacy aliases (`US/…`, `Etc/…`, `SystemV/…`).
pub(crate) fn zone_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<String> = leadflow_core::zone::Zone::names()
            .into_iter()
            .filter(|n| {
                n.contains('/')
                    && !["US/", "Etc/", "SystemV/", "Canada/", "Brazil/", "Mexico/", "Chile/"]
                        .iter()
                        .any(|p| n.starts_with(p))
            })
            .collect();
        names.push("UTC".to_string());
        names.sort_unstable();
        names
    })
}

/// The weight field of a membership, for the rep form (by team) and the team form (by rep).
pub(crate) fn weight_field(id: &str) -> String {
    format!("weight_{id}")
}

/// A membership weight as typed: `Ok(None)` when empty (not a member).
pub(crate) fn parse_weight(raw: &str) -> Result<Option<u32>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(0) | Err(_) => {
            Err(format!("a whole number from 1 to {}, or empty for not a member", config_docs::MAX_WEIGHT))
        }
        Ok(w) => Ok(Some(w)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_goes_to_its_field_or_to_the_top_with_its_path() {
        let mut errors = Errors::default();
        let map = |p: &str| (p == "capacity").then(|| "capacity".to_string());
        errors.add_api(&ApiError::invalid("capacity", "too many"), map);
        errors.add_api(&ApiError::invalid("reps[3].name", "empty"), map);
        errors.add_api(&ApiError::invalid("capacity", "second"), map);
        assert_eq!(errors.get("capacity"), Some("too many"), "the first message of a field stays");
        assert_eq!(errors.get("form"), Some("reps[3].name: empty"));
    }

    #[test]
    fn weights_are_bounded_and_empty_means_not_a_member() {
        assert_eq!(parse_weight(""), Ok(None));
        assert_eq!(parse_weight("3"), Ok(Some(3)));
        for bad in ["0", "-1", "1.5", "lots", "99999999999"] {
            assert!(parse_weight(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_zone_list_offers_real_zones_and_not_aliases() {
        let names = zone_names();
        let offered = |name: &str| names.iter().any(|n| n == name);
        assert!(offered("Europe/Berlin") && offered("America/New_York") && offered("UTC"));
        assert!(!names.iter().any(|n| n.starts_with("US/") || n.starts_with("Etc/")));
        assert!(names.iter().all(|n| leadflow_core::zone::Zone::named(n).is_some()));
    }
}
