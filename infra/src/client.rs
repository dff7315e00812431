//! A client of the admin API, for the `leadflow` command line: one method per route it uses.
//!
//! It speaks plain HTTP with a bearer token: the local stack (`leadflow dev`). A deployment on
//! AWS puts IAM in front of the admin API, which needs SigV4-signed requests over HTTPS; this
//! client does neither (yet).

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// The address of the local stack.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error of its own.
    #[error("{code}: {message}")]
    Api { status: u16, code: String, message: String, field: Option<String> },
    #[error("`{url}` is not an address the admin API can be reached at: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Something else answered (a proxy, another service).
    #[error("the admin API answered {status} with something that is not an API answer: {body}")]
    Unexpected { status: u16, body: String },
}

impl ClientError {
    /// The error code, as printed: the API's own, or one for what went wrong on this side.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::BadUrl { .. } => "bad_url",
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Unexpected { .. } => "unexpected_answer",
        }
    }

    /// The message, as printed after the code.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    /// Text with its content type (a campaign in YAML).
    Text(String, &'static str),
}

pub struct AdminClient {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client of the admin API at `url`, with `token` as its bearer token.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::BadUrl { url: url.to_string(), why: why.to_string() };
        let base = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        match base.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "this build speaks plain HTTP only (the local stack); an AWS deployment needs HTTPS and \
                     SigV4-signed requests, which it does not make",
                ));
            }
            other => return Err(bad(&format!("the scheme {other} is not http"))),
        }
        if base.cannot_be_a_base() {
            return Err(bad("not an http address"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ClientError::Unreachable { url: url.to_string(), reason: causes(&e) })?;
        Ok(Self { base, token: token.filter(|t| !t.is_empty()), http })
    }

    /// The URL of `segments` under the base, each segment escaped, with `query`.
    fn url(&self, segments: &[&str], query: &[(&str, Option<&str>)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        let given: Vec<_> = query.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
        if !given.is_empty() {
            url.query_pairs_mut().extend_pairs(given);
        }
        url
    }

    async fn send(&self, method: Method, url: Url, body: Option<Body>) -> Result<(String, String), ClientError> {
        let shown = url.to_string();
        let mut req = self.http.request(method, url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Text(text, content_type)) => req.header("content-type", content_type).body(text),
            None => req,
        };
        let unreachable = |e: reqwest::Error| ClientError::Unreachable { url: shown.clone(), reason: causes(&e) };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let text = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok((content_type, text));
        }
        Err(api_error(status, &text))
    }

    async fn json(&self, method: Method, url: Url, body: Option<Body>) -> Result<Value, ClientError> {
        let (_, text) = self.send(method, url, body).await?;
        serde_json::from_str(&text).map_err(|_| ClientError::Unexpected { status: 200, body: excerpt(&text) })
    }

    // --- leads --------------------------------------------------------------------------

    pub async fn lead_show(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads", id], &[]), None).await
    }

    pub async fn lead_find(&self, email: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads"], &[("email", Some(email))]), None).await
    }

    pub async fn lead_search(&self, filters: &LeadFilters) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "leads"], &filters.query()), None).await
    }

    /// Marks the lead `status` (`contacted`, `won`, `lost`).
    pub async fn lead_mark(
        &self,
        id: &str,
        status: &str,
        by: Option<&str>,
        note: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "status": status, "by": by, "note": note });
        self.json(Method::POST, self.url(&["admin", "leads", id, "status"], &[]), Some(Body::Json(body))).await
    }

    /// Every lead matching `filters`, as the API writes it (CSV or JSON text).
    pub async fn lead_export(&self, format: &str, filters: &LeadFilters) -> Result<String, ClientError> {
        let mut query = filters.query();
        query.push(("format", Some(format)));
        let (_, text) = self.send(Method::GET, self.url(&["admin", "leads", "export"], &query), None).await?;
        Ok(text)
    }

    pub async fn lead_erase(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::DELETE, self.url(&["admin", "leads", id], &[]), None).await
    }

    // --- reports ------------------------------------------------------------------------

    pub async fn funnel(&self, by: &str, since: Option<&str>, until: Option<&str>) -> Result<Value, ClientError> {
        let query = [("by", Some(by)), ("since", since), ("until", until)];
        self.json(Method::GET, self.url(&["admin", "reports", "funnel"], &query), None).await
    }

    // --- reps ---------------------------------------------------------------------------

    pub async fn reps(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "reps"], &[]), None).await
    }

    pub async fn rep(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "reps", id], &[]), None).await
    }

    /// Creates the rep or changes the fields of `patch`.
    pub async fn rep_set(&self, id: &str, patch: Value) -> Result<Value, ClientError> {
        self.json(Method::PUT, self.url(&["admin", "reps", id], &[]), Some(Body::Json(patch))).await
    }

    /// Out of office between two RFC 3339 times.
    pub async fn rep_ooo(&self, id: &str, from: &str, until: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "from": from, "until": until });
        self.json(Method::POST, self.url(&["admin", "reps", id, "ooo"], &[]), Some(Body::Json(body))).await
    }

    pub async fn rep_back(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::DELETE, self.url(&["admin", "reps", id, "ooo"], &[]), None).await
    }

    // --- campaigns ----------------------------------------------------------------------

    /// Applies a campaign file; `format` is `yaml`, `json` or `toml`.
    pub async fn campaign_apply(&self, text: String, format: &str) -> Result<Value, ClientError> {
        let content_type = match format {
            "json" => "application/json",
            "toml" => "application/toml",
            _ => "application/yaml",
        };
        self.json(Method::POST, self.url(&["admin", "campaigns"], &[]), Some(Body::Text(text, content_type))).await
    }

    pub async fn campaigns(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "campaigns"], &[]), None).await
    }

    pub async fn campaign(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "campaigns", id], &[]), None).await
    }

    pub async fn campaign_pause(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "pause"], &[]), None).await
    }

    pub async fn campaign_resume(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "resume"], &[]), None).await
    }

    /// A new schedule (RFC 3339 times; `None`: no bound).
    pub async fn campaign_schedule(
        &self,
        id: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "start": start, "end": end });
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "schedule"], &[]), Some(Body::Json(body))).await
    }

    pub async fn campaign_preview(
        &self,
        id: &str,
        lead: &str,
        step: &str,
        version: Option<&str>,
    ) -> Result<Value, ClientError> {
        let query = [("lead", Some(lead)), ("step", Some(step)), ("version", version)];
        self.json(Method::GET, self.url(&["admin", "campaigns", id, "preview"], &query), None).await
    }
}

/// The filters of lead search and export.
#[derive(Debug, Clone, Default)]
pub struct LeadFilters {
    pub q: Option<String>,
    pub status: Option<String>,
    pub lifecycle: Option<String>,
    pub owner: Option<String>,
    pub source: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl LeadFilters {
    fn query(&self) -> Vec<(&'static str, Option<&str>)> {
        vec![
            ("q", self.q.as_deref()),
            ("status", self.status.as_deref()),
            ("lifecycle", self.lifecycle.as_deref()),
            ("owner", self.owner.as_deref()),
            ("source", self.source.as_deref()),
            ("limit", self.limit.as_deref()),
            ("cursor", self.cursor.as_deref()),
        ]
    }
}

/// An error and its causes, `: `-separated ("error sending request: connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        next = cause.source();
    }
    text
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

/// The API's `{"error": {"code", "message", "field"}}`, or what else came back.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    match error.and_then(|e| e["code"].as_str().zip(e["message"].as_str()).map(|(c, m)| (e, c, m))) {
        Some((e, code, message)) => ClientError::Api {
            status: status.as_u16(),
            code: code.to_string(),
            message: message.to_string(),
            field: e["field"].as_str().map(str::to_string),
        },
        None => ClientError::Unexpected { status: status.as_u16(), body: excerpt(text) },
    }
}
