//! The assignment email as a rep reads it on a phone, and its one-click actions: the links are
//! taken from the email the pipeline really sent. Opening a link changes nothing; the button
//! acts once; a forged, expired or re-routed link is refused with a page that says why.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_core::model::{ActivityKind, LeadId, SalesStatus};
use leadflow_core::ports::OutgoingEmail;
use leadflow_core::ports::{Leads, Trails};
use leadflow_tests::harness::{MemPorts, capture, memory_ports, pipeline};
use serde_json::{Value, json};
use tower::ServiceExt;

fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn ports() -> Arc<MemPorts> {
    memory_ports(monday())
}

struct Page {
    status: StatusCode,
    html: String,
}

async fn open(ports: &Arc<MemPorts>, method: &str, path: &str, form: Option<&str>) -> Page {
    let mut req = Request::builder().method(method).uri(path);
    if form.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req.body(Body::from(form.unwrap_or_default().to_string())).unwrap_or_default();
    let resp = leadflow_admin::console::router(Arc::clone(ports), leadflow_admin::console::SignIn::NotSetUp)
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {});
    let status = resp.status();
    assert_eq!(resp.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    assert_eq!(resp.headers().get("referrer-policy").and_then(|v| v.to_str().ok()), Some("same-origin"));
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    Page { status, html: String::from_utf8_lossy(&bytes).into_owned() }
}

/// The path of the link the email's text part gives after `label`.
fn link_after(email: &OutgoingEmail, label: &str) -> String {
    let line =
        email.text.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} in\n{}", email.text));
    let url = line[label.len()..].trim();
    let path = url.split_once("/console/").map(|(_, p)| format!("/console/{p}")).unwrap_or_default();
    assert!(path.starts_with("/console/act/"), "{url}");
    path
}

fn assignment_to(ports: &MemPorts, lead: LeadId) -> OutgoingEmail {
    let sent = ports.mailer.sent();
    let email = sent.iter().rev().find(|e| e.key.starts_with(&format!("assignment-{lead}")));
    email.cloned().unwrap_or_else(|| panic!("no assignment email for {lead}: {sent:?}"))
}

async fn status_changes(ports: &MemPorts, lead: LeadId) -> Vec<ActivityKind> {
    let trail = ports.store.activities(lead).await.unwrap_or_default();
    trail.into_iter().map(|a| a.kind).filter(|k| matches!(k, ActivityKind::StatusChanged { .. })).collect()
}

fn ana() -> Value {
    json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
           "job_title": "CTO", "country": "DE", "phone": "+49 89 1234567"})
}

#[tokio::test]
async fn the_assignment_email_reads_well_on_a_phone() {
    let ports = ports();
    let id = capture(&ports, ana()).await;
    pipeline(&ports).await;
    let email = assignment_to(&ports, id);
    let html = &email.html;
    assert!(html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#), "{html}");
    assert!(html.contains(r#"href="tel:+49891234567""#) && html.contains("+49 89 1234567"), "{html}");
    assert!(html.contains(r#"href="mailto:ana@acme.io""#), "{html}");
    assert!(html.contains("I&#x27;ve contacted them") || html.contains("I've contacted them"), "{html}");
    assert!(html.contains("Not a fit"), "{html}");
    // The deadline in words in the rep's zone (the test reps are in Berlin: 10:00 UTC + 4 h is
    // 15:00 CET), never an RFC 3339 instant.
    for part in [html, &email.text] {
        assert!(part.contains("Monday 2 March 2026, 15:00 CET"), "{part}");
        assert!(!part.contains("2026-03-02T"), "{part}");
    }
    assert!(email.text.contains("Phone:     +49 89 1234567"), "{}", email.text);
}

#[tokio::test]
async fn i_have_contacted_them_shows_first_acts_once_and_stops_the_sla_clock() {
    let ports = ports();
    let id = capture(&ports, ana()).await;
    pipeline(&ports).await;
    let email = assignment_to(&ports, id);
    let contacted = link_after(&email, "I've contacted them:");
    let owner = ports.store.get_lead(id).await.ok().flatten().and_then(|l| l.owner).map(|o| o.rep_id);

    // A mail scanner or a curious click: a page, and nothing changes.
    let shown = open(&ports, "GET", &contacted, None).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    assert!(shown.html.contains("Ana Lima") && shown.html.contains("Mark this lead as contacted?"), "{}", shown.html);
    assert!(shown.html.contains(r#"<form method="post">"#));
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead"));
    assert_eq!(lead.status, SalesStatus::New, "GET changed nothing");

    let done = open(&ports, "POST", &contacted, Some("")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    assert!(done.html.contains("Ana Lima is marked contacted"), "{}", done.html);
    let again = open(&ports, "POST", &contacted, None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.html.contains("Already done"), "{}", again.html);
    let changes = status_changes(&ports, id).await;
    assert_eq!(
        changes,
        vec![ActivityKind::StatusChanged { from: SalesStatus::New, to: SalesStatus::Contacted, by: owner, note: None }],
        "once, by the rep the email went to"
    );

    // The SLA clock stopped: a day later nothing re-routes the lead.
    ports.clock.advance(Duration::days(1));
    let report = leadflow_nurture::tick(&*ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.sla_breaches, 0);
}

#[tokio::test]
async fn forged_expired_and_stale_links_are_refused_with_a_page_that_says_why() {
    let ports = ports();
    let id = capture(&ports, ana()).await;
    pipeline(&ports).await;
    let email = assignment_to(&ports, id);
    let contacted = link_after(&email, "I've contacted them:");
    let not_a_fit = link_after(&email, "Not a fit:");

    // Altered: another action under the same signature, or a changed signature.
    let swapped = contacted.replace(".contacted.", ".not-a-fit.");
    let mut tampered = contacted.clone();
    let last = tampered.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    tampered.push(last);
    for (what, path) in [("swapped", swapped.as_str()), ("tampered", tampered.as_str()), ("junk", "/console/act/x.y")] {
        for method in ["GET", "POST"] {
            let refused = open(&ports, method, path, None).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{what} {method}");
            assert!(refused.html.contains("This link is not valid"), "{what}: {}", refused.html);
        }
    }
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead"));
    assert_eq!(lead.status, SalesStatus::New, "nothing refused changed the lead");

    // Eight days on, the links have expired.
    ports.clock.advance(Duration::days(8));
    for method in ["GET", "POST"] {
        let expired = open(&ports, method, &not_a_fit, None).await;
        assert_eq!(expired.status, StatusCode::GONE, "{method}");
        assert!(expired.html.contains("This link has expired"), "{}", expired.html);
    }
    assert!(status_changes(&ports, id).await.is_empty());
}

#[tokio::test]
async fn not_a_fit_keeps_the_reps_note_and_a_link_to_a_lead_moved_on_is_refused() {
    let ports = ports();
    let id = capture(
        &ports,
        json!({"email": "max@initech.example", "first_name": "<script>alert(1)</script>",
                                   "job_title": "VP Sales", "company": "Initech & Co", "country": "DE"}),
    )
    .await;
    pipeline(&ports).await;
    let email = assignment_to(&ports, id);
    let not_a_fit = link_after(&email, "Not a fit:");

    let shown = open(&ports, "GET", &not_a_fit, None).await;
    assert!(!shown.html.contains("<script>alert(1)</script>"), "lead data is escaped: {}", shown.html);
    assert!(shown.html.contains("&lt;script&gt;") && shown.html.contains("Initech &amp; Co"), "{}", shown.html);
    assert!(shown.html.contains(r#"<textarea id="note" name="note""#), "{}", shown.html);

    // Too long a note: the message next to the field, and nothing saved.
    let long = format!("note={}", "a".repeat(2_001));
    let refused = open(&ports, "POST", &not_a_fit, Some(&long)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains(r#"<p class="error" id="note-error">A note may be at most 2000 characters.</p>"#));
    assert!(status_changes(&ports, id).await.is_empty());

    let done = open(&ports, "POST", &not_a_fit, Some("note=Student+project%2C+no+budget")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.html);
    let lead = ports.store.get_lead(id).await.ok().flatten().unwrap_or_else(|| panic!("lead"));
    assert_eq!(lead.status, SalesStatus::Lost);
    let notes: Vec<Option<String>> = status_changes(&ports, id)
        .await
        .into_iter()
        .map(|k| match k {
            ActivityKind::StatusChanged { note, .. } => note,
            _ => None,
        })
        .collect();
    assert_eq!(notes, vec![Some("Student project, no budget".to_string())]);

    // Another lead, re-routed after its SLA ran out: the first rep's link no longer acts.
    let other = capture(&ports, ana()).await;
    pipeline(&ports).await;
    let first_link = link_after(&assignment_to(&ports, other), "I've contacted them:");
    ports.clock.advance(Duration::days(1));
    leadflow_nurture::tick(&*ports, 500).await.unwrap_or_else(|e| panic!("{e}"));
    pipeline(&ports).await;
    let moved = open(&ports, "POST", &first_link, None).await;
    assert_eq!(moved.status, StatusCode::CONFLICT, "{}", moved.html);
    assert!(moved.html.contains("This lead is no longer yours"));
    assert!(status_changes(&ports, other).await.is_empty());
}
