//! The shape of `template.yaml` where cfn-lint and `sam validate` do not look: a misspelt
//! `FunctionResponseTypes` value, a `!GetAtt` attribute the resource type does not have, a
//! binary that is not built, an environment variable no function reads, a queue without a DLQ.
//! Deploying is the only other way to find these, and some (a missing partial-batch response
//! type) only show up as redelivered messages in production.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Self {
        let path = repo_root().join("template.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Template { doc: serde_yaml_ng::from_str(&text).expect("template.yaml is YAML") }
    }

    fn resources(&self) -> &Mapping {
        self.doc.get("Resources").and_then(Value::as_mapping).expect("Resources")
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources().get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    fn type_of(&self, id: &str) -> Option<&str> {
        self.resources().get(id)?.get("Type")?.as_str()
    }

    fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.resources()
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().expect("resource ids are strings").to_string(), r))
            .collect()
    }

    fn functions(&self) -> Vec<(String, &Value)> {
        self.of_type("AWS::Serverless::Function")
    }

    /// A function's setting, from the function or else from `Globals.Function`.
    fn function_setting<'a>(&'a self, function: &'a Value, key: &str) -> Option<&'a Value> {
        prop(function, key).or_else(|| self.doc.get("Globals")?.get("Function")?.get(key))
    }

    fn timeout(&self, function: &Value) -> u64 {
        // SAM's default when neither the function nor Globals says.
        self.function_setting(function, "Timeout").map(|t| int(t, "Timeout")).unwrap_or(3)
    }

    /// The function whose binary is `binary`.
    fn function(&self, binary: &str) -> (String, &Value) {
        self.functions()
            .into_iter()
            .find(|(_, f)| binary_of(f) == Some(binary))
            .unwrap_or_else(|| panic!("no function builds binary {binary}"))
    }

    /// A function's IAM statements: inline `Policies` statements, or those of its own `Role`.
    fn statements<'a>(&'a self, function: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if let Some(Value::Sequence(policies)) = prop(function, "Policies") {
            for p in policies {
                out.extend(seq(p.get("Statement")));
            }
        }
        if let Some((role, "Arn")) = prop(function, "Role").and_then(get_att)
            && let Some(Value::Sequence(policies)) = prop(self.resource(&role), "Policies")
        {
            for p in policies {
                out.extend(seq(p.get("PolicyDocument").and_then(|d| d.get("Statement"))));
            }
        }
        out
    }

    /// The resources on which a function is allowed `action`.
    fn allowed(&self, function: &Value, action: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for s in self.statements(function) {
            assert_eq!(s.get("Effect").and_then(Value::as_str), Some("Allow"), "only Allow statements are expected");
            let actions: Vec<&str> = seq(s.get("Action")).into_iter().filter_map(Value::as_str).collect();
            if actions.contains(&action) {
                out.extend(seq(s.get("Resource")).into_iter().cloned());
            }
        }
        out
    }

    /// The SQS queues consumed by functions: queue logical id → (function id, function).
    fn consumed_queues(&self) -> BTreeMap<String, (String, &Value)> {
        let mut out = BTreeMap::new();
        for (id, f) in self.functions() {
            for event in sqs_events(f) {
                let queue = prop(event, "Queue").and_then(get_att);
                let Some((queue, attr)) = queue else { panic!("{id}: an SQS event's Queue is not a !GetAtt") };
                assert_eq!(attr, "Arn", "{id}: an SQS event's Queue must be the queue's Arn");
                assert_eq!(self.type_of(&queue), Some("AWS::SQS::Queue"), "{id}: {queue} is not an SQS queue");
                assert!(out.insert(queue.clone(), (id.clone(), f)).is_none(), "{queue} has two consumers");
            }
        }
        out
    }

    /// Every dead-letter queue: redrive targets and the schedules' DLQs.
    fn dead_letter_queues(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, q) in self.of_type("AWS::SQS::Queue") {
            if let Some(target) = prop(q, "RedrivePolicy").and_then(|r| r.get("deadLetterTargetArn")) {
                out.insert(get_att(target).expect("deadLetterTargetArn is a !GetAtt").0);
            }
        }
        for (_, f) in self.functions() {
            for event in events(f, &["ScheduleV2", "Schedule", "EventBridgeRule"]) {
                if let Some(arn) = prop(event, "DeadLetterConfig").and_then(|d| d.get("Arn")) {
                    out.insert(get_att(arn).expect("an event source's DLQ Arn is a !GetAtt").0);
                }
            }
            let on_failure = prop(f, "EventInvokeConfig")
                .and_then(|c| c.get("DestinationConfig"))
                .and_then(|d| d.get("OnFailure"))
                .filter(|o| o.get("Type").and_then(Value::as_str) == Some("SQS"));
            if let Some(destination) = on_failure.and_then(|o| o.get("Destination")) {
                out.insert(get_att(destination).expect("an OnFailure destination is a !GetAtt").0);
            }
        }
        out
    }

    /// The HTTP API: the one `AWS::ApiGatewayV2::Api`.
    fn api(&self) -> (String, &Value) {
        let apis = self.of_type("AWS::ApiGatewayV2::Api");
        let [(id, api)] = apis.as_slice() else { panic!("one AWS::ApiGatewayV2::Api: {apis:?}") };
        (id.clone(), *api)
    }

    /// The function an integration invokes, by logical id.
    fn integrated_function(&self, integration: &str) -> String {
        let i = self.resource(integration);
        let uri = prop(i, "IntegrationUri").and_then(get_att);
        let Some((function, "Arn")) = uri else {
            panic!("{integration}: IntegrationUri is not a function's !GetAtt Arn")
        };
        assert_eq!(self.type_of(&function), Some("AWS::Serverless::Function"), "{integration} invokes {function}");
        function
    }

    /// Every HTTP route: (function binary, method, path, the route's AuthorizationType).
    fn routes(&self) -> Vec<(String, String, String, Option<String>)> {
        let mut out = Vec::new();
        for (id, r) in self.of_type("AWS::ApiGatewayV2::Route") {
            let key = prop(r, "RouteKey").and_then(Value::as_str).unwrap_or_else(|| panic!("{id}: RouteKey"));
            let (method, path) = key.split_once(' ').unwrap_or_else(|| panic!("{id}: RouteKey {key:?}"));
            let target = prop(r, "Target").and_then(intrinsic).and_then(|(_, v)| v.as_str().map(str::to_string));
            let integration = target
                .as_deref()
                .and_then(|t| t.strip_prefix("integrations/${"))
                .and_then(|t| t.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{id}: Target is not !Sub \"integrations/${{Integration}}\""))
                .to_string();
            let function = self.integrated_function(&integration);
            let binary = binary_of(self.resource(&function)).unwrap_or_else(|| panic!("{function} has no binary"));
            let auth = prop(r, "AuthorizationType").and_then(Value::as_str).map(str::to_string);
            out.push((binary.to_string(), method.to_string(), path.to_string(), auth));
        }
        out.sort();
        out
    }
}

fn prop<'a>(resource: &'a Value, key: &str) -> Option<&'a Value> {
    resource.get("Properties")?.get(key)
}

fn binary_of(function: &Value) -> Option<&str> {
    function.get("Metadata")?.get("BuildProperties")?.get("Binary")?.as_str()
}

fn events<'a>(function: &'a Value, types: &[&str]) -> Vec<&'a Value> {
    let Some(Value::Mapping(events)) = prop(function, "Events") else { return Vec::new() };
    events.values().filter(|e| types.contains(&e.get("Type").and_then(Value::as_str).unwrap_or_default())).collect()
}

fn sqs_events(function: &Value) -> Vec<&Value> {
    events(function, &["SQS"])
}

fn schedule_events(function: &Value) -> Vec<&Value> {
    events(function, &["ScheduleV2", "Schedule"])
}

/// A value that may be one item or a list of them.
fn seq(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Sequence(s)) => s.iter().collect(),
        Some(v) => vec![v],
    }
}

/// The strings in a value that may be one string or a list of them.
fn strings(v: Option<&Value>) -> BTreeSet<&str> {
    seq(v).into_iter().filter_map(Value::as_str).collect()
}

fn int(v: &Value, what: &str) -> u64 {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or_else(|| panic!("{what} is not a whole number: {v:?}"))
}

/// An intrinsic function in its short (`!GetAtt`) or long (`Fn::GetAtt:`) form: its long name
/// and argument.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            Some((if name == "Ref" { name.to_string() } else { format!("Fn::{name}") }, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.to_string(), v))
        }
        _ => None,
    }
}

fn get_att(v: &Value) -> Option<(String, &str)> {
    let (name, arg) = intrinsic(v)?;
    if name != "Fn::GetAtt" {
        return None;
    }
    match arg {
        Value::String(s) => s.split_once('.').map(|(r, a)| (r.to_string(), a)),
        Value::Sequence(p) if p.len() == 2 => Some((p[0].as_str()?.to_string(), p[1].as_str()?)),
        _ => None,
    }
}

fn ref_of(v: &Value) -> Option<&str> {
    match intrinsic(v)? {
        (name, arg) if name == "Ref" => arg.as_str(),
        _ => None,
    }
}

/// Every intrinsic in the template, with the path to it.
fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    if intrinsic(v).is_some() {
        out.push((path.to_string(), v));
    }
    match v {
        Value::Sequence(s) => s.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), out)),
        Value::Mapping(m) => {
            for (k, v) in m {
                walk(v, &format!("{path}.{}", k.as_str().unwrap_or("?")), out);
            }
        }
        Value::Tagged(t) => walk(&t.value, path, out),
        _ => {}
    }
}

/// The `${…}` names in a `!Sub` string (`${!Literal}` is an escape, not a name).
fn sub_names(s: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        if !after.starts_with('!') {
            names.push(&after[..end]);
        }
        rest = &after[end + 1..];
    }
    names
}

/// `!GetAtt` attributes of the resource types the template uses. A type missing here fails the
/// test: add it with the attributes CloudFormation documents for it.
fn valid_attributes(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "AWS::SQS::Queue" => &["Arn", "QueueName", "QueueUrl"],
        "AWS::DynamoDB::Table" => &["Arn", "StreamArn"],
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => &["Arn"],
        "AWS::IAM::Role" => &["Arn", "RoleId"],
        "AWS::ApiGatewayV2::Api" => &["ApiEndpoint", "ApiId"],
        "AWS::ApiGatewayV2::Stage" => &[],
        "AWS::ApiGatewayV2::Integration" => &["IntegrationId"],
        "AWS::ApiGatewayV2::Route" => &["RouteId"],
        "AWS::Lambda::Permission" => &[],
        "AWS::Logs::LogGroup" => &["Arn"],
        "AWS::CloudWatch::Alarm" => &["Arn"],
        "AWS::SES::ConfigurationSet" => &[],
        "AWS::SES::ConfigurationSetEventDestination" => &["Id"],
        "AWS::SQS::QueuePolicy" => &["Id"],
        "AWS::Cognito::UserPool" => &["Arn", "ProviderName", "ProviderURL", "UserPoolId"],
        "AWS::Cognito::UserPoolGroup" => &[],
        "AWS::Cognito::UserPoolDomain" => &["CloudFrontDistribution"],
        "AWS::Cognito::UserPoolClient" => &["ClientId", "ClientSecret", "Name"],
        "AWS::Cognito::ManagedLoginBranding" => &["ManagedLoginBrandingId"],
        _ => return None,
    })
}

const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
];

/// The variable names `shared/aws/src/env.rs` defines: the functions read nothing else.
fn env_contract() -> BTreeSet<String> {
    let path = repo_root().join("shared/aws/src/env.rs");
    let text = std::fs::read_to_string(&path).expect("env.rs");
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains(": &str ="))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(names.contains("LEADFLOW_TABLE"), "env.rs parsed to {names:?}");
    names
}

/// `[[bin]]` names of the function crates.
fn function_binaries() -> BTreeSet<String> {
    let mut bins = BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("functions")).expect("functions/") {
        let manifest = entry.expect("dir entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else { continue };
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        if let Some(toml::Value::Array(list)) = doc.get("bin") {
            bins.extend(list.iter().filter_map(|b| b.get("name")?.as_str().map(str::to_string)));
        }
    }
    bins
}

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
fn functions_are_workspace_binaries_built_by_cargo_lambda() {
    let t = Template::load();
    let bins = function_binaries();
    assert!(!bins.is_empty(), "no [[bin]] in functions/*/Cargo.toml");
    let mut built = Vec::new();
    for (id, f) in t.functions() {
        let metadata = f.get("Metadata").unwrap_or_else(|| panic!("{id} has no Metadata"));
        assert_eq!(metadata.get("BuildMethod").and_then(Value::as_str), Some("rust-cargolambda"), "{id}");
        let binary = binary_of(f).unwrap_or_else(|| panic!("{id} has no BuildProperties.Binary"));
        assert!(bins.contains(binary), "{id} builds {binary}, which is not a [[bin]] of functions/*: {bins:?}");
        // cargo-lambda builds from the workspace root, where Cargo.lock and the profile are.
        assert_eq!(prop(f, "CodeUri").and_then(Value::as_str), Some("."), "{id}: CodeUri");
        let setting = |key| t.function_setting(f, key).and_then(Value::as_str).map(str::to_string);
        assert_eq!(setting("Runtime").as_deref(), Some("provided.al2023"), "{id}");
        assert_eq!(setting("Handler").as_deref(), Some("bootstrap"), "{id}");
        let arch: Vec<&str> =
            seq(t.function_setting(f, "Architectures")).into_iter().filter_map(Value::as_str).collect();
        assert_eq!(arch, ["arm64"], "{id}: cargo lambda build --arm64");
        built.push(binary.to_string());
    }
    built.sort();
    assert_eq!(built, ["admin", "capture", "nurture", "route", "score", "ses-events", "unsubscribe", "validate"]);
}

#[test]
fn every_reference_names_a_resource_and_an_attribute_its_type_has() {
    let t = Template::load();
    let params: BTreeSet<&str> = t
        .doc
        .get("Parameters")
        .and_then(Value::as_mapping)
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let check_get_att = |path: &str, resource: &str, attr: &str| {
        let ty = t.type_of(resource).unwrap_or_else(|| panic!("{path}: !GetAtt {resource}.{attr}: no such resource"));
        let valid = valid_attributes(ty)
            .unwrap_or_else(|| panic!("{path}: add {ty}'s attributes to valid_attributes() in this test"));
        assert!(valid.contains(&attr), "{path}: {ty} {resource} has no attribute {attr} (has {valid:?})");
    };
    let check_ref = |path: &str, name: &str, locals: &BTreeSet<&str>| {
        assert!(
            params.contains(name)
                || PSEUDO_PARAMETERS.contains(&name)
                || t.type_of(name).is_some()
                || locals.contains(name),
            "{path}: {name} is neither a parameter nor a resource"
        );
    };

    let mut found = Vec::new();
    walk(&t.doc, "", &mut found);
    let mut get_atts = 0;
    for (path, v) in found {
        let (name, arg) = intrinsic(v).expect("walk keeps intrinsics");
        match name.as_str() {
            "Fn::GetAtt" => {
                let (resource, attr) = get_att(v).unwrap_or_else(|| panic!("{path}: malformed !GetAtt {arg:?}"));
                check_get_att(&path, &resource, attr);
                get_atts += 1;
            }
            "Ref" => check_ref(&path, arg.as_str().unwrap_or_else(|| panic!("{path}: !Ref {arg:?}")), &BTreeSet::new()),
            "Fn::Sub" => {
                let (text, locals) = match arg {
                    Value::String(s) => (s.as_str(), BTreeSet::new()),
                    Value::Sequence(p) if p.len() == 2 => (
                        p[0].as_str().unwrap_or_else(|| panic!("{path}: !Sub's string")),
                        p[1].as_mapping().map(|m| m.keys().filter_map(Value::as_str).collect()).unwrap_or_default(),
                    ),
                    _ => panic!("{path}: malformed !Sub {arg:?}"),
                };
                for name in sub_names(text) {
                    match name.split_once('.') {
                        Some((resource, attr)) if !name.starts_with("AWS::") => check_get_att(&path, resource, attr),
                        _ => check_ref(&path, name, &locals),
                    }
                }
            }
            _ => {}
        }
    }
    assert!(get_atts > 10, "the walk found only {get_atts} !GetAtt: is it looking at the template?");
}

#[test]
fn environment_is_the_contract_in_env_rs_and_matches_each_functions_permissions() {
    let t = Template::load();
    let contract = env_contract();
    let table = {
        let tables = t.of_type("AWS::DynamoDB::Table");
        assert_eq!(tables.len(), 1, "one table");
        tables[0].0.clone()
    };
    let consumed = t.consumed_queues();
    let stage_queue = |stage: &str| {
        consumed
            .iter()
            .find(|(_, (_, f))| binary_of(f) == Some(stage))
            .map(|(q, _)| q.clone())
            .unwrap_or_else(|| panic!("no queue consumed by {stage}"))
    };
    let arn_of = |v: &Value| get_att(v).filter(|(_, a)| *a == "Arn").map(|(r, _)| r);

    for (id, f) in t.functions() {
        let vars: Mapping = t
            .function_setting(f, "Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let names: BTreeSet<&str> = vars.keys().filter_map(Value::as_str).collect();
        for name in &names {
            assert!(contract.contains(*name), "{id} sets {name}, which shared/aws/src/env.rs does not define");
        }

        let dynamodb = t.allowed(f, "dynamodb:GetItem");
        if dynamodb.iter().any(|r| arn_of(r).as_deref() == Some(table.as_str())) {
            assert_eq!(vars.get("LEADFLOW_TABLE").and_then(ref_of), Some(table.as_str()), "{id}: LEADFLOW_TABLE");
        }
        if names.contains("LEADFLOW_TABLE") {
            assert!(!dynamodb.is_empty(), "{id} is given the table but may not read it");
        }

        // A queue URL variable is the queue its stage's function consumes, and the function may
        // send to it and to no other queue.
        let sends: BTreeSet<String> = t.allowed(f, "sqs:SendMessage").iter().filter_map(arn_of).collect();
        let mut url_vars = BTreeSet::new();
        for stage in ["validate", "score", "route"] {
            let var = format!("LEADFLOW_{}_QUEUE_URL", stage.to_uppercase());
            if let Some(value) = vars.get(var.as_str()) {
                let queue = stage_queue(stage);
                assert_eq!(get_att(value), Some((queue.clone(), "QueueUrl")), "{id}: {var}");
                url_vars.insert(queue);
            }
            // A DLQ's URL (admin: dead letters) is that stage queue's DLQ; its redrive, an SQS
            // move task, sends each message back to the stage queue.
            let dlq_var = format!("LEADFLOW_{}_DLQ_URL", stage.to_uppercase());
            if let Some(value) = vars.get(dlq_var.as_str()) {
                let queue = stage_queue(stage);
                assert_eq!(get_att(value), Some((queue.replace("Queue", "DLQ"), "QueueUrl")), "{id}: {dlq_var}");
                url_vars.insert(queue);
            }
        }
        assert_eq!(sends, url_vars, "{id}: sqs:SendMessage exactly on the queues whose URLs it is given");

        let mails = !t.allowed(f, "ses:SendEmail").is_empty();
        for var in ["LEADFLOW_SES_CONFIGURATION_SET", "LEADFLOW_SENDER"] {
            assert_eq!(names.contains(var), mails, "{id}: {var} goes with ses:SendEmail");
        }
        let publishes = !t.allowed(f, "events:PutEvents").is_empty();
        assert_eq!(
            names.contains("LEADFLOW_EVENT_BUS"),
            publishes,
            "{id}: LEADFLOW_EVENT_BUS goes with events:PutEvents"
        );

        // The signing keys go to the functions that sign or verify unsubscribe links, the
        // assignment email's one-click actions or console sessions, and only there: the name of
        // the secret in the environment, the keys themselves read with its one permission.
        let signs = matches!(binary_of(f), Some("route" | "nurture" | "unsubscribe" | "admin"));
        assert!(!names.contains("LEADFLOW_UNSUBSCRIBE_SECRET"), "{id}: no secret in the environment");
        assert_eq!(names.contains("LEADFLOW_SIGNING_KEYS_SECRET"), signs, "{id}: LEADFLOW_SIGNING_KEYS_SECRET");
        let reads = t.allowed(f, "secretsmanager:GetSecretValue");
        if let Some(secret) = vars.get("LEADFLOW_SIGNING_KEYS_SECRET") {
            assert_eq!(ref_of(secret), Some("SigningKeys"), "{id}: the secret is the stack's own");
            let refs: Vec<Option<&str>> = reads.iter().map(ref_of).collect();
            assert_eq!(refs, [Some("SigningKeys")], "{id}: reads only that secret");
        } else {
            assert!(reads.is_empty(), "{id}: reads no secret: {reads:?}");
        }
    }
}

#[test]
fn the_functions_send_to_the_queues_their_work_needs() {
    let t = Template::load();
    let sends = |binary: &str| -> BTreeSet<String> {
        let (_, f) = t.function(binary);
        t.allowed(f, "sqs:SendMessage").iter().filter_map(|r| get_att(r).map(|(q, _)| q)).collect()
    };
    let queues = |ids: &[&str]| ids.iter().map(|q| q.to_string()).collect::<BTreeSet<_>>();
    // Nurture re-routes leads whose SLA expired; nothing it does changes a score.
    assert_eq!(sends("nurture"), queues(&["RouteQueue"]));
    // Opens and clicks are behaviour: ses-events has the lead rescored.
    assert_eq!(sends("ses-events"), queues(&["ScoreQueue"]));
    // A confirmed subscription (double opt-in) is rescored, which enrolls the lead.
    assert_eq!(sends("unsubscribe"), queues(&["ScoreQueue"]));
    // Lead search and export page through the table; no other function scans it.
    for (id, f) in t.functions() {
        let scans = !t.allowed(f, "dynamodb:Scan").is_empty();
        assert_eq!(scans, binary_of(f) == Some("admin"), "{id}: dynamodb:Scan");
    }
}

/// The indexes a function may Query: the `<index>` of every `${Table.Arn}/index/<index>`.
fn queried_indexes(t: &Template, function: &Value) -> BTreeSet<String> {
    t.allowed(function, "dynamodb:Query")
        .iter()
        .filter_map(|r| {
            let (name, arg) = intrinsic(r)?;
            let text = (name == "Fn::Sub").then(|| arg.as_str())??;
            text.strip_prefix("${Table.Arn}/index/").map(str::to_string)
        })
        .collect()
}

#[test]
fn each_function_queries_the_indexes_its_reads_need_and_only_existing_ones() {
    let t = Template::load();
    let tables = t.of_type("AWS::DynamoDB::Table");
    let [(_, table)] = tables.as_slice() else { panic!("one table") };
    let declared: BTreeSet<String> = seq(prop(table, "GlobalSecondaryIndexes"))
        .iter()
        .filter_map(|g| g.get("IndexName").and_then(Value::as_str).map(str::to_string))
        .collect();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for (id, f) in t.functions() {
        let queried = queried_indexes(&t, f);
        assert!(queried.is_subset(&declared), "{id} may query {queried:?}; the table has {declared:?}");
        let expected = match binary_of(f) {
            // The due scans (SLA, enrollments), a rep's open leads, the newest leads and the
            // suppression list (the console's pages).
            Some("admin") => names(&["due", "listing", "owner"]),
            Some("route" | "nurture") => names(&["due"]),
            _ => BTreeSet::new(),
        };
        assert_eq!(queried, expected, "{id}: dynamodb:Query on indexes");
    }
}

#[test]
fn permissions_name_their_actions_and_resources() {
    let t = Template::load();
    for (id, f) in t.functions() {
        for statement in t.statements(f) {
            for action in seq(statement.get("Action")) {
                let action = action.as_str().unwrap_or_else(|| panic!("{id}: an action is not a string"));
                assert!(!action.contains('*'), "{id}: wildcard action {action}");
            }
            // SES's GetAccount (nurture paces its drips to the account's send rate) has no
            // resource type: IAM accepts only "*" for it, and it reads no lead's data.
            let account_only = seq(statement.get("Action")).iter().all(|a| a.as_str() == Some("ses:GetAccount"));
            for resource in seq(statement.get("Resource")) {
                if account_only {
                    continue;
                }
                assert_ne!(resource.as_str(), Some("*"), "{id}: a statement on every resource");
            }
        }
    }
}

#[test]
fn every_function_logs_to_a_group_with_retention() {
    let t = Template::load();
    let groups: BTreeSet<String> = t
        .of_type("AWS::Logs::LogGroup")
        .into_iter()
        .filter(|(_, g)| prop(g, "RetentionInDays").is_some())
        .filter_map(|(_, g)| {
            let (name, arg) = intrinsic(prop(g, "LogGroupName")?)?;
            (name == "Fn::Sub").then(|| arg.as_str().map(str::to_string)).flatten()
        })
        .collect();
    for (id, _) in t.functions() {
        assert!(groups.contains(&format!("/aws/lambda/${{{id}}}")), "{id} has no log group with a retention");
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

#[test]
fn table_has_the_key_design_the_store_is_written_against() {
    let t = Template::load();
    let tables = t.of_type("AWS::DynamoDB::Table");
    let [(_, table)] = tables.as_slice() else { panic!("one table") };
    let pairs = |v: Option<&Value>, a: &str, b: &str| -> Vec<(String, String)> {
        seq(v)
            .into_iter()
            .map(|e| {
                let s = |k| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                (s(a), s(b))
            })
            .collect()
    };
    let owned = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(
        pairs(prop(table, "AttributeDefinitions"), "AttributeName", "AttributeType"),
        owned(&[
            ("PK", "S"),
            ("SK", "S"),
            ("GSI1PK", "S"),
            ("GSI1SK", "S"),
            ("owner_open", "S"),
            ("GSI2PK", "S"),
            ("GSI2SK", "S")
        ])
    );
    assert_eq!(pairs(prop(table, "KeySchema"), "AttributeName", "KeyType"), owned(&[("PK", "HASH"), ("SK", "RANGE")]));
    let gsis = seq(prop(table, "GlobalSecondaryIndexes"));
    let indexes: Vec<_> = gsis
        .iter()
        .map(|g| {
            let name = g.get("IndexName").and_then(Value::as_str).unwrap_or_default();
            let projection = g.get("Projection").and_then(|p| p.get("ProjectionType")).and_then(Value::as_str);
            (name, pairs(g.get("KeySchema"), "AttributeName", "KeyType"), projection)
        })
        .collect();
    assert_eq!(
        indexes,
        [
            ("due", owned(&[("GSI1PK", "HASH"), ("GSI1SK", "RANGE")]), Some("ALL")),
            // `open_leads_of`: a rep's open leads by lead key, read backwards for newest first.
            ("owner", owned(&[("owner_open", "HASH"), ("PK", "RANGE")]), Some("ALL")),
            // `leads_before` and `suppressions`: keys only, so that lead updates are not copied
            // into it; a page reads its items with BatchGetItem.
            ("listing", owned(&[("GSI2PK", "HASH"), ("GSI2SK", "RANGE")]), Some("KEYS_ONLY")),
        ]
    );
    assert_eq!(prop(table, "BillingMode").and_then(Value::as_str), Some("PAY_PER_REQUEST"));
    let ttl = prop(table, "TimeToLiveSpecification").expect("TTL");
    assert_eq!(ttl.get("AttributeName").and_then(Value::as_str), Some("expires_at"));
    assert_eq!(ttl.get("Enabled").and_then(Value::as_bool), Some(true));
    let pitr = prop(table, "PointInTimeRecoverySpecification").and_then(|p| p.get("PointInTimeRecoveryEnabled"));
    assert_eq!(pitr.and_then(Value::as_bool), Some(true));
}

#[test]
fn http_api_routes_are_iam_authorized_except_capture_unsubscribe_and_the_console() {
    let t = Template::load();
    let (api_id, api) = t.api();
    assert_eq!(prop(api, "ProtocolType").and_then(Value::as_str), Some("HTTP"), "{api_id}");
    assert_eq!(
        prop(api, "CorsConfiguration").and_then(|c| c.get("AllowOrigins")).and_then(ref_of),
        Some("AllowedOrigins")
    );
    let stages = t.of_type("AWS::ApiGatewayV2::Stage");
    let [(stage_id, stage)] = stages.as_slice() else { panic!("one stage") };
    assert_eq!(prop(stage, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{stage_id}");
    assert_eq!(prop(stage, "StageName").and_then(Value::as_str), Some("$default"), "{stage_id}");
    assert_eq!(prop(stage, "AutoDeploy").and_then(Value::as_bool), Some(true), "{stage_id}: AutoDeploy");
    let throttling = prop(stage, "DefaultRouteSettings").expect("DefaultRouteSettings");
    assert!(throttling.get("ThrottlingBurstLimit").is_some() && throttling.get("ThrottlingRateLimit").is_some());

    // No function routes through SAM's HttpApi events, which would make an API of their own
    // depend on the functions.
    for (id, f) in t.functions() {
        assert!(events(f, &["HttpApi", "Api"]).is_empty(), "{id}: routes are AWS::ApiGatewayV2::Route resources");
    }
    // Lambda proxy integrations on this API, each function invocable by this API only.
    let mut integrated = BTreeSet::new();
    for (id, i) in t.of_type("AWS::ApiGatewayV2::Integration") {
        assert_eq!(prop(i, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{id}: on {api_id}");
        assert_eq!(prop(i, "IntegrationType").and_then(Value::as_str), Some("AWS_PROXY"), "{id}");
        assert_eq!(prop(i, "PayloadFormatVersion").and_then(Value::as_str), Some("2.0"), "{id}");
        integrated.insert(t.integrated_function(&id));
    }
    let source_arn =
        format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api_id}}}/*");
    let permitted: BTreeSet<String> = t
        .of_type("AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, p)| {
            let s = |k| prop(p, k).and_then(Value::as_str);
            s("Principal") == Some("apigateway.amazonaws.com")
                && s("Action") == Some("lambda:InvokeFunction")
                && prop(p, "SourceArn").map(render) == Some(vec![source_arn.clone()])
        })
        .filter_map(|(_, p)| prop(p, "FunctionName").and_then(ref_of).map(str::to_string))
        .collect();
    assert_eq!(permitted, integrated, "API Gateway may invoke exactly the integrated functions, from {api_id} only");
    for (id, r) in t.of_type("AWS::ApiGatewayV2::Route") {
        assert_eq!(prop(r, "ApiId").and_then(ref_of), Some(api_id.as_str()), "{id}: on {api_id}");
        // A route without AuthorizationType is open: each one says which it is.
        assert!(prop(r, "AuthorizationType").is_some(), "{id}: AuthorizationType");
    }
    let route = |binary: &str, method: &str, path: &str, auth: &str| {
        (binary.to_string(), method.to_string(), path.to_string(), Some(auth.to_string()))
    };
    assert_eq!(
        t.routes(),
        [
            route("admin", "ANY", "/admin/{proxy+}", "AWS_IAM"),
            // Browsers cannot sign requests: the console's pages check their session cookie,
            // the assignment email's one-click actions (/console/act/…) their signature.
            route("admin", "ANY", "/console/{proxy+}", "NONE"),
            route("admin", "GET", "/console", "NONE"),
            route("capture", "GET", "/forms/leadflow.js", "NONE"),
            // The API's own description, public as the API it describes.
            route("capture", "GET", "/openapi.json", "NONE"),
            route("capture", "GET", "/thanks", "NONE"),
            route("capture", "POST", "/leads", "NONE"),
            // Double opt-in's link: a page, and its button.
            route("unsubscribe", "GET", "/confirm/{token}", "NONE"),
            route("unsubscribe", "GET", "/u/{token}", "NONE"),
            route("unsubscribe", "POST", "/confirm/{token}", "NONE"),
            route("unsubscribe", "POST", "/u/{token}", "NONE"),
        ]
    );
    // Whatever routes come: everything under /admin is IAM-authorized; only the landing pages'
    // endpoint (with their script, thank-you page and the API's description), the signed
    // unsubscribe and confirmation links and the console are open, and the console is the admin
    // function's, which checks the session.
    for (binary, method, path, auth) in t.routes() {
        if path == "/admin" || path.starts_with("/admin/") {
            assert_eq!(auth.as_deref(), Some("AWS_IAM"), "{method} {path}");
        }
        let console = path == "/console" || path.starts_with("/console/");
        if console {
            assert_eq!(binary, "admin", "{method} {path}: only the admin function checks console sessions");
        }
        if auth.as_deref() == Some("NONE") {
            // The landing pages' script, thank-you page and the API's description are static:
            // GET only, from capture.
            let landing = binary == "capture"
                && method == "GET"
                && ["/forms/leadflow.js", "/thanks", "/openapi.json"].contains(&path.as_str());
            let signed = binary == "unsubscribe" && (path.starts_with("/u/") || path.starts_with("/confirm/"));
            assert!(path == "/leads" || landing || signed || console, "{binary}: {method} {path} is open");
        }
    }
}

/// The resources a resource names: `!Ref`, `!GetAtt`, `!Sub` names (both branches of every
/// `!If` count, as they do for CloudFormation) and `DependsOn`.
fn references(t: &Template, resource: &Value) -> BTreeSet<String> {
    let mut found = Vec::new();
    walk(resource, "", &mut found);
    let mut out = BTreeSet::new();
    for (_, v) in found {
        match intrinsic(v) {
            Some((name, Value::String(s))) if name == "Ref" => {
                out.insert(s.clone());
            }
            Some((name, _)) if name == "Fn::GetAtt" => out.extend(get_att(v).map(|(r, _)| r)),
            Some((name, arg)) if name == "Fn::Sub" => {
                let text = match arg {
                    Value::Sequence(p) => p.first().and_then(Value::as_str),
                    _ => arg.as_str(),
                };
                for n in sub_names(text.unwrap_or_default()) {
                    out.insert(n.split_once('.').map_or(n, |(r, _)| r).to_string());
                }
            }
            _ => {}
        }
    }
    out.extend(seq(resource.get("DependsOn")).into_iter().filter_map(Value::as_str).map(str::to_string));
    out.retain(|r| t.type_of(r).is_some());
    out
}

#[test]
fn the_http_api_depends_on_no_function_so_functions_may_name_its_url() {
    let t = Template::load();
    let (api_id, _) = t.api();
    // Everything the API depends on, however indirectly. Not its stage: route settings name
    // routes, so the stage waits for them and their functions, and nothing names the stage
    // (template_limits.rs); the cycle check below covers it.
    let mut stages: Vec<String> = vec![api_id.clone()];
    let mut needed = BTreeSet::new();
    while let Some(id) = stages.pop() {
        for r in references(&t, t.resource(&id)) {
            if needed.insert(r.clone()) {
                stages.push(r);
            }
        }
    }
    for (id, _) in t.functions() {
        assert!(!needed.contains(&id), "{api_id} depends on {id}, whose URL variables depend on {api_id}");
    }
    // And the functions and the console's client do name it, which is why it must not name them.
    let (admin, admin_f) = t.function("admin");
    assert!(references(&t, admin_f).contains(&api_id), "{admin}: LEADFLOW_PUBLIC_URL is the API's URL by default");
    let (client, client_r) = only(&t, "AWS::Cognito::UserPoolClient");
    assert!(references(&t, client_r).contains(&api_id), "{client}: the callback is on the API's URL by default");

    // No resource depends on itself through others, as far as the template itself says.
    let graph: BTreeMap<String, BTreeSet<String>> =
        t.resources().iter().map(|(id, r)| (id.as_str().unwrap_or_default().to_string(), references(&t, r))).collect();
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(n) {
            return;
        }
        assert!(!path.iter().any(|p| p == n), "circular dependency: {} -> {n}", path.join(" -> "));
        path.push(n.to_string());
        for m in &g[n] {
            visit(m, g, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for id in graph.keys() {
        visit(id, &graph, &mut Vec::new(), &mut done);
    }
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

#[test]
fn parameters_are_the_documented_ones() {
    let t = Template::load();
    let params = t.doc.get("Parameters").and_then(Value::as_mapping).expect("Parameters");
    let ty = |p: &str| params.get(p).and_then(|v| v.get("Type")).and_then(Value::as_str);
    assert_eq!(ty("SenderAddress"), Some("String"));
    assert_eq!(ty("AllowedOrigins"), Some("CommaDelimitedList"));
    for optional in ["PublicUrl", "AlarmTopicArn", "ConsoleDomainPrefix", "ConsoleIdentityProvider"] {
        assert_eq!(params.get(optional).and_then(|v| v.get("Default")).and_then(Value::as_str), Some(""), "{optional}");
    }
    // The earlier deployments' secret, carried into the signing keys: never shown by
    // CloudFormation, empty on a new deployment, else as long as the keys must be.
    let secret = params.get("UnsubscribeSecret").expect("UnsubscribeSecret");
    assert_eq!(ty("UnsubscribeSecret"), Some("String"));
    assert_eq!(secret.get("NoEcho").and_then(Value::as_bool), Some(true), "UnsubscribeSecret: NoEcho");
    assert_eq!(secret.get("Default").and_then(Value::as_str), Some(""), "UnsubscribeSecret: optional");
    let pattern = secret.get("AllowedPattern").and_then(Value::as_str).expect("UnsubscribeSecret: AllowedPattern");
    assert_eq!(pattern, format!("^(.{{{},}})?$", leadflow_aws::env::MIN_SECRET_LEN), "UnsubscribeSecret: pattern");
}

/// The strings a value can become once deployed, with references left as `${Name}` and
/// `${Resource.Attribute}`: both branches of every `!If`, `!Sub` with its variables filled in,
/// `!Join`. Two spellings of the same URL render alike, so tests compare what the URL will be.
fn render(v: &Value) -> Vec<String> {
    let mut out = match intrinsic(v) {
        Some((name, arg)) => match (name.as_str(), arg) {
            ("Ref", Value::String(name)) => vec![format!("${{{name}}}")],
            ("Fn::GetAtt", _) => {
                let (resource, attr) = get_att(v).unwrap_or_else(|| panic!("malformed !GetAtt {arg:?}"));
                vec![format!("${{{resource}.{attr}}}")]
            }
            ("Fn::If", Value::Sequence(p)) if p.len() == 3 => [render(&p[1]), render(&p[2])].concat(),
            ("Fn::Sub", Value::String(s)) => vec![s.clone()],
            ("Fn::Sub", Value::Sequence(p)) if p.len() == 2 => {
                let mut texts = vec![p[0].as_str().expect("!Sub's string").to_string()];
                for (name, value) in p[1].as_mapping().expect("!Sub's variables") {
                    let placeholder = format!("${{{}}}", name.as_str().expect("a !Sub variable's name"));
                    let mut filled = Vec::new();
                    for text in &texts {
                        for r in render(value) {
                            filled.push(text.replace(&placeholder, &r));
                        }
                    }
                    texts = filled;
                }
                texts
            }
            ("Fn::Join", Value::Sequence(p)) if p.len() == 2 => {
                let sep = p[0].as_str().expect("!Join's separator");
                let mut texts = vec![String::new()];
                for (i, part) in seq(Some(&p[1])).into_iter().enumerate() {
                    let mut joined = Vec::new();
                    for text in &texts {
                        for r in render(part) {
                            joined.push(if i == 0 { r } else { format!("{text}{sep}{r}") });
                        }
                    }
                    texts = joined;
                }
                texts
            }
            _ => panic!("render: {name} {arg:?} is not supported here"),
        },
        None => match v {
            Value::String(s) => vec![s.clone()],
            Value::Number(n) => vec![n.to_string()],
            Value::Bool(b) => vec![b.to_string()],
            _ => panic!("render: {v:?} is not a scalar"),
        },
    };
    out.dedup();
    out
}

/// The lists a list-valued property can become: both branches of an `!If` around it, each item
/// rendered.
fn render_list(v: &Value) -> Vec<Vec<String>> {
    match intrinsic(v) {
        Some((name, Value::Sequence(p))) if name == "Fn::If" && p.len() == 3 => {
            [render_list(&p[1]), render_list(&p[2])].concat()
        }
        _ => {
            let mut lists: Vec<Vec<String>> = vec![Vec::new()];
            for item in seq(Some(v)) {
                let mut longer = Vec::new();
                for list in &lists {
                    for r in render(item) {
                        longer.push([list.clone(), vec![r]].concat());
                    }
                }
                lists = longer;
            }
            lists
        }
    }
}

/// The one resource of a type, by logical id.
fn only<'a>(t: &'a Template, ty: &str) -> (String, &'a Value) {
    let mut found = t.of_type(ty);
    assert_eq!(found.len(), 1, "one {ty}: {:?}", found.iter().map(|(id, _)| id).collect::<Vec<_>>());
    found.remove(0)
}

/// The admin function's environment variable, rendered.
fn admin_var(t: &Template, name: &str) -> Vec<String> {
    let (id, admin) = t.function("admin");
    let vars = prop(admin, "Environment").and_then(|e| e.get("Variables")).expect("admin's Environment.Variables");
    render(vars.get(name).unwrap_or_else(|| panic!("{id} has no {name}")))
}

/// Where people reach the deployment, as the functions are told: each possible base URL.
fn console_bases(t: &Template) -> Vec<String> {
    let bases = admin_var(t, "LEADFLOW_PUBLIC_URL");
    assert!(bases.contains(&"${PublicUrl}".to_string()), "the PublicUrl parameter is one of {bases:?}");
    bases
}

fn under_bases(bases: &[String], path: &str) -> BTreeSet<String> {
    bases.iter().map(|b| format!("{b}{path}")).collect()
}

#[test]
fn console_users_sign_in_by_email_and_only_admins_create_accounts() {
    let t = Template::load();
    let (id, pool) = only(&t, "AWS::Cognito::UserPool");
    assert_eq!(strings(prop(pool, "UsernameAttributes")), BTreeSet::from(["email"]), "{id}: sign-in by email");
    let case_sensitive = prop(pool, "UsernameConfiguration").and_then(|c| c.get("CaseSensitive"));
    assert_eq!(case_sensitive.and_then(Value::as_bool), Some(false), "{id}: Ana@Acme.io is ana@acme.io");
    assert!(strings(prop(pool, "AutoVerifiedAttributes")).contains("email"), "{id}: emails are verified");
    let admin_only = prop(pool, "AdminCreateUserConfig").and_then(|c| c.get("AllowAdminCreateUserOnly"));
    assert_eq!(admin_only.and_then(Value::as_bool), Some(true), "{id}: no self sign-up");
    let recovery: Vec<&str> = seq(prop(pool, "AccountRecoverySetting").and_then(|a| a.get("RecoveryMechanisms")))
        .into_iter()
        .filter_map(|m| m.get("Name")?.as_str())
        .collect();
    assert_eq!(recovery, ["verified_email"], "{id}: a forgotten password is reset through the verified email");
    let min_length = prop(pool, "Policies").and_then(|p| p.get("PasswordPolicy")).and_then(|p| p.get("MinimumLength"));
    assert!(min_length.is_some_and(|l| int(l, "MinimumLength") >= 12), "{id}: passwords of 12 characters or more");
    // People's accounts outlive the stack (and a replacement of the pool).
    let policy = |k| pool.get(k).and_then(Value::as_str);
    assert_eq!((policy("DeletionPolicy"), policy("UpdateReplacePolicy")), (Some("Retain"), Some("Retain")), "{id}");
}

#[test]
fn console_roles_are_the_user_pool_groups_sales_marketing_and_admin() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let mut groups = BTreeSet::new();
    for (id, group) in t.of_type("AWS::Cognito::UserPoolGroup") {
        assert_eq!(prop(group, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{id}: in the console's pool");
        let description = prop(group, "Description").and_then(Value::as_str).unwrap_or_default();
        assert!(!description.trim().is_empty(), "{id}: say what the role may do");
        groups.insert(prop(group, "GroupName").and_then(Value::as_str).expect("GroupName").to_string());
    }
    assert_eq!(groups, BTreeSet::from(["sales", "marketing", "admin"].map(String::from)));
}

#[test]
fn console_client_uses_the_code_flow_without_a_secret_and_returns_to_the_console() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (id, client) = only(&t, "AWS::Cognito::UserPoolClient");
    assert_eq!(prop(client, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{id}");
    // A public client: PKCE instead of a secret; the authorization code flow only, never the
    // implicit flow that puts tokens in the URL.
    assert_eq!(prop(client, "GenerateSecret").and_then(Value::as_bool), Some(false), "{id}: GenerateSecret");
    assert_eq!(prop(client, "AllowedOAuthFlowsUserPoolClient").and_then(Value::as_bool), Some(true), "{id}");
    assert_eq!(strings(prop(client, "AllowedOAuthFlows")), BTreeSet::from(["code"]), "{id}: AllowedOAuthFlows");
    assert!(strings(prop(client, "AllowedOAuthScopes")).contains("openid"), "{id}: an ID token needs openid");
    // People sign in on the managed login pages only, never by posting a password to the API.
    assert_eq!(strings(prop(client, "ExplicitAuthFlows")), BTreeSet::from(["ALLOW_REFRESH_TOKEN_AUTH"]), "{id}");
    assert_eq!(prop(client, "PreventUserExistenceErrors").and_then(Value::as_str), Some("ENABLED"), "{id}");
    assert_eq!(prop(client, "EnableTokenRevocation").and_then(Value::as_bool), Some(true), "{id}: sign-out revokes");

    // Back to the console at the address the functions know it by, whichever that is.
    let bases = console_bases(&t);
    let urls = |key| -> BTreeSet<String> { seq(prop(client, key)).into_iter().flat_map(render).collect() };
    assert_eq!(urls("CallbackURLs"), under_bases(&bases, "/console/auth/callback"), "{id}: CallbackURLs");
    assert_eq!(urls("LogoutURLs"), under_bases(&bases, "/console/signed-out"), "{id}: LogoutURLs");

    // Cognito's own accounts always; the company's identity provider once the parameter names it.
    let providers = render_list(prop(client, "SupportedIdentityProviders").expect("SupportedIdentityProviders"));
    let expected = [vec!["COGNITO".to_string()], vec!["COGNITO".to_string(), "${ConsoleIdentityProvider}".to_string()]];
    assert_eq!(
        providers.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect(),
        "{id}: SupportedIdentityProviders"
    );

    // An hour per ID token, refreshed for up to 30 days.
    let seconds = |key: &str, unit_key: &str, default_unit: &str| {
        let value = int(prop(client, key).unwrap_or_else(|| panic!("{id}: {key}")), key);
        let units = prop(client, "TokenValidityUnits").and_then(|u| u.get(unit_key)).and_then(Value::as_str);
        value
            * match units.unwrap_or(default_unit) {
                "seconds" => 1,
                "minutes" => 60,
                "hours" => 3600,
                "days" => 86_400,
                other => panic!("{id}: unit {other}"),
            }
    };
    assert_eq!(seconds("IdTokenValidity", "IdToken", "hours"), 3600, "{id}: ID token");
    assert_eq!(seconds("AccessTokenValidity", "AccessToken", "hours"), 3600, "{id}: access token");
    assert_eq!(seconds("RefreshTokenValidity", "RefreshToken", "days"), 30 * 86_400, "{id}: refresh token");
}

#[test]
fn console_signs_in_on_the_pools_managed_login_domain() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    let (domain_id, domain) = only(&t, "AWS::Cognito::UserPoolDomain");
    assert_eq!(prop(domain, "UserPoolId").and_then(ref_of), Some(pool.as_str()), "{domain_id}");
    // The newer managed login shows a client's pages only once the client has a branding style.
    let version = prop(domain, "ManagedLoginVersion").map(|v| int(v, "ManagedLoginVersion")).unwrap_or(1);
    if version == 2 {
        let styled = t.of_type("AWS::Cognito::ManagedLoginBranding").into_iter().any(|(_, b)| {
            prop(b, "UserPoolId").and_then(ref_of) == Some(pool.as_str())
                && prop(b, "ClientId").and_then(ref_of) == Some(client.as_str())
        });
        assert!(styled, "managed login (version 2) needs a ManagedLoginBranding for {client}");
    }
    // A prefix of its own, or one the account makes unique.
    let prefixes: BTreeSet<String> = render(prop(domain, "Domain").expect("Domain")).into_iter().collect();
    let expected = ["${ConsoleDomainPrefix}", "leadflow-${AWS::AccountId}"].map(String::from);
    assert_eq!(prefixes, BTreeSet::from(expected), "{domain_id}: Domain");
}

#[test]
fn admin_function_is_told_where_the_console_signs_in_and_no_other_function_is() {
    let t = Template::load();
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    let (domain, _) = only(&t, "AWS::Cognito::UserPoolDomain");
    assert_eq!(
        admin_var(&t, "LEADFLOW_COGNITO_DOMAIN"),
        [format!("https://${{{domain}}}.auth.${{AWS::Region}}.amazoncognito.com")]
    );
    // ProviderName is cognito-idp.<region>.amazonaws.com/<pool id>: the ID token's iss.
    assert_eq!(admin_var(&t, "LEADFLOW_COGNITO_ISSUER"), [format!("https://${{{pool}.ProviderName}}")]);
    assert_eq!(admin_var(&t, "LEADFLOW_COGNITO_CLIENT_ID"), [format!("${{{client}}}")]);
    for (id, f) in t.functions() {
        if binary_of(f) == Some("admin") {
            continue;
        }
        let vars = prop(f, "Environment").and_then(|e| e.get("Variables")).and_then(Value::as_mapping);
        let cognito: Vec<&str> = vars
            .into_iter()
            .flat_map(|m| m.keys().filter_map(Value::as_str))
            .filter(|k| k.starts_with("LEADFLOW_COGNITO_"))
            .collect();
        assert!(cognito.is_empty(), "{id} is given {cognito:?}, which only the console needs");
    }
}

#[test]
fn outputs_say_where_the_console_is_and_which_pool_and_client_it_uses() {
    let t = Template::load();
    let outputs = t.doc.get("Outputs").and_then(Value::as_mapping).expect("Outputs");
    let output =
        |name: &str| render(outputs.get(name).and_then(|o| o.get("Value")).unwrap_or_else(|| panic!("{name}")));
    let bases = console_bases(&t);
    assert_eq!(output("ConsoleUrl").into_iter().collect::<BTreeSet<_>>(), under_bases(&bases, "/console"));
    let (pool, _) = only(&t, "AWS::Cognito::UserPool");
    let (client, _) = only(&t, "AWS::Cognito::UserPoolClient");
    assert_eq!(output("UserPoolId"), [format!("${{{pool}}}")]);
    assert_eq!(output("UserPoolClientId"), [format!("${{{client}}}")]);
    assert_eq!(output("ConsoleSignInDomain"), admin_var(&t, "LEADFLOW_COGNITO_DOMAIN"));
}
