//! Campaigns as versioned documents: `campaign:<id>`, whose body is the JSON of a
//! [`Campaign`] and whose version is the campaign's.
//!
//! A campaign deployed in the configuration files (`campaigns/*.toml`) and never applied has no
//! document; its first change through the API first stores the file's version as versions
//! `1..=n` (the file's content, so that leads enrolled in version `n` finish the same campaign),
//! then the change as `n + 1`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use leadflow_app::live::{CAMPAIGN_PREFIX, campaign_document, campaign_of};
use leadflow_core::campaign::{Campaign, CampaignStatus, Schedule, StepKind};
use leadflow_core::config::ConfigSources;
use leadflow_core::error::ConfigError;
use leadflow_core::model::{Document, EnrollmentState};
use leadflow_core::ports::{Clock, Ports, WriteOutcome};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::config_docs::DOC_ATTEMPTS;
use crate::error::{ApiError, ApiResult};
use crate::extract::{
    Authorized, JsonBody, PathParams, QueryParams, RawBody, config_id, field_error, from_json, lead_id,
};

type St<P> = State<Arc<AppState<P>>>;

/// Most versions `GET /admin/campaigns/{id}` lists (the latest ones).
const MAX_VERSIONS_LISTED: u32 = 50;

/// A campaign's latest version and where it is kept.
#[derive(Debug, Clone)]
pub struct Current {
    pub campaign: Campaign,
    pub version: u32,
    /// Only in the deployed configuration files, no document yet.
    pub from_file: bool,
    pub saved_at: Option<DateTime<Utc>>,
}

/// The campaigns of the deployed files, as written there.
fn file_campaigns(sources: &ConfigSources) -> Vec<Campaign> {
    sources.campaigns.iter().filter_map(|(_, text)| Campaign::parse(text, "toml").ok()).collect()
}

fn unreadable(doc: &Document, e: &str) -> ApiError {
    ApiError::unavailable(&format!("stored campaign document {} v{} cannot be read: {e}", doc.name, doc.version))
}

/// The latest version of campaign `id`, from its documents or else the files.
pub async fn current<P: Ports>(ports: &P, id: &str) -> ApiResult<Option<Current>> {
    if let Some(doc) = ports.store().document(&campaign_document(id), None).await? {
        let campaign = campaign_of(&doc).map_err(|e| unreadable(&doc, &e))?;
        return Ok(Some(Current { campaign, version: doc.version, from_file: false, saved_at: Some(doc.saved_at) }));
    }
    Ok(file_campaigns(&ports.config().sources).into_iter().find(|c| c.id == id).map(|c| Current {
        version: c.version,
        campaign: c,
        from_file: true,
        saved_at: None,
    }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("campaign_not_found", format!("No campaign has the id {id}."))
}

/// A compile error of a campaign: its `what` is already the field's path.
pub(crate) fn campaign_error(e: &ConfigError) -> ApiError {
    match e {
        ConfigError::Parse { message, .. } => ApiError::invalid("body", message.clone()),
        ConfigError::Invalid { what, message } => ApiError::invalid(what.clone(), message.clone()),
    }
}

/// What a write stored.
pub struct Stored {
    pub campaign: Campaign,
    pub version: u32,
    pub unchanged: bool,
}

fn document_of(campaign: &Campaign, version: u32, now: DateTime<Utc>) -> ApiResult<Document> {
    let body = serde_json::to_string(&Campaign { version, ..campaign.clone() })
        .map_err(|e| ApiError::invalid("body", format!("cannot be stored as JSON: {e}")))?;
    Ok(Document { name: campaign_document(&campaign.id), version, body, saved_at: now })
}

/// Applies `edit` to the latest version of campaign `id` (`None` when there is none) and stores
/// the result as the next version, unless it says the same as the latest.
pub(crate) async fn store_next<P: Ports>(
    ports: &P,
    id: &str,
    edit: impl Fn(Option<Campaign>) -> ApiResult<Campaign>,
) -> ApiResult<Stored> {
    let store = ports.store();
    'attempt: for _ in 0..DOC_ATTEMPTS {
        let latest = current(ports, id).await?;
        let next = edit(latest.as_ref().map(|c| c.campaign.clone()))?;
        next.compile().map_err(|e| campaign_error(&e))?;
        let now = ports.clock().now();
        let version = match &latest {
            Some(c) if c.campaign.same_content(&next) => {
                return Ok(Stored { campaign: c.campaign.clone(), version: c.version, unchanged: true });
            }
            Some(c) if c.from_file => {
                for v in 1..=c.version {
                    if store.put_document(&document_of(&c.campaign, v, now)?).await? == WriteOutcome::VersionConflict {
                        continue 'attempt;
                    }
                }
                c.version + 1
            }
            Some(c) => c.version + 1,
            None => 1,
        };
        match store.put_document(&document_of(&next, version, now)?).await? {
            WriteOutcome::Written => {
                leadflow_app::live::refresh(ports, true).await;
                return Ok(Stored { campaign: Campaign { version, ..next }, version, unchanged: false });
            }
            WriteOutcome::VersionConflict => continue,
        }
    }
    Err(ApiError::conflict(
        "version_conflict",
        format!("Campaign {id} kept changing while this change was being saved; try again."),
    ))
}

fn stored_response(s: &Stored) -> Response {
    axum::Json(json!({
        "campaign": s.campaign.id,
        "version": s.version,
        "unchanged": s.unchanged,
        "status": s.campaign.status,
        "schedule": s.campaign.schedule,
    }))
    .into_response()
}

/// Reads a campaign from a body: YAML (the default), JSON or TOML by content type. Errors name
/// the field by its path.
fn parse_campaign(body: &RawBody) -> ApiResult<Campaign> {
    let text = std::str::from_utf8(&body.bytes)
        .map_err(|_| ApiError::bad_request("malformed_body", "The body is not UTF-8 text."))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("malformed_body", "The body is empty: send the campaign as YAML or JSON."));
    }
    let ct = body.content_type.as_str();
    if ct.contains("json") {
        return from_json(text.as_bytes());
    }
    if ct.contains("toml") {
        return Campaign::parse(text, "toml").map_err(|e| campaign_error(&e));
    }
    // Syntax first, so that a broken file is told apart from a campaign with a wrong field.
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ApiError::bad_request("malformed_body", format!("The body is not valid YAML: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        field_error(&path, &e.into_inner().to_string())
    })
}

/// `POST /admin/campaigns`: applies a campaign (YAML, or JSON with a JSON content type). It is
/// compiled first; the same content as the latest version answers `"unchanged": true`,
/// anything else is stored as the next version. The body's `version` is ignored.
pub async fn apply<P: Ports>(_: Authorized, State(st): St<P>, body: RawBody) -> ApiResult<Response> {
    let campaign = parse_campaign(&body)?;
    let id = config_id("id", &campaign.id)?;
    let stored = store_next(&*st.ports, &id, |_| Ok(campaign.clone())).await?;
    let status = if stored.unchanged || stored.version > 1 { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, stored_response(&stored)).into_response())
}

fn summary(c: &Current) -> Value {
    let sends = c.campaign.steps.iter().filter(|s| s.kind == StepKind::Send).count();
    json!({
        "id": c.campaign.id,
        "name": c.campaign.name,
        "version": c.version,
        "status": c.campaign.status,
        "schedule": c.campaign.schedule,
        "steps": c.campaign.steps.len(),
        "emails": sends,
        "source": if c.from_file { "deployed file" } else { "document" },
        "saved_at": c.saved_at,
    })
}

/// The latest version of every campaign, applied or deployed, by id.
pub(crate) async fn all_current<P: Ports>(ports: &P) -> ApiResult<Vec<Current>> {
    let docs = ports.store().latest_documents(CAMPAIGN_PREFIX).await?;
    let mut all = Vec::new();
    for doc in &docs {
        let campaign = campaign_of(doc).map_err(|e| unreadable(doc, &e))?;
        all.push(Current { campaign, version: doc.version, from_file: false, saved_at: Some(doc.saved_at) });
    }
    for c in file_campaigns(&ports.config().sources) {
        if !all.iter().any(|k| k.campaign.id == c.id) {
            all.push(Current { version: c.version, campaign: c, from_file: true, saved_at: None });
        }
    }
    all.sort_by(|a, b| a.campaign.id.cmp(&b.campaign.id));
    Ok(all)
}

/// `GET /admin/campaigns`: the latest version of every campaign, applied or deployed.
pub async fn list<P: Ports>(_: Authorized, State(st): St<P>) -> ApiResult<Response> {
    let all = all_current(&*st.ports).await?;
    let campaigns: Vec<Value> = all.iter().map(summary).collect();
    Ok(axum::Json(json!({ "campaigns": campaigns })).into_response())
}

/// The versions of campaign `c`, newest first (at most [`MAX_VERSIONS_LISTED`]).
pub(crate) async fn versions<P: Ports>(ports: &P, c: &Current) -> ApiResult<Vec<Value>> {
    let mut versions = Vec::new();
    if c.from_file {
        versions.push(json!({ "version": c.version, "saved_at": null, "source": "deployed file" }));
    } else {
        let name = campaign_document(&c.campaign.id);
        let oldest = c.version.saturating_sub(MAX_VERSIONS_LISTED - 1).max(1);
        for v in (oldest..=c.version).rev() {
            if let Some(doc) = ports.store().document(&name, Some(v)).await? {
                let status = campaign_of(&doc).ok().map(|k| k.status);
                versions.push(json!({ "version": v, "saved_at": doc.saved_at, "status": status }));
            }
        }
    }
    Ok(versions)
}

/// `GET /admin/campaigns/{id}`: the latest version in full, and the list of versions.
pub async fn show<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let id = config_id("id", &id)?;
    let c = current(&*st.ports, &id).await?.ok_or_else(|| not_found(&id))?;
    let versions = versions(&*st.ports, &c).await?;
    Ok(axum::Json(json!({
        "campaign": Campaign { version: c.version, ..c.campaign.clone() },
        "version": c.version,
        "source": if c.from_file { "deployed file" } else { "document" },
        "saved_at": c.saved_at,
        "versions": versions,
    }))
    .into_response())
}

async fn set_status<P: Ports>(ports: &P, id: &str, status: CampaignStatus) -> ApiResult<Response> {
    let id = config_id("id", id)?;
    let stored = store_next(ports, &id, |c| {
        let c = c.ok_or_else(|| not_found(&id))?;
        Ok(Campaign { status, ..c })
    })
    .await?;
    Ok(stored_response(&stored))
}

/// `POST /admin/campaigns/{id}/pause`: a new version that is paused. Enrolled leads wait (in
/// every version); none enters.
pub async fn pause<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    set_status(&*st.ports, &id, CampaignStatus::Paused).await
}

/// `POST /admin/campaigns/{id}/resume`: a new version that is active again.
pub async fn resume<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    set_status(&*st.ports, &id, CampaignStatus::Active).await
}

/// `POST /admin/campaigns/{id}/schedule` `{"start": …, "end": …}` (RFC 3339, each optional):
/// a new version with this schedule and nothing else changed.
pub async fn schedule<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(schedule): JsonBody<Schedule>,
) -> ApiResult<Response> {
    if let (Some(s), Some(e)) = (schedule.start, schedule.end)
        && e <= s
    {
        return Err(ApiError::invalid("end", "must be after start"));
    }
    let id = config_id("id", &id)?;
    let stored = store_next(&*st.ports, &id, |c| {
        let c = c.ok_or_else(|| not_found(&id))?;
        Ok(Campaign { schedule, ..c })
    })
    .await?;
    Ok(stored_response(&stored))
}

#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    pub lead: Option<String>,
    pub step: Option<String>,
    pub version: Option<String>,
}

/// `GET /admin/campaigns/{id}/preview?lead=<lead id>&step=<step id>[&version=<n>]`: the drip
/// email of that step rendered for that lead, exactly as the nurture stage would, except that
/// its unsubscribe link is a placeholder (a working one, clicked while previewing, would opt
/// the lead out).
pub async fn preview<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PreviewQuery>,
) -> ApiResult<Response> {
    let id = config_id("id", &id)?;
    let raw_lead = q
        .lead
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("lead", "name the lead to render for: ?lead=<lead id>"))?;
    let step_id = q
        .step
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("step", "name the step to render: ?step=<step id>"))?;
    let campaign = match q.version.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => current(&*st.ports, &id).await?.ok_or_else(|| not_found(&id))?.campaign,
        Some(v) => {
            let v: u32 = v.parse().map_err(|_| ApiError::invalid("version", "must be a whole number"))?;
            let doc = st.ports.store().document(&campaign_document(&id), Some(v)).await?;
            match doc {
                Some(doc) => campaign_of(&doc).map_err(|e| unreadable(&doc, &e))?,
                None => match current(&*st.ports, &id).await? {
                    Some(c) if c.from_file && c.version == v => c.campaign,
                    _ => {
                        return Err(ApiError::not_found(
                            "version_not_found",
                            format!("Campaign {id} has no version {v}."),
                        ));
                    }
                },
            }
        }
    };
    let compiled = campaign.compile().map_err(|e| campaign_error(&e))?;
    let index = compiled
        .step_index(step_id)
        .ok_or_else(|| ApiError::invalid("step", format!("campaign {id} has no step {step_id}")))?;
    if campaign.steps.get(index).is_some_and(|s| s.kind != StepKind::Send) {
        return Err(ApiError::invalid("step", format!("step {step_id} sends no email")));
    }
    let lead_id = lead_id(raw_lead).map_err(|e| ApiError { field: Some("lead".into()), ..e })?;
    let store = st.ports.store();
    let resolved = store
        .resolve_lead(lead_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lead_not_found", "No lead has this id."))?;
    let lead =
        store.get_lead(resolved).await?.ok_or_else(|| ApiError::not_found("lead_not_found", "No lead has this id."))?;
    let config = st.ports.config();
    let settings = &config.settings;
    let url = format!("{}/u/preview-no-op", settings.public_url.trim_end_matches('/'));
    let email = compiled
        .render(&lead, index, settings, &url)
        .map_err(|e| ApiError::invalid("step", format!("the step does not render for this lead: {e}")))?;
    Ok(axum::Json(json!({
        "campaign": id,
        "version": campaign.version,
        "step": step_id,
        "lead_id": lead.id,
        "key": email.key,
        "from": email.from,
        "to": email.to,
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
        "headers": email.headers,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// Only leads in this version; all older versions when absent.
    #[serde(default)]
    pub from_version: Option<u32>,
}

pub use leadflow_app::migrate::Migration;
use leadflow_core::ports::{Documents, Enrollments, Leads};

/// [`leadflow_app::migrate::migrate_enrollments`], its refusals as the API answers them: an
/// unknown campaign 404, a `from_version` not older than the latest an error on that field.
/// The JSON API and the console both move leads through here.
pub(crate) async fn migrate_enrollments<P: Ports>(
    ports: &P,
    id: &str,
    from_version: Option<u32>,
) -> ApiResult<Migration> {
    use leadflow_app::migrate::MigrateError;
    leadflow_app::migrate::migrate_enrollments(ports, id, from_version).await.map_err(|e| match e {
        MigrateError::NotFound => not_found(id),
        MigrateError::NotOlder { .. } => ApiError::invalid("from_version", e.to_string()),
        MigrateError::Store(e) => e.into(),
        MigrateError::Version(e) => ApiError::unavailable(&e.to_string()),
    })
}

/// The active enrollments of campaign `id` on versions older than `latest`, counted by version,
/// from at most `limit` enrollments read (`None`: all of them; on DynamoDB every read is a Scan
/// page). The flag: every enrollment was read, so the counts are whole.
pub(crate) async fn older_active<P: Ports>(
    ports: &P,
    id: &str,
    latest: u32,
    limit: Option<usize>,
) -> ApiResult<(BTreeMap<u32, u64>, bool)> {
    let mut counts = BTreeMap::new();
    let (mut read, mut cursor) = (0usize, None);
    loop {
        let page = ports.store().campaign_enrollments(id, cursor, 500).await?;
        read += page.enrollments.len();
        for e in page.enrollments {
            if e.state == EnrollmentState::Active && e.campaign_version < latest {
                *counts.entry(e.campaign_version).or_insert(0) += 1;
            }
        }
        match page.next {
            None => return Ok((counts, true)),
            Some(_) if limit.is_some_and(|l| read >= l) => return Ok((counts, false)),
            Some(next) => cursor = Some(next),
        }
    }
}

/// `POST /admin/campaigns/{id}/migrate` `{"from_version": n}`: moves the active enrollments of
/// older versions to the latest on purpose (see [`migrate_enrollments`]).
pub async fn migrate<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(req): JsonBody<MigrateRequest>,
) -> ApiResult<Response> {
    let id = config_id("id", &id)?;
    let done = migrate_enrollments(&*st.ports, &id, req.from_version).await?;
    Ok(axum::Json(json!({
        "campaign": id,
        "to_version": done.to_version,
        "migrated": done.migrated,
        "kept_on_their_version": done.kept,
        "changed_meanwhile": done.changed,
    }))
    .into_response())
}
