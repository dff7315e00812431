//! Campaigns for marketing: the list, a campaign's page (its steps with their figures, its
//! versions, the forms that change it), the YAML editor (errors at the field and line, a preview
//! of the draft, save as the next version) and the preview of a step for a lead or a sample.
//! Creating, pausing, resuming, scheduling and moving enrolled leads are in `campaign_actions`.
//! The data and the rules are the JSON API's (`crate::campaigns`): a change made here is the
//! same new version `leadflow campaign apply` would store.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use leadflow_core::campaign::{Campaign, CampaignStatus, Schedule, StepKind};
use leadflow_core::erasure::is_erased;
use leadflow_core::local_time::in_words;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Clock, Ports};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::campaign_yaml::{self, EditorError, FIGURES_CAP, MAX_YAML_BYTES};
use super::leads::resolved;
use super::session::Role;
use super::{Console, Signed, query, see_other};
use crate::campaigns::{self as api, Current};
use crate::error::ApiError;

type St<P> = State<Arc<Console<P>>>;

/// The page for a person whose role does not include campaigns, if theirs does not.
pub(super) fn refused(signed: &Signed) -> Option<Response> {
    match signed.session.role {
        Role::Marketing | Role::Admin => None,
        Role::Sales => Some(signed.forbidden("Campaigns are marketing's", "Your role does not include campaigns.")),
    }
}

pub(super) fn not_found(signed: &Signed) -> Response {
    signed.refusal(StatusCode::NOT_FOUND, "No such campaign", "No campaign has this id.")
}

/// The latest version of campaign `raw`, or the page that says why there is none.
pub(super) async fn campaign<P: Ports>(ports: &P, signed: &Signed, raw: &str) -> Result<Current, Box<Response>> {
    let Ok(id) = crate::extract::config_id("id", raw) else { return Err(Box::new(not_found(signed))) };
    match api::current(ports, &id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Box::new(not_found(signed))),
        Err(e) => {
            warn!(campaign = %id, error = %e.message, "a campaign page could not read its campaign");
            Err(Box::new(signed.unavailable()))
        }
    }
}

/// Whether the campaign sends now, in a word: paused, scheduled (not started), ended or active.
fn state(c: &Campaign, now: DateTime<Utc>) -> &'static str {
    match (c.status, c.schedule.start, c.schedule.end) {
        (CampaignStatus::Paused, _, _) => "paused",
        (_, _, Some(end)) if end <= now => "ended",
        (_, Some(start), _) if start > now => "scheduled",
        _ => "active",
    }
}

fn schedule_words(s: &Schedule) -> Option<String> {
    match (s.start, s.end) {
        (None, None) => None,
        (Some(a), None) => Some(format!("from {}", in_words(a, "UTC"))),
        (None, Some(b)) => Some(format!("until {}", in_words(b, "UTC"))),
        (Some(a), Some(b)) => Some(format!("from {} until {}", in_words(a, "UTC"), in_words(b, "UTC"))),
    }
}

fn summary(c: &Current, now: DateTime<Utc>) -> Value {
    let k = &c.campaign;
    json!({
        "id": k.id,
        "name": k.name,
        "version": c.version,
        "state": state(k, now),
        "schedule": schedule_words(&k.schedule),
        "steps": k.steps.len(),
        "emails": k.steps.iter().filter(|s| s.kind == StepKind::Send).count(),
        "source": if c.from_file { "deployed file" } else { "saved in Leadflow" },
    })
}

/// `GET /console/campaigns`: every campaign's latest version, as `GET /admin/campaigns` lists them.
pub async fn list<P: Ports>(State(console): St<P>, signed: Signed) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let all = match api::all_current(ports).await {
        Ok(all) => all,
        Err(e) => {
            warn!(error = %e.message, "the campaign list could not be read");
            return signed.unavailable();
        }
    };
    let now = ports.clock().now();
    let campaigns: Vec<Value> = all.iter().map(|c| summary(c, now)).collect();
    signed.page(StatusCode::OK, "campaigns.html", json!({ "campaigns": campaigns, "cap": FIGURES_CAP }))
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    v: Option<u32>,
}

/// What the schedule form was sent with, and what is wrong with it, field by field.
#[derive(Debug, Default, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    pub(super) start: String,
    #[serde(default)]
    pub(super) end: String,
}

/// `GET /console/campaigns/{id}`: the latest version, its steps with their figures, its
/// versions, and the buttons that change it.
pub async fn show<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let c = match campaign(ports, &signed, &raw).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let v = q.v.unwrap_or(c.version);
    let notice = q.done.as_deref().and_then(|d| match d {
        "saved" => Some(format!("Saved as version {v}.")),
        "unchanged" => Some(format!("Nothing changed: still version {v}.")),
        "paused" => Some(format!("Paused (version {v}). Enrolled leads wait; nobody new enters.")),
        "resumed" => Some(format!("Resumed (version {v}).")),
        "scheduled" => Some(format!("Schedule saved (version {v}).")),
        "created" => Some(format!(
            "Created as version {v}, {}.",
            if c.campaign.status == CampaignStatus::Paused {
                "paused: nothing is sent and nobody enters until you press Resume"
            } else {
                "active: leads its entry admits enter from now on"
            }
        )),
        "exists" => {
            Some(format!("This campaign exists already with that content (version {v}): nothing new was created."))
        }
        _ => None,
    });
    let form = ScheduleForm {
        start: c.campaign.schedule.start.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        end: c.campaign.schedule.end.map(|d| last_day(d).format("%Y-%m-%d").to_string()).unwrap_or_default(),
    };
    campaign_page(ports, &signed, &c, StatusCode::OK, notice, &form, json!({})).await
}

/// The day a schedule's end belongs to: it ends at the start of the day after.
fn last_day(end: DateTime<Utc>) -> NaiveDate {
    let day = end.date_naive();
    if end.time() == chrono::NaiveTime::MIN { day.pred_opt().unwrap_or(day) } else { day }
}

pub(super) async fn campaign_page<P: Ports>(
    ports: &P,
    signed: &Signed,
    c: &Current,
    status: StatusCode,
    notice: Option<String>,
    form: &ScheduleForm,
    schedule_errors: Value,
) -> Response {
    let versions = match api::versions(ports, c).await {
        Ok(v) => v,
        Err(e) => {
            warn!(campaign = %c.campaign.id, error = %e.message, "a campaign's versions could not be read");
            return signed.unavailable();
        }
    };
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let saved = v["saved_at"].as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok());
            json!({
                "version": v["version"],
                "saved": saved.map(|d| in_words(d, "UTC")),
                "status": v["status"].as_str().or(v["source"].as_str()),
            })
        })
        .collect();
    // Figures are a convenience: a failure to count them leaves the page up and says so.
    let figures = campaign_yaml::figures(ports, &c.campaign.id).await;
    let figures_error = figures.as_ref().err().map(|e| {
        warn!(campaign = %c.campaign.id, error = %e, "a campaign's figures could not be counted");
        "The figures could not be counted just now."
    });
    let figures = figures.unwrap_or_default();
    let steps: Vec<Value> = c
        .campaign
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let kind = format!("{:?}", s.kind).to_lowercase();
            json!({
                "n": i + 1,
                "id": s.id,
                "kind": kind,
                "wait": s.wait.as_ref().map(campaign_yaml::wait_words),
                "subject": s.subject,
                "sends": s.kind == StepKind::Send,
                "figures": figures.steps.get(&s.id),
                "preview": format!("/console/campaigns/{}/preview?{}", c.campaign.id, query(&[("step", &s.id)])),
            })
        })
        .collect();
    // Steps of older versions that the latest no longer has, so that no send goes uncounted.
    let older_steps: Vec<Value> = figures
        .steps
        .iter()
        .filter(|(id, _)| !c.campaign.steps.iter().any(|s| &s.id == *id))
        .map(|(id, f)| json!({ "id": id, "figures": f }))
        .collect();
    // Whether leads wait on older versions, read from at most FIGURES_CAP enrollments: past
    // that the link is offered anyway, and its page counts them all.
    let older = if c.version > 1 {
        api::older_active(ports, &c.campaign.id, c.version, Some(FIGURES_CAP)).await
    } else {
        Ok((Default::default(), true))
    };
    let migrate = match older {
        Ok((counts, all_counted)) => {
            let on_older = counts.values().sum::<u64>();
            (on_older > 0 || !all_counted)
                .then(|| json!({ "leads": super::campaign_actions::leads(on_older), "all_counted": all_counted }))
        }
        Err(e) => {
            warn!(campaign = %c.campaign.id, error = %e.message, "older enrollments could not be counted");
            None
        }
    };
    let now = ports.clock().now();
    signed.page(
        status,
        "campaign.html",
        json!({
            "id": c.campaign.id,
            "name": c.campaign.name,
            "version": c.version,
            "state": state(&c.campaign, now),
            "paused": c.campaign.status == CampaignStatus::Paused,
            "schedule": schedule_words(&c.campaign.schedule),
            "source": if c.from_file { "deployed file" } else { "saved in Leadflow" },
            "saved": c.saved_at.map(|d| in_words(d, "UTC")),
            "steps": steps,
            "older_steps": older_steps,
            "versions": versions,
            "figures": { "leads": figures.leads, "capped": figures.capped, "cap": FIGURES_CAP, "error": figures_error },
            "notice": notice,
            "form": { "start": form.start, "end": form.end },
            "errors": schedule_errors,
            "migrate": migrate,
        }),
    )
}

/// A change the JSON API's rules refused or could not store, as the page shows it.
pub(super) fn store_failed(signed: &Signed, id: &str, e: &ApiError) -> Response {
    if e.status == StatusCode::NOT_FOUND {
        return not_found(signed);
    }
    if e.is_server_error() {
        warn!(campaign = %id, error = %e.message, "a campaign change could not be stored");
        return signed.unavailable();
    }
    signed.page(
        e.status_code(),
        "message.html",
        json!({ "kind": "refused", "heading": "The campaign was not changed", "lines": [e.message] }),
    )
}

/// What every campaign POST checks first: the form (its CSRF token and origin), the role, and
/// the campaign it names. `Err`: the page that says which failed.
pub(super) async fn posted<P: Ports, F: serde::de::DeserializeOwned + Default>(
    ports: &P,
    signed: &Signed,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(F, Current), Box<Response>> {
    let form: F = signed.form(ports, headers, body)?;
    if let Some(page) = refused(signed) {
        return Err(Box::new(page));
    }
    Ok((form, campaign(ports, signed, raw).await?))
}

/// A step of `campaign` rendered as the nurture stage would send it, for the lead `raw_lead`
/// (a lead id) or, when it is empty, the sample lead; the unsubscribe link is a placeholder.
pub(super) async fn render_step<P: Ports>(
    ports: &P,
    signed: &Signed,
    campaign: &Campaign,
    step: &str,
    raw_lead: &str,
) -> Result<Value, EditorError> {
    let at = |field: &str, message: String| EditorError { field: field.into(), line: None, message };
    let compiled = campaign.compile().map_err(|e| at("step", e.to_string()))?;
    let index = compiled.step_index(step).ok_or_else(|| at("step", format!("The campaign has no step {step}.")))?;
    if campaign.steps.get(index).is_some_and(|s| s.kind != StepKind::Send) {
        return Err(at("step", format!("Step {step} sends no email.")));
    }
    let raw_lead = raw_lead.trim();
    let lead = if raw_lead.is_empty() {
        campaign_yaml::sample_lead()
    } else {
        let unknown = || at("lead", "No lead has this id. Leave it empty for the sample lead.".into());
        let id: LeadId = raw_lead.parse().map_err(|_| unknown())?;
        match resolved(ports, id).await {
            Ok(Some(lead))
                if !is_erased(&lead) && signed.session.may_open(lead.owner.as_ref().map(|o| o.rep_id.as_str())) =>
            {
                lead
            }
            Ok(_) => return Err(unknown()),
            Err(e) => {
                warn!(error = %e, "a preview could not read its lead");
                return Err(at("lead", "The lead could not be read just now; try again.".into()));
            }
        }
    };
    let config = ports.config();
    let settings = &config.settings;
    let url = format!("{}/u/preview-no-op", settings.public_url.trim_end_matches('/'));
    let email = compiled
        .render(&lead, index, settings, &url)
        .map_err(|e| at("step", format!("The step does not render for this lead: {e}")))?;
    Ok(json!({
        "step": step,
        "sample": raw_lead.is_empty(),
        "to": format!("{} <{}>", email.to.name.unwrap_or_default(), email.to.email),
        "from": email.from.email,
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
    }))
}

pub(super) fn send_steps(c: &Campaign) -> Vec<String> {
    c.steps.iter().filter(|s| s.kind == StepKind::Send).map(|s| s.id.clone()).collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    step: Option<String>,
    #[serde(default)]
    lead: Option<String>,
}

/// `GET /console/campaigns/{id}/preview?step=<id>&lead=<lead id>`: a step of the latest version
/// rendered for that lead, or the sample lead; its HTML in a sandboxed frame.
pub async fn preview<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let c = match campaign(ports, &signed, &raw).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let steps = send_steps(&c.campaign);
    let step = q.step.filter(|s| !s.trim().is_empty()).or_else(|| steps.first().cloned()).unwrap_or_default();
    let lead = q.lead.unwrap_or_default();
    let (status, preview, error) = match render_step(ports, &signed, &c.campaign, step.trim(), &lead).await {
        Ok(p) => (StatusCode::OK, Some(p), None),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(e)),
    };
    signed.page(
        status,
        "campaign_preview.html",
        json!({
            "id": c.campaign.id,
            "name": c.campaign.name,
            "version": c.version,
            "steps": steps,
            "step": step,
            "lead": lead,
            "preview": preview,
            "error": error,
        }),
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    pub(super) yaml: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) step: String,
    #[serde(default)]
    pub(super) lead: String,
}

/// The editor page's content. `version: None`: the page that creates a new campaign.
pub(super) struct Editor<'a> {
    pub(super) id: &'a str,
    pub(super) name: &'a str,
    pub(super) version: Option<u32>,
    pub(super) yaml: &'a str,
    pub(super) steps: Vec<String>,
    pub(super) step: &'a str,
    pub(super) lead: &'a str,
    pub(super) error: Option<EditorError>,
    pub(super) preview: Option<Value>,
}

impl<'a> Editor<'a> {
    /// The editor of campaign `c`, with no error and no preview.
    fn of(c: &'a Current, yaml: &'a str, steps: Vec<String>, step: &'a str, lead: &'a str) -> Self {
        let (id, name, version) = (c.campaign.id.as_str(), c.campaign.name.as_str(), Some(c.version));
        Editor { id, name, version, yaml, steps, step, lead, error: None, preview: None }
    }
}

pub(super) fn editor_page(signed: &Signed, status: StatusCode, e: Editor<'_>) -> Response {
    signed.page(
        status,
        "campaign_edit.html",
        json!({
            "id": e.id,
            "name": e.name,
            "version": e.version,
            "new": e.version.is_none(),
            "yaml": e.yaml,
            "steps": e.steps,
            "step": e.step,
            "lead": e.lead,
            "error": e.error,
            "preview": e.preview,
            "max_kib": MAX_YAML_BYTES / 1024,
        }),
    )
}

/// `GET /console/campaigns/{id}/edit`: the latest version as YAML.
pub async fn edit<P: Ports>(State(console): St<P>, signed: Signed, Path(raw): Path<String>) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let c = match campaign(&*console.ports, &signed, &raw).await {
        Ok(c) => c,
        Err(page) => return *page,
    };
    let yaml = match campaign_yaml::to_yaml(&c.campaign) {
        Ok(y) => y,
        Err(e) => {
            warn!(campaign = %c.campaign.id, error = %e, "a campaign could not be written as YAML");
            return signed.unavailable();
        }
    };
    let steps = send_steps(&c.campaign);
    let step = steps.first().cloned().unwrap_or_default();
    editor_page(&signed, StatusCode::OK, Editor::of(&c, &yaml, steps, &step, ""))
}

/// `POST /console/campaigns/{id}/edit`: previews a step of the draft (`action=preview`), or
/// stores the draft as the next version, unless it says the same as the latest. Either way the
/// draft is read and checked as `POST /admin/campaigns` reads it; what is wrong is shown at the
/// editor with the field and line, and nothing is stored.
pub async fn save<P: Ports>(
    State(console): St<P>,
    signed: Signed,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ports = &*console.ports;
    let (form, c): (EditForm, Current) = match posted(ports, &signed, &raw, &headers, &body).await {
        Ok(posted) => posted,
        Err(page) => return *page,
    };
    let id = c.campaign.id.clone();
    let yaml = form.yaml.replace("\r\n", "\n");
    let parsed = campaign_yaml::parse(&yaml).and_then(|k| {
        if k.id == id {
            Ok(k)
        } else {
            Err(EditorError {
                line: campaign_yaml::line_of(&yaml, "id"),
                field: "id".into(),
                message: format!(
                    "The id must stay {id}: enrolled leads follow the campaign by it. For another campaign, use New campaign on the campaign list."
                ),
            })
        }
    });
    let draft = match parsed {
        Ok(k) => k,
        Err(error) => {
            let editor = Editor::of(&c, &yaml, send_steps(&c.campaign), &form.step, &form.lead);
            return editor_page(&signed, StatusCode::UNPROCESSABLE_ENTITY, Editor { error: Some(error), ..editor });
        }
    };
    if form.action == "preview" {
        let steps = send_steps(&draft);
        let step =
            if steps.contains(&form.step) { form.step.clone() } else { steps.first().cloned().unwrap_or_default() };
        let (status, preview, error) = match render_step(ports, &signed, &draft, &step, &form.lead).await {
            Ok(p) => (StatusCode::OK, Some(p), None),
            Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(e)),
        };
        let editor = Editor::of(&c, &yaml, steps, &step, &form.lead);
        return editor_page(&signed, status, Editor { error, preview, ..editor });
    }
    match api::store_next(ports, &id, |_| Ok(draft.clone())).await {
        Ok(s) => {
            let done = if s.unchanged { "unchanged" } else { "saved" };
            see_other(&format!("/console/campaigns/{id}?{}", query(&[("done", done), ("v", &s.version.to_string())])))
        }
        Err(e) if e.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let field = e.field.clone().unwrap_or_else(|| "yaml".into());
            let error = EditorError { line: campaign_yaml::line_of(&yaml, &field), field, message: e.message };
            let editor = Editor::of(&c, &yaml, send_steps(&draft), &form.step, &form.lead);
            editor_page(&signed, StatusCode::UNPROCESSABLE_ENTITY, Editor { error: Some(error), ..editor })
        }
        Err(e) => store_failed(&signed, &id, &e),
    }
}
