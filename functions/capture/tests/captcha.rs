//! The optional CAPTCHA against a fake `siteverify` on a local port: off by default; when on, a
//! submission without a token, with a refused one, or with too low a score is refused at its
//! field and queued nowhere; a passing one is captured and its token kept nowhere; a provider
//! that cannot be asked (or a missing secret) refuses submissions with a 503 instead of letting
//! them through unchecked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Form, Json, Router};
use chrono::Utc;
use http_body_util::BodyExt;
use leadflow_capture::captcha::Captcha;
use leadflow_core::config::{CaptchaProvider, CaptchaSettings, CompiledConfig};
use leadflow_core::ports::{Adapters, ConfigHandle, Ports as _, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

type Ports = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const SECRET: &str = "fake-provider-secret";

/// What the fake provider was asked.
#[derive(Default)]
struct Seen {
    calls: AtomicUsize,
    last: Mutex<Vec<(String, String)>>,
}

/// Answers as Turnstile, hCaptcha and reCAPTCHA do, by the token: `good` passes, `low` passes
/// with a reCAPTCHA v3 score of 0.1, anything else was used already.
async fn siteverify(State(seen): State<Arc<Seen>>, Form(form): Form<Vec<(String, String)>>) -> Json<Value> {
    seen.calls.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut last) = seen.last.lock() {
        last.clone_from(&form);
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("secret") != Some(SECRET) {
        return Json(json!({"success": false, "error-codes": ["invalid-input-secret"]}));
    }
    Json(match get("response") {
        Some("good") => json!({"success": true, "hostname": "www.acme.example"}),
        Some("low") => json!({"success": true, "score": 0.1}),
        _ => json!({"success": false, "error-codes": ["timeout-or-duplicate"]}),
    })
}

/// The fake provider on a free port; answers its verify URL.
async fn provider(seen: &Arc<Seen>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("its address");
    let app = Router::new().route("/siteverify", post(siteverify)).with_state(Arc::clone(seen));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/siteverify")
}

fn settings(verify_url: &str) -> CaptchaSettings {
    CaptchaSettings {
        provider: CaptchaProvider::Turnstile,
        verify_url: Some(verify_url.to_string()),
        field: None,
        timeout_ms: 2000,
        min_score: Some(0.5),
    }
}

fn ports() -> Arc<Ports> {
    let config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample compiles");
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    })
}

async fn post_lead(ports: &Arc<Ports>, captcha: Captcha, body: Value) -> (StatusCode, Value) {
    let req = Request::post("/leads")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = leadflow_capture::router_with(Arc::clone(ports), captcha).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn lead(token: Option<&str>) -> Value {
    let mut body = json!({"email": "ana@acme.io", "first_name": "Ana"});
    if let Some(t) = token {
        body["cf-turnstile-response"] = json!(t);
    }
    body
}

#[tokio::test]
async fn off_by_default() {
    let ports = ports();
    assert_eq!(ports.config().settings.capture.captcha, None);
    let (status, body) = post_lead(&ports, Captcha::from_env(None), lead(None)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ports.queue.drain(Stage::Validate).len(), 1);
}

#[tokio::test]
async fn a_submission_passes_only_with_a_token_the_provider_accepts() {
    let seen = Arc::new(Seen::default());
    let url = provider(&seen).await;
    let ports = ports();
    let captcha = Captcha::new(&settings(&url), SECRET.into());

    for (token, code) in [(None, "captcha_required"), (Some("used"), "captcha_failed"), (Some("low"), "captcha_failed")]
    {
        let (status, body) = post_lead(&ports, captcha.clone(), lead(token)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{token:?}: {body}");
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["field"], "cf-turnstile-response", "the error names the widget's field");
    }
    assert!(ports.queue.drain(Stage::Validate).is_empty(), "nothing refused was queued");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2, "no token, no call to the provider");

    // A field error is found before the provider is asked: the token stays good for the retry.
    let mut bad = lead(Some("good"));
    bad["email"] = json!("not an address");
    let (status, _) = post_lead(&ports, captcha.clone(), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);

    let (status, body) = post_lead(&ports, captcha.clone(), lead(Some("good"))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let sent = seen.last.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(sent.contains(&("secret".into(), SECRET.into())) && sent.contains(&("response".into(), "good".into())));
    let queued = ports.queue.drain(Stage::Validate);
    assert_eq!(queued.len(), 1);
    assert!(!queued[0].contains("cf-turnstile-response"), "the token is no custom field: {}", queued[0]);
}

#[tokio::test]
async fn it_fails_closed_when_the_provider_cannot_be_asked() {
    let ports = ports();
    // Nothing listens on port 9 of the loopback.
    let unreachable = Captcha::new(&settings("http://127.0.0.1:9/siteverify"), SECRET.into());
    let (status, body) = post_lead(&ports, unreachable, lead(Some("good"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "temporarily_unavailable");

    // Our own secret refused: a configuration fault, not the visitor's.
    let seen = Arc::new(Seen::default());
    let url = provider(&seen).await;
    let (status, _) = post_lead(&ports, Captcha::new(&settings(&url), "wrong".into()), lead(Some("good"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Configured without a secret in the environment (this test never sets it).
    let (status, _) = post_lead(&ports, Captcha::from_env(Some(&settings(&url))), lead(Some("good"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ports.queue.drain(Stage::Validate).is_empty());
}

#[test]
fn its_numbers_are_bounded_in_the_configuration() {
    for (extra, what) in [
        ("[capture.captcha]\nprovider = \"hcaptcha\"\ntimeout_ms = 60000\n", "timeout_ms"),
        ("[capture.captcha]\nprovider = \"recaptcha\"\nmin_score = 2.0\n", "min_score"),
        ("[capture.captcha]\nprovider = \"turnstile\"\nverify_url = \"ftp://x\"\n", "verify_url"),
    ] {
        let mut sources = leadflow_app::config_files::sample();
        sources.settings = sources.settings.replace("[console]", &format!("{extra}\n[console]"));
        let err = CompiledConfig::compile(&sources).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(what), "{extra}: {err}");
    }
    let mut sources = leadflow_app::config_files::sample();
    sources.settings = sources.settings.replace("[console]", "[capture.captcha]\nprovider = \"hcaptcha\"\n\n[console]");
    let compiled = CompiledConfig::compile(&sources).expect("a plain hcaptcha section compiles");
    let captcha = compiled.settings.capture.captcha.expect("configured");
    assert_eq!(captcha.verify_url(), "https://api.hcaptcha.com/siteverify");
    assert_eq!(captcha.field(), "h-captcha-response");
}
