//! Faults on purpose over the whole pipeline on moto (`LEADFLOW_MOTO_ENDPOINT`): the real
//! DynamoDB, SQS, SES v2 and EventBridge adapters, each wrapped in `leadflow_memory::faults`
//! (one call in ten fails, some after doing their work, and one accepted email in twenty is
//! followed by a crash), under the capture router and the stage functions run as Lambda runs
//! them: batches of up to ten really received from each stage queue, under a 10 s invocation
//! deadline, the records the function does not report deleted, a crashed invocation's whole
//! batch left to come back, and after five receives SQS itself moves a record to the
//! dead-letter queue (the template's redrive policy).
//!
//! The functions' clock is a settable one: one second per invocation, and a record delivered
//! again comes back the queue's 60 s visibility timeout after its previous delivery, as on AWS,
//! although moto is asked to hide it for one real second only. Claims' leases (until the
//! invocation's deadline) are read on that clock, so a crashed invocation's claims have expired
//! when its records come back, as they have on AWS.
//!
//! `LEADFLOW_FAULT_LEADS` (default 40) and `LEADFLOW_FAULT_SEED` (default 10) choose the run;
//! `LEADFLOW_FAULT_PER_DEPLOYMENT` splits a long run over several deployments of that many leads
//! each (moto copies the whole table on every `TransactWriteItems`, so one table of 10,000 leads
//! would take hours). `--nocapture` prints the figures (docs/reliability.md), and
//! `LEADFLOW_FAULT_LOG` (a tracing filter such as `warn`) the functions' log lines.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use lambda_http::http::StatusCode;
use leadflow_app::{BatchItem, Deadline, Failure, within};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::lambda::handle_sqs_event;
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::provision::Provisioned;
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::store::DynamoStore;
use leadflow_core::config::CompiledConfig;
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, Stage};
use leadflow_memory::SettableClock;
use leadflow_memory::faults::audit::{self, DeadLetter, Deliveries, Outcome, Person, Planned};
use leadflow_memory::faults::{Driver, Fault, FaultPlan, Faults, Port, Tally, WithFaults};
use serde_json::{Value, json};
use tower::ServiceExt;

type FaultPorts = Adapters<
    WithFaults<DynamoStore>,
    WithFaults<SqsQueue>,
    WithFaults<SesMailer>,
    WithFaults<EventBridgeBus>,
    SettableClock,
>;

/// The stage queues' visibility timeout in template.yaml, on the functions' clock.
const VISIBILITY: Duration = Duration::seconds(60);
/// What moto is asked for: a failed record is back for the next poll a second later.
const MOTO_VISIBILITY_SECONDS: i32 = 1;
/// The functions' timeout in template.yaml (Globals).
const FUNCTION_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const MARGIN: StdDuration = StdDuration::from_secs(1);
const CLIENT_TRIES: u32 = 10;
const CHUNK: usize = 20;
/// Only against a hang: a deployment's run that has not settled by then fails.
const PATIENCE: StdDuration = StdDuration::from_secs(30 * 60);

fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The sample configuration with the tests' routing: anna and ben in EMEA, carla in the
/// Americas, the desk as fallback, all around the clock.
fn config(sender: &str) -> CompiledConfig {
    let mut sources = leadflow_app::config_files::sample();
    let routing = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/config/routing.toml");
    sources.routing = std::fs::read_to_string(routing).expect("tests/config/routing.toml");
    let mut config = CompiledConfig::compile(&sources).expect("the sample with the test routing compiles");
    config.settings.sender.email = sender.to_string();
    config
}

/// One deployment (its own table and queues from template.yaml) and the run over it.
struct Run {
    ports: Arc<FaultPorts>,
    /// Lambda's poller and the test's own reads: not wrapped, never failing.
    sqs: aws_sdk_sqs::Client,
    made: Provisioned,
    faults: Arc<Faults>,
    people: Vec<Person>,
    deliveries: Deliveries,
    /// When each message was last received, on the functions' clock.
    received_at: HashMap<String, DateTime<Utc>>,
    /// The last failure reported for each message, for the dead letters' reasons.
    reasons: HashMap<String, String>,
    /// Every delivery, in order: what a failed audit prints for the leads it names.
    journal: Vec<Delivered>,
}

/// One record handed to a stage function, and what became of it.
struct Delivered {
    at: DateTime<Utc>,
    stage: Stage,
    message_id: String,
    receive_count: u32,
    lead_id: String,
    outcome: String,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} lead {} message {} receive {}: {}",
            self.at.format("%H:%M:%S"),
            self.stage.as_str(),
            self.lead_id,
            self.message_id,
            self.receive_count,
            self.outcome
        )
    }
}

struct Report {
    outcome: Outcome,
    /// After the faults stopped and every dead letter was sent back to its queue once.
    after_redrive: Outcome,
    tally: Tally,
    deliveries: Deliveries,
    /// Messages moto's SES holds from the deployments' senders.
    ses_messages: u64,
    dead: Vec<DeadLetter>,
    journal: Vec<Delivered>,
}

impl Report {
    /// The deliveries of every lead the audits name in a problem, for the failure's message.
    fn history_of_problems(&self) -> String {
        let named = |d: &Delivered| {
            self.outcome.problems.iter().chain(&self.after_redrive.problems).any(|p| p.contains(&d.lead_id))
        };
        let lines: Vec<String> = self.journal.iter().filter(|d| named(d)).map(ToString::to_string).collect();
        let dead: Vec<String> = self.dead.iter().map(|d| format!("{}: {}", d.stage.as_str(), d.body)).collect();
        format!("deliveries of the leads named:\n{}\ndead letters:\n{}", lines.join("\n"), dead.join("\n"))
    }
}

impl Run {
    async fn new(plan: FaultPlan, people: Vec<Person>) -> Self {
        let sdk = common::sdk_config().await;
        let made = common::deployment(&sdk, "faults").await;
        let sender = common::verified_sender(&sdk, "faults").await;
        let faults = Faults::new(plan);
        let ports = Arc::new(Adapters {
            store: faults.wrap(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &made.table)),
            queue: faults.wrap(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), made.stage_urls.clone())),
            mailer: faults.wrap(SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), None)),
            bus: faults.wrap(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), "default")),
            clock: SettableClock::at(monday()),
            config: ConfigHandle::new(config(&sender)),
        });
        Self {
            ports,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            made,
            faults,
            people,
            deliveries: Deliveries::default(),
            received_at: HashMap::new(),
            reasons: HashMap::new(),
            journal: Vec::new(),
        }
    }

    async fn capture(&mut self, planned: &Planned) {
        for _ in 0..CLIENT_TRIES {
            self.deliveries.posts += 1;
            self.ports.clock.advance(Duration::milliseconds(10));
            let request = lambda_http::http::Request::builder()
                .method("POST")
                .uri("/leads")
                .header("content-type", "application/json")
                .header("idempotency-key", &planned.key)
                .body(lambda_http::Body::from(planned.body.to_string()))
                .expect("a request");
            let response =
                leadflow_capture::router(Arc::clone(&self.ports)).oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response.into_body().collect().await.expect("a body").to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match status {
                StatusCode::ACCEPTED => {
                    let id = body["lead_id"].as_str().and_then(|s| s.parse().ok()).expect("202 with a lead id");
                    self.people[planned.person].accepted.insert(id);
                    return;
                }
                StatusCode::SERVICE_UNAVAILABLE => self.deliveries.posts_unavailable += 1,
                other => panic!("capture answered {other} to a good submission: {body}"),
            }
        }
        self.deliveries.given_up += 1;
    }

    async fn held(&self, url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes");
        let attrs = out.attributes().cloned().unwrap_or_default();
        let n = |name| attrs.get(&name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    /// Takes every message out of `stage`'s dead-letter queue, as a redrive does.
    async fn take_dead_letters(&self, stage: Stage) -> Vec<DeadLetter> {
        let url = self.made.dlq_urls.url(stage);
        let mut dead = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .send()
                .await
                .expect("ReceiveMessage (DLQ)");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return dead;
            }
            for m in messages {
                let reason = m.message_id().and_then(|id| self.reasons.get(id)).cloned();
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("DeleteMessage");
                }
                dead.push(DeadLetter { stage, body: m.body.unwrap_or_default(), reason });
            }
        }
    }

    async fn all_dead_letters(&self) -> Vec<DeadLetter> {
        let mut dead = Vec::new();
        for stage in Stage::ALL {
            dead.extend(self.take_dead_letters(stage).await);
        }
        dead
    }

    /// Until every stage queue is empty: failed records come back a second after their receive.
    async fn settle(&mut self, started: Instant) {
        loop {
            self.pump().await;
            let mut held = 0;
            for stage in Stage::ALL {
                held += self.held(self.made.stage_urls.url(stage)).await;
            }
            if held == 0 {
                return;
            }
            assert!(started.elapsed() < PATIENCE, "{held} message(s) still on the stage queues after {PATIENCE:?}");
            tokio::time::sleep(StdDuration::from_millis(250)).await;
        }
    }

    async fn audit(&self, dead: &[DeadLetter]) -> Outcome {
        audit::audit(self.ports.store.inner(), &self.people, dead, &self.faults)
            .await
            .expect("the audit reads the table")
    }

    async fn run(mut self, planned: &[Planned]) -> Report {
        let started = Instant::now();
        for chunk in planned.chunks(CHUNK) {
            for p in chunk {
                self.capture(p).await;
            }
            self.pump().await;
        }
        self.settle(started).await;
        let dead = self.all_dead_letters().await;
        let outcome = self.audit(&dead).await;
        let tally = self.faults.tally();
        let deliveries = self.deliveries.clone();

        // The outage ends; an operator sends every dead letter back to its queue once.
        self.faults.calm_down();
        for d in &dead {
            let url = self.made.stage_urls.url(d.stage);
            self.sqs.send_message().queue_url(url).message_body(&d.body).send().await.expect("SendMessage (redrive)");
        }
        self.settle(started).await;
        let still_dead = self.all_dead_letters().await;
        let after_redrive = self.audit(&still_dead).await;
        self.remove().await;
        let journal = std::mem::take(&mut self.journal);
        Report { outcome, after_redrive, tally, deliveries, ses_messages: 0, dead, journal }
    }

    /// Deletes the deployment's table and queues: moto answers every later test's data.json
    /// by walking all it holds, and a run leaves thousands of items.
    async fn remove(&self) {
        let sdk = common::sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        dynamodb.delete_table().table_name(&self.made.table).send().await.expect("DeleteTable");
        for url in self.made.queues.values() {
            self.sqs.delete_queue().queue_url(url).send().await.expect("DeleteQueue");
        }
    }
}

/// The event Lambda hands the function, in Lambda's JSON shape.
fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let records = common::lambda_sqs_records(messages, None);
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

/// Messages moto's SES recorded from senders whose address starts with `faults-`.
async fn ses_messages() -> u64 {
    let read = common::moto_data_until(std::time::Duration::from_secs(4), |data| {
        Some(
            common::ses_raw_messages(data)
                .filter(|m| m["source"].as_str().is_some_and(|s| s.contains("faults-")))
                .count(),
        )
    });
    read.await.unwrap_or_else(|last| panic!("moto's data.json could not be read: {last}")) as u64
}

/// `leads` leads over deployments of `per_deployment` each, seeds `seed`, `seed + 1`, …
async fn run(leads: usize, per_deployment: usize, seed: u64) -> Report {
    let before = ses_messages().await;
    let mut total = Report {
        outcome: Outcome::default(),
        after_redrive: Outcome::default(),
        tally: Tally::default(),
        deliveries: Deliveries::default(),
        ses_messages: 0,
        dead: Vec::new(),
        journal: Vec::new(),
    };
    let per_deployment = per_deployment.max(1);
    for (k, first) in (0..leads).step_by(per_deployment).enumerate() {
        let n = per_deployment.min(leads - first);
        let (people, planned) = audit::plan(first, n);
        let started = Instant::now();
        let r = Run::new(FaultPlan::one_in_ten(seed + k as u64), people).await.run(&planned).await;
        eprintln!("deployment {k}: {n} leads in {:.0?}; {} problem(s)", started.elapsed(), r.outcome.problems.len());
        total.outcome.add(&r.outcome);
        total.after_redrive.add(&r.after_redrive);
        total.tally.add(&r.tally);
        total.deliveries.add(&r.deliveries);
        total.dead.extend(r.dead);
        total.journal.extend(r.journal);
    }
    total.ses_messages = ses_messages().await - before;
    total
}

#[tokio::test]
async fn leads_through_one_fault_in_ten_on_the_aws_adapters() {
    let leads = env_or("LEADFLOW_FAULT_LEADS", 40);
    let per_deployment = env_or("LEADFLOW_FAULT_PER_DEPLOYMENT", leads);
    let seed = env_or("LEADFLOW_FAULT_SEED", 10);
    if let Ok(filter) = std::env::var("LEADFLOW_FAULT_LOG") {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = leadflow_aws::lambda::log_filter(Some(&filter), None);
        let _ = tracing_subscriber::fmt().with_test_writer().finish().with(filter).try_init();
    }
    let started = Instant::now();
    let r = run(leads, per_deployment, seed).await;
    let o = &r.outcome;
    println!(
        "\n{leads} leads in deployments of {per_deployment}, seed {seed}, AWS adapters on moto, {:.0?}\n\n{}\n{}\n{}",
        started.elapsed(),
        r.tally,
        r.deliveries,
        o
    );
    println!("after the outage, every dead letter redriven once:\n{}", r.after_redrive);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for d in &r.dead {
        let reason = d.reason.clone().unwrap_or_else(|| "no reason: every invocation that received it died".into());
        let kind: String = reason.split(':').take(2).collect::<Vec<_>>().join(":");
        *reasons.entry(format!("{} — {kind}", d.stage.as_str())).or_insert(0) += 1;
    }
    for (reason, n) in reasons {
        println!("dead letters: {n} × {reason}");
    }

    assert!(o.problems.is_empty(), "{o}\n{}", r.history_of_problems());
    assert_eq!(o.people, leads);
    let answered = leads - r.deliveries.given_up as usize;
    assert_eq!(o.assigned + o.enrolled + o.in_dlq_total(), answered, "every answered person is accounted for: {o}");
    assert_eq!(o.emails.outside_window + o.events.outside_window, 0, "{o}");
    // What SES has is what the mailer was answered for, repeats included.
    assert_eq!(r.ses_messages, r.after_redrive.emails.accepted, "{}", r.after_redrive);
    for port in Port::ALL {
        assert!(r.tally.faults(port, Fault::Failed) > 0, "no failed {} call:\n{}", port.as_str(), r.tally);
    }
    for fault in [Fault::TimedOut, Fault::CrashAfterSend, Fault::AfterCrash] {
        assert!(r.tally.total(fault) > 0, "no {fault:?}:\n{}", r.tally);
    }
    assert!(r.deliveries.crashed > 0 && r.deliveries.redeliveries > 0, "{}", r.deliveries);
    // Nothing in a dead-letter queue was lost: redriven once the faults stop, every lead is done.
    let after = &r.after_redrive;
    assert!(after.problems.is_empty(), "after the redrive: {after}\n{}", r.history_of_problems());
    assert_eq!((after.assigned + after.enrolled, after.in_dlq_total()), (answered, 0), "after the redrive: {after}");
}

impl Driver for Run {
    /// One poll of `stage`'s queue and one invocation on what it found; `false` when nothing.
    async fn invoke(&mut self, stage: Stage) -> bool {
        let url = self.made.stage_urls.url(stage).to_string();
        let received = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(MOTO_VISIBILITY_SECONDS)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return false;
        }
        // The functions' clock: a second per invocation, and a record delivered again no sooner
        // than the visibility timeout after its last delivery.
        let mut now = self.ports.clock.now() + Duration::seconds(1);
        for m in &messages {
            if let Some(before) = m.message_id().and_then(|id| self.received_at.get(id)) {
                now = now.max(*before + VISIBILITY);
            }
        }
        self.ports.clock.set(now);
        for m in &messages {
            if let Some(id) = m.message_id() {
                self.received_at.insert(id.to_string(), now);
            }
        }
        let receive_count = |m: &aws_sdk_sqs::types::Message| {
            m.attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(1)
        };
        self.deliveries.invocations += 1;
        self.deliveries.records += messages.len() as u64;
        self.deliveries.redeliveries += messages.iter().filter(|m| receive_count(m) > 1).count() as u64;

        let ports = &*self.ports;
        let reported: Mutex<Vec<Failure>> = Mutex::default();
        let function = |items: Vec<BatchItem>| {
            let reported = &reported;
            async move {
                // Boxed, as run_sqs_stage does on Lambda: the handlers' futures over SDK clients are
                // large, and a test thread's stack is smaller than a Lambda's.
                let failed = match stage {
                    Stage::Validate => Box::pin(leadflow_validate::handle_batch(ports, items)).await,
                    Stage::Score => Box::pin(leadflow_score::handle_batch(ports, items)).await,
                    Stage::Route => Box::pin(leadflow_route::handle_batch(ports, items)).await,
                };
                reported.lock().expect("reported").extend(failed.iter().cloned());
                failed
            }
        };
        let event = sqs_event(&messages);
        let deadline = Deadline::invocation(SystemTime::now() + FUNCTION_TIMEOUT, MARGIN);
        let response = within(deadline, handle_sqs_event(&function, &event, None)).await.expect("a batch response");
        let crashed = self.faults.revive();
        let reported = reported.into_inner().expect("reported");
        for m in &messages {
            let id = m.message_id().unwrap_or_default();
            let given_back = response.batch_item_failures.iter().any(|f| f.item_identifier == id);
            let reason = reported.iter().find(|f| f.id == id).map_or("", |f| f.reason.as_str());
            let outcome = if crashed {
                "the invocation crashed".to_string()
            } else if given_back {
                format!("given back: {reason}")
            } else {
                "deleted".to_string()
            };
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap_or(Value::Null);
            self.journal.push(Delivered {
                at: now,
                stage,
                message_id: id.to_string(),
                receive_count: receive_count(m),
                lead_id: body["lead_id"].as_str().unwrap_or("?").to_string(),
                outcome,
            });
        }
        if crashed {
            // The invocation died: nothing is deleted, the whole batch comes back.
            self.deliveries.crashed += 1;
            for id in messages.iter().filter_map(|m| m.message_id()) {
                self.reasons.insert(id.to_string(), "the invocation crashed after a send".into());
            }
            return true;
        }
        for f in reported {
            self.reasons.insert(f.id, f.reason);
        }
        let failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        self.deliveries.failed += failed.len() as u64;
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let (Some(id), Some(handle)) = (m.message_id(), m.receipt_handle()) else { continue };
            if failed.iter().any(|f| f == id) {
                continue;
            }
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("entry"),
            );
        }
        if !entries.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("DeleteMessageBatch");
            assert!(out.failed().is_empty(), "DeleteMessageBatch failed for {:?}", out.failed());
        }
        true
    }
}
