//! `leadflow-console-bench`: how long the console's pages take, and how big they are, with
//! `--leads` leads (10,000 by default) in a fresh local SQLite store.
//!
//! A third of the leads are one rep's (anna), each with a short trail; three in four have a
//! source, every fifth is enrolled in a campaign, and every tenth is on the suppression list. The console is served on a
//! loopback port as `leadflow dev` serves it, and every page is fetched `--rounds` times with a
//! signed-in person's cookie (the rep for her pages, a marketer for the reports, campaigns, leads
//! and suppression list),
//! so the times are the server's plus a loopback round trip. The budgets (issue: the console) are
//! 50 ms per page and 200 KB per page; the last line printed is a JSON summary that
//! docs/performance.md records.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use leadflow_admin::console::SignIn;
use leadflow_admin::console::session::{self, Role};
use leadflow_core::model::{
    Activity, ActivityKind, EnrollmentState, Grade, Lifecycle, Score, Suppression, SuppressionReason,
};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle};
use leadflow_core::ports::{Enrollments, Leads, Suppressions};
use leadflow_local::SqliteStore;
use leadflow_memory::{MemoryQueue, RecordingBus, RecordingMailer, SettableClock, fixtures};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "leadflow-console-bench", about = "The console's pages over a local store of many leads.")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    leads: u64,
    #[arg(long, default_value_t = 30)]
    rounds: u32,
}

const BUDGET_MS: f64 = 50.0;
const BUDGET_BYTES: usize = 200 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(over) => {
            eprintln!("{over} page(s) over budget");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("leadflow-console-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<usize, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = SqliteStore::open(dir.path().join("leadflow.db")).map_err(|e| e.to_string())?;
    let mut config = leadflow_app::config_files::load(None).map_err(|e| e.to_string())?;
    config.settings.signing_keys = "console-bench-secret-0123456789abcdef".into();
    let secret = config.settings.signing_keys.clone();

    let loading = Instant::now();
    let reps = ["anna", "ben", "sam"];
    let campaign = config.campaigns.first().map(|c| c.campaign.id.clone());
    let mut annas = Vec::new();
    for n in 1..=args.leads {
        let rep = reps[(n % 3) as usize];
        let mut lead = fixtures::owned_by(fixtures::lead(n, &format!("lead{n}@example.com")), rep);
        lead.created_at = fixtures::t(n as i64 * 60);
        lead.lifecycle = Lifecycle::Mql;
        lead.score = Some(Score {
            total: 62.0,
            fit: 40.0,
            behaviour: 22.0,
            grade: Grade::A,
            reasons: Vec::new(),
            computed_at: lead.created_at,
        });
        let at = lead.created_at;
        let trail: Vec<Activity> = [
            ActivityKind::FormSubmission { submission_id: lead.id, form: Some("contact".into()) },
            ActivityKind::Scored { total: 62.0, grade: Grade::A },
            ActivityKind::Assigned {
                rep_id: rep.into(),
                team_id: Some("emea".into()),
                explanation: vec!["round robin".into()],
            },
        ]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Activity {
            id: format!("bench-{i}"),
            lead_id: lead.id,
            at: at + Duration::seconds(i as i64),
            kind,
        })
        .collect();
        lead.attribution.first_touch.utm.source =
            ["google", "linkedin", "newsletter"].get((n % 4) as usize).map(|s| s.to_string());
        store.create_lead(&lead, &trail).await.map_err(|e| e.to_string())?;
        // Every fifth lead is enrolled in the first campaign: the funnel by campaign reads them.
        if let Some(c) = campaign.as_deref().filter(|_| n % 5 == 0) {
            let enrollment = fixtures::enrollment(n, c, None, EnrollmentState::Completed);
            store.enroll(&enrollment, &[]).await.map_err(|e| e.to_string())?;
        }
        // Every tenth lead opted out: the suppression list has a page of entries and more.
        if n % 10 == 0 {
            let entry = Suppression {
                email_key: email_key(&lead.contact.email),
                reason: SuppressionReason::Unsubscribed,
                at: lead.created_at,
                lead_id: Some(lead.id),
            };
            store.suppress(&entry, &[]).await.map_err(|e| e.to_string())?;
        }
        if rep == "anna" {
            annas.push(lead.id);
        }
    }
    let loaded = loading.elapsed();

    let ports = Arc::new(Adapters {
        store,
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    });
    let app = leadflow_admin::console::router(ports, SignIn::NotSetUp);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let cookie = |email: &str, role: Role, rep: Option<&str>| {
        let s = session::start(email, role, rep.map(String::from), Utc::now());
        session::seal(&secret, &s).map(|v| format!("{}={v}", session::COOKIE)).map_err(|e| e.to_string())
    };
    let anna = cookie("anna@acme.example", Role::Sales, Some("anna"))?;
    let maria = cookie("maria@acme.example", Role::Marketing, None)?;
    let a_lead = annas.last().ok_or("no lead of anna's")?;
    let pages = [
        ("my leads", "/console/leads/mine".to_string(), &anna),
        ("lead page", format!("/console/leads/{a_lead}"), &anna),
        ("funnel by source", "/console/reports/funnel".to_string(), &maria),
        ("funnel by week", "/console/reports/funnel?by=week".to_string(), &maria),
        ("funnel by campaign", "/console/reports/funnel?by=campaign".to_string(), &maria),
        ("campaigns", "/console/campaigns".to_string(), &maria),
        ("leads", "/console/leads".to_string(), &maria),
        // Matches nothing, so the page reads its whole scan budget.
        ("leads, no match", "/console/leads?q=nobody-is-called-this".to_string(), &maria),
        ("suppression list", "/console/suppressions".to_string(), &maria),
    ];

    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    let mut over = 0;
    println!("{:<18} {:>8} {:>8} {:>8} {:>9}  status", "page", "p50 ms", "p95 ms", "max ms", "bytes");
    for (name, path, who) in pages {
        let mut h = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        let (mut bytes, mut status) = (0, 0);
        for _ in 0..args.rounds {
            let started = Instant::now();
            let resp = http
                .get(format!("http://{addr}{path}"))
                .header("cookie", who.as_str())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            status = resp.status().as_u16();
            bytes = resp.bytes().await.map_err(|e| e.to_string())?.len();
            let _ = h.record(started.elapsed().as_micros() as u64);
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let (p50, p95, max) = (ms(0.5), ms(0.95), h.max() as f64 / 1000.0);
        let ok = p95 <= BUDGET_MS && bytes <= BUDGET_BYTES && status == 200;
        if !ok {
            over += 1;
        }
        println!("{name:<18} {p50:>8.2} {p95:>8.2} {max:>8.2} {bytes:>9}  {status}{}", if ok { "" } else { "  OVER" });
        rows.push(
            json!({ "page": name, "p50_ms": p50, "p95_ms": p95, "max_ms": max, "bytes": bytes, "status": status }),
        );
    }
    println!(
        "{}",
        json!({ "leads": args.leads, "rounds": args.rounds, "load_seconds": loaded.as_secs_f64(), "pages": rows })
    );
    Ok(over)
}
