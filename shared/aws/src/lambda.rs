//! What every function's `main` shares on Lambda: JSON logs, the AWS adapters built once from the
//! environment the SAM template sets, and the SQS batch glue with partial failures.
//!
//! Nothing here may panic: release builds abort on panic, which would kill the execution
//! environment instead of failing one invocation.

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::identity::IdentityCache;
use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use leadflow_app::metrics::{Metric, count};
use leadflow_app::{BatchItem, Deadline, Failure, within};
use leadflow_core::config::ConfigSources;
use leadflow_core::live_config::SettingsOverrides;
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, Stage};
use leadflow_core::signing::SigningKeys;
use tracing::{error, warn};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::bus::EventBridgeBus;
use crate::dead_letters::ReasonLog;
use crate::env::{self, MissingVar};
use crate::mailer::SesMailer;
use crate::metrics::Emf;
use crate::queue::{SqsQueue, StageUrls};
use crate::store::DynamoStore;
use crate::unwired::Unwired;

/// JSON log lines on stdout, where Lambda sends them to CloudWatch, filtered by [`log_filter`]
/// of `RUST_LOG` and Lambda's own log-level setting (`AWS_LAMBDA_LOG_LEVEL`).
pub fn init_tracing() {
    let var = |name: &str| std::env::var(name).ok();
    let filter = log_filter(var("RUST_LOG").as_deref(), var("AWS_LAMBDA_LOG_LEVEL").as_deref());
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        // The spans carry the message and lead ids, and the runtime's span the request id.
        .with_current_span(true)
        .with_span_list(true)
        .with_ansi(false)
        // CloudWatch stamps every line already.
        .without_time()
        .finish()
        .with(filter)
        .try_init();
    if installed.is_err() {
        warn!("a tracing subscriber was installed already; keeping it");
    }
}

/// What is logged: `rust_log`'s directives (`info`, `leadflow_app=debug,warn`), else Lambda's
/// level, else info; directives that do not parse give info. Targets and levels only: the span
/// and field filters of `tracing_subscriber::EnvFilter` would link a regex engine into every
/// function, for filters nobody sets on a Lambda function.
pub fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    let given = |d: &&str| !d.trim().is_empty();
    // Lambda's levels include FATAL, which tracing does not have.
    let lambda_level = lambda_level.filter(given).map(|l| l.trim().to_ascii_lowercase().replace("fatal", "error"));
    let directives = rust_log.filter(given).map(str::to_string).or(lambda_level).unwrap_or_else(|| "info".into());
    directives.trim().parse().unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A function's ports: the table always; for the queue, the mailer and the bus either the AWS
/// adapter or [`Unwired`], so that each function's binary links only the SDK clients it uses.
pub type FunctionPorts<Q, M, B> = Adapters<DynamoStore, Q, M, B, SystemClock>;

/// Every AWS adapter (the tests' deployment on moto).
pub type AwsPorts = FunctionPorts<SqsQueue, SesMailer, EventBridgeBus>;

/// A port's adapter as a function builds it at start-up.
pub trait FromEnvironment: Sized {
    fn from_environment(sdk: &SdkConfig, env: &Environment) -> Self;
}

impl FromEnvironment for SqsQueue {
    fn from_environment(sdk: &SdkConfig, env: &Environment) -> Self {
        SqsQueue::new(aws_sdk_sqs::Client::new(sdk), env.queue_urls.clone())
    }
}

impl FromEnvironment for SesMailer {
    fn from_environment(sdk: &SdkConfig, env: &Environment) -> Self {
        SesMailer::new(ses_client(sdk), env.configuration_set.clone())
    }
}

impl FromEnvironment for EventBridgeBus {
    fn from_environment(sdk: &SdkConfig, env: &Environment) -> Self {
        EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), env.event_bus.clone())
    }
}

impl FromEnvironment for Unwired {
    fn from_environment(_sdk: &SdkConfig, _env: &Environment) -> Self {
        Unwired
    }
}

/// Why a function cannot start. Every message names what the operator has to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    MissingVar(#[from] MissingVar),
    #[error("environment variable {name} is not usable: {reason}")]
    InvalidVar { name: &'static str, reason: String },
    /// Names the secret, never its value.
    #[error("the signing keys in secret {secret} cannot be used: {reason}")]
    SigningKeys { secret: String, reason: String },
}

/// The environment variable holding the URL of `stage`'s queue.
pub fn queue_url_var(stage: Stage) -> &'static str {
    match stage {
        Stage::Validate => env::VALIDATE_QUEUE_URL,
        Stage::Score => env::SCORE_QUEUE_URL,
        Stage::Route => env::ROUTE_QUEUE_URL,
    }
}

/// Everything a function reads from its environment, before any AWS client exists.
pub struct Environment {
    pub table: String,
    /// Empty for the stages the function never sends to.
    pub queue_urls: StageUrls,
    pub event_bus: String,
    pub configuration_set: Option<String>,
    /// Where the signing keys are ([`env::SIGNING_KEYS_SECRET`]); read once the SDK is set up.
    pub signing_keys_secret: Option<String>,
    /// The deployment's settings, applied over the built-in configuration's.
    pub settings: SettingsOverrides,
}

impl Environment {
    /// The built-in configuration (`built_in`, see [`BuiltIn`]) with the deployment's settings,
    /// compiled when first read.
    pub fn config(&self, built_in: BuiltIn) -> ConfigHandle {
        ConfigHandle::deferred(built_in(), self.settings.clone())
    }
}

/// Reads the environment through `lookup` (so tests need not touch the process-wide
/// environment). `sends_to` names the stage queues the function sends to: only their URLs are
/// required, because the template gives each function the URLs it uses and no others.
///
/// The signing keys are optional here: `Settings.signing_keys` is empty without them
/// (such a function signs no links). A function that signs or verifies links starts with
/// [`environment_with_secret`] instead.
pub fn environment(lookup: impl Fn(&str) -> Option<String>, sends_to: &[Stage]) -> Result<Environment, StartupError> {
    read_environment(lookup, sends_to, false)
}

/// [`environment`] for the functions that sign or verify unsubscribe links (nurture,
/// unsubscribe, admin, route): a missing `LEADFLOW_SIGNING_KEYS_SECRET` is a start-up error.
pub fn environment_with_secret(
    lookup: impl Fn(&str) -> Option<String>,
    sends_to: &[Stage],
) -> Result<Environment, StartupError> {
    read_environment(lookup, sends_to, true)
}

fn read_environment(
    lookup: impl Fn(&str) -> Option<String>,
    sends_to: &[Stage],
    secret_required: bool,
) -> Result<Environment, StartupError> {
    let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let required = |name: &'static str| get(name).ok_or(MissingVar(name));
    let queue_url = |stage: Stage| -> Result<String, MissingVar> {
        if sends_to.contains(&stage) { required(queue_url_var(stage)) } else { Ok(String::new()) }
    };
    let table = required(env::TABLE)?;
    let queue_urls = StageUrls {
        validate: queue_url(Stage::Validate)?,
        score: queue_url(Stage::Score)?,
        route: queue_url(Stage::Route)?,
    };
    let event_bus = get(env::EVENT_BUS).unwrap_or_else(|| "default".to_string());
    let configuration_set = get(env::SES_CONFIGURATION_SET);

    let mut settings = SettingsOverrides::default();
    if let Some(sender) = get(env::SENDER) {
        if !sender.contains('@') {
            return Err(StartupError::InvalidVar { name: env::SENDER, reason: "not an email address".into() });
        }
        settings.sender = Some(sender);
    }
    if let Some(origins) = get(env::ALLOWED_ORIGINS) {
        let origins: Vec<String> =
            origins.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_string).collect();
        if origins.is_empty() {
            return Err(StartupError::InvalidVar {
                name: env::ALLOWED_ORIGINS,
                reason: "no origin in the comma-separated list".into(),
            });
        }
        settings.allowed_origins = Some(origins);
    }
    settings.public_url = get(env::PUBLIC_URL);
    let signing_keys_secret = get(env::SIGNING_KEYS_SECRET);
    if secret_required && signing_keys_secret.is_none() {
        return Err(MissingVar(env::SIGNING_KEYS_SECRET).into());
    }
    Ok(Environment { table, queue_urls, event_bus, configuration_set, signing_keys_secret, settings })
}

/// Where a function's built-in configuration comes from: `leadflow_app::config_files::sample`
/// (the TOML as written: capture reads `[thanks]` from its text, the admin function edits it) or
/// `sample_json` (the same made JSON when built: the function then links no TOML parser); their
/// `…_settings_alone` forms for a function that reads nothing but the settings (capture, validate,
/// unsubscribe, ses-events), which then links no reader of the rules' and campaigns' files.
pub type BuiltIn = fn() -> ConfigSources;

/// Builds the function's adapters from the process environment; call once per cold start. `Q`,
/// `M` and `B` are the adapters of the function's queue, mailer and bus ([`Unwired`] for those
/// it does not use). The SDK configuration ([`sdk_config`]) is loaded once and shared by the
/// clients. Logs the reason before returning an error, so it reaches CloudWatch as JSON.
///
/// For the functions that sign or verify no links: `LEADFLOW_SIGNING_KEYS_SECRET` is not read
/// (the template sets it on none of them), so they link no Secrets Manager client either.
pub async fn ports_from_env<Q, M, B>(
    sends_to: &[Stage],
    built_in: BuiltIn,
) -> Result<FunctionPorts<Q, M, B>, StartupError>
where
    Q: FromEnvironment,
    M: FromEnvironment,
    B: FromEnvironment,
{
    let env = started(read_environment(|name| std::env::var(name).ok(), sends_to, false))?;
    if env.signing_keys_secret.is_some() {
        warn!(var = env::SIGNING_KEYS_SECRET, "set, but this function signs no links: not read");
    }
    Ok(ports_from(&sdk_config().await, env, None, built_in))
}

/// [`ports_from_env`] for the functions that sign or verify unsubscribe links (nurture,
/// unsubscribe, admin, route): they read their signing keys at start and do not start without
/// them.
pub async fn ports_from_env_with_secret<Q, M, B>(
    sends_to: &[Stage],
    built_in: BuiltIn,
) -> Result<FunctionPorts<Q, M, B>, StartupError>
where
    Q: FromEnvironment,
    M: FromEnvironment,
    B: FromEnvironment,
{
    let env = started(read_environment(|name| std::env::var(name).ok(), sends_to, true))?;
    let sdk = sdk_config().await;
    // `read_environment` refuses to go on without the secret's name when it is required.
    let secret = env.signing_keys_secret.clone().unwrap_or_default();
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let keys = started(signing_keys(&client, &secret).await)?;
    Ok(ports_from(&sdk, env, Some(keys), built_in))
}

/// `result`, its error logged as the reason the function cannot start.
fn started<T>(result: Result<T, StartupError>) -> Result<T, StartupError> {
    result.inspect_err(|e| {
        error!(error = %e, "the function cannot start");
    })
}

fn ports_from<Q, M, B>(
    sdk: &SdkConfig,
    mut env: Environment,
    keys: Option<SigningKeys>,
    built_in: BuiltIn,
) -> FunctionPorts<Q, M, B>
where
    Q: FromEnvironment,
    M: FromEnvironment,
    B: FromEnvironment,
{
    let (queue, mailer, bus) =
        (Q::from_environment(sdk, &env), M::from_environment(sdk, &env), B::from_environment(sdk, &env));
    env.settings.signing_keys = keys;
    let config = env.config(built_in);
    Adapters {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), env.table),
        queue,
        mailer,
        bus,
        clock: SystemClock,
        config,
    }
}

/// The signing keys from Secrets Manager (`secret` is its ARN or name). Read once per cold start:
/// a rotation reaches a running function when Lambda starts a new instance, which is why old
/// keys stay in the secret until every link and session signed with them may go (see
/// docs/signing-keys.md).
pub async fn signing_keys(client: &aws_sdk_secretsmanager::Client, secret: &str) -> Result<SigningKeys, StartupError> {
    let refused = |reason: String| StartupError::SigningKeys { secret: secret.to_string(), reason };
    let value = client.get_secret_value().secret_id(secret).send().await.map_err(|e| {
        let e = e.into_service_error();
        refused(format!("{} ({})", e.meta().message().unwrap_or("no message"), e.meta().code().unwrap_or("no code")))
    })?;
    let text = value.secret_string().ok_or_else(|| refused("it holds no string".into()))?;
    SigningKeys::from_json(text).map_err(|e| refused(e.to_string()))
}

/// A record Lambda delivered without a message id, by its position in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnidentifiedRecord {
    pub position: usize,
}

/// Why a whole batch must be delivered again.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "{count} record(s) of the batch have no message id and cannot be reported as failed one by one; \
         the whole batch will be delivered again"
    )]
    UnidentifiedRecords { count: usize },
    #[error("the handler reported a failure without a message id; the whole batch will be delivered again")]
    EmptyFailureId,
}

impl From<BatchError> for Diagnostic {
    fn from(e: BatchError) -> Self {
        let error_type = match e {
            BatchError::UnidentifiedRecords { .. } => "Leadflow.UnidentifiedRecords",
            BatchError::EmptyFailureId => "Leadflow.EmptyFailureId",
        };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}

/// The batch as the stage handlers take it, and the records that have no message id.
///
/// A record without a message id cannot be named in `batchItemFailures`: an empty
/// `itemIdentifier` makes Lambda fail the whole batch silently. The caller must therefore fail
/// the whole invocation when the second list is not empty (see [`handle_sqs_event`]).
pub fn batch_items(event: &SqsEvent) -> (Vec<BatchItem>, Vec<UnidentifiedRecord>) {
    let mut items = Vec::with_capacity(event.records.len());
    let mut unidentified = Vec::new();
    for (position, record) in event.records.iter().enumerate() {
        match record.message_id.as_deref().filter(|id| !id.trim().is_empty()) {
            Some(id) => items.push(BatchItem {
                id: id.to_string(),
                // SQS never delivers an empty body; if one came, the handler drops it as malformed.
                body: record.body.clone().unwrap_or_default(),
            }),
            None => unidentified.push(UnidentifiedRecord { position }),
        }
    }
    (items, unidentified)
}

/// The partial batch response naming the messages to deliver again. A failure without an id is
/// refused rather than sent as an empty `itemIdentifier`.
pub fn batch_response(failures: Vec<Failure>) -> Result<SqsBatchResponse, BatchError> {
    let mut response = SqsBatchResponse::default();
    for failure in failures {
        if failure.id.trim().is_empty() {
            return Err(BatchError::EmptyFailureId);
        }
        let mut item = BatchItemFailure::default();
        item.item_identifier = failure.id;
        response.batch_item_failures.push(item);
    }
    Ok(response)
}

/// One SQS invocation: the batch through `handler`, answered with the messages that failed,
/// whose reasons go to `reasons` when there is one.
pub async fn handle_sqs_event<F, Fut>(
    handler: &F,
    event: &SqsEvent,
    reasons: Option<&ReasonLog>,
) -> Result<SqsBatchResponse, BatchError>
where
    F: Fn(Vec<BatchItem>) -> Fut,
    Fut: Future<Output = Vec<Failure>>,
{
    let (items, unidentified) = batch_items(event);
    let failures = handler(items).await;
    if let Some(reasons) = reasons {
        reasons.record_failures(&event.records, &failures).await;
    }
    if !unidentified.is_empty() {
        // Failing the invocation is the only correct answer: Lambda then delivers every message
        // of the batch again, the unidentified ones included. The identified ones were handled
        // first anyway, so their leads move on now; handlers are idempotent, so handling them
        // again on the redelivery changes nothing.
        let positions: Vec<usize> = unidentified.iter().map(|u| u.position).collect();
        error!(?positions, "SQS records without a message id; failing the whole batch");
        return Err(BatchError::UnidentifiedRecords { count: unidentified.len() });
    }
    batch_response(failures)
}

/// Kept free before an SQS invocation's deadline: the answer naming the failed records must
/// reach Lambda, or the whole batch comes back.
pub const BATCH_MARGIN: Duration = Duration::from_secs(1);

/// Runs an SQS-triggered stage until the execution environment is shut down. The event source
/// mapping must have `FunctionResponseTypes: [ReportBatchItemFailures]`, or a failed message
/// would be dropped with its neighbours' success.
///
/// Each invocation runs under its deadline (`leadflow_app::within`): the batch starts no
/// record that would not end [`BATCH_MARGIN`] before it (those are answered as failures and
/// come back), and the effects' claims are leased until the deadline, so a claim of an
/// invocation that timed out or crashed has expired before SQS delivers its message again.
pub async fn run_sqs_stage<F, Fut>(reasons: ReasonLog, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Vec<BatchItem>) -> Fut,
    Fut: Future<Output = Vec<Failure>>,
{
    let handler = &handler;
    let emf = &Emf::from_env();
    let max_receives = max_receives(|name| std::env::var(name).ok());
    let reasons = &reasons;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deadline = Deadline::invocation(event.context.deadline(), BATCH_MARGIN);
        // Boxed: nested in the runtime's futures, the handlers' futures (SDK calls inside
        // domain steps) go past the compiler's type layout depth limit.
        Box::pin(async move {
            emf.metered(within(deadline, handle_sqs_counted(handler, &event.payload, Some(reasons), max_receives)))
                .await
        })
    }))
    .await
}

/// [`handle_sqs_event`], counting the records its answer sends to the dead-letter queue when
/// the queue's `max_receives` is known.
pub async fn handle_sqs_counted<F, Fut>(
    handler: &F,
    event: &SqsEvent,
    reasons: Option<&ReasonLog>,
    max_receives: Option<u32>,
) -> Result<SqsBatchResponse, BatchError>
where
    F: Fn(Vec<BatchItem>) -> Fut,
    Fut: Future<Output = Vec<Failure>>,
{
    let answer = handle_sqs_event(handler, event, reasons).await;
    if let Some(max) = max_receives {
        count(Metric::DeadLettered, last_receives(event, &answer, max));
    }
    answer
}

/// The stage queue's `maxReceiveCount` ([`env::MAX_RECEIVES`]). Without it dead letters are not
/// counted (said once, at start); the queues' own dead-letter alarms still see them.
pub fn max_receives(lookup: impl Fn(&str) -> Option<String>) -> Option<u32> {
    let value = lookup(env::MAX_RECEIVES);
    let parsed = value.as_deref().map(str::trim).and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 0);
    if parsed.is_none() {
        warn!(var = env::MAX_RECEIVES, ?value, "not a receive count: dead letters are not counted");
    }
    parsed
}

/// How many records of `event` the queue moves to its dead-letter queue after this answer: those
/// that failed (named in the answer, or every record when the whole batch failed) on their
/// `max_receives`-th receive or later (`ApproximateReceiveCount`).
pub fn last_receives(event: &SqsEvent, answer: &Result<SqsBatchResponse, BatchError>, max_receives: u32) -> u64 {
    let failed = |id: Option<&str>| match answer {
        Err(_) => true,
        Ok(response) => id.is_some_and(|id| response.batch_item_failures.iter().any(|f| f.item_identifier == id)),
    };
    let last = |record: &aws_lambda_events::event::sqs::SqsMessage| {
        let receives = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.trim().parse::<u32>().ok());
        receives.is_some_and(|n| n >= max_receives)
    };
    event.records.iter().filter(|r| failed(r.message_id.as_deref()) && last(r)).count() as u64
}

/// How long an AWS call may take. Every call the functions make (DynamoDB, SQS, SES,
/// EventBridge) takes milliseconds; one that hangs must come back as an error while the
/// invocation can still answer, which needs the whole call, retries included, well inside the
/// shortest function timeout (10 s). An attempt that has not answered in 3 s is abandoned and
/// retried (the SDK's standard retries: 3 attempts); after 8 s the call fails. Connecting gets
/// 3 s, about the SDK's default.
pub fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The SDK configuration every function's clients are built from: region, credentials and
/// `AWS_ENDPOINT_URL` from the environment, and [`sdk_timeouts`].
///
/// Only from the environment, which is where Lambda puts them (`AWS_REGION`, the role's
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`): not through
/// `aws_config::load_defaults`, whose default chain (profiles, SSO, web identity through STS,
/// ECS, IMDS) never finds anything on Lambda but links an STS client and the rest into every
/// function and reads the profile files at each cold start. The rest is what `load_defaults`
/// gives when no profile or `AWS_*` setting says otherwise: standard retries (3 attempts), the
/// lazy identity cache, the latest behavior version.
pub async fn sdk_config() -> SdkConfig {
    let endpoint_url = std::env::var("AWS_ENDPOINT_URL").ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(crate::https::https_client())
        .region(EnvironmentVariableRegionProvider::new().region().await)
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .identity_cache(IdentityCache::lazy().build())
        .retry_config(RetryConfig::standard())
        .timeout_config(sdk_timeouts());
    builder.set_endpoint_url(endpoint_url);
    builder.build()
}

/// [`sdk_timeouts`] for SES, without the per-attempt timeout: SES does not drop a repeated
/// `SendEmail`, so an attempt abandoned after SES took the message would send it twice. A hung
/// send still fails after the operation's 8 s; throttling, answered at once, is still retried.
pub fn ses_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .disable_operation_attempt_timeout()
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// The SES client of the functions: `sdk`'s, with [`ses_timeouts`].
pub fn ses_client(sdk: &SdkConfig) -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::from_conf(aws_sdk_sesv2::config::Builder::from(sdk).timeout_config(ses_timeouts()).build())
}

/// Decides whether one more round of work fits before an invocation's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: SystemTime,
    margin: Duration,
}

impl Budget {
    /// `margin` is kept free before `deadline` for answering and flushing logs.
    pub fn new(deadline: SystemTime, margin: Duration) -> Self {
        Self { deadline, margin }
    }

    /// Whether a round expected to last `round` (the last one's duration is a fair guess) ends
    /// before the margin, starting at `now`. A deadline already past leaves no time.
    pub fn fits(&self, now: SystemTime, round: Duration) -> bool {
        self.deadline.duration_since(now).is_ok_and(|left| left > self.margin.saturating_add(round))
    }
}
