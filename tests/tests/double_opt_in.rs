//! Double opt-in, repeat submissions and idempotency keys, over the real handlers (capture,
//! validate, score, route, nurture, the confirmation pages) on in-memory ports, every queued
//! message delivered twice.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_app::Sent;
use leadflow_core::config::FormSettings;
use leadflow_core::confirmation::{self, Due};
use leadflow_core::model::{Activity, ActivityKind, Lead, LeadId, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle, OutgoingEmail, Stage};
use leadflow_core::ports::{Enrollments, Leads, Suppressions, Trails};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer, SettableClock};
use serde_json::{Value, json};
use tower::ServiceExt;

type MemPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SettableClock>;

/// A Monday morning, so nothing depends on the day the tests run.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

/// The test configuration, with a `contact-us` form that turns double opt-in off.
fn ports() -> Arc<MemPorts> {
    let mut config = leadflow_tests::test_config();
    config.settings.forms.insert("contact-us".into(), FormSettings { redirect: None, double_opt_in: false });
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(monday()),
        config: ConfigHandle::new(config),
    })
}

async fn post(ports: &Arc<MemPorts>, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::post("/leads").header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let req = req.body(Body::from(body.to_string())).unwrap_or_default();
    let resp = leadflow_capture::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Runs what the stages queued, each message delivered twice (a redelivering queue); every
/// delivery must succeed.
async fn pipeline(ports: &Arc<MemPorts>) {
    for _ in 0..4 {
        for stage in Stage::ALL {
            let bodies = ports.queue.drain(stage);
            for _ in 0..2 {
                deliver(ports, stage, &bodies).await;
            }
        }
    }
}

/// Delivers `bodies` to `stage`'s handler as one batch; every message must succeed.
async fn deliver(ports: &Arc<MemPorts>, stage: Stage, bodies: &[String]) {
    let failed = leadflow_tests::harness::deliver(&**ports, stage, bodies).await;
    assert!(failed.is_empty(), "{failed:?}");
}

/// Joe's address on the suppression list, as an unsubscribe leaves it.
async fn suppress_joe(ports: &Arc<MemPorts>) {
    let entry = leadflow_core::model::Suppression {
        email_key: email_key("joe@gmail.com"),
        reason: SuppressionReason::Unsubscribed,
        at: monday(),
        lead_id: None,
    };
    assert_eq!(ports.store.suppress(&entry, &[]).await.ok(), Some(true));
}

/// A page of the confirmation link: status and body.
async fn page(ports: &Arc<MemPorts>, method: &str, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(if method == "POST" { "confirm=yes" } else { "" }))
        .unwrap_or_default();
    let resp = leadflow_unsubscribe::router(Arc::clone(ports)).oneshot(req).await.unwrap_or_default();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn lead_id(body: &Value) -> LeadId {
    body["lead_id"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no lead id in {body}"))
}

async fn lead(ports: &Arc<MemPorts>, id: LeadId) -> Lead {
    let resolved = ports.store.resolve_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("no lead {id}"));
    ports.store.get_lead(resolved).await.ok().flatten().unwrap_or_else(|| panic!("no lead {resolved}"))
}

async fn trail(ports: &Arc<MemPorts>, id: LeadId) -> Vec<Activity> {
    ports.store.activities(id).await.unwrap_or_default()
}

fn kinds(trail: &[Activity]) -> Vec<&'static str> {
    trail.iter().map(|a| a.kind.name()).collect()
}

fn to(ports: &Arc<MemPorts>, address: &str) -> Vec<OutgoingEmail> {
    ports.mailer.sent().into_iter().filter(|e| e.to.email == address).collect()
}

/// The `/confirm/<token>` path in a confirmation email.
fn confirm_path(email: &OutgoingEmail) -> String {
    let start = email.text.find("/confirm/").unwrap_or_else(|| panic!("no link in {}", email.text));
    email.text[start..].split_whitespace().next().unwrap_or_default().to_string()
}

async fn tick(ports: &Arc<MemPorts>) {
    let report = leadflow_nurture::tick(&**ports, 100).await;
    assert!(report.is_ok(), "{report:?}");
}

/// Below MQL (free mail, no title), consenting on the newsletter form.
fn joe() -> Value {
    json!({"email": "joe@gmail.com", "first_name": "Joe", "form": "newsletter", "consent": true,
           "consent_text": "Yes, send me Acme's newsletter."})
}

#[tokio::test]
async fn consent_is_recorded_only_by_the_confirmation_post_and_drips_start_after_it() {
    let ports = ports();
    let (status, body) = post(&ports, &joe(), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = lead_id(&body);
    pipeline(&ports).await;
    tick(&ports).await;

    // One confirmation email, however often the messages came, and no drip.
    let mails = to(&ports, "joe@gmail.com");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let confirmation = &mails[0];
    assert_eq!(confirmation.key, format!("confirm-{id}"));
    assert!(confirmation.headers.is_empty(), "transactional: no List-Unsubscribe");
    let joe = lead(&ports, id).await;
    assert_eq!(joe.consent, None, "no consent before the person confirms");
    assert!(ports.store.enrollments(id).await.unwrap_or_default().is_empty(), "no campaign yet");
    let before = trail(&ports, id).await;
    for k in ["consent_requested", "confirmation_sent"] {
        assert!(kinds(&before).contains(&k), "{:?}", kinds(&before));
    }

    // Opening the link changes nothing.
    let path = confirm_path(confirmation);
    let (status, shown) = page(&ports, "GET", &path).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(shown.contains("Confirm your subscription") && shown.contains("Yes, send me Acme&#x27;s newsletter."));
    assert!(!shown.contains("joe@gmail.com"), "the page shows nothing about the person");
    assert_eq!(lead(&ports, id).await, joe);
    assert_eq!(trail(&ports, id).await, before);
    assert!(ports.queue.drain(Stage::Score).is_empty());

    // A forged or altered link is refused and changes nothing.
    let token = path.trim_start_matches("/confirm/");
    let (lead_part, rest) = token.split_once('.').unwrap_or_default();
    let other_lead = format!("/confirm/{}.{rest}", LeadId::from_parts(1_772_445_600_000, 1));
    let tampered_mac =
        format!("/confirm/{}{}", &token[..token.len() - 1], if token.ends_with('0') { "1" } else { "0" });
    let (_, rest_after_expiry) = rest.split_once('.').unwrap_or_default();
    let longer = format!("/confirm/{lead_part}.{}.{rest_after_expiry}", 4_102_444_800_i64);
    for forged in [other_lead, tampered_mac, longer] {
        for method in ["GET", "POST"] {
            let (status, body) = page(&ports, method, &forged).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {forged}: {body}");
        }
    }
    let (status, _) = page(&ports, "POST", "/confirm/not-a-token").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(lead(&ports, id).await, joe);
    assert_eq!(trail(&ports, id).await, before);

    // The button records consent: when, on which form, to which words; the drips start.
    let confirmed_at = monday() + Duration::hours(3);
    ports.clock.set(confirmed_at);
    let (status, done) = page(&ports, "POST", &path).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("You are subscribed"));
    let consent = lead(&ports, id).await.consent.unwrap_or_else(|| panic!("consent recorded"));
    assert!(consent.given);
    assert_eq!(consent.at, confirmed_at);
    assert_eq!(consent.source, "newsletter");
    assert_eq!(consent.wording.as_deref(), Some("Yes, send me Acme's newsletter."));
    assert!(kinds(&trail(&ports, id).await).contains(&"consent_confirmed"));
    pipeline(&ports).await;
    tick(&ports).await;
    let enrollments = ports.store.enrollments(id).await.unwrap_or_default();
    assert_eq!(enrollments.len(), 1, "enrolled on confirmation: {enrollments:?}");
    let mails = to(&ports, "joe@gmail.com");
    assert_eq!(mails.len(), 2, "the confirmation, then the first drip");
    assert!(mails[1].headers.iter().any(|(h, _)| h == "List-Unsubscribe"), "the drip is marketing email");

    // Pressing again changes nothing.
    let settled = trail(&ports, id).await;
    ports.clock.set(confirmed_at + Duration::hours(1));
    let (status, again) = page(&ports, "POST", &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("You are subscribed"));
    assert_eq!(lead(&ports, id).await.consent.map(|c| c.at), Some(confirmed_at));
    assert_eq!(trail(&ports, id).await, settled);
    pipeline(&ports).await;
    assert_eq!(ports.store.enrollments(id).await.unwrap_or_default().len(), 1);
}

#[tokio::test]
async fn an_unconfirmed_lead_stays_unconsented_and_its_expired_link_confirms_nothing() {
    let ports = ports();
    let (_, body) = post(&ports, &joe(), None).await;
    let id = lead_id(&body);
    pipeline(&ports).await;
    // The form sent again while the link works: no second email.
    post(&ports, &joe(), None).await;
    pipeline(&ports).await;
    let mails = to(&ports, "joe@gmail.com");
    assert_eq!(mails.len(), 1, "{mails:?}");
    let path = confirm_path(&mails[0]);

    ports.clock.set(monday() + Duration::days(31));
    tick(&ports).await;
    for method in ["GET", "POST"] {
        let (status, body) = page(&ports, method, &path).await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert!(body.contains("expired"), "{body}");
    }
    assert_eq!(lead(&ports, id).await.consent, None);
    assert!(ports.store.enrollments(id).await.unwrap_or_default().is_empty());
    assert_eq!(to(&ports, "joe@gmail.com").len(), 1, "no drip to an unconfirmed lead");

    // Asking again after the link expired sends one new link.
    post(&ports, &joe(), None).await;
    pipeline(&ports).await;
    let mails = to(&ports, "joe@gmail.com");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_ne!(confirm_path(&mails[1]), path);
}

/// Joe captured, validated and scored: the route message score queued for his confirmation.
async fn joes_route_message(ports: &Arc<MemPorts>) -> (LeadId, Value) {
    let (_, body) = post(ports, &joe(), None).await;
    let id = lead_id(&body);
    for stage in [Stage::Validate, Stage::Score] {
        let bodies = ports.queue.drain(stage);
        deliver(ports, stage, &bodies).await;
    }
    let route = ports.queue.drain(Stage::Route);
    assert_eq!(route.len(), 1, "{route:?}");
    let message: Value = serde_json::from_str(&route[0]).unwrap_or_default();
    (id, message)
}

#[tokio::test]
async fn the_confirmation_email_travels_with_the_route_message_and_one_from_before_that_still_sends_it_once() {
    let ports = ports();
    let (id, message) = joes_route_message(&ports).await;
    // Score names the email it found due, so route need not read the trail for it; `confirm`
    // stays for a route of the version before.
    assert_eq!(message["confirm"], json!(true));
    assert_eq!(message["confirmation"]["key"], json!(format!("confirm-{id}")));
    assert_eq!(message["confirmation"]["request"]["purpose"], json!("marketing"), "{message}");

    // A message from before the carried email (`confirm` alone): route reads the trail, as then.
    let mut older = message.clone();
    older.as_object_mut().map(|m| m.remove("confirmation"));
    deliver(&ports, Stage::Route, &[older.to_string()]).await;
    let mails = to(&ports, "joe@gmail.com");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].key, format!("confirm-{id}"));

    // The message of today, delivered twice after that: the same email, not a second one.
    deliver(&ports, Stage::Route, &[message.to_string(), message.to_string()]).await;
    assert_eq!(to(&ports, "joe@gmail.com").len(), 1);
    let sent = trail(&ports, id).await.into_iter().filter(|a| a.kind.name() == "confirmation_sent").count();
    assert_eq!(sent, 1, "one entry for the one email");
}

#[tokio::test]
async fn a_confirmation_sent_before_its_trail_entry_gets_the_entry_and_no_second_email() {
    // A version that wrote the entry after the send's record, and crashed in between: the email
    // is sent and recorded, its `confirmation_sent` entry is missing.
    let ports = ports();
    let (id, message) = joes_route_message(&ports).await;
    let due: Due = serde_json::from_value(message["confirmation"].clone()).unwrap_or_else(|e| panic!("{e}"));
    let joe = lead(&ports, id).await;
    let (email, _) = confirmation::email(&joe, &due, &ports.config.current().settings)
        .unwrap_or_else(|e| panic!("the confirmation email: {e}"));
    let Ok(Sent::Now(message_id)) = leadflow_app::send_once(&*ports, id, &email).await else { panic!("sent") };
    assert!(!kinds(&trail(&ports, id).await).contains(&"confirmation_sent"));

    // The redelivered message finds the email sent, and writes what its link confirms.
    deliver(&ports, Stage::Route, &[message.to_string()]).await;
    assert_eq!(to(&ports, "joe@gmail.com").len(), 1, "no second email");
    let entries: Vec<Activity> =
        trail(&ports, id).await.into_iter().filter(|a| a.kind.name() == "confirmation_sent").collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let ActivityKind::ConfirmationSent { message_id: recorded, .. } = &entries[0].kind else { panic!("{entries:?}") };
    assert_eq!(recorded, &message_id, "the message id of the send that happened");
}

#[tokio::test]
async fn a_carried_confirmation_is_checked_again_when_route_takes_it() {
    // Held up past the link's validity: a link dead on arrival is not sent.
    let ports = ports();
    let (_, message) = joes_route_message(&ports).await;
    ports.clock.set(monday() + Duration::days(31));
    deliver(&ports, Stage::Route, &[message.to_string()]).await;
    assert!(to(&ports, "joe@gmail.com").is_empty(), "an expired request gets no email");

    // The address suppressed meanwhile: nothing sent.
    let ports = self::ports();
    let (_, message) = joes_route_message(&ports).await;
    suppress_joe(&ports).await;
    deliver(&ports, Stage::Route, &[message.to_string()]).await;
    assert!(to(&ports, "joe@gmail.com").is_empty(), "a suppressed address gets no email");

    // Consent confirmed meanwhile (the lead as stored says so): nothing sent.
    let ports = self::ports();
    let (id, message) = joes_route_message(&ports).await;
    let mut confirmed = lead(&ports, id).await;
    confirmed.consent = Some(leadflow_core::model::Consent {
        given: true,
        purpose: "marketing".into(),
        wording: None,
        at: monday(),
        source: "newsletter".into(),
    });
    let version = confirmed.version;
    let written = ports.store.update_lead(&confirmed, version, &[]).await;
    assert!(written.is_ok(), "{written:?}");
    deliver(&ports, Stage::Route, &[message.to_string()]).await;
    assert!(to(&ports, "joe@gmail.com").is_empty(), "a lead that consented gets no confirmation email");
}

#[tokio::test]
async fn a_qualified_consenting_lead_gets_its_rep_email_at_once_and_one_confirmation() {
    let ports = ports();
    let ana = json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
        "job_title": "CTO", "country": "DE", "consent": true, "consent_text": "Email me."});
    let (_, body) = post(&ports, &ana, None).await;
    let id = lead_id(&body);
    pipeline(&ports).await;
    let lead = lead(&ports, id).await;
    assert!(lead.owner.is_some(), "routed without waiting for consent");
    let sent = ports.mailer.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent.iter().filter(|e| e.key.starts_with("assignment-")).count(), 1);
    assert_eq!(to(&ports, "ana@acme.io").len(), 1);
    assert_eq!(lead.consent, None);
}

#[tokio::test]
async fn a_suppressed_address_gets_no_confirmation_and_a_form_without_double_opt_in_records_consent() {
    let ports = ports();
    suppress_joe(&ports).await;
    post(&ports, &joe(), None).await;
    pipeline(&ports).await;
    assert!(to(&ports, "joe@gmail.com").is_empty());

    let mut single = joe();
    single["email"] = json!("sue@gmail.com");
    single["form"] = json!("contact-us");
    let (_, body) = post(&ports, &single, None).await;
    pipeline(&ports).await;
    let sue = lead(&ports, lead_id(&body)).await;
    assert!(sue.consent.is_some_and(|c| c.given));
    assert!(to(&ports, "sue@gmail.com").iter().all(|e| !e.key.starts_with("confirm-")));
}

#[tokio::test]
async fn a_repeat_submission_leaves_who_the_lead_is_and_waits_on_the_trail() {
    let ports = ports();
    let ana = json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
        "job_title": "CTO", "country": "DE", "phone": "+49 30 901820"});
    let (_, first) = post(&ports, &ana, None).await;
    let id = lead_id(&first);
    pipeline(&ports).await;
    let before = lead(&ports, id).await;
    let owner = before.owner.clone().unwrap_or_else(|| panic!("assigned"));

    let stranger = json!({"email": " ANA@acme.io", "first_name": "Mallory", "last_name": "Lima",
        "company": "Evil Corp", "job_title": "Intern", "country": "US", "phone": "+1 212 555 0100",
        "message": "call me at once", "form": "pricing", "utm_source": "spam", "consent": false});
    let (status, second) = post(&ports, &stranger, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the same answer as for a new address");
    pipeline(&ports).await;

    let after = lead(&ports, lead_id(&second)).await;
    assert_eq!(after.id, id, "merged into the lead with the address");
    assert_eq!(after.contact, before.contact, "name, phone, company, country: as they were");
    assert_eq!(after.custom, before.custom);
    assert_eq!(after.consent, before.consent);
    assert_eq!(after.owner.map(|o| o.rep_id), Some(owner.rep_id), "routing untouched");
    assert_eq!(after.submissions, 2, "still a submission: it counts as behaviour");
    assert_eq!(after.attribution.last_touch.form.as_deref(), Some("pricing"));
    let trail = trail(&ports, id).await;
    let held = trail.iter().find_map(|a| match &a.kind {
        ActivityKind::ChangesHeld { changes, .. } => Some(changes.clone()),
        _ => None,
    });
    let held = held.unwrap_or_else(|| panic!("a changes_held entry: {:?}", kinds(&trail)));
    assert_eq!(held.get("first_name").map(String::as_str), Some("Mallory"));
    assert_eq!(held.get("company").map(String::as_str), Some("Evil Corp"));
    assert_eq!(held.get("phone").map(String::as_str), Some("+12125550100"));
    assert_eq!(held.get("custom.message").map(String::as_str), Some("call me at once"));
    assert!(!held.contains_key("last_name"), "unchanged fields are not listed: {held:?}");
    assert_eq!(trail.iter().filter(|a| a.kind.name() == "form_submission").count(), 2);
    assert_eq!(ports.mailer.sent().len(), 1, "still one owner and one assignment email");
}

#[tokio::test]
async fn a_reused_key_with_other_fields_is_refused_and_a_retry_is_a_duplicate() {
    let ports = ports();
    let ana = json!({"email": "ana@acme.io", "first_name": "Ana", "country": "DE"});
    let (status, a) = post(&ports, &ana, Some("form-7f3a")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The same fields, differently spaced and ordered: a retry.
    let retry = json!({"country": "DE", "first_name": "Ana", "email": "ana@acme.io"});
    let (status, b) = post(&ports, &retry, Some("form-7f3a")).await;
    assert_eq!((status, lead_id(&b)), (StatusCode::ACCEPTED, lead_id(&a)));

    // Another person's submission under the same key is refused, not dropped as a duplicate.
    let bob = json!({"email": "bob@initech.example", "first_name": "Bob"});
    for _ in 0..2 {
        let (status, body) = post(&ports, &bob, Some("form-7f3a")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "idempotency_key_reused");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("new key")), "{body}");
    }
    // The same goes for a key in the body.
    let mut in_body = ana.clone();
    in_body["submission_id"] = json!("sub-1");
    let (status, _) = post(&ports, &in_body, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut other = bob.clone();
    other["submission_id"] = json!("sub-1");
    let (status, body) = post(&ports, &other, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    pipeline(&ports).await;
    assert_eq!(ports.store.lead_count(), 1, "only Ana's submissions were taken");
    assert_eq!(lead(&ports, lead_id(&a)).await.submissions, 2, "her retry was one, her submission_id post another");
    // With a key of its own, Bob's submission is taken.
    let (status, body) = post(&ports, &bob, Some("form-8b1c")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    pipeline(&ports).await;
    assert_eq!(ports.store.lead_count(), 2);
}

/// The local stack over HTTP: the confirmation link is served there, and the console's lead page
/// tells the whole story — the held repeat submission (escaped), the confirmation sent, the
/// consent confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lead_page_shows_the_held_repeat_and_the_consent_steps() {
    use leadflow_tests::browser::wait_for_eml;
    use leadflow_tests::harness::{Stack, unescape};

    let s = Stack::start("double-opt-in-admin-token", std::time::Duration::from_secs(1)).await;
    let id = s.post_lead(&joe()).await;
    let eml = wait_for_eml(&s.running.outbox, &format!("confirm-{id}")).await;
    let message = mail_parser::MessageParser::default().parse(&eml);
    let text = message.and_then(|m| m.body_text(0).map(|t| t.into_owned())).unwrap_or_default();
    let start = text.find("/confirm/").unwrap_or_else(|| panic!("no link in {text}"));
    let path: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.')).collect();

    let mut repeat = joe();
    repeat["first_name"] = json!("<b>Mallory</b>");
    repeat["company"] = json!("Evil Corp");
    s.post_lead(&repeat).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.lead(&id).await["submissions"] != 2 {
        assert!(std::time::Instant::now() < deadline, "the repeat was not merged");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let confirmed = s.http.post(format!("{}{path}", s.base)).form(&[("confirm", "yes")]).send().await;
    let confirmed = confirmed.unwrap_or_else(|e| panic!("the confirmation POST: {e}"));
    assert_eq!(confirmed.status(), StatusCode::OK);

    let boss = s.sign_in("boss@acme.example").await;
    let (status, page) = s.page_as(&boss, &format!("/console/leads/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<b>Mallory</b>"), "escaped");
    let page = unescape(&page);
    for needle in [
        "A repeat submission was not applied, for review",
        "first_name “<b>Mallory</b>”",
        "company “Evil Corp”",
        "Confirmation sent",
        "Consent confirmed from the email",
    ] {
        assert!(page.contains(needle), "the lead page lacks {needle:?}");
    }
    let lead = s.lead(&id).await;
    assert_eq!(lead["contact"]["first_name"], "Joe", "{lead}");
    assert_eq!(lead["consent"]["given"], true);
    s.running.shutdown().await;
}
