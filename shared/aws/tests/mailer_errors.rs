//! What each of SES's refusals does to an email, through the real `SesMailer` and SDK against a
//! fake SES endpoint (`fake_ses`): only `MessageRejected` is final; an account-level refusal
//! (suspended, paused, MAIL FROM domain not verified, configuration set gone, bad request)
//! leaves the email unsent and due, so it goes out once the account is fixed, exactly once.
//! No refusal's text shows the address SES quoted. Needs no moto.

mod fake_ses;

use chrono::Utc;
use fake_ses::{Answer, FakeSes, QUOTED};
use leadflow_app::{BatchItem, Sent, StageError, send_once};
use leadflow_aws::mailer::SesMailer;
use leadflow_core::config::CompiledConfig;
use leadflow_core::error::MailError;
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{ActivityKind, EnrollmentState, LeadId};
use leadflow_core::ports::{
    Adapters, Clock, ConfigHandle, CreateOutcome, EmailCategory, Mailbox, Mailer, OutgoingEmail,
};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_memory::fixtures::{enrollment, lead, owned_by};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, SettableClock};

type Ports = Adapters<MemoryStore, MemoryQueue, SesMailer, RecordingBus, SettableClock>;

const SET: &str = "leadflow-emails";
const SENDER: &str = "sales@acme.example";
const SECRET: &str = "mailer-errors-test-unsubscribe-secret-0123456789";

/// What the mailer must answer for an SES refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Final: this one message is refused.
    Rejected,
    /// Retried, with what an operator must fix in the error.
    Held(&'static str),
    Throttled,
    Unavailable,
}

/// Every error SES v2's SendEmail is modelled with, and two server errors, with their HTTP
/// status as SES sends them.
const CLASSES: &[(u16, &str, Outcome)] = &[
    (400, "MessageRejected", Outcome::Rejected),
    (400, "AccountSuspendedException", Outcome::Held("the SES account is suspended")),
    (400, "SendingPausedException", Outcome::Held("sending is paused")),
    (400, "MailFromDomainNotVerifiedException", Outcome::Held("the MAIL FROM domain is not verified")),
    (404, "NotFoundException", Outcome::Held("the configuration set leadflow-emails does not exist")),
    (400, "BadRequestException", Outcome::Held("SES called the request bad")),
    (429, "TooManyRequestsException", Outcome::Throttled),
    (400, "LimitExceededException", Outcome::Throttled),
    (500, "InternalFailure", Outcome::Unavailable),
    (503, "ServiceUnavailable", Outcome::Unavailable),
];

/// The refusals after which the email must stay unsent.
fn retried() -> impl Iterator<Item = (u16, &'static str)> {
    CLASSES.iter().filter(|(_, _, o)| *o != Outcome::Rejected).map(|(s, c, _)| (*s, *c))
}

fn email(key: &str) -> OutgoingEmail {
    OutgoingEmail {
        key: key.to_string(),
        category: EmailCategory::Transactional,
        from: Mailbox { name: Some("Leadflow".into()), email: SENDER.into() },
        to: Mailbox { name: Some("Ada Lovelace".into()), email: QUOTED.into() },
        subject: "A new lead for you".into(),
        text: "Hello, a lead is yours.".into(),
        html: "<p>Hello, a lead is yours.</p>".into(),
        headers: Vec::new(),
        tags: Vec::new(),
    }
}

/// An error text must not show the recipient, not even part of the address.
fn assert_no_address(text: &str) {
    let lower = text.to_lowercase();
    assert!(!lower.contains('@') && !lower.contains("ada.lovelace") && !lower.contains("analytical"), "{text}");
}

async fn ports(fake: &FakeSes) -> Ports {
    let mut config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
    config.settings.sender.email = SENDER.to_string();
    config.settings.signing_keys = SECRET.into();
    Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: fake.mailer(1, Some(SET)).await,
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    }
}

/// The message ids of the `EmailSent` entries on the lead's trail.
async fn sent_on_trail(ports: &Ports, lead_id: LeadId) -> Vec<String> {
    let trail = ports.store.activities(lead_id).await.expect("the trail");
    trail
        .into_iter()
        .filter_map(|a| match a.kind {
            ActivityKind::EmailSent { message_id, .. } => Some(message_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_ses_refusal_gets_its_outcome_without_the_address() {
    for (status, code, outcome) in CLASSES {
        let fake = FakeSes::start(Answer::refuse(*status, code)).await;
        let mailer = fake.mailer(1, Some(SET)).await;
        let err = mailer.send(&email("assignment-k"), Utc::now()).await.expect_err(code);
        let text = err.to_string();
        match (outcome, &err) {
            (Outcome::Rejected, MailError::Rejected(_))
            | (Outcome::Throttled, MailError::Throttled(_))
            | (Outcome::Unavailable, MailError::Unavailable(_)) => {}
            (Outcome::Held(fix), MailError::Unavailable(_)) => {
                assert!(text.contains(fix), "{code}: the error says what to fix: {text}");
            }
            _ => panic!("{code} ({status}) should be {outcome:?}, is {err:?}"),
        }
        // The code and the key say which email and why; SES's quoted address is gone.
        assert!(text.contains(code) && text.contains("assignment-k"), "{text}");
        assert_no_address(&text);
        assert_eq!(fake.requests().len(), 1, "{code}: one request");
    }
}

/// With the SDK's own retries (the functions use its default of three attempts), throttling and
/// server errors are tried again before the mailer answers; a refusal of the message or the
/// account is not, and keeps its outcome.
#[tokio::test]
async fn the_sdk_retries_throttling_and_server_errors_only() {
    for (status, code, outcome) in CLASSES {
        let fake = FakeSes::start(Answer::refuse(*status, code)).await;
        let err = fake.mailer(3, Some(SET)).await.send(&email("k"), Utc::now()).await.expect_err(code);
        let retried_by_sdk = matches!(outcome, Outcome::Throttled | Outcome::Unavailable);
        assert_eq!(fake.requests().len(), if retried_by_sdk { 3 } else { 1 }, "{code}: requests");
        let final_ = matches!(err, MailError::Rejected(_));
        assert_eq!(final_, *outcome == Outcome::Rejected, "{code}: {err}");
    }
}

#[tokio::test]
async fn an_email_refused_for_the_account_is_not_done_and_goes_out_once_when_ses_accepts_again() {
    for (status, code) in retried() {
        let fake = FakeSes::start(Answer::refuse(status, code)).await;
        let ports = ports(&fake).await;
        let lead_id = lead(1, QUOTED).id;
        let email = email(&format!("assignment-{lead_id}-anna"));

        match send_once(&ports, lead_id, &email).await {
            Err(StageError::Retryable(reason)) => assert_no_address(&reason),
            other => panic!("{code}: the send must be retried, got {other:?}"),
        }
        assert!(sent_on_trail(&ports, lead_id).await.is_empty(), "{code}: nothing sent on the trail");

        fake.answer(Answer::Accept);
        let Ok(Sent::Now(id)) = send_once(&ports, lead_id, &email).await else {
            panic!("{code}: once SES accepts, the email goes out")
        };
        assert_eq!(send_once(&ports, lead_id, &email).await.ok(), Some(Sent::Before(id.clone())), "{code}");
        assert_eq!(fake.accepted(), 1, "{code}: sent once");
        assert_eq!(fake.requests().len(), 2, "{code}: the refused attempt and the accepted one");
        assert_eq!(sent_on_trail(&ports, lead_id).await, [id], "{code}");
    }
}

#[tokio::test]
async fn a_rejected_message_is_done_and_never_sent_again() {
    let fake = FakeSes::start(Answer::refuse(400, "MessageRejected")).await;
    let ports = ports(&fake).await;
    let lead_id = lead(1, QUOTED).id;
    let email = email(&format!("assignment-{lead_id}-anna"));

    let Ok(Sent::Rejected(reason)) = send_once(&ports, lead_id, &email).await else { panic!("rejected for good") };
    assert_no_address(&reason);
    fake.answer(Answer::Accept);
    let again = send_once(&ports, lead_id, &email).await;
    assert!(matches!(&again, Ok(Sent::Before(detail)) if detail.starts_with("rejected:")), "{again:?}");
    assert_eq!(fake.requests().len(), 1, "a rejected message is not offered to SES again");
    assert!(sent_on_trail(&ports, lead_id).await.is_empty());
}

/// The route stage: an assignment email refused for the account fails the queue message (SQS
/// delivers it again, then dead-letters it), and the redelivery after the fix sends it once and
/// announces the assignment; a rejected one lets the message go.
#[tokio::test]
async fn route_gives_the_message_back_while_the_account_is_refused() {
    for (status, code) in [(400, "AccountSuspendedException"), (400, "MailFromDomainNotVerifiedException")] {
        let fake = FakeSes::start(Answer::refuse(status, code)).await;
        let ports = ports(&fake).await;
        let lead = owned_by(lead(1, QUOTED), "anna");
        assert_eq!(ports.store.create_lead(&lead, &[]).await.expect("create"), CreateOutcome::Created);
        let batch = || {
            let body = serde_json::to_string(&RouteMessage::route(lead.id)).expect("json");
            vec![BatchItem { id: "m-1".into(), body }]
        };

        let failed = leadflow_route::handle_batch(&ports, batch()).await;
        assert_eq!(failed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["m-1"], "{code}");
        assert_no_address(&failed[0].reason);
        assert!(ports.bus.events().is_empty(), "{code}: not announced before the rep is told");

        fake.answer(Answer::Accept);
        assert!(leadflow_route::handle_batch(&ports, batch()).await.is_empty(), "{code}");
        assert!(leadflow_route::handle_batch(&ports, batch()).await.is_empty(), "{code}: a redelivery");
        assert_eq!(fake.accepted(), 1, "{code}: the assignment email went out once");
        assert_eq!(sent_on_trail(&ports, lead.id).await.len(), 1, "{code}");
        // Published again by the redelivery (events keep no record), under the same id.
        let ids: Vec<String> = ports.bus.events().into_iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 2, "{code}: lead.assigned on the delivery and the redelivery");
        assert_eq!(ids[0], ids[1], "{code}: one event id");
    }

    let fake = FakeSes::start(Answer::refuse(400, "MessageRejected")).await;
    let ports = ports(&fake).await;
    let lead = owned_by(lead(1, QUOTED), "anna");
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let body = serde_json::to_string(&RouteMessage::route(lead.id)).expect("json");
    let failed = leadflow_route::handle_batch(&ports, vec![BatchItem { id: "m-1".into(), body }]).await;
    assert!(failed.is_empty(), "a rejected email is final: {failed:?}");
    assert_eq!(fake.requests().len(), 1);
}

/// Nurture: a drip refused for the account stays due and goes out on the first tick after the
/// fix; a rejected drip moves the enrollment on.
#[tokio::test]
async fn a_drip_refused_for_the_account_stays_due() {
    async fn enrolled(fake: &FakeSes) -> (Ports, LeadId) {
        let ports = ports(fake).await;
        let lead = lead(1, QUOTED);
        ports.store.create_lead(&lead, &[]).await.expect("create");
        let mut due = enrollment(1, "welcome", Some(ports.clock.now()), EnrollmentState::Active);
        due.enrolled_at = ports.clock.now();
        assert!(ports.store.enroll(&due, &[]).await.expect("enroll"));
        (ports, lead.id)
    }
    async fn next_step(ports: &Ports, lead_id: LeadId) -> u32 {
        ports.store.enrollments(lead_id).await.expect("enrollments")[0].next_step
    }

    let fake = FakeSes::start(Answer::refuse(400, "AccountSuspendedException")).await;
    let (ports, lead_id) = enrolled(&fake).await;
    let report = leadflow_nurture::tick(&ports, 10).await.expect("tick");
    assert_eq!((report.sent, report.retry_later), (0, 1), "{report:?}");
    assert_eq!(next_step(&ports, lead_id).await, 0, "the step is still due");
    fake.answer(Answer::Accept);
    let report = leadflow_nurture::tick(&ports, 10).await.expect("tick");
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(next_step(&ports, lead_id).await, 1);
    assert_eq!(fake.accepted(), 1);

    let fake = FakeSes::start(Answer::refuse(400, "MessageRejected")).await;
    let (ports, lead_id) = enrolled(&fake).await;
    let report = leadflow_nurture::tick(&ports, 10).await.expect("tick");
    assert_eq!((report.sent, report.retry_later), (0, 0), "{report:?}");
    assert_eq!(next_step(&ports, lead_id).await, 1, "a rejected drip is not tried again");
    assert_eq!(fake.requests().len(), 1);
}
