//! The whole pipeline on moto (`LEADFLOW_MOTO_ENDPOINT`), through the real SQS, DynamoDB, SES v2
//! and EventBridge APIs, with the real handlers run the way Lambda runs them:
//!
//! - capture gets an API Gateway HTTP API (payload 2.0) event through `lambda_http`;
//! - validate, score and route get `SqsEvent`s built from messages really received from their
//!   queues, by [`EventSourceMapping`], which does what Lambda's SQS event source mapping does
//!   with `ReportBatchItemFailures`: receive a batch, invoke, delete the records the response
//!   does not name, leave the others to come back after the visibility timeout (and, after
//!   `maxReceiveCount` receives, to go to the DLQ).
//!
//! Every test provisions its own table and queues from template.yaml under a unique prefix,
//! verifies its own sender and taps the default event bus with its own rule and queue, so the
//! tests run in parallel in one moto. Nothing waits a fixed time: every wait is a poll with a
//! deadline.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use http_body_util::BodyExt;
use lambda_http::http::StatusCode;
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::lambda::{AwsPorts, SystemClock, handle_sqs_event};
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::provision::{Provisioned, create_from_template};
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::store::DynamoStore;
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{Lead, LeadId};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{Adapters, ConfigHandle, LeadStore, Stage};
use leadflow_stage::{BatchItem, Failure};
use serde_json::{Value, json};
use tower::ServiceExt;

const REGION: &str = "us-east-1";
/// The page the fixture's requests come from; the tests' configuration allows it.
const ORIGIN: &str = "https://www.acme.example";
/// How long any one wait in these tests may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Routing for the tests: the sample's teams, reps without working hours (so that who gets a
/// lead does not depend on when the tests run), one rep in EMEA (so that who gets it is known).
const ROUTING: &str = r#"
fallback_owner = "desk"
sla_hours = 4

[[reps]]
id = "anna"
name = "Anna Schmidt"
email = "anna@acme.example"
time_zone = "Europe/Berlin"

[[reps]]
id = "carla"
name = "Carla Diaz"
email = "carla@acme.example"
time_zone = "America/New_York"

[[reps]]
id = "desk"
name = "Sales Desk"
email = "desk@acme.example"

[[teams]]
id = "emea"
name = "EMEA"
when = [{ field = "country", in = ["DE", "AT", "CH", "FR", "GB"] }]
members = [{ rep = "anna", weight = 1 }]

[[teams]]
id = "americas"
name = "Americas"
when = [{ field = "country", in = ["US", "CA"] }]
members = [{ rep = "carla", weight = 1 }]
"#;
const EMEA_REP: &str = "anna";
const EMEA_REP_EMAIL: &str = "anna@acme.example";

/// A lead the sample scoring qualifies (corporate address, senior title, company, target
/// country, one form submission) and the test routing sends to EMEA.
fn qualified_lead() -> Value {
    json!({"email": "ana@acme.io", "first_name": "Ana", "job_title": "CTO", "company": "Acme", "country": "DE"})
}

fn deadline() -> Instant {
    Instant::now() + PATIENCE
}

// ---------------------------------------------------------------------------------------------
// Request counting
// ---------------------------------------------------------------------------------------------

/// Requests sent, by `"<service> <operation>"`, every attempt counted. One `RequestCounts` is
/// shared by the interceptors of several clients.
#[derive(Debug, Clone, Default)]
struct RequestCounts(Arc<Mutex<BTreeMap<String, u32>>>);

impl RequestCounts {
    fn interceptor(&self, service: &'static str) -> CountRequests {
        CountRequests { service, counts: self.clone() }
    }

    fn take(&self) -> BTreeMap<String, u32> {
        self.0.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
struct CountRequests {
    service: &'static str,
    counts: RequestCounts,
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        // The JSON protocols (DynamoDB, SQS, EventBridge) name the operation in X-Amz-Target;
        // SES v2 is a REST API, named by method and path.
        let operation = match request.headers().get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => rest_operation(request.method(), request.uri()),
        };
        if let Ok(mut counts) = self.counts.0.lock() {
            *counts.entry(format!("{} {operation}", self.service)).or_insert(0) += 1;
        }
        Ok(())
    }
}

fn rest_operation(method: &str, uri: &str) -> String {
    let path = uri.split('?').next().unwrap_or(uri);
    let path = path.find("/v2/").map_or(path, |i| &path[i..]);
    match (method, path) {
        ("POST", "/v2/email/outbound-emails") => "SendEmail".to_string(),
        _ => format!("{method} {path}"),
    }
}

fn total(counts: &BTreeMap<String, u32>) -> u32 {
    counts.values().sum()
}

/// Operations down, `columns` across (each a step's counts), with a total column and row.
fn table_of(title: &str, columns: &[(&str, BTreeMap<String, u32>)]) -> String {
    let operations: std::collections::BTreeSet<&String> = columns.iter().flat_map(|(_, c)| c.keys()).collect();
    let mut out = format!("{title}\n  {:<30}", "operation");
    for (name, _) in columns {
        out.push_str(&format!(" {name:>9}"));
    }
    out.push_str(&format!(" {:>9}\n", "total"));
    let mut row = |label: &str, n: &dyn Fn(&BTreeMap<String, u32>) -> u32| {
        out.push_str(&format!("  {label:<30}"));
        for (_, counts) in columns {
            out.push_str(&format!(" {:>9}", n(counts)));
        }
        out.push_str(&format!(" {:>9}\n", columns.iter().map(|(_, c)| n(c)).sum::<u32>()));
    };
    for operation in operations {
        row(operation, &|c| c.get(operation).copied().unwrap_or(0));
    }
    row("total", &|c| total(c));
    out
}

// ---------------------------------------------------------------------------------------------
// Lambda's SQS event source mapping
// ---------------------------------------------------------------------------------------------

/// What Lambda's SQS event source mapping does for one function, with
/// `FunctionResponseTypes: [ReportBatchItemFailures]`: receive up to ten messages, hand them to
/// the function as an `SqsEvent`, delete the ones the response does not name. A failed
/// invocation (an error instead of a response) deletes nothing. Its SQS client is its own, so
/// that its requests are counted apart from the functions'.
struct EventSourceMapping {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    /// The visibility timeout each receive asks for: how long a failed message stays away.
    visibility_timeout: i32,
}

/// One batch as the mapping handled it.
struct Batch {
    event: SqsEvent,
    /// Each invocation's answer (a test may invoke the function more than once on a batch).
    responses: Vec<Result<SqsBatchResponse, String>>,
    /// Message ids left on the queue: the failures the last invocation reported.
    failed: Vec<String>,
    /// Message ids deleted.
    deleted: Vec<String>,
}

impl Batch {
    fn ids(&self) -> Vec<String> {
        self.event.records.iter().filter_map(|r| r.message_id.clone()).collect()
    }

    fn receive_counts(&self) -> Vec<u32> {
        self.event
            .records
            .iter()
            .map(|r| r.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(0))
            .collect()
    }
}

impl EventSourceMapping {
    async fn new(sqs: aws_sdk_sqs::Client, setup: &aws_sdk_sqs::Client, queue_url: &str, visibility: i32) -> Self {
        let queue_arn = queue_arn(setup, queue_url).await;
        Self { sqs, queue_url: queue_url.to_string(), queue_arn, visibility_timeout: visibility }
    }

    /// One poll; `None` when the queue had nothing visible within `wait_seconds`. Otherwise the
    /// batch went through `handler` `invocations` times (more than once to act out Lambda
    /// invoking again on the same messages), and the last answer decided what was deleted.
    async fn deliver<F, Fut>(&self, handler: &F, invocations: usize, wait_seconds: i32) -> Option<Batch>
    where
        F: Fn(Vec<BatchItem>) -> Fut,
        Fut: Future<Output = Vec<Failure>>,
    {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(self.visibility_timeout)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return None;
        }
        let event = sqs_event(&messages, &self.queue_arn);
        let mut responses = Vec::with_capacity(invocations);
        for _ in 0..invocations.max(1) {
            responses.push(handle_sqs_event(handler, &event).await.map_err(|e| e.to_string()));
        }
        let failed: Vec<String> = match responses.last() {
            Some(Ok(response)) => response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect(),
            // A failed invocation: the whole batch comes back.
            _ => messages.iter().filter_map(|m| m.message_id.clone()).collect(),
        };
        let mut deleted = Vec::new();
        let mut entries = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let id = message.message_id().expect("SQS gives every message an id");
            if failed.iter().any(|f| f == id) {
                continue;
            }
            let handle = message.receipt_handle().expect("a received message has a receipt handle");
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("delete entry"),
            );
            deleted.push(id.to_string());
        }
        if !entries.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .expect("DeleteMessageBatch");
            assert!(out.failed().is_empty(), "DeleteMessageBatch failed for {:?}", out.failed());
        }
        Some(Batch { event, responses, failed, deleted })
    }
}

/// The event Lambda hands the function for these messages, in Lambda's JSON shape.
fn sqs_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone()))).collect())
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().expect("queue ARN")
}

/// Visible + in flight: every message the queue holds.
async fn messages_held(sqs: &aws_sdk_sqs::Client, url: &str) -> u32 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    let n = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    n(QueueAttributeName::ApproximateNumberOfMessages) + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// The function behind each stage's queue.
async fn stage_function(ports: &AwsPorts, stage: Stage, items: Vec<BatchItem>) -> Vec<Failure> {
    match stage {
        Stage::Validate => leadflow_validate::handle_batch(ports, items).await,
        Stage::Score => leadflow_score::handle_batch(ports, items).await,
        Stage::Route => leadflow_route::handle_batch(ports, items).await,
    }
}

// ---------------------------------------------------------------------------------------------
// The deployment
// ---------------------------------------------------------------------------------------------

/// Clients that are not the functions' nor Lambda's: provisioning, inspection, test actions.
struct Setup {
    sdk: SdkConfig,
    ddb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
}

/// A rule on the default bus forwarding Leadflow's events to a queue of the test's own, and
/// every event read from that queue so far. Other tests' events arrive too (the default bus is
/// shared); callers pick theirs by lead id.
struct EventTap {
    rule: String,
    queue_url: String,
    seen: Mutex<Vec<Value>>,
}

/// One deployment of the pipeline: the template's table and queues, the functions' adapters,
/// one event source mapping per stage queue.
struct Pipeline {
    setup: Setup,
    made: Provisioned,
    ports: Arc<AwsPorts>,
    sender: String,
    /// Requests of the functions' own clients (the ports).
    functions: RequestCounts,
    /// Requests of the event source mappings (Lambda's poller, billed to the account as SQS
    /// requests all the same).
    lambda: RequestCounts,
    mappings: [EventSourceMapping; 3],
    tap: EventTap,
}

impl Pipeline {
    async fn new(name: &str, visibility_timeout: i32) -> Self {
        let sdk = common::sdk_config().await;
        let setup = Setup {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sdk,
        };
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
            .expect("template.yaml at the workspace root");
        let made = create_from_template(&setup.sdk, &template, &common::unique(name)).await.expect("provision");

        // moto refuses to send from an unverified address.
        let sender = format!("{}@leadflow.test", common::unique(name));
        aws_sdk_sesv2::Client::new(&setup.sdk)
            .create_email_identity()
            .email_identity(&sender)
            .send()
            .await
            .expect("verify the sender");

        let mut sources = leadflow_stage::config_files::sample();
        sources.routing = ROUTING.to_string();
        let mut config = CompiledConfig::compile(&sources).expect("the sample with the test routing compiles");
        config.settings.sender.email = sender.clone();
        config.settings.capture.allowed_origins = vec![ORIGIN.to_string()];

        let functions = RequestCounts::default();
        let sdk = &setup.sdk;
        let ddb = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(functions.interceptor("dynamodb")).build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk).interceptor(functions.interceptor("sqs")).build();
        let ses = aws_sdk_sesv2::config::Builder::from(sdk).interceptor(functions.interceptor("sesv2")).build();
        let events =
            aws_sdk_eventbridge::config::Builder::from(sdk).interceptor(functions.interceptor("eventbridge")).build();
        let ports: AwsPorts = Adapters {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(ddb), &made.table),
            queue: SqsQueue::new(aws_sdk_sqs::Client::from_conf(sqs), made.stage_urls.clone()),
            mailer: SesMailer::new(aws_sdk_sesv2::Client::from_conf(ses), None),
            bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(events), "default"),
            clock: SystemClock,
            config: ConfigHandle::new(config),
        };

        let lambda = RequestCounts::default();
        let poller = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk).interceptor(lambda.interceptor("sqs")).build(),
        );
        let mut mappings = Vec::new();
        for stage in Stage::ALL {
            let url = made.stage_urls.url(stage);
            mappings.push(EventSourceMapping::new(poller.clone(), &setup.sqs, url, visibility_timeout).await);
        }
        let mappings: [EventSourceMapping; 3] = mappings.try_into().ok().expect("three stages");

        let tap = EventTap::on_default_bus(&setup, name).await;
        Self { setup, made, ports: Arc::new(ports), sender, functions, lambda, mappings, tap }
    }

    fn mapping(&self, stage: Stage) -> &EventSourceMapping {
        &self.mappings[Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0)]
    }

    /// The store over the setup client: reads that are the test's, not the functions'.
    fn inspect(&self) -> DynamoStore {
        DynamoStore::new(self.setup.ddb.clone(), &self.made.table)
    }

    /// `POST /leads` with `lead` as the JSON body, as API Gateway hands it to the capture
    /// function: the fixture's event with the body (and its length) replaced.
    async fn capture(&self, lead: &Value) -> (StatusCode, Value) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apigw_v2_post_leads.json");
        let fixture = std::fs::read_to_string(path).expect("the API Gateway fixture");
        let mut event: Value = serde_json::from_str(&fixture).expect("JSON fixture");
        let body = lead.to_string();
        event["headers"]["content-length"] = Value::String(body.len().to_string());
        event["body"] = Value::String(body);
        let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event");
        let response =
            leadflow_capture::router(Arc::clone(&self.ports)).oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("a readable body").to_bytes();
        (parts.status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Captures `lead` and answers its id, after checking the answer is 202 with the id.
    async fn capture_accepted(&self, lead: &Value) -> LeadId {
        let (status, body) = self.capture(lead).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["lead_id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no lead id in {body}"))
    }

    /// Polls `stage`'s queue once and runs what came through the stage's function.
    async fn deliver(&self, stage: Stage, invocations: usize, wait_seconds: i32) -> Option<Batch> {
        let ports = &*self.ports;
        let function = move |items| stage_function(ports, stage, items);
        self.mapping(stage).deliver(&function, invocations, wait_seconds).await
    }

    /// Each stage in turn, until a whole round finds every stage queue empty. With
    /// `redeliver`, every batch goes to the function twice and every message that came from
    /// the functions is sent to its queue once more (the copies are not copied again).
    /// Answers every batch handled. Panics when a message fails or the queues do not settle.
    async fn settle(&self, redeliver: bool) -> Vec<(Stage, Batch)> {
        let until = deadline();
        let mut copies: HashSet<String> = HashSet::new();
        let mut handled = Vec::new();
        loop {
            let mut round = 0;
            for stage in Stage::ALL {
                while let Some(batch) = self.deliver(stage, if redeliver { 2 } else { 1 }, 0).await {
                    assert!(
                        batch.failed.is_empty(),
                        "{} failed {:?}: {:?}",
                        stage.as_str(),
                        batch.failed,
                        batch.responses
                    );
                    for response in &batch.responses {
                        assert!(response.is_ok(), "{} invocation failed: {response:?}", stage.as_str());
                    }
                    if redeliver {
                        for record in &batch.event.records {
                            let (Some(id), Some(body)) = (&record.message_id, &record.body) else { continue };
                            if copies.contains(id) {
                                continue;
                            }
                            let sent = self
                                .setup
                                .sqs
                                .send_message()
                                .queue_url(self.made.stage_urls.url(stage))
                                .message_body(body)
                                .send()
                                .await
                                .expect("SendMessage (a duplicate)");
                            copies.insert(sent.message_id.expect("message id"));
                        }
                    }
                    round += 1;
                    handled.push((stage, batch));
                    assert!(Instant::now() < until, "the stage queues did not settle in {PATIENCE:?}");
                }
            }
            if round == 0 {
                return handled;
            }
        }
    }

    /// The raw messages SES sent from this deployment's sender, polled until there are at
    /// least `at_least`.
    async fn emails_sent(&self, at_least: usize) -> Vec<SentEmail> {
        let read = common::moto_data_until(PATIENCE, |data| {
            let ours: Vec<SentEmail> = common::ses_raw_messages(data)
                .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(&self.sender)))
                .map(SentEmail::from_moto)
                .collect();
            (ours.len() >= at_least).then_some(ours)
        });
        read.await.unwrap_or_else(|last| panic!("fewer than {at_least} emails from {}: {last}", self.sender))
    }

    async fn lead_items(&self) -> Vec<Lead> {
        let mut leads = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .setup
                .ddb
                .scan()
                .table_name(&self.made.table)
                .consistent_read(true)
                .filter_expression("begins_with(PK, :lead) AND SK = :profile")
                .expression_attribute_values(":lead", AttributeValue::S("LEAD#".into()))
                .expression_attribute_values(":profile", AttributeValue::S("PROFILE".into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("Scan");
            for item in out.items() {
                let doc = item.get("doc").and_then(|v| v.as_s().ok()).expect("a lead item has a doc");
                leads.push(serde_json::from_str(doc).expect("a lead document"));
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return leads,
            }
        }
    }

    async fn lead(&self, id: LeadId) -> Lead {
        self.inspect().get_lead(id).await.expect("get lead").expect("the lead is stored")
    }

    /// Removes what this test added to the shared default bus.
    async fn clean_up(&self) {
        let events = &self.setup.events;
        events.remove_targets().rule(&self.tap.rule).ids("tap").send().await.expect("RemoveTargets");
        events.delete_rule().name(&self.tap.rule).send().await.expect("DeleteRule");
    }
}

impl EventTap {
    async fn on_default_bus(setup: &Setup, name: &str) -> Self {
        let queue_url = setup
            .sqs
            .create_queue()
            .queue_name(common::unique(&format!("{name}-events")))
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("queue url");
        let arn = queue_arn(&setup.sqs, &queue_url).await;
        let rule = common::unique(&format!("{name}-tap"));
        setup
            .events
            .put_rule()
            .name(&rule)
            .event_pattern(r#"{"source":["leadflow"]}"#)
            .send()
            .await
            .expect("PutRule on the default bus");
        setup
            .events
            .put_targets()
            .rule(&rule)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("tap").arn(arn).build().expect("target"))
            .send()
            .await
            .expect("PutTargets");
        Self { rule, queue_url, seen: Mutex::new(Vec::new()) }
    }

    /// Every event for `lead` delivered so far: reads the tap queue until at least `at_least`
    /// are there and one more receive finds nothing new.
    async fn events_for(&self, sqs: &aws_sdk_sqs::Client, lead: LeadId, at_least: usize) -> Vec<Value> {
        let until = deadline();
        let lead = lead.to_string();
        let ours = |seen: &[Value]| -> Vec<Value> {
            seen.iter().filter(|e| e["detail"]["lead_id"].as_str() == Some(lead.as_str())).cloned().collect()
        };
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage (events)");
            let messages = out.messages.unwrap_or_default();
            for m in &messages {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("an event envelope");
                self.seen.lock().expect("seen").push(envelope);
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete");
                }
            }
            let found = ours(&self.seen.lock().expect("seen"));
            if found.len() >= at_least && messages.is_empty() {
                return found;
            }
            assert!(Instant::now() < until, "{} event(s) for lead {lead}, expected {at_least}", found.len());
        }
    }
}

/// A message as moto's SES recorded it.
struct SentEmail {
    destinations: Vec<String>,
    subject: String,
    text: String,
    html: String,
}

impl SentEmail {
    fn from_moto(m: &Value) -> Self {
        let raw = m["raw_data"].as_str().expect("raw_data: the assignment email is sent as raw MIME");
        let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
        Self {
            destinations: m["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            subject: parsed.subject().unwrap_or_default().to_string(),
            text: parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            html: parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_qualified_lead_goes_from_the_http_api_to_its_rep_and_the_event_bus() {
    let p = Pipeline::new("flow", 30).await;
    let lead_id = p.capture_accepted(&qualified_lead()).await;

    let handled = p.settle(false).await;
    let stages: Vec<&str> = handled.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["validate", "score", "route"], "one batch per stage");

    let lead = p.lead(lead_id).await;
    let owner = lead.owner.clone().expect("the lead has an owner");
    assert_eq!((owner.rep_id.as_str(), owner.team_id.as_deref()), (EMEA_REP, Some("emea")));
    assert!(!owner.via_fallback);
    let score = lead.score.clone().expect("the lead is scored");
    assert!(!score.reasons.is_empty());

    let emails = p.emails_sent(1).await;
    assert_eq!(emails.len(), 1, "one assignment email");
    let email = &emails[0];
    assert!(email.destinations.iter().any(|d| d.contains(EMEA_REP_EMAIL)), "{:?}", email.destinations);
    assert!(email.subject.contains("Ana") && email.subject.contains("Acme"), "{}", email.subject);
    for part in [&email.text, &email.html] {
        assert!(part.contains("Ana") && part.contains("Acme") && part.contains("CTO"), "{part}");
    }
    for reason in &score.reasons {
        assert!(
            email.text.contains(&reason.explanation),
            "score reason {:?} missing:\n{}",
            reason.explanation,
            email.text
        );
    }
    assert!(owner.explanation.iter().any(|l| l.contains("Team EMEA matched")), "{:?}", owner.explanation);
    for line in &owner.explanation {
        assert!(email.text.contains(line.as_str()), "routing explanation {line:?} missing:\n{}", email.text);
    }

    // The whole trail, each entry written with the change it tells.
    let trail = p.inspect().activities(lead_id).await.expect("the trail");
    let kinds: Vec<&str> = trail.iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["form_submission", "stage_changed", "assigned", "email_sent"], "{trail:?}");

    let events = p.tap.events_for(&p.setup.sqs, lead_id, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["source"], "leadflow");
    assert_eq!(event["detail-type"], "lead.assigned");
    assert_eq!(event["detail"]["rep_id"], EMEA_REP);
    assert_eq!(event["detail"]["team_id"], "emea");
    assert_eq!(event["detail"]["lifecycle"], serde_json::to_value(lead.lifecycle).unwrap());
    p.clean_up().await;
}

#[tokio::test]
async fn every_message_delivered_twice_at_every_stage_changes_nothing_twice() {
    let p = Pipeline::new("twice", 30).await;
    let lead_id = p.capture_accepted(&qualified_lead()).await;

    let handled = p.settle(true).await;
    for stage in Stage::ALL {
        let messages: usize = handled.iter().filter(|(s, _)| *s == stage).map(|(_, b)| b.event.records.len()).sum();
        // Each stage saw its input at least twice over (the copy), each batch invoked twice.
        assert!(messages >= 2, "{} saw {messages} message(s)", stage.as_str());
        assert!(handled.iter().filter(|(s, _)| *s == stage).all(|(_, b)| b.responses.len() == 2));
    }

    let leads = p.lead_items().await;
    assert_eq!(leads.len(), 1, "one lead item: {:?}", leads.iter().map(|l| l.id).collect::<Vec<_>>());
    assert_eq!(leads[0].id, lead_id);
    assert_eq!(leads[0].submissions, 1, "the copies of the submission were not merged into it");
    assert_eq!(leads[0].owner.as_ref().map(|o| o.rep_id.as_str()), Some(EMEA_REP));

    let emails = p.emails_sent(1).await;
    assert_eq!(
        emails.len(),
        1,
        "one assignment email, to {:?}",
        emails.iter().map(|e| &e.destinations).collect::<Vec<_>>()
    );
    let events = p.tap.events_for(&p.setup.sqs, lead_id, 1).await;
    assert_eq!(events.len(), 1, "one lead.assigned event: {events:?}");
    let loads = p.inspect().rep_loads().await.expect("rep loads");
    assert_eq!(loads, BTreeMap::from([(EMEA_REP.to_string(), 1)]), "the rep-load counter");
    for stage in Stage::ALL {
        assert_eq!(messages_held(&p.setup.sqs, p.made.dlq_urls.url(stage)).await, 0, "{} DLQ", stage.as_str());
    }
    p.clean_up().await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_fails_alone_and_ends_in_the_dlq_after_five_receives() {
    // Failed messages come back after one second.
    let p = Pipeline::new("poison", 1).await;
    // The poison: an address whose email key names a lead that cannot be read. Validation
    // finds the address taken, cannot read the lead it is taken by, and asks for a retry
    // (StageError::Retryable, "not readable yet"): a genuinely retryable failure, not a
    // malformed body, which would be dropped.
    let poison_email = "poison@acme.io";
    let ghost = LeadId(ulid::Ulid::new());
    p.setup
        .ddb
        .put_item()
        .table_name(&p.made.table)
        .item("PK", AttributeValue::S(format!("EMAIL#{}", email_key(poison_email))))
        .item("SK", AttributeValue::S("LEAD".into()))
        .item("lead_id", AttributeValue::S(ghost.to_string()))
        .send()
        .await
        .expect("PutItem (the ghost's email key)");

    let good = [
        json!({"email": "ana@acme.io", "first_name": "Ana", "company": "Acme", "country": "DE"}),
        json!({"email": "ben@globex.example", "first_name": "Ben", "company": "Globex", "country": "GB"}),
        json!({"email": "chloe@initech.example", "first_name": "Chloe", "company": "Initech", "country": "FR"}),
    ];
    for lead in &good[..2] {
        p.capture_accepted(lead).await;
    }
    p.capture_accepted(&json!({"email": poison_email, "first_name": "Poison", "country": "DE"})).await;
    p.capture_accepted(&good[2]).await;

    let validate = Stage::Validate;
    let first = p.deliver(validate, 1, 1).await.expect("the first batch");
    assert_eq!(first.event.records.len(), 4, "the four submissions in one batch");
    let poison_record = first
        .event
        .records
        .iter()
        .find(|r| r.body.as_deref().is_some_and(|b| b.contains(poison_email)))
        .expect("the poison is in the batch");
    let poison_id = poison_record.message_id.clone().expect("message id");
    let poison_body = poison_record.body.clone().expect("body");
    let reported: Vec<String> = match first.responses.as_slice() {
        [Ok(response)] => response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect(),
        other => panic!("one response expected: {other:?}"),
    };
    assert_eq!(reported, [poison_id.as_str()], "only the poison is reported");
    assert_eq!(first.failed, [poison_id.as_str()]);
    assert_eq!(first.deleted.len(), 3);
    assert!(!first.deleted.contains(&poison_id));
    assert_eq!(first.receive_counts(), [1, 1, 1, 1]);
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.validate).await, 1, "only the poison is left");
    let mut stored: Vec<String> = p.lead_items().await.iter().map(|l| l.contact.email.clone()).collect();
    stored.sort();
    assert_eq!(stored, ["ana@acme.io", "ben@globex.example", "chloe@initech.example"]);
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.score).await, 3, "the neighbours moved on");

    // Lambda polls again and again; the poison comes back after each visibility timeout, fails
    // each time, and after maxReceiveCount (5) receives SQS moves it to the DLQ on the next
    // receive.
    let dlq = &p.made.dlq_urls.validate;
    let mut receives = vec![1];
    let until = deadline();
    while messages_held(&p.setup.sqs, dlq).await == 0 {
        assert!(Instant::now() < until, "the poison did not reach the DLQ; receives so far {receives:?}");
        let Some(batch) = p.deliver(validate, 1, 2).await else { continue };
        assert_eq!(batch.ids(), [poison_id.as_str()]);
        assert_eq!(batch.failed, [poison_id.as_str()], "{:?}", batch.responses);
        receives.extend(batch.receive_counts());
    }
    assert_eq!(receives, [1, 2, 3, 4, 5], "ApproximateReceiveCount of each delivery");
    assert_eq!(messages_held(&p.setup.sqs, &p.made.stage_urls.validate).await, 0, "moved, not copied");

    let dead = p
        .setup
        .sqs
        .receive_message()
        .queue_url(dlq)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage (DLQ)")
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id(), Some(poison_id.as_str()));
    assert_eq!(dead[0].body(), Some(poison_body.as_str()));
    assert_eq!(p.inspect().get_lead(ghost).await.expect("get lead"), None);
    p.clean_up().await;
}

/// What one lead costs in AWS requests from capture to assignment, the functions' own and
/// Lambda's polling apart.
#[tokio::test]
async fn requests_per_lead_from_capture_to_assignment() {
    let p = Pipeline::new("cost", 30).await;
    p.functions.take();
    p.lambda.take();

    let lead_id = p.capture_accepted(&qualified_lead()).await;
    let mut functions = vec![("capture", p.functions.take())];
    let mut lambda = Vec::new();
    for stage in Stage::ALL {
        let batch = p.deliver(stage, 1, 1).await.unwrap_or_else(|| panic!("nothing on the {} queue", stage.as_str()));
        assert_eq!(batch.event.records.len(), 1);
        assert!(batch.failed.is_empty(), "{:?}", batch.responses);
        functions.push((stage.as_str(), p.functions.take()));
        lambda.push((stage.as_str(), p.lambda.take()));
    }

    assert_eq!(p.lead(lead_id).await.owner.map(|o| o.rep_id), Some(EMEA_REP.to_string()));
    assert_eq!(p.emails_sent(1).await.len(), 1);
    assert_eq!(p.tap.events_for(&p.setup.sqs, lead_id, 1).await.len(), 1);

    let sum = |steps: &[(&str, BTreeMap<String, u32>)]| steps.iter().map(|(_, c)| total(c)).sum::<u32>();
    let per_function: Vec<(&str, u32)> = functions.iter().map(|(name, c)| (*name, total(c))).collect();
    println!(
        "\nAWS requests for one qualified lead, capture to assignment\n\n{}\n{}\nall together: {}\n",
        table_of("The functions' own requests (their SDK clients):", &functions),
        table_of("Lambda's SQS event source mappings (polling the stage queues):", &lambda),
        sum(&functions) + sum(&lambda)
    );
    // Measured on moto with this code; a measurement, not a target. A change here is a change
    // in what every lead costs: read the table printed above (--nocapture) and update the
    // numbers knowingly. Per function: capture 1 (SendMessage); validate 3 (resolve, create
    // with the email key and the trail, hand-off); score 5 (read, trail, the rescore with its
    // trail entry, hand-off, and the Query of `latest_documents` that refreshes the configuration
    // applied through the admin API: once per cache period, and the stages share one cache
    // here, so route's own refresh reads nothing); route 10 (read, cursor, loads, the
    // assignment with its trail entry, and claim/send/finish for the email, whose finish
    // carries the email_sent entry, and for the event).
    assert_eq!(per_function, [("capture", 1), ("validate", 3), ("score", 5), ("route", 10)], "{functions:#?}");
    assert_eq!(sum(&functions), 19, "the functions' requests per lead");
    // One ReceiveMessage that finds the message and one DeleteMessageBatch per stage; on AWS
    // the pollers' empty long polls come on top, per queue and not per lead.
    assert_eq!(sum(&lambda), 6, "the event source mappings' requests per lead: {lambda:#?}");
    p.clean_up().await;
}
