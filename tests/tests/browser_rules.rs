//! The rule editors in a real browser (headless Chromium over WebDriver), against the running
//! local stack: an admin edits the scoring rules, gets the error for a rule on a field leads do
//! not have at its field and line, fixes it, tries the draft on the past leads, reads what it
//! would change, and saves it as version 1; on a desktop, a routing draft tried the same way.
//! Every page at 375 × 812 and at 1280 × 900 with nothing sticking out. Screenshots go to
//! `target/screenshots/console-rules-*.png`.

use std::time::{Duration, Instant};

use leadflow_tests::browser::{Browser, DESKTOP, PHONE};
use leadflow_tests::harness::Stack;
use serde_json::{Value, json};

const TOKEN: &str = "browser-rules-token";

/// Qualified leads from Germany, Britain and the US, and two that are not.
fn leads() -> Vec<Value> {
    vec![
        json!({"email": "ana@acme.io", "first_name": "Ana", "company": "Acme", "job_title": "CTO",
               "country": "DE", "phone": "+49 30 901820"}),
        json!({"email": "bo@globex.example", "first_name": "Bo", "last_name": "Brightwater-Fenwick",
               "company": "Globex International Holdings", "job_title": "Engineer", "country": "GB"}),
        json!({"email": "cy@initech.example", "first_name": "Cy", "company": "Initech", "job_title": "Engineer",
               "country": "US"}),
        json!({"email": "di@gmail.com", "first_name": "Di"}),
        json!({"email": "ed@umbrella.example", "first_name": "Ed", "company": "Umbrella", "job_title": "Analyst",
               "country": "GB"}),
    ]
}

async fn settled(s: &Stack, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ids {
        loop {
            let lead = s.lead(id).await;
            if lead["score"]["total"].is_number()
                && (lead["lifecycle"] == "lead" || lead["owner"]["rep_id"].is_string())
            {
                break;
            }
            assert!(Instant::now() < deadline, "lead {id} did not settle: {lead}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn version(s: &Stack, kind: &str) -> Value {
    let resp = s.http.get(format!("{}/admin/rules/{kind}", s.base)).bearer_auth(TOKEN).send().await.expect("api");
    resp.json::<Value>().await.expect("json")["version"].clone()
}

async fn signed_in(s: &Stack, size: (u32, u32), next: &str) -> Browser {
    let (status, link) = s.sign_in_link(Some("boss@acme.example"), Some(next)).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{link}");
    let browser = Browser::start(size).await;
    browser.goto(link["url"].as_str().expect("a link")).await;
    browser.wait_for_text("Sign in as boss@acme.example").await;
    browser.press("Sign in").await;
    browser
}

async fn editor_text(browser: &Browser) -> String {
    let text = browser.eval("return document.getElementById('toml').value;").await;
    text.as_str().expect("the editor's text").to_string()
}

/// Sets the editor's text as typing it would.
async fn set_toml(browser: &Browser, toml: &str) {
    browser.eval(&format!("document.getElementById('toml').value = {}; return null;", json!(toml))).await;
}

async fn show(browser: &Browser, id: &str) {
    browser
        .eval(&format!("document.getElementById({}).scrollIntoView({{block: 'start'}}); return null;", json!(id)))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_fixes_a_rule_tries_it_on_past_leads_and_saves_it() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let mut ids = Vec::new();
    for lead in leads() {
        ids.push(s.post_lead(&lead).await);
    }
    settled(&s, &ids).await;

    let browser = signed_in(&s, PHONE, "/console/admin/rules").await;
    let text = browser.wait_for_text("Edit scoring rules").await;
    assert!(text.contains("MQL at 40, SQL at 80 points") && text.contains("EMEA, then Americas"), "{text}");
    browser.assert_fits("the rules", PHONE.0).await;
    browser.screenshot("console-rules-overview-phone").await;

    browser.goto(&browser.link("Edit scoring rules", &s.base).await).await;
    browser.wait_for_text("Scoring rules (TOML)").await;
    let toml = editor_text(&browser).await;

    // A rule on a field leads do not have: the error names it and its line, nothing is stored.
    let bad = toml.replacen("field = \"job_title\"", "field = \"jobtitle\"", 1);
    set_toml(&browser, &bad).await;
    browser.press("Save as version 1").await;
    let text = browser.wait_for_text("fit[3].when.field").await;
    let line = bad.lines().position(|l| l.contains("jobtitle")).expect("the line") + 1;
    assert!(text.contains(&format!("fit[3].when.field (line {line}, column ")), "{text}");
    assert!(text.contains("unknown field `jobtitle`"), "{text}");
    assert_eq!(editor_text(&browser).await, bad, "the draft is kept");
    let placed = browser
        .eval("const e = document.getElementById('toml-error'); return [e.previousElementSibling.id, document.getElementById('toml').getAttribute('aria-describedby')];")
        .await;
    assert_eq!(placed, json!(["toml", "toml-error"]), "the error sits right under the editor");
    show(&browser, "toml-error").await;
    browser.assert_fits("the editor with an error", PHONE.0).await;
    browser.screenshot("console-rules-error-phone").await;
    assert_eq!(version(&s, "scoring").await, Value::Null, "nothing was stored");

    // Fixed, and a company made worth 25 points: tried on the past leads.
    let draft = toml.replacen(
        "description = \"Named a company\"\npoints = 5",
        "description = \"Named a company\"\npoints = 25",
        1,
    );
    assert_ne!(draft, toml);
    set_toml(&browser, &draft).await;
    browser.press("Try on the last 1,000 leads").await;
    let text = browser.wait_for_text("What this draft would do to all 5 leads").await;
    assert!(text.contains("3 of 5 leads change grade: 3 B → A."), "{text}");
    assert!(text.contains("1 of 5 leads change lifecycle stage: 1 MQL → SQL."), "{text}");
    assert!(text.contains("+25 Named a company (company is given)"), "{text}");
    assert!(text.contains("Nothing was saved."), "{text}");
    assert_eq!(editor_text(&browser).await, draft, "the draft is kept");
    show(&browser, "what-if").await;
    browser.assert_fits("the draft's effect", PHONE.0).await;
    browser.screenshot("console-rules-what-if-phone").await;
    assert_eq!(version(&s, "scoring").await, Value::Null, "trying stores nothing");

    browser.press("Save as version 1").await;
    browser.wait_for_text("Saved as version 1.").await;
    assert_eq!(version(&s, "scoring").await, json!(1));
    assert!(editor_text(&browser).await.contains("points = 25\n"));
    browser.assert_fits("the saved rules", PHONE.0).await;
    browser.screenshot("console-rules-saved-phone").await;
    browser.close().await;

    // On a desktop: the routing editor, Britain moved to the Americas team, tried.
    let desktop = signed_in(&s, DESKTOP, "/console/admin/rules").await;
    desktop.wait_for_text("Version 1, saved").await;
    desktop.assert_fits("the rules", DESKTOP.0).await;
    desktop.screenshot("console-rules-overview-desktop").await;
    desktop.goto(&format!("{}/console/admin/rules/routing", s.base)).await;
    desktop.wait_for_text("Routing rules (TOML)").await;
    let routing = editor_text(&desktop).await;
    let moved = routing
        .replace(r#"in = ["DE", "AT", "CH", "FR", "GB"]"#, r#"in = ["DE", "AT", "CH", "FR"]"#)
        .replace(r#"in = ["US", "CA"]"#, r#"in = ["US", "CA", "GB"]"#);
    assert_ne!(moved, routing);
    set_toml(&desktop, &moved).await;
    desktop.press("Try on the last 1,000 leads").await;
    let text = desktop.wait_for_text("What this draft would do").await;
    assert!(text.contains("2 of 5 leads change team: 2 EMEA → Americas."), "{text}");
    assert!(text.contains("→ Carla Diaz"), "{text}");
    show(&desktop, "what-if").await;
    desktop.assert_fits("the routing draft's effect", DESKTOP.0).await;
    desktop.screenshot("console-rules-routing-what-if-desktop").await;
    assert_eq!(version(&s, "routing").await, Value::Null, "trying stores nothing");
    desktop.goto(&format!("{}/console/admin/rules/scoring", s.base)).await;
    desktop.wait_for_text("Scoring rules (TOML)").await;
    desktop.assert_fits("the scoring editor", DESKTOP.0).await;
    desktop.screenshot("console-rules-editor-desktop").await;
    desktop.close().await;
    s.running.shutdown().await;
}
