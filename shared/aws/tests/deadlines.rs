//! The functions keep to their time on AWS (issue 9, finding 8), without moto:
//!
//! - an SQS batch under the invocation's deadline starts no record that would not end before
//!   it: those are answered as `batchItemFailures`, untouched, and the redelivery handles them,
//!   each assignment email going out once;
//! - a claim taken under the deadline is leased until it (and [`LEASE_SKEW`]), not for minutes;
//! - every AWS call gives up after the SDK timeouts, a hung DynamoDB attempt is retried and a
//!   hung SES send is not (SES would send a repeated `SendEmail` twice);
//! - nurture's pace comes from SES's `GetAccount`, and a safe one when it cannot be read.
//!
//! These run on the real clock with margins wide enough for a loaded machine.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use leadflow_app::{Deadline, EFFECT_LEASE, LEASE_SKEW, NOT_STARTED, lease_until, within};
use leadflow_aws::lambda::{
    BATCH_MARGIN, SystemClock, handle_sqs_event, sdk_config, sdk_timeouts, ses_client, ses_timeouts,
};
use leadflow_aws::mailer::SesMailer;
use leadflow_core::config::CompiledConfig;
use leadflow_core::error::MailError;
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{ActivityKind, LeadId};
use leadflow_core::ports::{Adapters, ConfigHandle, CreateOutcome, EffectClaim, Mailer, OutgoingEmail};
use leadflow_core::ports::{Effects, Leads, Trails};
use leadflow_memory::fixtures::{lead, outgoing_email, owned_by};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus};
use leadflow_nurture::pace::{Pacer, drip_rate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "deadlines-test-unsubscribe-secret-0123456789abcdef";

/// A mailer that takes `delay` per email and records each key it was given.
struct SlowMailer {
    delay: Duration,
    keys: Mutex<Vec<String>>,
}

impl Mailer for SlowMailer {
    async fn send(&self, email: &OutgoingEmail, _now: DateTime<Utc>) -> Result<String, MailError> {
        tokio::time::sleep(self.delay).await;
        self.keys.lock().expect("keys").push(email.key.clone());
        Ok(format!("msg-{}", email.key))
    }
}

type Ports = Adapters<MemoryStore, MemoryQueue, SlowMailer, RecordingBus, SystemClock>;

fn ports(delay: Duration) -> Ports {
    let mut config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
    config.settings.signing_keys = SECRET.into();
    Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: SlowMailer { delay, keys: Mutex::new(Vec::new()) },
        bus: RecordingBus::new(),
        clock: SystemClock,
        config: ConfigHandle::new(config),
    }
}

fn sqs_event(records: &[(String, LeadId)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, lead_id) in records {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.clone());
        message.body = Some(serde_json::to_string(&RouteMessage::route(*lead_id)).expect("json"));
        event.records.push(message);
    }
    event
}

async fn assignment_emails_on_trail(ports: &Ports, lead_id: LeadId) -> usize {
    let trail = ports.store.activities(lead_id).await.expect("trail");
    trail
        .iter()
        .filter(|a| matches!(&a.kind, ActivityKind::EmailSent { email, .. } if email.starts_with("assignment-")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_before_the_deadline_and_the_records_it_did_not_start_come_back() {
    // Ten records of 250 ms each against 2.6 s left and the glue's 1 s margin: about six fit.
    let ports = ports(Duration::from_millis(250));
    let mut records = Vec::new();
    for n in 1..=10u64 {
        let lead = owned_by(lead(n, &format!("buyer{n}@analytical-engines.example")), "anna");
        assert_eq!(ports.store.create_lead(&lead, &[]).await.expect("create"), CreateOutcome::Created);
        records.push((format!("m-{n}"), lead.id));
    }
    let handler = |items| leadflow_route::handle_batch(&ports, items);

    let deadline = SystemTime::now() + Duration::from_millis(2_600);
    let started = Instant::now();
    let response =
        within(Deadline::invocation(deadline, BATCH_MARGIN), handle_sqs_event(&handler, &sqs_event(&records), None))
            .await
            .expect("a batch response");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2_600), "the batch answered after its deadline: {took:?}");

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert!(!failed.is_empty() && failed.len() < 10, "some records fit, some did not: {failed:?}");
    // The records given back are the last ones, untouched: no email, nothing on the trail.
    let done = 10 - failed.len();
    let expected: Vec<String> = (done + 1..=10).map(|n| format!("m-{n}")).collect();
    assert_eq!(failed, expected.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, (_, lead_id)) in records.iter().enumerate() {
        let emails = assignment_emails_on_trail(&ports, *lead_id).await;
        assert_eq!(emails, usize::from(i < done), "record {}", i + 1);
    }
    assert_eq!(ports.mailer.keys.lock().expect("keys").len(), done);

    // SQS delivers the failed ones again: each is handled, and no email goes out twice.
    let again: Vec<(String, LeadId)> = records[done..].to_vec();
    let response = handle_sqs_event(&handler, &sqs_event(&again), None).await.expect("a batch response");
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    let keys = ports.mailer.keys.lock().expect("keys").clone();
    assert_eq!(keys.len(), 10, "{keys:?}");
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "an assignment email went out twice: {keys:?}");
    for (_, lead_id) in &records {
        assert_eq!(assignment_emails_on_trail(&ports, *lead_id).await, 1);
    }
}

#[tokio::test]
async fn a_batch_with_no_time_left_starts_nothing() {
    let ports = ports(Duration::ZERO);
    let lead = owned_by(lead(1, "buyer@analytical-engines.example"), "anna");
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let handler = |items| leadflow_route::handle_batch(&ports, items);
    let past = SystemTime::now() - Duration::from_secs(1);
    let event = sqs_event(&[("m-1".to_string(), lead.id)]);
    let response = within(Deadline::invocation(past, BATCH_MARGIN), handle_sqs_event(&handler, &event, None))
        .await
        .expect("answer");
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(ports.mailer.keys.lock().expect("keys").is_empty());
    assert_eq!(assignment_emails_on_trail(&ports, lead.id).await, 0);
    // Reported as not started, for the logs: leadflow_app::process_batch says so.
    let failures = within(
        Deadline::invocation(past, BATCH_MARGIN),
        leadflow_route::handle_batch(
            &ports,
            vec![leadflow_app::BatchItem { id: "m-1".into(), body: event.records[0].body.clone().unwrap_or_default() }],
        ),
    )
    .await;
    assert_eq!(failures.iter().map(|f| f.reason.as_str()).collect::<Vec<_>>(), [NOT_STARTED]);
}

#[tokio::test]
async fn claims_under_an_invocation_are_leased_until_its_deadline_only() {
    let store = MemoryStore::new();
    let now = Utc::now();
    let timeout = Duration::from_secs(10);
    let lease =
        within(Deadline::invocation(SystemTime::now() + timeout, BATCH_MARGIN), async { lease_until(now) }).await;
    let length = (lease - now).to_std().expect("a lease in the future");
    assert!(length <= timeout + LEASE_SKEW && length > timeout, "{length:?}");
    // Without an invocation (or under a mere budget) the long default stays.
    assert_eq!(lease_until(now) - now, EFFECT_LEASE);
    let budget = within(Deadline::budget(timeout, Duration::ZERO), async { lease_until(now) }).await;
    assert_eq!(budget - now, EFFECT_LEASE);

    // A claim of an invocation that died is free once its deadline and the skew have passed.
    assert_eq!(
        store.claim_effect(LeadId::from_parts(1, 1), "email:k", now, lease).await.expect("claim"),
        EffectClaim::Claimed
    );
    assert_eq!(
        store
            .claim_effect(LeadId::from_parts(1, 1), "email:k", now + chrono::Duration::seconds(11), now)
            .await
            .expect("claim"),
        EffectClaim::Busy
    );
    let after = lease + chrono::Duration::milliseconds(1);
    assert_eq!(
        store.claim_effect(LeadId::from_parts(1, 1), "email:k", after, after).await.expect("claim"),
        EffectClaim::Claimed
    );
}

// ------------------------------------------------------------------------ SDK timeouts

/// A server that accepts connections and reads requests but never answers; counts requests.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let mut seen = Vec::new();
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            seen.extend_from_slice(&buf[..n]);
                            // One request head per attempt (each attempt opens its own connection
                            // once the last one hung).
                            while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                                counted.fetch_add(1, Ordering::SeqCst);
                                seen.drain(..end + 4);
                            }
                        }
                    }
                }
            });
        }
    });
    (endpoint, requests)
}

async fn config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(leadflow_aws::https::https_client())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .timeout_config(sdk_timeouts())
        .load()
        .await
}

#[tokio::test]
async fn the_functions_sdk_configuration_carries_the_timeouts() {
    let sdk = sdk_config().await;
    assert_eq!(sdk.timeout_config(), Some(&sdk_timeouts()));
    let ses = ses_client(&sdk);
    assert_eq!(ses.config().timeout_config(), Some(&ses_timeouts()));
    let op = |t: &aws_config::timeout::TimeoutConfig| t.operation_timeout();
    assert_eq!(op(&sdk_timeouts()), op(&ses_timeouts()), "SES gives up as soon as the rest");
    assert!(ses_timeouts().operation_attempt_timeout().is_none(), "no SES attempt is abandoned and sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_fails_after_the_operation_timeout_and_only_a_table_call_is_tried_again() {
    let limit = sdk_timeouts().operation_timeout().expect("an operation timeout");
    let attempt = sdk_timeouts().operation_attempt_timeout().expect("an attempt timeout");

    let (table_endpoint, table_requests) = black_hole().await;
    let (ses_endpoint, ses_requests) = black_hole().await;
    let table = aws_sdk_dynamodb::Client::new(&config_for(&table_endpoint).await);
    let mailer = SesMailer::new(ses_client(&config_for(&ses_endpoint).await), None);
    let email = outgoing_email("assignment-1");

    let started = Instant::now();
    let (read, sent) = tokio::join!(
        async {
            let r = table
                .get_item()
                .table_name("t")
                .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
                .send()
                .await;
            (r.is_err(), started.elapsed())
        },
        async {
            let r = mailer.send(&email, Utc::now()).await;
            (r, started.elapsed())
        },
    );
    let (read_failed, read_took) = read;
    let (sent, send_took) = sent;
    assert!(read_failed, "a table call to a server that never answers fails");
    assert!(matches!(sent, Err(MailError::Unavailable(_))), "{sent:?}");
    for (what, took) in [("table", read_took), ("SES", send_took)] {
        assert!(took >= limit - Duration::from_millis(200), "{what}: gave up after {took:?}, before {limit:?}");
        assert!(took < limit + Duration::from_secs(2), "{what}: gave up only after {took:?}");
    }
    let table_tries = table_requests.load(Ordering::SeqCst);
    assert!(table_tries >= 2, "a hung table attempt is abandoned after {attempt:?} and tried again: {table_tries}");
    assert_eq!(ses_requests.load(Ordering::SeqCst), 1, "a hung SES send is not sent again");
}

// ------------------------------------------------------------------------ SES send rate

/// An SES endpoint answering `GetAccount` with `body` and `status`.
async fn fake_account(status: u16, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&seen).to_string();
                let (status, body) = if head.starts_with("GET /v2/email/account ") {
                    (status, body)
                } else {
                    (404, r#"{"message":"no"}"#)
                };
                let error =
                    if status == 200 { String::new() } else { "x-amzn-ErrorType: AccessDeniedException\r\n".into() };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{error}\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    endpoint
}

#[tokio::test]
async fn the_drips_pace_comes_from_the_accounts_send_rate_or_a_safe_one() {
    let account = r#"{"SendQuota":{"Max24HourSend":50000.0,"MaxSendRate":14.0,"SentLast24Hours":12.0},"SendingEnabled":true,"ProductionAccessEnabled":true}"#;
    let endpoint = fake_account(200, account).await;
    let mailer = SesMailer::new(ses_client(&config_for(&endpoint).await), None);
    let rate = mailer.max_send_rate().await.expect("the account's rate");
    assert_eq!(rate, 14.0);
    assert_eq!(Pacer::for_drips(Some(rate)).interval(), Duration::from_secs_f64(1.0 / drip_rate(Some(14.0))));

    // No permission (or no answer): an error that says what was asked, and the safe pace.
    let endpoint = fake_account(403, r#"{"message":"not authorized to perform ses:GetAccount"}"#).await;
    let mailer = SesMailer::new(ses_client(&config_for(&endpoint).await), None);
    let err = mailer.max_send_rate().await.expect_err("no rate without the permission");
    assert!(matches!(&err, MailError::Unavailable(m) if m.contains("send rate")), "{err}");
    assert_eq!(Pacer::for_drips(None).interval(), Duration::from_secs(2));

    // An account without a quota in the answer is no rate either.
    let endpoint = fake_account(200, r#"{"SendingEnabled":true}"#).await;
    let mailer = SesMailer::new(ses_client(&config_for(&endpoint).await), None);
    assert!(mailer.max_send_rate().await.is_err());
}
