//! A marketer's landing page on another site, in a real browser (headless Chromium at phone
//! width), posting to the running local stack with the documented snippet: the script's form
//! shows its field errors in place, then its thank-you, and a double submission is one lead; a
//! site not in `allowed_origins` gets a clean message; the same form without the script lands on
//! the branded thank-you page. Screenshots go to `target/screenshots/landing-*.png`.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use fantoccini::Locator;
use leadflow_tests::browser::{Browser, PHONE};
use serde_json::{Value, json};

const TOKEN: &str = "browser-landing-token";
const REFUSED: &str = "Sorry, your details could not be sent";

/// The snippet of docs/landing-page.md, on a page of Acme's site. `script` false: the plain form
/// alone, as with JavaScript off.
fn landing_page(stack: &str, script: bool) -> String {
    let (marker, tag) = if script {
        ("data-leadflow", format!("<script src=\"{stack}/forms/leadflow.js\" defer></script>"))
    } else {
        ("", String::new())
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme – Talk to sales</title>
<style>
*{{box-sizing:border-box}}
body{{margin:0;padding:16px;font-family:sans-serif;font-size:16px}}
form{{display:grid;gap:12px;max-width:420px}}
label{{display:block}}
input:not([type=checkbox]){{display:block;width:100%;font:inherit;padding:8px}}
[aria-invalid=true]{{border:2px solid #cf222e}}
.leadflow-error{{color:#cf222e;margin:0}}
button{{font:inherit;padding:12px}}
</style>
</head>
<body>
<h1>Talk to sales</h1>
<section>
<form id="lead" method="post" action="{stack}/leads" {marker}>
  <input type="hidden" name="form" value="landing">
  <label>Work email <input name="email" type="email" required></label>
  <label>First name <input name="first_name"></label>
  <label>Company <input name="company"></label>
  <label>Job title <input name="job_title"></label>
  <input type="hidden" name="country" value="US">
  <label><input type="checkbox" name="consent"> Email me about Acme</label>
  <input name="_gotcha" style="display:none" tabindex="-1" autocomplete="off">
  <button>Send</button>
</form>
<div data-leadflow-thanks hidden><h2>Thanks! Our team will call you shortly.</h2></div>
</section>
{tag}
</body>
</html>"#
    )
}

/// Acme's site: `/` the page with the script, `/plain` without. The stack's address is known
/// only once the stack runs, and the stack's configuration needs this site's port first.
async fn serve_site(listener: tokio::net::TcpListener, stack: Arc<OnceLock<String>>) {
    async fn page(State(stack): State<Arc<OnceLock<String>>>) -> Html<String> {
        Html(landing_page(stack.get().map_or("", String::as_str), true))
    }
    async fn plain(State(stack): State<Arc<OnceLock<String>>>) -> Html<String> {
        Html(landing_page(stack.get().map_or("", String::as_str), false))
    }
    let app = Router::new().route("/", get(page)).route("/plain", get(plain)).with_state(stack);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the config copy");
    for entry in std::fs::read_dir(from).expect("read the test config") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        // Some of tests/config are links into shared/app/config: follow them.
        if std::fs::metadata(entry.path()).expect("metadata").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a config file");
        }
    }
}

/// The test configuration with `origin` allowed to post, and a branded thank-you page.
fn config_allowing(origin: &str, into: &Path) {
    copy_dir(&leadflow_tests::config_dir(), into);
    let file = into.join("leadflow.toml");
    let text = std::fs::read_to_string(&file).expect("read leadflow.toml");
    let allowed = r#"allowed_origins = ["https://www.acme.example"]"#;
    assert!(text.contains(allowed), "the test configuration's origins changed: {text}");
    let text = text.replace(allowed, &format!(r#"allowed_origins = ["https://www.acme.example", "{origin}"]"#));
    let thanks = format!(
        "\n[thanks]\nheading = \"Thanks from Acme <3\"\nmessage = \"Maria from our team will call you within a day.\"\n\
         brand_color = \"#0a66c2\"\nback_url = \"{origin}/\"\nback_label = \"Back to Acme\"\n"
    );
    std::fs::write(&file, text + &thanks).expect("write leadflow.toml");
}

struct Stack {
    base: String,
    http: reqwest::Client,
}

impl Stack {
    /// The lead with this email once it is routed; `None` if there is none after `wait`.
    async fn lead(&self, email: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let resp = self
                .http
                .get(format!("{}/admin/leads?email={email}", self.base))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("admin answers");
            if resp.status().is_success() {
                let lead: Value = resp.json().await.expect("json");
                if lead["owner"].is_object() {
                    return Some(lead);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn fill(browser: &Browser, name: &str, value: &str) {
    let input = browser
        .client
        .find(Locator::Css(&format!("#lead [name={name}]")))
        .await
        .unwrap_or_else(|e| panic!("no {name} field: {e}"));
    input.clear().await.unwrap_or_else(|e| panic!("cannot clear {name}: {e}"));
    input.send_keys(value).await.unwrap_or_else(|e| panic!("cannot type into {name}: {e}"));
}

async fn fill_lead(browser: &Browser, email: &str) {
    fill(browser, "email", email).await;
    fill(browser, "first_name", "Lee").await;
    fill(browser, "company", "Globex").await;
    fill(browser, "job_title", "CTO").await;
    let consent = browser.client.find(Locator::Css("#lead [name=consent]")).await.expect("consent box");
    consent.click().await.expect("tick consent");
}

/// Waits until `script` (an expression) is true on the page.
async fn wait_until(browser: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while browser.eval(&format!("return Boolean({script});")).await != json!(true) {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landing_page_on_another_site_captures_leads_with_and_without_the_script() {
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the site");
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the foreign site");
    let site_url = format!("http://{}", site.local_addr().expect("addr"));
    let foreign_url = format!("http://{}", foreign.local_addr().expect("addr"));
    let stack_url = Arc::new(OnceLock::new());
    serve_site(site, Arc::clone(&stack_url)).await;
    serve_site(foreign, Arc::clone(&stack_url)).await;

    let config = tempfile::tempdir().expect("temp dir");
    config_allowing(&site_url, config.path());
    let (running, _data) =
        leadflow_tests::harness::local_stack_with_config(TOKEN, Duration::from_secs(1), config.path().into()).await;
    let stack = Stack { base: format!("http://{}", running.addr), http: reqwest::Client::new() };
    stack_url.set(stack.base.clone()).expect("set once");
    let browser = Browser::start(PHONE).await;

    // The page with the script: the browser's own check is off, so the server's answer shows.
    browser.goto(&format!("{site_url}/")).await;
    wait_until(&browser, "the script is ready", "document.querySelector('#lead[data-leadflow-ready]')").await;
    browser.assert_fits("the landing page", PHONE.0).await;
    browser.screenshot("landing-form-phone").await;
    browser.eval("document.getElementById('lead').noValidate = true;").await;
    fill_lead(&browser, "lee at globex").await;
    browser.press("Send").await;
    wait_until(&browser, "the email's error", "document.querySelector('#lead .leadflow-error')").await;
    let invalid =
        browser.eval("return document.querySelector('#lead [name=email]').getAttribute('aria-invalid');").await;
    assert_eq!(invalid, json!("true"));
    let error = browser
        .eval(
            "const p = document.querySelector('#lead .leadflow-error');
             return [p.textContent, p.getAttribute('role'), p.previousElementSibling.contains(document.querySelector('#lead [name=email]'))];",
        )
        .await;
    assert!(error[0].as_str().is_some_and(|t| !t.is_empty()), "{error}");
    assert_eq!((&error[1], &error[2]), (&json!("alert"), &json!(true)), "next to the email field: {error}");
    browser.assert_fits("the form with its errors", PHONE.0).await;
    browser.screenshot("landing-errors-phone").await;

    // Corrected, and sent twice before the first answer (a double click): one lead.
    fill(&browser, "email", "lee@globex.com").await;
    browser
        .eval(
            "window.leads = [];
             const f = document.getElementById('lead');
             f.addEventListener('leadflow:submitted', e => window.leads.push(e.detail.lead_id));
             f.requestSubmit(); f.requestSubmit();",
        )
        .await;
    browser.wait_for_text("Thanks! Our team will call you shortly.").await;
    wait_until(&browser, "both answers", "window.leads.length === 2").await;
    let ids = browser.eval("return window.leads;").await;
    assert_eq!(ids[0], ids[1], "the same Idempotency-Key, the same lead: {ids}");
    assert!(!browser.text().await.contains("Work email"), "the form gives way to the thank-you");
    assert_eq!(browser.eval("return document.activeElement.hasAttribute('data-leadflow-thanks');").await, json!(true));
    let lead = stack.lead("lee@globex.com", Duration::from_secs(15)).await.expect("the lead is captured");
    assert_eq!(lead["id"], ids[0]);
    assert_eq!(lead["submissions"], 1, "{lead}");
    assert!(lead["consent"].is_null(), "consent waits for the confirmation email's button: {lead}");
    browser.assert_fits("the thank-you in place", PHONE.0).await;
    browser.screenshot("landing-thanks-phone").await;

    // The same page on a site not in allowed_origins: the browser refuses the answer, the
    // visitor gets a message, and nothing is captured.
    browser.goto(&format!("{foreign_url}/")).await;
    wait_until(&browser, "the script is ready", "document.querySelector('#lead[data-leadflow-ready]')").await;
    fill_lead(&browser, "kim@initech.com").await;
    browser.press("Send").await;
    let text = browser.wait_for_text(REFUSED).await;
    assert!(text.contains("Work email"), "the form stays, to try again: {text}");
    let alert = browser.eval("return document.querySelector('#lead [role=alert]').textContent;").await;
    assert!(alert.as_str().is_some_and(|t| t.starts_with(REFUSED)), "{alert}");
    browser.assert_fits("the refused form", PHONE.0).await;
    browser.screenshot("landing-refused-phone").await;
    assert!(stack.lead("kim@initech.com", Duration::from_millis(500)).await.is_none(), "nothing captured");

    // No script: the browser posts the form and lands on the branded thank-you page.
    browser.goto(&format!("{site_url}/plain")).await;
    fill_lead(&browser, "ana@acme.io").await;
    browser.press("Send").await;
    let text = browser.wait_for_text("Thanks from Acme <3").await;
    assert!(text.contains("Maria from our team will call you within a day."), "{text}");
    assert_eq!(browser.url().await, format!("{}/thanks", stack.base));
    let back = browser.eval("return document.querySelector('a').href;").await;
    assert_eq!(back, json!(format!("{site_url}/")));
    browser.assert_fits("the thank-you page", PHONE.0).await;
    browser.screenshot("landing-thank-you-page-phone").await;
    let lead = stack.lead("ana@acme.io", Duration::from_secs(15)).await.expect("the plain form's lead");
    assert_eq!(lead["attribution"]["first_touch"]["form"], "landing", "{lead}");

    browser.close().await;
    running.shutdown().await;
}
