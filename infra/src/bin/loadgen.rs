//! `leadflow-loadgen`: load for an already-running local stack (`leadflow dev`), on a loopback
//! address only.
//!
//! * `--mode throughput --leads N --concurrency C --outbox DIR`: posts N distinct qualified
//!   leads as fast as C connections allow, then waits until each has its assignment email in
//!   the outbox. Reports the capture rate, the end-to-end rate (first post to last assignment
//!   email written) and every error.
//! * `--mode latency --rate R --duration S`: open loop, sends on a fixed timetable whatever the
//!   answers do, and reports capture latency percentiles measured from each request's scheduled
//!   time, so a stalled server cannot hide its stall by slowing the sender (coordinated omission).
//!
//! Every loop is bounded by a count or a deadline; I/O failures are counted and reported, never
//! fatal. The last line printed is a JSON summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Throughput,
    Latency,
}

/// Which countries (and so which phone-number metadata) the posted leads use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// Every lead German, with a Berlin number.
    De,
    /// The 13 countries of the sample's EMEA team in turn, each with a number of its own.
    Emea,
}

#[derive(Debug, Parser)]
#[command(name = "leadflow-loadgen", about = "Load for a running `leadflow dev` on this machine.")]
struct Args {
    /// The local stack's address; only loopback addresses are accepted.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Throughput: how many leads to post.
    #[arg(long, default_value_t = 10_000)]
    leads: usize,
    /// Throughput: concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Throughput: the stack's outbox folder (`<data-dir>/outbox`), where assignment emails land.
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// Throughput: seconds to wait for the assignment emails after the last post.
    #[arg(long, default_value_t = 300)]
    wait_secs: u64,
    /// Latency: requests per second, on a fixed timetable.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Latency: seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Latency: most requests in flight at once; later ones wait (and their wait counts as
    /// latency, since it is measured from the scheduled time).
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Seconds before a single request counts as failed.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Client threads. One leaves the other core(s) to the server on a small machine.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Countries and phone numbers of the leads. Both mixes qualify and route to team EMEA.
    #[arg(long, value_enum, default_value = "de")]
    mix: Mix,
    /// Makes this run's email addresses unique (default: from the clock), so repeated runs
    /// against one data folder create new leads instead of merging into old ones.
    #[arg(long)]
    run_id: Option<String>,
}

/// Most requests one run may make: bounds memory for prepared bodies and per-request state.
const MAX_REQUESTS: usize = 2_000_000;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(message) = check(&args) {
        eprintln!("leadflow-loadgen: {message}");
        return ExitCode::from(2);
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("leadflow-loadgen: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = runtime.block_on(run(args));
    match summary {
        Ok(s) => {
            println!("{}", s.json);
            if s.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(message) => {
            eprintln!("leadflow-loadgen: {message}");
            println!("{}", json!({ "error": message }));
            ExitCode::FAILURE
        }
    }
}

fn check(args: &Args) -> Result<(), String> {
    if !args.addr.ip().is_loopback() {
        return Err(format!("{} is not a loopback address; this tool only loads a local stack", args.addr));
    }
    match args.mode {
        Mode::Throughput => {
            if args.leads == 0 || args.leads > MAX_REQUESTS {
                return Err(format!("--leads must be 1 to {MAX_REQUESTS}"));
            }
            if args.concurrency == 0 || args.concurrency > 4096 {
                return Err("--concurrency must be 1 to 4096".into());
            }
            if args.outbox.is_none() {
                return Err("--mode throughput needs --outbox <data-dir>/outbox to see the assignment emails".into());
            }
        }
        Mode::Latency => {
            if !(args.rate.is_finite() && args.rate > 0.0 && args.duration.is_finite() && args.duration > 0.0) {
                return Err("--rate and --duration must be positive".into());
            }
            if args.rate * args.duration > MAX_REQUESTS as f64 {
                return Err(format!("--rate × --duration must be at most {MAX_REQUESTS} requests"));
            }
            if args.max_in_flight == 0 {
                return Err("--max-in-flight must be at least 1".into());
            }
        }
    }
    Ok(())
}

struct Summary {
    json: Value,
    /// No errors, nothing missing.
    ok: bool,
}

async fn run(args: Args) -> Result<Summary, String> {
    let client = reqwest::Client::builder()
        // Never through a proxy from the environment: the requests must stay on this machine.
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency.max(args.max_in_flight))
        .timeout(Duration::from_secs(args.request_timeout.max(1)))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let base = format!("http://{}", args.addr);
    match client.get(format!("{base}/health")).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => return Err(format!("{base}/health answered {}; is the local stack running?", r.status())),
        Err(e) => return Err(format!("cannot reach {base}/health ({e}); start `leadflow dev` first")),
    }
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let millis = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        format!("{millis:x}")
    });
    match args.mode {
        Mode::Throughput => throughput(&args, client, &base, &run_id).await,
        Mode::Latency => latency(&args, client, &base, &run_id).await,
    }
}

/// Country and phone shapes (`#`: a digit from the lead's index) of the sample's EMEA team.
const EMEA: &[(&str, &str)] = &[
    ("DE", "+49 30 9#######"),
    ("AT", "+43 1 5######"),
    ("CH", "+41 44 6######"),
    ("FR", "+33 1 42######"),
    ("NL", "+31 20 5######"),
    ("GB", "+44 20 7946 0###"),
    ("IE", "+353 1 6######"),
    ("SE", "+46 8 5#######"),
    ("DK", "+45 33 ######"),
    ("NO", "+47 22 ######"),
    ("ES", "+34 91 5######"),
    ("IT", "+39 06 6#######"),
    ("PL", "+48 22 5######"),
];

/// Fills `#` with the last digits of `i`, so that numbers differ between leads.
fn phone(shape: &str, i: usize) -> String {
    let digits = format!("{i:012}");
    let mut from_end = digits.chars().rev();
    let mut out: Vec<char> =
        shape.chars().rev().map(|c| if c == '#' { from_end.next().unwrap_or('0') } else { c }).collect();
    out.reverse();
    out.into_iter().collect()
}

/// A lead the sample configuration qualifies and routes: corporate domain, senior title, a
/// market of team EMEA, company and phone given. Unique by run and index.
fn lead_body(run_id: &str, i: usize, mix: Mix) -> Vec<u8> {
    let (country, shape) = match mix {
        Mix::De => EMEA[0],
        Mix::Emea => EMEA[i % EMEA.len()],
    };
    let body = json!({
        "email": format!("lg-{run_id}-{i}@c{}.loadgen-{run_id}.de", i % 97),
        "first_name": "Load",
        "last_name": format!("Test {i}"),
        "company": format!("Loadgen {} GmbH", i % 97),
        "job_title": "Director",
        "country": country,
        "phone": phone(shape, i),
        "form": "demo-request",
        "consent": true,
        "utm_source": "loadgen",
        "utm_medium": "cpc",
    });
    body.to_string().into_bytes()
}

/// What became of one request.
enum Sent {
    /// 202 with the lead id.
    Accepted(String),
    Status(u16),
    Failed(&'static str),
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Sent {
    let response = client.post(url).header("content-type", "application/json").body(body).send().await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return Sent::Failed(error_kind(&e)),
    };
    let status = response.status().as_u16();
    // The body is read in full either way, so that the connection can be reused.
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Sent::Failed(error_kind(&e)),
    };
    if status != 202 {
        return Sent::Status(status);
    }
    match serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("lead_id")?.as_str().map(str::to_owned)) {
        Some(id) => Sent::Accepted(id),
        None => Sent::Failed("202 without a lead_id"),
    }
}

fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    }
}

/// Counts of what did not go as planned.
#[derive(Default)]
struct Tally {
    accepted: u64,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn add(&mut self, sent: &Sent) {
        match sent {
            Sent::Accepted(_) => self.accepted += 1,
            Sent::Status(s) => *self.statuses.entry(*s).or_default() += 1,
            Sent::Failed(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }
    fn non_202(&self) -> u64 {
        self.statuses.values().sum()
    }
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
    fn json(&self) -> (Value, Value) {
        let statuses: serde_json::Map<String, Value> =
            self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n))).collect();
        let errors: serde_json::Map<String, Value> =
            self.errors.iter().map(|(k, n)| ((*k).to_owned(), json!(n))).collect();
        (Value::Object(statuses), Value::Object(errors))
    }
}

async fn throughput(args: &Args, client: reqwest::Client, base: &str, run_id: &str) -> Result<Summary, String> {
    let outbox = args.outbox.clone().ok_or("--outbox is required")?;
    let n = args.leads;
    let url: Arc<str> = format!("{base}/leads").into();
    // Prepared before the clock starts, so that the client spends its time sending.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..n).map(|i| lead_body(run_id, i, args.mix)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    eprintln!("throughput: posting {n} leads over {} connections to {url} (run {run_id})", args.concurrency);

    let started = Instant::now();
    let started_wall = SystemTime::now();
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, url, bodies, next) = (client.clone(), Arc::clone(&url), Arc::clone(&bodies), Arc::clone(&next));
        workers.spawn(async move {
            let mut tally = Tally::default();
            let mut ids = Vec::new();
            // Bounded: each turn takes a fresh index below n.
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let sent = post(&client, &url, body.clone()).await;
                tally.add(&sent);
                if let Sent::Accepted(id) = sent {
                    ids.push(id);
                }
            }
            (tally, ids)
        });
    }
    let mut tally = Tally::default();
    let mut lead_ids: HashSet<String> = HashSet::with_capacity(n);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((t, ids)) => {
                tally.accepted += t.accepted;
                for (s, c) in t.statuses {
                    *tally.statuses.entry(s).or_default() += c;
                }
                for (k, c) in t.errors {
                    *tally.errors.entry(k).or_default() += c;
                }
                lead_ids.extend(ids);
            }
            Err(_) => *tally.errors.entry("worker task failed").or_default() += 1,
        }
    }
    let capture_secs = started.elapsed().as_secs_f64();
    let capture_rate = tally.accepted as f64 / capture_secs;
    eprintln!(
        "captured {} of {n} in {capture_secs:.2} s: {capture_rate:.0} req/s; {} non-202, {} errors",
        tally.accepted,
        tally.non_202(),
        tally.error_count()
    );

    let watch = watch_outbox(&outbox, &lead_ids, started_wall, Duration::from_secs(args.wait_secs)).await;
    let e2e_secs = watch.last_written.map(|t| t.duration_since(started_wall).map_or(0.0, |d| d.as_secs_f64()));
    let e2e_rate = e2e_secs.filter(|s| *s > 0.0).map(|s| watch.assigned as f64 / s);
    let complete = watch.assigned == lead_ids.len();
    eprintln!(
        "assignment emails: {} of {} accepted leads{}; end to end {} → {} leads/s",
        watch.assigned,
        lead_ids.len(),
        if complete { "" } else { " (timed out waiting for the rest)" },
        e2e_secs.map_or("-".into(), |s| format!("{s:.2} s")),
        e2e_rate.map_or("-".into(), |r| format!("{r:.0}")),
    );
    if watch.io_errors > 0 {
        eprintln!("outbox: {} read errors while watching", watch.io_errors);
    }
    let (statuses, errors) = tally.json();
    let ok = complete && tally.non_202() == 0 && tally.error_count() == 0 && tally.accepted == n as u64;
    Ok(Summary {
        ok,
        json: json!({
            "mode": "throughput",
            "run_id": run_id,
            "leads": n,
            "mix": format!("{:?}", args.mix).to_lowercase(),
            "concurrency": args.concurrency,
            "accepted": tally.accepted,
            "non_202": statuses,
            "errors": errors,
            "capture_seconds": round3(capture_secs),
            "capture_req_per_s": round3(capture_rate),
            "assigned": watch.assigned,
            "complete": complete,
            "e2e_seconds": e2e_secs.map(round3),
            "e2e_leads_per_s": e2e_rate.map(round3),
            "outbox_io_errors": watch.io_errors,
        }),
    })
}

struct Watch {
    assigned: usize,
    /// When the last of this run's assignment emails was written (its file's mtime).
    last_written: Option<SystemTime>,
    io_errors: u64,
}

/// Polls the outbox until every accepted lead has an assignment email, or `wait` has passed
/// since the posting ended. The end time is taken from the files' modification times, so the
/// polling interval does not blur it.
async fn watch_outbox(outbox: &Path, lead_ids: &HashSet<String>, started: SystemTime, wait: Duration) -> Watch {
    let deadline = Instant::now() + wait;
    let mut seen: HashMap<String, SystemTime> = HashMap::with_capacity(lead_ids.len());
    let mut io_errors = 0;
    loop {
        match std::fs::read_dir(outbox) {
            Ok(entries) => {
                for entry in entries {
                    let Ok(entry) = entry else {
                        io_errors += 1;
                        continue;
                    };
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    let Some(id) = assignment_lead_id(&name) else { continue };
                    if seen.contains_key(id) || !lead_ids.contains(id) {
                        continue;
                    }
                    let written = match entry.metadata().and_then(|m| m.modified()) {
                        Ok(t) => t,
                        Err(_) => {
                            io_errors += 1;
                            SystemTime::now()
                        }
                    };
                    seen.insert(id.to_owned(), written.max(started));
                }
            }
            Err(_) => io_errors += 1,
        }
        if seen.len() >= lead_ids.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Watch { assigned: seen.len(), last_written: seen.values().max().copied(), io_errors }
}

/// The lead id in an assignment email's file name, `assignment-<ULID>-<rep>.eml`.
fn assignment_lead_id(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix("assignment-")?;
    rest.get(..26).filter(|id| rest.as_bytes().get(26) == Some(&b'-') && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn latency(args: &Args, client: reqwest::Client, base: &str, run_id: &str) -> Result<Summary, String> {
    let total = (args.rate * args.duration).round() as usize;
    let url: Arc<str> = format!("{base}/leads").into();
    let bodies: Vec<Vec<u8>> = (0..total).map(|i| lead_body(run_id, i, args.mix)).collect();
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight));
    // Microseconds, 1 µs to 10 min at 3 significant digits.
    let new_histogram = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| format!("histogram: {e}"));
    let mut corrected = new_histogram()?;
    let mut service = new_histogram()?;
    let mut tally = Tally::default();
    let mut max_lag = Duration::ZERO;
    eprintln!(
        "latency: {total} requests at {} req/s for {} s to {url}, open loop (run {run_id})",
        args.rate, args.duration
    );

    let mut tasks = JoinSet::new();
    let mut record =
        |joined: Result<(Sent, Duration, Duration), tokio::task::JoinError>, tally: &mut Tally| match joined {
            Ok((sent, from_schedule, from_send)) => {
                tally.add(&sent);
                corrected.saturating_record(from_schedule.as_micros().try_into().unwrap_or(u64::MAX));
                service.saturating_record(from_send.as_micros().try_into().unwrap_or(u64::MAX));
            }
            Err(_) => *tally.errors.entry("request task failed").or_default() += 1,
        };
    // The timetable is kept by a plain thread: tokio's timer works in whole milliseconds, which
    // at 1,000 req/s would add up to a millisecond of the client's own lag to every request.
    let start = Instant::now();
    let rate = args.rate;
    let (ticks, mut due) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let ticker = std::thread::Builder::new().name("timetable".into()).spawn(move || {
        for i in 0..total {
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if ticks.send((i, scheduled)).is_err() {
                break;
            }
        }
    });
    let ticker = ticker.map_err(|e| format!("cannot start the timetable thread: {e}"))?;
    let mut bodies = bodies.into_iter();
    // Bounded: the ticker sends `total` ticks and then closes the channel.
    while let Some((i, scheduled)) = due.recv().await {
        max_lag = max_lag.max(scheduled.elapsed());
        let Some(body) = bodies.next() else {
            *tally.errors.entry("no body for a tick").or_default() += 1;
            continue;
        };
        let (client, url, in_flight) = (client.clone(), Arc::clone(&url), Arc::clone(&in_flight));
        tasks.spawn(async move {
            let permit = in_flight.acquire_owned().await;
            let sent_at = Instant::now();
            let sent = match permit {
                Ok(_permit) => post(&client, &url, body).await,
                Err(_) => Sent::Failed("in-flight limiter closed"),
            };
            (sent, scheduled.elapsed(), sent_at.elapsed())
        });
        // Collect what has finished as we go, so finished tasks do not pile up.
        while let Some(joined) = tasks.try_join_next() {
            record(joined, &mut tally);
        }
        if i + 1 == total {
            break;
        }
    }
    if ticker.join().is_err() {
        *tally.errors.entry("timetable thread failed").or_default() += 1;
    }
    let sending_secs = start.elapsed().as_secs_f64();
    // Bounded: every request has its own timeout; this deadline only guards against surprises.
    let drain_until = tokio::time::Instant::now() + Duration::from_secs(args.request_timeout.max(1) + 5);
    loop {
        match tokio::time::timeout_at(drain_until, tasks.join_next()).await {
            Ok(Some(joined)) => record(joined, &mut tally),
            Ok(None) => break,
            Err(_) => {
                *tally.errors.entry("unfinished at the end").or_default() += tasks.len() as u64;
                tasks.abort_all();
                break;
            }
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| round3(h.value_at_quantile(q) as f64 / 1000.0);
    let (statuses, errors) = tally.json();
    eprintln!(
        "sent {total} in {sending_secs:.2} s ({:.0} req/s); {} accepted, {} non-202, {} errors",
        total as f64 / sending_secs,
        tally.accepted,
        tally.non_202(),
        tally.error_count()
    );
    eprintln!(
        "capture latency from the scheduled time: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        ms(&corrected, 0.5),
        ms(&corrected, 0.9),
        ms(&corrected, 0.99),
        round3(corrected.max() as f64 / 1000.0)
    );
    eprintln!(
        "  (from the actual send: p50 {} ms, p99 {} ms; sender lag at most {:.3} ms)",
        ms(&service, 0.5),
        ms(&service, 0.99),
        max_lag.as_secs_f64() * 1000.0
    );
    let ok = tally.non_202() == 0 && tally.error_count() == 0;
    Ok(Summary {
        ok,
        json: json!({
            "mode": "latency",
            "run_id": run_id,
            "rate": args.rate,
            "mix": format!("{:?}", args.mix).to_lowercase(),
            "duration_s": args.duration,
            "sent": total,
            "sending_seconds": round3(sending_secs),
            "accepted": tally.accepted,
            "non_202": statuses,
            "errors": errors,
            "p50_ms": ms(&corrected, 0.5),
            "p90_ms": ms(&corrected, 0.9),
            "p99_ms": ms(&corrected, 0.99),
            "max_ms": round3(corrected.max() as f64 / 1000.0),
            "service_p50_ms": ms(&service, 0.5),
            "service_p99_ms": ms(&service, 0.99),
            "max_sender_lag_ms": round3(max_lag.as_secs_f64() * 1000.0),
        }),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
