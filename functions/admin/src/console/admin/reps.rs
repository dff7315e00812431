//! Reps for admins: the list (active, away, open leads against capacity, working hours in their
//! zone, teams with weights) and the form that adds or changes one, memberships included. A save
//! is `config_docs::save` of the whole routing, as `PUT /admin/reps/{id}` stores it; the page
//! says which version it made. The form's fields and their checks are in `reps_form`, the steps
//! it shares with the team form in `entry`.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use leadflow_core::local_time::in_words;
use leadflow_core::ports::{Clock, Ports};
use leadflow_core::routing::{Rep, RoutingConfig};
use serde_json::{Value, json};
use tracing::warn;

use super::entry::{Entry, FormPage, place};
use super::reps_form::{DAYS, Memberships, RepForm, hours_words, memberships, parse, rep_field, set_member};
use super::{Errors, Fields, St, admin_routing, version_words, weight_field, zone_names};
use crate::config_docs::{MAX_CAPACITY, MAX_NAME_CHARS, MAX_WEIGHT};
use crate::console::Signed;
use crate::error::ApiError;
use leadflow_core::ports::Assignments;

/// `GET /console/admin/reps`: every rep of the routing in force.
pub async fn list<P: Ports>(axum::extract::State(console): St<P>, signed: Signed) -> Response {
    let ports = &*console.ports;
    let r = match admin_routing(ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let loads = match ports.store().rep_loads().await {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "the reps page could not count open leads");
            return signed.unavailable();
        }
    };
    let now = ports.clock().now();
    let reps: Vec<Value> =
        r.value.reps.iter().map(|rep| row(rep, &r.value, loads.get(&rep.id).copied().unwrap_or(0), now)).collect();
    signed.page(StatusCode::OK, "admin_reps.html", json!({ "reps": reps, "version": version_words(&r) }))
}

fn row(rep: &Rep, routing: &RoutingConfig, open: u32, now: DateTime<Utc>) -> Value {
    let teams: Vec<Value> = routing
        .teams
        .iter()
        .filter_map(|t| {
            t.members.iter().find(|m| m.rep == rep.id).map(|m| json!({ "name": t.name, "weight": m.weight }))
        })
        .collect();
    json!({
        "id": rep.id,
        "name": rep.name,
        "email": rep.email,
        "active": rep.active,
        "away": away_words(rep, now),
        "load": match rep.capacity {
            Some(c) => format!("{open} open of {c}"),
            None => format!("{open} open, no limit"),
        },
        "full": rep.capacity.is_some_and(|c| open >= c),
        "hours": hours_words(rep.working_hours.as_ref()),
        "zone": rep.time_zone,
        "teams": teams,
        "fallback": routing.fallback_owner == rep.id,
    })
}

/// The rep's absence in words, in their zone, while it has not ended.
fn away_words(rep: &Rep, now: DateTime<Utc>) -> Option<String> {
    let a = rep.out_of_office.as_ref().filter(|a| a.until > now)?;
    let zone = rep.time_zone.as_str();
    Some(if a.from <= now {
        format!("Out of office until {}", in_words(a.until, zone))
    } else {
        format!("Away from {} until {}", in_words(a.from, zone), in_words(a.until, zone))
    })
}
/// The rep form: its fields in `reps_form`, its steps in `entry`.
pub struct Reps;

impl Entry for Reps {
    const NOUN: &'static str = "rep";
    const GONE: &'static str = "rep_not_found";
    type Form = RepForm;
    /// The rep and the memberships asked for.
    type Asked = (Rep, Memberships);

    fn exists(routing: &RoutingConfig, id: &str) -> bool {
        routing.reps.iter().any(|x| x.id == id)
    }

    fn position(routing: &RoutingConfig, id: &str) -> Option<usize> {
        routing.reps.iter().position(|x| x.id == id)
    }

    fn blank(routing: &RoutingConfig) -> RepForm {
        RepForm::blank(routing)
    }

    fn of(routing: &RoutingConfig, id: &str, now: DateTime<Utc>) -> Option<RepForm> {
        routing.reps.iter().find(|x| x.id == id).map(|rep| RepForm::of(rep, routing, now))
    }

    fn posted(fields: &Fields, routing: &RoutingConfig) -> RepForm {
        RepForm::posted(fields, routing)
    }

    fn id_mut(form: &mut RepForm) -> &mut String {
        &mut form.id
    }

    fn check(
        form: &RepForm,
        id: &str,
        existing: Option<&str>,
        routing: &RoutingConfig,
        now: DateTime<Utc>,
        errors: &mut Errors,
    ) -> (Rep, Memberships) {
        let stored = existing.and_then(|id| routing.reps.iter().find(|x| x.id == id));
        let rep = parse(form, id, stored, now, errors);
        let memberships = memberships(form, &rep, routing, errors);
        (rep, memberships)
    }

    fn apply(
        (rep, memberships): &(Rep, Memberships),
        routing: &mut RoutingConfig,
        found: Option<usize>,
        creating: bool,
    ) -> Result<usize, ApiError> {
        let i = place::<Self, _>(&mut routing.reps, found, creating, rep.clone())?;
        for team in &mut routing.teams {
            if let Some(w) = memberships.get(&team.id) {
                set_member(team, &rep.id, *w);
            }
        }
        Ok(i)
    }

    fn field((rep, _): &(Rep, Memberships), path: &str, index: Option<usize>) -> Option<String> {
        rep_field(path, index, &rep.id)
    }

    async fn render<P: Ports>(
        page: FormPage<'_>,
        ports: &P,
        signed: &Signed,
        form: &RepForm,
        errors: &Errors,
    ) -> Response {
        let current = page.existing.and_then(|id| page.routing.value.reps.iter().find(|x| x.id == id));
        // The load is a convenience next to the capacity; the form works without it.
        let open = match current {
            Some(rep) => match ports.store().rep_loads().await {
                Ok(loads) => Some(loads.get(&rep.id).copied().unwrap_or(0)),
                Err(e) => {
                    warn!(error = %e, "the rep form could not count open leads");
                    None
                }
            },
            None => None,
        };
        let teams: Vec<Value> = page
            .routing
            .value
            .teams
            .iter()
            .map(|t| json!({ "id": t.id, "name": t.name, "field": weight_field(&t.id), "weight": form.weights.get(&t.id) }))
            .collect();
        let days: Vec<Value> = DAYS
            .iter()
            .map(|d| json!({ "field": format!("day_{}", d.1), "label": d.2, "on": form.days.iter().any(|k| k == d.1) }))
            .collect();
        signed.page(
            page.status,
            "admin_rep.html",
            json!({
                "heading": current.map_or("Add a rep", |r| r.name.as_str()),
                "creating": page.existing.is_none(),
                "action": page.action::<Self>(),
                "form": form,
                "errors": errors.json(),
                "teams": teams,
                "days": days,
                "zones": zone_names(),
                "open": open,
                "fallback": current.is_some_and(|r| r.id == page.routing.value.fallback_owner),
                "version": version_words(page.routing),
                "notice": page.notice,
                "max_capacity": MAX_CAPACITY,
                "max_weight": MAX_WEIGHT,
                "max_name": MAX_NAME_CHARS,
            }),
        )
    }
}
