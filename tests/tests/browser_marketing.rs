//! Marketing's console in a real browser (headless Chromium over WebDriver), against the running
//! local stack: a marketer edits a campaign, gets the error for a bad step at its field, fixes
//! it, previews the step, saves version 2 and pauses it; creates a new campaign and finds it
//! listed; moves a lead enrolled in version 1 to version 2. Every page at 375 × 812 and at
//! desktop width, with nothing sticking out (a long YAML line scrolls inside the editor).
//! Screenshots go to `target/screenshots/`.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_creates_a_campaign_and_moves_enrolled_leads_to_the_new_version() {
    let (running, _dir) = leadflow_tests::harness::local_stack(TOKEN, Duration::from_secs(1)).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    // A lead in the welcome series' version 1; then version 2, through the admin API.
    let resp = http.post(format!("{base}/leads")).json(&json!({"email": "pat@gmail.com", "first_name": "Pat"}));
    let body: Value = resp.send().await.expect("capture").json().await.expect("json");
    let pat = body["lead_id"].as_str().expect("an id").to_string();
    let enrollment = async || {
        let resp = http.get(format!("{base}/admin/leads/{pat}")).bearer_auth(TOKEN).send().await.expect("admin api");
        let lead: Value = resp.json().await.expect("json");
        lead["enrollments"][0].clone()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Its first email sent, it waits two days for the next: nothing moves it meanwhile.
    while enrollment().await["next_step"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the first email was never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = http.post(format!("{base}/admin/campaigns/welcome/pause")).bearer_auth(TOKEN).send().await;
    assert!(resp.expect("admin api").status().is_success());

    // The desktop sees the move offered; the phone makes it.
    for (size, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        let browser = Browser::start(size).await;
        browser.goto(&sign_in_link(&http, &base, "/console/campaigns").await).await;
        browser.wait_for_text("Sign in as maria@acme.example").await;
        browser.press("Sign in").await;
        browser.wait_for_text("Welcome series").await;
        browser.goto(&browser.link("New campaign", &base).await).await;
        browser.wait_for_text("Campaign (YAML)").await;
        browser.assert_fits("the new campaign's editor", size.0).await;
        browser.screenshot(&format!("marketing-new-campaign-{name}")).await;
        let yaml = browser.eval("return document.getElementById('yaml').value;").await;
        let yaml = yaml.as_str().expect("the editor's text");
        assert!(yaml.contains("id: newsletter-welcome") && yaml.contains("status: paused"), "{yaml}");
        let mine = yaml
            .replace("id: newsletter-welcome", &format!("id: spring-{name}"))
            .replace("name: Newsletter welcome", &format!("name: Spring webinar ({name})"));
        set_yaml(&browser, &mine).await;
        browser.press("Create campaign").await;
        let text = browser.wait_for_text("Created as version 1, paused").await;
        assert!(text.contains(&format!("Spring webinar ({name})")) && text.contains("Resume"), "{text}");
        browser.assert_fits("the new campaign's page", size.0).await;
        browser.goto(&format!("{base}/console/campaigns")).await;
        let text = browser.wait_for_text(&format!("Spring webinar ({name})")).await;
        assert!(text.contains(&format!("spring-{name} · version 1")) && text.contains("Welcome series"), "{text}");
        browser.assert_fits("the campaign list", size.0).await;
        browser.screenshot(&format!("marketing-campaigns-created-{name}")).await;

        browser.goto(&browser.link("Welcome series", &base).await).await;
        browser.wait_for_text("Active on older versions: 1 lead.").await;
        browser.goto(&browser.link("Move enrolled leads to version 2", &base).await).await;
        let text = browser.wait_for_text("Version 1: 1 lead").await;
        assert!(text.contains("due when it was due"), "{text}");
        browser.assert_fits("the move's confirmation", size.0).await;
        browser.screenshot(&format!("marketing-migrate-{name}")).await;
        assert_eq!(enrollment().await["campaign_version"], 1, "opening the page moves nobody");
        if size == PHONE {
            browser.press("Move to version 2").await;
            let text = browser.wait_for_text("Moved 1 lead to version 2.").await;
            assert!(text.contains("nothing to move"), "{text}");
            browser.assert_fits("the move's result", size.0).await;
            browser.screenshot(&format!("marketing-migrated-{name}")).await;
            assert_eq!(enrollment().await["campaign_version"], 2);
        }
        browser.close().await;
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_filters_and_pages_the_leads_and_checks_the_suppression_list() {
    /// Waits until the admin API shows the lead scored and placed (assigned or enrolled).
    async fn settled(http: &reqwest::Client, base: &str, id: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let resp = http.get(format!("{base}/admin/leads/{id}")).bearer_auth(TOKEN).send().await.expect("admin api");
            let lead: Value = resp.json().await.expect("json");
            let placed = !lead["owner"].is_null() || lead["enrollments"].as_array().is_some_and(|e| !e.is_empty());
            if !lead["grade"].is_null() && placed {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "lead {id} not placed in 20 s: {lead}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's whole text once `needle` shows and the page has finished loading (a long page
    /// shows its first lines while the rest still arrives).
    async fn loaded(browser: &Browser, needle: &str) -> String {
        browser.wait_for_text(needle).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while browser.eval("return document.readyState;").await != json!("complete") {
            assert!(std::time::Instant::now() < deadline, "the page showing {needle:?} never finished loading");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        browser.text().await
    }

    let (running, _dir) = leadflow_tests::harness::local_stack(TOKEN, Duration::from_secs(1)).await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..28 {
        let lead = json!({"email": format!("lead{i}@initech{i}.com"), "first_name": format!("Pat{i}"),
            "last_name": "Very-Long-Surname-That-Must-Wrap-Somewhere", "company": format!("Initech Worldwide Holdings {i}"),
            "job_title": if i % 2 == 0 { "CTO" } else { "Engineer" }, "country": if i % 3 == 0 { "DE" } else { "US" },
            "utm_source": if i % 4 == 0 { "webinar" } else { "google" }});
        let resp = http.post(format!("{base}/leads")).json(&lead).send().await.expect("capture");
        let body: Value = resp.json().await.expect("json");
        ids.push(body["lead_id"].as_str().expect("an id").to_string());
    }
    let resp = http.post(format!("{base}/leads")).json(&json!({"email": "opt.out@gmail.com", "first_name": "Olive"}));
    let body: Value = resp.send().await.expect("capture").json().await.expect("json");
    let olive = body["lead_id"].as_str().expect("an id").to_string();
    for id in ids.iter().chain([&olive]) {
        settled(&http, &base, id).await;
    }
    // Olive opts out with her first drip email's one-click link.
    let eml = leadflow_tests::browser::wait_for_eml(&running.outbox, &format!("drip-{olive}")).await;
    let m = mail_parser::MessageParser::default().parse(&eml).expect("an email");
    let url = m.header_raw("List-Unsubscribe").expect("List-Unsubscribe").trim().trim_matches(['<', '>']).to_string();
    let path =
        url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string())).expect("a path");
    let resp = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("unsubscribe");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);

    for (size, name) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        let browser = Browser::start(size).await;
        browser.goto(&sign_in_link(&http, &base, "/console/leads").await).await;
        browser.wait_for_text("Sign in as maria@acme.example").await;
        browser.press("Sign in").await;
        let text = loaded(&browser, "Every lead, newest first").await;
        // The names of the leads the person sees (the table on a desktop, the list on a phone).
        let shown = "return [...document.querySelectorAll('a')]
              .filter(a => a.offsetParent !== null && /^\\/console\\/leads\\/[0-9A-Z]{26}$/.test(a.getAttribute('href')))
              .map(a => a.textContent.split(' ')[0]);";
        let first: Vec<String> = serde_json::from_value(browser.eval(shown).await).expect("names");
        // The newest 25 (leads captured within the same millisecond may come in either order).
        assert_eq!(first.len(), 25, "{first:?}");
        assert!(text.contains("Next 25"), "{text}");
        browser.assert_fits("the leads page", size.0).await;
        browser.screenshot(&format!("console-leads-{name}")).await;
        browser.eval("document.getElementById('summary').scrollIntoView(); return null;").await;
        browser.screenshot(&format!("console-leads-results-{name}")).await;

        // The second page holds the rest; together, every lead once.
        browser.goto(&browser.link("Next 25", &base).await).await;
        let text = loaded(&browser, "Back to the newest").await;
        assert!(!text.contains("Next 25"), "{text}");
        let second: Vec<String> = serde_json::from_value(browser.eval(shown).await).expect("names");
        let mut all: Vec<String> = first.into_iter().chain(second).collect();
        all.sort();
        let mut want: Vec<String> = (0..28).map(|i| format!("Pat{i}")).chain(["Olive".to_string()]).collect();
        want.sort();
        assert_eq!(all, want, "every lead once over the two pages");
        browser.assert_fits("the second page", size.0).await;

        // Filtered: MQLs from the webinar, set as a person picks them.
        browser.goto(&format!("{base}/console/leads")).await;
        browser.wait_for_text("Show leads").await;
        browser
            .eval("document.getElementById('source').value = 'webinar'; document.getElementById('stage').value = 'mql'; return null;")
            .await;
        browser.press("Show leads").await;
        let text = loaded(&browser, "matching the filters").await;
        let shown: Vec<usize> = (0..28).filter(|i| text.contains(&format!("Pat{i} Very"))).collect();
        assert!(!shown.is_empty() && shown.iter().all(|i| i % 4 == 0), "only webinar leads: {shown:?}\n{text}");
        assert!(browser.url().await.contains("source=webinar"), "the filters are in the address");
        let csv = browser.eval("return document.getElementById('csv').getAttribute('href');").await;
        assert!(csv.as_str().is_some_and(|h| h.contains("source=webinar") && h.contains("stage=mql")), "{csv}");
        browser.assert_fits("the filtered leads", size.0).await;
        browser.screenshot(&format!("console-leads-filtered-{name}")).await;

        // A bad filter is told at its field, and the page still fits.
        browser.goto(&format!("{base}/console/leads?grade=E&q=Pat")).await;
        browser.wait_for_text("Grade: \"E\" is not one of A, B, C, D").await;
        browser.assert_fits("the leads page with an error", size.0).await;
        browser.screenshot(&format!("console-leads-error-{name}")).await;

        // The suppression list, and the check of an address.
        browser.goto(&browser.link("Suppression list", &base).await).await;
        let text = loaded(&browser, "Suppression list").await;
        assert!(text.contains("Unsubscribed") && text.contains("Olive"), "{text}");
        browser.assert_fits("the suppression list", size.0).await;
        browser.screenshot(&format!("console-suppressions-{name}")).await;
        browser.eval("document.getElementById('email').value = ' opt.out@GMAIL.com'; return null;").await;
        browser.press("Check").await;
        let text = loaded(&browser, "Yes: opt.out@gmail.com is suppressed.").await;
        assert!(text.contains("Unsubscribed") && text.contains("From the lead Olive"), "{text}");
        browser.assert_fits("the check's answer", size.0).await;
        browser.screenshot(&format!("console-suppressions-check-{name}")).await;
        browser.eval("document.getElementById('email').value = 'lead1@initech1.com'; return null;").await;
        browser.press("Check").await;
        browser.wait_for_text("No: lead1@initech1.com is not suppressed.").await;
        browser.eval("document.getElementById('email').value = 'not an address'; return null;").await;
        browser.press("Check").await;
        browser.wait_for_text("needs an @ followed by a domain").await;
        let placed = browser
            .eval(
                "const e = document.getElementById('email-error');
                 return [e.previousElementSibling.contains(document.getElementById('email')),
                         document.getElementById('email').getAttribute('aria-describedby')];",
            )
            .await;
        assert_eq!(placed, json!([true, "email-error"]), "the problem sits right under the field");
        browser.assert_fits("the check with an error", size.0).await;
        browser.close().await;
    }
    running.shutdown().await;
}
