//! The filters of search and both exports ([`LeadQuery`] read into a [`Filter`]): the console's
//! Leads page and its CSV (`console::lead_list`) use them too, so the same query means the same
//! leads everywhere.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use leadflow_core::model::{Grade, Lead, LeadId, Lifecycle, SalesStatus};
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use leadflow_core::ports::Enrollments;

/// Most characters of the free-text search.
pub const MAX_Q_CHARS: usize = 200;
/// Most leads of one campaign a campaign filter reads from the enrollment index.
pub const MAX_CAMPAIGN_LEADS: usize = 100_000;
/// Enrollments read per page of the campaign index.
const ENROLLMENT_PAGE: usize = 500;

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

pub(super) fn non_empty(v: &Option<String>) -> Option<&str> {
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

pub(super) fn display_name(lead: &Lead) -> Option<String> {
    let c = &lead.contact;
    match (&c.first_name, &c.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(n), None) | (None, Some(n)) => Some(n.clone()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
