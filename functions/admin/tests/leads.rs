//! Leads through the admin API: status, search, export, erasure, and authorization.

mod common;

use axum::http::{Method, StatusCode};
use chrono::Duration;
use common::*;
use leadflow_app::activity;
use leadflow_core::model::{ActivityKind, EnrollmentState, SalesStatus, SuppressionReason};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Documents, Enrollments, Leads, Suppressions, Trails};
use leadflow_core::ports::{EmailCategory, Mailbox, Mailer, OutgoingEmail};
use leadflow_memory::fixtures::{self, enrollment};
use serde_json::{Value, json};

#[tokio::test]
async fn every_route_refuses_a_caller_without_the_token() {
    let ports = ports();
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    let id = lead.id;
    let routes = [
        (Method::GET, "/admin/leads".to_string()),
        (Method::GET, format!("/admin/leads/{id}")),
        (Method::GET, "/admin/leads/export".to_string()),
        (Method::POST, format!("/admin/leads/{id}/status")),
        (Method::DELETE, format!("/admin/leads/{id}")),
        (Method::GET, "/admin/reports/funnel".to_string()),
        (Method::GET, "/admin/reps".to_string()),
        (Method::PUT, "/admin/reps/zoe".to_string()),
        (Method::POST, "/admin/reps/anna/ooo".to_string()),
        (Method::GET, "/admin/teams/emea".to_string()),
        (Method::PUT, "/admin/rules/routing".to_string()),
        (Method::GET, "/admin/rules/scoring".to_string()),
        (Method::GET, "/admin/campaigns".to_string()),
        (Method::POST, "/admin/campaigns".to_string()),
        (Method::GET, "/admin/campaigns/welcome".to_string()),
        (Method::POST, "/admin/campaigns/welcome/pause".to_string()),
        (Method::POST, "/admin/campaigns/welcome/resume".to_string()),
        (Method::POST, "/admin/campaigns/welcome/schedule".to_string()),
        (Method::GET, format!("/admin/campaigns/welcome/preview?lead={id}&step=hello")),
    ];
    for (method, uri) in routes {
        for token in [None, Some("wrong-token"), Some("test-token-but-longer")] {
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({"status": "won"}));
            let answer = request(&ports, method.clone(), &uri, body, token).await;
            error_field(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    // Nothing happened to the lead.
    assert_eq!(stored(&ports, &lead).await.status, SalesStatus::New);
    assert_eq!(ports.store.lead_count(), 1);
    assert_eq!(ports.store.latest_documents("").await.ok().map(|d| d.len()), Some(0), "nothing was stored");
}

#[tokio::test]
async fn marking_won_stops_every_enrollment_and_is_recorded() {
    let ports = ports();
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    for campaign in ["welcome", "webinar"] {
        let e = enrollment(1, campaign, Some(monday() + Duration::days(1)), EnrollmentState::Active);
        assert_eq!(ports.store.enroll(&e, &[]).await.ok(), Some(true));
    }

    let answer =
        post(&ports, &format!("/admin/leads/{}/status", lead.id), json!({"status": "won", "by": "anna"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["status"], "won");
    assert_eq!(answer.json["from"], "new");
    assert_eq!(answer.json["changed"], true);
    assert_eq!(answer.json["enrollments_stopped"], 2);

    assert_eq!(stored(&ports, &lead).await.status, SalesStatus::Won);
    let enrollments = ports.store.enrollments(lead.id).await.unwrap_or_default();
    assert_eq!(enrollments.len(), 2);
    assert!(enrollments.iter().all(|e| matches!(e.state, EnrollmentState::Stopped { .. }) && e.next_due_at.is_none()));
    let changes: Vec<_> = activity_kinds(&ports, &lead)
        .await
        .into_iter()
        .filter(|k| matches!(k, ActivityKind::StatusChanged { .. }))
        .collect();
    assert_eq!(
        changes,
        vec![ActivityKind::StatusChanged {
            from: SalesStatus::New,
            to: SalesStatus::Won,
            by: Some("anna".into()),
            note: None
        }]
    );

    // Marking it again is harmless: nothing changes, nothing is recorded twice.
    let again = post(&ports, &format!("/admin/leads/{}/status", lead.id), json!({"status": "won"})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["changed"], false);
    assert_eq!(again.json["enrollments_stopped"], 0);
    let trail = activity_kinds(&ports, &lead).await;
    assert_eq!(trail.iter().filter(|k| matches!(k, ActivityKind::StatusChanged { .. })).count(), 1);
    // The lead page shows it.
    let shown = get(&ports, &format!("/admin/leads/{}", lead.id)).await;
    assert_eq!(shown.json["status"], "won");
    assert!(shown.json["activities"].as_array().is_some_and(|a| a.iter().any(|x| x["kind"] == "status_changed")));
}

#[tokio::test]
async fn a_won_lead_does_not_go_back_to_new() {
    let ports = ports();
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    let uri = format!("/admin/leads/{}/status", lead.id);
    assert_eq!(post(&ports, &uri, json!({"status": "won"})).await.status, StatusCode::OK);

    let refused = post(&ports, &uri, json!({"status": "new"})).await;
    assert_eq!(error_field(&refused, StatusCode::CONFLICT, "status_refused").as_deref(), Some("status"));
    assert!(refused.json["error"]["message"].as_str().is_some_and(|m| m.contains("won") && m.contains("new")));
    let back = post(&ports, &uri, json!({"status": "contacted"})).await;
    error_field(&back, StatusCode::CONFLICT, "status_refused");
    assert_eq!(stored(&ports, &lead).await.status, SalesStatus::Won);

    // Won and lost may be corrected into each other.
    let lost = post(&ports, &uri, json!({"status": "lost", "by": "Sam Rivera"})).await;
    assert_eq!(lost.status, StatusCode::OK, "{}", lost.text);
    assert_eq!(stored(&ports, &lead).await.status, SalesStatus::Lost);
}

#[tokio::test]
async fn bad_status_requests_name_their_field() {
    let ports = ports();
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    let uri = format!("/admin/leads/{}/status", lead.id);
    let bad = post(&ports, &uri, json!({"status": "maybe"})).await;
    assert_eq!(error_field(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("status"));
    let missing = post(&ports, &uri, json!({"by": "anna"})).await;
    assert_eq!(error_field(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("status"));
    let long_by = post(&ports, &uri, json!({"status": "won", "by": "x".repeat(500)})).await;
    assert_eq!(error_field(&long_by, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("by"));
    let wrong_type = post(&ports, &uri, json!({"status": 3})).await;
    assert_eq!(error_field(&wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("status"));
    let not_json = request(&ports, Method::POST, &uri, None, Some(TOKEN)).await;
    error_field(&not_json, StatusCode::BAD_REQUEST, "malformed_body");
    let bad_id = post(&ports, "/admin/leads/not-a-ulid/status", json!({"status": "won"})).await;
    error_field(&bad_id, StatusCode::BAD_REQUEST, "invalid_lead_id");
    let unknown = post(&ports, &format!("/admin/leads/{}/status", fixtures::id(99)), json!({"status": "won"})).await;
    error_field(&unknown, StatusCode::NOT_FOUND, "lead_not_found");
    assert_eq!(stored(&ports, &lead).await.status, SalesStatus::New);
}

#[tokio::test]
async fn search_filters_and_pages_with_a_cursor() {
    let ports = ports();
    for n in 1..=7 {
        let mut lead = fixtures::lead(n, &format!("person{n}@example.com"));
        if n % 2 == 0 {
            lead.status = SalesStatus::Won;
        }
        if n == 3 {
            lead.contact.company = Some("Zebra Logistics".into());
            lead.attribution.first_touch.utm.source = Some("LinkedIn".into());
        }
        store_lead(&ports, lead).await;
    }
    let won = get(&ports, "/admin/leads?status=won").await;
    assert_eq!(won.status, StatusCode::OK, "{}", won.text);
    assert_eq!(won.json["leads"].as_array().map(Vec::len), Some(3));
    assert!(won.json["next"].is_null());

    let zebra = get(&ports, "/admin/leads?q=zebra").await;
    assert_eq!(zebra.json["leads"][0]["email"], "person3@example.com");
    let linkedin = get(&ports, "/admin/leads?source=linkedin").await;
    assert_eq!(linkedin.json["leads"].as_array().map(Vec::len), Some(1));
    let none = get(&ports, "/admin/leads?source=(none)&status=new").await;
    assert_eq!(none.json["leads"].as_array().map(Vec::len), Some(3));

    // Two at a time: every lead once, then no cursor.
    let mut seen = Vec::new();
    let mut uri = "/admin/leads?limit=2".to_string();
    for _ in 0..10 {
        let page = get(&ports, &uri).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let leads = page.json["leads"].as_array().cloned().unwrap_or_default();
        assert!(leads.len() <= 2);
        seen.extend(leads.iter().map(|l| l["id"].as_str().unwrap_or_default().to_string()));
        match page.json["next"].as_str() {
            Some(next) => uri = format!("/admin/leads?limit=2&cursor={next}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    let bad = get(&ports, "/admin/leads?lifecycle=customer").await;
    assert_eq!(error_field(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("lifecycle"));
    let bad_limit = get(&ports, "/admin/leads?limit=100000").await;
    assert_eq!(error_field(&bad_limit, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("limit"));
    let bad_cursor = get(&ports, "/admin/leads?cursor=garbage").await;
    assert_eq!(error_field(&bad_cursor, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("cursor"));

    // By address, as before.
    let one = get(&ports, "/admin/leads?email=Person5@EXAMPLE.com").await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["contact"]["email"], "person5@example.com");
}

#[tokio::test]
async fn the_csv_export_neutralizes_formulas_and_quotes_commas() {
    let ports = ports();
    let mut evil = fixtures::lead(1, "evil@example.com");
    evil.contact.company = Some("=cmd()".into());
    evil.contact.first_name = Some("@SUM(1+1)".into());
    store_lead(&ports, evil).await;
    let mut comma = fixtures::lead(2, "comma@example.com");
    comma.contact.company = Some("Acme, Inc.".into());
    comma.contact.job_title = Some("Head of \"Growth\"".into());
    comma.status = SalesStatus::Won;
    store_lead(&ports, comma).await;

    let csv = get(&ports, "/admin/leads/export?format=csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
    let lines: Vec<&str> = csv.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{}", csv.text);
    assert!(lines[0].starts_with("id,created_at,"), "a header row first: {}", lines[0]);
    assert!(csv.text.contains(",'=cmd(),"), "{}", csv.text);
    assert!(!csv.text.contains(",=cmd()"), "{}", csv.text);
    assert!(csv.text.contains(",'@SUM(1+1),"), "{}", csv.text);
    assert!(csv.text.contains(",\"Acme, Inc.\","), "{}", csv.text);
    assert!(csv.text.contains(",\"Head of \"\"Growth\"\"\","), "{}", csv.text);
    let header_cells = lines[0].split(',').count();
    assert_eq!(lines[1].split(',').count(), header_cells, "an unquoted row has as many cells as the header");

    // The same filters as search; JSON is an array of whole leads.
    let json_won = get(&ports, "/admin/leads/export?format=json&status=won").await;
    assert_eq!(json_won.status, StatusCode::OK, "{}", json_won.text);
    let leads = json_won.json.as_array().cloned().unwrap_or_default();
    assert_eq!(leads.len(), 1, "{}", json_won.text);
    assert_eq!(leads[0]["contact"]["company"], "Acme, Inc.");
    let empty = get(&ports, "/admin/leads/export?format=json&status=lost").await;
    assert_eq!(empty.json, json!([]));
    let bad = get(&ports, "/admin/leads/export?format=xlsx").await;
    assert_eq!(error_field(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("format"));
}

#[tokio::test]
async fn the_export_pages_through_many_leads() {
    let ports = ports();
    for n in 1..=450 {
        store_lead(&ports, fixtures::lead(n, &format!("p{n}@example.com"))).await;
    }
    let csv = get(&ports, "/admin/leads/export").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.text.split("\r\n").filter(|l| !l.is_empty()).count(), 451);
    let json = get(&ports, "/admin/leads/export?format=json").await;
    assert_eq!(json.json.as_array().map(Vec::len), Some(450));
}

#[tokio::test]
async fn erasure_removes_personal_data_and_can_be_repeated() {
    let ports = ports();
    let mut lead = fixtures::lead(1, "ada@example.com");
    lead.contact.phone = Some("+442071234567".into());
    lead.attribution.first_touch.utm.source = Some("google".into());
    lead.attribution.first_touch.page_url = Some("https://example.com/?ref=ada".into());
    lead.custom.insert("favourite_colour".into(), "teal".into());
    let lead = store_lead(&ports, lead).await;
    let id = lead.id;
    let active = enrollment(1, "welcome", Some(monday() + Duration::days(1)), EnrollmentState::Active);
    assert_eq!(ports.store.enroll(&active, &[]).await.ok(), Some(true));
    let submitted =
        activity(id, "submit".into(), monday(), ActivityKind::FormSubmission { submission_id: id, form: None });
    assert!(ports.store.record_activity(&submitted).await.is_ok());
    let email = OutgoingEmail {
        key: format!("drip-{id}-welcome-v1-0"),
        category: EmailCategory::Marketing,
        from: Mailbox { name: None, email: "hello@acme.example".into() },
        to: Mailbox { name: Some("Ada Lovelace".into()), email: "ada@example.com".into() },
        subject: "Welcome".into(),
        text: "Hi Ada".into(),
        html: "<p>Hi Ada</p>".into(),
        headers: Vec::new(),
        tags: Vec::new(),
    };
    assert!(ports.mailer.send(&email, monday()).await.is_ok());

    let erased = delete(&ports, &format!("/admin/leads/{id}")).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    assert_eq!(erased.json["erased"], true);
    assert_eq!(erased.json["already_erased"], false);
    assert_eq!(erased.json["enrollments_stopped"], 1);
    assert_eq!(erased.json["emails_deleted"], 1);

    let shown = get(&ports, &format!("/admin/leads/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.json["erased"], true);
    for personal in ["ada@example.com", "Ada", "Lovelace", "Analytical", "4420", "teal", "ref=ada", "example.com"] {
        assert!(!shown.text.contains(personal), "{personal} is still shown: {}", shown.text);
    }
    assert_eq!(shown.json["activities"], json!([]));
    assert_eq!(shown.json["attribution"]["first_touch"]["utm"]["source"], "google", "statistics stay");
    assert_eq!(shown.json["validity"]["state"], "valid");

    let key = email_key("ada@example.com");
    assert_eq!(ports.store.find_by_email_key(&key).await.ok(), Some(None));
    assert!(ports.store.activities(id).await.unwrap_or_default().is_empty());
    let suppression = ports.store.suppression(&key).await.ok().flatten();
    assert_eq!(suppression.map(|s| s.reason), Some(SuppressionReason::Erased));
    let sent = ports.mailer.sent();
    assert!(sent.iter().all(|e| !e.key.contains(&id.to_string()) && e.to.email != "ada@example.com"), "{sent:?}");
    assert!(ports.store.enrollments(id).await.unwrap_or_default().iter().all(|e| e.state != EnrollmentState::Active));
    let by_email = get(&ports, "/admin/leads?email=ada@example.com").await;
    error_field(&by_email, StatusCode::NOT_FOUND, "lead_not_found");
    let search = get(&ports, "/admin/leads?q=ada").await;
    assert_eq!(search.json["leads"], json!([]));

    let events: Vec<_> = ports.bus.events().into_iter().filter(|e| e.detail_type == "lead.erased").collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail, json!({ "lead_id": id }));

    // Again: the same answer; the event again under the same id (it might not have gone out the
    // first time), which consumers drop.
    let again = delete(&ports, &format!("/admin/leads/{id}")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["already_erased"], true);
    let erased: Vec<String> =
        ports.bus.events().into_iter().filter(|e| e.detail_type == "lead.erased").map(|e| e.id).collect();
    assert_eq!(erased, [events[0].id.clone(), events[0].id.clone()]);

    // An erased lead's status is frozen.
    let mark = post(&ports, &format!("/admin/leads/{id}/status"), json!({"status": "won"})).await;
    error_field(&mark, StatusCode::GONE, "lead_erased");
    let missing = delete(&ports, &format!("/admin/leads/{}", fixtures::id(42))).await;
    error_field(&missing, StatusCode::NOT_FOUND, "lead_not_found");
}

#[tokio::test]
async fn the_export_of_an_erased_lead_holds_no_personal_data() {
    let ports = ports();
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    assert_eq!(delete(&ports, &format!("/admin/leads/{}", lead.id)).await.status, StatusCode::OK);
    for format in ["csv", "json"] {
        let export = get(&ports, &format!("/admin/leads/export?format={format}")).await;
        assert_eq!(export.status, StatusCode::OK);
        assert!(export.text.contains(&lead.id.to_string()), "the tombstone is counted: {}", export.text);
        for personal in ["ada@", "Ada", "Lovelace", "Analytical"] {
            assert!(!export.text.contains(personal), "{personal} in the {format} export: {}", export.text);
        }
    }
    let rows: Vec<Value> = get(&ports, "/admin/leads?q=").await.json["leads"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["erased"], true);
    assert!(rows[0]["email"].is_null());
}
