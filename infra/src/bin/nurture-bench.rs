//! `leadflow-nurture-bench`: the nurture scheduler over the local store at scale.
//!
//! Builds a fresh SQLite store with `--enrollments` enrollments (1,000,000 by default) of which
//! `--due-percent` (1 %) have a step falling due during the first `--spread` seconds of the run,
//! the others weeks later. Then runs the scheduler as `leadflow dev` does (a tick every second,
//! more at once while a tick fills its limit) with the real outbox mailer, and reports:
//!
//! * the lateness of every due step: when its email was sent minus when it fell due (p50, p99,
//!   max), from the sends recorded on each lead's trail;
//! * how long one `due_enrollments` scan takes among a million enrollments, which shows the scan
//!   reads work proportional to the due steps (an index range), not to all enrollments.
//!
//! The last line printed is a JSON summary (docs/performance.md records it).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{ActivityKind, Enrollment, EnrollmentState};
use leadflow_core::ports::{Adapters, Clock, ConfigHandle};
use leadflow_core::ports::{Enrollments, Leads, Trails};
use leadflow_local::{OutboxMailer, SqliteStore};
use leadflow_memory::{MemoryQueue, RecordingBus, fixtures};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "leadflow-nurture-bench", about = "The nurture scheduler over a million enrollments.")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    enrollments: usize,
    #[arg(long, default_value_t = 1.0)]
    due_percent: f64,
    /// Seconds over which the due steps fall due, evenly.
    #[arg(long, default_value_t = 60)]
    spread: i64,
    /// Seconds the scheduler may run past the spread before the run is cut off.
    #[arg(long, default_value_t = 120)]
    grace: u64,
}

/// Domain time that starts at a fixed instant when the run starts and then follows the wall
/// clock, so due times can be written before the run without knowing how long set-up takes.
struct RunClock {
    start: DateTime<Utc>,
    started: std::sync::Mutex<Option<Instant>>,
}

impl Clock for RunClock {
    fn now(&self) -> DateTime<Utc> {
        let started = self.started.lock().ok().and_then(|g| *g);
        match started {
            Some(at) => self.start + Duration::from_std(at.elapsed()).unwrap_or_default(),
            None => self.start,
        }
    }
}

type BenchPorts = Adapters<SqliteStore, MemoryQueue, OutboxMailer, RecordingBus, RunClock>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let store = SqliteStore::open(dir.path().join("leadflow.db")).map_err(|e| e.to_string())?;
    let mut config =
        CompiledConfig::compile(&leadflow_infra::config_files::sample()).map_err(|e| format!("sample config: {e}"))?;
    config.settings.signing_keys = "nurture-bench-secret-0123456789abcdef".into();
    let start = Utc.with_ymd_and_hms(2030, 1, 8, 12, 0, 0).single().ok_or("start time")?;
    let due_count = ((args.enrollments as f64) * args.due_percent / 100.0).round() as usize;
    let spread_ms = args.spread * 1000;

    let t = Instant::now();
    let mut due_at = Vec::with_capacity(due_count);
    for i in 0..due_count {
        let n = i as u64;
        let lead = fixtures::lead(n, &format!("lead{n}@bench.example"));
        store.create_lead(&lead, &[]).await.map_err(|e| e.to_string())?;
        due_at.push(start + Duration::milliseconds(spread_ms * i as i64 / due_count.max(1) as i64));
    }
    let leads_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(100_000);
    for i in 0..args.enrollments {
        let n = i as u64;
        let due = match due_at.get(i) {
            Some(d) => *d,
            // The rest fall due weeks later, spread over a month.
            None => start + Duration::days(21) + Duration::seconds((n % (30 * 86_400)) as i64),
        };
        batch.push(Enrollment {
            next_due_at: Some(due),
            ..fixtures::enrollment(n, "welcome", Some(due), EnrollmentState::Active)
        });
        if batch.len() == batch.capacity() {
            store.enroll_many(&batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    store.enroll_many(&batch).map_err(|e| e.to_string())?;
    let enroll_secs = t.elapsed().as_secs_f64();

    let ports = Arc::new(BenchPorts {
        store,
        queue: MemoryQueue::new(),
        mailer: OutboxMailer::open(dir.path().join("outbox")).map_err(|e| e.to_string())?,
        bus: RecordingBus::new(),
        clock: RunClock { start, started: std::sync::Mutex::new(None) },
        config: ConfigHandle::new(config),
    });

    // One scan at the halfway point of the spread, among a million enrollments.
    let probe = start + Duration::milliseconds(spread_ms / 2);
    let t = Instant::now();
    let half = ports.store.due_enrollments(probe, 500).await.map_err(|e| e.to_string())?;
    let scan_ms = t.elapsed().as_secs_f64() * 1000.0;

    if let Ok(mut g) = ports.clock.started.lock() {
        *g = Some(Instant::now());
    }
    let run_started = Instant::now();
    let deadline = StdDuration::from_secs(args.spread.max(0) as u64 + args.grace);
    let mut ticks = 0u32;
    let mut sent = 0usize;
    let mut interval = tokio::time::interval(StdDuration::from_secs(1));
    while sent < due_count && run_started.elapsed() < deadline {
        interval.tick().await;
        loop {
            let report =
                leadflow_nurture::tick(&*ports, leadflow_nurture::TICK_LIMIT).await.map_err(|e| e.to_string())?;
            ticks += 1;
            sent += report.sent;
            if report.due < leadflow_nurture::TICK_LIMIT || report.sent == 0 {
                break;
            }
        }
    }
    let run_secs = run_started.elapsed().as_secs_f64();

    let mut lateness = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut missing = 0usize;
    for (i, due) in due_at.iter().enumerate() {
        let acts = ports.store.activities(fixtures::id(i as u64)).await.map_err(|e| e.to_string())?;
        match acts.iter().find(|a| matches!(a.kind, ActivityKind::EmailSent { .. })) {
            Some(a) => {
                let _ = lateness.record((a.at - *due).num_milliseconds().max(0) as u64);
            }
            None => missing += 1,
        }
    }
    let ms = |q: f64| lateness.value_at_quantile(q);
    Ok(json!({
        "enrollments": args.enrollments,
        "due": due_count,
        "sent": sent,
        "not_sent": missing,
        "ticks": ticks,
        "run_seconds": (run_secs * 10.0).round() / 10.0,
        "lateness_ms": { "p50": ms(0.5), "p99": ms(0.99), "max": lateness.max() },
        "due_scan": { "among": args.enrollments, "found": half.len(), "ms": (scan_ms * 1000.0).round() / 1000.0 },
        "setup_seconds": { "leads": (leads_secs * 10.0).round() / 10.0, "enrollments": (enroll_secs * 10.0).round() / 10.0 },
    }))
}
