//! The alarm on emails SES rejected for good: `template.yaml` counts them with a metric filter
//! on the route and nurture functions' log groups, and alarms on one in five minutes. A filter
//! whose pattern drifts from what the functions log would count nothing, silently, so the
//! pattern is evaluated here against the very JSON lines route and nurture write (the format of
//! `leadflow_aws::lambda::init_tracing`; Lambda keeps lines that are JSON already as they are)
//! for a rejection from SES (the `fake_ses` endpoint), and must not match what they write for a
//! send or for an account-level refusal. Needs no moto.

mod fake_ses;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use fake_ses::{Answer, FakeSes, QUOTED};
use leadflow_core::config::CompiledConfig;
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{EnrollmentState, Lifecycle};
use leadflow_core::ports::{Adapters, Clock, ConfigHandle, LeadStore};
use leadflow_memory::fixtures::{enrollment, lead};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, SettableClock};
use leadflow_stage::BatchItem;
use serde_json::Value as Json;
use serde_yaml_ng::Value;

const METRIC: &str = "EmailsRejected";

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

fn resources_of<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    let resources = t.get("Resources").and_then(Value::as_mapping).expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().expect("resource ids are strings"), r))
        .collect()
}

fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

/// The argument of a short-form intrinsic (`!Ref X`, `!Sub "…"`) named `tag`.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// The metric filters counting rejected emails: their log groups' ids, and the pattern (all
/// must use one).
fn rejection_filters(t: &Value) -> (Vec<&str>, String) {
    let mut groups = Vec::new();
    let mut patterns = Vec::new();
    for (id, filter) in resources_of(t, "AWS::Logs::MetricFilter") {
        let transformations = prop(filter, "MetricTransformations").and_then(Value::as_sequence).expect(id);
        if !transformations.iter().any(|m| m.get("MetricName").and_then(Value::as_str) == Some(METRIC)) {
            continue;
        }
        let group = prop(filter, "LogGroupName").and_then(|g| tagged(g, "Ref")).and_then(Value::as_str);
        groups.push(group.unwrap_or_else(|| panic!("{id}: LogGroupName is a !Ref to a log group")));
        patterns.push(prop(filter, "FilterPattern").and_then(Value::as_str).expect("FilterPattern").to_string());
    }
    groups.sort_unstable();
    patterns.dedup();
    let [pattern] = patterns.as_slice() else { panic!("one pattern for all rejection filters: {patterns:?}") };
    (groups, pattern.clone())
}

/// A CloudWatch Logs JSON filter pattern of the form `{ ($.a = "x") || ($.b = "y") }` (the
/// parentheses optional): the field and value of each alternative. Anything else fails, so
/// the pattern stays one this test can evaluate.
fn alternatives(pattern: &str) -> Vec<(String, String)> {
    let inner = pattern
        .trim()
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or_else(|| panic!("a JSON filter pattern in braces: {pattern}"));
    inner
        .split("||")
        .map(|term| {
            let term = term.trim();
            let term = term.strip_prefix('(').and_then(|t| t.strip_suffix(')')).unwrap_or(term).trim();
            let (field, value) = term.split_once('=').unwrap_or_else(|| panic!("`$.field = \"value\"`: {term}"));
            let field = field.trim().strip_prefix("$.").unwrap_or_else(|| panic!("a top-level $.field: {term}"));
            let value = value.trim().strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            let value = value.unwrap_or_else(|| panic!("a quoted exact value: {term}"));
            assert!(
                !field.contains(['.', '[']) && !value.contains(['*', '"']),
                "only exact top-level matches are evaluated here: {term}"
            );
            (field.to_string(), value.to_string())
        })
        .collect()
}

/// Whether CloudWatch would count this log line: it is JSON and one alternative matches.
fn matches(pattern: &[(String, String)], line: &str) -> bool {
    let Ok(event) = serde_json::from_str::<Json>(line) else { return false };
    pattern.iter().any(|(field, value)| event.get(field).and_then(Json::as_str) == Some(value))
}

#[test]
fn rejected_emails_on_route_and_nurture_raise_an_alarm_to_the_alarm_topic() {
    let t = template();
    let (groups, pattern) = rejection_filters(&t);
    assert_eq!(groups, ["NurtureLogGroup", "RouteLogGroup"], "a filter on each sending function's log group");
    for (group, function) in [("RouteLogGroup", "RouteFunction"), ("NurtureLogGroup", "NurtureFunction")] {
        let name = t["Resources"][group]["Properties"]["LogGroupName"].clone();
        let name = tagged(&name, "Sub").and_then(Value::as_str).map(str::to_string);
        assert_eq!(name, Some(format!("/aws/lambda/${{{function}}}")), "{group} is where {function} logs");
    }
    assert!(!alternatives(&pattern).is_empty());

    let alarms: Vec<_> = resources_of(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| prop(a, "MetricName").and_then(Value::as_str) == Some(METRIC))
        .collect();
    let [(id, alarm)] = alarms.as_slice() else { panic!("one alarm on {METRIC}: {alarms:?}") };
    let s = |k| prop(alarm, k).and_then(Value::as_str).map(str::to_string);
    let n = |k| prop(alarm, k).and_then(Value::as_u64);
    // The filters publish where the alarm looks.
    for (fid, filter) in resources_of(&t, "AWS::Logs::MetricFilter") {
        let m = &prop(filter, "MetricTransformations").and_then(Value::as_sequence).expect(fid)[0];
        if m.get("MetricName").and_then(Value::as_str) == Some(METRIC) {
            assert_eq!(m.get("MetricNamespace"), prop(alarm, "Namespace"), "{fid} and {id}: one namespace");
            assert_eq!(m.get("MetricValue").and_then(Value::as_str), Some("1"), "{fid} counts lines");
        }
    }
    assert_eq!(s("Statistic").as_deref(), Some("Sum"), "{id}");
    assert_eq!((n("Period"), n("EvaluationPeriods"), n("Threshold")), (Some(300), Some(1), Some(1)), "{id}");
    assert_eq!(s("ComparisonOperator").as_deref(), Some("GreaterThanOrEqualToThreshold"), "{id}");
    assert_eq!(s("TreatMissingData").as_deref(), Some("notBreaching"), "{id}");
    // Like the dead-letter alarms: the topic when one is given.
    for actions in ["AlarmActions", "OKActions"] {
        let branches = prop(alarm, actions).and_then(|a| tagged(a, "If")).and_then(Value::as_sequence);
        let branches = branches.unwrap_or_else(|| panic!("{id}: {actions} is an !If"));
        assert_eq!(branches[0].as_str(), Some("HasAlarmTopic"), "{id}: {actions}");
        let topic = branches[1].as_sequence().and_then(|s| s.first()).and_then(|r| tagged(r, "Ref"));
        assert_eq!(topic.and_then(Value::as_str), Some("AlarmTopicArn"), "{id}: {actions}");
    }
}

/// The JSON lines the functions write while `run` runs, in the format `init_tracing` installs.
async fn logged<F: Future<Output = ()>>(run: F) -> Vec<String> {
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = Arc::clone(&buf);
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || Sink(Arc::clone(&sink)))
        .finish();
    {
        // The test runtime has one thread: everything `run` logs goes here.
        let _guard = tracing::subscriber::set_default(subscriber);
        run.await;
    }
    let bytes = buf.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Ports = Adapters<MemoryStore, MemoryQueue, leadflow_aws::mailer::SesMailer, RecordingBus, SettableClock>;

async fn ports(answer: Answer) -> (Ports, FakeSes) {
    let fake = FakeSes::start(answer).await;
    let mut config =
        CompiledConfig::compile(&leadflow_stage::config_files::sample()).expect("the sample configuration");
    config.settings.sender.email = "sales@acme.example".into();
    config.settings.unsubscribe_secret = "rejection-alarm-test-unsubscribe-secret-0123456789".into();
    let ports = Adapters {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        mailer: fake.mailer(1, None).await,
        bus: RecordingBus::new(),
        clock: SettableClock::at(Utc::now()),
        config: ConfigHandle::new(config),
    };
    (ports, fake)
}

/// What route logs for one assignment whose email SES answers with `answer`.
async fn route_lines(answer: Answer) -> Vec<String> {
    let (ports, _fake) = ports(answer).await;
    // Qualified and not yet assigned, so route assigns it (and says so) before the email.
    let mut lead = lead(1, QUOTED);
    lead.lifecycle = Lifecycle::Mql;
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let body =
        serde_json::to_string(&RouteMessage { lead_id: lead.id, sla_breach: None, confirm: false }).expect("json");
    logged(async {
        leadflow_route::handle_batch(&ports, vec![BatchItem { id: "m-1".into(), body }]).await;
    })
    .await
}

/// What a nurture tick logs for one due drip whose email SES answers with `answer`.
async fn nurture_lines(answer: Answer) -> Vec<String> {
    let (ports, _fake) = ports(answer).await;
    let lead = lead(1, QUOTED);
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let mut due = enrollment(1, "welcome", Some(ports.clock.now()), EnrollmentState::Active);
    due.enrolled_at = ports.clock.now();
    assert!(ports.store.enroll(&due, &[]).await.expect("enroll"));
    logged(async {
        leadflow_nurture::tick(&ports, 10).await.expect("tick");
    })
    .await
}

#[tokio::test]
async fn the_filter_counts_each_rejection_route_and_nurture_log_and_nothing_else() {
    let (_, pattern) = rejection_filters(&template());
    let pattern = alternatives(&pattern);
    let counted = |lines: &[String]| lines.iter().filter(|l| matches(&pattern, l)).cloned().collect::<Vec<_>>();

    for (stage, lines) in [
        ("route", route_lines(Answer::refuse(400, "MessageRejected")).await),
        ("nurture", nurture_lines(Answer::refuse(400, "MessageRejected")).await),
    ] {
        let hits = counted(&lines);
        assert_eq!(hits.len(), 1, "{stage}: one counted line for one rejection, in:\n{}", lines.join("\n"));
        assert!(hits[0].contains("MessageRejected"), "{stage}: the line says why: {}", hits[0]);
        assert!(!hits[0].contains('@'), "{stage}: no address in the log: {}", hits[0]);
    }
    // Neither a send nor an account-level refusal (retried, not lost) counts as a rejection.
    for answer in [Answer::Accept, Answer::refuse(400, "AccountSuspendedException")] {
        for (stage, lines) in
            [("route", route_lines(answer.clone()).await), ("nurture", nurture_lines(answer.clone()).await)]
        {
            assert!(!lines.is_empty(), "{stage}: the capture sees the function's lines");
            assert!(counted(&lines).is_empty(), "{stage} with {answer:?}:\n{}", lines.join("\n"));
        }
    }
}
