//! `GET /admin/leads/export`: every lead the filters of search match, as CSV or JSON.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use leadflow_core::erasure::is_erased;
use leadflow_core::model::Lead;
use leadflow_core::ports::Ports;
use tracing::warn;

use super::csv_file::{Cell, record};
use super::filter::{Filter, LeadQuery, non_empty};
use super::{SCAN_PAGE, St};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, QueryParams};
use leadflow_core::ports::Listings;

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
    // Cannot fail in practice (the header is ours, written into memory), but is not assumed to.
    let mut head = writer.head().map_err(|e| ApiError::unavailable(&e))?;
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
    fn head(&self) -> csv::Result<String> {
        match self.format {
            Format::Csv => record(CSV_COLUMNS.iter().map(|c| Cell::own(*c))),
            Format::Json => Ok("[".to_string()),
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
                Format::Csv => match csv_row(lead) {
                    Ok(line) => out.push_str(&line),
                    Err(e) => {
                        warn!(lead_id = %lead.id, error = %e, "lead left out of the export: not writable as CSV");
                        continue;
                    }
                },
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

fn csv_row(lead: &Lead) -> csv::Result<String> {
    let c = &lead.contact;
    let t = &lead.attribution.first_touch;
    let erased = is_erased(lead);
    record([
        Cell::own(lead.id.to_string()),
        Cell::own(lead.created_at.to_rfc3339()),
        Cell::own(lead.updated_at.to_rfc3339()),
        Cell::own(lead.status.as_str()),
        Cell::own(lead.lifecycle.as_str()),
        Cell::own(lead.is_valid().to_string()),
        Cell::own(erased.to_string()),
        Cell::text((!erased).then_some(c.email.as_str())),
        Cell::text(c.first_name.as_deref()),
        Cell::text(c.last_name.as_deref()),
        Cell::text(c.phone.as_deref()),
        Cell::text(c.company.as_deref()),
        Cell::text(c.job_title.as_deref()),
        Cell::text(c.country.as_deref()),
        Cell::own(c.domain_kind.as_str()),
        Cell::own(lead.consent.as_ref().is_some_and(|k| k.given).to_string()),
        Cell::own(lead.score.as_ref().map(|s| s.total.to_string()).unwrap_or_default()),
        Cell::own(lead.score.as_ref().map(|s| format!("{:?}", s.grade)).unwrap_or_default()),
        Cell::text(lead.owner.as_ref().map(|o| o.rep_id.as_str())),
        Cell::text(lead.owner.as_ref().and_then(|o| o.team_id.as_deref())),
        Cell::text(t.utm.source.as_deref()),
        Cell::text(t.utm.medium.as_deref()),
        Cell::text(t.utm.campaign.as_deref()),
        Cell::text(t.form.as_deref()),
        Cell::own(lead.submissions.to_string()),
    ])
}
