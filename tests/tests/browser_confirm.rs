//! In a real browser (headless Chromium over WebDriver), against the running local stack:
//! double opt-in's confirmation email from the outbox and its link, at phone and desktop width.
//! Opening the link changes nothing; the button records consent; a forged link is refused.
//! Screenshots go to `target/screenshots/`.

use std::time::Duration;

use leadflow_tests::browser::{Browser, DESKTOP, PHONE, wait_for_eml};
use leadflow_tests::harness::Stack;
use serde_json::{Value, json};

const TOKEN: &str = "browser-admin-token";

/// The confirmation link in the open email, on the running stack (the test configuration's
/// public URL is a placeholder host).
async fn confirm_link(browser: &Browser, base: &str) -> String {
    let href = browser
        .eval("const a = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'Confirm my subscription'); return a ? a.href : null;")
        .await;
    let href = href.as_str().unwrap_or_else(|| panic!("no confirmation link in the email"));
    let path = href.split_once("/confirm/").map(|(_, token)| token).unwrap_or_else(|| panic!("{href}"));
    format!("{base}/confirm/{path}")
}

fn consent_of(lead: &Value) -> Value {
    lead["consent"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_link_asks_first_then_records_consent_on_a_phone_and_a_desktop() {
    let s = Stack::start(TOKEN, Duration::from_secs(1)).await;
    // A long unbroken word in the form's text must wrap, not widen the page.
    let wording =
        "Yes, send me Acme's newsletter: https://www.acme.example/newsletter/archive/2026/everything-we-wrote";
    let id = s
        .post_lead(&json!({"email": "joe@gmail.com", "first_name": "Joe", "form": "newsletter",
                           "consent": true, "consent_text": wording}))
        .await;
    let eml = wait_for_eml(&s.running.outbox, &format!("confirm-{id}")).await;
    let message = mail_parser::MessageParser::default().parse(&eml).expect("the .eml parses");
    let html = message.body_html(0).expect("an HTML part").into_owned();
    let file = s.dir.path().join("confirm.html");
    std::fs::write(&file, &html).expect("write the email's HTML");

    // On a desktop: the email, then the page it links to, which changes nothing.
    let desktop = Browser::start(DESKTOP).await;
    desktop.goto(&format!("file://{}", file.display())).await;
    desktop.wait_for_text("please confirm").await;
    desktop.screenshot("confirm-email-desktop").await;
    let link = confirm_link(&desktop, &s.base).await;
    desktop.goto(&link).await;
    desktop.wait_for_text("Confirm your subscription").await;
    assert!(desktop.text().await.contains("everything-we-wrote"), "the page shows the form's words");
    desktop.assert_fits("the confirmation page", DESKTOP.0).await;
    desktop.screenshot("confirm-page-desktop").await;
    assert_eq!(consent_of(&s.lead(&id).await), Value::Null, "opening the link recorded nothing");
    desktop.close().await;

    // On a phone: the email, the page, the button.
    let phone = Browser::start(PHONE).await;
    phone.goto(&format!("file://{}", file.display())).await;
    phone.wait_for_text("please confirm").await;
    phone.assert_fits("the confirmation email", PHONE.0).await;
    phone.screenshot("confirm-email-phone").await;
    phone.goto(&link).await;
    phone.wait_for_text("Confirm your subscription").await;
    phone.assert_fits("the confirmation page", PHONE.0).await;
    phone.screenshot("confirm-page-phone").await;
    assert_eq!(consent_of(&s.lead(&id).await), Value::Null, "still nothing recorded");

    phone.press("Confirm my subscription").await;
    phone.wait_for_text("You are subscribed").await;
    phone.assert_fits("the done page", PHONE.0).await;
    phone.screenshot("confirm-done-phone").await;
    let consent = consent_of(&s.lead(&id).await);
    assert_eq!(consent["given"], true, "{consent}");
    assert_eq!(consent["source"], "newsletter");
    assert_eq!(consent["wording"], wording);

    // A forged link: refused, and says why.
    let mut forged = link.clone();
    let last = forged.pop().map_or('0', |c| if c == '0' { '1' } else { '0' });
    forged.push(last);
    phone.goto(&forged).await;
    phone.wait_for_text("This confirmation link is not valid").await;
    phone.assert_fits("the refusal page", PHONE.0).await;
    phone.screenshot("confirm-forged-phone").await;
    phone.close().await;
    s.running.shutdown().await;
}
