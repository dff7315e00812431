//! What a landing page loads from capture — the form script and the thank-you page — and where a
//! form posted without script lands.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use chrono::Utc;
use http_body_util::BodyExt;
use leadflow_core::config::CompiledConfig;
use leadflow_core::ports::{Adapters, ConfigHandle, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;
use tower::ServiceExt;

type Ports = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

/// The sample configuration, with `extra` appended to its `leadflow.toml`.
fn ports(extra: &str) -> Arc<Ports> {
    let mut sources = leadflow_app::config_files::sample();
    sources.settings.push_str(extra);
    let config = CompiledConfig::compile(&sources).expect("the sample compiles");
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    })
}

async fn call(ports: &Arc<Ports>, req: Request<Body>) -> (Response<Body>, String) {
    let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (Response::from_parts(parts, Body::empty()), String::from_utf8_lossy(&bytes).into_owned())
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> &'a str {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn form_post(body: &str, accept: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/leads").header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.body(Body::from(body.to_string())).expect("request")
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[tokio::test]
async fn the_form_script_is_javascript_cached_for_an_hour() {
    let p = ports("");
    let (resp, body) = call(&p, Request::get("/forms/leadflow.js").body(Body::empty()).expect("req")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&resp, "cache-control"), "public, max-age=3600");
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    assert!(body.contains("form[data-leadflow]") && body.contains("idempotency-key"), "{body}");
}

#[tokio::test]
async fn the_thank_you_page_is_branded_escaped_and_scriptless() {
    let p = ports(
        "\n[thanks]\nheading = \"Merci <script>alert(1)</script>\"\nmessage = \"Tom & Jerry's team\"\n\
         brand_color = \"#0a66c2\"\nback_url = \"https://www.acme.example/?a=1&b=\\\"x\"\nback_label = \"Back to Acme\"\n",
    );
    let (resp, html) = call(&p, Request::get("/thanks").body(Body::empty()).expect("req")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&resp, "x-content-type-options"), "nosniff");
    let csp = header(&resp, "content-security-policy");
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("Merci &lt;script&gt;"), "{html}");
    assert!(html.contains("Tom &amp; Jerry&#x27;s team"), "{html}");
    assert!(html.contains("#0a66c2") && html.contains("Back to Acme"), "{html}");
    assert!(html.contains("href=\"https:&#x2f;&#x2f;www.acme.example&#x2f;?a=1&amp;b=&quot;x\""), "{html}");
    assert!(html.contains("name=\"viewport\""), "phones lay it out at their width");

    let (_, html) = call(&ports(""), Request::get("/thanks").body(Body::empty()).expect("req")).await;
    assert!(html.contains("Thank you \u{2014} we\u{2019}ll be in touch"), "{html}");
    assert!(!html.contains("<a "), "no back link unless one is set: {html}");
}

#[tokio::test]
async fn a_browser_form_without_a_redirect_lands_on_the_thank_you_page() {
    let p = ports("");
    let (resp, _) = call(&p, form_post("email=eve%40globex.example&form=newsletter", Some(BROWSER_ACCEPT))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&resp, "location"), "/thanks");
    assert_eq!(p.queue.drain(Stage::Validate).len(), 1, "the lead is queued");

    // A configured redirect wins.
    let (resp, _) = call(&p, form_post("email=eve%40globex.example&form=contact", Some(BROWSER_ACCEPT))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&resp, "location"), "http://127.0.0.1:8080/thanks");

    // Bots filling the honeypot get what people get.
    let (resp, _) = call(&p, form_post("email=bot%40spam.example&_gotcha=x", Some(BROWSER_ACCEPT))).await;
    assert_eq!((resp.status(), header(&resp, "location")), (StatusCode::SEE_OTHER, "/thanks"));
    let (resp, _) = call(&p, form_post("email=bot%40spam.example&form=contact&_gotcha=x", None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "a configured redirect, as for a person");
    assert_eq!(p.queue.drain(Stage::Validate).len(), 1, "only the person's lead");
}

#[tokio::test]
async fn api_clients_keep_their_json_answers() {
    let p = ports("");
    // A form body from a client that does not ask for a page, and JSON even when it does.
    let (resp, body) = call(&p, form_post("email=eve%40globex.example", None)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["lead_id"].is_string(), "{body}");
    let json = Request::post("/leads")
        .header("content-type", "application/json")
        .header("accept", "text/html")
        .body(Body::from(r#"{"email": "eve@globex.example", "form": "contact"}"#))
        .expect("req");
    let (resp, body) = call(&p, json).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{body}");
    // Errors stay the JSON error shape, for the script to place next to the fields.
    let (resp, body) = call(&p, form_post("email=not-an-email", Some(BROWSER_ACCEPT))).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"]["field"], "email", "{body}");
}
