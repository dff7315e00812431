//! The funnel for marketing: captured → valid → MQL → assigned → SQL → contacted → won, as a chart
//! drawn on the server (SVG, no script) with the table under it, overall and by source,
//! campaign or week.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use leadflow_core::ports::Ports;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::session::Role;
use super::{Console, Signed};
use crate::report::{By, Funnel, FunnelReport, compute};

/// The chart's drawing width, in SVG units; it scales to the page.
const CHART_WIDTH: f64 = 480.0;
const BAR_HEIGHT: f64 = 28.0;
const BAR_GAP: f64 = 10.0;
/// Room on the left for the stage's name.
const LABEL_WIDTH: f64 = 95.0;

#[derive(Debug, Default, Deserialize)]
pub struct FunnelQuery {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

fn stages(f: &Funnel) -> [(&'static str, u64); 7] {
    [
        ("Captured", f.captured),
        ("Valid", f.valid),
        ("MQL", f.mql),
        ("Assigned", f.assigned),
        ("SQL", f.sql),
        ("Contacted", f.contacted),
        ("Won", f.won),
    ]
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "–".to_string() } else { format!("{:.0}%", part as f64 * 100.0 / whole as f64) }
}

/// The bars of the chart: each stage's width in proportion to the first.
fn bars(f: &Funnel) -> Vec<Value> {
    let top = f.captured.max(1) as f64;
    // Room after the longest bar for its count and share ("1234 · 100%").
    let room = CHART_WIDTH - LABEL_WIDTH - 100.0;
    let mut previous = None;
    stages(f)
        .iter()
        .enumerate()
        .map(|(i, (label, n))| {
            let y = i as f64 * (BAR_HEIGHT + BAR_GAP);
            let width = (*n as f64 / top * room).max(if *n > 0 { 2.0 } else { 0.0 });
            let step = previous.map(|p| percent(*n, p));
            previous = Some(*n);
            json!({
                "label": label, "count": n, "y": y, "text_y": y + BAR_HEIGHT * 0.68,
                "x": LABEL_WIDTH, "width": width, "count_x": LABEL_WIDTH + width + 6.0,
                "of_top": percent(*n, f.captured), "of_previous": step,
            })
        })
        .collect()
}

/// A date field: midnight UTC of `YYYY-MM-DD`; `Err` is the message for the field.
fn date(raw: &Option<String>) -> Result<Option<DateTime<Utc>>, &'static str> {
    match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Some(t.and_utc()))
            .ok_or("Enter a date as YYYY-MM-DD."),
    }
}

/// `GET /console/reports/funnel?by=source|campaign|week&since=&until=`: for marketing and admins.
pub async fn page<P: Ports>(
    State(console): State<Arc<Console<P>>>,
    signed: Signed,
    Query(q): Query<FunnelQuery>,
) -> Response {
    if signed.session.role == Role::Sales {
        return signed.forbidden("Reports are for marketing", "Your role does not include reports.");
    }
    let mut errors = serde_json::Map::new();
    let by = By::parse(q.by.as_deref()).unwrap_or_else(|m| {
        errors.insert("by".into(), json!(m));
        By::Source
    });
    let since = date(&q.since).unwrap_or_else(|m| {
        errors.insert("since".into(), json!(m));
        None
    });
    let until = date(&q.until).unwrap_or_else(|m| {
        errors.insert("until".into(), json!(m));
        None
    });
    if let (Some(s), Some(u)) = (since, until)
        && u <= s
    {
        errors.insert("until".into(), json!("The end must come after the start."));
    }
    let form = json!({ "by": by.as_str(), "since": q.since.unwrap_or_default(), "until": q.until.unwrap_or_default() });
    if !errors.is_empty() {
        return signed.page(StatusCode::UNPROCESSABLE_ENTITY, "funnel.html", json!({ "form": form, "errors": errors }));
    }
    let FunnelReport { overall, groups } = match compute(&*console.ports, by, since, until).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "the funnel could not be counted");
            return signed.unavailable();
        }
    };
    let bars = bars(&overall);
    let height = bars.len() as f64 * (BAR_HEIGHT + BAR_GAP);
    let rows: Vec<Value> = groups
        .iter()
        .map(|(key, f)| {
            let cells: Vec<Value> = stages(f).iter().map(|(_, n)| json!(n)).collect();
            json!({ "key": key, "cells": cells, "won_rate": percent(f.won, f.captured) })
        })
        .collect();
    signed.page(
        StatusCode::OK,
        "funnel.html",
        json!({
            "form": form,
            "errors": {},
            "bars": bars,
            "chart": { "width": CHART_WIDTH, "height": height },
            "total": overall.captured,
            "heads": stages(&overall).iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            "overall": stages(&overall).iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            "overall_won_rate": percent(overall.won, overall.captured),
            "rows": rows,
        }),
    )
}
