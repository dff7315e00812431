//! One deployment of the pipeline per test: provisioned from template.yaml, the functions'
//! adapters with their requests counted, and the test's ways to drive and inspect it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use http_body_util::BodyExt;
use lambda_http::http::StatusCode;
use leadflow_aws::bus::EventBridgeBus;
use leadflow_aws::lambda::{AwsPorts, SystemClock};
use leadflow_aws::mailer::SesMailer;
use leadflow_aws::provision::{Provisioned, create_from_template};
use leadflow_aws::queue::SqsQueue;
use leadflow_aws::store::DynamoStore;
use leadflow_core::config::CompiledConfig;
use leadflow_core::model::{Lead, LeadId};
use leadflow_core::ports::Leads;
use leadflow_core::ports::{Adapters, ConfigHandle, Stage};
use serde_json::Value;
use tower::ServiceExt;

use crate::common;
use crate::counting::RequestCounts;
use crate::mapping::{Batch, EventSourceMapping, stage_function};
use crate::observe::{EventTap, SentEmail};
use crate::write_units::WriteUnits;
use crate::{ORIGIN, PATIENCE, ROUTING, deadline};

/// Clients that are not the functions' nor Lambda's: provisioning, inspection, test actions.
pub(crate) struct Setup {
    sdk: SdkConfig,
    pub(crate) ddb: aws_sdk_dynamodb::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) events: aws_sdk_eventbridge::Client,
}

/// One deployment of the pipeline: the template's table and queues, the functions' adapters,
/// one event source mapping per stage queue.
pub(crate) struct Pipeline {
    pub(crate) setup: Setup,
    pub(crate) made: Provisioned,
    ports: Arc<AwsPorts>,
    sender: String,
    /// Requests of the functions' own clients (the ports).
    pub(crate) functions: RequestCounts,
    /// Requests of the event source mappings (Lambda's poller, billed to the account as SQS
    /// requests all the same).
    pub(crate) lambda: RequestCounts,
    /// DynamoDB write units of the functions' own requests.
    pub(crate) write_units: WriteUnits,
    mappings: [EventSourceMapping; 3],
    pub(crate) tap: EventTap,
}

impl Pipeline {
    pub(crate) async fn new(name: &str, visibility_timeout: i32) -> Self {
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

        let mut sources = leadflow_app::config_files::sample();
        sources.routing = ROUTING.to_string();
        let mut config = CompiledConfig::compile(&sources).expect("the sample with the test routing compiles");
        config.settings.sender.email = sender.clone();
        config.settings.capture.allowed_origins = vec![ORIGIN.to_string()];
        // A deployment's signing keys (Secrets Manager's on Lambda): double opt-in's links need them.
        config.settings.signing_keys = "pipeline-test-signing-secret-0123456789".into();

        let functions = RequestCounts::default();
        let write_units = WriteUnits::default();
        let sdk = &setup.sdk;
        let ddb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(functions.interceptor("dynamodb"))
            .interceptor(write_units.interceptor())
            .build();
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
        Self { setup, made, ports: Arc::new(ports), sender, functions, lambda, write_units, mappings, tap }
    }

    fn mapping(&self, stage: Stage) -> &EventSourceMapping {
        &self.mappings[Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0)]
    }

    /// The store over the setup client: reads that are the test's, not the functions'.
    pub(crate) fn inspect(&self) -> DynamoStore {
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
    pub(crate) async fn capture_accepted(&self, lead: &Value) -> LeadId {
        let (status, body) = self.capture(lead).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["lead_id"].as_str().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no lead id in {body}"))
    }

    /// Polls `stage`'s queue once and runs what came through the stage's function.
    pub(crate) async fn deliver(&self, stage: Stage, invocations: usize, wait_seconds: i32) -> Option<Batch> {
        let ports = &*self.ports;
        let function = move |items| stage_function(ports, stage, items);
        self.mapping(stage).deliver(&function, invocations, wait_seconds).await
    }

    /// Each stage in turn, until a whole round finds every stage queue empty. With
    /// `redeliver`, every batch goes to the function twice and every message that came from
    /// the functions is sent to its queue once more (the copies are not copied again).
    /// Answers every batch handled. Panics when a message fails or the queues do not settle.
    pub(crate) async fn settle(&self, redeliver: bool) -> Vec<(Stage, Batch)> {
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
    pub(crate) async fn emails_sent(&self, at_least: usize) -> Vec<SentEmail> {
        let read = common::moto_data_until(PATIENCE, |data| {
            let ours: Vec<SentEmail> = common::ses_raw_messages(data)
                .filter(|m| m["source"].as_str().is_some_and(|s| s.contains(&self.sender)))
                .map(SentEmail::from_moto)
                .collect();
            (ours.len() >= at_least).then_some(ours)
        });
        read.await.unwrap_or_else(|last| panic!("fewer than {at_least} emails from {}: {last}", self.sender))
    }

    pub(crate) async fn lead_items(&self) -> Vec<Lead> {
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
                leads.push(leadflow_aws::store::lead_of(item).expect("a lead item"));
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return leads,
            }
        }
    }

    pub(crate) async fn lead(&self, id: LeadId) -> Lead {
        self.inspect().get_lead(id).await.expect("get lead").expect("the lead is stored")
    }

    /// Removes what this test added to the shared default bus.
    pub(crate) async fn clean_up(&self) {
        let events = &self.setup.events;
        events.remove_targets().rule(&self.tap.rule).ids("tap").send().await.expect("RemoveTargets");
        events.delete_rule().name(&self.tap.rule).send().await.expect("DeleteRule");
    }
}
