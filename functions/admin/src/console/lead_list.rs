//! Marketing's Leads page: every lead, newest first, filtered by the query of the admin API's
//! search ([`crate::leads::Filter`]: free text, stage, grade, owner, source, campaign, captured
//! since/until), 25 to a page with a cursor, and the same leads as CSV ([`super::lead_csv`]).
//!
//! Leads come newest first from the store's capture-order index ([`Listings::leads_before`]);
//! `until` starts the walk there and `since` ends it, since a lead id is a ULID of its capture
//! time. A campaign filter walks the campaign's leads instead (from the enrollment index, newest
//! first by id), reading only those. The other filters apply in memory, so one page reads at
//! most [`SCAN_BUDGET`] leads: a narrow filter over many leads answers with what it found, how
//! far back it searched, and a link that goes on from there.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use leadflow_core::config::CompiledConfig;
use leadflow_core::erasure::is_erased;
use leadflow_core::error::StoreError;
use leadflow_core::local_time::in_words;
use leadflow_core::model::{Lead, LeadId, Lifecycle};
use leadflow_core::ports::{LeadStore, Ports};
use serde_json::{Map, Value, json};
use tracing::warn;

use super::session::Role;
use super::{Console, Signed, query, thousands};
use crate::leads::{Filter, LeadQuery, NONE, first_source, id_at};

/// Leads on one page.
pub const PAGE_SIZE: usize = 25;
/// Most leads one page reads before it answers with what it found so far.
pub const SCAN_BUDGET: usize = 2_000;
/// Leads read from the store at a time once the first page's worth did not fill the page.
pub(super) const BATCH: usize = 200;
/// Lead reads in flight at once when walking a campaign's leads one by one.
const CONCURRENT_READS: usize = 16;

/// The page for a person whose role does not include the leads of everybody, if theirs does not.
pub(super) fn refused(signed: &Signed) -> Option<Response> {
    match signed.session.role {
        Role::Marketing | Role::Admin => None,
        Role::Sales => Some(signed.forbidden(
            "The Leads page is marketing's",
            "Your role does not include every lead. Your own leads are under My leads.",
        )),
    }
}

/// Where a listing reads its leads from, newest first.
pub(super) struct Walk {
    /// The next lead read was captured before this one; `None`: from the newest.
    pub before: Option<LeadId>,
    /// Leads before this one were captured before the listing's start: the walk ends there.
    stop: Option<LeadId>,
    /// The campaign's leads, newest first, when the filter names a campaign.
    members: Option<Vec<LeadId>>,
    /// Nothing is left to read.
    pub done: bool,
}

impl Walk {
    pub(super) fn new(filter: &Filter, cursor: Option<LeadId>) -> Walk {
        let until = filter.until().map(|u| id_at(u, true));
        let before = match (cursor, until) {
            (Some(c), Some(u)) => Some(c.min(u)),
            (c, u) => c.or(u),
        };
        let members = filter.members().map(|m| {
            let mut ids: Vec<LeadId> = m.iter().copied().collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            ids
        });
        Walk { before, stop: filter.since().map(|s| id_at(s, false)), members, done: false }
    }

    /// The next leads, at most `n` examined (erased ones are not shown, but count); empty once
    /// the walk is done.
    pub(super) async fn next<S: LeadStore>(&mut self, store: &S, n: usize) -> Result<Vec<Lead>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let stop = self.stop;
        let past_start = |id: LeadId| stop.is_some_and(|s| id < s);
        let Some(ids) = &self.members else {
            let page = store.leads_before(self.before, n).await?;
            self.done = page.next.is_none() || page.leads.is_empty();
            let mut leads = page.leads;
            if let Some(i) = leads.iter().position(|l| past_start(l.id)) {
                leads.truncate(i);
                self.done = true;
            }
            if let Some(last) = leads.last() {
                self.before = Some(last.id);
            }
            return Ok(leads);
        };
        // Sorted newest first: the ids still to read are those below `before`, down to `stop`.
        let from = self.before.map_or(0, |b| ids.partition_point(|id| *id >= b));
        let to = stop.map_or(ids.len(), |s| ids.partition_point(|id| *id >= s)).max(from);
        let chunk: Vec<LeadId> = ids[from..to].iter().take(n.max(1)).copied().collect();
        self.done = from + chunk.len() >= to;
        if let Some(last) = chunk.last() {
            self.before = Some(*last);
        }
        let reads: Vec<Result<Option<Lead>, StoreError>> =
            stream::iter(chunk.into_iter().map(|id| store.get_lead(id))).buffered(CONCURRENT_READS).collect().await;
        let mut leads = Vec::new();
        for read in reads {
            if let Some(lead) = read?
                && !is_erased(&lead)
            {
                leads.push(lead);
            }
        }
        Ok(leads)
    }
}

/// A page of matches and where the listing goes on.
struct Found {
    leads: Vec<Lead>,
    /// The cursor of the next page, when more may follow.
    next: Option<LeadId>,
    /// Leads read.
    read: usize,
    /// The budget ran out before the page filled; the capture time of the last lead read.
    searched_to: Option<DateTime<Utc>>,
}

async fn find<S: LeadStore>(store: &S, filter: &Filter, walk: &mut Walk) -> Result<Found, StoreError> {
    let mut found = Found { leads: Vec::new(), next: None, read: 0, searched_to: None };
    let mut last_at = None;
    loop {
        // The first read is one page and one more, which is all an unfiltered page needs.
        let want = if found.read == 0 { PAGE_SIZE + 1 } else { BATCH };
        let batch = walk.next(store, want.min(SCAN_BUDGET - found.read)).await?;
        for lead in batch {
            found.read += 1;
            last_at = Some(lead.created_at);
            if !filter.matches(&lead) {
                continue;
            }
            if found.leads.len() == PAGE_SIZE {
                // A match beyond the page: the next page starts after the last one shown.
                found.next = found.leads.last().map(|l| l.id);
                return Ok(found);
            }
            found.leads.push(lead);
        }
        if walk.done {
            return Ok(found);
        }
        if found.leads.len() == PAGE_SIZE {
            found.next = walk.before;
            return Ok(found);
        }
        if found.read >= SCAN_BUDGET {
            found.next = walk.before;
            found.searched_to = last_at;
            return Ok(found);
        }
    }
}

/// A query the page could read, checked: the filter (with its campaign's leads read) and the
/// cursor, or the problems to show at their fields.
pub(super) struct Prepared {
    pub filter: Filter,
    pub cursor: Option<LeadId>,
    /// The query as typed, for the form and the links.
    pub form: BTreeMap<&'static str, String>,
}

/// The filter fields of the page, in the order the links carry them. `status` and `lifecycle`
/// are the admin API's spelling of a stage: the form does not offer them, but a link that has
/// them keeps them from page to page.
const FIELDS: &[&str] =
    &["q", "stage", "grade", "owner", "source", "campaign", "since", "until", "status", "lifecycle"];

fn form_of(q: &LeadQuery) -> BTreeMap<&'static str, String> {
    let value = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
    let mut form = BTreeMap::new();
    let values =
        [&q.q, &q.stage, &q.grade, &q.owner, &q.source, &q.campaign, &q.since, &q.until, &q.status, &q.lifecycle];
    for (name, v) in FIELDS.iter().zip(values) {
        form.insert(*name, value(v));
    }
    if let Some(stage) = form.get_mut("stage") {
        *stage = stage.to_ascii_lowercase();
    }
    if let Some(grade) = form.get_mut("grade") {
        *grade = grade.to_ascii_uppercase();
    }
    form
}

/// A link to `path` with the form's filters (those set) and `extra`.
pub(super) fn link(path: &str, form: &BTreeMap<&'static str, String>, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> =
        FIELDS.iter().filter_map(|f| form.get(f).filter(|v| !v.is_empty()).map(|v| (*f, v.as_str()))).collect();
    pairs.extend_from_slice(extra);
    if pairs.is_empty() { path.to_string() } else { format!("{path}?{}", query(&pairs)) }
}

/// Reads and checks the page's query. `Err` is the page to answer: the form with every problem
/// at its field (422), or the store's failure.
pub(super) async fn prepare<P: Ports>(ports: &P, signed: &Signed, raw: Option<String>) -> Result<Prepared, Response> {
    // Read leniently: a repeated or odd parameter is a problem to show, never a bare 400.
    let parsed = serde_urlencoded::from_str::<LeadQuery>(raw.as_deref().unwrap_or_default());
    let mut errors = Map::new();
    let q = parsed.unwrap_or_else(|_| {
        errors.insert("query".into(), json!("This address's filters could not be read. Set them again below."));
        LeadQuery::default()
    });
    let form = form_of(&q);
    let config = ports.config();
    let filter = match Filter::check(&q) {
        Ok(f) => Some(f),
        Err(problems) => {
            for p in problems {
                let field = p.field.unwrap_or_else(|| "query".into());
                // The API's messages quote values with backticks; a page uses quotation marks.
                errors.entry(field).or_insert_with(|| json!(p.message.replace('`', "\"")));
            }
            None
        }
    };
    if let Some(owner) = filter.as_ref().and_then(Filter::owner)
        && owner != NONE
        && config.routing.rep(owner).is_none()
    {
        errors.insert("owner".into(), json!("no rep of the routing has this id; pick an owner from the list"));
    }
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match c.parse::<LeadId>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.insert(
                    "cursor".into(),
                    json!("This link's place in the list is not one Leadflow made. Start again from the newest lead."),
                );
                None
            }
        },
    };
    let filter = match filter {
        Some(f) if errors.is_empty() => f,
        _ => return Err(form_page(ports, signed, StatusCode::UNPROCESSABLE_ENTITY, &form, errors, json!({})).await),
    };
    match filter.load_campaign(ports).await {
        Ok(filter) => Ok(Prepared { filter, cursor, form }),
        Err(e) if e.field.as_deref() == Some("campaign") => {
            errors.insert("campaign".into(), json!(e.message.replace('`', "\"")));
            Err(form_page(ports, signed, StatusCode::UNPROCESSABLE_ENTITY, &form, errors, json!({})).await)
        }
        Err(e) => {
            warn!(error = %e.message, "the leads page could not read a campaign's leads");
            Err(signed.unavailable())
        }
    }
}

fn option(value: &str, label: &str) -> Value {
    json!({ "value": value, "label": label })
}

/// The page with its form (choices from the configuration and the campaigns), `errors` at
/// their fields, and `results`' keys.
async fn form_page<P: Ports>(
    ports: &P,
    signed: &Signed,
    status: StatusCode,
    form: &BTreeMap<&'static str, String>,
    errors: Map<String, Value>,
    results: Value,
) -> Response {
    let config = ports.config();
    let mut owners = vec![option(NONE, "Nobody")];
    owners.extend(config.routing.reps().iter().map(|r| option(&r.id, &r.name)));
    let campaigns: Vec<Value> = match crate::campaigns::all_current(ports).await {
        Ok(all) => all.iter().map(|c| option(&c.campaign.id, &c.campaign.name)).collect(),
        Err(e) => {
            warn!(error = %e.message, "the leads page could not list the campaigns");
            Vec::new()
        }
    };
    let mut ctx = json!({
        "form": form,
        "errors": errors,
        "lifecycles": [option("lead", "Lead"), option("mql", "MQL"), option("sql", "SQL")],
        "statuses": [option("new", "New"), option("contacted", "Contacted"), option("won", "Won"), option("lost", "Lost")],
        "grades": ["A", "B", "C", "D"],
        "owners": owners,
        "campaigns": campaigns,
        "page_size": PAGE_SIZE,
        "budget": thousands(SCAN_BUDGET),
        "csv": link("/console/leads/export.csv", form, &[]),
        "csv_max_rows": thousands(super::lead_csv::MAX_ROWS),
        "csv_max_mb": super::lead_csv::max_bytes().map(|b| b / (1024 * 1024)),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut ctx, results) {
        map.extend(more);
    }
    signed.page(status, "leads.html", ctx)
}

/// A lifecycle stage as marketing writes it.
pub(super) fn lifecycle_name(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Lead => "Lead",
        Lifecycle::Mql => "MQL",
        Lifecycle::Sql => "SQL",
    }
}

pub(super) fn rep_name(config: &CompiledConfig, rep_id: &str) -> String {
    config.routing.rep(rep_id).map_or_else(|| rep_id.to_string(), |r| r.name.clone())
}

fn row(config: &CompiledConfig, lead: &Lead) -> Value {
    let c = &lead.contact;
    let source = first_source(lead);
    json!({
        "id": lead.id,
        "name": lead.display_name(),
        "email": c.email,
        "company": c.company,
        "country": c.country,
        "grade": lead.score.as_ref().map(|s| s.grade),
        "score": lead.score.as_ref().map(|s| s.total.to_string()),
        "lifecycle": lifecycle_name(lead.lifecycle),
        "status": lead.status.as_str(),
        "owner": lead.owner.as_ref().map(|o| rep_name(config, &o.rep_id)),
        "source": (source != NONE).then_some(source),
        "captured": lead.created_at.format("%-d %b %Y, %H:%M").to_string(),
        "captured_words": in_words(lead.created_at, "UTC"),
    })
}

/// `GET /console/leads?q=&stage=&grade=&owner=&source=&campaign=&since=&until=&cursor=`: for
/// marketing and admins.
pub async fn page<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = &*console.ports;
    let Prepared { filter, cursor, form } = match prepare(ports, &signed, raw).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let mut walk = Walk::new(&filter, cursor);
    let found = match find(ports.store(), &filter, &mut walk).await {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "the leads page could not read the leads");
            return signed.unavailable();
        }
    };
    let config = ports.config();
    let rows: Vec<Value> = found.leads.iter().map(|l| row(&config, l)).collect();
    let next = found.next.map(|id| link("/console/leads", &form, &[("cursor", &id.to_string())]));
    let filtered = form.values().any(|v| !v.is_empty());
    let results = json!({
        "results": true,
        "leads": rows,
        "next": next,
        "first": cursor.map(|_| link("/console/leads", &form, &[])),
        "read": found.read,
        "filtered": filtered,
        "searched_to": found.searched_to.map(|t| in_words(t, "UTC")),
        "campaign_capped": filter.members_capped().then(|| thousands(crate::leads::MAX_CAMPAIGN_LEADS)),
    });
    form_page(ports, &signed, StatusCode::OK, &form, Map::new(), results).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::TimeZone;
    use leadflow_core::ports::Leads;
    use leadflow_memory::{MemoryStore, fixtures};

    use super::*;

    /// Leads 1..=n, each captured at its id's millisecond (as capture makes them); the leads of
    /// `sourced` come from `bulk`.
    async fn store_of(n: u64, sourced: impl Fn(u64) -> bool) -> MemoryStore {
        let store = MemoryStore::new();
        for i in 1..=n {
            let mut lead = fixtures::lead(i, &format!("lead{i}@example.com"));
            lead.created_at = Utc.timestamp_millis_opt(1_750_000_000_000 + i as i64).single().expect("a time");
            if sourced(i) {
                lead.attribution.first_touch.utm.source = Some("bulk".into());
            }
            store.create_lead(&lead, &[]).await.expect("stored");
        }
        store
    }

    fn filter(pairs: &[(&str, &str)]) -> Filter {
        let q: LeadQuery = serde_urlencoded::from_str(&query(pairs)).expect("a query");
        Filter::check(&q).expect("a good filter")
    }

    fn ids(found: &Found) -> Vec<u64> {
        found.leads.iter().map(|l| l.id.0.timestamp_ms() - 1_750_000_000_000).collect()
    }

    #[test]
    fn counts_read_with_thousands_separated() {
        assert_eq!(
            [thousands(0), thousands(999), thousands(2_000), thousands(100_000)],
            ["0", "999", "2,000", "100,000"]
        );
    }

    #[tokio::test]
    async fn pages_cover_every_match_once_newest_first() {
        let store = store_of(70, |i| i % 2 == 0).await;
        let f = filter(&[("source", "BULK")]);
        let mut walk = Walk::new(&f, None);
        let first = find(&store, &f, &mut walk).await.expect("read");
        assert_eq!(ids(&first), (21..=70).rev().filter(|i| i % 2 == 0).collect::<Vec<_>>());
        assert!(first.searched_to.is_none());
        let mut walk = Walk::new(&f, first.next);
        let second = find(&store, &f, &mut walk).await.expect("read");
        assert_eq!(ids(&second), (1..=20).rev().filter(|i| i % 2 == 0).collect::<Vec<_>>());
        assert_eq!(second.next, None, "nothing after the last match");
    }

    #[tokio::test]
    async fn a_narrow_filter_stops_at_the_budget_and_goes_on_from_there() {
        let n = SCAN_BUDGET as u64 + 150;
        let store = store_of(n, |i| i == 1).await;
        let f = filter(&[("source", "bulk")]);
        let mut walk = Walk::new(&f, None);
        let first = find(&store, &f, &mut walk).await.expect("read");
        assert!(first.leads.is_empty());
        assert_eq!(first.read, SCAN_BUDGET);
        let searched = first.searched_to.expect("the page says how far back it searched");
        assert_eq!(searched, Utc.timestamp_millis_opt(1_750_000_000_000 + 151).single().expect("a time"));
        let mut walk = Walk::new(&f, first.next);
        let second = find(&store, &f, &mut walk).await.expect("read");
        assert_eq!((ids(&second), second.next, second.searched_to), (vec![1], None, None));
        assert_eq!(second.read, 150);
    }

    #[tokio::test]
    async fn until_starts_the_walk_and_since_ends_it() {
        let store = store_of(40, |_| true).await;
        let at = |i: i64| Utc.timestamp_millis_opt(1_750_000_000_000 + i).single().expect("a time").to_rfc3339();
        let f = filter(&[("since", &at(10)), ("until", &at(30))]);
        let mut walk = Walk::new(&f, None);
        let found = find(&store, &f, &mut walk).await.expect("read");
        assert_eq!(ids(&found), (10..30).rev().collect::<Vec<_>>());
        assert_eq!(found.read, 20, "nothing outside the dates is read");
        assert_eq!(found.next, None);
    }

    #[tokio::test]
    async fn a_campaign_reads_only_its_leads_within_the_dates_and_after_the_cursor() {
        let store = store_of(500, |_| false).await;
        let members: HashSet<LeadId> = [3, 7, 9, 250, 400, 499].into_iter().map(fixtures::id).collect();
        let at = |i: i64| Utc.timestamp_millis_opt(1_750_000_000_000 + i).single().expect("a time").to_rfc3339();
        let f = filter(&[("since", &at(5))]).with_members(members);
        let mut walk = Walk::new(&f, Some(fixtures::id(499)));
        let found = find(&store, &f, &mut walk).await.expect("read");
        assert_eq!(ids(&found), vec![400, 250, 9, 7]);
        assert_eq!(found.read, 4, "only the campaign's leads are read");
    }
}
