//! The template and the functions' metrics agree. An alarm or a dashboard graph on a metric name,
//! namespace or dimension set the functions never publish sees nothing and stays quiet for
//! ever, so each one is checked against `Metric::ALL` and the very EMF line the functions write;
//! the functions' namespace and dead-letter threshold come from the template too. Needs no moto.

mod template_yaml;

use std::collections::BTreeSet;

use chrono::Utc;
use leadflow_app::metrics::{Metric, count, counted};
use leadflow_aws::metrics::{Emf, NAMESPACE_VAR};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use template_yaml::{prop, tagged, template};

fn resources_of<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    let resources = t.get("Resources").and_then(Value::as_mapping).expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().expect("resource ids are strings"), r))
        .collect()
}

fn sub_text(v: &Value) -> Option<&str> {
    tagged(v, "Sub").and_then(Value::as_str)
}

/// The namespace the alarms read, as the template writes it (`Leadflow/${AWS::StackName}`).
const NAMESPACE: &str = "Leadflow/${AWS::StackName}";

/// The EMF line with every metric counted once, under the template's namespace expression.
async fn full_line() -> Json {
    let ((), counts) = counted(async {
        for m in Metric::ALL {
            count(m, 1);
        }
    })
    .await;
    let line = Emf::new(NAMESPACE).line(&counts, Utc::now()).expect("a line");
    serde_json::from_str(&line).expect("the line is JSON")
}

/// The line's one directive: namespace, dimension sets, metric names.
fn directive(line: &Json) -> (String, Vec<Vec<String>>, BTreeSet<String>) {
    let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics");
    let [d] = directives.as_slice() else { panic!("one directive: {directives:?}") };
    let namespace = d["Namespace"].as_str().expect("Namespace").to_string();
    let sets = d["Dimensions"].as_array().expect("Dimensions").iter();
    let sets = sets
        .map(|s| s.as_array().expect("a set").iter().map(|k| k.as_str().expect("a key").to_string()).collect())
        .collect();
    let names = d["Metrics"].as_array().expect("Metrics").iter();
    let names = names.map(|m| m["Name"].as_str().expect("Name").to_string()).collect();
    (namespace, sets, names)
}

/// An alarm's dimensions as `[name, …]` (the values are the template's business).
fn alarm_dimension_names(alarm: &Value) -> Vec<String> {
    let dims = prop(alarm, "Dimensions").and_then(Value::as_sequence).cloned().unwrap_or_default();
    dims.iter().map(|d| d.get("Name").and_then(Value::as_str).expect("a dimension's Name").to_string()).collect()
}

#[tokio::test]
async fn every_alarm_on_the_leadflow_namespace_reads_a_metric_the_functions_publish_as_they_publish_it() {
    let t = template();
    let (namespace, sets, names) = directive(&full_line().await);
    assert_eq!(namespace, NAMESPACE);
    let all: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_string()).collect();
    assert_eq!(names, all, "the line declares every counted metric");

    let mut alarmed = BTreeSet::new();
    for (id, alarm) in resources_of(&t, "AWS::CloudWatch::Alarm") {
        let Some(ns) = prop(alarm, "Namespace") else { continue };
        if sub_text(ns) != Some(NAMESPACE) {
            let literal = ns.as_str().unwrap_or_default();
            assert!(!literal.starts_with("Leadflow"), "{id}: the namespace is !Sub \"{NAMESPACE}\"");
            continue;
        }
        let metric = prop(alarm, "MetricName").and_then(Value::as_str).expect("MetricName").to_string();
        assert!(all.contains(&metric), "{id} alarms on {metric}, which no function publishes");
        let dims = alarm_dimension_names(alarm);
        assert!(sets.contains(&dims), "{id}: dimensions {dims:?}, the functions publish {sets:?}");
        assert_eq!(prop(alarm, "Statistic").and_then(Value::as_str), Some("Sum"), "{id}: counts add up");
        assert_eq!(
            prop(alarm, "TreatMissingData").and_then(Value::as_str),
            Some("notBreaching"),
            "{id}: nothing counted publishes nothing"
        );
        for actions in ["AlarmActions", "OKActions"] {
            let branches = prop(alarm, actions).and_then(|a| tagged(a, "If")).and_then(Value::as_sequence);
            let branches = branches.unwrap_or_else(|| panic!("{id}: {actions} is an !If"));
            assert_eq!(branches[0].as_str(), Some("HasAlarmTopic"), "{id}: {actions}");
            let topic = branches[1].as_sequence().and_then(|s| s.first()).and_then(|r| tagged(r, "Ref"));
            assert_eq!(topic.and_then(Value::as_str), Some("AlarmTopicArn"), "{id}: {actions}");
        }
        alarmed.insert(metric);
    }
    for needed in ["EmailsRejected", "EmailsRetried", "DeadLettered"] {
        assert!(alarmed.contains(needed), "an alarm on {needed}: {alarmed:?}");
    }
    // The functions publish these themselves now; a metric filter on the same name would count
    // every rejection twice.
    for (id, filter) in resources_of(&t, "AWS::Logs::MetricFilter") {
        let ms = prop(filter, "MetricTransformations").and_then(Value::as_sequence).cloned().unwrap_or_default();
        for m in ms {
            let name = m.get("MetricName").and_then(Value::as_str).unwrap_or_default();
            assert!(!all.contains(name), "{id} publishes {name}, which the functions publish themselves");
        }
    }
}

#[tokio::test]
async fn the_dashboard_graphs_every_metric_as_published_and_every_functions_errors_and_throttles() {
    let t = template();
    let (_, sets, _) = directive(&full_line().await);
    let dashboards = resources_of(&t, "AWS::CloudWatch::Dashboard");
    let [(id, dashboard)] = dashboards.as_slice() else { panic!("one dashboard: {dashboards:?}") };
    let body = prop(dashboard, "DashboardBody").and_then(sub_text).expect("DashboardBody is a !Sub string");
    // What !Sub fills in is strings inside strings: the body is JSON before and after.
    let body: Json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{id}: the body is JSON: {e}"));
    let widgets = body["widgets"].as_array().expect("widgets");

    let mut graphed = BTreeSet::new();
    let mut lambda = BTreeSet::new();
    for w in widgets {
        assert_eq!(w["properties"]["region"], "${AWS::Region}", "{id}: a widget in the stack's region: {w}");
        for m in w["properties"]["metrics"].as_array().expect("metrics") {
            let parts: Vec<&str> = m.as_array().expect("a metric row").iter().filter_map(Json::as_str).collect();
            match parts.as_slice() {
                [ns, name, dims @ ..] if *ns == NAMESPACE => {
                    let keys: Vec<String> = dims.chunks(2).map(|p| p[0].to_string()).collect();
                    assert!(sets.contains(&keys), "{id}: {name} with dimensions {keys:?}, published as {sets:?}");
                    graphed.insert(name.to_string());
                }
                ["AWS/Lambda", name, "FunctionName", function] => {
                    lambda.insert((name.to_string(), function.to_string()));
                }
                other => panic!("{id}: a graph of something unexpected: {other:?}"),
            }
        }
    }
    let all: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_string()).collect();
    assert_eq!(graphed, all, "{id} graphs every metric, and no other in the namespace");
    for (function, _) in resources_of(&t, "AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            let key = (metric.to_string(), format!("${{{function}}}"));
            assert!(lambda.contains(&key), "{id}: {function}'s {metric}");
        }
    }
}

#[test]
fn every_function_publishes_into_the_namespace_the_alarms_read() {
    let t = template();
    let functions = resources_of(&t, "AWS::Serverless::Function");
    assert!(functions.len() >= 8, "{functions:?}");
    for (id, f) in functions {
        let vars = prop(f, "Environment").and_then(|e| e.get("Variables"));
        let ns = vars.and_then(|v| v.get(NAMESPACE_VAR)).and_then(sub_text);
        assert_eq!(ns, Some(NAMESPACE), "{id}: {NAMESPACE_VAR}");
    }
}

/// The queue an SQS-triggered function consumes: `Events.*.Properties.Queue: !GetAtt Q.Arn`.
fn consumed_queue(f: &Value) -> Option<String> {
    let events = prop(f, "Events").and_then(Value::as_mapping)?;
    events.values().find(|e| e.get("Type").and_then(Value::as_str) == Some("SQS")).and_then(|e| {
        let arn = tagged(e.get("Properties")?.get("Queue")?, "GetAtt")?.as_str()?;
        arn.strip_suffix(".Arn").map(str::to_string)
    })
}

#[test]
fn each_stage_counts_dead_letters_at_its_queues_max_receive_count() {
    let t = template();
    let mut stages = 0;
    for (id, f) in resources_of(&t, "AWS::Serverless::Function") {
        let given =
            prop(f, "Environment").and_then(|e| e.get("Variables")).and_then(|v| v.get("LEADFLOW_MAX_RECEIVES"));
        let Some(queue) = consumed_queue(f) else {
            assert!(given.is_none(), "{id} consumes no queue; LEADFLOW_MAX_RECEIVES means nothing to it");
            continue;
        };
        stages += 1;
        let redrive = t["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_u64();
        let redrive = redrive.unwrap_or_else(|| panic!("{queue} has a RedrivePolicy maxReceiveCount"));
        let given = given.and_then(Value::as_str).unwrap_or_else(|| panic!("{id}: LEADFLOW_MAX_RECEIVES, a string"));
        // What the function parses at start.
        let parsed = leadflow_aws::lambda::max_receives(|_| Some(given.to_string()));
        assert_eq!(parsed, Some(redrive as u32), "{id}: LEADFLOW_MAX_RECEIVES is {queue}'s maxReceiveCount");
    }
    assert_eq!(stages, 3, "validate, score and route consume queues");
}
