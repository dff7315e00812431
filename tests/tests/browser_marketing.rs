//! Marketing's console in a real browser (headless Chromium over WebDriver), against the running
//! local stack: a marketer edits a campaign, gets the error for a bad step at its field, fixes
//! it, previews the step, saves version 2 and pauses it. Every page at 375 × 812 and at desktop
//! width, with nothing sticking out (a long YAML line scrolls inside the editor). Screenshots go
//! to `target/screenshots/`.

use std::time::Duration;

use leadflow_tests::browser::{Browser, DESKTOP, PHONE};
use serde_json::{Value, json};

const TOKEN: &str = "browser-marketing-token";

async fn sign_in_link(http: &reqwest::Client, base: &str, next: &str) -> String {
    let resp = http
        .post(format!("{base}/dev/sign-in-link"))
        .bearer_auth(TOKEN)
        .json(&json!({ "email": "maria@acme.example", "next": next }))
        .send()
        .await
        .expect("link answers");
    let body: Value = resp.json().await.expect("json");
    body["url"].as_str().unwrap_or_else(|| panic!("no link: {body}")).to_string()
}

async fn api_campaign(http: &reqwest::Client, base: &str) -> Value {
    let resp = http.get(format!("{base}/admin/campaigns/welcome")).bearer_auth(TOKEN).send().await.expect("admin api");
    resp.json().await.expect("json")
}

/// Sets the editor's text as typing it would.
async fn set_yaml(browser: &Browser, yaml: &str) {
    let script = format!("document.getElementById('yaml').value = {}; return null;", json!(yaml));
    browser.eval(&script).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_fixes_a_bad_step_previews_it_saves_version_2_and_pauses_it() {
    let (running, _dir) = leadflow_tests::harness::local_stack(TOKEN, Duration::from_secs(1)).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let browser = Browser::start(PHONE).await;

    browser.goto(&sign_in_link(&http, &base, "/console/campaigns").await).await;
    browser.wait_for_text("Sign in as maria@acme.example").await;
    browser.press("Sign in").await;
    browser.wait_for_text("Welcome series").await;
    browser.assert_fits("the campaign list", PHONE.0).await;
    browser.screenshot("marketing-campaigns-phone").await;

    browser.goto(&browser.link("Welcome series", &base).await).await;
    let text = browser.wait_for_text("Versions").await;
    assert!(text.contains("case-study") && text.contains("wait 2d") && text.contains("sent 0"), "{text}");
    browser.assert_fits("the campaign page", PHONE.0).await;
    browser.screenshot("marketing-campaign-phone").await;

    browser.goto(&browser.link("Edit", &base).await).await;
    browser.wait_for_text("Campaign (YAML)").await;
    let yaml = browser.eval("return document.getElementById('yaml').value;").await;
    let yaml = yaml.as_str().expect("the editor's text").to_string();
    assert!(yaml.contains("id: welcome") && yaml.contains("How Globex doubled its pipeline"), "{yaml}");

    // A bad step: the error is at the editor, naming the field and its line.
    let long = format!("# {}\n", "a long comment that must scroll inside the editor, ".repeat(8));
    let bad = format!("{long}{}", yaml.replace("How Globex doubled its pipeline", "How {{ Globex doubled"));
    set_yaml(&browser, &bad).await;
    browser.press("Save").await;
    let text = browser.wait_for_text("steps[1].subject").await;
    let line = bad.lines().position(|l| l.contains("How {{ Globex")).expect("the bad line") + 1;
    assert!(text.contains(&format!("steps[1].subject (line {line})")), "{text}");
    let placed = browser
        .eval(
            "const e = document.getElementById('yaml-error');
             return [e.previousElementSibling.id, document.getElementById('yaml').getAttribute('aria-describedby')];",
        )
        .await;
    assert_eq!(placed, json!(["yaml", "yaml-error"]), "the error sits right under the editor");
    browser.eval("document.getElementById('yaml-error').scrollIntoView({block: 'center'}); return null;").await;
    browser.assert_fits("the editor with an error and a long line", PHONE.0).await;
    browser.screenshot("marketing-editor-error-phone").await;
    assert_eq!(api_campaign(&http, &base).await["version"], 1, "nothing was stored");

    // Fixed, and the step previewed for the sample lead before saving.
    let good =
        format!("{long}{}", yaml.replace("How Globex doubled its pipeline", "How Globex won, {{ lead.first_name }}"));
    set_yaml(&browser, &good).await;
    let chosen = browser
        .eval("document.getElementById('step').value = 'case-study'; return document.getElementById('step').value;")
        .await;
    assert_eq!(chosen, json!("case-study"));
    browser.press("Preview").await;
    let text = browser.wait_for_text("Step case-study for a sample lead").await;
    assert!(text.contains("How Globex won, Sam"), "the subject, rendered: {text}");
    let frame = browser
        .eval("const f = document.querySelector('iframe'); return [f.getAttribute('sandbox'), f.srcdoc, f.getBoundingClientRect().height];")
        .await;
    assert_eq!(frame[0], json!(""), "sandboxed, with nothing allowed");
    let srcdoc = frame[1].as_str().unwrap_or_default();
    assert!(
        srcdoc.contains("<p>a short case study, in case it is useful.</p>") && srcdoc.contains("Unsubscribe"),
        "{srcdoc}"
    );
    assert!(frame[2].as_f64().unwrap_or_default() > 100.0, "the frame is shown: {frame}");
    browser.eval("document.getElementById('preview').scrollIntoView(); return null;").await;
    browser.assert_fits("the editor with a preview", PHONE.0).await;
    browser.screenshot("marketing-editor-preview-phone").await;
    assert_eq!(api_campaign(&http, &base).await["version"], 1, "a preview stores nothing");

    browser.press("Save").await;
    browser.wait_for_text("Saved as version 2.").await;
    let api = api_campaign(&http, &base).await;
    assert_eq!(api["version"], 2, "{api}");
    assert_eq!(api["campaign"]["steps"][1]["subject"], "How Globex won, {{ lead.first_name }}");

    browser.press("Pause").await;
    let text = browser.wait_for_text("Paused (version 3)").await;
    assert!(text.contains("Resume"), "{text}");
    assert_eq!(api_campaign(&http, &base).await["campaign"]["status"], "paused");
    browser.assert_fits("the paused campaign", PHONE.0).await;
    browser.screenshot("marketing-campaign-paused-phone").await;
    browser.close().await;

    // The same pages on a desktop.
    let desktop = Browser::start(DESKTOP).await;
    desktop.goto(&sign_in_link(&http, &base, "/console/campaigns/welcome").await).await;
    desktop.press("Sign in").await;
    desktop.wait_for_text("Versions").await;
    desktop.assert_fits("the campaign page", DESKTOP.0).await;
    desktop.screenshot("marketing-campaign-desktop").await;
    desktop.goto(&format!("{base}/console/campaigns")).await;
    desktop.wait_for_text("Welcome series").await;
    desktop.assert_fits("the campaign list", DESKTOP.0).await;
    desktop.screenshot("marketing-campaigns-desktop").await;
    desktop.goto(&format!("{base}/console/campaigns/welcome/edit")).await;
    desktop.wait_for_text("Campaign (YAML)").await;
    desktop.assert_fits("the editor", DESKTOP.0).await;
    desktop.screenshot("marketing-editor-desktop").await;
    desktop.goto(&format!("{base}/console/campaigns/welcome/preview?step=case-study")).await;
    desktop.wait_for_text("How Globex won, Sam").await;
    desktop.assert_fits("the preview", DESKTOP.0).await;
    desktop.screenshot("marketing-preview-desktop").await;
    desktop.close().await;
    running.shutdown().await;
}
