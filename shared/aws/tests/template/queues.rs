//! Queues, the schedule and the SES events: batches that report partial failures, dead-letter
//! queues with alarms, retries.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::resources::Template;
use crate::yaml::{
    binary_of, events, get_att, int, intrinsic, prop, ref_of, schedule_events, seq, sqs_events, strings,
};

#[test]
fn sqs_event_sources_report_partial_batch_failures_in_batches_of_ten() {
    let t = Template::load();
    let mut consumers = BTreeSet::new();
    for (id, f) in t.functions() {
        for event in sqs_events(f) {
            let types: Vec<&str> =
                seq(prop(event, "FunctionResponseTypes")).into_iter().filter_map(Value::as_str).collect();
            assert_eq!(types, ["ReportBatchItemFailures"], "{id}: one bad message must not redeliver its batch");
            assert_eq!(prop(event, "BatchSize").map(|b| int(b, "BatchSize")), Some(10), "{id}: BatchSize");
            let window = prop(event, "MaximumBatchingWindowInSeconds").map(|w| int(w, "batching window"));
            assert!(window.is_some_and(|w| (1..=5).contains(&w)), "{id}: a short MaximumBatchingWindowInSeconds");
            consumers.insert(binary_of(f).unwrap_or_default().to_string());
        }
    }
    assert_eq!(consumers, BTreeSet::from(["validate", "score", "route"].map(String::from)));
}

#[test]
fn stage_queues_have_dlqs_and_visibility_six_times_their_consumers_timeout() {
    let t = Template::load();
    let consumed = t.consumed_queues();
    assert_eq!(consumed.len(), 3, "the three stage queues: {:?}", consumed.keys());
    for (queue, (function_id, function)) in consumed {
        let q = t.resource(&queue);
        let redrive = prop(q, "RedrivePolicy").unwrap_or_else(|| panic!("{queue} has no RedrivePolicy"));
        let (dlq, attr) = redrive.get("deadLetterTargetArn").and_then(get_att).expect("deadLetterTargetArn: !GetAtt");
        assert_eq!(attr, "Arn", "{queue}: deadLetterTargetArn");
        assert_eq!(t.type_of(&dlq), Some("AWS::SQS::Queue"), "{queue}'s DLQ {dlq}");
        assert_ne!(dlq, queue);
        assert_eq!(redrive.get("maxReceiveCount").map(|c| int(c, "maxReceiveCount")), Some(5), "{queue}");
        assert!(prop(t.resource(&dlq), "RedrivePolicy").is_none(), "{dlq} is a DLQ and redrives nowhere");

        let timeout = t.timeout(function);
        let visibility = prop(q, "VisibilityTimeout").map(|v| int(v, "VisibilityTimeout")).unwrap_or(30);
        assert!(
            visibility >= 6 * timeout,
            "{queue}: VisibilityTimeout {visibility} s < 6 × {function_id}'s timeout {timeout} s"
        );

        // A standard queue's message keeps its first enqueue time in the DLQ: a DLQ with a
        // shorter retention than its source would drop failed leads before anyone looks.
        let retention = |id: &str| {
            prop(t.resource(id), "MessageRetentionPeriod").map(|v| int(v, "MessageRetentionPeriod")).unwrap_or(345_600)
        };
        assert!(retention(&dlq) > retention(&queue), "{dlq} must keep messages longer than {queue}");
    }
}

#[test]
fn every_dead_letter_queue_has_an_alarm() {
    let t = Template::load();
    let dlqs = t.dead_letter_queues();
    assert_eq!(dlqs.len(), 5, "three stage DLQs, the schedule's and the SES events': {dlqs:?}");
    let alarmed: BTreeSet<String> = t
        .of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| {
            let s = |k| prop(a, k).and_then(Value::as_str);
            s("Namespace") == Some("AWS/SQS")
                && s("MetricName") == Some("ApproximateNumberOfMessagesVisible")
                && s("ComparisonOperator") == Some("GreaterThanThreshold")
                && prop(a, "Threshold").map(|v| int(v, "Threshold")) == Some(0)
        })
        .flat_map(|(_, a)| {
            seq(prop(a, "Dimensions"))
                .into_iter()
                .filter(|d| d.get("Name").and_then(Value::as_str) == Some("QueueName"))
                .filter_map(|d| get_att(d.get("Value")?).filter(|(_, attr)| *attr == "QueueName").map(|(q, _)| q))
                .collect::<Vec<_>>()
        })
        .collect();
    for dlq in &dlqs {
        assert!(alarmed.contains(dlq), "{dlq} has no alarm on ApproximateNumberOfMessagesVisible > 0");
    }
}

#[test]
fn nurture_runs_every_minute_with_retries_and_a_dead_letter_queue() {
    let t = Template::load();
    let (id, nurture) = t.function("nurture");
    let schedules = schedule_events(nurture);
    assert_eq!(schedules.len(), 1, "{id}: one schedule");
    let s = schedules[0];
    assert_eq!(prop(s, "ScheduleExpression").and_then(Value::as_str), Some("rate(1 minute)"));
    let retry = prop(s, "RetryPolicy").expect("RetryPolicy");
    assert!(retry.get("MaximumRetryAttempts").is_some(), "RetryPolicy.MaximumRetryAttempts");
    let dlq = prop(s, "DeadLetterConfig").and_then(|d| d.get("Arn")).and_then(get_att).expect("DeadLetterConfig.Arn");
    assert_eq!(dlq.1, "Arn");
    assert_eq!(t.type_of(&dlq.0), Some("AWS::SQS::Queue"));
    // Every tick must be able to finish before the next one starts.
    assert!(t.timeout(nurture) <= 60, "{id}: Timeout");
}

/// SES event type (configuration set event destination) → the detail-type EventBridge shows.
const SES_EVENTS: &[(&str, &str)] = &[
    ("bounce", "Email Bounced"),
    ("complaint", "Email Complaint Received"),
    ("delivery", "Email Delivered"),
    ("open", "Email Opened"),
    ("click", "Email Clicked"),
];

#[test]
fn ses_events_reach_the_function_through_the_default_bus_with_retries_and_a_dead_letter_queue() {
    let t = Template::load();
    // The configuration set publishes the five events to the default bus.
    let destinations = t.of_type("AWS::SES::ConfigurationSetEventDestination");
    let [(dest_id, dest)] = destinations.as_slice() else { panic!("one SES event destination") };
    assert_eq!(prop(dest, "ConfigurationSetName").and_then(ref_of), Some("EmailConfigurationSet"), "{dest_id}");
    let destination = prop(dest, "EventDestination").expect("EventDestination");
    assert_eq!(destination.get("Enabled").and_then(Value::as_bool), Some(true), "{dest_id}: Enabled");
    let types: BTreeSet<&str> =
        seq(destination.get("MatchingEventTypes")).into_iter().filter_map(Value::as_str).collect();
    assert_eq!(types, SES_EVENTS.iter().map(|(ty, _)| *ty).collect(), "{dest_id}: MatchingEventTypes");
    let bus = destination.get("EventBridgeDestination").and_then(|d| d.get("EventBusArn")).expect("EventBusArn");
    let (name, arn) = intrinsic(bus).expect("EventBusArn is a !Sub");
    assert_eq!(name, "Fn::Sub");
    assert_eq!(
        arn.as_str(),
        Some("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"),
        "SES publishes to the default bus only"
    );

    // One rule on the default bus takes exactly those events of this configuration set.
    let (id, f) = t.function("ses-events");
    let rules = events(f, &["EventBridgeRule"]);
    let [rule] = rules.as_slice() else { panic!("{id}: one EventBridge rule") };
    assert!(prop(rule, "EventBusName").is_none(), "{id}: the rule is on the default bus");
    let pattern = prop(rule, "Pattern").expect("Pattern");
    assert_eq!(strings(pattern.get("source")), BTreeSet::from(["aws.ses"]));
    assert_eq!(strings(pattern.get("detail-type")), SES_EVENTS.iter().map(|(_, detail)| *detail).collect());
    let set = pattern
        .get("detail")
        .and_then(|d| d.get("mail"))
        .and_then(|m| m.get("tags"))
        .and_then(|tags| tags.get("ses:configuration-set"));
    let set = seq(set);
    assert_eq!(set.len(), 1, "{id}: the rule matches one configuration set");
    assert_eq!(ref_of(set[0]), Some("EmailConfigurationSet"), "{id}: only this stack's emails");

    // Retries, then the DLQ; the DLQ lets this rule (and no other) send to it.
    let retry = prop(rule, "RetryPolicy").expect("RetryPolicy");
    assert!(retry.get("MaximumRetryAttempts").is_some() && retry.get("MaximumEventAgeInSeconds").is_some());
    let (dlq, attr) = prop(rule, "DeadLetterConfig").and_then(|d| d.get("Arn")).and_then(get_att).expect("DLQ Arn");
    assert_eq!((t.type_of(&dlq), attr), (Some("AWS::SQS::Queue"), "Arn"));
    let rule_name = prop(rule, "RuleName").and_then(intrinsic).and_then(|(_, v)| v.as_str()).expect("RuleName !Sub");
    let policies = t.of_type("AWS::SQS::QueuePolicy");
    let policy = policies
        .iter()
        .find(|(_, p)| seq(prop(p, "Queues")).into_iter().any(|q| ref_of(q) == Some(dlq.as_str())))
        .unwrap_or_else(|| panic!("no queue policy on {dlq}"))
        .1;
    let statements = seq(prop(policy, "PolicyDocument").and_then(|d| d.get("Statement")));
    let allows_the_rule = statements.iter().any(|s| {
        s.get("Principal").and_then(|p| p.get("Service")).and_then(Value::as_str) == Some("events.amazonaws.com")
            && s.get("Action").and_then(Value::as_str) == Some("sqs:SendMessage")
            && s.get("Condition")
                .and_then(|c| c.get("ArnEquals"))
                .and_then(|c| c.get("aws:SourceArn"))
                .and_then(intrinsic)
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|arn| arn.ends_with(&format!(":rule/{rule_name}")))
    });
    assert!(allows_the_rule, "{dlq}'s policy must let the rule {rule_name} (only) send to it");
    // Invocations that fail (the function errs) end there too instead of being dropped.
    let on_failure = prop(f, "EventInvokeConfig")
        .and_then(|c| c.get("DestinationConfig"))
        .and_then(|d| d.get("OnFailure"))
        .and_then(|o| o.get("Destination"))
        .and_then(get_att);
    assert_eq!(on_failure.map(|(q, _)| q), Some(dlq.clone()), "{id}: EventInvokeConfig OnFailure");
    assert!(t.dead_letter_queues().contains(&dlq));
}
