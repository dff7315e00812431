//! What the rep form and the team form share: the form for a new or a stored entry of the
//! routing, and the POST that adds (`/console/admin/{reps,teams}/new`) or changes (`…/{id}`) one.
//! A POST checks the form and the role, reads the routing in force, refuses an id that is taken
//! (or `new`, the form's own address), and stores the whole routing with `config_docs::save` as
//! the next version, as the JSON API's `PUT` does. A refusal of the API's rules goes back on the
//! form at the field its path names. What differs between reps and teams is their [`Entry`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use leadflow_core::ports::{Clock, Ports};
use leadflow_core::routing::RoutingConfig;

use super::{Done, Errors, Fields, St, admin_routing, posted, refusal_status, routing, saved_notice};
use crate::config_docs::{self, Effective};
use crate::console::{Signed, query, see_other};
use crate::error::ApiError;

/// A kind of routing entry with its own form: reps and teams.
pub(crate) trait Entry {
    /// `rep` or `team`: in the pages' words and the addresses (`/console/admin/{NOUN}s/…`).
    const NOUN: &'static str;
    /// The API's code for an entry removed while its form was open.
    const GONE: &'static str;
    /// The form as typed (or as the entry stands), every field as text.
    type Form: Send + Sync;
    /// What a posted form asks for, once checked.
    type Asked: Send + Sync;

    /// Whether the routing has an entry of this kind with this id.
    fn exists(routing: &RoutingConfig, id: &str) -> bool;
    /// Where the entry `id` stands in `routing`'s list of this kind.
    fn position(routing: &RoutingConfig, id: &str) -> Option<usize>;
    fn blank(routing: &RoutingConfig) -> Self::Form;
    /// The form of the stored entry `id`, if there is one.
    fn of(routing: &RoutingConfig, id: &str, now: DateTime<Utc>) -> Option<Self::Form>;
    fn posted(fields: &Fields, routing: &RoutingConfig) -> Self::Form;
    fn id_mut(form: &mut Self::Form) -> &mut String;
    /// Checks the form for the entry `id` (`existing`: the one it changes); each problem goes to
    /// `errors` at its field.
    fn check(
        form: &Self::Form,
        id: &str,
        existing: Option<&str>,
        routing: &RoutingConfig,
        now: DateTime<Utc>,
        errors: &mut Errors,
    ) -> Self::Asked;
    /// Puts what was asked into `routing` (the version a save attempt read) at `found`, its
    /// place there; the index it took.
    fn apply(
        asked: &Self::Asked,
        routing: &mut RoutingConfig,
        found: Option<usize>,
        creating: bool,
    ) -> Result<usize, ApiError>;
    /// The form field of an API error's path (`index`: the entry's place in the whole routing,
    /// when the save got that far), or `None` for the top of the form.
    fn field(asked: &Self::Asked, path: &str, index: Option<usize>) -> Option<String>;
    fn render<P: Ports>(
        page: FormPage<'_>,
        ports: &P,
        signed: &Signed,
        form: &Self::Form,
        errors: &Errors,
    ) -> impl Future<Output = Response> + Send;
}

/// The entry form page: what it shows besides the form's own fields.
#[derive(Clone, Copy)]
pub(crate) struct FormPage<'a> {
    pub(crate) routing: &'a Effective<RoutingConfig>,
    /// The entry's id; `None` for a new one.
    pub(crate) existing: Option<&'a str>,
    pub(crate) status: StatusCode,
    pub(crate) notice: Option<&'a str>,
}

impl FormPage<'_> {
    /// The form's address: where it posts to.
    pub(crate) fn action<K: Entry>(&self) -> String {
        match self.existing {
            Some(id) => format!("/console/admin/{}s/{id}", K::NOUN),
            None => format!("/console/admin/{}s/new", K::NOUN),
        }
    }
}

pub(crate) fn not_found<K: Entry>(signed: &Signed) -> Response {
    let noun = K::NOUN;
    signed.refusal(
        StatusCode::NOT_FOUND,
        &format!("No such {noun}"),
        &format!("No {noun} has this id. Pick one from the list of {noun}s."),
    )
}

/// Puts `item` at `found` in `list` (a change) or at its end (an addition); the index it took.
/// Refuses an addition whose id is taken and a change of an entry removed meanwhile.
pub(crate) fn place<K: Entry, T>(
    list: &mut Vec<T>,
    found: Option<usize>,
    creating: bool,
    item: T,
) -> Result<usize, ApiError> {
    match (found, creating) {
        (Some(_), true) => Err(ApiError::invalid("id", format!("a {} already has this id; choose another", K::NOUN))),
        (None, false) => Err(ApiError::not_found(K::GONE, format!("The {} was removed meanwhile.", K::NOUN))),
        (Some(i), false) => {
            list[i] = item;
            Ok(i)
        }
        (None, true) => {
            list.push(item);
            Ok(list.len() - 1)
        }
    }
}

/// `GET /console/admin/{reps,teams}/new`: the form for a new entry.
pub(crate) async fn new_form<P: Ports, K: Entry>(State(console): St<P>, signed: Signed) -> Response {
    let ports = &*console.ports;
    let r = match admin_routing(ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let page = FormPage { routing: &r, existing: None, status: StatusCode::OK, notice: None };
    K::render(page, ports, &signed, &K::blank(&r.value), &Errors::default()).await
}

/// `GET /console/admin/{reps,teams}/{id}`: the entry's form, with what the last save did.
pub(crate) async fn edit<P: Ports, K: Entry>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let ports = &*console.ports;
    let r = match admin_routing(ports, &signed).await {
        Ok(r) => r,
        Err(page) => return *page,
    };
    let Some(form) = K::of(&r.value, &raw, ports.clock().now()) else { return not_found::<K>(&signed) };
    let notice = saved_notice(&done);
    let page = FormPage { routing: &r, existing: Some(&raw), status: StatusCode::OK, notice: notice.as_deref() };
    K::render(page, ports, &signed, &form, &Errors::default()).await
}

/// `POST /console/admin/{reps,teams}/new`: adds the entry (a team last in matching order) as
/// the next routing version.
pub(crate) async fn create<P: Ports, K: Entry>(
    State(console): St<P>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    save::<P, K>(&*console.ports, &signed, None, &headers, &body).await
}

/// `POST /console/admin/{reps,teams}/{id}`: changes the entry as the next routing version.
pub(crate) async fn update<P: Ports, K: Entry>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    save::<P, K>(&*console.ports, &signed, Some(raw), &headers, &body).await
}

async fn save<P: Ports, K: Entry>(
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
        && !K::exists(&r.value, id)
    {
        return not_found::<K>(signed);
    }
    let now = ports.clock().now();
    let mut form = K::posted(&fields, &r.value);
    if let Some(id) = &existing {
        // The id is the address's, not a field of the form.
        *K::id_mut(&mut form) = id.clone();
    }
    let mut errors = Errors::default();
    let id = existing.clone().unwrap_or_else(|| K::id_mut(&mut form).clone());
    if existing.is_none() {
        if id == "new" {
            errors.add("id", "`new` is the address of this form; choose another id");
        } else if K::exists(&r.value, &id) {
            errors.add("id", format!("a {} already has this id; choose another", K::NOUN));
        }
    }
    let asked = K::check(&form, &id, existing.as_deref(), &r.value, now, &mut errors);
    let page =
        FormPage { routing: &r, existing: existing.as_deref(), status: StatusCode::UNPROCESSABLE_ENTITY, notice: None };
    if !errors.is_empty() {
        return K::render(page, ports, signed, &form, &errors).await;
    }
    let creating = existing.is_none();
    let index = AtomicUsize::new(usize::MAX);
    let saved = config_docs::save::<P, RoutingConfig>(ports, |mut routing| {
        let found = K::position(&routing, &id);
        let i = K::apply(&asked, &mut routing, found, creating)?;
        index.store(i, Ordering::Relaxed);
        Ok(routing)
    })
    .await;
    match saved {
        Ok(s) => {
            let done = if s.unchanged { "unchanged" } else { "saved" };
            let v = s.version.to_string();
            see_other(&format!("/console/admin/{}s/{id}?{}", K::NOUN, query(&[("done", done), ("v", &v)])))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => not_found::<K>(signed),
        Err(e) => {
            let status = match refusal_status(signed, &e) {
                Ok(s) => s,
                Err(page) => return *page,
            };
            let i = index.load(Ordering::Relaxed);
            errors.add_api(&e, |p| K::field(&asked, p, (i != usize::MAX).then_some(i)));
            K::render(FormPage { status, ..page }, ports, signed, &form, &errors).await
        }
    }
}
