//! The time relations between `template.yaml` and the code (issue 9, findings 3 and 8):
//!
//! - an SQS consumer that dies holds its email and event claims until its deadline and
//!   [`LEASE_SKEW`]; they must have expired before SQS delivers its messages again, so a
//!   redelivery finds work to do rather than a busy claim, and the five receives before the
//!   dead-letter queue are five real tries. A message may wait in the poller for the batching
//!   window and Lambda's start-up before the invocation (and its deadline) begins;
//! - each queue's visibility is at least six times its consumer's timeout (AWS's advice for
//!   the SQS event source, so a throttled or retried batch is not handed out twice);
//! - nurture ends, and its claims expire, before the next tick; it runs one at a time, is not
//!   retried, parks failed runs in a queue with an alarm, and has Errors and Duration alarms;
//! - every AWS call gives up well inside the shortest function timeout.
//!
//! Changing one side of a relation without the other fails here. Needs no moto.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use leadflow_app::{Deadline, LEASE_SKEW, lease_until, within};
use leadflow_aws::lambda::{BATCH_MARGIN, sdk_timeouts, ses_timeouts};
use serde_yaml_ng::Value;

/// The longest a Lambda execution environment may take to start (its init phase), during which
/// a received message waits before the invocation's deadline starts running.
const LAMBDA_INIT_LIMIT: Duration = Duration::from_secs(10);
/// Lambda's default timeout, when neither the function nor `Globals` sets one.
const SAM_DEFAULT_TIMEOUT: u64 = 3;
/// SQS's default visibility timeout.
const SQS_DEFAULT_VISIBILITY: u64 = 30;

struct Template(Value);

impl Template {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Self(serde_yaml_ng::from_str(&text).expect("template.yaml is YAML"))
    }

    fn resource(&self, id: &str) -> &Value {
        self.0.get("Resources").and_then(|r| r.get(id)).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        let resources = self.0.get("Resources").and_then(Value::as_mapping).expect("Resources");
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().expect("resource ids are strings").to_string(), r))
            .collect()
    }

    fn functions(&self) -> Vec<(String, &Value)> {
        self.of_type("AWS::Serverless::Function")
    }

    fn function(&self, binary: &str) -> (String, &Value) {
        fn binary_of(f: &Value) -> Option<&str> {
            f.get("Metadata")?.get("BuildProperties")?.get("Binary")?.as_str()
        }
        self.functions()
            .into_iter()
            .find(|(_, f)| binary_of(f) == Some(binary))
            .unwrap_or_else(|| panic!("no function builds {binary}"))
    }

    /// The function's timeout in seconds: its own, else `Globals.Function`'s, else SAM's default.
    fn timeout(&self, function: &Value) -> u64 {
        let globals = || self.0.get("Globals")?.get("Function")?.get("Timeout");
        prop(function, "Timeout").or_else(globals).map_or(SAM_DEFAULT_TIMEOUT, |t| int(t, "Timeout"))
    }

    /// Every SQS event source: (function id, function, queue id, the event's properties).
    fn sqs_sources(&self) -> Vec<(String, &Value, String, &Value)> {
        let mut out = Vec::new();
        for (id, f) in self.functions() {
            let events: Vec<&Value> =
                prop(f, "Events").and_then(Value::as_mapping).map(|m| m.values().collect()).unwrap_or_default();
            for event in events.into_iter().filter(|e| e.get("Type").and_then(Value::as_str) == Some("SQS")) {
                let props = event.get("Properties").expect("an SQS event's Properties");
                let queue = props.get("Queue").and_then(|q| get_att(q, "Arn")).unwrap_or_else(|| panic!("{id}: Queue"));
                out.push((id.clone(), f, queue, props));
            }
        }
        out
    }

    /// The CloudWatch alarms on `metric` of the function `function_id`.
    fn function_alarms(&self, function_id: &str, metric: &str) -> Vec<(String, &Value)> {
        self.of_type("AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, a)| {
                let s = |k| prop(a, k).and_then(Value::as_str);
                let on_function = prop(a, "Dimensions").and_then(Value::as_sequence).is_some_and(|ds| {
                    ds.iter().any(|d| {
                        d.get("Name").and_then(Value::as_str) == Some("FunctionName")
                            && d.get("Value").and_then(|v| tagged(v, "Ref")).and_then(Value::as_str)
                                == Some(function_id)
                    })
                });
                s("Namespace") == Some("AWS/Lambda") && s("MetricName") == Some(metric) && on_function
            })
            .collect()
    }
}

fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

fn int(v: &Value, what: &str) -> u64 {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what}: {v:?} is not a whole number"))
}

fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// The resource of `!GetAtt Resource.attribute` (either spelling of the short form).
fn get_att(v: &Value, attribute: &str) -> Option<String> {
    let target = tagged(v, "GetAtt")?;
    let (resource, attr) = match target {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a.to_string()))?,
        Value::Sequence(parts) => (parts.first()?.as_str()?.to_string(), parts.get(1)?.as_str()?.to_string()),
        _ => return None,
    };
    (attr == attribute).then_some(resource)
}

/// How long a claim taken at the very start of an invocation of `timeout` is leased, by the
/// code's own rule.
async fn lease_of_invocation(timeout: Duration) -> Duration {
    let now = Utc::now();
    let deadline = Deadline::invocation(SystemTime::now() + timeout, BATCH_MARGIN);
    let until = within(deadline, async { lease_until(now) }).await;
    (until - now).to_std().expect("a lease in the future")
}

#[tokio::test]
async fn a_dead_consumers_claims_expire_before_sqs_delivers_its_messages_again() {
    let t = Template::load();
    let sources = t.sqs_sources();
    assert_eq!(sources.len(), 3, "validate, score and route consume the stage queues");
    for (function_id, function, queue, props) in sources {
        let timeout = t.timeout(function);
        let q = t.resource(&queue);
        let visibility = prop(q, "VisibilityTimeout").map_or(SQS_DEFAULT_VISIBILITY, |v| int(v, "VisibilityTimeout"));
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} s < 6 × {function_id}'s Timeout {timeout} s"
        );

        let lease = lease_of_invocation(Duration::from_secs(timeout)).await;
        assert!(lease <= Duration::from_secs(timeout) + LEASE_SKEW, "{function_id}: a lease of {lease:?}");
        let window =
            props.get("MaximumBatchingWindowInSeconds").map_or(0, |w| int(w, "MaximumBatchingWindowInSeconds"));
        // From the receive: the batching window, the start-up, then the lease from the deadline.
        let claims_free_by = Duration::from_secs(window) + LAMBDA_INIT_LIMIT + lease;
        assert!(
            claims_free_by < Duration::from_secs(visibility),
            "{function_id}: a dead invocation's claims may still be held {claims_free_by:?} after the receive, \
             but {queue} delivers the message again after {visibility} s"
        );
        assert!(BATCH_MARGIN < Duration::from_secs(timeout), "{function_id}: the batch margin fits its timeout");
    }
}

#[tokio::test]
async fn nurture_ends_and_its_claims_expire_before_the_next_tick() {
    let t = Template::load();
    let (id, nurture) = t.function("nurture");
    let schedules: Vec<&Value> = prop(nurture, "Events")
        .and_then(Value::as_mapping)
        .map(|m| m.values().filter(|e| e.get("Type").and_then(Value::as_str) == Some("ScheduleV2")).collect())
        .unwrap_or_default();
    let [schedule] = schedules.as_slice() else { panic!("{id}: one schedule") };
    let every = match schedule.get("Properties").and_then(|p| p.get("ScheduleExpression")).and_then(Value::as_str) {
        Some("rate(1 minute)") => Duration::from_secs(60),
        other => panic!("{id}: a schedule this test knows, not {other:?}"),
    };
    let timeout = Duration::from_secs(t.timeout(nurture));
    assert!(timeout < every, "{id}: a run ({timeout:?}) must end before the next tick ({every:?})");
    let lease = lease_of_invocation(timeout).await;
    assert!(lease < every, "{id}: a dead run's claims ({lease:?}) must have expired at the next tick");
}

#[test]
fn nurture_runs_one_at_a_time_is_not_retried_and_its_failures_are_seen() {
    let t = Template::load();
    let (id, nurture) = t.function("nurture");

    // Reserved concurrency 1 by default, through a parameter whose 0 means none.
    let reserved =
        prop(nurture, "ReservedConcurrentExecutions").unwrap_or_else(|| panic!("{id}: reserved concurrency"));
    let branches = tagged(reserved, "If").and_then(Value::as_sequence).expect("ReservedConcurrentExecutions: !If");
    let [condition, yes, no] = branches.as_slice() else { panic!("{id}: !If [condition, yes, no]") };
    let parameter = tagged(yes, "Ref").and_then(Value::as_str).expect("the reservation is a parameter");
    assert_eq!(tagged(no, "Ref").and_then(Value::as_str), Some("AWS::NoValue"));
    let p = t.0.get("Parameters").and_then(|ps| ps.get(parameter)).expect("the parameter");
    assert_eq!(p.get("Default").map(|d| int(d, "Default")), Some(1), "{parameter}: one run at a time by default");
    let condition = condition.as_str().expect("a condition name");
    let rule = t.0.get("Conditions").and_then(|c| c.get(condition)).expect("the condition");
    let rule = format!("{rule:?}");
    assert!(
        rule.contains(parameter) && rule.contains("\"0\""),
        "{condition}: reserved unless the parameter is 0: {rule}"
    );

    // Asynchronous invocations: no retry, failures parked in a queue with an alarm.
    let invoke = prop(nurture, "EventInvokeConfig").unwrap_or_else(|| panic!("{id}: EventInvokeConfig"));
    assert_eq!(invoke.get("MaximumRetryAttempts").map(|v| int(v, "MaximumRetryAttempts")), Some(0));
    let on_failure = invoke.get("DestinationConfig").and_then(|d| d.get("OnFailure")).expect("OnFailure");
    assert_eq!(on_failure.get("Type").and_then(Value::as_str), Some("SQS"));
    let queue = on_failure.get("Destination").and_then(|d| get_att(d, "Arn")).expect("Destination: !GetAtt Q.Arn");
    let q = t.resource(&queue);
    assert_eq!(q.get("Type").and_then(Value::as_str), Some("AWS::SQS::Queue"));
    for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
        assert_eq!(q.get(policy).and_then(Value::as_str), Some("Retain"), "{queue}: {policy}");
    }
    let depth_alarms: Vec<_> = t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| {
            prop(a, "MetricName").and_then(Value::as_str) == Some("ApproximateNumberOfMessagesVisible")
                && prop(a, "Dimensions").and_then(Value::as_sequence).is_some_and(|ds| {
                    ds.iter().any(|d| d.get("Value").and_then(|v| get_att(v, "QueueName")).as_deref() == Some(&queue))
                })
        })
        .collect();
    let [(alarm, a)] = depth_alarms.as_slice() else { panic!("{queue}: one depth alarm, found {depth_alarms:?}") };
    assert_eq!(prop(a, "Threshold").map(|v| int(v, "Threshold")), Some(0), "{alarm}: any message");
    assert!(prop(a, "AlarmActions").is_some(), "{alarm}: tells the alarm topic");

    // Errors: any failed run. Duration: runs near the timeout, for a while.
    assert_eq!(t.function_alarms(&id, "Errors").len(), 1, "{id}: an Errors alarm");
    let durations = t.function_alarms(&id, "Duration");
    let [(alarm, a)] = durations.as_slice() else { panic!("{id}: one Duration alarm, found {durations:?}") };
    let timeout_ms = t.timeout(nurture) * 1000;
    let threshold = prop(a, "Threshold").map(|v| int(v, "Threshold")).expect("Threshold");
    assert!(
        threshold * 4 >= timeout_ms * 3 && threshold < timeout_ms,
        "{alarm}: {threshold} ms should be near the timeout of {timeout_ms} ms"
    );
    let statistic = prop(a, "Statistic").and_then(Value::as_str);
    let extended = prop(a, "ExtendedStatistic").and_then(Value::as_str);
    assert!(statistic == Some("Maximum") || extended == Some("p99"), "{alarm}: Maximum or p99");
    assert!(prop(a, "AlarmActions").is_some(), "{alarm}: tells the alarm topic");
}

#[test]
fn every_aws_call_gives_up_well_inside_the_shortest_function_timeout() {
    let t = Template::load();
    let shortest = t.functions().iter().map(|(_, f)| t.timeout(f)).min().expect("functions");
    for (name, timeouts) in [("sdk", sdk_timeouts()), ("ses", ses_timeouts())] {
        let operation = timeouts.operation_timeout().unwrap_or_else(|| panic!("{name}: an operation timeout"));
        assert!(
            operation + BATCH_MARGIN <= Duration::from_secs(shortest),
            "{name}: a call may take {operation:?}, the shortest function has {shortest} s"
        );
        assert!(timeouts.connect_timeout().is_some_and(|c| c < operation), "{name}: a connect timeout");
        if let Some(attempt) = timeouts.operation_attempt_timeout() {
            assert!(attempt * 2 <= operation, "{name}: an attempt ({attempt:?}) leaves room for a retry");
        }
    }
}
