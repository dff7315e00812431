//! What changes campaigns besides the editor: a new campaign (the editor again, started from a
//! small paused campaign, stored as version 1), pause, resume, the schedule, and moving the
//! leads enrolled in older versions to the latest. Each goes through the JSON API's functions
//! (`crate::campaigns`), so the console stores what `leadflow campaign …` would.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::NaiveDate;
use leadflow_core::campaign::{Campaign, CampaignStatus, Schedule};
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::campaign_yaml::{self, EditorError, STARTER};
use super::campaigns::{
    EditForm, Editor, ScheduleForm, campaign, campaign_page, editor_page, posted, refused, render_step, send_steps,
    store_failed,
};
use super::{Console, Signed, query, see_other, thousands};
use crate::campaigns::{self as api, Current};
use crate::error::ApiError;

type St<P> = State<Arc<Console<P>>>;

/// The code of the refusal to create a campaign whose id is taken.
const TAKEN: &str = "campaign_exists";

/// `GET /console/campaigns/new`: the editor, holding [`STARTER`].
pub async fn new_form<P: Ports>(signed: Signed) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let steps = campaign_yaml::parse(STARTER).map(|c| send_steps(&c)).unwrap_or_default();
    let step = steps.first().cloned().unwrap_or_default();
    editor_page(&signed, StatusCode::OK, new_editor(STARTER, steps, &step, "", None, None))
}

fn new_editor<'a>(
    yaml: &'a str,
    steps: Vec<String>,
    step: &'a str,
    lead: &'a str,
    error: Option<EditorError>,
    preview: Option<Value>,
) -> Editor<'a> {
    Editor { id: "", name: "", version: None, yaml, steps, step, lead, error, preview }
}

/// `POST /console/campaigns/new`: previews a step of the draft (`action=preview`), or stores it
/// as version 1 of a new campaign, as `POST /admin/campaigns` does. An id that is taken is
/// refused at the id, unless that campaign says exactly the same (the form sent twice): then
/// nothing is stored and the browser goes to it.
pub async fn create<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ports = &*console.ports;
    let form: EditForm = match signed.form(ports, &headers, &body) {
        Ok(form) => form,
        Err(page) => return *page,
    };
    if let Some(page) = refused(&signed) {
        return page;
    }
    let yaml = form.yaml.replace("\r\n", "\n");
    let refuse = |steps: Vec<String>, error: EditorError| {
        let editor = new_editor(&yaml, steps, &form.step, &form.lead, Some(error), None);
        editor_page(&signed, StatusCode::UNPROCESSABLE_ENTITY, editor)
    };
    // A draft that does not read yet has no steps of its own to offer; the chosen one is kept.
    let chosen: Vec<String> = Some(form.step.clone()).filter(|s| !s.trim().is_empty()).into_iter().collect();
    let draft = match campaign_yaml::parse(&yaml) {
        Ok(draft) => draft,
        Err(error) => return refuse(chosen, error),
    };
    let steps = send_steps(&draft);
    if form.action == "preview" {
        let step =
            if steps.contains(&form.step) { form.step.clone() } else { steps.first().cloned().unwrap_or_default() };
        let (status, preview, error) = match render_step(ports, &signed, &draft, &step, &form.lead).await {
            Ok(p) => (StatusCode::OK, Some(p), None),
            Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(e)),
        };
        return editor_page(&signed, status, new_editor(&yaml, steps, &step, &form.lead, error, preview));
    }
    let at_id =
        |message: String| EditorError { line: campaign_yaml::line_of(&yaml, "id"), field: "id".into(), message };
    let id = draft.id.clone();
    if id == "new" {
        // `/console/campaigns/new` is this page: a campaign of that id would have no page.
        return refuse(steps, at_id("The id new is kept for this page: choose another.".into()));
    }
    let stored = api::store_next(ports, &id, |latest| match latest {
        Some(existing) if !existing.same_content(&draft) => Err(ApiError::conflict(
            TAKEN,
            format!(
                "A campaign with the id {id} exists already ({}): choose another id. To change that campaign, edit it from its page.",
                existing.name
            ),
        )),
        _ => Ok(draft.clone()),
    })
    .await;
    match stored {
        Ok(s) => {
            let done = if s.unchanged { "exists" } else { "created" };
            see_other(&format!("/console/campaigns/{id}?{}", query(&[("done", done), ("v", &s.version.to_string())])))
        }
        Err(e) if e.code == TAKEN => refuse(steps, at_id(e.message)),
        Err(e) if e.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let field = e.field.clone().unwrap_or_else(|| "yaml".into());
            refuse(steps, EditorError { line: campaign_yaml::line_of(&yaml, &field), field, message: e.message })
        }
        Err(e) => store_failed(&signed, &id, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct CsrfOnly {}

async fn set_status<P: Ports>(
    console: &Console<P>,
    signed: &Signed,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
    status: CampaignStatus,
) -> Response {
    let ports = &*console.ports;
    let (CsrfOnly {}, c) = match posted(ports, signed, raw, headers, body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let id = c.campaign.id.clone();
    let stored = api::store_next(ports, &id, |latest| {
        let latest = latest.ok_or_else(|| ApiError::not_found("campaign_not_found", "No campaign has this id."))?;
        Ok(Campaign { status, ..latest })
    })
    .await;
    match stored {
        Ok(s) => {
            let done = if status == CampaignStatus::Paused { "paused" } else { "resumed" };
            let done = if s.unchanged { "unchanged" } else { done };
            see_other(&format!("/console/campaigns/{id}?{}", query(&[("done", done), ("v", &s.version.to_string())])))
        }
        Err(e) => store_failed(signed, &id, &e),
    }
}

/// `POST /console/campaigns/{id}/pause`: the next version, paused, as `POST /admin/campaigns/{id}/pause`.
pub async fn pause<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    set_status(&console, &signed, &raw, &headers, &body, CampaignStatus::Paused).await
}

/// `POST /console/campaigns/{id}/resume`: the next version, active again.
pub async fn resume<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    set_status(&console, &signed, &raw, &headers, &body, CampaignStatus::Active).await
}

/// A date field of the schedule form: empty is no limit; a date is read in UTC.
fn date_field(raw: &str) -> Result<Option<NaiveDate>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map(Some).map_err(|_| "Use a date like 2026-12-01.")
}

/// `POST /console/campaigns/{id}/schedule`: the next version with this schedule: from the start
/// of the start day until the end of the end day, UTC.
pub async fn schedule<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ports = &*console.ports;
    let (form, c): (ScheduleForm, Current) = match posted(ports, &signed, &raw, &headers, &body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let start = date_field(&form.start);
    let end = date_field(&form.end);
    let mut errors = serde_json::Map::new();
    if let Err(e) = start {
        errors.insert("start".into(), json!(e));
    }
    if let Err(e) = end {
        errors.insert("end".into(), json!(e));
    }
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    let start = start.ok().flatten().map(midnight);
    let end = end.ok().flatten().and_then(|d| d.succ_opt()).map(midnight);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        errors.insert("end".into(), json!("The end date must be on or after the start date."));
    }
    if !errors.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return campaign_page(ports, &signed, &c, status, None, &form, Value::Object(errors)).await;
    }
    let id = c.campaign.id.clone();
    let schedule = Schedule { start, end };
    let stored = api::store_next(ports, &id, |latest| {
        let latest = latest.ok_or_else(|| ApiError::not_found("campaign_not_found", "No campaign has this id."))?;
        Ok(Campaign { schedule, ..latest })
    })
    .await;
    match stored {
        Ok(s) => {
            let done = if s.unchanged { "unchanged" } else { "scheduled" };
            see_other(&format!("/console/campaigns/{id}?{}", query(&[("done", done), ("v", &s.version.to_string())])))
        }
        Err(e) => store_failed(&signed, &id, &e),
    }
}

/// "1 lead", "1,200 leads".
pub(super) fn leads(n: u64) -> String {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n == 1 { "1 lead".into() } else { format!("{} leads", thousands(n)) }
}

#[derive(Debug, Default, Deserialize)]
pub struct MigrateForm {
    /// Empty: every older version.
    #[serde(default)]
    from_version: String,
}

/// The version the form names (`None`: every older one), if it is one older than `latest`.
fn from_version(raw: &str, latest: u32) -> Result<Option<u32>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let older = || format!("Choose a version older than the latest, {latest}, from the list.");
    match raw.parse::<u32>() {
        Ok(v) if v >= 1 && v < latest => Ok(Some(v)),
        _ => Err(older()),
    }
}

/// The page that counts the leads on older versions and moves them; `result`: what a move did.
async fn migrate_page<P: Ports>(
    ports: &P,
    signed: &Signed,
    c: &Current,
    status: StatusCode,
    form: &MigrateForm,
    errors: Value,
    result: Option<Vec<String>>,
) -> Response {
    let counts: BTreeMap<u32, u64> = match api::older_active(ports, &c.campaign.id, c.version, None).await {
        Ok((counts, _)) => counts,
        Err(e) => {
            warn!(campaign = %c.campaign.id, error = %e.message, "older enrollments could not be counted");
            return signed.unavailable();
        }
    };
    let total: u64 = counts.values().sum();
    let older: Vec<Value> =
        counts.iter().rev().map(|(v, n)| json!({ "version": v, "leads": leads(*n), "value": v.to_string() })).collect();
    signed.page(
        status,
        "campaign_migrate.html",
        json!({
            "id": c.campaign.id,
            "name": c.campaign.name,
            "version": c.version,
            "older": older,
            "total": leads(total),
            "form": { "from_version": form.from_version },
            "errors": errors,
            "result": result,
        }),
    )
}

/// `GET /console/campaigns/{id}/migrate`: how many active leads are on each older version, what
/// moving them does, and the form that does it. Changes nothing.
pub async fn migrate_confirm<P: Ports>(State(console): St<P>, signed: Signed, Path(raw): Path<String>) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let c = match campaign(ports, &signed, &raw).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    migrate_page(ports, &signed, &c, StatusCode::OK, &MigrateForm::default(), json!({}), None).await
}

/// `POST /console/campaigns/{id}/migrate`: moves the active leads of older versions (or of the
/// one chosen) to the latest, as `POST /admin/campaigns/{id}/migrate` does, and tells what it did.
pub async fn migrate<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ports = &*console.ports;
    let (form, c): (MigrateForm, Current) = match posted(ports, &signed, &raw, &headers, &body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let refuse = |message: String| json!({ "from_version": message });
    let from = match from_version(&form.from_version, c.version) {
        Ok(from) => from,
        Err(message) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return migrate_page(ports, &signed, &c, status, &form, refuse(message), None).await;
        }
    };
    let done = match api::migrate_enrollments(ports, &c.campaign.id, from).await {
        Ok(done) => done,
        Err(e) if e.field.as_deref() == Some("from_version") => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return migrate_page(ports, &signed, &c, status, &form, refuse(e.message), None).await;
        }
        Err(e) => return store_failed(&signed, &c.campaign.id, &e),
    };
    let to = done.to_version;
    let mut result = vec![match done.migrated {
        0 => "No lead was moved.".to_string(),
        n => format!("Moved {} to version {to}.", leads(n)),
    }];
    if done.kept > 0 {
        let (stay, their, they) =
            if done.kept == 1 { ("stays", "its", "it finishes") } else { ("stay", "their", "they finish") };
        result.push(format!(
            "{} {stay} on {their} version: {their} next step has no step of the same id in version {to}, so {they} the version {} started.",
            leads(done.kept),
            if done.kept == 1 { "it" } else { "they" },
        ));
    }
    if done.changed > 0 {
        let (was, they) = if done.changed == 1 { ("was", "it") } else { ("were", "they") };
        result.push(format!(
            "{} changed while being moved (the next step {was} being sent): {they} stayed where {they} {was}; move again to take {}.",
            leads(done.changed),
            if done.changed == 1 { "it" } else { "them" },
        ));
    }
    // The page counts again after the move: what is left on older versions is what it shows.
    let c = match campaign(ports, &signed, &raw).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    migrate_page(ports, &signed, &c, StatusCode::OK, &form, json!({}), Some(result)).await
}
