//! Faults on purpose over the whole pipeline, on the local stack's own adapters: the SQLite
//! store and stage queues, the outbox mailer and the JSON-lines bus, each wrapped in
//! `leadflow_memory::faults` (one call in ten fails, some after doing their work, and one
//! accepted email in twenty is followed by a crash). Capture, validate, score and route run as
//! Lambda runs them: batches of ten under a 10 s invocation deadline; a failed record comes back
//! after the queue's 60 s visibility timeout, a crashed invocation's whole batch too, and a
//! record received five times goes to its dead-letter queue. Time is a settable clock, one second
//! per invocation, so a run is the same every time for the same seed.
//!
//! `LEADFLOW_FAULT_LEADS` (default 10,000) and `LEADFLOW_FAULT_SEED` (default 9) choose the run;
//! `--nocapture` prints its figures (docs/reliability.md).

use std::sync::Arc;
use std::time::{Duration as StdDuration, SystemTime};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use leadflow_app::{BatchItem, Deadline, Failure, within};
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, Stage, StageQueue};
use leadflow_local::{JsonlBus, OutboxMailer, SqliteQueue, SqliteStore};
use leadflow_memory::SettableClock;
use leadflow_memory::faults::audit::{self, DeadLetter, Deliveries, Outcome, Person, Planned};
use leadflow_memory::faults::{Driver, Fault, FaultPlan, Faults, Port, Tally, WithFaults};
use serde_json::Value;
use tower::ServiceExt;

type FaultPorts = Adapters<
    WithFaults<SqliteStore>,
    WithFaults<SqliteQueue>,
    WithFaults<OutboxMailer>,
    WithFaults<JsonlBus>,
    SettableClock,
>;

/// The stage queues' visibility timeout in template.yaml.
const VISIBILITY: Duration = Duration::seconds(60);
/// The functions' timeout in template.yaml (Globals): the invocation deadline claims are leased to.
const FUNCTION_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const MARGIN: StdDuration = StdDuration::from_secs(1);
/// How many times a landing page's visitor (or its script) posts a submission answered 503.
const CLIENT_TRIES: u32 = 10;
/// Submissions posted between two rounds of the stages.
const CHUNK: usize = 50;

/// A Monday morning, so nothing depends on the day the tests run.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).single().unwrap_or_default()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Run {
    ports: Arc<FaultPorts>,
    router: axum::Router,
    /// The queues as Lambda's poller sees them: not wrapped, never failing.
    queue: SqliteQueue,
    faults: Arc<Faults>,
    people: Vec<Person>,
    deliveries: Deliveries,
    /// Dead letters already read, by id.
    seen_dead: std::collections::BTreeSet<String>,
    dir: tempfile::TempDir,
}

/// What a run ended in.
struct Report {
    outcome: Outcome,
    /// After the faults stopped and every dead letter was sent back to its queue once.
    after_redrive: Outcome,
    tally: Tally,
    deliveries: Deliveries,
    /// `.eml` files in the outbox: what the reps and leads received.
    outbox_files: usize,
    dead: Vec<DeadLetter>,
}

impl Run {
    fn new(plan: FaultPlan, people: Vec<Person>) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary folder: {e}"));
        let store = SqliteStore::open(dir.path().join("leadflow.db")).unwrap_or_else(|e| panic!("{e}"));
        let queue = store.queue();
        let mailer = OutboxMailer::open(dir.path().join("outbox")).unwrap_or_else(|e| panic!("{e}"));
        let bus = JsonlBus::open(dir.path().join("events.jsonl")).unwrap_or_else(|e| panic!("{e}"));
        let faults = Faults::new(plan);
        let ports = Arc::new(Adapters {
            store: faults.wrap(store),
            queue: faults.wrap(queue.clone()),
            mailer: faults.wrap(mailer),
            bus: faults.wrap(bus),
            clock: SettableClock::at(monday()),
            config: ConfigHandle::new(leadflow_tests::test_config()),
        });
        let router = leadflow_capture::router(Arc::clone(&ports));
        Self {
            ports,
            router,
            queue,
            faults,
            people,
            deliveries: Deliveries::default(),
            seen_dead: Default::default(),
            dir,
        }
    }

    /// Posts one submission as a landing page's script does: again on a 503, with the same key.
    async fn capture(&mut self, planned: &Planned) {
        for _ in 0..CLIENT_TRIES {
            self.deliveries.posts += 1;
            self.ports.clock.advance(Duration::milliseconds(10));
            let request = Request::post("/leads")
                .header("content-type", "application/json")
                .header("idempotency-key", &planned.key)
                .body(Body::from(planned.body.to_string()))
                .unwrap_or_else(|e| panic!("a request: {e}"));
            let response = self.router.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
            let status = response.status();
            let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match status {
                StatusCode::ACCEPTED => {
                    let id = body["lead_id"].as_str().and_then(|s| s.parse().ok());
                    let id = id.unwrap_or_else(|| panic!("202 without a lead id: {body}"));
                    self.people[planned.person].accepted.insert(id);
                    return;
                }
                StatusCode::SERVICE_UNAVAILABLE => self.deliveries.posts_unavailable += 1,
                other => panic!("capture answered {other} to a good submission: {body}"),
            }
        }
        self.deliveries.given_up += 1;
    }

    fn depth(&self) -> u64 {
        Stage::ALL.iter().map(|s| self.queue.depth(*s).unwrap_or_else(|e| panic!("depth: {e}"))).sum()
    }

    /// Until quiet: what failed comes back after the visibility timeout.
    async fn settle(&mut self) {
        self.pump().await;
        while self.depth() > 0 {
            self.ports.clock.advance(VISIBILITY);
            self.pump().await;
        }
    }

    /// The dead letters not read before.
    fn new_dead_letters(&mut self) -> Vec<DeadLetter> {
        let mut dead = Vec::new();
        for stage in Stage::ALL {
            for d in self.queue.dead_letters(stage).unwrap_or_else(|e| panic!("dead letters: {e}")) {
                if self.seen_dead.insert(d.id.clone()) {
                    dead.push(DeadLetter { stage, body: d.body, reason: d.last_error });
                }
            }
        }
        dead
    }

    async fn audit(&self, dead: &[DeadLetter]) -> Outcome {
        audit::audit(self.ports.store.inner(), &self.people, dead, &self.faults)
            .await
            .unwrap_or_else(|e| panic!("the audit cannot read the store: {e}"))
    }

    async fn run(mut self, planned: &[Planned]) -> Report {
        for chunk in planned.chunks(CHUNK) {
            for p in chunk {
                self.capture(p).await;
            }
            self.pump().await;
        }
        self.settle().await;
        let dead = self.new_dead_letters();
        let outcome = self.audit(&dead).await;
        let outbox = std::fs::read_dir(self.dir.path().join("outbox")).unwrap_or_else(|e| panic!("outbox: {e}"));
        let outbox_files =
            outbox.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count();
        let tally = self.faults.tally();
        let deliveries = self.deliveries.clone();

        // The outage ends; an operator sends every dead letter back to its queue once.
        self.faults.calm_down();
        for d in &dead {
            StageQueue::send(&self.queue, d.stage, std::slice::from_ref(&d.body))
                .await
                .unwrap_or_else(|e| panic!("redrive: {e}"));
        }
        self.settle().await;
        let still_dead = self.new_dead_letters();
        let after_redrive = self.audit(&still_dead).await;
        Report { outcome, after_redrive, tally, deliveries, outbox_files, dead }
    }
}

async fn run(leads: usize, plan: FaultPlan) -> Report {
    let (people, planned) = audit::plan(0, leads);
    Run::new(plan, people).run(&planned).await
}

fn print(title: &str, r: &Report) {
    println!("\n{title}\n\n{}\n{}\n{}", r.tally, r.deliveries, r.outcome);
    println!("after the outage, every dead letter redriven once:\n{}", r.after_redrive);
    println!("outbox files (what people received): {}", r.outbox_files);
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for d in &r.dead {
        let reason = d.reason.clone().unwrap_or_else(|| "no reason: every invocation that received it died".into());
        // The reason without the ids in it, to group them.
        let kind: String = reason.split(':').take(2).collect::<Vec<_>>().join(":");
        *reasons.entry(format!("{} — {kind}", d.stage.as_str())).or_insert(0) += 1;
    }
    for (reason, n) in reasons {
        println!("dead letters: {n} × {reason}");
    }
}

/// The rules every run keeps, faults or not.
fn assert_sound(r: &Report) {
    let o = &r.outcome;
    assert!(o.problems.is_empty(), "{}", o);
    let answered = o.people - r.deliveries.given_up as usize;
    assert_eq!(o.assigned + o.enrolled + o.in_dlq_total(), answered, "every answered person is accounted for: {o}");
    assert_eq!(o.emails.outside_window + o.events.outside_window, 0, "{o}");
    // The outbox names a file after the email's key: a send repeated in the window is one file.
    assert_eq!(r.outbox_files as u64, o.emails.distinct, "{o}");
    // Round-robin in EMEA advanced once per assignment, whatever was retried.
    let owned = |rep: &str| o.owned.get(rep).copied().unwrap_or(0);
    assert!(owned("anna").abs_diff(owned("ben")) <= 1, "{:?}", o.owned);
    // Nothing in a dead-letter queue was lost: redriven once the faults stop, every lead is done.
    let after = &r.after_redrive;
    assert!(after.problems.is_empty(), "after the redrive: {after}");
    assert_eq!((after.assigned + after.enrolled, after.in_dlq_total()), (answered, 0), "after the redrive: {after}");
    let owned = |rep: &str| after.owned.get(rep).copied().unwrap_or(0);
    assert!(owned("anna").abs_diff(owned("ben")) <= 1, "{:?}", after.owned);
}

#[tokio::test]
async fn ten_thousand_leads_through_one_fault_in_ten_on_the_local_adapters() {
    let leads = env_or("LEADFLOW_FAULT_LEADS", 10_000);
    let plan = FaultPlan::one_in_ten(env_or("LEADFLOW_FAULT_SEED", 9));
    let r = run(leads, plan).await;
    print(&format!("{leads} leads, seed {}, local adapters (SQLite, outbox, JSON lines)", plan.seed), &r);
    assert_sound(&r);
    let o = &r.outcome;
    assert_eq!(o.people, leads);
    // The run tried what it was meant to: every kind of fault happened, and was survived.
    for port in Port::ALL {
        assert!(r.tally.faults(port, Fault::Failed) > 0, "no failed {} call:\n{}", port.as_str(), r.tally);
    }
    for fault in [Fault::TimedOut, Fault::CrashAfterSend, Fault::AfterCrash] {
        assert!(r.tally.total(fault) > 0, "no {fault:?}:\n{}", r.tally);
    }
    assert!(r.deliveries.crashed > 0 && r.deliveries.redeliveries > 0, "{}", r.deliveries);
    assert!(o.emails.inside_window > 0, "crashes after sends repeat some emails: {o}");
    assert!(o.assigned > leads / 2 && o.enrolled > leads / 4, "{o}");
}

#[tokio::test]
async fn the_same_seed_replays_the_same_run() {
    let plan = FaultPlan::one_in_ten(1234);
    let (a, b) = (run(300, plan).await, run(300, plan).await);
    assert_sound(&a);
    assert_eq!(a.tally, b.tally);
    assert_eq!(a.deliveries, b.deliveries);
    let figures = |r: &Report| {
        let o = &r.outcome;
        (o.assigned, o.enrolled, o.in_dlq.clone(), o.owned.clone(), o.emails.clone(), o.events.clone())
    };
    assert_eq!(figures(&a), figures(&b));
    let other = run(300, FaultPlan::one_in_ten(1235)).await;
    assert_sound(&other);
    assert_ne!(a.tally, other.tally, "another seed, other faults");
}

#[tokio::test]
async fn without_faults_every_lead_is_done_once() {
    let r = run(300, FaultPlan::none()).await;
    assert_sound(&r);
    let o = &r.outcome;
    assert_eq!(o.assigned + o.enrolled, 300, "{o}");
    assert_eq!((o.in_dlq_total(), o.emails.inside_window, r.deliveries.redeliveries), (0, 0, 0), "{o}");
    assert_eq!(o.emails.accepted, o.assigned as u64, "one email per assignment: {o}");
}

impl Driver for Run {
    /// One invocation of `stage`'s function on the next batch, as Lambda's SQS event source
    /// mapping makes it; `false` when the queue had nothing visible.
    async fn invoke(&mut self, stage: Stage) -> bool {
        self.ports.clock.advance(Duration::seconds(1));
        let now = self.ports.clock.now();
        let visibility = VISIBILITY.to_std().unwrap_or_default();
        let received = self.queue.receive(stage, 10, visibility, now).unwrap_or_else(|e| panic!("receive: {e}"));
        if received.is_empty() {
            return false;
        }
        self.deliveries.invocations += 1;
        self.deliveries.records += received.len() as u64;
        self.deliveries.redeliveries += received.iter().filter(|r| r.receive_count > 1).count() as u64;
        let ids: Vec<String> = received.iter().map(|r| r.id.clone()).collect();
        let items: Vec<BatchItem> = received.into_iter().map(|r| BatchItem { id: r.id, body: r.body }).collect();
        let deadline = Deadline::invocation(SystemTime::now() + FUNCTION_TIMEOUT, MARGIN);
        let ports = &*self.ports;
        let failed: Vec<Failure> = within(deadline, async {
            match stage {
                Stage::Validate => leadflow_validate::handle_batch(ports, items).await,
                Stage::Score => leadflow_score::handle_batch(ports, items).await,
                Stage::Route => leadflow_route::handle_batch(ports, items).await,
            }
        })
        .await;
        if self.faults.revive() {
            // The invocation died: Lambda deletes nothing, the whole batch comes back.
            self.deliveries.crashed += 1;
            return true;
        }
        self.deliveries.failed += failed.len() as u64;
        let done = ids.iter().filter(|id| !failed.iter().any(|f| &f.id == *id));
        self.queue.delete(stage, done).unwrap_or_else(|e| panic!("delete: {e}"));
        for f in &failed {
            // Back after the visibility timeout, with its reason kept for the dead letters.
            self.queue.release(stage, &f.id, &f.reason, visibility, now).unwrap_or_else(|e| panic!("release: {e}"));
        }
        true
    }
}
