//! The Leads page's CSV: `GET /console/leads/export.csv` with the page's filters, every match
//! newest first, streamed a store page at a time (nothing is held but the page being written).
//!
//! Rows are written as the admin API's export writes them (`crate::leads::csv_file`): quoted as
//! RFC 4180 says, and a text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
//! CR first) gets a leading `'`. The file starts with a UTF-8 byte order mark, without which
//! Excel reads names as Latin-1.
//!
//! **Bounds.** At most [`MAX_ROWS`] rows, after at most [`MAX_READ`] leads read. On Lambda the
//! response is not streamed: the function returns it whole and a response over 6 MB fails (API
//! Gateway answers 5xx, the browser gets a broken download), so there the file also stops at
//! [`LAMBDA_MAX_BYTES`] (under 6 MB once the response is encoded as JSON). A file cut short ends
//! with a one-cell row that says so and gives the link that downloads the rest.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::Lead;
use leadflow_core::ports::Ports;
use tracing::warn;

use super::lead_list::{BATCH, Prepared, Walk, lifecycle_name, link, prepare, refused, rep_name};
use super::{Console, Signed};
use crate::leads::Filter;
use crate::leads::csv_file::{Cell, record};

/// Most rows one download holds.
pub const MAX_ROWS: usize = 100_000;
/// Most leads one download reads to find its rows.
pub const MAX_READ: usize = 500_000;
/// Most bytes of a download on Lambda, whose whole response must stay under 6 MB.
pub const LAMBDA_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "Lead id",
    "Captured (UTC)",
    "Email",
    "First name",
    "Last name",
    "Company",
    "Job title",
    "Country",
    "Phone",
    "Grade",
    "Score",
    "Lifecycle stage",
    "Sales status",
    "Owner",
    "Source",
    "Medium",
    "Campaign",
    "Consent",
];

/// The byte bound of a download here: on Lambda (which sets `AWS_LAMBDA_FUNCTION_NAME`), the
/// response size limit; elsewhere none.
pub fn max_bytes() -> Option<usize> {
    static ON_LAMBDA: OnceLock<bool> = OnceLock::new();
    ON_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()).then_some(LAMBDA_MAX_BYTES)
}

fn header_line() -> csv::Result<String> {
    Ok(format!("\u{feff}{}", record(COLUMNS.iter().map(|c| Cell::own(*c)))?))
}

fn row(config: &CompiledConfig, lead: &Lead) -> csv::Result<String> {
    let c = &lead.contact;
    let utm = &lead.attribution.first_touch.utm;
    let owner = lead.owner.as_ref().map(|o| rep_name(config, &o.rep_id));
    record([
        Cell::own(lead.id.to_string()),
        Cell::own(lead.created_at.format("%Y-%m-%d %H:%M:%S").to_string()),
        Cell::text(Some(&c.email)),
        Cell::text(c.first_name.as_deref()),
        Cell::text(c.last_name.as_deref()),
        Cell::text(c.company.as_deref()),
        Cell::text(c.job_title.as_deref()),
        Cell::text(c.country.as_deref()),
        Cell::text(c.phone.as_deref()),
        Cell::own(lead.score.as_ref().map(|s| format!("{:?}", s.grade)).unwrap_or_default()),
        Cell::own(lead.score.as_ref().map(|s| s.total.to_string()).unwrap_or_default()),
        Cell::own(lifecycle_name(lead.lifecycle)),
        Cell::own(lead.status.as_str()),
        Cell::text(owner.as_deref()),
        Cell::text(utm.source.as_deref()),
        Cell::text(utm.medium.as_deref()),
        Cell::text(utm.campaign.as_deref()),
        Cell::own(if lead.consent.as_ref().is_some_and(|k| k.given) { "yes" } else { "no" }),
    ])
}

/// A download being written.
struct Export<P> {
    ports: Arc<P>,
    filter: Filter,
    walk: Walk,
    form: BTreeMap<&'static str, String>,
    rows: usize,
    read: usize,
    bytes: usize,
    max_rows: usize,
    max_bytes: Option<usize>,
    finished: bool,
}

impl<P: Ports> Export<P> {
    fn new(
        ports: Arc<P>,
        filter: Filter,
        walk: Walk,
        form: BTreeMap<&'static str, String>,
        max_rows: usize,
        max_bytes: Option<usize>,
    ) -> Self {
        Export { ports, filter, walk, form, rows: 0, read: 0, bytes: 0, max_rows, max_bytes, finished: false }
    }

    /// The rows of the next store page, and the closing line once a bound stops the file. Fails
    /// when the store does (or, in theory, the CSV writer): the file must then break off.
    async fn chunk(&mut self) -> std::io::Result<String> {
        let want = BATCH.min(MAX_READ - self.read);
        let leads = self.walk.next(self.ports.store(), want).await.map_err(std::io::Error::other)?;
        let config = self.ports.config();
        let mut out = String::new();
        let mut cut = None;
        for lead in &leads {
            self.read += 1;
            if !self.filter.matches(lead) {
                continue;
            }
            let line = row(&config, lead)?;
            if self.rows == self.max_rows {
                cut = Some((format!("{} rows, the most one download holds", self.max_rows), lead));
                break;
            }
            if let Some(max) = self.max_bytes
                && self.bytes + out.len() + line.len() > max
            {
                let size =
                    if max >= 1024 * 1024 { format!("{} MB", max / (1024 * 1024)) } else { format!("{max} bytes") };
                cut = Some((format!("{} rows ({size}, the most a download here can hold)", self.rows), lead));
                break;
            }
            out.push_str(&line);
            self.rows += 1;
        }
        if let Some((why, first_left)) = cut {
            // The rest starts at the first lead left out: before it, by one.
            let id = leadflow_core::model::LeadId(first_left.id.0.increment().unwrap_or(first_left.id.0));
            out.push_str(&self.closing(&why, &id.to_string())?);
        } else if !self.walk.done && self.read >= MAX_READ {
            let before = self.walk.before.map(|b| b.to_string()).unwrap_or_default();
            let at = leads.last().map(|l| l.created_at.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
            out.push_str(&self.closing(&format!("{MAX_READ} leads read, back to {at},"), &before)?);
        } else if self.walk.done {
            self.finished = true;
        }
        self.bytes += out.len();
        Ok(out)
    }

    fn closing(&mut self, why: &str, cursor: &str) -> csv::Result<String> {
        self.finished = true;
        let rest = link("/console/leads/export.csv", &self.form, &[("cursor", cursor)]);
        record([Cell::Text(&format!("This download stopped after {why}. The rest: {rest}"))])
    }
}

/// `GET /console/leads/export.csv?<the Leads page's filters>`: for marketing and admins. Bad
/// filters answer the Leads page with the problems at their fields.
pub async fn export<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(page) = refused(&signed) {
        return page;
    }
    let ports = Arc::clone(&console.ports);
    let Prepared { filter, cursor, form } = match prepare(&*ports, &signed, raw).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let walk = Walk::new(&filter, cursor);
    let mut export = Export::new(ports, filter, walk, form, MAX_ROWS, max_bytes());
    // The first page is read before answering, so that a store that fails now gets a page that
    // says so rather than a broken file.
    let first = match header_line() {
        Ok(header) => export.chunk().await.map(|rows| header + &rows),
        Err(e) => Err(e.into()),
    };
    let head = match first {
        Ok(head) => head,
        Err(e) => {
            warn!(error = %e, "the leads CSV could not start");
            return signed.unavailable();
        }
    };
    let rest = stream::unfold(export, |mut export| async move {
        if export.finished {
            return None;
        }
        match export.chunk().await {
            Ok(text) => Some((Ok(Bytes::from(text)), export)),
            Err(e) => {
                // Broken off, so that a client never mistakes a partial file for a whole one.
                warn!(error = %e, rows = export.rows, "the leads CSV was broken off");
                export.finished = true;
                Some((Err(e), export))
            }
        }
    });
    let body = Body::from_stream(stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) }).chain(rest));
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::ports::Leads;

    #[test]
    fn the_header_names_every_column_once_after_the_byte_order_mark() {
        let line = header_line().unwrap_or_default();
        assert!(line.starts_with('\u{feff}') && line.ends_with("\r\n"));
        assert_eq!(line.trim_start_matches('\u{feff}').trim_end().split(',').count(), COLUMNS.len());
    }

    /// Leads 1..=n in memory, each captured at its id's millisecond.
    async fn ports_with(n: u64) -> Arc<impl Ports> {
        use chrono::TimeZone;
        use leadflow_core::ports::{Adapters, ConfigHandle};
        use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock, fixtures};
        let store = MemoryStore::new();
        for i in 1..=n {
            let mut lead = fixtures::lead(i, &format!("lead{i}@example.com"));
            lead.created_at = chrono::Utc.timestamp_millis_opt(1_750_000_000_000 + i as i64).single().expect("a time");
            store.create_lead(&lead, &[]).await.expect("stored");
        }
        let config = leadflow_app::config_files::load(None).expect("the sample configuration");
        Arc::new(Adapters {
            store,
            queue: MemoryQueue::new(),
            mailer: RecordingMailer::new(),
            bus: RecordingBus::new(),
            clock: SettableClock::at(fixtures::t(0)),
            config: ConfigHandle::new(config),
        })
    }

    /// The whole file `export` writes, chunk after chunk.
    async fn written<P: Ports>(export: &mut Export<P>) -> String {
        let mut text = String::new();
        while !export.finished {
            text.push_str(&export.chunk().await.expect("the store reads"));
        }
        text
    }

    fn ids_in(text: &str) -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.split(',').next()?.parse::<leadflow_core::model::LeadId>().ok())
            .map(|id| id.0.timestamp_ms() - 1_750_000_000_000)
            .collect()
    }

    #[tokio::test]
    async fn a_bounded_download_ends_with_the_link_to_the_rest_which_goes_on_from_there() {
        let ports = ports_with(10).await;
        let filter = Filter::default();
        let mut export =
            Export::new(Arc::clone(&ports), filter.clone(), Walk::new(&filter, None), BTreeMap::new(), 3, None);
        let first = written(&mut export).await;
        assert_eq!(ids_in(&first), [10, 9, 8], "{first}");
        // One cell, quoted for its comma.
        let last = first.lines().last().unwrap_or_default().trim_matches('"');
        assert!(last.starts_with("This download stopped after 3 rows"), "{last}");
        let cursor = last.split("cursor=").nth(1).and_then(|c| c.parse().ok()).expect("a cursor");
        let mut rest = Export::new(ports, filter.clone(), Walk::new(&filter, Some(cursor)), BTreeMap::new(), 3, None);
        assert_eq!(ids_in(&written(&mut rest).await), [7, 6, 5], "the rest starts at the first lead left out");
    }

    #[tokio::test]
    async fn on_lambda_a_download_stops_before_the_response_limit() {
        let ports = ports_with(10).await;
        let filter = Filter::default();
        let one =
            row(&ports.config(), &leadflow_memory::fixtures::lead(1, "lead1@example.com")).unwrap_or_default().len();
        let limit = Some(one * 4 + one / 2);
        let mut export = Export::new(ports, filter.clone(), Walk::new(&filter, None), BTreeMap::new(), MAX_ROWS, limit);
        let text = written(&mut export).await;
        assert_eq!(ids_in(&text).len(), 4, "{text}");
        assert!(text.lines().last().unwrap_or_default().contains("the most a download here can hold"), "{text}");
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralized() {
        let config = leadflow_app::config_files::load(None).expect("the sample configuration");
        let mut lead = leadflow_memory::fixtures::lead(1, "ada@example.com");
        lead.contact.company = Some("=HYPERLINK(\"http://evil.example\",\"x\")".into());
        lead.contact.first_name = Some("Ada, \"the first\"".into());
        lead.contact.job_title = Some("line one\nline two".into());
        lead.contact.phone = Some("+4930901820".into());
        let line = row(&config, &lead).unwrap_or_default();
        assert!(line.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\","), "{line}");
        assert!(line.contains(",\"Ada, \"\"the first\"\"\","), "{line}");
        assert!(line.contains(",\"line one\nline two\","), "{line}");
        assert!(line.contains(",'+4930901820,"), "a phone is text, not a formula: {line}");
        assert!(line.ends_with(",no\r\n"), "{line}");
    }
}
