#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::http::HttpRequest;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Credentials, Intercept, RuntimeComponents, SharedHttpClient};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use leadflow_aws::store::DynamoStore;

/// The moto server the tests talk to. The project's test script starts one and exports this
/// variable; without it these tests fail rather than pass vacuously.
pub const ENDPOINT_VAR: &str = "LEADFLOW_MOTO_ENDPOINT";

pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.is_empty() => v.trim_end_matches('/').to_string(),
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need a moto server (`moto_server -p 4566`, then \
             `export {ENDPOINT_VAR}=http://127.0.0.1:4566`); scripts/test starts one for you"
        ),
    }
}

/// Attempts per request. moto's TransactWriteItems deep-copies the table while other request
/// threads may write to it, and then answers 500 ("dictionary changed size during iteration" in
/// its log); DynamoDB's own 500s are retried by the SDK the same way. Three attempts (the SDK's
/// default) were not always enough with both cores busy; the race is moto's, not the store's.
/// [`OneWriteAtATime`] keeps one process's writes apart; the attempts still cover another test
/// process writing to the same moto at that moment.
const MOTO_ATTEMPTS: u32 = 10;

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(OneWriteAtATime(leadflow_aws::https::https_client())))
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(MOTO_ATTEMPTS))
        .load()
        .await
}

/// The HTTPS client, with this process's writes to each DynamoDB table sent to moto one at a time.
///
/// DynamoDB applies each conditional write (and each transaction) atomically, so of two writers
/// racing for the same version exactly one succeeds. moto does not: it answers requests on
/// threads and takes no lock around an operation, so two racing transactions can both pass
/// their conditions, and the conformance checks that race writers failed at random (4 runs in 200
/// of `of_writers_racing_for_a_version_exactly_one_wins` with both cores busy). Sent one after
/// the other, the writes still race as the store's callers make them (each is issued concurrently
/// and waits its turn), and moto sees one of the orders DynamoDB itself could have chosen. Reads
/// are not held back, nor are writes to other tables: each test has a table of its own, and one
/// lock for all of them made the conformance suite 60 % slower.
#[derive(Debug)]
struct OneWriteAtATime(SharedHttpClient);

/// A lock per table, held while a write to it is with moto.
static TABLE_WRITES: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Mutex::default);

const DYNAMODB_WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"];

impl HttpClient for OneWriteAtATime {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(OneWriteAtATimeConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct OneWriteAtATimeConnector(SharedHttpConnector);

/// The table a DynamoDB write names first (a transaction's items are all in one table here).
fn written_table(request: &HttpRequest) -> Option<String> {
    let operation = request.headers().get("x-amz-target")?.strip_prefix("DynamoDB_20120810.")?;
    if !DYNAMODB_WRITES.contains(&operation) {
        return None;
    }
    let body = std::str::from_utf8(request.body().bytes()?).ok()?;
    let (_, after) = body.split_once(r#""TableName":""#)?;
    Some(after.split('"').next()?.to_string())
}

impl HttpConnector for OneWriteAtATimeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let Some(table) = written_table(&request) else { return self.0.call(request) };
        let lock = TABLE_WRITES.lock().expect("the table locks").entry(table).or_default().clone();
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            let _turn = lock.lock().await;
            inner.call(request).await
        })
    }
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// What SDK clients send, one entry per request (every attempt counted), as `read` makes it of
/// the request before it goes out (`None`: nothing). One log may be shared by the interceptors of
/// several clients ([`Recorder::reading`]).
#[derive(Clone)]
pub struct Recorder<T> {
    log: Arc<Mutex<Vec<T>>>,
    read: Arc<ReadRequest<T>>,
}

type ReadRequest<T> = dyn Fn(&HttpRequest) -> Option<T> + Send + Sync;

impl<T> Recorder<T> {
    pub fn new(read: impl Fn(&HttpRequest) -> Option<T> + Send + Sync + 'static) -> Self {
        Self { log: Arc::default(), read: Arc::new(read) }
    }

    /// An interceptor writing to the same log, reading requests its own way.
    pub fn reading(&self, read: impl Fn(&HttpRequest) -> Option<T> + Send + Sync + 'static) -> Self {
        Self { log: Arc::clone(&self.log), read: Arc::new(read) }
    }

    /// What was recorded since the last call, in order.
    pub fn take(&self) -> Vec<T> {
        self.log.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

impl<T> std::fmt::Debug for Recorder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl<T: Send + 'static> Intercept for Recorder<T> {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(entry) = (self.read)(context.request())
            && let Ok(mut log) = self.log.lock()
        {
            log.push(entry);
        }
        Ok(())
    }
}

/// The operation a JSON-protocol request names in `X-Amz-Target` (DynamoDB, SQS, EventBridge):
/// `PutItem`, `TransactWriteItems`, …
pub fn target_operation(request: &HttpRequest) -> Option<String> {
    let target = request.headers().get("x-amz-target")?;
    Some(target.rsplit('.').next().unwrap_or(target).to_string())
}

/// The operations a DynamoDB client sent, in order.
pub type Requests = Recorder<String>;

/// A fresh table with the template's definition, a store over it, the raw client, and the
/// request log of the store's client.
pub struct Table {
    pub name: String,
    pub store: DynamoStore,
    pub client: aws_sdk_dynamodb::Client,
    pub requests: Requests,
}

/// A fresh deployment's table and queues, exactly as template.yaml declares them, named
/// `<prefix>-<unique>`.
pub async fn deployment(config: &SdkConfig, prefix: &str) -> leadflow_aws::provision::Provisioned {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .expect("template.yaml at the workspace root");
    leadflow_aws::provision::create_from_template(config, &template, &unique(prefix))
        .await
        .expect("resources from template.yaml")
}

/// A sender address moto's SES accepts: moto refuses to send from an unverified one.
// Not every test binary that includes this module sends email.
#[allow(dead_code)]
pub async fn verified_sender(config: &SdkConfig, prefix: &str) -> String {
    let sender = format!("{}@leadflow.test", unique(prefix));
    aws_sdk_sesv2::Client::new(config)
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("verify the sender");
    sender
}

pub async fn table() -> Table {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    // The table exactly as template.yaml defines it (its queues come along, unused here).
    let name = deployment(&config, "lf").await.table;
    let requests = Requests::new(|request| Some(target_operation(request).unwrap_or_else(|| "?".into())));
    let logged = aws_sdk_dynamodb::config::Builder::from(&config).interceptor(requests.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(logged), &name);
    Table { name, store, client, requests }
}

// Not every test binary that includes this module builds leads.
#[allow(unused_imports)]
pub use leadflow_memory::fixtures::*;

/// Reads moto's `/moto-api/data.json` until `pick` finds in it what the caller waits for, for at
/// most `patience` and at least three reads. moto builds the document by walking
/// live objects, and a test creating resources at that moment can make the walk fail (a 500):
/// an answer that is not JSON is read again rather than failing the test. Late in a run, with
/// everything the earlier test binaries made still in moto, one walk can take longer than the
/// patience, so the patience alone would leave a failed walk no second try. `Err` says what
/// the last answer was.
pub async fn moto_data_until<T>(
    patience: std::time::Duration,
    pick: impl Fn(&serde_json::Value) -> Option<T>,
) -> Result<T, String> {
    let url = format!("{}/moto-api/data.json", endpoint());
    let until = std::time::Instant::now() + patience;
    const FEWEST_READS: u32 = 3;
    let mut reads = 0;
    loop {
        reads += 1;
        let last = match reqwest::get(&url).await {
            Err(e) => format!("{url}: {e}"),
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Err(e) => format!("{url}: {status}: {e}"),
                    Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(data) => match pick(&data) {
                            Some(found) => return Ok(found),
                            None => format!("{url}: read, and what is waited for is not in it yet"),
                        },
                        Err(_) => format!("{url}: {status}: {}", text.chars().take(300).collect::<String>()),
                    },
                }
            }
        };
        if std::time::Instant::now() >= until && reads >= FEWEST_READS {
            return Err(last);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The raw messages moto's SES recorded (`ses.RawMessage` in moto's data.json).
pub fn ses_raw_messages(data: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    data["ses"]["RawMessage"].as_array().into_iter().flatten()
}

/// The records Lambda's SQS event source hands a function for these messages, in Lambda's JSON
/// shape (`{"Records": records}` is the event).
pub fn lambda_sqs_records(messages: &[aws_sdk_sqs::types::Message], queue_arn: Option<&str>) -> Vec<serde_json::Value> {
    messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter().map(|(k, v)| (k.as_str().to_string(), serde_json::Value::String(v.clone()))).collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": attributes, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
            })
        })
        .collect()
}
