//! The local stack: every stage's handler from `functions/*`, in one process, over the embedded
//! adapters (SQLite store and queues, `.eml` outbox, JSON-lines events). Nothing here decides
//! anything about a lead; it only receives, calls the handlers and acknowledges.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use leadflow_admin::AdminAuth;
use leadflow_admin::console::SignIn;
use leadflow_admin::console::sign_in::{LocalCodes, MintError, link_json};
use leadflow_app::api_error::ApiError;
use leadflow_app::{BatchItem, Failure};
use leadflow_core::dead_letters::{DeadLetterList, Redrive};
use leadflow_core::error::QueueError;
use leadflow_core::ports::Ports;
use leadflow_core::ports::{Adapters, ConfigHandle, DeadLetters, Stage, StageQueue};
use leadflow_core::signing::SigningKeys;
use leadflow_local::{JsonlBus, OutboxMailer, SqliteQueue, SqliteStore, SystemClock};
use leadflow_nurture::drain::{TickBudget, drain};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::{error, info};

use leadflow_app::config_files::{self, ConfigLoadError};

mod data_lock;
pub mod guard;

pub use data_lock::LOCK_FILE;

/// The data folder's intake file, beside `leadflow.db`: submissions waiting for validate.
pub const INTAKE_FILE: &str = "intake.db";

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// A configuration folder; `None` uses the built-in sample.
    pub config_dir: Option<PathBuf>,
    /// `None` makes up a random one.
    pub admin_token: Option<String>,
    /// How much faster than real time the clock runs (for demos of nurture timing).
    pub clock_speed: f64,
    /// How often the nurture scheduler ticks.
    pub nurture_every: Duration,
    /// How long a received message stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".leadflow"),
            config_dir: None,
            admin_token: None,
            clock_speed: 1.0,
            nurture_every: Duration::from_secs(1),
            visibility_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("the admin token (LEADFLOW_ADMIN_TOKEN or --admin-token) {0}")]
    AdminToken(#[from] guard::TokenProblem),
    #[error(transparent)]
    Config(#[from] ConfigLoadError),
    #[error("cannot open the data folder: {0}")]
    Data(#[from] leadflow_local::LocalError),
    #[error(transparent)]
    Lock(#[from] data_lock::LockError),
    #[error("cannot recover the data folder: {0}")]
    Recover(#[from] leadflow_core::error::StoreError),
    #[error("cannot start the stage workers' thread: {source}")]
    Runtime { source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the signing keys in {} cannot be used: {reason}", path.display())]
    SigningKeys { path: PathBuf, reason: String },
}

/// The stage queues as the handlers see them: validate's in the intake file, the others in the
/// store's, each send waking the stage's worker so that a lead moves on at once instead of at the
/// next poll.
#[derive(Clone)]
pub struct WakingQueue {
    /// Capture's messages to validate, in a file of their own (see `SqliteQueue::open_intake`).
    intake: SqliteQueue,
    /// Score's and route's, in the store's file: acknowledged in the batch's own commit.
    store: SqliteQueue,
    wake: Arc<[Notify; 3]>,
}

impl WakingQueue {
    fn of(&self, stage: Stage) -> &SqliteQueue {
        match stage {
            Stage::Validate => &self.intake,
            Stage::Score | Stage::Route => &self.store,
        }
    }
}

fn slot(stage: Stage) -> usize {
    match stage {
        Stage::Validate => 0,
        Stage::Score => 1,
        Stage::Route => 2,
    }
}

impl StageQueue for WakingQueue {
    async fn send(&self, stage: Stage, bodies: &[String]) -> Result<(), QueueError> {
        self.of(stage).send(stage, bodies).await?;
        self.wake[slot(stage)].notify_one();
        Ok(())
    }
}

/// The admin's view of the local dead letters; a redrive wakes the stage's worker, so the
/// messages are handled at once.
impl DeadLetters for WakingQueue {
    async fn list(&self, stage: Stage, limit: usize) -> Result<DeadLetterList, QueueError> {
        DeadLetters::list(self.of(stage), stage, limit).await
    }

    async fn redrive(&self, stage: Stage) -> Result<Redrive, QueueError> {
        let redrive = DeadLetters::redrive(self.of(stage), stage).await?;
        self.wake[slot(stage)].notify_one();
        Ok(redrive)
    }
}

pub type LocalPorts = Adapters<SqliteStore, WakingQueue, OutboxMailer, JsonlBus, SystemClock>;

/// A started local stack.
pub struct Running {
    pub addr: SocketAddr,
    pub outbox: PathBuf,
    pub events: PathBuf,
    pub database: PathBuf,
    pub admin_token: String,
    /// A one-time link that signs the local admin in to the console, minted at start.
    pub sign_in_link: String,
    pub ports: Arc<LocalPorts>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    stage_thread: Option<std::thread::JoinHandle<()>>,
    /// Released last, when the workers are done with the folder.
    _data_lock: data_lock::DataLock,
}

impl Running {
    /// Stops taking requests, lets every worker finish the batch in hand, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        if let Some(thread) = self.stage_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down.
    pub async fn run_until_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "cannot listen for SIGTERM; Ctrl-C still works");
                    let _ = ctrl_c.await;
                    return self.shutdown().await;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("shutting down");
        self.shutdown().await;
    }
}

/// Opens the data folder, binds the address and starts the HTTP API, the stage workers and the
/// nurture scheduler.
pub async fn start(opts: DevOptions) -> Result<Running, DevError> {
    // Before anything is opened: an empty token used to let every request through.
    if let Some(token) = &opts.admin_token {
        guard::check_admin_token(token)?;
    }
    let mut config = config_files::load(opts.config_dir.as_deref())?;
    leadflow_core::normalize::warm_up();
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| leadflow_local::LocalError::Io {
        action: "create",
        path: opts.data_dir.clone(),
        source,
    })?;
    // Before the folder is read or written: a second stack must not touch the first one's files.
    let data_lock = data_lock::lock(&opts.data_dir)?;
    config.settings.signing_keys = signing_keys(&opts.data_dir)?;
    let database = opts.data_dir.join("leadflow.db");
    let outbox = opts.data_dir.join("outbox");
    let events = opts.data_dir.join("events.jsonl");
    let store = SqliteStore::open(&database)?;
    let intake = SqliteQueue::open_intake(opts.data_dir.join(INTAKE_FILE))?;
    // What an older build left waiting for validate in the store's file.
    let moved = store.queue().move_stage_to(Stage::Validate, &intake)?;
    if moved > 0 {
        info!(moved, "messages waiting for validate moved to the intake file");
    }
    // This process is the only consumer of the files: what a killed predecessor held in flight
    // can be delivered again now rather than after its visibility timeout.
    let recovered = store.queue().recover_in_flight(Utc::now())? + intake.recover_in_flight(Utc::now())?;
    if recovered > 0 {
        info!(recovered, "messages a previous run held in flight are delivered again");
    }
    // Likewise for emails and events a killed predecessor had claimed but not finished: the outbox
    // names each file after its email's key, so one it had written already is not written twice.
    let released = store.release_dead_claims()?;
    if released > 0 {
        info!(released, "emails and events a previous run had claimed are tried again now");
    }
    let queue =
        WakingQueue { intake, store: store.queue(), wake: Arc::new([Notify::new(), Notify::new(), Notify::new()]) };
    let admin_token = opts.admin_token.clone().unwrap_or_else(random_token);
    let clock = if opts.clock_speed == 1.0 { SystemClock::new() } else { SystemClock::accelerated(opts.clock_speed) };
    // A stage's emails and events leave with its batch's writes, once they are committed: nothing
    // leaves about a write a crash could still undo (see `UnitOfWork`).
    let mailer = OutboxMailer::open(&outbox)?.joins_units_of(&store)?;
    let bus = JsonlBus::open(&events)?.joins_units_of(&store)?;
    let ports =
        Arc::new(Adapters { store, queue: queue.clone(), mailer, bus, clock, config: ConfigHandle::new(config) });

    let listener = TcpListener::bind(opts.addr).await.map_err(|source| DevError::Listen { addr: opts.addr, source })?;
    let addr = listener.local_addr().map_err(|source| DevError::Listen { addr: opts.addr, source })?;
    let hosts = Arc::new(guard::Hosts::new(&ports.config().settings.public_url, addr.ip()));
    let (shutdown, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let auth = AdminAuth::Bearer(admin_token.clone().into());
    let codes = Arc::new(LocalCodes::new());
    let base_url = loopback_url(addr);
    let sign_in_link = match codes.mint(&ports.config(), None, Utc::now()) {
        Ok(minted) => link_json(&minted, &base_url, None)["url"].as_str().unwrap_or_default().to_string(),
        // The local admin is always known; nothing to print otherwise.
        Err(_) => String::new(),
    };
    let app = Router::new()
        .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
        .merge(leadflow_capture::router(Arc::clone(&ports)))
        .merge(leadflow_admin::router(Arc::clone(&ports), auth.clone()))
        .merge(leadflow_admin::dead_letters::router(Arc::new(queue.clone()), auth.clone()))
        .merge(leadflow_admin::console::router(Arc::clone(&ports), SignIn::Local(Arc::clone(&codes))))
        .merge(sign_in_link_endpoint(Arc::clone(&ports), auth.clone(), codes, base_url))
        .merge(leadflow_unsubscribe::router(Arc::clone(&ports)))
        .merge(ses_events_endpoint(Arc::clone(&ports), auth))
        .fallback(|| async { ApiError::not_found("not_found", "No such endpoint.") })
        .layer(axum::middleware::from_fn_with_state(hosts, guard::host_guard));
    let mut http_stop = stop.clone();
    tasks.spawn(async move {
        // The peer address tells the console's sign-in links that they are opened on this machine.
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            error!(error = %e, "the HTTP server stopped");
        }
    });
    // The three stage workers share one thread of their own, off the HTTP runtime. A batch
    // never yields (its store calls are synchronous), so the workers take turns batch by batch
    // and each batch's unit of work is cut only by capture. With a thread each, the three took
    // turns on the one connection statement by statement: no commit was ever shared, and capture
    // queued behind three threads (docs/performance.md, section 2).
    let workers: Vec<_> = Stage::ALL
        .into_iter()
        .map(|stage| {
            stage_worker(
                Arc::clone(&ports),
                queue.of(stage).clone(),
                Arc::clone(&queue.wake),
                stage,
                opts.visibility_timeout,
                stop.clone(),
            )
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| DevError::Runtime { source })?;
    let stage_thread = std::thread::Builder::new()
        .name("stages".to_string())
        .spawn(move || {
            let workers_on_this_thread = tokio::task::LocalSet::new();
            for worker in workers {
                workers_on_this_thread.spawn_local(worker);
            }
            runtime.block_on(workers_on_this_thread);
        })
        .map_err(|source| DevError::Runtime { source })?;
    tasks.spawn(nurture_scheduler(Arc::clone(&ports), opts.nurture_every, stop));
    Ok(Running {
        addr,
        outbox,
        events,
        database,
        admin_token,
        sign_in_link,
        ports,
        shutdown,
        tasks,
        stage_thread: Some(stage_thread),
        _data_lock: data_lock,
    })
}

/// The keys links and console sessions are signed with: `LEADFLOW_UNSUBSCRIBE_SECRET`, else the
/// data folder's `unsubscribe.secret`, made up on first start and kept, so links in emails already
/// sent keep working after a restart. The file holds one secret, or the same JSON key ring as the
/// AWS secret (`{"current": id, id: secret, ...}`) to try a rotation locally.
fn signing_keys(data_dir: &std::path::Path) -> Result<SigningKeys, DevError> {
    if let Ok(secret) = std::env::var("LEADFLOW_UNSUBSCRIBE_SECRET")
        && !secret.trim().is_empty()
    {
        return Ok(SigningKeys::single(secret.trim()));
    }
    let path = data_dir.join("unsubscribe.secret");
    let io = |action: &'static str, source: std::io::Error| {
        DevError::Data(leadflow_local::LocalError::Io { action, path: path.clone(), source })
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().starts_with('{') => SigningKeys::from_json(s.trim())
            .map_err(|e| DevError::SigningKeys { path: path.clone(), reason: e.to_string() }),
        Ok(s) if !s.trim().is_empty() => Ok(SigningKeys::single(s.trim())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("read", e)),
        _ => {
            let secret = format!("{}{}", random_token(), random_token());
            std::fs::write(&path, &secret).map_err(|e| io("write", e))?;
            Ok(SigningKeys::single(secret))
        }
    }
}

/// `POST /dev/ses-events`: the local stand-in for SES publishing events through EventBridge.
/// Takes the same JSON an EventBridge rule delivers (see functions/ses-events/tests/fixtures) and
/// hands it to the same handler. Guarded by the admin token, since it can suppress addresses.
fn ses_events_endpoint(ports: Arc<LocalPorts>, auth: AdminAuth) -> Router {
    use axum::http::HeaderMap;
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let ports = Arc::clone(&ports);
        let auth = auth.clone();
        async move {
            if !auth.allows(&headers) {
                return ApiError::unauthorized().into_response();
            }
            let event: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    return ApiError::bad_request("malformed_json", format!("The body is not JSON: {e}"))
                        .into_response();
                }
            };
            match leadflow_ses_events::handle_event(&*ports, &event).await {
                Ok(outcome) => axum::Json(json!({ "outcome": format!("{outcome:?}") })).into_response(),
                Err(leadflow_app::StageError::Permanent(m)) => {
                    ApiError::unprocessable("invalid_event", m).into_response()
                }
                // A local endpoint: the cause is answered, to whoever runs the stack.
                Err(leadflow_app::StageError::Retryable(m)) => ApiError::temporarily_unavailable(m).into_response(),
            }
        }
    };
    Router::new().route("/dev/ses-events", axum::routing::post(handler))
}

/// Where a browser on this machine reaches the stack: a wildcard address is reached on loopback.
fn loopback_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        addr.ip()
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[derive(Debug, Default, serde::Deserialize)]
struct LinkRequest {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /dev/sign-in-link`: a one-time console sign-in link for someone the configuration knows
/// (`leadflow console link --as <email>`). Guarded by the admin token: a link is a sign-in.
fn sign_in_link_endpoint(ports: Arc<LocalPorts>, auth: AdminAuth, codes: Arc<LocalCodes>, base_url: String) -> Router {
    use axum::http::HeaderMap;
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let ports = Arc::clone(&ports);
        let auth = auth.clone();
        let codes = Arc::clone(&codes);
        let base_url = base_url.clone();
        async move {
            if !auth.allows(&headers) {
                return ApiError::unauthorized().into_response();
            }
            let request: LinkRequest = if body.is_empty() {
                LinkRequest::default()
            } else {
                // Through a map: serde would also read the struct from an array, `[email, next]`.
                let object = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body);
                match object.and_then(|o| serde_json::from_value(serde_json::Value::Object(o))) {
                    Ok(r) => r,
                    Err(e) => {
                        let message = format!("The body is not a JSON object of email and next: {e}");
                        return ApiError::bad_request("malformed_body", message).into_response();
                    }
                }
            };
            match codes.mint(&ports.config(), request.email.as_deref(), Utc::now()) {
                Ok(minted) => axum::Json(link_json(&minted, &base_url, request.next.as_deref())).into_response(),
                Err(e @ MintError::UnknownPerson(_)) => {
                    ApiError::unprocessable("unknown_person", e.to_string()).with_field("email").into_response()
                }
            }
        }
    };
    Router::new().route("/dev/sign-in-link", axum::routing::post(handler))
}

fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The most messages a stage takes at once. On Lambda a batch (10, `template.yaml`) decides the
/// invocations paid; here it decides the commits, since a batch's writes share one. With 50 a
/// commit holds about five times the leads it did with 10, and the EMEA load ran ≈ 10 % faster on
/// ≈ 10 % less CPU (docs/performance.md, section 2). Larger batches gained little more and hold
/// the stage thread, which the three stages share, for longer.
const STAGE_BATCH: usize = 50;

/// How long a failed message waits before its next delivery: 1 s, 2 s, 4 s … up to a minute.
fn backoff(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

async fn stage_worker(
    ports: Arc<LocalPorts>,
    queue: SqliteQueue,
    wake: Arc<[Notify; 3]>,
    stage: Stage,
    visibility: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // In the store's file, the acknowledgement commits with the writes it acknowledges. In the
    // intake file it cannot: it follows their commit, and is not made if that failed (a crash in
    // between hands the batch to validate again, which finds its work done).
    let acknowledged_with_the_writes = queue.shares_file_with(&ports.store);
    loop {
        if *stop.borrow() {
            return;
        }
        // Queue timing runs on real time even when the domain clock is accelerated.
        let received = match queue.receive(stage, STAGE_BATCH, visibility, Utc::now()) {
            Ok(r) => r,
            Err(e) => {
                error!(stage = stage.as_str(), error = %e, "cannot read the stage queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if received.is_empty() {
            tokio::select! {
                _ = wake[slot(stage)].notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                // An error means the stack was dropped without a shutdown: stop too.
                changed = stop.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let counts: Vec<(String, u32)> = received.iter().map(|r| (r.id.clone(), r.receive_count)).collect();
        let batch: Vec<BatchItem> = received.into_iter().map(|r| BatchItem { id: r.id, body: r.body }).collect();
        // The batch's writes, the messages it passes on and its acknowledgement share commits
        // (group commit; see `UnitOfWork` for when they are made). The receive above committed
        // on its own: a message that crashes the process must still have its delivery counted,
        // or it would never be dead-lettered.
        let unit = match ports.store.begin_unit() {
            Ok(unit) => Some(unit),
            Err(e) => {
                error!(stage = stage.as_str(), error = %e, "cannot start the batch's unit of work; each write commits alone");
                None
            }
        };
        let failed: Vec<Failure> = match stage {
            Stage::Validate => leadflow_validate::handle_batch(&*ports, batch).await,
            Stage::Score => leadflow_score::handle_batch(&*ports, batch).await,
            Stage::Route => leadflow_route::handle_batch(&*ports, batch).await,
        };
        let done: Vec<String> =
            counts.iter().filter(|(id, _)| !failed.iter().any(|f| f.id == *id)).map(|(id, _)| id.clone()).collect();
        if acknowledged_with_the_writes {
            acknowledge(&queue, stage, &done);
        }
        let committed = match unit.map(|u| u.commit()) {
            Some(Err(e)) => {
                error!(
                    stage = stage.as_str(),
                    error = %e,
                    "cannot commit the batch; its messages are handled again after their visibility timeout"
                );
                false
            }
            _ => true,
        };
        if committed && !acknowledged_with_the_writes {
            acknowledge(&queue, stage, &done);
        }
        for f in failed {
            let count = counts.iter().find(|(id, _)| *id == f.id).map_or(1, |(_, c)| *c);
            if let Err(e) = queue.release(stage, &f.id, &f.reason, backoff(count), Utc::now()) {
                error!(stage = stage.as_str(), error = %e, "cannot release a failed message; it reappears after its timeout");
            }
        }
    }
}

fn acknowledge(queue: &SqliteQueue, stage: Stage, done: &[String]) {
    if let Err(e) = queue.delete(stage, done) {
        error!(stage = stage.as_str(), error = %e, "cannot acknowledge handled messages; they will be handled again");
    }
}

/// The time one local nurture tick may take: each tick starts with the SLA pass, so a long
/// drip backlog delays it (and a shutdown) by this at most. Nothing is paced locally.
const LOCAL_TICK_BUDGET: Duration = Duration::from_secs(10);

async fn nurture_scheduler(ports: Arc<LocalPorts>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        // Keep ticking while a tick fills its limit or its budget, so a backlog drains without
        // waiting.
        let budget = TickBudget::Each(LOCAL_TICK_BUDGET);
        if let Err(e) = drain(&*ports, None, budget, || !*stop.borrow()).await {
            error!(error = %e, "nurture tick failed");
        }
    }
}
