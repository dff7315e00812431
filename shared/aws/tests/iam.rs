//! Every AWS request every function makes is checked against that function's own role in
//! template.yaml, by a policy evaluator, resources included (issue 9, finding 1: admin and
//! nurture were deployed unable to do what their code does, and moto's tests could not tell).
//!
//! The functions run as on Lambda: the workspace's own binaries, each a process with the
//! environment template.yaml gives it and the temporary credentials of its role, started against
//! a stand-in for the Lambda Runtime API (`iam/runtime.rs`), so start-up reads count. The roles
//! are what SAM makes of the template as it is on disk, created on a moto server of this test's
//! own (`scripts/iam-policies.py`), which checks every request, with the resource AWS would
//! check, by moto's policy evaluator (`scripts/iam-moto.py`). The test then does what people and
//! AWS do to the functions: admin sets the rules and a campaign, leads are posted and go through
//! validate, score and route (Lambda's SQS event source, with the consumer's role), nurture's
//! tick sends a drip and hands an expired SLA back to route, the drip's unsubscribe link is
//! opened and used, SES reports an open and a bounce, the rep's one-click "contacted" link is
//! used, and admin reads, marks and erases.
//!
//! A refused request fails the test naming the function, the action and the resource. What the
//! evaluator does not check (conditions, resource policies, KMS) is in scripts/iam-moto.py.

mod common;
#[path = "iam/events.rs"]
mod events;
#[path = "iam/moto.rs"]
mod moto;
#[path = "iam/report.rs"]
mod report;
#[path = "iam/runtime.rs"]
mod runtime;
#[path = "iam/stack.rs"]
mod stack;

use std::time::{Duration, Instant};

use leadflow_aws::store::DynamoStore;
use leadflow_core::model::{Lead, LeadId};
use serde_json::{Value, json};

use events::{answer, http};
use leadflow_core::ports::Leads;
use stack::{PATIENCE, SentEmail, Stack};

/// Reps without working hours (so who is free does not depend on the clock) and an SLA of
/// 1.8 seconds, so that nurture's tick finds the first assignment expired and route moves it.
const ROUTING: &str = r#"
fallback_owner = "desk"
sla_hours = 0.0005

[[reps]]
id = "anna"
name = "Anna Schmidt"
email = "anna@acme.example"
time_zone = "Europe/Berlin"

[[reps]]
id = "ben"
name = "Ben Okafor"
email = "ben@acme.example"
time_zone = "Europe/London"

[[reps]]
id = "desk"
name = "Sales Desk"
email = "desk@acme.example"

[[teams]]
id = "emea"
name = "EMEA"
when = [{ field = "country", in = ["DE", "AT", "CH", "GB"] }]
members = [{ rep = "anna", weight = 1 }, { rep = "ben", weight = 1 }]
"#;

/// The welcome campaign again, one email, no send window: the lead below MQL gets it on the
/// next tick.
const CAMPAIGN: &str = r#"
id: welcome
name: Welcome
entry: { lifecycle: lead, requires_consent: false }
steps:
  - id: hello
    subject: "Welcome, {{ lead.first_name or 'there' }}"
    text: "Hi {{ lead.first_name or 'there' }}, thanks for your interest in Acme."
    html: "<p>Hi {{ lead.first_name or 'there' }}, thanks for your interest.</p>"
"#;

/// Words of the campaign's email, to tell it from others sent to the same person.
const DRIP_TEXT: &str = "thanks for your interest in Acme";

const QUALIFIED: &str = "ana@acme.io";
const NURTURED: &str = "joe@gmail.com";

impl Stack {
    /// A request to an HTTP function; answers status and body.
    async fn call(
        &self,
        step: &str,
        binary: &str,
        method: &str,
        target: &str,
        body: Option<(&str, &str)>,
    ) -> (u16, String) {
        let (content_type, text) = body.map_or((None, None), |(ct, b)| (Some(ct), Some(b)));
        let response = self.invoke(step, binary, &http(method, target, content_type, text)).await;
        answer(&response)
    }

    /// The same, where anything but `want` fails the test.
    async fn expect(
        &self,
        step: &str,
        binary: &str,
        method: &str,
        target: &str,
        body: Option<(&str, &str)>,
        want: u16,
    ) -> String {
        let (status, text) = self.call(step, binary, method, target, body).await;
        if status != want {
            let log = self.function(binary).recent_log(10);
            self.fail(step, &format!("{method} {target} answered {status}, not {want}: {text}\n{log}"));
        }
        self.check(step);
        text
    }

    async fn capture(&self, step: &str, lead: Value) -> LeadId {
        let text =
            self.expect(step, "capture", "POST", "/leads", Some(("application/json", &lead.to_string())), 202).await;
        let body: Value = serde_json::from_str(&text).unwrap_or_default();
        body["lead_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| self.fail(step, &format!("no lead id in {text}")))
    }

    /// The three stages in turn until a whole round finds their queues empty.
    async fn settle(&self, step: &str) {
        let urls = &self.made.stage_urls;
        loop {
            let mut handled = 0;
            handled += self.drain(step, "validate", &urls.validate).await;
            handled += self.drain(step, "score", &urls.score).await;
            handled += self.drain(step, "route", &urls.route).await;
            self.check(step);
            if handled == 0 {
                return;
            }
        }
    }

    async fn lead(&self, id: LeadId) -> Lead {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.observer), &self.made.table);
        store.get_lead(id).await.expect("get lead").expect("the lead is stored")
    }

    fn owner(lead: &Lead) -> Option<String> {
        lead.owner.as_ref().map(|o| o.rep_id.clone())
    }
}

/// The first match of `pattern`'s first group in `text`.
fn find(text: &str, pattern: &str) -> Option<String> {
    regex::Regex::new(pattern).ok()?.captures(text)?.get(1).map(|m| m.as_str().to_string())
}

fn text_part(raw: &str) -> String {
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes());
    parsed.and_then(|m| m.body_text(0).map(|t| t.into_owned())).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_every_function_is_allowed_by_its_own_role() {
    let started = Instant::now();
    let s = Stack::up().await;

    // Admin: the rules and a campaign in force, as marketing and sales ops set them.
    let step = "admin sets the routing, reads the rules, applies and pauses a campaign";
    s.expect(step, "admin", "PUT", "/admin/rules/routing", Some(("application/toml", ROUTING)), 200).await;
    s.expect(step, "admin", "GET", "/admin/rules/routing", None, 200).await;
    s.expect(step, "admin", "GET", "/admin/rules/scoring", None, 200).await;
    s.expect(step, "admin", "GET", "/admin/reps", None, 200).await;
    s.expect(step, "admin", "POST", "/admin/campaigns", Some(("application/yaml", CAMPAIGN)), 200).await;
    s.expect(step, "admin", "POST", "/admin/campaigns/welcome/pause", None, 200).await;
    s.expect(step, "admin", "POST", "/admin/campaigns/welcome/resume", None, 200).await;
    s.expect(step, "admin", "GET", "/admin/campaigns", None, 200).await;

    // Capture → validate → score → route: an MQL goes to a rep, a lead below it into nurture.
    let step = "two leads posted and through validate, score and route";
    let qualified =
        json!({"email": QUALIFIED, "first_name": "Ana", "job_title": "CTO", "company": "Acme", "country": "DE"});
    let a = s.capture(step, qualified).await;
    let nurtured = json!({"email": NURTURED, "first_name": "Joe", "consent": true, "consent_text": "Yes, email me."});
    let b = s.capture(step, nurtured).await;
    s.settle(step).await;
    let first_owner = Stack::owner(&s.lead(a).await).unwrap_or_else(|| s.fail(step, "the MQL has no owner"));
    s.events_until(step, "lead.assigned", |seen| seen.iter().any(|e| e["detail-type"] == "lead.assigned")).await;
    let first_email = format!("{first_owner}@acme.example");
    let sent =
        s.emails_until(step, "the assignment email", |sent| sent.iter().any(|m| m.to.contains(&first_email))).await;

    // Double opt-in, where the form asks for it: the person opens the confirmation link and
    // confirms, and score enrolls the lead.
    let step = "the nurtured lead confirms its subscription";
    let confirmation = sent
        .iter()
        .filter(|m| m.to.iter().any(|t| t == NURTURED))
        .find_map(|m| find(&text_part(&m.raw), r"/confirm/([A-Za-z0-9_.~%-]+)"));
    if let Some(token) = confirmation {
        let path = format!("/confirm/{token}");
        s.expect(step, "unsubscribe", "GET", &path, None, 200).await;
        s.expect(step, "unsubscribe", "POST", &path, Some(("application/x-www-form-urlencoded", "")), 200).await;
        s.settle(step).await;
    }

    // Nurture's tick: the drip goes out, and once the SLA has run out the lead goes back to
    // route, which moves it to the other rep and tells them.
    let step = "nurture's tick sends the drip and hands the expired SLA to route";
    let until = Instant::now() + PATIENCE;
    let (mut sent, mut breaches) = (0, 0);
    while sent == 0 || breaches == 0 {
        let summary = s.invoke(step, "nurture", &events::tick()).await;
        s.check(step);
        sent += summary["total"]["sent"].as_u64().unwrap_or(0);
        breaches += summary["total"]["sla_breaches"].as_u64().unwrap_or(0);
        if Instant::now() > until {
            let log = s.function("nurture").recent_log(10);
            s.fail(step, &format!("after {PATIENCE:?} of ticks: {sent} drips sent, {breaches} SLA breaches handed to route (last: {summary})\n{log}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    s.settle(step).await;
    let second_owner = Stack::owner(&s.lead(a).await);
    if second_owner.as_deref() == Some(first_owner.as_str()) || second_owner.is_none() {
        s.fail(step, &format!("route did not move the lead from {first_owner} (owner now {second_owner:?})"));
    }
    let second_owner = second_owner.unwrap_or_default();
    s.events_until(step, "the second lead.assigned", |seen| {
        seen.iter().filter(|e| e["detail-type"] == "lead.assigned").count() >= 2
    })
    .await;
    let second_email = format!("{second_owner}@acme.example");
    let is_drip = |m: &SentEmail| m.to.iter().any(|t| t == NURTURED) && text_part(&m.raw).contains(DRIP_TEXT);
    let sent = s
        .emails_until(step, "the new owner's assignment email and the drip", |sent| {
            sent.iter().any(|m| m.to.contains(&second_email)) && sent.iter().any(is_drip)
        })
        .await;
    let drip = sent.iter().find(|m| is_drip(m)).cloned().unwrap_or_default();
    let assignment = sent.iter().rev().find(|m| m.to.contains(&second_email)).cloned().unwrap_or_default();

    // SES's events for the drip: an open rescores the lead.
    let step = "SES reports an open of the drip";
    let tags = [("lead_id", b.to_string()), ("email", format!("drip-{b}-welcome")), ("category", "marketing".into())];
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let handled = s.invoke(step, "ses-events", &events::ses("Open", &drip.id, NURTURED, &tags)).await;
    if handled.get("handled").is_none() {
        s.fail(step, &format!("ses-events did not handle the open: {handled}"));
    }
    s.check(step);
    s.settle(step).await;

    // The drip's unsubscribe link: the page, then the mailbox provider's one-click POST.
    let step = "the drip's unsubscribe link, opened and used";
    let token = find(&text_part(&drip.raw), r"/u/([A-Za-z0-9_.~%-]+)")
        .unwrap_or_else(|| s.fail(step, "the drip has no List-Unsubscribe link"));
    let path = format!("/u/{token}");
    s.expect(step, "unsubscribe", "GET", &path, None, 200).await;
    s.expect(
        step,
        "unsubscribe",
        "POST",
        &path,
        Some(("application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")),
        200,
    )
    .await;

    let step = "SES reports a bounce of the drip";
    let handled = s.invoke(step, "ses-events", &events::ses("Bounce", &drip.id, NURTURED, &tags)).await;
    if handled.get("handled").is_none() {
        s.fail(step, &format!("ses-events did not handle the bounce: {handled}"));
    }
    s.check(step);

    // The rep's "I've contacted them" link in the assignment email.
    let step = "the rep's one-click contacted link";
    let contacted = find(&text_part(&assignment.raw), r"I've contacted them: (\S+)")
        .and_then(|url| url.find("/console/act/").map(|i| url[i..].to_string()))
        .unwrap_or_else(|| s.fail(step, "the assignment email has no contacted link"));
    s.expect(step, "admin", "GET", &contacted, None, 200).await;
    s.expect(step, "admin", "POST", &contacted, Some(("application/x-www-form-urlencoded", "")), 200).await;

    // A dead letter in the score DLQ, so that the listing peeks (receive, make visible again)
    // and reads the failure reasons. The redrive is asked of the empty route DLQ: moto has no
    // `StartMessageMoveTask` (tests/dead_letters.rs checks that request against a fake).
    let sqs = aws_sdk_sqs::Client::new(&s.observer);
    let dead = r#"{"lead_id":"01KA0000000000000000000000","cause":"activity"}"#;
    sqs.send_message().queue_url(&s.made.dlq_urls.score).message_body(dead).send().await.expect("a dead letter");

    // Admin reads, marks and erases.
    let step = "admin reads, marks and erases";
    for target in [
        format!("/admin/leads/{a}"),
        format!("/admin/leads?email={QUALIFIED}"),
        "/admin/leads?q=acme".to_string(),
        "/admin/leads/export?format=csv".to_string(),
        "/admin/reports/funnel?by=source".to_string(),
        "/admin/campaigns/welcome".to_string(),
        format!("/admin/campaigns/welcome/preview?lead={b}&step=hello"),
        "/admin/dead-letters".to_string(),
    ] {
        s.expect(step, "admin", "GET", &target, None, 200).await;
    }
    s.expect(step, "admin", "POST", "/admin/dead-letters/route/redrive", None, 200).await;
    s.expect(
        step,
        "admin",
        "POST",
        &format!("/admin/leads/{a}/status"),
        Some(("application/json", r#"{"status":"won"}"#)),
        200,
    )
    .await;
    s.expect(step, "admin", "DELETE", &format!("/admin/leads/{a}"), None, 200).await;
    s.events_until(step, "lead.erased", |seen| seen.iter().any(|e| e["detail-type"] == "lead.erased")).await;

    let report = s.report();
    eprintln!("{}", report.summary());
    s.check("the end");
    let used = report.used();
    let idle: Vec<&str> = s.specs.iter().map(|f| f.binary.as_str()).filter(|b| !used.contains_key(*b)).collect();
    assert!(idle.is_empty(), "functions that made no AWS request at all, so nothing of theirs was checked: {idle:?}");
    eprintln!("iam: done in {:.1?}", started.elapsed());
}
