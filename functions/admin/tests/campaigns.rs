//! Campaigns as versioned documents: apply, list, show, pause, resume, schedule, preview.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use leadflow_core::campaign::{Campaign, CampaignStatus};
use leadflow_core::ports::Documents;
use leadflow_core::ports::Ports;
use leadflow_memory::fixtures;
use serde_json::json;

const SPRING: &str = r#"
id: spring
name: Spring promo
entry:
  lifecycle: lead
send_window:
  days: [mon, tue, wed, thu, fri]
  start: "09:00"
  end: "17:00"
steps:
  - id: hello
    wait: 0s
    subject: "Hello {{ lead.first_name or 'there' }}"
    text: "Hi {{ lead.first_name }}, spring is here."
    html: "<p>Hi {{ lead.first_name }}, spring is here.</p>"
  - id: breather
    type: wait
    wait: 2d
  - id: followup
    subject: Still there?
    text: Still there?
    html: <p>Still there?</p>
"#;

async fn apply(ports: &std::sync::Arc<MemPorts>, yaml: &str) -> Answer {
    send(ports, Method::POST, "/admin/campaigns", Some((yaml.to_string(), "application/yaml")), Some(TOKEN)).await
}

#[tokio::test]
async fn applying_stores_versions_and_skips_unchanged_content() {
    let ports = ports();
    let first = apply(&ports, SPRING).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.json["version"], 1);
    assert_eq!(first.json["unchanged"], false);

    let same = apply(&ports, SPRING).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(same.json["version"], 1);
    assert_eq!(same.json["unchanged"], true);

    let changed = apply(&ports, &SPRING.replace("Still there?", "Any questions?")).await;
    assert_eq!(changed.json["version"], 2, "{}", changed.text);

    // JSON works as well; a `version` in the body is ignored.
    let doc = ports.store.document("campaign:spring", None).await.ok().flatten();
    let mut campaign: Campaign = match doc.as_ref().map(|d| serde_json::from_str(&d.body)) {
        Some(Ok(c)) => c,
        other => panic!("no readable campaign document: {other:?}"),
    };
    assert_eq!(campaign.version, 2);
    campaign.version = 77;
    let as_json = request(&ports, Method::POST, "/admin/campaigns", Some(json!(campaign)), Some(TOKEN)).await;
    assert_eq!(as_json.json["unchanged"], true, "{}", as_json.text);
    assert_eq!(as_json.json["version"], 2);

    let shown = get(&ports, "/admin/campaigns/spring").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.json["campaign"]["name"], "Spring promo");
    assert_eq!(shown.json["version"], 2);
    let versions: Vec<_> = shown.json["versions"].as_array().cloned().unwrap_or_default();
    assert_eq!(versions.iter().map(|v| v["version"].clone()).collect::<Vec<_>>(), vec![json!(2), json!(1)]);

    let list = get(&ports, "/admin/campaigns").await;
    let ids: Vec<_> = list.json["campaigns"].as_array().cloned().unwrap_or_default();
    assert!(ids.iter().any(|c| c["id"] == "spring" && c["source"] == "document" && c["version"] == 2), "{}", list.text);
    assert!(ids.iter().any(|c| c["id"] == "welcome" && c["source"] == "deployed file"), "{}", list.text);
    error_field(&get(&ports, "/admin/campaigns/nothing").await, StatusCode::NOT_FOUND, "campaign_not_found");
}

#[tokio::test]
async fn pause_resume_and_schedule_each_add_a_version() {
    let ports = ports();
    assert_eq!(apply(&ports, SPRING).await.status, StatusCode::CREATED);
    let paused = post(&ports, "/admin/campaigns/spring/pause", json!({})).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    assert_eq!(paused.json["version"], 2);
    assert_eq!(paused.json["status"], "paused");
    let again = post(&ports, "/admin/campaigns/spring/pause", json!({})).await;
    assert_eq!(again.json["unchanged"], true);
    assert_eq!(again.json["version"], 2);
    let resumed = post(&ports, "/admin/campaigns/spring/resume", json!({})).await;
    assert_eq!(resumed.json["version"], 3);
    assert_eq!(resumed.json["status"], "active");

    let scheduled = post(
        &ports,
        "/admin/campaigns/spring/schedule",
        json!({ "start": "2026-04-01T00:00:00Z", "end": "2026-06-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(scheduled.status, StatusCode::OK, "{}", scheduled.text);
    assert_eq!(scheduled.json["version"], 4);
    assert_eq!(scheduled.json["schedule"]["start"], "2026-04-01T00:00:00Z");
    let latest = get(&ports, "/admin/campaigns/spring").await;
    assert_eq!(latest.json["campaign"]["steps"].as_array().map(Vec::len), Some(3), "only the schedule changed");
    assert_eq!(latest.json["campaign"]["status"], "active");

    let backwards = post(
        &ports,
        "/admin/campaigns/spring/schedule",
        json!({ "start": "2026-06-01T00:00:00Z", "end": "2026-04-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(error_field(&backwards, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("end"));
    let unknown = post(&ports, "/admin/campaigns/spring/schedule", json!({ "begin": "2026-06-01T00:00:00Z" })).await;
    assert_eq!(error_field(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("begin"));
    let missing = post(&ports, "/admin/campaigns/nothing/pause", json!({})).await;
    error_field(&missing, StatusCode::NOT_FOUND, "campaign_not_found");
}

#[tokio::test]
async fn a_deployed_campaign_keeps_its_version_when_first_changed() {
    let ports = ports();
    let paused = post(&ports, "/admin/campaigns/welcome/pause", json!({})).await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text);
    assert_eq!(paused.json["version"], 2);
    // Version 1 is the deployed file's campaign, so leads enrolled in it finish the same one.
    let v1 = ports.store.document("campaign:welcome", Some(1)).await.ok().flatten();
    let v1: Option<Campaign> = v1.and_then(|d| serde_json::from_str(&d.body).ok());
    let file = ports.config().sources.campaigns.first().and_then(|(_, text)| Campaign::parse(text, "toml").ok());
    assert!(v1.is_some() && file.is_some());
    assert!(v1.as_ref().zip(file.as_ref()).is_some_and(|(a, b)| a.same_content(b) && a.version == b.version));
    let v2 = ports.store.document("campaign:welcome", Some(2)).await.ok().flatten();
    let v2: Option<Campaign> = v2.and_then(|d| serde_json::from_str(&d.body).ok());
    assert_eq!(v2.map(|c| c.status), Some(CampaignStatus::Paused));
}

#[tokio::test]
async fn an_invalid_campaign_is_refused_naming_the_field() {
    let ports = ports();
    for (yaml, field) in [
        (SPRING.replace("    subject: Still there?\n", ""), "steps[2].subject"),
        (SPRING.replace("wait: 2d", "wait: 2 fortnights"), "steps[1].wait"),
        (SPRING.replace("start: \"09:00\"", "start: \"18:00\""), "send_window.end"),
        (SPRING.replace("name: Spring promo", "name: Spring promo\ncolour: green"), "colour"),
        (SPRING.replace("id: spring", "id: \"spring promo\""), "id"),
        (SPRING.replace("lifecycle: lead", "lifecycle: customer"), "entry.lifecycle"),
        (SPRING.replace("{{ lead.first_name or 'there' }}", "{{ lead.first_name"), "steps[0].subject"),
    ] {
        let answer = apply(&ports, &yaml).await;
        let got = error_field(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(got.as_deref(), Some(field), "answered {}", answer.text);
    }
    let garbage = apply(&ports, "name: \"unterminated").await;
    error_field(&garbage, StatusCode::BAD_REQUEST, "malformed_body");
    let empty = apply(&ports, "").await;
    error_field(&empty, StatusCode::BAD_REQUEST, "malformed_body");
    assert_eq!(ports.store.latest_documents("campaign:").await.ok().map(|d| d.len()), Some(0));
}

#[tokio::test]
async fn a_preview_renders_a_step_for_a_lead() {
    let ports = ports();
    assert_eq!(apply(&ports, SPRING).await.status, StatusCode::CREATED);
    let lead = store_lead(&ports, fixtures::lead(1, "ada@example.com")).await;
    let uri = format!("/admin/campaigns/spring/preview?lead={}&step=hello", lead.id);
    let preview = get(&ports, &uri).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text);
    assert_eq!(preview.json["subject"], "Hello Ada");
    assert!(preview.json["text"].as_str().is_some_and(|t| t.contains("Hi Ada, spring is here.")));
    assert!(preview.json["html"].as_str().is_some_and(|t| t.contains("Unsubscribe")));
    assert!(preview.text.contains("/u/preview-no-op"), "no working unsubscribe link in a preview");
    assert_eq!(preview.json["to"]["email"], "ada@example.com");
    assert!(ports.mailer.sent().is_empty(), "a preview sends nothing");

    let wait_step = get(&ports, &format!("/admin/campaigns/spring/preview?lead={}&step=breather", lead.id)).await;
    assert_eq!(error_field(&wait_step, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("step"));
    let no_step = get(&ports, &format!("/admin/campaigns/spring/preview?lead={}&step=nope", lead.id)).await;
    assert_eq!(error_field(&no_step, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("step"));
    let no_lead = get(&ports, "/admin/campaigns/spring/preview?step=hello").await;
    assert_eq!(error_field(&no_lead, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("lead"));
    let bad_lead = get(&ports, "/admin/campaigns/spring/preview?lead=xyz&step=hello").await;
    assert_eq!(error_field(&bad_lead, StatusCode::BAD_REQUEST, "invalid_lead_id").as_deref(), Some("lead"));
    let gone = get(&ports, &format!("/admin/campaigns/spring/preview?lead={}&step=hello", fixtures::id(9))).await;
    error_field(&gone, StatusCode::NOT_FOUND, "lead_not_found");
    let old = get(&ports, &format!("/admin/campaigns/welcome/preview?lead={}&step=hello&version=1", lead.id)).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    assert_eq!(old.json["subject"], "Welcome, Ada");
}
