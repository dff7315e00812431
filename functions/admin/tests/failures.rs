//! A store that fails answers 503 in the API's error shape, never a 500 or a panic.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use leadflow_admin::AdminAuth;
use leadflow_core::model::LeadId;
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn a_store_that_is_down_answers_503_on_every_route() {
    let config = match leadflow_app::config_files::load(None) {
        Ok(c) => c,
        Err(e) => panic!("the sample configuration does not load: {e}"),
    };
    let ports = Arc::new(Adapters {
        store: leadflow_memory::DownStore::default(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    });
    let id = LeadId::from_parts(1, 1);
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/leads?q=ada".into(), None),
        (Method::GET, "/admin/leads?email=ada@example.com".into(), None),
        (Method::GET, format!("/admin/leads/{id}"), None),
        (Method::GET, "/admin/leads/export?format=csv".into(), None),
        (Method::POST, format!("/admin/leads/{id}/status"), Some(json!({"status": "won"}))),
        (Method::DELETE, format!("/admin/leads/{id}"), None),
        (Method::GET, "/admin/reports/funnel".into(), None),
        (Method::GET, "/admin/reps".into(), None),
        (Method::PUT, "/admin/reps/zoe".into(), Some(json!({"name": "Zoe", "email": "zoe@acme.example"}))),
        (Method::GET, "/admin/rules/scoring".into(), None),
        (Method::GET, "/admin/campaigns".into(), None),
        (Method::POST, "/admin/campaigns/welcome/pause".into(), None),
    ];
    for (method, uri, body) in routes {
        let mut req = Request::builder().method(method.clone()).uri(&uri).header("authorization", "Bearer t");
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let req = req.body(body).unwrap_or_default();
        let app = leadflow_admin::router(Arc::clone(&ports), AdminAuth::Bearer("t".into()));
        let resp = match app.oneshot(req).await {
            Ok(r) => r,
            Err(e) => panic!("the router failed: {e}"),
        };
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}: {answer}");
        assert_eq!(answer["error"]["code"], "temporarily_unavailable", "{method} {uri}: {answer}");
        assert!(!answer.to_string().contains("connection refused"), "the cause is logged, not answered");
    }
}
