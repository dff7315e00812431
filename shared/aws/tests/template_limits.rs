//! The limits `template.yaml` sets for a real deployment (issue 9, findings 7 and 11): how many
//! batches each stage's poller runs at once, the optional reserved concurrency of the functions
//! people wait on, per-route throttles on the HTTP API, the alarms, what a stack delete keeps,
//! and the shape `PublicUrl` must have. cfn-lint checks that these are well formed, not that
//! they are there or say what the README promises; a missing one shows only in production.
//!
//! Conditional settings are evaluated here for given parameter values (`Deployed`), so the
//! tests check what CloudFormation would set, not how the template spells it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

struct Template {
    doc: Value,
}

impl Template {
    /// The repository's template, or the one `LEADFLOW_TEMPLATE` names (to see these tests
    /// fail on a broken copy without touching the real one).
    fn load() -> Self {
        let path = match std::env::var_os("LEADFLOW_TEMPLATE") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Template { doc: serde_yaml_ng::from_str(&text).expect("template.yaml is YAML") }
    }

    fn section(&self, name: &str) -> &Mapping {
        self.doc.get(name).and_then(Value::as_mapping).unwrap_or_else(|| panic!("no {name} section"))
    }

    fn resource(&self, id: &str) -> &Value {
        self.section("Resources").get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.section("Resources")
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().expect("resource ids are strings").to_string(), r))
            .collect()
    }

    fn functions(&self) -> Vec<(String, &Value)> {
        self.of_type("AWS::Serverless::Function")
    }

    fn function(&self, binary: &str) -> (String, &Value) {
        let builds = |f: &Value| {
            f.get("Metadata").and_then(|m| m.get("BuildProperties")?.get("Binary")).and_then(Value::as_str)
                == Some(binary)
        };
        self.functions()
            .into_iter()
            .find(|(_, f)| builds(f))
            .unwrap_or_else(|| panic!("no function builds binary {binary}"))
    }

    fn parameter(&self, name: &str) -> &Value {
        self.section("Parameters").get(name).unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// Every `AWS::CloudWatch::Alarm` on `namespace`/`metric` whose dimension `dimension` is `value`.
    fn alarms_on(&self, namespace: &str, metric: &str, dimension: &str, value: &Value) -> Vec<(String, &Value)> {
        self.of_type("AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, a)| {
                text(prop(a, "Namespace")) == Some(namespace)
                    && text(prop(a, "MetricName")) == Some(metric)
                    && seq(prop(a, "Dimensions")).iter().any(|d| {
                        d.get("Name").and_then(Value::as_str) == Some(dimension) && d.get("Value") == Some(value)
                    })
            })
            .collect()
    }
}

/// The template as deployed with some parameters given (the others at their defaults).
struct Deployed<'a> {
    t: &'a Template,
    given: BTreeMap<&'a str, &'a str>,
}

impl<'a> Deployed<'a> {
    fn with(t: &'a Template, given: &[(&'a str, &'a str)]) -> Self {
        Deployed { t, given: given.iter().copied().collect() }
    }

    /// What `v` becomes; `None` for `AWS::NoValue` (the property is left out).
    fn eval(&self, v: &Value) -> Option<Value> {
        match intrinsic(v) {
            Some(("Ref", Value::String(name))) if name == "AWS::NoValue" => None,
            Some(("Ref", Value::String(name))) => Some(Value::String(self.parameter(name))),
            Some(("Fn::If", Value::Sequence(args))) if args.len() == 3 => {
                let condition = args[0].as_str().expect("!If names a condition");
                if self.condition(condition) { self.eval(&args[1]) } else { self.eval(&args[2]) }
            }
            Some((name, _)) => panic!("{name} is not evaluated by these tests: {v:?}"),
            None => match v {
                Value::Sequence(items) => Some(Value::Sequence(items.iter().filter_map(|i| self.eval(i)).collect())),
                other => Some(other.clone()),
            },
        }
    }

    fn parameter(&self, name: &str) -> String {
        if let Some(value) = self.given.get(name) {
            return value.to_string();
        }
        let default = self.t.parameter(name).get("Default").unwrap_or_else(|| panic!("{name} has no default"));
        scalar(default)
    }

    fn condition(&self, name: &str) -> bool {
        let c = self.t.section("Conditions").get(name).unwrap_or_else(|| panic!("no condition {name}"));
        self.truth(c)
    }

    fn truth(&self, v: &Value) -> bool {
        match intrinsic(v) {
            Some(("Fn::Not", Value::Sequence(a))) if a.len() == 1 => !self.truth(&a[0]),
            Some(("Fn::Equals", Value::Sequence(a))) if a.len() == 2 => {
                let side = |v: &Value| self.eval(v).map(|v| scalar(&v));
                side(&a[0]) == side(&a[1])
            }
            Some(("Fn::Condition", Value::String(name))) => self.condition(name),
            _ => panic!("condition not evaluated by these tests: {v:?}"),
        }
    }
}

fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

fn seq(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(s)) => s.iter().collect(),
        Some(v) => vec![v],
    }
}

/// A scalar as CloudFormation passes it around: parameter values are strings.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn number(v: Option<&Value>, what: &str) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what} is not a number: {v:?}"))
}

/// An intrinsic in its short (`!Ref`) or long (`Fn::GetAtt:`) form: its long name and argument.
fn intrinsic(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Tagged(t) => {
            let name = match t.tag.to_string().trim_start_matches('!') {
                "Ref" => "Ref",
                "If" => "Fn::If",
                "Not" => "Fn::Not",
                "Equals" => "Fn::Equals",
                "Condition" => "Fn::Condition",
                "GetAtt" => "Fn::GetAtt",
                "Sub" => "Fn::Sub",
                "Join" => "Fn::Join",
                "Select" => "Fn::Select",
                "Split" => "Fn::Split",
                _ => "Fn::(other)",
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then_some((k, v))
        }
        _ => None,
    }
}

fn tagged(tag: &str, value: Value) -> Value {
    Value::Tagged(Box::new(serde_yaml_ng::value::TaggedValue { tag: serde_yaml_ng::value::Tag::new(tag), value }))
}

fn ref_to(id: &str) -> Value {
    tagged("Ref", Value::String(id.into()))
}

/// The resource names a value mentions: `!Ref`, `!GetAtt`, `!Sub` names and `DependsOn`.
fn names(v: &Value, out: &mut BTreeSet<String>) {
    match intrinsic(v) {
        Some(("Ref", Value::String(s))) => {
            out.insert(s.clone());
        }
        Some(("Fn::GetAtt", Value::String(s))) => {
            out.insert(s.split('.').next().unwrap_or_default().to_string());
        }
        Some(("Fn::GetAtt", Value::Sequence(p))) => out.extend(p.first().and_then(Value::as_str).map(str::to_string)),
        Some(("Fn::Sub", arg)) => {
            let template = match arg {
                Value::Sequence(p) => p.first().and_then(Value::as_str),
                other => other.as_str(),
            };
            for part in template.unwrap_or_default().split("${").skip(1) {
                let name = part.split('}').next().unwrap_or_default();
                if !name.starts_with('!') {
                    out.insert(name.split('.').next().unwrap_or_default().to_string());
                }
            }
        }
        _ => {}
    }
    match v {
        Value::Sequence(s) => s.iter().for_each(|v| names(v, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            if k.as_str() == Some("DependsOn") {
                out.extend(seq(Some(v)).into_iter().filter_map(Value::as_str).map(str::to_string));
            }
            names(v, out)
        }),
        Value::Tagged(t) => names(&t.value, out),
        _ => {}
    }
}

/// The SQS event sources: (function id, queue logical id, the event's Properties).
fn sqs_sources(t: &Template) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (id, f) in t.functions() {
        let Some(Value::Mapping(events)) = prop(f, "Events") else { continue };
        for event in events.values().filter(|e| e.get("Type").and_then(Value::as_str) == Some("SQS")) {
            let props = event.get("Properties").expect("an SQS event has Properties");
            let mut queue = BTreeSet::new();
            names(props.get("Queue").expect("an SQS event has a Queue"), &mut queue);
            let queue = queue.into_iter().next().unwrap_or_else(|| panic!("{id}: an SQS event's Queue names no queue"));
            out.push((id.clone(), queue, props));
        }
    }
    out
}

#[test]
fn every_sqs_event_source_caps_its_concurrency_and_route_stays_low() {
    let t = Template::load();
    let sources = sqs_sources(&t);
    assert_eq!(sources.len(), 3, "validate, score and route read a queue each: {sources:?}");
    let (route, _) = t.function("route");
    let defaults = Deployed::with(&t, &[]);
    for (function, queue, props) in &sources {
        let max = props.get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency"));
        let max = number(max, &format!("{function}: ScalingConfig.MaximumConcurrency on {queue}"));
        // What the event source mapping accepts.
        assert!((2.0..=1000.0).contains(&max) && max.fract() == 0.0, "{function}: MaximumConcurrency {max}");
        // Every concurrent route invocation is another stream of SES calls.
        if *function == route {
            assert!(max <= 5.0, "{function}: MaximumConcurrency {max} would outrun SES's default sending rate");
        }
        // A reservation below the pollers' limit would throttle batches already received, and
        // each counts as a receive towards the dead-letter queue.
        let f = t.resource(function);
        if let Some(reserved) = prop(f, "ReservedConcurrentExecutions").and_then(|v| defaults.eval(v)) {
            assert!(number(Some(&reserved), function) >= max, "{function}: reserved {reserved:?} below {max}");
        }
    }
}

#[test]
fn capture_and_unsubscribe_reserve_concurrency_only_when_a_parameter_asks() {
    let t = Template::load();
    for (binary, parameter) in
        [("capture", "CaptureReservedConcurrency"), ("unsubscribe", "UnsubscribeReservedConcurrency")]
    {
        let p = t.parameter(parameter);
        assert_eq!(text(p.get("Type")), Some("Number"), "{parameter}");
        assert_eq!(p.get("Default").map(scalar).as_deref(), Some("0"), "{parameter}: not reserved by default");
        assert_eq!(number(p.get("MinValue"), parameter), 0.0, "{parameter}: MinValue");
        // Bounded: every reserved execution is taken from every other function in the account.
        let max = number(p.get("MaxValue"), parameter);
        assert!((1.0..=100.0).contains(&max), "{parameter}: MaxValue {max}");

        let (id, f) = t.function(binary);
        let reserved = prop(f, "ReservedConcurrentExecutions")
            .unwrap_or_else(|| panic!("{id}: ReservedConcurrentExecutions from {parameter}"));
        let deployed = |value: Option<&str>| {
            let given: Vec<(&str, &str)> = value.map(|v| (parameter, v)).into_iter().collect();
            Deployed::with(&t, &given).eval(reserved).map(|v| scalar(&v))
        };
        // Left out, not 0: a reservation of 0 would stop the function altogether.
        assert_eq!(deployed(None), None, "{id}: reserved by default");
        assert_eq!(deployed(Some("0")), None, "{id}: {parameter}=0 must mean not reserved");
        assert_eq!(deployed(Some("10")).as_deref(), Some("10"), "{id}: {parameter}=10");
        assert_eq!(deployed(Some("50")).as_deref(), Some("50"), "{id}: {parameter}=50");
    }
}

#[test]
fn unsubscribe_routes_have_throttles_of_their_own_at_least_captures() {
    let t = Template::load();
    let stages = t.of_type("AWS::ApiGatewayV2::Stage");
    let [(stage_id, stage)] = stages.as_slice() else { panic!("one stage: {stages:?}") };
    let settings = prop(stage, "RouteSettings").and_then(Value::as_mapping).expect("RouteSettings");
    let limits = |key: &str| {
        let s = settings.get(key).unwrap_or_else(|| panic!("{stage_id}: no RouteSettings for {key}"));
        let burst = number(s.get("ThrottlingBurstLimit"), &format!("{key}: ThrottlingBurstLimit"));
        let rate = number(s.get("ThrottlingRateLimit"), &format!("{key}: ThrottlingRateLimit"));
        assert!(burst >= 1.0 && rate > 0.0, "{key}: burst {burst}, rate {rate}");
        (burst, rate)
    };
    let capture = limits("POST /leads");
    for key in ["GET /u/{token}", "POST /u/{token}"] {
        let (burst, rate) = limits(key);
        assert!(burst >= capture.0 && rate >= capture.1, "{key} ({burst}, {rate}) below POST /leads {capture:?}");
    }

    // API Gateway refuses a stage whose settings name a route it does not have yet: each key is
    // a route of this template, and the stage waits for it.
    let routes: BTreeMap<String, String> = t
        .of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(id, r)| (text(prop(r, "RouteKey")).unwrap_or_else(|| panic!("{id}: RouteKey")).to_string(), id))
        .collect();
    let depends_on: BTreeSet<&str> = seq(stage.get("DependsOn")).into_iter().filter_map(Value::as_str).collect();
    for key in settings.keys().filter_map(Value::as_str) {
        let route =
            routes.get(key).unwrap_or_else(|| panic!("{stage_id}: RouteSettings for {key}, which no route has"));
        assert!(depends_on.contains(route.as_str()), "{stage_id} must DependsOn {route} ({key})");
    }
    // So the stage depends on the functions behind those routes; nothing may depend on the
    // stage, or a function naming the API's URL would close a circle through it.
    for (section, entries) in [("Resources", t.section("Resources")), ("Outputs", t.section("Outputs"))] {
        for (id, v) in entries {
            let mut named = BTreeSet::new();
            names(v, &mut named);
            assert!(!named.contains(stage_id), "{section}.{id:?} names {stage_id}");
        }
    }
}

#[test]
fn every_alarm_tells_the_topic_and_only_when_there_is_one() {
    let t = Template::load();
    let topic = "arn:aws:sns:us-east-1:123456789012:leadflow-alarms";
    let alarms = t.of_type("AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 8 + 1 + 3, "{} alarms", alarms.len());
    for (id, a) in alarms {
        for key in ["AlarmActions", "OKActions"] {
            let v = prop(a, key).unwrap_or_else(|| panic!("{id}: {key}"));
            let with = Deployed::with(&t, &[("AlarmTopicArn", topic)]).eval(v);
            assert_eq!(with, Some(Value::Sequence(vec![Value::String(topic.into())])), "{id}: {key} with a topic");
            assert_eq!(Deployed::with(&t, &[]).eval(v), None, "{id}: {key} without a topic");
        }
    }
}

/// Fires on one in five minutes: `Sum` of `metric` ≥ 1 (or > 0) over at most 300 s.
fn fires_on_one(id: &str, a: &Value) {
    assert_eq!(text(prop(a, "Statistic")), Some("Sum"), "{id}: Statistic");
    let window = number(prop(a, "Period"), "Period") * number(prop(a, "EvaluationPeriods"), "EvaluationPeriods");
    assert!(window <= 300.0, "{id}: {window} s");
    let threshold = number(prop(a, "Threshold"), "Threshold");
    match text(prop(a, "ComparisonOperator")) {
        Some("GreaterThanOrEqualToThreshold") => assert!(threshold <= 1.0, "{id}: Threshold {threshold}"),
        Some("GreaterThanThreshold") => assert!(threshold < 1.0, "{id}: Threshold {threshold}"),
        other => panic!("{id}: ComparisonOperator {other:?}"),
    }
    assert_eq!(text(prop(a, "TreatMissingData")), Some("notBreaching"), "{id}: no data is no error");
}

#[test]
fn failing_functions_api_5xx_and_stalled_stages_raise_alarms() {
    let t = Template::load();
    for (function, _) in t.functions() {
        let alarms = t.alarms_on("AWS/Lambda", "Errors", "FunctionName", &ref_to(&function));
        let [(id, a)] = alarms.as_slice() else { panic!("{function}: one Errors alarm, found {alarms:?}") };
        fires_on_one(id, a);
    }

    let apis = t.of_type("AWS::ApiGatewayV2::Api");
    let [(api, _)] = apis.as_slice() else { panic!("one HTTP API") };
    let alarms = t.alarms_on("AWS/ApiGateway", "5xx", "ApiId", &ref_to(api));
    let [(id, a)] = alarms.as_slice() else { panic!("{api}: one 5xx alarm, found {alarms:?}") };
    fires_on_one(id, a);

    // Late enough that a message being retried towards its DLQ does not fire it, early enough
    // that a stalled stage is noticed the same hour.
    for (function, queue, _) in sqs_sources(&t) {
        let q = t.resource(&queue);
        let retrying = number(prop(q, "VisibilityTimeout"), "VisibilityTimeout")
            * number(prop(q, "RedrivePolicy").and_then(|r| r.get("maxReceiveCount")), "maxReceiveCount");
        let name = tagged("GetAtt", Value::String(format!("{queue}.QueueName")));
        let alarms = t.alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", &name);
        let [(id, a)] = alarms.as_slice() else { panic!("{queue} ({function}): one age alarm, found {alarms:?}") };
        assert_eq!(text(prop(a, "Statistic")), Some("Maximum"), "{id}");
        assert_eq!(text(prop(a, "ComparisonOperator")), Some("GreaterThanOrEqualToThreshold"), "{id}");
        let threshold = number(prop(a, "Threshold"), "Threshold");
        assert!(threshold > retrying && threshold <= 900.0, "{id}: {threshold} s (retries take {retrying} s)");
    }
}

#[test]
fn queues_and_the_table_outlive_the_stack() {
    let t = Template::load();
    let queues = t.of_type("AWS::SQS::Queue");
    assert_eq!(queues.len(), 8, "three stages, their DLQs, the schedule's and the SES events' DLQs");
    // A dead-letter queue holds the leads that failed; a stack delete must not take them along.
    let dlqs: BTreeSet<String> = queues
        .iter()
        .filter_map(|(_, q)| prop(q, "RedrivePolicy")?.get("deadLetterTargetArn"))
        .flat_map(|arn| {
            let mut n = BTreeSet::new();
            names(arn, &mut n);
            n
        })
        .collect();
    assert_eq!(dlqs.len(), 3, "{dlqs:?}");
    let tables = t.of_type("AWS::DynamoDB::Table");
    for (id, r) in queues.iter().chain(&tables) {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(text(r.get(policy)), Some("Retain"), "{id}: {policy}");
        }
    }
}

#[test]
fn public_url_is_empty_or_an_https_origin() {
    let t = Template::load();
    let p = t.parameter("PublicUrl");
    let pattern = text(p.get("AllowedPattern")).expect("PublicUrl: AllowedPattern");
    assert!(text(p.get("ConstraintDescription")).is_some_and(|d| !d.is_empty()), "PublicUrl: ConstraintDescription");
    // CloudFormation matches the whole value (Java's String.matches); anchored, the `regex`
    // crate does the same, and the pattern uses nothing the two read differently.
    assert!(pattern.starts_with('^') && pattern.ends_with('$'), "{pattern}");
    assert!(!pattern.contains('\\'), "{pattern}: escapes and classes may differ between Java and Rust");
    let re = regex::Regex::new(pattern).expect("PublicUrl's AllowedPattern compiles");
    assert_eq!(p.get("Default").map(scalar).as_deref(), Some(""), "PublicUrl: empty by default");
    for ok in [
        "",
        "https://leads.example.com",
        "https://example.com",
        "https://leads.example.com:8443",
        "https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com",
        "https://xn--bcher-kva.example",
    ] {
        assert!(re.is_match(ok), "{ok:?} refused by {pattern}");
    }
    for bad in [
        "http://x",
        "http://leads.example.com",
        "https://x/path",
        "https://leads.example.com/",
        "https://leads.example.com/leadflow",
        "javascript:alert(1)",
        "javascript://leads.example.com",
        "https://",
        "https://leads.example.com?next=/",
        "https://leads.example.com#top",
        "https://user@leads.example.com",
        "https://leads..example.com",
        "https://-leads.example.com",
        " https://leads.example.com",
        "https://leads.example.com ",
        "https://leads.example.com\n",
        "leads.example.com",
        "HTTPS://leads.example.com",
    ] {
        assert!(!re.is_match(bad), "{bad:?} accepted by {pattern}");
    }
}

#[test]
fn functions_people_call_raise_an_alarm_when_throttled() {
    let t = Template::load();
    for binary in ["capture", "unsubscribe", "admin"] {
        let (function, _) = t.function(binary);
        let alarms = t.alarms_on("AWS/Lambda", "Throttles", "FunctionName", &ref_to(&function));
        let [(id, a)] = alarms.as_slice() else { panic!("{function}: one Throttles alarm, found {alarms:?}") };
        fires_on_one(id, a);
    }
}

#[test]
fn ses_reputation_alarms_fire_before_ses_reviews_the_account() {
    let t = Template::load();
    // SES's review thresholds (its documentation): 5 % bounces, 0.1 % complaints.
    for (metric, review) in [("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)] {
        let alarms: Vec<_> = t
            .of_type("AWS::CloudWatch::Alarm")
            .into_iter()
            .filter(|(_, a)| {
                text(prop(a, "Namespace")) == Some("AWS/SES") && text(prop(a, "MetricName")) == Some(metric)
            })
            .collect();
        let [(id, a)] = alarms.as_slice() else { panic!("one {metric} alarm, found {alarms:?}") };
        let threshold = number(prop(a, "Threshold"), "Threshold");
        assert!(threshold > 0.0 && threshold < review, "{id}: {threshold} must fire before {review}");
        assert_eq!(text(prop(a, "ComparisonOperator")), Some("GreaterThanOrEqualToThreshold"), "{id}");
        assert_eq!(text(prop(a, "TreatMissingData")), Some("notBreaching"), "{id}: no sends, no alarm");
    }
}

#[test]
fn api_access_logs_name_routes_never_paths_tokens_or_people() {
    let t = Template::load();
    let stages = t.of_type("AWS::ApiGatewayV2::Stage");
    let [(id, stage)] = stages.as_slice() else { panic!("one API stage") };
    let settings = prop(stage, "AccessLogSettings").unwrap_or_else(|| panic!("{id}: AccessLogSettings"));
    let format = text(settings.get("Format")).unwrap_or_else(|| panic!("{id}: Format"));
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(format).unwrap_or_else(|e| panic!("{id}: the format is not one JSON object: {e}"));
    let used: Vec<&str> = fields.values().filter_map(|v| v.as_str()).collect();
    for needed in ["$context.requestId", "$context.routeKey", "$context.status", "$context.integrationErrorMessage"] {
        assert!(used.contains(&needed), "{id}: the access log needs {needed}");
    }
    // The path holds unsubscribe and sales-action tokens; the others identify a person.
    for personal in
        ["$context.path", "$context.identity.sourceIp", "$context.identity.userAgent", "$context.authorizer"]
    {
        assert!(!format.contains(personal), "{id}: {personal} in the access log");
    }
    let destination = settings.get("DestinationArn").unwrap_or_else(|| panic!("{id}: DestinationArn"));
    let mut refs = BTreeSet::new();
    names(destination, &mut refs);
    let [group] = refs.iter().collect::<Vec<_>>()[..] else { panic!("{id}: one log group, found {refs:?}") };
    assert_eq!(text(t.resource(group).get("Type")), Some("AWS::Logs::LogGroup"), "{group}");
}

#[test]
fn every_log_group_expires_and_goes_with_the_stack() {
    let t = Template::load();
    let groups = t.of_type("AWS::Logs::LogGroup");
    assert_eq!(groups.len(), t.functions().len() + 1, "one per function and the API's access log");
    for (id, g) in groups {
        let days = number(prop(g, "RetentionInDays"), "RetentionInDays");
        assert!((1.0..=90.0).contains(&days), "{id}: kept {days} days");
        // Said, not defaulted: logs are not data to keep, and a kept group would block a new
        // stack of the same name.
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(text(g.get(policy)), Some("Delete"), "{id}: {policy}");
        }
    }
}
