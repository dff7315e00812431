//! The unsubscribe routes over the in-memory adapters: GET changes nothing, POST stops the
//! nurture and suppresses the address, replays are harmless, forged links do nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{ActivityKind, EnrollmentState, LeadId, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_core::ports::{Enrollments, Leads, Suppressions, Trails};
use leadflow_core::unsubscribe::sign;
use leadflow_memory::fixtures::{enrollment, id, lead, t};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::Value;
use tower::ServiceExt;

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

const SECRET: &str = "unsubscribe-test-secret";
const ADA: &str = "ada@example.com";
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn config(secret: &str) -> CompiledConfig {
    let compiled = CompiledConfig::compile(&leadflow_app::config_files::sample());
    assert!(compiled.is_ok(), "the sample configuration compiles: {:?}", compiled.as_ref().err());
    let mut config = compiled.unwrap_or_else(|_| unreachable!());
    config.settings.signing_keys = secret.into();
    config
}

fn ports_with_secret(secret: &str) -> Arc<MemPorts> {
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(now()),
        config: ConfigHandle::new(config(secret)),
    })
}

/// Lead 1 (Ada), enrolled in two campaigns: one active, one completed.
async fn ports() -> Arc<MemPorts> {
    let ports = ports_with_secret(SECRET);
    let store = &ports.store;
    assert!(store.create_lead(&lead(1, ADA), &[]).await.is_ok());
    assert_eq!(
        store.enroll(&enrollment(1, "welcome", Some(t(3600)), EnrollmentState::Active), &[]).await.ok(),
        Some(true)
    );
    assert_eq!(store.enroll(&enrollment(1, "old", None, EnrollmentState::Completed), &[]).await.ok(), Some(true));
    ports
}

fn token(lead_id: LeadId) -> String {
    sign(&SECRET.into(), lead_id).unwrap_or_default()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(ports: &Arc<MemPorts>, request: Request<Body>) -> Answer {
    let response = leadflow_unsubscribe::router(Arc::clone(ports)).oneshot(request).await;
    let Ok(response) = response; // the router is infallible
    let status = response.status();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Answer { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn get(ports: &Arc<MemPorts>, token: &str) -> Answer {
    let request = Request::get(format!("/u/{token}")).header(header::ACCEPT, "text/html").body(Body::empty());
    call(ports, request.unwrap_or_default()).await
}

async fn post(ports: &Arc<MemPorts>, token: &str, content_type: Option<&str>, body: &str) -> Answer {
    let mut request = Request::post(format!("/u/{token}"));
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    call(ports, request.body(Body::from(body.to_string())).unwrap_or_default()).await
}

async fn one_click(ports: &Arc<MemPorts>, token: &str) -> Answer {
    post(ports, token, Some("application/x-www-form-urlencoded"), ONE_CLICK).await
}

async fn enrollment_states(ports: &Arc<MemPorts>) -> Vec<(String, EnrollmentState)> {
    let enrollments = ports.store.enrollments(id(1)).await.unwrap_or_default();
    enrollments.into_iter().map(|e| (e.campaign_id, e.state)).collect()
}

async fn is_active(ports: &Arc<MemPorts>) -> bool {
    enrollment_states(ports).await.iter().any(|(c, s)| c == "welcome" && *s == EnrollmentState::Active)
}

async fn suppressed(ports: &Arc<MemPorts>, address: &str) -> Option<SuppressionReason> {
    let entry = ports.store.suppression(&email_key(address)).await;
    assert!(entry.is_ok(), "the store answers suppression lookups: {:?}", entry.as_ref().err());
    entry.ok().flatten().map(|s| s.reason)
}

/// The `via` of every `Unsubscribed` activity of lead 1.
async fn unsubscribed_via(ports: &Arc<MemPorts>) -> Vec<String> {
    let activities = ports.store.activities(id(1)).await.unwrap_or_default();
    activities
        .into_iter()
        .filter_map(|a| match a.kind {
            ActivityKind::Unsubscribed { via } => Some(via),
            _ => None,
        })
        .collect()
}

async fn enrollment_ended_count(ports: &Arc<MemPorts>) -> usize {
    let activities = ports.store.activities(id(1)).await.unwrap_or_default();
    activities.iter().filter(|a| matches!(a.kind, ActivityKind::EnrollmentEnded { .. })).count()
}

#[tokio::test]
async fn get_shows_a_confirmation_page_and_changes_nothing() {
    let ports = ports().await;
    let page = get(&ports, &token(id(1))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    assert!(page.body.contains("<button"), "{}", page.body);
    // Self-contained, and nothing personal on it.
    assert!(!page.body.contains("src="), "{}", page.body);
    assert!(!page.body.contains("href="), "{}", page.body);
    assert!(!page.body.contains(ADA), "{}", page.body);
    assert!(!page.body.contains("Ada"), "{}", page.body);

    assert!(is_active(&ports).await, "a GET stops nothing");
    assert_eq!(suppressed(&ports, ADA).await, None);
    assert!(unsubscribed_via(&ports).await.is_empty());
}

#[tokio::test]
async fn pages_forbid_framing_scripts_and_referrers() {
    let ports = ports().await;
    let request = Request::get(format!("/u/{}", token(id(1)))).body(Body::empty()).unwrap_or_default();
    let response = leadflow_unsubscribe::router(Arc::clone(&ports)).oneshot(request).await;
    let Ok(response) = response; // the router is infallible
    let h = response.headers();
    let csp = h.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h.get(header::REFERRER_POLICY).and_then(|v| v.to_str().ok()), Some("no-referrer"));
    assert_eq!(h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
}

#[tokio::test]
async fn get_then_the_pages_post_stops_the_remaining_steps() {
    let ports = ports().await;
    let t = token(id(1));
    assert_eq!(get(&ports, &t).await.status, StatusCode::OK);
    // What the page's form sends.
    let done = post(&ports, &t, Some("application/x-www-form-urlencoded"), "confirm=yes").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.content_type.starts_with("text/html"));
    assert!(done.body.contains("unsubscribed"), "{}", done.body);
    assert!(!done.body.contains(ADA));

    let states = enrollment_states(&ports).await;
    assert!(
        states.contains(&("welcome".to_string(), EnrollmentState::Stopped { reason: "unsubscribed".into() })),
        "{states:?}"
    );
    assert!(
        states.contains(&("old".to_string(), EnrollmentState::Completed)),
        "a finished enrollment stays: {states:?}"
    );
    assert_eq!(suppressed(&ports, ADA).await, Some(SuppressionReason::Unsubscribed));
    assert_eq!(unsubscribed_via(&ports).await, vec!["link".to_string()]);
}

#[tokio::test]
async fn the_rfc_8058_one_click_post_alone_unsubscribes() {
    let ports = ports().await;
    let done = one_click(&ports, &token(id(1))).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(!is_active(&ports).await);
    assert_eq!(suppressed(&ports, ADA).await, Some(SuppressionReason::Unsubscribed));
    assert_eq!(unsubscribed_via(&ports).await, vec!["one_click".to_string()]);
}

#[tokio::test]
async fn a_multipart_one_click_post_counts_as_one_click() {
    let ports = ports().await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let done = post(&ports, &token(id(1)), Some("multipart/form-data; boundary=XyZ"), body).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(unsubscribed_via(&ports).await, vec!["one_click".to_string()]);
}

#[tokio::test]
async fn an_empty_post_unsubscribes() {
    let ports = ports().await;
    let done = post(&ports, &token(id(1)), None, "").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(!is_active(&ports).await);
    assert_eq!(suppressed(&ports, ADA).await, Some(SuppressionReason::Unsubscribed));
    assert_eq!(unsubscribed_via(&ports).await, vec!["link".to_string()]);
}

#[tokio::test]
async fn a_replay_answers_the_same_and_records_nothing_twice() {
    let ports = ports().await;
    let t = token(id(1));
    let first = one_click(&ports, &t).await;
    let trail = ports.store.activities(id(1)).await.unwrap_or_default();
    let second = one_click(&ports, &t).await;
    let third = post(&ports, &t, Some("application/x-www-form-urlencoded"), "confirm=yes").await;
    assert_eq!((first.status, second.status, third.status), (StatusCode::OK, StatusCode::OK, StatusCode::OK));
    assert_eq!(first.body, second.body);
    assert_eq!(first.body, third.body);
    assert_eq!(ports.store.activities(id(1)).await.unwrap_or_default(), trail, "the trail did not grow");
    assert_eq!(unsubscribed_via(&ports).await, vec!["one_click".to_string()]);
    assert_eq!(enrollment_ended_count(&ports).await, 1);
    assert_eq!(suppressed(&ports, ADA).await, Some(SuppressionReason::Unsubscribed));
}

#[tokio::test]
async fn a_lead_that_no_longer_exists_gets_the_same_answer() {
    let ports = ports().await;
    let done = one_click(&ports, &token(id(1))).await;
    let gone = one_click(&ports, &token(id(99))).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(gone.body, done.body);
}

#[tokio::test]
async fn a_token_for_a_merged_capture_id_unsubscribes_the_lead_it_was_merged_into() {
    let ports = ports().await;
    assert_eq!(ports.store.record_alias(id(7), id(1)).await.ok(), Some(true));
    assert_eq!(one_click(&ports, &token(id(7))).await.status, StatusCode::OK);
    assert!(!is_active(&ports).await);
    assert_eq!(suppressed(&ports, ADA).await, Some(SuppressionReason::Unsubscribed));
}

/// A valid token with one character of its MAC changed.
fn with_mac_changed(token: &str) -> String {
    let (lead, mac) = token.split_once('.').unwrap_or_default();
    let mut mac: Vec<char> = mac.chars().collect();
    if let Some(c) = mac.get_mut(5) {
        *c = if *c == '0' { '1' } else { '0' };
    }
    format!("{lead}.{}", mac.into_iter().collect::<String>())
}

/// Lead 2's id with lead 1's MAC.
fn with_other_lead(token: &str) -> String {
    let (_, mac) = token.split_once('.').unwrap_or_default();
    format!("{}.{mac}", id(2))
}

async fn assert_nothing_happened(ports: &Arc<MemPorts>) {
    assert!(is_active(ports).await);
    assert_eq!(suppressed(ports, ADA).await, None);
    assert_eq!(suppressed(ports, "bob@example.com").await, None);
    assert!(unsubscribed_via(ports).await.is_empty());
    let lead2 = ports.store.enrollments(id(2)).await.unwrap_or_default();
    assert!(lead2.iter().all(|e| e.state == EnrollmentState::Active), "{lead2:?}");
}

#[tokio::test]
async fn forged_tokens_are_refused_and_suppress_nothing() {
    let ports = ports().await;
    assert!(ports.store.create_lead(&lead(2, "bob@example.com"), &[]).await.is_ok());
    assert_eq!(
        ports.store.enroll(&enrollment(2, "welcome", Some(t(60)), EnrollmentState::Active), &[]).await.ok(),
        Some(true)
    );
    let good = token(id(1));
    let forged_with_another_secret = sign(&"another-secret".into(), id(1)).unwrap_or_default();
    for forged in [with_mac_changed(&good), with_other_lead(&good), forged_with_another_secret] {
        assert_ne!(forged, good);
        let refused = one_click(&ports, &forged).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{forged}");
        assert_eq!(refused.json()["error"]["code"], "invalid_token", "{}", refused.body);
        assert!(refused.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(get(&ports, &forged).await.status, StatusCode::FORBIDDEN, "GET {forged}");
    }
    assert_nothing_happened(&ports).await;
}

#[tokio::test]
async fn garbage_tokens_are_malformed_and_suppress_nothing() {
    let ports = ports().await;
    let good = token(id(1));
    let cut = good[..good.len() - 3].to_string();
    for garbage in ["garbage".to_string(), "x.y".to_string(), format!("{}.", id(1)), cut, "%00%FF".to_string()] {
        let refused = one_click(&ports, &garbage).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{garbage}: {}", refused.body);
        assert_eq!(refused.json()["error"]["code"], "malformed_token", "{garbage}: {}", refused.body);
    }
    assert_nothing_happened(&ports).await;
}

#[tokio::test]
async fn browsers_get_the_refusal_as_a_page() {
    let ports = ports().await;
    let refused = get(&ports, &with_mac_changed(&token(id(1)))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.content_type.starts_with("text/html"), "{}", refused.content_type);
    assert!(refused.body.contains("not valid"), "{}", refused.body);
}

#[tokio::test]
async fn without_a_secret_every_link_is_refused_as_unavailable() {
    let ports = ports_with_secret("");
    let answer = one_click(&ports, &token(id(1))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"]["code"], "temporarily_unavailable", "{}", answer.body);
}

/// A store that is down: every call fails as an unreachable database would.

#[tokio::test]
async fn an_unavailable_store_answers_503_with_a_json_error() {
    let ports = Arc::new(Adapters {
        store: leadflow_memory::DownStore::default(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(now()),
        config: ConfigHandle::new(config(SECRET)),
    });
    let request = Request::post(format!("/u/{}", token(id(1))))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(ONE_CLICK))
        .unwrap_or_default();
    let response = leadflow_unsubscribe::router(ports).oneshot(request).await;
    let Ok(response) = response; // the router is infallible
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "temporarily_unavailable", "{body}");
}

#[test]
fn one_click_detection() {
    use axum::http::HeaderMap;
    use leadflow_unsubscribe::is_one_click;
    let form = {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-www-form-urlencoded"));
        h
    };
    assert!(is_one_click(&form, b"List-Unsubscribe=One-Click"));
    assert!(is_one_click(&form, b"a=b&List-Unsubscribe=One-Click"));
    assert!(is_one_click(&form, b"List%2DUnsubscribe=One%2dClick"));
    assert!(is_one_click(&HeaderMap::new(), b"List-Unsubscribe=One-Click"));
    assert!(!is_one_click(&form, b""));
    assert!(!is_one_click(&form, b"confirm=yes"));
    assert!(!is_one_click(&form, b"List-Unsubscribe=Two-Clicks"));
    assert!(!is_one_click(&form, b"%"));
}

#[test]
fn html_escaping() {
    assert_eq!(
        leadflow_unsubscribe::escape_html("<a href=\"x\">Tom & Jerry's</a>"),
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#x27;s&lt;&#x2f;a&gt;"
    );
}
