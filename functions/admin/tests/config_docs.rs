//! Reps, teams and rules as versioned documents; the funnel report.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use leadflow_core::model::{EnrollmentState, Lifecycle, SalesStatus, Validity};
use leadflow_core::ports::Ports;
use leadflow_core::ports::{Documents, Enrollments};
use leadflow_core::routing::RoutingConfig;
use leadflow_memory::fixtures::{self, enrollment};
use serde_json::{Value, json};

#[tokio::test]
async fn a_rep_set_is_then_shown_and_versions_count_up() {
    let ports = ports();
    let before = get(&ports, "/admin/reps").await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert!(before.json["version"].is_null(), "the deployed file is in force: {}", before.text);
    assert!(before.json["reps"].as_array().is_some_and(|r| r.iter().any(|x| x["id"] == "anna")));

    let created = put(
        &ports,
        "/admin/reps/zoe",
        json!({
            "name": "Zoe Martin", "email": "zoe@acme.example", "time_zone": "Europe/Paris",
            "working_hours": { "days": ["mon", "tue"], "start": "09:00", "end": "17:30" },
            "capacity": 25
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.json["version"], 1);
    assert_eq!(created.json["unchanged"], false);

    let shown = get(&ports, "/admin/reps/zoe").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.json["rep"]["name"], "Zoe Martin");
    assert_eq!(shown.json["rep"]["time_zone"], "Europe/Paris");
    assert_eq!(shown.json["rep"]["capacity"], 25);
    assert_eq!(shown.json["rep"]["active"], true);
    assert_eq!(shown.json["rep"]["open_leads"], 0);
    assert_eq!(shown.json["version"], 1);

    // Only the fields given change.
    let updated = put(&ports, "/admin/reps/zoe", json!({ "capacity": 40, "active": false })).await;
    assert_eq!(updated.json["version"], 2, "{}", updated.text);
    let shown = get(&ports, "/admin/reps/zoe").await;
    assert_eq!(shown.json["rep"]["name"], "Zoe Martin");
    assert_eq!(shown.json["rep"]["capacity"], 40);
    assert_eq!(shown.json["rep"]["active"], false);
    // The same again adds no version.
    let same = put(&ports, "/admin/reps/zoe", json!({ "capacity": 40 })).await;
    assert_eq!(same.json["version"], 2, "{}", same.text);
    assert_eq!(same.json["unchanged"], true);
    // `null` clears an optional field.
    let cleared = put(&ports, "/admin/reps/zoe", json!({ "working_hours": null })).await;
    assert_eq!(cleared.json["version"], 3, "{}", cleared.text);
    assert!(cleared.json["rep"]["working_hours"].is_null());

    // The stored document is the whole routing, with the deployed reps and teams kept.
    let doc = ports.store.document("routing", None).await.ok().flatten();
    let routing: Option<RoutingConfig> = doc.as_ref().and_then(|d| serde_json::from_str(&d.body).ok());
    let routing = routing.unwrap_or_else(|| panic!("no routing document: {doc:?}"));
    assert!(routing.compile().is_ok());
    assert!(routing.reps.iter().any(|r| r.id == "anna") && routing.reps.iter().any(|r| r.id == "zoe"));
    assert!(routing.teams.iter().any(|t| t.id == "emea"));
    let all = get(&ports, "/admin/reps").await;
    assert_eq!(all.json["version"], 3);
    assert!(all.json["reps"].as_array().is_some_and(|r| r.iter().any(|x| x["id"] == "zoe")));
}

#[tokio::test]
async fn an_invalid_rep_is_refused_naming_the_field() {
    let ports = ports();
    let rep = |extra: Value| {
        let mut body = json!({ "name": "Zoe Martin", "email": "zoe@acme.example", "time_zone": "Europe/Paris" });
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        body
    };
    for (body, field) in [
        (rep(json!({ "time_zone": "Mars/Olympus_Mons" })), "time_zone"),
        (rep(json!({ "email": "not an address" })), "email"),
        (rep(json!({ "name": "  " })), "name"),
        (rep(json!({ "capacity": -3 })), "capacity"),
        (rep(json!({ "capacity": "lots" })), "capacity"),
        (rep(json!({ "working_hours": { "days": ["mon"], "start": "25:00", "end": "17:00" } })), "working_hours.start"),
        (
            rep(json!({ "working_hours": { "days": ["someday"], "start": "09:00", "end": "17:00" } })),
            "working_hours.days[0]",
        ),
        (rep(json!({ "working_hours": { "days": [], "start": "09:00", "end": "17:00" } })), "working_hours.days"),
        (rep(json!({ "nickname": "Z" })), "nickname"),
        (json!({ "name": "Zoe Martin", "time_zone": "UTC" }), "email"),
    ] {
        let answer = put(&ports, "/admin/reps/zoe", body.clone()).await;
        let got = error_field(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(got.as_deref(), Some(field), "{body} answered {}", answer.text);
    }
    let time_zone = put(&ports, "/admin/reps/zoe", rep(json!({ "time_zone": "Mars/Olympus_Mons" }))).await;
    assert!(time_zone.json["error"]["message"].as_str().is_some_and(|m| m.contains("time zone")));
    let bad_id = put(&ports, "/admin/reps/zoe%20martin", rep(json!({}))).await;
    assert_eq!(error_field(&bad_id, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("id"));
    assert_eq!(ports.store.document("routing", None).await.ok(), Some(None), "nothing was stored");
    let missing = get(&ports, "/admin/reps/zoe").await;
    error_field(&missing, StatusCode::NOT_FOUND, "rep_not_found");
}

#[tokio::test]
async fn out_of_office_is_set_and_cleared() {
    let ports = ports();
    let set = post(
        &ports,
        "/admin/reps/anna/ooo",
        json!({ "from": "2026-03-09T00:00:00Z", "until": "2026-03-16T00:00:00Z" }),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json["rep"]["out_of_office"]["from"], "2026-03-09T00:00:00Z");
    let backwards = post(
        &ports,
        "/admin/reps/anna/ooo",
        json!({ "from": "2026-03-16T00:00:00Z", "until": "2026-03-09T00:00:00Z" }),
    )
    .await;
    assert_eq!(error_field(&backwards, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("until"));
    let garbled =
        post(&ports, "/admin/reps/anna/ooo", json!({ "from": "next monday", "until": "2026-03-09T00:00:00Z" })).await;
    assert_eq!(error_field(&garbled, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("from"));
    let nobody = post(
        &ports,
        "/admin/reps/nobody/ooo",
        json!({ "from": "2026-03-09T00:00:00Z", "until": "2026-03-16T00:00:00Z" }),
    )
    .await;
    error_field(&nobody, StatusCode::NOT_FOUND, "rep_not_found");

    let cleared = request(&ports, Method::DELETE, "/admin/reps/anna/ooo", None, Some(TOKEN)).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert!(cleared.json["rep"]["out_of_office"].is_null());
    assert_eq!(cleared.json["version"], 2);
}

#[tokio::test]
async fn teams_and_rules_are_validated_whole() {
    let ports = ports();
    let team = put(
        &ports,
        "/admin/teams/apac",
        json!({ "name": "APAC", "when": [{ "field": "country", "in": ["JP", "AU"] }], "members": [{ "rep": "sam", "weight": 2 }] }),
    )
    .await;
    assert_eq!(team.status, StatusCode::OK, "{}", team.text);
    let shown = get(&ports, "/admin/teams/apac").await;
    assert_eq!(shown.json["team"]["members"][0]["weight"], 2);

    let unknown_rep = put(&ports, "/admin/teams/apac", json!({ "members": [{ "rep": "ghost" }] })).await;
    assert_eq!(
        error_field(&unknown_rep, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(),
        Some("members[0].rep")
    );
    let bad_field =
        put(&ports, "/admin/teams/apac", json!({ "when": [{ "field": "shoe_size", "equals": "9" }] })).await;
    assert_eq!(error_field(&bad_field, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("when[0]"));

    // Whole rule sets: what is in force, then a replacement.
    let routing = get(&ports, "/admin/rules/routing").await;
    assert_eq!(routing.json["version"], 1);
    let mut doc = routing.json["routing"].clone();
    doc["fallback_owner"] = json!("ghost");
    let refused = put(&ports, "/admin/rules/routing", doc.clone()).await;
    assert_eq!(
        error_field(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(),
        Some("fallback_owner")
    );
    doc["fallback_owner"] = json!("anna");
    let accepted = put(&ports, "/admin/rules/routing", doc).await;
    assert_eq!(accepted.json["version"], 2, "{}", accepted.text);

    let scoring = get(&ports, "/admin/rules/scoring").await;
    assert_eq!(scoring.status, StatusCode::OK, "{}", scoring.text);
    assert_eq!(scoring.json["source"], "deployed file");
    let mut rules = scoring.json["scoring"].clone();
    rules["thresholds"] = json!({ "mql": 80, "sql": 40 });
    let refused = put(&ports, "/admin/rules/scoring", rules.clone()).await;
    assert_eq!(error_field(&refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("thresholds"));
    rules["thresholds"] = json!({ "mql": 40, "sql": 80 });
    let saved = put(&ports, "/admin/rules/scoring", rules).await;
    assert_eq!(saved.json["version"], 1, "{}", saved.text);
    let now = get(&ports, "/admin/rules/scoring").await;
    assert_eq!(now.json["source"], "document");
    assert_eq!(now.json["scoring"]["thresholds"]["mql"], 40.0);
    let nonsense = request(&ports, Method::PUT, "/admin/rules/scoring", Some(json!([1, 2])), Some(TOKEN)).await;
    error_field(&nonsense, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // The deployed files' TOML is accepted as it is.
    let toml = ports.config().sources.routing.clone();
    let as_toml =
        send(&ports, Method::PUT, "/admin/rules/routing", Some((toml, "application/toml")), Some(TOKEN)).await;
    assert_eq!(as_toml.status, StatusCode::OK, "{}", as_toml.text);
    assert_eq!(as_toml.json["version"], 3);
    assert_eq!(as_toml.json["routing"]["fallback_owner"], "sam");
    let broken =
        send(&ports, Method::PUT, "/admin/rules/routing", Some(("reps = [".into(), "application/toml")), Some(TOKEN))
            .await;
    error_field(&broken, StatusCode::BAD_REQUEST, "malformed_body");
}

#[tokio::test]
async fn the_funnel_counts_by_source_and_by_campaign() {
    let ports = ports();
    let mut n = 0;
    let mut add = |source: Option<&str>, valid: bool, mql: bool, owner: bool, status: SalesStatus| {
        n += 1;
        let mut lead = fixtures::lead(n, &format!("p{n}@example.com"));
        lead.attribution.first_touch.utm.source = source.map(str::to_string);
        if !valid {
            lead.validity = Validity::Invalid { reasons: Vec::new() };
        }
        if mql {
            lead.lifecycle = Lifecycle::Mql;
        }
        if owner {
            lead = fixtures::owned_by(lead, "anna");
        }
        lead.status = status;
        lead
    };
    let sql = |mut lead: leadflow_core::model::Lead| {
        lead.lifecycle = Lifecycle::Sql;
        lead
    };
    let leads = vec![
        add(Some("google"), true, true, true, SalesStatus::Won),
        add(Some("google"), true, true, true, SalesStatus::Contacted),
        add(Some("google"), true, false, false, SalesStatus::New),
        add(Some("google"), false, false, false, SalesStatus::New),
        add(Some("linkedin"), true, true, false, SalesStatus::New),
        add(None, true, true, true, SalesStatus::Lost),
        // Assigned and scored as SQL, not yet worked: SQL, not contacted.
        sql(add(Some("linkedin"), true, true, true, SalesStatus::New)),
        // Assigned as an MQL, not yet worked: neither SQL nor contacted.
        add(Some("linkedin"), true, true, true, SalesStatus::New),
    ];
    for lead in leads {
        store_lead(&ports, lead).await;
    }
    // "webinar" was applied through the API (a document); "welcome" is a deployed file.
    let webinar = leadflow_core::model::Document {
        name: "campaign:webinar".into(),
        version: 1,
        body: "{}".into(),
        saved_at: fixtures::t(0),
    };
    assert!(ports.store.put_document(&webinar).await.is_ok());
    for (lead, campaign) in [(3, "welcome"), (5, "welcome"), (5, "webinar")] {
        let e = enrollment(lead, campaign, None, EnrollmentState::Completed);
        assert_eq!(ports.store.enroll(&e, &[]).await.ok(), Some(true));
    }
    // Erased leads still count, anonymously.
    assert_eq!(delete(&ports, &format!("/admin/leads/{}", fixtures::id(2))).await.status, StatusCode::OK);

    let report = get(&ports, "/admin/reports/funnel?by=source").await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert_eq!(
        report.json["overall"],
        json!({ "captured": 8, "valid": 7, "mql": 6, "assigned": 5, "sql": 4, "contacted": 3, "won": 1 })
    );
    let group = |key: &str| {
        report.json["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|x| x["key"] == key))
            .map(|x| x["funnel"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        group("google"),
        json!({ "captured": 4, "valid": 3, "mql": 2, "assigned": 2, "sql": 2, "contacted": 2, "won": 1 })
    );
    assert_eq!(
        group("linkedin"),
        json!({ "captured": 3, "valid": 3, "mql": 3, "assigned": 2, "sql": 1, "contacted": 0, "won": 0 })
    );
    assert_eq!(
        group("(none)"),
        json!({ "captured": 1, "valid": 1, "mql": 1, "assigned": 1, "sql": 1, "contacted": 1, "won": 0 })
    );

    let by_campaign = get(&ports, "/admin/reports/funnel?by=campaign").await;
    assert_eq!(by_campaign.status, StatusCode::OK, "{}", by_campaign.text);
    let groups = by_campaign.json["groups"].as_array().cloned().unwrap_or_default();
    let captured = |key: &str| groups.iter().find(|g| g["key"] == key).map(|g| g["funnel"]["captured"].clone());
    assert_eq!(captured("welcome"), Some(json!(2)));
    assert_eq!(captured("webinar"), Some(json!(1)));
    assert_eq!(captured("(none)"), Some(json!(6)));

    let bad = get(&ports, "/admin/reports/funnel?by=colour").await;
    assert_eq!(error_field(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field").as_deref(), Some("by"));
    let later = get(&ports, "/admin/reports/funnel?since=2030-01-01T00:00:00Z").await;
    assert_eq!(later.json["overall"]["captured"], 0);
}
