//! The alarm on emails that will never be sent: route and nurture count a rejection from SES
//! (the `fake_ses` endpoint answering `MessageRejected`) as `EmailsRejected` in the Embedded
//! Metric Format line of their invocation, and `template.yaml` alarms on that metric. A line
//! that drifted from the alarm (another name, namespace or dimension set) would leave the alarm
//! quiet for ever, so the line route and nurture write for a real rejection is read here
//! against the alarm; a send and an account-level refusal (retried, not lost) must not count as
//! rejections. Needs no moto.
// The route handler's future over the real SES client, inside the metric scope's, nests deeper
// than rustc's default layout query depth (128).
#![recursion_limit = "256"]

mod fake_ses;
mod template_yaml;

use chrono::Utc;
use fake_ses::{Answer, FakeSes, QUOTED};
use leadflow_app::BatchItem;
use leadflow_app::metrics::counted;
use leadflow_aws::metrics::Emf;
use leadflow_core::config::CompiledConfig;
use leadflow_core::messages::RouteMessage;
use leadflow_core::model::{EnrollmentState, Lifecycle};
use leadflow_core::ports::{Adapters, Clock, ConfigHandle};
use leadflow_core::ports::{Enrollments, Leads};
use leadflow_memory::fixtures::{enrollment, lead};
use leadflow_memory::{MemoryQueue, MemoryStore, RecordingBus, SettableClock};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use template_yaml::{prop, tagged, template};

const METRIC: &str = "EmailsRejected";

/// The one alarm on rejected emails: its id, its namespace (as the template writes it) and the
/// names of its dimensions.
fn rejection_alarm(t: &Value) -> (String, String, Vec<String>) {
    let resources = t.get("Resources").and_then(Value::as_mapping).expect("Resources");
    let alarms: Vec<_> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::CloudWatch::Alarm"))
        .filter(|(_, a)| prop(a, "MetricName").and_then(Value::as_str) == Some(METRIC))
        .collect();
    let [(id, alarm)] = alarms.as_slice() else { panic!("one alarm on {METRIC}: {alarms:?}") };
    let id = id.as_str().expect("an id").to_string();
    let s = |k| prop(alarm, k).and_then(Value::as_str).map(str::to_string);
    let n = |k| prop(alarm, k).and_then(Value::as_u64);
    assert_eq!(s("Statistic").as_deref(), Some("Sum"), "{id}");
    assert_eq!((n("Period"), n("EvaluationPeriods"), n("Threshold")), (Some(300), Some(1), Some(1)), "{id}");
    assert_eq!(s("ComparisonOperator").as_deref(), Some("GreaterThanOrEqualToThreshold"), "{id}");
    let namespace = prop(alarm, "Namespace").and_then(|n| tagged(n, "Sub")).and_then(Value::as_str);
    let namespace = namespace.unwrap_or_else(|| panic!("{id}: Namespace is a !Sub")).to_string();
    let dims = prop(alarm, "Dimensions").and_then(Value::as_sequence).cloned().unwrap_or_default();
    let dims = dims.iter().filter_map(|d| d.get("Name").and_then(Value::as_str).map(str::to_string)).collect();
    (id, namespace, dims)
}

type Ports = Adapters<MemoryStore, MemoryQueue, leadflow_aws::mailer::SesMailer, RecordingBus, SettableClock>;

async fn ports(answer: Answer) -> (Ports, FakeSes) {
    let fake = FakeSes::start(answer).await;
    let mut config = CompiledConfig::compile(&leadflow_app::config_files::sample()).expect("the sample configuration");
    config.settings.sender.email = "sales@acme.example".into();
    config.settings.signing_keys = "rejection-alarm-test-unsubscribe-secret-0123456789".into();
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

/// The EMF line route writes for one assignment whose email SES answers with `answer`, in
/// `namespace` (none when nothing was counted).
async fn route_line(answer: Answer, namespace: &str) -> Option<Json> {
    let (ports, _fake) = ports(answer).await;
    // Qualified and not yet assigned, so route assigns it before the email.
    let mut lead = lead(1, QUOTED);
    lead.lifecycle = Lifecycle::Mql;
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let body = serde_json::to_string(&RouteMessage::route(lead.id)).expect("json");
    let ((), counts) = counted(async {
        leadflow_route::handle_batch(&ports, vec![BatchItem { id: "m-1".into(), body }]).await;
    })
    .await;
    let line = Emf::new(namespace).line(&counts, Utc::now())?;
    assert!(!line.contains('@'), "no address in a metric line: {line}");
    Some(serde_json::from_str(&line).expect("the line is JSON"))
}

/// The EMF line of a nurture tick with one due drip whose email SES answers with `answer`.
async fn nurture_line(answer: Answer, namespace: &str) -> Option<Json> {
    let (ports, _fake) = ports(answer).await;
    let lead = lead(1, QUOTED);
    ports.store.create_lead(&lead, &[]).await.expect("create");
    let mut due = enrollment(1, "welcome", Some(ports.clock.now()), EnrollmentState::Active);
    due.enrolled_at = ports.clock.now();
    assert!(ports.store.enroll(&due, &[]).await.expect("enroll"));
    let ((), counts) = counted(async {
        leadflow_nurture::tick(&ports, 10).await.expect("tick");
    })
    .await;
    let line = Emf::new(namespace).line(&counts, Utc::now())?;
    assert!(!line.contains('@'), "no address in a metric line: {line}");
    Some(serde_json::from_str(&line).expect("the line is JSON"))
}

/// The metric names the line declares in its one directive, with the directive's namespace and
/// dimension sets.
fn declared(line: &Json) -> (String, Vec<Json>, Vec<String>) {
    let d = &line["_aws"]["CloudWatchMetrics"][0];
    let names = d["Metrics"].as_array().into_iter().flatten().filter_map(|m| m["Name"].as_str().map(str::to_string));
    let sets = d["Dimensions"].as_array().cloned().unwrap_or_default();
    (d["Namespace"].as_str().unwrap_or_default().to_string(), sets, names.collect())
}

#[tokio::test]
async fn a_rejection_by_ses_on_route_or_nurture_is_counted_where_the_alarm_looks() {
    let (id, namespace, alarm_dims) = rejection_alarm(&template());
    for (stage, line) in [
        ("route", route_line(Answer::refuse(400, "MessageRejected"), &namespace).await),
        ("nurture", nurture_line(Answer::refuse(400, "MessageRejected"), &namespace).await),
    ] {
        let line = line.unwrap_or_else(|| panic!("{stage}: a line for a rejection"));
        let (ns, sets, names) = declared(&line);
        assert_eq!(ns, namespace, "{stage}: the line's namespace is {id}'s");
        assert!(names.iter().any(|n| n == METRIC), "{stage}: {METRIC} declared: {line}");
        assert_eq!(line[METRIC], 1, "{stage}: one rejection counted: {line}");
        let dims: Vec<Json> = alarm_dims.iter().map(|d| Json::from(d.as_str())).collect();
        assert!(sets.contains(&Json::from(dims)), "{stage}: {id}'s dimensions {alarm_dims:?} are published: {sets:?}");
        for not in ["EmailsSent", "EmailsRetried", "DripsSent"] {
            assert!(line.get(not).is_none(), "{stage}: a rejection is no {not}: {line}");
        }
    }
}

#[tokio::test]
async fn a_send_or_an_account_level_refusal_is_no_rejection() {
    let (_, namespace, _) = rejection_alarm(&template());
    for (stage, line) in [
        ("route", route_line(Answer::Accept, &namespace).await),
        ("nurture", nurture_line(Answer::Accept, &namespace).await),
    ] {
        let line = line.unwrap_or_else(|| panic!("{stage}: a line for a send"));
        assert_eq!(line["EmailsSent"], 1, "{stage}: {line}");
        assert!(line.get(METRIC).is_none(), "{stage}: {line}");
    }
    // Retried, not lost: counted as such, so the retry alarm sees a suspended account.
    for (stage, line) in [
        ("route", route_line(Answer::refuse(400, "AccountSuspendedException"), &namespace).await),
        ("nurture", nurture_line(Answer::refuse(400, "AccountSuspendedException"), &namespace).await),
    ] {
        let line = line.unwrap_or_else(|| panic!("{stage}: a line for a refusal"));
        assert_eq!(line["EmailsRetried"], 1, "{stage}: {line}");
        assert!(line.get(METRIC).is_none() && line.get("EmailsSent").is_none(), "{stage}: {line}");
    }
}
