//! The console in a real browser (headless Chromium over WebDriver), against the running local
//! stack: a rep follows "Open the lead" from the real assignment `.eml`, is sent to sign in and
//! back, reads the score's reasons, marks the lead contacted with a note — and the SLA no longer
//! moves that lead, while it still moves one nobody marked. The rep's pages at 375 × 812 and at
//! desktop width, with nothing cut off. Screenshots go to `target/screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_infra::dev::Running;
use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock};
use leadflow_tests::browser::{Browser, DESKTOP, PHONE, wait_for_eml};
use leadflow_tests::harness::Stack;
use serde_json::{Value, json};

const TOKEN: &str = "browser-console-token";

/// The calls these tests make besides the shared ones.
trait ConsoleCalls {
    async fn link_for(&self, email: &str, next: &str) -> String;
    async fn open_the_lead_link(&self, browser: &Browser, id: &str) -> String;
}

impl ConsoleCalls for Stack {
    /// A one-time sign-in link, as `leadflow console link --as <email> --next <next>` prints it.
    async fn link_for(&self, email: &str, next: &str) -> String {
        let (_, body) = self.sign_in_link(Some(email), Some(next)).await;
        body["url"].as_str().unwrap_or_else(|| panic!("no link: {body}")).to_string()
    }

    /// The "Open the lead" address in the lead's assignment email, on this stack.
    async fn open_the_lead_link(&self, browser: &Browser, id: &str) -> String {
        let eml = wait_for_eml(&self.running.outbox, &format!("assignment-{id}")).await;
        let message = mail_parser::MessageParser::default().parse(&eml).expect("the .eml parses");
        let html = message.body_html(0).expect("an HTML part").into_owned();
        let file = self.dir.path().join(format!("assignment-{id}.html"));
        std::fs::write(&file, &html).expect("write the email's HTML");
        browser.goto(&format!("file://{}", file.display())).await;
        browser.link("Open the lead", &self.base).await
    }
}

fn activities(lead: &Value, kind: &str) -> usize {
    lead["activities"].as_array().map_or(0, |a| a.iter().filter(|x| x["kind"] == kind).count())
}

fn qualified(email: &str, first_name: &str) -> Value {
    json!({"email": email, "first_name": first_name, "last_name": "Lima", "company": "Initech",
           "job_title": "CTO", "country": "US", "phone": "+1 212 555 0100"})
}

/// Five hours from now on the same store: the nurture tick (which hands SLA breaches to route) and
/// route itself, run on a clock past every lead's 4-hour SLA.
async fn five_hours_later(running: &Running) -> usize {
    let later = Arc::new(Adapters {
        store: running.ports.store.clone(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now() + chrono::Duration::hours(5)),
        config: ConfigHandle::new(leadflow_tests::test_config()),
    });
    let report = leadflow_nurture::tick(&*later, 100).await.expect("the tick runs");
    leadflow_tests::harness::pipeline(&later).await;
    report.sla_breaches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_opens_the_lead_from_the_email_signs_in_and_marks_it_contacted() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let browser = Browser::start(PHONE).await;

    // The americas team is Carla alone: both leads are hers.
    let worked = s.post_lead(&qualified("lee@globex.com", "Lee")).await;
    let ignored = s.post_lead(&qualified("kim@initech.com", "Kim")).await;
    let open = s.open_the_lead_link(&browser, &worked).await;
    wait_for_eml(&s.running.outbox, &format!("assignment-{ignored}")).await;
    assert!(open.ends_with(&format!("/console/leads/{worked}")), "{open}");

    // Signed out: the link leads to sign-in, which remembers where she was going.
    browser.goto(&open).await;
    browser.wait_for_text("Sign in to Leadflow").await;
    assert!(browser.url().await.contains(&format!("next=%2Fconsole%2Fleads%2F{worked}")));
    browser.assert_fits("the sign-in page", PHONE.0).await;
    browser.screenshot("console-sign-in-phone").await;

    let link = s.link_for("carla@acme.example", &format!("/console/leads/{worked}")).await;
    browser.goto(&link).await;
    browser.wait_for_text("Sign in as carla@acme.example").await;
    browser.assert_fits("the sign-in link's page", PHONE.0).await;
    browser.press("Sign in").await;

    // Back on the lead: contact, the score's every reason, why her.
    let text = browser.wait_for_text("Why Carla Diaz").await;
    assert!(text.contains("Lee Lima") && text.contains("+1 212-555-0100"), "{text}");
    assert!(text.contains("Writes from a company address"), "the score's reasons: {text}");
    assert!(text.contains("Contact by") && text.contains("left"), "the SLA in words: {text}");
    let tel = browser.eval("return document.querySelector('a[href^=\"tel:\"]').getAttribute('href');").await;
    assert_eq!(tel, json!("tel:+12125550100"));
    browser.assert_fits("the lead page", PHONE.0).await;
    browser.screenshot("console-lead-phone").await;

    browser.eval("document.getElementById('note').value = 'Called: demo on Friday'; return null;").await;
    browser.press("I've contacted them").await;
    let text = browser.wait_for_text("Marked contacted").await;
    assert!(text.contains("Called: demo on Friday"), "the note is on the trail: {text}");
    assert!(!text.contains("Contact by"), "the SLA clock stopped: {text}");
    browser.assert_fits("the lead page after the change", PHONE.0).await;
    browser.screenshot("console-lead-contacted-phone").await;
    assert_eq!(s.lead(&worked).await["status"], "contacted");

    // My leads: both, newest first; the one she has not worked shows its SLA.
    browser.goto(&format!("{}/console/leads/mine", s.base)).await;
    let text = browser.wait_for_text("My leads").await;
    let (kim, lee) = (text.find("Kim Lima"), text.find("Lee Lima"));
    assert!(kim.is_some() && lee.is_some() && kim < lee, "newest first: {text}");
    assert!(text.contains("left"), "the unworked lead's SLA: {text}");
    browser.assert_fits("my leads", PHONE.0).await;
    browser.screenshot("console-my-leads-phone").await;
    browser.close().await;

    // Past the SLA: the lead she marked stays hers; the other moves on.
    assert_eq!(five_hours_later(&s.running).await, 1, "only the unworked lead breaches");
    let worked_now = s.lead(&worked).await;
    assert_eq!(worked_now["owner"]["rep_id"], "carla");
    assert_eq!(activities(&worked_now, "sla_breached"), 0, "{worked_now}");
    let ignored_now = s.lead(&ignored).await;
    assert_eq!(activities(&ignored_now, "sla_breached"), 1, "{ignored_now}");
    assert_ne!(ignored_now["owner"]["rep_id"], "carla");

    // The same pages on a desktop.
    let desktop = Browser::start(DESKTOP).await;
    let link = s.link_for("carla@acme.example", &format!("/console/leads/{worked}")).await;
    desktop.goto(&link).await;
    desktop.press("Sign in").await;
    desktop.wait_for_text("Why Carla Diaz").await;
    desktop.assert_fits("the lead page", DESKTOP.0).await;
    desktop.screenshot("console-lead-desktop").await;
    desktop.goto(&format!("{}/console/leads/mine", s.base)).await;
    desktop.wait_for_text("My leads").await;
    desktop.assert_fits("my leads", DESKTOP.0).await;
    desktop.screenshot("console-my-leads-desktop").await;
    desktop.close().await;
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_sees_the_funnel_of_the_leads_posted_here() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    let mut google = qualified("lee@globex.com", "Lee");
    google["utm_source"] = json!("google");
    let first = s.post_lead(&google).await;
    let second = s.post_lead(&qualified("kim@initech.com", "Kim")).await;
    let low = s.post_lead(&json!({ "email": "joe@gmail.com", "utm_source": "google" })).await;
    for id in [&first, &second] {
        wait_for_eml(&s.running.outbox, &format!("assignment-{id}")).await;
    }
    // The low lead is counted once it is scored (below MQL, so no assignment comes).
    for _ in 0..400 {
        if s.lead(&low).await["score"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A rep has spoken to the second lead: sales accepted it, so it counts as SQL and contacted.
    let marked = s
        .http
        .post(format!("{}/admin/leads/{second}/status", s.base))
        .bearer_auth(&s.token)
        .json(&json!({ "status": "contacted", "by": "anna" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the status endpoint answers: {e}"));
    assert_eq!(marked.status(), reqwest::StatusCode::OK);

    for (size, name) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        let browser = Browser::start(size).await;
        let link = s.link_for("maria@acme.example", "/console/reports/funnel").await;
        browser.goto(&link).await;
        browser.press("Sign in").await;
        let text = browser.wait_for_text("3 leads").await;
        let chart = browser.eval("return document.getElementById('funnel-chart').getAttribute('aria-label');").await;
        assert_eq!(
            chart,
            json!("The funnel: Captured 3, Valid 3, MQL 2, Assigned 2, SQL 1, Contacted 1, Won 0"),
            "the chart draws the leads posted here: {text}"
        );
        let bars = browser.eval("return document.querySelectorAll('#funnel-chart rect').length;").await;
        assert_eq!(bars, json!(7));
        assert!(text.contains("google"), "a row per source: {text}");
        browser.assert_fits("the funnel", size.0).await;
        browser.screenshot(&format!("console-funnel-{name}")).await;

        // By week: this week's row; a bad date is told at its field.
        browser.goto(&format!("{}/console/reports/funnel?by=week&since=yesterday", s.base)).await;
        let text = browser.wait_for_text("Enter a date as YYYY-MM-DD.").await;
        assert!(!text.contains("3 leads"), "{text}");
        browser.goto(&format!("{}/console/reports/funnel?by=week", s.base)).await;
        let week = Utc::now().iso_week();
        browser.wait_for_text(&format!("{}-W{:02}", week.year(), week.week())).await;
        browser.close().await;
    }
    s.running.shutdown().await;
}
