//! The Lambda glue without Lambda: SQS events and API Gateway requests as Lambda delivers them
//! (JSON fixtures), the environment contract, and the invocation time budget.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsEvent;
use http_body_util::BodyExt;
use lambda_http::http::StatusCode;
use leadflow_app::{BatchItem, Failure};
use leadflow_aws::env;
use leadflow_aws::lambda::{
    BatchError, Budget, StartupError, SystemClock, UnidentifiedRecord, batch_items, batch_response, environment,
    environment_with_secret, handle_sqs_event,
};
use leadflow_core::ports::{Adapters, Stage};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, RecordingMailer};
use serde_json::{Value, json};
use tower::ServiceExt;

const FIRST: &str = "059f36b4-87a3-44ab-83d2-661975830a7d";
const THIRD: &str = "2e1424d4-f796-459a-8184-9c92662be6da";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn sqs_event() -> SqsEvent {
    serde_json::from_str(&fixture("sqs_event.json")).expect("the fixture is an SQS event")
}

fn fail(id: &str) -> Failure {
    Failure { id: id.to_string(), reason: "store unavailable".into() }
}

#[test]
fn batch_items_keep_message_ids_and_bodies_and_set_aside_records_without_one() {
    let (items, unidentified) = batch_items(&sqs_event());
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, [FIRST, THIRD]);
    assert_eq!(items[0].body, r#"{"lead_id":"01JD7Q2X3Y4Z5A6B7C8D9E0F1G","stage":"score"}"#);
    assert_eq!(unidentified, [UnidentifiedRecord { position: 1 }]);
    assert!(items.iter().all(|i| !i.id.is_empty()));
}

#[test]
fn blank_and_null_message_ids_are_unidentified_too() {
    let event: SqsEvent = serde_json::from_value(json!({ "Records": [
        { "messageId": "", "body": "{}" },
        { "messageId": null, "body": "{}" },
        { "messageId": "  ", "body": "{}" },
        { "messageId": "m-1" },
    ]}))
    .unwrap();
    let (items, unidentified) = batch_items(&event);
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].id.as_str(), items[0].body.as_str()), ("m-1", ""));
    let positions: Vec<usize> = unidentified.iter().map(|u| u.position).collect();
    assert_eq!(positions, [0, 1, 2]);
}

#[test]
fn batch_response_names_each_failed_message_in_the_documented_shape() {
    let response = batch_response(vec![fail(FIRST), fail(THIRD)]).unwrap();
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": FIRST }, { "itemIdentifier": THIRD }] })
    );
    // No failures is an empty list, which Lambda reads as "the whole batch succeeded".
    assert_eq!(serde_json::to_value(batch_response(Vec::new()).unwrap()).unwrap(), json!({ "batchItemFailures": [] }));
}

#[test]
fn batch_response_refuses_a_failure_without_an_id() {
    for id in ["", " "] {
        assert!(matches!(batch_response(vec![fail(FIRST), fail(id)]), Err(BatchError::EmptyFailureId)));
    }
}

#[tokio::test]
async fn an_invocation_reports_exactly_the_failed_messages() {
    let mut event = sqs_event();
    event.records.remove(1);
    let handler = |items: Vec<BatchItem>| async move {
        items.into_iter().filter(|i| i.body.contains("0F1J")).map(|i| fail(&i.id)).collect::<Vec<_>>()
    };
    let response = handle_sqs_event(&handler, &event, None).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap(), json!({ "batchItemFailures": [{ "itemIdentifier": THIRD }] }));
}

#[tokio::test]
async fn a_record_without_message_id_fails_the_whole_invocation_after_its_neighbours_are_handled() {
    let seen = RefCell::new(Vec::new());
    let handler = |items: Vec<BatchItem>| {
        seen.borrow_mut().extend(items.iter().map(|i| i.id.clone()));
        async { Vec::new() }
    };
    let outcome = handle_sqs_event(&handler, &sqs_event(), None).await;
    assert!(matches!(outcome, Err(BatchError::UnidentifiedRecords { count: 1 })), "{outcome:?}");
    assert_eq!(*seen.borrow(), [FIRST, THIRD]);
    let diagnostic = lambda_runtime::Diagnostic::from(BatchError::UnidentifiedRecords { count: 1 });
    assert_eq!(diagnostic.error_type, "Leadflow.UnidentifiedRecords");
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn environment_applies_the_deployment_overrides_to_the_built_in_configuration() {
    let env = environment(
        lookup(&[
            (env::TABLE, "leadflow-prod"),
            (env::VALIDATE_QUEUE_URL, "https://sqs.eu-west-1.amazonaws.com/123456789012/leadflow-validate"),
            (env::SENDER, "leads@acme.example"),
            (env::ALLOWED_ORIGINS, "https://www.acme.example, https://acme.example,"),
            (env::PUBLIC_URL, "https://leads.acme.example"),
            (env::SES_CONFIGURATION_SET, "leadflow"),
        ]),
        &[Stage::Validate],
    )
    .expect("a complete environment");
    assert_eq!(env.table, "leadflow-prod");
    assert_eq!(env.queue_urls.validate, "https://sqs.eu-west-1.amazonaws.com/123456789012/leadflow-validate");
    assert_eq!((env.queue_urls.score.as_str(), env.queue_urls.route.as_str()), ("", ""));
    assert_eq!(env.event_bus, "default");
    assert_eq!(env.configuration_set.as_deref(), Some("leadflow"));
    let config = env.config(leadflow_app::config_files::sample_json).current();
    let settings = &config.settings;
    assert_eq!(settings.sender.email, "leads@acme.example");
    // The display name is not part of the override.
    assert_eq!(settings.sender.name.as_deref(), Some("Acme Sales"));
    assert_eq!(settings.capture.allowed_origins, ["https://www.acme.example", "https://acme.example"]);
    assert_eq!(settings.public_url, "https://leads.acme.example");
}

#[test]
fn environment_without_overrides_keeps_the_sample_settings() {
    let env = environment(lookup(&[(env::TABLE, "t"), (env::EVENT_BUS, "leadflow")]), &[]).expect("table is enough");
    let sample = leadflow_core::config::CompiledConfig::compile(&leadflow_app::config_files::sample()).unwrap();
    // The functions that read the built-in configuration as JSON get the TOML's settings.
    assert_eq!(env.config(leadflow_app::config_files::sample_json).current().settings, sample.settings);
    assert_eq!(env.config(leadflow_app::config_files::sample).current().settings, sample.settings);
    assert_eq!(env.event_bus, "leadflow");
    assert_eq!(env.configuration_set, None);
}

#[test]
fn a_missing_or_unusable_variable_is_named() {
    let message = |vars: &[(&str, &str)], sends_to: &[Stage]| match environment(lookup(vars), sends_to) {
        Ok(_) => panic!("{vars:?} should not be enough"),
        Err(e) => (matches!(e, StartupError::MissingVar(_)), e.to_string()),
    };
    let (missing, text) = message(&[], &[]);
    assert!(missing && text.contains("LEADFLOW_TABLE"), "{text}");
    // Set but empty is as good as missing: that is what a template with an empty !Ref gives.
    let (missing, text) = message(&[(env::TABLE, "t"), (env::SCORE_QUEUE_URL, " ")], &[Stage::Score]);
    assert!(missing && text.contains("LEADFLOW_SCORE_QUEUE_URL"), "{text}");
    let (missing, text) = message(&[(env::TABLE, "t"), (env::VALIDATE_QUEUE_URL, "u")], &[Stage::Route]);
    assert!(missing && text.contains("LEADFLOW_ROUTE_QUEUE_URL"), "{text}");
    let (missing, text) = message(&[(env::TABLE, "t"), (env::SENDER, "acme.example")], &[]);
    assert!(!missing && text.contains("LEADFLOW_SENDER"), "{text}");
    let (missing, text) = message(&[(env::TABLE, "t"), (env::ALLOWED_ORIGINS, " , ")], &[]);
    assert!(!missing && text.contains("LEADFLOW_ALLOWED_ORIGINS"), "{text}");
}

#[test]
fn the_signing_keys_secret_is_required_where_links_are_signed_and_optional_elsewhere() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:SigningKeys-AbCdEf";
    let with = [(env::TABLE, "t"), (env::SIGNING_KEYS_SECRET, arn)];
    let signing = environment_with_secret(lookup(&with), &[]).expect("table and secret");
    assert_eq!(signing.signing_keys_secret.as_deref(), Some(arn));
    let other = environment(lookup(&with), &[]).expect("a function given the secret anyway");
    assert_eq!(other.signing_keys_secret.as_deref(), Some(arn));
    let without = environment(lookup(&[(env::TABLE, "t")]), &[]).expect("no secret needed");
    assert_eq!(without.signing_keys_secret, None);
    assert!(
        without.config(leadflow_app::config_files::sample_json).current().settings.signing_keys.is_empty(),
        "no key until one is read"
    );

    for vars in [vec![(env::TABLE, "t")], vec![(env::TABLE, "t"), (env::SIGNING_KEYS_SECRET, "  ")]] {
        match environment_with_secret(lookup(&vars), &[]) {
            Err(StartupError::MissingVar(e)) => assert!(e.to_string().contains("LEADFLOW_SIGNING_KEYS_SECRET"), "{e}"),
            Err(e) => panic!("{vars:?}: {e}"),
            Ok(_) => panic!("{vars:?}: started without a secret"),
        }
    }
}

#[test]
fn the_budget_allows_a_round_only_when_it_ends_before_the_margin() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_732_358_400);
    let budget = Budget::new(now + Duration::from_secs(60), Duration::from_secs(5));
    assert!(budget.fits(now, Duration::from_secs(50)));
    assert!(!budget.fits(now, Duration::from_secs(55)));
    assert!(!budget.fits(now + Duration::from_secs(56), Duration::ZERO));
    // A deadline in the past (or a zero one from a hand-made context) leaves no time.
    assert!(!Budget::new(SystemTime::UNIX_EPOCH, Duration::from_secs(5)).fits(now, Duration::ZERO));
}

type MemoryPorts = Adapters<MemoryStore, MemoryQueue, RecordingMailer, RecordingBus, SystemClock>;

/// In-memory adapters with the configuration a deployment to `https://www.acme.example` would
/// compute from its environment.
fn memory_ports() -> Arc<MemoryPorts> {
    // The queue is the in-memory one, so no queue URL is needed.
    let env = environment(lookup(&[(env::TABLE, "t"), (env::ALLOWED_ORIGINS, "https://www.acme.example")]), &[])
        .expect("a complete environment");
    Arc::new(Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: RecordingMailer::new(),
        bus: RecordingBus::new(),
        clock: SystemClock,
        // Capture's, as its function takes it: the TOML as written (for its `[thanks]`), settings alone.
        config: env.config(leadflow_app::config_files::sample_settings_alone),
    })
}

/// Feeds an API Gateway HTTP API (payload 2.0) event to the capture router the way
/// `lambda_http::run` does, and answers the status, the headers and the JSON body (`null` for
/// an empty one, as a redirect has).
async fn capture_on_lambda(ports: &Arc<MemoryPorts>, event: &str) -> (StatusCode, lambda_http::http::HeaderMap, Value) {
    let request = lambda_http::request::from_str(event).expect("an API Gateway v2 event");
    let response =
        leadflow_capture::router(Arc::clone(ports)).oneshot(request).await.expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("a readable body").to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
    (parts.status, parts.headers, body)
}

#[tokio::test]
async fn capture_on_lambda_accepts_a_json_post_and_queues_it_for_validation() {
    let ports = memory_ports();
    let (status, headers, body) = capture_on_lambda(&ports, &fixture("apigw_v2_post_leads.json")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://www.acme.example")
    );
    let lead_id = body["lead_id"].as_str().expect("the answer names the lead id");
    let queued = ports.queue.drain(Stage::Validate);
    assert_eq!(queued.len(), 1);
    let submission: Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(submission["lead_id"], lead_id);
    assert_eq!(submission["email"], "ada@lovelace.example");
    assert_eq!(submission["utm"]["source"], "newsletter");
}

#[tokio::test]
async fn capture_on_lambda_decodes_a_base64_form_post() {
    let ports = memory_ports();
    let (status, headers, body) = capture_on_lambda(&ports, &fixture("apigw_v2_post_leads_form.json")).await;
    // A browser's form (it asks for text/html) with no redirect of its own lands on the
    // thank-you page, not on JSON.
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers.get("location").and_then(|v| v.to_str().ok()), Some("/thanks"));
    let queued = ports.queue.drain(Stage::Validate);
    assert_eq!(queued.len(), 1);
    let submission: Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(submission["email"], "grace@hopper.example");
    assert_eq!(submission["first_name"], "Grace");
}

#[tokio::test]
async fn capture_on_lambda_refuses_an_origin_the_deployment_does_not_allow() {
    let ports = memory_ports();
    let event = fixture("apigw_v2_post_leads.json").replace("https://www.acme.example", "http://localhost:3000");
    let (status, _, body) = capture_on_lambda(&ports, &event).await;
    // Allowed by the sample configuration, but the deployment's origins replace the sample's.
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(ports.queue.drain(Stage::Validate).is_empty());
}

#[test]
fn the_log_level_comes_from_rust_log_then_lambdas_setting_then_info() {
    use leadflow_aws::lambda::log_filter;
    use tracing::Level;
    let on =
        |filter: &tracing_subscriber::filter::Targets, target: &str, level: Level| filter.would_enable(target, &level);

    let default = log_filter(None, None);
    assert!(on(&default, "leadflow_route", Level::INFO) && !on(&default, "leadflow_route", Level::DEBUG));

    let directives = log_filter(Some("leadflow_app=debug,warn"), Some("ERROR"));
    assert!(on(&directives, "leadflow_app::live", Level::DEBUG), "RUST_LOG's target directive");
    assert!(!on(&directives, "aws_smithy_runtime", Level::INFO) && on(&directives, "aws_smithy_runtime", Level::WARN));

    let lambda = log_filter(Some("  "), Some("FATAL"));
    assert!(on(&lambda, "leadflow_route", Level::ERROR) && !on(&lambda, "leadflow_route", Level::WARN));
    assert!(on(&log_filter(None, Some("Debug")), "leadflow_route", Level::DEBUG));

    let unreadable = log_filter(Some("leadflow=loud"), None);
    assert!(on(&unreadable, "leadflow_route", Level::INFO) && !on(&unreadable, "leadflow_route", Level::DEBUG));
}
