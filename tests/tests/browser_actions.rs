//! In a real browser (headless Chromium over WebDriver), against the running local stack: the
//! rep's assignment email from the outbox at phone width, and its one-click "I've contacted them"
//! link — opening it changes nothing, the button acts once, a forged link is refused. Screenshots
//! go to `target/screenshots/`.

use std::time::Duration;

use leadflow_tests::browser::{Browser, DESKTOP, PHONE, wait_for_eml};
use leadflow_tests::harness::Stack;
use serde_json::json;

const TOKEN: &str = "browser-admin-token";

async fn stack() -> Stack {
    Stack::start(TOKEN, Duration::from_secs(1)).await
}

async fn assignment_eml(s: &Stack, id: &str) -> Vec<u8> {
    wait_for_eml(&s.running.outbox, &format!("assignment-{id}")).await
}

/// The page fits a phone's screen.
async fn assert_fits(browser: &Browser, what: &str) {
    browser.assert_fits(what, PHONE.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_on_a_phone_reads_the_email_and_marks_the_lead_contacted_once() {
    let s = stack().await;
    let id = s
        .post_lead(&json!({"email": "ana@acme.io", "first_name": "Ana", "last_name": "Lima", "company": "Acme",
                           "job_title": "CTO", "country": "DE", "phone": "+49 89 1234567"}))
        .await;
    let eml = assignment_eml(&s, &id).await;
    let message = mail_parser::MessageParser::default().parse(&eml).expect("the .eml parses");
    let html = message.body_html(0).expect("an HTML part").into_owned();

    let browser = Browser::start(PHONE).await;

    // The email itself, as a phone's mail app shows it.
    let file = s.dir.path().join("assignment.html");
    std::fs::write(&file, &html).expect("write the email's HTML");
    browser.goto(&format!("file://{}", file.display())).await;
    assert_fits(&browser, "the assignment email").await;
    let text = browser.text().await;
    assert!(text.contains("Ana Lima") && text.contains("+49 89 1234567"), "{text}");
    assert!(text.contains("CET") && !text.contains("T1"), "the deadline in words: {text}");
    browser.screenshot("assignment-email-phone").await;

    // "I've contacted them": the page asks first and changes nothing.
    let contacted = browser.link("I've contacted them", &s.base).await;
    browser.goto(&contacted).await;
    browser.wait_for_text("Mark this lead as contacted?").await;
    assert_fits(&browser, "the confirmation page").await;
    browser.screenshot("act-confirm-phone").await;
    assert_eq!(s.lead(&id).await["status"], "new", "opening the link changed nothing");

    browser.press("I've contacted them").await;
    browser.wait_for_text("Ana Lima is marked contacted").await;
    assert_fits(&browser, "the result page").await;
    browser.screenshot("act-done-phone").await;
    assert_eq!(s.lead(&id).await["status"], "contacted");

    // The same link again: it says so, and the trail has one change.
    browser.goto(&contacted).await;
    browser.press("I've contacted them").await;
    browser.wait_for_text("Already done").await;
    let lead = s.lead(&id).await;
    let changes =
        lead["activities"].as_array().map_or(0, |a| a.iter().filter(|x| x["kind"] == "status_changed").count());
    assert_eq!(changes, 1, "{lead}");

    // A forged link: refused, at phone and desktop width.
    let mut forged = contacted.clone();
    let last = forged.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    forged.push(last);
    browser.goto(&forged).await;
    assert!(browser.text().await.contains("This link is not valid"));
    assert_fits(&browser, "the refusal page").await;
    browser.screenshot("act-forged-phone").await;
    browser.close().await;

    let desktop = Browser::start(DESKTOP).await;
    desktop.goto(&format!("file://{}", file.display())).await;
    assert!(desktop.text().await.contains("Ana Lima"));
    desktop.screenshot("assignment-email-desktop").await;
    desktop.goto(&forged).await;
    assert!(desktop.text().await.contains("This link is not valid"));
    desktop.screenshot("act-forged-desktop").await;
    desktop.close().await;
    s.running.shutdown().await;
}
