//! The nurture scheduler on moto (`LEADFLOW_MOTO_ENDPOINT`): two ticks racing over the same due
//! drip steps, through the real DynamoDB and SES v2 APIs, as two overlapping scheduler
//! invocations would. Each step goes out once, through SES, and each enrollment moves on once.
//!
//! The test provisions its own table and queues from template.yaml under a unique prefix and
//! verifies its own sender, so it shares a moto with the other suites; it counts the messages
//! moto's SES recorded from that sender (`GET /moto-api/data.json`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::store::DynamoStore;
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{ActivityKind, EnrollmentState, LeadId};
use leadflow_core::ports::{Adapters, ConfigHandle, CreateOutcome};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_memory::SettableClock;
use leadflow_nurture::{TICK_LIMIT, TickReport};
use serde_json::Value;
use tokio::sync::Barrier;

type NurturePorts = Adapters<DynamoStore, SqsQueue, SesMailer, EventBridgeBus, SettableClock>;

/// How many leads are enrolled.
const LEADS: u64 = 10;
/// The sample campaign (shared/app/config/campaigns/welcome.toml), version 1.
const CAMPAIGN: &str = "welcome";
/// Its steps in order: id, the subject the fixture lead (first name Ada) gets, and the wait
/// before the step (after the previous one).
const STEPS: [(&str, &str, i64); 3] = [
    ("hello", "Welcome, Ada", 0),
    ("case-study", "How Globex doubled its pipeline", 2),
    ("demo", "Want a 20-minute demo?", 3),
];
const SECRET: &str = "nurture-race-on-moto-unsubscribe-secret-0123456789";
/// How long reading moto's record may take before the test fails.
const PATIENCE: StdDuration = StdDuration::from_secs(20);

/// The nurture function's ports on moto, with a clock the test moves, and the enrolled leads.
struct Drip {
    ports: Arc<NurturePorts>,
    /// The verified sender, unique to this test: moto's SES record is filtered by it.
    sender: String,
    /// When the leads were enrolled, their first step due.
    start: DateTime<Utc>,
    /// Each lead and its address.
    leads: Vec<(LeadId, String)>,
    /// The operations the store's DynamoDB client sent.
    requests: common::Requests,
}

impl Drip {
    async fn new() -> Self {
        let sdk = common::sdk_config().await;
        let made = common::deployment(&sdk, "nurture").await;
        let sender = common::verified_sender(&sdk, "nurture").await;

        let mut config =
            CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
        config.settings.sender.email = sender.clone();
        config.settings.signing_keys = SECRET.into();
        assert!(config.campaign(CAMPAIGN).is_some(), "the sample has the {CAMPAIGN} campaign");

        let start = Utc::now().trunc_subsecs(0);
        let requests =
            common::Requests::new(|request| Some(common::target_operation(request).unwrap_or_else(|| "?".into())));
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(requests.clone()).build();
        let ports: NurturePorts = Adapters {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), &made.table),
            queue: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), made.stage_urls.clone()),
            mailer: SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), None),
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), "default"),
            clock: SettableClock::at(start),
            config: ConfigHandle::new(config),
        };

        let mut leads = Vec::new();
        for n in 1..=LEADS {
            let email = format!("reader{n}@analytical-engines.example");
            let lead = common::lead(n, &email);
            assert_eq!(ports.store.create_lead(&lead, &[]).await.expect("create lead"), CreateOutcome::Created);
            let mut enrollment = common::enrollment(n, CAMPAIGN, Some(start), EnrollmentState::Active);
            enrollment.enrolled_at = start;
            assert!(ports.store.enroll(&enrollment, &[]).await.expect("enroll"), "lead {n} enrolled once");
            leads.push((lead.id, email));
        }
        Self { ports: Arc::new(ports), sender, start, leads, requests }
    }

    /// Two ticks at once, each on its own task of the multi-threaded runtime, released together.
    /// Both must succeed.
    async fn race(&self) -> [TickReport; 2] {
        let barrier = Arc::new(Barrier::new(2));
        let run = || {
            let ports = Arc::clone(&self.ports);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                leadflow_nurture::tick(&*ports, TICK_LIMIT).await
            })
        };
        let (first, second) = tokio::join!(run(), run());
        let first = first.expect("the first tick's task").expect("the first tick succeeds");
        let second = second.expect("the second tick's task").expect("the second tick succeeds");
        [first, second]
    }

    /// The DynamoDB operations sent since the last call, counted.
    fn dynamodb_requests(&self) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for operation in self.requests.take() {
            *counts.entry(operation).or_default() += 1;
        }
        counts
    }

    /// Checks what the first `steps` steps left behind: one message per lead and step at SES,
    /// one `EmailSent` per lead and step on the trail, and each enrollment moved on once per
    /// step.
    async fn assert_sent_once(&self, steps: usize) {
        let sent = self.messages_at_ses().await;
        assert_eq!(
            sent.len(),
            self.leads.len() * steps,
            "messages SES sent from {} after {steps} step(s): {:#?}",
            self.sender,
            sent.iter().map(|m| (&m.message_id, &m.destinations)).collect::<Vec<_>>()
        );
        // Each message by the key it was sent under (its Message-ID names it).
        let mut by_id: BTreeMap<&str, Vec<&SesMessage>> = BTreeMap::new();
        for message in &sent {
            by_id.entry(message.message_id.as_str()).or_default().push(message);
        }

        for (lead_id, address) in &self.leads {
            let trail = self.ports.store.activities(*lead_id).await.expect("activities");
            let mut emails: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for activity in &trail {
                if let ActivityKind::EmailSent { email, message_id, .. } = &activity.kind {
                    emails.entry(email.clone()).or_default().push(message_id.clone());
                }
            }
            let expected_keys: Vec<String> =
                STEPS[..steps].iter().map(|(step, _, _)| format!("drip-{lead_id}-{CAMPAIGN}-v1-{step}")).collect();
            let mut keys: Vec<&String> = emails.keys().collect();
            keys.sort();
            let mut wanted: Vec<&String> = expected_keys.iter().collect();
            wanted.sort();
            assert_eq!(keys, wanted, "the emails on lead {lead_id}'s trail after {steps} step(s)");

            for ((step, subject, _), key) in STEPS[..steps].iter().zip(&expected_keys) {
                let ses_ids = &emails[key];
                assert_eq!(ses_ids.len(), 1, "EmailSent activities for step {step} of lead {lead_id}: {ses_ids:?}");
                let messages = by_id.get(SesMailer::message_id_for(key).as_str()).cloned().unwrap_or_default();
                assert_eq!(messages.len(), 1, "messages at SES for step {step} of lead {lead_id}");
                let message = messages[0];
                // moto lists the envelope's recipients and the MIME `To` header's: all of them
                // must be the lead, by bare address.
                assert_eq!(message.recipients(), [address.as_str()], "step {step} of lead {lead_id}");
                assert_eq!(message.subject, *subject, "step {step} of lead {lead_id}");
                assert!(
                    message.raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
                    "step {step} of lead {lead_id} without one-click unsubscribe:\n{}",
                    message.raw
                );
                assert_eq!(
                    ses_ids[0], message.ses_id,
                    "the trail names the message SES accepted for step {step} of lead {lead_id}"
                );
            }

            let enrollments = self.ports.store.enrollments(*lead_id).await.expect("enrollments");
            assert_eq!(enrollments.len(), 1, "lead {lead_id}: {enrollments:?}");
            let enrollment = &enrollments[0];
            let next_wait: i64 = STEPS.get(steps).map_or(0, |(_, _, days)| *days);
            let waited: i64 = STEPS[..steps].iter().map(|(_, _, days)| days).sum();
            assert_eq!(enrollment.campaign_id, CAMPAIGN);
            assert_eq!(enrollment.state, EnrollmentState::Active, "lead {lead_id}");
            assert_eq!(enrollment.next_step, steps as u32, "lead {lead_id}: the next step");
            assert_eq!(
                enrollment.next_due_at,
                Some(self.start + Duration::days(waited + next_wait)),
                "lead {lead_id}: when the next step is due"
            );
            // Every successful write adds one to the version: one write per step, no more.
            assert_eq!(enrollment.version, steps as u64, "lead {lead_id}: writes to the enrollment");
        }
    }

    /// Every message moto's SES recorded from this test's sender. All were sent before the ticks
    /// returned, so one good read is the whole record.
    async fn messages_at_ses(&self) -> Vec<SesMessage> {
        let read = common::moto_data_until(PATIENCE, |data| {
            let ours = |kind: &str| -> Vec<Value> {
                data["ses"][kind]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(&self.sender)))
                    .cloned()
                    .collect()
            };
            // Drip emails go out as raw MIME only: nothing may hide among the simple ones.
            assert_eq!(ours("Message"), Vec::<Value>::new(), "simple (non-raw) messages from {}", self.sender);
            Some(ours("RawMessage").iter().map(SesMessage::from_moto).collect())
        });
        read.await.unwrap_or_else(|last| panic!("moto's SES record could not be read: {last}"))
    }
}

/// A raw message as moto's SES recorded it.
struct SesMessage {
    /// The id SES answered the send with.
    ses_id: String,
    destinations: Vec<String>,
    /// The `Message-ID` header, without angle brackets.
    message_id: String,
    subject: String,
    raw: String,
}

impl SesMessage {
    /// The distinct bare addresses among the destinations (`Name <a@b>` counts as `a@b`).
    fn recipients(&self) -> Vec<&str> {
        let mut addresses: Vec<&str> = self
            .destinations
            .iter()
            .map(|d| match (d.rfind('<'), d.rfind('>')) {
                (Some(open), Some(close)) if open < close => &d[open + 1..close],
                _ => d.trim(),
            })
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        addresses
    }

    fn from_moto(m: &Value) -> Self {
        let raw = m["raw_data"].as_str().expect("raw_data: drip emails are sent as raw MIME").to_string();
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
        Self {
            ses_id: m["id"].as_str().expect("the SES message id").to_string(),
            destinations: m["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            message_id: parsed.message_id().unwrap_or_default().to_string(),
            subject: parsed.subject().unwrap_or_default().to_string(),
            raw,
        }
    }
}

fn total(reports: &[TickReport; 2], count: impl Fn(&TickReport) -> usize) -> usize {
    reports.iter().map(count).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ticks_racing_over_the_same_due_steps_send_each_step_once_and_advance_each_enrollment_once() {
    let drip = Drip::new().await;
    let leads = drip.leads.len();

    // The first step of every enrollment is due now: both ticks go for all ten.
    let reports = drip.race().await;
    println!("first step, the two ticks: {reports:#?}");
    assert!(
        total(&reports, |r| r.due) > leads,
        "the ticks did not overlap (no step was found due by both): {reports:#?}"
    );
    assert_eq!(total(&reports, |r| r.sent), leads, "steps sent by the two ticks together: {reports:#?}");
    assert_eq!(total(&reports, |r| r.stopped + r.completed), 0, "{reports:#?}");
    drip.assert_sent_once(1).await;

    // Two days on the second step falls due; the ticks race again.
    drip.ports.clock.advance(Duration::days(STEPS[1].2));
    let reports = drip.race().await;
    println!("second step, the two ticks: {reports:#?}");
    assert!(total(&reports, |r| r.due) > leads, "the ticks did not overlap: {reports:#?}");
    assert_eq!(total(&reports, |r| r.sent), leads, "steps sent by the two ticks together: {reports:#?}");
    assert_eq!(total(&reports, |r| r.stopped + r.completed), 0, "{reports:#?}");
    drip.assert_sent_once(2).await;
}

/// DynamoDB requests per drip step (issue 10 asks for the figure; docs/performance.md, section
/// 3): a tick with nothing due, then one over the ten due first steps. Exact totals, like the
/// pipeline's count, so a change is always on purpose.
#[tokio::test]
async fn dynamodb_requests_per_drip_step() {
    let drip = Drip::new().await;
    let leads = u32::try_from(drip.leads.len()).expect("a few leads");

    drip.ports.clock.set(drip.start - Duration::minutes(1));
    drip.dynamodb_requests();
    let idle = leadflow_nurture::tick(&*drip.ports, TICK_LIMIT).await.expect("the idle tick");
    assert_eq!(idle.due, 0, "{idle:#?}");
    let per_tick = drip.dynamodb_requests();

    drip.ports.clock.set(drip.start);
    let report = leadflow_nurture::tick(&*drip.ports, TICK_LIMIT).await.expect("the tick");
    assert_eq!(report.sent, drip.leads.len(), "{report:#?}");
    let mut per_step = drip.dynamodb_requests();
    for (operation, n) in &per_tick {
        *per_step.entry(operation.clone()).or_default() -= n;
    }
    for n in per_step.values_mut() {
        assert_eq!(*n % leads, 0, "every step makes the same requests: {per_step:?}");
        *n /= leads;
    }
    per_step.retain(|_, n| *n > 0);
    println!("\nDynamoDB requests of a tick, whatever is due: {per_tick:?}\nand per drip step sent: {per_step:?}\n");
    drip.assert_sent_once(1).await;

    // A tick: the SLA index and the due-enrollment index, a Query on each of their `DUE_SHARDS`,
    // and the refresh of the configuration applied through the admin API (a Query of the
    // documents, once per cache period). A step: the lead with its trail, for the facts a branch
    // may test (one Query: the lead item holds the trail's first entries and is read with it),
    // its suppression (GetItem), the email's claim (PutItem), its record with the email_sent
    // entry in the lead's partition (PutItem), and the enrollment moved on (PutItem); the
    // campaign's version comes from the configuration.
    let counts = |pairs: &[(&str, u32)]| pairs.iter().map(|(o, n)| (o.to_string(), *n)).collect::<BTreeMap<_, _>>();
    assert_eq!(per_tick, counts(&[("Query", 2 * leadflow_aws::store::DUE_SHARDS + 1)]), "per tick");
    assert_eq!(per_step, counts(&[("GetItem", 1), ("PutItem", 3), ("Query", 1)]), "per drip step");
}
