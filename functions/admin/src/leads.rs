//! Leads: lookup, search, export, sales status and erasure.
//!
//! Search and export read every lead through [`LeadStore::list_leads`] and filter in memory:
//! the store has no index on status, owner or source. That is fine for an admin tool over tens
//! of thousands of leads; a search answers after at most [`SCAN_BUDGET`] leads with a cursor to
//! go on from, so one request never reads the whole table. The console's Leads page and its CSV
//! (`console::lead_list`) share [`Filter`]: the same query means the same leads in both.
//!
//! A campaign filter is the one that does not read leads to decide: the leads enrolled in the
//! campaign come from the store's index of enrollments by campaign ([`Filter::load_campaign`],
//! at most [`MAX_CAMPAIGN_LEADS`] of them), not from each lead's enrollments.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures_util::StreamExt;
use futures_util::stream;
use leadflow_core::StoreError;
use leadflow_core::erasure::{erased_at, is_erased};
use leadflow_core::model::{Grade, Lead, LeadId, Lifecycle, SalesStatus};
use leadflow_core::normalize::{email_key, normalize_email};
use leadflow_core::ports::{LeadStore, Ports};
use leadflow_stage::sales::MarkError;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, JsonBody, PathParams, QueryParams, lead_id};

/// Leads read per store page while searching or exporting.
pub const SCAN_PAGE: usize = 200;
/// Most leads one search request reads before it answers with what it found and a cursor.
pub const SCAN_BUDGET: usize = 5_000;
/// Most results a search answers at once.
pub const MAX_LIMIT: usize = 500;
/// Most characters of the free-text search.
pub const MAX_Q_CHARS: usize = 200;
/// Most leads of one campaign a campaign filter reads from the enrollment index.
pub const MAX_CAMPAIGN_LEADS: usize = 100_000;
const DEFAULT_LIMIT: usize = 50;
const MAX_BY_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 2_000;
/// Enrollments read per page of the campaign index.
const ENROLLMENT_PAGE: usize = 500;

type St<P> = State<Arc<AppState<P>>>;

/// The query of search and export. Everything is read as text and parsed here, so that a bad
/// value is answered naming its parameter.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LeadQuery {
    pub email: Option<String>,
    pub q: Option<String>,
    pub status: Option<String>,
    pub lifecycle: Option<String>,
    /// Either of the two: a lifecycle stage (`lead`, `mql`, `sql`) or a sales status (`new`,
    /// `contacted`, `won`, `lost`); to a marketer both are stages.
    pub stage: Option<String>,
    /// `A` to `D`, from the score.
    pub grade: Option<String>,
    pub owner: Option<String>,
    pub source: Option<String>,
    /// A campaign id: the leads enrolled in it (any version, any state).
    pub campaign: Option<String>,
    /// Captured on or after: `YYYY-MM-DD` (from midnight UTC) or an RFC 3339 time.
    pub since: Option<String>,
    /// Captured up to: `YYYY-MM-DD` (that whole day, UTC) or an RFC 3339 time (before it).
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub format: Option<String>,
}

/// What a lead must match; every part that is set must hold.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Lowercased; matched against id, address, names, company and job title.
    q: Option<String>,
    status: Option<SalesStatus>,
    lifecycle: Option<Lifecycle>,
    grade: Option<Grade>,
    /// A rep id; `(none)` for leads nobody owns.
    owner: Option<String>,
    /// First-touch `utm_source`, ignoring case; `(none)` for leads without one.
    source: Option<String>,
    /// Captured at or after.
    since: Option<DateTime<Utc>>,
    /// Captured before.
    until: Option<DateTime<Utc>>,
    campaign: Option<String>,
    /// The leads enrolled in `campaign`, once [`Filter::load_campaign`] read them.
    members: Option<Arc<HashSet<LeadId>>>,
    /// The campaign has more leads than [`MAX_CAMPAIGN_LEADS`]: `members` is not all of them.
    members_capped: bool,
}

/// What reports and filters call a lead without a source or an owner.
pub const NONE: &str = "(none)";

/// The stages a lead can be filtered by: lifecycle first, then sales status.
pub const STAGES: &[&str] = &["lead", "mql", "sql", "new", "contacted", "won", "lost"];

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_enum<T: serde::de::DeserializeOwned>(field: &str, raw: &str, allowed: &str) -> ApiResult<T> {
    serde_json::from_value(Value::String(raw.to_ascii_lowercase()))
        .map_err(|_| ApiError::invalid(field, format!("`{raw}` is not one of {allowed}")))
}

pub fn parse_status(field: &str, raw: &str) -> ApiResult<SalesStatus> {
    parse_enum(field, raw, "new, contacted, won, lost")
}

fn parse_grade(raw: &str) -> ApiResult<Grade> {
    match raw.to_ascii_uppercase().as_str() {
        "A" => Ok(Grade::A),
        "B" => Ok(Grade::B),
        "C" => Ok(Grade::C),
        "D" => Ok(Grade::D),
        _ => Err(ApiError::invalid("grade", format!("`{raw}` is not one of A, B, C, D"))),
    }
}

/// Where a date or time of a filter puts its bound: `YYYY-MM-DD` is midnight UTC that day (the
/// day after, for an end that includes its day); anything else must be an RFC 3339 time.
fn parse_bound(field: &str, raw: &str, end: bool) -> ApiResult<DateTime<Utc>> {
    let bad = || ApiError::invalid(field, "must be a date as YYYY-MM-DD (or an RFC 3339 time)");
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = if end { day.checked_add_days(Days::new(1)).ok_or_else(bad)? } else { day };
        return day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| bad())
}

/// The lowest lead id of the millisecond `at` falls in (a lead id is a ULID: 48 bits of
/// milliseconds since the epoch, then random), or of the next one if `round_up` and `at` falls
/// after its millisecond began. Leads captured at or after `at` have ids at or above
/// `id_at(at, false)`; leads captured before it have ids below `id_at(at, true)`.
pub fn id_at(at: DateTime<Utc>, round_up: bool) -> LeadId {
    let within = !at.timestamp_subsec_nanos().is_multiple_of(1_000_000);
    let ms = at.timestamp_millis().saturating_add(i64::from(round_up && within));
    LeadId::from_parts(ms.clamp(0, (1 << 48) - 1) as u64, 0)
}

/// The value of a result, or `None` with its error kept in `problems`.
fn take<T>(problems: &mut Vec<ApiError>, r: ApiResult<Option<T>>) -> Option<T> {
    r.unwrap_or_else(|e| {
        problems.push(e);
        None
    })
}

/// A text parameter, trimmed, of at most [`MAX_Q_CHARS`] characters.
fn bounded(field: &str, v: &Option<String>) -> ApiResult<Option<String>> {
    match non_empty(v) {
        Some(t) if t.chars().count() > MAX_Q_CHARS => {
            Err(ApiError::invalid(field, format!("at most {MAX_Q_CHARS} characters")))
        }
        other => Ok(other.map(str::to_string)),
    }
}

impl Filter {
    pub fn parse(q: &LeadQuery) -> ApiResult<Self> {
        Self::check(q).map_err(|mut problems| problems.swap_remove(0))
    }

    /// The filter, or every problem of the query, each naming its parameter.
    pub fn check(q: &LeadQuery) -> Result<Self, Vec<ApiError>> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let text = take(p, bounded("q", &q.q)).map(|t| t.to_lowercase());
        let mut status = take(p, non_empty(&q.status).map(|s| parse_status("status", s)).transpose());
        let mut lifecycle =
            take(p, non_empty(&q.lifecycle).map(|s| parse_enum("lifecycle", s, "lead, mql, sql")).transpose());
        if let Some(stage) = non_empty(&q.stage) {
            let lower = Value::String(stage.to_ascii_lowercase());
            let as_lifecycle = serde_json::from_value::<Lifecycle>(lower.clone()).ok();
            let as_status = serde_json::from_value::<SalesStatus>(lower).ok();
            match (as_lifecycle, as_status) {
                (Some(l), _) if lifecycle.is_none_or(|had| had == l) => lifecycle = Some(l),
                (_, Some(s)) if status.is_none_or(|had| had == s) => status = Some(s),
                (None, None) => p.push(ApiError::invalid(
                    "stage",
                    format!("`{stage}` is not one of lead, MQL, SQL, new, contacted, won, lost"),
                )),
                _ => p.push(ApiError::invalid("stage", "contradicts the lifecycle or status given with it")),
            }
        }
        let grade = take(p, non_empty(&q.grade).map(parse_grade).transpose());
        let since = take(p, non_empty(&q.since).map(|s| parse_bound("since", s, false)).transpose());
        let until = take(p, non_empty(&q.until).map(|s| parse_bound("until", s, true)).transpose());
        let campaign = take(p, non_empty(&q.campaign).map(|c| crate::extract::config_id("campaign", c)).transpose());
        let owner = take(p, bounded("owner", &q.owner));
        let source = take(p, bounded("source", &q.source)).map(|s| s.to_lowercase());
        if let (Some(s), Some(u)) = (since, until)
            && u <= s
        {
            problems.push(ApiError::invalid("until", "must not be before since"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Filter {
            q: text,
            status,
            lifecycle,
            grade,
            owner,
            source,
            since,
            until,
            campaign,
            members: None,
            members_capped: false,
        })
    }

    /// Captured at or after this time, if the filter says.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    /// Captured before this time, if the filter says.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }

    pub fn campaign(&self) -> Option<&str> {
        self.campaign.as_deref()
    }

    /// The owner the filter asks for: a rep id or [`NONE`].
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The leads enrolled in the filter's campaign (read by [`Filter::load_campaign`]).
    pub fn members(&self) -> Option<&HashSet<LeadId>> {
        self.members.as_deref()
    }

    /// Whether the campaign had more leads than the filter could hold.
    pub fn members_capped(&self) -> bool {
        self.members_capped
    }

    /// Reads the leads enrolled in the filter's campaign, if it names one, from the store's
    /// enrollment index (at most [`MAX_CAMPAIGN_LEADS`]). A campaign nobody defined is an error
    /// on `campaign`; a defined one nobody is enrolled in matches nothing.
    pub async fn load_campaign<P: Ports>(mut self, ports: &P) -> ApiResult<Self> {
        let Some(id) = self.campaign.clone() else { return Ok(self) };
        if crate::campaigns::current(ports, &id).await?.is_none() {
            return Err(ApiError::invalid("campaign", format!("no campaign has the id `{id}`")));
        }
        let mut members = HashSet::new();
        let mut cursor = None;
        'pages: loop {
            let page = ports.store().campaign_enrollments(&id, cursor, ENROLLMENT_PAGE).await?;
            for e in page.enrollments {
                if members.len() >= MAX_CAMPAIGN_LEADS && !members.contains(&e.lead_id) {
                    self.members_capped = true;
                    break 'pages;
                }
                members.insert(e.lead_id);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(self.with_members(members))
    }

    /// The filter with `members` as the leads of its campaign.
    pub fn with_members(mut self, members: HashSet<LeadId>) -> Self {
        self.members = Some(Arc::new(members));
        self
    }

    pub fn matches(&self, lead: &Lead) -> bool {
        if self.status.is_some_and(|s| s != lead.status) || self.lifecycle.is_some_and(|l| l != lead.lifecycle) {
            return false;
        }
        if self.grade.is_some() && self.grade != lead.score.as_ref().map(|s| s.grade) {
            return false;
        }
        if self.since.is_some_and(|s| lead.created_at < s) || self.until.is_some_and(|u| lead.created_at >= u) {
            return false;
        }
        if let Some(members) = &self.members
            && !members.contains(&lead.id)
        {
            return false;
        }
        if let Some(owner) = &self.owner {
            let owned_by = lead.owner.as_ref().map_or(NONE, |o| o.rep_id.as_str());
            if owned_by != owner {
                return false;
            }
        }
        if let Some(source) = &self.source
            && first_source(lead).to_lowercase() != *source
        {
            return false;
        }
        if let Some(q) = &self.q {
            let c = &lead.contact;
            let texts = [
                Some(c.email.as_str()),
                c.first_name.as_deref(),
                c.last_name.as_deref(),
                c.company.as_deref(),
                c.job_title.as_deref(),
            ];
            let hit = lead.id.to_string().eq_ignore_ascii_case(q)
                || texts.iter().flatten().any(|t| !t.is_empty() && t.to_lowercase().contains(q.as_str()))
                || display_name(lead).is_some_and(|n| n.to_lowercase().contains(q.as_str()));
            if !hit {
                return false;
            }
        }
        true
    }
}

/// First-touch `utm_source`, or `(none)`.
pub fn first_source(lead: &Lead) -> &str {
    lead.attribution.first_touch.utm.source.as_deref().filter(|s| !s.is_empty()).unwrap_or(NONE)
}

fn display_name(lead: &Lead) -> Option<String> {
    let c = &lead.contact;
    match (&c.first_name, &c.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(n), None) | (None, Some(n)) => Some(n.clone()),
        (None, None) => None,
    }
}

fn summary(lead: &Lead) -> Value {
    let erased = is_erased(lead);
    json!({
        "id": lead.id,
        "created_at": lead.created_at,
        "email": (!erased).then_some(&lead.contact.email),
        "name": display_name(lead),
        "company": lead.contact.company,
        "status": lead.status,
        "lifecycle": lead.lifecycle,
        "valid": lead.is_valid(),
        "score": lead.score.as_ref().map(|s| s.total),
        "grade": lead.score.as_ref().map(|s| s.grade),
        "owner": lead.owner.as_ref().map(|o| &o.rep_id),
        "source": lead.attribution.first_touch.utm.source,
        "erased": erased,
    })
}

fn parse_limit(raw: &Option<String>) -> ApiResult<usize> {
    match non_empty(raw) {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
    }
}

fn bad_cursor() -> ApiError {
    ApiError::invalid("cursor", "not a cursor this API answered; start again without one")
}

/// A search cursor: how many leads of a store page were read, and that page's store cursor.
fn parse_cursor(raw: &Option<String>) -> ApiResult<(Option<String>, usize)> {
    let Some(raw) = non_empty(raw) else {
        return Ok((None, 0));
    };
    let (skip, store) =
        raw.split_once(':').and_then(|(n, c)| n.parse::<usize>().ok().map(|n| (n, c))).ok_or_else(bad_cursor)?;
    Ok(((!store.is_empty()).then(|| store.to_string()), skip))
}

fn cursor(store: &Option<String>, skip: usize) -> String {
    format!("{skip}:{}", store.as_deref().unwrap_or(""))
}

/// `GET /admin/leads`: by `email=`, else a search over the filters of [`LeadQuery`] (see the
/// module's note on scanning). Answers `{"leads": [...], "next": cursor or null, "scanned": n}`; with a `next`,
/// ask again with `cursor=<next>` for more (a page may hold fewer than `limit` leads when the
/// scan budget ran out first).
pub async fn search<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    QueryParams(q): QueryParams<LeadQuery>,
) -> ApiResult<Response> {
    // Checked even for a lookup by address, which uses none of them: a bad one is told, not ignored.
    let filter = Filter::parse(&q)?;
    let limit = parse_limit(&q.limit)?;
    let (mut store_cursor, mut skip) = parse_cursor(&q.cursor)?;
    if let Some(email) = &q.email {
        return by_email(&*st.ports, email).await;
    }
    let filter = filter.load_campaign(&*st.ports).await?;
    let store = st.ports.store();
    let mut found = Vec::new();
    let mut scanned = 0usize;
    let mut pages = 0usize;
    let next = loop {
        let page = match store.list_leads(store_cursor.clone(), SCAN_PAGE).await {
            // The client's cursor, which the store did not hand out: theirs to fix, not a 503.
            Err(StoreError::Corrupt(_)) if pages == 0 && store_cursor.is_some() => return Err(bad_cursor()),
            page => page?,
        };
        pages += 1;
        let mut stopped_at = None;
        for (i, lead) in page.leads.iter().enumerate().skip(skip) {
            scanned += 1;
            if filter.matches(lead) {
                found.push(summary(lead));
            }
            if found.len() >= limit || scanned >= SCAN_BUDGET {
                stopped_at = Some(i + 1);
                break;
            }
        }
        if let Some(read) = stopped_at
            && read < page.leads.len()
        {
            break Some(cursor(&store_cursor, read));
        }
        let Some(following) = page.next else {
            break None;
        };
        store_cursor = Some(following);
        skip = 0;
        // Stop on a full answer, a spent budget, or a store that keeps answering empty pages.
        if found.len() >= limit || scanned >= SCAN_BUDGET || pages * SCAN_PAGE >= 2 * SCAN_BUDGET {
            break Some(cursor(&store_cursor, 0));
        }
    };
    Ok(axum::Json(json!({ "leads": found, "next": next, "scanned": scanned })).into_response())
}

async fn by_email<P: Ports>(ports: &P, email: &str) -> ApiResult<Response> {
    let normalized = normalize_email(email).map_err(|p| ApiError::invalid("email", p.message))?;
    match ports.store().find_by_email_key(&email_key(&normalized.address)).await? {
        Some(id) => lead_response(ports, id).await,
        None => Err(ApiError::not_found("lead_not_found", "No lead has this email address.")),
    }
}

/// The lead a path id names: itself, or the lead a merged capture id went into.
async fn resolve<P: Ports>(ports: &P, raw: &str) -> ApiResult<LeadId> {
    let id = lead_id(raw)?;
    ports.store().resolve_lead(id).await?.ok_or_else(|| {
        ApiError::not_found(
            "lead_not_found",
            "No lead has this id (yet: a lead just captured appears within a second).",
        )
    })
}

/// `GET /admin/leads/{id}`: status, normalized fields, score reasons, owner with the routing
/// explanation, enrollments and the activity trail.
pub async fn show<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let id = resolve(&*st.ports, &id).await?;
    lead_response(&*st.ports, id).await
}

async fn lead_response<P: Ports>(ports: &P, id: LeadId) -> ApiResult<Response> {
    let store = ports.store();
    let Some(lead) = store.get_lead(id).await? else {
        return Err(ApiError::not_found("lead_not_found", "No lead has this id."));
    };
    let activities = store.activities(id).await?;
    let enrollments = store.enrollments(id).await?;
    let config = ports.config();
    let owner = lead.owner.as_ref().map(|o| {
        let rep = config.routing.rep(&o.rep_id);
        json!({
            "rep_id": o.rep_id,
            "rep_name": rep.map(|r| r.name.clone()),
            "team_id": o.team_id,
            "assigned_at": o.assigned_at,
            "sla_due_at": o.sla_due_at,
            "via_fallback": o.via_fallback,
            "explanation": o.explanation,
        })
    });
    Ok(axum::Json(json!({
        "id": lead.id,
        "version": lead.version,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "erased": is_erased(&lead),
        "erased_at": erased_at(&lead),
        "status": lead.status,
        "validity": lead.validity,
        "warnings": lead.warnings,
        "contact": lead.contact,
        "consent": lead.consent,
        "attribution": lead.attribution,
        "custom": lead.custom,
        "submissions": lead.submissions,
        "score": lead.score,
        "grade": lead.score.as_ref().map(|s| s.grade),
        "lifecycle": lead.lifecycle,
        "owner": owner,
        "enrollments": enrollments,
        "activities": activities,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct StatusBody {
    pub status: String,
    /// Who made the change: a rep id or name.
    #[serde(default)]
    pub by: Option<String>,
    /// Kept on the trail with the change.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /admin/leads/{id}/status` `{"status": "contacted"|"won"|"lost", "by": …}`. Won and lost
/// stop the lead's nurture. A lead never goes back to new; marking the same status twice is
/// harmless (`"changed": false`).
pub async fn set_status<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<Response> {
    let status = parse_status("status", body.status.trim())?;
    let by = match body.by.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) if b.chars().count() > MAX_BY_CHARS => {
            return Err(ApiError::invalid("by", format!("at most {MAX_BY_CHARS} characters")));
        }
        Some(b) if b.chars().any(char::is_control) => {
            return Err(ApiError::invalid("by", "must be one line of text"));
        }
        other => other.map(str::to_string),
    };
    if body.note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(ApiError::invalid("note", format!("at most {MAX_NOTE_CHARS} characters")));
    }
    let note = body.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_string);
    let id = resolve(&*st.ports, &id).await?;
    match leadflow_stage::sales::mark(&*st.ports, id, status, by, note).await {
        Ok(m) => Ok(axum::Json(json!({
            "lead_id": id,
            "from": m.from,
            "status": m.lead.status,
            "changed": m.changed,
            "enrollments_stopped": m.stopped,
        }))
        .into_response()),
        Err(MarkError::NotFound) => Err(ApiError::not_found("lead_not_found", "No lead has this id.")),
        Err(e @ MarkError::Erased) => Err(ApiError::new(StatusCode::GONE, "lead_erased", e.to_string())),
        Err(e @ MarkError::Refused { .. }) => Err(ApiError {
            field: Some("status".into()),
            ..ApiError::conflict("status_refused", format!("{}.", capitalized(&e.to_string())))
        }),
        Err(MarkError::Stage(e)) => Err(e.into()),
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `DELETE /admin/leads/{id}`: erases the lead's personal data (see
/// [`leadflow_stage::erasure::erase`]). Erasing twice answers the same, with
/// `"already_erased": true`.
pub async fn erase<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Response> {
    let id = resolve(&*st.ports, &id).await?;
    match leadflow_stage::erasure::erase(&*st.ports, id).await? {
        Some(e) => Ok(axum::Json(json!({
            "lead_id": e.lead_id,
            "erased": true,
            "already_erased": e.already,
            "enrollments_stopped": e.stopped,
            "emails_deleted": e.emails_deleted,
        }))
        .into_response()),
        None => Err(ApiError::not_found("lead_not_found", "No lead has this id.")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// `GET /admin/leads/export?format=csv|json` with the filters of search: every matching lead,
/// streamed page by page. JSON is an array of whole leads; CSV has one row per lead with the
/// columns of [`CSV_COLUMNS`], each text cell that a spreadsheet would read as a formula
/// neutralized with a leading `'`. A store failure before the first byte answers 503; one
/// later breaks the stream off, so a client never mistakes a partial file for a whole one.
pub async fn export<P: Ports>(
    _: Authorized,
    State(st): St<P>,
    QueryParams(q): QueryParams<LeadQuery>,
) -> ApiResult<Response> {
    let filter = Filter::parse(&q)?;
    let format = match non_empty(&q.format).map(str::to_ascii_lowercase).as_deref() {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(other) => return Err(ApiError::invalid("format", format!("`{other}` is not one of csv, json"))),
    };
    let filter = filter.load_campaign(&*st.ports).await?;
    let ports = Arc::clone(&st.ports);
    let first = ports.store().list_leads(None, SCAN_PAGE).await?;
    let mut writer = ExportWriter { format, filter, rows: 0 };
    let mut head = writer.head();
    head.push_str(&writer.rows(&first.leads));
    let next = match first.next {
        Some(c) => Next::Page(c),
        None => Next::Trailer,
    };
    let rest = stream::unfold((ports, next, writer), |(ports, next, mut writer)| async move {
        match next {
            Next::Done => None,
            Next::Trailer => Some((Ok(Bytes::from(writer.trailer())), (ports, Next::Done, writer))),
            Next::Page(c) => {
                let page = ports.store().list_leads(Some(c), SCAN_PAGE).await;
                match page {
                    Ok(page) => {
                        let chunk = Bytes::from(writer.rows(&page.leads));
                        let next = page.next.map_or(Next::Trailer, Next::Page);
                        Some((Ok(chunk), (ports, next, writer)))
                    }
                    Err(e) => {
                        warn!(error = %e, rows = writer.rows, "export broken off: the lead store failed");
                        Some((Err(std::io::Error::other(e.to_string())), (ports, Next::Done, writer)))
                    }
                }
            }
        }
    });
    let body = Body::from_stream(stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) }).chain(rest));
    let (content_type, file) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "leads.csv"),
        Format::Json => ("application/json", "leads.json"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        body,
    )
        .into_response())
}

enum Next {
    Page(String),
    Trailer,
    Done,
}

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "status",
    "lifecycle",
    "valid",
    "erased",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "country",
    "domain_kind",
    "consent",
    "score",
    "grade",
    "owner",
    "team",
    "source",
    "medium",
    "campaign",
    "form",
    "submissions",
];

struct ExportWriter {
    format: Format,
    filter: Filter,
    rows: usize,
}

impl ExportWriter {
    fn head(&self) -> String {
        match self.format {
            Format::Csv => {
                let mut line = CSV_COLUMNS.join(",");
                line.push_str("\r\n");
                line
            }
            Format::Json => "[".to_string(),
        }
    }

    fn trailer(&self) -> String {
        match self.format {
            Format::Csv => String::new(),
            Format::Json if self.rows == 0 => "]\n".to_string(),
            Format::Json => "\n]\n".to_string(),
        }
    }

    fn rows(&mut self, leads: &[Lead]) -> String {
        let mut out = String::new();
        for lead in leads.iter().filter(|l| self.filter.matches(l)) {
            match self.format {
                Format::Csv => out.push_str(&csv_row(lead)),
                Format::Json => match serde_json::to_string(lead) {
                    Ok(text) => {
                        out.push_str(if self.rows == 0 { "\n" } else { ",\n" });
                        out.push_str(&text);
                    }
                    Err(e) => {
                        warn!(lead_id = %lead.id, error = %e, "lead left out of the export: not serializable");
                        continue;
                    }
                },
            }
            self.rows += 1;
        }
        out
    }
}

/// A text cell: neutralized against formula injection, then quoted when it must be.
pub fn csv_text(value: &str) -> String {
    let neutral =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    csv_quoted(&neutral)
}

pub(crate) fn csv_quoted(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn csv_row(lead: &Lead) -> String {
    let c = &lead.contact;
    let t = &lead.attribution.first_touch;
    let erased = is_erased(lead);
    let text = |v: Option<&str>| csv_text(v.unwrap_or(""));
    // Cells of our own making (ids, times, enums, numbers) need no neutralizing: a negative
    // score must stay a number.
    let own = |v: String| csv_quoted(&v);
    let cells = [
        own(lead.id.to_string()),
        own(lead.created_at.to_rfc3339()),
        own(lead.updated_at.to_rfc3339()),
        own(lead.status.as_str().to_string()),
        own(lead.lifecycle.as_str().to_string()),
        own(lead.is_valid().to_string()),
        own(erased.to_string()),
        text((!erased).then_some(c.email.as_str())),
        text(c.first_name.as_deref()),
        text(c.last_name.as_deref()),
        text(c.phone.as_deref()),
        text(c.company.as_deref()),
        text(c.job_title.as_deref()),
        text(c.country.as_deref()),
        own(c.domain_kind.as_str().to_string()),
        own(lead.consent.as_ref().is_some_and(|k| k.given).to_string()),
        own(lead.score.as_ref().map(|s| s.total.to_string()).unwrap_or_default()),
        own(lead.score.as_ref().map(|s| format!("{:?}", s.grade)).unwrap_or_default()),
        text(lead.owner.as_ref().map(|o| o.rep_id.as_str())),
        text(lead.owner.as_ref().and_then(|o| o.team_id.as_deref())),
        text(t.utm.source.as_deref()),
        text(t.utm.medium.as_deref()),
        text(t.utm.campaign.as_deref()),
        text(t.form.as_deref()),
        own(lead.submissions.to_string()),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralized_and_cells_quoted() {
        assert_eq!(csv_text("=cmd()"), "'=cmd()");
        assert_eq!(csv_text("+1"), "'+1");
        assert_eq!(csv_text("-1"), "'-1");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("\tx"), "'\tx");
        assert_eq!(csv_text("\rx"), "\"'\rx\"");
        assert_eq!(csv_text("Acme, Inc."), "\"Acme, Inc.\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_text("plain"), "plain");
    }

    fn query(pairs: &[(&str, &str)]) -> LeadQuery {
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap_or_default()).unwrap_or_default()
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<String> {
        Filter::check(&query(pairs)).err().unwrap_or_default().into_iter().filter_map(|e| e.field).collect()
    }

    #[test]
    fn every_bad_filter_is_named_at_once() {
        let long = "x".repeat(MAX_Q_CHARS + 1);
        let bad = [
            ("q", long.as_str()),
            ("stage", "hot"),
            ("grade", "E"),
            ("since", "2026-02-30"),
            ("until", "soon"),
            ("campaign", "../x"),
            ("owner", long.as_str()),
            ("source", long.as_str()),
        ];
        assert_eq!(fields(&bad), ["q", "stage", "grade", "since", "until", "campaign", "owner", "source"]);
        assert_eq!(fields(&[("since", "2026-03-02"), ("until", "2026-03-01")]), ["until"]);
        assert_eq!(fields(&[("stage", "mql"), ("lifecycle", "sql")]), ["stage"]);
        assert!(
            fields(&[("q", &"x".repeat(MAX_Q_CHARS)), ("since", "2026-03-01"), ("until", "2026-03-01")]).is_empty()
        );
    }

    #[test]
    fn a_stage_is_a_lifecycle_or_a_status_and_a_day_includes_itself() {
        let f = Filter::check(&query(&[("stage", "MQL"), ("grade", "b")])).unwrap_or_default();
        assert_eq!((f.lifecycle, f.status, f.grade), (Some(Lifecycle::Mql), None, Some(Grade::B)));
        let f = Filter::check(&query(&[("stage", "won")])).unwrap_or_default();
        assert_eq!((f.lifecycle, f.status), (None, Some(SalesStatus::Won)));
        let f = Filter::check(&query(&[("since", "2026-03-01"), ("until", "2026-03-01")])).unwrap_or_default();
        assert_eq!(f.since.map(|t| t.to_rfc3339()).as_deref(), Some("2026-03-01T00:00:00+00:00"));
        assert_eq!(f.until.map(|t| t.to_rfc3339()).as_deref(), Some("2026-03-02T00:00:00+00:00"));
        let f = Filter::check(&query(&[("until", "2026-03-01T10:00:00.0005Z")])).unwrap_or_default();
        let until = f.until.unwrap_or_default();
        assert_eq!(id_at(until, true), LeadId::from_parts(until.timestamp_millis() as u64 + 1, 0), "rounds up");
        assert_eq!(id_at(until, false), LeadId::from_parts(until.timestamp_millis() as u64, 0));
    }

    #[test]
    fn cursors_round_trip() {
        let c = cursor(&Some("abc:def".into()), 7);
        assert_eq!(parse_cursor(&Some(c)).ok(), Some((Some("abc:def".to_string()), 7)));
        assert_eq!(parse_cursor(&Some(cursor(&None, 3))).ok(), Some((None, 3)));
        assert!(parse_cursor(&Some("nonsense".into())).is_err());
    }
}
