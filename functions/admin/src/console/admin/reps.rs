//! Reps for admins: the list (active, away, open leads against capacity, working hours in their
//! zone, teams with weights) and the form that adds or changes one, memberships included. A save
//! is `config_docs::save` of the whole routing, as `PUT /admin/reps/{id}` stores it; the page
//! says which version it made. The form's fields and their checks are in `reps_form`.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use leadflow_core::local_time::in_words;
use leadflow_core::ports::{Clock, LeadStore, Ports};
use leadflow_core::routing::{Rep, RoutingConfig};
use serde_json::{Value, json};
use tracing::warn;

use super::reps_form::{DAYS, RepForm, hours_words, memberships, parse, rep_field, set_member};
use super::{
    Done, Errors, St, posted, refusal_status, refused, routing, saved_notice, version_words, weight_field, zone_names,
};
use crate::config_docs::{self, Effective, MAX_CAPACITY, MAX_NAME_CHARS, MAX_WEIGHT};
use crate::console::{Signed, query, see_other};
use crate::error::ApiError;

fn not_found(signed: &Signed) -> Response {
    signed.refusal(StatusCode::NOT_FOUND, "No such rep", "No rep has this id. Pick one from the list of reps.")
}

/// `GET /console/admin/reps`: every rep of the routing in force.
pub async fn list<P: Ports>(axum::extract::State(console): St<P>, signed: Signed) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let r = match routing(ports, &signed).await {
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
/// `GET /console/admin/reps/new`: the form for a new rep.
pub async fn new_form<P: Ports>(axum::extract::State(console): St<P>, signed: Signed) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let r = match routing(ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let page = FormPage { routing: &r, existing: None, status: StatusCode::OK, notice: None };
    page.render(ports, &signed, &RepForm::blank(&r.value), &Errors::default()).await
}

/// `GET /console/admin/reps/{id}`: the rep's form, with what the last save did.
pub async fn edit<P: Ports>(
    axum::extract::State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let r = match routing(ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let Some(rep) = r.value.reps.iter().find(|x| x.id == raw) else { return not_found(&signed) };
    let notice = saved_notice(&done);
    let form = RepForm::of(rep, &r.value, ports.clock().now());
    let page = FormPage { routing: &r, existing: Some(&rep.id), status: StatusCode::OK, notice: notice.as_deref() };
    page.render(ports, &signed, &form, &Errors::default()).await
}

/// `POST /console/admin/reps/new`: adds the rep as the next routing version.
pub async fn create<P: Ports>(
    axum::extract::State(console): St<P>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    save(&*console.ports, &signed, None, &headers, &body).await
}

/// `POST /console/admin/reps/{id}`: changes the rep as the next routing version.
pub async fn update<P: Ports>(
    axum::extract::State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    save(&*console.ports, &signed, Some(raw), &headers, &body).await
}

async fn save<P: Ports>(
    ports: &P,
    signed: &Signed,
    existing: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let fields = match posted(ports, signed, headers, body) {
        Ok(f) => f,
        Err(page) => return *page,
    };
    let r = match routing(ports, signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    if let Some(id) = &existing
        && !r.value.reps.iter().any(|x| &x.id == id)
    {
        return not_found(signed);
    }
    let now = ports.clock().now();
    let mut form = RepForm::posted(&fields, &r.value);
    if let Some(id) = &existing {
        // The id is the address's, not a field of the form.
        form.id = id.clone();
    }
    let mut errors = Errors::default();
    let id = existing.clone().unwrap_or_else(|| form.id.clone());
    if existing.is_none() {
        if id == "new" {
            errors.add("id", "`new` is the address of this form; choose another id");
        } else if r.value.reps.iter().any(|x| x.id == id) {
            errors.add("id", "a rep already has this id; choose another");
        }
    }
    let stored = existing.as_ref().and_then(|id| r.value.reps.iter().find(|x| &x.id == id));
    let rep = parse(&form, &id, stored, now, &mut errors);
    let memberships = memberships(&form, &rep, &r.value, &mut errors);
    let page =
        FormPage { routing: &r, existing: existing.as_deref(), status: StatusCode::UNPROCESSABLE_ENTITY, notice: None };
    if !errors.is_empty() {
        return page.render(ports, signed, &form, &errors).await;
    }
    let creating = existing.is_none();
    let index = AtomicUsize::new(usize::MAX);
    let saved = config_docs::save::<P, RoutingConfig>(ports, |mut routing| {
        let i = match (routing.reps.iter().position(|x| x.id == rep.id), creating) {
            (Some(_), true) => return Err(ApiError::invalid("id", "a rep already has this id; choose another")),
            (None, false) => return Err(ApiError::not_found("rep_not_found", "The rep was removed meanwhile.")),
            (Some(i), false) => {
                routing.reps[i] = rep.clone();
                i
            }
            (None, true) => {
                routing.reps.push(rep.clone());
                routing.reps.len() - 1
            }
        };
        index.store(i, Ordering::Relaxed);
        for team in &mut routing.teams {
            if let Some(w) = memberships.get(&team.id) {
                set_member(team, &rep.id, *w);
            }
        }
        Ok(routing)
    })
    .await;
    match saved {
        Ok(s) => {
            let done = if s.unchanged { "unchanged" } else { "saved" };
            let v = s.version.to_string();
            see_other(&format!("/console/admin/reps/{}?{}", rep.id, query(&[("done", done), ("v", &v)])))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => not_found(signed),
        Err(e) => {
            let status = match refusal_status(signed, &e) {
                Ok(s) => s,
                Err(page) => return *page,
            };
            let i = index.load(Ordering::Relaxed);
            errors.add_api(&e, |p| rep_field(p, (i != usize::MAX).then_some(i), &rep.id));
            FormPage { status, ..page }.render(ports, signed, &form, &errors).await
        }
    }
}

/// The rep form page: what it shows besides the form's own fields.
#[derive(Clone, Copy)]
struct FormPage<'a> {
    routing: &'a Effective<RoutingConfig>,
    /// The rep's id; `None` for a new rep.
    existing: Option<&'a str>,
    status: StatusCode,
    notice: Option<&'a str>,
}

impl FormPage<'_> {
    async fn render<P: Ports>(self, ports: &P, signed: &Signed, form: &RepForm, errors: &Errors) -> Response {
        let current = self.existing.and_then(|id| self.routing.value.reps.iter().find(|x| x.id == id));
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
        let teams: Vec<Value> = self
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
        let action = match self.existing {
            Some(id) => format!("/console/admin/reps/{id}"),
            None => "/console/admin/reps/new".to_string(),
        };
        signed.page(
            self.status,
            "admin_rep.html",
            json!({
                "heading": current.map_or("Add a rep", |r| r.name.as_str()),
                "creating": self.existing.is_none(),
                "action": action,
                "form": form,
                "errors": errors.json(),
                "teams": teams,
                "days": days,
                "zones": zone_names(),
                "open": open,
                "fallback": current.is_some_and(|r| r.id == self.routing.value.fallback_owner),
                "version": version_words(self.routing),
                "notice": self.notice,
                "max_capacity": MAX_CAPACITY,
                "max_weight": MAX_WEIGHT,
                "max_name": MAX_NAME_CHARS,
            }),
        )
    }
}
