//! The admin's console in a real browser (headless Chromium over WebDriver), against the running
//! local stack, at 375 × 812 and at desktop width: an admin opens Reps, edits a rep, gets the
//! error for a capacity over the bound next to its field, fixes it and saves the next routing
//! version; opens a team; erases a lead through its confirmation (a wrong address first).
//! Every page fits with nothing sticking out. Screenshots: `target/screenshots/console-admin-*`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use leadflow_tests::browser::{Browser, DESKTOP, PHONE};
use serde_json::{Value, json};

const TOKEN: &str = "browser-admin-token";

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(TOKEN).send().await.expect("admin api");
        resp.json().await.expect("json")
    }

    async fn sign_in_link(&self, next: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/dev/sign-in-link", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({ "email": "boss@acme.example", "next": next }))
            .send()
            .await
            .expect("link answers");
        let body: Value = resp.json().await.expect("json");
        body["url"].as_str().unwrap_or_else(|| panic!("no link: {body}")).to_string()
    }

    /// Posts a lead good enough for sales and waits until it is assigned.
    async fn assigned_lead(&self, email: &str) -> String {
        let lead = json!({"email": email, "first_name": "Ana", "last_name": "Lima", "company": "Initech",
                          "job_title": "CTO", "country": "DE"});
        let resp = self.http.post(format!("{}/leads", self.base)).json(&lead).send().await.expect("capture");
        let body: Value = resp.json().await.expect("json");
        let id = body["lead_id"].as_str().unwrap_or_else(|| panic!("no lead id: {body}")).to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.get(&format!("/admin/leads/{id}")).await["owner"].is_null() {
            assert!(Instant::now() < deadline, "lead {id} was not assigned in 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        id
    }
}

/// Replaces the text of the input `id` as a person types it.
async fn type_into(browser: &Browser, id: &str, text: &str) {
    let input = browser.client.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("no #{id}: {e}"));
    input.clear().await.unwrap_or_else(|e| panic!("cannot clear #{id}: {e}"));
    input.send_keys(text).await.unwrap_or_else(|e| panic!("cannot type into #{id}: {e}"));
}

/// Asserts that the error of field `id` sits in the field's own block, just under its input,
/// and that the input points at it.
async fn assert_error_at(browser: &Browser, id: &str) {
    let script = format!(
        "const i = document.getElementById('{id}'), e = document.getElementById('{id}-error');
         if (!i || !e) return null;
         const a = i.getBoundingClientRect(), b = e.getBoundingClientRect();
         return [e.parentElement === i.parentElement, i.getAttribute('aria-describedby'), b.top >= a.bottom - 1, b.top - a.bottom];"
    );
    let placed = browser.eval(&script).await;
    assert_eq!(placed[0], json!(true), "the error of #{id} is in its field's block: {placed}");
    assert_eq!(placed[1], json!(format!("{id}-error")));
    assert_eq!(placed[2], json!(true), "under the input: {placed}");
    assert!(placed[3].as_f64().unwrap_or(f64::MAX) < 80.0, "close under the input: {placed}");
}

async fn scroll_to(browser: &Browser, id: &str) {
    browser.eval(&format!("document.getElementById('{id}').scrollIntoView({{block: 'center'}}); return null;")).await;
}

async fn scenario(size: (u32, u32), label: &str) {
    let (running, _dir) = leadflow_tests::harness::local_stack(TOKEN, Duration::from_secs(1)).await;
    let api = Api { http: reqwest::Client::new(), base: format!("http://{}", running.addr) };
    let base = api.base.clone();
    let lead = api.assigned_lead(&format!("ana.{label}@initech.de")).await;
    let browser = Browser::start(size).await;
    let shot = |page: &str| format!("console-admin-{page}-{label}");

    browser.goto(&api.sign_in_link("/console/admin/reps").await).await;
    browser.wait_for_text("Sign in as boss@acme.example").await;
    browser.press("Sign in").await;
    let text = browser.wait_for_text("Add a rep").await;
    assert!(text.contains("Anna Schmidt") && text.contains("Europe/Berlin") && text.contains("EMEA (1)"), "{text}");
    browser.assert_fits("the reps page", size.0).await;
    browser.screenshot(&shot("reps")).await;

    browser.goto(&browser.link("Anna Schmidt", &base).await).await;
    browser.wait_for_text("Working hours").await;
    browser.assert_fits("the rep form", size.0).await;
    browser.screenshot(&shot("rep")).await;
    scroll_to(&browser, "days").await;
    browser.screenshot(&shot("rep-hours")).await;
    scroll_to(&browser, "weight_emea").await;
    browser.assert_fits("the rep form's teams", size.0).await;
    browser.screenshot(&shot("rep-teams")).await;

    // Over the bound: told at the field, what was typed kept, nothing stored.
    type_into(&browser, "capacity", "20000").await;
    browser.press("Save").await;
    browser.wait_for_text("must be at most 10000 open leads").await;
    assert_error_at(&browser, "capacity").await;
    let kept = browser.eval("return document.getElementById('capacity').value;").await;
    assert_eq!(kept, json!("20000"));
    scroll_to(&browser, "capacity").await;
    browser.assert_fits("the rep form with an error", size.0).await;
    browser.screenshot(&shot("rep-error")).await;
    assert_eq!(api.get("/admin/rules/routing").await["version"], Value::Null, "nothing was stored");

    type_into(&browser, "capacity", "5").await;
    browser.press("Save").await;
    browser.wait_for_text("Saved as routing version 1.").await;
    let rep = api.get("/admin/reps/anna").await;
    assert_eq!((rep["version"].clone(), rep["rep"]["capacity"].clone()), (json!(1), json!(5)), "{rep}");
    browser.assert_fits("the saved rep", size.0).await;
    browser.screenshot(&shot("rep-saved")).await;

    browser.goto(&browser.link("Teams", &base).await).await;
    let text = browser.wait_for_text("Add a team").await;
    assert!(text.contains("country is one of DE, AT, CH, FR, GB") && text.contains("Sales Desk"), "{text}");
    browser.assert_fits("the teams page", size.0).await;
    browser.screenshot(&shot("teams")).await;
    browser.goto(&browser.link("EMEA", &base).await).await;
    browser.wait_for_text("Takes leads where").await;
    let row = browser.eval("return document.getElementById('when_value_0').value;").await;
    assert_eq!(row, json!("DE, AT, CH, FR, GB"));
    browser.assert_fits("the team form", size.0).await;
    browser.screenshot(&shot("team")).await;
    scroll_to(&browser, "members").await;
    browser.screenshot(&shot("team-members")).await;

    browser.goto(&format!("{base}/console/leads/{lead}")).await;
    browser.wait_for_text("Erase this lead…").await;
    browser.goto(&browser.link("Erase this lead…", &base).await).await;
    let text = browser.wait_for_text("cannot be undone").await;
    assert!(text.contains("Removed") && text.contains("Kept"), "{text}");
    browser.assert_fits("the erase confirmation", size.0).await;
    browser.screenshot(&shot("erase")).await;
    type_into(&browser, "confirm", "someone.else@initech.de").await;
    browser.press("Erase for good").await;
    browser.wait_for_text("exactly as shown above").await;
    assert_error_at(&browser, "confirm").await;
    scroll_to(&browser, "confirm").await;
    assert_eq!(api.get(&format!("/admin/leads/{lead}")).await["erased"], false, "a wrong address erases nothing");
    browser.assert_fits("the confirmation with an error", size.0).await;
    browser.screenshot(&shot("erase-error")).await;
    type_into(&browser, "confirm", &format!("ana.{label}@initech.de")).await;
    browser.press("Erase for good").await;
    browser.wait_for_text("personal data was erased").await;
    let after = api.get(&format!("/admin/leads/{lead}")).await;
    assert_eq!((after["erased"].clone(), after["contact"]["email"].clone()), (json!(true), json!("")), "{after}");
    browser.assert_fits("the erased page", size.0).await;
    browser.screenshot(&shot("erased")).await;
    browser.goto(&format!("{base}/console/leads/{lead}")).await;
    browser.wait_for_text("This lead was erased").await;
    browser.close().await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_rep_opens_a_team_and_erases_a_lead_on_a_phone() {
    scenario(PHONE, "phone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_a_rep_opens_a_team_and_erases_a_lead_on_a_desktop() {
    scenario(DESKTOP, "desktop").await;
}
