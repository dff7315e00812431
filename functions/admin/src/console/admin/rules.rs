//! The scoring and routing rules for admins: both rule sets with their versions, and an editor
//! for each (the rules in force as TOML). A draft can be tried on the last 1,000 leads — the
//! core's `what_if` replays them through the rules in force and through the draft, and the page
//! counts what changes, with examples and their new reasons; nothing is written — or saved as
//! the next version through `config_docs::save`, as `PUT /admin/rules/{scoring,routing}` saves it.
//! A draft that does not read or compile is shown again with its problem at the field and line
//! (422), and nothing is stored.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use leadflow_core::error::StoreError;
use leadflow_core::local_time::in_words;
use leadflow_core::model::{Activity, Lead, LeadId};
use leadflow_core::ports::{Clock, LeadStore, Ports};
use leadflow_core::routing::RoutingConfig;
use leadflow_core::scoring::ScoringRules;
use leadflow_core::what_if::{Changes, PastLead, RoutingState, Rules, WhatIf, what_if};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use super::Done;
use super::rules_toml::{self, EditorError, MAX_TOML_BYTES, RuleSet};
use crate::config_docs::{self, Effective};
use crate::console::session::Role;
use crate::console::{Console, Signed, query, see_other, thousands};
use leadflow_core::ports::{Assignments, Trails};

type St<P> = State<Arc<Console<P>>>;

/// How many of the newest leads a draft is tried on.
pub const SAMPLE: usize = 1000;
/// Leads read per store call while gathering them.
const PAGE: usize = 250;
/// Examples shown per kind of change.
pub const EXAMPLES: usize = 10;
/// Moves named in a summary line; the rest are counted.
const MOVES_SHOWN: usize = 6;

/// A rule set the pages edit, with what its page says and which side of the replay it changes.
pub trait Editable: RuleSet {
    const TITLE: &'static str;
    /// The rules of the draft's side: this draft with the other rule set in force.
    fn with(self, scoring: &ScoringRules, routing: &RoutingConfig) -> (ScoringRules, RoutingConfig);
}

impl Editable for ScoringRules {
    const TITLE: &'static str = "Scoring rules";
    fn with(self, _: &ScoringRules, routing: &RoutingConfig) -> (ScoringRules, RoutingConfig) {
        (self, routing.clone())
    }
}

impl Editable for RoutingConfig {
    const TITLE: &'static str = "Routing rules";
    fn with(self, scoring: &ScoringRules, _: &RoutingConfig) -> (ScoringRules, RoutingConfig) {
        (scoring.clone(), self)
    }
}

/// The page for a person who is not an admin, if this one is not.
fn refused(signed: &Signed) -> Option<Response> {
    (signed.session.role != Role::Admin).then(|| {
        signed.forbidden(
            "Only admins change the scoring and routing rules",
            "Your role does not include this page. Ask an admin to make the change.",
        )
    })
}

/// The rule set in force, or the page that says it cannot be read.
async fn in_force<P: Ports, D: RuleSet>(ports: &P, signed: &Signed) -> Result<Effective<D>, Box<Response>> {
    config_docs::effective::<P, D>(ports).await.map_err(|e| {
        warn!(rules = D::KIND, error = %e.message, "a rules page could not read the rules in force");
        Box::new(signed.unavailable())
    })
}

fn version_words<D>(e: &Effective<D>) -> String {
    match (e.version, e.saved_at) {
        (Some(v), Some(at)) => format!("Version {v}, saved {}.", in_words(at, "UTC")),
        (Some(v), None) => format!("Version {v}."),
        _ => "As deployed (the file); the first save makes version 1.".into(),
    }
}

/// `GET /console/admin/rules`: both rule sets, their versions, links to edit them.
pub async fn overview<P: Ports>(State(console): St<P>, signed: Signed) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let (scoring, routing) =
        match (in_force::<P, ScoringRules>(ports, &signed).await, in_force::<P, RoutingConfig>(ports, &signed).await) {
            (Ok(s), Ok(r)) => (s, r),
            (Err(page), _) | (_, Err(page)) => return *page,
        };
    let s = &scoring.value;
    let r = &routing.value;
    let fallback = r.reps.iter().find(|x| x.id == r.fallback_owner).map_or(r.fallback_owner.as_str(), |x| &x.name);
    signed.page(
        StatusCode::OK,
        "rules.html",
        json!({
            "scoring": {
                "version": version_words(&scoring),
                "mql": s.thresholds.mql.to_string(),
                "sql": s.thresholds.sql.to_string(),
                "fit": s.fit.len(),
                "behaviour": s.behaviour.len(),
                "grades": s.grades.iter().map(|g| format!("{:?} from {}", g.grade, g.min_fit)).collect::<Vec<_>>(),
            },
            "routing": {
                "version": version_words(&routing),
                "reps": r.reps.len(),
                "teams": r.teams.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
                "fallback": fallback,
                "sla_hours": r.sla_hours.to_string(),
            },
        }),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    toml: String,
    #[serde(default)]
    action: String,
    /// The version the editor was opened on (empty: the deployed file's).
    #[serde(default)]
    base: String,
}

/// What an editor page shows besides the rules in force.
#[derive(Default)]
struct View<'a> {
    toml: &'a str,
    error: Option<EditorError>,
    notice: Option<String>,
    result: Option<Value>,
}

fn base_of(v: Option<u32>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn editor<D: Editable>(signed: &Signed, status: StatusCode, current: &Effective<D>, view: View<'_>) -> Response {
    // The line the error is on, as typed, so that it can be found in a long draft.
    let excerpt = view
        .error
        .as_ref()
        .and_then(|e| e.line)
        .and_then(|n| view.toml.lines().nth(n.saturating_sub(1)))
        .map(|l| l.chars().take(160).collect::<String>());
    signed.page(
        status,
        "rules_edit.html",
        json!({
            "kind": D::KIND,
            "title": D::TITLE,
            "version": version_words(current),
            "base": base_of(current.version),
            "next": current.version.unwrap_or(0) + 1,
            "toml": view.toml,
            "error": view.error,
            "excerpt": excerpt,
            "notice": view.notice,
            "result": view.result,
            "max_kib": MAX_TOML_BYTES / 1024,
            "sample": thousands(SAMPLE),
        }),
    )
}

async fn edit<P: Ports, D: Editable>(console: &Console<P>, signed: &Signed, done: &Done) -> Response {
    if let Some(page) = refused(signed) {
        return page;
    }
    let ports = &*console.ports;
    let current = match in_force::<P, D>(ports, signed).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    // The deployed file as written, comments and all; a saved version as TOML made from it.
    let text = match current.version {
        None => D::source(&ports.config().sources).to_string(),
        Some(_) => match rules_toml::to_toml(&current.value) {
            Ok(t) => t,
            Err(e) => {
                warn!(rules = D::KIND, error = %e, "the rules in force could not be written as TOML");
                return signed.unavailable();
            }
        },
    };
    let v = done.v.as_deref().and_then(|v| v.parse::<u32>().ok());
    let notice = match (done.done.as_deref(), v) {
        (Some("saved"), Some(v)) => Some(format!("Saved as version {v}.")),
        (Some("unchanged"), Some(v)) => Some(format!("Nothing changed: still version {v}.")),
        _ => None,
    };
    editor(signed, StatusCode::OK, &current, View { toml: &text, notice, ..View::default() })
}

/// `GET /console/admin/rules/scoring`.
pub async fn scoring<P: Ports>(State(console): St<P>, signed: Signed, Query(done): Query<Done>) -> Response {
    edit::<P, ScoringRules>(&console, &signed, &done).await
}

/// `GET /console/admin/rules/routing`.
pub async fn routing<P: Ports>(State(console): St<P>, signed: Signed, Query(done): Query<Done>) -> Response {
    edit::<P, RoutingConfig>(&console, &signed, &done).await
}

/// `POST /console/admin/rules/scoring`: try the draft (`action=try`) or save it (`action=save`).
pub async fn scoring_post<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    post::<P, ScoringRules>(&console, &signed, &headers, &body).await
}

/// `POST /console/admin/rules/routing`.
pub async fn routing_post<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    post::<P, RoutingConfig>(&console, &signed, &headers, &body).await
}

async fn post<P: Ports, D: Editable>(
    console: &Console<P>,
    signed: &Signed,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let ports = &*console.ports;
    let form: EditForm = match signed.form(ports, headers, body) {
        Ok(f) => f,
        Err(refused) => return *refused,
    };
    if let Some(page) = refused(signed) {
        return page;
    }
    let current = match in_force::<P, D>(ports, signed).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let text = form.toml.replace("\r\n", "\n");
    let draft: D = match rules_toml::parse(&text) {
        Ok(d) => d,
        Err(error) => {
            let view = View { toml: &text, error: Some(error), ..View::default() };
            return editor(signed, StatusCode::UNPROCESSABLE_ENTITY, &current, view);
        }
    };
    if form.action != "save" {
        return match tried(ports, draft).await {
            Ok(result) => {
                editor(signed, StatusCode::OK, &current, View { toml: &text, result: Some(result), ..View::default() })
            }
            Err(e) => {
                warn!(rules = D::KIND, error = %e, "a draft could not be tried");
                signed.unavailable()
            }
        };
    }
    if form.base.trim() != base_of(current.version) {
        // Someone saved since this editor opened; the page now names that version, so a second
        // click saves this draft over it knowingly.
        let error = EditorError {
            field: "toml".into(),
            line: None,
            column: None,
            message: format!(
                "The {} rules changed since this editor was opened ({}). Your draft was not saved; \
                 save again to replace that version with it, or open the rules again to start from it.",
                D::KIND,
                version_words(&current).trim_end_matches('.')
            ),
        };
        return editor(
            signed,
            StatusCode::CONFLICT,
            &current,
            View { toml: &text, error: Some(error), ..View::default() },
        );
    }
    match config_docs::save::<P, D>(ports, |_| Ok(draft.clone())).await {
        Ok(saved) => {
            let done = if saved.unchanged { "unchanged" } else { "saved" };
            info!(
                rules = D::KIND,
                version = saved.version,
                unchanged = saved.unchanged,
                "rules saved from the console"
            );
            let q = query(&[("done", done), ("v", &saved.version.to_string())]);
            see_other(&format!("/console/admin/rules/{}?{q}", D::KIND))
        }
        Err(e) if e.is_client_error() => {
            let status = e.status_code();
            let field = draft.path_of(e.field.as_deref().unwrap_or("toml"), &e.message);
            let error = EditorError { field, line: None, column: None, message: e.message };
            editor(signed, status, &current, View { toml: &text, error: Some(error), ..View::default() })
        }
        Err(e) => {
            warn!(rules = D::KIND, error = %e.message, "rules could not be saved");
            signed.unavailable()
        }
    }
}

/// Why a draft could not be tried: the store, or rules in force that no longer compile.
#[derive(Debug, thiserror::Error)]
enum TryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Rules(String),
}

impl From<crate::error::ApiError> for TryError {
    fn from(e: crate::error::ApiError) -> Self {
        TryError::Rules(e.message)
    }
}

/// The newest [`SAMPLE`] leads, newest first, erased leads left out.
async fn newest_leads<S: LeadStore>(store: &S) -> Result<Vec<Lead>, StoreError> {
    let mut leads = Vec::with_capacity(SAMPLE);
    let mut before: Option<LeadId> = None;
    while leads.len() < SAMPLE {
        let page = store.leads_before(before, PAGE.min(SAMPLE - leads.len())).await?;
        leads.extend(page.leads);
        match page.next.and_then(|n| n.parse().ok()) {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    leads.truncate(SAMPLE);
    Ok(leads)
}

/// The draft tried on the newest leads, as the page shows it.
async fn tried<P: Ports, D: Editable>(ports: &P, draft: D) -> Result<Value, TryError> {
    let store = ports.store();
    let scoring = config_docs::effective::<P, ScoringRules>(ports).await?.value;
    let routing = config_docs::effective::<P, RoutingConfig>(ports).await?.value;
    let (draft_scoring, draft_routing) = draft.with(&scoring, &routing);
    let rules = |e: leadflow_core::error::ConfigError| TryError::Rules(e.to_string());
    let (now_s, now_r) = (scoring.compile().map_err(rules)?, routing.compile().map_err(rules)?);
    // The side a draft leaves alone is the very same compiled rules, so that the replay can
    // decide once for both sides where they cannot differ.
    let new_s = if draft_scoring == scoring { None } else { Some(draft_scoring.compile().map_err(rules)?) };
    let new_r = if draft_routing == routing { None } else { Some(draft_routing.compile().map_err(rules)?) };

    let reading = Instant::now();
    let leads = newest_leads(store).await?;
    let mut state = RoutingState { loads: store.rep_loads().await?, ..RoutingState::default() };
    let teams: BTreeSet<&str> = routing.teams.iter().chain(&draft_routing.teams).map(|t| t.id.as_str()).collect();
    for team in teams {
        state.cursors.insert(team.to_string(), store.team_cursor(team).await?);
    }
    // Behaviour is scored from trails only when its rules change: otherwise the stored
    // behaviour points are the same on both sides, and 1,000 trail reads are saved.
    let behaviour_changes = draft_scoring.behaviour != scoring.behaviour;
    let mut trails: HashMap<LeadId, Vec<Activity>> = HashMap::new();
    if behaviour_changes {
        let ids: Vec<LeadId> = leads.iter().filter(|l| l.is_valid()).map(|l| l.id).collect();
        let read = store.trails(&ids).await?;
        trails.extend(ids.into_iter().zip(read));
    }
    let read = reading.elapsed();
    let past: Vec<PastLead<'_>> =
        leads.iter().map(|lead| PastLead { lead, activities: trails.get(&lead.id).map(Vec::as_slice) }).collect();
    let started = Instant::now();
    let answer = what_if(
        &past,
        Rules { scoring: &now_s, routing: &now_r },
        Rules { scoring: new_s.as_ref().unwrap_or(&now_s), routing: new_r.as_ref().unwrap_or(&now_r) },
        &state,
        ports.clock().now(),
        EXAMPLES,
    );
    let took = started.elapsed();
    info!(
        rules = D::KIND,
        leads = answer.leads,
        trails = behaviour_changes,
        read_micros = read.as_micros() as u64,
        replay_micros = took.as_micros() as u64,
        "a draft was tried"
    );
    Ok(view(&answer, &leads, behaviour_changes))
}

/// One kind of change as the page shows it: a summary line, and examples with the leads named.
fn dimension(what: &str, c: &Changes, total: usize, leads: &HashMap<LeadId, &Lead>) -> Value {
    let mut line = format!("{} of {} leads change {what}", thousands(c.changed), thousands(total));
    if !c.moves.is_empty() {
        let named: Vec<String> =
            c.moves.iter().take(MOVES_SHOWN).map(|m| format!("{} {} → {}", thousands(m.count), m.from, m.to)).collect();
        line.push_str(": ");
        line.push_str(&named.join(", "));
        let rest: usize = c.moves.iter().skip(MOVES_SHOWN).map(|m| m.count).sum();
        if rest > 0 {
            line.push_str(&format!(", and {} in other moves", thousands(rest)));
        }
    }
    line.push('.');
    let examples: Vec<Value> = c
        .examples
        .iter()
        .map(|e| {
            let lead = leads.get(&e.lead_id);
            let company = lead.and_then(|l| l.contact.company.clone());
            json!({
                "id": e.lead_id.to_string(),
                "name": lead.map(|l| l.display_name()).unwrap_or_else(|| e.lead_id.to_string()),
                "company": company,
                "from": e.from,
                "to": e.to,
                "reasons": e.reasons,
            })
        })
        .collect();
    json!({ "what": what, "changed": c.changed, "line": line, "examples": examples })
}

fn view(w: &WhatIf, leads: &[Lead], behaviour_from_trails: bool) -> Value {
    let by_id: HashMap<LeadId, &Lead> = leads.iter().map(|l| (l.id, l)).collect();
    let n = w.leads;
    let mut score = dimension("score", &w.score, n, &by_id);
    // Scores move by amounts, not between a few values: say how many go up and down.
    score["line"] = json!(format!(
        "{} of {} leads change score: {} higher, {} lower.",
        thousands(w.score.changed),
        thousands(n),
        thousands(w.score_up),
        thousands(w.score_down)
    ));
    let unchanged = [&w.grade, &w.stage, &w.team, &w.owner, &w.score].iter().all(|c| c.changed == 0);
    let sample = if leads.len() < SAMPLE {
        format!("all {} leads", thousands(leads.len()))
    } else {
        format!("the last {} leads", thousands(SAMPLE))
    };
    json!({
        "sample": sample,
        "leads": n,
        "invalid": w.invalid,
        "held": w.held,
        "behaviour_from_trails": behaviour_from_trails,
        "unchanged": unchanged,
        "dimensions": [
            dimension("grade", &w.grade, n, &by_id),
            dimension("lifecycle stage", &w.stage, n, &by_id),
            dimension("team", &w.team, n, &by_id),
            dimension("owner", &w.owner, n, &by_id),
            score,
        ],
    })
}
