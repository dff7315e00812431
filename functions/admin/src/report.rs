//! Reports over every lead, erased ones included (their tombstones keep what is counted).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Utc};
use leadflow_app::live::CAMPAIGN_PREFIX;
use leadflow_core::StoreError;
use leadflow_core::model::LeadId;
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, QueryParams};
use crate::leads::NONE;

pub use leadflow_core::funnel::Funnel;
use leadflow_core::ports::{Documents, Enrollments, Listings};

/// Leads' facts per store request: the report holds only the counts, so pages can be large.
const FACTS_PAGE: usize = 1000;

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

/// Counts every lead captured in `[since, until)` (erased ones too: their tombstones keep what is
/// counted), from the store's funnel facts ([`Listings::funnel_facts`]), never whole leads.
pub async fn compute<P: Ports>(
    ports: &P,
    by: By,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<FunnelReport, StoreError> {
    let store = ports.store();
    let campaigns = match by {
        By::Campaign => campaigns_of_leads(ports).await?,
        By::Source | By::Week => HashMap::new(),
    };
    let mut report = FunnelReport::default();
    let mut cursor = None;
    loop {
        let page = store.funnel_facts(since, until, cursor, FACTS_PAGE).await?;
        for lead in &page.facts {
            report.overall.count(lead);
            let groups = &mut report.groups;
            match by {
                By::Source => groups.entry(lead.source.as_deref().unwrap_or(NONE).to_string()).or_default().count(lead),
                By::Week => {
                    let week = lead.created_at.iso_week();
                    groups.entry(format!("{}-W{:02}", week.year(), week.week())).or_default().count(lead);
                }
                By::Campaign => match campaigns.get(&lead.id) {
                    None => groups.entry(NONE.to_string()).or_default().count(lead),
                    Some(ids) => {
                        for c in ids {
                            groups.entry(c.clone()).or_default().count(lead);
                        }
                    }
                },
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// Every lead's campaigns, from each campaign's enrollments (any version or state): the
/// campaigns applied as documents and those of the deployed files. One walk per campaign rather
/// than a read per lead. An enrollment in a campaign that is in neither (its file removed, never
/// applied) is not found.
async fn campaigns_of_leads<P: Ports>(ports: &P) -> Result<HashMap<LeadId, BTreeSet<String>>, StoreError> {
    let store = ports.store();
    let mut ids: BTreeSet<String> = store
        .latest_documents(CAMPAIGN_PREFIX)
        .await?
        .into_iter()
        .filter_map(|d| d.name.strip_prefix(CAMPAIGN_PREFIX).map(str::to_string))
        .collect();
    ids.extend(ports.config().campaigns.iter().map(|c| c.campaign.id.clone()));
    let mut of_lead: HashMap<LeadId, BTreeSet<String>> = HashMap::new();
    for id in ids {
        let mut cursor = None;
        loop {
            let page = store.campaign_enrollments(&id, cursor, FACTS_PAGE).await?;
            for e in page.enrollments {
                of_lead.entry(e.lead_id).or_default().insert(e.campaign_id);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(of_lead)
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
/// week it came in. Reads every lead's funnel facts in the range ([`compute`]).
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
