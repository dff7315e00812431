//! Reports over every lead, erased ones included (their tombstones keep what is counted).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use leadflow_core::model::{Lead, Lifecycle, SalesStatus};
use leadflow_core::ports::{LeadStore, Ports};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, QueryParams};
use crate::leads::{NONE, SCAN_PAGE, first_source};

/// The funnel's stages, each a subset of the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    pub captured: u64,
    pub valid: u64,
    pub mql: u64,
    pub assigned: u64,
    /// Sales-qualified and in sales' hands: assigned, and its score reached the SQL threshold or
    /// a rep has worked it. Assigned comes first so every stage stays a subset of the one before:
    /// a lead a rep has contacted is one sales accepted, whatever its score.
    pub sql: u64,
    /// Contacted, won or lost: sales has spoken to the lead.
    pub contacted: u64,
    pub won: u64,
}

impl Funnel {
    pub fn count(&mut self, lead: &Lead) {
        self.captured += 1;
        if !lead.is_valid() {
            return;
        }
        self.valid += 1;
        if lead.lifecycle < Lifecycle::Mql {
            return;
        }
        self.mql += 1;
        if lead.owner.is_none() {
            return;
        }
        self.assigned += 1;
        if lead.lifecycle < Lifecycle::Sql && lead.status == SalesStatus::New {
            return;
        }
        self.sql += 1;
        if lead.status == SalesStatus::New {
            return;
        }
        self.contacted += 1;
        if lead.status == SalesStatus::Won {
            self.won += 1;
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct FunnelQuery {
    pub by: Option<String>,
    /// Only leads created at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only leads created before this time (RFC 3339).
    pub until: Option<String>,
}

/// What the funnel is broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The first touch's `utm_source`.
    Source,
    /// Each campaign the lead was enrolled in.
    Campaign,
    /// The ISO week the lead came in (`2026-W49`).
    Week,
}

impl By {
    pub fn parse(raw: Option<&str>) -> Result<By, String> {
        match raw.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("source") => Ok(By::Source),
            Some("campaign") => Ok(By::Campaign),
            Some("week") => Ok(By::Week),
            Some(other) => Err(format!("`{other}` is not one of source, campaign, week")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            By::Source => "source",
            By::Campaign => "campaign",
            By::Week => "week",
        }
    }
}

/// The funnel over the leads created in `[since, until)`, overall and per group.
#[derive(Debug, Clone, Default)]
pub struct FunnelReport {
    pub overall: Funnel,
    pub groups: BTreeMap<String, Funnel>,
}

/// Counts every lead (erased ones too: their tombstones keep what is counted). Reads every lead,
/// and with [`By::Campaign`] every lead's enrollments.
pub async fn compute<P: Ports>(
    ports: &P,
    by: By,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<FunnelReport, leadflow_core::error::StoreError> {
    let store = ports.store();
    let mut report = FunnelReport::default();
    let mut cursor = None;
    loop {
        let page = store.list_leads(cursor, SCAN_PAGE).await?;
        for lead in &page.leads {
            if since.is_some_and(|s| lead.created_at < s) || until.is_some_and(|u| lead.created_at >= u) {
                continue;
            }
            report.overall.count(lead);
            let groups = &mut report.groups;
            match by {
                By::Source => groups.entry(first_source(lead).to_string()).or_default().count(lead),
                By::Week => {
                    let week = lead.created_at.iso_week();
                    groups.entry(format!("{}-W{:02}", week.year(), week.week())).or_default().count(lead);
                }
                By::Campaign => {
                    let campaigns: BTreeSet<String> =
                        store.enrollments(lead.id).await?.into_iter().map(|e| e.campaign_id).collect();
                    if campaigns.is_empty() {
                        groups.entry(NONE.to_string()).or_default().count(lead);
                    }
                    for c in campaigns {
                        groups.entry(c).or_default().count(lead);
                    }
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(report)
}

fn time(field: &str, raw: &Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z")),
    }
}

/// `GET /admin/reports/funnel?by=source|campaign|week&since=&until=`: how many leads reached
/// each stage, overall and per first-touch `utm_source` (`(none)` without one), per campaign the
/// lead was enrolled in (a lead in two campaigns counts in both; `(none)` for none) or per ISO
/// week it came in. Reads every lead ([`compute`]): an admin report, not a dashboard to poll.
pub async fn funnel<P: Ports>(
    _: Authorized,
    State(st): State<Arc<AppState<P>>>,
    QueryParams(q): QueryParams<FunnelQuery>,
) -> ApiResult<Response> {
    let by = By::parse(q.by.as_deref()).map_err(|m| ApiError::invalid("by", m))?;
    let since = time("since", &q.since)?;
    let until = time("until", &q.until)?;
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    let FunnelReport { overall, groups } = compute(&*st.ports, by, since, until).await?;
    let groups: Vec<_> = groups.into_iter().map(|(key, f)| json!({ "key": key, "funnel": f })).collect();
    Ok(axum::Json(json!({
        "by": by.as_str(),
        "since": since,
        "until": until,
        "overall": overall,
        "groups": groups,
    }))
    .into_response())
}
