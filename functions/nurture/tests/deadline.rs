//! A tick keeps to its time: with a slow mailer and a short budget it stops before the
//! deadline, every step either sent and recorded or untouched and still due, and the next tick
//! sends the rest, each email once. The SLA pass runs first, so a drip backlog cannot starve it.
//! Pacing spaces the sends out; a rejected drip is recorded on the trail and passed, once.
//!
//! Most tests run on tokio's paused clock: the mailer's sleeps and the deadline are then exact,
//! whatever else the machine is doing. One runs on the real clock, as the function does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadflow_app::{Deadline, within};
use leadflow_core::config::CompiledConfig;
use leadflow_core::error::{MailError, QueueError};
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{ActivityKind, Enrollment, EnrollmentState, LeadId};
use leadflow_core::ports::{Adapters, ConfigHandle, CreateOutcome, Mailer, OutgoingEmail, Stage, StageQueue};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_memory::fixtures::{enrollment, id, lead, owned_by, t};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, SettableClock};
use leadflow_nurture::{Pacer, TickReport, tick, tick_paced};
use tokio::time::Instant;

const SECRET: &str = "nurture-deadline-test-unsubscribe-secret-0123456789";
/// The sample campaign every lead is enrolled in (shared/app/config/campaigns/welcome.toml); its
/// second step waits two days, so a tick sends each lead at most one email here.
const CAMPAIGN: &str = "welcome";

/// A mailer that takes `delay` per email, or refuses every email for good.
struct SlowMailer {
    delay: Duration,
    reject: bool,
    /// The key of every email it was asked to send, in order.
    calls: Mutex<Vec<String>>,
    /// How many it has sent, shared with the queue.
    mailed: Arc<AtomicUsize>,
}

impl Mailer for SlowMailer {
    async fn send(&self, email: &OutgoingEmail, _now: DateTime<Utc>) -> Result<String, MailError> {
        tokio::time::sleep(self.delay).await;
        self.calls.lock().expect("calls").push(email.key.clone());
        self.mailed.fetch_add(1, Ordering::SeqCst);
        if self.reject {
            return Err(MailError::Rejected(format!("email {}: MessageRejected: content refused", email.key)));
        }
        Ok(format!("msg-{}", email.key))
    }
}

/// The stage queues, noting for each hand-over to route how many emails had gone out before it.
#[derive(Default)]
struct WatchedQueue {
    inner: MemoryQueue,
    mailed: Arc<AtomicUsize>,
    mailed_before_route: Mutex<Vec<usize>>,
}

impl StageQueue for WatchedQueue {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        if stage == Stage::Route {
            self.mailed_before_route.lock().expect("log").push(self.mailed.load(Ordering::SeqCst));
        }
        self.inner.send(stage, bodies).await
    }
}

type Ports = Adapters<MemoryStore, WatchedQueue, SlowMailer, RecordingBus, SettableClock>;

/// When the tests' steps fall due (the fixtures' leads were made at `t(0)`).
fn now() -> DateTime<Utc> {
    t(7_200)
}

/// `leads` leads enrolled in the campaign with their first step due, over a mailer taking
/// `delay` per email.
async fn enrolled(leads: u64, delay: Duration, reject: bool) -> Ports {
    let mut config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
    config.settings.signing_keys = SECRET.into();
    assert!(config.campaign(CAMPAIGN).is_some(), "the sample has the {CAMPAIGN} campaign");
    let mailed = Arc::new(AtomicUsize::new(0));
    let ports = Adapters {
        store: MemoryStore::new(),
        queue: WatchedQueue { mailed: Arc::clone(&mailed), ..WatchedQueue::default() },
        mailer: SlowMailer { delay, reject, calls: Mutex::new(Vec::new()), mailed },
        bus: RecordingBus::new(),
        clock: SettableClock::at(now()),
        config: ConfigHandle::new(config),
    };
    for n in 1..=leads {
        let lead = lead(n, &format!("reader{n}@analytical-engines.example"));
        assert_eq!(ports.store.create_lead(&lead, &[]).await.expect("create"), CreateOutcome::Created);
        // Due one second apart, so the store hands them out in a known order.
        let due = now() - chrono::Duration::seconds(i64::try_from(1_000 - n).expect("small"));
        assert!(
            ports
                .store
                .enroll(&enrollment(n, CAMPAIGN, Some(due), EnrollmentState::Active), &[])
                .await
                .expect("enroll")
        );
    }
    ports
}

fn calls(ports: &Ports) -> Vec<String> {
    ports.mailer.calls.lock().expect("calls").clone()
}

/// How many times each email key was handed to the mailer.
fn sends_per_key(ports: &Ports) -> BTreeMap<String, usize> {
    let mut per_key = BTreeMap::new();
    for key in calls(ports) {
        *per_key.entry(key).or_default() += 1;
    }
    per_key
}

async fn enrollment_of(ports: &Ports, lead: LeadId) -> Enrollment {
    let all = ports.store.enrollments(lead).await.expect("enrollments");
    let [one] = all.as_slice() else { panic!("one enrollment for {lead}: {all:?}") };
    one.clone()
}

/// The keys of the emails the lead's trail says were sent.
async fn sent_on_trail(ports: &Ports, lead: LeadId) -> Vec<String> {
    let trail = ports.store.activities(lead).await.expect("trail");
    trail
        .into_iter()
        .filter_map(|a| match a.kind {
            ActivityKind::EmailSent { email, .. } => Some(email),
            _ => None,
        })
        .collect()
}

/// Every lead is in one of two states: its step sent, on the trail and the enrollment moved on;
/// or nothing at all happened to it. Answers how many were sent.
async fn assert_nothing_half_done(ports: &Ports, leads: u64) -> usize {
    let mailed = sends_per_key(ports);
    let mut sent = 0;
    for n in 1..=leads {
        let e = enrollment_of(ports, id(n)).await;
        let on_trail = sent_on_trail(ports, id(n)).await;
        let mailed_to = mailed.keys().filter(|k| k.contains(&id(n).to_string())).count();
        if e.next_step == 0 {
            assert_eq!(e.version, 0, "lead {n}: an untouched enrollment is not rewritten");
            assert!(on_trail.is_empty() && mailed_to == 0, "lead {n}: untouched, yet {on_trail:?} / {mailed_to}");
        } else {
            assert_eq!(e.next_step, 1, "lead {n}");
            assert_eq!((on_trail.len(), mailed_to), (1, 1), "lead {n}: sent once and recorded");
            sent += 1;
        }
    }
    sent
}

#[tokio::test(start_paused = true)]
async fn a_tick_stops_before_its_deadline_and_the_next_one_sends_the_rest_once() {
    const LEADS: u64 = 20;
    let ports = enrolled(LEADS, Duration::from_millis(100), false).await;
    let budget = Duration::from_secs(1);
    let margin = Duration::from_millis(100);

    let started = Instant::now();
    let first = within(Deadline::budget(budget, margin), tick(&ports, 500)).await.expect("tick");
    let took = started.elapsed();
    assert!(took <= budget - margin, "the tick ended {took:?} after its start, past its budget");
    assert_eq!(first.due, 20, "{first:?}");
    assert!(first.sent > 0 && first.unstarted > 0, "{first:?}");
    assert_eq!(first.sent + first.unstarted, 20, "every due step is sent or left: {first:?}");
    assert_eq!(assert_nothing_half_done(&ports, LEADS).await, first.sent);
    // Due oldest first: the ones left are the last.
    for n in 1..=LEADS {
        let left = enrollment_of(&ports, id(n)).await.next_step == 0;
        assert_eq!(left, n > first.sent as u64, "lead {n}");
    }

    let second = tick(&ports, 500).await.expect("tick");
    assert_eq!((second.due, second.sent, second.unstarted), (first.unstarted, first.unstarted, 0), "{second:?}");
    assert_eq!(assert_nothing_half_done(&ports, LEADS).await, 20);
    let per_key = sends_per_key(&ports);
    assert_eq!(per_key.len(), 20, "one email per lead");
    assert!(per_key.values().all(|n| *n == 1), "no email twice: {per_key:?}");

    // Nothing is due now: the next step waits two days.
    assert_eq!(tick(&ports, 500).await.expect("tick"), TickReport::default());
    assert_eq!(calls(&ports).len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_budget_too_short_for_one_step_touches_nothing() {
    let ports = enrolled(3, Duration::from_millis(100), false).await;
    let report = within(Deadline::budget(Duration::from_millis(50), Duration::from_millis(100)), tick(&ports, 500))
        .await
        .expect("tick");
    assert_eq!((report.due, report.sent, report.unstarted), (3, 0, 3), "{report:?}");
    assert_eq!(assert_nothing_half_done(&ports, 3).await, 0);
    assert!(calls(&ports).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_sla_pass_runs_first_when_the_drip_backlog_would_eat_the_whole_budget() {
    const LEADS: u64 = 50;
    // 50 drips of 100 ms each: five seconds of work for a one-second budget.
    let ports = enrolled(LEADS, Duration::from_millis(100), false).await;
    let late = owned_by(lead(900, "late@analytical-engines.example"), "anna");
    assert!(late.owner.as_ref().is_some_and(|o| o.sla_due_at < now()), "the fixture's SLA has run out by now");
    ports.store.create_lead(&late, &[]).await.expect("create");

    let report = within(Deadline::budget(Duration::from_secs(1), Duration::from_millis(100)), tick(&ports, 500))
        .await
        .expect("tick");
    assert!(report.unstarted > 0, "the backlog did not fit: {report:?}");
    assert_eq!(report.sla_breaches, 1, "{report:?}");
    let before = ports.queue.mailed_before_route.lock().expect("log").clone();
    assert_eq!(before, [0], "the lead went to route before any drip was sent");
    let handed: Vec<RouteMessage> = ports
        .queue
        .inner
        .drain(Stage::Route)
        .iter()
        .map(|b| serde_json::from_str(b).expect("a route message"))
        .collect();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].lead_id, late.id);
    assert!(handed[0].sla_breach.as_ref().is_some_and(|b| b.rep_id == "anna"));
}

#[tokio::test(start_paused = true)]
async fn sends_are_paced_and_a_wait_that_eats_the_budget_leaves_the_step_due() {
    let ports = enrolled(6, Duration::ZERO, false).await;
    let pacer = Pacer::per_second(2.0).expect("a pacer");
    let started = Instant::now();
    let report = within(
        Deadline::budget(Duration::from_millis(2_200), Duration::from_millis(100)),
        tick_paced(&ports, 500, Some(&pacer)),
    )
    .await
    .expect("tick");
    // Turns at 0, 0.5, 1, 1.5 and 2 s; the fifth's wait leaves 200 ms, not more than the margin
    // and a step, so the step is left as it was.
    assert_eq!((report.sent, report.unstarted), (4, 2), "{report:?}");
    assert!(started.elapsed() <= Duration::from_millis(2_100), "{:?}", started.elapsed());
    assert_eq!(assert_nothing_half_done(&ports, 6).await, 4);

    // Without a deadline the pace alone sets the time: the two left, half a second apart,
    // after the turn the stopped step had taken (at 2 s).
    let started = Instant::now();
    let report = tick_paced(&ports, 500, Some(&pacer)).await.expect("tick");
    assert_eq!(report.sent, 2, "{report:?}");
    assert_eq!(started.elapsed(), Duration::from_millis(1_000));
    assert!(sends_per_key(&ports).values().all(|n| *n == 1));
}

#[tokio::test(start_paused = true)]
async fn a_rejected_drip_is_on_the_trail_and_passed_never_retried() {
    let ports = enrolled(1, Duration::ZERO, true).await;
    let report = tick(&ports, 500).await.expect("tick");
    assert_eq!((report.sent, report.rejected, report.retry_later), (0, 1, 0), "{report:?}");
    let e = enrollment_of(&ports, id(1)).await;
    assert_eq!(e.next_step, 1, "the step is passed");
    let trail = ports.store.activities(id(1)).await.expect("trail");
    let not_sent: Vec<(&String, &String)> = trail
        .iter()
        .filter_map(|a| match &a.kind {
            ActivityKind::EmailNotSent { email, reason } => Some((email, reason)),
            _ => None,
        })
        .collect();
    let [(email, reason)] = not_sent.as_slice() else { panic!("one email_not_sent on the trail: {trail:?}") };
    assert!(email.starts_with("drip-") && reason.contains("MessageRejected"), "{email}: {reason}");
    assert!(sent_on_trail(&ports, id(1)).await.is_empty());

    // Two days on, the next step is tried (and rejected too); the first one never again.
    ports.clock.advance(chrono::Duration::days(3));
    let report = tick(&ports, 500).await.expect("tick");
    assert_eq!(report.rejected, 1, "{report:?}");
    let per_key = sends_per_key(&ports);
    assert_eq!(per_key.len(), 2, "{per_key:?}");
    assert!(per_key.values().all(|n| *n == 1), "no step offered twice: {per_key:?}");
}

/// On the real clock, as on Lambda: the tick keeps to a budget whatever the machine's load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_real_clock_a_tick_keeps_to_its_budget() {
    const LEADS: u64 = 60;
    // 60 drips of 50 ms: three seconds of work for a budget of one and a half.
    let ports = enrolled(LEADS, Duration::from_millis(50), false).await;
    let budget = Duration::from_millis(1_500);
    let margin = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let first = within(Deadline::budget(budget, margin), tick(&ports, 500)).await.expect("tick");
    let took = started.elapsed();
    assert!(took < budget, "the tick took {took:?} of a {budget:?} budget");
    assert!(first.sent > 0 && first.unstarted > 0, "{first:?}");
    assert_eq!(assert_nothing_half_done(&ports, LEADS).await, first.sent);
    let second = tick(&ports, 500).await.expect("tick");
    assert_eq!(second.sent, first.unstarted, "{second:?}");
    assert_eq!(assert_nothing_half_done(&ports, LEADS).await, 60);
    assert!(sends_per_key(&ports).values().all(|n| *n == 1));
}
