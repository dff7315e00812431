//! The admin router over the in-memory adapters, and requests to it.
#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_admin::AdminAuth;
use leadflow_core::model::{ActivityKind, Lead};
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_core::ports::{Leads, Trails};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;
use tower::ServiceExt;

pub type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

pub const TOKEN: &str = "test-token";

/// A Monday morning, so nothing depends on the day the tests run.
pub fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

pub fn ports() -> Arc<MemPorts> {
    let config = match leadflow_app::config_files::load(None) {
        Ok(c) => c,
        Err(e) => panic!("the sample configuration does not load: {e}"),
    };
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(monday()),
        config: ConfigHandle::new(config),
    })
}

pub fn app(ports: &Arc<MemPorts>) -> Router {
    leadflow_admin::router(Arc::clone(ports), AdminAuth::Bearer(TOKEN.into()))
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

pub async fn request(
    ports: &Arc<MemPorts>,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Answer {
    match body {
        Some(b) => send(ports, method, uri, Some((b.to_string(), "application/json")), token).await,
        None => send(ports, method, uri, None, token).await,
    }
}

/// A request with a body of any content type.
pub async fn send(
    ports: &Arc<MemPorts>,
    method: Method,
    uri: &str,
    body: Option<(String, &str)>,
    token: Option<&str>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some((text, content_type)) => {
            req = req.header("content-type", content_type);
            Body::from(text)
        }
        None => Body::empty(),
    };
    let req = req.body(body).unwrap_or_default();
    let resp = match app(ports).oneshot(req).await {
        Ok(r) => r,
        Err(e) => panic!("the router failed: {e}"),
    };
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, content_type, text, json }
}

pub async fn get(ports: &Arc<MemPorts>, uri: &str) -> Answer {
    request(ports, Method::GET, uri, None, Some(TOKEN)).await
}

pub async fn post(ports: &Arc<MemPorts>, uri: &str, body: Value) -> Answer {
    request(ports, Method::POST, uri, Some(body), Some(TOKEN)).await
}

pub async fn put(ports: &Arc<MemPorts>, uri: &str, body: Value) -> Answer {
    request(ports, Method::PUT, uri, Some(body), Some(TOKEN)).await
}

pub async fn delete(ports: &Arc<MemPorts>, uri: &str) -> Answer {
    request(ports, Method::DELETE, uri, None, Some(TOKEN)).await
}

pub async fn store_lead(ports: &Arc<MemPorts>, lead: Lead) -> Lead {
    match ports.store.create_lead(&lead, &[]).await {
        Ok(_) => lead,
        Err(e) => panic!("cannot store the lead: {e}"),
    }
}

pub async fn stored(ports: &Arc<MemPorts>, lead: &Lead) -> Lead {
    match ports.store.get_lead(lead.id).await {
        Ok(Some(l)) => l,
        other => panic!("lead {} not readable: {other:?}", lead.id),
    }
}

pub async fn activity_kinds(ports: &Arc<MemPorts>, lead: &Lead) -> Vec<ActivityKind> {
    ports.store.activities(lead.id).await.unwrap_or_default().into_iter().map(|a| a.kind).collect()
}

/// Asserts an error answer's shape and code, and answers its field.
pub fn error_field(answer: &Answer, status: StatusCode, code: &str) -> Option<String> {
    assert_eq!(answer.status, status, "{}", answer.text);
    let error = &answer.json["error"];
    assert_eq!(error["code"], code, "{}", answer.text);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.text);
    assert!(error.get("field").is_some(), "an error always has a field, maybe null: {}", answer.text);
    error["field"].as_str().map(str::to_string)
}
