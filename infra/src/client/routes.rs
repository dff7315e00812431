//! The admin API's routes the command line uses, one method each, grouped as the commands are.

use reqwest::Method;
use serde_json::Value;

use super::{AdminClient, Body, ClientError};

impl AdminClient {
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

    // --- teams --------------------------------------------------------------------------

    pub async fn teams(&self) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "teams"], &[]), None).await
    }

    pub async fn team(&self, id: &str) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "teams", id], &[]), None).await
    }

    // --- dead letters --------------------------------------------------------------------

    /// `GET /admin/dead-letters`: every stage's, or `stage`'s.
    pub async fn dead_letters(&self, stage: Option<&str>, limit: Option<&str>) -> Result<Value, ClientError> {
        self.json(Method::GET, self.url(&["admin", "dead-letters"], &[("stage", stage), ("limit", limit)]), None).await
    }

    pub async fn dead_letters_redrive(&self, stage: &str) -> Result<Value, ClientError> {
        self.json(Method::POST, self.url(&["admin", "dead-letters", stage, "redrive"], &[]), None).await
    }

    // --- the local stack's console ------------------------------------------------------

    /// A one-time console sign-in link from the local stack (`POST /dev/sign-in-link`): for
    /// `email` (default: the local admin), landing on `next` (a console path).
    pub async fn sign_in_link(&self, email: Option<&str>, next: Option<&str>) -> Result<Value, ClientError> {
        // Fields not given are left out, so that the stack's defaults apply.
        let mut body = serde_json::Map::new();
        if let Some(email) = email {
            body.insert("email".into(), Value::String(email.to_string()));
        }
        if let Some(next) = next {
            body.insert("next".into(), Value::String(next.to_string()));
        }
        let url = self.url(&["dev", "sign-in-link"], &[]);
        self.json(Method::POST, url, Some(Body::Json(Value::Object(body)))).await
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

    /// Moves enrolled leads of older versions (or of `from_version` only) to the latest.
    pub async fn campaign_migrate(&self, id: &str, from_version: Option<u32>) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "from_version": from_version });
        self.json(Method::POST, self.url(&["admin", "campaigns", id, "migrate"], &[]), Some(Body::Json(body))).await
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
