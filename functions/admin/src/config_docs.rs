//! Reps, teams and rules as versioned documents.
//!
//! The routing in force is the latest `routing` document (the JSON of a [`RoutingConfig`]) when
//! one exists, else the `routing.toml` the functions were deployed with; the same for `scoring`
//! ([`ScoringRules`]). Every write reads that, changes it, compiles the whole (so nothing that
//! would fail at routing time is stored) and stores it as the next version; when another write
//! got there first it starts again from the newer version, and after [`DOC_ATTEMPTS`] answers
//! 409. Every function picks the documents up within `leadflow_app::live::REFRESH_EVERY`;
//! the process that stored one refreshes at once.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use leadflow_core::config::ConfigSources;
use leadflow_core::model::Document;
use leadflow_core::normalize::normalize_email;
use leadflow_core::ports::{Clock, Ports, WriteOutcome};
use leadflow_core::routing::{Absence, Rep, RoutingConfig, Team};
use leadflow_core::scoring::ScoringRules;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult, config_error};
use crate::extract::{Authorized, JsonBody, PathParams, RawBody, config_id, from_json, from_value};

/// How many times a write starts again after losing a race for the next version.
pub const DOC_ATTEMPTS: usize = 5;

type St<P> = State<Arc<AppState<P>>>;

/// A rule set kept as a versioned document.
pub trait ConfigDoc: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync {
    /// The document's name in the store.
    const NAME: &'static str;
    /// The deployed configuration's version of it.
    fn from_sources(sources: &ConfigSources) -> Result<Self, String>;
    /// Compiles it, naming the field of the first problem.
    fn validate(&self) -> ApiResult<()>;
}

impl ConfigDoc for RoutingConfig {
    const NAME: &'static str = leadflow_app::live::ROUTING;

    fn from_sources(sources: &ConfigSources) -> Result<Self, String> {
        toml::from_str(&sources.routing).map_err(|e| format!("routing.toml: {e}"))
    }

    fn validate(&self) -> ApiResult<()> {
        for (i, rep) in self.reps.iter().enumerate() {
            check_rep(&format!("reps[{i}]."), rep)?;
        }
        for (i, team) in self.teams.iter().enumerate() {
            check_team(&format!("teams[{i}]."), team, self)?;
        }
        self.compile().map(|_| ()).map_err(|e| config_error(&e))
    }
}

impl ConfigDoc for ScoringRules {
    const NAME: &'static str = leadflow_app::live::SCORING;

    fn from_sources(sources: &ConfigSources) -> Result<Self, String> {
        toml::from_str(&sources.scoring).map_err(|e| format!("scoring.toml: {e}"))
    }

    fn validate(&self) -> ApiResult<()> {
        self.compile().map(|_| ()).map_err(|e| config_error(&e))
    }
}

/// A rule set and where it came from.
pub struct Effective<D> {
    pub value: D,
    /// The document version; `None` when it is the deployed file's.
    pub version: Option<u32>,
    pub saved_at: Option<DateTime<Utc>>,
}

/// The rule set in force.
pub async fn effective<P: Ports, D: ConfigDoc>(ports: &P) -> ApiResult<Effective<D>> {
    match ports.store().document(D::NAME, None).await? {
        Some(doc) => {
            let value = serde_json::from_str(&doc.body).map_err(|e| {
                ApiError::unavailable(&format!("stored document {} v{} cannot be read: {e}", D::NAME, doc.version))
            })?;
            Ok(Effective { value, version: Some(doc.version), saved_at: Some(doc.saved_at) })
        }
        None => {
            let value = D::from_sources(&ports.config().sources).map_err(|e| ApiError::unavailable(&e))?;
            Ok(Effective { value, version: None, saved_at: None })
        }
    }
}

/// What a write stored.
pub struct Saved<D> {
    pub value: D,
    pub version: u32,
    /// The edit changed nothing, so no version was added.
    pub unchanged: bool,
}

/// Applies `edit` to the rule set in force and stores the result as its next version.
pub async fn save<P: Ports, D: ConfigDoc>(ports: &P, edit: impl Fn(D) -> ApiResult<D>) -> ApiResult<Saved<D>> {
    for _ in 0..DOC_ATTEMPTS {
        let current = effective::<P, D>(ports).await?;
        let next = edit(current.value.clone())?;
        next.validate()?;
        if let Some(version) = current.version
            && next == current.value
        {
            return Ok(Saved { value: next, version, unchanged: true });
        }
        let version = current.version.unwrap_or(0) + 1;
        let body = serde_json::to_string(&next)
            .map_err(|e| ApiError::invalid("body", format!("cannot be stored as JSON: {e}")))?;
        let doc = Document { name: D::NAME.to_string(), version, body, saved_at: ports.clock().now() };
        match ports.store().put_document(&doc).await? {
            WriteOutcome::Written => {
                // This process uses it at once; the others within `live::REFRESH_EVERY`.
                leadflow_app::live::refresh(ports, true).await;
                return Ok(Saved { value: next, version, unchanged: false });
            }
            WriteOutcome::VersionConflict => continue,
        }
    }
    Err(ApiError::conflict(
        "version_conflict",
        format!("The {} rules kept changing while this change was being saved; try again.", D::NAME),
    ))
}

fn saved_response<D>(saved: &Saved<D>, what: Value) -> Response {
    let mut body = json!({ "version": saved.version, "unchanged": saved.unchanged });
    if let (Some(obj), Value::Object(extra)) = (body.as_object_mut(), what) {
        obj.extend(extra);
    }
    axum::Json(body).into_response()
}

// --- reps ---------------------------------------------------------------------------------

const REP_FIELDS: &[&str] =
    &["id", "name", "email", "time_zone", "working_hours", "capacity", "active", "out_of_office"];
const TEAM_FIELDS: &[&str] = &["id", "name", "when", "members"];
/// Longest name of a rep or team.
pub const MAX_NAME_CHARS: usize = 200;
use leadflow_core::ports::{Assignments, Documents};
/// The routing rules' own bounds, checked by the core when the rules compile.
pub use leadflow_core::routing::{MAX_CAPACITY, MAX_WEIGHT};

fn check_name(field: &str, name: &str) -> ApiResult<()> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, format!("must be one line of at most {MAX_NAME_CHARS} characters")));
    }
    Ok(())
}

/// What compiling would say about one rep, every problem with its field named: the console
/// shows them all at once, the JSON API the first.
pub(crate) fn rep_problems(prefix: &str, rep: &Rep) -> Vec<ApiError> {
    let mut out: Vec<ApiError> = Vec::new();
    out.extend(config_id(&format!("{prefix}id"), &rep.id).err());
    out.extend(check_name(&format!("{prefix}name"), &rep.name).err());
    out.extend(normalize_email(&rep.email).err().map(|p| ApiError::invalid(format!("{prefix}email"), p.message)));
    if let Err(unknown) = rep.time_zone.parse::<leadflow_core::zone::Zone>() {
        out.push(ApiError::invalid(format!("{prefix}time_zone"), unknown.to_string()));
    }
    if let Some(hours) = &rep.working_hours {
        if hours.days.is_empty() {
            out.push(ApiError::invalid(format!("{prefix}working_hours.days"), "name at least one day"));
        }
        if hours.start == hours.end {
            out.push(ApiError::invalid(
                format!("{prefix}working_hours.end"),
                "equals start: a shift of no time; leave working_hours out for any time",
            ));
        }
    }
    if rep.capacity.is_some_and(|c| c > MAX_CAPACITY) {
        out.push(ApiError::invalid(
            format!("{prefix}capacity"),
            format!("must be at most {MAX_CAPACITY} open leads; leave it out for no limit"),
        ));
    }
    if let Some(a) = &rep.out_of_office
        && a.until <= a.from
    {
        out.push(ApiError::invalid(format!("{prefix}out_of_office.until"), "must be after from"));
    }
    out
}

fn check_rep(prefix: &str, rep: &Rep) -> ApiResult<()> {
    rep_problems(prefix, rep).into_iter().next().map_or(Ok(()), Err)
}

/// What compiling would say about one team, every problem with its field named.
pub(crate) fn team_problems(prefix: &str, team: &Team, routing: &RoutingConfig) -> Vec<ApiError> {
    let mut out: Vec<ApiError> = Vec::new();
    out.extend(config_id(&format!("{prefix}id"), &team.id).err());
    out.extend(check_name(&format!("{prefix}name"), &team.name).err());
    for (i, m) in team.members.iter().enumerate() {
        if !routing.reps.iter().any(|r| r.id == m.rep) {
            out.push(ApiError::invalid(format!("{prefix}members[{i}].rep"), format!("{} is not a rep", m.rep)));
        }
        if m.weight == 0 {
            out.push(ApiError::invalid(
                format!("{prefix}members[{i}].weight"),
                "must be at least 1; remove the member instead",
            ));
        } else if m.weight > MAX_WEIGHT {
            out.push(ApiError::invalid(
                format!("{prefix}members[{i}].weight"),
                format!("must be at most {MAX_WEIGHT}"),
            ));
        }
    }
    for (i, c) in team.when.iter().enumerate() {
        out.extend(c.compile("when").err().map(|e| match e {
            leadflow_core::error::ConfigError::Invalid { message, .. }
            | leadflow_core::error::ConfigError::Parse { message, .. } => {
                ApiError::invalid(format!("{prefix}when[{i}]"), message)
            }
        }));
    }
    out
}

fn check_team(prefix: &str, team: &Team, routing: &RoutingConfig) -> ApiResult<()> {
    team_problems(prefix, team, routing).into_iter().next().map_or(Ok(()), Err)
}

/// `existing` with the fields of `patch` over it (a `null` clears an optional field) and `id`
/// set: the body of a create-or-update.
fn merged<T: Serialize + DeserializeOwned>(
    existing: Option<&T>,
    patch: Map<String, Value>,
    id: &str,
    known: &[&str],
) -> ApiResult<T> {
    let mut obj = match existing.map(serde_json::to_value) {
        Some(Ok(Value::Object(o))) => o,
        _ => Map::new(),
    };
    for (k, v) in patch {
        if !known.contains(&k.as_str()) {
            return Err(ApiError::invalid(k, format!("unknown field; known fields are {}", known.join(", "))));
        }
        if k == "id" && v.as_str() != Some(id) {
            return Err(ApiError::invalid("id", "differs from the id in the path"));
        }
        obj.insert(k, v);
    }
    obj.insert("id".into(), Value::String(id.to_string()));
    from_value(Value::Object(obj))
}

/// `GET /admin/reps`: the reps in force, each with its open leads.
pub async fn list_reps<P: Ports>(_: Authorized, State(st): St<P>) -> ApiResult<Response> {
    let routing = effective::<P, RoutingConfig>(&*st.ports).await?;
    let loads = st.ports.store().rep_loads().await?;
    let reps: Vec<Value> = routing
        .value
        .reps
        .iter()
        .map(|r| rep_view(r, loads.get(&r.id).copied().unwrap_or(0), &routing.value))
        .collect();
    Ok(axum::Json(json!({
        "document": RoutingConfig::NAME,
        "version": routing.version,
        "saved_at": routing.saved_at,
        "fallback_owner": routing.value.fallback_owner,
        "reps": reps,
    }))
    .into_response())
}

fn rep_view(rep: &Rep, open_leads: u32, routing: &RoutingConfig) -> Value {
    let mut v = serde_json::to_value(rep).unwrap_or(Value::Null);
    let teams: Vec<&str> =
        routing.teams.iter().filter(|t| t.members.iter().any(|m| m.rep == rep.id)).map(|t| t.id.as_str()).collect();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("open_leads".into(), json!(open_leads));
        obj.insert("teams".into(), json!(teams));
    }
    v
}

fn rep_not_found(id: &str) -> ApiError {
    ApiError::not_found("rep_not_found", format!("No rep has the id {id}."))
}

/// `GET /admin/reps/{id}`.
pub async fn get_rep<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let routing = effective::<P, RoutingConfig>(&*st.ports).await?;
    let rep = routing.value.reps.iter().find(|r| r.id == id).ok_or_else(|| rep_not_found(&id))?;
    let loads = st.ports.store().rep_loads().await?;
    Ok(axum::Json(json!({
        "version": routing.version,
        "rep": rep_view(rep, loads.get(&rep.id).copied().unwrap_or(0), &routing.value),
    }))
    .into_response())
}

/// `PUT /admin/reps/{id}` `{"name", "email", "time_zone", "working_hours", "capacity",
/// "active", "out_of_office"}`: creates the rep, or changes the fields given (a `null` clears an
/// optional one). A new rep needs a name and an email. Weights belong to team memberships
/// (`PUT /admin/teams/{id}`).
pub async fn put_rep<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<Map<String, Value>>,
) -> ApiResult<Response> {
    let id = config_id("id", &id)?;
    let saved = save::<P, RoutingConfig>(&*st.ports, |mut routing| {
        let at = routing.reps.iter().position(|r| r.id == id);
        let rep: Rep = merged(at.map(|i| &routing.reps[i]), patch.clone(), &id, REP_FIELDS)?;
        check_rep("", &rep)?;
        match at {
            Some(i) => routing.reps[i] = rep,
            None => routing.reps.push(rep),
        }
        Ok(routing)
    })
    .await?;
    let rep = saved.value.reps.iter().find(|r| r.id == id);
    Ok(saved_response(&saved, json!({ "document": RoutingConfig::NAME, "rep": rep })))
}

/// `POST /admin/reps/{id}/ooo` `{"from", "until"}` (RFC 3339): the rep takes no leads between.
pub async fn set_ooo<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(absence): JsonBody<Absence>,
) -> ApiResult<Response> {
    if absence.until <= absence.from {
        return Err(ApiError::invalid("until", "must be after from"));
    }
    set_absence(&*st.ports, &id, Some(absence)).await
}

/// `DELETE /admin/reps/{id}/ooo`: the rep is back.
pub async fn clear_ooo<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    set_absence(&*st.ports, &id, None).await
}

async fn set_absence<P: Ports>(ports: &P, id: &str, absence: Option<Absence>) -> ApiResult<Response> {
    let saved = save::<P, RoutingConfig>(ports, |mut routing| {
        let rep = routing.reps.iter_mut().find(|r| r.id == id).ok_or_else(|| rep_not_found(id))?;
        rep.out_of_office = absence.clone();
        Ok(routing)
    })
    .await?;
    let rep = saved.value.reps.iter().find(|r| r.id == id);
    Ok(saved_response(&saved, json!({ "document": RoutingConfig::NAME, "rep": rep })))
}

// --- teams --------------------------------------------------------------------------------

/// `GET /admin/teams`: the teams in force, in matching order.
pub async fn list_teams<P: Ports>(_: Authorized, State(st): St<P>) -> ApiResult<Response> {
    let routing = effective::<P, RoutingConfig>(&*st.ports).await?;
    Ok(axum::Json(json!({ "version": routing.version, "teams": routing.value.teams })).into_response())
}

/// `GET /admin/teams/{id}`.
pub async fn get_team<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let routing = effective::<P, RoutingConfig>(&*st.ports).await?;
    let team = routing
        .value
        .teams
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found("team_not_found", format!("No team has the id {id}.")))?;
    Ok(axum::Json(json!({ "version": routing.version, "team": team })).into_response())
}

/// `PUT /admin/teams/{id}` `{"name", "when": [conditions], "members": [{"rep", "weight"}]}`:
/// creates the team (last in matching order; reorder with `PUT /admin/rules/routing`) or
/// changes the fields given.
pub async fn put_team<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<Map<String, Value>>,
) -> ApiResult<Response> {
    let id = config_id("id", &id)?;
    let saved = save::<P, RoutingConfig>(&*st.ports, |mut routing| {
        let at = routing.teams.iter().position(|t| t.id == id);
        let team: Team = merged(at.map(|i| &routing.teams[i]), patch.clone(), &id, TEAM_FIELDS)?;
        check_team("", &team, &routing)?;
        match at {
            Some(i) => routing.teams[i] = team,
            None => routing.teams.push(team),
        }
        Ok(routing)
    })
    .await?;
    let team = saved.value.teams.iter().find(|t| t.id == id);
    Ok(saved_response(&saved, json!({ "document": RoutingConfig::NAME, "team": team })))
}

// --- whole rule sets ----------------------------------------------------------------------

async fn get_doc<P: Ports, D: ConfigDoc>(ports: &P) -> ApiResult<Response> {
    let current = effective::<P, D>(ports).await?;
    let mut body = json!({
        "document": D::NAME,
        "version": current.version,
        "saved_at": current.saved_at,
        "source": if current.version.is_some() { "document" } else { "deployed file" },
    });
    body[D::NAME] = serde_json::to_value(&current.value).unwrap_or(Value::Null);
    Ok(axum::Json(body).into_response())
}

/// A whole rule set from a body: JSON, or TOML (as in the deployed files) when the content type
/// says so.
fn parse_doc<D: ConfigDoc>(body: &RawBody) -> ApiResult<D> {
    if body.content_type.contains("toml") {
        let text = std::str::from_utf8(&body.bytes)
            .map_err(|_| ApiError::bad_request("malformed_body", "The body is not UTF-8 text."))?;
        let value: Value = toml::from_str(text)
            .map_err(|e| ApiError::bad_request("malformed_body", format!("The body is not valid TOML: {e}")))?;
        from_value(value)
    } else {
        from_json(&body.bytes)
    }
}

async fn put_doc<P: Ports, D: ConfigDoc>(ports: &P, body: RawBody) -> ApiResult<Response> {
    let doc: D = parse_doc(&body)?;
    let saved = save::<P, D>(ports, |_| Ok(doc.clone())).await?;
    let mut what = json!({ "document": D::NAME });
    what[D::NAME] = serde_json::to_value(&saved.value).unwrap_or(Value::Null);
    Ok(saved_response(&saved, what))
}

/// `GET /admin/rules/routing`: the whole routing in force.
pub async fn get_routing<P: Ports>(_: Authorized, State(st): St<P>) -> ApiResult<Response> {
    get_doc::<P, RoutingConfig>(&*st.ports).await
}

/// `PUT /admin/rules/routing`: replaces the whole routing (JSON, or TOML with a `toml` content
/// type).
pub async fn put_routing<P: Ports>(_: Authorized, State(st): St<P>, body: RawBody) -> ApiResult<Response> {
    put_doc::<P, RoutingConfig>(&*st.ports, body).await
}

/// `GET /admin/rules/scoring`: the scoring rules in force.
pub async fn get_scoring<P: Ports>(_: Authorized, State(st): St<P>) -> ApiResult<Response> {
    get_doc::<P, ScoringRules>(&*st.ports).await
}

/// `PUT /admin/rules/scoring`: replaces the scoring rules (JSON, or TOML with a `toml` content
/// type).
pub async fn put_scoring<P: Ports>(_: Authorized, State(st): St<P>, body: RawBody) -> ApiResult<Response> {
    put_doc::<P, ScoringRules>(&*st.ports, body).await
}
